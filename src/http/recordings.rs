//! The recording API, for operators (the admin gate):
//!
//! - `GET /api/recordings`: what is armed and being written, the disk (space left, time left
//!   at the current rate), recent events, and every file on disk with its media length
//!   (`duration_ms`).
//! - `POST /api/recordings/start` and `/stop` with `{"stream": "cam0"}` for one stream, or an
//!   empty body / `{}` for the configured selection (start) or everything (stop).
//! - `GET /api/recordings/files/{stream}/{file}`: the file (`video/mp4`), with HTTP Range
//!   (one range: 206 with `Content-Range`, an unsatisfiable one 416), for playing and seeking
//!   in the browser and for downloading; a file being written is served as far as it is.
//! - `DELETE /api/recordings/files/{stream}/{file}`: removes a finished recording.
//!
//! Stopping everything writes the switcher's program cuts of the session as a CMX 3600 EDL
//! beside the recordings (`<dir>/cuts_<UTC start>.edl`, see `sfu::record::cutlist`).
//!
//! Every change is logged on the `r58::audit` target with the caller's address. Refusals are
//! one line: 400 (bad name or body), 404 (unknown stream or file), 409 (already recording, not
//! recording, the disk at its reserve, a file being written, recording not configured).

use std::net::IpAddr;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sfu::record::cutlist::ProgramCut;
use sfu::record::files::RecordingFile;
use sfu::record::scan::scan;
use sfu::record::{ControlError, RecordService};
use tower::ServiceExt;
use tower_http::services::ServeFile;
use tracing::info;

use super::access::{Access, Routes};
use super::client;
use super::metrics::{Family, Kind};
use super::refusal::refuse;
use super::state::AppState;

pub fn routes(state: &AppState) -> Routes {
    Routes::new(state)
        .get("/api/recordings", Access::Admin, show)
        .post("/api/recordings/start", Access::Admin, start)
        .post("/api/recordings/stop", Access::Admin, stop)
        .get(
            "/api/recordings/files/{stream}/{file}",
            Access::Admin,
            download,
        )
        .delete(
            "/api/recordings/files/{stream}/{file}",
            Access::Admin,
            delete,
        )
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    stream: Option<String>,
}

fn not_configured() -> Response {
    refuse(
        StatusCode::CONFLICT,
        "recording is not configured (no [recording] dir in the configuration)",
    )
}

fn control_error(e: &ControlError) -> Response {
    let status = match e {
        ControlError::BadName(_) => StatusCode::BAD_REQUEST,
        ControlError::UnknownStream(_) | ControlError::NoSuchFile(_) => StatusCode::NOT_FOUND,
        ControlError::AlreadyRecording(_)
        | ControlError::NotRecording(_)
        | ControlError::DiskFull { .. }
        | ControlError::FileInUse(_) => StatusCode::CONFLICT,
        ControlError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    refuse(status, &e.to_string())
}

/// The body's target: empty or `{}` for all, `{"stream": "NAME"}` for one.
fn target(body: &[u8]) -> Result<Option<String>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<Target>(body)
        .map(|t| t.stream)
        .map_err(|e| format!("expected {{\"stream\": \"NAME\"}} or an empty body: {e}"))
}

