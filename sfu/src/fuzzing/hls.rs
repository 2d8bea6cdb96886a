//! Fuzz entries of the LL-HLS path: the muxer's input (H.264 depacketizer, Opus TOC, segmenter,
//! fMP4 writer, playlist writer), access units straight into the segmenter, and the request
//! parsing of the HLS routes.

use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;

use crate::engine::ReaderTrack;
use crate::hls::annexb::{access_units, split_nals};
use crate::hls::{
    HlsConfig, Lookup, OpusParams, PlaylistRequest, Progress, Resource, Segmenter, StreamIngest,
    media_playlist, multivariant_playlist,
};
use crate::media::CodecSpec;
use crate::media::h264::AccessUnit;
use crate::media::{TrackKind, WallClock};

use super::records::{push_record, reader_packets};

fn tracks() -> Vec<ReaderTrack> {
    let track = |kind, name: &str, clock_rate| ReaderTrack {
        kind,
        codec: CodecSpec {
            name: name.to_owned(),
            clock_rate,
            channels: (kind == TrackKind::Audio).then_some(2),
            fmtp: String::new(),
        },
    };
    vec![
        track(TrackKind::Audio, "opus", 48_000),
        track(TrackKind::Video, "H264", 90_000),
    ]
}

/// Fuzz entry: a hub reader's packets into the LL-HLS muxer (Opus on track 0, H.264 on
/// track 1), then every playlist and resource read back. The input is a series of records
/// (`super::records`: flags, sequence, timestamp and arrival deltas, payload).
///
/// Invariants: parts add up to their segment, each segment starts with an independent part
/// (unless it was opened by a cut at the length limit for want of a keyframe, which the
/// segment records: the first listed segment's predecessor may be gone), part indexes count up
/// from 0, and every listed part can be fetched.
pub fn hls_ingest(data: &[u8]) {
    let start = Instant::now();
    let clock = WallClock {
        instant: start,
        system: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    };
    let Ok(mut ingest) = StreamIngest::new(HlsConfig::default(), &tracks(), clock) else {
        return;
    };
    for packet in reader_packets(data, start) {
        let _ = ingest.handle_packet(&packet);
    }
    let _ = ingest.wants_keyframe();
    check_output(ingest.segmenter());
    let _ = ingest.finish();
    check_output(ingest.segmenter());
}

fn check_output(s: &Segmenter) {
    let _ = media_playlist(s, false);
    let _ = media_playlist(s, true);
    let _ = multivariant_playlist(s, "stream.m3u8");
    let _ = s.init(s.current_init_id());
    for segment in s.segments().chain(s.open_segment()) {
        let sum: f64 = segment.parts.iter().map(|p| p.duration).sum();
        if segment.data.is_some() {
            assert!(
                (sum - segment.duration).abs() < 1e-6,
                "segment {} lasts {} but its parts {sum}",
                segment.msn,
                segment.duration
            );
        }
        for (i, part) in segment.parts.iter().enumerate() {
            assert_eq!(part.index as usize, i, "part indexes count up");
            assert!(
                matches!(s.part(segment.msn, part.index), Lookup::Found(_)),
                "listed part {}.{} is served",
                segment.msn,
                part.index
            );
        }
        if let Some(first) = segment.parts.first() {
            assert!(
                first.independent || (segment.forced_start && !segment.discontinuity),
                "segment {} starts independent",
                segment.msn
            );
        }
    }
}

/// The top-level boxes of an fMP4 buffer, by type; panics unless their sizes tile it exactly.
fn box_types(data: &[u8]) -> Vec<[u8; 4]> {
    let mut types = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        assert!(rest.len() >= 8, "{} bytes after the last box", rest.len());
        let size = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        assert!(
            (8..=rest.len()).contains(&size),
            "box size {size} with {} bytes left",
            rest.len()
        );
        types.push([rest[4], rest[5], rest[6], rest[7]]);
        rest = &rest[size..];
    }
    types
}

