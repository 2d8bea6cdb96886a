//! The `[rtsp]` table: the RTSP server that serves every stream at `rtsp://HOST:PORT/NAME`
//! (docs/rtsp.md).
//!
//! ```toml
//! [rtsp]
//! enabled = true
//! listen = "0.0.0.0:8554"
//! rtp_port = 0            # UDP transport's server port (RTCP: the next one); 0 = any free pair
//! session_timeout = 60    # seconds a UDP session lives without a request
//! ```
//!
//! `--rtsp-listen` / `R58_RTSP_LISTEN` set `listen` too. On the default address a busy port
//! only costs the RTSP server (a warning); an address that was asked for must be bound.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::values::parse_socket_addr;
use super::{ConfigError, invalid};

/// Keys accepted in the `[rtsp]` table.
pub const RTSP_KEYS: &[&str] = &["enabled", "listen", "rtp_port", "session_timeout"];

/// The RTSP address with no configuration.
pub const DEFAULT_RTSP_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8554));

/// The RTSP server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// `listen` was configured (not the default): failing to bind it stops the server.
    pub listen_configured: bool,
    /// The UDP transport's RTP port (RTCP on the next); 0: any free ports.
    pub rtp_port: u16,
    pub session_timeout: Duration,
}

impl Default for RtspConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: DEFAULT_RTSP_LISTEN,
            listen_configured: false,
            rtp_port: 0,
            session_timeout: Duration::from_secs(60),
        }
    }
}

/// `[rtsp]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRtsp {
    enabled: Option<bool>,
    listen: Option<String>,
    rtp_port: Option<u16>,
    session_timeout: Option<u64>,
}

/// The first key of an `[rtsp]` table that is not one of [`RTSP_KEYS`], as `rtsp.KEY`.
pub(super) fn unknown_key(table: &toml::Table) -> Option<String> {
    let toml::Value::Table(t) = table.get("rtsp")? else {
        return None;
    };
    t.keys()
        .find(|k| !RTSP_KEYS.contains(&k.as_str()))
        .map(|k| format!("rtsp.{k}"))
}

/// The flag (or environment) address over the table's values over the defaults.
pub(super) fn resolve(
    flag: Option<(&str, &str)>,
    file: Option<(&Path, FileRtsp)>,
) -> Result<RtspConfig, ConfigError> {
    let mut config = RtspConfig::default();
    if let Some((path, table)) = file {
        let origin = |key: &str| format!("config {}: rtsp.{key}", path.display());
        if let Some(enabled) = table.enabled {
            config.enabled = enabled;
        }
        if let Some(listen) = table.listen {
            config.listen = parse_socket_addr(&origin("listen"), &listen)?;
            config.listen_configured = true;
        }
        if let Some(port) = table.rtp_port {
            if port == u16::MAX {
                return Err(invalid(
                    &origin("rtp_port"),
                    "65535 leaves no port for RTCP".to_owned(),
                ));
            }
            config.rtp_port = port;
        }
        if let Some(secs) = table.session_timeout {
            if !(5..=3600).contains(&secs) {
                return Err(invalid(
                    &origin("session_timeout"),
                    format!("'{secs}' is out of range (expected 5..=3600 seconds)"),
                ));
            }
            config.session_timeout = Duration::from_secs(secs);
        }
    }
    if let Some((origin, value)) = flag {
        config.listen = parse_socket_addr(origin, value)?;
        config.listen_configured = true;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_flag() {
        let path = Path::new("r58.toml");
        let parse = |text: &str| resolve(None, Some((path, toml::from_str(text).unwrap())));
        assert_eq!(resolve(None, None).unwrap(), RtspConfig::default());
        let c = parse(
            "enabled = false\nlisten = \"127.0.0.1:9554\"\nrtp_port = 7000\nsession_timeout = 30",
        )
        .unwrap();
        assert!(!c.enabled && c.listen_configured);
        assert_eq!(c.listen, "127.0.0.1:9554".parse::<SocketAddr>().unwrap());
        assert_eq!(
            (c.rtp_port, c.session_timeout),
            (7000, Duration::from_secs(30))
        );
        for (text, key) in [
            ("listen = \"nope\"", "rtsp.listen"),
            ("session_timeout = 1", "rtsp.session_timeout"),
            ("rtp_port = 65535", "rtsp.rtp_port"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let c = resolve(Some(("--rtsp-listen", "127.0.0.1:1234")), None).unwrap();
        assert_eq!(c.listen.port(), 1234);
        assert!(c.listen_configured);
    }
}
