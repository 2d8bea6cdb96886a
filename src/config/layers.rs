//! Where settings come from, one layer each: command-line flags ([`Cli`], parsed by clap),
//! `R58_*` environment variables and the TOML file. [`Layer::or`] stacks them by precedence.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::Parser;

use super::values::{
    check_max_sessions, check_media_threads, parse_ips, parse_log_level, parse_max_sessions_str,
    parse_media_threads_str, parse_origins, parse_socket_addr,
};
use super::{Command, ConfigError, FileConfig, non_empty};

/// Command-line flags. Environment variables are read by [`Config::from_args_env_file`], not by
/// clap, so that tests can pass their own environment.
#[derive(Debug, Parser)]
#[command(
    name = "r58",
    version = crate::cli::VERSION,
    about = "r58 media server: WHIP/WHEP WebRTC SFU in one binary.",
    after_help = "Each flag can also be set as the R58_* environment variable shown, or in the \
                  --config TOML file as listen, webrtc_udp, public_ips, log_level, max_sessions, \
                  media_threads, cors_allowed_origins (and [[auth]] tables for bearer tokens, a \
                  [test_cameras] table with count, width, height, fps, bitrate, enabled, [[camera]] \
                  tables for V4L2 cameras (see `r58 cameras`), an [hls] table with part_target, \
                  segment_target, segments_kept, linger, a [switcher] table with program, fallback, \
                  a [turn] table for TURN credentials, see docs/turn.md, [limits], [admin] and \
                  [tls] tables, see docs/security.md, an [rtsp] table and [[source]] tables \
                  for IP cameras, see docs/rtsp.md, a [recording] table, see docs/recording.md, \
                  an [mdns] table and [tls] auto, see docs/lan.md). \
                  Precedence: flag > environment > file > default."
)]
pub(super) struct Cli {
    /// TOML configuration file to read; without it r58 runs on defaults [env: R58_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub(super) config: Option<PathBuf>,

    /// Address for HTTP: the pages, WHIP/WHEP and the API [default: 0.0.0.0:8000] [env: R58_LISTEN]
    #[arg(long, value_name = "HOST:PORT")]
    pub(super) listen: Option<String>,

    /// The single UDP address that carries all WebRTC media [default: 0.0.0.0:8189]
    /// [env: R58_WEBRTC_UDP]
    #[arg(long, value_name = "HOST:PORT")]
    pub(super) webrtc_udp: Option<String>,

    /// Address to put in ICE candidates, repeatable; default: the --webrtc-udp address, or this
    /// host's interface addresses when that is 0.0.0.0 or [::] [env: R58_PUBLIC_IP, comma-separated]
    #[arg(long, value_name = "IP", value_delimiter = ',')]
    pub(super) public_ip: Vec<String>,

    /// Log level (error, warn, info, debug, trace, off) or a tracing filter such as
    /// "info,sfu=debug" [default: info] [env: R58_LOG_LEVEL]
    #[arg(long, value_name = "LEVEL")]
    pub(super) log_level: Option<String>,

    /// Concurrent WHIP + WHEP sessions before new ones get 503 Retry-After [default: 1000]
    /// [env: R58_MAX_SESSIONS]
    #[arg(long, value_name = "N")]
    pub(super) max_sessions: Option<String>,

    /// Threads that fan media out to viewers; 0 = one per core, at most 4 [default: 0]
    /// [env: R58_MEDIA_THREADS]
    #[arg(long, value_name = "N")]
    pub(super) media_threads: Option<String>,

    /// Origin allowed by CORS, repeatable; "*" allows any [default: *]
    /// [env: R58_CORS_ALLOWED_ORIGINS, comma-separated]
    #[arg(long, value_name = "ORIGIN", value_delimiter = ',')]
    pub(super) cors_allowed_origin: Vec<String>,

    /// Synthetic test cameras cam0..camN-1 to run; 0 turns them off [default: 2]
    /// [env: R58_TEST_CAMERAS]
    #[arg(long, value_name = "N")]
    pub(super) test_cameras: Option<String>,

    #[command(subcommand)]
    pub(super) command: Option<Command>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key) [env: R58_TLS_CERT]
    #[arg(long, value_name = "FILE")]
    pub(super) tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert [env: R58_TLS_KEY]
    #[arg(long, value_name = "FILE")]
    pub(super) tls_key: Option<PathBuf>,

    /// Address of the RTSP server (every stream at rtsp://HOST:PORT/NAME) [default: 0.0.0.0:8554]
    /// [env: R58_RTSP_LISTEN]
    #[arg(long, value_name = "HOST:PORT")]
    pub(super) rtsp_listen: Option<String>,
}

