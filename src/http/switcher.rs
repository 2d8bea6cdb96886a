//! The switcher API: `GET /api/switcher` (program, preview, sources, cut history) and
//! `POST /api/switcher/{program,preview,audio}` with `{"source": "cam1"}` (`null` clears preview
//! or the audio pin). Protected by `[[auth]]` rules like every other path; the POSTs also pass
//! the admin gate, and the admin token satisfies their `[[auth]]` rule too.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use sfu::switch::{SwitchError, SwitcherState};

use super::AppState;
use super::auth::authorized;
use super::guard::AdminPass;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/switcher", get(show))
        .route("/api/switcher/program", post(program))
        .route("/api/switcher/preview", post(preview))
        .route("/api/switcher/audio", post(audio))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    source: Option<String>,
}

fn error(status: StatusCode, reason: impl Into<String>) -> Response {
    (status, format!("{}\n", reason.into())).into_response()
}

fn switch_error(e: SwitchError) -> Response {
    let status = match e {
        SwitchError::NotLive(_) => StatusCode::NOT_FOUND,
        SwitchError::Incompatible { .. } | SwitchError::SelfSource => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    error(status, e.to_string())
}

/// The request's selection, or the status and reason refusing it.
fn selection(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    admin: Option<Extension<AdminPass>>,
    body: Result<Json<Selection>, JsonRejection>,
) -> Result<Option<String>, (StatusCode, String)> {
    let admin_token = admin.is_some_and(|Extension(pass)| pass == AdminPass::Token);
    if !admin_token && !authorized(&state.auth, uri.path(), headers) {
        return Err((
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token".to_owned(),
        ));
    }
    match body {
        Ok(Json(selection)) => Ok(selection.source),
        Err(rejection) => Err((
            rejection.status(),
            format!(
                "expected {{\"source\": \"NAME\"}}: {}",
                rejection.body_text()
            ),
        )),
    }
}

async fn show(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    if !authorized(&state.auth, uri.path(), &headers) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    Json::<SwitcherState>(state.switcher.state()).into_response()
}

fn answer(state: &AppState, result: Result<(), SwitchError>) -> Response {
    match result {
        Ok(()) => Json::<SwitcherState>(state.switcher.state()).into_response(),
        Err(e) => switch_error(e),
    }
}

async fn program(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    admin: Option<Extension<AdminPass>>,
    body: Result<Json<Selection>, JsonRejection>,
) -> Response {
    match selection(&state, &uri, &headers, admin, body) {
        Ok(Some(source)) => answer(&state, state.switcher.cut(&source)),
        Ok(None) => error(StatusCode::BAD_REQUEST, "program needs a source"),
        Err((status, reason)) => error(status, reason),
    }
}

async fn preview(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    admin: Option<Extension<AdminPass>>,
    body: Result<Json<Selection>, JsonRejection>,
) -> Response {
    match selection(&state, &uri, &headers, admin, body) {
        Ok(source) => answer(&state, state.switcher.set_preview(source.as_deref())),
        Err((status, reason)) => error(status, reason),
    }
}

async fn audio(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    admin: Option<Extension<AdminPass>>,
    body: Result<Json<Selection>, JsonRejection>,
) -> Response {
    match selection(&state, &uri, &headers, admin, body) {
        Ok(source) => answer(&state, state.switcher.pin_audio(source.as_deref())),
        Err((status, reason)) => error(status, reason),
    }
}
