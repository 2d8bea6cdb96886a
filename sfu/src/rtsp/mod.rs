//! The RTSP server's protocol (RFC 2326, RTSP 1.0 as mixers, recorders and players speak it):
//! every hub stream at `rtsp://HOST:PORT/NAME`, read by a hub reader per client.
//!
//! - [`connection`]: one client connection, sans-IO (requests, sessions, transports, timers).
//! - [`output`]: per-track RTP rewriting (the WHEP viewers' [`crate::rtp::rewrite::Rewriter`])
//!   and Sender Reports.
//! - [`sdp`]: the DESCRIBE answer from the hub's tracks and keyframe cache.
//! - [`auth`]: Basic and Digest against the stream's `[[auth]]` token.
//! - `wire`: reason phrases, request URLs, interleaved framing, identifiers.
//!
//! The message syntax (requests, headers, interleaved frames) is the `rtsp-types` crate's; the
//! tokio driver (accept loop, sockets, the hub reader) is the `r58` crate's `rtsp.rs`.

pub mod auth;
pub mod connection;
pub mod output;
pub mod sdp;
mod wire;

pub use connection::{
    Catalog, Connection, ConnectionConfig, ConnectionStats, Event, MAX_REQUEST_BYTES, Output,
};
pub use output::SourceReport;
pub use sdp::{StreamDescription, TrackDescription, describe, source_reports};

#[cfg(test)]
mod tests;

/// An H.264 (constrained baseline, with SPS/PPS) and Opus stream, as the connection's tests and
/// its fuzz entry serve it.
#[cfg(any(test, feature = "test-support"))]
pub fn sample_description() -> StreamDescription {
    use crate::media::{CodecSpec, TrackKind};
    StreamDescription {
        tracks: vec![
            TrackDescription {
                kind: TrackKind::Video,
                codec: CodecSpec {
                    name: "H264".into(),
                    clock_rate: 90_000,
                    channels: None,
                    fmtp: "packetization-mode=1".into(),
                },
                parameter_sets: Some((
                    bytes::Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1f]),
                    bytes::Bytes::from_static(&[0x68, 0xce]),
                )),
                h265_parameter_sets: None,
            },
            TrackDescription {
                kind: TrackKind::Audio,
                codec: CodecSpec {
                    name: "opus".into(),
                    clock_rate: 48_000,
                    channels: Some(2),
                    fmtp: String::new(),
                },
                parameter_sets: None,
                h265_parameter_sets: None,
            },
        ],
    }
}
