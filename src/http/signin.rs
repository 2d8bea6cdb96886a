//! The `[access]` decisions the gate ([`super::access`]) makes for viewing and publishing, and
//! what a signed-in session may do: where a request comes from, which credential admits it,
//! the CSRF check on a session that changes something, and the refusals (a redirect to the
//! sign-in page for pages, 401 for everything else).

use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::access::Access;
use super::client::{self, bearer, constant_time_eq};
use super::refusal::refuse;
use super::state::AppState;
use crate::auth::users::Role;
use crate::auth::{SignedIn, csrf_ok};
use crate::config::Need;

/// The header pages send their session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Whether the request comes from this box or the LAN, not through a proxy or tunnel: the
/// admin gate's rule. In-process requests (no peer) count as local.
pub fn is_local(request: &Request) -> bool {
    match client::peer(request) {
        None => true,
        Some(peer) => !client::proxied(request.headers()) && client::is_private(peer),
    }
}

/// The `Cookie` header values of a request.
pub fn cookies(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
}

/// The request's live session, if any.
pub fn signed_in(state: &AppState, headers: &HeaderMap) -> Option<SignedIn> {
    state.gatekeeper.signed_in(Instant::now(), cookies(headers))
}

/// Whether `method` changes something (and so needs the CSRF check when a session admits it).
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the `Origin` header, when present, names this site (the host the request was sent
/// to). Browsers send it on every cross-origin request and every POST.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    origin_host.is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host))
}

/// A signed-in request that changes something came without its CSRF token or from another
/// origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsrfRefused;

impl IntoResponse for CsrfRefused {
    fn into_response(self) -> Response {
        refuse(
            StatusCode::FORBIDDEN,
            "this request needs the page's CSRF token (X-CSRF-Token) and must come from this site",
        )
    }
}

/// Whether a signed-in session of at least `role` admits the request. A session that would
/// admit a state-changing request without the CSRF token or from another origin refuses it
/// (403) instead: that is what a forged cross-site request looks like.
pub fn session_admits(
    state: &AppState,
    request: &Request,
    role: Role,
) -> Result<bool, CsrfRefused> {
    let Some(signed_in) = signed_in(state, request.headers()) else {
        return Ok(false);
    };
    if signed_in.session.role < role {
        return Ok(false);
    }
    if changes_state(request.method()) {
        let presented = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok());
        if !same_origin(request.headers()) || !csrf_ok(&signed_in.session, presented) {
            tracing::warn!(
                user = %signed_in.session.user,
                path = %request.uri().path(),
                "refused a signed-in request without its CSRF token or from another origin"
            );
            return Err(CsrfRefused);
        }
    }
    Ok(true)
}

/// Whether a bearer token admits the request for viewing or publishing: the admin token, or
/// the token of an `[[auth]]` rule that covers the path.
fn token_admits(state: &AppState, request: &Request) -> bool {
    let Some(presented) = bearer(request.headers()) else {
        return false;
    };
    if let Some(admin) = &state.guard.admin.load().token
        && constant_time_eq(presented.as_bytes(), admin.expose().as_bytes())
    {
        return true;
    }
    let path = request.uri().path();
    state
        .auth
        .load()
        .iter()
        .find(|r| crate::config::matches(&r.path, path))
        .is_some_and(|rule| constant_time_eq(presented.as_bytes(), rule.token.as_bytes()))
}

/// What `[access]` asks of this request for viewing or publishing.
fn need(state: &AppState, request: &Request, remote: Need) -> Need {
    let config = &state.gatekeeper.config;
    if is_local(request) {
        config.lan
    } else {
        remote
    }
}

/// Whether `[access]` asks this viewing request for a sign-in or token (so its answer is for
/// that viewer only).
pub fn view_needs_sign_in(state: &AppState, request: &Request) -> bool {
    need(state, request, state.gatekeeper.config.remote_view) == Need::SignIn
}

/// Makes an answer that only a signed-in viewer (or a token holder) may see uncacheable by
/// shared caches: `public` becomes `private`, so a CDN in front never hands it to someone the
/// server would refuse. (Caching protected LL-HLS at the edge needs a scheme the edge can
/// check: docs/security.md, "Remote viewing behind a CDN".)
pub fn keep_private(response: &mut Response) {
    let Some(value) = response.headers().get(header::CACHE_CONTROL) else {
        return;
    };
    let Ok(text) = value.to_str() else {
        return;
    };
    if text.contains("public") {
        let private = text.replace("public", "private");
        if let Ok(v) = HeaderValue::from_str(&private) {
            response.headers_mut().insert(header::CACHE_CONTROL, v);
        }
    }
}

