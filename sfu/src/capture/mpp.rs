//! H.264 on the Rockchip VPU through MPP ([`rockchip_mpp_sys`]): a safe encoder over the C API.
//!
//! Input paths, in order of preference:
//! - **DMA-BUF (zero copy)**: a V4L2 buffer exported as a DMA-BUF fd (`VIDIOC_EXPBUF`, see
//!   [`export_dmabuf`]) is imported into MPP (`mpp_buffer_import`, `MPP_BUFFER_TYPE_EXT_DMA`)
//!   and the VPU reads the camera's memory directly. NV12 and YUYV are read natively.
//! - **CPU copy (fallback)**: a picture in process memory (the test pattern's I420, or a V4L2
//!   mmap buffer when the device cannot export DMA-BUFs) is copied once per frame into an MPP
//!   buffer from an internal DRM group, in its own layout (no conversion). At 1080p NV12 that is
//!   3 MB per frame, about 90 MB/s at 30 fps: a memcpy, not an encode.
//!
//! All `unsafe` of the camera pipeline lives here (and in `rockchip-mpp-sys`).
// The safe encoder over MPP's C API: every call into it is FFI (workspace lints).
#![allow(unsafe_code)]

use std::ffi::{CStr, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use bytes::Bytes;
use rockchip_mpp_sys as sys;

use super::encoder::{EncodeError, EncoderSettings, H264Encoder, check_size, rtp_time};
use super::frame::I420Frame;
use super::source::{Picture, RawFormat, RawLayout};
use crate::media::h264::AccessUnit;

/// Requested IDRs closer together than this are deferred (the caller keeps asking), so a storm
/// of keyframe requests from many viewers cannot turn the stream into all-intra frames.
pub const MIN_FORCED_IDR_INTERVAL_MS: u64 = 200;
/// How long `encode_get_packet` may wait for the VPU before the frame counts as failed.
const OUTPUT_TIMEOUT_MS: i64 = 1000;

/// Rate control of the MPP encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateControl {
    /// Constant bit rate: what a live stream over a fixed link wants.
    Cbr,
    Vbr,
}

/// MPP-specific settings on top of [`EncoderSettings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MppOptions {
    pub rate_control: RateControl,
    /// `profile_idc`: 66 baseline (constrained: MPP sets constraint_set0 and 1), 77 main, 100
    /// high. WebRTC viewers all decode constrained baseline.
    pub profile: i32,
    /// `level_idc`; `None` picks the smallest level the size and rate need.
    pub level: Option<u8>,
}

impl Default for MppOptions {
    fn default() -> Self {
        Self {
            rate_control: RateControl::Cbr,
            profile: sys::H264_PROFILE_BASELINE,
            level: None,
        }
    }
}

/// The MPP frame format for a device layout.
fn mpp_format(format: RawFormat) -> sys::MppFrameFormat {
    match format {
        RawFormat::Nv12 => sys::MPP_FMT_YUV420SP,
        RawFormat::Yuyv => sys::MPP_FMT_YUV422_YUYV,
    }
}

/// What the encoder is configured to read: format, luma stride in bytes, rows per plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InputShape {
    format: sys::MppFrameFormat,
    hor_stride: u32,
    ver_stride: u32,
}

impl InputShape {
    fn of_raw(layout: &RawLayout) -> Self {
        Self {
            format: mpp_format(layout.format),
            hor_stride: layout.stride as u32,
            ver_stride: match layout.format {
                RawFormat::Nv12 => layout.plane_rows as u32,
                RawFormat::Yuyv => layout.height,
            },
        }
    }

    /// I420 copied with 16-aligned strides, the alignment MPP's own tools use.
    fn of_i420(width: u32, height: u32) -> Self {
        Self {
            format: sys::MPP_FMT_YUV420P,
            hor_stride: width.next_multiple_of(16),
            ver_stride: height.next_multiple_of(16),
        }
    }

    /// Bytes of one picture in this shape.
    fn len(&self) -> usize {
        let plane = self.hor_stride as usize * self.ver_stride as usize;
        match self.format {
            sys::MPP_FMT_YUV422_YUYV => plane,
            _ => plane * 3 / 2,
        }
    }
}

