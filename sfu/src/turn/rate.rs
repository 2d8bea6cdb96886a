//! Per-client token buckets for the endpoint that hands out TURN credentials (relay capacity
//! costs money or bandwidth). Sans-IO: time is a parameter.
//!
//! Each client may make `burst` requests at once, then one every `60 / per_minute` seconds.
//! IPv6 clients are keyed by their /64 (one subscriber usually holds a whole /64, so per-address
//! buckets would be trivial to dodge). The table holds at most `max_clients` buckets; buckets
//! that have refilled are dropped first, and when every bucket is busy new clients wait.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Buckets kept before idle ones are dropped.
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// See the module documentation.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    max_clients: usize,
    buckets: HashMap<IpAddr, Bucket>,
}

/// The bucket key: the address, or its /64 for IPv6 (IPv4-mapped IPv6 counts as IPv4).
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

impl RateLimiter {
    /// `per_minute` sustained requests per client after a burst of `burst` (both at least 1).
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self::with_capacity(per_minute, burst, DEFAULT_MAX_CLIENTS)
    }

    pub fn with_capacity(per_minute: u32, burst: u32, max_clients: usize) -> Self {
        Self {
            per_second: f64::from(per_minute.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
            max_clients: max_clients.max(1),
            buckets: HashMap::new(),
        }
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        // A clock that went backwards counts as no time passed.
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = now;
    }

    /// Takes one request from `client`'s bucket, or says how long until one is allowed.
    pub fn check(&mut self, now: Instant, client: IpAddr) -> Result<(), Duration> {
        let key = key(client);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_clients {
            let (per_second, burst) = (self.per_second, self.burst);
            self.buckets.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
                b.tokens + elapsed * per_second < burst
            });
            if self.buckets.len() >= self.max_clients {
                return Err(Duration::from_secs(1));
            }
        }
        let mut bucket = self.buckets.get(&key).copied().unwrap_or(Bucket {
            tokens: self.burst,
            at: now,
        });
        self.refill(&mut bucket, now);
        let result = if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        };
        self.buckets.insert(key, bucket);
        result
    }

    /// Clients with a bucket now.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

/// A `Retry-After` value in whole seconds (at least 1) for a wait.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip literal")
    }

    #[test]
    fn burst_then_steady_rate() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(6, 3); // one every 10 s after 3
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(limiter.check(t0, a), Ok(()));
        }
        let wait = limiter.check(t0, a).expect_err("over the burst");
        assert_eq!(wait, Duration::from_secs(10));
        assert_eq!(retry_after_secs(wait), 10);
        // Another client is not affected.
        assert_eq!(limiter.check(t0, ip("192.0.2.2")), Ok(()));
        // After 4 s, 6 s are left; after 10 s one request goes through, the next waits again.
        let wait = limiter
            .check(t0 + Duration::from_secs(4), a)
            .expect_err("still empty");
        assert_eq!(retry_after_secs(wait), 6);
        assert_eq!(limiter.check(t0 + Duration::from_secs(10), a), Ok(()));
        assert!(limiter.check(t0 + Duration::from_secs(10), a).is_err());
        // A long pause refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(3_600);
        for _ in 0..3 {
            assert_eq!(limiter.check(later, a), Ok(()));
        }
        assert!(limiter.check(later, a).is_err());
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(1, 1);
        assert_eq!(limiter.check(t0, ip("2001:db8:1:2::1")), Ok(()));
        assert!(limiter.check(t0, ip("2001:db8:1:2:ffff::9")).is_err());
        assert_eq!(limiter.check(t0, ip("2001:db8:1:3::1")), Ok(()));
        // IPv4-mapped addresses are the IPv4 client.
        assert_eq!(limiter.check(t0, ip("198.51.100.4")), Ok(()));
        assert!(limiter.check(t0, ip("::ffff:198.51.100.4")).is_err());
    }

    #[test]
    fn table_is_bounded_and_drops_idle_clients_first() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::with_capacity(60, 2, 3);
        for i in 1..=3 {
            assert_eq!(limiter.check(t0, ip(&format!("10.0.0.{i}"))), Ok(()));
        }
        // All three are busy (1 of 2 tokens used): a fourth client must wait.
        assert_eq!(
            limiter.check(t0, ip("10.0.0.4")),
            Err(Duration::from_secs(1))
        );
        assert_eq!(limiter.tracked(), 3);
        // A second later the buckets have refilled and are dropped to make room.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(limiter.check(t1, ip("10.0.0.4")), Ok(()));
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn clock_going_backwards_does_not_refill_or_panic() {
        let t0 = Instant::now() + Duration::from_secs(100);
        let mut limiter = RateLimiter::new(60, 1);
        let a = ip("192.0.2.1");
        assert_eq!(limiter.check(t0, a), Ok(()));
        assert!(limiter.check(t0 - Duration::from_secs(50), a).is_err());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2_001)), 3);
    }
}
