//! Sources inside the process (cameras, the test pattern, later the program bus): they publish
//! plain RTP into a stream the same way a WHIP session does, so every reader treats them alike.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::info;

use super::{Engine, EngineError};
use crate::hub::{Stream, Track};
use crate::media::CodecSpec;
use crate::media::{SourceKind, TrackKind};
use crate::rtp::packet::RtpHeader;
use crate::webrtc::session::SessionId;

/// A local source's handle (shares the id space with sessions).
pub type LocalSourceId = SessionId;

/// What the engine keeps for a local source.
#[derive(Debug, Default)]
pub(super) struct LocalSource {
    pub stream: String,
    /// Set when a viewer asked for a keyframe; the source takes it with
    /// [`Engine::take_keyframe_request`] and asks its encoder for an IDR.
    pub keyframe_requested: bool,
}

impl Engine {
    /// Starts publishing stream `name` from inside the process. An existing stream with the same
    /// tracks is taken over (viewers stay); one with other tracks ends first.
    pub fn open_local_source(
        &mut self,
        now: Instant,
        name: &str,
        kind: SourceKind,
        tracks: Vec<(TrackKind, CodecSpec)>,
    ) -> Result<LocalSourceId, EngineError> {
        if tracks.is_empty() {
            return Err(EngineError::NoUsableMedia(
                "a local source needs a track".into(),
            ));
        }
        let id = self.next_session_id;
        self.next_session_id += 1;
        let tracks: Vec<Track> = tracks
            .into_iter()
            .map(|(kind, codec)| Track::new(kind, codec))
            .collect();
        self.attach_publisher(now, name, id, kind, tracks);
        self.local_sources.insert(
            id,
            LocalSource {
                stream: name.to_owned(),
                keyframe_requested: false,
            },
        );
        info!(stream = name, source = id, ?kind, "local source opened");
        Ok(id)
    }

    /// One plain RTP packet of track `track_index` from a local source, made now. Bad packets
    /// are counted and dropped.
    pub fn ingest_local(
        &mut self,
        now: Instant,
        source: LocalSourceId,
        track_index: usize,
        packet: Bytes,
    ) -> Result<(), EngineError> {
        self.ingest_local_at(now, source, track_index, packet, now)
    }

    /// As [`Self::ingest_local`], for a packet whose media belongs to instant `content_at`
    /// (earlier than `now` when it waited: the switcher's mixed audio is made ~40 ms after the
    /// voices in it arrived). Viewers' sender reports map the track's timestamps to that clock,
    /// so a browser plays the program's audio and video of one instant together.
    pub fn ingest_local_at(
        &mut self,
        now: Instant,
        source: LocalSourceId,
        track_index: usize,
        packet: Bytes,
        content_at: Instant,
    ) -> Result<(), EngineError> {
        let local = self
            .local_sources
            .get(&source)
            .ok_or(EngineError::SessionNotFound)?;
        let header = RtpHeader::parse(&packet)
            .map_err(|e| EngineError::Internal(format!("local source sent bad RTP: {e}")))?;
        // A camera ingests each frame at its capture instant.
        let capture_ntp = self
            .hub
            .get(&local.stream)
            .filter(|s| s.source == SourceKind::Camera)
            .map(|_| self.ntp_at(now));
        // Handed over as it is made: it has not waited (and is never shed).
        let origin = super::media::Origin {
            arrival: now,
            capture_ntp,
            shed_after: Duration::ZERO,
        };
        let report = (self.ntp_at(content_at), header.timestamp, content_at);
        if let Some(stream) = self.hub.get_mut(&local.stream) {
            // The newest mapping of this track's clock to the wall clock: the sender reports of
            // local sources (a WHIP publisher's come from its own reports).
            if let Some(track) = stream.tracks.get_mut(track_index)
                && track
                    .sender_report
                    .is_none_or(|(_, rtp, _)| header.timestamp.wrapping_sub(rtp) < 0x8000_0000)
            {
                track.sender_report = Some(report);
            }
            let forwarded =
                super::media::forward(now, stream, source, track_index, &header, &packet, origin);
            self.note_forwarded(source, forwarded);
        }
        Ok(())
    }

    /// Whether a keyframe was requested since the last call (the request is consumed).
    pub fn take_keyframe_request(&mut self, source: LocalSourceId) -> bool {
        self.local_sources
            .get_mut(&source)
            .is_some_and(|l| std::mem::take(&mut l.keyframe_requested))
    }

    /// The source went away (device lost, turned off): its stream ends and viewers are told.
    pub fn close_local_source(&mut self, now: Instant, source: LocalSourceId) {
        let Some(local) = self.local_sources.remove(&source) else {
            return;
        };
        if self
            .hub
            .get(&local.stream)
            .is_some_and(|s| s.publisher() == Some(source))
        {
            info!(stream = %local.stream, source, "local source closed");
            self.end_stream(now, &local.stream);
        }
    }

    /// Makes `publisher` the source of stream `name`: a takeover when the tracks match, a new
    /// stream otherwise. The replaced publisher (a WHIP session or a local source) is ended.
    pub(super) fn attach_publisher(
        &mut self,
        now: Instant,
        name: &str,
        publisher: SessionId,
        kind: SourceKind,
        tracks: Vec<Track>,
    ) {
        let existing = self
            .hub
            .get(name)
            .map(|stream| (stream.publisher(), stream.accepts_takeover(&tracks)));
        match existing {
            Some((old_publisher, true)) => {
                if let Some(stream) = self.hub.get_mut(name) {
                    stream.take_over(publisher, tracks);
                    stream.source = kind;
                }
                if let Some(old) = old_publisher {
                    self.local_sources.remove(&old);
                    self.close_session(now, old, super::CloseReason::TakenOver);
                }
                info!(stream = name, publisher, "publisher took the stream over");
            }
            Some((_, false)) => {
                // Different tracks: viewers would need to renegotiate, so the old stream ends.
                self.end_stream(now, name);
                self.hub
                    .insert(Stream::new(name.to_owned(), kind, publisher, tracks, now));
            }
            None => {
                self.hub
                    .insert(Stream::new(name.to_owned(), kind, publisher, tracks, now));
            }
        }
    }
}
