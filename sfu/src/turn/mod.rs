//! ICE server credentials for clients: STUN only, static TURN, coturn's TURN REST shared secret,
//! or Cloudflare Realtime TURN.
//!
//! - [`rest`]: the TURN REST credential scheme coturn checks with `use-auth-secret` (pure).
//! - [`cloudflare`]: the Cloudflare API request and answer (pure) and its HTTPS call.
//! - [`cache`]: the sans-IO credential cache: renewal ahead of expiry, serving the cached set
//!   through an outage while it is valid, backoff, one log event per state change.
//! - [`service`]: the thin async driver the HTTP layer calls ([`TurnService`]).
//! - [`rate`]: a per-client token bucket for the endpoint that hands credentials out.
//!
//! No secret (shared secret, API token) and no issued credential is ever written to a log, an
//! error or a metric: they live in [`Secret`] and [`IceServer`], whose `Debug` redacts them.

#![forbid(unsafe_code)]

pub mod cache;
pub mod client;
pub mod cloudflare;
mod http_client;
pub mod rate;
pub mod rest;
pub mod service;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use cache::{CredentialCache, Serve};
pub use service::{TurnService, TurnStats, Unavailable};

/// One entry of `RTCConfiguration.iceServers`, in the shape browsers take directly.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl IceServer {
    /// A server without credentials (STUN).
    pub fn open(urls: Vec<String>) -> Self {
        Self {
            urls,
            username: None,
            credential: None,
        }
    }
}

impl fmt::Debug for IceServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username.as_ref().map(|_| "<redacted>"))
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A secret string (shared secret, API token): compared and used, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send or sign with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// STUN only (the `stun_urls`, possibly none).
    None,
    /// Fixed TURN servers and credentials, handed out as configured.
    Static {
        urls: Vec<String>,
        username: Option<String>,
        credential: Option<Secret>,
    },
    /// coturn with `use-auth-secret`: credentials signed here with the shared secret.
    Coturn {
        urls: Vec<String>,
        secret: Secret,
        /// The `<user>` part of the `<expiry>:<user>` username.
        user: String,
        ttl: Duration,
    },
    /// Cloudflare Realtime TURN: credentials from its API.
    Cloudflare {
        key_id: String,
        api_token: Secret,
        /// `https://rtc.live.cloudflare.com` unless tests point it elsewhere; no trailing slash.
        api_base: String,
        ttl: Duration,
    },
}

impl Provider {
    /// The name used in config and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Provider::None => "none",
            Provider::Static { .. } => "static",
            Provider::Coturn { .. } => "coturn",
            Provider::Cloudflare { .. } => "cloudflare",
        }
    }
}

/// Cloudflare's API, the default `api_base`.
pub const CLOUDFLARE_API_BASE: &str = "https://rtc.live.cloudflare.com";

/// How credentials are produced and handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnConfig {
    pub provider: Provider,
    /// STUN servers put first in every answer (with every provider).
    pub stun_urls: Vec<String>,
    /// Longest wait for the provider's API (connect, TLS, answer).
    pub api_timeout: Duration,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            provider: Provider::None,
            stun_urls: Vec::new(),
            api_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a provider could not produce credentials. The text never contains a secret, a
/// credential, or the body the provider sent (which could hold one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the TURN provider did not answer within {} s", .0.as_secs_f32())]
    Timeout(Duration),
    #[error("the TURN provider refused the API token (HTTP {0})")]
    Unauthorized(u16),
    #[error("the TURN provider answered HTTP {0}")]
    Status(u16),
    #[error("the TURN provider's answer is not usable: {0}")]
    Malformed(String),
    #[error("cannot reach the TURN provider: {0}")]
    Connect(String),
}
