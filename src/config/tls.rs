//! HTTPS: `--tls-cert FILE --tls-key FILE` (or `R58_TLS_CERT` / `R58_TLS_KEY`, or a `[tls]`
//! table with `cert` and `key`, relative to the config file). Both or neither; with them the
//! HTTP listener speaks only HTTPS. The files are read when the server starts.
//!
//! ```toml
//! [tls]
//! cert = "r58.crt"   # PEM: the certificate chain, leaf first
//! key = "r58.key"    # PEM: PKCS#8, PKCS#1 or SEC1 private key
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, invalid};

/// Keys accepted in the `[tls]` table.
pub const TLS_KEYS: &[&str] = &["cert", "key"];

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
    file: Option<(&Path, FileTls)>,
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
    let full = |p: PathBuf| if p.is_relative() { dir.join(p) } else { p };
    pair(
        &format!("config {}: tls", path.display()),
        t.cert.map(full),
        t.key.map(full),
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
            Some((p("/etc/r58/r58.toml"), file)),
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
}
