use super::*;
use bytes::Bytes;
use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::hls::Lookup;
use crate::media::{CodecSpec, TrackKind};

const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
    0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];
/// Opus TOC: config 31 (CELT fullband 20 ms), mono, one frame.
const OPUS_20MS: &[u8] = &[0xf8, 0x01, 0x02];

fn track(kind: TrackKind, name: &str, clock_rate: u32) -> ReaderTrack {
    ReaderTrack {
        kind,
        codec: CodecSpec {
            name: name.to_owned(),
            clock_rate,
            channels: (kind == TrackKind::Audio).then_some(2),
            fmtp: String::new(),
        },
    }
}

fn av_tracks() -> Vec<ReaderTrack> {
    vec![
        track(TrackKind::Audio, "opus", 48_000),
        track(TrackKind::Video, "H264", 90_000),
    ]
}

/// Feeds a publisher's packets: 30 fps H.264 (keyframe every `gop` frames, the IDR split into
/// FU-A fragments) on track 1 and 20 ms Opus on track 0, as they would arrive in real time.
struct Publisher {
    start: Instant,
    epoch: u32,
    video_seq: u16,
    video_ts: u32,
    audio_seq: u16,
    audio_ts: u32,
    frame: u32,
    gop: u32,
}

impl Publisher {
    fn new(start: Instant, epoch: u32, gop: u32) -> Self {
        Self {
            start,
            epoch,
            video_seq: 100,
            video_ts: 0xffff_0000, // wraps within the first second
            audio_seq: 7,
            audio_ts: 12345,
            frame: 0,
            gop,
        }
    }

    fn packet(
        &self,
        track: usize,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        at: Instant,
        payload: Vec<u8>,
    ) -> ReaderPacket {
        ReaderPacket {
            track,
            epoch: self.epoch,
            sequence,
            timestamp,
            marker,
            keyframe_start: false,
            arrival: at,
            payload: Bytes::from(payload),
        }
    }

    /// The packets of the next 1/30 s: one video frame and the audio due by then.
    fn next_frame(&mut self) -> Vec<ReaderPacket> {
        let at = self.start + Duration::from_millis(u64::from(self.frame) * 1000 / 30);
        let mut out = Vec::new();
        let keyframe = self.frame.is_multiple_of(self.gop);
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        if keyframe {
            payloads.push(SPS.to_vec());
            payloads.push(PPS.to_vec());
            // A 3000-byte IDR in FU-A fragments of 1000 bytes.
            let idr: Vec<u8> = std::iter::once(0x65)
                .chain((0..3000).map(|i| i as u8))
                .collect();
            let body = &idr[1..];
            for (i, chunk) in body.chunks(1000).enumerate() {
                let start = if i == 0 { 0x80 } else { 0 };
                let end = if (i + 1) * 1000 >= body.len() {
                    0x40
                } else {
                    0
                };
                let mut p = vec![0x7c, start | end | 5];
                p.extend_from_slice(chunk);
                payloads.push(p);
            }
        } else {
            payloads.push(vec![0x41, 0x9a, self.frame as u8]);
        }
        let last = payloads.len() - 1;
        for (i, p) in payloads.into_iter().enumerate() {
            out.push(self.packet(1, self.video_seq, self.video_ts, i == last, at, p));
            self.video_seq = self.video_seq.wrapping_add(1);
        }
        self.video_ts = self.video_ts.wrapping_add(3000);
        // Audio every 20 ms up to this frame's time.
        while u64::from(self.audio_seq - 7) * 20 <= u64::from(self.frame) * 1000 / 30 {
            out.push(self.packet(
                0,
                self.audio_seq,
                self.audio_ts,
                false,
                at,
                OPUS_20MS.to_vec(),
            ));
            self.audio_seq += 1;
            self.audio_ts = self.audio_ts.wrapping_add(960);
        }
        self.frame += 1;
        out
    }
}