fn check(what: &str, ret: sys::MPP_RET) -> Result<(), String> {
    if ret == sys::MPP_OK {
        Ok(())
    } else {
        Err(format!("{what} failed: {} ({ret})", sys::mpp_ret_name(ret)))
    }
}

/// An H.264 encoder on the VPU. Not `Send`: MPP contexts stay on the thread that made them.
pub struct MppEncoder {
    mpp: Arc<sys::Mpp>,
    ctx: sys::MppCtx,
    api: sys::MppApi,
    cfg: sys::MppEncCfg,
    /// Internal (MPP-allocated) buffers for the CPU-copy path; made on first use.
    group: sys::MppBufferGroup,
    input: sys::MppBuffer,
    input_len: usize,
    shape: Option<InputShape>,
    settings: EncoderSettings,
    options: MppOptions,
    last_forced_idr_ms: Option<u64>,
}

impl MppEncoder {
    /// Opens an encoder context for `settings`.
    pub fn new(
        mpp: Arc<sys::Mpp>,
        settings: EncoderSettings,
        options: MppOptions,
    ) -> Result<Self, EncodeError> {
        let path = mpp.path.display().to_string();
        let init = |e: String| EncodeError::Init(format!("MPP ({path}): {e}"));
        // SAFETY: a plain query of two integers.
        let support = unsafe {
            (mpp.fns.mpp_check_support_format)(sys::MPP_CTX_ENC, sys::MPP_VIDEO_CodingAVC)
        };
        if support != sys::MPP_OK {
            return Err(init("this SoC has no H.264 encoder".into()));
        }
        let mut ctx: sys::MppCtx = std::ptr::null_mut();
        let mut api: *mut sys::MppApi = std::ptr::null_mut();
        // SAFETY: both out-pointers point to live locals.
        check("mpp_create", unsafe {
            (mpp.fns.mpp_create)(&mut ctx, &mut api)
        })
        .map_err(init)?;
        if ctx.is_null() || api.is_null() {
            return Err(init("mpp_create returned no context".into()));
        }
        // SAFETY: `api` is non-null and points to the context's function table, which lives as
        // long as the context; copying it out (it is plain data) lets us drop the pointer.
        let api = unsafe { *api };
        let mut encoder = Self {
            mpp,
            ctx,
            api,
            cfg: std::ptr::null_mut(),
            group: std::ptr::null_mut(),
            input: std::ptr::null_mut(),
            input_len: 0,
            shape: None,
            settings,
            options,
            last_forced_idr_ms: None,
        };
        // From here on `Drop` releases whatever was made.
        encoder.setup().map_err(init)?;
        Ok(encoder)
    }

    fn setup(&mut self) -> Result<(), String> {
        // i64 although MPP reads an int: the header documents RK_S64, some versions read that,
        // and on little-endian targets the low half is the same value either way.
        let mut timeout: i64 = OUTPUT_TIMEOUT_MS;
        self.control(
            "MPP_SET_OUTPUT_TIMEOUT",
            sys::MPP_SET_OUTPUT_TIMEOUT,
            (&mut timeout as *mut i64).cast(),
        )?;
        // SAFETY: `ctx` is the live context made in `new`.
        check("mpp_init", unsafe {
            (self.mpp.fns.mpp_init)(self.ctx, sys::MPP_CTX_ENC, sys::MPP_VIDEO_CodingAVC)
        })?;
        let mut cfg: sys::MppEncCfg = std::ptr::null_mut();
        // SAFETY: the out-pointer is a live local.
        check("mpp_enc_cfg_init", unsafe {
            (self.mpp.fns.mpp_enc_cfg_init)(&mut cfg)
        })?;
        self.cfg = cfg;
        self.control("MPP_ENC_GET_CFG", sys::MPP_ENC_GET_CFG, self.cfg)?;
        let (w, h) = (self.settings.width, self.settings.height);
        self.configure(InputShape::of_i420(w, h))?;
        let mut header_mode = sys::MPP_ENC_HEADER_MODE_EACH_IDR;
        self.control(
            "MPP_ENC_SET_HEADER_MODE",
            sys::MPP_ENC_SET_HEADER_MODE,
            (&mut header_mode as *mut sys::MppEncHeaderMode).cast(),
        )?;
        let mut sei = sys::MPP_ENC_SEI_MODE_DISABLE;
        self.control(
            "MPP_ENC_SET_SEI_CFG",
            sys::MPP_ENC_SET_SEI_CFG,
            (&mut sei as *mut sys::MppEncSeiMode).cast(),
        )
    }

