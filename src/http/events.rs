//! `GET /api/events`: live stream list as server-sent events.
//!
//! On connect the client gets `snapshot` (every stream), then `added`, `updated` and `removed`
//! as streams come and go or their viewers and bitrates change. The engine is polled twice a
//! second per connection and the lists diffed ([`diff`], pure): a handful of operator pages is
//! the expected audience (at most [`MAX_STREAMS`] at once), and polling keeps the media engine
//! free of observers. Comments every 15 s keep proxies and tunnels from closing an idle stream.
//!
//! With `[recording]` on, `recording` carries the REC tally and the disk (see
//! [`super::recordings::event_summary`]) whenever it changed, from the poll, to the clients
//! that may see the switcher's state.
//!
//! The switcher's state (program, preview, pending cut, sources, cut history) goes out as
//! `switcher`: once on connect, then at once whenever the switcher announces a change (its
//! broadcast is only a wake-up: the state sent is read fresh, so a slow connection never shows
//! an older tally after a newer one), and from the poll when only its source list changed. When
//! an `[[auth]]` rule protects `/api/switcher`, a request without its token gets one
//! `switcher_locked` instead (an `EventSource` cannot send headers; the page then polls
//! `GET /api/switcher` with the token).

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde::Serialize;
use sfu::engine::StreamInfo;
use sfu::media::{SourceKind, TrackKind};
use sfu::switch::SwitcherState;
use tokio::sync::broadcast;

use super::access::{Access, Routes};
use super::client::path_token_ok;
use super::state::AppState;

/// How often each connection looks at the engine's stream list.
const POLL: Duration = Duration::from_millis(500);
const KEEPALIVE: Duration = Duration::from_secs(15);
/// How long a browser waits before reconnecting after the stream broke.
const RETRY: Duration = Duration::from_secs(2);
/// Each open stream looks at the engine twice a second; beyond this many, new ones get 503 so
/// a flood of them cannot crowd the media engine's lock.
const MAX_STREAMS: usize = 64;

static OPEN: Slots = Slots::new(MAX_STREAMS);

/// A counter of open event streams with a ceiling.
pub struct Slots {
    max: usize,
    used: AtomicUsize,
}

/// One taken slot, given back on drop (when the client goes away and axum drops the stream).
pub struct Slot<'a>(&'a Slots);

impl Slots {
    pub const fn new(max: usize) -> Self {
        Self {
            max,
            used: AtomicUsize::new(0),
        }
    }

    pub fn take(&self) -> Option<Slot<'_>> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
    }
}

pub fn routes(state: &AppState) -> Routes {
    Routes::new(state).get("/api/events", Access::View, events)
}

/// What a page needs to know about a stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamSummary {
    pub name: String,
    pub source: SourceKind,
    /// A publisher is attached (a stream lingers briefly offline after its publisher left).
    pub online: bool,
    /// Connected WHEP viewers.
    pub viewers: usize,
    /// Readers by kind (whep, hls, ...).
    pub readers: BTreeMap<&'static str, usize>,
    /// Payload bitrate of all tracks over the last second.
    pub bitrate_bps: u64,
    pub video: Option<TrackSummary>,
    pub audio: Option<TrackSummary>,
    /// Outputs the stream cannot have and why (`hls`, `recording`, `program`): a VP8 stream
    /// plays over WebRTC only, and the pages say so instead of waiting for an LL-HLS playlist.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unavailable: BTreeMap<&'static str, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackSummary {
    pub codec: String,
    pub bitrate_bps: u64,
}

impl From<&StreamInfo> for StreamSummary {
    fn from(s: &StreamInfo) -> Self {
        let track = |kind: TrackKind| {
            s.tracks
                .iter()
                .find(|t| t.kind == kind)
                .map(|t| TrackSummary {
                    codec: t.codec.clone(),
                    bitrate_bps: t.stats.bitrate_bps,
                })
        };
        Self {
            name: s.name.clone(),
            source: s.source,
            online: s.online,
            viewers: s.viewers,
            readers: s.readers.clone(),
            bitrate_bps: s.tracks.iter().map(|t| t.stats.bitrate_bps).sum(),
            video: track(TrackKind::Video),
            audio: track(TrackKind::Audio),
            unavailable: s.unavailable.clone(),
        }
    }
}

