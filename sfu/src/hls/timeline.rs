//! RTP timestamps (32 bits, wrapping) extended to 64 bits, for the segmenter's decode times.

/// Extends wrapping 32-bit timestamps: each one is placed within ±2^31 of the previous one.
#[derive(Debug, Default, Clone, Copy)]
pub struct TimestampUnwrapper {
    last: Option<u64>,
}

impl TimestampUnwrapper {
    pub fn new() -> Self {
        Self::default()
    }

    /// The 64-bit timestamp; the first one is offset by 2^32 so a small step back stays positive.
    pub fn unwrap(&mut self, timestamp: u32) -> u64 {
        let extended = match self.last {
            None => (1u64 << 32) + u64::from(timestamp),
            Some(last) => {
                let delta = timestamp.wrapping_sub(last as u32) as i32;
                last.saturating_add_signed(i64::from(delta))
            }
        };
        self.last = Some(extended);
        extended
    }

    /// Forget the past (after a discontinuity): the next timestamp starts a new run.
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_forward_and_steps_back() {
        let mut u = TimestampUnwrapper::new();
        let a = u.unwrap(u32::MAX - 1000);
        let b = u.unwrap(2000);
        assert_eq!(b - a, 3001);
        let c = u.unwrap(1000);
        assert_eq!(b - c, 1000);
        let d = u.unwrap(u32::MAX - 10);
        assert_eq!(c - d, 1011, "back across the wrap");
        u.reset();
        assert_eq!(u.unwrap(5), (1 << 32) + 5);
    }
}
