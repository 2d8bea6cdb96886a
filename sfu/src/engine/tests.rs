//! The engine against r58's own client on the in-memory harness (virtual clock).

use std::time::Duration;

use crate::engine::{EngineConfig, TransmitQueue};
use crate::testing::client::{ClientRole, H264_PT};
use crate::testing::harness::{H264Source, Harness};

pub(super) const FRAME: Duration = Duration::from_millis(33);

pub(super) fn send_frame(h: &mut Harness, publisher: usize, source: &mut H264Source) -> usize {
    let packets = source.next_frame();
    let count = packets.len();
    for p in packets {
        h.clients[publisher]
            .client
            .send_rtp(&p)
            .expect("publisher connected");
    }
    h.advance(FRAME);
    count
}

/// The publisher's next frame, handed to the engine as it arrives and not pumped: it waits in
/// the engine to be fanned out. Returns the frame's packets.
fn hand_frame_to_engine(
    h: &mut Harness,
    publisher: usize,
    source: &mut H264Source,
) -> Vec<Vec<u8>> {
    hand_frame_that_waited(h, publisher, source, Duration::ZERO)
}

/// [`hand_frame_to_engine`], read as if the kernel had received the frame `waited` ago (the
/// server fell behind).
fn hand_frame_that_waited(
    h: &mut Harness,
    publisher: usize,
    source: &mut H264Source,
    waited: Duration,
) -> Vec<Vec<u8>> {
    let frame = source.next_frame();
    for p in &frame {
        h.clients[publisher].client.send_rtp(p).expect("send");
    }
    let from = h.clients[publisher].addr;
    let now = h.now;
    while let Some((_, d)) = h.clients[publisher].client.poll_transmit() {
        h.engine.handle_received(now, now - waited, from, &d);
    }
    frame
}

/// Sends 90 frames; a viewer joins at frame 45. The packets of each frame, and the joiner.
fn ninety_frames_with_a_late_joiner(
    h: &mut Harness,
    publisher: usize,
    source: &mut H264Source,
) -> (Vec<u64>, usize) {
    let mut per_frame = Vec::new();
    let mut late = None;
    for frame in 0..90 {
        if frame == 45 {
            late = Some(h.open(ClientRole::Play, "cam").expect("late play"));
            assert!(h.connect_all(), "late viewer connects");
        }
        per_frame.push(send_frame(h, publisher, source) as u64);
    }
    (per_frame, late.expect("frame 45 came"))
}

fn setup() -> (Harness, usize, H264Source) {
    let mut h = Harness::new(EngineConfig::default()).expect("engine");
    let publisher = h.open(ClientRole::Publish, "cam").expect("publish");
    assert!(h.connect_all(), "publisher connects");
    let ssrc = h.clients[publisher].client.ssrcs.0;
    (h, publisher, H264Source::new(ssrc, H264_PT))
}

#[test]
fn viewers_joining_at_different_times_get_every_packet_from_a_keyframe_on() {
    let (mut h, publisher, mut source) = setup();
    let early = h.open(ClientRole::Play, "cam").expect("play");
    assert!(h.connect_all());
    let (per_frame, late) = ninety_frames_with_a_late_joiner(&mut h, publisher, &mut source);
    let early_rx = &h.clients[early].received;
    assert_eq!(early_rx.rtp_packets, per_frame.iter().sum::<u64>());
    assert_eq!(early_rx.sequence_gaps, 0);
    // The late viewer gets the cache (keyframe 30 up to frame 44) at once, then live from 45.
    let late_rx = &h.clients[late].received;
    assert_eq!(late_rx.rtp_packets, per_frame[30..].iter().sum::<u64>());
    assert_eq!(
        late_rx.sequence_gaps, 0,
        "cache replay then live, contiguous"
    );
}

