//! The server-side WebRTC peer: SDP negotiation, ICE-lite, DTLS, SRTP and the UDP driver.

pub mod bitrate_cap;
pub mod client;
pub mod delay;
pub mod driver;
pub mod dtls;
pub mod engine;
pub mod harness;
pub mod ice_lite;
pub mod sdp;
pub mod session;
pub mod srtp;
pub mod udp_batch;
pub mod udp_recv;
