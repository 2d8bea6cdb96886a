//! The engine against `rtc` (webrtc-rs) RTCPeerConnection clients, in memory on a virtual clock.
//!
//! A second, independent WebRTC implementation publishes and plays through r58's server peer:
//! ICE (the engine is ICE-lite), DTLS (the engine is the server), SRTP, RTCP feedback.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use sfu::engine::EngineConfig;

const MS: Duration = Duration::from_millis(1);

/// The publisher's frame numbers of the video packets `v` received, deduplicated in order.
fn frames_of(v: &Peer, publisher: &Peer) -> Vec<u32> {
    let mut frames: Vec<u32> = v
        .video()
        .filter_map(|r| publisher.sent.get(&r.payload).map(|&(_, f, _)| f))
        .collect();
    frames.dedup();
    frames
}

#[test]
fn publish_hub_play_delivers_both_tracks_intact() -> TestResult {
    let mut net = Net::new(EngineConfig::default())?;
    let publisher = net.open_connected(Role::Publisher, "cam")?;
    let viewer = net.open_connected(Role::Viewer, "cam")?;
    let mut source = Source::new(net.now, 1);
    source.stream_for(&mut net, publisher, Duration::from_secs(3))?;
    net.run_for(MS, Duration::from_millis(200));

    let p = &net.peers[publisher];
    let v = &net.peers[viewer];
    let video: Vec<&RxPacket> = v.video().collect();
    let audio: Vec<&RxPacket> = v.audio().collect();
    println!(
        "sent video {} audio {}; viewer got video {} audio {}; errors {:?}",
        p.sent_count[&Kind::Video],
        p.sent_count[&Kind::Audio],
        video.len(),
        audio.len(),
        v.errors
    );
    assert_eq!(
        video.len() as u64,
        p.sent_count[&Kind::Video],
        "every video packet"
    );
    assert_eq!(
        audio.len() as u64,
        p.sent_count[&Kind::Audio],
        "every audio packet"
    );

    let seqs: Vec<u16> = video.iter().map(|r| r.sequence).collect();
    assert!(gaps(&seqs).is_empty(), "video gaps {:?}", gaps(&seqs));
    let aseqs: Vec<u16> = audio.iter().map(|r| r.sequence).collect();
    assert!(gaps(&aseqs).is_empty(), "audio gaps {:?}", gaps(&aseqs));

    let vssrc = v
        .answered_ssrc(Kind::Video)
        .ok_or("answer has no video ssrc")?;
    let assrc = v
        .answered_ssrc(Kind::Audio)
        .ok_or("answer has no audio ssrc")?;
    assert!(
        video.iter().all(|r| r.ssrc == vssrc),
        "video ssrc is the answer's"
    );
    assert!(
        audio.iter().all(|r| r.ssrc == assrc),
        "audio ssrc is the answer's"
    );
    assert_ne!(vssrc, p.sender_ssrc(Kind::Video).unwrap_or(0));

    // Payloads are byte-identical to what was sent, in order.
    let mut last = None;
    for r in &video {
        let &(kind, frame, index) = p
            .sent
            .get(&r.payload)
            .ok_or_else(|| format!("payload not sent: {}", describe_h264(&r.payload)))?;
        assert_eq!(kind, Kind::Video);
        if let Some(prev) = last {
            assert!((frame, index) > prev, "in order");
        }
        last = Some((frame, index));
    }
    let distinct: HashSet<_> = audio.iter().map(|r| r.payload.clone()).collect();
    assert_eq!(distinct.len(), audio.len());
    assert!(audio.iter().all(|r| p.sent.contains_key(&r.payload)));

    // Timestamps: the frame spacing survives the rewrite.
    let ts: Vec<u32> = video
        .iter()
        .filter(|r| r.marker)
        .map(|r| r.timestamp)
        .collect();
    assert!(ts.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 3000));
    assert!(
        audio
            .windows(2)
            .all(|w| w[1].timestamp.wrapping_sub(w[0].timestamp) == 960)
    );

    let streams = net.engine.streams();
    println!("streams: {streams:?}");
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].viewers, 1);
    Ok(())
}

