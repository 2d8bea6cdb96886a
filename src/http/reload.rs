//! `POST /api/config/reload` (admin): reload the configuration file now, as SIGHUP does, and
//! answer what changed. The reload itself runs in the server's reload task
//! (`crate::reload`); this handler only asks it and waits.
//!
//! Answers: 200 `{"applied": [...], "needs_restart": [...]}` (plus `"failed"` when a change
//! could not be applied); 400 with the one-line reason when the new file does not load (the
//! running configuration stays); 503 when this server has no reload task.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::access::{Access, Routes};
use super::refusal::refuse;
use super::state::AppState;

/// The route's path.
pub const PATH: &str = "/api/config/reload";

pub fn routes(state: &AppState) -> Routes {
    Routes::new(state).post(PATH, Access::Admin, reload)
}

async fn reload(State(state): State<AppState>) -> Response {
    let Some(requests) = &state.reload else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "this server cannot reload its configuration",
        );
    };
    let (answer, outcome) = tokio::sync::oneshot::channel();
    if requests.send(answer).await.is_err() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the reload task has stopped",
        );
    }
    match outcome.await {
        Ok(Ok(changes)) => Json(changes).into_response(),
        Ok(Err(reason)) => refuse(
            StatusCode::BAD_REQUEST,
            &format!("configuration not reloaded: {reason}"),
        ),
        Err(_) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the reload task stopped before it answered",
        ),
    }
}
