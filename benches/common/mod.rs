//! What the socket benchmarks share: the sending thread's CPU time and draining receivers.

use std::net::UdpSocket;

/// This thread's CPU time so far, in ns (`/proc/thread-self/schedstat`; 0 where unreadable).
pub fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Reads every datagram waiting on `receivers` (non-blocking); returns how many.
pub fn drain(receivers: &[UdpSocket]) -> usize {
    let mut buf = [0u8; 65_536];
    let mut n = 0;
    for r in receivers {
        while r.recv_from(&mut buf).is_ok() {
            n += 1;
        }
    }
    n
}
