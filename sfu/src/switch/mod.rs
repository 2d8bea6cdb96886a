//! The production switcher: a `program` hub stream whose video and audio come from a selected
//! source stream, cut on the new source's keyframe, continuous for every reader (WHEP, LL-HLS,
//! later the recorder). No decoding, no re-encoding.
//!
//! - [`bus`]: the sans-IO core: source packets in, rewritten program packets and keyframe
//!   requests out.
//! - [`service`]: readers on the sources, the `program` local source, timers, fallback.

pub mod bus;
pub mod service;

pub use bus::{Cut, Output, ProgramBus, ProgramTrack, SwitchError};
pub use service::{SourceInfo, Switcher, SwitcherConfig, SwitcherState, SwitcherStats};