/// The values one source (flags, environment, file) sets; `None` means "not set here".
#[derive(Debug, Default)]
pub(super) struct Layer {
    pub(super) listen: Option<SocketAddr>,
    pub(super) webrtc_udp: Option<SocketAddr>,
    pub(super) public_ips: Option<Vec<IpAddr>>,
    pub(super) log_level: Option<String>,
    pub(super) max_sessions: Option<usize>,
    pub(super) media_threads: Option<usize>,
    pub(super) cors_allowed_origins: Option<Vec<String>>,
}

impl Layer {
    /// Fill what `self` leaves unset from `lower`.
    pub(super) fn or(self, lower: Layer) -> Layer {
        Layer {
            listen: self.listen.or(lower.listen),
            webrtc_udp: self.webrtc_udp.or(lower.webrtc_udp),
            public_ips: self.public_ips.or(lower.public_ips),
            log_level: self.log_level.or(lower.log_level),
            max_sessions: self.max_sessions.or(lower.max_sessions),
            media_threads: self.media_threads.or(lower.media_threads),
            cors_allowed_origins: self.cors_allowed_origins.or(lower.cors_allowed_origins),
        }
    }
}

pub(super) fn flag_layer(cli: &Cli) -> Result<Layer, ConfigError> {
    Ok(Layer {
        listen: cli
            .listen
            .as_deref()
            .map(|v| parse_socket_addr("--listen", v))
            .transpose()?,
        webrtc_udp: cli
            .webrtc_udp
            .as_deref()
            .map(|v| parse_socket_addr("--webrtc-udp", v))
            .transpose()?,
        public_ips: non_empty(&cli.public_ip)
            .map(|v| parse_ips("--public-ip", v))
            .transpose()?,
        log_level: cli
            .log_level
            .as_deref()
            .map(|v| parse_log_level("--log-level", v))
            .transpose()?,
        max_sessions: cli
            .max_sessions
            .as_deref()
            .map(|v| parse_max_sessions_str("--max-sessions", v))
            .transpose()?,
        media_threads: cli
            .media_threads
            .as_deref()
            .map(|v| parse_media_threads_str("--media-threads", v))
            .transpose()?,
        cors_allowed_origins: non_empty(&cli.cors_allowed_origin)
            .map(|v| parse_origins("--cors-allowed-origin", v))
            .transpose()?,
    })
}

pub(super) fn env_layer<'a>(
    getenv: &impl Fn(&str) -> Option<&'a str>,
) -> Result<Layer, ConfigError> {
    let list = |name: &str| -> Option<Vec<String>> {
        let items: Vec<String> = getenv(name)?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        (!items.is_empty()).then_some(items)
    };
    Ok(Layer {
        listen: getenv("R58_LISTEN")
            .map(|v| parse_socket_addr("R58_LISTEN", v))
            .transpose()?,
        webrtc_udp: getenv("R58_WEBRTC_UDP")
            .map(|v| parse_socket_addr("R58_WEBRTC_UDP", v))
            .transpose()?,
        public_ips: list("R58_PUBLIC_IP")
            .map(|v| parse_ips("R58_PUBLIC_IP", &v))
            .transpose()?,
        log_level: getenv("R58_LOG_LEVEL")
            .map(|v| parse_log_level("R58_LOG_LEVEL", v))
            .transpose()?,
        max_sessions: getenv("R58_MAX_SESSIONS")
            .map(|v| parse_max_sessions_str("R58_MAX_SESSIONS", v))
            .transpose()?,
        media_threads: getenv("R58_MEDIA_THREADS")
            .map(|v| parse_media_threads_str("R58_MEDIA_THREADS", v))
            .transpose()?,
        cors_allowed_origins: list("R58_CORS_ALLOWED_ORIGINS")
            .map(|v| parse_origins("R58_CORS_ALLOWED_ORIGINS", &v))
            .transpose()?,
    })
}

pub(super) fn file_layer(path: &Path, file: FileConfig) -> Result<Layer, ConfigError> {
    let origin = |key: &str| format!("config {}: {key}", path.display());
    Ok(Layer {
        listen: file
            .listen
            .map(|v| parse_socket_addr(&origin("listen"), &v))
            .transpose()?,
        webrtc_udp: file
            .webrtc_udp
            .map(|v| parse_socket_addr(&origin("webrtc_udp"), &v))
            .transpose()?,
        // An explicit empty list means "work the addresses out", like leaving the key out.
        public_ips: file
            .public_ips
            .filter(|v| !v.is_empty())
            .map(|v| parse_ips(&origin("public_ips"), &v))
            .transpose()?,
        log_level: file
            .log_level
            .map(|v| parse_log_level(&origin("log_level"), &v))
            .transpose()?,
        max_sessions: file
            .max_sessions
            .map(|v| check_max_sessions(&origin("max_sessions"), v))
            .transpose()?,
        media_threads: file
            .media_threads
            .map(|v| check_media_threads(&origin("media_threads"), v))
            .transpose()?,
        cors_allowed_origins: file
            .cors_allowed_origins
            .map(|v| parse_origins(&origin("cors_allowed_origins"), &v))
            .transpose()?,
    })
}
