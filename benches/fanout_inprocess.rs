//! In-process fan-out cost: one publisher, N connected viewers, the engine alone.
//!
//! Every session is real (ICE, DTLS, SRTP) on the in-memory harness; the timed part is the
//! engine receiving the publisher's SRTP packets and producing every viewer's SRTP packet,
//! without sockets. Prints ns and heap allocations per packet x subscriber.
//!
//! cargo bench --bench fanout_inprocess [-- 100,500,1000]
use std::time::{Duration, Instant};

use sfu::engine::{EngineConfig, TransmitQueue};
use sfu::testing::alloc::{self, CountingAlloc};
use sfu::testing::client::{ClientRole, H264_PT};
use sfu::testing::harness::{H264Source, Harness};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const FRAMES: usize = 90;

/// One fan-out of `viewers` over `shares` threads (1: on the engine's thread, as with one
/// media thread; more: split with `Engine::send_unsent_split`, a scoped thread per share).
fn run(viewers: usize, shares: usize) -> (f64, f64, f64, u64) {
    let mut h = Harness::new(EngineConfig {
        max_sessions: viewers + 10,
        ..EngineConfig::default()
    })
    .expect("engine");
    let publisher = h.open(ClientRole::Publish, "bench").expect("publish");
    assert!(h.connect_all());
    for _ in 0..viewers {
        h.open(ClientRole::Play, "bench").expect("play");
    }
    assert!(h.connect_all(), "all viewers connect");
    h.discard_media = true;

    // Protect the publisher's packets up front: only the server's work is timed.
    let ssrc = h.clients[publisher].client.ssrcs.0;
    let mut source = H264Source::new(ssrc, H264_PT);
    // Datagrams by frame: a frame's packets arrive together and are read in one batch, as
    // the driver reads its socket.
    let mut frames = Vec::new();
    for _ in 0..FRAMES {
        for packet in source.next_frame() {
            h.clients[publisher].client.send_rtp(&packet).expect("send");
        }
        let mut frame = Vec::new();
        while let Some((_, d)) = h.clients[publisher].client.poll_transmit() {
            frame.push(d);
        }
        frames.push(frame);
    }
    let datagram_count: usize = frames.iter().map(Vec::len).sum();
    let from = h.clients[publisher].addr;
    let now = h.now;
    let mut out_packets = 0u64;
    let mut out_bytes = 0u64;
    let mut queues: Vec<TransmitQueue> = (0..shares).map(|_| TransmitQueue::default()).collect();
    let allocs_before = alloc::total();
    let start = Instant::now();
    for frame in &frames {
        for d in frame {
            h.engine.handle_datagram(now, from, d);
        }
        let split = if shares > 1 {
            h.engine.send_unsent_split(&mut queues, 256, |shares| {
                std::thread::scope(|scope| {
                    let (first, rest) = shares.split_first_mut().expect("two shares or more");
                    for share in rest {
                        scope.spawn(|| share.run());
                    }
                    first.run();
                })
            })
        } else {
            0
        };
        for queue in &mut queues[..split] {
            for (_, datagram) in queue.pending() {
                out_packets += 1;
                out_bytes += datagram.len() as u64;
            }
            queue.clear();
        }
        for (_, datagram) in h.engine.pending_transmits() {
            out_packets += 1;
            out_bytes += datagram.len() as u64;
        }
        h.engine.clear_transmits();
    }
    let elapsed = start.elapsed();
    let allocs = alloc::total() - allocs_before;
    let forwarded = (datagram_count * viewers) as f64;
    assert_eq!(
        out_packets as f64, forwarded,
        "every viewer got every packet"
    );
    let ns = elapsed.as_nanos() as f64 / forwarded;
    // Wall-clock ns over `shares` busy threads: per core it is `shares` times that.
    let per_core_subs = subscribers_per_core(ns * shares as f64, datagram_count, FRAMES);
    (ns, allocs as f64 / forwarded, per_core_subs, out_bytes)
}

/// Subscribers one core could serve at this per-packet cost, for a 30 fps stream with this
/// many packets per frame, ignoring the kernel's send cost (which is measured separately).
fn subscribers_per_core(ns_per_packet: f64, packets: usize, frames: usize) -> f64 {
    let packets_per_second = packets as f64 / frames as f64 * 30.0;
    1e9 / (ns_per_packet * packets_per_second)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 100, 500, 1000]);
    // `--shares=N`: split each frame's fan-out over N threads, as N media threads do.
    let shares: usize = std::env::args()
        .find_map(|a| a.strip_prefix("--shares=").and_then(|n| n.parse().ok()))
        .unwrap_or(1)
        .max(1);
    println!(
        "fan-out in process: 1 publisher, H.264 ~2.5 Mbit/s 30 fps, {FRAMES} frames, engine only (no sockets), {shares} thread(s); ns are wall-clock"
    );
    println!(
        "{:>9} {:>16} {:>18} {:>22}",
        "viewers", "ns/pkt x sub", "allocs/pkt x sub", "subs/core (engine)"
    );
    for n in sizes {
        let started = Instant::now();
        let (ns, allocs, subs, _) = run(n, shares);
        println!("{n:>9} {ns:>16.0} {allocs:>18.2} {subs:>22.0}");
        if started.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
}
