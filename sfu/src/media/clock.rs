//! The wall clock, paired once with the monotonic one. Sans-IO code receives time as
//! `Instant`s; where it must say what time of day a moment was (NTP times in sender reports and
//! capture-time extensions, EXT-X-PROGRAM-DATE-TIME), it asks a [`WallClock`] made once at the
//! start, so the answer never jumps when the system clock is stepped.

use std::time::{Instant, SystemTime};

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A fixed pairing of the monotonic and the wall clock.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    pub instant: Instant,
    pub system: SystemTime,
}

impl WallClock {
    /// Reads both clocks: the one clock read of the sans-IO layers, made by whoever builds them.
    pub fn now() -> Self {
        Self {
            instant: Instant::now(),
            system: SystemTime::now(),
        }
    }

    /// `instant` on the wall clock.
    pub fn at(&self, instant: Instant) -> SystemTime {
        match instant.checked_duration_since(self.instant) {
            Some(after) => self.system + after,
            None => self.system - self.instant.duration_since(instant),
        }
    }

    /// `instant` on the wall clock as NTP 32.32 (seconds since 1900).
    pub fn ntp_at(&self, instant: Instant) -> u64 {
        let since = self
            .at(instant)
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        ((since.as_secs() + NTP_UNIX_OFFSET) << 32)
            + ((u64::from(since.subsec_nanos()) << 32) / 1_000_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ntp_time_of_a_known_moment() {
        let t0 = Instant::now();
        let clock = WallClock {
            instant: t0,
            // 2000-01-01T00:00:00Z, half a second in.
            system: std::time::UNIX_EPOCH + Duration::from_millis(946_684_800_500),
        };
        let ntp = clock.ntp_at(t0 + Duration::from_secs(1));
        assert_eq!(ntp >> 32, 946_684_801 + NTP_UNIX_OFFSET);
        assert_eq!(ntp & 0xffff_ffff, 1 << 31);
        assert_eq!(clock.at(t0), clock.system);
    }
}
