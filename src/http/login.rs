//! Signing in and out: the sign-in page (`GET /login`), `POST /api/login` (JSON user name and
//! password: a new session cookie), `POST /api/logout` and `GET /api/session` (who is signed
//! in, and the CSRF token the pages send back on requests that change something).
//!
//! Sign-in takes JSON only, so a cross-site HTML form cannot post it, and refuses a request
//! whose `Origin` names another site (login CSRF). Attempts are rate-limited per client
//! address and per user name ([`crate::auth::limiter`]). A session id the client already holds
//! is ended, never reused: signing in always makes a new one (no session fixation).

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::access::{Access, Routes};
use super::client::{self, client_ip};
use super::refusal::refuse;
use super::signin::{self, cookies, same_origin, signed_in};
use super::state::AppState;
use crate::auth::cookie::{clear_session, session_ids, set_session};
use crate::auth::{LoginError, parse_credentials};

pub fn routes(state: &AppState) -> Routes {
    Routes::new(state)
        .get("/login", Access::Open, |h: HeaderMap| async move {
            super::pages::serve("login.html", &h)
        })
        .get("/api/session", Access::Open, session)
        .post("/api/login", Access::SignIn, login)
        .post("/api/logout", Access::SignIn, logout)
}

/// Whether the session cookie set for this request carries `Secure`.
fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.gatekeeper.secure_cookie(client::proxied(headers))
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn login(State(state): State<AppState>, request: Request) -> Response {
    if !same_origin(request.headers()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "sign-in from another site is refused",
        );
    }
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "sign in with Content-Type: application/json",
        );
    }
    let peer = client::peer(&request);
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024).await else {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the sign-in body is too large",
        );
    };
    let Some((user, password)) = parse_credentials(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected JSON {\"user\": \"...\", \"password\": \"...\"}",
        );
    };
    // Whatever session the client came with ends here: the new one gets a new id.
    for id in session_ids(cookies(&parts.headers)) {
        state.gatekeeper.logout(&id);
    }
    let ip = client_ip(
        peer,
        &parts.headers,
        &state.turn.load().settings.trusted_proxies,
    );
    let gatekeeper = state.gatekeeper.clone();
    // Argon2 takes tens of milliseconds of CPU: off the async workers.
    let outcome =
        tokio::task::spawn_blocking(move || gatekeeper.login(Instant::now(), ip, &user, &password))
            .await;
    let secure = secure(&state, &parts.headers);
    match outcome {
        Ok(Ok(signed_in)) => {
            let cookie = set_session(
                &signed_in.id,
                state.gatekeeper.config.session_lifetime,
                secure,
            );
            let body = serde_json::json!({
                "user": signed_in.session.user,
                "role": signed_in.session.role,
                "csrf": signed_in.session.csrf,
            });
            let mut response = Json(body).into_response();
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            no_store(response)
        }
        Ok(Err(LoginError::Wrong)) => {
            refuse(StatusCode::UNAUTHORIZED, &LoginError::Wrong.to_string())
        }
        Ok(Err(e @ LoginError::TooMany(wait))) => {
            let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, &e.to_string());
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "sign-in failed"),
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap, _body: Bytes) -> Response {
    if !same_origin(&headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "sign-out from another site is refused",
        );
    }
    for id in session_ids(cookies(&headers)) {
        state.gatekeeper.logout(&id);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(cookie) = HeaderValue::from_str(&clear_session(secure(&state, &headers))) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn session(State(state): State<AppState>, request: Request) -> Response {
    let local = signin::is_local(&request);
    let can_sign_in = state.gatekeeper.has_users(Instant::now());
    let body = match signed_in(&state, request.headers()) {
        Some(s) => serde_json::json!({
            "signed_in": true,
            "user": s.session.user,
            "role": s.session.role,
            "csrf": s.session.csrf,
            "local": local,
            "can_sign_in": can_sign_in,
        }),
        None => serde_json::json!({
            "signed_in": false,
            "local": local,
            "can_sign_in": can_sign_in,
        }),
    };
    no_store(Json(body).into_response())
}
