//! Micro-benchmarks of the per-packet work on the forwarding and LL-HLS paths, each alone:
//!
//! - per-viewer RTP rewrite: `Rewriter::map` and a fresh fixed header, with and without copying
//!   the payload into a transmit buffer (what fan-out does per packet x viewer before SRTP);
//! - SRTP protect in place (`webrtc::srtp::SrtpSender`, AES-128-GCM and, for comparison,
//!   AES-CM + HMAC-SHA1-80) of a 1180-byte video and a 160-byte audio payload;
//! - H.264 depacketize (`rtp::h264::H264Depacketizer::push_avcc`: FU-A, STAP-A, single NAL
//!   units, assembled into reused AVCC buffers as the LL-HLS ingest and the recorder use it) of
//!   the packets of 5 s of the 720p test camera (OpenH264, encoded before timing);
//! - fMP4 part write: `hls::fmp4::FragmentBuilder` for 200 ms parts of those frames (samples
//!   copied in, moof + mdat written into a reused buffer), and the whole
//!   `Segmenter::push_video` path (AVCC framing, cutting, part and segment bookkeeping).
//!
//! Plain harness (criterion is not among this project's dependencies): each case runs in
//! repetitions of a fixed number of iterations; reported is the thread's CPU time per item
//! (median repetition, with the fastest and slowest) and the median wall time. On the shared
//! machine the wall time also counts other processes' turns on the core; CPU time does not,
//! though their cache traffic still shows as spread.
//!
//! cargo bench --bench hot_path [-- quick]

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use sfu::capture::encoder::{EncoderSettings, H264Encoder, OpenH264Encoder};
use sfu::capture::packetizer::{DEFAULT_MTU_PAYLOAD, H264Packetizer};
use sfu::capture::{FrameSource, PatternSource};
use sfu::hls::fmp4::{FragmentBuilder, Track};
use sfu::hls::{HlsConfig, Segmenter};
use sfu::media::h264::AccessUnit;
use sfu::rtp::h264::H264Depacketizer;
use sfu::rtp::packet::{RtpHeader, write_fixed_header};
use sfu::rtp::rewrite::Rewriter;
use sfu::webrtc::srtp::{MAX_TRAILER, Profile, SrtpSender};

const REPETITIONS: usize = 9;

/// An RTP packet as the depacketizer takes it: sequence, timestamp, marker, payload.
type Packet = (u16, u32, bool, Bytes);

