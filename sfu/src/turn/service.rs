//! The async driver: [`TurnService`] answers "which ICE servers for this client now?" for every
//! provider. Static and coturn answers are computed on the spot (coturn's are signed per
//! request, so each client gets the full lifetime). Cloudflare's come from the
//! [`CredentialCache`], which one background task keeps filled: it fetches at start, renews
//! ahead of expiry and retries with backoff; requests never call the API themselves, they only
//! wait (bounded) for the first fetch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use super::cache::{CacheEvent, CredentialCache, Serve};
use super::{IceServer, Provider, ProviderError, TurnConfig, cloudflare, rest};

/// Longest sleep of the renewal task, so a wall-clock jump is noticed within a minute.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Counters for `/metrics`; no labels carry secrets.
#[derive(Debug, Default)]
pub struct TurnStats {
    /// Requests answered with ICE servers.
    pub served: AtomicU64,
    /// Requests answered "unavailable" (503).
    pub unavailable: AtomicU64,
    /// Calls made to the provider's API.
    pub provider_requests: AtomicU64,
    /// Calls to the provider's API that failed.
    pub provider_errors: AtomicU64,
}

/// No credentials can be handed out; the reason is safe to show to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TURN credentials are unavailable: {0}")]
pub struct Unavailable(pub ProviderError);

/// See the module documentation. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TurnService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: TurnConfig,
    stats: TurnStats,
    cache: Mutex<CredentialCache>,
    wake: Notify,
    /// Bumped after every fetch, for requests waiting on the first one.
    fetched: watch::Sender<u64>,
}

impl Inner {
    fn cache(&self) -> MutexGuard<'_, CredentialCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl TurnService {
    /// Builds the service; for Cloudflare this spawns the renewal task, so it must run inside
    /// a tokio runtime.
    pub fn start(config: TurnConfig) -> Self {
        let ttl = match &config.provider {
            Provider::Cloudflare { ttl, .. } => *ttl,
            _ => Duration::from_secs(86_400),
        };
        let service = Self {
            inner: Arc::new(Inner {
                config,
                stats: TurnStats::default(),
                cache: Mutex::new(CredentialCache::new(ttl)),
                wake: Notify::new(),
                fetched: watch::Sender::new(0),
            }),
        };
        if matches!(service.inner.config.provider, Provider::Cloudflare { .. }) {
            tokio::spawn(renew(Arc::downgrade(&service.inner)));
        }
        service
    }

    /// STUN only, no servers unless `stun_urls` are given; needs no runtime.
    pub fn none(stun_urls: Vec<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                config: TurnConfig {
                    stun_urls,
                    ..TurnConfig::default()
                },
                stats: TurnStats::default(),
                cache: Mutex::new(CredentialCache::new(Duration::from_secs(86_400))),
                wake: Notify::new(),
                fetched: watch::Sender::new(0),
            }),
        }
    }

    pub fn config(&self) -> &TurnConfig {
        &self.inner.config
    }

    pub fn stats(&self) -> &TurnStats {
        &self.inner.stats
    }

    /// The ICE servers for one client. Waits for the first Cloudflare fetch (at most the API
    /// timeout plus a second); never calls the API itself.
    pub async fn ice_servers(&self) -> Result<Vec<IceServer>, Unavailable> {
        if !matches!(self.inner.config.provider, Provider::Cloudflare { .. }) {
            return Ok(self.count(self.local(SystemTime::now())));
        }
        let mut fetched = self.inner.fetched.subscribe();
        for first in [true, false] {
            // Not in the match scrutinee: the guard would live across the await below.
            let serve = self.inner.cache().serve(SystemTime::now());
            match serve {
                Serve::Ready(servers) => return Ok(self.count(self.with_stun(servers))),
                Serve::Unavailable(e) => return Err(self.unavailable(e)),
                Serve::Pending if first => {
                    self.inner.wake.notify_one();
                    let wait = self.inner.config.api_timeout + Duration::from_secs(1);
                    let _ = tokio::time::timeout(wait, fetched.changed()).await;
                }
                Serve::Pending => {}
            }
        }
        Err(self.unavailable(ProviderError::Timeout(self.inner.config.api_timeout)))
    }

    /// The ICE servers available right now without waiting (for `Link` headers); `None` when
    /// Cloudflare's credentials are not (or no longer) there.
    pub fn ice_servers_now(&self) -> Option<Vec<IceServer>> {
        if !matches!(self.inner.config.provider, Provider::Cloudflare { .. }) {
            return Some(self.local(SystemTime::now()));
        }
        let serve = self.inner.cache().serve(SystemTime::now());
        match serve {
            Serve::Ready(servers) => Some(self.with_stun(servers)),
            Serve::Pending => {
                self.inner.wake.notify_one();
                None
            }
            Serve::Unavailable(_) => None,
        }
    }

    fn count(&self, servers: Vec<IceServer>) -> Vec<IceServer> {
        self.inner.stats.served.fetch_add(1, Ordering::Relaxed);
        servers
    }

    fn unavailable(&self, e: ProviderError) -> Unavailable {
        self.inner.stats.unavailable.fetch_add(1, Ordering::Relaxed);
        Unavailable(e)
    }

    fn with_stun(&self, mut servers: Vec<IceServer>) -> Vec<IceServer> {
        let stun = &self.inner.config.stun_urls;
        if !stun.is_empty() {
            servers.insert(0, IceServer::open(stun.clone()));
        }
        servers
    }

    /// Answers of the providers that need no network.
    fn local(&self, now: SystemTime) -> Vec<IceServer> {
        let config = &self.inner.config;
        match &config.provider {
            Provider::None | Provider::Cloudflare { .. } => self.with_stun(Vec::new()),
            Provider::Static {
                urls,
                username,
                credential,
            } => self.with_stun(vec![IceServer {
                urls: urls.clone(),
                username: username.clone(),
                credential: credential.as_ref().map(|c| c.expose().to_owned()),
            }]),
            Provider::Coturn {
                urls,
                secret,
                user,
                ttl,
            } => rest::ice_servers(&config.stun_urls, urls, secret, user, now, *ttl),
        }
    }
}

