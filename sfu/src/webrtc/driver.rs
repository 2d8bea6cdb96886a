//! The thin tokio layer around the engine: one UDP socket for every peer, and the clock.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::Notify;

use super::engine::{Engine, timers_tick};
use super::udp_batch::GsoSender;

/// Datagrams read per wakeup before the engine lock is released.
const RECV_BATCH: usize = 64;

/// The engine behind a lock, shared by the UDP driver, the HTTP handlers and local sources.
#[derive(Clone)]
pub struct SharedEngine {
    engine: Arc<Mutex<Engine>>,
    flush: Arc<Notify>,
}

impl SharedEngine {
    pub fn new(engine: Engine) -> Self {
        Self {
            engine: Arc::new(Mutex::new(engine)),
            flush: Arc::new(Notify::new()),
        }
    }

    /// Locks the engine. A panic while it was held is a bug, but the data is still consistent
    /// enough to serve the next request, so poisoning is ignored rather than spread.
    pub fn lock(&self) -> MutexGuard<'_, Engine> {
        self.engine
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks the driver to send what the engine queued now rather than at its next tick: local
    /// sources call this after ingesting a frame.
    pub fn flush_soon(&self) {
        self.flush.notify_one();
    }
}

/// Socket buffer we ask for, each way. A publisher's keyframe burst (30+ packets at once) must
/// not overflow the receive buffer while the engine is busy fanning out the packet before it,
/// and a flush to thousands of viewers must not overflow the send buffer. The kernel caps the
/// request at `net.core.rmem_max` / `wmem_max`.
const SOCKET_BUFFER: usize = 4 << 20;

/// Receives on `socket`, feeds the engine, and sends what it produces, until the socket fails.
pub async fn run(engine: SharedEngine, socket: UdpSocket) -> io::Result<()> {
    let sock = socket2::SockRef::from(&socket);
    if let Err(e) = sock
        .set_recv_buffer_size(SOCKET_BUFFER)
        .and_then(|()| sock.set_send_buffer_size(SOCKET_BUFFER))
    {
        tracing::warn!(error = %e, "cannot size the media socket's buffers");
    }
    let mut buf = vec![0u8; 2048];
    let mut sender = GsoSender::default();
    let mut tick = tokio::time::interval(timers_tick());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let mut guard = engine.lock();
                match received {
                    Ok((len, from)) => guard.handle_datagram(Instant::now(), from, &buf[..len]),
                    Err(e) if is_transient(&e) => {}
                    Err(e) => return Err(e),
                }
                // Drain what else is queued without another wakeup.
                for _ in 1..RECV_BATCH {
                    match socket.try_recv_from(&mut buf) {
                        Ok((len, from)) => guard.handle_datagram(Instant::now(), from, &buf[..len]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if is_transient(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
                flush(&mut guard, &socket, &mut sender);
            }
            _ = engine.flush.notified() => {
                let mut guard = engine.lock();
                flush(&mut guard, &socket, &mut sender);
            }
            _ = tick.tick() => {
                let mut guard = engine.lock();
                guard.handle_timeout(Instant::now());
                flush(&mut guard, &socket, &mut sender);
            }
        }
    }
}

/// ICMP errors surface as recv errors on a shared socket; they concern one peer, not us.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::Interrupted
    )
}

/// Sends what the engine queued: grouped by viewer, a frame's equal-sized packets to one viewer
/// as one GSO message.
fn flush(engine: &mut Engine, socket: &UdpSocket, sender: &mut GsoSender) {
    let datagrams: Vec<(std::net::SocketAddr, &[u8])> = engine.pending_transmits().collect();
    let dropped = if datagrams.is_empty() {
        0
    } else {
        sender.send(socket, &datagrams)
    };
    drop(datagrams);
    engine.clear_transmits();
    if dropped > 0 {
        engine.count_send_drops(dropped as u64);
    }
}
