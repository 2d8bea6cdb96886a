//! The switcher's tokio side: readers on the streams the program bus needs, the `program` local
//! source it publishes into, a 20 ms timer, fallback when the program source goes away, and the
//! state the HTTP API shows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::sync::{broadcast, mpsc::Receiver};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::bus::{Cut, Output, ProgramBus, ProgramTrack, SwitchError};
use super::mixer::{AudioMixer, Level, MixerStats, Mode, Strip};
use crate::engine::SharedEngine;
use crate::engine::{Engine, LocalSourceId, ReaderTrack};
use crate::hub::ReaderPacket;
use crate::media::CodecSpec;
use crate::media::{SourceKind, TrackKind};

const TICK: Duration = Duration::from_millis(20);
/// The name of guest `g`'s return feed is `g` followed by this; WHIP refuses such names.
pub const RETURN_SUFFIX: &str = ".return";
const READER_QUEUE: usize = 2048;
/// Program RTP parameters (the engine rewrites them per viewer anyway).
const VIDEO_OUT: (u32, u8) = (0x5052_4f47, 102);
const AUDIO_OUT: (u32, u8) = (0x5052_4f48, 111);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitcherConfig {
    /// The program stream's name.
    pub program: String,
    /// Where the program goes when its source disappears; `None`: the first live camera.
    pub fallback: Option<String>,
    /// Program audio mixed from every source in the mix (true), or the on-air source's packets
    /// passed through (false: no decoding, for a box short of CPU).
    pub audio_mix: bool,
}

impl Default for SwitcherConfig {
    fn default() -> Self {
        Self {
            program: "program".to_owned(),
            fallback: None,
            audio_mix: true,
        }
    }
}

/// The mixer's settings, in the switcher's state (and its events).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioSettings {
    pub master_gain_db: f32,
    /// The talkback: which stream talks to which guest.
    pub talkback: Option<Talkback>,
    /// Every strip set, and the default one of every source sending audio.
    pub strips: std::collections::BTreeMap<String, Strip>,
}

/// `GET /api/switcher/audio`: the settings with the meters and counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioState {
    #[serde(flatten)]
    pub settings: AudioSettings,
    pub levels: std::collections::BTreeMap<String, Level>,
    pub master_level: Level,
    pub stats: MixerStats,
}

/// A change to one strip: the fields given replace the strip's.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StripChange {
    pub gain_db: Option<f32>,
    pub mute: Option<bool>,
    pub mode: Option<Mode>,
}

/// A live stream the operator could put on program.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceInfo {
    pub name: String,
    pub kind: SourceKind,
    pub video: Option<String>,
    pub audio: Option<String>,
    /// Why it cannot go to program, if it cannot.
    pub incompatible: Option<String>,
}

/// What `GET /api/switcher` shows and `/api/events` announces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitcherState {
    pub program_stream: String,
    pub program: Option<String>,
    pub preview: Option<String>,
    pub audio_pin: Option<String>,
    pub pending: Option<String>,
    pub sources: Vec<SourceInfo>,
    pub history: Vec<Cut>,
    /// The audio mixer's settings; None when program audio is passed through.
    pub audio: Option<AudioSettings>,
}

/// Counters for /metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize)]
pub struct SwitcherStats {
    pub cuts: u64,
    pub forced_cuts: u64,
    pub fallbacks: u64,
    pub cut_latency_ms_sum: f64,
    pub last_cut_latency_ms: Option<f64>,
}

pub(super) struct State {
    pub(super) bus: ProgramBus,
    program_source: Option<LocalSourceId>,
    /// Reader tasks by source name, with the source's tracks.
    readers: HashMap<String, (JoinHandle<()>, Vec<ReaderTrack>)>,
    stats: SwitcherStats,
    /// Return feed local sources by guest (return_feeds.rs).
    pub(super) returns: HashMap<String, LocalSourceId>,
    /// Ticks since the return feeds were last brought in line with the guests.
    pub(super) ticks_since_returns: u32,
}

