//! The disk guard, sans-IO: free space samples in, a decision out. The service samples the
//! file system (`statvfs`) every [`super::service`] tick and acts on [`DiskGuard::check`].
//!
//! The reserve is the larger of `min_free_bytes` and `min_free_percent` of the file system.
//! The guard acts while there is still room: when what is free drops below the reserve plus
//! what the recordings write in [`HEADROOM`] at the current rate, so one tick's writes can
//! never reach the reserve, let alone 100 %.

use std::time::{Duration, Instant};

/// How far ahead the guard looks at the current write rate.
pub const HEADROOM: Duration = Duration::from_secs(2);
/// The rate is averaged over this window.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// What to do when the disk runs low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Retention {
    /// Delete the oldest finished recordings until there is room again.
    DeleteOldest,
    /// Stop recording (an event says why).
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskLimits {
    pub min_free_bytes: u64,
    /// 0-100.
    pub min_free_percent: f64,
}

// `min_free_percent` is a checked number from the configuration, never NaN: equality is total.
impl Eq for DiskLimits {}

impl Default for DiskLimits {
    fn default() -> Self {
        Self {
            min_free_bytes: 1 << 30,
            min_free_percent: 5.0,
        }
    }
}

/// One `statvfs` of the recording directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DiskSpace {
    /// Bytes an unprivileged writer may still use.
    pub available: u64,
    pub total: u64,
}

/// What the guard says after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskAction {
    Fine,
    /// Free `bytes` (at least) by deleting old recordings, or stop when retention says so.
    Low {
        bytes: u64,
    },
}

/// Watches free space and the write rate.
#[derive(Debug)]
pub struct DiskGuard {
    limits: DiskLimits,
    /// (when, bytes written in total) samples within the rate window.
    samples: std::collections::VecDeque<(Instant, u64)>,
    last: Option<DiskSpace>,
}

impl DiskGuard {
    pub fn new(limits: DiskLimits) -> Self {
        Self {
            limits,
            samples: std::collections::VecDeque::new(),
            last: None,
        }
    }

    /// New limits (a configuration reload); the rate samples stay.
    pub fn set_limits(&mut self, limits: DiskLimits) {
        self.limits = limits;
    }

    /// The free space to keep on a file system of `total` bytes.
    pub fn reserve(&self, total: u64) -> u64 {
        let percent = (total as f64 * self.limits.min_free_percent / 100.0) as u64;
        self.limits.min_free_bytes.max(percent)
    }

    /// Recordings' write rate, bytes per second, over the last few seconds.
    pub fn rate(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, b0)), Some(&(t1, b1))) if t1 > t0 => {
                b1.saturating_sub(b0) as f64 / (t1 - t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Bytes usable before the reserve.
    pub fn usable(&self) -> Option<u64> {
        self.last
            .map(|s| s.available.saturating_sub(self.reserve(s.total)))
    }

    /// How long recording can go on at the current rate before the reserve; `None` when
    /// nothing is written.
    pub fn time_left(&self) -> Option<Duration> {
        let rate = self.rate();
        let usable = self.usable()?;
        (rate > 0.0).then(|| Duration::from_secs_f64(usable as f64 / rate))
    }

    pub fn last(&self) -> Option<DiskSpace> {
        self.last
    }

    /// A sample: the file system's space at `now`, and the bytes recordings have written in
    /// total (a counter that only grows).
    pub fn check(&mut self, now: Instant, space: DiskSpace, written: u64) -> DiskAction {
        self.samples.push_back((now, written));
        while self
            .samples
            .front()
            .is_some_and(|&(t, _)| now.duration_since(t) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        self.last = Some(space);
        let ahead = (self.rate() * HEADROOM.as_secs_f64()) as u64;
        let needed = self.reserve(space.total).saturating_add(ahead);
        if space.available < needed {
            DiskAction::Low {
                bytes: needed - space.available,
            }
        } else {
            DiskAction::Fine
        }
    }

    /// Whether a new recording may start: more than the reserve is free.
    pub fn may_start(&self) -> bool {
        self.last
            .is_none_or(|s| s.available > self.reserve(s.total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn acts_before_the_reserve_at_the_current_rate() {
        let mut guard = DiskGuard::new(DiskLimits {
            min_free_bytes: 10 * MB,
            min_free_percent: 5.0,
        });
        let t0 = Instant::now();
        let total = 1000 * MB;
        assert_eq!(guard.reserve(total), 50 * MB, "5 % beats 10 MB");
        let space = |available| DiskSpace { available, total };
        assert_eq!(guard.check(t0, space(500 * MB), 0), DiskAction::Fine);
        assert!(guard.may_start());
        // 2 MB/s: 4 MB headroom (2 s) on top of the 50 MB reserve.
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(guard.check(t1, space(490 * MB), 10 * MB), DiskAction::Fine);
        assert!((guard.rate() - 2.0 * MB as f64).abs() < 1.0);
        assert_eq!(guard.time_left(), Some(Duration::from_secs(220)));
        let t2 = t1 + Duration::from_secs(5);
        assert_eq!(
            guard.check(t2, space(53 * MB), 20 * MB),
            DiskAction::Low { bytes: MB },
            "53 MB free < 50 MB reserve + 4 MB headroom"
        );
        assert!(guard.may_start());
        guard.check(t2, space(50 * MB), 20 * MB);
        assert!(!guard.may_start(), "no start at the reserve");
    }
}
