//! The `[test_cameras]` table and the `--test-cameras` / `R58_TEST_CAMERAS` override.
//!
//! ```toml
//! [test_cameras]
//! enabled = true      # false: none
//! count = 2           # cam0, cam1
//! width = 1280
//! height = 720
//! fps = 30
//! bitrate = 2500000   # bits per second
//! ```

use std::path::Path;

use serde::Deserialize;

use super::{ConfigError, invalid};

/// Keys accepted in the `[test_cameras]` table.
pub const TEST_CAMERAS_KEYS: &[&str] = &["enabled", "count", "width", "height", "fps", "bitrate"];

/// More would only measure how fast this machine encodes.
const MAX_COUNT: u64 = 16;

/// The synthetic test cameras to run: `cam0` .. `cam{count-1}`, each a moving pattern encoded
/// to H.264 with OpenH264.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCameras {
    /// False (or a count of 0) runs none.
    pub enabled: bool,
    pub count: u32,
    /// Picture size: even, at most 3840x2160 (OpenH264's limit).
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Target bits per second.
    pub bitrate: u32,
}

impl Default for TestCameras {
    fn default() -> Self {
        Self {
            enabled: true,
            count: 2,
            width: 1280,
            height: 720,
            fps: 30,
            bitrate: 2_500_000,
        }
    }
}

impl TestCameras {
    /// The stream names of the cameras to run (none when disabled).
    pub fn names(&self) -> Vec<String> {
        if !self.enabled {
            return Vec::new();
        }
        (0..self.count).map(|i| format!("cam{i}")).collect()
    }
}

/// `[test_cameras]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTestCameras {
    enabled: Option<bool>,
    count: Option<u64>,
    width: Option<u64>,
    height: Option<u64>,
    fps: Option<u64>,
    bitrate: Option<u64>,
}

/// The first key of a `[test_cameras]` table that is not one of [`TEST_CAMERAS_KEYS`], as
/// `test_cameras.KEY`.
pub(super) fn unknown_key(table: &toml::Table) -> Option<String> {
    let toml::Value::Table(cams) = table.get("test_cameras")? else {
        return None;
    };
    cams.keys()
        .find(|k| !TEST_CAMERAS_KEYS.contains(&k.as_str()))
        .map(|k| format!("test_cameras.{k}"))
}

/// Merges the flag, the environment variable and the file table (in that precedence) over the
/// defaults. A count from the flag or the environment also decides `enabled` (0 turns the
/// cameras off, more turns them on whatever the file says).
pub(super) fn resolve(
    flag: Option<&str>,
    env: Option<&str>,
    file: Option<(&Path, FileTestCameras)>,
) -> Result<TestCameras, ConfigError> {
    let mut cams = TestCameras::default();
    if let Some((path, table)) = file {
        let origin = |key: &str| format!("config {}: test_cameras.{key}", path.display());
        let pick = |key: &str, value: Option<u64>, min: u64, max: u64, even: bool| {
            value
                .map(|v| check(&origin(key), v, min, max, even))
                .transpose()
        };
        cams.enabled = table.enabled.unwrap_or(true);
        cams.count = pick("count", table.count, 0, MAX_COUNT, false)?.unwrap_or(cams.count);
        cams.width = pick("width", table.width, 16, 3840, true)?.unwrap_or(cams.width);
        cams.height = pick("height", table.height, 16, 2160, true)?.unwrap_or(cams.height);
        cams.fps = pick("fps", table.fps, 1, 60, false)?.unwrap_or(cams.fps);
        cams.bitrate =
            pick("bitrate", table.bitrate, 50_000, 50_000_000, false)?.unwrap_or(cams.bitrate);
    }
    let count = match (flag, env) {
        (Some(v), _) => Some(parse_count("--test-cameras", v)?),
        (None, Some(v)) => Some(parse_count("R58_TEST_CAMERAS", v)?),
        (None, None) => None,
    };
    if let Some(count) = count {
        cams.count = count;
        cams.enabled = count > 0;
    }
    Ok(cams)
}

fn parse_count(origin: &str, value: &str) -> Result<u32, ConfigError> {
    let n = value.trim().parse::<u64>().map_err(|_| {
        invalid(
            origin,
            format!("invalid number '{value}' (expected a whole number 0..={MAX_COUNT})"),
        )
    })?;
    check(origin, n, 0, MAX_COUNT, false)
}

fn check(origin: &str, v: u64, min: u64, max: u64, even: bool) -> Result<u32, ConfigError> {
    if v < min || v > max {
        return Err(invalid(
            origin,
            format!("'{v}' is out of range (expected {min}..={max})"),
        ));
    }
    if even && !v.is_multiple_of(2) {
        return Err(invalid(origin, format!("'{v}' must be even (4:2:0 video)")));
    }
    // In range, so it fits.
    Ok(v as u32)
}
