//! Protection that sits in front of the handlers: the control endpoints and `/metrics` only for
//! the admin token or local clients (`[admin]`), and the per-client session limit
//! (`[limits] sessions_per_ip`, 429 with `Retry-After`).
//!
//! Requests that carry no peer address were not accepted from a socket (in-process `oneshot`
//! calls in tests); the listener always records the peer, so every network client has one.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::constant_time_eq;
use crate::config::{Admin, AdminOpen, Limits};
use crate::listener::HttpStats;

/// Seconds a client refused for holding too many sessions is told to wait.
const PER_IP_RETRY_AFTER: &str = "10";

/// The limits and admin policy with their counters.
#[derive(Debug, Default)]
pub struct Guard {
    pub limits: Limits,
    pub admin: Admin,
    /// Connection-level counters of the listener (timeouts, TLS failures).
    pub http: Arc<HttpStats>,
    /// Session resource token -> the client address that created it.
    owners: tokio::sync::Mutex<HashMap<String, IpAddr>>,
    per_ip_refused: AtomicU64,
    admin_refused: AtomicU64,
}

impl Guard {
    pub fn new(limits: Limits, admin: Admin, http: Arc<HttpStats>) -> Self {
        Self {
            limits,
            admin,
            http,
            ..Self::default()
        }
    }
}

/// Paths that change the server's state or reveal its internals.
fn is_admin(method: &Method, path: &str) -> bool {
    path == "/metrics"
        || (path.starts_with("/api/")
            && !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS))
}

/// Whether the request went through a proxy or tunnel (which may connect from loopback).
fn proxied(headers: &HeaderMap) -> bool {
    [
        "forwarded",
        "x-forwarded-for",
        "x-real-ip",
        "cf-connecting-ip",
    ]
    .iter()
    .any(|h| headers.contains_key(*h))
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback() || a.is_private() || a.is_link_local(),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => is_private(IpAddr::V4(v4)),
            None => {
                a.is_loopback()
                    || (a.segments()[0] & 0xfe00) == 0xfc00
                    || (a.segments()[0] & 0xffc0) == 0xfe80
            }
        },
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(a) => a
            .to_ipv4_mapped()
            .map_or(a.is_loopback(), |v4| v4.is_loopback()),
        IpAddr::V4(a) => a.is_loopback(),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// How an admin request was let in, or the status and reason that refuse it.
///
/// A bearer that is not the admin token does not refuse a local client: the same
/// `Authorization` header also carries `[[auth]]` tokens (an operator page opened with `?token=`).
fn admin_decision(
    admin: &Admin,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<AdminPass, (StatusCode, &'static str)> {
    let presented = bearer(headers);
    if let (Some(token), Some(presented)) = (&admin.token, presented)
        && constant_time_eq(presented.as_bytes(), token.expose().as_bytes())
    {
        return Ok(AdminPass::Token);
    }
    let Some(peer) = peer else {
        return Ok(AdminPass::Local);
    };
    let local = !proxied(headers)
        && match admin.allow_without_token {
            AdminOpen::Local => is_private(peer),
            AdminOpen::Loopback => is_loopback(peer),
            AdminOpen::None => false,
        };
    match (local, &admin.token, presented) {
        (true, _, _) => Ok(AdminPass::Local),
        (false, Some(_), Some(_)) => Err((StatusCode::UNAUTHORIZED, "wrong admin token")),
        (false, Some(_), None) => Err((
            StatusCode::UNAUTHORIZED,
            "this endpoint needs the admin bearer token",
        )),
        (false, None, _) => Err((
            StatusCode::FORBIDDEN,
            "this endpoint is only open to local clients (set an [admin] token for others)",
        )),
    }
}

/// Why the admin gate let a request in. `Token` is put in the request's extensions: the
/// admin token also satisfies `[[auth]]` rules on the control endpoints, so a remote operator
/// needs one token, not two in one header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminPass {
    Token,
    Local,
}

fn refuse(status: StatusCode, reason: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{reason}\n"),
    )
        .into_response()
}

/// The middleware: admin gate, then the per-client session limit on WHIP/WHEP POSTs.
pub async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let guard = state.guard.clone();
    let path = request.uri().path();
    if is_admin(request.method(), path) {
        let mut request = request;
        match admin_decision(&guard.admin, peer, request.headers()) {
            Ok(pass) => {
                request.extensions_mut().insert(pass);
                return next.run(request).await;
            }
            Err((status, reason)) => {
                guard.admin_refused.fetch_add(1, Ordering::Relaxed);
                let mut response = refuse(status, reason);
                if status == StatusCode::UNAUTHORIZED {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                }
                return response;
            }
        }
    }
    let creates_session = request.method() == Method::POST
        && (path.starts_with("/whip/") || path.starts_with("/whep/"))
        && path.matches('/').count() == 2;
    if !creates_session {
        return next.run(request).await;
    }
    // Held across the creation so concurrent requests of one client cannot overshoot.
    let mut owners = guard.owners.lock().await;
    forget_ended(&state, &mut owners);
    let limit = guard.limits.sessions_per_ip;
    let client = peer.map(|peer| {
        super::turn::client_ip(
            Some(peer),
            request.headers(),
            &state.turn.settings.trusted_proxies,
        )
    });
    let Some(client) = client.filter(|c| limit > 0 && !guard.limits.unlimited_ips.contains(c))
    else {
        return next.run(request).await;
    };
    let held = owners.values().filter(|ip| **ip == client).count();
    if held >= limit {
        drop(owners);
        guard.per_ip_refused.fetch_add(1, Ordering::Relaxed);
        let mut response = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("this client already holds {held} sessions (the limit is {limit})"),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(PER_IP_RETRY_AFTER),
        );
        return response;
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::CREATED
        && let Some(token) = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
    {
        owners.insert(token.to_owned(), client);
    }
    response
}

