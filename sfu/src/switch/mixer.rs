//! The program's audio mixer, sans-IO: Opus packets of every source in, one mixed Opus frame
//! out every 20 ms on the mixer's own clock.
//!
//! Each source gets a jitter buffer (packets ordered by sequence number, each played
//! [`JITTER_DELAY`] after the instant its timestamp places it at — the source's own clock
//! mapped by a [`ContentClock`](super::content_clock::ContentClock), so arrival jitter neither moves the audio nor the program's
//! sender reports — at most [`MAX_BUFFERED`] kept), a decoder (libopus, to
//! 48 kHz stereo) and a strip: gain in dB, mute, and a mode — `on` (always in the mix), `afv`
//! (audio follows video: in the mix while the source is on program) or `off`. A source whose
//! packets stop is continued by the decoder's loss concealment while it fades out; one that
//! starts or comes back fades in; a gain, mute or mode change ramps over [`FADE`], so nothing
//! clicks. The sum goes through the master gain and a peak limiter (instant attack, 100 ms
//! release, ceiling [`LIMIT`]) and is encoded once (libopus, 20 ms frames, 128 kbit/s).
//!
//! Time: the caller hands in `now` with every packet and calls [`AudioMixer::handle_timeout`]
//! at [`AudioMixer::poll_timeout`]; frames come out of [`AudioMixer::poll_frame`] with the
//! instant they are for and the instant their sound was made (`content_at`: the mixed packets'
//! instants, less the encoder's look-ahead, by which a decoder's output lags its input), which
//! the program's sender reports carry so players keep the mix in sync with the video. Levels (peak and RMS per source and of the master, in dBFS, with peak
//! hold) are measured on what is mixed, for the switcher's meters.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;

mod input;

pub use super::returns::ReturnFrame;
use super::returns::Returns;
pub(super) use input::Input;
use input::Meter;

/// One mixer frame: 20 ms.
pub const FRAME: Duration = Duration::from_millis(20);
/// Samples per channel in a frame at 48 kHz.
pub const FRAME_SAMPLES: usize = 960;
pub(super) const CHANNELS: usize = 2;
/// How long a packet waits in its source's jitter buffer before it is mixed: covers the
/// arrival jitter of a guest on a real network and the 20 ms grid of the mixer's ticks, and is
/// the bulk of the mixer's added latency (the goal is at most 60 ms from packet to program).
pub const JITTER_DELAY: Duration = Duration::from_millis(30);
/// How far ahead of its instants a source's audio may play before a frame is concealed to let
/// it catch up (its path got slower: the jitter buffer would run dry).
pub const AHEAD_LIMIT: Duration = Duration::from_millis(40);
/// How far behind them before packets are skipped (after a stall the backlog would otherwise
/// stay as added delay). Larger than [`AHEAD_LIMIT`]: skipping loses audio, and lip sync does
/// not need it (the frames' content instants say where the audio is).
pub const BEHIND_LIMIT: Duration = Duration::from_millis(100);
/// The most packets a source may have waiting (200 ms): older ones are dropped (counted), so a
/// burst cannot build up delay.
pub const MAX_BUFFERED: usize = 10;
/// Gain, mute and mode changes, joins and leaves ramp over this long.
pub const FADE: Duration = Duration::from_millis(40);
/// The limiter's ceiling (-1 dBFS): the mix never clips, not even after a lossy codec —
/// Opus's decoded peaks overshoot a heavily limited signal by a few tenths of a dB (measured
/// 0.97-1.0 at the listener with a -0.3 dBFS ceiling), hence the 1 dB of headroom that
/// streaming loudness practice (EBU R 128 s1, AES TD1004) asks of lossy delivery too.
pub const LIMIT: f32 = 0.891;
/// A source with no packet for this long has left the mix (it faded out already) and its
/// decoder state is reset, so its return starts clean.
const IDLE_RESET: Duration = Duration::from_millis(500);
/// Limiter release: the gain recovers by this factor per sample (about 100 ms to -60 dB).
const RELEASE: f32 = 0.9986;
/// Peak hold of the meters.
const PEAK_HOLD: Duration = Duration::from_millis(1500);
/// Largest Opus packet written.
const MAX_PACKET: usize = 1500;
/// The encoder's bitrate: transparent stereo speech and music.
const BITRATE_BPS: i32 = 128_000;