/// One change between two looks at the stream list.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Added(StreamSummary),
    Updated(StreamSummary),
    Removed(String),
}

/// The changes that turn `before` into `after` (both sorted by name, as the engine lists them):
/// removals first, then additions and updates in name order.
pub fn diff(before: &[StreamSummary], after: &[StreamSummary]) -> Vec<Change> {
    let old: BTreeMap<&str, &StreamSummary> = before.iter().map(|s| (s.name.as_str(), s)).collect();
    let new: BTreeMap<&str, &StreamSummary> = after.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut changes: Vec<Change> = old
        .keys()
        .filter(|name| !new.contains_key(*name))
        .map(|name| Change::Removed((*name).to_owned()))
        .collect();
    for (name, s) in &new {
        match old.get(name) {
            None => changes.push(Change::Added((*s).clone())),
            Some(prev) if prev != s => changes.push(Change::Updated((*s).clone())),
            Some(_) => {}
        }
    }
    changes
}

#[derive(Serialize)]
struct Removed<'a> {
    name: &'a str,
}

fn change_event(change: &Change) -> Event {
    let (name, data) = match change {
        Change::Added(s) => ("added", serde_json::to_string(s)),
        Change::Updated(s) => ("updated", serde_json::to_string(s)),
        Change::Removed(name) => ("removed", serde_json::to_string(&Removed { name })),
    };
    Event::default()
        .event(name)
        .data(data.unwrap_or_else(|_| "{}".into()))
}

fn snapshot(state: &AppState) -> Vec<StreamSummary> {
    state
        .engine
        .lock()
        .streams()
        .iter()
        .map(StreamSummary::from)
        .collect()
}

/// Per connection: the last list sent, the events not yet sent, the poll timer.
struct Feed {
    _slot: Slot<'static>,
    state: AppState,
    last: Vec<StreamSummary>,
    pending: VecDeque<Event>,
    tick: tokio::time::Interval,
    /// `None` when the client may not see the switcher (or the switcher is gone).
    switcher: Option<SwitcherFeed>,
    /// The last `recording` event sent; `None` inside when the client may not see it.
    recording: Option<Option<String>>,
}

struct SwitcherFeed {
    changes: broadcast::Receiver<SwitcherState>,
    last: SwitcherState,
}

fn switcher_event(s: &SwitcherState) -> Event {
    Event::default()
        .event("switcher")
        .data(serde_json::to_string(s).unwrap_or_else(|_| "{}".into()))
}

impl SwitcherFeed {
    /// Queues the switcher's current state if it differs from the last one sent.
    fn refresh(&mut self, state: &AppState, pending: &mut VecDeque<Event>) {
        let now = state.switcher.state();
        if now != self.last {
            pending.push_back(switcher_event(&now));
            self.last = now;
        }
    }
}

/// Waits for the switcher's next announcement: `Some(true)` when it changed (or this receiver
/// lagged behind: the state is read fresh anyway), `Some(false)` when it is gone. Never returns
/// without a switcher feed.
async fn switcher_changed(feed: &mut Option<SwitcherFeed>) -> bool {
    let Some(f) = feed else {
        return std::future::pending().await;
    };
    match f.changes.recv().await {
        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
            // Several changes queued: one fresh read covers them all.
            while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = f.changes.try_recv()
            {
            }
            true
        }
        Err(broadcast::error::RecvError::Closed) => false,
    }
}

