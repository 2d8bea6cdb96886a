//! The `[turn]` table: which ICE servers clients get (`/api/turn-credentials`, and `Link`
//! headers on WHIP/WHEP answers), and how the credentials endpoint is protected.
//!
//! ```toml
//! [turn]
//! provider = "coturn"            # "none" (default), "static", "coturn", "cloudflare"
//! stun_urls = ["stun:turn.example.org:3478"]
//! urls = ["turn:turn.example.org:3478?transport=udp", "turn:turn.example.org:3478?transport=tcp"]
//! secret_file = "turn.secret"    # or secret = "...", or the R58_TURN_SECRET variable
//! ttl_secs = 86400
//!
//! # cloudflare: key_id = "...", api_token_file = "cf.token" (or api_token, or R58_TURN_API_TOKEN)
//! # static:     urls, username, credential
//!
//! allowed_origins = ["https://recorder.example.org"]   # [] = same host only, ["*"] = any
//! token_file = "turn-endpoint.token"                  # optional; or token, or R58_TURN_TOKEN
//! rate_limit_per_minute = 30     # per client IP (IPv6: per /64); 0 = no limit
//! rate_limit_burst = 10
//! trusted_proxies = ["127.0.0.1", "::1"]   # X-Forwarded-For is believed from these only
//! link_headers = true            # Link rel="ice-server" on WHIP/WHEP 201 answers
//! server_relay = "auto"          # r58's own TURN allocation: "auto", "always", "never"
//! relay_ca_file = "turn-ca.pem"  # CA trusted for turns: besides the public roots (optional)
//! ```
//!
//! Secrets (shared secret, API token, endpoint token) come from the environment first, then a
//! file, then the inline value; error messages never quote them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sfu::turn::cloudflare::is_ice_url;
use sfu::turn::{CLOUDFLARE_API_BASE, Provider, Secret, TurnConfig};

use super::{ConfigError, invalid};

#[cfg(test)]
#[path = "turn_tests.rs"]
mod tests;

/// Keys accepted in the `[turn]` table.
pub const TURN_KEYS: &[&str] = &[
    "provider",
    "stun_urls",
    "urls",
    "username",
    "credential",
    "secret",
    "secret_file",
    "ttl_secs",
    "key_id",
    "api_token",
    "api_token_file",
    "api_base",
    "api_timeout_secs",
    "allowed_origins",
    "token",
    "token_file",
    "rate_limit_per_minute",
    "rate_limit_burst",
    "trusted_proxies",
    "link_headers",
    "server_relay",
    "relay_ca_file",
];

/// Environment variable holding coturn's shared secret.
pub const ENV_SECRET: &str = "R58_TURN_SECRET";
/// Environment variable holding Cloudflare's API token.
pub const ENV_API_TOKEN: &str = "R58_TURN_API_TOKEN";
/// Environment variable holding the credentials endpoint's bearer token.
pub const ENV_TOKEN: &str = "R58_TURN_TOKEN";

const DEFAULT_TTL_SECS: u64 = 86_400;
/// Cloudflare refuses longer lifetimes.
const CLOUDFLARE_MAX_TTL_SECS: u64 = 172_800;
const COTURN_MAX_TTL_SECS: u64 = 7 * 86_400;

/// The resolved `[turn]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// Provider, STUN URLs and API timeout, for [`sfu::turn::TurnService`].
    pub service: TurnConfig,
    /// Origins allowed to call `/api/turn-credentials` from a browser. Empty: only pages served
    /// by r58 itself (the `Origin`'s host equals the request's `Host`); `"*"`: any.
    pub allowed_origins: Vec<String>,
    /// Bearer token the endpoint requires, if any.
    pub token: Option<Secret>,
    /// Requests per minute per client; 0 turns the limit off.
    pub rate_limit_per_minute: u32,
    /// Requests a client may make at once before the per-minute rate applies.
    pub rate_limit_burst: u32,
    /// Peers whose `X-Forwarded-For` names the real client (a tunnel or reverse proxy here).
    pub trusted_proxies: Vec<IpAddr>,
    /// Whether WHIP/WHEP 201 answers carry `Link: rel="ice-server"` headers.
    pub link_headers: bool,
    /// Whether r58 holds a TURN allocation of its own (a relay candidate in its answers).
    pub server_relay: ServerRelay,
    /// CA certificates (DER) r58 trusts for its own `turns:` connection besides the public
    /// roots (a self-hosted coturn with a private CA).
    pub relay_ca: Vec<Vec<u8>>,
}

