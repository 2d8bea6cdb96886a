//! Attaching readers that live outside the engine (LL-HLS muxer, recorder, switcher).

use std::time::Instant;

use tokio::sync::mpsc::Receiver;

use super::{Engine, EngineError};
use crate::hub::{ReaderPacket, ReaderSlot};
use crate::media::CodecSpec;
use crate::media::TrackKind;

/// A track of the stream, as a reader needs to know it to set up its muxer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderTrack {
    pub kind: TrackKind,
    pub codec: CodecSpec,
}

impl Engine {
    /// Attaches a reader of kind `kind` (for /api/streams) to stream `name` with a queue of
    /// `capacity` packets. It gets the keyframe cache at once, then every packet; when the stream
    /// ends (or is replaced by one with other tracks) its queue closes.
    pub fn attach_reader(
        &mut self,
        now: Instant,
        name: &str,
        kind: &'static str,
        capacity: usize,
    ) -> Result<(Vec<ReaderTrack>, Receiver<ReaderPacket>), EngineError> {
        let stream = self
            .hub
            .get_mut(name)
            .filter(|s| s.publisher().is_some())
            .ok_or_else(|| EngineError::StreamNotFound(name.to_owned()))?;
        let (mut slot, rx) = ReaderSlot::new(kind, capacity);
        let epoch = stream.epoch();
        for (index, track) in stream.tracks.iter().enumerate() {
            if track.kind != TrackKind::Video {
                continue;
            }
            let arrivals = track.keyframe_cache_arrivals();
            for (i, cached) in track.keyframe_cache().iter().enumerate() {
                slot.offer(
                    &ReaderPacket {
                        track: index,
                        epoch,
                        sequence: cached.sequence,
                        timestamp: cached.timestamp,
                        marker: cached.marker,
                        keyframe_start: i == 0,
                        arrival: arrivals.get(i).copied().unwrap_or(now),
                        payload: cached.payload.clone(),
                    },
                    true,
                );
            }
        }
        let tracks = stream.tracks.iter().map(ReaderTrack::from).collect();
        stream.readers.push(slot);
        Ok((tracks, rx))
    }
}

impl From<&crate::hub::Track> for ReaderTrack {
    fn from(track: &crate::hub::Track) -> Self {
        Self {
            kind: track.kind,
            codec: track.codec.clone(),
        }
    }
}

impl Engine {
    /// Asks the stream's source for a keyframe on behalf of a reader (a muxer waiting to cut a
    /// segment, the switcher taking a cut), under the same rate limit as viewers' PLIs. True when
    /// a request went out (a PLI queued, or a local encoder flagged); flush the driver then.
    pub fn request_keyframe(&mut self, now: Instant, name: &str) -> bool {
        self.keyframe_request(now, name, false)
    }

    /// [`Engine::request_keyframe`] past the rate limit, for an operator's cut.
    pub fn request_keyframe_now(&mut self, now: Instant, name: &str) -> bool {
        self.keyframe_request(now, name, true)
    }

    fn keyframe_request(&mut self, now: Instant, name: &str, urgent: bool) -> bool {
        let Some(stream) = self.hub.get_mut(name) else {
            return false;
        };
        let allowed = if urgent {
            stream.force_keyframe_request(now)
        } else {
            stream.publisher().is_some() && stream.request_keyframe(now)
        };
        if !allowed {
            return false;
        }
        let before = self.stats.keyframe_requests_sent;
        self.send_keyframe_request(name);
        self.stats.keyframe_requests_sent != before
    }
}
