//! The switcher API: `GET /api/switcher` (program, preview, sources, cut history, mixer
//! settings), `GET /api/switcher/audio` (the mixer with its meters) and
//! `POST /api/switcher/{program,preview,audio}` with `{"source": "cam1"}` (`null` clears preview
//! or the audio pin; `/audio` also takes a strip's `gain_db`/`mute`/`mode` or `master_gain_db`). The GET follows the path's `[[auth]]` rule; the POSTs pass the admin gate
//! and their `[[auth]]` rule, which the admin token satisfies too ([`Access`]).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sfu::switch::{AudioState, Mode, StripChange, SwitchError, SwitcherState};

use super::access::{Access, Routes};
use super::state::AppState;

pub fn routes(state: &AppState) -> Routes {
    Routes::new(state)
        .get("/api/switcher", Access::PathToken, show)
        .post("/api/switcher/program", Access::AdminAndPathToken, program)
        .post("/api/switcher/preview", Access::AdminAndPathToken, preview)
        .get("/api/switcher/audio", Access::PathToken, audio_state)
        .post("/api/switcher/audio", Access::AdminAndPathToken, audio)
        .post(
            "/api/switcher/talkback",
            Access::AdminAndPathToken,
            talkback,
        )
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
        SwitchError::Audio(_) => StatusCode::BAD_REQUEST,
        SwitchError::NoMixer => StatusCode::CONFLICT,
    };
    error(status, e.to_string())
}

/// The request's JSON body, or the status and reason refusing it (what was `expected`, and
/// axum's reason).
fn json_body<T>(
    body: Result<Json<T>, JsonRejection>,
    expected: &str,
) -> Result<T, (StatusCode, String)> {
    body.map(|Json(value)| value).map_err(|rejection| {
        (
            rejection.status(),
            format!("expected {expected}: {}", rejection.body_text()),
        )
    })
}

/// The request's selection, or the status and reason refusing it.
fn selection(
    body: Result<Json<Selection>, JsonRejection>,
) -> Result<Option<String>, (StatusCode, String)> {
    json_body(body, "{\"source\": \"NAME\"}").map(|s| s.source)
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

/// `POST /api/switcher/audio`: `{"source": NAME|null}` pins program audio to one source (or lets
/// the strips decide again); with any of `gain_db`, `mute`, `mode` it changes that source's
/// mixer strip instead; `master_gain_db` sets the master (alone or with a strip change).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioRequest {
    #[serde(default)]
    source: Option<String>,
    gain_db: Option<f32>,
    mute: Option<bool>,
    mode: Option<Mode>,
    master_gain_db: Option<f32>,
}

async fn audio(
    State(state): State<AppState>,
    body: Result<Json<AudioRequest>, JsonRejection>,
) -> Response {
    let request = match json_body(
        body,
        "{\"source\": NAME} to pin, with \"gain_db\", \"mute\" or \"mode\" (on|afv|off) for a \
         strip, or {\"master_gain_db\": DB}",
    ) {
        Ok(r) => r,
        Err((status, reason)) => return error(status, reason),
    };
    let change = StripChange {
        gain_db: request.gain_db,
        mute: request.mute,
        mode: request.mode,
    };
    if let Some(db) = request.master_gain_db
        && let Err(e) = state.switcher.set_master_gain(db)
    {
        return switch_error(e);
    }
    if change != StripChange::default() {
        let Some(source) = request.source else {
            return error(StatusCode::BAD_REQUEST, "a strip change needs a source");
        };
        return answer(&state, state.switcher.set_strip(&source, change));
    }
    if request.master_gain_db.is_some() {
        return answer(&state, Ok(()));
    }
    answer(&state, state.switcher.pin_audio(request.source.as_deref()))
}

/// `GET /api/switcher/audio`: strips, master, levels (dBFS, with peak hold) and counters.
async fn audio_state(State(state): State<AppState>) -> Response {
    match state.switcher.audio_state() {
        Some(audio) => Json::<AudioState>(audio).into_response(),
        None => switch_error(SwitchError::NoMixer),
    }
}

/// `POST /api/switcher/talkback`: `{"source": "talkback", "to": "guest1"}` makes stream `source`
/// (the switcher page's microphone) heard by guest `guest1` only, in its return feed, never on
/// program; `{"to": null}` ends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TalkbackRequest {
    #[serde(default)]
    source: Option<String>,
    to: Option<String>,
}

async fn talkback(
    State(state): State<AppState>,
    body: Result<Json<TalkbackRequest>, JsonRejection>,
) -> Response {
    let request = match json_body(body, "{\"source\": NAME, \"to\": GUEST} or {\"to\": null}") {
        Ok(r) => r,
        Err((status, reason)) => return error(status, reason),
    };
    match (request.source, request.to) {
        (Some(source), Some(to)) => {
            answer(&state, state.switcher.set_talkback(Some((&source, &to))))
        }
        (_, None) => answer(&state, state.switcher.set_talkback(None)),
        (None, Some(_)) => error(
            StatusCode::BAD_REQUEST,
            "a talkback needs its source stream",
        ),
    }
}
