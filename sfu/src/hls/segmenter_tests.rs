use super::*;
use crate::media::h264::AccessUnit;
use std::time::UNIX_EPOCH;

fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
    0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
];
const SPS_HIGH: &[u8] = &[
    0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0x9e, 0xa2, 0x30, 0x11, 0x00, 0x00, 0x03, 0x00,
    0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x14, 0x29, 0x96,
];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

fn unit(i: u32, keyframe: bool, sps: &'static [u8]) -> AccessUnit {
    let mut nals = Vec::new();
    if keyframe {
        nals.push(Bytes::from_static(sps));
        nals.push(Bytes::from_static(PPS));
        nals.push(Bytes::from(vec![0x65, 0x88, i as u8]));
    } else {
        nals.push(Bytes::from(vec![0x41, 0x9a, i as u8]));
    }
    AccessUnit {
        timestamp: i * 3000,
        nals,
        keyframe,
    }
}

/// 30 fps video, a keyframe every `gop` frames, starting at input time `origin`.
fn feed(s: &mut Segmenter, frames: std::ops::Range<u32>, gop: u32, origin: u64) {
    for i in frames {
        let u = unit(i, i % gop == 0, SPS);
        s.push_video(origin + u64::from(i) * 3000, wall(), &u)
            .unwrap();
    }
}

#[test]
fn parts_and_segments_follow_the_targets() {
    let mut s = Segmenter::new(HlsConfig::default(), true, None).unwrap();
    // Frames before the first keyframe are dropped.
    s.push_video(0, wall(), &unit(1, false, SPS)).unwrap();
    assert_eq!(s.dropped_frames, 1);
    feed(&mut s, 0..91, 30, 1_000_000);
    let segments: Vec<_> = s.segments().collect();
    assert_eq!(segments.len(), 3, "cut at frames 30, 60 and 90");
    for seg in &segments {
        assert!((seg.duration - 1.0).abs() < 1e-9, "{}", seg.duration);
        assert_eq!(seg.parts.len(), 5);
        let sum: f64 = seg.parts.iter().map(|p| p.duration).sum();
        assert!((sum - seg.duration).abs() < 1e-9);
        assert!(seg.parts[0].independent);
        assert!(seg.parts[1..].iter().all(|p| !p.independent));
        let whole: Vec<u8> = seg.parts.iter().flat_map(|p| p.data.to_vec()).collect();
        assert_eq!(seg.data.as_deref(), Some(&whole[..]));
    }
    assert_eq!(segments[0].program_date_time, Some(wall()));
    assert_eq!(
        segments[1].program_date_time,
        Some(wall() + Duration::from_secs(1))
    );
    // Frame 90 (a keyframe) opened segment 3 and waits for its duration.
    let open = s.open_segment().unwrap();
    assert_eq!((open.msn, open.parts.len()), (3, 0));
    assert_eq!(s.progress().open_msn, 3);
    assert_eq!(s.part(3, 0), Lookup::Pending);
    assert_eq!(s.part(3, 1), Lookup::NotFound);
    assert!(matches!(s.part(1, 4), Lookup::Found(_)));
    assert!(matches!(s.segment(0), Lookup::Found(_)));
    assert_eq!(s.segment(3), Lookup::NotFound);
    assert_eq!(s.codecs().unwrap(), ["avc1.42c00d"]);
    assert_eq!(s.resolution(), Some((320, 240)));
    assert!(s.init(0).is_some());
}

#[test]
fn segments_stretch_to_the_next_keyframe_and_old_ones_are_dropped() {
    let mut s = Segmenter::new(HlsConfig::default(), true, None).unwrap();
    feed(&mut s, 0..34, 45, 0);
    assert!(!s.wants_keyframe(), "1.1 s: within the grace");
    feed(&mut s, 34..45, 45, 0);
    assert_eq!(s.segments().count(), 0);
    assert!(s.wants_keyframe());
    feed(&mut s, 45..(45 * 10 + 1), 45, 0);
    let segments: Vec<_> = s.segments().collect();
    assert_eq!(segments.len(), 7, "only 7 kept");
    assert_eq!(segments[0].msn, 3);
    assert!((segments[0].duration - 1.5).abs() < 1e-9);
    assert_eq!(s.target_duration(), 2);
    assert_eq!(segments[0].parts.len(), 8, "7 x 0.2 s + 0.1 s");
}

#[test]
fn a_source_without_keyframes_is_cut_at_max_segment_and_the_cut_is_recorded() {
    let mut s = Segmenter::new(HlsConfig::default(), true, None).unwrap();
    // One keyframe, then 21 s of P-frames: cuts at 10 s and 20 s, both forced.
    feed(&mut s, 0..(30 * 21), 30 * 100, 0);
    let segments: Vec<_> = s.segments().collect();
    assert_eq!(segments.len(), 2);
    assert!(!segments[0].forced_start && segments[0].parts[0].independent);
    assert!((segments[0].duration - 10.0).abs() < 1e-9);
    assert!(segments[1].forced_start && !segments[1].parts[0].independent);
    let open = s.open_segment().unwrap();
    assert!(open.forced_start);
    // The next keyframe opens a regular segment again.
    feed(&mut s, (30 * 100)..(30 * 100 + 2), 30 * 100, 0);
    assert!(!s.open_segment().unwrap().forced_start);
}

