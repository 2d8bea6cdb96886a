//! From a hub reader's packets to the [`FileWriter`], sans-IO: the tracks on one timeline
//! ([`crate::hls::tracks`], shared with the LL-HLS ingest), and a new file when the publisher
//! changes (a new epoch) or a track's clock jumps.

use thiserror::Error;

use super::writer::{FileEvent, FileWriter, WriterConfig, WriterError};
use crate::engine::ReaderTrack;
use crate::hls::tracks::{PacketError, Placed, StreamTracks, TracksError, VideoCodecs};
use crate::hub::ReaderPacket;
use crate::media::WallClock;
use crate::rtp::depacketize::DepacketizeError;

#[derive(Debug, Error)]
pub enum RecordInputError {
    #[error("no track to record: {0}")]
    Tracks(#[from] TracksError),
    #[error("packet for track {0}, which the stream does not have")]
    UnknownTrack(usize),
    #[error(transparent)]
    Depacketize(#[from] DepacketizeError),
    #[error(transparent)]
    Writer(#[from] WriterError),
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
    tracks: StreamTracks,
    clock: WallClock,
    pub stats: InputStats,
}

impl StreamRecorder {
    /// A recorder of stream `stream` with `tracks` (as
    /// [`crate::engine::Engine::attach_reader`] reports them): the first H.264 or H.265 video
    /// track and the first Opus track are recorded, others ignored.
    pub fn new(
        stream: &str,
        config: WriterConfig,
        tracks: &[ReaderTrack],
        clock: WallClock,
    ) -> Result<Self, RecordInputError> {
        let tracks = StreamTracks::new(tracks, VideoCodecs::H264OrH265)?;
        Ok(Self {
            writer: FileWriter::new(stream, config, tracks.has_video(), tracks.audio())?,
            tracks,
            clock,
            stats: InputStats::default(),
        })
    }

    pub fn writer(&self) -> &FileWriter {
        &self.writer
    }

    /// The next thing to do with files (its bytes are lent until the next call).
    pub fn poll_event(&mut self) -> Option<FileEvent<'_>> {
        self.writer.poll_event()
    }

    /// One packet from the reader queue. An error concerns this packet only.
    pub fn handle_packet(&mut self, packet: &ReaderPacket) -> Result<(), RecordInputError> {
        self.stats.packets += 1;
        if self.tracks.publisher_changed(packet.epoch) {
            self.restart()?;
        }
        let result = self.route(packet);
        if result.is_err() {
            self.stats.errors += 1;
        }
        result
    }

    fn route(&mut self, packet: &ReaderPacket) -> Result<(), RecordInputError> {
        let wall = self.clock.at(packet.arrival);
        let continues = match self.tracks.place(packet)? {
            Placed::Nothing => true,
            Placed::Jumped => false,
            Placed::Video { dts, unit } => match self.writer.push_video(dts, wall, unit) {
                // The clock stepped back: a restarted source.
                Err(WriterError::NonMonotonic(..)) => false,
                other => {
                    other?;
                    true
                }
            },
            Placed::Audio { dts, payload } => {
                self.writer.push_audio(dts, wall, payload)?;
                true
            }
        };
        if !continues {
            self.restart()?;
        }
        Ok(())
    }

    /// Ends the open file and starts a new timeline; the next keyframe opens the next file.
    fn restart(&mut self) -> Result<(), RecordInputError> {
        self.stats.restarts += 1;
        self.tracks.restart();
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

impl From<PacketError> for RecordInputError {
    fn from(e: PacketError) -> Self {
        match e {
            PacketError::UnknownTrack(track) => RecordInputError::UnknownTrack(track),
            PacketError::Depacketize(e) => RecordInputError::Depacketize(e),
        }
    }
}

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;
