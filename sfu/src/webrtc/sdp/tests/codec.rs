use super::*;
use crate::media::fmtp_param;

fn pt(c: Option<&OfferedCodec>) -> Option<u8> {
    c.map(|c| c.payload_type)
}

fn h264(payload_type: u8, fmtp: &str) -> OfferedCodec {
    OfferedCodec {
        payload_type,
        name: "H264".into(),
        clock_rate: 90_000,
        channels: None,
        fmtp: fmtp.into(),
        rtcp_fb: Vec::new(),
        rtx_payload_type: None,
    }
}

fn named(payload_type: u8, name: &str, clock_rate: u32, channels: Option<u16>) -> OfferedCodec {
    OfferedCodec {
        name: name.into(),
        clock_rate,
        channels,
        ..h264(payload_type, "")
    }
}

fn video_with(codecs: Vec<OfferedCodec>) -> OfferedMedia {
    let mut m = offer(CHROME_WHIP).media.swap_remove(1);
    m.codecs = codecs;
    m
}

fn spec(name: &str, clock_rate: u32, channels: Option<u16>, fmtp: &str) -> CodecSpec {
    CodecSpec {
        name: name.into(),
        clock_rate,
        channels,
        fmtp: fmtp.into(),
    }
}

#[test]
fn publish_codecs_of_real_offers() {
    // (offer, audio mid, audio pt, video mid, video pt)
    let cases = [
        (CHROME_WHIP, "0", 111, "1", 106), // 42e01f pm=1 ahead of 42001f
        (FIREFOX_WHIP, "0", 109, "1", 126),
        (AIORTC, "0", 96, "1", 101),
        (GSTREAMER, "audio1", 111, "video0", 96), // 42c01f counts as constrained
    ];
    for (text, amid, apt, vmid, vpt) in cases {
        let o = offer(text);
        assert_eq!(pt(choose_publish_codec(media(&o, amid))), Some(apt));
        assert_eq!(pt(choose_publish_codec(media(&o, vmid))), Some(vpt));
    }
}

#[test]
fn publish_preference_order() {
    let m = video_with(vec![
        named(96, "VP8", 90_000, None),
        h264(100, "packetization-mode=1;profile-level-id=64001f"),
        h264(101, "packetization-mode=1;profile-level-id=4d001f"),
        h264(102, "packetization-mode=0;profile-level-id=42e01f"),
    ]);
    assert_eq!(pt(choose_publish_codec(&m)), Some(101), "main before high");
    let m = video_with(vec![
        h264(100, "packetization-mode=1;profile-level-id=64001f"),
        h264(101, "profile-level-id=42001f;packetization-mode=1"),
        h264(102, "packetization-mode=1;profile-level-id=42e01f"),
    ]);
    assert_eq!(
        pt(choose_publish_codec(&m)),
        Some(102),
        "constrained baseline first"
    );
    let m = video_with(vec![
        named(98, "VP9", 90_000, None),
        h264(102, "packetization-mode=0;profile-level-id=42e01f"),
        named(96, "vp8", 90_000, None),
    ]);
    assert_eq!(
        pt(choose_publish_codec(&m)),
        Some(96),
        "VP8 when no usable H.264"
    );
    let m = video_with(vec![
        named(98, "VP9", 90_000, None),
        named(45, "AV1", 90_000, None),
    ]);
    assert_eq!(pt(choose_publish_codec(&m)), None);
    let m = video_with(vec![h264(
        100,
        "packetization-mode=1;profile-level-id=zz001f",
    )]);
    assert_eq!(
        pt(choose_publish_codec(&m)),
        Some(100),
        "unknown profile still last resort"
    );
}

#[test]
fn publish_audio_only_opus_stereo() {
    let mut m = offer(CHROME_WHIP).media.swap_remove(0);
    m.codecs.retain(|c| c.name != "opus");
    assert_eq!(pt(choose_publish_codec(&m)), None, "no PCMU/G722");
    m.codecs.push(named(120, "OPUS", 48_000, Some(1)));
    assert_eq!(pt(choose_publish_codec(&m)), None, "opus must be /2");
    m.codecs.push(named(121, "Opus", 48_000, Some(2)));
    assert_eq!(pt(choose_publish_codec(&m)), Some(121));
    m.rejected = true;
    assert_eq!(pt(choose_publish_codec(&m)), None, "rejected m-line");
}

