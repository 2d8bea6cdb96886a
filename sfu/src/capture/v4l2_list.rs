//! What the V4L2 devices of this machine can capture, for `r58 cameras`: each device with its
//! formats, frame sizes and frame rates, in the spirit of `v4l2-ctl --list-formats-ext`, plus
//! the stable `/dev/v4l/by-id` names to put in the configuration.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use v4l::capability::Flags;
use v4l::format::description::Flags as FormatFlags;
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::video::Capture;
use v4l::{Device, FourCC};

use super::v4l2::CaptureFormat;

/// One device node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub path: PathBuf,
    /// `/dev/v4l/by-id/...` links to this node.
    pub by_id: Vec<PathBuf>,
    pub card: String,
    pub driver: String,
    pub bus: String,
    /// `None` when the node is a capture device that could be queried; else why not listed.
    pub problem: Option<String>,
    pub formats: Vec<FormatInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatInfo {
    pub fourcc: [u8; 4],
    pub description: String,
    pub compressed: bool,
    pub sizes: Vec<SizeInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeInfo {
    Discrete {
        width: u32,
        height: u32,
        intervals: Vec<IntervalInfo>,
    },
    Stepwise {
        min: (u32, u32),
        max: (u32, u32),
        step: (u32, u32),
    },
}

/// A frame interval, seconds as numerator / denominator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntervalInfo {
    Discrete(u32, u32),
    Stepwise { min: (u32, u32), max: (u32, u32) },
}

/// Every `/dev/video*` node, sorted by name, each described as far as it answers.
pub fn list_devices() -> Vec<DeviceInfo> {
    let mut nodes: Vec<PathBuf> = std::fs::read_dir("/dev")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("video"))
                })
                .collect()
        })
        .unwrap_or_default();
    nodes.sort_by_key(|p| natural_key(p));
    let links = by_id_links(Path::new("/dev/v4l/by-id"));
    nodes
        .into_iter()
        .map(|path| {
            let by_id = links
                .iter()
                .filter(|(_, target)| *target == path)
                .map(|(link, _)| link.clone())
                .collect();
            describe_device(path, by_id)
        })
        .collect()
}

/// `video10` after `video9`.
fn natural_key(p: &Path) -> (usize, String) {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (name.len(), name)
}

/// (link, canonical target) of each symlink in `dir`.
fn by_id_links(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut links: Vec<(PathBuf, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let link = e.path();
            std::fs::canonicalize(&link).ok().map(|t| (link, t))
        })
        .collect();
    links.sort();
    links
}

fn describe_device(path: PathBuf, by_id: Vec<PathBuf>) -> DeviceInfo {
    let mut info = DeviceInfo {
        path,
        by_id,
        card: String::new(),
        driver: String::new(),
        bus: String::new(),
        problem: None,
        formats: Vec::new(),
    };
    let device = match Device::with_path(&info.path) {
        Ok(d) => d,
        Err(e) => {
            info.problem = Some(format!("cannot open: {e}"));
            return info;
        }
    };
    let caps = match device.query_caps() {
        Ok(c) => c,
        Err(e) => {
            info.problem = Some(format!("not a V4L2 device: {e}"));
            return info;
        }
    };
    info.card = caps.card;
    info.driver = caps.driver;
    info.bus = caps.bus;
    if !caps.capabilities.contains(Flags::VIDEO_CAPTURE) {
        info.problem = Some(
            if caps.capabilities.contains(Flags::VIDEO_CAPTURE_MPLANE) {
                "multi-planar capture: not supported by r58 yet"
            } else {
                "no video capture (a metadata, output or codec node)"
            }
            .into(),
        );
        return info;
    }
    let formats = match device.enum_formats() {
        Ok(f) => f,
        Err(e) => {
            info.problem = Some(format!("cannot list formats: {e}"));
            return info;
        }
    };
    for f in formats {
        let sizes = device
            .enum_framesizes(f.fourcc)
            .unwrap_or_default()
            .into_iter()
            .map(|s| match s.size {
                FrameSizeEnum::Discrete(d) => SizeInfo::Discrete {
                    width: d.width,
                    height: d.height,
                    intervals: intervals(&device, f.fourcc, d.width, d.height),
                },
                FrameSizeEnum::Stepwise(s) => SizeInfo::Stepwise {
                    min: (s.min_width, s.min_height),
                    max: (s.max_width, s.max_height),
                    step: (s.step_width, s.step_height),
                },
            })
            .collect();
        info.formats.push(FormatInfo {
            fourcc: f.fourcc.repr,
            description: f.description,
            compressed: f.flags.contains(FormatFlags::COMPRESSED),
            sizes,
        });
    }
    info
}

fn intervals(device: &Device, fourcc: FourCC, width: u32, height: u32) -> Vec<IntervalInfo> {
    device
        .enum_frameintervals(fourcc, width, height)
        .unwrap_or_default()
        .into_iter()
        .map(|i| match i.interval {
            FrameIntervalEnum::Discrete(f) => IntervalInfo::Discrete(f.numerator, f.denominator),
            FrameIntervalEnum::Stepwise(s) => IntervalInfo::Stepwise {
                min: (s.min.numerator, s.min.denominator),
                max: (s.max.numerator, s.max.denominator),
            },
        })
        .collect()
}

/// Frames per second of an interval (seconds per frame as a fraction).
fn fps(num: u32, den: u32) -> String {
    if num == 0 {
        return "? fps".into();
    }
    format!("{:.3} fps", f64::from(den) / f64::from(num))
}

