//! The recorder's driver: which streams are recorded, a thread per recorded stream, the disk
//! guard, and the repair of files a crash left behind. The HTTP layer calls
//! [`RecordService::start`], [`RecordService::stop`] and [`RecordService::status`]; the server
//! runs [`RecordService::run`].
//!
//! Each recorded stream gets a hub reader (a bounded queue: a slow disk makes the hub drop and
//! count, it never holds up the media thread) and a thread of its own that depacketizes
//! ([`StreamRecorder`], sans-IO) and writes ([`FileSink`]). The watcher attaches readers to
//! streams that match what is armed as they come online, so a guest who joins later, a camera
//! restarted by its supervisor, or a publisher taking a stream over is recorded too.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use thiserror::Error;
use tokio::sync::{mpsc::Receiver, watch};
use tracing::{info, info_span, warn};

use super::disk::{DiskAction, DiskGuard, DiskLimits, DiskSpace, Retention};
use super::files::{RecordingFile, list_files, repair_dir};
use super::input::{InputStats, StreamRecorder};
use super::names::valid_stream_name;
use super::select::Selector;
use super::sink::{FileSink, SinkStats, SyncPolicy};
use super::writer::{WriterConfig, WriterStats};
use crate::engine::{ReaderTrack, SharedEngine};
use crate::hub::ReaderPacket;
use crate::media::WallClock;

/// How often the watcher looks for streams to record and at the disk.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// Packets a recorder's queue holds: a few seconds at several Mbit/s, for a disk that stalls.
const READER_QUEUE: usize = 4096;
/// Events kept for the status.
const EVENTS_KEPT: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordConfig {
    pub dir: PathBuf,
    /// What `start` for all records.
    pub streams: Vec<Selector>,
    pub writer: WriterConfig,
    pub limits: DiskLimits,
    pub retention: Retention,
    pub sync: SyncPolicy,
    /// Start recording `streams` when the server starts.
    pub autostart: bool,
}

impl Default for RecordConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("recordings"),
            streams: vec![Selector::All],
            writer: WriterConfig::default(),
            limits: DiskLimits::default(),
            retention: Retention::DeleteOldest,
            sync: SyncPolicy::Fragment,
            autostart: false,
        }
    }
}

/// Why a control request was refused: each is the caller's mistake or the disk's state.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ControlError {
    #[error("'{0}' is not a stream name (1-64 letters, digits, '-', '_', '.')")]
    BadName(String),
    #[error("no stream '{0}' is online")]
    UnknownStream(String),
    #[error("'{0}' is already being recorded")]
    AlreadyRecording(String),
    #[error("'{0}' is not being recorded")]
    NotRecording(String),
    #[error("not enough free space: {available} bytes free, {reserve} bytes must stay free")]
    DiskFull { available: u64, reserve: u64 },
    #[error("no recording '{0}'")]
    NoSuchFile(String),
    #[error("'{0}' is being written; stop its recording first")]
    FileInUse(String),
    #[error("recording directory: {0}")]
    Io(String),
}

/// One recorded stream, as `/api/recordings` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamStatus {
    pub name: String,
    pub since: SystemTime,
    #[serde(flatten)]
    pub sink: SinkStats,
    pub writer: WriterStats,
    pub input: InputStats,
    /// Packets the hub dropped because this recorder's queue was full (a slow disk).
    pub dropped: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DiskStatus {
    pub dir: PathBuf,
    pub available_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
    /// What must stay free (`min_free_bytes`, `min_free_percent`).
    pub reserve_bytes: Option<u64>,
    /// What recordings may still use.
    pub usable_bytes: Option<u64>,
    pub write_rate_bytes_per_sec: f64,
    /// At the current rate; `None` while nothing is written.
    pub time_left_secs: Option<f64>,
    pub retention: Retention,
}

