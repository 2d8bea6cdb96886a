use super::*;
use bytes::Bytes;
use std::time::{Duration, Instant};

use crate::media::{CodecSpec, TrackKind};
use crate::record::writer::CloseReason;

const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
    0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

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

/// A publisher of 30 fps video, one NAL unit per packet, a keyframe every 10 frames.
struct Source {
    start: Instant,
    epoch: u32,
    sequence: u16,
    timestamp: u32,
}

impl Source {
    fn frame(&mut self, i: u32) -> Vec<ReaderPacket> {
        let keyframe = i.is_multiple_of(10);
        let mut nals: Vec<Vec<u8>> = Vec::new();
        if keyframe {
            nals.extend([SPS.to_vec(), PPS.to_vec(), vec![0x65, 0x88, i as u8]]);
        } else {
            nals.push(vec![0x41, 0x9a, i as u8]);
        }
        let count = nals.len();
        let arrival = self.start + Duration::from_millis(u64::from(i) * 33);
        let timestamp = self.timestamp.wrapping_add(i * 3000);
        nals.into_iter()
            .enumerate()
            .map(|(n, nal)| {
                self.sequence = self.sequence.wrapping_add(1);
                ReaderPacket {
                    track: 0,
                    epoch: self.epoch,
                    sequence: self.sequence,
                    timestamp,
                    marker: n + 1 == count,
                    keyframe_start: keyframe && n == 0,
                    arrival,
                    payload: Bytes::from(nal),
                }
            })
            .collect()
    }
}

/// What the recorder's events did (their bytes are lent one event at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Open,
    Write,
    Close(CloseReason),
}

fn events(recorder: &mut StreamRecorder) -> Vec<Seen> {
    std::iter::from_fn(|| {
        recorder.poll_event().map(|event| match event {
            FileEvent::Open { .. } => Seen::Open,
            FileEvent::Write { .. } => Seen::Write,
            FileEvent::Close { reason } => Seen::Close(reason),
        })
    })
    .collect()
}