/// The production switcher; cheap to clone.
#[derive(Clone)]
pub struct Switcher {
    pub(super) engine: SharedEngine,
    pub(super) config: Arc<SwitcherConfig>,
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<SwitcherState>,
}

impl Switcher {
    pub fn new(engine: SharedEngine, config: SwitcherConfig) -> Self {
        let now = Instant::now();
        let mut bus = ProgramBus::new(now, SystemTime::now(), VIDEO_OUT, AUDIO_OUT);
        if config.audio_mix {
            match AudioMixer::new(now) {
                Ok(mixer) => bus = bus.with_mixer(mixer),
                Err(e) => warn!("no audio mixer, program audio follows video unmixed: {e}"),
            }
        }
        Self {
            engine,
            config: Arc::new(config),
            state: Arc::new(Mutex::new(State {
                bus,
                program_source: None,
                readers: HashMap::new(),
                stats: SwitcherStats::default(),
                returns: HashMap::new(),
                ticks_since_returns: 0,
            })),
            events: broadcast::channel(64).0,
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn program_name(&self) -> &str {
        &self.config.program
    }

    /// Every change of program, preview, pending cut or sources, as the new state.
    pub fn subscribe(&self) -> broadcast::Receiver<SwitcherState> {
        self.events.subscribe()
    }

    pub fn stats(&self) -> SwitcherStats {
        self.lock().stats
    }

    /// Program, preview, sources and the cut history.
    pub fn state(&self) -> SwitcherState {
        let mut sources = self.sources();
        let state = self.lock();
        // The operator's talkback microphone is no input.
        if let Some((talking, _)) = state.bus.mixer().and_then(|m| m.talkback()) {
            sources.retain(|s| s.name != talking);
        }
        SwitcherState {
            program_stream: self.config.program.clone(),
            program: state.bus.program().map(str::to_owned),
            preview: state.bus.preview().map(str::to_owned),
            audio_pin: state.bus.audio_pin().map(str::to_owned),
            pending: state.bus.pending().map(str::to_owned),
            sources,
            history: state.bus.history().cloned().collect(),
            audio: state.bus.mixer().map(settings),
        }
    }

    /// The mixer's settings, levels and counters; None when program audio is passed through.
    pub fn audio_state(&self) -> Option<AudioState> {
        let state = self.lock();
        let mixer = state.bus.mixer()?;
        let (levels, master_level) = mixer.levels();
        Some(AudioState {
            settings: settings(mixer),
            levels,
            master_level,
            stats: mixer.stats(),
        })
    }

    /// Changes `source`'s strip (the source need not be live).
    pub fn set_strip(&self, source: &str, change: StripChange) -> Result<(), SwitchError> {
        if source == self.config.program {
            return Err(SwitchError::SelfSource);
        }
        {
            let mut state = self.lock();
            let mixer = state.bus.mixer_mut().ok_or(SwitchError::NoMixer)?;
            let old = mixer.strip(source);
            let strip = Strip {
                gain_db: change.gain_db.unwrap_or(old.gain_db),
                mute: change.mute.unwrap_or(old.mute),
                mode: change.mode.unwrap_or(old.mode),
            };
            mixer
                .set_strip(source, strip)
                .map_err(|e| SwitchError::Audio(e.to_string()))?;
            info!(source, ?strip, "audio strip set");
        }
        self.sync_readers(Instant::now());
        self.announce();
        Ok(())
    }

    /// The operator's talkback: stream `source` heard by guest `to` only (None ends it).
    pub fn set_talkback(&self, talkback: Option<(&str, &str)>) -> Result<(), SwitchError> {
        if let Some((source, to)) = talkback {
            if source == to {
                return Err(SwitchError::Audio("a source cannot talk to itself".into()));
            }
            if source == self.config.program {
                return Err(SwitchError::SelfSource);
            }
        }
        {
            let mut state = self.lock();
            let mixer = state.bus.mixer_mut().ok_or(SwitchError::NoMixer)?;
            mixer.set_talkback(talkback);
            // The talking stream is no guest: its return feed closes at the next tick.
            state.ticks_since_returns = u32::MAX - 1;
        }
        info!(?talkback, "talkback set");
        self.sync_readers(Instant::now());
        self.announce();
        Ok(())
    }

    /// Sets the master gain.
    pub fn set_master_gain(&self, db: f32) -> Result<(), SwitchError> {
        {
            let mut state = self.lock();
            let mixer = state.bus.mixer_mut().ok_or(SwitchError::NoMixer)?;
            mixer
                .set_master_db(db)
                .map_err(|e| SwitchError::Audio(e.to_string()))?;
        }
        info!(gain_db = db, "audio master gain set");
        self.announce();
        Ok(())
    }

    /// Live streams other than the program, by name.
    fn sources(&self) -> Vec<SourceInfo> {
        let engine = self.engine.lock();
        let mut sources: Vec<SourceInfo> = engine
            .hub()
            .iter()
            .filter(|s| {
                s.publisher().is_some()
                    && s.name() != self.config.program
                    && s.source != SourceKind::Return
            })
            .map(|s| {
                let tracks: Vec<ReaderTrack> = s.tracks.iter().map(ReaderTrack::from).collect();
                let codec = |kind| {
                    tracks
                        .iter()
                        .find(|t| t.kind == kind)
                        .map(|t| t.codec.name.clone())
                };
                SourceInfo {
                    name: s.name().to_owned(),
                    kind: s.source,
                    video: codec(TrackKind::Video),
                    audio: codec(TrackKind::Audio),
                    incompatible: compatibility(&tracks).err(),
                }
            })
            .collect();
        sources.sort_by(|a, b| a.name.cmp(&b.name));
        sources
    }

    fn announce(&self) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(self.state());
        }
    }

