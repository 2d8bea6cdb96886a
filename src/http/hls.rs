//! LL-HLS routes: `/hls/{name}/index.m3u8` (the multivariant playlist the pages use), and under
//! `/hls/{name}/{instance}/` the media playlist with blocking reload and delta updates, the init
//! segments, parts and segments.
//!
//! Every URI in a playlist is relative, so the same bytes work behind any proxy path prefix.
//! Every answer says how long a cache may keep it ([`sfu::hls::caching`]): parts, segments and
//! init segments are immutable (the instance in their path is new for every muxer, so a name
//! never stands for other bytes), blocking playlist reloads (one URL per part, the same for
//! every viewer) are kept a target duration, other playlists and errors a second (a 503 for a
//! stream without its first part not at all: an empty playlist is never sent), so a CDN in
//! front serves a large audience from about one origin request per part and URL
//! (docs/hls.md, "Behind a CDN"). Held requests share one wait and one playlist render per
//! published state ([`LiveStream::media_playlist`]); `/metrics` counts both.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use sfu::hls::caching::{self, Answer, Timing};
use sfu::hls::{
    LiveStream, Lookup, PlaylistRequest, QueryError, Ready, RequestKind, Resource, Segmenter,
    multivariant_playlist,
};
use tokio::time::Instant;

use super::access::{Access, Routes};
use super::state::AppState;

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
const MEDIA_PLAYLIST: &str = "stream.m3u8";
/// How long a request for a stream that is online but whose muxer has not started yet waits.
const STARTUP_WAIT: Duration = Duration::from_secs(1);

