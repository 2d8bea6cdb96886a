//! A hard cap on one publisher's inbound media rate: a token bucket one second deep. Packets
//! beyond it are dropped before decryption, so a publisher that ignores REMB cannot make the
//! server decrypt, fan out and mux more than the cap. Sans-IO: time is a parameter.

use std::time::Instant;

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct BitrateCap {
    bytes_per_second: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl BitrateCap {
    /// A cap of `bits_per_second` (averaged over a second); a keyframe burst up to one
    /// second's worth passes.
    pub fn new(bits_per_second: u64) -> Self {
        let bytes_per_second = (bits_per_second as f64 / 8.0).max(1.0);
        Self {
            bytes_per_second,
            tokens: bytes_per_second,
            at: None,
        }
    }

    /// Whether a datagram of `bytes` fits under the cap now (and takes its share if so).
    pub fn admit(&mut self, now: Instant, bytes: usize) -> bool {
        if let Some(at) = self.at {
            let elapsed = now.saturating_duration_since(at).as_secs_f64();
            self.tokens =
                (self.tokens + elapsed * self.bytes_per_second).min(self.bytes_per_second);
        }
        self.at = Some(now);
        let cost = bytes as f64;
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn passes_the_cap_and_drops_the_excess() {
        // 800 kbit/s = 100 000 bytes/s; send 1000-byte packets at 200 000 bytes/s for 10 s.
        let mut cap = BitrateCap::new(800_000);
        let start = Instant::now();
        let mut passed = 0u64;
        for i in 0..2000u64 {
            let now = start + Duration::from_millis(i * 5);
            if cap.admit(now, 1000) {
                passed += 1000;
            }
        }
        // One second of burst plus ten seconds at the cap, give or take a packet.
        assert!((1_090_000..=1_101_000).contains(&passed), "{passed}");

        // Under the cap nothing is dropped.
        let mut cap = BitrateCap::new(800_000);
        assert!((0..1000u64).all(|i| cap.admit(start + Duration::from_millis(i * 20), 1000)));
    }
}