#[test]
fn a_viewer_joining_mid_gop_gets_the_cached_keyframe_at_once() -> TestResult {
    let mut net = Net::new(EngineConfig::default())?;
    let publisher = net.open_connected(Role::Publisher, "cam")?;
    let mut source = Source::new(net.now, 1);
    // Frames 0..=44 are sent; the last keyframe was frame 30.
    source.stream_until_frame(&mut net, publisher, 45)?;
    let plis_before = net.peers[publisher].plis().len();

    // The viewer joins while the publisher is between frames: everything it gets on connecting
    // comes from the cache.
    let viewer = net.open_connected(Role::Viewer, "cam")?;
    net.run_for(MS, Duration::from_millis(5));
    let v = &net.peers[viewer];
    let joined = v.connected_at.ok_or("connected")?;
    let p = &net.peers[publisher];
    let first: Vec<String> = v
        .video()
        .take(3)
        .map(|r| describe_h264(&r.payload))
        .collect();
    let cached = frames_of(v, p);
    let latest = v.rx.last().map(|r| r.at.saturating_duration_since(joined));
    println!(
        "joined at {:?}; first packets {first:?}; frames on join {cached:?}; last arrival {latest:?} after connect",
        joined - net.start
    );
    assert_eq!(
        first.first().map(String::as_str),
        Some("STAP-A[7,8]"),
        "SPS+PPS first"
    );
    assert_eq!(
        first.get(1).map(String::as_str),
        Some("FU-A[5,S]"),
        "then the IDR"
    );
    assert_eq!(
        cached,
        (30..45).collect::<Vec<u32>>(),
        "frames 30..44 at once"
    );
    let cached_packets = v.video().count();
    let expected: usize = p
        .sent
        .values()
        .filter(|&&(k, f, _)| k == Kind::Video && (30..45).contains(&f))
        .count();
    assert_eq!(cached_packets, expected, "every packet of the cached GOP");
    assert!(
        v.video().all(|r| r.at <= joined),
        "the cache arrives with the handshake, not later"
    );

    // Live frames follow, contiguous with the cache, before the next keyframe (60) arrives.
    source.stream_until_frame(&mut net, publisher, 50)?;
    net.run_for(MS, Duration::from_millis(5));
    let v = &net.peers[viewer];
    let p = &net.peers[publisher];
    assert_eq!(frames_of(v, p), (30..50).collect::<Vec<u32>>());
    let seqs: Vec<u16> = v.video().map(|r| r.sequence).collect();
    assert!(
        gaps(&seqs).is_empty(),
        "cache then live, contiguous: {:?}",
        gaps(&seqs)
    );
    let plis_after = p.plis().len();
    println!(
        "PLIs at publisher before join {plis_before}, after {plis_after}; engine keyframe requests {}",
        net.engine.stats().keyframe_requests_sent
    );
    assert_eq!(plis_after, plis_before, "no PLI round trip was needed");
    Ok(())
}

