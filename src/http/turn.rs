//! The TURN credentials endpoint's state and checks ([`TurnEndpoint`]; its route is in
//! [`super::api`]) and the `Link: rel="ice-server"` headers of WHIP/WHEP answers.
//!
//! The endpoint hands out relay capacity, so it checks, in this order: the browser `Origin`
//! (403), a per-client rate limit (429 with `Retry-After`), the optional bearer token and any
//! `[[auth]]` rule covering the path (401). Then it answers
//! `{"iceServers": [...]}` (the `RTCConfiguration` shape) or 503 with the provider's reason.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use sfu::turn::cloudflare::is_ice_url;
use sfu::turn::rate::{RateLimiter, retry_after_secs};
use sfu::turn::{IceServer, TurnService};

use super::client::{bearer, client_ip, constant_time_eq, path_token_ok};
use super::metrics::{Family, Kind};
use super::refusal::{refuse, unauthorized};
use crate::config::{AuthRule, Turn};

/// The path of the credentials endpoint.
pub const PATH: &str = "/api/turn-credentials";

/// The TURN provider and the endpoint's protection, shared by the handlers.
#[derive(Debug)]
pub struct TurnEndpoint {
    pub service: TurnService,
    pub settings: Turn,
    limiter: Mutex<RateLimiter>,
    rate_limited: AtomicU64,
    refused: AtomicU64,
}

impl TurnEndpoint {
    pub fn new(service: TurnService, settings: Turn) -> Self {
        let limiter = RateLimiter::new(settings.rate_limit_per_minute, settings.rate_limit_burst);
        Self {
            service,
            settings,
            limiter: Mutex::new(limiter),
            rate_limited: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// No TURN: STUN-only (here, no servers at all), default protection. Needs no runtime.
    pub fn disabled() -> Self {
        Self::new(TurnService::none(Vec::new()), Turn::default())
    }
}

impl TurnEndpoint {
    /// The endpoint's checks, in order: the browser `Origin` (403), the per-client rate limit
    /// (429 with `Retry-After`), the endpoint's bearer token and any `[[auth]]` rule on its path
    /// (401). The refusal, if any; [`super::access`] runs these checks before the credentials are
    /// handed out.
    pub fn refusal(
        &self,
        rules: &[AuthRule],
        peer: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Option<Response> {
        let turn = self;
        if !origin_allowed(&turn.settings.allowed_origins, headers) {
            turn.refused.fetch_add(1, Ordering::Relaxed);
            return Some(refuse(
                StatusCode::FORBIDDEN,
                "this origin may not fetch TURN credentials",
            ));
        }
        if turn.settings.rate_limit_per_minute > 0 {
            let client = client_ip(peer, headers, &turn.settings.trusted_proxies);
            let checked = turn
                .limiter
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .check(Instant::now(), client);
            if let Err(wait) = checked {
                turn.rate_limited.fetch_add(1, Ordering::Relaxed);
                let mut response = refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many TURN credential requests from this address",
                );
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(wait)),
                );
                return Some(response);
            }
        }
        let token_ok = turn.settings.token.as_ref().is_none_or(|t| {
            constant_time_eq(
                bearer(headers).unwrap_or("").as_bytes(),
                t.expose().as_bytes(),
            )
        });
        if !token_ok || !path_token_ok(rules, PATH, headers) {
            turn.refused.fetch_add(1, Ordering::Relaxed);
            return Some(unauthorized());
        }
        None
    }
}

/// Browsers send `Origin` on cross-origin requests; a request without one is same-origin or not
/// from a browser (those are what the token and the rate limit are for). With no configured
/// origins only pages of this host may call; `"*"` lets any page.
fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if allowed.iter().any(|a| a == "*" || a == origin) {
        return true;
    }
    // Same host: the tunnel or proxy in front may change the scheme, so compare host:port.
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .filter(|_| origin != "null");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// RFC 9110 quoted-string.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `Link` header values for ICE servers (RFC 9725 section 4.6): one per URL, with the
/// credentials on TURN entries.
pub fn link_values(servers: &[IceServer]) -> Vec<HeaderValue> {
    let mut out = Vec::new();
    for server in servers {
        for url in server.urls.iter().filter(|u| is_ice_url(u)) {
            let mut value = format!("<{url}>; rel=\"ice-server\"");
            if let (Some(user), Some(credential)) = (&server.username, &server.credential) {
                let _ = write!(
                    value,
                    "; username={}; credential={}; credential-type=\"password\"",
                    quoted(user),
                    quoted(credential)
                );
            }
            if let Ok(v) = HeaderValue::from_str(&value) {
                out.push(v);
            }
        }
    }
    out
}

