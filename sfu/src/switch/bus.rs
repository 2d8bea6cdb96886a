//! The program bus, sans-IO: packets of the selected source streams in, one continuous RTP
//! stream per program track out, cuts taken on the new source's keyframe.
//!
//! A cut asks the new source for a keyframe and keeps sending the old source until that keyframe
//! arrives; then video switches on the keyframe's first packet and audio switches with it (or
//! stays on a pinned audio source). The program's SSRC, sequence numbers and timestamps stay
//! continuous: each output track counts its own sequence numbers, and when a track's source
//! changes its timestamps are re-based so the new source starts where the wall clock says the
//! old one would have reached. Viewers see one stream without renegotiation or gaps.
//!
//! With a [`AudioMixer`] (the switcher's default) program audio is not one source's packets
//! but the mix of every source in it (`on` strips, the program source's if `afv`, or only the
//! pinned source), one Opus frame every 20 ms on the mixer's clock; without one, audio follows
//! the video source or the pin as packets, unchanged.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use thiserror::Error;

use super::content_clock::ContentClock;
use super::mixer::AudioMixer;
use crate::hub::ReaderPacket;
use crate::media::TrackKind;

/// Cuts remembered for `GET /api/switcher`.
const HISTORY: usize = 50;
/// A cut whose keyframe does not come within this long is taken anyway at the next packet, so a
/// source that never answers keyframe requests cannot block the operator.
pub const CUT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a pending cut repeats its keyframe request (the engine rate-limits below this).
const REQUEST_REPEAT: Duration = Duration::from_millis(500);
/// Program audio quiet for this long (a source without audio, a muted guest) is filled with
/// Opus silence, so players that buffer audio and video together (MSE, LL-HLS) never stall on
/// an audio gap.
const SILENCE_AFTER: Duration = Duration::from_millis(100);
/// One 20 ms Opus frame of silence (CELT, fullband, mono; the encoder's own "nothing" frame).
const OPUS_SILENCE: &[u8] = &[0xf8, 0xff, 0xfe];
const OPUS_FRAME: Duration = Duration::from_millis(20);
/// The source name silence frames are rewritten under (not a valid stream name).
const SILENCE_SOURCE: &str = "\u{0}silence";
/// The source name mixed frames are rewritten under (not a valid stream name).
const MIX_SOURCE: &str = "\u{0}mix";
/// The SSRC of every return feed's audio (the engine gives each viewer its own).
const RETURN_SSRC: u32 = 0x5245_544e;

pub const VIDEO_CLOCK: u32 = 90_000;
pub const AUDIO_CLOCK: u32 = 48_000;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SwitchError {
    #[error("stream {0:?} is not live")]
    NotLive(String),
    #[error("stream {name:?} cannot go to program: {reason}")]
    Incompatible { name: String, reason: String },
    #[error("the program cannot take itself as a source")]
    SelfSource,
    #[error("program audio is not mixed here ([switcher] audio_mix = false)")]
    NoMixer,
    #[error("{0}")]
    Audio(String),
}

/// A program output track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgramTrack {
    Video,
    Audio,
}

impl ProgramTrack {
    pub fn of(kind: TrackKind) -> Self {
        match kind {
            TrackKind::Video => Self::Video,
            TrackKind::Audio => Self::Audio,
        }
    }

    fn clock(self) -> u32 {
        match self {
            Self::Video => VIDEO_CLOCK,
            Self::Audio => AUDIO_CLOCK,
        }
    }
}

/// One cut, for the history and the events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cut {
    pub from: Option<String>,
    pub to: String,
    /// Milliseconds since the Unix epoch when the cut was asked for.
    pub requested_at_ms: u64,
    /// From the request to the new source's keyframe going out on program; `None` while pending.
    pub latency_ms: Option<f64>,
    /// Taken without a keyframe because none came within [`CUT_TIMEOUT`].
    pub forced: bool,
    /// Why: `operator`, or `fallback` when the program source went away.
    pub reason: &'static str,
}