/// Something that happened, for `/api/recordings` and `/api/events`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordEvent {
    pub at: SystemTime,
    /// `started`, `stopped`, `file_deleted`, `disk_low_stopped`, `repaired`, `error`.
    pub kind: &'static str,
    pub stream: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordingsStatus {
    /// Something is armed (recording or waiting for its streams to come online).
    pub recording: bool,
    pub armed: Vec<Selector>,
    pub excluded: Vec<String>,
    pub streams: Vec<StreamStatus>,
    pub disk: DiskStatus,
    pub events: Vec<RecordEvent>,
}

#[derive(Debug)]
struct Shared {
    sink: SinkStats,
    writer: WriterStats,
    input: InputStats,
    done: bool,
}

struct Running {
    since: SystemTime,
    stop: watch::Sender<bool>,
    shared: Arc<Mutex<Shared>>,
    thread: Option<JoinHandle<()>>,
    dropped: u64,
}

struct Inner {
    armed: Vec<Selector>,
    /// When recording went from nothing armed to something.
    armed_at: Option<SystemTime>,
    excluded: HashSet<String>,
    running: HashMap<String, Running>,
    guard: DiskGuard,
    /// Bytes written by recorders that have ended (the guard's counter only grows).
    written_before: u64,
    events: VecDeque<RecordEvent>,
}

