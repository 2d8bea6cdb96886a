//! Types, constants and structs of the MPP C API, declared from the public headers (`rk_type.h`,
//! `mpp_err.h`, `rk_mpi.h`, `rk_mpi_cmd.h`, `mpp_frame.h`, `mpp_packet.h`, `mpp_buffer.h`,
//! `mpp_meta.h`, `rk_venc_cmd.h`, `rk_venc_rc.h`).
//!
//! C enums are plain `c_int` aliases with one constant per value rather than Rust enums: the
//! library may hand back a value this crate does not know (a newer MPP), and a Rust enum holding
//! an undeclared value is undefined behaviour.

#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case)]

use std::ffi::{c_int, c_void};

// rk_type.h: fixed-size integers (LP64 and ILP32 Linux alike).
pub type RK_U8 = u8;
pub type RK_U16 = u16;
pub type RK_U32 = u32;
pub type RK_S32 = i32;
pub type RK_U64 = u64;
pub type RK_S64 = i64;

// rk_type.h: every MPP object is an opaque pointer.
pub type MppCtx = *mut c_void;
pub type MppParam = *mut c_void;
pub type MppFrame = *mut c_void;
pub type MppPacket = *mut c_void;
pub type MppBuffer = *mut c_void;
pub type MppBufferGroup = *mut c_void;
pub type MppTask = *mut c_void;
pub type MppMeta = *mut c_void;
/// rk_venc_cfg.h
pub type MppEncCfg = *mut c_void;

/// mpp_err.h `MPP_RET`: 0 is success, negative values are errors.
pub type MPP_RET = c_int;
pub const MPP_OK: MPP_RET = 0;
pub const MPP_SUCCESS: MPP_RET = 0;
pub const MPP_NOK: MPP_RET = -1;
pub const MPP_ERR_UNKNOW: MPP_RET = -2;
pub const MPP_ERR_NULL_PTR: MPP_RET = -3;
pub const MPP_ERR_MALLOC: MPP_RET = -4;
pub const MPP_ERR_OPEN_FILE: MPP_RET = -5;
pub const MPP_ERR_VALUE: MPP_RET = -6;
pub const MPP_ERR_READ_BIT: MPP_RET = -7;
pub const MPP_ERR_TIMEOUT: MPP_RET = -8;
pub const MPP_ERR_PERM: MPP_RET = -9;
pub const MPP_ERR_BASE: MPP_RET = -1000;
pub const MPP_ERR_LIST_STREAM: MPP_RET = MPP_ERR_BASE - 1;
pub const MPP_ERR_INIT: MPP_RET = MPP_ERR_BASE - 2;
pub const MPP_ERR_VPU_CODEC_INIT: MPP_RET = MPP_ERR_BASE - 3;
pub const MPP_ERR_STREAM: MPP_RET = MPP_ERR_BASE - 4;
pub const MPP_ERR_FATAL_THREAD: MPP_RET = MPP_ERR_BASE - 5;
pub const MPP_ERR_NOMEM: MPP_RET = MPP_ERR_BASE - 6;
pub const MPP_ERR_PROTOL: MPP_RET = MPP_ERR_BASE - 7;
pub const MPP_FAIL_SPLIT_FRAME: MPP_RET = MPP_ERR_BASE - 8;
pub const MPP_ERR_VPUHW: MPP_RET = MPP_ERR_BASE - 9;
pub const MPP_EOS_STREAM_REACHED: MPP_RET = MPP_ERR_BASE - 11;
pub const MPP_ERR_BUFFER_FULL: MPP_RET = MPP_ERR_BASE - 12;
pub const MPP_ERR_DISPLAY_FULL: MPP_RET = MPP_ERR_BASE - 13;

