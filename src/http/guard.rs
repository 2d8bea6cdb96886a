//! The limits and the admin policy ([`Guard`]) with their counters; [`super::access`] applies
//! them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::metrics::Family;
use crate::config::{Admin, Limits};
use crate::listener::HttpStats;
use crate::live::Live;

/// The limits and admin policy with their counters.
#[derive(Debug, Default)]
pub struct Guard {
    /// Replaced by a configuration reload (the counters below stay).
    pub limits: Live<Limits>,
    /// Replaced by a configuration reload.
    pub admin: Live<Admin>,
    /// Connection-level counters of the listener (timeouts, TLS failures).
    pub http: Arc<HttpStats>,
    /// Session resource token -> the client address that created it.
    pub(super) owners: tokio::sync::Mutex<HashMap<String, IpAddr>>,
    /// WHIP/WHEP requests refused for the per-client session limit.
    pub(super) per_ip_refused: AtomicU64,
    /// Requests the admin gate refused ([`super::access`]).
    pub(super) admin_refused: AtomicU64,
}

impl Guard {
    pub fn new(limits: Limits, admin: Admin, http: Arc<HttpStats>) -> Self {
        Self {
            limits: Live::new(limits),
            admin: Live::new(admin),
            http,
            ..Self::default()
        }
    }
}

impl Guard {
    /// The guard's and the listener's counters, and the number of session resources the HTTP
    /// layer remembers.
    pub(super) fn metrics(&self, session_resources: usize) -> Vec<Family> {
        let g = self;
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            Family::counter(
                "sessions_refused_per_ip_total",
                "WHIP/WHEP requests refused with 429: the client holds sessions_per_ip sessions.",
                count(&g.per_ip_refused),
            ),
            Family::counter(
                "admin_refused_total",
                "Control or metrics requests refused (no or wrong admin token, not local).",
                count(&g.admin_refused),
            ),
            Family::counter(
                "http_connections_total",
                "HTTP connections accepted.",
                count(&g.http.connections),
            ),
            Family::counter(
                "http_header_timeouts_total",
                "Connections cut because the request headers did not arrive in time.",
                count(&g.http.header_timeouts),
            ),
            Family::counter(
                "http_body_timeouts_total",
                "Requests answered 408 because the body did not arrive in time.",
                count(&g.http.body_timeouts),
            ),
            Family::counter(
                "tls_handshake_failures_total",
                "TLS handshakes that failed or timed out.",
                count(&g.http.tls_handshake_failures),
            ),
            Family::gauge(
                "http_session_resources",
                "Session resource URLs the HTTP layer remembers.",
                session_resources,
            ),
        ]
    }
}
