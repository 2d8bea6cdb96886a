//! The program audio mixer's cost (and with a mix-minus return per source): N sources (each a 440 Hz + N*110 Hz tone, Opus 20 ms frames
//! at 128 kbit/s) mixed, limited and encoded once per 20 ms, against the same N sources' audio
//! passed through the program bus unmixed (the switcher before the mixer) in the same run.
//! Reports the mixing thread's CPU time per 20 ms frame, that as a share of one core, the cost
//! per added source, allocations per frame, and the mean time a packet waits before it is mixed
//! (the mixer's added latency; the encoder adds its 6.5 ms look-ahead on top). CPU time is the
//! thread's own (CLOCK_THREAD_CPUTIME_ID), so other load on the machine does not count.
//!
//! cargo bench --bench audio_mix [-- SECONDS]

use std::time::{Instant, SystemTime};

use bytes::Bytes;
use sfu::hub::ReaderPacket;
use sfu::media::TrackKind;
use sfu::switch::ProgramBus;
use sfu::switch::mixer::{AudioMixer, FRAME, FRAME_SAMPLES, Mode, Strip};
use sfu::testing::alloc::{self, CountingAlloc};

/// This thread's CPU time in ns, from the clock itself (schedstat only moves at scheduler
/// ticks, too coarse for the pass-through's microseconds).
fn thread_cpu_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    })
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// One second of a tone as 50 Opus packets, replayed in a loop.
fn tone_packets(freq: f32) -> Vec<Bytes> {
    let mut encoder = opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::Audio)
        .expect("encoder");
    encoder
        .set_bitrate(opus::Bitrate::Bits(128_000))
        .expect("bitrate");
    let mut phase = 0f32;
    (0..50)
        .map(|_| {
            let mut pcm = vec![0f32; FRAME_SAMPLES * 2];
            for frame in pcm.chunks_exact_mut(2) {
                let v = 0.25 * phase.sin();
                frame[0] = v;
                frame[1] = v;
                phase = (phase + 2.0 * std::f32::consts::PI * freq / 48_000.0)
                    % (2.0 * std::f32::consts::PI);
            }
            Bytes::from(encoder.encode_vec_float(&pcm, 1500).expect("encode"))
        })
        .collect()
}

struct Run {
    cpu_per_frame_us: f64,
    allocs_per_frame: f64,
    mean_wait_ms: f64,
}

/// `sources` mixed for `frames` frames, with a mix-minus return for each if `returns`.
fn mixed(sources: &[Vec<Bytes>], frames: usize, returns: bool) -> Run {
    let start = Instant::now();
    let mut mixer = AudioMixer::new(start).expect("mixer");
    let on = Strip {
        gain_db: -6.0,
        mute: false,
        mode: Mode::On,
    };
    for i in 0..sources.len() {
        mixer.set_strip(&format!("s{i}"), on).expect("strip");
    }
    let names: Vec<String> = (0..sources.len()).map(|i| format!("s{i}")).collect();
    if returns {
        mixer
            .set_returns(names.iter().map(String::as_str))
            .expect("returns");
    }
    let mut now = start;
    let step = |mixer: &mut AudioMixer, k: usize, now: Instant| {
        for (i, packets) in sources.iter().enumerate() {
            let payload = packets[k % packets.len()].clone();
            mixer
                .handle_packet(now, &names[i], 0, k as u16, k as u32 * 960, payload)
                .expect("packet");
        }
        mixer.handle_timeout(now);
        while let Some(frame) = mixer.poll_frame() {
            std::hint::black_box(frame);
        }
        while let Some(frame) = mixer.poll_return() {
            std::hint::black_box(frame);
        }
    };
    // Warm up: buffers and decoders reach their steady state.
    for k in 0..100 {
        now += FRAME;
        step(&mut mixer, k, now);
    }
    let before = mixer.stats();
    let (cpu0, alloc0) = (thread_cpu_ns(), alloc::this_thread());
    for k in 100..100 + frames {
        now += FRAME;
        step(&mut mixer, k, now);
    }
    let (cpu, allocs) = (thread_cpu_ns() - cpu0, alloc::this_thread() - alloc0);
    let after = mixer.stats();
    let out = (after.frames_out - before.frames_out) as f64;
    Run {
        cpu_per_frame_us: cpu as f64 / 1000.0 / out,
        allocs_per_frame: allocs as f64 / out,
        mean_wait_ms: (after.wait_total_us - before.wait_total_us) as f64
            / (after.waits - before.waits).max(1) as f64
            / 1000.0,
    }
}

