//! The `[test_cameras]` table and the `--test-cameras` / `R58_TEST_CAMERAS` override, and the
//! `[[camera]]` tables of V4L2 cameras.
//!
//! ```toml
//! [test_cameras]
//! enabled = true      # false: none
//! count = 2           # cam0, cam1
//! width = 1280
//! height = 720
//! fps = 30
//! bitrate = 2500000   # bits per second
//!
//! [[camera]]
//! name = "hdmi0"                                  # the stream name
//! device = "/dev/v4l/by-id/usb-Cam_123-video-index0"  # or /dev/video0
//! width = 1920
//! height = 1080
//! fps = 30
//! format = "NV12"     # NV12 or YUYV (MJPEG is refused: no encoder here takes it)
//! encoder = "auto"    # auto (MPP if its library loads, else OpenH264), mpp, openh264
//! bitrate = 6000000   # default: width x height x fps / 10, within 0.5..20 Mbit/s
//! gop = 30            # frames per keyframe; default: fps (one per second)
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sfu::capture::EncoderChoice;
use sfu::capture::v4l2::CaptureFormat;

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

/// What `r58 SUBCOMMAND` asks for instead of serving.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// List the V4L2 cameras of this machine with their formats, frame sizes and frame rates
    /// (like `v4l2-ctl --list-formats-ext`), to write [[camera]] tables from
    Cameras,
    /// Manage the users who may sign in (the [access] users_file, or --file); the password is
    /// read from the terminal without echo, or as one line from standard input
    User {
        #[command(subcommand)]
        action: super::access::UserAction,
    },
    /// Check a configuration file the way the server would load it (with the environment and
    /// flags given) and exit: 0 when it is valid, 2 with the same one-line error the server
    /// would stop with
    CheckConfig {
        /// The TOML file to check (it takes the place of --config / R58_CONFIG)
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Keys accepted in each `[[camera]]` table.
pub const CAMERA_KEYS: &[&str] = &[
    "name", "device", "width", "height", "fps", "format", "encoder", "bitrate", "gop",
];

/// A V4L2 camera to run, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraConfig {
    /// Stream name: letters, digits, `-`, `_`, `.`; unique.
    pub name: String,
    /// The device node or a stable link to it (`/dev/v4l/by-id/...`); absolute.
    pub device: PathBuf,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// NV12 or YUYV.
    pub format: CaptureFormat,
    pub encoder: EncoderChoice,
    /// Target bits per second.
    pub bitrate: u32,
    /// Frames from one keyframe to the next.
    pub gop: u32,
}

/// `[[camera]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileCamera {
    name: Option<String>,
    device: Option<String>,
    width: Option<u64>,
    height: Option<u64>,
    fps: Option<u64>,
    format: Option<String>,
    encoder: Option<String>,
    bitrate: Option<u64>,
    gop: Option<u64>,
}

