//! The WebRTC protocols of the server peer, each a sans-IO state machine: ICE-lite, DTLS,
//! SRTP, SDP negotiation, and the per-peer session that holds them. The engine above drives
//! them; nothing here knows about streams, sockets or other sessions.

pub mod bitrate_cap;
pub mod dtls;
pub mod ice_lite;
pub mod peer_addr;
pub mod sdp;
pub mod session;
pub mod srtp;

pub use peer_addr::{PeerAddr, Via};
