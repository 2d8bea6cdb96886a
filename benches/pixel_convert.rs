//! CPU cost of turning a V4L2 camera's buffer into the I420 that OpenH264 takes (the CPU path;
//! with MPP the VPU reads NV12/YUYV itself and this costs nothing), at 720p and 1080p.
//!
//! `cargo bench --bench pixel_convert [-- FRAMES]` (default 300 per size and format). Prints ms
//! per frame and the share of one core at 30 fps. Single-threaded.

use std::time::Instant;

use sfu::capture::frame::I420Frame;
use sfu::capture::source::{RawFormat, RawFrame, RawLayout};

fn main() {
    let frames: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    println!("pixel_convert: {frames} frames per size and format, 1 thread");
    for (width, height) in [(1280u32, 720u32), (1920, 1080)] {
        for format in [RawFormat::Yuyv, RawFormat::Nv12] {
            let (w, h) = (width as usize, height as usize);
            let stride = match format {
                RawFormat::Yuyv => w * 2,
                RawFormat::Nv12 => w,
            };
            let layout = RawLayout {
                format,
                width,
                height,
                stride,
                plane_rows: h,
            };
            // Varied bytes, so nothing is special-cased by the data.
            let data: Vec<u8> = (0..layout.len()).map(|i| (i * 7 % 251) as u8).collect();
            let frame = RawFrame {
                layout,
                data: &data,
            };
            let mut out = I420Frame::new(width, height).expect("frame");
            frame.to_i420(&mut out).expect("warm-up");
            let start = Instant::now();
            for _ in 0..frames {
                frame.to_i420(&mut out).expect("convert");
                std::hint::black_box(&out);
            }
            let ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(frames);
            println!(
                "{width}x{height} {format:?} -> I420: {ms:.3} ms/frame -> {:.1}% of one core at 30 fps",
                ms * 30.0 / 10.0
            );
        }
    }
}