#[test]
fn play_codec_for_chrome_viewer() {
    let o = offer(CHROME_WHEP);
    let (a, v) = (media(&o, "0"), media(&o, "1"));
    let cases = [
        // GStreamer publisher's 42c01f: first baseline pm=1 entry of the viewer.
        (
            spec(
                "H264",
                90_000,
                None,
                "packetization-mode=1;profile-level-id=42c01f",
            ),
            Some(102),
        ),
        (
            spec(
                "h264",
                90_000,
                None,
                "packetization-mode=1;profile-level-id=42e034",
            ),
            Some(102),
        ),
        (
            spec(
                "H264",
                90_000,
                None,
                "packetization-mode=0;profile-level-id=42e01f",
            ),
            Some(104),
        ),
        (
            spec("H264", 90_000, None, "profile-level-id=42e01f"),
            Some(104),
        ),
        (
            spec(
                "H264",
                90_000,
                None,
                "packetization-mode=1;profile-level-id=4d0032",
            ),
            Some(127),
        ),
        (
            spec(
                "H264",
                90_000,
                None,
                "packetization-mode=1;profile-level-id=640c1f",
            ),
            Some(112),
        ),
        (
            spec(
                "H264",
                90_000,
                None,
                "packetization-mode=1;profile-level-id=f4001f",
            ),
            None,
        ),
        (
            spec(
                "H264",
                90_000,
                None,
                "packetization-mode=2;profile-level-id=42e01f",
            ),
            None,
        ),
        (spec("VP8", 90_000, None, ""), Some(96)),
        (spec("AV1", 90_000, None, ""), Some(45)),
        (spec("VP8", 48_000, None, ""), None),
    ];
    for (want, expect) in cases {
        assert_eq!(pt(choose_play_codec(v, &want)), expect, "{want:?}");
    }
    let opus = spec("opus", 48_000, Some(2), "minptime=10;useinbandfec=1");
    assert_eq!(pt(choose_play_codec(a, &opus)), Some(111));
    // Opus matches whatever channel count the rtpmaps give (the real count is in-band).
    assert_eq!(
        pt(choose_play_codec(a, &spec("opus", 48_000, None, ""))),
        Some(111)
    );
    assert_eq!(
        pt(choose_play_codec(a, &spec("PCMU", 8000, None, ""))),
        Some(0)
    );
    assert_eq!(pt(choose_play_codec(v, &opus)), None);
}

#[test]
fn play_h264_constraint_flags() {
    // A constrained-high-only viewer cannot take plain high; a high viewer takes either.
    let constrained_only = video_with(vec![h264(
        100,
        "packetization-mode=1;profile-level-id=640c1f",
    )]);
    let plain = spec(
        "H264",
        90_000,
        None,
        "packetization-mode=1;profile-level-id=64001f",
    );
    let constrained = spec(
        "H264",
        90_000,
        None,
        "packetization-mode=1;profile-level-id=640c28",
    );
    assert_eq!(pt(choose_play_codec(&constrained_only, &plain)), None);
    assert_eq!(
        pt(choose_play_codec(&constrained_only, &constrained)),
        Some(100)
    );
    let high = video_with(vec![h264(
        100,
        "packetization-mode=1;profile-level-id=64001f",
    )]);
    assert_eq!(pt(choose_play_codec(&high, &constrained)), Some(100));
    // Baseline variants are interchangeable; missing profile-level-id means 42000a.
    let baseline = video_with(vec![h264(
        100,
        "packetization-mode=1;profile-level-id=4200 1f",
    )]);
    let b = spec("H264", 90_000, None, "packetization-mode=1");
    assert_eq!(
        pt(choose_play_codec(&baseline, &b)),
        None,
        "malformed profile-level-id"
    );
    let baseline = video_with(vec![h264(100, "packetization-mode=1")]);
    let cb = spec(
        "H264",
        90_000,
        None,
        "packetization-mode=1;profile-level-id=42e01f",
    );
    assert_eq!(pt(choose_play_codec(&baseline, &cb)), Some(100));
}

#[test]
fn play_codec_from_publisher_codec() {
    for (text, mid) in [
        (GSTREAMER, "video0"),
        (FIREFOX_WHIP, "1"),
        (AIORTC, "1"),
        (CHROME_WHIP, "1"),
    ] {
        let o = offer(text);
        let Some(published) = choose_publish_codec(media(&o, mid)) else {
            panic!("no publish codec for {mid}");
        };
        let want = CodecSpec::from(published);
        let viewer = offer(CHROME_WHEP);
        let chosen = choose_play_codec(media(&viewer, "1"), &want);
        assert!(chosen.is_some_and(|c| c.name == "H264"), "{want:?}");
    }
}

#[test]
fn fmtp_param_lookup() {
    let f = "level-asymmetry-allowed=1; Packetization-Mode = 1 ;profile-level-id=42e01f;x";
    assert_eq!(fmtp_param(f, "packetization-mode"), Some("1"));
    assert_eq!(fmtp_param(f, "PROFILE-LEVEL-ID"), Some("42e01f"));
    assert_eq!(fmtp_param(f, "x"), None);
    assert_eq!(fmtp_param("", "apt"), None);
    assert_eq!(fmtp_param("apt=96", "apt"), Some("96"));
    assert_eq!(
        fmtp_param("sprop-parameter-sets=Z0I=,aM4=", "sprop-parameter-sets"),
        Some("Z0I=,aM4=")
    );
}
