//! Guest invites over HTTP ([`crate::auth::invites`] holds them):
//!
//! - `POST /api/invites` (operators) `{"name", "minutes", "reusable"}`: 201 with the invite's
//!   id, its link (`/guest_join?invite=<token>`) and the link's QR code as SVG;
//! - `GET /api/invites` (operators): every invite and the audit trail;
//! - `DELETE /api/invites/{id}` (operators): revokes it and ends the WHIP sessions opened with
//!   it at once;
//! - `GET /api/invite` (anyone, the invite token as bearer): the name it publishes under.
//!
//! The gate ([`super::access`]) lets a valid invite token publish under its name only
//! ([`invite_for_whip`]) and opens `/guest_join?invite=` with it ([`guest_page`]).

use std::time::{Duration, Instant, SystemTime};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::access::{Access, Routes};
use super::client::bearer;
use super::refusal::refuse;
use super::signin::signed_in;
use super::state::AppState;
use crate::auth::invites::InviteRefusal;
use crate::auth::sessions::parse_hex32;

pub fn routes(state: &AppState) -> Routes {
    Routes::new(state)
        .get("/api/invites", Access::Admin, list)
        .post("/api/invites", Access::Admin, create)
        .delete("/api/invites/{id}", Access::Admin, revoke)
        .get("/api/invite", Access::Open, show)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewInvite {
    name: String,
    /// Fractions allowed (a test's invite lasts seconds).
    #[serde(default = "default_minutes")]
    minutes: f64,
    #[serde(default)]
    reusable: bool,
}

fn default_minutes() -> f64 {
    60.0
}

/// Who is doing this, for the audit trail: the signed-in user, else how the admin gate let
/// them in.
fn operator(state: &AppState, headers: &HeaderMap) -> String {
    match signed_in(state, headers) {
        Some(s) => s.session.user,
        None if bearer(headers).is_some() => "(admin token)".into(),
        None => "(local)".into(),
    }
}

async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(new) = serde_json::from_slice::<NewInvite>(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected JSON {\"name\": \"...\", \"minutes\": 60, \"reusable\": false}",
        );
    };
    let by = operator(&state, &headers);
    let mut random = [0u8; 40];
    rand::RngExt::fill(&mut rand::rng(), &mut random);
    let lifetime = Duration::try_from_secs_f64(new.minutes * 60.0).unwrap_or(Duration::ZERO);
    let mut invites = state.gatekeeper.invites();
    let invite = match invites.create(
        SystemTime::now(),
        random,
        &new.name,
        lifetime,
        new.reusable,
        &by,
    ) {
        Ok(invite) => invite,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let link = format!("/guest_join?invite={}", invite.token_hex());
    let expires = invite
        .expires
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let body = serde_json::json!({
        "id": invite.id,
        "name": invite.name,
        "reusable": invite.reusable,
        "expires": expires,
        "link": link,
        "qr_svg": qr_svg(&absolute(&headers, &link)),
    });
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The link as the guest will open it: on the host the operator reached (a tunnel's public
/// name from outside).
fn absolute(headers: &HeaderMap, link: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
        || headers.contains_key("cf-connecting-ip");
    format!("{}://{host}{link}", if https { "https" } else { "http" })
}

/// `text` as a QR code in SVG (medium error correction, a quiet zone around it).
pub fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .build(),
        Err(_) => String::new(),
    }
}

async fn list(State(state): State<AppState>) -> Response {
    let invites = state.gatekeeper.invites();
    let body = serde_json::json!({
        "invites": invites.list(SystemTime::now()),
        "audit": invites.audit().collect::<Vec<_>>(),
    });
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let by = operator(&state, &headers);
    let Some(resources) = state
        .gatekeeper
        .invites()
        .revoke(SystemTime::now(), &id, &by)
    else {
        return refuse(StatusCode::NOT_FOUND, "no such invite");
    };
    // End the guest's sessions now: a revoked guest is off the air at once.
    let sessions: Vec<_> = {
        let mut tokens = state.session_tokens();
        resources.iter().filter_map(|r| tokens.remove(r)).collect()
    };
    let now = Instant::now();
    let mut engine = state.engine.lock();
    let mut ended = 0;
    for session in sessions {
        // Some may have ended already (the guest left, or published again in their place).
        if engine.session_summary(session).is_some() {
            engine.delete(now, session);
            ended += 1;
        }
    }
    drop(engine);
    Json(serde_json::json!({ "revoked": id, "sessions_ended": ended })).into_response()
}

async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = bearer(&headers).unwrap_or("");
    match state.gatekeeper.invites().check(SystemTime::now(), token) {
        Ok(invite) => Json(serde_json::json!({
            "name": invite.name,
            "reusable": invite.reusable,
            "expires": invite.expires.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        }))
        .into_response(),
        Err(refusal) => refuse(refusal_status(refusal), &refusal.to_string()),
    }
}

