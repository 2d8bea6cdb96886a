//! How soon an LL-HLS part is available after its frames were captured: one 720p30 test camera
//! (OpenH264, one keyframe per second) into the hub, the LL-HLS muxer reading it like in the
//! server, and a watcher that notes the wall clock each time a new part is published.
//!
//! `cargo bench --bench hls_latency [-- PARTS]` (default 150 parts, ~30 s). Prints p50/p99/max
//! of two delays, in ms:
//! - first frame -> part available: from the arrival of the part's first frame at the hub (its
//!   EXT-X-PROGRAM-DATE-TIME position) to the part being listed; about one part duration, since a
//!   part closes when it holds PART-TARGET of media;
//! - last frame -> part available: from the end of the part's media to its publication, i.e.
//!   what the muxer adds beyond the part's own length (a part closes when the next frame arrives).
//!
//! Then the cost of one media playlist request at the origin: its own render against the render
//! shared by every request for the same published state (`LiveStream::media_playlist`).

use std::time::{Duration, Instant, SystemTime};

use sfu::capture::{CameraSettings, EncoderSettings, start_test_cameras};
use sfu::engine::SharedEngine;
use sfu::engine::{Engine, EngineConfig};
use sfu::hls::{HlsService, LiveConfig, Segmenter, media_playlist};

fn main() {
    let parts: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(150);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(parts));
}

/// The newest published part: (msn, index, wall clock of its first frame, its duration).
fn newest_part(s: &Segmenter) -> Option<(u64, u32, SystemTime, f64)> {
    let segment = s
        .open_segment()
        .filter(|seg| !seg.parts.is_empty())
        .or_else(|| s.segments().last())?;
    let start = segment.program_date_time?;
    let before: f64 = segment.parts[..segment.parts.len() - 1]
        .iter()
        .map(|p| p.duration)
        .sum();
    let part = segment.parts.last()?;
    Some((
        segment.msn,
        part.index,
        start + Duration::from_secs_f64(before),
        part.duration,
    ))
}

async fn run(parts: usize) {
    let engine = SharedEngine::new(Engine::new(EngineConfig::default()).expect("engine"));
    let hls = HlsService::new(engine.clone(), LiveConfig::default());
    tokio::spawn(hls.clone().run());
    let _camera = start_test_cameras(
        &engine,
        &[CameraSettings {
            name: "cam0".into(),
            encoder: EncoderSettings {
                width: 1280,
                height: 720,
                fps: 30,
                bitrate: 2_500_000,
                keyframe_interval: 30,
            },
            mtu_payload: 1200,
        }],
    )
    .expect("test camera");
    let started = Instant::now();
    let stream = loop {
        if let Some(stream) = hls.get("cam0") {
            break stream;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no muxer");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let mut changes = stream.subscribe();
    let mut last = None;
    let (mut from_first, mut from_last) = (Vec::new(), Vec::new());
    // Skip the first parts: they come from the keyframe cache, stamped when the muxer attached.
    let mut skip = 5;
    while from_first.len() < parts {
        if changes.changed().await.is_err() {
            break;
        }
        let now = SystemTime::now();
        let Some((msn, index, start, duration)) = stream.read(newest_part) else {
            continue;
        };
        if last == Some((msn, index)) {
            continue;
        }
        last = Some((msn, index));
        if skip > 0 {
            skip -= 1;
            continue;
        }
        let first = now.duration_since(start).unwrap_or_default();
        if std::env::var_os("HLS_LATENCY_TRACE").is_some() {
            println!(
                "part {msn}.{index}: start {start:?} dur {duration:.3} published {now:?} first {first:?}"
            );
        }
        from_first.push(first.as_secs_f64() * 1000.0);
        from_last.push((first.as_secs_f64() - duration) * 1000.0);
    }
    println!(
        "hls_latency: 1280x720 30 fps OpenH264 camera, PART-TARGET 0.2 s, {} parts",
        from_first.len()
    );
    report("first frame -> part available", &mut from_first);
    report("last frame  -> part available", &mut from_last);

    // What one media playlist request costs the origin: a render of its own (every request,
    // before identical requests shared one) against the shared render of the current state.
    const RENDERS: u32 = 2000;
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..RENDERS {
        bytes = std::hint::black_box(stream.read(|s| media_playlist(s, false))).len();
    }
    let own = started.elapsed() / RENDERS;
    let started = Instant::now();
    for _ in 0..RENDERS {
        std::hint::black_box(stream.media_playlist(false));
    }
    let shared = started.elapsed() / RENDERS;
    println!(
        "media playlist per request ({bytes} bytes): own render {:.1} µs, shared render {:.2} µs",
        own.as_secs_f64() * 1e6,
        shared.as_secs_f64() * 1e6
    );
}

fn report(label: &str, values: &mut [f64]) {
    values.sort_by(f64::total_cmp);
    let at = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize];
    println!(
        "{label}: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        at(0.5),
        at(0.99),
        values[values.len() - 1]
    );
}