/// The name of an `MPP_RET` value, for error messages.
pub fn mpp_ret_name(ret: MPP_RET) -> &'static str {
    match ret {
        MPP_OK => "MPP_OK",
        MPP_NOK => "MPP_NOK",
        MPP_ERR_UNKNOW => "MPP_ERR_UNKNOW",
        MPP_ERR_NULL_PTR => "MPP_ERR_NULL_PTR",
        MPP_ERR_MALLOC => "MPP_ERR_MALLOC",
        MPP_ERR_OPEN_FILE => "MPP_ERR_OPEN_FILE",
        MPP_ERR_VALUE => "MPP_ERR_VALUE",
        MPP_ERR_READ_BIT => "MPP_ERR_READ_BIT",
        MPP_ERR_TIMEOUT => "MPP_ERR_TIMEOUT",
        MPP_ERR_PERM => "MPP_ERR_PERM",
        MPP_ERR_LIST_STREAM => "MPP_ERR_LIST_STREAM",
        MPP_ERR_INIT => "MPP_ERR_INIT",
        MPP_ERR_VPU_CODEC_INIT => "MPP_ERR_VPU_CODEC_INIT",
        MPP_ERR_STREAM => "MPP_ERR_STREAM",
        MPP_ERR_FATAL_THREAD => "MPP_ERR_FATAL_THREAD",
        MPP_ERR_NOMEM => "MPP_ERR_NOMEM",
        MPP_ERR_PROTOL => "MPP_ERR_PROTOL",
        MPP_FAIL_SPLIT_FRAME => "MPP_FAIL_SPLIT_FRAME",
        MPP_ERR_VPUHW => "MPP_ERR_VPUHW",
        MPP_EOS_STREAM_REACHED => "MPP_EOS_STREAM_REACHED",
        MPP_ERR_BUFFER_FULL => "MPP_ERR_BUFFER_FULL",
        MPP_ERR_DISPLAY_FULL => "MPP_ERR_DISPLAY_FULL",
        _ => "unknown MPP error",
    }
}

/// rk_type.h `MppCtxType`.
pub type MppCtxType = c_int;
pub const MPP_CTX_DEC: MppCtxType = 0;
pub const MPP_CTX_ENC: MppCtxType = 1;
pub const MPP_CTX_ISP: MppCtxType = 2;
pub const MPP_CTX_BUTT: MppCtxType = 3;

/// rk_type.h `MppCodingType` (OpenMAX numbering).
pub type MppCodingType = c_int;
pub const MPP_VIDEO_CodingUnused: MppCodingType = 0;
pub const MPP_VIDEO_CodingAutoDetect: MppCodingType = 1;
pub const MPP_VIDEO_CodingMPEG2: MppCodingType = 2;
pub const MPP_VIDEO_CodingH263: MppCodingType = 3;
pub const MPP_VIDEO_CodingMPEG4: MppCodingType = 4;
pub const MPP_VIDEO_CodingWMV: MppCodingType = 5;
pub const MPP_VIDEO_CodingRV: MppCodingType = 6;
pub const MPP_VIDEO_CodingAVC: MppCodingType = 7;
pub const MPP_VIDEO_CodingMJPEG: MppCodingType = 8;
pub const MPP_VIDEO_CodingVP8: MppCodingType = 9;
pub const MPP_VIDEO_CodingVP9: MppCodingType = 10;
pub const MPP_VIDEO_CodingVC1: MppCodingType = 0x0100_0000;
pub const MPP_VIDEO_CodingFLV1: MppCodingType = 0x0100_0001;
pub const MPP_VIDEO_CodingDIVX3: MppCodingType = 0x0100_0002;
pub const MPP_VIDEO_CodingVP6: MppCodingType = 0x0100_0003;
pub const MPP_VIDEO_CodingHEVC: MppCodingType = 0x0100_0004;
pub const MPP_VIDEO_CodingAVSPLUS: MppCodingType = 0x0100_0005;
pub const MPP_VIDEO_CodingAVS: MppCodingType = 0x0100_0006;
pub const MPP_VIDEO_CodingAVS2: MppCodingType = 0x0100_0007;
pub const MPP_VIDEO_CodingAV1: MppCodingType = 0x0100_0008;