/// What [`hls_segmenter`] checks beyond [`check_output`]: the fMP4 writer's output is
/// well-framed (init: ftyp + moov; each part: moof + mdat), a complete segment is its parts
/// back to back, and each segment's init segment is still served.
fn check_fmp4(s: &Segmenter) {
    for segment in s.segments().chain(s.open_segment()) {
        for part in &segment.parts {
            assert_eq!(box_types(&part.data), [*b"moof", *b"mdat"], "part boxes");
        }
        if let Some(data) = &segment.data {
            let joined: Vec<u8> = segment.parts.iter().flat_map(|p| p.data.to_vec()).collect();
            assert!(
                data[..] == joined[..],
                "segment {} is its parts",
                segment.msn
            );
        }
        let init = s.init(segment.init_id);
        let init =
            init.unwrap_or_else(|| panic!("init{}.mp4 for {}", segment.init_id, segment.msn));
        assert_eq!(box_types(&init), [*b"ftyp", *b"moov"], "init boxes");
    }
}

/// Bytes of one record header in [`hls_segmenter`] input.
const UNIT_HEADER: usize = 5;

/// Fuzz entry: access units and Opus packets straight into the [`Segmenter`] and its fMP4
/// writer, with decode times and flags the RTP path never produces (keyframe flags that
/// disagree with the NAL units, 64-bit time jumps, times going backwards, discontinuities and
/// pushes after the end, audio-only and video-only streams, short targets that force cuts and
/// evictions).
///
/// Input: one setup byte (bit 0 video, bit 1 audio, neither = both; bit 2 short parts and
/// segments, 2 kept), then records `op, delta (2 bytes, big-endian), wall delta (ms), len`
/// and `len` body bytes. `op & 3`: 0 video (the body is Annex B; no start code = one NAL
/// unit), 1 Opus packet, 2 discontinuity, 3 check the output (bit 2: finish first). For media,
/// bit 2 turns the delta backwards, bit 3 marks a keyframe, bit 4 shifts the delta left by 24
/// bits, bit 5 (video) groups the NAL units into access units as `annexb` does (with their
/// own keyframe flags), one per delta.
pub fn hls_segmenter(data: &[u8]) {
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let (mut video, mut audio) = (setup & 1 != 0, setup & 2 != 0);
    if !video && !audio {
        (video, audio) = (true, true);
    }
    let config = if setup & 4 != 0 {
        HlsConfig {
            part_target: Duration::from_millis(50),
            segment_target: Duration::from_millis(300),
            max_segment: Duration::from_secs(1),
            segments_kept: 2,
        }
    } else {
        HlsConfig::default()
    };
    let Ok(mut s) = Segmenter::new(config, video, audio.then(OpusParams::default)) else {
        return;
    };
    let mut wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut dts = [0u64; 2];
    while rest.len() >= UNIT_HEADER {
        let (header, body) = rest.split_at(UNIT_HEADER);
        let op = header[0];
        let len = usize::from(header[4]).min(body.len());
        let (body, next) = body.split_at(len);
        rest = next;
        wall += Duration::from_millis(u64::from(header[3]));
        let mut delta = u64::from(u16::from_be_bytes([header[1], header[2]]));
        if op & 0x10 != 0 {
            delta <<= 24;
        }
        let step = |t: u64| {
            if op & 4 != 0 {
                t.wrapping_sub(delta)
            } else {
                t.wrapping_add(delta)
            }
        };
        match op & 3 {
            0 => {
                let stream = Bytes::copy_from_slice(body);
                let mut nals = split_nals(&stream);
                if nals.is_empty() && !stream.is_empty() {
                    nals.push(stream);
                }
                let units = if op & 0x20 != 0 {
                    access_units(&nals, 0)
                } else {
                    vec![AccessUnit {
                        timestamp: 0,
                        nals,
                        keyframe: op & 8 != 0,
                    }]
                };
                for unit in &units {
                    dts[0] = step(dts[0]);
                    let _ = s.push_video(dts[0], wall, unit);
                }
            }
            1 => {
                dts[1] = step(dts[1]);
                let _ = s.push_audio(dts[1], wall, body);
            }
            2 => {
                let _ = s.discontinuity();
            }
            _ => {
                if op & 4 != 0 {
                    let _ = s.finish();
                }
                let _ = s.wants_keyframe();
                check_output(&s);
                check_fmp4(&s);
            }
        }
    }
    check_output(&s);
    check_fmp4(&s);
    let _ = s.finish();
    check_output(&s);
    check_fmp4(&s);
}

