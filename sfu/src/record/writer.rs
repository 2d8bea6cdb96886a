//! The recorder's file writer, sans-IO: H.264 or H.265 pictures and Opus packets with their
//! decode times in, and what to do with files out ([`FileEvent`]: open this file, write these bytes,
//! close it). The thread in [`super::service`] does the writing.
//!
//! A file is a fragmented MP4 made with [`crate::hls::fmp4`] (its [`FragmentBuilder`], the one
//! the LL-HLS segmenter uses): `ftyp` + `moov` first, then `prft` + `moof` + `mdat` per
//! fragment. Samples are copied once, into the builder's reused buffers, and fragments are
//! written into one reused output buffer that [`FileWriter::poll_event`] lends out, so in
//! steady state (within a file) the writer allocates nothing. A fragment closes before every video keyframe and
//! before it would hold more than `fragment_max` of media, so a crash loses at most that much.
//! Each fragment's `prft` pairs its first sample's decode time with the wall clock of its
//! capture (NTP), so files of different streams line up on one timeline.
//!
//! A file closes at the first keyframe after `segment` (an H.264 IDR or an H.265 IRAP picture:
//! the keyframe starts the next file, so no frame is lost or written twice), when the picture
//! parameters change (a new init segment: a resolution change; for H.265 a new VPS too), and
//! on [`FileWriter::finish`] (publisher takeover, stop). Decode times restart at zero in every
//! file. H.264 files are `avc1`, H.265 files `hvc1` (see [`crate::hls::fmp4`]).

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mp4_atom::{Encode, Prft, ReferenceTime};
use thiserror::Error;

use crate::hls::fmp4::{
    self, AUDIO_TIMESCALE, AUDIO_TRACK_ID, Fmp4Error, FragmentBuilder, OpusParams,
    ParameterSetError, Track, VIDEO_TIMESCALE, VIDEO_TRACK_ID, VideoParams,
};
use crate::hls::opus::{self, OpusError};
use crate::media::avcc::Picture;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// How far past `segment` a file may run before [`FileWriter::wants_keyframe`] asks for one.
const KEYFRAME_GRACE: Duration = Duration::from_millis(200);

#[derive(Debug, Error)]
pub enum WriterError {
    #[error("the stream has neither H.264/H.265 video nor Opus audio")]
    NoTracks,
    #[error(transparent)]
    Params(#[from] ParameterSetError),
    #[error("bad Opus packet: {0}")]
    Opus(#[from] OpusError),
    #[error("video decode time {0} is not after the previous frame's {1}")]
    NonMonotonic(u64, u64),
    #[error(transparent)]
    Fmp4(#[from] Fmp4Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// A file ends at the first keyframe after this much media (`segment_secs`).
    pub segment: Duration,
    /// The longest fragment: what a crash may lose at most.
    pub fragment_max: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            segment: Duration::from_secs(600),
            fragment_max: Duration::from_secs(1),
        }
    }
}

/// What the driver does with files, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEvent<'a> {
    /// Create `<dir>/<relative_path>` (a new file; never overwrite one).
    Open {
        relative_path: String,
        /// The wall clock of the file's first sample.
        started: SystemTime,
    },
    /// Append `bytes` to the open file. `fragment_end`: a complete fragment (or the init
    /// segment) ends here, the point to make durable.
    Write { bytes: &'a [u8], fragment_end: bool },
    /// The open file is complete.
    Close { reason: CloseReason },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// `segment_secs` reached: the next file continues at this keyframe.
    Split,
    /// New parameter sets (SPS/PPS, and VPS for H.265; a resolution change): the next file
    /// has a new init segment.
    NewParameters,
    /// The stream ended, was taken over, or the recording stopped.
    Finished,
}

/// Counters for `/api/recordings` and the logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WriterStats {
    pub files: u64,
    pub fragments: u64,
    pub video_frames: u64,
    pub audio_packets: u64,
    /// Frames before the first keyframe (a file starts at one).
    pub skipped_frames: u64,
    /// Audio from before the open file's start (after a split), dropped.
    pub skipped_audio: u64,
    pub bytes: u64,
}

