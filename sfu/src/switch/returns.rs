//! Mix-minus returns, part of the sans-IO mixer: for every remote guest, the program mix (before
//! the master gain) without that guest's own voice, plus the operator's talkback when it talks
//! to that guest, limited and encoded once per guest. A guest in a conversation hears the host
//! and the other guests at WebRTC latency, never an echo of itself; the talkback reaches one
//! guest and never the program.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use super::mixer::{CHANNELS, FRAME_SAMPLES, Input, Limiter, MixerError, OPUS_SILENCE_STEREO};

/// Most guests with a return feed (one encoder each).
pub const MAX_RETURNS: usize = 16;
/// A return is voice: 64 kbit/s stereo is plenty, and a lower complexity keeps one encode per
/// guest cheap.
const RETURN_BITRATE_BPS: i32 = 64_000;
const RETURN_COMPLEXITY: i32 = 3;

/// A return frame ready to go out, for `guest`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnFrame {
    pub guest: String,
    pub at: Instant,
    pub content_at: Instant,
    /// Counts this guest's return frames from 0 (RTP timestamp `index * 960`).
    pub index: u64,
    pub payload: Bytes,
}

#[derive(Debug)]
struct ReturnMix {
    encoder: opus::Encoder,
    limiter: Limiter,
    index: u64,
}

#[derive(Debug, Default)]
pub(super) struct Returns {
    mixes: BTreeMap<String, ReturnMix>,
    /// (talking source, guest it talks to).
    pub(super) talkback: Option<(String, String)>,
    /// The talkback's audio this frame (filled by the mixer).
    pub(super) talk: Vec<f32>,
    buf: Vec<f32>,
    pub(super) frames: VecDeque<ReturnFrame>,
}

impl Returns {
    pub(super) fn set_guests<'a>(
        &mut self,
        guests: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), MixerError> {
        let wanted: Vec<&str> = guests.into_iter().take(MAX_RETURNS).collect();
        self.mixes.retain(|name, _| wanted.contains(&name.as_str()));
        for guest in wanted {
            if !self.mixes.contains_key(guest) {
                let mut encoder =
                    opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::Voip)?;
                encoder.set_bitrate(opus::Bitrate::Bits(RETURN_BITRATE_BPS))?;
                encoder.set_complexity(RETURN_COMPLEXITY)?;
                self.mixes.insert(
                    guest.to_owned(),
                    ReturnMix {
                        encoder,
                        limiter: Limiter::default(),
                        index: 0,
                    },
                );
            }
        }
        Ok(())
    }

    pub(super) fn set_talkback(&mut self, talkback: Option<(&str, &str)>) {
        self.talkback = talkback.map(|(from, to)| (from.to_owned(), to.to_owned()));
    }

    pub(super) fn talkback(&self) -> Option<(&str, &str)> {
        self.talkback
            .as_ref()
            .map(|(from, to)| (from.as_str(), to.as_str()))
    }

    pub(super) fn talkback_source(&self) -> Option<&str> {
        self.talkback.as_ref().map(|(from, _)| from.as_str())
    }

    /// Each guest's return of this frame: `mix` (the program before the master) minus the
    /// guest's own contribution, plus the talkback if it talks to the guest.
    pub(super) fn mix(
        &mut self,
        tick: Instant,
        content_at: Instant,
        mix: &[f32],
        inputs: &BTreeMap<String, Input>,
        packet: &mut [u8],
    ) {
        if self.mixes.is_empty() {
            return;
        }
        let frame_len = FRAME_SAMPLES * CHANNELS;
        self.buf.resize(frame_len, 0.0);
        self.talk.resize(frame_len, 0.0);
        for (guest, ret) in &mut self.mixes {
            self.buf.copy_from_slice(mix);
            if let Some(own) = inputs.get(guest) {
                for (b, o) in self.buf.iter_mut().zip(&own.contribution) {
                    *b -= o;
                }
            }
            if self.talkback.as_ref().is_some_and(|(_, to)| to == guest) {
                for (b, t) in self.buf.iter_mut().zip(&self.talk) {
                    *b += t;
                }
            }
            ret.limiter.apply(&mut self.buf);
            let payload = match ret.encoder.encode_float(&self.buf, packet) {
                Ok(n) => Bytes::copy_from_slice(&packet[..n]),
                Err(_) => Bytes::from_static(OPUS_SILENCE_STEREO),
            };
            self.frames.push_back(ReturnFrame {
                guest: guest.clone(),
                at: tick,
                content_at,
                index: ret.index,
                payload,
            });
            ret.index += 1;
        }
    }
}