    fn control(&mut self, what: &str, cmd: sys::MpiCmd, param: *mut c_void) -> Result<(), String> {
        let control = self.api.control.ok_or("MppApi has no control function")?;
        // SAFETY: `ctx` is live; each caller passes the parameter type the command documents
        // (rk_mpi_cmd.h), pointing to memory that outlives the call.
        check(what, unsafe { control(self.ctx, cmd, param) })
    }

    fn set_s32(&mut self, key: &CStr, value: i32) -> Result<(), String> {
        // SAFETY: `cfg` is the live config from `mpp_enc_cfg_init`; `key` is NUL-terminated.
        let ret = unsafe { (self.mpp.fns.mpp_enc_cfg_set_s32)(self.cfg, key.as_ptr(), value) };
        check(
            &format!("mpp_enc_cfg_set_s32({})", key.to_string_lossy()),
            ret,
        )
    }

    /// Sends the whole configuration for input of `shape`: picture, rate control, H.264.
    fn configure(&mut self, shape: InputShape) -> Result<(), String> {
        let s = self.settings;
        let int = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let bps = int(s.bitrate);
        let fps = int(s.fps.max(1));
        let level = self.options.level.unwrap_or_else(|| s.level_idc());
        let rc = match self.options.rate_control {
            RateControl::Cbr => sys::MPP_ENC_RC_MODE_CBR,
            RateControl::Vbr => sys::MPP_ENC_RC_MODE_VBR,
        };
        let profile = self.options.profile;
        let entries: [(&CStr, i32); 22] = [
            (c"prep:width", int(s.width)),
            (c"prep:height", int(s.height)),
            (c"prep:hor_stride", int(shape.hor_stride)),
            (c"prep:ver_stride", int(shape.ver_stride)),
            (c"prep:format", shape.format),
            (c"rc:mode", rc),
            (c"rc:bps_target", bps),
            // A CBR window of +-1/16 keeps the rate steady without starving IDRs.
            (c"rc:bps_max", bps.saturating_add(bps / 16)),
            (c"rc:bps_min", bps - bps / 16),
            (c"rc:fps_in_flex", 0),
            (c"rc:fps_in_num", fps),
            // "denorm" (sic) is the spelling every MPP version accepts.
            (c"rc:fps_in_denorm", 1),
            (c"rc:fps_out_flex", 0),
            (c"rc:fps_out_num", fps),
            (c"rc:fps_out_denorm", 1),
            (c"rc:gop", int(s.keyframe_interval.max(1))),
            (c"codec:type", sys::MPP_VIDEO_CodingAVC),
            (c"h264:profile", profile),
            (c"h264:level", i32::from(level)),
            // Baseline has neither CABAC nor 8x8 transforms; higher profiles may.
            (
                c"h264:cabac_en",
                i32::from(profile != sys::H264_PROFILE_BASELINE),
            ),
            (c"h264:cabac_idc", 0),
            (
                c"h264:trans8x8",
                i32::from(profile == sys::H264_PROFILE_HIGH),
            ),
        ];
        for (key, value) in entries {
            self.set_s32(key, value)?;
        }
        self.control("MPP_ENC_SET_CFG", sys::MPP_ENC_SET_CFG, self.cfg)?;
        self.shape = Some(shape);
        Ok(())
    }

    /// Reconfigures when the input's layout changed (first frame, a device with another stride).
    fn ensure_shape(&mut self, shape: InputShape) -> Result<(), EncodeError> {
        if self.shape != Some(shape) {
            self.configure(shape).map_err(EncodeError::Encode)?;
        }
        Ok(())
    }

