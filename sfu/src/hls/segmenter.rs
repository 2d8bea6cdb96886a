//! Cuts a stream of H.264 access units and Opus packets into LL-HLS parts and segments.
//!
//! Time comes in with the samples: video decode times in 90 kHz ticks and audio in 48 kHz ticks,
//! both measured from the same origin (the caller maps RTP timestamps onto one timeline). The
//! segmenter rebases them so its output starts at zero and stays continuous across
//! discontinuities. Video drives the cuts when there is a video track, otherwise audio does:
//! a part closes once it holds about PART-TARGET of media; a segment closes at the first keyframe
//! after it reached the target duration (it stretches to the next keyframe).
//!
//! A video sample's duration is known when the next one arrives, so a part is published when the
//! frame after its last one comes in.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use thiserror::Error;

use super::fmp4::{
    self, AUDIO_TIMESCALE, Fmp4Error, FragmentBuilder, OpusParams, ParameterSetError, Track,
    VIDEO_TIMESCALE, VideoParams,
};
use super::opus::{self, OpusError};
use crate::media::avcc::Picture;

/// How far past the segment target a segment may run before a keyframe is requested.
const KEYFRAME_GRACE: Duration = Duration::from_millis(150);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HlsConfig {
    /// PART-TARGET; 0.2 s by default.
    pub part_target: Duration,
    /// The shortest segment; a segment ends at the first keyframe after this. 1 s by default.
    pub segment_target: Duration,
    /// A segment without a keyframe is cut anyway at this length, to bound memory.
    pub max_segment: Duration,
    /// Complete segments kept (and listed); older ones are freed. 7 by default.
    pub segments_kept: usize,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            part_target: Duration::from_millis(200),
            segment_target: Duration::from_secs(1),
            max_segment: Duration::from_secs(10),
            segments_kept: 7,
        }
    }
}

