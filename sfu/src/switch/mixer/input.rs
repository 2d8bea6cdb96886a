//! One source of the mixer: its jitter buffer (packets in sequence order, each played
//! [`JITTER_DELAY`] after its content instant), its decoder and its meter; the mixer
//! ([`super::AudioMixer`]) ramps its gain and sums what it plays.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::{
    AHEAD_LIMIT, BEHIND_LIMIT, CHANNELS, FRAME_SAMPLES, JITTER_DELAY, Level, MAX_BUFFERED,
    MixerError, MixerStats, PEAK_HOLD, SILENT_DB,
};
use crate::switch::content_clock::ContentClock;

#[derive(Debug)]
pub(super) struct Meter {
    pub(super) level: Level,
    hold_at: Option<Instant>,
}

impl Meter {
    pub(super) fn new() -> Self {
        Self {
            level: Level {
                peak_db: SILENT_DB,
                rms_db: SILENT_DB,
                hold_db: SILENT_DB,
            },
            hold_at: None,
        }
    }

    pub(super) fn measure(&mut self, now: Instant, samples: &[f32]) {
        let mut peak = 0f32;
        let mut sum = 0f64;
        for &s in samples {
            peak = peak.max(s.abs());
            sum += f64::from(s) * f64::from(s);
        }
        let rms = (sum / samples.len().max(1) as f64).sqrt() as f32;
        self.level.peak_db = to_db(peak);
        self.level.rms_db = to_db(rms);
        let held = self
            .hold_at
            .is_some_and(|at| now.saturating_duration_since(at) < PEAK_HOLD);
        if !held || self.level.peak_db >= self.level.hold_db {
            self.level.hold_db = self.level.peak_db;
            self.hold_at = Some(now);
        }
    }
}

fn to_db(amplitude: f32) -> f32 {
    if amplitude <= 1e-6 {
        SILENT_DB
    } else {
        20.0 * amplitude.log10()
    }
}

#[derive(Debug)]
pub(in crate::switch) struct Input {
    decoder: opus::Decoder,
    /// Waiting packets, in sequence order.
    queue: VecDeque<Waiting>,
    /// The source's timestamps on the server's clock.
    clock: ContentClock,
    /// The next sequence number to play, once playing.
    pub(super) next: Option<u16>,
    epoch: u32,
    pub(super) last_packet: Option<Instant>,
    /// The gain applied at the end of the last frame (ramps toward the target).
    pub(super) gain: f32,
    /// A source that left: fade out, then remove.
    pub(super) gone: bool,
    /// Gone and silent: dropped after this frame.
    pub(super) faded_out: bool,
    /// The content instant of the packet played this frame, if one was.
    pub(super) played_content: Option<Instant>,
    /// What it put into the mix this frame (after its gain), for the mix-minus returns; all
    /// zero when it was silent.
    pub(in crate::switch) contribution: Vec<f32>,
    pub(super) meter: Meter,
}

impl Input {
    pub(super) fn new() -> Result<Self, MixerError> {
        Ok(Self {
            decoder: opus::Decoder::new(48_000, opus::Channels::Stereo)?,
            queue: VecDeque::new(),
            clock: ContentClock::new(48_000),
            next: None,
            epoch: 0,
            last_packet: None,
            gain: 0.0,
            gone: false,
            faded_out: false,
            played_content: None,
            contribution: vec![0.0; FRAME_SAMPLES * CHANNELS],
            meter: Meter::new(),
        })
    }

    pub(super) fn push(
        &mut self,
        now: Instant,
        epoch: u32,
        sequence: u16,
        timestamp: u32,
        payload: Bytes,
        stats: &mut MixerStats,
    ) {
        stats.packets_in += 1;
        if epoch != self.epoch {
            // A new publisher: a new numbering and a new encoder state.
            self.epoch = epoch;
            self.queue.clear();
            self.clock.reset();
            self.next = None;
            let _ = self.decoder.reset_state();
        }
        let content = self.clock.content_at(now, timestamp);
        self.last_packet = Some(now);
        self.gone = false;
        if let Some(next) = self.next
            && sequence.wrapping_sub(next) >= 0x8000
        {
            stats.packets_dropped += 1; // its turn has passed
            return;
        }
        let at = self
            .queue
            .iter()
            .rposition(|w| sequence.wrapping_sub(w.sequence) < 0x8000)
            .map_or(0, |i| i + 1);
        if self
            .queue
            .get(at.wrapping_sub(1))
            .is_some_and(|w| w.sequence == sequence)
        {
            return; // a duplicate
        }
        let waiting = Waiting {
            sequence,
            arrival: now,
            content,
            payload,
        };
        self.queue.insert(at, waiting);
        while self.queue.len() > MAX_BUFFERED {
            if let Some(w) = self.queue.pop_front() {
                stats.packets_dropped += 1;
                self.next = Some(w.sequence.wrapping_add(1));
            }
        }
    }