/// What the bus wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this RTP packet out on the program stream's track. `content_at`: the instant its
    /// media belongs to (the source packet's arrival; for mixed audio, that of the voices in
    /// it), for the program's sender reports.
    Packet {
        track: ProgramTrack,
        packet: Bytes,
        content_at: Instant,
    },
    /// Send this RTP packet (Opus) out on guest `guest`'s return feed.
    Return {
        guest: String,
        packet: Bytes,
        content_at: Instant,
    },
    /// Ask this source stream for a keyframe (under the engine's rate limit).
    RequestKeyframe(String),
    /// Ask at once, past the rate limit: the first request of an operator's cut.
    RequestKeyframeNow(String),
    /// A cut was taken (the last history entry is complete now).
    CutTaken(Cut),
}

#[derive(Debug)]
struct OutTrack {
    ssrc: u32,
    payload_type: u8,
    sequence: u16,
    /// The last timestamp sent and when.
    last: Option<(u32, Instant)>,
    /// The content instant of the last timestamp sent: a new source is re-based from it, so the
    /// track's timestamps keep one mapping to the wall clock across cuts (players keep lip sync
    /// without re-learning it from the sender reports).
    last_content: Option<Instant>,
    /// Added to the current source's timestamps; re-based when the source or its epoch changes.
    offset: Option<u32>,
    source: Option<(String, u32)>,
}

impl OutTrack {
    fn new(ssrc: u32, payload_type: u8) -> Self {
        Self {
            ssrc,
            payload_type,
            sequence: 0,
            last: None,
            last_content: None,
            offset: None,
            source: None,
        }
    }

    /// The packet rewritten into this track's numbering.
    fn rewrite(
        &mut self,
        now: Instant,
        content_at: Instant,
        clock: u32,
        source: &str,
        packet: &ReaderPacket,
    ) -> Bytes {
        let same_source = self
            .source
            .as_ref()
            .is_some_and(|(name, epoch)| name == source && *epoch == packet.epoch);
        if !same_source || self.offset.is_none() {
            // The new source starts where the old one would be at this packet's content
            // instant, at least one tick later.
            let target = match self.last.zip(self.last_content) {
                Some(((ts, _), at)) => {
                    let elapsed = content_at.saturating_duration_since(at).as_secs_f64();
                    let ticks = ((elapsed * f64::from(clock)) as u32).max(1);
                    ts.wrapping_add(ticks)
                }
                None => packet.timestamp,
            };
            self.offset = Some(target.wrapping_sub(packet.timestamp));
            self.source = Some((source.to_owned(), packet.epoch));
        }
        let timestamp = packet.timestamp.wrapping_add(self.offset.unwrap_or(0));
        self.sequence = self.sequence.wrapping_add(1);
        // Keep the newest timestamp (later packets of one frame repeat it).
        if self
            .last
            .is_none_or(|(ts, _)| timestamp.wrapping_sub(ts) < 0x8000_0000)
        {
            self.last = Some((timestamp, now));
            self.last_content = Some(content_at);
        }
        let mut out = BytesMut::with_capacity(12 + packet.payload.len());
        out.put_u8(0x80);
        out.put_u8(self.payload_type | if packet.marker { 0x80 } else { 0 });
        out.put_u16(self.sequence);
        out.put_u32(timestamp);
        out.put_u32(self.ssrc);
        out.put_slice(&packet.payload);
        out.freeze()
    }
}

#[derive(Debug)]
struct Pending {
    to: String,
    requested: Instant,
    last_request: Instant,
    reason: &'static str,
}

/// The program bus.
#[derive(Debug)]
pub struct ProgramBus {
    video: OutTrack,
    audio: OutTrack,
    /// The source on program (video, and audio unless pinned).
    program: Option<String>,
    preview: Option<String>,
    /// A source whose audio stays on program whatever the video does.
    audio_pin: Option<String>,
    pending: Option<Pending>,
    history: VecDeque<Cut>,
    clock: (Instant, SystemTime),
    outputs: VecDeque<Output>,
    /// The timeline of generated silence (re-based like any source when it goes on air).
    silence_timestamp: u32,
    /// Program audio as a mix (None: the on-air source's packets as they are).
    mixer: Option<AudioMixer>,
    /// Each source's timestamps on the server's clock: what the program's sender reports map
    /// its packets to (steadier than their arrival, so jitter does not move lip sync).
    clocks: BTreeMap<String, SourceClocks>,
}