#[test]
fn delete_ends_the_stream_after_the_grace_period_and_viewers_are_told() {
    let (mut h, publisher, mut source) = setup();
    let viewer = h.open(ClientRole::Play, "cam").expect("play");
    assert!(h.connect_all());
    send_frame(&mut h, publisher, &mut source);
    let id = h.clients[publisher].answer.session;
    let now = h.now;
    assert!(h.engine.delete(now, id));
    assert!(!h.engine.delete(now, id), "second DELETE finds nothing");
    assert!(
        h.engine.hub().get("cam").is_some(),
        "stream waits for a successor"
    );
    let told = h.run_until(Duration::from_millis(20), Duration::from_secs(5), |h| {
        h.clients[viewer].received.closed
    });
    assert!(told, "viewer told within 5 s");
    assert!(h.engine.hub().get("cam").is_none());
    assert_eq!(h.engine.session_count(), 0);
}

#[test]
fn a_vanished_publisher_ends_its_viewers_within_five_seconds() {
    let (mut h, publisher, mut source) = setup();
    let viewer = h.open(ClientRole::Play, "cam").expect("play");
    assert!(h.connect_all());
    for _ in 0..10 {
        send_frame(&mut h, publisher, &mut source);
    }
    h.clients[publisher].online = false;
    let start = h.now;
    let told = h.run_until(Duration::from_millis(20), Duration::from_secs(10), |h| {
        h.clients[viewer].received.closed
    });
    assert!(told);
    assert!(
        h.now - start <= Duration::from_secs(5),
        "took {:?}",
        h.now - start
    );
}

#[test]
fn takeover_keeps_viewer_sequence_numbers_contiguous() {
    let (mut h, first, mut source) = setup();
    let viewer = h.open(ClientRole::Play, "cam").expect("play");
    assert!(h.connect_all());
    for _ in 0..40 {
        send_frame(&mut h, first, &mut source);
    }
    let second = h
        .open(ClientRole::Publish, "cam")
        .expect("second publisher");
    assert!(h.connect_all());
    assert!(
        h.clients[first].received.closed,
        "old publisher was told to go"
    );
    let ssrc = h.clients[second].client.ssrcs.0;
    let mut source2 = H264Source::new(ssrc, H264_PT);
    source2.sequence = 50_000;
    source2.frame = 7; // starts mid-GOP: the viewer must wait for its keyframe at frame 30
    let before = h.clients[viewer].received.rtp_packets;
    for _ in 0..60 {
        send_frame(&mut h, second, &mut source2);
    }
    let rx = &h.clients[viewer].received;
    assert!(rx.rtp_packets > before, "viewer receives the new publisher");
    assert_eq!(rx.sequence_gaps, 0, "no gap or reset across the takeover");
    assert_eq!(rx.last_seq.len(), 1, "one SSRC for the whole session");
}

#[test]
fn a_local_source_reaches_viewers_and_gets_keyframe_requests() {
    use crate::media::CodecSpec;
    use crate::media::{SourceKind, TrackKind};
    let mut h = Harness::new(EngineConfig::default()).expect("engine");
    let now = h.now;
    let h264 = CodecSpec {
        name: "H264".into(),
        clock_rate: 90_000,
        channels: None,
        fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".into(),
    };
    let source = h
        .engine
        .open_local_source(
            now,
            "cam0",
            SourceKind::Camera,
            vec![(TrackKind::Video, h264)],
        )
        .expect("local source");
    let viewer = h.open(ClientRole::Play, "cam0").expect("play");
    assert!(h.connect_all());
    assert!(
        h.engine.take_keyframe_request(source),
        "nothing cached yet: the joiner asks the camera for a keyframe"
    );
    assert!(!h.engine.take_keyframe_request(source), "consumed");
    let mut camera = H264Source::new(0xcafe, 96);
    let mut sent = 0;
    for _ in 0..40 {
        for packet in camera.next_frame() {
            let now = h.now;
            h.engine
                .ingest_local(now, source, 0, bytes::Bytes::from(packet))
                .expect("ingest");
            sent += 1;
        }
        h.advance(FRAME);
    }
    let rx = &h.clients[viewer].received;
    assert_eq!(rx.rtp_packets, sent);
    assert_eq!(rx.sequence_gaps, 0);
    let streams = h.engine.streams();
    assert_eq!(streams[0].source, SourceKind::Camera);
    let now = h.now;
    h.engine.close_local_source(now, source);
    h.advance(FRAME);
    assert!(
        h.clients[viewer].received.closed,
        "viewer told the camera is gone"
    );
    assert!(h.engine.hub().get("cam0").is_none());
    let now = h.now;
    assert!(
        h.engine
            .ingest_local(now, source, 0, bytes::Bytes::new())
            .is_err()
    );
}

