//! Camera settings for tests: small and quick to encode.

use crate::capture::{CameraSettings, EncoderSettings};

/// A 320x240, 30 fps test camera named `name` with the given bitrate (bits per second) and
/// frames from one keyframe to the next, in 1200-byte RTP payloads.
pub fn small_camera(name: &str, bitrate: u32, keyframe_interval: u32) -> CameraSettings {
    CameraSettings {
        name: name.into(),
        encoder: EncoderSettings {
            width: 320,
            height: 240,
            fps: 30,
            bitrate,
            keyframe_interval,
        },
        mtu_payload: 1200,
    }
}