#[derive(Debug)]
struct SourceClocks {
    epoch: u32,
    video: ContentClock,
    audio: ContentClock,
}

impl SourceClocks {
    fn new(epoch: u32) -> Self {
        Self {
            epoch,
            video: ContentClock::new(VIDEO_CLOCK),
            audio: ContentClock::new(AUDIO_CLOCK),
        }
    }
}

impl ProgramBus {
    /// A bus whose video goes out as `(ssrc, payload type)` `video` and audio as `audio`.
    pub fn new(now: Instant, wall: SystemTime, video: (u32, u8), audio: (u32, u8)) -> Self {
        Self {
            video: OutTrack::new(video.0, video.1),
            audio: OutTrack::new(audio.0, audio.1),
            program: None,
            preview: None,
            audio_pin: None,
            pending: None,
            history: VecDeque::new(),
            clock: (now, wall),
            outputs: VecDeque::new(),
            silence_timestamp: 0,
            mixer: None,
            clocks: BTreeMap::new(),
        }
    }

    /// The bus with program audio mixed by `mixer`.
    pub fn with_mixer(mut self, mixer: AudioMixer) -> Self {
        self.mixer = Some(mixer);
        self.sync_mixer();
        self
    }

    pub fn mixer(&self) -> Option<&AudioMixer> {
        self.mixer.as_ref()
    }

    pub fn mixer_mut(&mut self) -> Option<&mut AudioMixer> {
        self.mixer.as_mut()
    }

    /// Tells the mixer who is on program and who is pinned.
    fn sync_mixer(&mut self) {
        if let Some(mixer) = &mut self.mixer {
            mixer.set_program(self.program.as_deref());
            mixer.set_pin(self.audio_pin.as_deref());
        }
    }

    pub fn program(&self) -> Option<&str> {
        self.program.as_deref()
    }

    pub fn preview(&self) -> Option<&str> {
        self.preview.as_deref()
    }

    pub fn audio_pin(&self) -> Option<&str> {
        self.audio_pin.as_deref()
    }

    /// The source a cut is waiting for, if any.
    pub fn pending(&self) -> Option<&str> {
        self.pending.as_ref().map(|p| p.to.as_str())
    }

    pub fn history(&self) -> impl Iterator<Item = &Cut> {
        self.history.iter()
    }

    /// The streams whose packets the bus needs now.
    pub fn wanted_sources(&self) -> Vec<String> {
        let mut names: Vec<String> = [
            self.program.as_deref(),
            self.pending(),
            self.audio_pin.as_deref(),
        ]
        .into_iter()
        .flatten()
        .map(str::to_owned)
        .collect();
        if let Some(mixer) = &self.mixer {
            names.extend(mixer.wanted_sources().map(str::to_owned));
        }
        names.sort();
        names.dedup();
        names
    }

    pub fn set_preview(&mut self, source: Option<String>) {
        self.preview = source;
    }

    /// Pins program audio to `source` (`None`: audio follows video).
    pub fn pin_audio(&mut self, source: Option<String>) {
        self.audio_pin = source;
        self.sync_mixer();
    }

    fn wall(&self, now: Instant) -> SystemTime {
        self.clock.1 + now.saturating_duration_since(self.clock.0)
    }

    /// Cuts to `source` at its next keyframe (the caller checked it is live and compatible).
    /// Cutting to what is already on program (and nothing pending) does nothing.
    pub fn cut(&mut self, now: Instant, source: &str, reason: &'static str) {
        if self.program.as_deref() == Some(source) && self.pending.is_none() {
            return;
        }
        if self.program.as_deref() == Some(source) {
            // Back to what is on air: drop the pending cut.
            self.pending = None;
            return;
        }
        let requested_at_ms = self
            .wall(now)
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.history.push_back(Cut {
            from: self.program.clone(),
            to: source.to_owned(),
            requested_at_ms,
            latency_ms: None,
            forced: false,
            reason,
        });
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
        self.pending = Some(Pending {
            to: source.to_owned(),
            requested: now,
            last_request: now,
            reason,
        });
        self.outputs
            .push_back(Output::RequestKeyframeNow(source.to_owned()));
    }

