//! The credential cache for providers that issue credentials remotely (Cloudflare), as a
//! sans-IO state machine: time is a parameter, the driver does the fetching.
//!
//! - A fetch is due when nothing is cached, or 3/4 of the cached set's lifetime has passed:
//!   renewal happens well ahead of expiry, so clients never get a set about to lapse.
//! - A set is served while more than `min(lifetime / 10, 5 min)` of it is left. During a
//!   provider outage the cached set keeps being served until then; after that requests get
//!   [`Serve::Unavailable`] with the provider's last error.
//! - Failed fetches are retried after 1, 2, 4 .. 60 s.
//! - [`CredentialCache::handle_fetch`] returns a [`CacheEvent`] only when the state changes
//!   (renewed, started failing, ran out), so the driver logs an outage once, not per request or
//!   per retry.
//!
//! Driver loop: call [`CredentialCache::poll_fetch`]; when it says so, fetch and hand the
//! result to [`CredentialCache::handle_fetch`]; otherwise sleep until
//! [`CredentialCache::poll_timeout`]. Requests call [`CredentialCache::serve`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{IceServer, ProviderError};

/// Longest wait between retries of a failing provider.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Upper bound of the "too close to expiry to hand out" margin.
pub const MAX_SERVE_MARGIN: Duration = Duration::from_secs(300);

/// What a request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serve {
    /// Valid credentials.
    Ready(Vec<IceServer>),
    /// Nothing cached yet and no fetch has failed: wait for the first fetch.
    Pending,
    /// Nothing servable and the provider's last fetch failed with this.
    Unavailable(ProviderError),
}

/// A state change worth one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheEvent {
    /// New credentials, valid until `expires_at`; `after_failures` failed fetches preceded
    /// them (0: a routine renewal).
    Renewed {
        expires_at: SystemTime,
        after_failures: u32,
    },
    /// The first failure after a success (or the first fetch failed). Cached credentials are
    /// served until `serving_cached_until`, if there are any.
    Failing {
        error: ProviderError,
        serving_cached_until: Option<SystemTime>,
    },
    /// The cached credentials are now too old to hand out and the provider still fails.
    Exhausted { error: ProviderError },
}

#[derive(Debug, Clone)]
struct Issued {
    servers: Vec<IceServer>,
    issued_at: SystemTime,
    expires_at: SystemTime,
}

impl Issued {
    fn lifetime(&self) -> Duration {
        self.expires_at
            .duration_since(self.issued_at)
            .unwrap_or(Duration::ZERO)
    }

    fn renew_at(&self) -> SystemTime {
        self.issued_at + self.lifetime() * 3 / 4
    }

    /// Last moment this set is handed out.
    fn serve_until(&self) -> SystemTime {
        let margin = (self.lifetime() / 10).min(MAX_SERVE_MARGIN);
        self.expires_at - margin
    }

    fn servable(&self, now: SystemTime) -> bool {
        now < self.serve_until()
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct CredentialCache {
    ttl: Duration,
    current: Option<Issued>,
    /// When the fetch in flight started (its credentials' lifetime counts from then).
    in_flight_since: Option<SystemTime>,
    next_attempt: Option<SystemTime>,
    failures: u32,
    last_error: Option<ProviderError>,
    exhausted_reported: bool,
}

impl CredentialCache {
    /// A cache for credentials requested with lifetime `ttl` (at least 1 s).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl: ttl.max(Duration::from_secs(1)),
            current: None,
            in_flight_since: None,
            next_attempt: None,
            failures: 0,
            last_error: None,
            exhausted_reported: false,
        }
    }

    /// What a request gets at `now`.
    pub fn serve(&self, now: SystemTime) -> Serve {
        if let Some(issued) = self.current.as_ref().filter(|c| c.servable(now)) {
            return Serve::Ready(issued.servers.clone());
        }
        match &self.last_error {
            Some(error) => Serve::Unavailable(error.clone()),
            None => Serve::Pending,
        }
    }

    /// Whether a fetch should start now; if so, it is marked in flight.
    pub fn poll_fetch(&mut self, now: SystemTime) -> bool {
        if self.in_flight_since.is_some() {
            return false;
        }
        let due = self.poll_timeout().is_some_and(|at| now >= at);
        if due {
            self.in_flight_since = Some(now);
        }
        due
    }

    /// The earliest time [`Self::poll_fetch`] may start a fetch; `None` while one is in flight.
    pub fn poll_timeout(&self) -> Option<SystemTime> {
        if self.in_flight_since.is_some() {
            return None;
        }
        let due = self.current.as_ref().map_or(UNIX_EPOCH, Issued::renew_at);
        Some(due.max(self.next_attempt.unwrap_or(UNIX_EPOCH)))
    }

