use super::*;

#[test]
fn chrome_whip_offer() {
    let o = offer(CHROME_WHIP);
    assert_eq!(o.ice_ufrag, "Xp7q");
    assert_eq!(o.ice_pwd, "Vd3kqL9rT2mN8bW4yH6cJ1sF");
    assert_eq!(
        o.fingerprint_sha256,
        "3b:7a:e1:05:c9:6d:42:88:1f:a0:bc:37:de:59:04:6e:92:ab:13:f7:58:c2:0d:e4:71:9a:36:bf:80:25:cd:4e"
    );
    assert_eq!(o.setup, DtlsSetup::ActPass);
    assert!(o.ice_trickle);
    assert_eq!(o.bundle_mids, ["0", "1"]);
    assert_eq!(o.media.len(), 2);

    let a = media(&o, "0");
    assert_eq!(
        (a.kind, a.direction, a.rejected),
        (MediaKind::Audio, Direction::SendOnly, false)
    );
    assert!(a.rtcp_mux && a.rtcp_rsize && a.is_usable());
    assert_eq!(a.proto, "UDP/TLS/RTP/SAVPF");
    let opus = &a.codecs[0];
    assert_eq!(
        opus,
        &OfferedCodec {
            payload_type: 111,
            name: "opus".into(),
            clock_rate: 48_000,
            channels: Some(2),
            fmtp: "minptime=10;useinbandfec=1".into(),
            rtcp_fb: vec!["transport-cc".into()],
            rtx_payload_type: None,
        }
    );
    let pts: Vec<u8> = a.codecs.iter().map(|c| c.payload_type).collect();
    assert_eq!(pts, [111, 63, 9, 0, 8, 13, 110, 126]);
    assert_eq!(codec(a, 0).name, "PCMU");
    assert_eq!(a.extmaps.len(), 4);
    assert_eq!(
        a.extmaps[0],
        (1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level".into())
    );
    assert_eq!(a.ssrcs, [2_718_281_828]);
    assert!(a.rtx_ssrcs.is_empty());
    assert_eq!(
        a.msid.as_deref(),
        Some("5e3f2a1c-7b9d-4e8f-a0b1-c2d3e4f5a6b7 0c4d8e2f-1a3b-4c5d-9e6f-7a8b9c0d1e2f")
    );

    let v = media(&o, "1");
    assert_eq!(
        (v.kind, v.direction),
        (MediaKind::Video, Direction::SendOnly)
    );
    // 25 formats, 12 of them RTX: those are folded into their primaries.
    assert_eq!(v.codecs.len(), 13);
    assert!(v.codecs.iter().all(|c| !c.name.eq_ignore_ascii_case("rtx")));
    assert_eq!(codec(v, 96).rtx_payload_type, Some(97));
    assert_eq!(codec(v, 102).rtx_payload_type, Some(103));
    assert_eq!(codec(v, 116).rtx_payload_type, Some(117));
    assert_eq!(codec(v, 118).rtx_payload_type, None);
    assert_eq!(
        codec(v, 96).rtcp_fb,
        ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"]
    );
    assert_eq!(
        codec(v, 106).fmtp,
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
    );
    assert_eq!(codec(v, 45).name, "AV1");
    assert_eq!(v.extmaps.len(), 11);
    assert!(
        v.extmaps
            .contains(&(14, "urn:ietf:params:rtp-hdrext:toffset".into()))
    );
    assert_eq!(v.ssrcs, [1_618_033_988]);
    assert_eq!(v.rtx_ssrcs, [(1_618_033_988, 3_141_592_653)]);
}

#[test]
fn chrome_whep_offer() {
    let o = offer(CHROME_WHEP);
    assert_eq!(o.media.len(), 2);
    for m in &o.media {
        assert_eq!(m.direction, Direction::RecvOnly);
        assert!(m.ssrcs.is_empty() && m.rtx_ssrcs.is_empty() && m.msid.is_none());
        assert!(m.is_usable());
    }
    assert_eq!(o.ice_ufrag, "hT4m");
}

#[test]
fn firefox_whip_offer() {
    let o = offer(FIREFOX_WHIP);
    // Fingerprint only at session level, credentials only at media level.
    assert!(o.fingerprint_sha256.starts_with("7e:25:b1:9c"));
    assert_eq!(
        (o.ice_ufrag.as_str(), o.ice_pwd.as_str()),
        ("c7e21a94", "2b4f8e1c9a7d3f6b0e5c8a2d4f7b1e9c")
    );
    let a = media(&o, "0");
    assert_eq!(
        codec(a, 109).fmtp,
        "maxplaybackrate=48000;stereo=1;useinbandfec=1"
    );
    assert_eq!(codec(a, 9).channels, Some(1));
    // `a=extmap:2/recvonly ...`: the direction suffix is dropped.
    assert!(
        a.extmaps
            .contains(&(2, "urn:ietf:params:rtp-hdrext:csrc-audio-level".into()))
    );
    assert_eq!(a.ssrcs, [1_029_384_756]);
    let v = media(&o, "1");
    assert_eq!(codec(v, 126).rtx_payload_type, Some(127));
    assert_eq!(codec(v, 97).rtx_payload_type, Some(98));
    assert_eq!(codec(v, 122).rtx_payload_type, Some(119));
    assert_eq!(codec(v, 120).rtx_payload_type, Some(124));
    assert_eq!(v.codecs.len(), 6);
    // The FID group comes after the ssrc lines: the RTX SSRC is still not primary.
    assert_eq!(v.ssrcs, [2_233_445_566]);
    assert_eq!(v.rtx_ssrcs, [(2_233_445_566, 3_344_556_677)]);
    assert!(
        v.msid
            .as_deref()
            .is_some_and(|m| m.starts_with("{3e8a1f2b"))
    );
}

#[test]
fn aiortc_offer() {
    let o = offer(AIORTC);
    // sha-256 is picked among sha-256/384/512.
    assert!(o.fingerprint_sha256.starts_with("0f:a3:5c"));
    assert!(!o.ice_trickle);
    for m in &o.media {
        assert_eq!(m.direction, Direction::SendRecv);
        assert!(!m.rejected);
    }
    let a = media(&o, "0");
    assert_eq!(codec(a, 96).name, "opus");
    let v = media(&o, "1");
    assert_eq!(codec(v, 99).rtx_payload_type, Some(100));
    assert_eq!(codec(v, 101).rtx_payload_type, Some(102));
    assert_eq!(v.ssrcs, [2_847_193_650]);
    assert_eq!(v.rtx_ssrcs, [(2_847_193_650, 1_938_475_610)]);
}

#[test]
fn gstreamer_offer() {
    let o = offer(GSTREAMER);
    assert_eq!(o.bundle_mids, ["video0", "audio1"]);
    assert_eq!(o.ice_ufrag, "R4mEzq0yYgUf3vnNjb8Kh2WdTcPsAx7L");
    let v = media(&o, "video0");
    assert!(
        codec(v, 96)
            .fmtp
            .contains("sprop-parameter-sets=Z0LAH9kAUAW7ARAAAAMAEAAAAwPI8YMkgA==,aM4PyA==")
    );
    assert_eq!(codec(v, 96).rtx_payload_type, Some(97));
    // No a=msid: taken from the SSRC's msid.
    assert_eq!(
        v.msid.as_deref(),
        Some("user2856152947/video0 webrtctransceiver0")
    );
    assert_eq!(v.rtx_ssrcs, [(3_905_178_206, 2_019_442_372)]);
    let a = media(&o, "audio1");
    assert_eq!(codec(a, 111).name, "OPUS");
}

#[test]
fn lf_and_crlf_parse_the_same() {
    for (name, text) in ALL {
        let lf = parse_offer(&text.replace("\r\n", "\n"));
        let cr = parse_offer(&crlf(text));
        assert_eq!(lf, cr, "{name}");
        assert!(cr.is_ok(), "{name}: {cr:?}");
    }
}

fn assert_err(r: Result<Offer, SdpError>, want: &SdpError) {
    match r {
        Err(e) => assert_eq!(&e, want),
        Ok(_) => panic!("expected {want:?}"),
    }
}

#[test]
fn missing_or_inconsistent_ice_credentials() {
    let no_ufrag = FIREFOX_WHIP.replace("a=ice-ufrag:c7e21a94\n", "");
    assert_err(
        parse_offer(&crlf(&no_ufrag)),
        &SdpError::MissingIceCredentials { mid: "0".into() },
    );
    let second = CHROME_WHIP.replacen(
        "a=ice-pwd:Vd3kqL9rT2mN8bW4yH6cJ1sF",
        "a=ice-pwd:Zd3kqL9rT2mN8bW4yH6cJ1sF",
        1,
    );
    assert_err(
        parse_offer(&crlf(&second)),
        &SdpError::InconsistentIceCredentials { mid: "1".into() },
    );
    // Characters outside ice-char are refused.
    assert_err(
        parse_edited(
            GSTREAMER,
            "a=ice-ufrag:R4mEzq0yYgUf3vnNjb8Kh2WdTcPsAx7L\na=ice-pwd:Gk5tB1oZp9wQe3rLx7vNc2mHs6yJd0aF\na=rtcp-mux\na=rtcp-rsize\na=sendonly\na=rtpmap:111",
            "a=ice-ufrag:R4m\"q\na=ice-pwd:Gk5tB1oZp9wQe3rLx7vNc2mHs6yJd0aF\na=rtcp-mux\na=rtcp-rsize\na=sendonly\na=rtpmap:111",
        ),
        &SdpError::MissingIceCredentials {
            mid: "audio1".into(),
        },
    );
}

#[test]
fn fingerprint_errors() {
    assert_err(
        parse_edited(FIREFOX_WHIP, "a=fingerprint:sha-256", "a=fingerprint:sha-1"),
        &SdpError::NoSha256Fingerprint { mid: "0".into() },
    );
    assert_err(
        parse_edited(FIREFOX_WHIP, ":AC:1B\n", ":AC\n"),
        &SdpError::NoSha256Fingerprint { mid: "0".into() },
    );
    let differ = GSTREAMER.replacen("A8:53:1E", "A8:53:1F", 1);
    assert_err(
        parse_offer(&crlf(&differ)),
        &SdpError::InconsistentFingerprint {
            mid: "audio1".into(),
        },
    );
}

#[test]
fn setup_roles() {
    assert_err(
        parse_edited(CHROME_WHIP, "a=setup:actpass", "a=setup:passive"),
        &SdpError::SetupPassive,
    );
    assert_err(
        parse_edited(CHROME_WHIP, "a=setup:actpass", "a=setup:holdconn"),
        &SdpError::InvalidSetup("holdconn".into()),
    );
    let active = parse_edited(CHROME_WHIP, "a=setup:actpass", "a=setup:active");
    assert_eq!(active.map(|o| o.setup), Ok(DtlsSetup::Active));
    let absent = parse_edited(CHROME_WHIP, "a=setup:actpass\n", "");
    assert_eq!(absent.map(|o| o.setup), Ok(DtlsSetup::Active));
}

#[test]
fn media_errors() {
    let all_rejected = CHROME_WHIP
        .replace("m=audio 9 ", "m=audio 0 ")
        .replace("m=video 9 ", "m=video 0 ");
    assert_err(parse_offer(&crlf(&all_rejected)), &SdpError::NoUsableMedia);
    assert_err(
        parse_edited(
            CHROME_WHIP,
            "a=rtcp-mux\na=rtcp-rsize\na=rtpmap:111",
            "a=rtcp-rsize\na=rtpmap:111",
        ),
        &SdpError::RtcpMuxMissing { mid: "0".into() },
    );
    assert_err(
        parse_edited(CHROME_WHIP, "a=group:BUNDLE 0 1\n", ""),
        &SdpError::BundleMissing { mid: "0".into() },
    );
    assert_err(
        parse_edited(CHROME_WHIP, "a=group:BUNDLE 0 1", "a=group:BUNDLE 0"),
        &SdpError::BundleMissing { mid: "1".into() },
    );
    // One active m-line needs no BUNDLE; the rejected one may even lack rtcp-mux.
    let one = CHROME_WHIP
        .replace("a=group:BUNDLE 0 1\n", "")
        .replace("m=audio 9 ", "m=audio 0 ")
        .replacen("a=rtcp-mux\n", "", 1);
    let o = parse_offer(&crlf(&one));
    assert!(
        o.as_ref()
            .is_ok_and(|o| o.media[0].rejected && !o.media[1].rejected),
        "{o:?}"
    );
    assert_err(
        parse_edited(CHROME_WHIP, "a=mid:1", "a=mid:0"),
        &SdpError::DuplicateMid { mid: "0".into() },
    );
    assert_err(
        parse_edited(CHROME_WHIP, "a=mid:1\n", ""),
        &SdpError::BadMid { index: 1 },
    );
}

#[test]
fn bundle_only_section_is_not_rejected() {
    let o = parse_edited(CHROME_WHIP, "m=video 9 ", "m=video 0 ").map(|o| o.media[1].rejected);
    assert_eq!(o, Ok(true));
    let text = CHROME_WHIP
        .replace("m=video 9 ", "m=video 0 ")
        .replace("a=mid:1\n", "a=mid:1\na=bundle-only\n");
    let o = parse_offer(&crlf(&text)).map(|o| o.media[1].rejected);
    assert_eq!(o, Ok(false));
}

/// An offer with `n` bundled audio m-lines.
fn many_audio(n: usize) -> String {
    let mids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let mut s = format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {}\r\n\
         a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
         a=fingerprint:sha-256 {}\r\na=setup:actpass\r\n",
        mids.join(" "),
        ["AB"; 32].join(":")
    );
    for mid in &mids {
        s.push_str(&format!(
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\n\
             a=sendonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
        ));
    }
    s
}

