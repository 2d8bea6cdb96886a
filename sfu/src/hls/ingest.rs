//! From a hub reader's packets to the segmenter, sans-IO: H.264 depacketizing, Opus passthrough,
//! one timeline for audio and video, wall-clock times, and discontinuities when the stream's
//! publisher changes. The async task in [`super::live`] only moves packets in and asks for
//! keyframes when [`StreamIngest::wants_keyframe`] says so.

use std::time::{Duration, Instant};

use thiserror::Error;

use super::fmp4::{AUDIO_TIMESCALE, OpusParams, VIDEO_TIMESCALE};
use super::segmenter::{HlsConfig, HlsError, Segmenter};
use super::timeline::TimestampUnwrapper;
use crate::engine::ReaderTrack;
use crate::hub::ReaderPacket;
use crate::media::{TrackKind, WallClock};
use crate::rtp::h264::{DepacketizeError, H264Depacketizer};

/// Decode times start this far into the segmenter's timeline, so a track whose first packet
/// arrives a little after another's, or a timestamp a little before the first, stays positive.
const TIMELINE_HEADROOM: Duration = Duration::from_secs(10);
/// A track whose timestamps jump further than this between packets restarted its clock (or
/// paused for that long): continue after a discontinuity rather than stretch one sample over
/// the gap, which would make a part as long as the gap.
const MAX_TIMESTAMP_JUMP: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum IngestError {
    #[error("no track HLS can carry (needs H.264 video or Opus audio; the stream has {0})")]
    NoUsableTrack(String),
    #[error("packet for track {0}, which the stream does not have")]
    UnknownTrack(usize),
    #[error(transparent)]
    Depacketize(#[from] DepacketizeError),
    #[error(transparent)]
    Segmenter(#[from] HlsError),
}

#[derive(Debug)]
enum TrackMux {
    Video {
        depacketizer: H264Depacketizer,
        unwrapper: TimestampUnwrapper,
        offset: Option<i128>,
        last: Option<u64>,
    },
    Audio {
        unwrapper: TimestampUnwrapper,
        offset: Option<i128>,
        last: Option<u64>,
    },
    /// A track HLS cannot carry (VP8, G.711, ...): its packets are ignored.
    Ignored,
}

/// Counters for /api/streams and the logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IngestStats {
    pub packets: u64,
    pub frames: u64,
    pub audio_packets: u64,
    /// Packets that could not be depacketized or muxed (the video resyncs at a keyframe).
    pub errors: u64,
    pub discontinuities: u64,
}

/// One stream's muxer input side.
#[derive(Debug)]
pub struct StreamIngest {
    segmenter: Segmenter,
    tracks: Vec<TrackMux>,
    epoch: Option<u32>,
    /// The arrival time that decode time [`TIMELINE_HEADROOM`] stands for, per epoch.
    origin: Option<Instant>,
    clock: WallClock,
    /// Video lost its way (a packet loss, a discontinuity) and is dropped until a keyframe.
    video_waiting: bool,
    pub stats: IngestStats,
}

impl StreamIngest {
    /// A muxer for a stream with `tracks` (as [`crate::engine::Engine::attach_reader`]
    /// reports them). H.264 video and Opus audio are carried; other tracks are ignored.
    pub fn new(
        config: HlsConfig,
        tracks: &[ReaderTrack],
        clock: WallClock,
    ) -> Result<Self, IngestError> {
        let mut video = false;
        let mut audio = None;
        let muxes = tracks
            .iter()
            .map(|t| match t.kind {
                TrackKind::Video if !video && t.codec.name.eq_ignore_ascii_case("H264") => {
                    video = true;
                    TrackMux::Video {
                        depacketizer: H264Depacketizer::new(),
                        unwrapper: TimestampUnwrapper::new(),
                        offset: None,
                        last: None,
                    }
                }
                TrackKind::Audio
                    if audio.is_none() && t.codec.name.eq_ignore_ascii_case("opus") =>
                {
                    audio = Some(OpusParams {
                        channels: t.codec.channels.map_or(2, |c| c.clamp(1, 2) as u8),
                        ..OpusParams::default()
                    });
                    TrackMux::Audio {
                        unwrapper: TimestampUnwrapper::new(),
                        offset: None,
                        last: None,
                    }
                }
                _ => TrackMux::Ignored,
            })
            .collect();
        if !video && audio.is_none() {
            let names: Vec<&str> = tracks.iter().map(|t| t.codec.name.as_str()).collect();
            return Err(IngestError::NoUsableTrack(if names.is_empty() {
                "no tracks".to_owned()
            } else {
                names.join(", ")
            }));
        }
        Ok(Self {
            segmenter: Segmenter::new(config, video, audio)?,
            tracks: muxes,
            epoch: None,
            origin: None,
            clock,
            video_waiting: false,
            stats: IngestStats::default(),
        })
    }

    pub fn segmenter(&self) -> &Segmenter {
        &self.segmenter
    }

    /// The same track layout (kinds and codecs the muxer carries): a new publisher with these
    /// tracks continues this playlist after a discontinuity.
    pub fn carries_same_tracks(&self, tracks: &[ReaderTrack]) -> bool {
        match Self::new(*self.segmenter.config(), tracks, self.clock) {
            Ok(other) => {
                other.tracks.len() == self.tracks.len()
                    && other
                        .tracks
                        .iter()
                        .zip(&self.tracks)
                        .all(|(a, b)| std::mem::discriminant(a) == std::mem::discriminant(b))
            }
            Err(_) => false,
        }
    }

    /// One packet from the reader queue. An error is about this packet only; the muxer goes on
    /// (video resumes at the next keyframe).
    pub fn handle_packet(&mut self, packet: &ReaderPacket) -> Result<(), IngestError> {
        self.stats.packets += 1;
        if self.epoch != Some(packet.epoch) {
            if self.epoch.is_some() {
                self.discontinuity()?;
            }
            self.epoch = Some(packet.epoch);
        }
        let result = self.route(packet);
        if result.is_err() {
            self.stats.errors += 1;
        }
        result
    }

    fn route(&mut self, packet: &ReaderPacket) -> Result<(), IngestError> {
        let origin = *self.origin.get_or_insert(packet.arrival);
        let wall = self.clock.at(packet.arrival);
        match self.tracks.get_mut(packet.track) {
            None => Err(IngestError::UnknownTrack(packet.track)),
            Some(TrackMux::Ignored) => Ok(()),
            Some(TrackMux::Video {
                depacketizer,
                unwrapper,
                offset,
                last,
            }) => {
                let unit = match depacketizer.push(
                    packet.sequence,
                    packet.timestamp,
                    packet.marker,
                    &packet.payload,
                ) {
                    Ok(Some(unit)) => unit,
                    Ok(None) => return Ok(()),
                    Err(e) => {
                        self.video_waiting = true;
                        return Err(e.into());
                    }
                };
                let dts = place(
                    unwrapper.unwrap(unit.timestamp),
                    offset,
                    origin,
                    packet.arrival,
                    VIDEO_TIMESCALE,
                );
                if jumped(last, dts, VIDEO_TIMESCALE) {
                    return self.discontinuity();
                }
                self.stats.frames += 1;
                if unit.keyframe {
                    self.video_waiting = false;
                }
                match self.segmenter.push_video(dts, wall, &unit) {
                    // A timestamp jump backwards: the source restarted its clock.
                    Err(HlsError::NonMonotonic(_)) => self.discontinuity(),
                    other => Ok(other?),
                }
            }
            Some(TrackMux::Audio {
                unwrapper,
                offset,
                last,
            }) => {
                let dts = place(
                    unwrapper.unwrap(packet.timestamp),
                    offset,
                    origin,
                    packet.arrival,
                    AUDIO_TIMESCALE,
                );
                if jumped(last, dts, AUDIO_TIMESCALE) {
                    return self.discontinuity();
                }
                self.stats.audio_packets += 1;
                Ok(self.segmenter.push_audio(dts, wall, &packet.payload)?)
            }
        }
    }

    /// A new publisher (or a restarted clock): close what is open, start a new timeline.
    fn discontinuity(&mut self) -> Result<(), IngestError> {
        self.stats.discontinuities += 1;
        self.origin = None;
        for track in &mut self.tracks {
            match track {
                TrackMux::Video {
                    depacketizer,
                    unwrapper,
                    offset,
                    last,
                } => {
                    *depacketizer = H264Depacketizer::new();
                    unwrapper.reset();
                    *offset = None;
                    *last = None;
                    self.video_waiting = true;
                }
                TrackMux::Audio {
                    unwrapper,
                    offset,
                    last,
                } => {
                    unwrapper.reset();
                    *offset = None;
                    *last = None;
                }
                TrackMux::Ignored => {}
            }
        }
        Ok(self.segmenter.discontinuity()?)
    }

    /// A new publisher took the stream over with the same tracks: continue after a
    /// discontinuity (the next packet's epoch would say so too; this covers a re-attach).
    pub fn restart(&mut self) -> Result<(), IngestError> {
        self.epoch = None;
        self.discontinuity()
    }

    /// The open segment is due to end and waits for a keyframe, or video was lost and can only
    /// resume at one: ask the source.
    pub fn wants_keyframe(&self) -> bool {
        self.video_waiting || self.segmenter.wants_keyframe()
    }

    /// The stream ended: publish what is open and end the playlist.
    pub fn finish(&mut self) -> Result<(), IngestError> {
        Ok(self.segmenter.finish()?)
    }
}

/// Whether `dts` lies further from the track's previous one than [`MAX_TIMESTAMP_JUMP`]
/// (forwards; backwards is the segmenter's to judge); remembers it otherwise.
fn jumped(last: &mut Option<u64>, dts: u64, clock_rate: u32) -> bool {
    let limit = MAX_TIMESTAMP_JUMP.as_secs() * u64::from(clock_rate);
    if last.is_some_and(|last| dts > last.saturating_add(limit)) {
        return true;
    }
    *last = Some(dts);
    false
}

/// Puts an unwrapped RTP timestamp on the shared timeline: the first packet of a track is placed
/// at its arrival time after the origin, later ones follow their timestamps.
fn place(
    extended: u64,
    offset: &mut Option<i128>,
    origin: Instant,
    arrival: Instant,
    clock_rate: u32,
) -> u64 {
    let offset = *offset.get_or_insert_with(|| {
        let since = arrival.saturating_duration_since(origin) + TIMELINE_HEADROOM;
        let at = since.as_nanos() * u128::from(clock_rate) / 1_000_000_000;
        at as i128 - i128::from(extended)
    });
    (i128::from(extended) + offset).clamp(0, i128::from(u64::MAX)) as u64
}

#[cfg(test)]
#[path = "ingest_tests.rs"]
mod tests;
