use super::*;

const VIDEO: (u32, u8) = (0x1111, 102);
const AUDIO: (u32, u8) = (0x2222, 111);

fn packet(at: Instant, sequence: u16, timestamp: u32, keyframe_start: bool) -> ReaderPacket {
    ReaderPacket {
        track: 0,
        epoch: 1,
        sequence,
        timestamp,
        marker: true,
        keyframe_start,
        arrival: at,
        payload: Bytes::from_static(b"payload"),
    }
}

/// (track, sequence, timestamp, ssrc, payload type) of a packet sent.
type Sent = (ProgramTrack, u16, u32, u32, u8);

/// The packets sent, and the other outputs.
fn sent(bus: &mut ProgramBus) -> (Vec<Sent>, Vec<Output>) {
    let mut packets = Vec::new();
    let mut other = Vec::new();
    while let Some(out) = bus.poll_output() {
        match out {
            Output::Packet { track, packet, .. } => {
                assert_eq!(packet[0], 0x80);
                assert!(
                    &packet[12..] == b"payload" || packet[12..] == [0xf8, 0xff, 0xfe],
                    "the source's payload, or Opus silence"
                );
                packets.push((
                    track,
                    u16::from_be_bytes([packet[2], packet[3]]),
                    u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
                    u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
                    packet[1] & 0x7f,
                ));
            }
            other_output => other.push(other_output),
        }
    }
    (packets, other)
}

/// Sends one video frame (one packet) of `source` at `at`; its own numbering.
fn frame(bus: &mut ProgramBus, at: Instant, source: &str, n: u32, keyframe: bool) {
    let ts_base = if source == "cam0" {
        1_000
    } else {
        3_000_000_000
    };
    let seq_base: u16 = if source == "cam0" { 100 } else { 60_000 };
    bus.handle_packet(
        at,
        source,
        TrackKind::Video,
        &packet(
            at,
            seq_base.wrapping_add(n as u16),
            ts_base + n * 3000,
            keyframe,
        ),
    );
}

fn bus(t0: Instant) -> ProgramBus {
    ProgramBus::new(t0, SystemTime::UNIX_EPOCH, VIDEO, AUDIO)
}

#[test]
fn the_first_cut_waits_for_a_keyframe_then_flows() {
    let t0 = Instant::now();
    let mut bus = bus(t0);
    bus.cut(t0, "cam0", "operator");
    let (_, other) = sent(&mut bus);
    assert_eq!(other, vec![Output::RequestKeyframeNow("cam0".into())]);
    assert_eq!(bus.wanted_sources(), vec!["cam0".to_owned()]);
    frame(&mut bus, t0 + Duration::from_millis(10), "cam0", 1, false);
    assert!(sent(&mut bus).0.is_empty(), "nothing before the keyframe");
    frame(&mut bus, t0 + Duration::from_millis(40), "cam0", 2, true);
    frame(&mut bus, t0 + Duration::from_millis(73), "cam0", 3, false);
    let (packets, other) = sent(&mut bus);
    assert_eq!(packets.len(), 2);
    assert_eq!(packets[1].1, packets[0].1.wrapping_add(1));
    assert_eq!(packets[1].2 - packets[0].2, 3000, "source spacing kept");
    assert!(packets.iter().all(|p| p.3 == VIDEO.0 && p.4 == VIDEO.1));
    let Output::CutTaken(cut) = &other[0] else {
        panic!("{other:?}")
    };
    assert_eq!(cut.to, "cam0");
    assert_eq!(cut.from, None);
    assert_eq!(cut.latency_ms, Some(40.0));
    assert!(!cut.forced);
    assert_eq!(bus.program(), Some("cam0"));
}

