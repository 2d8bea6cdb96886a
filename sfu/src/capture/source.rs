//! The boundary between a picture producer (V4L2 device, test pattern) and the rest of the camera
//! pipeline. Failures are simulated at this boundary in tests.

use std::os::fd::BorrowedFd;
use std::time::Instant;

use super::frame::{FrameError, I420Frame, nv12_to_i420, yuyv_to_i420};

/// Why a source gave no picture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// Nothing new yet (a device that is late). Not a failure by itself: the supervisor ends the
    /// stream only when this lasts past the stall timeout.
    #[error("no frame available")]
    NoFrame,
    /// The device is gone or broken; the supervisor ends the stream and retries with backoff.
    #[error("{0}")]
    Failed(String),
}

/// A picture and when it was captured.
#[derive(Debug)]
pub struct Captured<'a> {
    pub image: Picture<'a>,
    /// The capture instant (drives the RTP timestamp).
    pub at: Instant,
}

/// A picture as a source delivers it: already I420 (the test pattern), or a device buffer in
/// the device's own layout, which each encoder takes as it can (MPP reads NV12 and YUYV
/// itself; OpenH264 needs I420, converted on the CPU).
#[derive(Debug, Clone, Copy)]
pub enum Picture<'a> {
    I420(&'a I420Frame),
    /// A device buffer mapped into this process (V4L2 mmap streaming).
    Raw(RawFrame<'a>),
    /// A device buffer handed over as a DMA-BUF file descriptor, never touched by the CPU.
    /// Sources produce these only for an encoder that said it takes them
    /// ([`super::encoder::H264Encoder::accepts_dmabuf`]).
    DmaBuf(DmaBufFrame<'a>),
}

impl<'a> From<&'a I420Frame> for Picture<'a> {
    fn from(frame: &'a I420Frame) -> Self {
        Picture::I420(frame)
    }
}

impl Picture<'_> {
    /// The picture itself when it is I420 already.
    pub fn i420(&self) -> Option<&I420Frame> {
        match self {
            Picture::I420(frame) => Some(frame),
            _ => None,
        }
    }

    pub fn size(&self) -> (u32, u32) {
        match self {
            Picture::I420(f) => (f.width(), f.height()),
            Picture::Raw(r) => (r.layout.width, r.layout.height),
            Picture::DmaBuf(d) => (d.layout.width, d.layout.height),
        }
    }
}

/// Raw layouts a capture device may deliver that the encoders here take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFormat {
    /// Y plane then interleaved Cb Cr at half resolution, both with `stride` bytes per row.
    Nv12,
    /// Packed 4:2:2, Y0 Cb Y1 Cr per pixel pair; `stride` bytes per row.
    Yuyv,
}

/// How a raw buffer is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLayout {
    pub format: RawFormat,
    pub width: u32,
    pub height: u32,
    /// Bytes per row (of the luma plane for NV12).
    pub stride: usize,
    /// Rows between the start of the luma plane and the chroma plane (NV12; usually `height`,
    /// more when the driver pads the plane).
    pub plane_rows: usize,
}

impl RawLayout {
    /// Bytes the picture occupies.
    pub fn len(&self) -> usize {
        match self.format {
            RawFormat::Nv12 => {
                self.stride * self.plane_rows + self.stride * self.height as usize / 2
            }
            RawFormat::Yuyv => self.stride * self.height as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A device buffer readable by the CPU.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    pub layout: RawLayout,
    pub data: &'a [u8],
}

impl RawFrame<'_> {
    /// Converts into `out` (whose size must match) for an encoder that takes I420 only.
    pub fn to_i420(&self, out: &mut I420Frame) -> Result<(), FrameError> {
        if (out.width(), out.height()) != (self.layout.width, self.layout.height) {
            return Err(FrameError::BadSize {
                width: self.layout.width,
                height: self.layout.height,
            });
        }
        match self.layout.format {
            RawFormat::Yuyv => yuyv_to_i420(self.data, self.layout.stride, out),
            RawFormat::Nv12 => {
                let split = (self.layout.stride * self.layout.plane_rows).min(self.data.len());
                let (y, uv) = self.data.split_at(split);
                nv12_to_i420(y, uv, self.layout.stride, out)
            }
        }
    }
}

/// A device buffer by DMA-BUF descriptor, valid until the source's next frame.
#[derive(Debug, Clone, Copy)]
pub struct DmaBufFrame<'a> {
    pub layout: RawLayout,
    pub fd: BorrowedFd<'a>,
    /// Size of the whole buffer (at least `layout.len()`).
    pub buffer_len: usize,
}

/// Something that produces pictures. Called from the camera's own thread, at the camera's frame
/// rate; must not block for long (a device read waits at most about one frame time).
pub trait FrameSource {
    /// The next picture. `now` is the caller's clock, which a synthetic source uses as the capture
    /// time (so tests can run on a virtual clock); a device uses its buffer's timestamp.
    fn next_frame(&mut self, now: Instant) -> Result<Captured<'_>, SourceError>;

    /// Called before each retry after a failure: reopen the device. Sources without a device have
    /// nothing to do.
    fn restart(&mut self) -> Result<(), SourceError> {
        Ok(())
    }
}
