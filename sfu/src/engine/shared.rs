//! The engine behind a lock: the one handle the HTTP handlers, local sources (cameras, the
//! switcher) and readers (LL-HLS) hold. It lives with the engine, not with the UDP driver, so
//! those modules depend on the engine and never on sockets.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;

use super::Engine;

/// The engine behind a lock, shared by the UDP driver, the HTTP handlers and local sources.
///
/// The lock is `parking_lot`'s, for its eventual fairness: the driver takes it again right
/// after releasing it, and with std's lock a waiting HTTP handler on the same core could lose
/// that race for as long as the driver has work; here a waiter of more than ~0.5 ms is handed
/// the lock at the next release.
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

    /// Locks the engine. When the guard is dropped the driver is woken: whatever was done may
    /// have queued datagrams or moved the engine's next deadline ([`Engine::poll_timeout`]),
    /// and the driver sleeps until that deadline otherwise. (A panic while the lock was held
    /// does not poison it: the data is still consistent enough to serve the next request.)
    pub fn lock(&self) -> EngineGuard<'_> {
        EngineGuard {
            guard: self.engine.lock(),
            flush: &self.flush,
        }
    }

    /// Locks the engine without waking the driver afterwards: for the driver itself, which
    /// asks for the next deadline and sends the queue after every lock anyway.
    pub fn lock_quietly(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock()
    }

    /// Wakes the driver to send what the engine queued and look at its deadline again.
    pub fn flush_soon(&self) {
        self.flush.notify_one();
    }

    /// Completes when the driver was woken ([`SharedEngine::flush_soon`], or a dropped
    /// [`EngineGuard`]) since the last time it completed.
    pub async fn flush_requested(&self) {
        self.flush.notified().await;
    }
}

/// The locked engine; dropping it wakes the driver ([`SharedEngine::lock`]).
pub struct EngineGuard<'a> {
    guard: MutexGuard<'a, Engine>,
    flush: &'a Notify,
}

impl Deref for EngineGuard<'_> {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.guard
    }
}

impl DerefMut for EngineGuard<'_> {
    fn deref_mut(&mut self) -> &mut Engine {
        &mut self.guard
    }
}

impl Drop for EngineGuard<'_> {
    fn drop(&mut self) {
        // Notify stores one permit when the driver is busy, so this never blocks and many
        // wake-ups while it works cost it one extra pass.
        self.flush.notify_one();
    }
}