// rk_mpi_cmd.h: command id fields.
pub const CMD_MODULE_OSAL: u32 = 0x0010_0000;
pub const CMD_MODULE_MPP: u32 = 0x0020_0000;
pub const CMD_MODULE_CODEC: u32 = 0x0030_0000;
pub const CMD_MODULE_HAL: u32 = 0x0040_0000;
pub const CMD_CTX_ID_DEC: u32 = 0x0001_0000;
pub const CMD_CTX_ID_ENC: u32 = 0x0002_0000;
pub const CMD_CTX_ID_ISP: u32 = 0x0003_0000;
pub const CMD_STATE_OPS: u32 = 0x0000_0100;
pub const CMD_ENC_QUERY: u32 = 0x0000_0100;
pub const CMD_ENC_CFG_RC_API: u32 = 0x0000_0200;
pub const CMD_ENC_CFG_MISC: u32 = 0x0000_8000;
pub const CMD_ENC_CFG_SPLIT: u32 = 0x0000_8100;
pub const CMD_ENC_CFG_REF: u32 = 0x0000_8200;

/// rk_mpi_cmd.h `MpiCmd`: the commands of `MppApi::control`. Only the ones an encoder uses
/// are declared; each is its segment base plus its position in the header's list.
pub type MpiCmd = c_int;
pub const MPP_CMD_BASE: MpiCmd = CMD_MODULE_MPP as MpiCmd;
pub const MPP_ENABLE_DEINTERLACE: MpiCmd = MPP_CMD_BASE + 1;
pub const MPP_SET_INPUT_BLOCK: MpiCmd = MPP_CMD_BASE + 2;
pub const MPP_SET_INTPUT_BLOCK_TIMEOUT: MpiCmd = MPP_CMD_BASE + 3;
pub const MPP_SET_OUTPUT_BLOCK: MpiCmd = MPP_CMD_BASE + 4;
pub const MPP_SET_OUTPUT_BLOCK_TIMEOUT: MpiCmd = MPP_CMD_BASE + 5;
/// Parameter: pointer to an `RK_S64` timeout in ms (0 non-blocking, -1 blocking).
pub const MPP_SET_INPUT_TIMEOUT: MpiCmd = MPP_CMD_BASE + 6;
/// Parameter: pointer to an `RK_S64` timeout in ms (0 non-blocking, -1 blocking).
pub const MPP_SET_OUTPUT_TIMEOUT: MpiCmd = MPP_CMD_BASE + 7;
pub const MPP_SET_DISABLE_THREAD: MpiCmd = MPP_CMD_BASE + 8;
pub const MPP_STATE_CMD_BASE: MpiCmd = (CMD_MODULE_MPP | CMD_STATE_OPS) as MpiCmd;
pub const MPP_START: MpiCmd = MPP_STATE_CMD_BASE + 1;
pub const MPP_STOP: MpiCmd = MPP_STATE_CMD_BASE + 2;
pub const MPP_PAUSE: MpiCmd = MPP_STATE_CMD_BASE + 3;
pub const MPP_RESUME: MpiCmd = MPP_STATE_CMD_BASE + 4;
pub const MPP_ENC_CMD_BASE: MpiCmd = (CMD_MODULE_CODEC | CMD_CTX_ID_ENC) as MpiCmd;
/// Parameter: an `MppEncCfg`.
pub const MPP_ENC_SET_CFG: MpiCmd = MPP_ENC_CMD_BASE + 1;
/// Parameter: an `MppEncCfg` to fill.
pub const MPP_ENC_GET_CFG: MpiCmd = MPP_ENC_CMD_BASE + 2;
/// No parameter: the next frame is encoded as an IDR.
pub const MPP_ENC_SET_IDR_FRAME: MpiCmd = MPP_ENC_CMD_BASE + 9;
/// Parameter: an `MppPacket` that receives SPS and PPS.
pub const MPP_ENC_GET_HDR_SYNC: MpiCmd = MPP_ENC_CMD_BASE + 13;
/// Parameter: pointer to an `MppEncSeiMode`.
pub const MPP_ENC_SET_SEI_CFG: MpiCmd = MPP_ENC_CMD_BASE + 15;
pub const MPP_ENC_CFG_MISC: MpiCmd =
    (CMD_MODULE_CODEC | CMD_CTX_ID_ENC | CMD_ENC_CFG_MISC) as MpiCmd;