/// `server_relay`: when r58 allocates a relay on the provider's TURN server for its own side
/// of the sessions, so clients reach a box behind NAT with nothing forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerRelay {
    /// When a TURN provider is configured and none of the box's candidate addresses is
    /// public (it is behind NAT): the usual appliance on a venue network.
    #[default]
    Auto,
    /// Whenever a TURN provider is configured, public addresses or not (double NAT, a
    /// firewall that drops unsolicited UDP).
    Always,
    /// Never: host candidates only, as before.
    Never,
}

impl Default for Turn {
    fn default() -> Self {
        Self {
            service: TurnConfig::default(),
            allowed_origins: Vec::new(),
            token: None,
            rate_limit_per_minute: 30,
            rate_limit_burst: 10,
            trusted_proxies: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            link_headers: true,
            server_relay: ServerRelay::Auto,
            relay_ca: Vec::new(),
        }
    }
}

/// `[turn]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTurn {
    provider: Option<String>,
    stun_urls: Option<Vec<String>>,
    urls: Option<Vec<String>>,
    username: Option<String>,
    credential: Option<String>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    ttl_secs: Option<u64>,
    key_id: Option<String>,
    api_token: Option<String>,
    api_token_file: Option<PathBuf>,
    api_base: Option<String>,
    api_timeout_secs: Option<u64>,
    allowed_origins: Option<Vec<String>>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    rate_limit_per_minute: Option<u64>,
    rate_limit_burst: Option<u64>,
    trusted_proxies: Option<Vec<String>>,
    link_headers: Option<bool>,
    server_relay: Option<String>,
    relay_ca_file: Option<PathBuf>,
}

/// The first key of a `[turn]` table that is not one of [`TURN_KEYS`], as `turn.KEY`.
pub(super) fn unknown_key(table: &toml::Table) -> Option<String> {
    let toml::Value::Table(turn) = table.get("turn")? else {
        return None;
    };
    turn.keys()
        .find(|k| !TURN_KEYS.contains(&k.as_str()))
        .map(|k| format!("turn.{k}"))
}