#[derive(Debug, Error)]
pub enum MixerError {
    #[error("Opus codec: {0}")]
    Opus(#[from] opus::Error),
    #[error("gain {0} dB is outside -60..=+12 dB")]
    Gain(f32),
    #[error("more than {MAX_STRIPS} mixer strips")]
    TooManyStrips,
}

/// Strips kept for sources (live or not).
pub const MAX_STRIPS: usize = 256;

/// When a source is in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Always.
    On,
    /// While the source is on program (audio follows video).
    #[default]
    Afv,
    /// Never.
    Off,
}

/// A source's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Strip {
    pub gain_db: f32,
    pub mute: bool,
    pub mode: Mode,
}

impl Default for Strip {
    fn default() -> Self {
        Self {
            gain_db: 0.0,
            mute: false,
            mode: Mode::Afv,
        }
    }
}

/// Levels of one meter, in dBFS (-inf as [`SILENT_DB`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Level {
    pub peak_db: f32,
    pub rms_db: f32,
    /// The highest peak of the last [`PEAK_HOLD`].
    pub hold_db: f32,
}

/// What the meters show for no signal.
pub const SILENT_DB: f32 = -120.0;

/// Counters for `/metrics` and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MixerStats {
    pub frames_out: u64,
    pub packets_in: u64,
    /// Packets that came after their turn, or pushed out of a full buffer.
    pub packets_dropped: u64,
    /// Frames the decoder concealed (the packet was missing at its turn, or the source ran
    /// ahead of its timeline).
    pub concealed: u64,
    /// Packets skipped because the source fell behind its timeline by two frames.
    pub skipped: u64,
    pub decode_errors: u64,
    /// Limiter gain reduction applied at least once in a frame.
    pub limited_frames: u64,
    /// Sum and count of packet waits (arrival to mixing), for the mean added delay.
    pub wait_total_us: u64,
    pub waits: u64,
}

/// A mixed frame ready to go out: Opus payload, and the tick it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct MixedFrame {
    pub at: Instant,
    /// When the voices in it were made (the mean content instant of the packets mixed, `at`
    /// minus the jitter delay when nothing was, less the encoder's look-ahead): what the
    /// program's sender reports map this frame to, so it plays with the video of that instant.
    pub content_at: Instant,
    /// Counts frames from 0: the RTP timestamp is `index * 960` on the program's audio clock.
    pub index: u64,
    pub payload: Bytes,
}

