//! The async side of LL-HLS: one muxer per live hub stream, started as soon as the stream goes
//! online (so the first viewer gets video at once), fed through a bounded reader queue, and
//! freed a while after the stream ends. A stream that comes back within that while (a publisher
//! reconnecting, a camera restarted by its supervisor) continues its playlist after
//! EXT-X-DISCONTINUITY instead of breaking players.
//!
//! The HTTP layer looks streams up with [`HlsService::get`], reads the segmenter under its lock,
//! and waits for [`LiveStream::subscribe`] to change for blocking requests.
//!
//! Coalescing: every held request (a blocking playlist reload, a part not published yet) waits
//! on the one `watch` channel of its stream, which changes only when the segmenter publishes
//! (a part, a segment, the end), not per packet; and every media playlist answer comes from
//! [`LiveStream::media_playlist`], which renders once per published state and hands the same
//! bytes to every request that asks for that state. So N viewers waiting for the next part cost
//! one wake-up each and one render in all. [`HlsCounters`] counts requests and renders.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::RngExt;
use tokio::sync::mpsc::Receiver;
use tokio::sync::watch;
use tracing::{Instrument, debug, info, info_span, warn};

use super::ingest::{IngestError, StreamIngest};
use super::playlist::media_playlist;
use super::segmenter::{HlsConfig, Segmenter};
use crate::engine::ReaderTrack;
use crate::engine::SharedEngine;
use crate::hub::ReaderPacket;
use crate::media::{SourceKind, WallClock};

/// How often the service looks for streams that went online.
const WATCH_INTERVAL: Duration = Duration::from_millis(50);
/// Packets the reader queue holds: a few keyframe bursts at several Mbit/s.
const READER_QUEUE: usize = 2048;

/// What the service needs besides the muxer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveConfig {
    pub hls: HlsConfig,
    /// How long a stream's playlist outlives its source, waiting for it to come back.
    pub linger: Duration,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            hls: HlsConfig::default(),
            linger: Duration::from_secs(15),
        }
    }
}

/// One stream's muxer as the HTTP layer sees it.
#[derive(Debug)]
pub struct LiveStream {
    pub name: String,
    /// Unique per muxer lifetime and part of every resource path, so a part URI names the same
    /// bytes forever and caches may keep it (a stream started anew restarts its numbering).
    pub instance: String,
    muxer: Mutex<StreamIngest>,
    /// Bumped (under the muxer lock) whenever the segmenter's published state may have changed;
    /// the key of `rendered`.
    revision: AtomicU64,
    /// The last media playlist rendered, per `skip` (full, delta): `(revision, bytes)`.
    rendered: Mutex<[Option<(u64, Bytes)>; 2]>,
    counters: Arc<HlsCounters>,
    changed: watch::Sender<u64>,
    attached: AtomicBool,
    detached_at: Mutex<Option<Instant>>,
}

impl LiveStream {
    fn new(name: &str, ingest: StreamIngest, counters: Arc<HlsCounters>) -> Self {
        Self {
            name: name.to_owned(),
            instance: format!("{:08x}", rand::rng().random::<u32>()),
            muxer: Mutex::new(ingest),
            revision: AtomicU64::new(0),
            rendered: Mutex::new([None, None]),
            counters,
            changed: watch::channel(0).0,
            attached: AtomicBool::new(false),
            detached_at: Mutex::new(None),
        }
    }

    fn muxer(&self) -> MutexGuard<'_, StreamIngest> {
        self.muxer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The muxer, for a change that alters the playlist (a restart, the end).
    fn muxer_mut(&self) -> MutexGuard<'_, StreamIngest> {
        let guard = self.muxer();
        self.revision.fetch_add(1, Ordering::AcqRel);
        guard
    }

    /// Reads the segmenter (playlists, parts) under its lock; keep `f` short.
    pub fn read<R>(&self, f: impl FnOnce(&Segmenter) -> R) -> R {
        f(self.muxer().segmenter())
    }

    /// The media playlist as of now (`skip`: the delta update), rendered once per published
    /// state and shared by every request that reads that state.
    pub fn media_playlist(&self, skip: bool) -> Bytes {
        let muxer = self.muxer();
        // Stable while the muxer lock is held: every change bumps it under that lock.
        let revision = self.revision.load(Ordering::Acquire);
        let mut rendered = self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &mut rendered[usize::from(skip)];
        if let Some((at, bytes)) = slot.as_ref()
            && *at == revision
        {
            return bytes.clone();
        }
        let bytes = Bytes::from(media_playlist(muxer.segmenter(), skip));
        self.counters.renders.fetch_add(1, Ordering::Relaxed);
        *slot = Some((revision, bytes.clone()));
        bytes
    }

    /// The counters of the service this stream belongs to.
    pub fn counters(&self) -> &HlsCounters {
        &self.counters
    }

    /// Changes whenever the segmenter may have published something (or the stream ended).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Whether the muxer currently receives the stream's packets.
    pub fn is_attached(&self) -> bool {
        self.attached.load(Ordering::Acquire)
    }
}