/// Checks the `[turn]` table (if any) and resolves its secrets from the environment, files
/// (relative to the config file's folder) or inline values, in that order.
pub(super) fn resolve(
    file: Option<(&Path, FileTurn)>,
    env: &HashMap<String, String>,
) -> Result<Turn, ConfigError> {
    let mut turn = Turn::default();
    let getenv = |name: &str| {
        env.get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let Some((path, t)) = file else {
        if let Some(token) = getenv(ENV_TOKEN) {
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    ENV_TOKEN,
                    "must be printable ASCII without spaces".to_owned(),
                ));
            }
            turn.token = Some(Secret::new(token));
        }
        return Ok(turn);
    };
    let origin = |key: &str| format!("config {}: turn.{key}", path.display());
    let err = |key: &str, message: String| invalid(&origin(key), message);

    let provider = t.provider.as_deref().unwrap_or("none");
    // Keys that only mean something to some providers: a misplaced one is most likely a typo
    // in `provider`, so say so instead of ignoring it.
    let used_by: &[(&str, bool, &[&str])] = &[
        ("urls", t.urls.is_some(), &["static", "coturn"]),
        ("username", t.username.is_some(), &["static", "coturn"]),
        ("credential", t.credential.is_some(), &["static"]),
        ("secret", t.secret.is_some(), &["coturn"]),
        ("secret_file", t.secret_file.is_some(), &["coturn"]),
        ("ttl_secs", t.ttl_secs.is_some(), &["coturn", "cloudflare"]),
        ("key_id", t.key_id.is_some(), &["cloudflare"]),
        ("api_token", t.api_token.is_some(), &["cloudflare"]),
        (
            "api_token_file",
            t.api_token_file.is_some(),
            &["cloudflare"],
        ),
        ("api_base", t.api_base.is_some(), &["cloudflare"]),
        (
            "api_timeout_secs",
            t.api_timeout_secs.is_some(),
            &["cloudflare"],
        ),
    ];
    if !["none", "static", "coturn", "cloudflare"].contains(&provider) {
        return Err(err(
            "provider",
            format!("unknown provider '{provider}' (expected none, static, coturn or cloudflare)"),
        ));
    }
    for (key, set, providers) in used_by {
        if *set && !providers.contains(&provider) {
            return Err(err(
                key,
                format!(
                    "is not used with provider = \"{provider}\" (only with {})",
                    providers.join(" or ")
                ),
            ));
        }
    }

    if let Some(stun) = t.stun_urls {
        for url in &stun {
            let lower = url.to_ascii_lowercase();
            if !is_ice_url(url) || !(lower.starts_with("stun:") || lower.starts_with("stuns:")) {
                return Err(err(
                    "stun_urls",
                    format!("'{url}' is not a stun: or stuns: URL"),
                ));
            }
        }
        turn.service.stun_urls = stun;
    }
    let ttl = |max: u64| -> Result<Duration, ConfigError> {
        let secs = t.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
        if !(60..=max).contains(&secs) {
            return Err(err(
                "ttl_secs",
                format!("'{secs}' is out of range (expected 60..={max})"),
            ));
        }
        Ok(Duration::from_secs(secs))
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let read_secret = |key: &str,
                       env_name: &str,
                       inline: Option<String>,
                       file: Option<PathBuf>|
     -> Result<Option<Secret>, ConfigError> {
        if inline.is_some() && file.is_some() {
            return Err(err(
                key,
                format!("set either {key} or {key}_file, not both"),
            ));
        }
        let (value, from) = if let Some(v) = getenv(env_name) {
            (v, env_name.to_owned())
        } else if let Some(file) = file {
            let full = if file.is_relative() {
                dir.join(&file)
            } else {
                file
            };
            let text = std::fs::read_to_string(&full).map_err(|e| {
                err(
                    &format!("{key}_file"),
                    format!("cannot read '{}': {e}", full.display()),
                )
            })?;
            (text.trim().to_owned(), origin(&format!("{key}_file")))
        } else if let Some(v) = inline {
            (v.trim().to_owned(), origin(key))
        } else {
            return Ok(None);
        };
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                &from,
                "must be non-empty printable ASCII without spaces".to_owned(),
            ));
        }
        Ok(Some(Secret::new(value)))
    };
    let turn_urls = |required: bool| -> Result<Vec<String>, ConfigError> {
        let urls = t.urls.clone().unwrap_or_default();
        if required && urls.is_empty() {
            return Err(err(
                "urls",
                format!("provider = \"{provider}\" needs at least one turn: or turns: URL"),
            ));
        }
        if let Some(bad) = urls.iter().find(|u| !is_ice_url(u)) {
            return Err(err(
                "urls",
                format!("'{bad}' is not a stun:, stuns:, turn: or turns: URL"),
            ));
        }
        Ok(urls)
    };
    let is_turn = |u: &String| {
        let l = u.to_ascii_lowercase();
        l.starts_with("turn:") || l.starts_with("turns:")
    };

    turn.service.provider = match provider {
        "none" => Provider::None,
        "static" => {
            let urls = turn_urls(true)?;
            let credential = t.credential.clone().map(Secret::new);
            if t.username.is_some() != credential.is_some() {
                return Err(err(
                    "credential",
                    "set both username and credential, or neither".to_owned(),
                ));
            }
            if urls.iter().any(is_turn) && credential.is_none() {
                return Err(err(
                    "username",
                    "turn: URLs need a username and credential".to_owned(),
                ));
            }
            Provider::Static {
                urls,
                username: t.username.clone(),
                credential,
            }
        }
        "coturn" => {
            let urls = turn_urls(true)?;
            if let Some(bad) = urls.iter().find(|u| !is_turn(u)) {
                return Err(err(
                    "urls",
                    format!(
                        "'{bad}': coturn credentials go with turn: or turns: URLs (put STUN in stun_urls)"
                    ),
                ));
            }
            let secret = read_secret("secret", ENV_SECRET, t.secret.clone(), t.secret_file.clone())?
                .ok_or_else(|| {
                    err(
                        "secret",
                        format!("provider = \"coturn\" needs the shared secret: secret_file, secret, or {ENV_SECRET}"),
                    )
                })?;
            let user = t.username.clone().unwrap_or_else(|| "r58".to_owned());
            if user.is_empty() || !user.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(err(
                    "username",
                    format!("'{user}' must be non-empty printable ASCII without spaces"),
                ));
            }
            Provider::Coturn {
                urls,
                secret,
                user,
                ttl: ttl(COTURN_MAX_TTL_SECS)?,
            }
        }
        _ => {
            let key_id = t.key_id.clone().unwrap_or_default();
            let key_ok = (1..=128).contains(&key_id.len())
                && key_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !key_ok {
                return Err(err(
                    "key_id",
                    "provider = \"cloudflare\" needs key_id: the TURN key's ID (letters, digits, '-', '_')".to_owned(),
                ));
            }
            let api_token = read_secret(
                "api_token",
                ENV_API_TOKEN,
                t.api_token.clone(),
                t.api_token_file.clone(),
            )?
            .ok_or_else(|| {
                err(
                    "api_token",
                    format!("provider = \"cloudflare\" needs the TURN key's API token: api_token_file, api_token, or {ENV_API_TOKEN}"),
                )
            })?;
            let api_base = t
                .api_base
                .clone()
                .unwrap_or_else(|| CLOUDFLARE_API_BASE.to_owned());
            let api_base = api_base.trim_end_matches('/').to_owned();
            let base_ok = (api_base.starts_with("https://") || api_base.starts_with("http://"))
                && api_base
                    .parse::<axum::http::Uri>()
                    .is_ok_and(|u| u.host().is_some());
            if !base_ok {
                return Err(err(
                    "api_base",
                    format!("'{api_base}' is not an http:// or https:// URL"),
                ));
            }
            if let Some(secs) = t.api_timeout_secs {
                if !(1..=120).contains(&secs) {
                    return Err(err(
                        "api_timeout_secs",
                        format!("'{secs}' is out of range (expected 1..=120)"),
                    ));
                }
                turn.service.api_timeout = Duration::from_secs(secs);
            }
            Provider::Cloudflare {
                key_id,
                api_token,
                api_base,
                ttl: ttl(CLOUDFLARE_MAX_TTL_SECS)?,
            }
        }
    };

    if let Some(origins) = t.allowed_origins {
        turn.allowed_origins = super::parse_origins(&origin("allowed_origins"), &origins)?;
    }
    turn.token = read_secret("token", ENV_TOKEN, t.token, t.token_file)?;
    let limit = |key: &str, v: Option<u64>, min: u64, default: u32| match v {
        None => Ok(default),
        Some(v) if (min..=100_000).contains(&v) => Ok(v as u32),
        Some(v) => Err(err(
            key,
            format!("'{v}' is out of range (expected {min}..=100000)"),
        )),
    };
    turn.rate_limit_per_minute = limit(
        "rate_limit_per_minute",
        t.rate_limit_per_minute,
        0,
        turn.rate_limit_per_minute,
    )?;
    turn.rate_limit_burst = limit(
        "rate_limit_burst",
        t.rate_limit_burst,
        1,
        turn.rate_limit_burst,
    )?;
    if let Some(proxies) = t.trusted_proxies {
        turn.trusted_proxies = super::parse_ips(&origin("trusted_proxies"), &proxies)?;
    }
    if let Some(link) = t.link_headers {
        turn.link_headers = link;
    }
    if let Some(file) = &t.relay_ca_file {
        use tokio_rustls::rustls::pki_types::CertificateDer;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        let dir = path.parent().unwrap_or(Path::new("."));
        let full = if file.is_relative() {
            dir.join(file)
        } else {
            file.clone()
        };
        let certs: Result<Vec<CertificateDer<'static>>, _> = CertificateDer::pem_file_iter(&full)
            .map_err(|e| {
                err(
                    "relay_ca_file",
                    format!("cannot read '{}': {e}", full.display()),
                )
            })?
            .collect();
        let certs = certs.map_err(|e| {
            err(
                "relay_ca_file",
                format!("'{}' is not PEM certificates: {e}", full.display()),
            )
        })?;
        if certs.is_empty() {
            return Err(err(
                "relay_ca_file",
                format!("'{}' holds no certificate", full.display()),
            ));
        }
        turn.relay_ca = certs.into_iter().map(|c| c.to_vec()).collect();
    }
    if let Some(relay) = t.server_relay.as_deref() {
        turn.server_relay = match relay {
            "auto" => ServerRelay::Auto,
            "always" => ServerRelay::Always,
            "never" => ServerRelay::Never,
            other => {
                return Err(err(
                    "server_relay",
                    format!("must be \"auto\", \"always\" or \"never\", not {other:?}"),
                ));
            }
        };
    }
    Ok(turn)
}
