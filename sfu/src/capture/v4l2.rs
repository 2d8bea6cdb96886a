//! A V4L2 camera as a [`FrameSource`]: mmap streaming through the `v4l` crate with a small
//! ring of buffers, NV12 or YUYV.
//!
//! Two ways out of the ring:
//! - CPU (any encoder): each dequeued buffer is handed out as a [`Picture::Raw`] slice of the
//!   mapping and re-queued on the next call. OpenH264 converts it to I420; MPP copies it once.
//! - zero copy (an encoder that [`accepts_dmabuf`](super::encoder::H264Encoder::accepts_dmabuf),
//!   i.e. MPP): every buffer is exported once as a DMA-BUF (`VIDIOC_EXPBUF`) and frames go out
//!   as [`Picture::DmaBuf`]; the CPU never touches the pixels. When the driver cannot export,
//!   the source logs why and uses the CPU path.
//!
//! The device is opened by [`FrameSource::restart`] (the supervisor calls it before each
//! attempt), so an unplugged camera is retried with backoff and resumes under the same stream
//! name when it comes back.

use std::os::fd::{AsFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};
use v4l::buffer::Type;
use v4l::capability::Flags;
use v4l::io::mmap::Stream as MmapStream;
use v4l::io::traits::{CaptureStream, Stream as _};
use v4l::video::Capture;
use v4l::{Device, Format, FourCC};

use super::mpp::export_dmabuf;
use super::source::{
    Captured, DmaBufFrame, FrameSource, Picture, RawFormat, RawFrame, RawLayout, SourceError,
};

/// Buffers in the capture ring: one being encoded, one being filled, two of slack for jitter.
pub const RING_BUFFERS: u32 = 4;

/// Pixel formats a camera may be configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    Nv12,
    Yuyv,
    /// Motion JPEG: listed so the configuration can name it and be told why it does not work
    /// (neither encoder here takes JPEG input; it would need a JPEG decoder first).
    Mjpeg,
}

impl CaptureFormat {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "NV12" => Some(Self::Nv12),
            "YUYV" | "YUY2" => Some(Self::Yuyv),
            "MJPEG" | "MJPG" => Some(Self::Mjpeg),
            _ => None,
        }
    }

    pub fn fourcc(self) -> [u8; 4] {
        match self {
            Self::Nv12 => *b"NV12",
            Self::Yuyv => *b"YUYV",
            Self::Mjpeg => *b"MJPG",
        }
    }

    /// The raw layout an encoder reads, or why this format cannot be encoded here.
    pub fn raw(self) -> Result<RawFormat, &'static str> {
        match self {
            Self::Nv12 => Ok(RawFormat::Nv12),
            Self::Yuyv => Ok(RawFormat::Yuyv),
            Self::Mjpeg => Err(
                "MJPEG input is not supported: neither H.264 encoder here (MPP, OpenH264) takes \
                 JPEG frames; choose NV12 or YUYV (see `r58 cameras` for what the device offers)",
            ),
        }
    }
}

/// What to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V4l2Settings {
    /// `/dev/video0` or a stable `/dev/v4l/by-id/...` link.
    pub device: PathBuf,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub format: CaptureFormat,
}

/// An open, streaming device.
struct Open {
    // Fields drop in this order: the exported DMA-BUFs first (a kernel that refuses to free
    // buffers still exported would make the stream's release fail), then the stream (off,
    // unmapped, buffers freed) while the device is still open.
    dmabufs: Vec<OwnedFd>,
    stream: MmapStream<'static>,
    layout: RawLayout,
    /// Zero-copy mode: the index of the buffer handed out last, re-queued on the next call.
    held: Option<usize>,
    started: bool,
    _device: Device,
}

/// A V4L2 capture device.
pub struct V4l2Source {
    settings: V4l2Settings,
    zero_copy: bool,
    open: Option<Open>,
}

fn failed(what: impl std::fmt::Display) -> SourceError {
    SourceError::Failed(what.to_string())
}

impl V4l2Source {
    /// A source for `settings`; nothing is opened until the supervisor's first attempt.
    /// `zero_copy` asks for DMA-BUF frames (only for an encoder that takes them).
    pub fn new(settings: V4l2Settings, zero_copy: bool) -> Result<Self, SourceError> {
        settings.format.raw().map_err(failed)?;
        Ok(Self {
            settings,
            zero_copy,
            open: None,
        })
    }