#[test]
fn a_reader_gets_the_cache_then_live_packets_and_sees_the_stream_end() {
    let (mut h, publisher, mut source) = setup();
    for _ in 0..40 {
        send_frame(&mut h, publisher, &mut source);
    }
    let now = h.now;
    let (tracks, mut rx) = h
        .engine
        .attach_reader(now, "cam", "hls", 4096)
        .expect("reader");
    assert_eq!(tracks.len(), 2, "video and audio tracks described");
    let first = rx.try_recv().expect("cache replayed");
    assert!(first.keyframe_start, "a reader starts at a keyframe");
    let mut count = 1;
    while rx.try_recv().is_ok() {
        count += 1;
    }
    let cached = count;
    let live = send_frame(&mut h, publisher, &mut source);
    while rx.try_recv().is_ok() {
        count += 1;
    }
    assert_eq!(count, cached + live, "then every live packet");
    assert_eq!(h.engine.streams()[0].readers.get("hls"), Some(&1));
    let id = h.clients[publisher].answer.session;
    let now = h.now;
    h.engine.delete(now, id);
    h.advance(Duration::from_secs(3));
    assert!(
        matches!(
            rx.try_recv(),
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected)
        ),
        "the queue closes when the stream ends"
    );
}

#[test]
fn a_slow_reader_drops_and_never_stalls_viewers() {
    let (mut h, publisher, mut source) = setup();
    let viewer = h.open(ClientRole::Play, "cam").expect("play");
    assert!(h.connect_all());
    let now = h.now;
    let (_, _rx) = h
        .engine
        .attach_reader(now, "cam", "hls", 8)
        .expect("reader");
    let mut sent = 0;
    for _ in 0..40 {
        sent += send_frame(&mut h, publisher, &mut source) as u64;
    }
    let rx = &h.clients[viewer].received;
    assert_eq!(rx.rtp_packets, sent, "the viewer got everything");
    let stream = h.engine.hub().get("cam").expect("stream");
    assert!(
        stream.readers[0].dropped > 0,
        "the full reader dropped and counted"
    );
}

/// Packets wait in the stream until the transmit queue is read, then go out viewer by viewer.
/// A viewer whose handshake completes while packets wait is sent the keyframe cache, which
/// already holds them: it must get each packet once, not again from the waiting batch.
#[test]
fn a_viewer_connecting_while_packets_wait_gets_each_packet_once() {
    let (mut h, publisher, mut source) = setup();
    let mut sent = send_frame(&mut h, publisher, &mut source) as u64; // the keyframe
    let viewer = h.open(ClientRole::Play, "cam").expect("play");
    // Each round the publisher's frame reaches the engine just before the viewer's
    // handshake datagrams (client order), so the last flight finds packets waiting.
    let mut rounds = 0;
    while !h.clients[viewer].received.connected {
        rounds += 1;
        assert!(rounds < 200, "the viewer connects");
        for p in source.next_frame() {
            h.clients[publisher].client.send_rtp(&p).expect("send");
            sent += 1;
        }
        if !h.pump_once() {
            h.advance(Duration::from_millis(5));
        }
    }
    for _ in 0..5 {
        sent += send_frame(&mut h, publisher, &mut source) as u64;
    }
    let received = &h.clients[viewer].received;
    assert_eq!(received.sequence_gaps, 0, "contiguous, no repeats");
    assert_eq!(
        received.rtp_packets, sent,
        "every packet since the keyframe, once"
    );
    let stream = h.engine.hub().get("cam").expect("stream");
    let video_out: u64 = stream.tracks.iter().map(|t| t.stats.packets_out).sum();
    assert_eq!(video_out, sent, "the engine sent each packet once");
}

