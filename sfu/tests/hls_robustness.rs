//! Hostile input for the LL-HLS input path: random bytes and random timestamps must give errors
//! or dropped frames, never a panic, and the segmenter must keep working afterwards.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sfu::hls::annexb::{access_units, split_nals};
use sfu::hls::opus::OpusToc;
use sfu::hls::sps::parse_sps;
use sfu::hls::{HlsConfig, OpusParams, Progress, Resource, Segmenter, media_playlist};
use sfu::media::h264::AccessUnit;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = (self.next() % (max as u64 + 1)) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
    0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
];

#[test]
fn parsers_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let mut data = rng.bytes(64);
        let _ = OpusToc::parse(&data);
        let _ = Resource::parse(&String::from_utf8_lossy(&data));
        if let Some(first) = data.first_mut() {
            *first = (*first & 0xe0) | 7;
        }
        let _ = parse_sps(&data);
        // Mutate a real SPS: one byte flipped.
        let mut sps = SPS.to_vec();
        let at = (rng.next() as usize) % sps.len();
        sps[at] = rng.next() as u8;
        let _ = parse_sps(&sps);
        let stream = Bytes::from(data);
        let _ = access_units(&split_nals(&stream), 3000);
    }
}

#[test]
fn segmenter_survives_random_input() {
    let wall = UNIX_EPOCH + Duration::from_secs(1);
    let mut rng = Rng(42);
    for round in 0..50 {
        let config = HlsConfig {
            part_target: Duration::from_millis(rng.next() % 400),
            segment_target: Duration::from_millis(rng.next() % 3000),
            max_segment: Duration::from_millis(rng.next() % 20_000),
            segments_kept: (rng.next() % 9) as usize,
        };
        let mut s = Segmenter::new(config, round % 3 != 0, Some(OpusParams::default())).unwrap();
        for _ in 0..400 {
            let dts = match rng.next() % 10 {
                0 => rng.next(),
                1 => u64::MAX - rng.next() % 1000,
                _ => rng.next() % 1_000_000,
            };
            match rng.next() % 8 {
                0 => {
                    let _ = s.push_audio(dts, wall, &rng.bytes(8));
                }
                1 => {
                    let _ = s.discontinuity();
                }
                _ => {
                    let keyframe = rng.next().is_multiple_of(4);
                    let mut nals = vec![Bytes::from(rng.bytes(16))];
                    if keyframe {
                        let sps = if rng.next().is_multiple_of(2) {
                            Bytes::from_static(SPS)
                        } else {
                            Bytes::from(rng.bytes(12))
                        };
                        nals.insert(0, sps);
                        nals.insert(1, Bytes::from_static(&[0x68, 0xcb, 0x83, 0xcb, 0x20]));
                    }
                    let unit = AccessUnit {
                        timestamp: 0,
                        nals,
                        keyframe,
                    };
                    let _ = s.push_video(dts, wall, &unit);
                }
            }
            let progress: Progress = s.progress();
            let _ = progress.ready(rng.next() % 100, Some((rng.next() % 50) as u32));
            let _ = s.part(rng.next() % 100, (rng.next() % 10) as u32);
        }
        let _ = media_playlist(&s, true);
        let _ = s.finish();
        let text = media_playlist(&s, false);
        assert!(text.starts_with("#EXTM3U\n"));
    }
}

#[test]
fn wall_clock_before_the_epoch_is_harmless() {
    let mut s = Segmenter::new(HlsConfig::default(), false, Some(OpusParams::default())).unwrap();
    let before = SystemTime::UNIX_EPOCH - Duration::from_secs(10);
    for i in 0..200u64 {
        s.push_audio(i * 960, before, &[0xfc, 0]).unwrap();
    }
    assert!(
        media_playlist(&s, false).contains("#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z")
    );
}