/// Parameter: pointer to an `MppEncHeaderMode`.
pub const MPP_ENC_SET_HEADER_MODE: MpiCmd = MPP_ENC_CFG_MISC + 1;
pub const MPP_ENC_GET_HEADER_MODE: MpiCmd = MPP_ENC_CFG_MISC + 2;

/// rk_venc_cmd.h `MppEncHeaderMode`.
pub type MppEncHeaderMode = c_int;
/// SPS/PPS only with the first frame.
pub const MPP_ENC_HEADER_MODE_DEFAULT: MppEncHeaderMode = 0;
/// SPS/PPS before every IDR: what a stream that viewers join at any keyframe needs.
pub const MPP_ENC_HEADER_MODE_EACH_IDR: MppEncHeaderMode = 1;

/// rk_venc_cmd.h `MppEncSeiMode`.
pub type MppEncSeiMode = c_int;
pub const MPP_ENC_SEI_MODE_DISABLE: MppEncSeiMode = 0;
pub const MPP_ENC_SEI_MODE_ONE_SEQ: MppEncSeiMode = 1;
pub const MPP_ENC_SEI_MODE_ONE_FRAME: MppEncSeiMode = 2;

/// rk_venc_rc.h `MppEncRcMode`.
pub type MppEncRcMode = c_int;
pub const MPP_ENC_RC_MODE_VBR: MppEncRcMode = 0;
pub const MPP_ENC_RC_MODE_CBR: MppEncRcMode = 1;
pub const MPP_ENC_RC_MODE_FIXQP: MppEncRcMode = 2;
pub const MPP_ENC_RC_MODE_AVBR: MppEncRcMode = 3;

/// H.264 `profile_idc` values that `h264:profile` takes.
pub const H264_PROFILE_BASELINE: RK_S32 = 66;
pub const H264_PROFILE_MAIN: RK_S32 = 77;
pub const H264_PROFILE_HIGH: RK_S32 = 100;

// mpp_frame.h: format bits and `MppFrameFormat`.
pub const MPP_FRAME_FMT_MASK: u32 = 0x000f_ffff;
pub const MPP_FRAME_FMT_YUV: u32 = 0x0000_0000;
pub const MPP_FRAME_FMT_RGB: u32 = 0x0001_0000;
pub type MppFrameFormat = c_int;
/// NV12: a Y plane, then interleaved U V at half resolution.
pub const MPP_FMT_YUV420SP: MppFrameFormat = 0;
pub const MPP_FMT_YUV420SP_10BIT: MppFrameFormat = 1;
pub const MPP_FMT_YUV422SP: MppFrameFormat = 2;
pub const MPP_FMT_YUV422SP_10BIT: MppFrameFormat = 3;
/// I420: Y, then U, then V planes.
pub const MPP_FMT_YUV420P: MppFrameFormat = 4;
pub const MPP_FMT_YUV420SP_VU: MppFrameFormat = 5;
pub const MPP_FMT_YUV422P: MppFrameFormat = 6;
pub const MPP_FMT_YUV422SP_VU: MppFrameFormat = 7;
/// YUYV (YUY2) packed 4:2:2.
pub const MPP_FMT_YUV422_YUYV: MppFrameFormat = 8;
pub const MPP_FMT_YUV422_YVYU: MppFrameFormat = 9;
pub const MPP_FMT_YUV422_UYVY: MppFrameFormat = 10;
pub const MPP_FMT_YUV422_VYUY: MppFrameFormat = 11;
pub const MPP_FMT_YUV400: MppFrameFormat = 12;
pub const MPP_FMT_YUV440SP: MppFrameFormat = 13;
pub const MPP_FMT_YUV411SP: MppFrameFormat = 14;
pub const MPP_FMT_YUV444SP: MppFrameFormat = 15;
pub const MPP_FMT_YUV444P: MppFrameFormat = 16;
pub const MPP_FMT_YUV_BUTT: MppFrameFormat = 17;
pub const MPP_FMT_RGB565: MppFrameFormat = MPP_FRAME_FMT_RGB as c_int;
pub const MPP_FMT_RGB888: MppFrameFormat = MPP_FRAME_FMT_RGB as c_int + 6;
pub const MPP_FMT_BGR888: MppFrameFormat = MPP_FRAME_FMT_RGB as c_int + 7;
pub const MPP_FMT_RGBA8888: MppFrameFormat = MPP_FRAME_FMT_RGB as c_int + 13;
pub const MPP_FMT_RGB_BUTT: MppFrameFormat = MPP_FRAME_FMT_RGB as c_int + 14;

