//! r58 media engine: the stream hub, the WebRTC server peer and the forwarding data plane.
//!
//! Nothing in this crate knows about HTTP: the binary's routes call into it with SDP strings and
//! get SDP strings back. Layers, bottom to top (a module uses only those below it;
//! docs/architecture.md draws the data path):
//!
//! - [`media`]: codec specs, track and source kinds, H.264 access units.
//! - [`rtp`]: the RTP header view, rewriting, keyframe detection, retransmission history,
//!   H.264 depacketizing.
//! - [`hub`]: named streams, their tracks, keyframe caches and readers.
//! - [`webrtc`]: ICE-lite, DTLS, SRTP, SDP and the per-peer session (sans-IO).
//! - [`engine`]: the sans-IO server core (sessions, hub, fan-out) and [`engine::SharedEngine`],
//!   the handle everything else holds.
//! - [`net`]: the media socket and the driver thread around the engine.
//! - [`capture`], [`hls`], [`switch`], [`rtsp`]: sources and readers on the engine.
//! - [`record`]: recordings to crash-safe fragmented MP4 (above [`hls`], whose fMP4 writer it
//!   uses).
//! - [`turn`]: TURN credentials (beside the rest, used by the binary).

pub mod capture;
pub mod engine;
#[cfg(any(test, feature = "test-support"))]
pub mod fuzzing;
pub mod hls;
pub mod hub;
pub mod media;
pub mod net;
pub mod record;
pub mod rtp;
pub mod rtsp;
pub mod switch;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod turn;
pub mod webrtc;