/// Every stream's LL-HLS muxer.
#[derive(Clone)]
pub struct HlsService {
    engine: SharedEngine,
    config: LiveConfig,
    streams: Arc<Mutex<HashMap<String, Arc<LiveStream>>>>,
    /// Online streams HLS cannot carry (no H.264 or Opus), said once while they stay online.
    refused: Arc<Mutex<HashSet<String>>>,
    counters: Arc<HlsCounters>,
}

/// What kind of LL-HLS request reached this server (for `r58_hls_requests_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Multivariant,
    /// A media playlist with `_HLS_msn` (held until that part or segment exists).
    BlockingPlaylist,
    Playlist,
    Part,
    Segment,
    Init,
}

impl RequestKind {
    pub const ALL: [RequestKind; 6] = [
        RequestKind::Multivariant,
        RequestKind::BlockingPlaylist,
        RequestKind::Playlist,
        RequestKind::Part,
        RequestKind::Segment,
        RequestKind::Init,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Multivariant => "multivariant",
            RequestKind::BlockingPlaylist => "blocking_playlist",
            RequestKind::Playlist => "playlist",
            RequestKind::Part => "part",
            RequestKind::Segment => "segment",
            RequestKind::Init => "init",
        }
    }
}

/// Requests that reached the origin and media playlists it rendered: with many viewers of one
/// stream, renders stay at about one per published part however many requests there are.
#[derive(Debug, Default)]
pub struct HlsCounters {
    requests: [AtomicU64; 6],
    renders: AtomicU64,
}

impl HlsCounters {
    pub fn count(&self, kind: RequestKind) {
        self.requests[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn requests(&self, kind: RequestKind) -> u64 {
        self.requests[kind as usize].load(Ordering::Relaxed)
    }

    /// Media playlists rendered (each served to every request for the same state).
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }
}

impl HlsService {
    pub fn new(engine: SharedEngine, config: LiveConfig) -> Self {
        Self {
            engine,
            config,
            streams: Arc::new(Mutex::new(HashMap::new())),
            refused: Arc::new(Mutex::new(HashSet::new())),
            counters: Arc::new(HlsCounters::default()),
        }
    }

    pub fn counters(&self) -> &HlsCounters {
        &self.counters
    }

    pub fn config(&self) -> &LiveConfig {
        &self.config
    }

    fn streams(&self) -> MutexGuard<'_, HashMap<String, Arc<LiveStream>>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stream's muxer, while it exists.
    pub fn get(&self, name: &str) -> Option<Arc<LiveStream>> {
        self.streams().get(name).cloned()
    }

    /// Names of the streams with a muxer.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.streams().keys().cloned().collect();
        names.sort();
        names
    }