/// Every recording.
#[derive(Clone)]
pub struct RecordService {
    engine: SharedEngine,
    /// Replaced by [`RecordService::set_config`]; shared by the clones.
    config: Arc<Mutex<Arc<RecordConfig>>>,
    inner: Arc<Mutex<Inner>>,
    changed: watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RecordService {
    /// Creates the directory, repairs what a crash left in it, and arms `streams` when
    /// `autostart` says so (the watcher attaches once [`RecordService::run`] runs).
    pub fn new(engine: SharedEngine, config: RecordConfig) -> std::io::Result<Self> {
        std::fs::create_dir_all(&config.dir)?;
        let repaired = repair_dir(&config.dir)?;
        let service = Self {
            engine,
            inner: Arc::new(Mutex::new(Inner {
                armed: Vec::new(),
                armed_at: None,
                excluded: HashSet::new(),
                running: HashMap::new(),
                guard: DiskGuard::new(config.limits),
                written_before: 0,
                events: VecDeque::new(),
            })),
            config: Arc::new(Mutex::new(Arc::new(config))),
            changed: watch::channel(0).0,
        };
        for (path, what) in repaired {
            info!(target: "r58::audit", file = %path.display(), "recording repaired on start: {what}");
            service.event("repaired", None, format!("{}: {what}", path.display()));
        }
        if service.config().autostart {
            let mut inner = service.inner();
            inner.armed = service.config().streams.clone();
            inner.armed_at = Some(SystemTime::now());
            info!(target: "r58::audit", streams = ?inner.armed, "recording armed at start");
        }
        Ok(service)
    }

    /// The settings in force.
    pub fn config(&self) -> Arc<RecordConfig> {
        Arc::clone(&lock(&self.config))
    }

    /// New settings while the service runs (a configuration reload): recordings started from
    /// now on use them, as do the disk guard and retention at their next check; a running
    /// recording keeps its writer settings until it stops. What was armed stays armed. The
    /// directory cannot change here (its files, open ones included, stay where they are).
    pub fn set_config(&self, config: RecordConfig) -> Result<(), ControlError> {
        let current = self.config();
        if config.dir != current.dir {
            return Err(ControlError::Io(format!(
                "the recording directory cannot change while recording ({} -> {})",
                current.dir.display(),
                config.dir.display()
            )));
        }
        self.inner().guard.set_limits(config.limits);
        info!(target: "r58::audit", "recording settings changed");
        *lock(&self.config) = Arc::new(config);
        self.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Changes whenever the state did (for `/api/events`).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn event(&self, kind: &'static str, stream: Option<&str>, detail: String) {
        {
            let mut inner = self.inner();
            inner.events.push_back(RecordEvent {
                at: SystemTime::now(),
                kind,
                stream: stream.map(str::to_owned),
                detail,
            });
            while inner.events.len() > EVENTS_KEPT {
                inner.events.pop_front();
            }
        }
        self.notify();
    }

    /// Starts recording `stream`, or every stream of the configured selection when `None`.
    pub fn start(&self, stream: Option<&str>) -> Result<(), ControlError> {
        let now = Instant::now();
        self.sample_disk(now);
        {
            let inner = self.inner();
            if !inner.guard.may_start() {
                let space = inner.guard.last().unwrap_or(DiskSpace {
                    available: 0,
                    total: 0,
                });
                return Err(ControlError::DiskFull {
                    available: space.available,
                    reserve: inner.guard.reserve(space.total),
                });
            }
        }
        match stream {
            None => {
                let mut inner = self.inner();
                if inner.armed == self.config().streams && inner.excluded.is_empty() {
                    return Err(ControlError::AlreadyRecording("all".to_owned()));
                }
                inner.armed = self.config().streams.clone();
                inner.excluded.clear();
            }
            Some(name) => {
                if !valid_stream_name(name) {
                    return Err(ControlError::BadName(name.to_owned()));
                }
                let source = self
                    .engine
                    .lock()
                    .hub()
                    .iter()
                    .find(|s| s.name() == name && s.publisher().is_some())
                    .map(|s| s.source);
                let Some(source) = source else {
                    return Err(ControlError::UnknownStream(name.to_owned()));
                };
                let mut inner = self.inner();
                if inner.running.contains_key(name)
                    || !inner.excluded.contains(name)
                        && inner.armed.iter().any(|s| s.matches(name, source))
                {
                    return Err(ControlError::AlreadyRecording(name.to_owned()));
                }
                if !inner.excluded.remove(name)
                    || !inner.armed.iter().any(|s| s.matches(name, source))
                {
                    inner.armed.push(Selector::Name(name.to_owned()));
                }
            }
        }
        {
            let mut inner = self.inner();
            if inner.armed_at.is_none() {
                inner.armed_at = Some(SystemTime::now());
            }
        }
        let what = stream.unwrap_or("all");
        info!(target: "r58::audit", stream = what, "recording started");
        self.event("started", stream, format!("recording {what}"));
        self.poll(now);
        Ok(())
    }

    /// Stops recording `stream`, or everything when `None`.
    pub fn stop(&self, stream: Option<&str>) -> Result<(), ControlError> {
        let stopped: Vec<(String, Running)> = {
            let mut inner = self.inner();
            match stream {
                None => {
                    if inner.armed.is_empty() && inner.running.is_empty() {
                        return Err(ControlError::NotRecording("all".to_owned()));
                    }
                    inner.armed.clear();
                    inner.armed_at = None;
                    inner.excluded.clear();
                    inner.running.drain().collect()
                }
                Some(name) => {
                    if !valid_stream_name(name) {
                        return Err(ControlError::BadName(name.to_owned()));
                    }
                    let Some(running) = inner.running.remove(name) else {
                        let named = Selector::Name(name.to_owned());
                        if !inner.armed.contains(&named) {
                            return Err(ControlError::NotRecording(name.to_owned()));
                        }
                        inner.armed.retain(|s| *s != named);
                        if inner.armed.is_empty() {
                            inner.armed_at = None;
                        }
                        drop(inner);
                        self.event("stopped", Some(name), format!("recording {name} stopped"));
                        return Ok(());
                    };
                    let named = Selector::Name(name.to_owned());
                    inner.armed.retain(|s| *s != named);
                    if inner.armed.is_empty() {
                        // The session ends with its last stream.
                        inner.armed_at = None;
                    } else {
                        inner.excluded.insert(name.to_owned());
                    }
                    vec![(name.to_owned(), running)]
                }
            }
        };
        let what = stream.unwrap_or("all");
        info!(target: "r58::audit", stream = what, "recording stopped");
        self.finish_all(stopped);
        self.event("stopped", stream, format!("recording {what} stopped"));
        Ok(())
    }

    /// Stops the threads and waits for them to close their files.
    fn finish_all(&self, stopped: Vec<(String, Running)>) {
        for (_, running) in &stopped {
            let _ = running.stop.send(true);
        }
        for (name, mut running) in stopped {
            if let Some(thread) = running.thread.take()
                && thread.join().is_err()
            {
                warn!(stream = name, "recorder thread panicked");
            }
            let mut inner = self.inner();
            inner.written_before += lock(&running.shared).sink.bytes_written;
        }
    }

    /// When the current recording session began (something was armed), if one is on.
    pub fn armed_at(&self) -> Option<SystemTime> {
        self.inner().armed_at
    }

    /// Writes the program's cut list for `since..until` beside the recordings (see
    /// [`super::files::write_cut_list`]).
    pub fn write_cut_list(
        &self,
        since: SystemTime,
        until: SystemTime,
        cuts: &[super::cutlist::ProgramCut],
    ) -> Result<Vec<PathBuf>, ControlError> {
        let written = super::files::write_cut_list(&self.config().dir, since, until, cuts)
            .map_err(|e| ControlError::Io(e.to_string()))?;
        for path in &written {
            info!(target: "r58::audit", file = %path.display(), "cut list written");
            self.event("cut_list", None, path.display().to_string());
        }
        Ok(written)
    }

    /// The state for `/api/recordings`.
    pub fn status(&self) -> RecordingsStatus {
        let inner = self.inner();
        let mut streams: Vec<StreamStatus> = inner
            .running
            .iter()
            .map(|(name, r)| {
                let shared = lock(&r.shared);
                StreamStatus {
                    name: name.clone(),
                    since: r.since,
                    sink: shared.sink.clone(),
                    writer: shared.writer,
                    input: shared.input,
                    dropped: r.dropped,
                }
            })
            .collect();
        streams.sort_by(|a, b| a.name.cmp(&b.name));
        let space = inner.guard.last();
        RecordingsStatus {
            recording: !inner.armed.is_empty(),
            armed: inner.armed.clone(),
            excluded: {
                let mut e: Vec<String> = inner.excluded.iter().cloned().collect();
                e.sort();
                e
            },
            streams,
            disk: DiskStatus {
                dir: self.config().dir.clone(),
                available_bytes: space.map(|s| s.available),
                total_bytes: space.map(|s| s.total),
                reserve_bytes: space.map(|s| inner.guard.reserve(s.total)),
                usable_bytes: inner.guard.usable(),
                write_rate_bytes_per_sec: inner.guard.rate(),
                time_left_secs: inner.guard.time_left().map(|d| d.as_secs_f64()),
                retention: self.config().retention,
            },
            events: inner.events.iter().cloned().collect(),
        }
    }

    /// The finished and open recordings on disk, oldest first.
    pub fn files(&self) -> Result<Vec<RecordingFile>, ControlError> {
        let open = self.open_files();
        list_files(&self.config().dir, &open).map_err(|e| ControlError::Io(e.to_string()))
    }

    fn open_files(&self) -> HashSet<String> {
        self.inner()
            .running
            .values()
            .filter_map(|r| lock(&r.shared).sink.current.clone())
            .collect()
    }

    /// The path of a finished recording named by a request (`stream`, `file`), checked.
    pub fn file_path(&self, stream: &str, file: &str) -> Result<PathBuf, ControlError> {
        let relative = format!("{stream}/{file}");
        if super::names::parse_relative(stream, file).is_none() {
            return Err(ControlError::NoSuchFile(relative));
        }
        let path = self.config().dir.join(&relative);
        if !path.is_file() {
            return Err(ControlError::NoSuchFile(relative));
        }
        Ok(path)
    }

    /// Deletes a finished recording (not one being written).
    pub fn delete(&self, stream: &str, file: &str) -> Result<(), ControlError> {
        let path = self.file_path(stream, file)?;
        let relative = format!("{stream}/{file}");
        if self.open_files().contains(&relative) {
            return Err(ControlError::FileInUse(relative));
        }
        std::fs::remove_file(&path).map_err(|e| ControlError::Io(e.to_string()))?;
        info!(target: "r58::audit", file = relative, "recording deleted");
        self.event("file_deleted", Some(stream), relative);
        Ok(())
    }

    /// Watches the hub and the disk until the runtime shuts down.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.poll(Instant::now());
        }
    }

