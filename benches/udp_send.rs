//! The kernel's cost of sending a fan-out flush on loopback: one delta frame (8 packets,
//! 7 x 1208 bytes and a shorter last one) to each of N viewers, queued packet by packet as
//! fan-out does (every viewer gets packet 1, then packet 2, ...).
//!
//! Three ways: `SendBatch` (sendmmsg, 64 datagrams per call, in queue order: the driver before
//! GSO), `GsoSender` without GSO (grouped by viewer, one datagram per message) and `GsoSender`
//! with GSO (a viewer's equal-sized packets as one UDP_SEGMENT message). Reports wall time and
//! the sending thread's CPU time (`/proc/thread-self/schedstat`) per datagram; receivers are
//! drained between rounds, untimed.
//!
//! cargo bench --bench udp_send [-- 500]

use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use sfu::net::udp_batch::{GsoSender, SendBatch};

mod common;
use common::{drain, thread_cpu_ns};

const ROUNDS: usize = 60;

fn main() {
    let viewers: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(500);
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket2::SockRef::from(&tx)
        .set_send_buffer_size(4 << 20)
        .expect("sndbuf");
    let receivers: Vec<UdpSocket> = (0..viewers)
        .map(|_| {
            let r = UdpSocket::bind("127.0.0.1:0").expect("bind");
            r.set_nonblocking(true).expect("nonblocking");
            socket2::SockRef::from(&r)
                .set_recv_buffer_size(1 << 20)
                .expect("rcvbuf");
            r
        })
        .collect();
    let addrs: Vec<SocketAddr> = receivers.iter().map(|r| r.local_addr().unwrap()).collect();
    let sizes = [1208usize, 1208, 1208, 1208, 1208, 1208, 1208, 1000];
    let payloads: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![0x80; n]).collect();
    let mut datagrams: Vec<(SocketAddr, &[u8])> = Vec::new();
    for p in &payloads {
        for &a in &addrs {
            datagrams.push((a, &p[..]));
        }
    }
    println!(
        "UDP send on loopback: {viewers} viewers x {} packets per flush, {ROUNDS} flushes",
        sizes.len()
    );
    println!(
        "{:<34} {:>14} {:>14} {:>10}",
        "path", "wall ns/dgram", "cpu ns/dgram", "delivered"
    );
    for mode in 0..3 {
        let mut gso = GsoSender::new(mode == 2);
        let (mut wall, mut cpu, mut delivered, mut dropped) = (0u128, 0u64, 0usize, 0usize);
        for _ in 0..ROUNDS {
            let (start, cpu0) = (Instant::now(), thread_cpu_ns());
            if mode == 0 {
                let mut batch = SendBatch::new();
                for &(to, d) in &datagrams {
                    batch.push(to, d);
                    if batch.is_full() {
                        dropped += batch.send_all(&tx);
                        batch.clear();
                    }
                }
                dropped += batch.send_all(&tx);
            } else {
                dropped += gso.send(&tx, &datagrams);
            }
            cpu += thread_cpu_ns() - cpu0;
            wall += start.elapsed().as_nanos();
            delivered += drain(&receivers);
        }
        let n = (ROUNDS * datagrams.len()) as f64;
        let name = [
            "sendmmsg x64, queue order (before)",
            "grouped by viewer, no GSO",
            "grouped by viewer, UDP GSO",
        ][mode];
        println!(
            "{name:<34} {:>14.0} {:>14.0} {:>9.1}%{}",
            wall as f64 / n,
            cpu as f64 / n,
            100.0 * delivered as f64 / n,
            if dropped > 0 {
                format!("  ({dropped} refused)")
            } else {
                String::new()
            }
        );
    }
}