    /// Cuts to `source` because the program's source `lost` went away: as [`Self::cut`], with
    /// the history saying which source was lost (the program is empty by then).
    pub fn fall_back(&mut self, now: Instant, source: &str, lost: &str) {
        self.cut(now, source, "fallback");
        if let Some(last) = self.history.back_mut()
            && last.to == source
            && last.from.is_none()
            && last.latency_ms.is_none()
        {
            last.from = Some(lost.to_owned());
        }
    }

    /// The program source went away: forget it (the caller then cuts to a fallback).
    pub fn source_gone(&mut self, source: &str) {
        if self.pending.as_ref().is_some_and(|p| p.to == source) {
            self.pending = None;
            if let Some(last) = self.history.back_mut()
                && last.latency_ms.is_none()
            {
                self.history.pop_back();
            }
        }
        if self.program.as_deref() == Some(source) {
            self.program = None;
        }
        if self.audio_pin.as_deref() == Some(source) {
            self.audio_pin = None;
        }
        if let Some(mixer) = &mut self.mixer {
            mixer.source_gone(source);
        }
        self.clocks.remove(source);
        self.sync_mixer();
    }

    /// A packet of stream `source`'s track `kind`.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        source: &str,
        kind: TrackKind,
        packet: &ReaderPacket,
    ) {
        if kind == TrackKind::Video
            && let Some(pending) = &self.pending
            && pending.to == source
        {
            // A fresh keyframe: not one replayed from the cache from before the request.
            let fresh = packet.keyframe_start && packet.arrival >= pending.requested;
            let timed_out = now.saturating_duration_since(pending.requested) >= CUT_TIMEOUT;
            if fresh || timed_out {
                self.take_cut(now, !fresh);
            }
        }
        let track = ProgramTrack::of(kind);
        if track == ProgramTrack::Audio
            && let Some(mixer) = &mut self.mixer
        {
            // Mixed on the mixer's clock; what is audible is the mixer's business.
            let _ = mixer.handle_packet(
                now,
                source,
                packet.epoch,
                packet.sequence,
                packet.timestamp,
                packet.payload.clone(),
            );
            return;
        }
        if !self.clocks.contains_key(source) {
            self.clocks
                .insert(source.to_owned(), SourceClocks::new(packet.epoch));
        }
        // Every candidate's clock is kept warm, so a cut places its first frames right.
        let Some(clocks) = self.clocks.get_mut(source) else {
            return;
        };
        if clocks.epoch != packet.epoch {
            *clocks = SourceClocks::new(packet.epoch);
        }
        let clock = match track {
            ProgramTrack::Video => &mut clocks.video,
            ProgramTrack::Audio => &mut clocks.audio,
        };
        let content_at = clock.content_at(packet.arrival, packet.timestamp);
        let on_air = match track {
            ProgramTrack::Video => self.program.as_deref() == Some(source),
            ProgramTrack::Audio => {
                self.audio_pin.as_deref().or(self.program.as_deref()) == Some(source)
            }
        };
        if !on_air {
            return;
        }
        let out = match track {
            ProgramTrack::Video => &mut self.video,
            ProgramTrack::Audio => &mut self.audio,
        };
        let packet = out.rewrite(now, content_at, track.clock(), source, packet);
        self.outputs.push_back(Output::Packet {
            track,
            packet,
            content_at,
        });
    }

    fn take_cut(&mut self, now: Instant, forced: bool) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        self.program = Some(pending.to.clone());
        self.sync_mixer();
        let latency = now.saturating_duration_since(pending.requested);
        if let Some(cut) = self
            .history
            .iter_mut()
            .rev()
            .find(|c| c.to == pending.to && c.latency_ms.is_none())
        {
            cut.latency_ms = Some(latency.as_secs_f64() * 1000.0);
            cut.forced = forced;
            cut.reason = pending.reason;
            self.outputs.push_back(Output::CutTaken(cut.clone()));
        }
    }

    /// Timers: repeats the keyframe request of a pending cut; takes a cut whose source sends no
    /// video at all once [`CUT_TIMEOUT`] passed; fills quiet program audio with silence. Call
    /// every 20 ms or so.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.mixer.is_some() {
            self.emit_mix(now);
        } else {
            self.fill_silence(now);
        }
        let Some(pending) = &mut self.pending else {
            return;
        };
        if now.saturating_duration_since(pending.requested) >= CUT_TIMEOUT {
            self.take_cut(now, true);
        } else if now.saturating_duration_since(pending.last_request) >= REQUEST_REPEAT {
            pending.last_request = now;
            self.outputs
                .push_back(Output::RequestKeyframe(pending.to.clone()));
        }
    }

    fn fill_silence(&mut self, now: Instant) {
        if self.program.is_none() {
            return;
        }
        let last = self.audio.last.map(|(_, at)| at);
        let quiet_since = last.unwrap_or(self.video.last.map_or(now, |(_, at)| at));
        if now.saturating_duration_since(quiet_since) < SILENCE_AFTER && last.is_some() {
            return;
        }
        // Frames due since the last audio, at most a few per call so a long gap cannot burst.
        let mut at = last.map_or(now, |l| l + OPUS_FRAME);
        let mut timestamp = self.silence_timestamp;
        for _ in 0..10 {
            if at > now {
                break;
            }
            let packet = ReaderPacket {
                track: 0,
                epoch: 0,
                sequence: 0,
                timestamp,
                marker: false,
                keyframe_start: false,
                arrival: at,
                payload: Bytes::from_static(OPUS_SILENCE),
            };
            let packet = self
                .audio
                .rewrite(at, at, AUDIO_CLOCK, SILENCE_SOURCE, &packet);
            self.outputs.push_back(Output::Packet {
                track: ProgramTrack::Audio,
                packet,
                content_at: at,
            });
            timestamp = timestamp.wrapping_add(960);
            at += OPUS_FRAME;
        }
        self.silence_timestamp = timestamp;
    }

    /// Mixes what is due and sends it out (while something is on program: the program stream
    /// carries nothing before the first cut).
    fn emit_mix(&mut self, now: Instant) {
        let Some(mixer) = &mut self.mixer else {
            return;
        };
        mixer.handle_timeout(now);
        while let Some(frame) = mixer.poll_frame() {
            if self.program.is_none() {
                continue;
            }
            let packet = ReaderPacket {
                track: 0,
                epoch: 0,
                sequence: 0,
                timestamp: (frame.index as u32).wrapping_mul(960),
                marker: false,
                keyframe_start: false,
                arrival: frame.at,
                payload: frame.payload,
            };
            let packet =
                self.audio
                    .rewrite(frame.at, frame.content_at, AUDIO_CLOCK, MIX_SOURCE, &packet);
            self.outputs.push_back(Output::Packet {
                track: ProgramTrack::Audio,
                packet,
                content_at: frame.content_at,
            });
        }
        while let Some(frame) = mixer.poll_return() {
            // Each return is its own stream: its numbering is the frame count.
            let mut out = BytesMut::with_capacity(12 + frame.payload.len());
            out.put_u8(0x80);
            out.put_u8(self.audio.payload_type);
            out.put_u16(frame.index as u16);
            out.put_u32((frame.index as u32).wrapping_mul(960));
            out.put_u32(RETURN_SSRC);
            out.put_slice(&frame.payload);
            self.outputs.push_back(Output::Return {
                guest: frame.guest,
                packet: out.freeze(),
                content_at: frame.content_at,
            });
        }
    }

    /// A viewer of the program asked for a keyframe: pass it on to the program's source.
    pub fn program_keyframe_request(&mut self) {
        if let Some(source) = &self.program {
            self.outputs
                .push_back(Output::RequestKeyframe(source.clone()));
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }
}

#[cfg(test)]
#[path = "bus_tests.rs"]
mod tests;