/// Drops owners (and resource tokens) of sessions the engine no longer has: sessions also end
/// without a DELETE (timeouts, a publisher's viewers), and their tokens must not pile up.
fn forget_ended(state: &AppState, owners: &mut HashMap<String, IpAddr>) {
    let mut tokens = state.session_tokens();
    let engine = state.engine.lock();
    tokens.retain(|_, id| engine.session_summary(*id).is_some());
    owners.retain(|token, _| tokens.contains_key(token));
}

/// Appends the guard's and the listener's counters to the Prometheus text.
pub fn write_metrics(state: &AppState, out: &mut String) {
    let g = &state.guard;
    let rows: [(&str, &str, u64); 6] = [
        (
            "sessions_refused_per_ip_total",
            "WHIP/WHEP requests refused with 429: the client holds sessions_per_ip sessions.",
            g.per_ip_refused.load(Ordering::Relaxed),
        ),
        (
            "admin_refused_total",
            "Control or metrics requests refused (no or wrong admin token, not local).",
            g.admin_refused.load(Ordering::Relaxed),
        ),
        (
            "http_connections_total",
            "HTTP connections accepted.",
            g.http.connections.load(Ordering::Relaxed),
        ),
        (
            "http_header_timeouts_total",
            "Connections cut because the request headers did not arrive in time.",
            g.http.header_timeouts.load(Ordering::Relaxed),
        ),
        (
            "http_body_timeouts_total",
            "Requests answered 408 because the body did not arrive in time.",
            g.http.body_timeouts.load(Ordering::Relaxed),
        ),
        (
            "tls_handshake_failures_total",
            "TLS handshakes that failed or timed out.",
            g.http.tls_handshake_failures.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, value) in rows {
        super::api::write_counter(out, name, help, "", value);
    }
    let tokens = state.session_tokens().len();
    let _ = writeln!(
        out,
        "# HELP r58_http_session_resources Session resource URLs the HTTP layer remembers.\n\
         # TYPE r58_http_session_resources gauge\nr58_http_session_resources {tokens}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfu::turn::Secret;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn admin_paths() {
        assert!(is_admin(&Method::POST, "/api/switcher/program"));
        assert!(is_admin(&Method::DELETE, "/api/recordings/x"));
        assert!(is_admin(&Method::GET, "/metrics"));
        assert!(!is_admin(&Method::GET, "/api/switcher"));
        assert!(!is_admin(&Method::GET, "/api/turn-credentials"));
        assert!(!is_admin(&Method::POST, "/whip/cam"));
    }

    #[test]
    fn local_clients_tokens_and_proxies() {
        let open = Admin::default();
        let none = HeaderMap::new();
        assert!(admin_decision(&open, ip("127.0.0.1"), &none).is_ok());
        assert!(admin_decision(&open, ip("192.168.1.20"), &none).is_ok());
        assert!(admin_decision(&open, ip("fd00::5"), &none).is_ok());
        assert!(admin_decision(&open, ip("::ffff:10.0.0.2"), &none).is_ok());
        assert_eq!(
            admin_decision(&open, ip("203.0.113.7"), &none)
                .unwrap_err()
                .0,
            StatusCode::FORBIDDEN
        );
        // A tunnel daemon connects from loopback but says who the client is.
        let tunneled = headers(&[("cf-connecting-ip", "203.0.113.7")]);
        assert!(admin_decision(&open, ip("127.0.0.1"), &tunneled).is_err());
        let xff = headers(&[("x-forwarded-for", "10.0.0.1")]);
        assert!(admin_decision(&open, ip("127.0.0.1"), &xff).is_err());

        let loopback = Admin {
            allow_without_token: AdminOpen::Loopback,
            ..Admin::default()
        };
        assert!(admin_decision(&loopback, ip("127.0.0.1"), &none).is_ok());
        assert!(admin_decision(&loopback, ip("192.168.1.20"), &none).is_err());

        let token = Admin {
            token: Some(Secret::new("t0ken")),
            allow_without_token: AdminOpen::None,
        };
        let good = headers(&[("authorization", "Bearer t0ken")]);
        let bad = headers(&[("authorization", "Bearer t0kem")]);
        assert_eq!(
            admin_decision(&token, ip("203.0.113.7"), &good),
            Ok(AdminPass::Token)
        );
        assert_eq!(
            admin_decision(&token, ip("127.0.0.1"), &bad).unwrap_err(),
            (StatusCode::UNAUTHORIZED, "wrong admin token")
        );
        // Another token (an [[auth]] one) does not lock out a client that is local anyway.
        let local_with_token = Admin {
            token: Some(Secret::new("t0ken")),
            allow_without_token: AdminOpen::Local,
        };
        assert_eq!(
            admin_decision(&local_with_token, ip("127.0.0.1"), &bad),
            Ok(AdminPass::Local)
        );
        assert_eq!(
            admin_decision(&local_with_token, ip("203.0.113.7"), &bad).unwrap_err(),
            (StatusCode::UNAUTHORIZED, "wrong admin token")
        );
        assert_eq!(
            admin_decision(&token, ip("127.0.0.1"), &none)
                .unwrap_err()
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
}