    /// One pass of [`RecordService::run`]: reaps ended recorders, attaches to streams that
    /// match what is armed, and guards the disk.
    pub fn poll(&self, now: Instant) {
        self.reap();
        self.attach_matching();
        self.guard_disk(now);
    }

    fn reap(&self) {
        let ended: Vec<(String, Running)> = {
            let mut inner = self.inner();
            let names: Vec<String> = inner
                .running
                .iter()
                .filter(|(_, r)| lock(&r.shared).done)
                .map(|(n, _)| n.clone())
                .collect();
            names
                .into_iter()
                .filter_map(|n| inner.running.remove(&n).map(|r| (n, r)))
                .collect()
        };
        self.finish_all(ended);
    }

    fn attach_matching(&self) {
        let mut attach = Vec::new();
        {
            let mut engine = self.engine.lock();
            let mut inner = self.inner();
            if inner.armed.is_empty() {
                return;
            }
            for stream in engine.hub().iter().filter(|s| s.publisher().is_some()) {
                let name = stream.name();
                if let Some(running) = inner.running.get_mut(name) {
                    running.dropped = stream
                        .readers
                        .iter()
                        .filter(|r| r.kind == "record")
                        .map(|r| r.dropped)
                        .sum();
                    continue;
                }
                if !inner.excluded.contains(name)
                    && inner.armed.iter().any(|s| s.matches(name, stream.source))
                {
                    attach.push(name.to_owned());
                }
            }
            let now = Instant::now();
            for name in attach.drain(..) {
                let Ok((tracks, rx)) = engine.attach_reader(now, &name, "record", READER_QUEUE)
                else {
                    continue;
                };
                match self.spawn(&name, &tracks, rx) {
                    Ok(running) => {
                        inner.running.insert(name, running);
                    }
                    Err(e) => {
                        inner.excluded.insert(name.clone());
                        drop(inner);
                        warn!(stream = name, "cannot record: {e}");
                        self.event("error", Some(&name), format!("cannot record: {e}"));
                        inner = self.inner();
                    }
                }
            }
        }
    }

