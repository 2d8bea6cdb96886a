//! Live reload of the configuration file (SIGHUP or `POST /api/config/reload`): the thin
//! applier around [`crate::config::changes`].
//!
//! The file is loaded and validated exactly as at start (flags and environment still apply
//! over it); a file that does not load is refused with the same one-line error, logged, and
//! the running configuration stays. Otherwise the differences are applied one by one to what
//! the running server shares: the `[[auth]]` rules, the admin policy and the limits
//! ([`Live`] values the HTTP gate and the RTSP server read per request), the engine's limits,
//! a new TURN endpoint, the recording settings, and the cameras that were added, removed or
//! changed. Sessions the change does not concern keep going; what cannot change while the
//! server runs is reported as needing a restart and keeps its old value.
//!
//! One task owns the [`Reloader`] ([`serve`]): reloads run one at a time in arrival order.

use std::sync::Arc;

use sfu::engine::{EngineLimits, SharedEngine};
use sfu::turn::TurnService;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::camera_set::CameraSet;
use crate::config::{AuthRule, Change, Changes, Config, ConfigError, camera_entries, changes};
use crate::http::guard::Guard;
use crate::http::turn::TurnEndpoint;
use crate::http::{AppState, ReloadRequest};
use crate::live::Live;

/// Loads the configuration anew (the process's own arguments, environment and file).
pub type Loader = Box<dyn Fn() -> Result<Config, ConfigError> + Send>;

/// What a reload changes, and the configuration in force.
pub struct Reloader {
    load: Loader,
    /// The configuration in force: the last file loaded, except the keys that wait for a
    /// restart, which keep the values the server started with.
    current: Config,
    engine: SharedEngine,
    auth: Live<Vec<AuthRule>>,
    turn: Live<TurnEndpoint>,
    guard: Arc<Guard>,
    recordings: Option<sfu::record::RecordService>,
    cameras: CameraSet,
    /// The server holds its own TURN allocation, fed by the provider it started with.
    relay_running: bool,
}

/// What one reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub changes: Changes,
    /// Changes that could not be applied, each with its reason (also logged).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
}

impl Reloader {
    /// A reloader for the server running `current`, sharing what `state` shares.
    pub fn new(
        load: Loader,
        current: Config,
        state: &AppState,
        cameras: CameraSet,
        relay_running: bool,
    ) -> Self {
        Self {
            load,
            current,
            engine: state.engine.clone(),
            auth: state.auth.clone(),
            turn: state.turn.clone(),
            guard: state.guard.clone(),
            recordings: state.recordings.clone(),
            cameras,
            relay_running,
        }
    }

    /// Loads the file again and applies what changed; the one-line reason when it does not
    /// load (nothing changes then).
    pub async fn reload(&mut self) -> Result<Outcome, String> {
        let new = match (self.load)() {
            Ok(new) => new,
            Err(e) => {
                let reason = e.to_string();
                error!(error = %reason, "configuration reload refused; the running configuration stays");
                return Err(reason);
            }
        };
        let changes = changes(&self.current, &new, self.relay_running);
        let in_force = crate::config::in_force(&self.current, &new, self.relay_running);
        let mut outcome = Outcome::default();
        for change in &changes.applied {
            match self.apply(change, &in_force).await {
                Ok(()) => outcome.changes.applied.push(change.clone()),
                Err(reason) => {
                    error!(change = %change, error = %reason, "configuration reload: not applied");
                    outcome.failed.push(format!("{change}: {reason}"));
                }
            }
        }
        outcome.changes.needs_restart = changes.needs_restart;
        if !outcome.changes.needs_restart.is_empty() {
            warn!(keys = ?outcome.changes.needs_restart, "configuration reload: these keys take effect at the next restart");
        }
        let applied: Vec<String> = outcome
            .changes
            .applied
            .iter()
            .map(|c| c.to_string())
            .collect();
        info!(?applied, failed = ?outcome.failed, cameras = ?self.cameras.names(), "configuration reloaded");
        self.current = in_force;
        Ok(outcome)
    }

    async fn apply(&mut self, change: &Change, new: &Config) -> Result<(), String> {
        match change {
            Change::Auth => self.auth.store(new.auth.clone()),
            Change::Admin => self.guard.admin.store(new.admin.clone()),
            Change::Limits => {
                self.guard.limits.store(new.limits.clone());
                self.engine.lock().set_limits(EngineLimits {
                    max_sessions: new.max_sessions,
                    max_viewers_per_stream: new.limits.viewers_per_stream,
                    publisher_bitrate_bps: new.limits.publisher_bitrate,
                    publisher_bitrate_cap_bps: new.limits.publisher_bitrate_cap,
                    max_forward_delay: new.limits.max_forward_delay,
                });
            }
            Change::Turn => {
                let old = self.turn.load();
                // The provider's service (and its credential cache) stays when only the
                // endpoint's protection changed.
                let service = if old.service.config() == &new.turn.service {
                    old.service.clone()
                } else {
                    TurnService::start(new.turn.service.clone())
                };
                info!(
                    provider = service.config().provider.name(),
                    "TURN credentials"
                );
                self.turn
                    .store(TurnEndpoint::new(service, new.turn.clone()));
            }
            Change::Recording => {
                let (Some(service), Some(config)) = (&self.recordings, &new.recording) else {
                    return Err("recording is not running".into());
                };
                service
                    .set_config(config.clone())
                    .map_err(|e| e.to_string())?;
            }
            Change::CameraRemoved(name) => {
                self.stop_camera(name).await;
            }
            Change::CameraAdded(name) | Change::CameraRestarted(name) => {
                self.stop_camera(name).await;
                let entries = camera_entries(new);
                let entry = entries
                    .get(name)
                    .ok_or_else(|| format!("camera {name} is not in the new configuration"))?;
                self.cameras.add(name, entry).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Stops a camera off the async runtime (its thread finishes the frame it encodes).
    async fn stop_camera(&mut self, name: &str) {
        if let Some(handle) = self.cameras.take(name) {
            if tokio::task::spawn_blocking(move || handle.stop())
                .await
                .is_err()
            {
                error!(camera = %name, "stopping the camera panicked");
            }
            info!(camera = %name, "camera stopped");
        }
    }
}

/// Runs reloads until the server stops: on SIGHUP (logged) and on each request from
/// `POST /api/config/reload` (answered).
pub async fn serve(mut reloader: Reloader, mut requests: mpsc::Receiver<ReloadRequest>) {
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(e) => {
            error!(error = %e, "cannot listen for SIGHUP; reload by POST /api/config/reload");
            None
        }
    };
    loop {
        tokio::select! {
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                info!("SIGHUP: reloading the configuration");
                // The outcome is logged by `reload`.
                let _ = reloader.reload().await;
            }
            request = requests.recv() => {
                let Some(answer) = request else { return };
                let outcome = reloader.reload().await;
                let _ = answer.send(outcome.map(|o| serde_json::to_value(o).unwrap_or_default()));
            }
        }
    }
}
