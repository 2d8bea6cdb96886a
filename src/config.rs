//! Configuration: built-in defaults, overridden by a TOML file, overridden by `R58_*` environment
//! variables, overridden by command-line flags.
//!
//! Every key is checked before the server starts. A bad value or an unknown key is a one-line
//! [`ConfigError`] that names where it came from (`--listen`, `R58_LISTEN`, or
//! `config FILE: listen`); [`ConfigError::exit`] prints it and exits with code 2.
//!
//! The TOML file is flat; see [`FILE_KEYS`] for its keys:
//!
//! ```toml
//! listen = "0.0.0.0:8000"
//! webrtc_udp = "0.0.0.0:8189"
//! public_ips = ["192.168.1.58"]
//! log_level = "info"
//! max_sessions = 1000
//! media_threads = 0      # threads that fan media out; 0 = one per core, at most 4
//! cors_allowed_origins = ["*"]
//!
//! [[auth]]
//! path = "/whip/*"
//! token = "secret"       # or token_file = "whip.token", or token_env = "R58_WHIP_TOKEN"
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

mod access;
mod admin;
mod auth;
mod cameras;
mod changes;
pub mod fuzzing;
mod hls;
mod layers;
mod limits;
mod mdns;
#[cfg(test)]
mod packaged_tests;
mod recording;
mod rtsp;
mod sources;
mod switcher;
#[cfg(test)]
mod tests;
mod tls;
mod turn;
mod values;

pub use access::{ACCESS_KEYS, AccessConfig, Need, SecureCookies, UserAction};
pub use admin::{Admin, AdminOpen};
pub use auth::{AuthRule, matches};
use auth::{FileAuth, resolve_auth};
pub use cameras::{CAMERA_KEYS, CameraConfig, Command, TEST_CAMERAS_KEYS, TestCameras};
pub use changes::{CameraEntry, Change, Changes, camera_entries, changes, in_force};
use layers::{Cli, Layer, env_layer, file_layer, flag_layer};
pub use limits::Limits;
pub use mdns::{MDNS_KEYS, Mdns};
pub use rtsp::{RTSP_KEYS, RtspConfig};
pub use sources::SOURCE_KEYS;
pub use tls::{AutoTls, DEFAULT_HTTPS_LISTEN, DEFAULT_LAN_NAME, TlsFiles};
pub use turn::{ServerRelay, TURN_KEYS, Turn};
use values::{parse_ips, parse_origins};

/// HTTP address served with no configuration.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8000));
/// WebRTC media UDP address with no configuration.
pub const DEFAULT_WEBRTC_UDP: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8189));
/// Log filter with no configuration.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Concurrent WHIP + WHEP sessions accepted before the server answers 503.
pub const DEFAULT_MAX_SESSIONS: usize = 1000;
/// The most media threads `media_threads = 0` picks: the rest of the cores stay for capture,
/// encoding, LL-HLS and HTTP.
pub const AUTO_MEDIA_THREADS_MAX: usize = 4;

/// Keys accepted at the top level of the TOML file.
pub const FILE_KEYS: &[&str] = &[
    "listen",
    "webrtc_udp",
    "public_ips",
    "log_level",
    "max_sessions",
    "media_threads",
    "cors_allowed_origins",
    "auth",
    "test_cameras",
    "hls",
    "switcher",
    "turn",
    "camera",
    "limits",
    "admin",
    "tls",
    "rtsp",
    "source",
    "recording",
    "mdns",
    "access",
];

/// Keys accepted in each `[[auth]]` table.
pub const AUTH_KEYS: &[&str] = &["path", "token", "token_file", "token_env"];