/// Whether a camera configured with this fourcc works (NV12, YUYV).
fn usable(fourcc: &str) -> bool {
    CaptureFormat::parse(fourcc).is_some_and(|f| f.raw().is_ok())
}

/// The listing as text.
pub fn format_listing(devices: &[DeviceInfo]) -> String {
    let mut out = String::new();
    if devices.is_empty() {
        out.push_str(
            "No V4L2 devices found (no /dev/video* nodes). Plug in a camera, or check that its \
             driver is loaded (`ls /dev/video*`, `dmesg`).\n",
        );
        return out;
    }
    for d in devices {
        let _ = write!(out, "{}", d.path.display());
        if !d.card.is_empty() {
            let _ = write!(out, ": {} ({}, {})", d.card, d.driver, d.bus);
        }
        out.push('\n');
        for link in &d.by_id {
            let _ = writeln!(out, "  stable name: {}", link.display());
        }
        if let Some(problem) = &d.problem {
            let _ = writeln!(out, "  skipped: {problem}");
            continue;
        }
        if d.formats.is_empty() {
            out.push_str("  no formats\n");
        }
        for (i, f) in d.formats.iter().enumerate() {
            let fourcc = String::from_utf8_lossy(&f.fourcc).into_owned();
            let _ = write!(
                out,
                "  [{i}] '{fourcc}' ({}{})",
                f.description,
                if f.compressed { ", compressed" } else { "" }
            );
            if usable(&fourcc) {
                let _ = writeln!(out, "  -- usable: format = \"{}\"", fourcc.trim());
            } else {
                out.push_str("  -- not usable by r58\n");
            }
            for s in &f.sizes {
                match s {
                    SizeInfo::Discrete {
                        width,
                        height,
                        intervals,
                    } => {
                        let rates: Vec<String> = intervals
                            .iter()
                            .map(|i| match i {
                                IntervalInfo::Discrete(n, d) => fps(*n, *d),
                                IntervalInfo::Stepwise { min, max } => {
                                    format!("{} to {}", fps(max.0, max.1), fps(min.0, min.1))
                                }
                            })
                            .collect();
                        let _ = writeln!(out, "      {width}x{height}: {}", rates.join(", "));
                    }
                    SizeInfo::Stepwise { min, max, step } => {
                        let _ = writeln!(
                            out,
                            "      {}x{} to {}x{}, step {}x{}",
                            min.0, min.1, max.0, max.1, step.0, step.1
                        );
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_devices_says_so() {
        let text = format_listing(&[]);
        assert!(text.starts_with("No V4L2 devices found"), "{text}");
    }

    #[test]
    fn a_device_lists_formats_sizes_and_rates() {
        let dev = DeviceInfo {
            path: "/dev/video0".into(),
            by_id: vec!["/dev/v4l/by-id/usb-Cam_123-video-index0".into()],
            card: "USB Cam".into(),
            driver: "uvcvideo".into(),
            bus: "usb-xhci-hcd.0-1".into(),
            problem: None,
            formats: vec![
                FormatInfo {
                    fourcc: *b"MJPG",
                    description: "Motion-JPEG".into(),
                    compressed: true,
                    sizes: vec![SizeInfo::Discrete {
                        width: 1920,
                        height: 1080,
                        intervals: vec![IntervalInfo::Discrete(1, 30)],
                    }],
                },
                FormatInfo {
                    fourcc: *b"YUYV",
                    description: "YUYV 4:2:2".into(),
                    compressed: false,
                    sizes: vec![
                        SizeInfo::Discrete {
                            width: 640,
                            height: 480,
                            intervals: vec![
                                IntervalInfo::Discrete(1, 30),
                                IntervalInfo::Discrete(1001, 15000),
                            ],
                        },
                        SizeInfo::Stepwise {
                            min: (16, 16),
                            max: (1280, 720),
                            step: (2, 2),
                        },
                    ],
                },
            ],
        };
        let meta = DeviceInfo {
            path: "/dev/video1".into(),
            by_id: vec![],
            card: "USB Cam".into(),
            driver: "uvcvideo".into(),
            bus: "usb-xhci-hcd.0-1".into(),
            problem: Some("no video capture (a metadata, output or codec node)".into()),
            formats: vec![],
        };
        assert_eq!(
            format_listing(&[dev, meta]),
            "/dev/video0: USB Cam (uvcvideo, usb-xhci-hcd.0-1)\n\
             \x20 stable name: /dev/v4l/by-id/usb-Cam_123-video-index0\n\
             \x20 [0] 'MJPG' (Motion-JPEG, compressed)  -- not usable by r58\n\
             \x20     1920x1080: 30.000 fps\n\
             \x20 [1] 'YUYV' (YUYV 4:2:2)  -- usable: format = \"YUYV\"\n\
             \x20     640x480: 30.000 fps, 14.985 fps\n\
             \x20     16x16 to 1280x720, step 2x2\n\
             /dev/video1: USB Cam (uvcvideo, usb-xhci-hcd.0-1)\n\
             \x20 skipped: no video capture (a metadata, output or codec node)\n"
        );
    }

    #[test]
    fn listing_this_machine_does_not_fail() {
        // Whatever this machine has (usually nothing in CI), listing works and each node found
        // is either described or says why not.
        for d in list_devices() {
            assert!(d.problem.is_some() || !d.card.is_empty(), "{d:?}");
        }
        assert_eq!(
            natural_key(Path::new("/dev/video10")).cmp(&natural_key(Path::new("/dev/video9"))),
            std::cmp::Ordering::Greater
        );
    }
}