fn feed(
    state: AppState,
    slot: Slot<'static>,
    show_switcher: bool,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let last = snapshot(&state);
    let first = Event::default()
        .event("snapshot")
        .retry(RETRY)
        .data(serde_json::to_string(&last).unwrap_or_else(|_| "[]".into()));
    let mut pending = VecDeque::from([first]);
    let switcher = if show_switcher {
        // Subscribe before reading, so no change falls between the snapshot and the feed.
        let changes = state.switcher.subscribe();
        let now = state.switcher.state();
        pending.push_back(switcher_event(&now));
        Some(SwitcherFeed { changes, last: now })
    } else {
        pending.push_back(Event::default().event("switcher_locked").data(
            r#"{"reason":"GET /api/switcher needs a bearer token; ask it with Authorization"}"#,
        ));
        None
    };
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let feed = Feed {
        _slot: slot,
        state,
        last,
        pending,
        tick,
        switcher,
        // The REC tally is as private as the switcher's tally.
        recording: show_switcher.then_some(None),
    };
    stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(event) = feed.pending.pop_front() {
                return Some((Ok(event), feed));
            }
            tokio::select! {
                _ = feed.tick.tick() => {
                    let now = snapshot(&feed.state);
                    feed.pending
                        .extend(diff(&feed.last, &now).iter().map(change_event));
                    feed.last = now;
                    if let Some(last) = feed.recording.as_mut() {
                        let now = super::recordings::event_summary(&feed.state);
                        if let Some(data) = now.as_ref().filter(|now| Some(*now) != last.as_ref()) {
                            feed.pending
                                .push_back(Event::default().event("recording").data(data.clone()));
                            *last = now;
                        }
                    }
                    // Sources come and go without the switcher announcing it.
                    if let Some(s) = feed.switcher.as_mut() {
                        s.refresh(&feed.state, &mut feed.pending);
                    }
                }
                alive = switcher_changed(&mut feed.switcher) => {
                    match feed.switcher.as_mut() {
                        Some(s) if alive => s.refresh(&feed.state, &mut feed.pending),
                        _ => feed.switcher = None,
                    }
                }
            }
        }
    })
}

async fn events(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(slot) = OPEN.take() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::RETRY_AFTER, "5"),
            ],
            format!("too many open event streams (limit {MAX_STREAMS})\n"),
        )
            .into_response();
    };
    // The tally is as private as `GET /api/switcher` is.
    let show_switcher = path_token_ok(&state.auth.load(), "/api/switcher", &headers)
        || super::signin::signed_in(&state, &headers).is_some();
    let mut response = Sse::new(feed(state, slot, show_switcher))
        .keep_alive(KeepAlive::new().interval(KEEPALIVE).text("keepalive"))
        .into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx and some tunnels buffer responses unless told not to; events must flow at once.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(name: &str, viewers: usize, bitrate_bps: u64) -> StreamSummary {
        StreamSummary {
            name: name.into(),
            source: SourceKind::Whip,
            online: true,
            viewers,
            readers: BTreeMap::from([("whep", viewers)]),
            bitrate_bps,
            video: Some(TrackSummary {
                codec: "H264".into(),
                bitrate_bps,
            }),
            audio: None,
            unavailable: BTreeMap::new(),
        }
    }

    #[test]
    fn same_list_gives_no_changes() {
        let list = [summary("a", 1, 100), summary("b", 0, 200)];
        assert_eq!(diff(&list, &list), Vec::new());
        assert_eq!(diff(&[], &[]), Vec::new());
    }

    #[test]
    fn additions_removals_and_updates_are_reported() {
        let before = [
            summary("a", 1, 100),
            summary("b", 0, 200),
            summary("c", 0, 300),
        ];
        let after = [
            summary("a", 1, 100),
            summary("c", 2, 300),
            summary("d", 0, 0),
        ];
        assert_eq!(
            diff(&before, &after),
            vec![
                Change::Removed("b".into()),
                Change::Updated(summary("c", 2, 300)),
                Change::Added(summary("d", 0, 0)),
            ]
        );
    }

    #[test]
    fn going_offline_or_changing_bitrate_is_an_update() {
        let before = [summary("a", 0, 100)];
        let mut offline = summary("a", 0, 100);
        offline.online = false;
        assert_eq!(
            diff(&before, std::slice::from_ref(&offline)),
            vec![Change::Updated(offline)]
        );
        assert_eq!(
            diff(&before, &[summary("a", 0, 150)]),
            vec![Change::Updated(summary("a", 0, 150))]
        );
    }

    #[test]
    fn slots_stop_at_the_ceiling_and_come_back_on_drop() {
        let slots = Slots::new(2);
        let a = slots.take().expect("first");
        let b = slots.take().expect("second");
        assert!(slots.take().is_none(), "a third is refused");
        drop(a);
        let c = slots.take().expect("freed by the drop");
        assert!(slots.take().is_none());
        drop((b, c));
        assert!(slots.take().is_some());
    }

    #[test]
    fn events_carry_names_and_json() {
        let e = format!("{:?}", change_event(&Change::Removed("cam0".into())));
        assert!(e.contains("removed"), "{e}");
        assert!(e.contains(r#"{\"name\":\"cam0\"}"#), "{e}");
    }
}