const LOG_LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// The server's whole configuration, after merging every source and checking every value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The TOML file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// HTTP listen address (pages, WHIP/WHEP, API).
    pub listen: SocketAddr,
    /// The one UDP address that carries every WebRTC peer's media.
    pub webrtc_udp: SocketAddr,
    /// Addresses to advertise in ICE candidates, as configured. Empty means "work it out";
    /// use [`Config::candidate_ips`] for the addresses to actually advertise.
    pub public_ips: Vec<IpAddr>,
    /// A level (`info`) or a `tracing` EnvFilter directive (`info,sfu=debug`); already validated.
    pub log_level: String,
    /// Concurrent sessions (WHIP + WHEP) before new ones get 503 with Retry-After. At least 1.
    pub max_sessions: usize,
    /// Threads that protect and send a large fan-out at once; 0: one per core the process may
    /// run on, at most [`AUTO_MEDIA_THREADS_MAX`]. See [`Config::media_threads`].
    pub media_threads: usize,
    /// CORS allowed origins; `"*"` allows any origin.
    pub cors_allowed_origins: Vec<String>,
    /// Bearer-token rules, in file order; the first rule whose pattern matches a path applies.
    pub auth: Vec<AuthRule>,
    /// The synthetic test cameras to run.
    pub test_cameras: TestCameras,
    /// LL-HLS muxer settings (`[hls]`).
    pub hls: sfu::hls::LiveConfig,
    /// The switcher's program stream (`[switcher]`).
    pub switcher: sfu::switch::SwitcherConfig,
    /// ICE servers for clients and the protection of `/api/turn-credentials`.
    pub turn: Turn,
    /// The V4L2 cameras to run (`[[camera]]` tables).
    pub cameras: Vec<CameraConfig>,
    /// A subcommand to run instead of serving.
    pub command: Option<Command>,
    /// Per-client, per-stream and per-publisher limits, HTTP timeouts (`[limits]`).
    pub limits: Limits,
    /// Who may use the control endpoints and `/metrics` (`[admin]`).
    pub admin: Admin,
    /// HTTPS certificate and key (`--tls-cert`, `--tls-key`, `[tls]`); `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// `[tls] auto`: HTTPS beside HTTP with a local CA's certificate, when `tls` is `None`.
    pub auto_tls: AutoTls,
    /// `[mdns]`: `HOSTNAME.local` and the DNS-SD services on the LAN.
    pub mdns: Mdns,
    /// The RTSP server (`[rtsp]`, `--rtsp-listen`).
    pub rtsp: RtspConfig,
    /// IP cameras pulled over RTSP (`[[source]]`).
    pub sources: Vec<sfu::capture::RtspSourceSettings>,
    /// Recordings (`[recording]`); `None`: recording is off.
    pub recording: Option<sfu::record::RecordConfig>,
    /// Who may view and publish from where, and the signed-in users (`[access]`).
    pub access: AccessConfig,
}

/// Why the configuration could not be loaded. `Display` is one line without the `r58: ` prefix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A command-line error from clap, or a request for `--help` / `--version`.
    #[error("{}", .0.to_string().lines().next().unwrap_or("invalid arguments").trim_start_matches("error: "))]
    Cli(#[from] clap::Error),
    /// A value that does not parse or is out of range. `origin` names the flag, variable or key.
    #[error("{origin}: {message}")]
    Invalid {
        /// `--listen`, `R58_LISTEN`, or `config FILE: listen`.
        origin: String,
        /// What is wrong, quoting the value.
        message: String,
    },
    /// The config file could not be read or is not valid TOML.
    #[error("config {}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong (with the line number for syntax errors).
        message: String,
    },
    /// The config file has a key r58 does not know.
    #[error("config {}: unknown key '{key}' (expected one of {})", path.display(), expected.join(", "))]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The unknown key, as `name` or `auth[0].name`.
        key: String,
        /// The keys allowed at that place.
        expected: &'static [&'static str],
    },
}

impl ConfigError {
    /// The process exit code for this error: 2, or 0 for `--help` / `--version`.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Cli(e) => e.exit_code(),
            _ => 2,
        }
    }

    /// Print the error (or the help text) and exit: clap's errors as clap formats them, every
    /// other error as one line `r58: ...` on stderr with exit code 2.
    pub fn exit(self) -> ! {
        match self {
            ConfigError::Cli(e) => e.exit(),
            other => {
                eprintln!("r58: {other}");
                std::process::exit(2)
            }
        }
    }
}

/// The TOML file as written. Unknown keys are rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    webrtc_udp: Option<String>,
    public_ips: Option<Vec<String>>,
    log_level: Option<String>,
    max_sessions: Option<u64>,
    media_threads: Option<u64>,
    cors_allowed_origins: Option<Vec<String>>,
    #[serde(default)]
    auth: Vec<FileAuth>,
    test_cameras: Option<cameras::FileTestCameras>,
    hls: Option<hls::FileHls>,
    switcher: Option<switcher::FileSwitcher>,
    turn: Option<turn::FileTurn>,
    #[serde(default)]
    camera: Vec<cameras::FileCamera>,
    limits: Option<limits::FileLimits>,
    admin: Option<admin::FileAdmin>,
    tls: Option<tls::FileTls>,
    rtsp: Option<rtsp::FileRtsp>,
    #[serde(default)]
    source: Vec<sources::FileSource>,
    recording: Option<recording::FileRecording>,
    mdns: Option<mdns::FileMdns>,
    access: Option<access::FileAccess>,
}