/// mpp_buffer.h `MppBufferMode`.
pub type MppBufferMode = c_int;
/// MPP allocates the group's buffers.
pub const MPP_BUFFER_INTERNAL: MppBufferMode = 0;
/// The caller commits buffers it owns (DMA-BUF fds) into the group.
pub const MPP_BUFFER_EXTERNAL: MppBufferMode = 1;

/// mpp_buffer.h `MppBufferType`, optionally or-ed with `MPP_BUFFER_FLAGS_*`.
pub type MppBufferType = c_int;
pub const MPP_BUFFER_TYPE_NORMAL: MppBufferType = 0;
pub const MPP_BUFFER_TYPE_ION: MppBufferType = 1;
/// A DMA-BUF file descriptor from another driver (a V4L2 `VIDIOC_EXPBUF`).
pub const MPP_BUFFER_TYPE_EXT_DMA: MppBufferType = 2;
pub const MPP_BUFFER_TYPE_DRM: MppBufferType = 3;
pub const MPP_BUFFER_TYPE_DMA_HEAP: MppBufferType = 4;
pub const MPP_BUFFER_TYPE_MASK: u32 = 0x0000_ffff;
pub const MPP_BUFFER_FLAGS_MASK: u32 = 0x003f_0000;
pub const MPP_BUFFER_FLAGS_CONTIG: u32 = 0x0001_0000;
pub const MPP_BUFFER_FLAGS_CACHABLE: u32 = 0x0002_0000;
pub const MPP_BUFFER_FLAGS_WC: u32 = 0x0004_0000;
pub const MPP_BUFFER_FLAGS_SECURE: u32 = 0x0008_0000;
pub const MPP_BUFFER_FLAGS_ALLOC_KMAP: u32 = 0x0010_0000;
pub const MPP_BUFFER_FLAGS_DMA32: u32 = 0x0020_0000;

/// mpp_meta.h `FOURCC_META`.
pub const fn fourcc_meta(tag: &[u8; 4]) -> u32 {
    (tag[0] as u32) << 24 | (tag[1] as u32) << 16 | (tag[2] as u32) << 8 | tag[3] as u32
}

/// mpp_meta.h `MppMetaKey` (the ones an encoder reads or sets).
pub type MppMetaKey = c_int;
pub const KEY_INPUT_FRAME: MppMetaKey = fourcc_meta(b"ifrm") as c_int;
pub const KEY_OUTPUT_PACKET: MppMetaKey = fourcc_meta(b"opkt") as c_int;
pub const KEY_INPUT_IDR_REQ: MppMetaKey = fourcc_meta(b"iidr") as c_int;
/// Set on an output packet: 1 when it is an intra (IDR) frame.
pub const KEY_OUTPUT_INTRA: MppMetaKey = fourcc_meta(b"oidr") as c_int;
pub const KEY_TEMPORAL_ID: MppMetaKey = fourcc_meta(b"tlid") as c_int;
pub const KEY_ENC_AVERAGE_QP: MppMetaKey = fourcc_meta(b"avgq") as c_int;

/// mpp_buffer.h `MppBufferInfo`: describes a buffer to import (`mpp_buffer_import_with_tag`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MppBufferInfo {
    pub type_: MppBufferType,
    pub size: usize,
    pub ptr: *mut c_void,
    pub hnd: *mut c_void,
    pub fd: c_int,
    pub index: c_int,
}

