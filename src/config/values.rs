//! Checking and converting single values (addresses, levels, counts, origins), shared by the
//! flag, environment and file layers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use tracing_subscriber::EnvFilter;

use super::{ConfigError, LOG_LEVELS, invalid};

/// `IP:PORT`, `[IPv6]:PORT`, `localhost:PORT`, or `:PORT` (all IPv4 interfaces).
pub(super) fn parse_socket_addr(origin: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    let v = value.trim();
    if let Ok(addr) = SocketAddr::from_str(v) {
        return Ok(addr);
    }
    let (host, port) = v.rsplit_once(':').unwrap_or((v, ""));
    let ip = match host {
        "" => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        h if h.eq_ignore_ascii_case("localhost") => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        _ => None,
    };
    match (ip, port.parse::<u16>()) {
        (Some(ip), Ok(port)) => Ok(SocketAddr::new(ip, port)),
        _ => Err(invalid(
            origin,
            format!("invalid socket address '{value}' (expected HOST:PORT, e.g. 0.0.0.0:8000)"),
        )),
    }
}

pub(super) fn parse_ips(origin: &str, values: &[String]) -> Result<Vec<IpAddr>, ConfigError> {
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        let v = value.trim();
        let bare = v
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(v);
        let ip = IpAddr::from_str(bare)
            .map_err(|_| invalid(origin, format!("invalid IP address '{value}'")))?;
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(invalid(
                origin,
                format!("'{value}' cannot be advertised as a candidate address"),
            ));
        }
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    Ok(out)
}

pub(super) fn parse_log_level(origin: &str, value: &str) -> Result<String, ConfigError> {
    let v = value.trim();
    let bad = || {
        invalid(
            origin,
            format!(
                "invalid log level '{value}' (expected one of {}, or a filter such as \
                 'info,sfu=debug')",
                LOG_LEVELS.join(", ")
            ),
        )
    };
    // A bare word is a level; a word that is not one is most likely a typo, not a target name.
    let is_directive = v.contains('=') || v.contains(',');
    if v.is_empty() || (!is_directive && !LOG_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(v))) {
        return Err(bad());
    }
    EnvFilter::try_new(v).map_err(|_| bad())?;
    Ok(v.to_owned())
}

pub(super) fn parse_max_sessions_str(origin: &str, value: &str) -> Result<usize, ConfigError> {
    let n = value.trim().parse::<u64>().map_err(|_| {
        invalid(
            origin,
            format!("invalid number '{value}' (expected a whole number >= 1)"),
        )
    })?;
    check_max_sessions(origin, n)
}

pub(super) fn check_max_sessions(origin: &str, n: u64) -> Result<usize, ConfigError> {
    match usize::try_from(n) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(invalid(
            origin,
            format!("'{n}' is out of range (expected a whole number >= 1)"),
        )),
    }
}

/// Most media threads one may ask for: more than the cores of any box r58 runs on.
const MEDIA_THREADS_LIMIT: u64 = 64;

pub(super) fn parse_media_threads_str(origin: &str, value: &str) -> Result<usize, ConfigError> {
    let n = value.trim().parse::<u64>().map_err(|_| {
        invalid(
            origin,
            format!("invalid number '{value}' {}", media_threads_expected()),
        )
    })?;
    check_media_threads(origin, n)
}

pub(super) fn check_media_threads(origin: &str, n: u64) -> Result<usize, ConfigError> {
    if n > MEDIA_THREADS_LIMIT {
        return Err(invalid(
            origin,
            format!("'{n}' is out of range {}", media_threads_expected()),
        ));
    }
    Ok(n as usize)
}

fn media_threads_expected() -> String {
    format!("(expected 0 for one per core, or 1 to {MEDIA_THREADS_LIMIT})")
}

pub(super) fn parse_origins(origin: &str, values: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        let v = value.trim();
        let ok = v == "*"
            || ((v.starts_with("http://") || v.starts_with("https://"))
                && !v.ends_with('/')
                && v.bytes().all(|b| b.is_ascii_graphic()));
        if !ok {
            return Err(invalid(
                origin,
                format!(
                    "invalid origin '{value}' (expected '*' or scheme://host[:port] with no \
                     trailing slash)"
                ),
            ));
        }
        out.push(v.to_owned());
    }
    Ok(out)
}
