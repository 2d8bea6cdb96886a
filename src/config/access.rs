//! The `[access]` table: who may view and publish, by where a request comes from, and the
//! signed-in users (docs/security.md has the whole matrix).
//!
//! ```toml
//! [access]
//! lan = "open"                 # "open" (default): LAN clients view and publish as before;
//!                              # "sign_in": they need what remote clients need
//! remote_view = "sign_in"      # "sign_in" (default) or "open": pages, LL-HLS, WHEP,
//!                              # /api/streams, /api/events from outside
//! remote_publish = "sign_in"   # "sign_in" (default: a signed-in operator or a guest
//!                              # invite) or "open": WHIP and /guest_join
//! users_file = "users.toml"    # managed by `r58 user add|passwd|del`; relative to this file
//! session_hours = 12           # how long a sign-in lasts
//! secure_cookies = "auto"      # "auto": Secure over HTTPS or through a proxy/tunnel; "always"
//! hls_grant_minutes = 10       # remote LL-HLS: one signed path prefix per window, valid 1-2 windows
//! ```
//!
//! A request is *local* when it comes from this box or a private network (loopback, RFC 1918,
//! link-local, IPv6 ULA) and carries none of the forwarding headers a proxy or tunnel adds
//! (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`, `CF-Connecting-IP`): the admin gate's rule. A
//! forged forwarding header can therefore only make a request remote, never local.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};

/// Keys accepted in the `[access]` table.
pub const ACCESS_KEYS: &[&str] = &[
    "lan",
    "remote_view",
    "remote_publish",
    "users_file",
    "session_hours",
    "secure_cookies",
    "hls_grant_minutes",
];

/// What a class of request needs from one kind of client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: as without `[access]`.
    Open,
    /// A signed-in user of a role that may do it, a bearer token that covers the path, or the
    /// admin token.
    SignIn,
}

/// Whether the session cookie carries `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureCookies {
    /// When the server speaks HTTPS or the request came through a proxy or tunnel (which
    /// terminate HTTPS in front of the box).
    Auto,
    Always,
}

/// The resolved `[access]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    /// What local clients need to view and publish.
    pub lan: Need,
    pub remote_view: Need,
    pub remote_publish: Need,
    /// The users file (absolute once resolved); `None`: nobody can sign in.
    pub users_file: Option<PathBuf>,
    pub session_lifetime: Duration,
    pub secure_cookies: SecureCookies,
    /// The window of LL-HLS grants (signed path prefixes a CDN can cache under).
    pub hls_grant_window: Duration,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            lan: Need::Open,
            remote_view: Need::SignIn,
            remote_publish: Need::SignIn,
            users_file: None,
            session_lifetime: Duration::from_secs(12 * 3600),
            secure_cookies: SecureCookies::Auto,
            hls_grant_window: Duration::from_secs(600),
        }
    }
}

impl AccessConfig {
    /// Everything open from everywhere, as before `[access]` existed (tests of other things).
    pub fn open() -> Self {
        Self {
            remote_view: Need::Open,
            remote_publish: Need::Open,
            ..Self::default()
        }
    }
}

