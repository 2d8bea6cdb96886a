//! Runs each camera on its own OS thread: encoding is CPU-bound and would stall the tokio
//! runtime's I/O, and a thread per camera keeps one slow or failing camera from delaying another.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use tracing::error;

use super::camera::CameraSettings;
use super::encoder::{EncodeError, OpenH264Encoder};
use super::frame::FrameError;
use super::mpp::MppOptions;
use super::pattern::PatternSource;
use super::select::{EncoderChoice, select_encoder, system_mpp};
use super::source::SourceError;
use super::supervisor::Supervisor;
use super::v4l2::{V4l2Settings, V4l2Source};
use crate::engine::SharedEngine;

/// Why a camera could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("camera {name}: {source}")]
    Frame { name: String, source: FrameError },
    #[error("camera {name}: {source}")]
    Encode { name: String, source: EncodeError },
    #[error("camera {name}: {source}")]
    Source { name: String, source: SourceError },
    #[error("camera {name}: cannot start its thread: {source}")]
    Thread {
        name: String,
        source: std::io::Error,
    },
}

/// A running camera. Stopping (or dropping) it ends its stream and joins its thread.
pub struct CameraHandle {
    name: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CameraHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ends the camera's stream and waits for its thread (at most about one frame's encode).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            if thread.join().is_err() {
                error!(camera = %self.name, "camera thread panicked");
            }
        }
    }
}

impl Drop for CameraHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts a camera thread publishing into `engine`. `build` runs on the new thread: encoders
/// hold raw pointers into their C library and must stay on the thread that made them.
pub fn spawn_camera<F>(
    engine: SharedEngine,
    name: &str,
    build: F,
) -> Result<CameraHandle, CameraError>
where
    F: FnOnce(Instant) -> Result<Supervisor, CameraError> + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name(format!("camera-{name}"))
        .spawn(move || {
            let mut sink = engine;
            let mut camera = match build(Instant::now()) {
                Ok(camera) => camera,
                Err(e) => {
                    error!(error = %e, "camera not started");
                    return;
                }
            };
            loop {
                if flag.load(Ordering::Acquire) {
                    camera.stop(Instant::now(), &mut sink);
                    return;
                }
                let wake = camera.step(Instant::now(), &mut sink);
                let now = Instant::now();
                if wake > now {
                    // Woken early by `stop` (unpark) or spuriously: the loop re-checks both.
                    std::thread::park_timeout(wake - now);
                }
            }
        })
        .map_err(|source| CameraError::Thread {
            name: name.to_owned(),
            source,
        })?;
    Ok(CameraHandle {
        name: name.to_owned(),
        stop,
        thread: Some(thread),
    })
}

/// Starts one synthetic test camera (pattern -> OpenH264) per entry.
pub fn start_test_cameras(
    engine: &SharedEngine,
    cameras: &[CameraSettings],
) -> Result<Vec<CameraHandle>, CameraError> {
    let mut handles = Vec::with_capacity(cameras.len());
    for settings in cameras {
        // Check the size here so a bad configuration fails at start-up, not in a log line.
        PatternSource::new(
            &settings.name,
            settings.encoder.width,
            settings.encoder.height,
        )
        .map_err(|source| CameraError::Frame {
            name: settings.name.clone(),
            source,
        })?;
        let settings = settings.clone();
        let name = settings.name.clone();
        handles.push(spawn_camera(engine.clone(), &name, move |now| {
            test_camera(settings, now)
        })?);
    }
    Ok(handles)
}

/// A supervised test camera: the moving pattern encoded with OpenH264.
pub fn test_camera(settings: CameraSettings, now: Instant) -> Result<Supervisor, CameraError> {
    let name = settings.name.clone();
    let source = PatternSource::new(&name, settings.encoder.width, settings.encoder.height)
        .map_err(|source| CameraError::Frame {
            name: name.clone(),
            source,
        })?;
    let encoder = OpenH264Encoder::new(settings.encoder)
        .map_err(|source| CameraError::Encode { name, source })?;
    Ok(Supervisor::new(
        settings,
        Box::new(source),
        Box::new(encoder),
        now,
    ))
}

/// A camera on a V4L2 device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCamera {
    pub camera: CameraSettings,
    pub device: V4l2Settings,
    pub encoder: EncoderChoice,
    pub mpp: MppOptions,
}

/// Starts one thread per V4L2 camera. A camera whose device is missing still starts: its
/// supervisor retries until the device appears. What can never work fails here instead: a
/// format no encoder takes, or `encoder = "mpp"` without the MPP library.
pub fn start_device_cameras(
    engine: &SharedEngine,
    cameras: &[DeviceCamera],
) -> Result<Vec<CameraHandle>, CameraError> {
    let mut handles = Vec::with_capacity(cameras.len());
    for cam in cameras {
        let name = cam.camera.name.clone();
        V4l2Source::new(cam.device.clone(), false).map_err(|source| CameraError::Source {
            name: name.clone(),
            source,
        })?;
        if cam.encoder == EncoderChoice::Mpp {
            system_mpp().map_err(|e| CameraError::Encode {
                name: name.clone(),
                source: EncodeError::Init(e),
            })?;
        }
        let cam = cam.clone();
        handles.push(spawn_camera(engine.clone(), &name, move |now| {
            device_camera(cam, now)
        })?);
    }
    Ok(handles)
}

/// A supervised V4L2 camera with the encoder its settings pick; DMA-BUF frames when that
/// encoder takes them.
pub fn device_camera(cam: DeviceCamera, now: Instant) -> Result<Supervisor, CameraError> {
    let name = cam.camera.name.clone();
    let selected = select_encoder(&name, cam.encoder, cam.camera.encoder, cam.mpp, system_mpp)
        .map_err(|source| CameraError::Encode {
            name: name.clone(),
            source,
        })?;
    let source = V4l2Source::new(cam.device, selected.encoder.accepts_dmabuf())
        .map_err(|source| CameraError::Source { name, source })?;
    Ok(Supervisor::new(
        cam.camera,
        Box::new(source),
        selected.encoder,
        now,
    ))
}