    fn open(&self) -> Result<Open, SourceError> {
        let s = &self.settings;
        let path = s.device.display();
        let device = Device::with_path(&s.device).map_err(|e| failed(format!("{path}: {e}")))?;
        let caps = device
            .query_caps()
            .map_err(|e| failed(format!("{path} is not a V4L2 device: {e}")))?;
        if !caps.capabilities.contains(Flags::VIDEO_CAPTURE) {
            let why = if caps.capabilities.contains(Flags::VIDEO_CAPTURE_MPLANE) {
                "is a multi-planar capture device, which this version does not support"
            } else {
                "cannot capture video"
            };
            return Err(failed(format!("{path} ({}) {why}", caps.card)));
        }
        if !caps.capabilities.contains(Flags::STREAMING) {
            return Err(failed(format!("{path} ({}) cannot stream", caps.card)));
        }
        let raw = s.format.raw().map_err(failed)?;
        let wanted = Format::new(s.width, s.height, FourCC::new(&s.format.fourcc()));
        let got = device
            .set_format(&wanted)
            .map_err(|e| failed(format!("{path}: cannot set the format: {e}")))?;
        if (got.width, got.height, got.fourcc) != (s.width, s.height, wanted.fourcc) {
            return Err(failed(format!(
                "{path} offers {}x{} {} instead of {}x{} {} (see `r58 cameras`)",
                got.width, got.height, got.fourcc, s.width, s.height, wanted.fourcc
            )));
        }
        let layout = layout_of(raw, &got)?;
        // Not every driver can set the rate; the supervisor paces frames anyway.
        if let Err(e) = device.set_params(&v4l::video::capture::Parameters::with_fps(s.fps)) {
            warn!(device = %path, error = %e, "cannot set the frame rate");
        }
        let mut stream = MmapStream::with_buffers(&device, Type::VideoCapture, RING_BUFFERS)
            .map_err(|e| failed(format!("{path}: cannot map capture buffers: {e}")))?;
        // Waiting longer than about a frame would delay the camera's other work; a late frame
        // is picked up on the next call, and 2 s without one ends the stream as stalled.
        stream.set_timeout(Duration::from_millis(
            u64::from(1500 / s.fps.max(1)).max(20),
        ));
        let dmabufs = if self.zero_copy {
            self.export_all(&device, &path.to_string())
        } else {
            Vec::new()
        };
        info!(
            device = %path,
            card = %caps.card,
            width = s.width,
            height = s.height,
            format = %wanted.fourcc,
            stride = layout.stride,
            zero_copy = !dmabufs.is_empty(),
            "camera device open"
        );
        Ok(Open {
            dmabufs,
            stream,
            layout,
            held: None,
            started: false,
            _device: device,
        })
    }

    /// Exports every ring buffer as a DMA-BUF, or none (and says why).
    fn export_all(&self, device: &Device, path: &str) -> Vec<OwnedFd> {
        let mut fds = Vec::new();
        for index in 0..RING_BUFFERS {
            match export_dmabuf(device, Type::VideoCapture as u32, index) {
                Ok(f) => fds.push(f),
                Err(e) => {
                    warn!(device = path, error = %e, "no DMA-BUF export; frames are copied by the CPU");
                    return Vec::new();
                }
            }
        }
        fds
    }

    fn close(&mut self) {
        if let Some(open) = self.open.take() {
            // The v4l crate panics when stopping a stream fails for a reason other than an
            // unplugged device; a camera must not take its thread down with it.
            if std::panic::catch_unwind(AssertUnwindSafe(|| drop(open))).is_err() {
                warn!(device = %self.settings.device.display(), "closing the device failed");
            }
        }
    }
}

/// The layout of a negotiated format.
fn layout_of(format: RawFormat, got: &Format) -> Result<RawLayout, SourceError> {
    let stride = got.stride as usize;
    let min_stride = match format {
        RawFormat::Nv12 => got.width as usize,
        RawFormat::Yuyv => got.width as usize * 2,
    };
    if stride < min_stride {
        return Err(failed(format!(
            "driver reports {stride} bytes per row for {} pixels",
            got.width
        )));
    }
    let layout = RawLayout {
        format,
        width: got.width,
        height: got.height,
        stride,
        plane_rows: got.height as usize,
    };
    if (got.size as usize) < layout.len() {
        return Err(failed(format!(
            "driver reports {} bytes per frame, {} needed",
            got.size,
            layout.len()
        )));
    }
    Ok(layout)
}

impl FrameSource for V4l2Source {
    fn restart(&mut self) -> Result<(), SourceError> {
        self.close();
        self.open = Some(self.open()?);
        Ok(())
    }

    fn next_frame(&mut self, now: Instant) -> Result<Captured<'_>, SourceError> {
        let Some(open) = self.open.as_mut() else {
            return Err(failed("device not open"));
        };
        let result = if open.dmabufs.is_empty() {
            next_mapped(open)
        } else {
            next_dmabuf(open)
        };
        // On a failure the device stays as it is: the supervisor calls `restart`, which closes
        // and reopens it, before trying again.
        result
            .map(|image| Captured { image, at: now })
            .map_err(ReadError::into_source_error)
    }
}