/// This thread's CPU time in nanoseconds: on a shared machine the wall clock also counts the
/// time other processes held the core. (`/proc/thread-self/schedstat` is only updated at
/// scheduler ticks on this kernel, too coarse for a short repetition.)
fn thread_cpu_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .expect("clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

struct Timing {
    /// CPU ns per item: median, min, max over the repetitions.
    cpu: (f64, f64, f64),
    /// Wall ns per item, median.
    wall: f64,
}

/// Runs `f` (which does `items` units of work) `REPETITIONS` times after one warm-up.
fn measure(items: usize, mut f: impl FnMut()) -> Timing {
    f();
    let mut cpu = Vec::with_capacity(REPETITIONS);
    let mut wall = Vec::with_capacity(REPETITIONS);
    for _ in 0..REPETITIONS {
        let (c, t) = (thread_cpu_ns(), Instant::now());
        f();
        wall.push(t.elapsed().as_nanos() as f64 / items as f64);
        cpu.push((thread_cpu_ns() - c) as f64 / items as f64);
    }
    cpu.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    Timing {
        cpu: (cpu[cpu.len() / 2], cpu[0], cpu[cpu.len() - 1]),
        wall: wall[wall.len() / 2],
    }
}

fn report(name: &str, unit: &str, t: &Timing, extra: &str) {
    let (median, min, max) = t.cpu;
    println!(
        "{name:<58} {median:>9.1} ns/{unit} CPU (min {min:.1}, max {max:.1}; wall {:.1}){extra}",
        t.wall
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let scale = if quick { 10 } else { 1 };
    println!(
        "hot_path: {REPETITIONS} repetitions per case, median (min, max); load average {}",
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    );
    rewrite(100_000 / scale);
    srtp(20_000 / scale);
    let (packets, units) = encode_camera(if quick { 30 } else { 150 });
    depacketize(&packets, if quick { 1 } else { 5 });
    fmp4_parts(&units, if quick { 1 } else { 5 });
}

fn rewrite(iters: usize) {
    let now = Instant::now();
    let payload = vec![0x5au8; 1180];
    let mut rewriter = Rewriter::new(90_000, 4321, 1_000_000);
    rewriter.splice(now, 1, 100, 3000);
    let mut fixed = [0u8; 12];
    let mut seq = 100u16;
    let header_only = measure(iters, || {
        for i in 0..iters {
            seq = seq.wrapping_add(1);
            let (s, ts) = rewriter.map(now, seq, 3000 + (i as u32 / 8) * 3000);
            write_fixed_header(&mut fixed, i % 8 == 7, 102, s, ts, 0x1234_5678);
            black_box(&fixed);
        }
    });
    report("rewrite: map + fixed header", "packet", &header_only, "");
    let mut buf: Vec<u8> = Vec::with_capacity(12 + payload.len() + MAX_TRAILER);
    let with_copy = measure(iters, || {
        for i in 0..iters {
            seq = seq.wrapping_add(1);
            let (s, ts) = rewriter.map(now, seq, 3000 + (i as u32 / 8) * 3000);
            write_fixed_header(&mut fixed, i % 8 == 7, 102, s, ts, 0x1234_5678);
            buf.clear();
            buf.extend_from_slice(&fixed);
            buf.extend_from_slice(&payload);
            black_box(&buf);
        }
    });
    report(
        "rewrite: map + header + copy of a 1180-byte payload",
        "packet",
        &with_copy,
        "",
    );
}

fn srtp(iters: usize) {
    for (profile, label) in [
        (Profile::AeadAes128Gcm, "AES-128-GCM"),
        (Profile::Aes128CmHmacSha1_80, "AES-CM-128 + HMAC-SHA1-80"),
    ] {
        for payload in [1180usize, 160] {
            let mut sender =
                SrtpSender::new(profile, &[7u8; 16], &vec![9u8; profile.salt_len()]).expect("keys");
            let len = 12 + payload;
            let mut buf = vec![0x5au8; len + MAX_TRAILER];
            let mut fixed = [0u8; 12];
            let mut seq = 0u16;
            let timing = measure(iters, || {
                for _ in 0..iters {
                    seq = seq.wrapping_add(1);
                    write_fixed_header(&mut fixed, false, 102, seq, 9000, 0x1234_5678);
                    buf[..12].copy_from_slice(&fixed);
                    let out = sender.protect(&mut buf, len, 12).expect("protect");
                    black_box(out);
                }
            });
            let gbit = payload as f64 * 8.0 / timing.cpu.0;
            report(
                &format!("srtp protect {label}, {payload}-byte payload"),
                "packet",
                &timing,
                &format!("  {gbit:.2} Gbit/s of payload"),
            );
        }
    }
}

/// `frames` frames of the 720p30 test camera at 2.5 Mbit/s, one keyframe per second: the RTP
/// packets (sequence, timestamp, marker, payload) and the access units.
fn encode_camera(frames: u32) -> (Vec<Packet>, Vec<AccessUnit>) {
    let (width, height, fps) = (1280, 720, 30);
    let settings = EncoderSettings {
        width,
        height,
        fps,
        bitrate: 2_500_000,
        keyframe_interval: fps,
    };
    let mut source = PatternSource::new("cam0", width, height).expect("pattern");
    let mut encoder = OpenH264Encoder::new(settings).expect("encoder");
    let mut packetizer = H264Packetizer::new(102, DEFAULT_MTU_PAYLOAD);
    let start = Instant::now();
    let mut packets = Vec::new();
    for i in 0..frames {
        let at = start + Duration::from_secs(u64::from(i)) / fps;
        let captured = source.next_frame(at).expect("frame");
        let unit = encoder
            .encode(&captured.image, u64::from(i) * 1000 / u64::from(fps), false)
            .expect("encode");
        for packet in packetizer.packetize(&unit, at) {
            let h = RtpHeader::parse(&packet).expect("rtp");
            let payload = packet.slice(h.payload_offset..h.payload_end);
            packets.push((h.sequence, h.timestamp, h.marker, payload));
        }
    }
    let mut depacketizer = H264Depacketizer::new();
    let units: Vec<AccessUnit> = packets
        .iter()
        .filter_map(|(s, t, m, p)| depacketizer.push(*s, *t, *m, p).expect("depacketize"))
        .collect();
    let kinds = |t: u8| packets.iter().filter(|p| p.3[0] & 0x1f == t).count();
    println!(
        "input: {frames} frames of the 720p30 test camera, {} RTP packets ({} FU-A, {} STAP-A, {} \
         single NAL), {:.1} KB per frame, {} keyframes",
        packets.len(),
        kinds(28),
        kinds(24),
        packets.len() - kinds(28) - kinds(24),
        packets.iter().map(|p| p.3.len()).sum::<usize>() as f64 / f64::from(frames) / 1000.0,
        units.iter().filter(|u| u.keyframe).count(),
    );
    assert_eq!(units.len(), frames as usize, "every frame comes back out");
    (packets, units)
}

fn depacketize(packets: &[Packet], passes: usize) {
    let timing = measure(passes * packets.len(), || {
        for _ in 0..passes {
            let mut depacketizer = H264Depacketizer::new();
            for (s, t, m, p) in packets {
                black_box(depacketizer.push_avcc(*s, *t, *m, p).expect("depacketize"));
            }
        }
    });
    report(
        "h264 depacketize (FU-A / STAP-A), per packet",
        "packet",
        &timing,
        "",
    );
}

fn fmp4_parts(units: &[AccessUnit], passes: usize) {
    // 200 ms parts: 6 frames each, as the segmenter cuts them at 30 fps.
    let frames: Vec<(bool, Vec<u8>)> = units.iter().map(|u| (u.keyframe, u.to_avcc())).collect();
    let parts: Vec<&[(bool, Vec<u8>)]> = frames.chunks(6).collect();
    let bytes: usize = frames.iter().map(|(_, data)| data.len()).sum();
    let mut builder = FragmentBuilder::new();
    let mut out = Vec::new();
    let timing = measure(passes * parts.len(), || {
        for _ in 0..passes {
            for (n, part) in parts.iter().enumerate() {
                for (i, (keyframe, data)) in part.iter().enumerate() {
                    let dts = (n * 6 + i) as u64 * 3000;
                    builder.push(Track::Video, dts, 3000, *keyframe, data);
                }
                out.clear();
                builder.write(n as u32, &mut out).expect("fragment");
                black_box(&out);
            }
        }
    });
    report(
        "fmp4 fragment (moof + mdat) of a 200 ms part, 6 frames",
        "part",
        &timing,
        &format!(
            "  {:.1} KB per part",
            bytes as f64 / parts.len() as f64 / 1000.0
        ),
    );

    let wall = SystemTime::now();
    let timing = measure(passes * units.len(), || {
        for _ in 0..passes {
            let mut segmenter =
                Segmenter::new(HlsConfig::default(), true, None).expect("segmenter");
            for (i, unit) in units.iter().enumerate() {
                let dts = i as u64 * 3000;
                let at = wall + Duration::from_micros(dts * 100 / 9);
                segmenter.push_video(dts, at, unit).expect("push");
            }
            black_box(segmenter.segments().count());
        }
    });
    report(
        "segmenter push_video (AVCC, parts, segments), per frame",
        "frame",
        &timing,
        "",
    );
}