#[test]
fn lost_packets_are_nacked_by_rtc_and_retransmitted_from_history() -> TestResult {
    let mut net = Net::new(EngineConfig::default())?;
    let publisher = net.open_connected(Role::Publisher, "cam")?;
    let viewer = net.open_connected(Role::Viewer, "cam")?;
    let vssrc = net.peers[viewer]
        .answered_ssrc(Kind::Video)
        .ok_or("no video ssrc")?;
    // Lose the first transmission of every 7th video packet to the viewer (not among its very
    // first packets: a receiver cannot know about a loss before the first packet it sees).
    let mut fresh = FirstTransmissions::default();
    net.drop_filter = Some(Box::new(move |to, data| {
        let Some((pt, seq, ssrc)) = srtp_header(data) else {
            return false;
        };
        if to != viewer || pt != H264_PT || ssrc != vssrc {
            return false;
        }
        // Every 7th, plus a burst of four in a row (NACK bitmask); retransmissions pass.
        fresh
            .number(seq)
            .is_some_and(|n| n > 5 && (n % 7 == 3 || (60..64).contains(&n)))
    }));
    let mut source = Source::new(net.now, 1);
    source.stream_for(&mut net, publisher, Duration::from_secs(4))?;
    // Stop losing, keep streaming: a loss is only detected when a later packet arrives.
    net.drop_filter = None;
    source.stream_for(&mut net, publisher, Duration::from_millis(500))?;
    net.run_for(MS, Duration::from_millis(300));

    let p = &net.peers[publisher];
    let v = &net.peers[viewer];
    let got: HashSet<_> = v.video().map(|r| r.payload.clone()).collect();
    let sent: HashSet<_> = p
        .sent
        .iter()
        .filter(|(_, (k, _, _))| *k == Kind::Video)
        .map(|(b, _)| b.clone())
        .collect();
    let rtx_negotiated = v.answer.sdp.contains("rtx/90000");
    let stats = net.engine.streams();
    let video = &stats[0].tracks[0];
    println!(
        "dropped {} datagrams; sent {} video packets, viewer has {} distinct ({} received incl. duplicates); \
         engine nacks {} retransmits {}; RTX negotiated: {rtx_negotiated}",
        net.dropped,
        sent.len(),
        got.len(),
        v.video().count(),
        video.stats.nacks,
        video.stats.retransmits,
    );
    assert!(net.dropped > 10, "the test lost packets");
    assert!(video.stats.nacks > 0, "the engine saw NACKs from rtc");
    assert!(video.stats.retransmits > 0, "the engine retransmitted");
    let missing = sent.difference(&got).count();
    assert_eq!(
        missing, 0,
        "viewer ends up with every packet ({missing} missing)"
    );
    let mut seqs: Vec<u16> = v.video().map(|r| r.sequence).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert!(gaps(&seqs).is_empty(), "sequence space complete");
    if !rtx_negotiated {
        // The viewer offered RTX (apt=102); without it in the answer, repairs must come on the
        // primary SSRC, which is how every payload above arrived.
        assert!(v.video().all(|r| r.ssrc == vssrc));
    }
    Ok(())
}

#[test]
fn takeover_keeps_the_viewer_session_ssrc_and_sequence() -> TestResult {
    let mut net = Net::new(EngineConfig::default())?;
    let a = net.open_connected(Role::Publisher, "cam")?;
    let viewer = net.open_connected(Role::Viewer, "cam")?;
    let mut source_a = Source::new(net.now, 0xa);
    source_a.stream_until_frame(&mut net, a, 40)?;
    let before = net.peers[viewer].video().count();

    // B numbers H.264 differently (another browser); the viewer keeps its own payload type.
    let b = net.open_with(Role::Publisher, "cam", 125)?;
    net.connect(b)?;
    net.run_for(MS, Duration::from_millis(50));
    let a_session = net.peers[a].answer.session;
    assert!(
        net.engine.session_summary(a_session).is_none(),
        "A's session is closed by the server"
    );
    println!(
        "A after takeover: DTLS alerts received {}, rtc state {:?}",
        net.peers[a].dtls_alerts_in, net.peers[a].state,
    );
    assert!(
        net.peers[a].dtls_alerts_in > 0,
        "A is told (DTLS close_notify)"
    );
    // B starts mid-GOP: the viewer must wait for B's keyframe (its frame 30).
    let mut source_b = Source::new(net.now, 0xb);
    source_b.frame = 7;
    source_b.video_seq = 50_000;
    source_b.video_ts = 123_456;
    source_b.audio_seq = 60_000;
    source_b.stream_until_frame(&mut net, b, 70)?;
    net.run_for(MS, Duration::from_millis(50));

    let v = &net.peers[viewer];
    let pa = &net.peers[a];
    let pb = &net.peers[b];
    let session = v.answer.session;
    assert!(
        net.engine.session_summary(session).is_some(),
        "V keeps its session"
    );
    assert!(v.connected(), "V still connected ({:?})", v.state);
    let video: Vec<&RxPacket> = v.video().collect();
    let from_a = video
        .iter()
        .filter(|r| pa.sent.contains_key(&r.payload))
        .count();
    let b_frames: Vec<u32> = video
        .iter()
        .filter_map(|r| pb.sent.get(&r.payload).map(|&(_, f, _)| f))
        .collect();
    println!(
        "viewer video: {} before takeover, {from_a} from A, {} from B (first B frame {:?}, first B packet {:?})",
        before,
        b_frames.len(),
        b_frames.first(),
        video
            .iter()
            .find(|r| pb.sent.contains_key(&r.payload))
            .map(|r| describe_h264(&r.payload))
    );
    assert_eq!(
        from_a + b_frames.len(),
        video.len(),
        "only A's and B's packets"
    );
    assert_eq!(b_frames.first(), Some(&30), "B joins at its first keyframe");
    let b_expected = pb
        .sent
        .values()
        .filter(|&&(k, f, _)| k == Kind::Video && f >= 30)
        .count();
    assert_eq!(
        b_frames.len(),
        b_expected,
        "every B packet from its keyframe on"
    );
    let ssrcs: HashSet<u32> = video.iter().map(|r| r.ssrc).collect();
    assert_eq!(ssrcs.len(), 1, "one video SSRC for the whole session");
    assert!(
        video.iter().all(|r| r.payload_type == H264_PT),
        "the viewer's negotiated payload type throughout"
    );
    let seqs: Vec<u16> = video.iter().map(|r| r.sequence).collect();
    assert!(gaps(&seqs).is_empty(), "no gap or reset: {:?}", gaps(&seqs));
    let audio: Vec<&RxPacket> = v.audio().collect();
    let aseqs: Vec<u16> = audio.iter().map(|r| r.sequence).collect();
    assert!(
        gaps(&aseqs).is_empty(),
        "audio continuous: {:?}",
        gaps(&aseqs)
    );
    assert!(
        audio.iter().any(|r| pb.sent.contains_key(&r.payload)),
        "B's audio arrives"
    );
    // Timestamps move forward across the switch (no jump back).
    let switch = video
        .iter()
        .position(|r| pb.sent.contains_key(&r.payload))
        .ok_or("no B packet")?;
    let step = video[switch]
        .timestamp
        .wrapping_sub(video[switch - 1].timestamp);
    let gap = video[switch].at - video[switch - 1].at;
    let expected = gap.as_secs_f64() * 90_000.0;
    println!(
        "timestamp step across the switch: {step} ticks for {gap:?} between the packets ({expected:.0} expected)"
    );
    assert!(
        (f64::from(step) - expected).abs() < 3_100.0,
        "timestamps continue forward by the time that passed"
    );
    Ok(())
}