#[test]
fn media_section_limit() {
    let ok = parse_offer(&many_audio(MAX_MEDIA_SECTIONS));
    assert_eq!(ok.map(|o| o.media.len()), Ok(MAX_MEDIA_SECTIONS));
    assert_err(
        parse_offer(&many_audio(MAX_MEDIA_SECTIONS + 1)),
        &SdpError::TooManyMedia {
            count: 17,
            limit: 16,
        },
    );
    assert_err(
        parse_offer(&many_audio(100)),
        &SdpError::TooManyMedia {
            count: 100,
            limit: 16,
        },
    );
}

#[test]
fn garbage_is_an_error() {
    for input in [
        "",
        "hello",
        "v=0",
        "v=1\r\n",
        "v=0\r\no=- x 2 IN IP4 127.0.0.1\r\n",
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 99999 RTP 0\r\n",
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio\r\n",
        "\u{0}\u{1}\u{2}=\n==\n",
    ] {
        let r = parse_offer(input);
        assert!(r.is_err(), "{input:?} parsed: {r:?}");
    }
    assert!(matches!(
        parse_offer("hello"),
        Err(SdpError::Unparseable(_))
    ));
    let big = "a".repeat(MAX_SDP_BYTES + 1);
    assert_eq!(
        parse_offer(&big),
        Err(SdpError::TooLarge {
            len: MAX_SDP_BYTES + 1,
            limit: MAX_SDP_BYTES
        })
    );
}

#[test]
fn truncated_offers_do_not_panic() {
    for (_, text) in ALL {
        let text = crlf(text);
        for cut in (0..text.len()).step_by(7) {
            if let Some(prefix) = text.get(..cut) {
                let _ = parse_offer(prefix);
            }
        }
    }
}

#[test]
fn error_messages_are_single_lines() {
    let samples = [
        parse_offer("v=0\r\no=\r\x01broken\r\n"),
        parse_edited(CHROME_WHIP, "a=setup:actpass", "a=setup:x\ry"),
        parse_offer(&many_audio(40)),
        parse_edited(CHROME_WHIP, "a=mid:1\n", ""),
    ];
    for r in samples {
        let Err(e) = r else {
            panic!("expected an error")
        };
        let msg = e.to_string();
        assert!(!msg.is_empty() && !msg.contains(['\r', '\n']), "{msg:?}");
    }
}