/// Checks the `[[camera]]` tables. Names must be unique and must not be a test camera's.
pub(super) fn resolve_devices(
    path: &Path,
    tables: Vec<FileCamera>,
    test_cameras: &TestCameras,
) -> Result<Vec<CameraConfig>, ConfigError> {
    let mut out: Vec<CameraConfig> = Vec::with_capacity(tables.len());
    let test_names = test_cameras.names();
    for (i, t) in tables.into_iter().enumerate() {
        let origin = |key: &str| format!("config {}: camera[{i}].{key}", path.display());
        let required = |key: &str, v: Option<String>| {
            v.filter(|v| !v.trim().is_empty())
                .ok_or_else(|| invalid(&origin(key), "is required".into()))
        };
        let name = required("name", t.name)?;
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || name.len() > 64
        {
            return Err(invalid(
                &origin("name"),
                format!("'{name}': use letters, digits, '-', '_' or '.' (at most 64)"),
            ));
        }
        if out.iter().any(|c| c.name == name) {
            return Err(invalid(
                &origin("name"),
                format!("'{name}' is already the name of another camera"),
            ));
        }
        if test_names.contains(&name) {
            return Err(invalid(
                &origin("name"),
                format!(
                    "'{name}' is also a test camera's name; rename it, or turn the test cameras \
                     off ([test_cameras] count = 0)"
                ),
            ));
        }
        let device = PathBuf::from(required("device", t.device)?);
        if !device.is_absolute() {
            return Err(invalid(
                &origin("device"),
                format!(
                    "'{}' must be an absolute path such as /dev/video0 or /dev/v4l/by-id/...",
                    device.display()
                ),
            ));
        }
        let pick = |key: &str, value: Option<u64>, min: u64, max: u64, even: bool, default: u32| {
            value
                .map(|v| check(&origin(key), v, min, max, even))
                .transpose()
                .map(|v| v.unwrap_or(default))
        };
        let width = pick("width", t.width, 16, 4096, true, 1280)?;
        let height = pick("height", t.height, 16, 2304, true, 720)?;
        let fps = pick("fps", t.fps, 1, 120, false, 30)?;
        let format = match t.format.as_deref() {
            None => CaptureFormat::Nv12,
            Some(text) => {
                let f = CaptureFormat::parse(text).ok_or_else(|| {
                    invalid(
                        &origin("format"),
                        format!("'{text}' is not a format (expected NV12, YUYV)"),
                    )
                })?;
                f.raw()
                    .map_err(|why| invalid(&origin("format"), why.to_owned()))?;
                f
            }
        };
        let encoder = match t.encoder.as_deref() {
            None => EncoderChoice::Auto,
            Some(text) => EncoderChoice::parse(text).ok_or_else(|| {
                invalid(
                    &origin("encoder"),
                    format!("'{text}' is not an encoder (expected auto, mpp, openh264)"),
                )
            })?,
        };
        let default_bitrate = (u64::from(width) * u64::from(height) * u64::from(fps) / 10)
            .clamp(500_000, 20_000_000) as u32;
        let bitrate = pick(
            "bitrate",
            t.bitrate,
            50_000,
            50_000_000,
            false,
            default_bitrate,
        )?;
        let gop = pick("gop", t.gop, 1, 600, false, fps)?;
        out.push(CameraConfig {
            name,
            device,
            width,
            height,
            fps,
            format,
            encoder,
            bitrate,
            gop,
        });
    }
    Ok(out)
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

/// The first key of a `[test_cameras]` or `[[camera]]` table that is not one of its keys, as
/// `test_cameras.KEY` or `camera[N].KEY`, with the keys allowed there.
pub(super) fn unknown_key(table: &toml::Table) -> Option<(String, &'static [&'static str])> {
    if let Some(toml::Value::Table(cams)) = table.get("test_cameras")
        && let Some(k) = cams
            .keys()
            .find(|k| !TEST_CAMERAS_KEYS.contains(&k.as_str()))
    {
        return Some((format!("test_cameras.{k}"), TEST_CAMERAS_KEYS));
    }
    let Some(toml::Value::Array(cams)) = table.get("camera") else {
        return None;
    };
    cams.iter().enumerate().find_map(|(i, cam)| {
        let toml::Value::Table(cam) = cam else {
            return None;
        };
        cam.keys()
            .find(|k| !CAMERA_KEYS.contains(&k.as_str()))
            .map(|k| (format!("camera[{i}].{k}"), CAMERA_KEYS))
    })
}

/// Merges the flag, the environment variable and the file table (in that precedence) over the
/// defaults. A count from the flag or the environment also decides `enabled` (0 turns the
/// cameras off, more turns them on whatever the file says).
pub(super) fn resolve(
    flag: Option<&str>,
    env: Option<&str>,
    file: Option<FileTables<'_>>,
) -> Result<(TestCameras, Vec<CameraConfig>), ConfigError> {
    let (tables, devices) = match file {
        Some(f) => (
            f.test_cameras.map(|t| (f.path, t)),
            Some((f.path, f.cameras)),
        ),
        None => (None, None),
    };
    let test_cameras = resolve_test_cameras(flag, env, tables)?;
    let cameras = match devices {
        Some((path, tables)) => resolve_devices(path, tables, &test_cameras)?,
        None => Vec::new(),
    };
    Ok((test_cameras, cameras))
}

/// The camera tables of one config file.
pub(super) struct FileTables<'a> {
    path: &'a Path,
    test_cameras: Option<FileTestCameras>,
    cameras: Vec<FileCamera>,
}

impl<'a> FileTables<'a> {
    /// Takes the camera tables out of a parsed file.
    pub(super) fn take(
        path: &'a Path,
        test_cameras: &mut Option<FileTestCameras>,
        cameras: &mut Vec<FileCamera>,
    ) -> Option<Self> {
        Some(Self {
            path,
            test_cameras: test_cameras.take(),
            cameras: std::mem::take(cameras),
        })
    }
}

