//! When a source's media was made, on the server's clock, steadier than its packets' arrival.
//!
//! The program's sender reports tell players which instant each RTP timestamp belongs to, and a
//! player lines audio up with video by them. Taking each packet's arrival as its instant passes
//! the network's and the sender's jitter straight into that mapping: a video frame whose packets
//! came 30 ms late would be placed 30 ms late, and the mixer's audio with it. A source's RTP
//! timestamps, though, are its capture clock. [`ContentClock`] maps them onto the server's clock
//! with the smallest transit seen over the last [`WINDOW`] (`arrival - timestamp / rate`, a
//! sliding minimum): the packet that came fastest shows where the timeline lies, the others are
//! placed on it however late they came. A timestamp jump (a new publisher, a restarted encoder)
//! starts over; a path that became slower is followed once the faster packets left the window.
//!
//! Sans-IO and allocation-free once warm: the window is a monotonic queue with a fixed cap.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back the fastest packet is looked for.
pub const WINDOW: Duration = Duration::from_secs(2);
/// A transit this far from the window's fastest is a new timeline, not jitter.
const JUMP: Duration = Duration::from_secs(1);
/// At most this many candidates are kept (a monotonic queue is short in practice; the cap
/// bounds a pathological sender).
const MAX_KEPT: usize = 512;

/// One track's timestamps -> instants.
#[derive(Debug)]
pub struct ContentClock {
    rate: u64,
    /// Arrival of the first packet: transits are kept as nanoseconds relative to it.
    base: Option<Instant>,
    /// The last timestamp, extended to 64 bits (wraps unwrapped).
    last: Option<i64>,
    /// (arrival, transit ns) with increasing transits: the front is the window's minimum.
    fastest: VecDeque<(Instant, i128)>,
}

impl ContentClock {
    /// A clock for a track with `rate` Hz RTP timestamps (90 000 video, 48 000 Opus).
    pub fn new(rate: u32) -> Self {
        Self {
            rate: u64::from(rate.max(1)),
            base: None,
            last: None,
            fastest: VecDeque::with_capacity(64),
        }
    }

    /// Forgets the timeline (a new publisher).
    pub fn reset(&mut self) {
        self.base = None;
        self.last = None;
        self.fastest.clear();
    }

    /// The instant the packet with `timestamp` that arrived at `arrival` belongs to: never
    /// after its arrival.
    pub fn content_at(&mut self, arrival: Instant, timestamp: u32) -> Instant {
        let base = *self.base.get_or_insert(arrival);
        let extended = match self.last {
            None => i64::from(timestamp),
            Some(last) => last + i64::from(timestamp.wrapping_sub(last as u32) as i32),
        };
        self.last = Some(extended);
        let media_ns = i128::from(extended) * 1_000_000_000 / i128::from(self.rate);
        let transit = arrival.saturating_duration_since(base).as_nanos() as i128 - media_ns;

        if let Some(&(_, min)) = self.fastest.front()
            && (transit - min).unsigned_abs() > JUMP.as_nanos()
        {
            self.fastest.clear();
        }
        while self.fastest.back().is_some_and(|&(_, t)| t >= transit) {
            self.fastest.pop_back();
        }
        if self.fastest.len() == MAX_KEPT {
            self.fastest.pop_front();
        }
        self.fastest.push_back((arrival, transit));
        while self
            .fastest
            .front()
            .is_some_and(|&(at, _)| arrival.saturating_duration_since(at) > WINDOW)
        {
            self.fastest.pop_front();
        }
        let min = self.fastest.front().map_or(transit, |&(_, t)| t);
        let offset_ns = min + media_ns;
        if offset_ns <= 0 {
            return base;
        }
        let content = base + Duration::from_nanos(offset_ns as u64);
        content.min(arrival)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn late_packets_are_placed_on_the_fastest_packets_timeline() {
        let t0 = Instant::now();
        let mut clock = ContentClock::new(90_000);
        // 25 fps; every third frame 25 ms late, one 60 ms late.
        let mut placed = Vec::new();
        for i in 0..60u32 {
            let late = match i {
                17 => 60,
                i if i % 3 == 1 => 25,
                _ => 0,
            };
            let arrival = t0 + 40 * MS * i + late * MS;
            let content = clock.content_at(arrival, 1_000 + i * 3600);
            placed.push(content.duration_since(t0).as_micros() as i64 - i64::from(i) * 40_000);
        }
        // Every frame lands on the on-time frames' line.
        assert!(placed.iter().all(|d| d.abs() <= 1), "{placed:?}");
    }

    #[test]
    fn the_timestamp_wraps_without_a_jump() {
        let t0 = Instant::now();
        let mut clock = ContentClock::new(48_000);
        let start = u32::MAX - 960 * 5;
        for i in 0..20u32 {
            let arrival = t0 + 20 * MS * i + 3 * MS;
            let content = clock.content_at(arrival, start.wrapping_add(960 * i));
            assert_eq!(content, t0 + 20 * MS * i + 3 * MS, "packet {i}");
        }
    }

    #[test]
    fn a_new_timeline_starts_over_and_a_slower_path_is_followed_after_the_window() {
        let t0 = Instant::now();
        let mut clock = ContentClock::new(48_000);
        for i in 0..10u32 {
            clock.content_at(t0 + 20 * MS * i, 960 * i);
        }
        // A new publisher: timestamps from elsewhere. Placed at its own arrival, not at 1 s+ off.
        let t1 = t0 + 300 * MS;
        assert_eq!(clock.content_at(t1, 5_000_000), t1);
        // The path gets 40 ms slower: placed early (on the old fastest) until the window passed.
        let mut ts = 5_000_000u32;
        let mut last = Duration::ZERO;
        for i in 1..=150u32 {
            ts = ts.wrapping_add(960);
            let arrival = t1 + 20 * MS * i + 40 * MS;
            last = arrival - clock.content_at(arrival, ts);
        }
        assert_eq!(
            last,
            Duration::ZERO,
            "after {WINDOW:?} the slower path is the timeline"
        );
    }

    #[test]
    fn content_is_never_after_arrival_even_for_a_timestamp_from_the_future() {
        let t0 = Instant::now();
        let mut clock = ContentClock::new(90_000);
        clock.content_at(t0 + 100 * MS, 9_000); // arrived 100 ms after "0", ts = 100 ms
        let early = t0 + 120 * MS;
        assert!(clock.content_at(early, 90_000) <= early); // ts says 1 s: a jump, starts over
    }
}