/// A [`FileEvent`] waiting in the queue; a write's bytes wait in the output buffer.
#[derive(Debug)]
enum Queued {
    Open {
        relative_path: String,
        started: SystemTime,
    },
    /// The bytes up to `end` in the output buffer.
    Write {
        end: usize,
        fragment_end: bool,
    },
    Close {
        reason: CloseReason,
    },
}

/// The last video frame, waiting for the next one to give its duration (its bytes wait in
/// `pending_data`).
#[derive(Debug)]
struct PendingFrame {
    dts: u64,
    wall: SystemTime,
    keyframe: bool,
}

#[derive(Debug)]
struct OpenFile {
    /// Input decode time of the file's start, in 90 kHz (video) or 48 kHz (audio only) ticks.
    start: u64,
    sequence: u32,
}

/// One stream's recording files, sans-IO.
#[derive(Debug)]
pub struct FileWriter {
    stream: String,
    config: WriterConfig,
    has_video: bool,
    audio: Option<OpusParams>,
    video_params: Option<(VideoParams, Bytes)>,
    file: Option<OpenFile>,
    pending: Option<PendingFrame>,
    pending_data: Vec<u8>,
    last_video_delta: u64,
    /// The open fragment's samples, in file decode time.
    fragment: FragmentBuilder,
    /// Wall clock and file decode time (main track) of the open fragment's first sample.
    fragment_first: Option<(SystemTime, u64)>,
    events: VecDeque<Queued>,
    /// The queued writes' bytes; `lent` of them handed out by [`FileWriter::poll_event`].
    output: Vec<u8>,
    lent: usize,
    pub stats: WriterStats,
}

impl FileWriter {
    /// A writer for stream `stream` (a valid stream name: it becomes a directory and a file
    /// name) with a video track and/or an Opus track.
    pub fn new(
        stream: &str,
        config: WriterConfig,
        video: bool,
        audio: Option<OpusParams>,
    ) -> Result<Self, WriterError> {
        if !video && audio.is_none() {
            return Err(WriterError::NoTracks);
        }
        Ok(Self {
            stream: stream.to_owned(),
            config,
            has_video: video,
            audio,
            video_params: None,
            file: None,
            pending: None,
            pending_data: Vec::new(),
            last_video_delta: 3000,
            fragment: FragmentBuilder::new(),
            fragment_first: None,
            events: VecDeque::new(),
            output: Vec::new(),
            lent: 0,
            stats: WriterStats::default(),
        })
    }

