//! RTP on the forwarding path: a zero-copy header view, per-viewer rewriting, keyframe detection
//! and the retransmission history.

pub mod gaps;
pub mod h264;
pub mod history;
pub mod keyframe;
pub mod packet;
pub mod rewrite;