#[test]
fn discontinuity_and_new_sps() {
    let mut s = Segmenter::new(HlsConfig::default(), true, None).unwrap();
    feed(&mut s, 0..40, 30, 5_000);
    s.discontinuity().unwrap();
    // The source restarts with a new timeline far away.
    feed(&mut s, 0..31, 30, 77_000_000);
    let segments: Vec<_> = s.segments().collect();
    assert_eq!(segments.len(), 3);
    assert!(!segments[1].discontinuity);
    assert!(segments[2].discontinuity);
    assert!((segments[1].duration - 10.0 / 30.0).abs() < 1e-9);
    // The timeline continues: segment 2 starts where segment 1 ended.
    assert_eq!(segments[2].init_id, 0);
    // A keyframe with another SPS: new init, discontinuity.
    s.push_video(77_000_000 + 31 * 3000, wall(), &unit(31, true, SPS_HIGH))
        .unwrap();
    feed(&mut s, 32..40, 30, 77_000_000);
    s.finish().unwrap();
    let last = s.segments().last().unwrap();
    assert!(last.discontinuity);
    assert_eq!(last.init_id, 1);
    assert_eq!(s.resolution(), Some((318, 178)));
    assert!(s.init(1).is_some() && s.init(0).is_some());
    assert!(s.ended());
}

#[test]
fn backwards_time_is_an_error_not_a_panic() {
    let mut s = Segmenter::new(HlsConfig::default(), true, None).unwrap();
    feed(&mut s, 0..5, 30, 90_000);
    assert!(s.push_video(90_000, wall(), &unit(5, false, SPS)).is_err());
    assert!(s.push_video(0, wall(), &unit(5, false, SPS)).is_err());
    feed(&mut s, 5..10, 30, 90_000);
}

#[test]
fn audio_only_and_audio_with_video() {
    let opus = [0xfc, 1, 2, 3]; // 20 ms
    let mut s = Segmenter::new(HlsConfig::default(), false, Some(OpusParams::default())).unwrap();
    for i in 0..101u64 {
        s.push_audio(i * 960, wall(), &opus).unwrap();
    }
    let segs: Vec<_> = s.segments().collect();
    assert_eq!(segs.len(), 2);
    assert!((segs[0].duration - 1.0).abs() < 1e-9);
    assert_eq!(segs[0].parts.len(), 5);
    assert!(s.push_audio(0, wall(), &[]).is_err());
    assert_eq!(s.codecs().unwrap(), ["opus"]);
    assert!(s.init(0).is_some());

    let mut s = Segmenter::new(HlsConfig::default(), true, Some(OpusParams::default())).unwrap();
    // Audio before the first keyframe is dropped; then interleaved.
    s.push_audio(0, wall(), &opus).unwrap();
    for i in 0..61u64 {
        let u = unit(i as u32, i % 30 == 0, SPS);
        s.push_video(i * 3000, wall(), &u).unwrap();
        // Audio on the same timeline: 48 kHz ticks.
        s.push_audio(i * 1600, wall(), &opus).unwrap();
    }
    assert_eq!(s.segments().count(), 2);
    assert_eq!(s.codecs().unwrap(), ["avc1.42c00d", "opus"]);
}

#[test]
fn blocking_requests_are_answered_when_the_part_appears_never_before() {
    use crate::hls::blocking::Ready;
    let mut s = Segmenter::new(HlsConfig::default(), true, None).unwrap();
    let mut hint = (s.progress().open_msn, s.progress().open_parts);
    let mut published = 0;
    for i in 0..200u32 {
        let before = s.progress();
        assert_ne!(before.ready(hint.0, Some(hint.1)), Ready::Ready, "early");
        let u = unit(i, i % 45 == 0, SPS);
        s.push_video(u64::from(i) * 3000, wall(), &u).unwrap();
        let after = s.progress();
        if (after.open_msn, after.open_parts) != hint {
            // The hinted part was published now, or its segment ended before it.
            assert_eq!(after.ready(hint.0, Some(hint.1)), Ready::Ready);
            match s.part(hint.0, hint.1) {
                Lookup::Found(_) => published += 1,
                other => assert_eq!(other, Lookup::NotFound),
            }
            hint = (after.open_msn, after.open_parts);
            assert_eq!(s.part(hint.0, hint.1), Lookup::Pending);
        }
    }
    assert!(published > 30, "{published}");
}
