//! From a hub reader's packets to the [`FileWriter`], sans-IO: H.264 depacketizing, Opus
//! passthrough, one timeline for both tracks, and a new file when the publisher changes (a new
//! epoch) or a track's clock jumps.

use std::time::{Duration, Instant};

use thiserror::Error;

use super::writer::{FileEvent, FileWriter, WriterConfig, WriterError};
use crate::engine::ReaderTrack;
use crate::hls::fmp4::{AUDIO_TIMESCALE, OpusParams, VIDEO_TIMESCALE};
use crate::hls::timeline::TimestampUnwrapper;
use crate::hub::ReaderPacket;
use crate::media::{TrackKind, WallClock};
use crate::rtp::h264::{DepacketizeError, H264Depacketizer};

/// A track whose timestamps jump further than this between packets restarted its clock: the
/// file ends and the next keyframe starts another, rather than one sample spanning the gap.
const MAX_TIMESTAMP_JUMP: Duration = Duration::from_secs(5);
/// Decode times start this far into the timeline, so a track whose first packet comes a little
/// after the other's, or a timestamp a little before the first, stays positive.
const TIMELINE_HEADROOM: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum RecordInputError {
    #[error("no track to record (needs H.264 video or Opus audio; the stream has {0})")]
    NoUsableTrack(String),
    #[error("packet for track {0}, which the stream does not have")]
    UnknownTrack(usize),
    #[error(transparent)]
    Depacketize(#[from] DepacketizeError),
    #[error(transparent)]
    Writer(#[from] WriterError),
}

#[derive(Debug)]
enum TrackInput {
    Video {
        depacketizer: H264Depacketizer,
        timeline: Timeline,
    },
    Audio {
        timeline: Timeline,
    },
    Ignored,
}

#[derive(Debug, Default)]
struct Timeline {
    unwrapper: TimestampUnwrapper,
    offset: Option<i128>,
    last: Option<u64>,
}

impl Timeline {
    /// The packet's decode time on the shared timeline: the first packet of a track is placed
    /// at its arrival after `origin`, later ones follow their timestamps. `None`: the clock
    /// jumped (forwards further than [`MAX_TIMESTAMP_JUMP`]).
    fn place(
        &mut self,
        timestamp: u32,
        origin: Instant,
        arrival: Instant,
        rate: u32,
    ) -> Option<u64> {
        let extended = i128::from(self.unwrapper.unwrap(timestamp));
        let offset = *self.offset.get_or_insert_with(|| {
            let since = arrival.saturating_duration_since(origin) + TIMELINE_HEADROOM;
            (since.as_nanos() * u128::from(rate) / 1_000_000_000) as i128 - extended
        });
        let dts = (extended + offset).clamp(0, i128::from(u64::MAX)) as u64;
        let limit = MAX_TIMESTAMP_JUMP.as_secs() * u64::from(rate);
        if self
            .last
            .is_some_and(|last| dts > last.saturating_add(limit))
        {
            return None;
        }
        self.last = Some(dts);
        Some(dts)
    }
}

/// Counters for `/api/recordings`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct InputStats {
    pub packets: u64,
    /// Packets that could not be depacketized or written (video resumes at a keyframe).
    pub errors: u64,
    /// Files ended because the publisher changed or a clock jumped.
    pub restarts: u64,
}

/// One recorded stream: packets in, [`FileEvent`]s out.
#[derive(Debug)]
pub struct StreamRecorder {
    writer: FileWriter,
    tracks: Vec<TrackInput>,
    epoch: Option<u32>,
    origin: Option<Instant>,
    clock: WallClock,
    pub stats: InputStats,
}

impl StreamRecorder {
    /// A recorder of stream `stream` with `tracks` (as
    /// [`crate::engine::Engine::attach_reader`] reports them): the first H.264 and the first
    /// Opus track are recorded, others ignored.
    pub fn new(
        stream: &str,
        config: WriterConfig,
        tracks: &[ReaderTrack],
        clock: WallClock,
    ) -> Result<Self, RecordInputError> {
        let mut video = false;
        let mut audio = None;
        let inputs = tracks
            .iter()
            .map(|t| match t.kind {
                TrackKind::Video if !video && t.codec.name.eq_ignore_ascii_case("H264") => {
                    video = true;
                    TrackInput::Video {
                        depacketizer: H264Depacketizer::new(),
                        timeline: Timeline::default(),
                    }
                }
                TrackKind::Audio
                    if audio.is_none() && t.codec.name.eq_ignore_ascii_case("opus") =>
                {
                    audio = Some(OpusParams {
                        channels: t.codec.channels.map_or(2, |c| c.clamp(1, 2) as u8),
                        ..OpusParams::default()
                    });
                    TrackInput::Audio {
                        timeline: Timeline::default(),
                    }
                }
                _ => TrackInput::Ignored,
            })
            .collect();
        if !video && audio.is_none() {
            let names: Vec<&str> = tracks.iter().map(|t| t.codec.name.as_str()).collect();
            return Err(RecordInputError::NoUsableTrack(if names.is_empty() {
                "no tracks".to_owned()
            } else {
                names.join(", ")
            }));
        }
        Ok(Self {
            writer: FileWriter::new(stream, config, video, audio)?,
            tracks: inputs,
            epoch: None,
            origin: None,
            clock,
            stats: InputStats::default(),
        })
    }

    pub fn writer(&self) -> &FileWriter {
        &self.writer
    }

    /// The next thing to do with files.
    pub fn poll_event(&mut self) -> Option<FileEvent> {
        self.writer.poll_event()
    }

    /// One packet from the reader queue. An error concerns this packet only.
    pub fn handle_packet(&mut self, packet: &ReaderPacket) -> Result<(), RecordInputError> {
        self.stats.packets += 1;
        if self.epoch != Some(packet.epoch) {
            if self.epoch.is_some() {
                self.restart()?;
            }
            self.epoch = Some(packet.epoch);
        }
        let result = self.route(packet);
        if result.is_err() {
            self.stats.errors += 1;
        }
        result
    }

    fn route(&mut self, packet: &ReaderPacket) -> Result<(), RecordInputError> {
        let origin = *self.origin.get_or_insert(packet.arrival);
        let wall = self.clock.at(packet.arrival);
        let placed = match self.tracks.get_mut(packet.track) {
            None => return Err(RecordInputError::UnknownTrack(packet.track)),
            Some(TrackInput::Ignored) => return Ok(()),
            Some(TrackInput::Video {
                depacketizer,
                timeline,
            }) => {
                let unit = match depacketizer.push(
                    packet.sequence,
                    packet.timestamp,
                    packet.marker,
                    &packet.payload,
                ) {
                    Ok(Some(unit)) => unit,
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                match timeline.place(unit.timestamp, origin, packet.arrival, VIDEO_TIMESCALE) {
                    Some(dts) => match self.writer.push_video(dts, wall, &unit) {
                        // The clock stepped back: a restarted source.
                        Err(WriterError::NonMonotonic(..)) => None,
                        other => Some(other?),
                    },
                    None => None,
                }
            }
            Some(TrackInput::Audio { timeline }) => {
                match timeline.place(packet.timestamp, origin, packet.arrival, AUDIO_TIMESCALE) {
                    Some(dts) => Some(self.writer.push_audio(dts, wall, &packet.payload)?),
                    None => None,
                }
            }
        };
        if placed.is_none() {
            self.restart()?;
        }
        Ok(())
    }

    /// Ends the open file and starts a new timeline; the next keyframe opens the next file.
    fn restart(&mut self) -> Result<(), RecordInputError> {
        self.stats.restarts += 1;
        self.origin = None;
        for track in &mut self.tracks {
            match track {
                TrackInput::Video {
                    depacketizer,
                    timeline,
                } => {
                    *depacketizer = H264Depacketizer::new();
                    *timeline = Timeline::default();
                }
                TrackInput::Audio { timeline } => *timeline = Timeline::default(),
                TrackInput::Ignored => {}
            }
        }
        Ok(self.writer.finish()?)
    }

    /// Video waits for a keyframe to split the file: ask the source.
    pub fn wants_keyframe(&self) -> bool {
        self.writer.wants_keyframe()
    }

    /// The recording stops or the stream ended: write out and close the open file.
    pub fn finish(&mut self) -> Result<(), RecordInputError> {
        Ok(self.writer.finish()?)
    }
}

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;