    /// The CPU-copy input buffer, at least `len` bytes.
    fn input_buffer(&mut self, len: usize) -> Result<sys::MppBuffer, EncodeError> {
        if !self.input.is_null() && self.input_len >= len {
            return Ok(self.input);
        }
        if self.group.is_null() {
            let mut group: sys::MppBufferGroup = std::ptr::null_mut();
            // SAFETY: the out-pointer is a live local.
            let ret = unsafe {
                self.mpp
                    .buffer_group_get_internal(&mut group, sys::MPP_BUFFER_TYPE_DRM)
            };
            check("mpp_buffer_group_get_internal", ret).map_err(EncodeError::Encode)?;
            self.group = group;
        }
        if !self.input.is_null() {
            // SAFETY: we hold the one reference to the old buffer.
            unsafe { self.mpp.buffer_put(self.input) };
            self.input = std::ptr::null_mut();
        }
        let mut buffer: sys::MppBuffer = std::ptr::null_mut();
        // SAFETY: `group` is live, the out-pointer a live local.
        let ret = unsafe { self.mpp.buffer_get(self.group, &mut buffer, len) };
        check("mpp_buffer_get", ret).map_err(EncodeError::Encode)?;
        self.input = buffer;
        self.input_len = len;
        Ok(buffer)
    }

    /// Copies `bytes` to the start of the input buffer.
    fn copy_in(&mut self, chunks: &[(&[u8], usize)]) -> Result<sys::MppBuffer, EncodeError> {
        let len = self.shape.map_or(0, |s| s.len());
        let buffer = self.input_buffer(len)?;
        // SAFETY: `buffer` is a live MPP buffer of `input_len` bytes.
        let ptr = unsafe { self.mpp.buffer_get_ptr(buffer) }.cast::<u8>();
        if ptr.is_null() {
            return Err(EncodeError::Encode("MPP buffer has no CPU mapping".into()));
        }
        // SAFETY: the mapping is `input_len` bytes long, exclusively ours until the encoder
        // reads it in `encode_put_frame`; no Rust reference to it exists elsewhere.
        let dst = unsafe { std::slice::from_raw_parts_mut(ptr, self.input_len) };
        for (src, at) in chunks {
            let end = at + src.len();
            if end > dst.len() {
                return Err(EncodeError::Encode(format!(
                    "picture needs {end} bytes, MPP buffer has {}",
                    dst.len()
                )));
            }
            dst[*at..end].copy_from_slice(src);
        }
        Ok(buffer)
    }

    /// Copies an I420 picture into the input buffer at the configured strides.
    fn copy_i420(&mut self, frame: &I420Frame) -> Result<sys::MppBuffer, EncodeError> {
        let shape = InputShape::of_i420(frame.width(), frame.height());
        self.ensure_shape(shape)?;
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        let (hs, vs) = (shape.hor_stride as usize, shape.ver_stride as usize);
        let (cw, chs) = (w / 2, hs / 2);
        let mut chunks = Vec::with_capacity(h * 2);
        for r in 0..h {
            chunks.push((&frame.y[r * w..][..w], r * hs));
        }
        let u_at = hs * vs;
        let v_at = u_at + hs * vs / 4;
        for r in 0..h / 2 {
            chunks.push((&frame.u[r * cw..][..cw], u_at + r * chs));
            chunks.push((&frame.v[r * cw..][..cw], v_at + r * chs));
        }
        self.copy_in(&chunks)
    }

    /// Imports a DMA-BUF; the returned buffer must be put after the frame is encoded.
    fn import(&mut self, fd: BorrowedFd<'_>, size: usize) -> Result<sys::MppBuffer, EncodeError> {
        let mut info = sys::MppBufferInfo {
            type_: sys::MPP_BUFFER_TYPE_EXT_DMA,
            size,
            ptr: std::ptr::null_mut(),
            hnd: std::ptr::null_mut(),
            fd: fd.as_raw_fd(),
            index: 0,
        };
        let mut buffer: sys::MppBuffer = std::ptr::null_mut();
        // SAFETY: `info` describes an open DMA-BUF of `size` bytes; MPP's external-DMA
        // allocator borrows the fd without dup or close, and the source keeps it open until the
        // next frame, after `encode` has put this buffer. The out-pointer is a live local.
        let ret = unsafe { self.mpp.buffer_import(&mut info, &mut buffer) };
        check("mpp_buffer_import", ret).map_err(EncodeError::Encode)?;
        Ok(buffer)
    }