/// Adds the `Link: rel="ice-server"` headers to a WHIP/WHEP answer when it is a 201. Uses the
/// credentials at hand; never waits for a provider.
pub fn with_ice_servers(turn: &TurnEndpoint, mut response: Response) -> Response {
    if response.status() != StatusCode::CREATED || !turn.settings.link_headers {
        return response;
    }
    if let Some(servers) = turn.service.ice_servers_now() {
        let headers = response.headers_mut();
        for value in link_values(&servers) {
            headers.append(header::LINK, value);
        }
    }
    response
}

impl TurnEndpoint {
    /// The TURN endpoint's and provider's counters, labelled with the provider.
    pub(super) fn metrics(&self) -> Vec<Family> {
        let turn = self;
        let stats = turn.service.stats();
        let provider = turn.service.config().provider.name();
        let rows: [(&str, &str, u64); 6] = [
            (
                "turn_credentials_served_total",
                "ICE server sets handed out by /api/turn-credentials.",
                stats.served.load(Ordering::Relaxed),
            ),
            (
                "turn_credentials_unavailable_total",
                "/api/turn-credentials requests answered 503 (provider failing, nothing cached).",
                stats.unavailable.load(Ordering::Relaxed),
            ),
            (
                "turn_credentials_rate_limited_total",
                "/api/turn-credentials requests answered 429.",
                turn.rate_limited.load(Ordering::Relaxed),
            ),
            (
                "turn_credentials_refused_total",
                "/api/turn-credentials requests refused for their origin or token (403, 401).",
                turn.refused.load(Ordering::Relaxed),
            ),
            (
                "turn_provider_requests_total",
                "Calls to the TURN provider's API.",
                stats.provider_requests.load(Ordering::Relaxed),
            ),
            (
                "turn_provider_errors_total",
                "Failed calls to the TURN provider's API.",
                stats.provider_errors.load(Ordering::Relaxed),
            ),
        ];
        let labels = format!("{{provider=\"{provider}\"}}");
        rows.into_iter()
            .map(|(name, help, value)| {
                Family::new(Kind::Counter, name, help).with(labels.clone(), value)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        super::super::client::header_map(pairs)
    }

    #[test]
    fn origin_rules() {
        let none: Vec<String> = Vec::new();
        let host = ("host", "recorder.example.org");
        assert!(origin_allowed(&none, &headers(&[host])));
        assert!(origin_allowed(
            &none,
            &headers(&[host, ("origin", "https://recorder.example.org")])
        ));
        assert!(!origin_allowed(
            &none,
            &headers(&[host, ("origin", "https://evil.example")])
        ));
        assert!(!origin_allowed(
            &none,
            &headers(&[host, ("origin", "null")])
        ));
        assert!(!origin_allowed(
            &none,
            &headers(&[("origin", "https://recorder.example.org")])
        ));
        let listed = vec!["https://pages.example".to_owned()];
        assert!(origin_allowed(
            &listed,
            &headers(&[host, ("origin", "https://pages.example")])
        ));
        assert!(!origin_allowed(
            &listed,
            &headers(&[host, ("origin", "http://pages.example")])
        ));
        assert!(origin_allowed(
            &["*".to_owned()],
            &headers(&[("origin", "null")])
        ));
    }

    #[test]
    fn link_values_follow_rfc_9725() {
        let servers = vec![
            IceServer::open(vec!["stun:stun.example:3478".into()]),
            IceServer {
                urls: vec![
                    "turn:turn.example:3478?transport=udp".into(),
                    "bad url".into(),
                    "turns:turn.example:443?transport=tcp".into(),
                ],
                username: Some("1700000000:r58".into()),
                credential: Some("a\"b\\c=".into()),
            },
        ];
        let values: Vec<String> = link_values(&servers)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect();
        assert_eq!(
            values,
            vec![
                r#"<stun:stun.example:3478>; rel="ice-server""#,
                r#"<turn:turn.example:3478?transport=udp>; rel="ice-server"; username="1700000000:r58"; credential="a\"b\\c="; credential-type="password""#,
                r#"<turns:turn.example:443?transport=tcp>; rel="ice-server"; username="1700000000:r58"; credential="a\"b\\c="; credential-type="password""#,
            ]
        );
    }
}
