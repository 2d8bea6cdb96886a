//! The `[hls]` table: LL-HLS part and segment targets, how many segments are kept, and how long
//! a stream's playlist waits for its source to come back.
//!
//! ```toml
//! [hls]
//! part_target = 0.2      # seconds (PART-TARGET)
//! segment_target = 1.0   # seconds; a segment ends at the first keyframe after this
//! segments_kept = 7
//! linger = 15            # seconds a playlist outlives its source
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use sfu::hls::{HlsConfig, LiveConfig};

use super::{ConfigError, invalid};

/// Keys accepted in the `[hls]` table.
pub const HLS_KEYS: &[&str] = &["part_target", "segment_target", "segments_kept", "linger"];

/// `[hls]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileHls {
    part_target: Option<f64>,
    segment_target: Option<f64>,
    segments_kept: Option<u64>,
    linger: Option<f64>,
}

/// The first key of an `[hls]` table that is not one of [`HLS_KEYS`], as `hls.KEY`.
pub(super) fn unknown_key(table: &toml::Table) -> Option<String> {
    let toml::Value::Table(hls) = table.get("hls")? else {
        return None;
    };
    hls.keys()
        .find(|k| !HLS_KEYS.contains(&k.as_str()))
        .map(|k| format!("hls.{k}"))
}

/// The table's values over the defaults, each checked.
pub(super) fn resolve(file: Option<(&Path, FileHls)>) -> Result<LiveConfig, ConfigError> {
    let mut live = LiveConfig::default();
    let Some((path, table)) = file else {
        return Ok(live);
    };
    let origin = |key: &str| format!("config {}: hls.{key}", path.display());
    let seconds = |key: &str, value: Option<f64>, min: f64, max: f64| {
        value
            .map(|v| {
                if v.is_finite() && (min..=max).contains(&v) {
                    Ok(Duration::from_secs_f64(v))
                } else {
                    Err(invalid(
                        &origin(key),
                        format!("'{v}' is out of range (expected {min}..={max} seconds)"),
                    ))
                }
            })
            .transpose()
    };
    let defaults = HlsConfig::default();
    let part_target = seconds("part_target", table.part_target, 0.05, 2.0)?;
    let segment_target = seconds("segment_target", table.segment_target, 0.5, 10.0)?;
    live.hls = HlsConfig {
        part_target: part_target.unwrap_or(defaults.part_target),
        segment_target: segment_target.unwrap_or(defaults.segment_target),
        ..defaults
    };
    if live.hls.segment_target < live.hls.part_target {
        return Err(invalid(
            &origin("segment_target"),
            "must not be shorter than part_target".to_owned(),
        ));
    }
    if let Some(kept) = table.segments_kept {
        if !(3..=60).contains(&kept) {
            return Err(invalid(
                &origin("segments_kept"),
                format!("'{kept}' is out of range (expected 3..=60)"),
            ));
        }
        live.hls.segments_kept = kept as usize;
    }
    live.linger = seconds("linger", table.linger, 0.0, 3600.0)?.unwrap_or(live.linger);
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> FileHls {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn values_override_defaults_and_bad_ones_name_their_key() {
        let path = Path::new("r58.toml");
        let live = resolve(Some((path, table("part_target = 0.3\nsegments_kept = 10")))).unwrap();
        assert_eq!(live.hls.part_target, Duration::from_millis(300));
        assert_eq!(live.hls.segments_kept, 10);
        assert_eq!(live.hls.segment_target, Duration::from_secs(1));
        assert_eq!(resolve(None).unwrap(), LiveConfig::default());

        for (text, key) in [
            ("part_target = 0.0", "hls.part_target"),
            ("part_target = nan", "hls.part_target"),
            (
                "segment_target = 0.6\npart_target = 1.0",
                "hls.segment_target",
            ),
            ("segments_kept = 1", "hls.segments_kept"),
            ("linger = -1.0", "hls.linger"),
        ] {
            let err = resolve(Some((path, table(text)))).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
