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
use crate::live::Live;

/// A request to reload the configuration file, answered with what changed (as JSON) or the
/// one-line reason the new file was refused.
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<serde_json::Value, String>>;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub engine: SharedEngine,
    /// Bearer tokens by path pattern, checked in constant time; replaced by a reload.
    pub auth: Live<Vec<crate::config::AuthRule>>,
    /// Every stream's LL-HLS muxer (its watcher task is started by the server).
    pub hls: HlsService,
    /// The production switcher and its program bus (its timer task is started by the server).
    pub switcher: Switcher,
    /// Session resource tokens (the unguessable last path segment) to engine sessions.
    pub(super) sessions: Arc<Mutex<HashMap<String, SessionId>>>,
    /// ICE servers for clients and the credentials endpoint's protection; replaced by a
    /// reload that changes `[turn]`.
    pub turn: Live<turn::TurnEndpoint>,
    /// Limits, the admin policy and their counters.
    pub guard: Arc<guard::Guard>,
    /// Recordings (`[recording]`); `None`: recording is off (its watcher is started by the
    /// server).
    pub recordings: Option<sfu::record::RecordService>,
    /// Where `POST /api/config/reload` sends its request (the server's reload task); `None`:
    /// this server cannot reload (tests that build the router alone).
    pub reload: Option<tokio::sync::mpsc::Sender<ReloadRequest>>,
    /// The LAN HTTPS listener of `[tls] auto` (`/ca.crt`); `None`: not running.
    pub lan_https: Option<Arc<super::lan::LanHttps>>,
    /// The RTSP server's counters, for `/metrics`; `None`: RTSP is off.
    pub rtsp: Option<Arc<crate::rtsp::RtspStats>>,
    /// `[access]`, the users and their sessions.
    pub gatekeeper: Arc<crate::auth::Gatekeeper>,
}

impl AppState {
    pub fn new(engine: SharedEngine, auth: Vec<crate::config::AuthRule>) -> Self {
        Self {
            hls: HlsService::new(engine.clone(), LiveConfig::default()),
            switcher: Switcher::new(engine.clone(), SwitcherConfig::default()),
            engine,
            auth: Live::new(auth),
            sessions: Arc::new(Mutex::new(HashMap::new())),
            turn: Live::new(turn::TurnEndpoint::disabled()),
            guard: Arc::new(guard::Guard::default()),
            recordings: None,
            reload: None,
            lan_https: None,
            rtsp: None,
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
        self.turn = Live::new(turn);
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

    /// Answers `POST /api/config/reload` by sending its requests to `reload`.
    pub fn with_reload(mut self, reload: tokio::sync::mpsc::Sender<ReloadRequest>) -> Self {
        self.reload = Some(reload);
        self
    }

    /// Hands out the local CA of the LAN HTTPS listener.
    pub fn with_lan_https(mut self, lan: super::lan::LanHttps) -> Self {
        self.lan_https = Some(Arc::new(lan));
        self
    }

    /// The same state reporting the RTSP server's counters (`RtspServer::with_stats`).
    pub fn with_rtsp(mut self, stats: Arc<crate::rtsp::RtspStats>) -> Self {
        self.rtsp = Some(stats);
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