#[test]
fn keyframe_requests_reach_the_publisher_at_most_once_per_500ms() -> TestResult {
    let mut net = Net::new(EngineConfig::default())?;
    let publisher = net.open_connected(Role::Publisher, "cam")?;
    let mut source = Source::new(net.now, 1);
    source.stream_for(&mut net, publisher, Duration::from_millis(500))?;
    let viewers: Vec<usize> = (0..4)
        .map(|_| net.open_connected(Role::Viewer, "cam"))
        .collect::<TestResult<_>>()?;
    source.stream_for(&mut net, publisher, Duration::from_secs(1))?;
    let start = net.now;
    let window = Duration::from_secs(5);
    let mut sent_plis = 0;
    while net.now < start + window {
        // Every viewer asks every 20 ms.
        if (net.now - start).as_millis() % 20 == 0 {
            let now = net.now;
            for &v in &viewers {
                net.peers[v].send_pli(now)?;
                sent_plis += 1;
            }
        }
        source.tick(&mut net, publisher)?;
        net.step(MS);
    }
    let plis: Vec<_> = net.peers[publisher]
        .plis()
        .into_iter()
        .filter(|&t| t >= start)
        .collect();
    let intervals: Vec<u128> = plis.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
    println!(
        "viewers sent {sent_plis} PLIs in {window:?}; publisher got {} (intervals ms {intervals:?}); stream keyframe_requests {}",
        plis.len(),
        net.engine.streams()[0].keyframe_requests
    );
    assert!(!plis.is_empty(), "PLIs are forwarded");
    assert!(plis.len() <= 11, "at most one per 500 ms: {}", plis.len());
    assert!(
        plis.len() >= 5,
        "but requests are not swallowed: {}",
        plis.len()
    );
    assert!(
        intervals.iter().all(|&ms| ms >= 450),
        "spacing {intervals:?}"
    );

    // After a quiet second, one viewer's single PLI goes upstream at once.
    source.stream_for(&mut net, publisher, Duration::from_secs(1))?;
    let before = net.peers[publisher].plis().len();
    let asked = net.now;
    let now = net.now;
    net.peers[viewers[0]].send_pli(now)?;
    source.stream_for(&mut net, publisher, Duration::from_millis(100))?;
    let late: Vec<_> = net.peers[publisher].plis()[before..]
        .iter()
        .map(|&t| t - asked)
        .collect();
    println!("single PLI after a quiet second reached the publisher after {late:?}");
    assert_eq!(late.len(), 1, "exactly one PLI forwarded");
    assert!(late[0] <= Duration::from_millis(25), "forwarded promptly");
    Ok(())
}

