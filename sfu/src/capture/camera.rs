//! One camera's media path: picture -> encoder -> RTP packets, and the narrow interface through
//! which a camera publishes into the engine ([`StreamSink`]).

use std::time::Instant;

use bytes::Bytes;

use super::encoder::{EncodeError, EncoderSettings, H264Encoder};
use super::packetizer::H264Packetizer;
use super::source::Captured;
use crate::engine::SharedEngine;
use crate::engine::{Engine, EngineError, LocalSourceId};
use crate::media::CodecSpec;
use crate::media::{SourceKind, TrackKind};

/// RTP payload type of camera packets; viewers get their own negotiated type from the engine.
pub const PAYLOAD_TYPE: u8 = 96;

/// What a camera is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraSettings {
    /// The stream name (`cam0`).
    pub name: String,
    pub encoder: EncoderSettings,
    /// RTP payload bytes per packet.
    pub mtu_payload: usize,
}

/// Where a camera publishes. The engine itself implements it (tests drive a camera on a virtual
/// clock), and so does [`SharedEngine`], locking for each call so that encoding never holds the
/// lock.
pub trait StreamSink {
    /// Opens (or takes over) stream `name` with one H.264 track.
    fn open(&mut self, now: Instant, name: &str, fmtp: &str) -> Result<LocalSourceId, EngineError>;
    /// The packets of one frame. An error means the stream is no longer ours.
    fn ingest(
        &mut self,
        now: Instant,
        id: LocalSourceId,
        packets: &[Bytes],
    ) -> Result<(), EngineError>;
    /// Whether a viewer asked for a keyframe since the last call.
    fn take_keyframe_request(&mut self, id: LocalSourceId) -> bool;
    /// Ends the stream; its viewers are told.
    fn close(&mut self, now: Instant, id: LocalSourceId);
    /// Whether anyone publishes `name` now.
    fn is_live(&mut self, name: &str) -> bool;
}

impl StreamSink for Engine {
    fn open(&mut self, now: Instant, name: &str, fmtp: &str) -> Result<LocalSourceId, EngineError> {
        let codec = CodecSpec {
            name: "H264".into(),
            clock_rate: 90_000,
            channels: None,
            fmtp: fmtp.into(),
        };
        self.open_local_source(
            now,
            name,
            SourceKind::Camera,
            vec![(TrackKind::Video, codec)],
        )
    }

    fn ingest(
        &mut self,
        now: Instant,
        id: LocalSourceId,
        packets: &[Bytes],
    ) -> Result<(), EngineError> {
        for packet in packets {
            self.ingest_local(now, id, 0, packet.clone())?;
        }
        Ok(())
    }

    fn take_keyframe_request(&mut self, id: LocalSourceId) -> bool {
        Engine::take_keyframe_request(self, id)
    }

    fn close(&mut self, now: Instant, id: LocalSourceId) {
        self.close_local_source(now, id);
    }

    fn is_live(&mut self, name: &str) -> bool {
        // A stream can outlive its publisher for a while (offline); then the name is free.
        self.hub()
            .get(name)
            .is_some_and(|s| s.publisher().is_some())
    }
}

impl StreamSink for SharedEngine {
    fn open(&mut self, now: Instant, name: &str, fmtp: &str) -> Result<LocalSourceId, EngineError> {
        let id = StreamSink::open(&mut *self.lock(), now, name, fmtp);
        self.flush_soon();
        id
    }

    fn ingest(
        &mut self,
        now: Instant,
        id: LocalSourceId,
        packets: &[Bytes],
    ) -> Result<(), EngineError> {
        let result = StreamSink::ingest(&mut *self.lock(), now, id, packets);
        // Out now rather than at the driver's next timer tick: every tick of delay is latency.
        self.flush_soon();
        result
    }

    fn take_keyframe_request(&mut self, id: LocalSourceId) -> bool {
        Engine::take_keyframe_request(&mut self.lock(), id)
    }

    fn close(&mut self, now: Instant, id: LocalSourceId) {
        self.lock().close_local_source(now, id);
        self.flush_soon();
    }

    fn is_live(&mut self, name: &str) -> bool {
        StreamSink::is_live(&mut *self.lock(), name)
    }
}

/// Encoder plus packetizer: one captured picture in, the RTP packets of its access unit out.
pub struct Pipeline {
    encoder: Box<dyn H264Encoder>,
    packetizer: H264Packetizer,
    epoch: Option<Instant>,
}

/// The packets of one encoded picture.
#[derive(Debug, Default)]
pub struct EncodedFrame {
    pub packets: Vec<Bytes>,
    pub keyframe: bool,
}

impl Pipeline {
    pub fn new(encoder: Box<dyn H264Encoder>, mtu_payload: usize) -> Self {
        Self {
            encoder,
            packetizer: H264Packetizer::new(PAYLOAD_TYPE, mtu_payload),
            epoch: None,
        }
    }

    /// Encodes `captured` (as an IDR when `force_keyframe`) and packetizes it with the RTP
    /// timestamp of its capture time.
    pub fn process(
        &mut self,
        captured: Captured<'_>,
        force_keyframe: bool,
    ) -> Result<EncodedFrame, EncodeError> {
        let epoch = *self.epoch.get_or_insert(captured.at);
        let ms = captured.at.saturating_duration_since(epoch).as_millis() as u64;
        let unit = self.encoder.encode(&captured.image, ms, force_keyframe)?;
        Ok(EncodedFrame {
            packets: self.packetizer.packetize(&unit, captured.at),
            keyframe: unit.keyframe,
        })
    }
}
