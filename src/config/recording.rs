//! The `[recording]` table: where recordings go, what "record all" records, how files are split
//! and made durable, and what happens when the disk runs low. Without the table (or without
//! `dir`) recording is off and its routes say so.
//!
//! ```toml
//! [recording]
//! dir = "/data/recordings"
//! streams = ["cameras", "guests", "program"]   # names, "cameras", "guests", "program", "*"
//! segment_secs = 600       # a new file at the first keyframe after this
//! min_free_bytes = 1073741824
//! min_free_percent = 5.0
//! retention = "delete-oldest"   # or "stop"
//! fsync = "fragment"       # "fragment", "never", or seconds between flushes (e.g. 5)
//! autostart = false        # record `streams` as soon as the server starts
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sfu::record::{DiskLimits, RecordConfig, Retention, Selector, SyncPolicy, WriterConfig};

use super::{ConfigError, invalid};

/// Keys accepted in the `[recording]` table.
pub const RECORDING_KEYS: &[&str] = &[
    "dir",
    "streams",
    "segment_secs",
    "min_free_bytes",
    "min_free_percent",
    "retention",
    "fsync",
    "autostart",
];

/// `fsync` as written: a policy name or a number of seconds.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum FileFsync {
    Name(String),
    Seconds(f64),
}

/// `[recording]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRecording {
    dir: Option<PathBuf>,
    streams: Option<Vec<String>>,
    segment_secs: Option<f64>,
    min_free_bytes: Option<u64>,
    min_free_percent: Option<f64>,
    retention: Option<String>,
    fsync: Option<FileFsync>,
    autostart: Option<bool>,
}

/// The first key of a `[recording]` table that is not one of [`RECORDING_KEYS`].
pub(super) fn unknown_key(table: &toml::Table) -> Option<String> {
    let toml::Value::Table(t) = table.get("recording")? else {
        return None;
    };
    t.keys()
        .find(|k| !RECORDING_KEYS.contains(&k.as_str()))
        .map(|k| format!("recording.{k}"))
}

/// The table's values over the defaults, each checked; `None` without a table or a `dir`.
pub(super) fn resolve(
    file: Option<(&Path, FileRecording)>,
) -> Result<Option<RecordConfig>, ConfigError> {
    let Some((path, table)) = file else {
        return Ok(None);
    };
    let origin = |key: &str| format!("config {}: recording.{key}", path.display());
    let Some(dir) = table.dir else {
        return Ok(None);
    };
    if dir.as_os_str().is_empty() {
        return Err(invalid(&origin("dir"), "must not be empty".to_owned()));
    }
    // A relative directory is relative to the config file, like the other file keys.
    let dir = match path.parent() {
        Some(parent) if dir.is_relative() => parent.join(dir),
        _ => dir,
    };
    let mut config = RecordConfig {
        dir,
        ..RecordConfig::default()
    };
    if let Some(streams) = table.streams {
        if streams.is_empty() {
            return Err(invalid(
                &origin("streams"),
                "names no stream (use \"*\" for all)".to_owned(),
            ));
        }
        config.streams = streams
            .iter()
            .map(|s| {
                Selector::parse(s).ok_or_else(|| {
                    invalid(
                        &origin("streams"),
                        format!(
                            "'{s}' is neither a stream name nor \"cameras\", \"guests\", \"program\", \"*\""
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(secs) = table.segment_secs {
        if !(secs.is_finite() && (1.0..=86_400.0).contains(&secs)) {
            return Err(invalid(
                &origin("segment_secs"),
                format!("'{secs}' is out of range (expected 1..=86400 seconds)"),
            ));
        }
        config.writer = WriterConfig {
            segment: Duration::from_secs_f64(secs),
            ..config.writer
        };
    }
    let defaults = DiskLimits::default();
    config.limits = DiskLimits {
        min_free_bytes: table.min_free_bytes.unwrap_or(defaults.min_free_bytes),
        min_free_percent: match table.min_free_percent {
            Some(p) if p.is_finite() && (0.0..=90.0).contains(&p) => p,
            Some(p) => {
                return Err(invalid(
                    &origin("min_free_percent"),
                    format!("'{p}' is out of range (expected 0..=90)"),
                ));
            }
            None => defaults.min_free_percent,
        },
    };
    if let Some(retention) = table.retention {
        config.retention = match retention.as_str() {
            "delete-oldest" => Retention::DeleteOldest,
            "stop" => Retention::Stop,
            other => {
                return Err(invalid(
                    &origin("retention"),
                    format!("'{other}' is not \"delete-oldest\" or \"stop\""),
                ));
            }
        };
    }
    if let Some(fsync) = table.fsync {
        config.sync = match fsync {
            FileFsync::Name(name) if name == "fragment" => SyncPolicy::Fragment,
            FileFsync::Name(name) if name == "never" => SyncPolicy::Never,
            FileFsync::Seconds(s) if s.is_finite() && (0.1..=3600.0).contains(&s) => {
                SyncPolicy::Interval(Duration::from_secs_f64(s))
            }
            FileFsync::Name(other) => {
                return Err(invalid(
                    &origin("fsync"),
                    format!("'{other}' is not \"fragment\", \"never\" or seconds"),
                ));
            }
            FileFsync::Seconds(s) => {
                return Err(invalid(
                    &origin("fsync"),
                    format!("'{s}' is out of range (expected 0.1..=3600 seconds)"),
                ));
            }
        };
    }
    config.autostart = table.autostart.unwrap_or(false);
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_and_name_their_key() {
        let path = Path::new("/etc/r58/r58.toml");
        let parse = |text: &str| resolve(Some((path, toml::from_str(text).unwrap())));
        assert_eq!(parse("").unwrap(), None, "no dir: recording off");
        let config = parse(
            "dir = \"rec\"\nstreams = [\"cameras\", \"guest1\"]\nsegment_secs = 2\n\
             retention = \"stop\"\nfsync = 5\nmin_free_percent = 10",
        )
        .unwrap()
        .unwrap();
        assert_eq!(config.dir, PathBuf::from("/etc/r58/rec"));
        assert_eq!(
            config.streams,
            vec![Selector::Cameras, Selector::Name("guest1".into())]
        );
        assert_eq!(config.writer.segment, Duration::from_secs(2));
        assert_eq!(config.retention, Retention::Stop);
        assert_eq!(config.sync, SyncPolicy::Interval(Duration::from_secs(5)));
        assert_eq!(config.limits.min_free_percent, 10.0);
        for (text, key) in [
            ("dir = \"\"", "recording.dir"),
            ("dir = \"r\"\nstreams = [\"../x\"]", "recording.streams"),
            ("dir = \"r\"\nstreams = []", "recording.streams"),
            ("dir = \"r\"\nsegment_secs = 0", "recording.segment_secs"),
            ("dir = \"r\"\nretention = \"keep\"", "recording.retention"),
            ("dir = \"r\"\nfsync = \"always\"", "recording.fsync"),
            ("dir = \"r\"\nfsync = 0", "recording.fsync"),
            (
                "dir = \"r\"\nmin_free_percent = 95",
                "recording.min_free_percent",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