    /// Checks that `name` is live and carries what the program does.
    fn check_source(&self, name: &str) -> Result<(), SwitchError> {
        if name == self.config.program {
            return Err(SwitchError::SelfSource);
        }
        let engine = self.engine.lock();
        let stream = engine
            .hub()
            .get(name)
            .filter(|s| s.publisher().is_some())
            .ok_or_else(|| SwitchError::NotLive(name.to_owned()))?;
        let tracks: Vec<ReaderTrack> = stream.tracks.iter().map(ReaderTrack::from).collect();
        compatibility(&tracks).map_err(|reason| SwitchError::Incompatible {
            name: name.to_owned(),
            reason,
        })
    }

    /// Cuts the program to `source` on its next keyframe.
    pub fn cut(&self, source: &str) -> Result<(), SwitchError> {
        self.check_source(source)?;
        let now = Instant::now();
        self.lock().bus.cut(now, source, "operator");
        info!(source, "cut requested");
        self.sync_readers(now);
        self.drain(now);
        self.announce();
        Ok(())
    }

    pub fn set_preview(&self, source: Option<&str>) -> Result<(), SwitchError> {
        if let Some(source) = source {
            self.check_source(source)?;
        }
        self.lock().bus.set_preview(source.map(str::to_owned));
        self.announce();
        Ok(())
    }

    /// Pins program audio to `source`, or lets it follow video again (`None`).
    pub fn pin_audio(&self, source: Option<&str>) -> Result<(), SwitchError> {
        if let Some(source) = source {
            self.check_source(source)?;
        }
        self.lock().bus.pin_audio(source.map(str::to_owned));
        self.sync_readers(Instant::now());
        self.announce();
        Ok(())
    }

