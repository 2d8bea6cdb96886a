//! WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) endpoints and session resources.
//!
//! `POST /whip/{name}` publishes, `POST /whep/{name}` plays; each answers 201 with the SDP
//! answer, the session resource in `Location` and the ICE session's `ETag`. The resource takes
//! PATCH (trickle ICE, ICE restart) and DELETE.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rand::RngExt;
use sfu::engine::EngineError;
use sfu::webrtc::sdp::SdpError;
use sfu::webrtc::session::Role;

use super::access::{Access, Routes};
use super::state::AppState;

const SDP: &str = "application/sdp";
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

pub fn routes(state: &AppState) -> Routes {
    let mut routes = Routes::new(state)
        .post("/whip/{name}", Access::PublishSession, create)
        .post("/whep/{name}", Access::ViewSession, create);
    for endpoint in ["/whip/{name}", "/whep/{name}"] {
        routes = routes
            .add(Method::OPTIONS, endpoint, Access::Open, endpoint_options)
            .get(endpoint, Access::Open, no_content);
    }
    for resource in ["/whip/{name}/{session}", "/whep/{name}/{session}"] {
        routes = routes
            .get(resource, Access::Open, no_content)
            .add(Method::PATCH, resource, Access::PathToken, patch_session)
            .add(Method::DELETE, resource, Access::PathToken, delete_session)
            .add(Method::OPTIONS, resource, Access::Open, session_options);
    }
    routes
}

/// A one-line plain-text error.
fn error(status: StatusCode, reason: impl Into<String>) -> Response {
    let mut body = reason.into();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

fn engine_error(e: EngineError) -> Response {
    let status = match &e {
        // Well-formed SDP that offers nothing we can use is unprocessable, not malformed.
        EngineError::BadOffer(SdpError::NoUsableMedia)
        | EngineError::NoUsableMedia(_)
        | EngineError::IncompatibleCodec { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        EngineError::BadOffer(_) => StatusCode::BAD_REQUEST,
        EngineError::StreamNotFound(_) | EngineError::SessionNotFound => StatusCode::NOT_FOUND,
        EngineError::IceCredentialMismatch => StatusCode::BAD_REQUEST,
        EngineError::TooManySessions(_) | EngineError::TooManyViewers { .. } => {
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return response;
        }
        EngineError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

/// `POST /whip/{name}` publishes and `POST /whep/{name}` plays (the path says which); 201 with
/// the answer, and the ICE servers in `Link` headers.
async fn create(
    state: State<AppState>,
    name: Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let turn = state.0.turn.load();
    let role = role_of(&uri);
    super::turn::with_ice_servers(&turn, create_session(state, role, name, uri, headers, body))
}

fn create_session(
    State(state): State<AppState>,
    role: Role,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !content_type_is(&headers, SDP) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the offer must be sent as Content-Type: application/sdp",
        );
    }
    let Ok(offer) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the offer is not UTF-8 text");
    };
    if !valid_stream_name(&name) {
        return error(
            StatusCode::BAD_REQUEST,
            "stream names are 1-64 characters of letters, digits, '-', '_' and '.'",
        );
    }
    if role == Role::Publish && name.ends_with(sfu::switch::RETURN_SUFFIX) {
        return error(
            StatusCode::CONFLICT,
            format!(
                "names ending in {:?} are the switcher's return feeds to guests; publish under \
                 another name",
                sfu::switch::RETURN_SUFFIX
            ),
        );
    }
    if role == Role::Publish && name == state.switcher.program_name() {
        return error(
            StatusCode::CONFLICT,
            format!("{name:?} is the switcher's program stream; publish under another name"),
        );
    }
    let now = Instant::now();
    let result = {
        let mut engine = state.engine.lock();
        match role {
            Role::Publish => engine.publish(now, &name, offer),
            Role::Play => engine.play(now, &name, offer),
        }
    };
    let answer = match result {
        Ok(answer) => answer,
        Err(e) => return engine_error(e),
    };
    let token = format!("{:032x}", rand::rng().random::<u128>());
    state.session_tokens().insert(token.clone(), answer.session);
    let location = format!("{}/{token}", uri.path().trim_end_matches('/'));
    let mut response = (StatusCode::CREATED, answer.sdp).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP));
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&answer.etag) {
        h.insert(header::ETAG, v);
    }
    response
}

