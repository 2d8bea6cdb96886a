//! Keeps one camera's stream up: paces frames, ends the stream when the source fails or stalls,
//! retries with backoff, and reopens the stream under the same name when the source is back.
//!
//! Sans-IO: [`Supervisor::step`] takes the time and a [`StreamSink`] and says when to call it
//! next, so tests drive it on a virtual clock and `runner` drives it from a thread.

use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::camera::{CameraSettings, Pipeline, StreamSink};
use super::encoder::H264Encoder;
use super::source::{FrameSource, SourceError};
use crate::engine::LocalSourceId;

/// No frame for this long and the stream is ended as stalled.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(2);
/// First retry delay after a failure; it doubles per failure up to [`BACKOFF_MAX`].
pub const BACKOFF_START: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Running this long without failing resets the backoff, so a device that fails once a day
/// retries quickly, and one that flaps does not reopen its stream twice a second.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(10);
/// How often a camera whose name a WHIP publisher took checks whether the name is free again.
pub const YIELD_CHECK: Duration = Duration::from_secs(1);

/// Counters of one camera.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CameraStats {
    pub frames: u64,
    pub packets: u64,
    pub keyframes: u64,
    /// IDRs made because a viewer asked.
    pub requested_keyframes: u64,
    /// Times the stream was opened (1 + reopens).
    pub opens: u64,
    /// Failures and stalls that ended the stream or delayed its opening.
    pub failures: u64,
    /// Frame slots skipped because the camera fell behind its frame rate.
    pub late_frames: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not publishing; try the source at `retry_at`.
    Waiting { retry_at: Instant },
    /// The source was (re)opened at `since` and has not delivered yet (a device takes a few
    /// frame times to start streaming); ask again at `next_try`.
    Starting { since: Instant, next_try: Instant },
    Live {
        id: LocalSourceId,
        since: Instant,
        last_frame_at: Instant,
        next_frame_at: Instant,
    },
    /// A WHIP publisher took our name over; wait until it is free.
    Yielded { check_at: Instant },
}

/// One supervised camera.
pub struct Supervisor {
    settings: CameraSettings,
    source: Box<dyn FrameSource>,
    pipeline: Pipeline,
    state: State,
    backoff: Duration,
    frame_interval: Duration,
    /// A keyframe is owed (a request, or the first frame of a (re)opened stream).
    keyframe_owed: bool,
    stats: CameraStats,
}