fn from_db(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// The mixer.
#[derive(Debug)]
pub struct AudioMixer {
    /// Strips an operator set, kept while their sources come and go (others are the default).
    strips: BTreeMap<String, Strip>,
    /// Sources sending audio now (or fading out).
    inputs: BTreeMap<String, Input>,
    program: Option<String>,
    /// Only this source is heard (the switcher's audio pin), whatever the strips say.
    pin: Option<String>,
    /// Mix-minus returns by guest, and the operator's talkback.
    returns: Returns,
    master_db: f32,
    master_gain: f32,
    encoder: opus::Encoder,
    /// The encoder's look-ahead: a decoder's output lags the mix by this much (the returns'
    /// encoders have the same at 48 kHz).
    lookahead: Duration,
    /// How long before its tick the last frame's sound was made.
    content_wait: Duration,
    next_tick: Instant,
    index: u64,
    limiter: Limiter,
    master_meter: Meter,
    frames: VecDeque<MixedFrame>,
    stats: MixerStats,
    mix: Vec<f32>,
    scratch: Vec<f32>,
    packet: Vec<u8>,
}

impl AudioMixer {
    pub fn new(now: Instant) -> Result<Self, MixerError> {
        let mut encoder =
            opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::Audio)?;
        encoder.set_bitrate(opus::Bitrate::Bits(BITRATE_BPS))?;
        // Complexity 5 of 10: a fraction of the encoder's cost at full complexity, audibly the
        // same for program audio; the CPU goal is in docs/benchmarks.md.
        encoder.set_complexity(5)?;
        let lookahead_samples = u64::try_from(encoder.get_lookahead()?).unwrap_or(0);
        Ok(Self {
            strips: BTreeMap::new(),
            inputs: BTreeMap::new(),
            program: None,
            pin: None,
            returns: Returns::default(),
            master_db: 0.0,
            master_gain: 1.0,
            encoder,
            lookahead: Duration::from_micros(lookahead_samples * 1_000_000 / 48_000),
            content_wait: JITTER_DELAY,
            next_tick: now + FRAME,
            index: 0,
            limiter: Limiter::default(),
            master_meter: Meter::new(),
            frames: VecDeque::new(),
            stats: MixerStats::default(),
            mix: vec![0.0; FRAME_SAMPLES * CHANNELS],
            scratch: vec![0.0; FRAME_SAMPLES * CHANNELS],
            packet: vec![0; MAX_PACKET],
        })
    }

    /// The source on program, for the `afv` strips.
    pub fn set_program(&mut self, source: Option<&str>) {
        self.program = source.map(str::to_owned);
    }

    /// Pins the mix to `source` alone (None: the strips decide). The switcher's "audio follows
    /// video" is every strip at `afv` (the default) with no pin; its pin is this.
    pub fn set_pin(&mut self, source: Option<&str>) {
        self.pin = source.map(str::to_owned);
    }

    /// Sets a source's strip (the source need not be live yet). At most [`MAX_STRIPS`] are
    /// kept; setting one back to the default forgets it.
    pub fn set_strip(&mut self, source: &str, strip: Strip) -> Result<(), MixerError> {
        check_gain(strip.gain_db)?;
        if strip == Strip::default() {
            self.strips.remove(source);
        } else if self.strips.len() >= MAX_STRIPS && !self.strips.contains_key(source) {
            return Err(MixerError::TooManyStrips);
        } else {
            self.strips.insert(source.to_owned(), strip);
        }
        Ok(())
    }

    /// A source's strip (the default unless set).
    pub fn strip(&self, source: &str) -> Strip {
        self.strips.get(source).copied().unwrap_or_default()
    }

    /// Every strip set, and the default one for every source sending audio.
    pub fn strips(&self) -> BTreeMap<String, Strip> {
        let mut all = self.strips.clone();
        for name in self.inputs.keys() {
            all.entry(name.clone()).or_default();
        }
        all
    }

    pub fn set_master_db(&mut self, db: f32) -> Result<(), MixerError> {
        check_gain(db)?;
        self.master_db = db;
        Ok(())
    }

    pub fn master_db(&self) -> f32 {
        self.master_db
    }

    /// Sources whose packets the mix needs now: `on` strips, and the program's if `afv`.
    pub fn wanted_sources(&self) -> impl Iterator<Item = &str> {
        let pinned = self.pin.is_some();
        self.strips
            .iter()
            .filter(move |(_, strip)| !pinned && strip.mode == Mode::On)
            .map(|(name, _)| name.as_str())
            .chain(
                self.program
                    .as_deref()
                    .filter(move |p| !pinned && self.strip(p).mode == Mode::Afv),
            )
            .chain(self.pin.as_deref())
            .chain(self.returns.talkback_source())
    }

    /// An Opus packet of `source`.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        source: &str,
        epoch: u32,
        sequence: u16,
        timestamp: u32,
        payload: Bytes,
    ) -> Result<(), MixerError> {
        if !self.inputs.contains_key(source) {
            self.inputs.insert(source.to_owned(), Input::new()?);
        }
        if let Some(input) = self.inputs.get_mut(source) {
            input.push(now, epoch, sequence, timestamp, payload, &mut self.stats);
        }
        Ok(())
    }

    /// `source` left: it fades out and is forgotten (its strip with it).
    pub fn source_gone(&mut self, source: &str) {
        if let Some(input) = self.inputs.get_mut(source) {
            input.gone = true;
        }
    }

    /// When the next frame is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_tick
    }

    /// Mixes every frame due by `now` (at most a few: after a long pause the clock jumps).
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut mixed = 0;
        while self.next_tick <= now {
            if mixed == 5 {
                // Far behind (the process was stopped): skip ahead instead of bursting.
                let behind = now.saturating_duration_since(self.next_tick);
                let skip = (behind.as_micros() / FRAME.as_micros()) as u32 + 1;
                self.next_tick += FRAME * skip;
                self.index += u64::from(skip);
                break;
            }
            let tick = self.next_tick;
            self.mix_frame(tick);
            self.next_tick += FRAME;
            mixed += 1;
        }
    }

    /// Mixes one frame into `self.mix`. Allocates nothing: inputs are visited in place and
    /// the faded-out ones dropped afterwards.
    fn mix_frame(&mut self, tick: Instant) {
        self.mix.fill(0.0);
        let fade_step = 1.0 / (FADE.as_secs_f32() * 48_000.0);
        let heard = Audible {
            strips: &self.strips,
            program: self.program.as_deref(),
            pin: self.pin.as_deref(),
            talkback: self
                .returns
                .talkback
                .as_ref()
                .map(|(from, _)| from.as_str()),
        };
        self.returns.talk.clear();
        self.returns.talk.resize(FRAME_SAMPLES * CHANNELS, 0.0);
        let mut forget = false;
        // How long before the tick the mixed packets' sound was made (the frame's content
        // instant): the program source's if it played (whose picture the audio must match),
        // else the mean of those mixed, else as the last frame (a gap does not move it).
        let (mut waited, mut played) = (Duration::ZERO, 0u32);
        let mut on_program = None;
        let lead = heard.pin.or(heard.program);
        for (name, input) in &mut self.inputs {
            let mut target = if input.gone { 0.0 } else { heard.gain(name) };
            self.scratch.fill(0.0);
            input.played_content = None;
            let sounding = input.pull(tick, &mut self.scratch, &mut self.stats);
            if let Some(content) = input.played_content.filter(|_| target > 0.0) {
                waited += tick.saturating_duration_since(content);
                played += 1;
                if lead == Some(name.as_str()) {
                    on_program = Some(tick.saturating_duration_since(content));
                }
            }
            let starving = input.next.is_none();
            // A source that ran dry fades out within its one concealed frame.
            let step = if starving {
                target = 0.0;
                1.0 / FRAME_SAMPLES as f32
            } else {
                fade_step
            };
            if sounding {
                input.meter.measure(tick, &self.scratch);
                let mut gain = input.gain;
                for (own, src) in input
                    .contribution
                    .chunks_exact_mut(CHANNELS)
                    .zip(self.scratch.chunks_exact(CHANNELS))
                {
                    gain = step_toward(gain, target, step);
                    for (o, s) in own.iter_mut().zip(src) {
                        *o = s * gain;
                    }
                }
                input.gain = gain;
                // The talkback is heard by the guest it talks to, never on program.
                let into = if heard.talkback == Some(name.as_str()) {
                    &mut self.returns.talk
                } else {
                    &mut self.mix
                };
                for (o, c) in into.iter_mut().zip(&input.contribution) {
                    *o += c;
                }
            } else {
                input.contribution.fill(0.0);
                input.meter.measure(tick, &[]);
                if starving {
                    input.gain = 0.0;
                }
            }
            let idle = input
                .last_packet
                .is_none_or(|at| tick.saturating_duration_since(at) >= IDLE_RESET);
            input.faded_out = input.gone && (idle || input.gain == 0.0);
            forget |= input.faded_out;
        }
        if forget {
            self.inputs.retain(|_, input| !input.faded_out);
        }
        let wait = on_program
            .or((played > 0).then(|| waited / played))
            .unwrap_or(self.content_wait);
        self.content_wait = wait;
        let content_at = tick.checked_sub(wait + self.lookahead).unwrap_or(tick);
        // Before the master: each return is the program mix minus its guest's own voice.
        self.returns
            .mix(tick, content_at, &self.mix, &self.inputs, &mut self.packet);
        self.finish_frame(tick, content_at, fade_step);
    }

    /// Master gain, limiter, meter, encode.
    fn finish_frame(&mut self, tick: Instant, content_at: Instant, fade_step: f32) {
        let target = from_db(self.master_db);
        let mut gain = self.master_gain;
        for frame in self.mix.chunks_exact_mut(CHANNELS) {
            gain = step_toward(gain, target, fade_step);
            for s in frame {
                *s *= gain;
            }
        }
        self.master_gain = gain;
        if self.limiter.apply(&mut self.mix) {
            self.stats.limited_frames += 1;
        }
        self.master_meter.measure(tick, &self.mix);
        let payload = match self.encoder.encode_float(&self.mix, &mut self.packet) {
            Ok(n) => Bytes::copy_from_slice(&self.packet[..n]),
            Err(_) => Bytes::from_static(OPUS_SILENCE_STEREO),
        };
        self.frames.push_back(MixedFrame {
            at: tick,
            content_at,
            index: self.index,
            payload,
        });
        self.index += 1;
        self.stats.frames_out += 1;
    }

    pub fn poll_frame(&mut self) -> Option<MixedFrame> {
        self.frames.pop_front()
    }

    /// The guests that get a mix-minus return (the program mix without their own voice, plus
    /// the talkback when it talks to them), one Opus encode each.
    pub fn set_returns<'a>(
        &mut self,
        guests: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), MixerError> {
        self.returns.set_guests(guests)
    }

    /// The operator's talkback: `source` (a stream, e.g. the switcher page's microphone) heard
    /// by guest `to` only, never on program; None ends it.
    pub fn set_talkback(&mut self, talkback: Option<(&str, &str)>) {
        self.returns.set_talkback(talkback);
    }

    pub fn talkback(&self) -> Option<(&str, &str)> {
        self.returns.talkback()
    }

    /// A return frame ready to go out.
    pub fn poll_return(&mut self) -> Option<ReturnFrame> {
        self.returns.frames.pop_front()
    }

    /// Per-source levels (sources the mixer knows, by name) and the master's.
    pub fn levels(&self) -> (BTreeMap<String, Level>, Level) {
        let sources = self
            .inputs
            .iter()
            .map(|(name, i)| (name.clone(), i.meter.level))
            .collect();
        (sources, self.master_meter.level)
    }

    pub fn stats(&self) -> MixerStats {
        self.stats
    }
}