/// Packets that arrive together are counted as pending before they are fanned out, and
/// leave grouped by viewer, each viewer's in order.
#[test]
fn a_batch_goes_out_viewer_by_viewer_in_order() {
    let (mut h, publisher, mut source) = setup();
    let viewers: Vec<usize> = (0..3)
        .map(|_| h.open(ClientRole::Play, "cam").expect("play"))
        .collect();
    assert!(h.connect_all());
    send_frame(&mut h, publisher, &mut source); // a keyframe: everyone is in sync
    let frame = hand_frame_to_engine(&mut h, publisher, &mut source);
    assert_eq!(
        h.engine.pending_transmit_count(),
        frame.len() * viewers.len(),
        "waiting packets count as pending datagrams"
    );
    assert!(!h.engine.mid_frame(), "the frame's last packet was read");
    let order: Vec<std::net::SocketAddr> = h
        .engine
        .pending_transmits()
        .map(|(to, _)| to.addr)
        .collect();
    assert_eq!(order.len(), frame.len() * viewers.len());
    for (i, run) in order.chunks(frame.len()).enumerate() {
        assert!(
            run.iter().all(|to| *to == run[0]),
            "run {i} is one viewer's: {run:?}"
        );
    }
    let before: Vec<u64> = viewers
        .iter()
        .map(|&v| h.clients[v].received.rtp_packets)
        .collect();
    h.pump();
    for (v, b) in viewers.iter().zip(before) {
        let rx = &h.clients[*v].received;
        assert_eq!(rx.rtp_packets - b, frame.len() as u64);
        assert_eq!(rx.sequence_gaps, 0);
    }
}

/// The driver reads a frame to its end before it flushes: the engine says whether the last
/// video packet it accepted left a frame open.
#[test]
fn the_engine_tells_when_a_frame_is_still_being_read() {
    let (mut h, publisher, mut source) = setup();
    h.open(ClientRole::Play, "cam").expect("play");
    assert!(h.connect_all());
    send_frame(&mut h, publisher, &mut source);
    let frame = source.next_frame();
    assert!(frame.len() > 2, "a frame of several packets");
    for p in &frame {
        h.clients[publisher].client.send_rtp(p).expect("send");
    }
    let mut datagrams = Vec::new();
    while let Some((_, d)) = h.clients[publisher].client.poll_transmit() {
        datagrams.push(d);
    }
    let from = h.clients[publisher].addr;
    let now = h.now;
    assert!(!h.engine.mid_frame(), "nothing waiting");
    let (last, first) = datagrams.split_last().expect("datagrams");
    for d in first {
        h.engine.handle_datagram(now, from, d);
        assert!(h.engine.mid_frame(), "the frame is open");
    }
    h.engine.clear_transmits();
    assert!(!h.engine.mid_frame(), "nothing waits once sent");
    h.engine.handle_datagram(now, from, last);
    assert!(!h.engine.mid_frame(), "the marker closed it");
}

/// With the fan-out split into shares run on threads (several media threads), every viewer
/// still gets every packet once and in order, a late joiner its cache then live media, and the
/// track's counters add up what the shares sent.
#[test]
fn a_fan_out_split_across_threads_loses_and_reorders_nothing() {
    let (mut h, publisher, mut source) = setup();
    h.fanout_shares = 3;
    let early: Vec<usize> = (0..5)
        .map(|_| h.open(ClientRole::Play, "cam").expect("play"))
        .collect();
    assert!(h.connect_all());
    let (per_frame, late) = ninety_frames_with_a_late_joiner(&mut h, publisher, &mut source);
    assert!(
        h.split_fanouts >= 80,
        "the frames went out split: {}",
        h.split_fanouts
    );
    for &v in &early {
        let rx = &h.clients[v].received;
        assert_eq!(rx.rtp_packets, per_frame.iter().sum::<u64>(), "viewer {v}");
        assert_eq!(rx.sequence_gaps, 0, "viewer {v}");
    }
    let late_rx = &h.clients[late].received;
    assert_eq!(late_rx.rtp_packets, per_frame[30..].iter().sum::<u64>());
    assert_eq!(late_rx.sequence_gaps, 0, "cache replay then live");
    let received: u64 = h.clients[1..].iter().map(|c| c.received.rtp_packets).sum();
    let counted: u64 = h
        .engine
        .hub()
        .get("cam")
        .expect("stream")
        .tracks
        .iter()
        .map(|t| t.stats.packets_out)
        .sum();
    assert_eq!(counted, received, "the shares' counts reach the track");
}