fn resolve_test_cameras(
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::Config;
    use super::*;

    fn load(toml: &str, extra: &[&str]) -> Result<Config, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r58.toml");
        std::fs::write(&path, toml).expect("write");
        let args = ["r58", "--config", path.to_str().expect("utf-8")]
            .into_iter()
            .chain(extra.iter().copied())
            .map(str::to_owned);
        Config::from_args_env_file(args, &HashMap::new()).map_err(|e| {
            // Messages name the file; drop its temporary path for the assertions.
            e.to_string().replace(&path.display().to_string(), "FILE")
        })
    }

    #[test]
    fn a_camera_table_with_defaults() {
        let c = load(
            "[[camera]]\nname = \"usb0\"\ndevice = \"/dev/v4l/by-id/usb-Cam-video-index0\"\n\
             width = 1920\nheight = 1080\nformat = \"yuyv\"\nencoder = \"openh264\"\n\
             [[camera]]\nname = \"hdmi\"\ndevice = \"/dev/video0\"\nfps = 60\nbitrate = 8000000\n\
             gop = 120\n",
            &[],
        )
        .expect("config");
        assert_eq!(
            c.cameras,
            [
                CameraConfig {
                    name: "usb0".into(),
                    device: "/dev/v4l/by-id/usb-Cam-video-index0".into(),
                    width: 1920,
                    height: 1080,
                    fps: 30,
                    format: CaptureFormat::Yuyv,
                    encoder: EncoderChoice::OpenH264,
                    bitrate: 6_220_800,
                    gop: 30,
                },
                CameraConfig {
                    name: "hdmi".into(),
                    device: "/dev/video0".into(),
                    width: 1280,
                    height: 720,
                    fps: 60,
                    format: CaptureFormat::Nv12,
                    encoder: EncoderChoice::Auto,
                    bitrate: 8_000_000,
                    gop: 120,
                },
            ]
        );
        assert_eq!(
            c.test_cameras.names(),
            ["cam0", "cam1"],
            "test cameras stay"
        );
        assert!(load("", &[]).expect("empty").cameras.is_empty());
    }

    #[test]
    fn bad_camera_tables_are_one_line_errors() {
        let cam =
            |rest: &str| format!("[[camera]]\nname = \"a\"\ndevice = \"/dev/video0\"\n{rest}");
        let cases = [
            (
                "[[camera]]\ndevice = \"/dev/video0\"\n".to_owned(),
                "config FILE: camera[0].name: is required",
            ),
            (
                "[[camera]]\nname = \"a\"\n".to_owned(),
                "config FILE: camera[0].device: is required",
            ),
            (
                cam("").replace("/dev/video0", "video0"),
                "config FILE: camera[0].device: 'video0' must be an absolute path such as \
                 /dev/video0 or /dev/v4l/by-id/...",
            ),
            (
                cam("format = \"MJPEG\"\n"),
                "config FILE: camera[0].format: MJPEG input is not supported: neither H.264 \
                 encoder here (MPP, OpenH264) takes JPEG frames; choose NV12 or YUYV (see `r58 \
                 cameras` for what the device offers)",
            ),
            (
                cam("format = \"H264\"\n"),
                "config FILE: camera[0].format: 'H264' is not a format (expected NV12, YUYV)",
            ),
            (
                cam("encoder = \"x264\"\n"),
                "config FILE: camera[0].encoder: 'x264' is not an encoder (expected auto, mpp, \
                 openh264)",
            ),
            (
                cam("width = 641\n"),
                "config FILE: camera[0].width: '641' must be even (4:2:0 video)",
            ),
            (
                cam("fps = 0\n"),
                "config FILE: camera[0].fps: '0' is out of range (expected 1..=120)",
            ),
            (
                cam("devise = \"/dev/video1\"\n"),
                "config FILE: unknown key 'camera[0].devise' (expected one of name, device, \
                 width, height, fps, format, encoder, bitrate, gop)",
            ),
            (
                format!("{}{}", cam(""), cam("").replace("video0", "video2")),
                "config FILE: camera[1].name: 'a' is already the name of another camera",
            ),
            (
                cam("").replace("\"a\"", "\"cam1\""),
                "config FILE: camera[0].name: 'cam1' is also a test camera's name; rename it, or \
                 turn the test cameras off ([test_cameras] count = 0)",
            ),
            (
                cam("").replace("\"a\"", "\"a b\""),
                "config FILE: camera[0].name: 'a b': use letters, digits, '-', '_' or '.' (at \
                 most 64)",
            ),
        ];
        for (toml, want) in cases {
            assert_eq!(load(&toml, &[]).expect_err(&toml), want);
        }
        // Without test cameras, their names are free.
        let c = load(
            &cam("").replace("\"a\"", "\"cam1\""),
            &["--test-cameras", "0"],
        )
        .expect("config");
        assert_eq!(c.cameras[0].name, "cam1");
    }

    #[test]
    fn the_cameras_subcommand_parses_beside_flags() {
        let c = load("", &["cameras"]).expect("config");
        assert_eq!(c.command, Some(Command::Cameras));
        assert_eq!(load("", &[]).expect("config").command, None);
    }
}
