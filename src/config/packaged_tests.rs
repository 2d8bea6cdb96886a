//! The packaged configuration file (packaging/r58.toml, installed as /etc/r58/r58.toml) must
//! stay true to the parser: every key of every table is in it, each `# key = value` line is
//! the key's real default, and the file loads. A key added or a default changed without the
//! file fails here.
//!
//! The file's conventions: `# key = value` (and `# [table]`) is a default, commented out;
//! `#: ...` an example of a key without a default; `## ...` prose.

use std::collections::HashMap;
use std::path::PathBuf;

use super::*;

const PACKAGED: &str = include_str!("../../packaging/r58.toml");

fn load_text(text: &str) -> Result<Config, ConfigError> {
    let cli = Cli::try_parse_from(["r58"]).expect("no arguments parse");
    Config::resolve(
        cli,
        &HashMap::new(),
        Some((PathBuf::from("/etc/r58/r58.toml"), text.to_owned())),
    )
}

fn load_ok(what: &str, text: &str) -> Config {
    load_text(text).unwrap_or_else(|e| panic!("{what}: {e}\n---\n{text}"))
}

/// The file with its default lines (`# `) uncommented; examples and prose stay comments.
fn defaults_uncommented() -> String {
    PACKAGED
        .lines()
        .map(|line| line.strip_prefix("# ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The parser's defaults with what the packaged file turns on for an appliance: HTTPS on the
/// LAN with its own CA (`[tls] auto`) and mDNS.
fn appliance_defaults() -> Config {
    let mut config = load_ok("empty file", "");
    config.auto_tls.enabled = true;
    config.mdns.enabled = true;
    config
}

#[test]
fn the_packaged_file_loads_as_the_defaults_with_lan_https_and_mdns_on() {
    assert_eq!(load_ok("packaged file", PACKAGED), appliance_defaults());
}

#[test]
fn every_commented_default_is_the_parsers_default() {
    let empty = appliance_defaults();
    let mut uncommented = load_ok("defaults uncommented", &defaults_uncommented());
    // An [rtsp] listen that is written down must be bound (a busy default port only warns):
    // the one thing writing the default changes.
    assert!(uncommented.rtsp.listen_configured);
    uncommented.rtsp.listen_configured = false;
    assert_eq!(uncommented, empty);
}

#[test]
fn the_commented_recording_defaults_are_the_parsers_defaults() {
    // [recording] is off without `dir`, so its defaults are compared with a dir set.
    let dir = "dir = \"/var/lib/r58/recordings\"\n";
    let written = load_ok(
        "recording defaults with a dir",
        &format!("{}\n{dir}", defaults_uncommented()),
    );
    let bare = load_ok("recording dir only", &format!("[recording]\n{dir}"));
    assert!(written.recording.is_some());
    assert_eq!(written.recording, bare.recording);
}

/// `(table, key)` of every line `# key = ...`, `#: key = ...` or `key = ...` (set); top-level
/// keys have table "".
fn documented_keys() -> Vec<(String, String)> {
    let mut table = String::new();
    let mut keys = Vec::new();
    for line in PACKAGED.lines() {
        let Some(rest) = line
            .strip_prefix("#: ")
            .or_else(|| line.strip_prefix("# "))
            .or_else(|| (!line.starts_with('#')).then_some(line))
        else {
            continue;
        };
        let rest = rest.trim();
        if let Some(name) = rest.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
            table = name.to_owned();
        } else if let Some(name) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            table = name.to_owned();
        } else if let Some((key, _)) = rest.split_once(" = ") {
            keys.push((table.clone(), key.trim().to_owned()));
        }
    }
    keys
}

#[test]
fn every_key_of_every_table_is_in_the_packaged_file() {
    let documented = documented_keys();
    let tables: &[(&str, &[&str])] = &[
        ("auth", AUTH_KEYS),
        ("test_cameras", TEST_CAMERAS_KEYS),
        ("camera", CAMERA_KEYS),
        ("source", SOURCE_KEYS),
        ("hls", hls::HLS_KEYS),
        ("switcher", switcher::SWITCHER_KEYS),
        ("turn", TURN_KEYS),
        ("limits", limits::LIMITS_KEYS),
        ("admin", admin::ADMIN_KEYS),
        ("tls", tls::TLS_KEYS),
        ("rtsp", RTSP_KEYS),
        ("recording", recording::RECORDING_KEYS),
        ("mdns", mdns::MDNS_KEYS),
        ("access", super::ACCESS_KEYS),
    ];
    let mut missing = Vec::new();
    for key in FILE_KEYS {
        let is_table = tables.iter().any(|(t, _)| t == key);
        if !is_table && !documented.iter().any(|(t, k)| t.is_empty() && k == key) {
            missing.push((*key).to_owned());
        }
    }
    for (table, keys) in tables {
        assert!(
            FILE_KEYS.contains(table),
            "{table} is not a top-level key any more"
        );
        for key in *keys {
            if !documented.iter().any(|(t, k)| t == table && k == key) {
                missing.push(format!("{table}.{key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "packaging/r58.toml lacks {missing:?} (add each as `# key = default`, or `#: key = \
         example` when it has no default)"
    );
    // And nothing there that the parser does not know.
    for (table, key) in &documented {
        let known = if table.is_empty() {
            FILE_KEYS.contains(&key.as_str())
        } else {
            tables
                .iter()
                .any(|(t, keys)| t == table && keys.contains(&key.as_str()))
        };
        assert!(known, "packaging/r58.toml has an unknown key {table}.{key}");
    }
}
