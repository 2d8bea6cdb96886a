//! What a configuration reload changes: [`changes`] compares the running [`Config`] with a
//! newly loaded (already validated) one and lists what the server applies while it runs and
//! which keys wait for a restart. Pure: the server's reload (`crate::reload`) applies the list.
//!
//! Applied live: `[[auth]]` tokens, `[admin]`, `[turn]` (the credential provider and the
//! endpoint's protection), `max_sessions` and the per-client/per-stream/per-publisher
//! `[limits]`, `[recording]` settings other than its directory, and cameras by name (a
//! `[[camera]]` or test camera added is started, one removed is stopped and its stream ends,
//! one whose settings changed is restarted). Sessions the change does not concern keep going.
//!
//! Waits for a restart (the old value stays in use and the reload says so): the sockets
//! (`listen`, `webrtc_udp`, `[rtsp]`, `[tls]`), `public_ips`, `media_threads`,
//! `cors_allowed_origins`, `log_level`, `[hls]`, `[switcher]`, `[[source]]`, `[mdns]`, `[access]`, the HTTP
//! timeouts of `[limits]`, `[turn] server_relay`/`relay_ca` and, while the server holds its own
//! relay, the provider it allocates from, and turning recording on or off or moving its
//! directory.

use std::collections::BTreeMap;
use std::fmt;

use super::{CameraConfig, Config, Limits, Turn};

/// One thing a reload applies while the server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The `[[auth]]` rules (their tokens, also those read from `token_file`/`token_env`).
    Auth,
    /// The `[admin]` policy.
    Admin,
    /// `max_sessions` or the live part of `[limits]`.
    Limits,
    /// The `[turn]` provider or the credentials endpoint's protection.
    Turn,
    /// The `[recording]` settings (for recordings started from now on).
    Recording,
    /// A camera (test or `[[camera]]`) that did not run before.
    CameraAdded(String),
    /// A camera that is no longer configured: it stops and its stream ends.
    CameraRemoved(String),
    /// A camera whose settings changed: it stops and starts again with the new ones.
    CameraRestarted(String),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Auth => f.write_str("auth"),
            Change::Admin => f.write_str("admin"),
            Change::Limits => f.write_str("limits"),
            Change::Turn => f.write_str("turn"),
            Change::Recording => f.write_str("recording"),
            Change::CameraAdded(name) => write!(f, "camera {name} added"),
            Change::CameraRemoved(name) => write!(f, "camera {name} removed"),
            Change::CameraRestarted(name) => write!(f, "camera {name} restarted"),
        }
    }
}

impl serde::Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The outcome of comparing two configurations.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    /// What the server applies now, in this order.
    pub applied: Vec<Change>,
    /// Keys whose new value waits for a restart; until then the old one stays in use.
    pub needs_restart: Vec<&'static str>,
}

impl Changes {
    /// Nothing differs.
    pub fn is_empty(&self) -> bool {
        self.applied.is_empty() && self.needs_restart.is_empty()
    }
}

/// A camera as the reload sees it: what it runs with, compared by stream name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraEntry {
    /// A synthetic test camera with its picture size, rate and bitrate.
    Test {
        width: u32,
        height: u32,
        fps: u32,
        bitrate: u32,
    },
    /// A V4L2 camera.
    Device(CameraConfig),
}

/// Every camera `config` runs, by stream name.
pub fn camera_entries(config: &Config) -> BTreeMap<String, CameraEntry> {
    let cams = &config.test_cameras;
    let mut entries: BTreeMap<String, CameraEntry> = cams
        .names()
        .into_iter()
        .map(|name| {
            let entry = CameraEntry::Test {
                width: cams.width,
                height: cams.height,
                fps: cams.fps,
                bitrate: cams.bitrate,
            };
            (name, entry)
        })
        .collect();
    for camera in &config.cameras {
        entries.insert(camera.name.clone(), CameraEntry::Device(camera.clone()));
    }
    entries
}

