//! The boundary between a picture producer (V4L2 device, test pattern) and the rest of the camera
//! pipeline. Failures are simulated at this boundary in tests.

use std::time::Instant;

use super::frame::I420Frame;

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
    pub image: &'a I420Frame,
    /// The capture instant (drives the RTP timestamp).
    pub at: Instant,
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