impl Default for Config {
    /// What `r58` with no arguments, no environment and no file runs with.
    fn default() -> Self {
        Config {
            config_file: None,
            listen: DEFAULT_LISTEN,
            webrtc_udp: DEFAULT_WEBRTC_UDP,
            public_ips: Vec::new(),
            log_level: DEFAULT_LOG_LEVEL.to_owned(),
            max_sessions: DEFAULT_MAX_SESSIONS,
            media_threads: 0,
            cors_allowed_origins: vec!["*".to_owned()],
            auth: Vec::new(),
            test_cameras: TestCameras::default(),
            hls: sfu::hls::LiveConfig::default(),
            switcher: sfu::switch::SwitcherConfig::default(),
            turn: Turn::default(),
            cameras: Vec::new(),
            command: None,
            limits: Limits::default(),
            admin: Admin::default(),
            tls: None,
            auto_tls: AutoTls::default(),
            mdns: Mdns::default(),
            rtsp: RtspConfig::default(),
            sources: Vec::new(),
            recording: None,
            access: AccessConfig::default(),
        }
    }
}

impl Config {
    /// The media threads to run: `media_threads`, or when that is 0 one per core this process
    /// may run on (its CPU affinity, so `taskset -c 1` means one), at most
    /// [`AUTO_MEDIA_THREADS_MAX`].
    pub fn media_threads(&self) -> usize {
        match self.media_threads {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(AUTO_MEDIA_THREADS_MAX),
            n => n,
        }
    }

    /// Load from this process's arguments and environment (and the file they name).
    pub fn load() -> Result<Config, ConfigError> {
        let args = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
        let env: HashMap<String, String> = std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        Config::from_args_env_file(args, &env)
    }

    /// [`Config::load`], or print the error / help and exit (code 2 on error, 0 for `--help`).
    pub fn load_or_exit() -> Config {
        Config::load().unwrap_or_else(|e| e.exit())
    }

