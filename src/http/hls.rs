//! LL-HLS routes: `/hls/{name}/index.m3u8` (the multivariant playlist the pages use), and under
//! `/hls/{name}/{instance}/` the media playlist with blocking reload and delta updates, the init
//! segments, parts and segments.
//!
//! Every URI in a playlist is relative, so the same bytes work behind any proxy path prefix.
//! Playlists are `no-cache`; parts, segments and init segments are immutable (the instance in
//! their path is new for every muxer, so a name never stands for other bytes) and a CDN or
//! tunnel cache can carry them to many viewers.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use sfu::hls::{
    LiveStream, Lookup, PlaylistRequest, QueryError, Ready, Resource, Segmenter, media_playlist,
    multivariant_playlist,
};
use tokio::time::Instant;

use super::access::{Access, Routes};
use super::state::AppState;

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
const MEDIA_PLAYLIST: &str = "stream.m3u8";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// How long a request for a stream that is online but whose muxer has not started yet waits.
const STARTUP_WAIT: Duration = Duration::from_secs(1);

pub fn routes(state: &AppState) -> Routes {
    Routes::new(state)
        .get("/hls/{name}/index.m3u8", Access::Open, multivariant)
        .get("/hls/{name}/{instance}/{file}", Access::Open, resource)
}

/// Query parameters of a media playlist request (RFC 8216bis §6.2.5).
#[derive(Debug, Default, Deserialize)]
pub struct PlaylistQuery {
    #[serde(rename = "_HLS_msn")]
    msn: Option<String>,
    #[serde(rename = "_HLS_part")]
    part: Option<String>,
    #[serde(rename = "_HLS_skip")]
    skip: Option<String>,
}

impl PlaylistQuery {
    fn parse(&self) -> Result<PlaylistRequest, QueryError> {
        PlaylistRequest::parse(
            self.msn.as_deref(),
            self.part.as_deref(),
            self.skip.as_deref(),
        )
    }
}

fn error(status: StatusCode, reason: impl Into<String>) -> Response {
    let mut response = (status, format!("{}\n", reason.into())).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn body(content_type: &'static str, cache: &'static str, bytes: impl Into<Bytes>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        bytes.into(),
    )
        .into_response()
}