    fn spawn(
        &self,
        name: &str,
        tracks: &[ReaderTrack],
        rx: Receiver<ReaderPacket>,
    ) -> Result<Running, String> {
        let recorder = StreamRecorder::new(name, self.config().writer, tracks, WallClock::now())
            .map_err(|e| e.to_string())?;
        let shared = Arc::new(Mutex::new(Shared {
            sink: SinkStats::default(),
            writer: WriterStats::default(),
            input: InputStats::default(),
            done: false,
        }));
        let (stop, stop_rx) = watch::channel(false);
        let sink = FileSink::new(&self.config().dir, self.config().sync);
        let engine = self.engine.clone();
        let thread_shared = shared.clone();
        let stream = name.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("rec-{name}"))
            .spawn(move || {
                let _span = info_span!("record", stream).entered();
                record_thread(engine, &stream, recorder, sink, rx, stop_rx, &thread_shared);
                lock(&thread_shared).done = true;
            })
            .map_err(|e| e.to_string())?;
        info!(stream = name, "recorder attached");
        Ok(Running {
            since: SystemTime::now(),
            stop,
            shared,
            thread: Some(thread),
            dropped: 0,
        })
    }

    /// Samples the file system into the guard.
    fn sample_disk(&self, now: Instant) -> Option<DiskAction> {
        let space = statvfs(&self.config().dir)?;
        let mut inner = self.inner();
        let written = inner.written_before
            + inner
                .running
                .values()
                .map(|r| lock(&r.shared).sink.bytes_written)
                .sum::<u64>();
        Some(inner.guard.check(now, space, written))
    }

    fn guard_disk(&self, now: Instant) {
        let Some(DiskAction::Low { bytes }) = self.sample_disk(now) else {
            return;
        };
        if self.inner().running.is_empty() {
            return;
        }
        if self.config().retention == Retention::DeleteOldest {
            let freed = self.delete_oldest(bytes);
            if freed >= bytes {
                return;
            }
        }
        let stopped: Vec<(String, Running)> = {
            let mut inner = self.inner();
            inner.armed.clear();
            inner.armed_at = None;
            inner.excluded.clear();
            inner.running.drain().collect()
        };
        warn!(target: "r58::audit", "recording stopped: the disk is nearly full");
        self.finish_all(stopped);
        self.event(
            "disk_low_stopped",
            None,
            format!(
                "recording stopped: fewer than {bytes} more bytes may be written before the reserve"
            ),
        );
    }

    /// Deletes finished recordings, oldest first, until `bytes` are freed; the bytes freed.
    fn delete_oldest(&self, bytes: u64) -> u64 {
        let open = self.open_files();
        let Ok(files) = list_files(&self.config().dir, &open) else {
            return 0;
        };
        let mut freed = 0;
        for file in files.iter().filter(|f| !f.open) {
            if freed >= bytes {
                break;
            }
            let path = self.config().dir.join(&file.stream).join(&file.file);
            if std::fs::remove_file(&path).is_ok() {
                freed += file.bytes;
                let relative = format!("{}/{}", file.stream, file.file);
                info!(target: "r58::audit", file = relative, "recording deleted for space (retention)");
                self.event("file_deleted", Some(&file.stream), relative);
            }
        }
        freed
    }
}