pub fn routes(state: &AppState) -> Routes {
    Routes::new(state)
        .get("/hls/{name}/index.m3u8", Access::HlsEntry, multivariant)
        .get("/hls/{name}/{instance}/{file}", Access::View, resource)
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

/// An error answer: 404 and 503 are kept a second by caches (never pinned), 400 not at all.
fn error(status: StatusCode, reason: impl Into<String>) -> Response {
    let cache = match status {
        StatusCode::NOT_FOUND | StatusCode::SERVICE_UNAVAILABLE => caching::ERROR,
        _ => caching::NO_STORE,
    };
    let mut response = (status, format!("{}\n", reason.into())).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// The answer for a playlist of a stream whose first part does not exist yet: an empty media
/// playlist is no playlist (an edge would keep it, and hls.js gives up on a level without
/// segments), so 503 with `Retry-After: 1`, which players retry, and stored nowhere, so the
/// retry reaches the origin and finds the first part.
fn not_started(name: &str) -> Response {
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("stream {name:?} has no LL-HLS part yet (it just started); retry"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(caching::NO_STORE),
    );
    response
}

/// Whether the stream has published a part (the media playlist lists something).
fn has_media(s: &Segmenter) -> bool {
    s.segments().next().is_some() || s.open_segment().is_some_and(|seg| !seg.parts.is_empty())
}

/// Why a playlist is not answered with a playlist.
enum Refusal {
    /// No part yet: [`not_started`].
    NotStarted,
    /// Another status with its reason.
    Status(StatusCode, String),
}

fn timing(stream: &LiveStream) -> Timing {
    stream.read(|s| Timing {
        part_target: s.config().part_target,
        target_duration: s.target_duration(),
    })
}

fn body(
    content_type: &'static str,
    answer: Answer,
    timing: Timing,
    bytes: impl Into<Bytes>,
) -> Response {
    let cache = HeaderValue::from_str(&caching::cache_control(answer, timing))
        .unwrap_or(HeaderValue::from_static(caching::NO_STORE));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, cache),
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
/// the first part (the codecs string needs the SPS, and the media playlist would be empty) for
/// up to three target durations, then answers [`not_started`].
pub(super) async fn multivariant(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Response {
    state.hls.counters().count(RequestKind::Multivariant);
    let stream = match live_stream(&state, &name).await {
        Ok(stream) => stream,
        Err(response) => return response,
    };
    let media_uri = format!("{}/{MEDIA_PLAYLIST}", stream.instance);
    let timeout = hold_limit(&stream);
    let written = wait_for(&stream, timeout, |s, last| {
        if !has_media(s) && !s.ended() {
            return last.then_some(Err(Refusal::NotStarted));
        }
        match multivariant_playlist(s, &media_uri) {
            Ok(text) => Some(Ok(text)),
            Err(e) if last || s.ended() => Some(Err(Refusal::Status(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("stream {name:?}: {e}"),
            ))),
            Err(_) => None,
        }
    })
    .await;
    match written {
        Some(Ok(text)) => body(PLAYLIST_TYPE, Answer::Multivariant, timing(&stream), text),
        Some(Err(Refusal::NotStarted)) => not_started(&name),
        Some(Err(Refusal::Status(status, reason))) => error(status, reason),
        None => error(StatusCode::NOT_FOUND, format!("stream {name:?} ended")),
    }
}

/// Three target durations: how long a blocking request is held at most (RFC 8216bis §6.2.5.2).
fn hold_limit(stream: &LiveStream) -> Duration {
    Duration::from_secs(3 * stream.read(|s| s.target_duration()).max(1))
}

/// `GET /hls/{name}/{instance}/{file}`: the media playlist or a media resource.
pub(super) async fn resource(
    State(state): State<AppState>,
    Path((name, instance, file)): Path<(String, String, String)>,
    query: Result<Query<PlaylistQuery>, QueryRejection>,
) -> Response {
    // Every request that reaches the origin is counted, answered or not.
    let kind = if file == MEDIA_PLAYLIST {
        let blocking = query.as_ref().is_ok_and(|Query(q)| q.msn.is_some());
        Some(if blocking {
            RequestKind::BlockingPlaylist
        } else {
            RequestKind::Playlist
        })
    } else {
        Resource::parse(&file).map(|resource| match resource {
            Resource::Init(_) => RequestKind::Init,
            Resource::Segment(_) => RequestKind::Segment,
            Resource::Part(..) => RequestKind::Part,
        })
    };
    if let Some(kind) = kind {
        state.hls.counters().count(kind);
    }
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
        Some(bytes) => body(
            resource.content_type(),
            Answer::Media,
            timing(&stream),
            bytes,
        ),
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

/// The media playlist, held until it contains the requested segment or part (a request
/// without delivery directives: until it contains any part). Every request woken by the same
/// publication gets the same shared render.
async fn media(stream: &LiveStream, request: PlaylistRequest) -> Response {
    let timeout = hold_limit(stream);
    let Some((msn, part)) = request.block else {
        let started = wait_for(stream, timeout, |s, last| {
            (has_media(s) || s.ended() || last).then(|| has_media(s) || s.ended())
        })
        .await;
        if started != Some(true) {
            return not_started(&stream.name);
        }
        let text = stream.media_playlist(request.skip);
        return body(PLAYLIST_TYPE, Answer::Playlist, timing(stream), text);
    };
    let answer = wait_for(stream, timeout, |s, last| {
        match s.progress().ready(msn, part) {
            Ready::Ready => Some(Ok(Answer::BlockingPlaylist)),
            // Ended without the part: the final playlist, which must not be kept as the
            // answer for that part.
            _ if s.ended() => Some(Ok(Answer::Playlist)),
            Ready::TooFarAhead => Some(Err(Refusal::Status(
                StatusCode::BAD_REQUEST,
                format!(
                    "_HLS_msn={msn}{} is too far ahead of the live edge",
                    part.map(|p| format!("&_HLS_part={p}")).unwrap_or_default()
                ),
            ))),
            Ready::NotYet if last && !has_media(s) => Some(Err(Refusal::NotStarted)),
            Ready::NotYet if last => Some(Err(Refusal::Status(
                StatusCode::SERVICE_UNAVAILABLE,
                "the requested part did not appear in time; the stream may have stalled".into(),
            ))),
            Ready::NotYet => None,
        }
    })
    .await;
    match answer {
        Some(Ok(answer)) => {
            // Rendered after the decision, so it holds at least the state that was ready.
            let text = stream.media_playlist(request.skip);
            body(PLAYLIST_TYPE, answer, timing(stream), text)
        }
        Some(Err(Refusal::NotStarted)) => not_started(&stream.name),
        Some(Err(Refusal::Status(status, reason))) => error(status, reason),
        None => error(
            StatusCode::NOT_FOUND,
            format!("stream {:?} ended", stream.name),
        ),
    }
}
