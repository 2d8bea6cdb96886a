//! HTTPS: `--tls-cert FILE --tls-key FILE` (or `R58_TLS_CERT` / `R58_TLS_KEY`, or a `[tls]`
//! table with `cert` and `key`, relative to the config file). Both or neither; with them the
//! HTTP listener speaks only HTTPS. The files are read when the server starts.
//!
//! ```toml
//! [tls]
//! cert = "r58.crt"   # PEM: the certificate chain, leaf first
//! key = "r58.key"    # PEM: PKCS#8, PKCS#1 or SEC1 private key
//! ```
//!
//! Without an operator's certificate, `auto = true` makes HTTPS work on the LAN by itself
//! (`crate::lan_tls`): a local CA and a certificate for `names` and the box's addresses, kept
//! in `dir`, served on `https_listen` beside plain HTTP (docs/lan.md):
//!
//! ```toml
//! [tls]
//! auto = true                    # default false; an appliance's config turns it on
//! https_listen = "0.0.0.0:8443"
//! dir = "/var/lib/r58/tls"       # default: $STATE_DIRECTORY/tls (systemd), else ./r58-tls
//! names = ["r58.local"]          # DNS names besides the addresses (default: the [mdns] name)
//! ```
//!
//! An operator's `cert`/`key` take precedence: with them `auto` does nothing.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, invalid};

/// Keys accepted in the `[tls]` table.
pub const TLS_KEYS: &[&str] = &["cert", "key", "auto", "https_listen", "dir", "names"];

/// Where `[tls] auto` serves HTTPS unless told.
pub const DEFAULT_HTTPS_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8443));
/// The name the box answers to on the LAN (mDNS) and its certificate names.
pub const DEFAULT_LAN_NAME: &str = "r58.local";

/// `[tls] auto`: HTTPS on the LAN with a certificate from a local CA r58 makes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoTls {
    /// Off by default in the binary (a developer's `cargo run` writes no CA anywhere); the
    /// appliance's config (the package's r58.toml) turns it on.
    pub enabled: bool,
    pub https_listen: SocketAddr,
    /// Where the CA and the certificate are kept (created when missing).
    pub dir: PathBuf,
    /// DNS names in the certificate, besides the box's addresses.
    pub names: Vec<String>,
}

impl AutoTls {
    /// The default directory: systemd's `StateDirectory=` when it set `STATE_DIRECTORY`,
    /// else `r58-tls` in the working directory.
    pub fn default_dir(state_directory: Option<&str>) -> PathBuf {
        match state_directory.and_then(|dirs| dirs.split(':').next()) {
            Some(dir) if !dir.is_empty() => Path::new(dir).join("tls"),
            _ => PathBuf::from("r58-tls"),
        }
    }
}

impl Default for AutoTls {
    fn default() -> Self {
        Self {
            enabled: false,
            https_listen: DEFAULT_HTTPS_LISTEN,
            dir: PathBuf::from("r58-tls"),
            names: vec![DEFAULT_LAN_NAME.to_owned()],
        }
    }
}

/// The certificate chain and key files to serve HTTPS with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[tls]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    auto: Option<bool>,
    https_listen: Option<String>,
    dir: Option<PathBuf>,
    names: Option<Vec<String>>,
}

/// `[tls] auto` and its settings from the file (`state_directory`: `$STATE_DIRECTORY`).
pub(super) fn resolve_auto(
    file: Option<(&Path, &FileTls)>,
    state_directory: Option<&str>,
    lan_name: &str,
) -> Result<AutoTls, ConfigError> {
    let mut auto = AutoTls {
        dir: AutoTls::default_dir(state_directory),
        names: vec![lan_name.to_owned()],
        ..AutoTls::default()
    };
    let Some((path, t)) = file else {
        return Ok(auto);
    };
    let origin = |key: &str| format!("config {}: tls.{key}", path.display());
    auto.enabled = t.auto.unwrap_or(false);
    if let Some(listen) = &t.https_listen {
        auto.https_listen = super::values::parse_socket_addr(&origin("https_listen"), listen)?;
    }
    if let Some(dir) = &t.dir {
        let base = path.parent().unwrap_or(Path::new(""));
        auto.dir = if dir.is_relative() {
            base.join(dir)
        } else {
            dir.clone()
        };
    }
    if let Some(names) = &t.names {
        for name in names {
            let ok = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !ok {
                return Err(invalid(
                    &origin("names"),
                    format!(
                        "'{name}' is not a DNS name (letters, digits, '-', dots between labels)"
                    ),
                ));
            }
        }
        auto.names = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    }
    Ok(auto)
}