    /// Puts one frame in, takes its packet(s) out.
    fn run(&mut self, buffer: sys::MppBuffer, pts: i64) -> Result<Vec<u8>, String> {
        let fns = self.mpp.fns;
        let shape = self.shape.ok_or("encoder not configured")?;
        let put = self.api.encode_put_frame.ok_or("no encode_put_frame")?;
        let get = self.api.encode_get_packet.ok_or("no encode_get_packet")?;
        let mut frame: sys::MppFrame = std::ptr::null_mut();
        // SAFETY: the out-pointer is a live local.
        check("mpp_frame_init", unsafe {
            (fns.mpp_frame_init)(&mut frame)
        })?;
        // SAFETY: `frame` was just made; `buffer` is a live MPP buffer holding one picture in
        // `shape`; the frame takes its own reference to it. After `encode_put_frame` the frame
        // is ours to release (MPP keeps its own reference while encoding).
        let ret = unsafe {
            (fns.mpp_frame_set_width)(frame, self.settings.width);
            (fns.mpp_frame_set_height)(frame, self.settings.height);
            (fns.mpp_frame_set_hor_stride)(frame, shape.hor_stride);
            (fns.mpp_frame_set_ver_stride)(frame, shape.ver_stride);
            (fns.mpp_frame_set_fmt)(frame, shape.format);
            (fns.mpp_frame_set_pts)(frame, pts);
            (fns.mpp_frame_set_eos)(frame, 0);
            (fns.mpp_frame_set_buffer)(frame, buffer);
            let ret = put(self.ctx, frame);
            (fns.mpp_frame_deinit)(&mut frame);
            ret
        };
        check("encode_put_frame", ret)?;
        let mut out = Vec::new();
        // A frame comes out as one packet, or as partitions up to the end-of-image one when the
        // library splits slices; bounded so a confused library cannot spin us forever.
        for _ in 0..256 {
            let mut packet: sys::MppPacket = std::ptr::null_mut();
            // SAFETY: `ctx` is live; the out-pointer a live local.
            check("encode_get_packet", unsafe { get(self.ctx, &mut packet) })?;
            if packet.is_null() {
                return Err(format!("no packet within {OUTPUT_TIMEOUT_MS} ms"));
            }
            // SAFETY: `packet` is a live packet handed to us; its data is `length` bytes at
            // `pos`, read before the packet is released.
            let last = unsafe {
                let pos = (fns.mpp_packet_get_pos)(packet).cast::<u8>();
                let len = (fns.mpp_packet_get_length)(packet);
                if !pos.is_null() && len > 0 {
                    out.extend_from_slice(std::slice::from_raw_parts(pos, len));
                }
                let last = (fns.mpp_packet_is_partition)(packet) == 0
                    || (fns.mpp_packet_is_eoi)(packet) != 0;
                (fns.mpp_packet_deinit)(&mut packet);
                last
            };
            if last {
                return Ok(out);
            }
        }
        Err("encoder returned more than 256 partitions for one frame".into())
    }
}

impl H264Encoder for MppEncoder {
    fn name(&self) -> &'static str {
        "mpp"
    }

    fn accepts_dmabuf(&self) -> bool {
        true
    }

    fn encode(
        &mut self,
        picture: &Picture<'_>,
        timestamp_ms: u64,
        force_keyframe: bool,
    ) -> Result<AccessUnit, EncodeError> {
        check_size(picture, &self.settings)?;
        let due = self
            .last_forced_idr_ms
            .is_none_or(|at| timestamp_ms.saturating_sub(at) >= MIN_FORCED_IDR_INTERVAL_MS);
        if force_keyframe && due {
            self.control(
                "MPP_ENC_SET_IDR_FRAME",
                sys::MPP_ENC_SET_IDR_FRAME,
                std::ptr::null_mut(),
            )
            .map_err(EncodeError::Encode)?;
            self.last_forced_idr_ms = Some(timestamp_ms);
        }
        let (buffer, imported) = match picture {
            Picture::I420(frame) => (self.copy_i420(frame)?, false),
            Picture::Raw(raw) => {
                let shape = InputShape::of_raw(&raw.layout);
                self.ensure_shape(shape)?;
                let len = shape.len().min(raw.data.len());
                (self.copy_in(&[(&raw.data[..len], 0)])?, false)
            }
            Picture::DmaBuf(dma) => {
                self.ensure_shape(InputShape::of_raw(&dma.layout))?;
                (self.import(dma.fd, dma.buffer_len)?, true)
            }
        };
        let pts = i64::try_from(timestamp_ms).unwrap_or(i64::MAX);
        let result = self.run(buffer, pts);
        if imported {
            // SAFETY: we hold the import's reference; the frame that used it is encoded.
            unsafe { self.mpp.buffer_put(buffer) };
        }
        let data = Bytes::from(result.map_err(EncodeError::Encode)?);
        Ok(AccessUnit::from_annex_b(&data, rtp_time(timestamp_ms)))
    }
}