/// Who is heard: the strips, the program source and the pin, borrowed for one frame.
struct Audible<'a> {
    strips: &'a BTreeMap<String, Strip>,
    program: Option<&'a str>,
    pin: Option<&'a str>,
    /// The source talking to one guest (its strip's gain and mute apply; its mode does not).
    talkback: Option<&'a str>,
}

impl Audible<'_> {
    /// The gain `name` should be mixed at now (0 when it is not heard).
    fn gain(&self, name: &str) -> f32 {
        let strip = self.strips.get(name).copied().unwrap_or_default();
        if self.talkback == Some(name) {
            return if strip.mute {
                0.0
            } else {
                from_db(strip.gain_db)
            };
        }
        let audible = match (self.pin, strip.mode) {
            (Some(pin), _) => pin == name,
            (None, Mode::On) => true,
            (None, Mode::Afv) => self.program == Some(name),
            (None, Mode::Off) => false,
        };
        if audible && !strip.mute {
            from_db(strip.gain_db)
        } else {
            0.0
        }
    }
}

/// A peak limiter: instant attack, [`RELEASE`] per sample, ceiling [`LIMIT`].
#[derive(Debug)]
pub(super) struct Limiter {
    gain: f32,
}

impl Default for Limiter {
    fn default() -> Self {
        Self { gain: 1.0 }
    }
}