#[derive(Debug, Error)]
pub enum HlsError {
    #[error("the stream has neither a video nor an audio track")]
    NoTracks,
    #[error(transparent)]
    Params(#[from] ParameterSetError),
    #[error("bad Opus packet: {0}")]
    Opus(#[from] OpusError),
    #[error("timestamp {0} goes backwards; call discontinuity() for a new timeline")]
    NonMonotonic(u64),
    #[error(transparent)]
    Fmp4(#[from] Fmp4Error),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub index: u32,
    /// Duration in seconds.
    pub duration: f64,
    /// Starts with a keyframe (or is audio only).
    pub independent: bool,
    pub data: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub msn: u64,
    /// Seconds; for the open segment, the duration of its published parts.
    pub duration: f64,
    pub parts: Vec<Part>,
    /// The whole segment (its parts back to back) once complete.
    pub data: Option<Bytes>,
    pub program_date_time: Option<SystemTime>,
    /// Preceded by EXT-X-DISCONTINUITY.
    pub discontinuity: bool,
    /// Which init segment (`init{id}.mp4`) it needs.
    pub init_id: u32,
    /// Opened because the segment before reached `max_segment` without a keyframe (the source
    /// answered no keyframe request): it starts mid-GOP, so its first part is not independent.
    pub forced_start: bool,
}

/// What a request for a part or segment gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Bytes),
    /// The next part of the open segment (the preload hint): hold the request.
    Pending,
    NotFound,
}

/// A video frame waiting for the next one, which gives its duration.
#[derive(Debug)]
struct PendingFrame {
    dts: u64,
    keyframe: bool,
}

#[derive(Debug)]
pub struct Segmenter {
    config: HlsConfig,
    has_video: bool,
    audio: Option<OpusParams>,
    video_params: Option<VideoParams>,
    inits: VecDeque<(u32, Bytes)>,
    init_id: u32,
    segments: VecDeque<Segment>,
    open: Option<Segment>,
    next_msn: u64,
    /// Start of the open segment and part, in the main track's ticks.
    segment_start: u64,
    part_start: u64,
    /// The open part's samples.
    part: FragmentBuilder,
    /// The open part starts with a keyframe (or is audio only).
    part_independent: bool,
    pending: Option<PendingFrame>,
    /// The pending frame in AVCC form (the buffer is reused).
    pending_data: Vec<u8>,
    last_video_delta: u64,
    /// Output = input + offset, per timeline (reset by a discontinuity); in video ticks.
    offset: Option<i128>,
    /// Where the output timeline continues after a discontinuity, in seconds.
    video_end: u64,
    audio_end: u64,
    anchor: Option<(SystemTime, u64)>,
    discontinuity_next: bool,
    sequence_number: u32,
    target_duration: u64,
    ended: bool,
    /// EXT-X-DISCONTINUITY-SEQUENCE: discontinuities that fell off the front of the playlist.
    discontinuity_sequence: u64,
    /// Frames dropped while waiting for the first keyframe.
    pub dropped_frames: u64,
}

impl Segmenter {
    pub fn new(
        config: HlsConfig,
        video: bool,
        audio: Option<OpusParams>,
    ) -> Result<Self, HlsError> {
        if !video && audio.is_none() {
            return Err(HlsError::NoTracks);
        }
        let mut inits = VecDeque::new();
        if !video {
            // Audio only: the init segment is known at once; with video it waits for the SPS.
            inits.push_back((0, fmp4::init_segment(None, audio.as_ref())?));
        }
        Ok(Self {
            target_duration: config.segment_target.as_secs_f64().ceil().max(1.0) as u64,
            config,
            has_video: video,
            audio,
            video_params: None,
            inits,
            init_id: 0,
            segments: VecDeque::new(),
            open: None,
            next_msn: 0,
            segment_start: 0,
            part_start: 0,
            part: FragmentBuilder::new(),
            part_independent: false,
            pending: None,
            pending_data: Vec::new(),
            last_video_delta: 3000,
            offset: None,
            video_end: 0,
            audio_end: 0,
            anchor: None,
            discontinuity_next: false,
            sequence_number: 0,
            ended: false,
            discontinuity_sequence: 0,
            dropped_frames: 0,
        })
    }

    pub fn config(&self) -> &HlsConfig {
        &self.config
    }

    fn timescale(&self) -> u64 {
        u64::from(if self.has_video {
            VIDEO_TIMESCALE
        } else {
            AUDIO_TIMESCALE
        })
    }

    fn ticks(&self, d: Duration) -> u64 {
        (d.as_secs_f64() * self.timescale() as f64).round() as u64
    }

    /// Pushes one access unit with its decode time (90 kHz) and the wall clock of its capture.
    pub fn push_video(
        &mut self,
        dts: u64,
        wall: SystemTime,
        unit: &impl Picture,
    ) -> Result<(), HlsError> {
        if !self.has_video || self.ended {
            return Ok(());
        }
        let keyframe = unit.is_keyframe();
        let new_params = if keyframe {
            self.new_parameter_sets(unit)?
        } else {
            None
        };
        if (new_params.is_none() && self.video_params.is_none())
            || (self.open.is_none() && !keyframe)
        {
            self.dropped_frames += 1;
            return Ok(());
        }
        let dts = self
            .map_time(dts, VIDEO_TIMESCALE)
            .ok_or(HlsError::NonMonotonic(dts))?;
        if let Some(prev) = &self.pending {
            if dts <= prev.dts {
                return Err(HlsError::NonMonotonic(dts));
            }
            self.last_video_delta = dts - prev.dts;
            self.finish_pending(dts);
        }
        if let Some((params, init)) = new_params {
            if self.video_params.is_some() {
                // New picture parameters: a new init segment, after a discontinuity.
                self.close_part(dts)?;
                self.close_segment();
                self.discontinuity_next = !self.segments.is_empty();
                self.init_id += 1;
            }
            self.video_params = Some(params);
            self.inits.push_back((self.init_id, init));
        }
        self.cut(dts, keyframe, wall)?;
        if self.part.samples(Track::Video) == 0 {
            self.part_independent = keyframe;
        }
        self.pending = Some(PendingFrame { dts, keyframe });
        self.pending_data.clear();
        unit.write_avcc(&mut self.pending_data);
        Ok(())
    }

    /// Pushes one Opus packet (an RTP payload) with its decode time (48 kHz).
    pub fn push_audio(
        &mut self,
        dts: u64,
        wall: SystemTime,
        packet: &[u8],
    ) -> Result<(), HlsError> {
        if self.audio.is_none() || self.ended {
            return Ok(());
        }
        let duration = opus::packet_samples(packet)?;
        if self.has_video && self.open.is_none() {
            return Ok(()); // video starts the stream, at a keyframe
        }
        let Some(dts) = self.map_time(dts, AUDIO_TIMESCALE) else {
            return Ok(()); // from before the stream's start
        };
        if !self.has_video {
            self.cut(dts, true, wall)?;
        }
        if let Some(end) = self.part.end(Track::Audio) {
            // Stretch the previous packet over a gap (a lost packet), so the timeline holds.
            if dts > end {
                let gap = u32::try_from(dts - end).unwrap_or(u32::MAX);
                self.part.stretch_last(Track::Audio, gap);
            }
        } else if self.part.samples(Track::Video) == 0 && !self.has_video {
            self.part_independent = true;
        }
        self.part.push(Track::Audio, dts, duration, true, packet);
        self.audio_end = dts.saturating_add(u64::from(duration));
        Ok(())
    }

    /// The source restarted or changed (publisher takeover, epoch change): close what is open
    /// and continue with EXT-X-DISCONTINUITY and a new time origin.
    pub fn discontinuity(&mut self) -> Result<(), HlsError> {
        self.close_all()?;
        self.offset = None;
        self.anchor = None;
        if !self.segments.is_empty() {
            self.discontinuity_next = true;
        }
        Ok(())
    }

    /// The stream ended: publish everything and mark the playlist with EXT-X-ENDLIST.
    pub fn finish(&mut self) -> Result<(), HlsError> {
        self.close_all()?;
        self.ended = true;
        Ok(())
    }

    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The open segment has run past its target and still waits for a keyframe: ask the source
    /// for one. The grace keeps a source whose keyframe interval equals the segment target (a
    /// camera with 1 s GOPs, frame times jittering) from being asked just before its own.
    pub fn wants_keyframe(&self) -> bool {
        self.has_video
            && self.open.is_some()
            && self.pending.as_ref().is_some_and(|p| {
                p.dts.saturating_sub(self.segment_start)
                    >= self.ticks(self.config.segment_target + KEYFRAME_GRACE)
            })
    }

    /// The parameter sets of a keyframe and their init segment, when they differ from the
    /// current ones.
    fn new_parameter_sets(
        &self,
        unit: &impl Picture,
    ) -> Result<Option<(VideoParams, Bytes)>, HlsError> {
        let Some(params) = VideoParams::changed(self.video_params.as_ref(), unit)? else {
            return Ok(None);
        };
        let init = fmp4::init_segment(Some(&params), self.audio.as_ref())?;
        Ok(Some((params, init)))
    }

    /// Maps an input time to the output timeline, starting a new origin when there is none;
    /// `None` when it falls before the origin.
    fn map_time(&mut self, input: u64, timescale: u32) -> Option<u64> {
        let scale = |t: u64, from: u32, to: u32| i128::from(t) * i128::from(to) / i128::from(from);
        let input_90k = scale(input, timescale, VIDEO_TIMESCALE);
        let offset = *self.offset.get_or_insert_with(|| {
            let video_end = i128::from(self.video_end);
            let audio_end = scale(self.audio_end, AUDIO_TIMESCALE, VIDEO_TIMESCALE);
            video_end.max(audio_end) - input_90k
        });
        let out_90k = u64::try_from(input_90k + offset).ok()?;
        u64::try_from(scale(out_90k, VIDEO_TIMESCALE, timescale)).ok()
    }

    /// The frame waiting for its duration ends at `end`: it joins the open part.
    fn finish_pending(&mut self, end: u64) {
        if let Some(frame) = self.pending.take() {
            let duration = u32::try_from(end - frame.dts).unwrap_or(u32::MAX);
            self.part.push(
                Track::Video,
                frame.dts,
                duration,
                frame.keyframe,
                &self.pending_data,
            );
            self.video_end = end;
        }
    }

    /// Closes the part and/or segment that end before a sample at `at` (main track ticks).
    fn cut(&mut self, at: u64, keyframe: bool, wall: SystemTime) -> Result<(), HlsError> {
        if self.open.is_none() {
            self.start_segment(at, wall, false);
            return Ok(());
        }
        let segment_length = at.saturating_sub(self.segment_start);
        let target_reached = keyframe && segment_length >= self.ticks(self.config.segment_target);
        let forced = !target_reached && segment_length >= self.ticks(self.config.max_segment);
        if target_reached || forced {
            self.close_part(at)?;
            self.close_segment();
            self.start_segment(at, wall, forced);
            return Ok(());
        }
        let part_length = at.saturating_sub(self.part_start);
        let step = if self.has_video {
            self.last_video_delta
        } else {
            0
        };
        let target = self.ticks(self.config.part_target);
        if !self.part.is_empty()
            && (part_length.saturating_add(step) > target || part_length >= target)
        {
            self.close_part(at)?;
        }
        Ok(())
    }

    fn start_segment(&mut self, at: u64, wall: SystemTime, forced_start: bool) {
        let timescale = self.timescale();
        let (anchor_wall, anchor_at) = *self.anchor.get_or_insert((wall, at));
        let since = Duration::from_secs_f64(at.saturating_sub(anchor_at) as f64 / timescale as f64);
        self.segment_start = at;
        self.part_start = at;
        self.open = Some(Segment {
            msn: self.next_msn,
            duration: 0.0,
            parts: Vec::new(),
            data: None,
            program_date_time: anchor_wall.checked_add(since),
            discontinuity: std::mem::take(&mut self.discontinuity_next),
            init_id: self.init_id,
            forced_start,
        });
        self.next_msn += 1;
    }

    fn close_part(&mut self, end: u64) -> Result<(), HlsError> {
        let independent = std::mem::take(&mut self.part_independent);
        let Some(open) = self.open.as_mut() else {
            self.part.clear();
            return Ok(());
        };
        if self.part.is_empty() {
            return Ok(());
        }
        self.sequence_number = self.sequence_number.wrapping_add(1);
        let mut data = Vec::new();
        self.part.write(self.sequence_number, &mut data)?;
        let timescale = if self.has_video {
            VIDEO_TIMESCALE
        } else {
            AUDIO_TIMESCALE
        };
        let duration = end.saturating_sub(self.part_start) as f64 / f64::from(timescale);
        open.parts.push(Part {
            index: open.parts.len() as u32,
            duration,
            independent,
            data: data.into(),
        });
        open.duration += duration;
        self.part_start = end;
        Ok(())
    }

    fn close_segment(&mut self) {
        let Some(mut segment) = self.open.take() else {
            return;
        };
        if segment.parts.is_empty() {
            self.next_msn -= 1; // never published: reuse its number
            self.discontinuity_next |= segment.discontinuity;
            return;
        }
        // One buffer for the whole segment; the parts become views of it.
        let mut whole = Vec::with_capacity(segment.parts.iter().map(|p| p.data.len()).sum());
        for part in &segment.parts {
            whole.extend_from_slice(&part.data);
        }
        let whole = Bytes::from(whole);
        let mut at = 0;
        for part in &mut segment.parts {
            let len = part.data.len();
            part.data = whole.slice(at..at + len);
            at += len;
        }
        segment.data = Some(whole);
        self.target_duration = self.target_duration.max(segment.duration.round() as u64);
        self.segments.push_back(segment);
        while self.segments.len() > self.config.segments_kept.max(1) {
            if self.segments.pop_front().is_some_and(|s| s.discontinuity) {
                self.discontinuity_sequence += 1;
            }
        }
        let oldest_init = self.segments.front().map_or(self.init_id, |s| s.init_id);
        self.inits.retain(|(id, _)| *id >= oldest_init);
    }

    /// Publishes everything, the last frame with the previous frame's duration.
    fn close_all(&mut self) -> Result<(), HlsError> {
        if let Some(frame) = &self.pending {
            let end = frame.dts.saturating_add(self.last_video_delta);
            self.finish_pending(end);
            self.close_part(end)?;
        } else {
            let end = if self.has_video {
                self.video_end
            } else {
                self.audio_end
            };
            self.close_part(end.max(self.part_start))?;
        }
        self.close_segment();
        Ok(())
    }
}

#[path = "segmenter_access.rs"]
mod access;

#[cfg(test)]
#[path = "segmenter_tests.rs"]
mod tests;