/// The first key of a `[tls]` table that is not one of [`TLS_KEYS`], as `tls.KEY`.
pub(super) fn unknown_key(table: &toml::Table) -> Option<String> {
    let toml::Value::Table(t) = table.get("tls")? else {
        return None;
    };
    t.keys()
        .find(|k| !TLS_KEYS.contains(&k.as_str()))
        .map(|k| format!("tls.{k}"))
}

/// Flags beat the environment, which beats the file; cert and key are taken as a pair from
/// the first place that sets either.
pub(super) fn resolve(
    flags: (Option<&Path>, Option<&Path>),
    env: (Option<&str>, Option<&str>),
    file: Option<(&Path, &FileTls)>,
) -> Result<Option<TlsFiles>, ConfigError> {
    let pair = |origin: &str,
                cert: Option<PathBuf>,
                key: Option<PathBuf>|
     -> Result<Option<TlsFiles>, ConfigError> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
            (None, None) => Ok(None),
            _ => Err(invalid(
                origin,
                "set both the certificate and the key, or neither".to_owned(),
            )),
        }
    };
    if flags.0.is_some() || flags.1.is_some() {
        return pair(
            "--tls-cert/--tls-key",
            flags.0.map(Path::to_owned),
            flags.1.map(Path::to_owned),
        );
    }
    if env.0.is_some() || env.1.is_some() {
        return pair(
            "R58_TLS_CERT/R58_TLS_KEY",
            env.0.map(PathBuf::from),
            env.1.map(PathBuf::from),
        );
    }
    let Some((path, t)) = file else {
        return Ok(None);
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    let full = |p: &PathBuf| {
        if p.is_relative() {
            dir.join(p)
        } else {
            p.clone()
        }
    };
    pair(
        &format!("config {}: tls", path.display()),
        t.cert.as_ref().map(full),
        t.key.as_ref().map(full),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_precedence() {
        let p = Path::new;
        assert_eq!(resolve((None, None), (None, None), None).unwrap(), None);
        let from_flags = resolve(
            (Some(p("a.crt")), Some(p("a.key"))),
            (Some("b.crt"), Some("b.key")),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(from_flags.cert, p("a.crt"));
        let file: FileTls = toml::from_str("cert = \"c.crt\"\nkey = \"/abs/c.key\"").unwrap();
        let from_file = resolve(
            (None, None),
            (None, None),
            Some((p("/etc/r58/r58.toml"), &file)),
        )
        .unwrap()
        .unwrap();
        assert_eq!(from_file.cert, p("/etc/r58/c.crt"));
        assert_eq!(from_file.key, p("/abs/c.key"));
        let err = resolve((Some(p("a.crt")), None), (None, None), None).unwrap_err();
        assert!(err.to_string().contains("--tls-cert"), "{err}");
        let err = resolve((None, None), (None, Some("k")), None).unwrap_err();
        assert!(err.to_string().contains("R58_TLS_KEY"), "{err}");
    }

    #[test]
    fn auto_is_off_unless_asked_and_its_keys_are_checked() {
        let p = Path::new("/etc/r58/r58.toml");
        let auto = resolve_auto(None, Some("/var/lib/r58"), "r58.local").unwrap();
        assert!(!auto.enabled);
        assert_eq!(auto.dir, Path::new("/var/lib/r58/tls"));
        assert_eq!(auto.names, vec!["r58.local"]);
        assert_eq!(auto.https_listen, DEFAULT_HTTPS_LISTEN);
        let file: FileTls = toml::from_str(
            "auto = true\nhttps_listen = \"127.0.0.1:9443\"\ndir = \"tls\"\nnames = [\"Box.local\"]",
        )
        .unwrap();
        let auto = resolve_auto(Some((p, &file)), None, "r58.local").unwrap();
        assert!(auto.enabled);
        assert_eq!(auto.dir, Path::new("/etc/r58/tls"));
        assert_eq!(auto.names, vec!["box.local"]);
        assert_eq!(auto.https_listen.port(), 9443);
        assert_eq!(AutoTls::default_dir(None), Path::new("r58-tls"));
        for bad in [
            "names = [\"a..b\"]",
            "names = [\"\"]",
            "names = [\"x y\"]",
            "https_listen = \"x\"",
        ] {
            let file: FileTls = toml::from_str(bad).unwrap();
            let err = resolve_auto(Some((p, &file)), None, "r58.local")
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("config /etc/r58/r58.toml: tls."),
                "{bad}: {err}"
            );
        }
    }
}