/// Stream names become path segments and metric labels: keep them plain.
fn valid_stream_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name != "."
        && name != ".."
}

async fn endpoint_options() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::HeaderName::from_static("accept-post"), SDP),
            (header::ALLOW, "OPTIONS, POST, GET"),
        ],
    )
        .into_response()
}

async fn session_options() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::HeaderName::from_static("accept-patch"), SDPFRAG),
            (header::ALLOW, "OPTIONS, PATCH, DELETE, GET"),
        ],
    )
        .into_response()
}

async fn no_content() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Resolves a session resource to its engine session, checking it belongs to this URL.
fn resolve(
    state: &AppState,
    role: Role,
    name: &str,
    token: &str,
) -> Option<sfu::webrtc::session::SessionId> {
    let id = *state.session_tokens().get(token)?;
    let engine = state.engine.lock();
    match engine.session_summary(id) {
        Some((r, stream, _)) if r == role && stream == name => Some(id),
        Some(_) => None,
        None => {
            drop(engine);
            state.session_tokens().remove(token);
            None
        }
    }
}

fn role_of(uri: &Uri) -> Role {
    if uri.path().starts_with("/whep/") {
        Role::Play
    } else {
        Role::Publish
    }
}

async fn delete_session(
    State(state): State<AppState>,
    Path((name, token)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    let Some(id) = resolve(&state, role_of(&uri), &name, &token) else {
        return error(StatusCode::NOT_FOUND, "no such session");
    };
    state.session_tokens().remove(&token);
    state.engine.lock().delete(Instant::now(), id);
    StatusCode::OK.into_response()
}

async fn patch_session(
    State(state): State<AppState>,
    Path((name, token)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !content_type_is(&headers, SDPFRAG) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "PATCH takes Content-Type: application/trickle-ice-sdpfrag",
        );
    }
    let Some(id) = resolve(&state, role_of(&uri), &name, &token) else {
        return error(StatusCode::NOT_FOUND, "no such session");
    };
    let Some(if_match) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return error(
            StatusCode::PRECONDITION_REQUIRED,
            "PATCH needs If-Match with the session's ETag (or \"*\" for an ICE restart)",
        );
    };
    let Ok(fragment) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the fragment is not UTF-8 text");
    };
    let mut engine = state.engine.lock();
    let Some((_, _, etag)) = engine.session_summary(id) else {
        return error(StatusCode::NOT_FOUND, "no such session");
    };
    // RFC 9725 writes the ICE restart wildcard as `If-Match: "*"`; RFC 9110's is a bare `*`.
    // Otherwise If-Match is a list of entity tags, compared strongly.
    let if_match = if_match.trim();
    let wildcard = if_match == "*" || if_match == "\"*\"";
    if !wildcard && !if_match.split(',').any(|tag| tag.trim() == etag) {
        return error(
            StatusCode::PRECONDITION_FAILED,
            "If-Match does not match the current ICE session's ETag",
        );
    }
    let restart = wildcard && engine.is_ice_restart(id, fragment);
    if !restart {
        return match engine.trickle(id, fragment) {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => engine_error(e),
        };
    }
    match engine.ice_restart(id, fragment) {
        Ok((body, etag)) => {
            let mut response = (StatusCode::OK, body).into_response();
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDPFRAG));
            if let Ok(v) = HeaderValue::from_str(&etag) {
                h.insert(header::ETAG, v);
            }
            response
        }
        Err(e) => engine_error(e),
    }
}