    /// The audio of this tick into `out` (stereo, interleaved): the due packet decoded, a
    /// concealed frame for a missing one, or nothing (returns false) while waiting or silent.
    ///
    /// A packet is due [`JITTER_DELAY`] after its content instant. Once playing, one packet is
    /// played per tick; when the source's timeline drifted off the ticks (its clock runs at
    /// another speed, or its path got faster or slower) by more than [`AHEAD_LIMIT`] or
    /// [`BEHIND_LIMIT`], a frame is concealed (playing ahead) or a packet skipped (behind), so
    /// the audio stays near where its instants say without a glitch for every bit of jitter. The frame's content instant
    /// reports where it really is either way.
    pub(super) fn pull(&mut self, tick: Instant, out: &mut [f32], stats: &mut MixerStats) -> bool {
        let due = |w: &Waiting| tick >= w.content + JITTER_DELAY;
        let Some(mut next) = self.next.or_else(|| {
            // Not playing yet: start with the first packet once it is due.
            self.queue.front().filter(|w| due(w)).map(|w| w.sequence)
        }) else {
            return false;
        };
        // Behind: the packet for this turn is overdue by more than the limit and the one after
        // it is due.
        while self.queue.len() > 1
            && self.queue[0].sequence == next
            && tick > self.queue[0].content + JITTER_DELAY + BEHIND_LIMIT
            && due(&self.queue[1])
        {
            self.queue.pop_front();
            stats.skipped += 1;
            next = next.wrapping_add(1);
        }
        let decoded = match self.queue.front() {
            // Ahead: its turn is further away than the limit.
            Some(w) if w.sequence == next && w.content + JITTER_DELAY > tick + AHEAD_LIMIT => {
                stats.concealed += 1;
                self.next = Some(next);
                return self
                    .decoder
                    .decode_float(&[], out, false)
                    .is_ok_and(|n| n == FRAME_SAMPLES);
            }
            Some(w) if w.sequence == next => {
                let wait = tick.saturating_duration_since(w.arrival);
                self.played_content = Some(w.content);
                stats.wait_total_us += wait.as_micros() as u64;
                stats.waits += 1;
                let payload = self
                    .queue
                    .pop_front()
                    .map(|w| w.payload)
                    .unwrap_or_default();
                self.decoder.decode_float(&payload, out, false)
            }
            // The packet for this turn is missing but later ones are due: conceal it.
            Some(w) if due(w) => {
                stats.concealed += 1;
                self.decoder.decode_float(&[], out, false)
            }
            // Nothing due: starving. Conceal once so the fade-out has something to fade.
            _ if self.last_packet.is_some() && self.next.is_some() => {
                self.next = None;
                stats.concealed += 1;
                return self
                    .decoder
                    .decode_float(&[], out, false)
                    .is_ok_and(|n| n == FRAME_SAMPLES);
            }
            _ => return false,
        };
        self.next = Some(next.wrapping_add(1));
        match decoded {
            Ok(n) if n == FRAME_SAMPLES => true,
            Ok(_) | Err(_) => {
                // Not a 20 ms frame (the mixer runs on a 20 ms grid), or undecodable.
                stats.decode_errors += 1;
                out.fill(0.0);
                false
            }
        }
    }
}

/// A packet in a jitter buffer.
#[derive(Debug)]
struct Waiting {
    sequence: u16,
    arrival: Instant,
    /// The instant its timestamp places it at.
    content: Instant,
    payload: Bytes,
}
