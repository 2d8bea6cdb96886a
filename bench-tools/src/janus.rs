//! The peer SFU: Janus (Debian's `janus` package) with only its streaming plugin and HTTP
//! transport, started from a configuration written here, fed plain RTP on a mountpoint.
//!
//! Configuration (everything else at Janus' defaults): full ICE (Janus' default), candidates only on
//! `--janus-ip` (Janus skips loopback interfaces), one event loop (`event_loops = 1`: the server has one core), no session timeout, log
//! level 3 (warnings). Mountpoint 1 is `type = "rtp"`, H.264 packetization-mode 1, payload type
//! 102, video only, on a loopback port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::{self, HttpError};
use crate::server::{Placement, ServerError, ServerProcess, free_port, pinned};

pub const MOUNTPOINT: u64 = 1;
const LIB: &str = "/usr/lib/x86_64-linux-gnu/janus";

/// The installed Janus version (the first line `janus --help` prints), for the report.
pub fn version(bin: &Path) -> String {
    std::process::Command::new(bin)
        .arg("--help")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Writes the configuration folder and starts Janus; `udp` of the result is the mountpoint's
/// RTP port.
pub fn start(bin: &Path, placement: &Placement, dir: &Path) -> Result<ServerProcess, ServerError> {
    let ice_ip = placement.ip;
    let io = |source| ServerError::Spawn {
        what: format!("janus config in {}", dir.display()),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let http_port = free_port()?;
    let rtp_port = free_port()?;
    let plugins = [
        "audiobridge",
        "duktape",
        "echotest",
        "lua",
        "nosip",
        "recordplay",
        "sip",
        "textroom",
        "videocall",
        "videoroom",
        "voicemail",
    ]
    .map(|p| format!("libjanus_{p}.so"))
    .join(",");
    let files = [
        (
            "janus.jcfg",
            format!(
                "general: {{\n configs_folder = \"{dir}\"\n plugins_folder = \"{LIB}/plugins\"\n \
                 transports_folder = \"{LIB}/transports\"\n events_folder = \"{LIB}/events\"\n \
                 loggers_folder = \"{LIB}/loggers\"\n debug_level = 3\n session_timeout = 0\n \
                 event_loops = 1\n}}\ncertificates: {{}}\nmedia: {{}}\n\
                 nat: {{\n ice_enforce_list = \"{ice_ip}\"\n ignore_mdns = true\n}}\n\
                 plugins: {{\n disable = \"{plugins}\"\n}}\n\
                 transports: {{\n disable = \"libjanus_websockets.so,libjanus_pfunix.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_rabbitmq.so\"\n}}\n\
                 loggers: {{\n disable = \"libjanus_jsonlog.so\"\n}}\nevents: {{\n broadcast = false\n}}\n",
                dir = dir.display()
            ),
        ),
        (
            "janus.transport.http.jcfg",
            format!(
                "general: {{\n base_path = \"/janus\"\n http = true\n port = {http_port}\n \
                 ip = \"{ice_ip}\"\n https = false\n}}\nadmin: {{\n admin_http = false\n admin_https = false\n}}\n"
            ),
        ),
        (
            "janus.plugin.streaming.jcfg",
            format!(
                "general: {{}}\nbench: {{\n type = \"rtp\"\n id = {MOUNTPOINT}\n description = \"bench\"\n \
                 audio = false\n video = true\n videoport = {rtp_port}\n videoiface = \"{ice_ip}\"\n \
                 videopt = 102\n videocodec = \"h264\"\n \
                 videofmtp = \"profile-level-id=42e01f;packetization-mode=1\"\n}}\n"
            ),
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).map_err(io)?;
    }
    let log = std::fs::File::create(dir.join("janus.log")).map_err(io)?;
    let mut cmd = pinned(placement, bin);
    cmd.arg("-F")
        .arg(dir)
        .arg("-C")
        .arg(dir.join("janus.jcfg"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io)?)
        .stderr(log);
    let child = cmd.spawn().map_err(|source| ServerError::Spawn {
        what: bin.display().to_string(),
        source,
    })?;
    let mut server = ServerProcess::new(
        child,
        SocketAddr::new(ice_ip, http_port),
        SocketAddr::new(ice_ip, rtp_port),
    );
    crate::server::wait_for_http(&mut server, "janus", "/janus/info")?;
    Ok(server)
}

#[derive(Debug, thiserror::Error)]
pub enum JanusError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("Janus said: {0}")]
    Refused(String),
}

fn call(http: SocketAddr, path: &str, body: Value) -> Result<Value, JanusError> {
    let response = http::request(
        http,
        "POST",
        path,
        Some("application/json"),
        &body.to_string(),
    )?;
    let value: Value = serde_json::from_str(&response.body)
        .map_err(|e| JanusError::Refused(format!("not JSON ({e}): {}", response.body)))?;
    match value["janus"].as_str() {
        Some("success" | "ack" | "event") => Ok(value),
        _ => Err(JanusError::Refused(value.to_string())),
    }
}

fn transaction() -> String {
    format!("t{}", crate::stamp::wall_ns())
}

/// A viewer handle on the mountpoint whose offer has arrived.
pub struct Watch {
    pub path: String,
    pub offer: String,
}

/// Creates a session, attaches the streaming plugin, asks to watch, and long-polls for the
/// plugin's JSEP offer.
pub fn watch(http: SocketAddr) -> Result<Watch, JanusError> {
    let session = call(
        http,
        "/janus",
        json!({"janus": "create", "transaction": transaction()}),
    )?["data"]["id"]
        .as_u64()
        .ok_or_else(|| JanusError::Refused("no session id".into()))?;
    let handle = call(
        http,
        &format!("/janus/{session}"),
        json!({"janus": "attach", "plugin": "janus.plugin.streaming", "transaction": transaction()}),
    )?["data"]["id"]
        .as_u64()
        .ok_or_else(|| JanusError::Refused("no handle id".into()))?;
    let path = format!("/janus/{session}/{handle}");
    call(
        http,
        &path,
        json!({"janus": "message", "transaction": transaction(),
               "body": {"request": "watch", "id": MOUNTPOINT}}),
    )?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let response = http::request(http, "GET", &format!("/janus/{session}?maxev=1"), None, "")?;
        let value: Value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
        if let Some(sdp) = value["jsep"]["sdp"].as_str() {
            return Ok(Watch {
                path,
                offer: sdp.to_owned(),
            });
        }
        if value["plugindata"]["data"]["error"].is_string() {
            return Err(JanusError::Refused(value.to_string()));
        }
    }
    Err(JanusError::Refused("no offer within 20 s".into()))
}

/// Sends our answer and starts the stream.
pub fn start_watching(http: SocketAddr, watch: &Watch, answer: &str) -> Result<(), JanusError> {
    call(
        http,
        &watch.path,
        json!({"janus": "message", "transaction": transaction(),
               "body": {"request": "start"},
               "jsep": {"type": "answer", "sdp": answer}}),
    )?;
    // Our answer carries its one candidate; say there are no more, or Janus waits for trickle.
    call(
        http,
        &watch.path,
        json!({"janus": "trickle", "transaction": transaction(),
               "candidate": {"completed": true}}),
    )?;
    Ok(())
}

/// A fresh folder for one Janus run.
pub fn config_dir(base: &Path, step: usize) -> PathBuf {
    base.join(format!("janus-{step}"))
}
