//! From a hub reader's packets to the segmenter, sans-IO: H.264 depacketizing (LL-HLS carries
//! no H.265: most browsers' players cannot play it), Opus passthrough,
//! one timeline for audio and video, wall-clock times, and discontinuities when the stream's
//! publisher changes. The async task in [`super::live`] only moves packets in and asks for
//! keyframes when [`StreamIngest::wants_keyframe`] says so.

use thiserror::Error;

use super::segmenter::{HlsConfig, HlsError, Segmenter};
use super::tracks::{PacketError, Placed, StreamTracks, TracksError, VideoCodecs};
use crate::engine::ReaderTrack;
use crate::hub::ReaderPacket;
use crate::media::WallClock;
use crate::media::avcc::Picture;
use crate::rtp::depacketize::DepacketizeError;

#[derive(Debug, Error)]
pub enum IngestError {
    #[error("no track HLS can carry ({0})")]
    NoUsableTrack(#[from] TracksError),
    #[error("packet for track {0}, which the stream does not have")]
    UnknownTrack(usize),
    #[error(transparent)]
    Depacketize(#[from] DepacketizeError),
    #[error(transparent)]
    Segmenter(#[from] HlsError),
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
    tracks: StreamTracks,
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
        let tracks = StreamTracks::new(tracks, VideoCodecs::H264)?;
        Ok(Self {
            segmenter: Segmenter::new(config, tracks.has_video(), tracks.audio())?,
            tracks,
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
        StreamTracks::new(tracks, VideoCodecs::H264)
            .is_ok_and(|other| other.same_layout(&self.tracks))
    }

    /// One packet from the reader queue. An error is about this packet only; the muxer goes on
    /// (video resumes at the next keyframe).
    pub fn handle_packet(&mut self, packet: &ReaderPacket) -> Result<(), IngestError> {
        self.stats.packets += 1;
        if self.tracks.publisher_changed(packet.epoch) {
            self.discontinuity()?;
        }
        let result = self.route(packet);
        if result.is_err() {
            self.stats.errors += 1;
        }
        result
    }

    fn route(&mut self, packet: &ReaderPacket) -> Result<(), IngestError> {
        let wall = self.clock.at(packet.arrival);
        let placed = match self.tracks.place(packet) {
            Ok(placed) => placed,
            Err(e) => {
                if matches!(e, PacketError::Depacketize(_)) {
                    self.video_waiting = true;
                }
                return Err(e.into());
            }
        };
        match placed {
            Placed::Nothing => Ok(()),
            Placed::Jumped => self.discontinuity(),
            Placed::Video { dts, unit } => {
                self.stats.frames += 1;
                if unit.is_keyframe() {
                    self.video_waiting = false;
                }
                match self.segmenter.push_video(dts, wall, unit) {
                    // A timestamp jump backwards: the source restarted its clock.
                    Err(HlsError::NonMonotonic(_)) => self.discontinuity(),
                    other => Ok(other?),
                }
            }
            Placed::Audio { dts, payload } => {
                self.stats.audio_packets += 1;
                Ok(self.segmenter.push_audio(dts, wall, payload)?)
            }
        }
    }

    /// A new publisher (or a restarted clock): close what is open, start a new timeline.
    fn discontinuity(&mut self) -> Result<(), IngestError> {
        self.stats.discontinuities += 1;
        self.tracks.restart();
        if self.tracks.has_video() {
            self.video_waiting = true;
        }
        Ok(self.segmenter.discontinuity()?)
    }

    /// A new publisher took the stream over with the same tracks: continue after a
    /// discontinuity (the next packet's epoch would say so too; this covers a re-attach).
    pub fn restart(&mut self) -> Result<(), IngestError> {
        self.tracks.forget_publisher();
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

impl From<PacketError> for IngestError {
    fn from(e: PacketError) -> Self {
        match e {
            PacketError::UnknownTrack(track) => IngestError::UnknownTrack(track),
            PacketError::Depacketize(e) => IngestError::Depacketize(e),
        }
    }
}

#[cfg(test)]
#[path = "ingest_tests.rs"]
mod tests;
