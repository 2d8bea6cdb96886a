use std::io::Cursor;
use std::net::SocketAddr;

use rtc_sdp::SessionDescription;

use super::*;

pub(super) const UFRAG: &str = "r58u";
pub(super) const PWD: &str = "r58passwordpassword1234";
pub(super) const FP: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

pub(super) fn cands() -> Vec<SocketAddr> {
    [
        "192.168.1.10:8189",
        "[2001:db8::10]:8189",
        "0.0.0.0:8189",
        "10.0.0.1:0",
    ]
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect()
}

fn params(media: Vec<AnswerMedia>, candidates: &[SocketAddr]) -> AnswerParams<'_> {
    AnswerParams {
        ice_ufrag: UFRAG,
        ice_pwd: PWD,
        fingerprint_sha256: FP,
        candidates,
        relay: None,
        media,
        session_id: 42,
    }
}

/// WHIP answer media: the publish codec, recvonly, RTX, the given extmap ids.
fn whip_media(o: &Offer, ext_ids: &[u8]) -> Vec<AnswerMedia> {
    o.media
        .iter()
        .map(|m| {
            answer_media(
                m,
                choose_publish_codec(m).map(|c| AcceptedMedia {
                    codec: c.clone(),
                    with_rtx: true,
                    direction: Direction::RecvOnly,
                    extmaps: m
                        .extmaps
                        .iter()
                        .filter(|(id, _)| ext_ids.contains(id))
                        .cloned()
                        .collect(),
                    send: None,
                }),
            )
        })
        .collect()
}

/// Accepted as given, else what the engine answers for an m-line it does not use.
fn answer_media(m: &OfferedMedia, accepted: Option<AcceptedMedia>) -> AnswerMedia {
    match accepted {
        Some(a) => AnswerMedia::accept(&m.mid, a),
        None => AnswerMedia::unused(m),
    }
}

fn accepted_mut(m: &mut AnswerMedia) -> Option<&mut AcceptedMedia> {
    match &mut m.answer {
        MediaAnswer::Accept(a) => Some(&mut **a),
        MediaAnswer::Inactive | MediaAnswer::Reject => None,
    }
}

fn reparse(answer: &str) -> SessionDescription {
    match SessionDescription::unmarshal(&mut Cursor::new(answer.as_bytes())) {
        Ok(d) => d,
        Err(e) => panic!("answer does not parse: {e}\n{answer}"),
    }
}

fn build(o: &Offer, p: &AnswerParams<'_>) -> String {
    match build_answer(o, p) {
        Ok(a) => a,
        Err(e) => panic!("build_answer: {e}"),
    }
}

