//! What recording costs per packet: four streams at 2.5 Mbit/s (30 fps H.264, a keyframe per
//! second, ~1200-byte RTP packets, plus 20 ms Opus) through the recorder's core
//! (`StreamRecorder`: depacketizing, the fMP4 fragments with their `prft`) and its file sink
//! (`FileSink`: the writes, under each fsync policy) into a temporary directory, as fast as the
//! thread goes. Prints, per policy: CPU time per packet, the share of one core that 4 streams
//! in real time cost, and allocations per packet in steady state (after the first file is open;
//! also as the plain count over the packets measured).
//! The peer: ffmpeg remuxing the same recorded file (`-c copy` to fragmented MP4), CPU per
//! packet of the same media.
//!
//! `cargo bench --bench record_write [-- SECONDS]` (default 60 s of media per stream).

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sfu::capture::packetizer::H264Packetizer;
use sfu::engine::ReaderTrack;
use sfu::hub::ReaderPacket;
use sfu::media::h264::AccessUnit;
use sfu::media::{CodecSpec, TrackKind, WallClock};
use sfu::record::sink::FileSink;
use sfu::record::{StreamRecorder, SyncPolicy, WriterConfig};
use sfu::rtp::packet::RtpHeader;
use sfu::testing::alloc::{CountingAlloc, this_thread};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const STREAMS: usize = 4;
const BITRATE: u64 = 2_500_000;
const FPS: u64 = 30;

const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
    0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

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
        track(TrackKind::Video, "H264", 90_000),
        track(TrackKind::Audio, "opus", 48_000),
    ]
}

/// `seconds` of one stream's packets as a reader receives them, arrival times included.
fn packets(seconds: u64, start: Instant) -> Vec<ReaderPacket> {
    let mut packetizer = H264Packetizer::new(96, 1200);
    let per_frame = (BITRATE / 8 / FPS) as usize;
    let mut out = Vec::new();
    let mut audio_seq = 0u16;
    for i in 0..seconds * FPS {
        let at = start + Duration::from_nanos(i * 1_000_000_000 / FPS);
        let keyframe = i % FPS == 0;
        let size = if keyframe {
            per_frame * 4
        } else {
            per_frame * 9 / 10
        };
        let mut nals = Vec::new();
        if keyframe {
            nals.extend([Bytes::from_static(SPS), Bytes::from_static(PPS)]);
        }
        let mut slice = vec![0x5au8; size];
        slice[0] = if keyframe { 0x65 } else { 0x41 };
        nals.push(Bytes::from(slice));
        let unit = AccessUnit {
            timestamp: 0,
            nals,
            keyframe,
        };
        for (n, packet) in packetizer.packetize(&unit, at).into_iter().enumerate() {
            let header = RtpHeader::parse(&packet).expect("our own RTP");
            out.push(ReaderPacket {
                track: 0,
                epoch: 1,
                sequence: header.sequence,
                timestamp: header.timestamp,
                marker: header.marker,
                keyframe_start: keyframe && n == 0,
                arrival: at,
                payload: packet.slice(header.payload_offset..header.payload_end),
            });
        }
        // Opus: 20 ms packets, 3 every 2 frames.
        while u64::from(audio_seq) * 20 < (i + 1) * 1000 / FPS {
            out.push(ReaderPacket {
                track: 1,
                epoch: 1,
                sequence: audio_seq,
                timestamp: u32::from(audio_seq) * 960,
                marker: false,
                keyframe_start: false,
                arrival: start + Duration::from_millis(u64::from(audio_seq) * 20),
                payload: Bytes::from_static(&[0xfc; 120]),
            });
            audio_seq += 1;
        }
    }
    out
}