#[test]
fn a_cut_keeps_the_old_source_until_the_new_keyframe_and_stays_continuous() {
    let t0 = Instant::now();
    let mut bus = bus(t0);
    bus.cut(t0, "cam0", "operator");
    frame(&mut bus, t0, "cam0", 0, true);
    for n in 1..10 {
        frame(
            &mut bus,
            t0 + Duration::from_millis(33 * u64::from(n)),
            "cam0",
            n,
            false,
        );
    }
    let (before, _) = sent(&mut bus);
    assert_eq!(before.len(), 10);

    let cut_at = t0 + Duration::from_millis(330);
    bus.cut(cut_at, "cam1", "operator");
    assert_eq!(
        bus.wanted_sources(),
        vec!["cam0".to_owned(), "cam1".to_owned()]
    );
    // cam1's keyframe cache replays a keyframe from before the request: not a cut point.
    let old = ReaderPacket {
        arrival: t0 + Duration::from_millis(100),
        ..packet(t0, 59_997, 3_000_000_000 - 9000, true)
    };
    bus.handle_packet(cut_at, "cam1", TrackKind::Video, &old);
    frame(
        &mut bus,
        cut_at + Duration::from_millis(3),
        "cam0",
        10,
        false,
    );
    frame(
        &mut bus,
        cut_at + Duration::from_millis(27),
        "cam1",
        5,
        false,
    );
    let (during, _) = sent(&mut bus);
    assert_eq!(during.len(), 1, "only cam0 while the cut waits: {during:?}");

    let keyframe_at = cut_at + Duration::from_millis(60);
    frame(&mut bus, keyframe_at, "cam1", 6, true);
    frame(
        &mut bus,
        keyframe_at + Duration::from_millis(1),
        "cam0",
        11,
        false,
    );
    frame(
        &mut bus,
        keyframe_at + Duration::from_millis(33),
        "cam1",
        7,
        false,
    );
    let (after, other) = sent(&mut bus);
    assert_eq!(after.len(), 2, "cam1 only: {after:?}");
    let last_old = during[0];
    assert_eq!(after[0].1, last_old.1.wrapping_add(1), "no sequence gap");
    assert_eq!(after[0].3, VIDEO.0, "same SSRC");
    // 57-60 ms between the last cam0 frame and cam1's keyframe, by their sources' clocks
    // (cam0's frames come every 33 ms for 33.3 ms of media: its clock places frame 10 3 ms
    // before it arrived).
    let gap = after[0].2.wrapping_sub(last_old.2);
    assert!((5000..=5400).contains(&gap), "timestamp step {gap}");
    assert_eq!(after[1].2.wrapping_sub(after[0].2), 3000);
    let Output::CutTaken(cut) = &other[0] else {
        panic!("{other:?}")
    };
    assert_eq!(
        (cut.from.as_deref(), cut.to.as_str()),
        (Some("cam0"), "cam1")
    );
    assert_eq!(cut.latency_ms, Some(60.0));
    assert_eq!(bus.history().count(), 2);
    assert_eq!(bus.wanted_sources(), vec!["cam1".to_owned()]);
}

#[test]
fn audio_follows_video_unless_pinned() {
    let t0 = Instant::now();
    let mut bus = bus(t0);
    bus.cut(t0, "cam0", "operator");
    frame(&mut bus, t0, "cam0", 0, true);
    let audio = |bus: &mut ProgramBus, source: &str, n: u32| {
        let p = packet(t0, n as u16, n * 960, false);
        bus.handle_packet(
            t0 + Duration::from_millis(u64::from(n) * 20),
            source,
            TrackKind::Audio,
            &p,
        );
    };
    audio(&mut bus, "cam0", 1);
    audio(&mut bus, "host", 1);
    let (packets, _) = sent(&mut bus);
    let audio_sent: Vec<_> = packets
        .iter()
        .filter(|p| p.0 == ProgramTrack::Audio)
        .collect();
    assert_eq!(audio_sent.len(), 1);
    assert_eq!((audio_sent[0].3, audio_sent[0].4), AUDIO);

    bus.pin_audio(Some("host".into()));
    assert!(bus.wanted_sources().contains(&"host".to_owned()));
    audio(&mut bus, "cam0", 2);
    audio(&mut bus, "host", 2);
    audio(&mut bus, "host", 3);
    let (packets, _) = sent(&mut bus);
    assert_eq!(
        packets.len(),
        2,
        "only the pinned source's audio: {packets:?}"
    );
    assert_eq!(packets[1].1, packets[0].1.wrapping_add(1));
    assert_eq!(packets[1].2.wrapping_sub(packets[0].2), 960);
}

#[test]
fn a_source_without_keyframes_is_cut_to_after_the_timeout() {
    let t0 = Instant::now();
    let mut bus = bus(t0);
    bus.cut(t0, "cam0", "operator");
    sent(&mut bus);
    bus.handle_timeout(t0 + Duration::from_millis(400));
    assert!(sent(&mut bus).1.is_empty(), "rate of repeats");
    bus.handle_timeout(t0 + Duration::from_millis(600));
    assert_eq!(
        sent(&mut bus).1,
        vec![Output::RequestKeyframe("cam0".into())]
    );
    frame(&mut bus, t0 + CUT_TIMEOUT, "cam0", 1, false);
    let (packets, other) = sent(&mut bus);
    assert_eq!(packets.len(), 1);
    let Output::CutTaken(cut) = &other[0] else {
        panic!("{other:?}")
    };
    assert!(cut.forced);
}

#[test]
fn a_gone_source_leaves_the_program_and_viewer_requests_reach_the_source() {
    let t0 = Instant::now();
    let mut bus = bus(t0);
    bus.cut(t0, "cam0", "operator");
    frame(&mut bus, t0, "cam0", 0, true);
    sent(&mut bus);
    bus.program_keyframe_request();
    assert_eq!(
        sent(&mut bus).1,
        vec![Output::RequestKeyframe("cam0".into())]
    );
    bus.cut(t0, "cam1", "operator");
    bus.source_gone("cam1");
    assert_eq!(bus.pending(), None);
    assert_eq!(
        bus.history().count(),
        1,
        "the cut that never happened is forgotten"
    );
    bus.source_gone("cam0");
    assert_eq!(bus.program(), None);
    assert!(bus.wanted_sources().is_empty());
    // Cutting to what is on air does nothing.
    bus.cut(t0, "cam0", "operator");
    frame(&mut bus, t0 + Duration::from_millis(50), "cam0", 1, true);
    sent(&mut bus);
    bus.cut(t0, "cam0", "operator");
    assert!(sent(&mut bus).1.is_empty());
}