#[test]
fn whip_answer_exact_text() {
    let o = offer(CHROME_WHIP);
    let c = cands();
    let answer = build(&o, &params(whip_media(&o, &[3, 4]), &c));
    let expected = [
        "v=0",
        "o=- 42 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=ice-lite",
        "a=msid-semantic: WMS *",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:r58u",
        "a=ice-pwd:r58passwordpassword1234",
        &format!("a=fingerprint:sha-256 {FP}"),
        "a=setup:passive",
        "a=mid:0",
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=recvonly",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=candidate:CAND4 1 udp 2130706431 192.168.1.10 8189 typ host",
        "a=candidate:CAND6 1 udp 2130706175 2001:db8::10 8189 typ host",
        "a=end-of-candidates",
        "m=video 9 UDP/TLS/RTP/SAVPF 106 107",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:r58u",
        "a=ice-pwd:r58passwordpassword1234",
        &format!("a=fingerprint:sha-256 {FP}"),
        "a=setup:passive",
        "a=mid:1",
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=recvonly",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=rtpmap:106 H264/90000",
        "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        "a=rtcp-fb:106 nack",
        "a=rtcp-fb:106 nack pli",
        "a=rtcp-fb:106 ccm fir",
        "a=rtcp-fb:106 goog-remb",
        "a=rtpmap:107 rtx/90000",
        "a=fmtp:107 apt=106",
        "a=candidate:CAND4 1 udp 2130706431 192.168.1.10 8189 typ host",
        "a=candidate:CAND6 1 udp 2130706175 2001:db8::10 8189 typ host",
        "a=end-of-candidates",
    ];
    // Foundations are hashes; check them separately, then compare the rest exactly.
    let lines: Vec<&str> = answer.split("\r\n").collect();
    assert_eq!(lines.last(), Some(&""), "ends with CRLF");
    assert!(
        !answer.replace("\r\n", "").contains(['\r', '\n']),
        "only CRLF line ends"
    );
    let normalized: Vec<String> = lines[..lines.len() - 1]
        .iter()
        .map(|l| match l.strip_prefix("a=candidate:") {
            Some(rest) => {
                let (foundation, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                assert!(foundation.parse::<u32>().is_ok(), "{foundation}");
                let tag = if tail.contains("::") {
                    "CAND6"
                } else {
                    "CAND4"
                };
                format!("a=candidate:{tag} {tail}")
            }
            None => (*l).to_owned(),
        })
        .collect();
    assert_eq!(normalized, expected);

    let d = reparse(&answer);
    assert!(d.attributes.iter().any(|a| a.key == "ice-lite"));
    assert_eq!(d.media_descriptions.len(), 2);
    for md in &d.media_descriptions {
        assert_eq!(md.attribute("setup"), Some(Some("passive")));
        assert_eq!(md.media_name.port.value, 9);
    }
}

#[test]
fn whep_answer_with_send_ssrcs() {
    let o = offer(CHROME_WHEP);
    let want = [
        CodecSpec {
            name: "opus".into(),
            clock_rate: 48_000,
            channels: Some(2),
            fmtp: String::new(),
        },
        CodecSpec {
            name: "H264".into(),
            clock_rate: 90_000,
            channels: None,
            fmtp: "packetization-mode=1;profile-level-id=42e01f".into(),
        },
    ];
    let media = o
        .media
        .iter()
        .zip(&want)
        .enumerate()
        .map(|(i, (m, want))| {
            let codec = choose_play_codec(m, want).cloned();
            let direction = answer_direction_for(m.direction, true);
            let n = u32::try_from(i).unwrap_or(0);
            answer_media(
                m,
                codec
                    .zip(direction)
                    .map(|(codec, direction)| AcceptedMedia {
                        codec,
                        with_rtx: i == 1,
                        direction,
                        extmaps: m
                            .extmaps
                            .iter()
                            .filter(|(id, _)| *id == 4)
                            .cloned()
                            .collect(),
                        send: Some(SendSsrc {
                            ssrc: 1000 + n,
                            rtx_ssrc: Some(2000 + n),
                            cname: "r58-cam1".into(),
                            stream_id: "cam1".into(),
                            track_id: format!("cam1-{}", m.mid),
                        }),
                    }),
            )
        })
        .collect();
    let c = cands();
    let answer = build(&o, &params(media, &c));
    reparse(&answer);
    let audio = answer.split("m=video").next().unwrap_or("");
    let video = answer.split("m=video").nth(1).unwrap_or("");
    for l in [
        "a=sendonly",
        "a=msid:cam1 cam1-0",
        "a=ssrc:1000 cname:r58-cam1",
        "a=ssrc:1000 msid:cam1 cam1-0",
    ] {
        assert!(audio.contains(&format!("{l}\r\n")), "audio lacks {l}");
    }
    // RTX not answered for audio: no group, no RTX SSRC.
    assert!(!audio.contains("ssrc-group") && !audio.contains("2000"));
    for l in [
        " 9 UDP/TLS/RTP/SAVPF 102 103\r\n",
        "a=sendonly",
        "a=msid:cam1 cam1-1",
        "a=ssrc-group:FID 1001 2001",
        "a=ssrc:1001 cname:r58-cam1",
        "a=ssrc:2001 cname:r58-cam1",
        "a=ssrc:2001 msid:cam1 cam1-1",
        "a=rtpmap:103 rtx/90000",
        "a=fmtp:103 apt=102",
        "a=end-of-candidates",
    ] {
        assert!(video.contains(l), "video lacks {l}");
    }
    assert!(!answer.contains("transport-cc"));
}

#[test]
fn rejected_and_inactive_sections() {
    // Chrome WHIP plus a data channel: the data channel is rejected; a video m-line we do not
    // use stays bundled as inactive; one the caller rejects outright gets port 0.
    let text = format!(
        "{}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\nc=IN IP4 0.0.0.0\na=mid:2\n\
         a=sctp-port:5000\na=max-message-size:262144\n",
        CHROME_WHIP.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2")
    );
    let o = offer(&text);
    assert_eq!(o.media[2].kind, MediaKind::Application);
    let mut media = whip_media(&o, &[]);
    assert_eq!(media[2].answer, MediaAnswer::Reject);
    media[1] = AnswerMedia::unused(&o.media[1]);
    assert_eq!(media[1].answer, MediaAnswer::Inactive);
    let c = cands();
    let answer = build(&o, &params(media.clone(), &c));
    reparse(&answer);
    assert!(answer.contains("a=group:BUNDLE 0 1\r\n"), "{answer}");
    let ice = format!("a=ice-ufrag:{UFRAG}\r\na=ice-pwd:{PWD}\r\n");
    let video = answer.split("m=video").nth(1).expect("video section");
    let video = video.split("m=application").next().unwrap_or(video);
    assert!(
        video.starts_with(" 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n"),
        "{video}"
    );
    for attr in [
        "a=mid:1\r\n",
        "a=inactive\r\n",
        "a=rtcp-mux\r\n",
        "a=rtpmap:96 VP8/90000\r\n",
        "a=setup:passive\r\n",
        "a=end-of-candidates\r\n",
    ] {
        assert!(video.contains(attr), "{attr} in {video}");
    }
    assert!(video.contains(&ice));
    let application = answer
        .split("m=application")
        .nth(1)
        .expect("application section");
    assert!(application.starts_with(" 0 UDP/DTLS/SCTP webrtc-datachannel\r\n"));
    assert!(application.contains("a=mid:2\r\n") && !application.contains("a=rtcp-mux"));
    // Rejected sections keep our ICE/DTLS parameters (aiortc requires them on every section).
    assert!(application.contains(&ice));
    assert_eq!(answer.matches("a=end-of-candidates").count(), 2);

    // Rejected outright: port 0, out of the group, the offer's first codec echoed.
    media[1].answer = MediaAnswer::Reject;
    let answer = build(&o, &params(media, &c));
    reparse(&answer);
    assert!(answer.contains("a=group:BUNDLE 0\r\n"));
    let video = answer.split("m=video").nth(1).expect("video section");
    assert!(video.starts_with(" 0 UDP/TLS/RTP/SAVPF 96\r\n"), "{video}");
    assert!(video.contains("a=inactive\r\n") && video.contains("a=rtpmap:96 VP8/90000\r\n"));
}

#[test]
fn directions() {
    use Direction::*;
    let cases = [
        (SendOnly, false, Some(RecvOnly)),
        (SendRecv, false, Some(RecvOnly)),
        (RecvOnly, false, None),
        (Inactive, false, None),
        (RecvOnly, true, Some(SendOnly)),
        (SendRecv, true, Some(SendOnly)),
        (SendOnly, true, None),
        (Inactive, true, None),
    ];
    for (offered, we_send, want) in cases {
        assert_eq!(
            answer_direction_for(offered, we_send),
            want,
            "{offered} {we_send}"
        );
    }
}

#[test]
fn answer_input_errors() {
    let o = offer(CHROME_WHIP);
    let c = cands();
    let ok = params(whip_media(&o, &[]), &c);
    assert!(build_answer(&o, &ok).is_ok());
    let is_invalid =
        |p: &AnswerParams<'_>| matches!(build_answer(&o, p), Err(SdpError::InvalidAnswer(_)));

    let mut p = ok.clone();
    p.media.pop();
    assert!(is_invalid(&p), "media count");
    let mut p = ok.clone();
    p.media[0].mid = "x".into();
    assert!(is_invalid(&p), "mid");
    let mut p = ok.clone();
    if let Some(a) = accepted_mut(&mut p.media[1]) {
        a.codec.payload_type = 55;
    }
    assert!(is_invalid(&p), "payload type not offered");
    let mut p = ok.clone();
    if let Some(a) = accepted_mut(&mut p.media[1]) {
        a.extmaps.push((9, "urn:x".into()));
    }
    assert!(is_invalid(&p), "extmap not offered");
    let mut p = ok.clone();
    if let Some(a) = accepted_mut(&mut p.media[1]) {
        a.codec.fmtp.push_str("\r\na=evil");
    }
    assert!(is_invalid(&p), "control characters");
    let mut p = ok.clone();
    if let Some(a) = accepted_mut(&mut p.media[1]) {
        a.direction = Direction::SendOnly;
        a.send = Some(SendSsrc {
            ssrc: 1,
            rtx_ssrc: None,
            cname: "two words".into(),
            stream_id: "s".into(),
            track_id: "t".into(),
        });
    }
    assert!(is_invalid(&p), "cname with a space");
    for (ufrag, pwd, fp) in [
        ("abc", PWD, FP),
        (UFRAG, "short", FP),
        (UFRAG, PWD, "AB:CD"),
        ("r58 u", PWD, FP),
    ] {
        let p = AnswerParams {
            ice_ufrag: ufrag,
            ice_pwd: pwd,
            fingerprint_sha256: fp,
            ..ok.clone()
        };
        assert!(is_invalid(&p), "{ufrag} {pwd} {fp}");
    }
    let unusable: Vec<SocketAddr> = c.iter().copied().skip(2).collect();
    let p = AnswerParams {
        candidates: &unusable,
        ..ok.clone()
    };
    assert_eq!(build_answer(&o, &p), Err(SdpError::NoCandidates));
    let mut p = ok.clone();
    for m in &mut p.media {
        m.answer = MediaAnswer::Inactive;
    }
    assert_eq!(build_answer(&o, &p), Err(SdpError::NoUsableMedia));

    // Accepting an m-line the offer rejected is a caller bug.
    let rejected = parse_edited(CHROME_WHIP, "m=video 9 ", "m=video 0 ");
    let Ok(rejected) = rejected else {
        panic!("{rejected:?}")
    };
    assert!(matches!(
        build_answer(&rejected, &ok),
        Err(SdpError::InvalidAnswer(_))
    ));
}

#[test]
fn candidate_lines_priorities() {
    let c = cands();
    let answer = build(
        &offer(GSTREAMER),
        &params(whip_media(&offer(GSTREAMER), &[]), &c),
    );
    let mut seen = Vec::new();
    for l in answer
        .lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
    {
        let (addr, typ) = parse_candidate_addr(l).unwrap_or_else(|| panic!("{l}"));
        assert_eq!(typ, "host");
        seen.push(addr);
    }
    // Both sections carry both usable candidates; unusable ones are skipped.
    assert_eq!(seen.len(), 4);
    assert_eq!(&seen[..2], &c[..2]);
}

#[test]
fn a_relay_candidate_follows_the_host_ones_with_the_lowest_type_preference() {
    let c = cands();
    let o = offer(GSTREAMER);
    let relay = RelayCandidate {
        relayed: "198.51.100.7:49152".parse().unwrap(),
        mapped: Some("203.0.113.9:40000".parse().unwrap()),
    };
    let answer = build(
        &o,
        &AnswerParams {
            relay: Some(relay),
            ..params(whip_media(&o, &[]), &c)
        },
    );
    let lines: Vec<&str> = answer
        .lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .collect();
    let last = lines.last().expect("candidates");
    assert!(
        last.ends_with(
            " 1 udp 16777215 198.51.100.7 49152 typ relay raddr 203.0.113.9 rport 40000"
        ),
        "{last}"
    );
    assert_eq!(
        parse_candidate_addr(last),
        Some((relay.relayed, "relay".to_owned()))
    );
    // Every bundled section lists the same candidates, the relay last.
    let relays = lines.iter().filter(|l| l.contains("typ relay")).count();
    assert!(
        relays >= 1 && lines.len().is_multiple_of(relays),
        "{lines:?}"
    );
    let per_section = lines.len() / relays;
    assert!(
        lines
            .chunks(per_section)
            .all(|c| c.last().unwrap().contains("typ relay")),
        "{lines:?}"
    );
    let host_priorities: Vec<u32> = lines
        .iter()
        .filter(|l| l.contains("typ host"))
        .map(|l| l.split(' ').nth(3).unwrap().parse().unwrap())
        .collect();
    assert!(
        host_priorities.iter().all(|&p| p > 16_777_215),
        "{host_priorities:?}"
    );
    // Without a mapped address, raddr/rport say nothing (RFC 8839 allows 0.0.0.0 0).
    let unknown = build(
        &o,
        &AnswerParams {
            relay: Some(RelayCandidate {
                mapped: None,
                ..relay
            }),
            ..params(whip_media(&o, &[]), &c)
        },
    );
    assert!(
        unknown.contains("typ relay raddr 0.0.0.0 rport 0"),
        "{unknown}"
    );
}