    /// Runs the timer until the runtime stops.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.poll(Instant::now());
        }
    }

    /// One timer step: the bus's timers, program viewers' keyframe requests, sources gone.
    pub fn poll(&self, now: Instant) {
        let program_source = self.lock().program_source;
        if let Some(id) = program_source
            && self.engine.lock().take_keyframe_request(id)
        {
            self.lock().bus.program_keyframe_request();
        }
        self.lock().bus.handle_timeout(now);
        let gone: Vec<String> = {
            let state = self.lock();
            state
                .readers
                .iter()
                .filter(|(_, (task, _))| task.is_finished())
                .map(|(name, _)| name.clone())
                .collect()
        };
        if !gone.is_empty() {
            self.sources_gone(now, &gone);
        }
        self.sync_returns(now);
        self.drain(now);
    }

    fn sources_gone(&self, now: Instant, gone: &[String]) {
        let lost_program = {
            let mut state = self.lock();
            let had = state.bus.program().map(str::to_owned);
            for name in gone {
                state.readers.remove(name);
                state.bus.source_gone(name);
            }
            had.filter(|p| gone.contains(p) && state.bus.pending().is_none())
        };
        if let Some(lost) = lost_program {
            match self.fallback() {
                Some(fallback) => {
                    warn!(
                        lost,
                        fallback, "program source gone; cutting to the fallback"
                    );
                    let mut state = self.lock();
                    state.stats.fallbacks += 1;
                    state.bus.fall_back(now, &fallback, &lost);
                }
                None => warn!(lost, "program source gone and no fallback is live"),
            }
        }
        self.sync_readers(now);
        self.announce();
    }

    /// The configured fallback if live, else the first live camera.
    fn fallback(&self) -> Option<String> {
        if let Some(name) = &self.config.fallback
            && self.check_source(name).is_ok()
        {
            return Some(name.clone());
        }
        let mut cameras: Vec<String> = self
            .sources()
            .into_iter()
            .filter(|s| s.kind == SourceKind::Camera && s.incompatible.is_none())
            .map(|s| s.name)
            .collect();
        cameras.sort();
        cameras.into_iter().next()
    }

    /// Attaches readers to the sources the bus wants and drops the others. Never holds the
    /// state lock while taking the engine's (the engine's is always taken first).
    fn sync_readers(&self, now: Instant) {
        let missing: Vec<String> = {
            let mut state = self.lock();
            let wanted = state.bus.wanted_sources();
            state.readers.retain(|name, (task, _)| {
                let keep = wanted.contains(name);
                if !keep {
                    task.abort();
                }
                keep
            });
            wanted
                .into_iter()
                .filter(|name| !state.readers.contains_key(name))
                .collect()
        };
        for name in missing {
            let attached = self
                .engine
                .lock()
                .attach_reader(now, &name, "switcher", READER_QUEUE);
            let mut state = self.lock();
            match attached {
                Ok((tracks, rx)) => {
                    let task =
                        tokio::spawn(read_source(self.clone(), name.clone(), tracks.clone(), rx));
                    if let Some((old, _)) = state.readers.insert(name, (task, tracks)) {
                        old.abort(); // attached twice by concurrent calls
                    }
                }
                Err(e) => {
                    warn!(source = name, "switcher cannot read the source: {e}");
                    state.bus.source_gone(&name);
                }
            }
        }
    }

    /// Carries out what the bus asked for.
    fn drain(&self, now: Instant) {
        let mut packets = Vec::new();
        let mut returns = Vec::new();
        let mut requests = Vec::new();
        let mut urgent = Vec::new();
        let mut announce = false;
        {
            let mut state = self.lock();
            while let Some(out) = state.bus.poll_output() {
                match out {
                    Output::Packet {
                        track,
                        packet,
                        content_at,
                    } => packets.push((track, packet, content_at)),
                    Output::Return {
                        guest,
                        packet,
                        content_at,
                    } => returns.push((guest, packet, content_at)),
                    Output::RequestKeyframe(name) => requests.push(name),
                    Output::RequestKeyframeNow(name) => urgent.push(name),
                    Output::CutTaken(cut) => {
                        info!(
                            to = cut.to,
                            latency_ms = cut.latency_ms,
                            forced = cut.forced,
                            "cut"
                        );
                        state.stats.cuts += 1;
                        state.stats.forced_cuts += u64::from(cut.forced);
                        if let Some(ms) = cut.latency_ms {
                            state.stats.cut_latency_ms_sum += ms;
                            state.stats.last_cut_latency_ms = Some(ms);
                        }
                        announce = true;
                    }
                }
            }
        }
        if announce {
            self.sync_readers(now);
        }
        if !packets.is_empty() || !returns.is_empty() || !requests.is_empty() || !urgent.is_empty()
        {
            let mut engine = self.engine.lock();
            for name in &requests {
                engine.request_keyframe(now, name);
            }
            for name in &urgent {
                engine.request_keyframe_now(now, name);
            }
            self.send_returns(&mut engine, now, &packets, returns);
            if !packets.is_empty() {
                let id = self.program_source(&mut engine, now);
                for (track, packet, content_at) in packets {
                    let index = match track {
                        ProgramTrack::Video => 0,
                        ProgramTrack::Audio => 1,
                    };
                    if let Some(id) = id
                        && engine
                            .ingest_local_at(now, id, index, packet, content_at)
                            .is_err()
                    {
                        // Taken over by a WHIP publisher of the same name: open again later.
                        self.lock().program_source = None;
                        break;
                    }
                }
            }
            drop(engine);
            self.engine.flush_soon();
        }
        if announce {
            self.announce();
        }
    }

    /// The program's local source, opened on first use.
    fn program_source(&self, engine: &mut Engine, now: Instant) -> Option<LocalSourceId> {
        let mut state = self.lock();
        if let Some(id) = state.program_source {
            return Some(id);
        }
        let tracks = program_tracks();
        match engine.open_local_source(now, &self.config.program, SourceKind::Program, tracks) {
            Ok(id) => {
                state.program_source = Some(id);
                Some(id)
            }
            Err(e) => {
                warn!("cannot open the program stream: {e}");
                None
            }
        }
    }
}