/// A split gives each viewer to exactly one share and splits only a batch big enough for it;
/// below that nothing is sent and the batch still waits for the transmit queue's reader.
#[test]
fn a_split_gives_each_viewer_to_one_share_and_only_splits_big_batches() {
    let (mut h, publisher, mut source) = setup();
    let viewers = 6;
    for _ in 0..viewers {
        h.open(ClientRole::Play, "cam").expect("play");
    }
    assert!(h.connect_all());
    send_frame(&mut h, publisher, &mut source); // a keyframe: everyone is in sync
    let frame = hand_frame_to_engine(&mut h, publisher, &mut source);
    let waiting = frame.len() * viewers;
    let pending = h.engine.pending_transmit_count();
    assert!(pending >= waiting, "the frame waits: {pending}");
    let mut queues: Vec<TransmitQueue> = (0..4).map(|_| TransmitQueue::default()).collect();
    let mut ran = false;
    let used = h
        .engine
        .send_unsent_split(&mut queues, waiting, |_| ran = true);
    assert_eq!(used, 0, "too little for two shares of {waiting}");
    assert!(!ran);
    assert_eq!(h.engine.pending_transmit_count(), pending, "still waiting");

    let used = h
        .engine
        .send_unsent_split(&mut queues, frame.len(), |shares| {
            for share in shares.iter_mut() {
                share.run();
            }
        });
    assert_eq!(used, 4);
    assert_eq!(
        h.engine.pending_transmit_count(),
        pending - waiting,
        "the frame went into the shares"
    );
    let mut owner: std::collections::HashMap<std::net::SocketAddr, usize> = Default::default();
    let mut total = 0;
    for (i, queue) in queues.iter().enumerate() {
        assert!(!queue.is_empty(), "share {i} has viewers");
        for (to, _) in queue.pending() {
            total += 1;
            assert_eq!(*owner.entry(to.addr).or_insert(i), i, "{to} in two shares");
        }
    }
    assert_eq!(total, waiting);
    assert_eq!(owner.len(), viewers);
}

/// [`hand_frame_that_waited`], then a frame's time passes. Returns the frame's packet count.
fn send_frame_that_waited(
    h: &mut Harness,
    publisher: usize,
    source: &mut H264Source,
    waited: Duration,
) -> u64 {
    let count = hand_frame_that_waited(h, publisher, source, waited).len();
    h.advance(FRAME);
    count as u64
}

#[test]
fn a_server_that_fell_behind_sheds_until_a_keyframe_is_on_time() {
    let (mut h, publisher, mut source) = setup();
    let viewer = h.open(ClientRole::Play, "cam").expect("play");
    assert!(h.connect_all());
    let now = h.now;
    let (_, mut reader) = h
        .engine
        .attach_reader(now, "cam", "hls", 8192)
        .expect("reader");
    let limit = EngineConfig::default().max_forward_delay;
    let on_time = Duration::ZERO;
    let mut expected = 0;
    let mut published = 0;
    let mut shed = 0;
    let mut requests_before = 0;
    let mut requests_at_missed_keyframe = 0;
    // Frames 0-4 (keyframe, deltas) on time, 5-9 late: shedding starts, a keyframe is asked for.
    for frame in 0..60 {
        let waited = match frame {
            5..=9 => limit * 2,
            // A keyframe within the limit but not within half of it: not yet caught up.
            30 => limit * 3 / 4,
            _ => on_time,
        };
        if frame == 5 {
            // (The viewer's arrival before the first keyframe asked for one already.)
            requests_before = h.engine.stats().keyframe_requests_sent;
        }
        if frame == 31 {
            requests_at_missed_keyframe = h.engine.stats().keyframe_requests_sent;
        }
        let packets = send_frame_that_waited(&mut h, publisher, &mut source, waited);
        published += packets;
        if frame < 5 {
            expected += packets;
        } else {
            shed += packets;
        }
    }
    let viewer_ssrc = *h.clients[viewer]
        .received
        .last_seq
        .keys()
        .next()
        .expect("video");
    let before_ts = h.clients[viewer].received.last_timestamp[&viewer_ssrc];
    let before_seq = h.clients[viewer].received.last_seq[&viewer_ssrc];
    assert_eq!(h.clients[viewer].received.rtp_packets, expected);
    // Frame 60, a keyframe on time: the viewer resumes there, numbered on without a gap, its
    // timestamp moved on by the time it saw nothing (56 frames after frame 4).
    let mut resumed = 0;
    for _ in 60..65 {
        resumed += send_frame_that_waited(&mut h, publisher, &mut source, on_time);
    }
    published += resumed;
    expected += resumed;
    let rx = &h.clients[viewer].received;
    assert_eq!(rx.rtp_packets, expected, "everything from the keyframe on");
    assert_eq!(rx.sequence_gaps, 0, "the shed packets leave no gap to NACK");
    assert_eq!(
        rx.last_seq[&viewer_ssrc],
        before_seq.wrapping_add(resumed as u16)
    );
    let ticks_unseen = 56 * FRAME.as_millis() as u32 * 90;
    assert_eq!(
        rx.last_timestamp[&viewer_ssrc].wrapping_sub(before_ts),
        ticks_unseen + 4 * 3000,
        "time went on while nothing was sent"
    );
    let stats = h.engine.stats();
    assert_eq!(stats.shed_packets, shed);
    assert_eq!(stats.catch_ups, 1, "one catch-up, however long it took");
    assert!(
        requests_at_missed_keyframe > requests_before,
        "the publisher was asked for a keyframe"
    );
    assert!(
        stats.keyframe_requests_sent > requests_at_missed_keyframe,
        "and asked again after the keyframe that came too late"
    );
    let stream = h.engine.hub().get("cam").expect("stream");
    assert_eq!(stream.tracks[0].stats.shed, shed);
    let mut read = 0;
    while reader.try_recv().is_ok() {
        read += 1;
    }
    assert_eq!(read, published, "the recorder and LL-HLS get every packet");
}