impl Supervisor {
    /// A camera that tries to open its stream on the first [`Supervisor::step`].
    pub fn new(
        settings: CameraSettings,
        source: Box<dyn FrameSource>,
        encoder: Box<dyn H264Encoder>,
        now: Instant,
    ) -> Self {
        let fps = settings.encoder.fps.max(1);
        Self {
            pipeline: Pipeline::new(encoder, settings.mtu_payload),
            frame_interval: Duration::from_secs(1) / fps,
            settings,
            source,
            state: State::Waiting { retry_at: now },
            backoff: BACKOFF_START,
            keyframe_owed: true,
            stats: CameraStats::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn stats(&self) -> &CameraStats {
        &self.stats
    }

    /// The engine's id for the stream while it is live.
    pub fn live_source(&self) -> Option<LocalSourceId> {
        match self.state {
            State::Live { id, .. } => Some(id),
            _ => None,
        }
    }

    /// Does what is due at `now` and returns when to be called next.
    pub fn step(&mut self, now: Instant, sink: &mut impl StreamSink) -> Instant {
        match self.state {
            State::Waiting { retry_at } if now >= retry_at => self.try_open(now, sink),
            State::Waiting { retry_at } => retry_at,
            State::Starting { since, next_try } if now >= next_try => {
                self.first_frame(now, since, sink)
            }
            State::Starting { next_try, .. } => next_try,
            State::Live { next_frame_at, .. } if now >= next_frame_at => self.frame(now, sink),
            State::Live { next_frame_at, .. } => next_frame_at,
            State::Yielded { check_at } if now >= check_at => self.try_open(now, sink),
            State::Yielded { check_at } => check_at,
        }
    }

    /// Ends the stream (if live) for good: the camera is being stopped.
    pub fn stop(&mut self, now: Instant, sink: &mut impl StreamSink) {
        if let State::Live { id, .. } = self.state {
            sink.close(now, id);
        }
        self.state = State::Waiting {
            retry_at: now + BACKOFF_MAX,
        };
    }

    fn try_open(&mut self, now: Instant, sink: &mut impl StreamSink) -> Instant {
        // Someone else (a WHIP guest) publishes under our name while we were down: do not
        // kick them off; wait until the name is free.
        if sink.is_live(&self.settings.name) {
            self.state = State::Yielded {
                check_at: now + YIELD_CHECK,
            };
            return now + YIELD_CHECK;
        }
        if let Err(e) = self.source.restart() {
            return self.fail(now, sink, &e.to_string());
        }
        self.first_frame(now, now, sink)
    }

    /// Waits for the first picture of a (re)opened source, then opens the stream with it, so
    /// viewers never see a stream that carries nothing.
    fn first_frame(&mut self, now: Instant, since: Instant, sink: &mut impl StreamSink) -> Instant {
        let first = match self.source.next_frame(now) {
            Ok(frame) => self.pipeline.process(frame, true),
            Err(SourceError::NoFrame) if now.duration_since(since) < STALL_TIMEOUT => {
                let next_try = now + self.frame_interval;
                self.state = State::Starting { since, next_try };
                return next_try;
            }
            Err(SourceError::NoFrame) => {
                return self.fail(now, sink, "no first frame within 2 s of opening");
            }
            Err(e) => return self.fail(now, sink, &e.to_string()),
        };
        let encoded = match first {
            Ok(encoded) => encoded,
            Err(e) => return self.fail(now, sink, &e.to_string()),
        };
        let id = match sink.open(now, &self.settings.name, &self.settings.encoder.fmtp()) {
            Ok(id) => id,
            Err(e) => return self.fail(now, sink, &format!("cannot open the stream: {e}")),
        };
        self.stats.opens += 1;
        info!(camera = %self.settings.name, source = id, "camera stream live");
        self.state = State::Live {
            id,
            since: now,
            last_frame_at: now,
            next_frame_at: now + self.frame_interval,
        };
        self.keyframe_owed = !encoded.keyframe;
        self.send(now, id, sink, encoded.packets, encoded.keyframe);
        self.next_wake(now)
    }

    fn frame(&mut self, now: Instant, sink: &mut impl StreamSink) -> Instant {
        let State::Live {
            id,
            since,
            last_frame_at,
            next_frame_at,
        } = self.state
        else {
            return now;
        };
        if sink.take_keyframe_request(id) {
            self.stats.requested_keyframes += 1;
            self.keyframe_owed = true;
        }
        let encoded = match self.source.next_frame(now) {
            Ok(frame) => self.pipeline.process(frame, self.keyframe_owed),
            Err(SourceError::NoFrame) if now.duration_since(last_frame_at) < STALL_TIMEOUT => {
                self.advance(now, next_frame_at);
                return self.next_wake(now);
            }
            Err(SourceError::NoFrame) => {
                return self.fail(now, sink, "stalled: no frame for 2 s");
            }
            Err(e) => return self.fail(now, sink, &e.to_string()),
        };
        let encoded = match encoded {
            Ok(encoded) => encoded,
            Err(e) => return self.fail(now, sink, &e.to_string()),
        };
        if encoded.keyframe {
            self.keyframe_owed = false;
        }
        if let State::Live { last_frame_at, .. } = &mut self.state {
            *last_frame_at = now;
        }
        self.advance(now, next_frame_at);
        if now.duration_since(since) >= HEALTHY_AFTER {
            self.backoff = BACKOFF_START;
        }
        self.send(now, id, sink, encoded.packets, encoded.keyframe);
        self.next_wake(now)
    }

    /// Ingests one frame's packets; when the engine no longer knows the source (a WHIP
    /// publisher took the name over), the camera steps aside.
    fn send(
        &mut self,
        now: Instant,
        id: LocalSourceId,
        sink: &mut impl StreamSink,
        packets: Vec<bytes::Bytes>,
        keyframe: bool,
    ) {
        if packets.is_empty() {
            return;
        }
        self.stats.frames += 1;
        self.stats.packets += packets.len() as u64;
        self.stats.keyframes += u64::from(keyframe);
        if let Err(e) = sink.ingest(now, id, &packets) {
            info!(camera = %self.settings.name, error = %e, "stream taken over; camera waits");
            self.state = State::Yielded {
                check_at: now + YIELD_CHECK,
            };
            self.keyframe_owed = true;
        }
    }

    /// Moves the next frame slot on by one interval; when the camera fell more than a frame
    /// behind (a slow encode, a descheduled thread), it skips to the next slot after `now`
    /// rather than sending a burst.
    fn advance(&mut self, now: Instant, next_frame_at: Instant) {
        let mut next = next_frame_at + self.frame_interval;
        if next <= now {
            let behind = now.duration_since(next).as_nanos() / self.frame_interval.as_nanos();
            self.stats.late_frames += behind as u64 + 1;
            next = now + self.frame_interval;
        }
        if let State::Live { next_frame_at, .. } = &mut self.state {
            *next_frame_at = next;
        }
    }

    fn next_wake(&self, now: Instant) -> Instant {
        match self.state {
            State::Waiting { retry_at } => retry_at,
            State::Starting { next_try, .. } => next_try,
            State::Live { next_frame_at, .. } => next_frame_at,
            State::Yielded { check_at } => check_at,
        }
        .max(now)
    }

    /// Ends the stream if it is live and schedules a retry after the backoff.
    fn fail(&mut self, now: Instant, sink: &mut impl StreamSink, reason: &str) -> Instant {
        self.stats.failures += 1;
        let was_live = if let State::Live { id, .. } = self.state {
            sink.close(now, id);
            true
        } else {
            false
        };
        warn!(
            camera = %self.settings.name,
            reason,
            retry_in_ms = self.backoff.as_millis() as u64,
            stream_ended = was_live,
            "camera failed"
        );
        let retry_at = now + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.state = State::Waiting { retry_at };
        self.keyframe_owed = true;
        retry_at
    }
}
