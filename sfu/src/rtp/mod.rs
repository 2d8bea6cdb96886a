//! RTP on the forwarding path: a zero-copy header view, per-viewer rewriting, keyframe detection
//! and the retransmission history; and the H.264 and H.265 depacketizers the muxers read with.

pub mod depacketize;
pub mod gaps;
pub mod h264;
pub mod h265;
pub mod history;
pub mod keyframe;
pub mod packet;
pub mod rewrite;