/// The stream's muxer; a stream that just went online gets a moment for its muxer to start.
async fn live_stream(state: &AppState, name: &str) -> Result<Arc<LiveStream>, Response> {
    let deadline = Instant::now() + STARTUP_WAIT;
    loop {
        if let Some(stream) = state.hls.get(name) {
            return Ok(stream);
        }
        let online = state
            .engine
            .lock()
            .hub()
            .get(name)
            .is_some_and(|s| s.publisher().is_some());
        if !online {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("no stream named {name:?}"),
            ));
        }
        if Instant::now() >= deadline {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("stream {name:?} has no LL-HLS: it carries neither H.264 nor Opus"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `decide` returns something, the stream's muxer changes, or `timeout` passes
/// (then `decide` is asked one last time with `last = true`).
async fn wait_for<T>(
    stream: &LiveStream,
    timeout: Duration,
    mut decide: impl FnMut(&Segmenter, bool) -> Option<T>,
) -> Option<T> {
    let mut changes = stream.subscribe();
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(answer) = stream.read(|s| decide(s, false)) {
            return Some(answer);
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => continue,
            // Timed out, or the muxer is gone.
            Ok(Err(_)) | Err(_) => return stream.read(|s| decide(s, true)),
        }
    }
}

/// `GET /hls/{name}/index.m3u8`: one variant pointing at this muxer's media playlist. Waits for
/// the first part (the codecs string needs the SPS) for up to three target durations.
async fn multivariant(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let stream = match live_stream(&state, &name).await {
        Ok(stream) => stream,
        Err(response) => return response,
    };
    let media_uri = format!("{}/{MEDIA_PLAYLIST}", stream.instance);
    let timeout = hold_limit(&stream);
    let written = wait_for(&stream, timeout, |s, last| {
        // Until the first part is out the media playlist would be empty; hold the player here.
        let has_media = s.segments().next().is_some()
            || s.open_segment().is_some_and(|seg| !seg.parts.is_empty());
        match multivariant_playlist(s, &media_uri) {
            Ok(text) if has_media || last || s.ended() => Some(Ok(text)),
            Ok(_) => None,
            Err(e) if last || s.ended() => Some(Err(e)),
            Err(_) => None,
        }
    })
    .await;
    match written {
        Some(Ok(text)) => body(PLAYLIST_TYPE, "no-cache", text),
        Some(Err(e)) => {
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("stream {name:?}: {e}"),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        None => error(StatusCode::NOT_FOUND, format!("stream {name:?} ended")),
    }
}

/// Three target durations: how long a blocking request is held at most (RFC 8216bis §6.2.5.2).
fn hold_limit(stream: &LiveStream) -> Duration {
    Duration::from_secs(3 * stream.read(|s| s.target_duration()).max(1))
}

/// `GET /hls/{name}/{instance}/{file}`: the media playlist or a media resource.
async fn resource(
    State(state): State<AppState>,
    Path((name, instance, file)): Path<(String, String, String)>,
    query: Result<Query<PlaylistQuery>, QueryRejection>,
) -> Response {
    let Some(stream) = state.hls.get(&name).filter(|s| s.instance == instance) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no LL-HLS stream {name:?} with instance {instance:?} (the stream restarted?)"),
        );
    };
    if file == MEDIA_PLAYLIST {
        let query = match query {
            Ok(Query(query)) => query,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad query string: {e}")),
        };
        return match query.parse() {
            Ok(request) => media(&stream, request).await,
            Err(reason) => error(StatusCode::BAD_REQUEST, reason.to_string()),
        };
    }
    let Some(resource) = Resource::parse(&file) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no such LL-HLS resource {file:?}"),
        );
    };
    let timeout = hold_limit(&stream);
    let found = wait_for(&stream, timeout, |s, _| match lookup(s, resource) {
        Lookup::Found(bytes) => Some(Some(bytes)),
        Lookup::NotFound => Some(None),
        Lookup::Pending => None,
    })
    .await
    .flatten();
    match found {
        Some(bytes) => body(resource.content_type(), IMMUTABLE, bytes),
        None => error(
            StatusCode::NOT_FOUND,
            format!("{file} is not (or no longer) available"),
        ),
    }
}

fn lookup(s: &Segmenter, resource: Resource) -> Lookup {
    match resource {
        Resource::Init(id) => s.init(id).map_or(Lookup::NotFound, Lookup::Found),
        Resource::Segment(msn) => s.segment(msn),
        Resource::Part(msn, index) => s.part(msn, index),
    }
}

/// The media playlist, held until it contains the requested segment or part.
async fn media(stream: &LiveStream, request: PlaylistRequest) -> Response {
    let Some((msn, part)) = request.block else {
        return body(
            PLAYLIST_TYPE,
            "no-cache",
            stream.read(|s| media_playlist(s, request.skip)),
        );
    };
    let timeout = hold_limit(stream);
    let answer = wait_for(stream, timeout, |s, last| {
        if s.ended() {
            return Some(Ok(media_playlist(s, request.skip)));
        }
        match s.progress().ready(msn, part) {
            Ready::Ready => Some(Ok(media_playlist(s, request.skip))),
            Ready::TooFarAhead => Some(Err(StatusCode::BAD_REQUEST)),
            Ready::NotYet if last => Some(Err(StatusCode::SERVICE_UNAVAILABLE)),
            Ready::NotYet => None,
        }
    })
    .await;
    match answer {
        Some(Ok(text)) => body(PLAYLIST_TYPE, "no-cache", text),
        Some(Err(StatusCode::BAD_REQUEST)) => error(
            StatusCode::BAD_REQUEST,
            format!(
                "_HLS_msn={msn}{} is too far ahead of the live edge",
                part.map(|p| format!("&_HLS_part={p}")).unwrap_or_default()
            ),
        ),
        _ => {
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the requested part did not appear in time; the stream may have stalled",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}