/// The program's tracks (and each return feed's): H.264 video and Opus audio.
pub(super) fn program_tracks() -> Vec<(TrackKind, CodecSpec)> {
    vec![
        (
            TrackKind::Video,
            CodecSpec {
                name: "H264".into(),
                clock_rate: 90_000,
                channels: None,
                fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
                    .into(),
            },
        ),
        (
            TrackKind::Audio,
            CodecSpec {
                name: "opus".into(),
                clock_rate: 48_000,
                channels: Some(2),
                fmtp: "minptime=10;useinbandfec=1".into(),
            },
        ),
    ]
}

/// The operator talking to one guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Talkback {
    pub source: String,
    pub to: String,
}

fn settings(mixer: &AudioMixer) -> AudioSettings {
    AudioSettings {
        master_gain_db: mixer.master_db(),
        talkback: mixer.talkback().map(|(source, to)| Talkback {
            source: source.to_owned(),
            to: to.to_owned(),
        }),
        strips: mixer.strips(),
    }
}

/// Whether a stream with `tracks` can go to program: H.264 video and/or Opus audio only.
fn compatibility(tracks: &[ReaderTrack]) -> Result<(), String> {
    match crate::media::outputs::passthrough_refusal(
        tracks.iter().map(|t| (t.kind, t.codec.name.as_str())),
    ) {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

/// Feeds one source's packets to the bus until its stream ends.
async fn read_source(
    switcher: Switcher,
    name: String,
    tracks: Vec<ReaderTrack>,
    mut rx: Receiver<ReaderPacket>,
) {
    let mut batch = Vec::with_capacity(64);
    while rx.recv_many(&mut batch, 64).await > 0 {
        let now = Instant::now();
        {
            let mut state = switcher.lock();
            for packet in batch.drain(..) {
                if let Some(track) = tracks.get(packet.track) {
                    state.bus.handle_packet(now, &name, track.kind, &packet);
                }
            }
        }
        switcher.drain(now);
    }
}