#[test]
fn a_takeover_ends_the_file_and_the_next_keyframe_starts_another() {
    let tracks = [track(TrackKind::Video, "H264", 90_000)];
    let clock = WallClock::now();
    let mut recorder =
        StreamRecorder::new("cam0", WriterConfig::default(), &tracks, clock).unwrap();
    let mut first = Source {
        start: clock.instant,
        epoch: 1,
        sequence: 65_000,
        timestamp: u32::MAX - 30_000,
    };
    for i in 0..25 {
        for packet in first.frame(i) {
            recorder.handle_packet(&packet).unwrap();
        }
    }
    assert_eq!(recorder.writer().stats.video_frames, 25);
    let opened = events(&mut recorder);
    assert_eq!(opened[0], Seen::Open);
    // A new publisher: other numbering, other clock, a new epoch.
    let mut second = Source {
        start: clock.instant + Duration::from_secs(1),
        epoch: 2,
        sequence: 7,
        timestamp: 1234,
    };
    for i in 0..12 {
        for packet in second.frame(i) {
            recorder.handle_packet(&packet).unwrap();
        }
    }
    let after = events(&mut recorder);
    let closes: Vec<_> = after
        .iter()
        .filter_map(|e| match e {
            Seen::Close(reason) => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(closes, vec![CloseReason::Finished]);
    assert_eq!(
        after.iter().filter(|e| **e == Seen::Open).count(),
        1,
        "the new publisher's keyframe opens a new file"
    );
    assert_eq!(recorder.stats.restarts, 1);
    assert_eq!(recorder.stats.errors, 0);
}

#[test]
fn unusable_streams_and_tracks_are_refused() {
    let clock = WallClock::now();
    let err = StreamRecorder::new(
        "x",
        WriterConfig::default(),
        &[track(TrackKind::Video, "VP8", 90_000)],
        clock,
    )
    .unwrap_err();
    assert!(err.to_string().contains("VP8"), "{err}");
    let tracks = [track(TrackKind::Audio, "opus", 48_000)];
    let mut recorder = StreamRecorder::new("mic", WriterConfig::default(), &tracks, clock).unwrap();
    let packet = ReaderPacket {
        track: 3,
        epoch: 1,
        sequence: 1,
        timestamp: 0,
        marker: false,
        keyframe_start: false,
        arrival: clock.instant,
        payload: Bytes::from_static(&[0xf8, 1]),
    };
    assert!(matches!(
        recorder.handle_packet(&packet),
        Err(RecordInputError::UnknownTrack(3))
    ));
    let empty = ReaderPacket {
        track: 0,
        payload: Bytes::new(),
        ..packet
    };
    assert!(
        recorder.handle_packet(&empty).is_err(),
        "an empty Opus packet"
    );
    assert_eq!(recorder.stats.errors, 2);
}

/// An H.265 camera's packets for frame `i` at 30 fps: an IDR every 10 frames, as one FU split
/// in three; trailing pictures as single NAL unit packets. Like some cameras, it sends its VPS,
/// SPS and PPS in its SDP only.
fn h265_frame(sequence: &mut u16, start: Instant, i: u32) -> Vec<ReaderPacket> {
    use crate::testing::h265::nal;
    let mut payloads = Vec::new();
    if i.is_multiple_of(10) {
        let body = vec![i as u8; 300];
        for (n, chunk) in body.chunks(100).enumerate() {
            let fu_header = 19 | if n == 0 { 0x80 } else { 0 } | if n == 2 { 0x40 } else { 0 };
            payloads.push([&[49 << 1, 1, fu_header][..], chunk].concat());
        }
    } else {
        payloads.push(nal(1, &[0x9a, i as u8]));
    }
    let count = payloads.len();
    payloads
        .into_iter()
        .enumerate()
        .map(|(n, payload)| {
            *sequence = sequence.wrapping_add(1);
            ReaderPacket {
                track: 0,
                epoch: 1,
                sequence: *sequence,
                timestamp: i * 3000,
                marker: n + 1 == count,
                keyframe_start: i.is_multiple_of(10) && n == 0,
                arrival: start + Duration::from_millis(u64::from(i) * 33),
                payload: Bytes::from(payload),
            }
        })
        .collect()
}

fn h265_track(fmtp: &str) -> ReaderTrack {
    let mut track = track(TrackKind::Video, "H265", 90_000);
    track.codec.fmtp = fmtp.to_owned();
    track
}

/// 70 frames of [`h265_frame`] (frame 33 lost) recorded in 1 s files with this fmtp: the
/// files' bytes, the errors, and the frames written.
fn record_h265(fmtp: &str) -> (Vec<Vec<u8>>, Vec<String>, u64) {
    let clock = WallClock::now();
    let config = WriterConfig {
        segment: Duration::from_secs(1),
        fragment_max: Duration::from_secs(1),
    };
    let mut recorder = StreamRecorder::new("ipcam0", config, &[h265_track(fmtp)], clock).unwrap();
    let mut sequence = 65_500;
    let mut files: Vec<Vec<u8>> = Vec::new();
    let mut errors = Vec::new();
    for i in 0..70 {
        for packet in h265_frame(&mut sequence, clock.instant, i) {
            if i == 33 {
                continue;
            }
            if let Err(e) = recorder.handle_packet(&packet) {
                errors.push(e.to_string());
            }
        }
        while let Some(event) = recorder.poll_event() {
            match event {
                FileEvent::Open { .. } => files.push(Vec::new()),
                FileEvent::Write { bytes, .. } => files.last_mut().unwrap().extend(bytes),
                FileEvent::Close { .. } => {}
            }
        }
    }
    (files, errors, recorder.writer().stats.video_frames)
}

#[test]
fn an_h265_camera_is_recorded_with_its_sdp_parameter_sets() {
    use crate::testing::h265::{PPS, SPS_320X240, VPS_320X240};
    use base64::Engine as _;
    let b64 = |nal: &[u8]| base64::engine::general_purpose::STANDARD.encode(nal);
    let fmtp = format!(
        "sprop-vps={};sprop-sps={};sprop-pps={}",
        b64(VPS_320X240),
        b64(SPS_320X240),
        b64(PPS)
    );
    let (files, errors, frames) = record_h265(&fmtp);
    // The lost frame is one error; frames 34..39 refer to it and wait for the IDR of 40.
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("missing"), "{errors:?}");
    assert_eq!(frames, 70 - 1 - 6);
    // 1 s files, split at the IDRs of frames 30 and 60, each with the SDP's parameter sets in
    // its hvc1 sample entry.
    assert_eq!(files.len(), 3);
    for file in &files {
        assert!(
            file.windows(4).any(|w| w == b"hvc1") && file.windows(4).any(|w| w == b"hvcC"),
            "an hvc1 sample entry"
        );
        assert!(
            file.windows(SPS_320X240.len()).any(|w| w == SPS_320X240),
            "the SPS in the hvcC"
        );
    }
    // Without them in the SDP there is nothing to start a file with, and each keyframe says so.
    let (files, errors, frames) = record_h265("");
    assert!(files.is_empty() && frames == 0);
    assert_eq!(errors.len(), 1 + 7, "the loss and 7 keyframes: {errors:?}");
    assert!(
        errors[1].contains("without its parameter sets"),
        "{errors:?}"
    );
}

#[test]
fn an_h265_stream_with_decoding_order_numbers_is_refused() {
    let err = StreamRecorder::new(
        "ipcam0",
        WriterConfig::default(),
        &[h265_track("sprop-max-don-diff=3")],
        WallClock::now(),
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            RecordInputError::Tracks(TracksError::H265Format {
                track: 0,
                error: crate::rtp::h265::H265FormatError::DecodingOrderNumbers(3)
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("DONL"), "{err}");
    // VP8 is still no video the recorder takes, and it says what it takes.
    let err = StreamRecorder::new(
        "x",
        WriterConfig::default(),
        &[track(TrackKind::Video, "VP8", 90_000)],
        WallClock::now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("H.264 or H.265"), "{err}");
}
