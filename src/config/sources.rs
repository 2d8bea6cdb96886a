//! `[[source]]` tables: IP cameras (and any RTSP server) pulled into the hub as streams
//! (docs/rtsp.md).
//!
//! ```toml
//! [[source]]
//! name = "ipcam0"
//! url = "rtsp://admin:secret@192.168.1.64:554/Streaming/Channels/101"
//! transport = "tcp"     # or "udp"
//! ```

use std::path::Path;

use serde::Deserialize;
use sfu::capture::{RtspSourceSettings, RtspTransport};

use super::{ConfigError, invalid};

/// Keys accepted in each `[[source]]` table.
pub const SOURCE_KEYS: &[&str] = &["name", "url", "transport"];

/// `[[source]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSource {
    name: String,
    url: String,
    transport: Option<String>,
}

/// The first key of a `[[source]]` table that is not one of [`SOURCE_KEYS`].
pub(super) fn unknown_key(table: &toml::Table) -> Option<String> {
    let toml::Value::Array(sources) = table.get("source")? else {
        return None;
    };
    sources.iter().enumerate().find_map(|(i, s)| {
        let toml::Value::Table(t) = s else {
            return None;
        };
        t.keys()
            .find(|k| !SOURCE_KEYS.contains(&k.as_str()))
            .map(|k| format!("source[{i}].{k}"))
    })
}

/// Each table checked: a stream name, an `rtsp://` URL, a transport.
pub(super) fn resolve(
    path: Option<&Path>,
    sources: Vec<FileSource>,
) -> Result<Vec<RtspSourceSettings>, ConfigError> {
    let mut out: Vec<RtspSourceSettings> = Vec::new();
    for (i, source) in sources.into_iter().enumerate() {
        let origin = |key: &str| {
            let file = path.map_or_else(String::new, |p| p.display().to_string());
            format!("config {file}: source[{i}].{key}")
        };
        let valid_name = (1..=64).contains(&source.name.len())
            && source
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid_name {
            return Err(invalid(
                &origin("name"),
                format!(
                    "'{}' is not a stream name (1-64 letters, digits, '-', '_', '.')",
                    source.name
                ),
            ));
        }
        if out.iter().any(|s| s.name == source.name) {
            return Err(invalid(
                &origin("name"),
                format!("'{}' is used twice", source.name),
            ));
        }
        if !source.url.starts_with("rtsp://") || source.url.len() <= "rtsp://".len() {
            // Not quoted back: the URL may carry a password.
            return Err(invalid(&origin("url"), "must be an rtsp:// URL".to_owned()));
        }
        let transport = match source.transport.as_deref() {
            None | Some("tcp") => RtspTransport::Tcp,
            Some("udp") => RtspTransport::Udp,
            Some(other) => {
                return Err(invalid(
                    &origin("transport"),
                    format!("'{other}' (expected \"tcp\" or \"udp\")"),
                ));
            }
        };
        out.push(RtspSourceSettings {
            name: source.name,
            url: source.url,
            transport,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        source: Vec<FileSource>,
    }

    fn parse(text: &str) -> Result<Vec<RtspSourceSettings>, ConfigError> {
        let doc: Doc = toml::from_str(text).unwrap();
        resolve(Some(Path::new("r58.toml")), doc.source)
    }

    #[test]
    fn sources_are_checked() {
        let s = parse("[[source]]\nname = \"ipcam0\"\nurl = \"rtsp://u:p@127.0.0.1:8554/x\"\ntransport = \"udp\"").unwrap();
        assert_eq!(s[0].name, "ipcam0");
        assert_eq!(s[0].transport, RtspTransport::Udp);
        for (text, key) in [
            (
                "[[source]]\nname = \"a/b\"\nurl = \"rtsp://h/x\"",
                "source[0].name",
            ),
            (
                "[[source]]\nname = \"a\"\nurl = \"http://h/x\"",
                "source[0].url",
            ),
            (
                "[[source]]\nname = \"a\"\nurl = \"rtsp://h/x\"\ntransport = \"sctp\"",
                "source[0].transport",
            ),
            (
                "[[source]]\nname = \"a\"\nurl = \"rtsp://h/x\"\n[[source]]\nname = \"a\"\nurl = \"rtsp://h/y\"",
                "source[1].name",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = parse("[[source]]\nname = \"a\"\nurl = \"ftp://u:hunter2@h\"")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