async fn show(State(state): State<AppState>) -> Response {
    let Some(service) = state.recordings.clone() else {
        return not_configured();
    };
    let listed = tokio::task::spawn_blocking(move || {
        let files = service.files().map(|files| {
            files
                .into_iter()
                .map(|f| listed_file(&service, f))
                .collect::<Vec<_>>()
        });
        (service.status(), files)
    })
    .await;
    match listed {
        Ok((status, Ok(files))) => Json(serde_json::json!({
            "status": status,
            "files": files,
        }))
        .into_response(),
        Ok((_, Err(e))) => control_error(&e),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// A file of the list with its media length (`duration_ms`, from scanning its fragments; null
/// when it cannot be read), which the name and the file's times cannot tell exactly.
fn listed_file(service: &RecordService, file: RecordingFile) -> serde_json::Value {
    let duration_ms = service
        .file_path(&file.stream, &file.file)
        .ok()
        .and_then(|path| std::fs::File::open(path).ok())
        .and_then(|f| {
            let len = f.metadata().ok()?.len();
            scan(&mut std::io::BufReader::new(f), len).ok()
        })
        .map(|report| report.duration_ms);
    let mut value = serde_json::to_value(&file).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.insert("duration_ms".to_owned(), duration_ms.into());
    }
    value
}

/// Runs a control call off the async workers (stopping waits for files to be closed).
async fn control(
    state: AppState,
    request: Request,
    action: &'static str,
    call: fn(&RecordService, Option<&str>) -> Result<(), ControlError>,
) -> Response {
    let Some(service) = state.recordings.clone() else {
        return not_configured();
    };
    let peer =
        client::peer(&request).map_or_else(|| "in-process".to_owned(), |ip: IpAddr| ip.to_string());
    let body: Bytes = match axum::body::to_bytes(request.into_body(), super::MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &format!("request body: {e}")),
    };
    let stream = match target(&body) {
        Ok(stream) => stream,
        Err(reason) => return refuse(StatusCode::BAD_REQUEST, &reason),
    };
    let what = stream.clone().unwrap_or_else(|| "all".to_owned());
    let result = tokio::task::spawn_blocking(move || call(&service, stream.as_deref())).await;
    match result {
        Ok(Ok(())) => {
            info!(target: "r58::audit", peer, stream = what, "recording {action} requested");
            (StatusCode::OK, Json(serde_json::json!({ "ok": true }))).into_response()
        }
        Ok(Err(e)) => {
            info!(target: "r58::audit", peer, stream = what, "recording {action} refused: {e}");
            control_error(&e)
        }
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn start(State(state): State<AppState>, request: Request) -> Response {
    control(state, request, "start", RecordService::start).await
}

async fn stop(State(state): State<AppState>, request: Request) -> Response {
    let since = state.recordings.as_ref().and_then(RecordService::armed_at);
    let response = control(state.clone(), request, "stop", RecordService::stop).await;
    let stopped_all = state
        .recordings
        .as_ref()
        .is_some_and(|s| s.armed_at().is_none());
    if let (Some(service), Some(since)) = (state.recordings.clone(), since)
        && response.status() == StatusCode::OK
        && stopped_all
    {
        let cuts = program_cuts(&state.switcher.state().history);
        let until = std::time::SystemTime::now();
        let written =
            tokio::task::spawn_blocking(move || service.write_cut_list(since, until, &cuts)).await;
        if let Ok(Err(e)) = written {
            tracing::warn!("cut list: {e}");
        }
    }
    response
}

/// The switcher's cuts as the sources on program from when: each taken cut at the moment its
/// keyframe went out, and the source before the first one from the beginning of time.
fn program_cuts(history: &[sfu::switch::Cut]) -> Vec<ProgramCut> {
    let epoch = std::time::UNIX_EPOCH;
    let first = history
        .first()
        .and_then(|c| c.from.clone())
        .map(|source| ProgramCut { source, at: epoch });
    first
        .into_iter()
        .chain(history.iter().filter_map(|c| {
            let latency = c.latency_ms?;
            Some(ProgramCut {
                source: c.to.clone(),
                at: epoch
                    + std::time::Duration::from_millis(c.requested_at_ms)
                    + std::time::Duration::from_secs_f64(latency.max(0.0) / 1000.0),
            })
        }))
        .collect()
}

/// The file, with HTTP Range as tower-http's `ServeFile` answers it.
async fn download(
    State(state): State<AppState>,
    Path((stream, file)): Path<(String, String)>,
    request: Request,
) -> Response {
    let Some(service) = state.recordings.clone() else {
        return not_configured();
    };
    let path = match service.file_path(&stream, &file) {
        Ok(path) => path,
        Err(e) => return control_error(&e),
    };
    match ServeFile::new(path).oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    }
}

async fn delete(
    State(state): State<AppState>,
    Path((stream, file)): Path<(String, String)>,
    request: Request,
) -> Response {
    let peer =
        client::peer(&request).map_or_else(|| "in-process".to_owned(), |ip: IpAddr| ip.to_string());
    let Some(service) = state.recordings.clone() else {
        return not_configured();
    };
    let relative = format!("{stream}/{file}");
    match tokio::task::spawn_blocking(move || service.delete(&stream, &file)).await {
        Ok(Ok(())) => {
            info!(target: "r58::audit", peer, file = relative, "recording deleted by request");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Err(e)) => control_error(&e),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// The recorder's gauges and counters for `/metrics`.
pub fn metrics(state: &AppState) -> Vec<Family> {
    let Some(service) = &state.recordings else {
        return Vec::new();
    };
    let status = service.status();
    let mut families = vec![Family::gauge(
        "recording_armed",
        "1 while recording is armed (recording or waiting for its streams)",
        u64::from(status.recording),
    )];
    let disk = &status.disk;
    if let (Some(available), Some(usable)) = (disk.available_bytes, disk.usable_bytes) {
        families.push(Family::gauge(
            "recording_disk_available_bytes",
            "Free bytes on the recording file system",
            available,
        ));
        families.push(Family::gauge(
            "recording_disk_usable_bytes",
            "Bytes recordings may still write before the reserve",
            usable,
        ));
    }
    families.push(Family::gauge(
        "recording_write_rate_bytes",
        "Bytes per second all recordings write, over the last seconds",
        disk.write_rate_bytes_per_sec,
    ));
    if let Some(left) = disk.time_left_secs {
        families.push(Family::gauge(
            "recording_time_left_seconds",
            "Seconds of recording left before the reserve at the current rate",
            left,
        ));
    }
    let mut bytes = Family::new(
        Kind::Counter,
        "recording_bytes_total",
        "Bytes written per recorded stream (since its recorder attached)",
    );
    let mut dropped = Family::new(
        Kind::Counter,
        "recording_dropped_packets_total",
        "Packets the hub dropped because a recorder fell behind (a slow disk)",
    );
    let mut errors = Family::new(
        Kind::Counter,
        "recording_write_errors_total",
        "Failed writes per recorded stream",
    );
    for s in &status.streams {
        let label = format!("{{stream=\"{}\"}}", s.name);
        bytes.push(label.clone(), s.sink.bytes_written);
        dropped.push(label.clone(), s.dropped);
        errors.push(label, s.sink.write_errors);
    }
    families.extend([bytes, dropped, errors]);
    families
}

/// The `recording` event of `/api/events` (the REC tally and the disk for the pages), as JSON;
/// `None` when recording is off. Numbers are rounded (MiB, 10 s) so a steady recording does
/// not send an event every poll.
pub fn event_summary(state: &AppState) -> Option<String> {
    let service = state.recordings.as_ref()?;
    let status = service.status();
    let summary = serde_json::json!({
        "recording": status.recording,
        "streams": status.streams.iter().map(|s| serde_json::json!({
            "name": s.name,
            "file": s.sink.current,
        })).collect::<Vec<_>>(),
        "usable_mib": status.disk.usable_bytes.map(|b| b >> 20),
        "time_left_secs": status.disk.time_left_secs.map(|t| (t / 10.0).round() * 10.0),
        "last_event": status.events.last().map(|e| serde_json::json!({
            "kind": e.kind,
            "stream": e.stream,
            "detail": e.detail,
        })),
    });
    serde_json::to_string(&summary).ok()
}
