//! The engine answering offers captured from real clients (tests/data/offers/, see its README):
//! every client's WHIP offer publishes and every WHEP offer plays, and each SDP rule of the
//! answerer (RFC 8843 BUNDLE, JSEP) holds on what those clients really send.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rtc_sdp::SessionDescription;
use sfu::engine::{EngineConfig, EngineError};
use sfu::media::{CodecSpec, SourceKind, TrackKind};
use sfu::testing::harness::Harness;

fn offers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/offers")
}

fn offer(name: &str) -> String {
    let path = offers_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every captured offer, by file name.
fn all_offers() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(offers_dir()).expect("tests/data/offers") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "sdp") {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into();
            out.insert(name, std::fs::read_to_string(&path).expect("offer"));
        }
    }
    assert!(out.len() >= 8, "captured offers missing: {:?}", out.keys());
    out
}

fn h264() -> CodecSpec {
    CodecSpec {
        name: "H264".into(),
        clock_rate: 90_000,
        channels: None,
        fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".into(),
    }
}

fn opus() -> CodecSpec {
    CodecSpec {
        name: "opus".into(),
        clock_rate: 48_000,
        channels: Some(2),
        fmtp: "minptime=10;useinbandfec=1".into(),
    }
}

fn vp8() -> CodecSpec {
    CodecSpec {
        name: "VP8".into(),
        clock_rate: 90_000,
        channels: None,
        fmtp: String::new(),
    }
}

/// An engine with `cam` (H.264 video only, as the box's cameras), `guest` (Opus + H.264, as a
/// browser guest), `vp8guest` (Opus + VP8, as Firefox without OpenH264 publishes) and `mic`
/// (Opus only, an audio feed).
fn engine() -> Harness {
    let mut h = Harness::new(EngineConfig::default()).expect("engine");
    let now = h.now;
    for (name, tracks) in [
        ("cam", vec![(TrackKind::Video, h264())]),
        (
            "guest",
            vec![(TrackKind::Audio, opus()), (TrackKind::Video, h264())],
        ),
        (
            "vp8guest",
            vec![(TrackKind::Audio, opus()), (TrackKind::Video, vp8())],
        ),
        ("mic", vec![(TrackKind::Audio, opus())]),
    ] {
        h.engine
            .open_local_source(now, name, SourceKind::Camera, tracks)
            .expect("local source");
    }
    h
}

/// One m-line of an answer: media, port, mid, direction.
#[derive(Debug)]
struct Section {
    media: String,
    port: u16,
    mid: String,
    direction: String,
    candidates: usize,
}