impl Drop for MppEncoder {
    fn drop(&mut self) {
        // SAFETY: each handle is released once, only if it was made. The context goes first
        // (as MPP's own encoder test does), so nothing inside it still refers to the config or
        // the input buffer when they are released.
        unsafe {
            if let Some(reset) = self.api.reset {
                reset(self.ctx);
            }
            (self.mpp.fns.mpp_destroy)(self.ctx);
            if !self.cfg.is_null() {
                (self.mpp.fns.mpp_enc_cfg_deinit)(self.cfg);
            }
            if !self.input.is_null() {
                self.mpp.buffer_put(self.input);
            }
            if !self.group.is_null() {
                (self.mpp.fns.mpp_buffer_group_put)(self.group);
            }
        }
    }
}

/// Exports buffer `index` of a V4L2 mmap queue as a DMA-BUF (`VIDIOC_EXPBUF`) for MPP to
/// import. Read-write: MPP maps imported buffers read-write if anything asks for a CPU pointer. Lives here, not with the V4L2 source, because it is the one other `unsafe`
/// call the zero-copy path needs.
pub fn export_dmabuf(device: &v4l::Device, buf_type: u32, index: u32) -> io::Result<OwnedFd> {
    use v4l::v4l_sys::v4l2_exportbuffer;
    // SAFETY: v4l2_exportbuffer is plain integers; all-zero is its documented initial state.
    let mut req: v4l2_exportbuffer = unsafe { std::mem::zeroed() };
    req.type_ = buf_type;
    req.index = index;
    req.plane = 0;
    req.flags = libc::O_RDWR as u32 | libc::O_CLOEXEC as u32;
    // SAFETY: `device` keeps its fd open for the call; `req` is the struct VIDIOC_EXPBUF reads
    // and fills (a non-V4L2 fd just fails the ioctl).
    unsafe {
        v4l::v4l2::ioctl(
            device.handle().fd(),
            v4l::v4l2::vidioc::VIDIOC_EXPBUF,
            (&mut req as *mut v4l2_exportbuffer).cast(),
        )
    }?;
    if req.fd < 0 {
        return Err(io::Error::other("VIDIOC_EXPBUF returned no descriptor"));
    }
    // SAFETY: the kernel just created this descriptor for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(req.fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_shapes() {
        let i420 = InputShape::of_i420(1280, 720);
        assert_eq!((i420.hor_stride, i420.ver_stride), (1280, 720));
        assert_eq!(i420.len(), 1280 * 720 * 3 / 2);
        let odd = InputShape::of_i420(1920, 1080);
        assert_eq!((odd.hor_stride, odd.ver_stride), (1920, 1088));
        let nv12 = InputShape::of_raw(&RawLayout {
            format: RawFormat::Nv12,
            width: 640,
            height: 480,
            stride: 704,
            plane_rows: 496,
        });
        assert_eq!(nv12.format, sys::MPP_FMT_YUV420SP);
        assert_eq!((nv12.hor_stride, nv12.ver_stride), (704, 496));
        assert_eq!(nv12.len(), 704 * 496 * 3 / 2);
        let yuyv = InputShape::of_raw(&RawLayout {
            format: RawFormat::Yuyv,
            width: 640,
            height: 480,
            stride: 1280,
            plane_rows: 480,
        });
        assert_eq!(yuyv.format, sys::MPP_FMT_YUV422_YUYV);
        assert_eq!(yuyv.len(), 1280 * 480);
    }

    #[test]
    fn exporting_from_a_non_v4l2_descriptor_is_an_error() {
        let device = v4l::Device::with_path("/dev/null").expect("open");
        assert!(export_dmabuf(&device, 1, 0).is_err());
    }
}
