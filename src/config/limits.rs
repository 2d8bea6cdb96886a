//! The `[limits]` table: how much one client, one stream and one publisher may take, and how
//! long the HTTP server waits for a slow client.
//!
//! ```toml
//! [limits]
//! sessions_per_ip = 50              # WHIP + WHEP sessions per client address; 0 = no limit
//! unlimited_ips = ["127.0.0.1", "::1"]  # clients the per-address limit does not apply to
//! viewers_per_stream = 0            # WHEP sessions per stream; 0 = only max_sessions applies
//! publisher_bitrate = 4000000       # bits/s publishers are invited to send (REMB)
//! publisher_bitrate_cap = 20000000  # bits/s above which a publisher's packets are dropped; 0 = off
//! max_forward_delay = 0.25          # seconds media may wait in the server before it is shed; 0 = never
//! header_timeout = 10               # seconds a client has to send its request headers
//! body_timeout = 10                 # seconds a client has to send a request body
//! max_header_bytes = 32768          # request line + headers; beyond it 431
//! ```
//!
//! The client address is the TCP peer, or the `X-Forwarded-For` client when the peer is one of
//! `[turn] trusted_proxies` (a tunnel or reverse proxy on this box).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};

/// Keys accepted in the `[limits]` table.
pub const LIMITS_KEYS: &[&str] = &[
    "sessions_per_ip",
    "unlimited_ips",
    "viewers_per_stream",
    "publisher_bitrate",
    "publisher_bitrate_cap",
    "max_forward_delay",
    "header_timeout",
    "body_timeout",
    "max_header_bytes",
];

/// The resolved `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open sessions one client address may hold; beyond it 429. 0: no limit.
    pub sessions_per_ip: usize,
    /// Client addresses the per-address limit does not apply to (the box itself by default).
    pub unlimited_ips: Vec<IpAddr>,
    /// WHEP sessions one stream may have; beyond it 503. 0: no limit of its own.
    pub viewers_per_stream: usize,
    /// The bitrate publishers are invited to send (REMB), bits per second.
    pub publisher_bitrate: u64,
    /// Inbound media above this rate (bits per second, averaged over a second) is dropped and
    /// counted. 0: no cap.
    pub publisher_bitrate_cap: u64,
    /// Publisher media that waited longer than this in the server (it has fallen behind) is
    /// not sent to viewers until a keyframe is on time again. Zero: never shed.
    pub max_forward_delay: Duration,
    /// Time allowed to send a request's line and headers (slow-loris protection).
    pub header_timeout: Duration,
    /// Time allowed to send a request's body.
    pub body_timeout: Duration,
    /// Largest request line + headers accepted.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            sessions_per_ip: 50,
            unlimited_ips: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            viewers_per_stream: 0,
            publisher_bitrate: 4_000_000,
            publisher_bitrate_cap: 20_000_000,
            max_forward_delay: sfu::engine::DEFAULT_MAX_FORWARD_DELAY,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_header_bytes: 32 * 1024,
        }
    }
}

/// `[limits]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLimits {
    sessions_per_ip: Option<u64>,
    unlimited_ips: Option<Vec<String>>,
    viewers_per_stream: Option<u64>,
    publisher_bitrate: Option<u64>,
    publisher_bitrate_cap: Option<u64>,
    max_forward_delay: Option<f64>,
    header_timeout: Option<f64>,
    body_timeout: Option<f64>,
    max_header_bytes: Option<u64>,
}

/// The first key of a `[limits]` table that is not one of [`LIMITS_KEYS`], as `limits.KEY`.
pub(super) fn unknown_key(table: &toml::Table) -> Option<String> {
    let toml::Value::Table(t) = table.get("limits")? else {
        return None;
    };
    t.keys()
        .find(|k| !LIMITS_KEYS.contains(&k.as_str()))
        .map(|k| format!("limits.{k}"))
}