    /// Whether a fetch is in flight.
    pub fn fetching(&self) -> bool {
        self.in_flight_since.is_some()
    }

    /// The outcome of the fetch [`Self::poll_fetch`] started.
    pub fn handle_fetch(
        &mut self,
        now: SystemTime,
        result: Result<Vec<IceServer>, ProviderError>,
    ) -> Option<CacheEvent> {
        let started = self.in_flight_since.take().unwrap_or(now);
        let result = result.and_then(|servers| {
            if servers.is_empty() {
                Err(ProviderError::Malformed("no ICE servers".to_owned()))
            } else {
                Ok(servers)
            }
        });
        match result {
            Ok(servers) => {
                let expires_at = started + self.ttl;
                self.current = Some(Issued {
                    servers,
                    issued_at: started,
                    expires_at,
                });
                let after_failures = std::mem::take(&mut self.failures);
                self.last_error = None;
                self.next_attempt = None;
                self.exhausted_reported = false;
                Some(CacheEvent::Renewed {
                    expires_at,
                    after_failures,
                })
            }
            Err(error) => {
                self.failures = self.failures.saturating_add(1);
                let shift = (self.failures - 1).min(16);
                let backoff = Duration::from_secs(1u64 << shift).min(MAX_BACKOFF);
                self.next_attempt = Some(now + backoff);
                self.last_error = Some(error.clone());
                let cached_until = self
                    .current
                    .as_ref()
                    .filter(|c| c.servable(now))
                    .map(Issued::serve_until);
                if self.failures == 1 {
                    self.exhausted_reported = cached_until.is_none();
                    return Some(CacheEvent::Failing {
                        error,
                        serving_cached_until: cached_until,
                    });
                }
                if cached_until.is_none() && !self.exhausted_reported {
                    self.exhausted_reported = true;
                    return Some(CacheEvent::Exhausted { error });
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(86_400);

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn servers(tag: &str) -> Vec<IceServer> {
        vec![IceServer {
            urls: vec!["turn:turn.example:3478".into()],
            username: Some(format!("user-{tag}")),
            credential: Some(format!("pw-{tag}")),
        }]
    }

    fn ready_tag(serve: Serve) -> String {
        match serve {
            Serve::Ready(s) => s[0].username.clone().unwrap_or_default(),
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    #[test]
    fn first_fetch_is_due_at_once_and_requests_wait_for_it() {
        let mut cache = CredentialCache::new(TTL);
        assert_eq!(cache.serve(t(0)), Serve::Pending);
        assert!(cache.poll_fetch(t(0)));
        assert!(cache.fetching());
        // One fetch at a time.
        assert!(!cache.poll_fetch(t(0)));
        assert_eq!(cache.poll_timeout(), None);
        assert_eq!(cache.serve(t(1)), Serve::Pending);
        let event = cache.handle_fetch(t(1), Ok(servers("a")));
        assert_eq!(
            event,
            Some(CacheEvent::Renewed {
                expires_at: t(86_400),
                after_failures: 0
            })
        );
        assert_eq!(ready_tag(cache.serve(t(2))), "user-a");
    }

    #[test]
    fn renews_at_three_quarters_of_the_lifetime_on_a_virtual_clock() {
        let mut cache = CredentialCache::new(TTL);
        assert!(cache.poll_fetch(t(0)));
        cache.handle_fetch(t(2), Ok(servers("a")));
        // Lifetime counts from the start of the fetch, not its end.
        assert_eq!(cache.poll_timeout(), Some(t(64_800)));
        assert!(!cache.poll_fetch(t(64_799)));
        assert!(cache.poll_fetch(t(64_800)));
        // While the renewal is in flight the old set is still served.
        assert_eq!(ready_tag(cache.serve(t(64_801))), "user-a");
        cache.handle_fetch(t(64_801), Ok(servers("b")));
        assert_eq!(ready_tag(cache.serve(t(64_802))), "user-b");
        assert_eq!(cache.poll_timeout(), Some(t(64_800 + 64_800)));
    }

    #[test]
    fn outage_serves_cached_until_margin_then_unavailable_logging_once() {
        let mut cache = CredentialCache::new(TTL);
        assert!(cache.poll_fetch(t(0)));
        cache.handle_fetch(t(0), Ok(servers("a")));
        let timeout = ProviderError::Timeout(Duration::from_secs(10));

        assert!(cache.poll_fetch(t(64_800)));
        let event = cache.handle_fetch(t(64_810), Err(timeout.clone()));
        // Served until 5 min before expiry (min(ttl/10, 5 min)).
        assert_eq!(
            event,
            Some(CacheEvent::Failing {
                error: timeout.clone(),
                serving_cached_until: Some(t(86_400 - 300)),
            })
        );
        // Retries back off 1, 2, 4, ... 60 s and report nothing new.
        let mut now = t(64_810);
        let mut waits = Vec::new();
        for _ in 0..10 {
            let at = cache.poll_timeout().expect("a retry is scheduled");
            waits.push(at.duration_since(now).expect("in the future").as_secs());
            now = at;
            assert!(cache.poll_fetch(now));
            assert_eq!(cache.handle_fetch(now, Err(timeout.clone())), None);
            assert_eq!(ready_tag(cache.serve(now)), "user-a");
        }
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);

        // Keep failing until past the serving margin: one Exhausted event, then silence.
        let mut events = Vec::new();
        while now < t(86_400 + 600) {
            now = cache.poll_timeout().expect("scheduled");
            assert!(cache.poll_fetch(now));
            events.extend(cache.handle_fetch(now, Err(ProviderError::Unauthorized(401))));
        }
        assert_eq!(
            events,
            vec![CacheEvent::Exhausted {
                error: ProviderError::Unauthorized(401)
            }]
        );
        assert_eq!(
            cache.serve(now),
            Serve::Unavailable(ProviderError::Unauthorized(401))
        );
        // Just before the margin the cached set was still served; at it, no longer.
        let mut probe = CredentialCache::new(TTL);
        probe.poll_fetch(t(0));
        probe.handle_fetch(t(0), Ok(servers("p")));
        assert!(matches!(probe.serve(t(86_400 - 301)), Serve::Ready(_)));
        assert_eq!(probe.serve(t(86_400 - 300)), Serve::Pending);

        // Recovery: the next success reports how many attempts failed.
        let failed = cache.failures;
        now = cache.poll_timeout().expect("scheduled");
        assert!(cache.poll_fetch(now));
        assert_eq!(
            cache.handle_fetch(now, Ok(servers("c"))),
            Some(CacheEvent::Renewed {
                expires_at: now + TTL,
                after_failures: failed
            })
        );
        assert_eq!(ready_tag(cache.serve(now)), "user-c");
    }

    #[test]
    fn first_fetch_failing_is_unavailable_at_once() {
        let mut cache = CredentialCache::new(TTL);
        assert!(cache.poll_fetch(t(0)));
        let error = ProviderError::Malformed("truncated JSON at line 1 column 0".into());
        assert_eq!(
            cache.handle_fetch(t(0), Err(error.clone())),
            Some(CacheEvent::Failing {
                error: error.clone(),
                serving_cached_until: None
            })
        );
        assert_eq!(cache.serve(t(0)), Serve::Unavailable(error));
        // Never an Exhausted event on top: nothing was ever servable.
        for _ in 0..5 {
            let at = cache.poll_timeout().expect("scheduled");
            assert!(cache.poll_fetch(at));
            assert_eq!(
                cache.handle_fetch(at, Err(ProviderError::Status(500))),
                None
            );
        }
    }

    #[test]
    fn empty_answer_counts_as_a_failure() {
        let mut cache = CredentialCache::new(TTL);
        cache.poll_fetch(t(0));
        let event = cache.handle_fetch(t(0), Ok(Vec::new()));
        assert!(matches!(event, Some(CacheEvent::Failing { .. })));
        assert!(matches!(cache.serve(t(0)), Serve::Unavailable(_)));
    }

    #[test]
    fn short_ttl_margin_is_a_tenth() {
        let mut cache = CredentialCache::new(Duration::from_secs(100));
        cache.poll_fetch(t(0));
        cache.handle_fetch(t(0), Ok(servers("a")));
        assert!(matches!(cache.serve(t(89)), Serve::Ready(_)));
        assert_eq!(cache.serve(t(90)), Serve::Pending);
        assert_eq!(cache.poll_timeout(), Some(t(75)));
    }

    #[test]
    fn a_clock_that_jumps_back_does_not_panic() {
        let mut cache = CredentialCache::new(TTL);
        cache.poll_fetch(t(1_000));
        cache.handle_fetch(t(1_000), Ok(servers("a")));
        assert!(matches!(cache.serve(t(0)), Serve::Ready(_)));
        assert!(!cache.poll_fetch(t(0)));
        cache.poll_fetch(t(1_000_000));
        assert!(
            cache
                .handle_fetch(t(5), Err(ProviderError::Status(502)))
                .is_some()
        );
    }
}
