//! Sign-in attempts, rate-limited per client address and per user name (sans-IO: `now` in).
//!
//! Every attempt counts against its address; failed ones also against the name tried. Over
//! [`WINDOW`], an address may make [`PER_IP`] attempts and a name may see [`PER_USER`]
//! failures; beyond that sign-in is refused (429 with `Retry-After`) until the oldest counted
//! attempt is older than the window. A success clears the name's failures. So a guesser gets
//! a handful of tries per window from each address, and spreading over many addresses still
//! gets few tries at any one name.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The window attempts are counted over.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Attempts per address per window.
pub const PER_IP: usize = 10;
/// Failed attempts per user name per window.
pub const PER_USER: usize = 5;
/// Addresses and names remembered at most (the oldest are forgotten beyond it).
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginLimiter {
    by_ip: HashMap<IpAddr, VecDeque<Instant>>,
    by_user: HashMap<String, VecDeque<Instant>>,
}

impl LoginLimiter {
    /// May `ip` try to sign in as `user` now? `Err(wait)`: not before `wait` has passed.
    /// An allowed attempt is counted against the address.
    pub fn attempt(&mut self, now: Instant, ip: IpAddr, user: &str) -> Result<(), Duration> {
        let ip_wait = wait(self.by_ip.get_mut(&ip), now, PER_IP);
        let user_wait = wait(self.by_user.get_mut(user), now, PER_USER);
        if let Some(longest) = ip_wait.into_iter().chain(user_wait).max() {
            return Err(longest);
        }
        if self.by_ip.len() >= MAX_KEYS {
            prune(&mut self.by_ip, now);
        }
        self.by_ip.entry(ip).or_default().push_back(now);
        Ok(())
    }

    /// The attempt failed: counts against `user`.
    pub fn failed(&mut self, now: Instant, user: &str) {
        if self.by_user.len() >= MAX_KEYS {
            prune(&mut self.by_user, now);
        }
        self.by_user
            .entry(user.to_owned())
            .or_default()
            .push_back(now);
    }

    /// The attempt succeeded: the name's failures are forgotten.
    pub fn succeeded(&mut self, user: &str) {
        self.by_user.remove(user);
    }
}

/// How long until one more attempt fits in `times` (after dropping those older than the
/// window), if it does not now.
fn wait(times: Option<&mut VecDeque<Instant>>, now: Instant, limit: usize) -> Option<Duration> {
    let times = times?;
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
    {
        times.pop_front();
    }
    if times.len() < limit {
        return None;
    }
    let oldest = *times.front()?;
    Some(WINDOW.saturating_sub(now.saturating_duration_since(oldest)))
}

fn prune<K: std::hash::Hash + Eq>(map: &mut HashMap<K, VecDeque<Instant>>, now: Instant) {
    map.retain(|_, times| {
        times
            .back()
            .is_some_and(|t| now.saturating_duration_since(*t) < WINDOW)
    });
    if map.len() >= MAX_KEYS {
        map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_address_and_per_user_on_a_virtual_clock() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::default();
        let a = ip("203.0.113.7");
        // One address: PER_IP attempts, then a wait until the first is out of the window.
        for i in 0..PER_IP {
            let now = t0 + Duration::from_secs(i as u64);
            assert_eq!(l.attempt(now, a, &format!("user{i}")), Ok(()));
        }
        let now = t0 + Duration::from_secs(20);
        assert_eq!(
            l.attempt(now, a, "x"),
            Err(WINDOW - Duration::from_secs(20))
        );
        assert_eq!(l.attempt(t0 + WINDOW, a, "x"), Ok(()));

        // One name from many addresses: PER_USER failures, then refused from anywhere.
        for i in 0..PER_USER {
            let from = ip(&format!("198.51.100.{i}"));
            assert_eq!(l.attempt(t0, from, "ana"), Ok(()));
            l.failed(t0, "ana");
        }
        assert!(l.attempt(t0, ip("192.0.2.99"), "ana").is_err());
        // Another name from a fresh address is not held up.
        assert_eq!(l.attempt(t0, ip("192.0.2.99"), "bo"), Ok(()));
        // A success clears the name.
        l.succeeded("ana");
        assert_eq!(l.attempt(t0, ip("192.0.2.98"), "ana"), Ok(()));
    }
}