/// mpp_packet.h `MppPktSeg`: one NAL/slice segment of a packet.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MppPktSeg {
    pub index: RK_S32,
    pub type_: RK_S32,
    pub offset: RK_U32,
    pub len: RK_U32,
    pub next: *const MppPktSeg,
}

/// mpp_frame.h `MppFrameRational`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MppFrameRational {
    pub num: RK_S32,
    pub den: RK_S32,
}

/// mpp_frame.h `MppFrameMasteringDisplayMetadata`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MppFrameMasteringDisplayMetadata {
    pub display_primaries: [[RK_U16; 2]; 3],
    pub white_point: [RK_U16; 2],
    pub max_luminance: RK_U32,
    pub min_luminance: RK_U32,
}

/// mpp_frame.h `MppFrameContentLightMetadata`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MppFrameContentLightMetadata {
    pub MaxCLL: RK_U16,
    pub MaxFALL: RK_U16,
}

/// mpp_frame.h `MppFrameHdrDynamicMeta`: a header followed by `size` bytes (a C flexible array
/// member, so only ever used behind a pointer).
#[repr(C)]
#[derive(Debug)]
pub struct MppFrameHdrDynamicMeta {
    pub hdr_fmt: RK_U32,
    pub size: RK_U32,
    pub data: [RK_U8; 0],
}

/// mpp_task.h `MppPortType`.
pub type MppPortType = c_int;
pub const MPP_PORT_INPUT: MppPortType = 0;
pub const MPP_PORT_OUTPUT: MppPortType = 1;

/// mpp_task.h `MppPollType`.
pub type MppPollType = c_int;
pub const MPP_POLL_BLOCK: MppPollType = -1;
pub const MPP_POLL_NON_BLOCK: MppPollType = 0;

/// rk_mpi.h `MppApi`: the function table `mpp_create` hands back. Entries may be null in a
/// library that does not implement them, hence `Option`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MppApi {
    pub size: RK_U32,
    pub version: RK_U32,
    pub decode: Option<
        unsafe extern "C" fn(ctx: MppCtx, packet: MppPacket, frame: *mut MppFrame) -> MPP_RET,
    >,
    pub decode_put_packet: Option<unsafe extern "C" fn(ctx: MppCtx, packet: MppPacket) -> MPP_RET>,
    pub decode_get_frame:
        Option<unsafe extern "C" fn(ctx: MppCtx, frame: *mut MppFrame) -> MPP_RET>,
    pub encode: Option<
        unsafe extern "C" fn(ctx: MppCtx, frame: MppFrame, packet: *mut MppPacket) -> MPP_RET,
    >,
    pub encode_put_frame: Option<unsafe extern "C" fn(ctx: MppCtx, frame: MppFrame) -> MPP_RET>,
    pub encode_get_packet:
        Option<unsafe extern "C" fn(ctx: MppCtx, packet: *mut MppPacket) -> MPP_RET>,
    pub isp: Option<unsafe extern "C" fn(ctx: MppCtx, dst: MppFrame, src: MppFrame) -> MPP_RET>,
    pub isp_put_frame: Option<unsafe extern "C" fn(ctx: MppCtx, frame: MppFrame) -> MPP_RET>,
    pub isp_get_frame: Option<unsafe extern "C" fn(ctx: MppCtx, frame: *mut MppFrame) -> MPP_RET>,
    pub poll: Option<
        unsafe extern "C" fn(ctx: MppCtx, type_: MppPortType, timeout: MppPollType) -> MPP_RET,
    >,
    pub dequeue: Option<
        unsafe extern "C" fn(ctx: MppCtx, type_: MppPortType, task: *mut MppTask) -> MPP_RET,
    >,
    pub enqueue:
        Option<unsafe extern "C" fn(ctx: MppCtx, type_: MppPortType, task: MppTask) -> MPP_RET>,
    pub reset: Option<unsafe extern "C" fn(ctx: MppCtx) -> MPP_RET>,
    pub control: Option<unsafe extern "C" fn(ctx: MppCtx, cmd: MpiCmd, param: MppParam) -> MPP_RET>,
    pub reserv: [RK_U32; 16],
}
