//! What the handlers share: the engine, the LL-HLS muxers, the switcher, the TURN endpoint,
//! the limits and admin policy, and the session resource tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sfu::engine::SharedEngine;
use sfu::hls::{HlsService, LiveConfig};
use sfu::switch::{Switcher, SwitcherConfig};
use sfu::webrtc::session::SessionId;

use super::guard;
use super::turn;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub engine: SharedEngine,
    /// Bearer tokens by path pattern, checked in constant time.
    pub auth: Arc<Vec<crate::config::AuthRule>>,
    /// Every stream's LL-HLS muxer (its watcher task is started by the server).
    pub hls: HlsService,
    /// The production switcher and its program bus (its timer task is started by the server).
    pub switcher: Switcher,
    /// Session resource tokens (the unguessable last path segment) to engine sessions.
    pub(super) sessions: Arc<Mutex<HashMap<String, SessionId>>>,
    /// ICE servers for clients and the credentials endpoint's protection.
    pub turn: Arc<turn::TurnEndpoint>,
    /// Limits, the admin policy and their counters.
    pub guard: Arc<guard::Guard>,
    /// Recordings (`[recording]`); `None`: recording is off (its watcher is started by the
    /// server).
    pub recordings: Option<sfu::record::RecordService>,
    /// `[access]`, the users and their sessions.
    pub gatekeeper: Arc<crate::auth::Gatekeeper>,
}

impl AppState {
    pub fn new(engine: SharedEngine, auth: Vec<crate::config::AuthRule>) -> Self {
        Self {
            hls: HlsService::new(engine.clone(), LiveConfig::default()),
            switcher: Switcher::new(engine.clone(), SwitcherConfig::default()),
            engine,
            auth: Arc::new(auth),
            sessions: Arc::new(Mutex::new(HashMap::new())),
            turn: Arc::new(turn::TurnEndpoint::disabled()),
            guard: Arc::new(guard::Guard::default()),
            recordings: None,
            gatekeeper: Arc::new(crate::auth::Gatekeeper::default()),
        }
    }

    /// The same state with LL-HLS muxers configured by `config`.
    pub fn with_hls(mut self, config: LiveConfig) -> Self {
        self.hls = HlsService::new(self.engine.clone(), config);
        self
    }

    /// The same state with the switcher configured by `config`.
    pub fn with_switcher(mut self, config: SwitcherConfig) -> Self {
        self.switcher = Switcher::new(self.engine.clone(), config);
        self
    }

    /// Hands out ICE servers from `turn` (the default is none).
    pub fn with_turn(mut self, turn: turn::TurnEndpoint) -> Self {
        self.turn = Arc::new(turn);
        self
    }

    /// Enforces `guard`'s limits and admin policy (the default: built-in limits, admin open to
    /// local clients).
    pub fn with_guard(mut self, guard: guard::Guard) -> Self {
        self.guard = Arc::new(guard);
        self
    }

    /// Records with `service`.
    pub fn with_recordings(mut self, service: sfu::record::RecordService) -> Self {
        self.recordings = Some(service);
        self
    }

    /// Lets people in by `gatekeeper`'s `[access]` and users (the default: `[access]`'s
    /// defaults and no users).
    pub fn with_gatekeeper(mut self, gatekeeper: crate::auth::Gatekeeper) -> Self {
        self.gatekeeper = Arc::new(gatekeeper);
        self
    }

    pub(super) fn session_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionId>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