/// The answer's BUNDLE mids and sections; panics (with the answer) if it is not valid SDP.
fn sections(answer: &str) -> (Vec<String>, Vec<Section>) {
    let desc = SessionDescription::unmarshal(&mut std::io::Cursor::new(answer.as_bytes()))
        .unwrap_or_else(|e| panic!("answer does not parse: {e}\n{answer}"));
    let group = desc
        .attributes
        .iter()
        .find(|a| a.key == "group")
        .and_then(|a| a.value.as_deref())
        .and_then(|v| v.strip_prefix("BUNDLE "))
        .map(|v| v.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let sections = desc
        .media_descriptions
        .iter()
        .map(|m| {
            let attr = |k: &str| m.attributes.iter().find(|a| a.key == k);
            Section {
                media: m.media_name.media.clone(),
                port: u16::try_from(m.media_name.port.value).unwrap_or(u16::MAX),
                mid: attr("mid")
                    .and_then(|a| a.value.clone())
                    .unwrap_or_default(),
                direction: ["sendonly", "recvonly", "sendrecv", "inactive"]
                    .into_iter()
                    .find(|d| attr(d).is_some())
                    .unwrap_or("")
                    .to_owned(),
                candidates: m.attributes.iter().filter(|a| a.key == "candidate").count(),
            }
        })
        .collect();
    (group, sections)
}

/// The offer's first BUNDLE mid: the offerer-tagged m-line.
fn offered_tag(offer: &str) -> String {
    offer
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=group:BUNDLE "))
        .and_then(|v| v.split_whitespace().next())
        .expect("offer has a BUNDLE group")
        .to_owned()
}

#[test]
fn gstreamer_max_bundle_audio_first_for_a_video_only_camera_keeps_the_tagged_audio_section() {
    // webrtcbin (max-bundle) offers audio first and video bundle-only with port 0; the camera
    // has no audio. The audio section is the offerer-tagged one: it must stay in the group,
    // inactive, carrying the transport (candidates), or the player never starts ICE.
    let text = offer("gstreamer-whep-audio-video-max-bundle.sdp");
    assert!(text.contains("m=video 0 ") && text.contains("a=bundle-only"));
    let mut h = engine();
    let now = h.now;
    let answer = h.engine.play(now, "cam", &text).expect("play");
    let (group, sections) = sections(&answer.sdp);
    assert_eq!(group, ["audio0", "video1"], "{}", answer.sdp);
    let audio = &sections[0];
    assert_eq!(
        (audio.media.as_str(), audio.port, audio.direction.as_str()),
        ("audio", 9, "inactive"),
        "{audio:?}"
    );
    assert!(
        audio.candidates > 0,
        "the tagged section carries the candidates"
    );
    let video = &sections[1];
    assert_eq!(
        (video.media.as_str(), video.port, video.direction.as_str()),
        ("video", 9, "sendonly")
    );
}

#[test]
fn h264_without_packetization_mode_is_refused_with_the_exact_reason() {
    let text = offer("gstreamer-whep-av-no-packetization-mode.sdp");
    let mut h = engine();
    let now = h.now;
    let err = h.engine.play(now, "cam", &text).expect_err("mode 0 viewer");
    let EngineError::IncompatibleCodec { reason, .. } = &err else {
        panic!("{err:?}");
    };
    let text = err.to_string();
    for needed in [
        "H264/90000 pt 102",
        "packetization-mode=0",
        "no packetization-mode given",
        "offer packetization-mode=1",
        "\"video1\"",
    ] {
        assert!(reason.contains(needed), "{needed:?} not in: {text}");
    }
}

#[test]
fn every_captured_whip_offer_publishes() {
    let mut h = engine();
    for (name, text) in all_offers().iter().filter(|(n, _)| n.contains("-whip-")) {
        let now = h.now;
        let stream = name.trim_end_matches(".sdp");
        let answer = h
            .engine
            .publish(now, stream, text)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (group, sections) = sections(&answer.sdp);
        assert_eq!(group.first(), Some(&offered_tag(text)), "{name}");
        let kinds: Vec<TrackKind> = h
            .engine
            .hub()
            .get(stream)
            .map(|s| s.tracks.iter().map(|t| t.kind).collect())
            .unwrap_or_default();
        assert!(
            kinds.contains(&TrackKind::Audio) && kinds.contains(&TrackKind::Video),
            "{name}: tracks {kinds:?}"
        );
        for s in sections.iter().filter(|s| s.port != 0) {
            assert_eq!(s.direction, "recvonly", "{name}: {s:?}");
        }
    }
}

#[test]
fn every_captured_whep_offer_plays_what_it_can_decode() {
    // Firefox without OpenH264 offers no H.264: it plays the VP8 guest. Everyone else plays
    // the H.264 guest with audio, and the video-only camera.
    for (name, text) in all_offers().iter().filter(|(n, _)| n.contains("-whep-")) {
        if name.contains("no-packetization-mode") {
            continue; // refused on purpose: the test above
        }
        let firefox = name.starts_with("firefox");
        let streams: &[&str] = if firefox {
            &["vp8guest"]
        } else {
            &["guest", "cam"]
        };
        for stream in streams {
            let mut h = engine();
            let now = h.now;
            let answer = h
                .engine
                .play(now, stream, text)
                .unwrap_or_else(|e| panic!("{name} playing {stream}: {e}"));
            let (group, sections) = sections(&answer.sdp);
            assert_eq!(group.first(), Some(&offered_tag(text)), "{name} {stream}");
            // In the offer's order (pion offers video first): compared as a set.
            let mut sending: Vec<&str> = sections
                .iter()
                .filter(|s| s.direction == "sendonly")
                .map(|s| s.media.as_str())
                .collect();
            sending.sort_unstable();
            let want: &[&str] = if *stream == "cam" || name.ends_with("-whep-video.sdp") {
                &["video"]
            } else {
                &["audio", "video"]
            };
            assert_eq!(sending, want, "{name} playing {stream}: {sections:?}");
            for s in &sections {
                assert!(
                    s.port == 0 || group.contains(&s.mid),
                    "{name} {stream}: a section with a port outside the group: {s:?}"
                );
                // A data channel r58 does not serve is rejected, never left half-answered.
                if s.media == "application" {
                    assert_eq!(s.port, 0, "{name} {stream}: {s:?}");
                    assert!(!group.contains(&s.mid), "{name} {stream}: {s:?}");
                }
            }
        }
    }
}

#[test]
fn an_audio_only_stream_plays_to_every_audio_video_offer_with_video_inactive() {
    for (name, text) in all_offers().iter().filter(|(n, _)| n.contains("-whep-")) {
        if !text.contains("m=audio") {
            continue;
        }
        let mut h = engine();
        let now = h.now;
        let answer = h
            .engine
            .play(now, "mic", text)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (group, sections) = sections(&answer.sdp);
        let audio = sections.iter().find(|s| s.media == "audio").expect("audio");
        let video = sections.iter().find(|s| s.media == "video").expect("video");
        assert_eq!(audio.direction, "sendonly", "{name}");
        assert_eq!(
            (video.port, video.direction.as_str()),
            (9, "inactive"),
            "{name}: video stays bundled, inactive"
        );
        assert!(
            group.contains(&video.mid) && group.contains(&audio.mid),
            "{name}"
        );
    }
}

#[test]
fn a_video_only_offer_for_an_audio_only_stream_says_there_is_nothing_to_play() {
    let text = offer("gstreamer-whep-video.sdp");
    let mut h = engine();
    let now = h.now;
    let err = h
        .engine
        .play(now, "mic", &text)
        .expect_err("nothing to play");
    let text = err.to_string();
    assert!(
        text.contains("asks for video and the stream has no (other) video track"),
        "{text}"
    );
}

#[test]
fn firefox_without_h264_cannot_play_an_h264_camera_and_is_told_why() {
    let text = offer("firefox-whep-audio-video.sdp");
    let mut h = engine();
    let now = h.now;
    let err = h
        .engine
        .play(now, "cam", &text)
        .expect_err("no H.264 in Firefox");
    let text = err.to_string();
    assert!(
        matches!(err, EngineError::IncompatibleCodec { .. }),
        "{text}"
    );
    assert!(text.contains("the stream sends H264/90000"), "{text}");
    assert!(text.contains("VP8/90000 pt 120: it is not H264"), "{text}");
}

#[test]
fn a_whip_offer_that_only_receives_is_refused_naming_each_section() {
    let text = offer("chromium-whep-audio-video.sdp");
    let mut h = engine();
    let now = h.now;
    let err = h
        .engine
        .publish(now, "x", &text)
        .expect_err("recvonly WHIP");
    let text = err.to_string();
    assert!(text.contains("a WHIP offer must send"), "{text}");
    assert!(text.contains("\"0\"") && text.contains("\"1\""), "{text}");
}