#[test]
fn a_silent_viewer_loses_consent_after_about_30s() -> TestResult {
    let mut net = Net::new(EngineConfig::default())?;
    let publisher = net.open_connected(Role::Publisher, "cam")?;
    let stays = net.open_connected(Role::Viewer, "cam")?;
    let goes = net.open_connected(Role::Viewer, "cam")?;
    let mut source = Source::new(net.now, 1);
    source.stream_for(&mut net, publisher, Duration::from_secs(1))?;
    assert_eq!(net.engine.session_count(), 3);
    assert_eq!(net.engine.streams()[0].viewers, 2);

    net.peers[goes].online = false;
    let gone_at = net.now;
    let mut dropped_after = None;
    while net.now < gone_at + Duration::from_secs(40) {
        source.tick(&mut net, publisher)?;
        net.step(Duration::from_millis(2));
        if dropped_after.is_none() && net.engine.session_count() == 2 {
            dropped_after = Some(net.now - gone_at);
        }
    }
    let streams = net.engine.streams();
    println!(
        "silent viewer dropped after {dropped_after:?}; sessions {}; viewers {}; staying viewer state {:?} errors {:?}",
        net.engine.session_count(),
        streams[0].viewers,
        net.peers[stays].state,
        net.peers[stays].errors
    );
    let after = dropped_after.ok_or("the silent viewer was never dropped")?;
    assert!(
        after >= Duration::from_secs(25) && after <= Duration::from_secs(32),
        "consent lapses after ~30 s, took {after:?}"
    );
    assert_eq!(streams[0].viewers, 1);
    assert!(!net.has_session(goes));
    assert!(
        net.has_session(stays),
        "the viewer that keeps sending checks keeps its session"
    );
    let recent = net.peers[stays]
        .rx
        .iter()
        .filter(|r| r.at > net.now - Duration::from_secs(1))
        .count();
    assert!(recent > 0, "and keeps receiving media");
    Ok(())
}

#[test]
fn a_publisher_that_stops_sending_media_ends_its_viewers() -> TestResult {
    let mut net = Net::new(EngineConfig::default())?;
    let publisher = net.open_connected(Role::Publisher, "cam")?;
    let viewer = net.open_connected(Role::Viewer, "cam")?;
    let mut source = Source::new(net.now, 1);
    source.stream_for(&mut net, publisher, Duration::from_secs(1))?;
    assert_eq!(net.engine.session_count(), 2);
    // The publisher stays on the network (ICE consent continues) but sends no more media.
    let stopped = net.now;
    let mut publisher_gone = None;
    let mut viewer_gone = None;
    let mut viewer_told = None;
    let mut viewer_left = None;
    while net.now < stopped + Duration::from_secs(10) {
        net.step(Duration::from_millis(2));
        let t = net.now - stopped;
        if publisher_gone.is_none() && !net.has_session(publisher) {
            publisher_gone = Some(t);
        }
        if viewer_gone.is_none() && !net.has_session(viewer) {
            viewer_gone = Some(t);
        }
        let v = &net.peers[viewer];
        if viewer_told.is_none() && !v.byes().is_empty() && v.dtls_alerts_in > 0 {
            viewer_told = Some(t);
        }
        if viewer_left.is_none() && !v.connected() {
            viewer_left = Some(t);
        }
    }
    println!(
        "publisher removed after {publisher_gone:?}, viewer session ended after {viewer_gone:?}, \
         viewer got RTCP BYE + DTLS close_notify after {viewer_told:?}; its rtc state left \
         Connected after {viewer_left:?} (now {:?}: rtc keeps a peer-closed DTLS \"connected\" \
         per W3C and only notices through ICE consent); streams {}",
        net.peers[viewer].state,
        net.engine.streams().len()
    );
    let gone = publisher_gone.ok_or("publisher never timed out")?;
    assert!(
        gone >= Duration::from_millis(2900) && gone <= Duration::from_secs(4),
        "publisher timeout ~3 s, took {gone:?}"
    );
    let ended = viewer_gone.ok_or("viewer session never ended")?;
    assert!(ended <= Duration::from_secs(5), "viewer ended within 5 s");
    assert_eq!(net.engine.session_count(), 0);
    assert!(net.engine.streams().is_empty(), "stream removed");
    let told = viewer_told.ok_or("the rtc viewer never got RTCP BYE and DTLS close_notify")?;
    assert!(
        told <= Duration::from_secs(5),
        "viewer told within 5 s: {told:?}"
    );
    Ok(())
}

