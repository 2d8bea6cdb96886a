//! HTTPS on the LAN (`[tls] auto`, `crate::lan_tls`): `GET /ca.crt` hands out the local CA's
//! certificate that devices trust once (the steps are on `/trust`, a page of [`super::pages`]),
//! and [`redirect_to_https`] sends a LAN browser that opened a page needing a secure origin
//! over plain HTTP to the HTTPS listener.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use super::access::{Access, Routes};
use super::client::{is_loopback, peer};
use super::refusal::refuse;
use super::state::AppState;

/// The pages that use the camera or microphone: browsers allow them only on a secure origin
/// (`https://`, or `http://localhost`).
pub const SECURE_PAGES: &[&str] = &["/guest_join"];

/// What the LAN HTTPS listener tells the HTTP side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanHttps {
    /// The local CA's certificate, PEM.
    pub ca_pem: String,
    /// The HTTPS listener's port.
    pub port: u16,
}

pub fn routes(state: &AppState) -> Routes {
    Routes::new(state).get("/ca.crt", Access::Open, ca_certificate)
}

async fn ca_certificate(State(state): State<AppState>) -> Response {
    match &state.lan_https {
        Some(lan) => (
            [
                (header::CONTENT_TYPE, "application/x-x509-ca-cert"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"r58-ca.crt\"",
                ),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            lan.ca_pem.clone(),
        )
            .into_response(),
        None => refuse(
            StatusCode::NOT_FOUND,
            "no local CA here: [tls] auto is off or the operator's own certificate is in use",
        ),
    }
}

/// The HTTP listener's router: [`SECURE_PAGES`] requested over plain HTTP by a browser that
/// is not on this box are redirected (308) to the same page on the HTTPS port, same host.
pub fn redirect_to_https(app: Router, https_port: u16) -> Router {
    let port = Arc::new(https_port);
    app.layer(middleware::from_fn(move |request: Request, next: Next| {
        let port = *port;
        async move {
            match https_location(&request, port) {
                Some(location) => redirect(&location),
                None => next.run(request).await,
            }
        }
    }))
}

/// Where to send `request`, if it must go to HTTPS.
fn https_location(request: &Request, port: u16) -> Option<String> {
    let path = request.uri().path();
    if !SECURE_PAGES.contains(&path) {
        return None;
    }
    // On this box `http://localhost` is a secure origin already; a tunnel or proxy on the
    // box (loopback too) brings its own HTTPS.
    if peer(request).is_none_or(is_loopback) {
        return None;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_without_port)?;
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    Some(format!("https://{host}:{port}{path}{query}"))
}

/// `host:port`, `[v6]:port`, `host` or `[v6]` -> the host as a URL writes it.
fn host_without_port(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn redirect(location: &str) -> Response {
    let Ok(value) = HeaderValue::from_str(location) else {
        return refuse(StatusCode::BAD_REQUEST, "the Host header is not usable");
    };
    let mut response = refuse(
        StatusCode::PERMANENT_REDIRECT,
        "this page needs HTTPS (camera and microphone)",
    );
    response.headers_mut().insert(header::LOCATION, value);
    response
}

/// Whether `ip` is an address the local CA may certify (it may not vouch for public ones).
pub fn certifiable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [b0, b1, ..] = a.octets();
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || (b0 == 100 && (64..128).contains(&b1))
        }
        IpAddr::V6(a) => {
            a.is_loopback()
                || (a.segments()[0] & 0xfe00) == 0xfc00
                || (a.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host_without_port("r58.local:8000"), "r58.local");
        assert_eq!(host_without_port("192.168.1.58"), "192.168.1.58");
        assert_eq!(host_without_port("[fd00::1]:8000"), "[fd00::1]");
        assert_eq!(host_without_port("[fd00::1]"), "[fd00::1]");
    }

    #[test]
    fn only_lan_addresses_are_certifiable() {
        for ip in [
            "192.168.1.58",
            "10.1.2.3",
            "172.16.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "fd00::1",
            "fe80::1",
            "::1",
        ] {
            assert!(certifiable(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "100.128.0.1", "2001:db8::1", "172.32.0.1"] {
            assert!(!certifiable(ip.parse().unwrap()), "{ip}");
        }
    }
}
