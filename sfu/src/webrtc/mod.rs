//! The server-side WebRTC peer: SDP negotiation, ICE-lite, DTLS, SRTP and the UDP driver.

pub mod sdp;