/// The file system's space for an unprivileged writer.
pub fn statvfs(dir: &Path) -> Option<DiskSpace> {
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    let block = stat.fragment_size();
    Some(DiskSpace {
        available: (stat.blocks_available() as u64).saturating_mul(block),
        total: (stat.blocks() as u64).saturating_mul(block),
    })
}

/// One recorder thread: packets from the hub reader in, files out, until the stream ends or
/// the recording stops. A small single-threaded runtime waits on the queue and the stop signal
/// together.
fn record_thread(
    engine: SharedEngine,
    stream: &str,
    mut recorder: StreamRecorder,
    mut sink: FileSink,
    mut rx: Receiver<ReaderPacket>,
    mut stop: watch::Receiver<bool>,
    shared: &Mutex<Shared>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            warn!("recorder runtime: {e}");
            return;
        }
    };
    let mut batch = Vec::with_capacity(64);
    let mut reported = 0u32;
    runtime.block_on(async {
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, 64) => {
                    if n == 0 {
                        break; // the stream ended
                    }
                }
                _ = stop.changed() => break,
            }
            for packet in batch.drain(..) {
                if let Err(e) = recorder.handle_packet(&packet)
                    && reported < 5
                {
                    reported += 1;
                    warn!("recorder input: {e}");
                }
            }
            drain(&mut recorder, &mut sink);
            publish(shared, &recorder, &sink);
            if recorder.wants_keyframe() && engine.lock().request_keyframe(Instant::now(), stream) {
                engine.flush_soon();
            }
        }
    });
    if let Err(e) = recorder.finish() {
        warn!("recorder finish: {e}");
    }
    drain(&mut recorder, &mut sink);
    publish(shared, &recorder, &sink);
    info!(
        files = sink.stats.files_closed,
        bytes = sink.stats.bytes_written,
        "recorder ended"
    );
}

fn drain(recorder: &mut StreamRecorder, sink: &mut FileSink) {
    let now = Instant::now();
    while let Some(event) = recorder.poll_event() {
        if let Err(e) = sink.apply(now, event) {
            warn!("recording write failed: {e}");
        }
    }
}

fn publish(shared: &Mutex<Shared>, recorder: &StreamRecorder, sink: &FileSink) {
    let mut shared = lock(shared);
    shared.sink.clone_from(&sink.stats);
    shared.writer = recorder.writer().stats;
    shared.input = recorder.stats;
}