/// The renewal task: runs the cache's fetch schedule until the service is dropped.
async fn renew(inner: Weak<Inner>) {
    loop {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let Provider::Cloudflare {
            key_id,
            api_token,
            api_base,
            ttl,
        } = &inner.config.provider
        else {
            return;
        };
        if inner.cache().poll_fetch(SystemTime::now()) {
            inner
                .stats
                .provider_requests
                .fetch_add(1, Ordering::Relaxed);
            let result =
                cloudflare::fetch(api_base, key_id, api_token, *ttl, inner.config.api_timeout)
                    .await;
            if result.is_err() {
                inner.stats.provider_errors.fetch_add(1, Ordering::Relaxed);
            }
            let event = inner.cache().handle_fetch(SystemTime::now(), result);
            if let Some(event) = event {
                log(&event, SystemTime::now());
            }
            inner.fetched.send_modify(|n| *n = n.wrapping_add(1));
            continue;
        }
        let now = SystemTime::now();
        let sleep = inner
            .cache()
            .poll_timeout()
            .map_or(MAX_SLEEP, |at| at.duration_since(now).unwrap_or_default())
            .min(MAX_SLEEP);
        tokio::select! {
            () = inner.wake.notified() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

fn secs_until(at: SystemTime, now: SystemTime) -> u64 {
    at.duration_since(now).unwrap_or_default().as_secs()
}

fn log(event: &CacheEvent, now: SystemTime) {
    match event {
        CacheEvent::Renewed {
            expires_at,
            after_failures: 0,
        } => info!(
            valid_for_s = secs_until(*expires_at, now),
            "TURN credentials obtained from Cloudflare"
        ),
        CacheEvent::Renewed {
            expires_at,
            after_failures,
        } => info!(
            failed_attempts = after_failures,
            valid_for_s = secs_until(*expires_at, now),
            "TURN provider recovered; credentials obtained from Cloudflare"
        ),
        CacheEvent::Failing {
            error,
            serving_cached_until: Some(until),
        } => warn!(
            %error,
            serving_cached_for_s = secs_until(*until, now),
            "TURN provider failing; serving the cached credentials while they last, retrying"
        ),
        CacheEvent::Failing {
            error,
            serving_cached_until: None,
        } => error!(
            %error,
            "TURN provider failing and no credentials cached: /api/turn-credentials answers \
             503 until it recovers; retrying"
        ),
        CacheEvent::Exhausted { error } => error!(
            %error,
            "cached TURN credentials are too old to hand out and the provider still fails: \
             /api/turn-credentials answers 503 until it recovers"
        ),
    }
}