fn clock(start: Instant) -> WallClock {
    WallClock {
        instant: start,
        system: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    }
}

#[test]
fn audio_and_video_become_parts_and_segments_on_one_timeline() {
    let start = Instant::now();
    let mut ingest = StreamIngest::new(HlsConfig::default(), &av_tracks(), clock(start)).unwrap();
    let mut publisher = Publisher::new(start, 1, 30);
    for _ in 0..91 {
        for p in publisher.next_frame() {
            ingest.handle_packet(&p).unwrap();
        }
    }
    let segments: Vec<_> = ingest.segmenter().segments().collect();
    assert_eq!(segments.len(), 3, "cut at each keyframe, 1 s apart");
    for seg in &segments {
        assert!((seg.duration - 1.0).abs() < 0.001, "{}", seg.duration);
        assert!(seg.parts[0].independent);
    }
    // Program date time follows the arrival clock: the first segment starts at the first frame.
    let first = segments[0].program_date_time.unwrap();
    assert_eq!(first, UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let second = segments[1].program_date_time.unwrap();
    assert_eq!(second.duration_since(first).unwrap().as_millis(), 1000);
    assert_eq!(ingest.stats.frames, 91);
    assert!(ingest.stats.audio_packets >= 150);
    assert_eq!(ingest.stats.errors, 0);
    // Both tracks are in the init segment (two trak boxes) and in the parts (two traf boxes).
    let init = ingest.segmenter().init(0).unwrap();
    assert_eq!(count_box(&init, b"trak"), 2);
    let Lookup::Found(part) = ingest.segmenter().part(1, 0) else {
        panic!("part 1.0 missing")
    };
    assert_eq!(count_box(&part, b"traf"), 2);
}

#[test]
fn a_new_publisher_epoch_continues_after_a_discontinuity() {
    let start = Instant::now();
    let mut ingest = StreamIngest::new(HlsConfig::default(), &av_tracks(), clock(start)).unwrap();
    let mut first = Publisher::new(start, 1, 30);
    for _ in 0..61 {
        for p in first.next_frame() {
            ingest.handle_packet(&p).unwrap();
        }
    }
    // The takeover: other sequence numbers and timestamps, a new epoch.
    let mut second = Publisher::new(start + Duration::from_millis(2100), 2, 30);
    second.video_ts = 5;
    second.video_seq = 40000;
    for _ in 0..61 {
        for p in second.next_frame() {
            ingest.handle_packet(&p).unwrap();
        }
    }
    assert_eq!(ingest.stats.discontinuities, 1);
    let segments: Vec<_> = ingest.segmenter().segments().collect();
    let marked: Vec<u64> = segments
        .iter()
        .filter(|s| s.discontinuity)
        .map(|s| s.msn)
        .collect();
    assert_eq!(marked.len(), 1, "one EXT-X-DISCONTINUITY: {segments:?}");
    assert!(segments.len() >= 4);
}

#[test]
fn a_lost_packet_drops_video_until_the_next_keyframe() {
    let start = Instant::now();
    let mut ingest = StreamIngest::new(HlsConfig::default(), &av_tracks(), clock(start)).unwrap();
    let mut publisher = Publisher::new(start, 1, 30);
    let mut lost = 0;
    for frame in 0..91 {
        for p in publisher.next_frame() {
            // Lose the second FU-A fragment of the keyframe at frame 30.
            if frame == 30 && p.track == 1 && p.payload.first() == Some(&0x7c) && p.payload[1] == 5
            {
                lost += 1;
                continue;
            }
            let _ = ingest.handle_packet(&p);
        }
    }
    assert_eq!(lost, 1);
    assert!(ingest.stats.errors >= 1, "the loss is reported");
    // Frames 30..60 could not be decoded; the stream resumes at frame 60.
    let video_frames = ingest.stats.frames;
    assert!(video_frames < 91, "{video_frames}");
    let segments: Vec<_> = ingest.segmenter().segments().collect();
    assert!(!segments.is_empty());
    for seg in &segments {
        assert!(
            seg.parts[0].independent,
            "every segment starts at a keyframe"
        );
    }
}

#[test]
fn streams_without_h264_or_opus_are_refused_and_others_ignored() {
    let vp8 = vec![track(TrackKind::Video, "VP8", 90_000)];
    let err = StreamIngest::new(HlsConfig::default(), &vp8, WallClock::now()).unwrap_err();
    assert!(err.to_string().contains("VP8"), "{err}");

    // VP8 video + Opus audio: audio-only HLS.
    let mixed = vec![
        track(TrackKind::Audio, "opus", 48_000),
        track(TrackKind::Video, "VP8", 90_000),
    ];
    let ingest = StreamIngest::new(HlsConfig::default(), &mixed, WallClock::now()).unwrap();
    assert_eq!(ingest.segmenter().codecs(), Some(vec!["opus".to_owned()]));
    assert!(!ingest.carries_same_tracks(&av_tracks()));
    let same = StreamIngest::new(HlsConfig::default(), &av_tracks(), WallClock::now()).unwrap();
    assert!(same.carries_same_tracks(&av_tracks()));
}

#[test]
fn packets_for_unknown_tracks_are_errors_not_panics() {
    let start = Instant::now();
    let mut ingest = StreamIngest::new(HlsConfig::default(), &av_tracks(), clock(start)).unwrap();
    let mut publisher = Publisher::new(start, 1, 30);
    let mut p = publisher.next_frame().remove(0);
    p.track = 9;
    assert!(matches!(
        ingest.handle_packet(&p),
        Err(IngestError::UnknownTrack(9))
    ));
    p.track = 1;
    p.payload = Bytes::new();
    assert!(ingest.handle_packet(&p).is_err());
}

fn count_box(data: &[u8], name: &[u8; 4]) -> usize {
    data.windows(4).filter(|w| w == name).count()
}

/// Found by fuzzing: a timestamp jumping 36 s ahead made one part 36 s long.
#[test]
fn a_timestamp_jump_forward_continues_after_a_discontinuity() {
    let start = Instant::now();
    let mut ingest = StreamIngest::new(HlsConfig::default(), &av_tracks(), clock(start)).unwrap();
    let mut publisher = Publisher::new(start, 1, 30);
    for frame in 0..91 {
        if frame == 50 {
            publisher.video_ts = publisher.video_ts.wrapping_add(36 * 90_000);
        }
        for p in publisher.next_frame() {
            let _ = ingest.handle_packet(&p);
        }
        if frame == 50 {
            assert!(
                ingest.wants_keyframe(),
                "video waits for a keyframe after the jump"
            );
        }
    }
    assert!(ingest.stats.discontinuities >= 1);
    let longest = ingest
        .segmenter()
        .segments()
        .chain(ingest.segmenter().open_segment())
        .flat_map(|s| s.parts.iter().map(|p| p.duration))
        .fold(0.0, f64::max);
    assert!(longest <= 0.2 + 1e-9, "a part of {longest} s");
    assert!(
        !ingest.wants_keyframe(),
        "the keyframe at frame 60 resumed video"
    );
}

#[test]
fn a_lost_packet_asks_for_a_keyframe() {
    let start = Instant::now();
    let mut ingest = StreamIngest::new(HlsConfig::default(), &av_tracks(), clock(start)).unwrap();
    let mut publisher = Publisher::new(start, 1, 30);
    for frame in 0..40 {
        for p in publisher.next_frame() {
            if frame == 10 && p.track == 1 {
                continue; // the whole frame is lost
            }
            let _ = ingest.handle_packet(&p);
        }
        if (11..30).contains(&frame) {
            assert!(ingest.wants_keyframe(), "frame {frame}");
        }
    }
    assert!(!ingest.wants_keyframe());
}
