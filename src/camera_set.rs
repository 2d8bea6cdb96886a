//! The cameras the server runs (synthetic test cameras and `[[camera]]` V4L2 devices), by
//! stream name, so that a configuration reload can stop, start or restart one without
//! touching the others.

use std::collections::BTreeMap;

use sfu::capture::mpp::MppOptions;
use sfu::capture::packetizer::DEFAULT_MTU_PAYLOAD;
use sfu::capture::v4l2::V4l2Settings;
use sfu::capture::{CameraError, CameraHandle, CameraSettings, DeviceCamera, EncoderSettings};
use sfu::engine::SharedEngine;
use tracing::info;

use crate::config::{CameraConfig, CameraEntry};

/// Running cameras by stream name. Dropping the set stops them all (each ends its stream).
pub struct CameraSet {
    engine: SharedEngine,
    running: BTreeMap<String, CameraHandle>,
}

impl CameraSet {
    /// Starts every camera of `entries` (from [`crate::config::camera_entries`]). A camera
    /// that cannot work at all (a test picture size OpenH264 refuses, MPP without its library)
    /// fails the start.
    pub fn start(
        engine: &SharedEngine,
        entries: &BTreeMap<String, CameraEntry>,
    ) -> Result<Self, CameraError> {
        let mut set = Self {
            engine: engine.clone(),
            running: BTreeMap::new(),
        };
        for (name, entry) in entries {
            set.add(name, entry)?;
        }
        Ok(set)
    }

    /// The names of the running cameras.
    pub fn names(&self) -> Vec<String> {
        self.running.keys().cloned().collect()
    }

    /// Starts camera `name` (replacing one of that name, which stops first).
    pub fn add(&mut self, name: &str, entry: &CameraEntry) -> Result<(), CameraError> {
        if let Some(old) = self.take(name) {
            old.stop();
        }
        let handle = match entry {
            CameraEntry::Test {
                width,
                height,
                fps,
                bitrate,
            } => {
                let settings = CameraSettings {
                    name: name.to_owned(),
                    encoder: EncoderSettings {
                        width: *width,
                        height: *height,
                        fps: *fps,
                        bitrate: *bitrate,
                        // One keyframe per second: a viewer joining waits at most that long,
                        // and the keyframe cache a joiner replays stays short.
                        keyframe_interval: *fps,
                    },
                    mtu_payload: DEFAULT_MTU_PAYLOAD,
                };
                info!(camera = %name, width, height, fps, "test camera started");
                sfu::capture::start_test_cameras(&self.engine, &[settings])?
            }
            CameraEntry::Device(c) => {
                info!(
                    camera = %c.name,
                    device = %c.device.display(),
                    width = c.width,
                    height = c.height,
                    fps = c.fps,
                    format = ?c.format,
                    encoder = ?c.encoder,
                    "camera configured"
                );
                sfu::capture::start_device_cameras(&self.engine, &[device_camera(c)])?
            }
        };
        self.running
            .extend(handle.into_iter().map(|h| (h.name().to_owned(), h)));
        Ok(())
    }

    /// Takes camera `name` out of the set; stopping (or dropping) the handle ends its
    /// stream, which waits for the camera's thread (at most about one frame's encode).
    pub fn take(&mut self, name: &str) -> Option<CameraHandle> {
        self.running.remove(name)
    }
}

fn device_camera(c: &CameraConfig) -> DeviceCamera {
    DeviceCamera {
        camera: CameraSettings {
            name: c.name.clone(),
            encoder: EncoderSettings {
                width: c.width,
                height: c.height,
                fps: c.fps,
                bitrate: c.bitrate,
                keyframe_interval: c.gop,
            },
            mtu_payload: DEFAULT_MTU_PAYLOAD,
        },
        device: V4l2Settings {
            device: c.device.clone(),
            width: c.width,
            height: c.height,
            fps: c.fps,
            format: c.format,
        },
        encoder: c.encoder,
        mpp: MppOptions::default(),
    }
}