    /// Load from explicit arguments (the first one is the program name, as in
    /// `std::env::args()`) and environment; reads the config file named by `--config` or
    /// `R58_CONFIG`. Environment variables that are set but empty count as unset.
    pub fn from_args_env_file(
        args: impl IntoIterator<Item = String>,
        env: &HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let cli = Cli::try_parse_from(args)?;
        let getenv = |name: &str| env.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let config_file = match &cli.command {
            // `r58 check-config FILE` checks FILE whatever --config says.
            Some(Command::CheckConfig { file }) => Some(file.clone()),
            _ => cli
                .config
                .clone()
                .or_else(|| getenv("R58_CONFIG").map(PathBuf::from)),
        };
        let text = match &config_file {
            Some(path) => Some(
                std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.clone(),
                    message: format!("cannot read: {e}"),
                })?,
            ),
            None => None,
        };
        Config::resolve(cli, env, config_file.zip(text))
    }

    /// Everything after reading the config file (`file`: its path and text), so that the fuzz
    /// entry ([`fuzzing::config_file`]) can feed text without a file.
    fn resolve(
        cli: Cli,
        env: &HashMap<String, String>,
        file: Option<(PathBuf, String)>,
    ) -> Result<Config, ConfigError> {
        let getenv = |name: &str| env.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let (config_file, text) = file.unzip();
        let flags = flag_layer(&cli)?;
        let envs = env_layer(&getenv)?;
        let mut extra = limits::ExtraTables::default();
        let mut rtsp_table = None;
        let mut source_tables = Vec::new();
        let mut recording_table = None;
        let mut mdns_table = None;
        let mut access_table = None;
        let (file, auth, cams, hls_table, switcher_table, turn) = match &config_file {
            Some(path) => {
                let mut parsed = parse_file(path, text.as_deref().unwrap_or_default())?;
                let cams =
                    cameras::FileTables::take(path, &mut parsed.test_cameras, &mut parsed.camera);
                let hls_table = parsed.hls.take().map(|h| (path.as_path(), h));
                let switcher_table = parsed.switcher.take().map(|t| (path.as_path(), t));
                let turn = parsed.turn.take().map(|t| (path.as_path(), t));
                rtsp_table = parsed.rtsp.take().map(|t| (path.as_path(), t));
                source_tables = std::mem::take(&mut parsed.source);
                recording_table = parsed.recording.take().map(|t| (path.as_path(), t));
                mdns_table = parsed.mdns.take().map(|t| (path.as_path(), t));
                access_table = parsed.access.take().map(|t| (path.as_path(), t));
                extra = limits::ExtraTables::take(&mut parsed);
                let auth = resolve_auth(path, parsed.auth, env)?;
                (
                    file_layer(
                        path,
                        FileConfig {
                            auth: Vec::new(),
                            ..parsed
                        },
                    )?,
                    auth,
                    cams,
                    hls_table,
                    switcher_table,
                    turn,
                )
            }
            None => (Layer::default(), Vec::new(), None, None, None, None),
        };
        let turn = turn::resolve(turn, env)?;
        let (test_cameras, cameras) = cameras::resolve(
            cli.test_cameras.as_deref(),
            getenv("R58_TEST_CAMERAS"),
            cams,
        )?;

        let hls = hls::resolve(hls_table)?;
        let switcher = switcher::resolve(switcher_table)?;
        let recording = recording::resolve(recording_table)?;
        let access = access::resolve(access_table)?;
        let limits = limits::resolve(config_file.as_deref().zip(extra.limits))?;
        let admin = admin::resolve(
            config_file.as_deref().zip(extra.admin),
            getenv(admin::ENV_ADMIN_TOKEN),
        )?;
        let tls_table = config_file.as_deref().zip(extra.tls.as_ref());
        let tls = tls::resolve(
            (cli.tls_cert.as_deref(), cli.tls_key.as_deref()),
            (getenv("R58_TLS_CERT"), getenv("R58_TLS_KEY")),
            tls_table,
        )?;
        let mdns = mdns::resolve(mdns_table)?;
        let auto_tls = tls::resolve_auto(tls_table, getenv("STATE_DIRECTORY"), &mdns.local_name())?;
        let rtsp_flag = match (cli.rtsp_listen.as_deref(), getenv("R58_RTSP_LISTEN")) {
            (Some(v), _) => Some(("--rtsp-listen", v)),
            (None, Some(v)) => Some(("R58_RTSP_LISTEN", v)),
            (None, None) => None,
        };
        let rtsp = rtsp::resolve(rtsp_flag, rtsp_table)?;
        let sources = sources::resolve(config_file.as_deref(), source_tables)?;
        let merged = flags.or(envs).or(file);
        let defaults = Config::default();
        Ok(Config {
            config_file,
            listen: merged.listen.unwrap_or(defaults.listen),
            webrtc_udp: merged.webrtc_udp.unwrap_or(defaults.webrtc_udp),
            public_ips: merged.public_ips.unwrap_or(defaults.public_ips),
            log_level: merged.log_level.unwrap_or(defaults.log_level),
            max_sessions: merged.max_sessions.unwrap_or(defaults.max_sessions),
            media_threads: merged.media_threads.unwrap_or(defaults.media_threads),
            cors_allowed_origins: merged
                .cors_allowed_origins
                .unwrap_or(defaults.cors_allowed_origins),
            auth,
            test_cameras,
            hls,
            switcher,
            turn,
            cameras,
            command: cli.command,
            limits,
            admin,
            recording,
            access,
            tls,
            auto_tls,
            mdns,
            rtsp,
            sources,
        })
    }

    /// The addresses to advertise as ICE host candidates: the configured public IPs if any;
    /// else the bound UDP address when it is specific; else (bound to 0.0.0.0 or [::]) this
    /// host's interface addresses, non-loopback first and 127.0.0.1 last (IPv6 ones only when
    /// bound to [::]). Never empty.
    pub fn candidate_ips(&self) -> Vec<IpAddr> {
        if !self.public_ips.is_empty() {
            return self.public_ips.clone();
        }
        let bind = self.webrtc_udp.ip();
        if !bind.is_unspecified() {
            return vec![bind];
        }
        let found: Vec<IpAddr> = if_addrs::get_if_addrs()
            .unwrap_or_default()
            .into_iter()
            .filter(|i| {
                !matches!(
                    i.oper_status,
                    if_addrs::IfOperStatus::Down
                        | if_addrs::IfOperStatus::LowerLayerDown
                        | if_addrs::IfOperStatus::NotPresent
                )
            })
            .map(|i| i.ip())
            .collect();
        interface_candidates(bind, &found)
    }

    /// The token required for a request to `path`: that of the first matching `[[auth]]` rule.
    /// `None` means the path is open.
    pub fn required_token(&self, path: &str) -> Option<&str> {
        self.auth
            .iter()
            .find(|rule| matches(&rule.path, path))
            .map(|rule| rule.token.as_str())
    }

    /// The `tracing` filter for [`Config::log_level`].
    pub fn log_filter(&self) -> EnvFilter {
        EnvFilter::try_new(&self.log_level).unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_LEVEL))
    }
}