/// `r58 user ...`: what to do to which user, in which file.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum UserAction {
    /// Add a user (the password is asked for)
    Add {
        name: String,
        /// viewer, operator or admin
        #[arg(long, default_value = "viewer")]
        role: String,
        /// The users file [default: [access] users_file of --config]
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Set a user's password (and role, with --role); their sessions end when the role changes
    Passwd {
        name: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Remove a user; their sessions end within a second
    Del {
        name: String,
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// List the users and their roles
    List {
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

/// `[access]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAccess {
    lan: Option<String>,
    remote_view: Option<String>,
    remote_publish: Option<String>,
    users_file: Option<PathBuf>,
    session_hours: Option<f64>,
    secure_cookies: Option<String>,
    hls_grant_minutes: Option<f64>,
}

/// The first key of an `[access]` table that is not one of [`ACCESS_KEYS`], as `access.KEY`.
pub(super) fn unknown_key(table: &toml::Table) -> Option<String> {
    let toml::Value::Table(t) = table.get("access")? else {
        return None;
    };
    t.keys()
        .find(|k| !ACCESS_KEYS.contains(&k.as_str()))
        .map(|k| format!("access.{k}"))
}

pub(super) fn resolve(file: Option<(&Path, FileAccess)>) -> Result<AccessConfig, ConfigError> {
    let mut access = AccessConfig::default();
    let Some((path, t)) = file else {
        return Ok(access);
    };
    let origin = |key: &str| format!("config {}: access.{key}", path.display());
    let need = |key: &str, value: Option<String>, default: Need| match value.as_deref() {
        None => Ok(default),
        Some("open") => Ok(Need::Open),
        Some("sign_in") => Ok(Need::SignIn),
        Some(other) => Err(invalid(
            &origin(key),
            format!("'{other}' is not one of open, sign_in"),
        )),
    };
    access.lan = need("lan", t.lan, access.lan)?;
    access.remote_view = need("remote_view", t.remote_view, access.remote_view)?;
    access.remote_publish = need("remote_publish", t.remote_publish, access.remote_publish)?;
    if let Some(file) = t.users_file {
        access.users_file = Some(match path.parent() {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file,
        });
    }
    if let Some(hours) = t.session_hours {
        if !(hours.is_finite() && hours > 0.0 && hours <= 24.0 * 366.0) {
            return Err(invalid(
                &origin("session_hours"),
                format!("{hours} is not between 0 and a year of hours"),
            ));
        }
        access.session_lifetime = Duration::from_secs_f64(hours * 3600.0);
    }
    if let Some(minutes) = t.hls_grant_minutes {
        if !(minutes.is_finite() && (1.0..=1440.0).contains(&minutes)) {
            return Err(invalid(
                &origin("hls_grant_minutes"),
                format!("{minutes} is not between 1 and 1440"),
            ));
        }
        access.hls_grant_window = Duration::from_secs_f64(minutes * 60.0);
    }
    access.secure_cookies = match t.secure_cookies.as_deref() {
        None | Some("auto") => SecureCookies::Auto,
        Some("always") => SecureCookies::Always,
        Some(other) => {
            return Err(invalid(
                &origin("secure_cookies"),
                format!("'{other}' is not one of auto, always"),
            ));
        }
    };
    Ok(access)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AccessConfig, ConfigError> {
        resolve(Some((
            Path::new("/etc/r58/r58.toml"),
            toml::from_str(text).unwrap(),
        )))
    }

    #[test]
    fn defaults_and_values() {
        let d = resolve(None).unwrap();
        assert_eq!(d, AccessConfig::default());
        assert_eq!(d.lan, Need::Open);
        assert_eq!(d.remote_view, Need::SignIn);
        assert_eq!(d.remote_publish, Need::SignIn);
        let a = parse(
            "lan = \"sign_in\"\nremote_view = \"open\"\nusers_file = \"users.toml\"\n\
             session_hours = 1.5\nsecure_cookies = \"always\"",
        )
        .unwrap();
        assert_eq!(a.lan, Need::SignIn);
        assert_eq!(a.remote_view, Need::Open);
        assert_eq!(a.remote_publish, Need::SignIn);
        assert_eq!(
            a.users_file.as_deref(),
            Some(Path::new("/etc/r58/users.toml"))
        );
        assert_eq!(a.session_lifetime, Duration::from_secs(5400));
        assert_eq!(a.secure_cookies, SecureCookies::Always);
        for (text, key) in [
            ("lan = \"closed\"", "access.lan"),
            ("remote_view = \"yes\"", "access.remote_view"),
            ("session_hours = 0", "access.session_hours"),
            ("secure_cookies = \"never\"", "access.secure_cookies"),
            ("hls_grant_minutes = 0.5", "access.hls_grant_minutes"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
