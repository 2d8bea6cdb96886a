//! CPU cost of one synthetic test camera: drawing the pattern and encoding it with OpenH264
//! (the work a camera thread does per frame), at 720p30 and 1080p30.
//!
//! `cargo bench --bench camera_encode [-- FRAMES]` (default 300 frames per size). Prints ms per
//! frame for each stage and the share of one core a camera at 30 fps needs. Single-threaded, so
//! wall time is CPU time on an otherwise idle machine.

use std::time::{Duration, Instant};

use sfu::capture::encoder::{EncoderSettings, H264Encoder, OpenH264Encoder};
use sfu::capture::packetizer::{DEFAULT_MTU_PAYLOAD, H264Packetizer};
use sfu::capture::{FrameSource, PatternSource};

fn main() {
    let frames: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    println!("camera_encode: {frames} frames per size, OpenH264 (bundled source), 1 thread");
    for (width, height, bitrate) in [(1280, 720, 2_500_000), (1920, 1080, 5_000_000)] {
        if let Err(e) = run(width, height, bitrate, frames) {
            eprintln!("{width}x{height}: {e}");
            std::process::exit(1);
        }
    }
}

fn run(width: u32, height: u32, bitrate: u32, frames: u32) -> Result<(), String> {
    let fps = 30;
    let settings = EncoderSettings {
        width,
        height,
        fps,
        bitrate,
        keyframe_interval: fps,
    };
    let mut source = PatternSource::new("cam0", width, height).map_err(|e| e.to_string())?;
    let mut encoder = OpenH264Encoder::new(settings).map_err(|e| e.to_string())?;
    let mut packetizer = H264Packetizer::new(96, DEFAULT_MTU_PAYLOAD);
    let (mut draw, mut encode, mut packetize) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut bytes, mut packets, mut skipped) = (0usize, 0usize, 0u32);
    let start = Instant::now();
    for i in 0..frames {
        // Capture times 1/30 s apart, as the camera thread would stamp them.
        let at = start + Duration::from_secs(u64::from(i)) / fps;
        let t0 = Instant::now();
        let captured = source.next_frame(at).map_err(|e| e.to_string())?;
        let t1 = Instant::now();
        let unit = encoder
            .encode(&captured.image, u64::from(i) * 1000 / u64::from(fps), false)
            .map_err(|e| e.to_string())?;
        let t2 = Instant::now();
        let out = packetizer.packetize(&unit, at);
        let t3 = Instant::now();
        draw += t1 - t0;
        encode += t2 - t1;
        packetize += t3 - t2;
        bytes += unit.nals.iter().map(|n| n.len()).sum::<usize>();
        packets += out.len();
        skipped += u32::from(unit.nals.is_empty());
    }
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(frames);
    let total = per(draw + encode + packetize);
    println!(
        "{width}x{height}@{fps} target {:.1} Mbit/s: pattern {:.2} ms + encode {:.2} ms + packetize \
         {:.3} ms = {total:.2} ms/frame -> {:.0}% of one core at {fps} fps; output {:.2} Mbit/s, \
         {:.1} packets/frame, {skipped} frames skipped by the encoder",
        f64::from(bitrate) / 1e6,
        per(draw),
        per(encode),
        per(packetize),
        total * f64::from(fps) / 10.0,
        bytes as f64 * 8.0 * f64::from(fps) / f64::from(frames) / 1e6,
        packets as f64 / f64::from(frames),
    );
    Ok(())
}
