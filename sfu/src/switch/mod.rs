//! The production switcher: a `program` hub stream whose video and audio come from a selected
//! source stream, cut on the new source's keyframe, continuous for every reader (WHEP, LL-HLS,
//! the recorder). Video is never decoded; audio is mixed (decoded, summed, encoded once).
//!
//! - [`bus`]: the sans-IO core: source packets in, rewritten program packets and keyframe
//!   requests out.
//! - [`mixer`]: the sans-IO audio mixer: every source's Opus decoded, mixed by its strip (gain,
//!   mute, on/afv/off), limited and encoded once as the program's audio.
//! - [`returns`]: the mixer's mix-minus returns: each guest hears the program without its own
//!   voice (and the operator's talkback when it talks to that guest).
//! - `return_feeds`: the service's `<guest>.return` streams (program picture, mix-minus audio).
//! - [`service`]: readers on the sources, the `program` local source, timers, fallback.

pub mod bus;
pub mod content_clock;
pub mod mixer;
mod return_feeds;
pub mod returns;
pub mod service;

pub use bus::{Cut, Output, ProgramBus, ProgramTrack, SwitchError};
pub use mixer::{Level, MixerStats, Mode, Strip};
pub use service::RETURN_SUFFIX;
pub use service::{
    AudioSettings, AudioState, SourceInfo, StripChange, Switcher, SwitcherConfig, SwitcherState,
    SwitcherStats, Talkback,
};