/// This thread's CPU time in nanoseconds (the process shares the machine with others).
fn thread_cpu_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .expect("clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

struct Run {
    cpu_ns_per_packet: f64,
    core_share: f64,
    allocs_per_packet: f64,
    allocs: u64,
    measured: usize,
    bytes: u64,
}

fn record(dir: &Path, policy: SyncPolicy, streams: &[Vec<ReaderPacket>], seconds: u64) -> Run {
    let mut recorders: Vec<(StreamRecorder, FileSink)> = (0..streams.len())
        .map(|i| {
            let recorder = StreamRecorder::new(
                &format!("bench{i}"),
                WriterConfig::default(),
                &tracks(),
                WallClock::now(),
            )
            .expect("recorder");
            (recorder, FileSink::new(dir, policy))
        })
        .collect();
    let warmup = streams[0].len() / 10;
    let mut cpu_start = 0;
    let mut allocs_start = 0;
    let mut measured = 0usize;
    let now = Instant::now();
    // Interleave the streams packet by packet, as the hub hands them out.
    for i in 0..streams[0].len() {
        if i == warmup {
            cpu_start = thread_cpu_ns();
            allocs_start = this_thread();
        }
        for (s, (recorder, sink)) in recorders.iter_mut().enumerate() {
            let Some(packet) = streams[s].get(i) else {
                continue;
            };
            let _ = recorder.handle_packet(packet);
            while let Some(event) = recorder.poll_event() {
                sink.apply(now, event).expect("write");
            }
            if i >= warmup {
                measured += 1;
            }
        }
    }
    let cpu = thread_cpu_ns() - cpu_start;
    let allocs = this_thread() - allocs_start;
    let mut bytes = 0;
    for (recorder, sink) in &mut recorders {
        recorder.finish().expect("finish");
        while let Some(event) = recorder.poll_event() {
            sink.apply(now, event).expect("write");
        }
        bytes += sink.stats.bytes_written;
    }
    let media_secs = seconds as f64 * (1.0 - warmup as f64 / streams[0].len() as f64);
    Run {
        cpu_ns_per_packet: cpu as f64 / measured as f64,
        core_share: cpu as f64 / 1e9 / media_secs,
        allocs_per_packet: allocs as f64 / measured as f64,
        allocs,
        measured,
        bytes,
    }
}

/// CPU time ffmpeg spends remuxing `file` (its children's user + system time).
fn ffmpeg_remux_cpu(file: &Path) -> Option<Duration> {
    let before = children_cpu();
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "fatal", "-i"])
        .arg(file)
        .args([
            "-c",
            "copy",
            "-movflags",
            "frag_keyframe+empty_moov",
            "-f",
            "mp4",
            "-y",
            "/dev/null",
        ])
        .status()
        .ok()?;
    status.success().then(|| children_cpu() - before)
}

fn children_cpu() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(usage.user_time()) + tv(usage.system_time())
}

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(60);
    let start = Instant::now();
    let streams: Vec<Vec<ReaderPacket>> = (0..STREAMS).map(|_| packets(seconds, start)).collect();
    let per_stream = streams[0].len();
    println!(
        "record_write: {STREAMS} streams x {seconds} s at {} Mbit/s, {per_stream} packets per stream",
        BITRATE as f64 / 1e6
    );
    println!(
        "{:<22} {:>14} {:>16} {:>16} {:>22} {:>10}",
        "fsync",
        "CPU ns/packet",
        "4 streams, core",
        "allocs/packet",
        "allocs / packets",
        "MB written"
    );
    for (name, policy) in [
        ("never", SyncPolicy::Never),
        ("every 5 s", SyncPolicy::Interval(Duration::from_secs(5))),
        ("every fragment", SyncPolicy::Fragment),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = record(dir.path(), policy, &streams, seconds);
        println!(
            "{:<22} {:>14.0} {:>15.3}% {:>16.3} {:>22} {:>10.1}",
            name,
            run.cpu_ns_per_packet,
            run.core_share * 100.0,
            run.allocs_per_packet,
            format!("{} / {}", run.allocs, run.measured),
            run.bytes as f64 / 1e6
        );
        if matches!(policy, SyncPolicy::Never) {
            let file = std::fs::read_dir(dir.path().join("bench0"))
                .expect("recorded")
                .next()
                .expect("a file")
                .expect("entry")
                .path();
            match ffmpeg_remux_cpu(&file) {
                Some(cpu) => println!(
                    "{:<22} {:>14.0} {:>15.3}%   (peer: the same file remuxed, -c copy)",
                    "ffmpeg remux",
                    cpu.as_nanos() as f64 / per_stream as f64,
                    cpu.as_secs_f64() * STREAMS as f64 / seconds as f64 * 100.0
                ),
                None => println!("ffmpeg remux: ffmpeg not available"),
            }
        }
    }
}