fn refusal_status(refusal: InviteRefusal) -> StatusCode {
    match refusal {
        InviteRefusal::Unknown => StatusCode::NOT_FOUND,
        InviteRefusal::WrongName => StatusCode::FORBIDDEN,
        InviteRefusal::Expired | InviteRefusal::Revoked | InviteRefusal::UsedUp => StatusCode::GONE,
    }
}

/// The invite token a request presents, if the bearer looks like one (64 hex digits).
fn invite_token(request: &Request) -> Option<&str> {
    bearer(request.headers()).filter(|t| parse_hex32(t).is_some())
}

/// For `POST /whip/{name}`: `None` when the request presents no invite; else the invite's id
/// when it admits publishing as `name`, or the refusal to send.
pub fn invite_for_whip(state: &AppState, request: &Request) -> Option<Result<String, Response>> {
    let token = invite_token(request)?;
    // An [[auth]] or admin token of this shape is not an invite: let the usual checks judge it.
    if !state.gatekeeper.invites().knows(token) {
        return None;
    }
    let name = request
        .uri()
        .path()
        .trim_start_matches("/whip/")
        .split('/')
        .next()
        .unwrap_or("");
    let client = super::client::client_ip(
        super::client::peer(request),
        request.headers(),
        &state.turn.load().settings.trusted_proxies,
    )
    .to_string();
    Some(
        state
            .gatekeeper
            .invites()
            .admits(SystemTime::now(), token, name, &client)
            .map_err(|refusal| refuse(refusal_status(refusal), &refusal.to_string())),
    )
}

/// Whether the request's invite still admits and is for the stream the path names: the
/// guest's own WHIP resource (`/whip/{name}/...`, PATCH and DELETE) or their studio return
/// (`/whep/{name}.return`, the program minus their own voice, and its resource).
pub fn invite_matches_path(state: &AppState, request: &Request) -> bool {
    let Some(token) = invite_token(request) else {
        return false;
    };
    let path = request.uri().path();
    let name = if let Some(rest) = path.strip_prefix("/whip/") {
        rest.split('/').next().unwrap_or("")
    } else if let Some(rest) = path.strip_prefix("/whep/") {
        match rest.split('/').next().unwrap_or("").strip_suffix(".return") {
            Some(guest) => guest,
            None => return false,
        }
    } else {
        return false;
    };
    state
        .gatekeeper
        .invites()
        .check(SystemTime::now(), token)
        .is_ok_and(|invite| invite.name == name)
}

/// Counts a use of invite `id` for the WHIP session `response` created.
pub fn record_use(state: &AppState, id: &str, client: &str, response: &Response) {
    if response.status() != StatusCode::CREATED {
        return;
    }
    if let Some(resource) = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| l.rsplit('/').next())
    {
        state
            .gatekeeper
            .invites()
            .used(SystemTime::now(), id, resource, client);
    }
}

/// What the invite in `/guest_join?invite=...` says.
pub enum GuestPage {
    /// No invite in the address: the usual publishing rule applies.
    NoInvite,
    /// A valid invite: the page opens (it asks `GET /api/invite` for the name).
    Valid,
    /// A page saying plainly why the link does not work (expired, revoked, used, unknown).
    Refused(Box<Response>),
}

pub fn guest_page(state: &AppState, request: &Request) -> GuestPage {
    let Some(token) = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("invite=")))
    else {
        return GuestPage::NoInvite;
    };
    let outcome = state
        .gatekeeper
        .invites()
        .check(SystemTime::now(), token)
        .map(|_| ());
    match outcome {
        Ok(()) => GuestPage::Valid,
        Err(refusal) => GuestPage::Refused(Box::new(invite_page(refusal))),
    }
}

fn invite_page(refusal: InviteRefusal) -> Response {
    let what = refusal.to_string();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>r58 · Invite not valid</title>\
         <link rel=\"stylesheet\" href=\"/static/css/r58.css\"></head>\
         <body class=\"page-guest\"><main class=\"guest\"><h1 id=\"invite-refused\">{what}</h1>\
         <p>Ask the studio for a new invite link.</p></main></body></html>"
    );
    let mut response = (refusal_status(refusal), Html(html)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