impl Limiter {
    /// Limits `buf` (stereo, interleaved) in place; true if it reduced the gain at all.
    pub(super) fn apply(&mut self, buf: &mut [f32]) -> bool {
        let mut limited = false;
        for frame in buf.chunks_exact_mut(CHANNELS) {
            let peak = frame.iter().fold(0f32, |m, s| m.max(s.abs()));
            // Instant attack: this sample is brought under the ceiling now; release slowly.
            let needed = if peak * self.gain > LIMIT {
                LIMIT / peak
            } else {
                1.0
            };
            self.gain = (self.gain / RELEASE)
                .min(1.0)
                .min(needed.max(f32::MIN_POSITIVE));
            limited |= self.gain < 1.0;
            for s in frame {
                *s = (*s * self.gain).clamp(-LIMIT, LIMIT);
            }
        }
        limited
    }
}

/// A 20 ms stereo CELT frame of silence, should the encoder ever fail.
pub(super) const OPUS_SILENCE_STEREO: &[u8] = &[0xfc, 0xff, 0xfe];

fn check_gain(db: f32) -> Result<(), MixerError> {
    if db.is_finite() && (-60.0..=12.0).contains(&db) {
        Ok(())
    } else {
        Err(MixerError::Gain(db))
    }
}

fn step_toward(value: f32, target: f32, step: f32) -> f32 {
    if value < target {
        (value + step).min(target)
    } else {
        (value - step).max(target)
    }
}

#[cfg(test)]
#[path = "mixer_tests.rs"]
mod tests;
