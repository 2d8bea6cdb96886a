//! The graceful stop (SIGTERM from systemd, or Ctrl-C): recordings end with their last
//! fragment written and their files closed, then every WebRTC session is closed so its peer
//! learns at once (an RTCP BYE and a DTLS close_notify) instead of by a timeout.

use std::time::{Duration, Instant};

use sfu::engine::SharedEngine;
use sfu::record::{ControlError, RecordService};
use tracing::{info, warn};

/// How long the media thread gets to send the closing datagrams before the process exits.
const FLUSH_GRACE: Duration = Duration::from_millis(300);

/// Stops the recordings (waiting for their threads to write and close their files), closes
/// every session and gives the media thread [`FLUSH_GRACE`] to send the goodbyes.
pub async fn stop_gracefully(engine: &SharedEngine, recordings: Option<RecordService>) {
    if let Some(recordings) = recordings {
        match tokio::task::spawn_blocking(move || recordings.stop(None)).await {
            Ok(Ok(())) => info!("recordings stopped: last fragments written, files closed"),
            Ok(Err(ControlError::NotRecording(_))) => {}
            Ok(Err(e)) => warn!(error = %e, "stopping the recordings"),
            Err(e) => warn!(error = %e, "the recordings' stop panicked"),
        }
    }
    let closed = engine.lock_quietly().close_all(Instant::now());
    engine.flush_soon();
    tokio::time::sleep(FLUSH_GRACE).await;
    info!(sessions = closed, "sessions closed; r58 stopped");
}