/// Why reading a frame did not work.
enum ReadError {
    Timeout,
    Short { got: usize, need: usize },
    Io(std::io::Error),
}

impl ReadError {
    fn into_source_error(self) -> SourceError {
        match self {
            ReadError::Timeout => SourceError::NoFrame,
            // A truncated frame (a USB hiccup) is skipped, not fatal; a stall ends the stream.
            ReadError::Short { got, need } => {
                debug!(got, need, "truncated frame skipped");
                SourceError::NoFrame
            }
            ReadError::Io(e) => failed(format!("capture failed: {e}")),
        }
    }
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::TimedOut {
            ReadError::Timeout
        } else {
            ReadError::Io(e)
        }
    }
}

fn next_mapped(open: &mut Open) -> Result<Picture<'_>, ReadError> {
    let layout = open.layout;
    let (data, meta) = CaptureStream::next(&mut open.stream)?;
    let used = if meta.bytesused == 0 {
        data.len()
    } else {
        (meta.bytesused as usize).min(data.len())
    };
    if used < layout.len() {
        return Err(ReadError::Short {
            got: used,
            need: layout.len(),
        });
    }
    Ok(Picture::Raw(RawFrame {
        layout,
        data: &data[..used],
    }))
}

fn next_dmabuf(open: &mut Open) -> Result<Picture<'_>, ReadError> {
    if !open.started {
        for index in 0..open.dmabufs.len() {
            CaptureStream::queue(&mut open.stream, index)?;
        }
        open.stream.start()?;
        open.started = true;
    } else if let Some(index) = open.held.take() {
        CaptureStream::queue(&mut open.stream, index)?;
    }
    let index = CaptureStream::dequeue(&mut open.stream)?;
    let Some(fd) = open.dmabufs.get(index) else {
        return Err(ReadError::Io(std::io::Error::other(format!(
            "driver returned buffer {index} of {}",
            open.dmabufs.len()
        ))));
    };
    open.held = Some(index);
    Ok(Picture::DmaBuf(DmaBufFrame {
        layout: open.layout,
        fd: fd.as_fd(),
        buffer_len: open.layout.len(),
    }))
}

impl Drop for V4l2Source {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(device: &str, format: CaptureFormat) -> V4l2Settings {
        V4l2Settings {
            device: device.into(),
            width: 640,
            height: 480,
            fps: 30,
            format,
        }
    }

    #[test]
    fn formats_parse_and_mjpeg_is_refused_with_a_reason() {
        assert_eq!(CaptureFormat::parse("nv12"), Some(CaptureFormat::Nv12));
        assert_eq!(CaptureFormat::parse("YUY2"), Some(CaptureFormat::Yuyv));
        assert_eq!(CaptureFormat::parse("MJPG"), Some(CaptureFormat::Mjpeg));
        assert_eq!(CaptureFormat::parse("H264"), None);
        let err = V4l2Source::new(settings("/dev/video0", CaptureFormat::Mjpeg), false)
            .err()
            .expect("MJPEG refused");
        assert!(
            err.to_string().starts_with("MJPEG input is not supported"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_device_fails_and_says_which() {
        let mut source =
            V4l2Source::new(settings("/dev/video-r58-none", CaptureFormat::Nv12), true)
                .expect("source");
        let err = source.restart().expect_err("no device");
        assert!(
            err.to_string().starts_with("/dev/video-r58-none: "),
            "{err}"
        );
        assert!(matches!(
            source.next_frame(Instant::now()),
            Err(SourceError::Failed(_))
        ));
    }

    #[test]
    fn a_file_that_is_not_a_camera_is_refused() {
        let mut source =
            V4l2Source::new(settings("/dev/null", CaptureFormat::Yuyv), false).expect("source");
        let err = source.restart().expect_err("not V4L2");
        assert!(
            err.to_string()
                .starts_with("/dev/null is not a V4L2 device"),
            "{err}"
        );
    }

    #[test]
    fn negotiated_layouts() {
        let mut f = Format::new(640, 480, FourCC::new(b"NV12"));
        f.stride = 640;
        f.size = 640 * 480 * 3 / 2;
        let l = layout_of(RawFormat::Nv12, &f).expect("layout");
        assert_eq!((l.stride, l.plane_rows, l.len()), (640, 480, 460_800));
        f.stride = 600;
        assert!(
            layout_of(RawFormat::Nv12, &f).is_err(),
            "stride below width"
        );
        let mut y = Format::new(640, 480, FourCC::new(b"YUYV"));
        y.stride = 1280;
        y.size = 1280 * 480;
        assert_eq!(
            layout_of(RawFormat::Yuyv, &y).expect("layout").len(),
            614_400
        );
        y.size = 1000;
        assert!(layout_of(RawFormat::Yuyv, &y).is_err(), "size too small");
    }
}