#[test]
fn a_fallback_cut_names_the_source_that_was_lost() {
    let t0 = Instant::now();
    let mut bus = bus(t0);
    bus.cut(t0, "guest1", "operator");
    frame(&mut bus, t0, "guest1", 0, true);
    sent(&mut bus);
    bus.source_gone("guest1");
    bus.fall_back(t0, "cam0", "guest1");
    let last = bus.history().last().expect("the fallback cut").clone();
    assert_eq!(
        (last.from.as_deref(), last.to.as_str(), last.reason),
        (Some("guest1"), "cam0", "fallback")
    );
    assert_eq!(bus.pending(), Some("cam0"));
}

#[test]
fn quiet_program_audio_is_filled_with_silence_and_real_audio_continues_it() {
    let t0 = Instant::now();
    let mut bus = bus(t0);
    bus.handle_timeout(t0);
    assert!(sent(&mut bus).0.is_empty(), "no program, no silence");
    bus.cut(t0, "cam0", "operator");
    frame(&mut bus, t0, "cam0", 0, true);
    sent(&mut bus);
    // cam0 has no audio: 20 ms Opus silence frames keep the audio timeline going.
    for ms in (0..=200).step_by(20) {
        bus.handle_timeout(t0 + Duration::from_millis(ms));
    }
    let (packets, _) = sent(&mut bus);
    let silence: Vec<_> = packets
        .iter()
        .filter(|p| p.0 == ProgramTrack::Audio)
        .collect();
    assert_eq!(silence.len(), 11, "{silence:?}");
    for pair in silence.windows(2) {
        assert_eq!(pair[1].1, pair[0].1.wrapping_add(1));
        assert_eq!(pair[1].2.wrapping_sub(pair[0].2), 960);
    }
    // A guest with audio goes on audio: its packets continue the same numbering.
    bus.pin_audio(Some("guest".into()));
    let p = packet(t0 + Duration::from_millis(210), 7, 123_456, false);
    bus.handle_packet(
        t0 + Duration::from_millis(210),
        "guest",
        TrackKind::Audio,
        &p,
    );
    let (packets, _) = sent(&mut bus);
    assert_eq!(packets.len(), 1);
    let last = silence.last().unwrap();
    assert_eq!(packets[0].1, last.1.wrapping_add(1));
    assert_eq!(
        packets[0].2.wrapping_sub(last.2),
        480,
        "10 ms after the last silence frame"
    );
    // While the guest talks, no silence is added.
    bus.handle_timeout(t0 + Duration::from_millis(250));
    assert!(sent(&mut bus).0.is_empty());
}

#[test]
fn program_video_is_placed_by_its_sources_clocks_and_keeps_one_mapping_across_cuts() {
    // What the program's sender reports say: each packet's content instant. Late packets are
    // placed on their source's timeline, and after a cut the timestamps go on so that
    // timestamp / 90 kHz - content instant stays the same (a player keeps its lip sync).
    let t0 = Instant::now();
    let mut bus = bus(t0);
    bus.cut(t0, "cam0", "operator");
    let mut mapping = Vec::new();
    let mut send = |bus: &mut ProgramBus, source: &str, n: u32, late_ms: u64, key: bool| {
        // 25 fps (3600 ticks), cam1's clock 7 ms behind cam0's.
        let (ts_base, skew) = if source == "cam0" {
            (1_000u32, 0)
        } else {
            (3_000_000_000, 7)
        };
        let arrival = t0 + Duration::from_millis(40 * u64::from(n) + skew + late_ms);
        let p = packet(arrival, n as u16, ts_base.wrapping_add(n * 3600), key);
        bus.handle_packet(arrival, source, TrackKind::Video, &p);
        while let Some(out) = bus.poll_output() {
            if let Output::Packet {
                packet, content_at, ..
            } = out
            {
                let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
                let content_us = content_at.duration_since(t0).as_micros() as i64;
                mapping.push(i64::from(ts) * 100 / 9 - content_us);
            }
        }
    };
    for n in 0..20 {
        send(&mut bus, "cam0", n, if n % 3 == 2 { 25 } else { 0 }, n == 0);
        send(&mut bus, "cam1", n, if n % 4 == 1 { 30 } else { 0 }, false);
    }
    bus.cut(t0 + Duration::from_millis(800), "cam1", "operator");
    for n in 20..40 {
        send(&mut bus, "cam0", n, 0, false);
        send(
            &mut bus,
            "cam1",
            n,
            if n % 4 == 1 { 30 } else { 0 },
            n == 22,
        );
    }
    assert!(mapping.len() > 35, "{} packets sent", mapping.len());
    // One mapping throughout (to the rounding of microseconds), late packets and the cut
    // included.
    let first = mapping[0];
    assert!(
        mapping.iter().all(|m| (m - first).abs() <= 2),
        "timestamp - content (µs): {mapping:?}"
    );
}
