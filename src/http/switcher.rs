//! The switcher API: `GET /api/switcher` (program, preview, sources, cut history) and
//! `POST /api/switcher/{program,preview,audio}` with `{"source": "cam1"}` (`null` clears preview
//! or the audio pin). The GET follows the path's `[[auth]]` rule; the POSTs pass the admin gate
//! and their `[[auth]]` rule, which the admin token satisfies too ([`Access`]).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sfu::switch::{SwitchError, SwitcherState};

use super::access::{Access, Routes};
use super::state::AppState;

pub fn routes(state: &AppState) -> Routes {
    Routes::new(state)
        .get("/api/switcher", Access::PathToken, show)
        .post("/api/switcher/program", Access::AdminAndPathToken, program)
        .post("/api/switcher/preview", Access::AdminAndPathToken, preview)
        .post("/api/switcher/audio", Access::AdminAndPathToken, audio)
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
    body: Result<Json<Selection>, JsonRejection>,
) -> Result<Option<String>, (StatusCode, String)> {
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

async fn show(State(state): State<AppState>) -> Response {
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
    body: Result<Json<Selection>, JsonRejection>,
) -> Response {
    match selection(body) {
        Ok(Some(source)) => answer(&state, state.switcher.cut(&source)),
        Ok(None) => error(StatusCode::BAD_REQUEST, "program needs a source"),
        Err((status, reason)) => error(status, reason),
    }
}

async fn preview(
    State(state): State<AppState>,
    body: Result<Json<Selection>, JsonRejection>,
) -> Response {
    match selection(body) {
        Ok(source) => answer(&state, state.switcher.set_preview(source.as_deref())),
        Err((status, reason)) => error(status, reason),
    }
}

async fn audio(
    State(state): State<AppState>,
    body: Result<Json<Selection>, JsonRejection>,
) -> Response {
    match selection(body) {
        Ok(source) => answer(&state, state.switcher.pin_audio(source.as_deref())),
        Err((status, reason)) => error(status, reason),
    }
}