/// Plausible inputs for [`hls_segmenter`]: 2.5 s of 30 fps video with a keyframe each second
/// and 20 ms Opus packets (audio and video), the same video alone with short targets, and
/// audio alone.
pub fn hls_segmenter_seeds() -> Vec<(&'static str, Vec<u8>)> {
    const SPS_PPS_IDR: &[u8] = &[
        0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03,
        0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80, 0, 0, 0, 1, 0x68, 0xcb,
        0x83, 0xcb, 0x20, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0xa0,
    ];
    let record = |out: &mut Vec<u8>, op: u8, delta: u16, wall_ms: u8, body: &[u8]| {
        out.push(op);
        out.extend_from_slice(&delta.to_be_bytes());
        out.extend_from_slice(&[wall_ms, body.len() as u8]);
        out.extend_from_slice(body);
    };
    let stream = |setup: u8, with_video: bool, with_audio: bool| {
        let mut out = vec![setup];
        for frame in 0..75u32 {
            if with_video {
                if frame % 30 == 0 {
                    record(&mut out, 8, 3000, 33, SPS_PPS_IDR);
                } else {
                    record(&mut out, 0, 3000, 33, &[0x41, 0x9a, frame as u8, 0x11]);
                }
            }
            if with_audio && frame % 3 == 0 {
                // Two 20 ms packets (TOC config 31: 20 ms CELT, one frame) per 3 video frames.
                record(&mut out, 1, 960, 0, &[0xf8, 0x01, 0x02]);
                record(&mut out, 1, 960, 0, &[0xf8, 0x03]);
            }
            if frame == 40 {
                record(&mut out, 3, 0, 0, &[]);
            }
        }
        record(&mut out, 2, 0, 0, &[]);
        record(&mut out, 0x28, 3000, 0, SPS_PPS_IDR);
        record(&mut out, 7, 0, 0, &[]);
        out
    };
    vec![
        ("av.bin", stream(3, true, true)),
        ("video_short.bin", stream(5, true, false)),
        ("audio.bin", stream(2, false, true)),
    ]
}

/// A plausible input for [`hls_ingest`]: 2 s of 30 fps H.264 (keyframe each second, SPS/PPS
/// in band, IDR in FU-A fragments) and 20 ms Opus packets, so mutations start deep in the muxer.
pub fn hls_ingest_seed() -> Vec<u8> {
    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];
    let mut out = Vec::new();
    let mut record = |flags: u8, ts_delta: u16, arrival_ms: u8, payload: &[u8]| {
        push_record(&mut out, flags, ts_delta, arrival_ms, payload);
    };
    for frame in 0..60u32 {
        let step = if frame == 0 { 0 } else { 30 }; // 3000 ticks / 100
        if frame % 30 == 0 {
            record(1, step, 33, SPS);
            record(1, 0, 0, PPS);
            record(1, 0, 0, &[0x7c, 0x85, 1, 2, 3, 4]);
            record(3, 0, 0, &[0x7c, 0x45, 5, 6, 7, 8]);
        } else {
            record(3, step, 33, &[0x41, 0x9a, frame as u8]);
        }
        if frame % 3 == 0 {
            // Opus: 960 ticks / 100 is not whole; 20 ms apart on average via two steps.
            record(0, 10, 0, &[0xf8, 0x01, 0x02]);
            record(0, 9, 0, &[0xf8, 0x03]);
        }
    }
    out
}

/// Fuzz entry: an HLS route's request: `_HLS_msn`, `_HLS_part`, `_HLS_skip` and the resource
/// name, separated by newlines (a missing field is absent). A parsed resource must name itself
/// again, and a parsed blocking request is decided against a progress read from the input.
pub fn hls_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\n');
    let mut next = || fields.next().filter(|f| !f.starts_with('\u{0}'));
    let (msn, part, skip, name) = (next(), next(), next(), next());
    if let Ok(request) = PlaylistRequest::parse(msn, part, skip)
        && let Some((msn, part)) = request.block
    {
        let byte = |i: usize| u64::from(data.get(i).copied().unwrap_or(0));
        let progress = Progress {
            open_msn: byte(0) << 8 | byte(1),
            open_parts: byte(2) as u32,
            part_target: (byte(3) as f64 + 1.0) / 64.0,
            target_duration: byte(4).max(1),
        };
        let _ = progress.ready(msn, part);
    }
    if let Some(resource) = name.and_then(Resource::parse) {
        assert_eq!(Resource::parse(&resource.uri()), Some(resource));
        let _ = resource.content_type();
    }
}