/// What changes from `old` to `new`. `relay_running`: the server holds its own TURN
/// allocation, whose provider a reload cannot swap.
pub fn changes(old: &Config, new: &Config, relay_running: bool) -> Changes {
    let mut out = Changes::default();
    let mut restart = |differs: bool, key: &'static str| {
        if differs {
            out.needs_restart.push(key);
        }
    };
    restart(old.listen != new.listen, "listen");
    restart(old.webrtc_udp != new.webrtc_udp, "webrtc_udp");
    restart(old.public_ips != new.public_ips, "public_ips");
    restart(old.media_threads != new.media_threads, "media_threads");
    restart(
        old.cors_allowed_origins != new.cors_allowed_origins,
        "cors_allowed_origins",
    );
    restart(old.log_level != new.log_level, "log_level");
    restart(old.hls != new.hls, "hls");
    restart(old.switcher != new.switcher, "switcher");
    restart(old.tls != new.tls || old.auto_tls != new.auto_tls, "tls");
    restart(old.rtsp != new.rtsp, "rtsp");
    restart(old.sources != new.sources, "source");
    restart(old.mdns != new.mdns, "mdns");
    restart(old.access != new.access, "access");
    let (old_l, new_l) = (&old.limits, &new.limits);
    restart(
        old_l.header_timeout != new_l.header_timeout,
        "limits.header_timeout",
    );
    restart(
        old_l.body_timeout != new_l.body_timeout,
        "limits.body_timeout",
    );
    restart(
        old_l.max_header_bytes != new_l.max_header_bytes,
        "limits.max_header_bytes",
    );
    restart(
        old.turn.server_relay != new.turn.server_relay,
        "turn.server_relay",
    );
    restart(old.turn.relay_ca != new.turn.relay_ca, "turn.relay_ca");
    restart(
        relay_running && old.turn.service != new.turn.service,
        "turn (the server's own relay keeps its provider)",
    );
    let recording_moved = recording_moved(old, new);
    restart(recording_moved, "recording (on/off or dir)");

    let mut apply = |differs: bool, change: Change| {
        if differs {
            out.applied.push(change);
        }
    };
    apply(old.auth != new.auth, Change::Auth);
    apply(old.admin != new.admin, Change::Admin);
    apply(
        old.max_sessions != new.max_sessions || live_limits(old_l) != live_limits(new_l),
        Change::Limits,
    );
    apply(live_turn(&old.turn) != live_turn(&new.turn), Change::Turn);
    apply(
        !recording_moved && old.recording != new.recording,
        Change::Recording,
    );
    out.applied
        .extend(camera_changes(&camera_entries(old), &camera_entries(new)));
    out
}

/// The configuration in force after a reload from `old` to `new`: `new`, except the keys that
/// wait for a restart, which keep `old`'s values (so the next reload reports them again).
pub fn in_force(old: &Config, new: &Config, relay_running: bool) -> Config {
    let mut out = new.clone();
    out.config_file = old.config_file.clone();
    out.command = old.command.clone();
    out.listen = old.listen;
    out.webrtc_udp = old.webrtc_udp;
    out.public_ips = old.public_ips.clone();
    out.media_threads = old.media_threads;
    out.cors_allowed_origins = old.cors_allowed_origins.clone();
    out.log_level = old.log_level.clone();
    out.hls = old.hls;
    out.switcher = old.switcher.clone();
    out.tls = old.tls.clone();
    out.auto_tls = old.auto_tls.clone();
    out.rtsp = old.rtsp.clone();
    out.sources = old.sources.clone();
    out.mdns = old.mdns.clone();
    out.access = old.access.clone();
    out.limits.header_timeout = old.limits.header_timeout;
    out.limits.body_timeout = old.limits.body_timeout;
    out.limits.max_header_bytes = old.limits.max_header_bytes;
    out.turn.server_relay = old.turn.server_relay;
    out.turn.relay_ca = old.turn.relay_ca.clone();
    if relay_running {
        out.turn.service = old.turn.service.clone();
    }
    if recording_moved(old, new) {
        out.recording = old.recording.clone();
    }
    out
}

/// The cameras to stop, start and restart, by name (removals first, so a name that moves from
/// a test camera to a device is handled as a restart).
fn camera_changes(
    old: &BTreeMap<String, CameraEntry>,
    new: &BTreeMap<String, CameraEntry>,
) -> Vec<Change> {
    let removed = old
        .keys()
        .filter(|name| !new.contains_key(*name))
        .map(|name| Change::CameraRemoved(name.clone()));
    let restarted = old
        .iter()
        .filter(|(name, entry)| new.get(*name).is_some_and(|n| n != *entry))
        .map(|(name, _)| Change::CameraRestarted(name.clone()));
    let added = new
        .keys()
        .filter(|name| !old.contains_key(*name))
        .map(|name| Change::CameraAdded(name.clone()));
    removed.chain(restarted).chain(added).collect()
}

/// Recording turned on or off, or its directory changed.
fn recording_moved(old: &Config, new: &Config) -> bool {
    match (&old.recording, &new.recording) {
        (Some(a), Some(b)) => a.dir != b.dir,
        (None, None) => false,
        _ => true,
    }
}

/// The `[limits]` a reload applies (everything but the listener's HTTP timeouts).
fn live_limits(l: &Limits) -> Limits {
    Limits {
        header_timeout: Default::default(),
        body_timeout: Default::default(),
        max_header_bytes: 0,
        ..l.clone()
    }
}

/// The `[turn]` a reload applies (everything but the server's own relay settings).
fn live_turn(t: &Turn) -> Turn {
    Turn {
        server_relay: Default::default(),
        relay_ca: Vec::new(),
        ..t.clone()
    }
}

#[cfg(test)]
#[path = "changes_tests.rs"]
mod tests;