    /// Watches the hub until the runtime shuts down: starts muxers for streams that went
    /// online, re-attaches returning ones, frees those gone longer than the linger time.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.poll(Instant::now());
        }
    }

    /// One pass of [`HlsService::run`].
    pub fn poll(&self, now: Instant) {
        let mut unattached = Vec::new();
        {
            let engine = self.engine.lock();
            let streams = self.streams();
            let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
            // A guest's return feed is for that guest's page, over WebRTC only.
            let online: HashSet<&str> = engine
                .hub()
                .iter()
                .filter(|s| s.publisher().is_some() && s.source != SourceKind::Return)
                .map(|s| s.name())
                .collect();
            refused.retain(|name| online.contains(name.as_str()));
            for stream in engine.hub().iter().filter(|s| online.contains(s.name())) {
                let name = stream.name();
                if streams.get(name).is_some_and(|s| s.is_attached()) || refused.contains(name) {
                    continue;
                }
                let tracks: Vec<ReaderTrack> =
                    stream.tracks.iter().map(ReaderTrack::from).collect();
                if let Err(e) = StreamIngest::new(self.config.hls, &tracks, WallClock::now()) {
                    info!(stream = name, "no LL-HLS for this stream: {e}");
                    refused.insert(name.to_owned());
                    continue;
                }
                unattached.push(name.to_owned());
            }
        }
        for name in &unattached {
            let existing = self.get(name);
            self.attach(now, name, existing);
        }
        let expired: Vec<Arc<LiveStream>> = {
            let mut streams = self.streams();
            let expired: Vec<String> = streams
                .values()
                .filter(|s| {
                    !s.is_attached()
                        && s.detached_at
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .is_some_and(|at| now.duration_since(at) >= self.config.linger)
                })
                .map(|s| s.name.clone())
                .collect();
            expired
                .iter()
                .filter_map(|name| streams.remove(name))
                .collect()
        };
        for stream in expired {
            info!(stream = %stream.name, "LL-HLS muxer freed: the stream did not come back");
            let _ = stream.muxer_mut().finish();
            stream.notify();
        }
    }

    /// Attaches a reader to `name` and starts its muxer task, continuing `existing` when the
    /// new source carries the same tracks.
    fn attach(&self, now: Instant, name: &str, existing: Option<Arc<LiveStream>>) {
        let attached = self
            .engine
            .lock()
            .attach_reader(now, name, "hls", READER_QUEUE);
        let Ok((tracks, rx)) = attached else {
            return; // gone again since the scan
        };
        let stream = match existing {
            Some(stream) if stream.muxer().carries_same_tracks(&tracks) => {
                if let Err(e) = stream.muxer_mut().restart() {
                    warn!(stream = name, "LL-HLS discontinuity failed: {e}");
                }
                stream
            }
            _ => match self.new_stream(name, &tracks) {
                Ok(stream) => stream,
                Err(e) => {
                    info!(stream = name, "no LL-HLS for this stream: {e}");
                    return;
                }
            },
        };
        stream.attached.store(true, Ordering::Release);
        *stream.detached_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let span = info_span!("hls", stream = name, instance = %stream.instance);
        tokio::spawn(feed(self.engine.clone(), stream, rx).instrument(span));
    }

    fn new_stream(
        &self,
        name: &str,
        tracks: &[ReaderTrack],
    ) -> Result<Arc<LiveStream>, IngestError> {
        let ingest = StreamIngest::new(self.config.hls, tracks, WallClock::now())?;
        let stream = Arc::new(LiveStream::new(name, ingest, self.counters.clone()));
        info!(stream = name, instance = %stream.instance, "LL-HLS muxer started");
        if let Some(old) = self.streams().insert(name.to_owned(), stream.clone()) {
            let _ = old.muxer_mut().finish();
            old.notify();
        }
        Ok(stream)
    }
}

/// Moves packets from the reader queue into the muxer until the stream ends or is replaced.
async fn feed(engine: SharedEngine, stream: Arc<LiveStream>, mut rx: Receiver<ReaderPacket>) {
    let mut reported = 0u64;
    let mut batch = Vec::with_capacity(64);
    while rx.recv_many(&mut batch, 64).await > 0 {
        let (published, wants_keyframe) = {
            let mut muxer = stream.muxer();
            let before = muxer.segmenter().progress();
            for packet in batch.drain(..) {
                if let Err(e) = muxer.handle_packet(&packet) {
                    log_error(&mut reported, muxer.stats.errors, &e);
                }
            }
            // Parts, segments and the target duration are all in the progress: when it did not
            // move, the playlist and the resources are what they were, and nobody is woken.
            let published = muxer.segmenter().progress() != before;
            if published {
                stream.revision.fetch_add(1, Ordering::AcqRel);
            }
            (published, muxer.wants_keyframe())
        };
        if published {
            stream.notify();
        }
        if wants_keyframe {
            let now = Instant::now();
            if engine.lock().request_keyframe(now, &stream.name) {
                engine.flush_soon();
            }
        }
    }
    debug!("LL-HLS reader detached");
    stream.attached.store(false, Ordering::Release);
    *stream.detached_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    stream.notify();
}

/// Loss on a live path is normal: say so at debug level, and warn only about the first few
/// errors of other kinds (the counter goes to /api/streams).
fn log_error(reported: &mut u64, total: u64, error: &IngestError) {
    match error {
        IngestError::Depacketize(crate::rtp::depacketize::DepacketizeError::Loss { .. }) => {
            debug!("{error}");
        }
        _ if *reported < 5 => {
            *reported += 1;
            warn!(errors = total, "LL-HLS muxer input: {error}");
        }
        _ => debug!("{error}"),
    }
}