/// LL-HLS for [`Access::HlsEntry`] and [`Access::HlsGrant`].
///
/// A viewer who needs a sign-in and has one asks for `/hls/{name}/index.m3u8` and is sent
/// (302, not cached) to `/hls/g/{grant}/{name}/index.m3u8`; the playlists' relative URIs keep
/// every later request under that prefix. A valid grant admits with the answers' public cache
/// lifetimes (everyone in one window shares the grant, so a CDN's entries are shared); an
/// expired or foreign one falls back to the viewing rule, with answers kept private.
pub async fn hls(
    state: &AppState,
    request: Request,
    access: Access,
    next: axum::middleware::Next,
) -> Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let needs_sign_in = view_needs_sign_in(state, &request);
    if access == Access::HlsGrant && needs_sign_in {
        let grant = request.uri().path().split('/').nth(3).unwrap_or("");
        if state.gatekeeper.grants.check(now, grant).is_ok() {
            return next.run(request).await;
        }
    }
    if let Some(refusal) = view_refusal(state, &request, Access::View) {
        return refusal;
    }
    if !needs_sign_in {
        return next.run(request).await;
    }
    if access == Access::HlsEntry {
        let rest = request.uri().path().strip_prefix("/hls").unwrap_or("");
        let query = request
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let grant = state.gatekeeper.grants.issue(now);
        let location = format!("/hls/g/{grant}{rest}{query}");
        if let Ok(location) = HeaderValue::from_str(&location) {
            return (
                StatusCode::FOUND,
                [
                    (header::LOCATION, location),
                    (
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("private, no-store"),
                    ),
                ],
            )
                .into_response();
        }
    }
    let mut response = next.run(request).await;
    keep_private(&mut response);
    response
}

/// The refusal of a viewing request that `[access]` does not let in, or `None`.
pub fn view_refusal(state: &AppState, request: &Request, access: Access) -> Option<Response> {
    let remote = state.gatekeeper.config.remote_view;
    admit(
        state,
        request,
        access,
        need(state, request, remote),
        Role::Viewer,
    )
}

/// The refusal of a publishing request that `[access]` does not let in, or `None`.
pub fn publish_refusal(state: &AppState, request: &Request, access: Access) -> Option<Response> {
    let remote = state.gatekeeper.config.remote_publish;
    admit(
        state,
        request,
        access,
        need(state, request, remote),
        Role::Operator,
    )
}

fn admit(
    state: &AppState,
    request: &Request,
    access: Access,
    need: Need,
    role: Role,
) -> Option<Response> {
    if need == Need::Open || token_admits(state, request) {
        return None;
    }
    match session_admits(state, request, role) {
        Ok(true) => None,
        Err(refusal) => Some(refusal.into_response()),
        Ok(false) if matches!(access, Access::ViewPage | Access::PublishPage) => {
            Some(to_sign_in(request))
        }
        Ok(false) => {
            let what = if role == Role::Viewer {
                "watching from outside needs a signed-in user (or a token for this path)"
            } else {
                "publishing from outside needs a signed-in operator (or a token for this path)"
            };
            let mut response = refuse(StatusCode::UNAUTHORIZED, what);
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Some(response)
        }
    }
}

/// `303` to the sign-in page, which comes back to this page afterwards.
fn to_sign_in(request: &Request) -> Response {
    let here = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = format!("/login?next={}", percent_encode(here));
    match HeaderValue::from_str(&location) {
        Ok(location) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, location)],
            "sign in to open this page\n",
        )
            .into_response(),
        Err(_) => refuse(StatusCode::UNAUTHORIZED, "sign in to open this page"),
    }
}

/// Percent-encodes everything but unreserved characters and `/`.
pub fn percent_encode(text: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::client::header_map;

    #[test]
    fn origin_must_name_this_host() {
        assert!(same_origin(&header_map(&[("host", "box.example")])));
        assert!(same_origin(&header_map(&[
            ("host", "box.example"),
            ("origin", "https://box.example")
        ])));
        assert!(!same_origin(&header_map(&[
            ("host", "box.example"),
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&header_map(&[
            ("host", "box.example"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&header_map(&[(
            "origin",
            "https://box.example"
        )])));
    }

    #[test]
    fn next_is_encoded() {
        assert_eq!(percent_encode("/switcher?a=b&c"), "/switcher%3Fa%3Db%26c");
    }
}