#[test]
fn close_all_tells_every_peer_at_once() -> TestResult {
    // What a stopping server does (r58's graceful stop on SIGTERM).
    let mut net = Net::new(EngineConfig::default())?;
    let publisher = net.open_connected(Role::Publisher, "cam")?;
    let viewer = net.open_connected(Role::Viewer, "cam")?;
    let mut source = Source::new(net.now, 1);
    source.stream_for(&mut net, publisher, Duration::from_millis(500))?;
    let now = net.now;
    assert_eq!(net.engine.close_all(now), 2, "both sessions closed");
    assert_eq!(net.engine.session_count(), 0);
    net.run_for(MS, Duration::from_millis(20));
    for peer in [publisher, viewer] {
        let p = &net.peers[peer];
        assert!(p.dtls_alerts_in > 0, "{} got a DTLS close_notify", p.label);
    }
    assert!(
        !net.peers[viewer].byes().is_empty(),
        "the viewer got an RTCP BYE for its tracks"
    );
    Ok(())
}

#[test]
fn viewers_get_sender_reports_in_their_own_numbering() -> TestResult {
    let mut net = Net::new(EngineConfig::default())?;
    let publisher = net.open_connected(Role::Publisher, "cam")?;
    let viewer = net.open_connected(Role::Viewer, "cam")?;
    let mut source = Source::new(net.now, 1);
    source.stream_for(&mut net, publisher, Duration::from_secs(5))?;
    let v = &net.peers[viewer];
    let mut checked = 0;
    for kind in [Kind::Video, Kind::Audio] {
        let ssrc = v.answered_ssrc(kind).ok_or("ssrc")?;
        let clock = match kind {
            Kind::Video => 90_000.0,
            Kind::Audio => 48_000.0,
        };
        for r in &v.rtcp {
            let Some((sr_ssrc, _ntp, rtp_time, packets, _octets)) = r.sr else {
                continue;
            };
            if sr_ssrc != ssrc {
                continue;
            }
            // Everything sent to this viewer before the report arrived before it.
            let before: Vec<&RxPacket> = v.rx[..r.after_rx]
                .iter()
                .filter(|p| p.kind == kind)
                .collect();
            let last = before.last().ok_or("SR before any media")?;
            // The report's RTP time is the viewer's timestamp line extrapolated to `r.at`.
            let expected = f64::from(last.timestamp) + (r.at - last.at).as_secs_f64() * clock;
            let error = f64::from(rtp_time) - expected;
            println!(
                "{kind:?} SR at {:?}: packet_count {packets} (viewer has {}), rtp_time off by {error:.0} ticks",
                r.at - net.start,
                before.len()
            );
            assert_eq!(
                packets as usize,
                before.len(),
                "SR packet count is this viewer's"
            );
            // One video frame (or audio packet) of slack: the synthetic clock is 30 fps at 3000
            // ticks, and the mapping interpolates.
            let slack = match kind {
                Kind::Video => 3_100.0,
                Kind::Audio => 1_000.0,
            };
            assert!(
                error.abs() < slack,
                "SR rtp_time maps to the viewer's timestamps"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "the viewer got sender reports for both tracks ({checked})"
    );
    Ok(())
}

#[test]
fn a_vanished_publisher_ends_its_viewers_within_5s() -> TestResult {
    let mut net = Net::new(EngineConfig::default())?;
    let publisher = net.open_connected(Role::Publisher, "cam")?;
    let viewers: Vec<usize> = (0..2)
        .map(|_| net.open_connected(Role::Viewer, "cam"))
        .collect::<TestResult<_>>()?;
    let mut source = Source::new(net.now, 1);
    source.stream_for(&mut net, publisher, Duration::from_secs(1))?;
    net.peers[publisher].online = false;
    let gone = net.now;
    let told = net.run_until(Duration::from_millis(2), Duration::from_secs(10), |n| {
        viewers
            .iter()
            .all(|&v| !n.peers[v].byes().is_empty() && n.peers[v].dtls_alerts_in > 0)
    });
    let took = net.now - gone;
    println!(
        "publisher vanished; viewers got BYE + close_notify after {took:?}; sessions {}",
        net.engine.session_count()
    );
    assert!(told, "viewers were told");
    assert!(took <= Duration::from_secs(5), "within 5 s: {took:?}");
    assert_eq!(net.engine.session_count(), 0);
    assert!(net.engine.streams().is_empty());
    // The ended sessions' consent checks are refused (STUN error), not silently ignored.
    let stun_errors_before = net.engine.stats().stun_rejected;
    net.run_for(Duration::from_millis(5), Duration::from_secs(3));
    println!(
        "STUN checks from ended viewers rejected: {}",
        net.engine.stats().stun_rejected - stun_errors_before
    );
    Ok(())
}

#[test]
fn a_local_source_reports_its_content_clock_so_late_audio_plays_with_its_video() -> TestResult {
    // The switcher's program: video passed through as it arrives, audio mixed and ingested
    // 40 ms after the voices in it arrived. Its sender reports must map both tracks to the
    // content's instants, so a browser lines them up.
    use sfu::media::{CodecSpec, SourceKind, TrackKind};
    let mut net = Net::new(EngineConfig::default())?;
    let h264 = CodecSpec {
        name: "H264".into(),
        clock_rate: 90_000,
        channels: None,
        fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".into(),
    };
    let opus = CodecSpec {
        name: "opus".into(),
        clock_rate: 48_000,
        channels: Some(2),
        fmtp: "minptime=10;useinbandfec=1".into(),
    };
    let now = net.now;
    let source = net.engine.open_local_source(
        now,
        "pgm",
        SourceKind::Program,
        vec![(TrackKind::Video, h264), (TrackKind::Audio, opus)],
    )?;
    let viewer = net.open_connected(Role::Viewer, "pgm")?;
    let rtp = |pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]| {
        let mut p = vec![0x80, 0x80 | pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        bytes::Bytes::from(p)
    };
    let late = Duration::from_millis(40);
    for k in 0..150u32 {
        let now = net.now;
        // Video frame k belongs to now; audio frame k belongs to 40 ms ago.
        let keyframe: &[u8] = if k % 30 == 0 {
            &[0x65, 0x88]
        } else {
            &[0x41, 0x9a]
        };
        net.engine.ingest_local_at(
            now,
            source,
            0,
            rtp(96, k as u16, k * 1800, 1, keyframe),
            now,
        )?;
        net.engine.ingest_local_at(
            now,
            source,
            1,
            rtp(111, k as u16, k * 960, 2, &[0xf8, 0xff, 0xfe]),
            now - late,
        )?;
        net.run_for(MS, Duration::from_millis(20));
    }
    // Each track's report: the wall time (NTP, seconds) of RTP timestamp 0 of the viewer's
    // numbering, the mapping a browser syncs with.
    let v = &net.peers[viewer];
    let zero = |kind: Kind, clock: f64| -> Option<f64> {
        let ssrc = v.answered_ssrc(kind)?;
        let first = v.rx.iter().find(|p| p.kind == kind)?.timestamp;
        v.rtcp.iter().rev().find_map(|r| {
            let (sr_ssrc, ntp, rtp_time, _, _) = r.sr?;
            (sr_ssrc == ssrc).then(|| {
                let ntp_s = (ntp >> 32) as f64 + (ntp & 0xffff_ffff) as f64 / 4_294_967_296.0;
                ntp_s - f64::from(rtp_time.wrapping_sub(first)) / clock
            })
        })
    };
    let video = zero(Kind::Video, 90_000.0).ok_or("no video sender report")?;
    let audio = zero(Kind::Audio, 48_000.0).ok_or("no audio sender report")?;
    // Frame 0 of both: audio's belongs to 40 ms before video's.
    let offset_ms = (audio - video) * 1000.0;
    println!("audio frame 0 maps {offset_ms:.1} ms from video frame 0 (content: -40 ms)");
    assert!(
        (offset_ms + 40.0).abs() < 2.0,
        "sender reports follow the content clock: {offset_ms:.1} ms"
    );
    Ok(())
}