pub(super) fn resolve(file: Option<(&Path, FileLimits)>) -> Result<Limits, ConfigError> {
    let mut limits = Limits::default();
    let Some((path, t)) = file else {
        return Ok(limits);
    };
    let origin = |key: &str| format!("config {}: limits.{key}", path.display());
    let range = |key: &str, v: Option<u64>, min: u64, max: u64| match v {
        Some(v) if !(min..=max).contains(&v) => Err(invalid(
            &origin(key),
            format!("'{v}' is out of range (expected {min}..={max})"),
        )),
        v => Ok(v),
    };
    let seconds = |key: &str, v: Option<f64>| match v {
        Some(v) if !(v.is_finite() && (0.1..=3600.0).contains(&v)) => Err(invalid(
            &origin(key),
            format!("'{v}' is out of range (expected 0.1..=3600 seconds)"),
        )),
        v => Ok(v.map(Duration::from_secs_f64)),
    };
    if let Some(n) = range("sessions_per_ip", t.sessions_per_ip, 0, 1_000_000)? {
        limits.sessions_per_ip = n as usize;
    }
    if let Some(ips) = t.unlimited_ips {
        limits.unlimited_ips = ips
            .iter()
            .map(|s| {
                s.trim()
                    .parse::<IpAddr>()
                    .map_err(|_| invalid(&origin("unlimited_ips"), format!("invalid IP '{s}'")))
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(n) = range("viewers_per_stream", t.viewers_per_stream, 0, 1_000_000)? {
        limits.viewers_per_stream = n as usize;
    }
    if let Some(bps) = range(
        "publisher_bitrate",
        t.publisher_bitrate,
        50_000,
        1_000_000_000,
    )? {
        limits.publisher_bitrate = bps;
    }
    if let Some(bps) = range(
        "publisher_bitrate_cap",
        t.publisher_bitrate_cap,
        0,
        10_000_000_000,
    )? {
        limits.publisher_bitrate_cap = bps;
    }
    if limits.publisher_bitrate_cap != 0 && limits.publisher_bitrate_cap < limits.publisher_bitrate
    {
        return Err(invalid(
            &origin("publisher_bitrate_cap"),
            "must be 0 (off) or at least publisher_bitrate".to_owned(),
        ));
    }
    // 0 turns shedding off; below 20 ms a server that keeps up would shed its keyframes.
    if let Some(v) = t.max_forward_delay {
        if !(v == 0.0 || (v.is_finite() && (0.02..=60.0).contains(&v))) {
            return Err(invalid(
                &origin("max_forward_delay"),
                format!("'{v}' is out of range (expected 0 (never shed) or 0.02..=60 seconds)"),
            ));
        }
        limits.max_forward_delay = Duration::from_secs_f64(v);
    }
    if let Some(d) = seconds("header_timeout", t.header_timeout)? {
        limits.header_timeout = d;
    }
    if let Some(d) = seconds("body_timeout", t.body_timeout)? {
        limits.body_timeout = d;
    }
    // hyper's read buffer cannot be smaller than 8 KiB.
    if let Some(n) = range("max_header_bytes", t.max_header_bytes, 8192, 1 << 20)? {
        limits.max_header_bytes = n as usize;
    }
    Ok(limits)
}

/// The `[limits]`, `[admin]` and `[tls]` tables, taken out of the file before its flat keys.
#[derive(Default)]
pub(super) struct ExtraTables {
    pub(super) limits: Option<FileLimits>,
    pub(super) admin: Option<super::admin::FileAdmin>,
    pub(super) tls: Option<super::tls::FileTls>,
}

impl ExtraTables {
    pub(super) fn take(parsed: &mut super::FileConfig) -> Self {
        Self {
            limits: parsed.limits.take(),
            admin: parsed.admin.take(),
            tls: parsed.tls.take(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Limits, ConfigError> {
        resolve(Some((Path::new("r58.toml"), toml::from_str(text).unwrap())))
    }

    #[test]
    fn values_override_defaults_and_bad_ones_name_their_key() {
        assert_eq!(resolve(None).unwrap(), Limits::default());
        let l = parse(
            "sessions_per_ip = 3\nunlimited_ips = []\nviewers_per_stream = 2\n\
             publisher_bitrate = 1000000\npublisher_bitrate_cap = 0\nheader_timeout = 1.5\n\
             body_timeout = 2\nmax_header_bytes = 9000\nmax_forward_delay = 0.5",
        )
        .unwrap();
        assert_eq!(l.sessions_per_ip, 3);
        assert!(l.unlimited_ips.is_empty());
        assert_eq!(l.viewers_per_stream, 2);
        assert_eq!(l.publisher_bitrate, 1_000_000);
        assert_eq!(l.publisher_bitrate_cap, 0);
        assert_eq!(l.header_timeout, Duration::from_millis(1500));
        assert_eq!(l.body_timeout, Duration::from_secs(2));
        assert_eq!(l.max_header_bytes, 9000);
        assert_eq!(l.max_forward_delay, Duration::from_millis(500));
        assert_eq!(
            parse("max_forward_delay = 0").unwrap().max_forward_delay,
            Duration::ZERO,
            "0 turns shedding off"
        );
        for (text, key) in [
            ("header_timeout = 0.0", "limits.header_timeout"),
            ("body_timeout = nan", "limits.body_timeout"),
            ("max_header_bytes = 100", "limits.max_header_bytes"),
            ("unlimited_ips = [\"x\"]", "limits.unlimited_ips"),
            ("publisher_bitrate = 10", "limits.publisher_bitrate"),
            ("max_forward_delay = 0.001", "limits.max_forward_delay"),
            ("max_forward_delay = -1", "limits.max_forward_delay"),
            ("max_forward_delay = inf", "limits.max_forward_delay"),
            (
                "publisher_bitrate = 5000000\npublisher_bitrate_cap = 4000000",
                "limits.publisher_bitrate_cap",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
