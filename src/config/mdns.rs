//! The `[mdns]` table: whether r58 answers for `HOSTNAME.local` on the LAN and advertises its
//! pages over DNS-SD (`_http._tcp`, and `_https._tcp` with `[tls] auto`), so that
//! `http://r58.local:8000/` opens from any laptop (docs/lan.md).
//!
//! ```toml
//! [mdns]
//! enabled = true      # default false in the binary; an appliance's config turns it on
//! hostname = "r58"    # answers for r58.local; one DNS label
//! ```

use std::path::Path;

use serde::Deserialize;

use super::{ConfigError, invalid};

/// Keys accepted in the `[mdns]` table.
pub const MDNS_KEYS: &[&str] = &["enabled", "hostname"];

/// The resolved `[mdns]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mdns {
    /// Off by default: tests and a developer's `cargo run` multicast nothing.
    pub enabled: bool,
    /// One DNS label; the box answers for `hostname.local`.
    pub hostname: String,
}

impl Default for Mdns {
    fn default() -> Self {
        Self {
            enabled: false,
            hostname: "r58".to_owned(),
        }
    }
}

impl Mdns {
    /// `hostname.local`.
    pub fn local_name(&self) -> String {
        format!("{}.local", self.hostname)
    }
}

/// `[mdns]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileMdns {
    enabled: Option<bool>,
    hostname: Option<String>,
}

/// The first key of an `[mdns]` table that is not one of [`MDNS_KEYS`].
pub(super) fn unknown_key(table: &toml::Table) -> Option<String> {
    let toml::Value::Table(t) = table.get("mdns")? else {
        return None;
    };
    t.keys()
        .find(|k| !MDNS_KEYS.contains(&k.as_str()))
        .map(|k| format!("mdns.{k}"))
}

pub(super) fn resolve(file: Option<(&Path, FileMdns)>) -> Result<Mdns, ConfigError> {
    let mut mdns = Mdns::default();
    let Some((path, table)) = file else {
        return Ok(mdns);
    };
    if let Some(enabled) = table.enabled {
        mdns.enabled = enabled;
    }
    if let Some(name) = table.hostname {
        // A label: letters, digits and '-' (not first or last), at most 63 bytes.
        let ok = (1..=63).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !ok {
            return Err(invalid(
                &format!("config {}: mdns.hostname", path.display()),
                format!(
                    "'{name}' is not a host name (1-63 letters, digits and '-', without .local)"
                ),
            ));
        }
        mdns.hostname = name.to_ascii_lowercase();
    }
    Ok(mdns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_the_hostname_is_one_label() {
        let p = Path::new("/etc/r58/r58.toml");
        assert_eq!(resolve(None).unwrap(), Mdns::default());
        let t: FileMdns = toml::from_str("enabled = true\nhostname = \"Studio-2\"").unwrap();
        let m = resolve(Some((p, t))).unwrap();
        assert!(m.enabled);
        assert_eq!(m.local_name(), "studio-2.local");
        for bad in ["r58.local", "", "-r58", "r 58", &"x".repeat(64)] {
            let t = FileMdns {
                enabled: None,
                hostname: Some(bad.to_owned()),
            };
            let err = resolve(Some((p, t))).unwrap_err().to_string();
            assert!(
                err.starts_with("config /etc/r58/r58.toml: mdns.hostname: '"),
                "{err}"
            );
        }
    }
}