/// The same packets through a bus without a mixer: audio follows video, unmixed.
fn passthrough(sources: &[Vec<Bytes>], frames: usize) -> f64 {
    let start = Instant::now();
    let mut bus = ProgramBus::new(start, SystemTime::now(), (1, 102), (2, 111));
    let names: Vec<String> = (0..sources.len()).map(|i| format!("s{i}")).collect();
    // A program source, so its audio goes out (the others are read and dropped, as when pinned).
    bus.cut(start, &names[0], "operator");
    let keyframe = ReaderPacket {
        track: 0,
        epoch: 0,
        sequence: 0,
        timestamp: 0,
        marker: true,
        keyframe_start: true,
        arrival: start,
        payload: Bytes::from_static(&[0x65, 0x88]),
    };
    bus.handle_packet(start, &names[0], TrackKind::Video, &keyframe);
    let mut now = start;
    let cpu0 = thread_cpu_ns();
    for k in 0..frames {
        now += FRAME;
        for (i, packets) in sources.iter().enumerate() {
            let packet = ReaderPacket {
                track: 1,
                epoch: 0,
                sequence: k as u16,
                timestamp: (k * 960) as u32,
                marker: false,
                keyframe_start: false,
                arrival: now,
                payload: packets[k % packets.len()].clone(),
            };
            bus.handle_packet(now, &names[i], TrackKind::Audio, &packet);
        }
        bus.handle_timeout(now);
        while let Some(out) = bus.poll_output() {
            std::hint::black_box(out);
        }
    }
    (thread_cpu_ns() - cpu0) as f64 / 1000.0 / frames as f64
}

fn main() {
    let seconds: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    let frames = seconds * 50;
    let all: Vec<Vec<Bytes>> = (0..8)
        .map(|i| tone_packets(440.0 + 110.0 * i as f32))
        .collect();
    println!(
        "audio_mix: {seconds} s of audio per row ({frames} frames of {} ms), one thread",
        FRAME.as_millis()
    );
    println!(
        "{:>7} | {:>14} {:>11} {:>12} {:>14} | {:>18}",
        "sources", "mix us/frame", "% of core", "allocs/frame", "mean wait ms", "passthrough us/fr"
    );
    let mut costs = Vec::new();
    for n in [1usize, 2, 4, 8] {
        let run = mixed(&all[..n], frames, false);
        let plain = passthrough(&all[..n], frames);
        let share = run.cpu_per_frame_us / (FRAME.as_secs_f64() * 1e6) * 100.0;
        println!(
            "{n:>7} | {:>14.1} {:>10.2}% {:>12.2} {:>14.1} | {:>18.2}",
            run.cpu_per_frame_us, share, run.allocs_per_frame, run.mean_wait_ms, plain
        );
        costs.push((n, run.cpu_per_frame_us));
    }
    let with_returns = mixed(&all[..4], frames, true);
    println!(
        "4 sources + master + 4 mix-minus returns: {:.1} us/frame = {:.2}% of a core, {:.2} \
         allocations/frame",
        with_returns.cpu_per_frame_us,
        with_returns.cpu_per_frame_us / (FRAME.as_secs_f64() * 1e6) * 100.0,
        with_returns.allocs_per_frame
    );
    let (n0, c0) = costs[0];
    let (n1, c1) = costs[costs.len() - 1];
    let per_source = (c1 - c0) / (n1 - n0) as f64;
    println!(
        "per added source: {per_source:.1} us/frame ({:.2}% of a core); the rest (mix, limiter, \
         encode) {:.1} us/frame",
        per_source / (FRAME.as_secs_f64() * 1e6) * 100.0,
        c0 - per_source
    );
}