#[test]
fn with_no_limit_late_media_is_still_sent() {
    let mut h = Harness::new(EngineConfig {
        max_forward_delay: Duration::ZERO,
        ..EngineConfig::default()
    })
    .expect("engine");
    let publisher = h.open(ClientRole::Publish, "cam").expect("publish");
    let viewer = h.open(ClientRole::Play, "cam").expect("play");
    assert!(h.connect_all());
    let ssrc = h.clients[publisher].client.ssrcs.0;
    let mut source = H264Source::new(ssrc, H264_PT);
    let mut sent = 0;
    for _ in 0..10 {
        sent += send_frame_that_waited(&mut h, publisher, &mut source, Duration::from_secs(5));
    }
    assert_eq!(h.clients[viewer].received.rtp_packets, sent);
    assert_eq!(h.engine.stats().shed_packets, 0);
}

#[test]
fn the_next_deadline_is_when_a_silent_publisher_times_out() {
    let (mut h, publisher, mut source) = setup();
    send_frame(&mut h, publisher, &mut source);
    let config = h.engine.config().clone();
    // Nothing else is pending once the handshake is done and a bitrate invitation went out:
    // the earliest deadlines left are the next invitation (1 s) and the publisher's silence.
    let deadline = h
        .engine
        .poll_timeout()
        .expect("a connected publisher has deadlines");
    assert!(deadline > h.now);
    assert!(deadline <= h.now + config.publisher_timeout + Duration::from_millis(1));
    // Follow the engine's own deadlines only (no fixed step), as the driver does, without
    // feeding the publisher: it is closed at its timeout, not before and not much later.
    // The frame's packets reached the engine when the harness pumped, at the advanced clock.
    let silent_since = h.now;
    let mut steps = 0;
    while h.engine.session_count() > 0 {
        let at = h
            .engine
            .poll_timeout()
            .expect("deadline while a session lives");
        let now = h.now;
        h.now = at;
        h.engine.handle_timeout(at);
        assert!(h.engine.poll_timeout().is_none_or(|next| next > at));
        steps += 1;
        assert!(
            steps < 20,
            "{steps} deadlines without the timeout (now {now:?})"
        );
    }
    let closed_after = h.now - silent_since;
    assert!(
        closed_after > config.publisher_timeout
            && closed_after <= config.publisher_timeout + Duration::from_millis(1),
        "closed {closed_after:?} after the last media, timeout {:?}",
        config.publisher_timeout
    );
}
