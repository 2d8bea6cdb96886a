//! The `[admin]` table: who may use the control endpoints (`/api` requests that change
//! something, such as `POST /api/switcher/program`) and read `/metrics`.
//!
//! ```toml
//! [admin]
//! token_file = "admin.token"       # or token = "...", or R58_ADMIN_TOKEN
//! allow_without_token = "local"    # "local" (default), "loopback" or "none"
//! ```
//!
//! A request with the token is always let in. Without it, `local` lets in clients on this box
//! or a private network (loopback, RFC 1918, link-local, IPv6 ULA) that did not come through a
//! proxy; `loopback` only this box; `none` nobody. A request carrying `X-Forwarded-For`,
//! `Forwarded`, `X-Real-IP` or `CF-Connecting-IP` came through a proxy or tunnel and never
//! counts as local, even though a tunnel daemon connects from 127.0.0.1.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sfu::turn::Secret;

use super::{ConfigError, invalid};

/// Keys accepted in the `[admin]` table.
pub const ADMIN_KEYS: &[&str] = &["token", "token_file", "allow_without_token"];

/// The environment variable that sets the admin token (it beats the file).
pub const ENV_ADMIN_TOKEN: &str = "R58_ADMIN_TOKEN";

/// Which clients may use the control endpoints without the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdminOpen {
    /// Loopback and private-network clients, not proxied.
    #[default]
    Local,
    /// Loopback clients, not proxied.
    Loopback,
    /// Nobody: the token is required.
    None,
}

/// The resolved `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Admin {
    pub token: Option<Secret>,
    pub allow_without_token: AdminOpen,
}

/// `[admin]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAdmin {
    token: Option<String>,
    token_file: Option<PathBuf>,
    allow_without_token: Option<String>,
}

/// The first key of an `[admin]` table that is not one of [`ADMIN_KEYS`], as `admin.KEY`.
pub(super) fn unknown_key(table: &toml::Table) -> Option<String> {
    let toml::Value::Table(t) = table.get("admin")? else {
        return None;
    };
    t.keys()
        .find(|k| !ADMIN_KEYS.contains(&k.as_str()))
        .map(|k| format!("admin.{k}"))
}

pub(super) fn resolve(
    file: Option<(&Path, FileAdmin)>,
    env_token: Option<&str>,
) -> Result<Admin, ConfigError> {
    let mut admin = Admin::default();
    let (path, t) = match file {
        Some((path, t)) => (Some(path), t),
        None => (None, FileAdmin::default()),
    };
    let origin = |key: &str| match path {
        Some(p) => format!("config {}: admin.{key}", p.display()),
        None => format!("admin.{key}"),
    };
    if t.token.is_some() && t.token_file.is_some() {
        return Err(invalid(
            &origin("token"),
            "set either token or token_file, not both".to_owned(),
        ));
    }
    let token = if let Some(v) = env_token {
        Some((v.trim().to_owned(), ENV_ADMIN_TOKEN.to_owned()))
    } else if let Some(file) = t.token_file {
        let full = match path.and_then(Path::parent) {
            Some(dir) if file.is_relative() => dir.join(&file),
            _ => file,
        };
        let text = std::fs::read_to_string(&full).map_err(|e| {
            invalid(
                &origin("token_file"),
                format!("cannot read '{}': {e}", full.display()),
            )
        })?;
        Some((text.trim().to_owned(), origin("token_file")))
    } else {
        t.token.map(|v| (v.trim().to_owned(), origin("token")))
    };
    if let Some((value, from)) = token {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                &from,
                "must be non-empty printable ASCII without spaces".to_owned(),
            ));
        }
        admin.token = Some(Secret::new(value));
    }
    if let Some(open) = t.allow_without_token {
        admin.allow_without_token = match open.as_str() {
            "local" => AdminOpen::Local,
            "loopback" => AdminOpen::Loopback,
            "none" => AdminOpen::None,
            other => {
                return Err(invalid(
                    &origin("allow_without_token"),
                    format!("'{other}' is not one of local, loopback, none"),
                ));
            }
        };
    }
    Ok(admin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, env: Option<&str>) -> Result<Admin, ConfigError> {
        resolve(
            Some((
                Path::new("/nonexistent/r58.toml"),
                toml::from_str(text).unwrap(),
            )),
            env,
        )
    }

    #[test]
    fn token_sources_and_policy() {
        assert_eq!(resolve(None, None).unwrap(), Admin::default());
        let a = parse("token = \"s3cret\"\nallow_without_token = \"none\"", None).unwrap();
        assert_eq!(a.token.as_ref().map(Secret::expose), Some("s3cret"));
        assert_eq!(a.allow_without_token, AdminOpen::None);
        let a = parse("token = \"file\"", Some("from-env")).unwrap();
        assert_eq!(a.token.as_ref().map(Secret::expose), Some("from-env"));
        for (text, key) in [
            ("token = \"a b\"", "admin.token"),
            ("token_file = \"missing\"", "admin.token_file"),
            ("token = \"x\"\ntoken_file = \"y\"", "admin.token"),
            ("allow_without_token = \"all\"", "admin.allow_without_token"),
        ] {
            let err = parse(text, None).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
            assert!(!err.contains("s3cret"));
        }
    }
}
