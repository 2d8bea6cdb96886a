//! The switcher's return feeds to guests: for every live WHIP guest with audio, a local source
//! `<guest>.return` carrying the program picture and the mixer's mix-minus for that guest (the
//! program's audio without the guest's own voice, plus the operator's talkback when it talks to
//! that guest). The guest page plays it over WHEP, at WebRTC latency, while the guest is live.

use std::time::Instant;

use bytes::Bytes;
use tracing::{info, warn};

use super::bus::ProgramTrack;
use super::service::{RETURN_SUFFIX, Switcher, program_tracks};
use crate::engine::Engine;
use crate::media::{SourceKind, TrackKind};

/// The return feeds are brought in line with the live guests every this many ticks (200 ms).
const SYNC_EVERY_TICKS: u32 = 10;

impl Switcher {
    /// Opens a return feed for every guest that came, closes those of guests that left, and
    /// tells the mixer whom to make returns for.
    pub(super) fn sync_returns(&self, now: Instant) {
        {
            let mut state = self.lock();
            if state.bus.mixer().is_none() {
                return;
            }
            state.ticks_since_returns = state.ticks_since_returns.saturating_add(1);
            if state.ticks_since_returns < SYNC_EVERY_TICKS {
                return;
            }
            state.ticks_since_returns = 0;
        }
        // The engine's lock first, then the state's (the order everywhere in the switcher).
        let mut engine = self.engine.lock();
        let talking = self
            .lock()
            .bus
            .mixer()
            .and_then(|m| m.talkback())
            .map(|(from, _)| from.to_owned());
        let guests: Vec<String> = engine
            .hub()
            .iter()
            .filter(|s| {
                s.source == SourceKind::Whip
                    && s.publisher().is_some()
                    && s.tracks.iter().any(|t| t.kind == TrackKind::Audio)
                    && s.name() != self.config.program
                    && talking.as_deref() != Some(s.name())
            })
            .map(|s| s.name().to_owned())
            .collect();
        let mut state = self.lock();
        let gone: Vec<String> = state
            .returns
            .keys()
            .filter(|g| !guests.contains(g))
            .cloned()
            .collect();
        for guest in gone {
            if let Some(id) = state.returns.remove(&guest) {
                engine.close_local_source(now, id);
                info!(guest, "return feed closed");
            }
        }
        for guest in &guests {
            if state.returns.contains_key(guest) {
                continue;
            }
            let name = format!("{guest}{RETURN_SUFFIX}");
            match engine.open_local_source(now, &name, SourceKind::Return, program_tracks()) {
                Ok(id) => {
                    state.returns.insert(guest.clone(), id);
                    info!(guest, stream = name, "return feed opened");
                }
                Err(e) => warn!(guest, "cannot open the return feed: {e}"),
            }
        }
        if let Some(mixer) = state.bus.mixer_mut()
            && let Err(e) = mixer.set_returns(guests.iter().map(String::as_str))
        {
            warn!("mix-minus returns: {e}");
        }
    }

    /// Puts the program's video and each guest's mix-minus into the return feeds.
    pub(super) fn send_returns(
        &self,
        engine: &mut Engine,
        now: Instant,
        program: &[(ProgramTrack, Bytes, Instant)],
        returns: Vec<(String, Bytes, Instant)>,
    ) {
        let state = self.lock();
        if state.returns.is_empty() {
            return;
        }
        for (track, packet, content_at) in program {
            if *track != ProgramTrack::Video {
                continue;
            }
            for id in state.returns.values() {
                let _ = engine.ingest_local_at(now, *id, 0, packet.clone(), *content_at);
            }
        }
        for (guest, packet, content_at) in returns {
            if let Some(id) = state.returns.get(&guest) {
                let _ = engine.ingest_local_at(now, *id, 1, packet, content_at);
            }
        }
    }
}
