//! Cameras as streams: a frame source (a V4L2 device, or the synthetic test pattern) feeds an
//! H.264 encoder (Rockchip MPP on the VPU, or OpenH264 in software), whose access units are
//! packetized into RTP (RFC 6184) and published into the engine as a local source, exactly like
//! a WHIP publisher.
//!
//! ```text
//! FrameSource -> H264Encoder -> H264Packetizer -> StreamSink (the engine)
//!   \___________ Supervisor: pacing, failure/stall -> stream ends, backoff, reopen ________/
//! ```
//!
//! Each camera runs on its own thread ([`runner`]); the supervisor itself is sans-IO so tests run
//! it on a virtual clock.

pub mod camera;
pub mod encoder;
pub mod frame;
pub mod mpp;
mod openh264_log;
pub mod packetizer;
pub mod pattern;
pub mod rtsp_source;
pub mod runner;
pub mod select;
pub mod source;
pub mod supervisor;
pub mod v4l2;
pub mod v4l2_list;

pub use camera::{CameraSettings, StreamSink};
pub use encoder::{EncoderSettings, H264Encoder, OpenH264Encoder};
pub use frame::I420Frame;
pub use pattern::PatternSource;
pub use rtsp_source::{RtspSourceHandle, RtspSourceSettings, RtspTransport, start_rtsp_source};
pub use runner::{
    CameraError, CameraHandle, DeviceCamera, start_device_cameras, start_test_cameras,
};
pub use select::{EncoderChoice, select_encoder};
pub use source::{Captured, FrameSource, Picture, SourceError};
pub use supervisor::Supervisor;