    /// The next thing to do with files. A write's bytes are lent until the next call; once
    /// the queue is empty the output buffer is reused.
    pub fn poll_event(&mut self) -> Option<FileEvent<'_>> {
        let Some(next) = self.events.pop_front() else {
            self.reclaim_output();
            return None;
        };
        Some(match next {
            Queued::Open {
                relative_path,
                started,
            } => FileEvent::Open {
                relative_path,
                started,
            },
            Queued::Write { end, fragment_end } => {
                let start = std::mem::replace(&mut self.lent, end);
                FileEvent::Write {
                    bytes: &self.output[start..end],
                    fragment_end,
                }
            }
            Queued::Close { reason } => FileEvent::Close { reason },
        })
    }

    /// Everything queued was handed out: the output buffer starts over (keeping its memory).
    fn reclaim_output(&mut self) {
        if self.events.is_empty() {
            self.output.clear();
            self.lent = 0;
        }
    }

    /// Queues a write of what the output buffer gained since the last one.
    fn queue_write(&mut self, fragment_end: bool) {
        self.events.push_back(Queued::Write {
            end: self.output.len(),
            fragment_end,
        });
    }

    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    fn main_timescale(&self) -> u64 {
        u64::from(if self.has_video {
            VIDEO_TIMESCALE
        } else {
            AUDIO_TIMESCALE
        })
    }

    fn ticks(&self, d: Duration) -> u64 {
        (d.as_nanos() * u128::from(self.main_timescale()) / 1_000_000_000) as u64
    }

    /// One access unit with its decode time (90 kHz, increasing) and the wall clock of its
    /// capture.
    pub fn push_video(
        &mut self,
        dts: u64,
        wall: SystemTime,
        unit: &impl Picture,
    ) -> Result<(), WriterError> {
        if !self.has_video {
            return Ok(());
        }
        self.reclaim_output();
        let keyframe = unit.is_keyframe();
        if let Some(prev) = &self.pending
            && dts <= prev.dts
        {
            return Err(WriterError::NonMonotonic(dts, prev.dts));
        }
        let new_params = if keyframe {
            self.new_parameter_sets(unit)?
        } else {
            None
        };
        if self.video_params.is_none() && new_params.is_none() || self.file.is_none() && !keyframe {
            self.stats.skipped_frames += 1;
            return Ok(());
        }
        if let Some(prev) = &self.pending {
            self.last_video_delta = dts - prev.dts;
        }
        self.flush_pending(dts);
        if let Some(params) = new_params {
            if self.file.is_some() {
                self.close_file(CloseReason::NewParameters)?;
            }
            self.video_params = Some(params);
        }
        self.cut(dts, keyframe, wall)?;
        self.stats.video_frames += 1;
        self.pending = Some(PendingFrame {
            dts,
            wall,
            keyframe,
        });
        self.pending_data.clear();
        unit.write_avcc(&mut self.pending_data);
        Ok(())
    }

    /// One Opus packet with its decode time (48 kHz) and the wall clock of its capture.
    pub fn push_audio(
        &mut self,
        dts: u64,
        wall: SystemTime,
        packet: &[u8],
    ) -> Result<(), WriterError> {
        if self.audio.is_none() {
            return Ok(());
        }
        self.reclaim_output();
        let duration = opus::packet_samples(packet)?;
        if !self.has_video {
            self.cut(dts, true, wall)?;
        }
        let Some(file) = &self.file else {
            return Ok(()); // video starts a file, at a keyframe
        };
        // The file's start on the audio clock (both tracks share one timeline).
        let start = if self.has_video {
            file.start * u64::from(AUDIO_TIMESCALE) / u64::from(VIDEO_TIMESCALE)
        } else {
            file.start
        };
        if dts < start {
            self.stats.skipped_audio += 1;
            return Ok(());
        }
        let at = dts - start;
        if let Some(end) = self.fragment.end(Track::Audio)
            && at > end
        {
            // Stretch the previous packet over a gap (a lost packet), so the timeline holds.
            let gap = u32::try_from(at - end).unwrap_or(u32::MAX);
            self.fragment.stretch_last(Track::Audio, gap);
        }
        if !self.has_video && self.fragment_first.is_none() {
            self.fragment_first = Some((wall, at));
        }
        self.fragment.push(Track::Audio, at, duration, true, packet);
        self.stats.audio_packets += 1;
        Ok(())
    }

    /// The open file has run past `segment` and waits for a keyframe: ask the source.
    pub fn wants_keyframe(&self) -> bool {
        match (&self.file, &self.pending) {
            (Some(file), Some(p)) => {
                p.dts.saturating_sub(file.start) >= self.ticks(self.config.segment + KEYFRAME_GRACE)
            }
            _ => false,
        }
    }

    /// Writes out what is open and closes the file (the stream ended, was taken over, or the
    /// recording stops). The next keyframe starts a new file.
    pub fn finish(&mut self) -> Result<(), WriterError> {
        self.reclaim_output();
        if let Some(frame) = &self.pending {
            let end = frame.dts.saturating_add(self.last_video_delta);
            self.flush_pending(end);
        }
        if self.file.is_some() {
            self.close_file(CloseReason::Finished)?;
        }
        self.fragment.clear();
        self.fragment_first = None;
        Ok(())
    }

    /// New parameter sets in `unit` (and their init segment) when they differ from the current.
    fn new_parameter_sets(
        &self,
        unit: &impl Picture,
    ) -> Result<Option<(VideoParams, Bytes)>, WriterError> {
        let current = self.video_params.as_ref().map(|(params, _)| params);
        let Some(params) = VideoParams::changed(current, unit)? else {
            return Ok(None);
        };
        let init = fmp4::init_segment(Some(&params), self.audio.as_ref())?;
        Ok(Some((params, init)))
    }

    /// The frame waiting for its duration ends at `end`: it joins the open fragment.
    fn flush_pending(&mut self, end: u64) {
        let Some(frame) = self.pending.take() else {
            return;
        };
        let Some(file) = &self.file else {
            return;
        };
        let at = frame.dts - file.start;
        if self.fragment_first.is_none() {
            self.fragment_first = Some((frame.wall, at));
        }
        let duration = u32::try_from(end - frame.dts).unwrap_or(u32::MAX);
        self.fragment.push(
            Track::Video,
            at,
            duration,
            frame.keyframe,
            &self.pending_data,
        );
    }

    /// Closes the fragment and/or file that end before a sample at `at` (main track ticks),
    /// and opens a file when none is open.
    fn cut(&mut self, at: u64, keyframe: bool, wall: SystemTime) -> Result<(), WriterError> {
        if let Some(file) = &self.file {
            let file_length = at.saturating_sub(file.start);
            if keyframe && file_length >= self.ticks(self.config.segment) {
                self.close_file(CloseReason::Split)?;
            } else {
                let start = self.fragment.start(if self.has_video {
                    Track::Video
                } else {
                    Track::Audio
                });
                let full = start.is_some_and(|start| {
                    at - file.start - start >= self.ticks(self.config.fragment_max)
                });
                if start.is_some() && (full || (keyframe && self.has_video)) {
                    self.close_fragment()?;
                }
            }
        }
        if self.file.is_none() {
            self.open_file(at, wall)?;
        }
        Ok(())
    }

    fn open_file(&mut self, at: u64, wall: SystemTime) -> Result<(), WriterError> {
        let init = match &self.video_params {
            Some((_, init)) => init.clone(),
            None if self.has_video => return Err(ParameterSetError::Missing.into()),
            None => fmp4::init_segment(None, self.audio.as_ref())?,
        };
        self.events.push_back(Queued::Open {
            relative_path: super::names::file_path(&self.stream, wall),
            started: wall,
        });
        self.stats.files += 1;
        self.stats.bytes += init.len() as u64;
        self.output.extend_from_slice(&init);
        self.queue_write(true);
        self.file = Some(OpenFile {
            start: at,
            sequence: 0,
        });
        self.fragment.clear();
        self.fragment_first = None;
        Ok(())
    }

    fn close_file(&mut self, reason: CloseReason) -> Result<(), WriterError> {
        self.close_fragment()?;
        self.file = None;
        self.events.push_back(Queued::Close { reason });
        Ok(())
    }

    fn close_fragment(&mut self) -> Result<(), WriterError> {
        let first = self.fragment_first.take();
        let (Some(file), Some((wall, media_time))) = (self.file.as_mut(), first) else {
            self.fragment.clear();
            return Ok(());
        };
        file.sequence = file.sequence.wrapping_add(1);
        let prft = Prft {
            reference_track_id: if self.has_video {
                VIDEO_TRACK_ID
            } else {
                AUDIO_TRACK_ID
            },
            ntp_timestamp: ntp(wall),
            media_time,
            utc_time_semantics: ReferenceTime::Input,
        };
        let before = self.output.len();
        prft.encode(&mut self.output)?;
        self.fragment.write(file.sequence, &mut self.output)?;
        self.stats.fragments += 1;
        self.stats.bytes += (self.output.len() - before) as u64;
        self.queue_write(true);
        Ok(())
    }
}

impl From<mp4_atom::Error> for WriterError {
    fn from(e: mp4_atom::Error) -> Self {
        WriterError::Fmp4(Fmp4Error::Encode(e))
    }
}

/// `wall` as NTP 32.32 (seconds since 1900), as `prft` carries it.
pub fn ntp(wall: SystemTime) -> u64 {
    let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    ((since.as_secs() + NTP_UNIX_OFFSET) << 32)
        + ((u64::from(since.subsec_nanos()) << 32) / 1_000_000_000)
}

/// NTP 32.32 back to the wall clock (before 1970: the Unix epoch).
pub fn from_ntp(ntp: u64) -> SystemTime {
    let secs = (ntp >> 32).saturating_sub(NTP_UNIX_OFFSET);
    let nanos = ((ntp & 0xffff_ffff) * 1_000_000_000) >> 32;
    UNIX_EPOCH + Duration::new(secs, nanos as u32)
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