/// Order interface addresses into ICE candidate addresses for a wildcard bind address.
fn interface_candidates(bind: IpAddr, found: &[IpAddr]) -> Vec<IpAddr> {
    let want_v6 = bind.is_ipv6();
    let usable = |ip: &IpAddr| match ip {
        IpAddr::V4(a) => {
            !a.is_unspecified() && !a.is_link_local() && !a.is_broadcast() && !a.is_multicast()
        }
        IpAddr::V6(a) => {
            want_v6
                && !a.is_unspecified()
                && !a.is_unicast_link_local()
                && !a.is_multicast()
                && a.to_ipv4_mapped().is_none()
        }
    };
    let mut out: Vec<IpAddr> = Vec::new();
    let mut push = |ip: IpAddr| {
        if !out.contains(&ip) {
            out.push(ip);
        }
    };
    // Non-loopback IPv4, then non-loopback IPv6, then loopback.
    for ip in found.iter().filter(|ip| ip.is_ipv4() && !ip.is_loopback()) {
        if usable(ip) {
            push(*ip);
        }
    }
    for ip in found.iter().filter(|ip| ip.is_ipv6() && !ip.is_loopback()) {
        if usable(ip) {
            push(*ip);
        }
    }
    push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    if want_v6 && found.contains(&IpAddr::V6(Ipv6Addr::LOCALHOST)) {
        push(IpAddr::V6(Ipv6Addr::LOCALHOST));
    }
    out
}

/// Parse the TOML text: syntax errors with their line, unknown keys by name, wrong types with
/// the key's path.
fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| bytecount_newlines(&text.as_bytes()[..s.start.min(text.len())]) + 1);
        ConfigError::File {
            path: path.to_owned(),
            message: match line {
                Some(line) => format!("line {line}: {}", e.message().trim_end()),
                None => e.message().trim_end().to_owned(),
            },
        }
    })?;

    let unknown = |key: String, expected| ConfigError::UnknownKey {
        path: path.to_owned(),
        key,
        expected,
    };
    if let Some(key) = table.keys().find(|k| !FILE_KEYS.contains(&k.as_str())) {
        return Err(unknown(key.clone(), FILE_KEYS));
    }
    if let Some(toml::Value::Array(rules)) = table.get("auth") {
        for (i, rule) in rules.iter().enumerate() {
            if let toml::Value::Table(rule) = rule
                && let Some(key) = rule.keys().find(|k| !AUTH_KEYS.contains(&k.as_str()))
            {
                return Err(unknown(format!("auth[{i}].{key}"), AUTH_KEYS));
            }
        }
    }
    if let Some((key, expected)) = cameras::unknown_key(&table) {
        return Err(unknown(key, expected));
    }
    if let Some(key) = hls::unknown_key(&table) {
        return Err(unknown(key, hls::HLS_KEYS));
    }
    if let Some(key) = access::unknown_key(&table) {
        return Err(unknown(key, ACCESS_KEYS));
    }
    if let Some(key) = recording::unknown_key(&table) {
        return Err(unknown(key, recording::RECORDING_KEYS));
    }
    if let Some(key) = switcher::unknown_key(&table) {
        return Err(unknown(key, switcher::SWITCHER_KEYS));
    }
    if let Some(key) = turn::unknown_key(&table) {
        return Err(unknown(key, TURN_KEYS));
    }
    if let Some(key) = limits::unknown_key(&table) {
        return Err(unknown(key, limits::LIMITS_KEYS));
    }
    if let Some(key) = admin::unknown_key(&table) {
        return Err(unknown(key, admin::ADMIN_KEYS));
    }
    if let Some(key) = tls::unknown_key(&table) {
        return Err(unknown(key, tls::TLS_KEYS));
    }
    if let Some(key) = rtsp::unknown_key(&table) {
        return Err(unknown(key, RTSP_KEYS));
    }
    if let Some(key) = sources::unknown_key(&table) {
        return Err(unknown(key, SOURCE_KEYS));
    }
    if let Some(key) = mdns::unknown_key(&table) {
        return Err(unknown(key, MDNS_KEYS));
    }

    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        let message = e.into_inner().message().trim_end().to_owned();
        ConfigError::Invalid {
            origin: format!("config {}: {key}", path.display()),
            message,
        }
    })
}

fn bytecount_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

fn non_empty(v: &[String]) -> Option<&[String]> {
    (!v.is_empty()).then_some(v)
}

fn invalid(origin: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_owned(),
        message,
    }
}
