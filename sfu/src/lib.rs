//! r58 media engine: the stream hub, the WebRTC server peer and the forwarding data plane.
//!
//! Nothing in this crate knows about HTTP: the binary's routes call into it with SDP strings and
//! get SDP strings back. Protocol state is sans-IO (time is a parameter); `webrtc::driver` is the
//! thin tokio layer that owns the UDP socket.

pub mod capture;
pub mod fuzzing;
pub mod hls;
pub mod hub;
pub mod rtp;
pub mod switch;
pub mod turn;
pub mod webrtc;
