//! Telling systemd how the service is doing (`Type=notify`, sd_notify(3)): `READY=1` once the
//! HTTP and media sockets are bound, `WATCHDOG=1` while the media thread makes progress, and
//! `STOPPING=1` when a SIGTERM starts the graceful stop. Started by anything but systemd
//! (no `NOTIFY_SOCKET`) all of it does nothing.
//!
//! The datagrams are sent by the `sd-notify` crate (no libsystemd; a few lines of std code
//! behind it, abstract and path sockets both). The watchdog is fed from the media thread's
//! [`Heartbeat`], not from a timer of its own: a ping goes out only when the driver's loop has
//! turned since the last one, so a stalled data plane stops the pings and systemd restarts the
//! server after `WatchdogSec`. The pings are sent by a task of the HTTP runtime, so a wedged
//! runtime stops them too.

use std::time::Duration;

use sd_notify::NotifyState;
use sfu::net::driver::Heartbeat;
use tracing::{info, warn};

/// Sends `READY=1` with a status line (`systemctl status` shows it).
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Sends `STOPPING=1`: the graceful stop has begun.
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: closing recordings and sessions"),
    ]);
}

fn send(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        warn!(error = %e, "cannot notify the service manager");
    }
}

/// Whether to ping: the heartbeat's count at the last ping, compared with the count now.
#[derive(Debug, Default)]
pub struct WatchdogGate {
    last: Option<u64>,
}

impl WatchdogGate {
    /// True when the media thread has turned since the last ping (or this is the first look).
    pub fn should_ping(&mut self, beats: u64) -> bool {
        let moved = self.last != Some(beats);
        if moved {
            self.last = Some(beats);
        }
        moved
    }
}

/// How often to look at the heartbeat for a watchdog of `timeout`: a quarter of it, so a
/// moving heartbeat pings at least three times within every timeout.
pub fn check_interval(timeout: Duration) -> Duration {
    (timeout / 4).max(Duration::from_millis(10))
}

/// When systemd asked for a watchdog (`WatchdogSec=`, seen as `WATCHDOG_USEC` for this
/// process), a task that pings it while `heartbeat` moves. `None` without a watchdog.
pub fn spawn_watchdog(heartbeat: Heartbeat) -> Option<tokio::task::JoinHandle<()>> {
    let timeout = sd_notify::watchdog_enabled()?;
    let every = check_interval(timeout);
    if timeout < Heartbeat::MAX_QUIET * 2 {
        warn!(
            ?timeout,
            "the watchdog timeout is shorter than twice the media thread's idle wakeup: an idle \
             server may be restarted"
        );
    }
    info!(?timeout, ?every, "systemd watchdog fed by the media thread");
    Some(tokio::spawn(async move {
        let mut gate = WatchdogGate::default();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut withheld = false;
        loop {
            tick.tick().await;
            if gate.should_ping(heartbeat.beats()) {
                if withheld {
                    info!("media thread moves again: watchdog pings resumed");
                    withheld = false;
                }
                send(&[NotifyState::Watchdog]);
            } else if !withheld {
                warn!(
                    quiet_for = ?every,
                    "media thread made no progress: watchdog pings withheld (systemd restarts \
                     the server if this lasts)"
                );
                withheld = true;
            }
        }
    }))
}

/// Completes on SIGTERM (systemd's stop) or SIGINT (Ctrl-C).
pub async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => info!("SIGTERM: stopping"),
                _ = int.recv() => info!("SIGINT: stopping"),
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            warn!(error = %e, "cannot watch for SIGTERM/SIGINT; stop is not graceful");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_only_when_the_heartbeat_moved() {
        let mut gate = WatchdogGate::default();
        assert!(gate.should_ping(0), "first look");
        assert!(!gate.should_ping(0), "no turn since");
        assert!(gate.should_ping(5));
        assert!(!gate.should_ping(5));
        assert!(gate.should_ping(6));
    }

    #[test]
    fn looks_four_times_per_timeout() {
        assert_eq!(
            check_interval(Duration::from_secs(10)),
            Duration::from_millis(2500)
        );
        assert_eq!(
            check_interval(Duration::from_millis(8)),
            Duration::from_millis(10)
        );
    }
}
