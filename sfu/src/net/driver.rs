//! The thin tokio layer around the engine: one UDP socket for every peer, and the clock.
//!
//! The media driver runs on a thread of its own ([`spawn`]), not as a task of the HTTP runtime:
//! when the data plane is behind (a busy core, thousands of viewers), its socket is always
//! readable, and as a task it would hold a runtime worker for up to tokio's whole cooperative
//! budget of reads, each fanning a batch out to every viewer — seconds at a few hundred
//! viewers, during which WHEP POSTs on that worker were not even read (issue 9's "connection
//! ramp" stall). As a thread it is time-sliced by the kernel like any other, and the engine
//! lock is held only for the engine's own work: the datagrams it produced are sent after the
//! lock is released.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};

use super::relay::{RelayLink, RelaySettings};
use super::udp_batch::GsoSender;
use super::udp_recv::{Received, TimestampedReceiver};
use crate::engine::delay::DelayHistogram;
use crate::engine::{Engine, FanoutShare, SharedEngine, TransmitQueue};
use crate::webrtc::Via;

/// Datagrams read per engine lock, at most.
const RECV_BATCH: usize = 64;
/// Outbound datagrams queued after which no more inbound ones are taken under the same lock,
/// once the frame being read is complete: each publisher packet becomes one datagram per
/// viewer, so at thousands of viewers a full `RECV_BATCH` (a keyframe) would hold the lock for
/// tens of ms. Ending a batch mid-frame halves that frame's GSO runs (with a plain 8192 limit,
/// 1500 viewers cost 87 % of a core instead of ~65 %), so a frame is read to its end up to
/// `QUEUE_MAX` (a keyframe of 31 packets at 2000 viewers).
const QUEUE_HIGH: usize = 16384;
/// A timer deadline is never set sooner than this after the last look (tokio's timer has
/// millisecond resolution anyway).
const MIN_TIMER_GAP: Duration = Duration::from_millis(1);
/// How long after no TURN server took a connection r58 tries again.
const RELAY_RETRY: Duration = Duration::from_secs(5);
/// With no deadline at all (no engine timer pending), look again after this long anyway.
const IDLE_WAKEUP: Duration = Duration::from_secs(1);
const QUEUE_MAX: usize = 65536;

/// Socket buffer we ask for, each way. A publisher's keyframe burst (30+ packets at once) must
/// not overflow the receive buffer while the engine is busy fanning out the packet before it,
/// and a flush to thousands of viewers must not overflow the send buffer. The kernel caps the
/// request at `net.core.rmem_max` / `wmem_max`.
const SOCKET_BUFFER: usize = 4 << 20;

/// How far the media thread has come: a count of its loop's turns. The loop turns at least
/// once per [`Heartbeat::MAX_QUIET`] (plus the time its work takes) even with no peer at all, so a
/// count that stops moving for longer means the data plane is stuck (a deadlock, a busy
/// loop elsewhere in the thread, the thread gone): the service watchdog (`r58`'s
/// `notify.rs`) stops its pings then and systemd restarts the server.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat(Arc<AtomicU64>);

impl Heartbeat {
    /// The longest a running driver goes between two beats when its work is quick.
    pub const MAX_QUIET: Duration = IDLE_WAKEUP;

    /// The turns of the loop so far.
    pub fn beats(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn beat(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs [`run`] on a thread of its own (named `r58-media`) with a single-threaded runtime; the
/// receiver gets its result when it stops. `socket` must be non-blocking.
pub fn spawn(
    engine: SharedEngine,
    socket: std::net::UdpSocket,
    threads: usize,
) -> io::Result<oneshot::Receiver<io::Result<()>>> {
    spawn_with_relay(engine, socket, threads, None, Heartbeat::default())
}

/// [`spawn`], holding a TURN allocation with the settings `relay` carries (none while it holds
/// `None`; a change makes a new allocation), beating `heartbeat` on every turn of its loop.
pub fn spawn_with_relay(
    engine: SharedEngine,
    socket: std::net::UdpSocket,
    threads: usize,
    relay: Option<watch::Receiver<Option<RelaySettings>>>,
    heartbeat: Heartbeat,
) -> io::Result<oneshot::Receiver<io::Result<()>>> {
    let (done, result) = oneshot::channel();
    std::thread::Builder::new()
        .name("r58-media".into())
        .spawn(move || {
            let outcome = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|runtime| {
                    runtime.block_on(async move {
                        run(
                            engine,
                            UdpSocket::from_std(socket)?,
                            threads,
                            relay,
                            heartbeat,
                        )
                        .await
                    })
                });
            let _ = done.send(outcome);
        })?;
    Ok(result)
}

/// Receives on `socket` (and from the TURN server, when `relay` names one), feeds the engine,
/// and sends what it produces, until the socket fails. Each turn of the loop beats
/// `heartbeat`.
///
/// With `threads` above 1, a large fan-out (a frame to hundreds of viewers) is split into
/// shares of the viewers that `threads` threads protect and send at once (see
/// [`Engine::send_unsent_split`]); the rest of the engine's work stays on this thread.
pub async fn run(
    engine: SharedEngine,
    socket: UdpSocket,
    threads: usize,
    mut relay: Option<watch::Receiver<Option<RelaySettings>>>,
    heartbeat: Heartbeat,
) -> io::Result<()> {
    let sock = socket2::SockRef::from(&socket);
    if let Err(e) = sock
        .set_recv_buffer_size(SOCKET_BUFFER)
        .and_then(|()| sock.set_send_buffer_size(SOCKET_BUFFER))
    {
        tracing::warn!(error = %e, "cannot size the media socket's buffers");
    }
    let mut buf = vec![0u8; 2048];
    // With the kernel's receive times, the forward delay includes a datagram's wait in the
    // socket buffer (a busy core); without, it starts when the datagram is read.
    let mut receiver = match TimestampedReceiver::new(&socket) {
        Ok(receiver) => Some(receiver),
        Err(e) => {
            tracing::warn!(error = %e, "no receive timestamps on the media socket");
            None
        }
    };
    let mut out = Outbound::new(threads)?;
    let mut link: Option<RelayLink> = None;
    let mut new_settings = relay.as_mut().map(|r| r.borrow_and_update().clone());
    // The engine's own next deadline ([`Engine::poll_timeout`]) and the TURN client's, read
    // after every lock; a deadline already past is served after MIN_TIMER_GAP at the earliest,
    // so a timer that stays due cannot turn the thread into a busy loop.
    let timer = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(timer);
    // Settings whose servers took no connection, tried again at the instant given.
    let mut retry_open: Option<(Instant, RelaySettings)> = None;
    loop {
        heartbeat.beat();
        // A new TURN server (settings changed), a reconnection (a TCP/TLS connection broke, or
        // no server took one: tried again after RELAY_RETRY), or the next server of the list
        // (the current one never granted an allocation): connected outside the engine's lock.
        if retry_open
            .as_ref()
            .is_some_and(|(at, _)| *at <= Instant::now())
        {
            new_settings = retry_open.take().map(|(_, settings)| Some(settings));
        } else if let Some(current) = link.as_ref().filter(|l| l.wants_reconnect()) {
            tracing::warn!("TURN: connection to the server lost; connecting again");
            new_settings = Some(Some(current.settings().clone()));
        }
        if let Some(settings) = new_settings.take() {
            if let Some(mut old) = link.take() {
                old.close(&mut engine.lock_quietly(), Instant::now());
            }
            retry_open = None;
            link = match settings {
                Some(settings) => match open_relay(settings.clone()).await {
                    Some(link) => Some(link),
                    None => {
                        retry_open = Some((Instant::now() + RELAY_RETRY, settings));
                        None
                    }
                },
                None => None,
            };
            timer.as_mut().reset(tokio::time::Instant::now());
        } else if link.as_ref().is_some_and(RelayLink::wants_next_server)
            && let Some(current) = link.as_mut()
        {
            match current.next_server(Instant::now()).await {
                Ok(next) => {
                    current.close(&mut engine.lock_quietly(), Instant::now());
                    link = Some(next);
                    timer.as_mut().reset(tokio::time::Instant::now());
                }
                Err(e) => tracing::warn!(error = %e, "TURN: no further server to try"),
            }
        }
        let wake = tokio::select! {
            readable = socket.readable() => {
                readable?;
                Wake::Socket
            }
            _ = engine.flush_requested() => Wake::Flush,
            () = &mut timer => Wake::Timer,
            Ok(()) = relay_ready(link.as_ref()) => Wake::Relay,
            Some(settings) = relay_changed(relay.as_mut()) => Wake::Settings(settings),
        };
        let next = {
            let mut guard = engine.lock_quietly();
            let now = Instant::now();
            match wake {
                Wake::Socket => {
                    // Read what is queued, up to a batch, without another wakeup.
                    for read in 0..RECV_BATCH {
                        let pending = guard.pending_transmit_count();
                        if read > 0
                            && (pending >= QUEUE_MAX
                                || (pending >= QUEUE_HIGH && !guard.mid_frame()))
                        {
                            break;
                        }
                        let received = socket.try_io(Interest::READABLE, || {
                            receive(receiver.as_mut(), &socket, &mut buf)
                        });
                        match received {
                            Ok(r) => {
                                let now = Instant::now();
                                let data = &buf[..r.len];
                                match r.waited.and_then(|w| now.checked_sub(w)) {
                                    Some(at) => guard.handle_received(now, at, r.from, data),
                                    None => guard.handle_datagram(now, r.from, data),
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if is_transient(&e) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                Wake::Flush => {}
                Wake::Timer => {
                    guard.handle_timeout(now);
                    if let Some(link) = link.as_mut()
                        && link.poll_timeout().is_some_and(|at| at <= now)
                    {
                        link.handle_timeout(now);
                    }
                }
                Wake::Relay => {
                    if let Some(link) = link.as_mut() {
                        link.receive(&mut guard, now);
                    }
                }
                Wake::Settings(settings) => new_settings = Some(settings),
            }
            if let Some(link) = link.as_mut() {
                link.sync(&mut guard, now);
            }
            out.take(&mut guard);
            [
                guard.poll_timeout(),
                link.as_ref().and_then(RelayLink::poll_timeout),
                retry_open.as_ref().map(|(at, _)| *at),
            ]
            .into_iter()
            .flatten()
            .min()
        };
        out.send(&socket, link.as_mut());
        let earliest = Instant::now() + MIN_TIMER_GAP;
        let at = next.map_or(earliest + IDLE_WAKEUP, |at| at.max(earliest));
        timer.as_mut().reset(tokio::time::Instant::from_std(at));
    }
}

/// What woke the driver.
enum Wake {
    Socket,
    Flush,
    Timer,
    Relay,
    Settings(Option<RelaySettings>),
}

/// Completes when the TURN server's connection is ready; never without a link.
async fn relay_ready(link: Option<&RelayLink>) -> io::Result<()> {
    match link {
        Some(link) => link.ready().await,
        None => std::future::pending().await,
    }
}

/// The new relay settings when they change; never without a channel (or once it closed).
async fn relay_changed(
    relay: Option<&mut watch::Receiver<Option<RelaySettings>>>,
) -> Option<Option<RelaySettings>> {
    if let Some(relay) = relay
        && relay.changed().await.is_ok()
    {
        return Some(relay.borrow_and_update().clone());
    }
    std::future::pending().await
}

/// A new allocation with `settings`, or none (logged) when no server takes a connection.
async fn open_relay(settings: RelaySettings) -> Option<RelayLink> {
    match RelayLink::open(settings, Instant::now()).await {
        Ok(link) => Some(link),
        Err(e) => {
            tracing::warn!(error = %e, "TURN: cannot open a socket to the server");
            None
        }
    }
}

/// How much datagram space the driver's queue keeps between sends.
///
/// The engine's queue and the driver's alternate, so whatever one keeps, both come to keep.
/// Giving memory back after every send cost ~13 % of the core at 500 viewers (each delta-frame
/// flush, ~5 MB there, was faulted in page by page again); keeping every peak (a keyframe for
/// every viewer, twice) cost memory that showed as ~110 KB per subscriber at 100. So a queue
/// keeps room for twice its typical flush (a moving average of the flushes that carry media,
/// i.e. delta frames): only the rarer keyframe flush is given back and grown again.
#[derive(Debug, Clone, Copy, Default)]
struct SpareRoom {
    /// Moving average of media flushes, bytes.
    typical: usize,
}

impl SpareRoom {
    /// Always kept: small flushes never reallocate.
    const MIN: usize = 1 << 20;
    /// Never kept beyond, whatever the flushes: bounds what an idle server holds.
    const MAX: usize = 32 << 20;
    /// Flushes smaller than this (RTCP, handshakes, one packet to a few viewers) do not count
    /// towards the typical size.
    const MEDIA_FLUSH: usize = 64 << 10;

    /// Notes a flush of `bytes`; returns the capacity to keep after it.
    fn after_flush(&mut self, bytes: usize) -> usize {
        if bytes >= Self::MEDIA_FLUSH {
            self.typical = self.typical - self.typical / 8 + bytes / 8;
        }
        (2 * self.typical).clamp(Self::MIN, Self::MAX)
    }
}

/// How long one flush may wait in all for room in a full send buffer before it drops the
/// rest. A keyframe to 1000 viewers is ~37 MB, several times the buffer: the kernel drains it
/// in milliseconds, and the wait (with the engine unlocked) costs less than the keyframe.
const SEND_PATIENCE: std::time::Duration = std::time::Duration::from_millis(50);

/// Fan-out datagrams below which a share is not worth another thread: waking a thread costs
/// some µs, a datagram ~1.5 µs, and a few hundred of them are a frame to a few dozen viewers.
const MIN_SHARE_DATAGRAMS: usize = 256;

/// One thread's writes to the socket: its batching sender, what it keeps of its queue, and
/// what the socket refused.
struct Lane {
    sender: GsoSender,
    spare: SpareRoom,
    /// Datagrams the socket refused since the engine was last told.
    dropped: u64,
    /// How long forwarded media waited from its arrival until sent, since the engine was last
    /// told.
    delays: DelayHistogram,
    origins: Vec<Option<Instant>>,
    /// Datagrams that leave by the TURN relay, kept for the driver's thread to send.
    relayed: TransmitQueue,
}

impl Default for Lane {
    fn default() -> Self {
        Self {
            sender: GsoSender::new(true).with_patience(SEND_PATIENCE),
            spare: SpareRoom::default(),
            dropped: 0,
            delays: DelayHistogram::default(),
            origins: Vec::new(),
            relayed: TransmitQueue::default(),
        }
    }
}

impl Lane {
    /// Sends `queue`: grouped by viewer, a frame's equal-sized packets to one viewer as one
    /// GSO message. Empties the queue.
    ///
    /// What leaves by the relay goes to `relay` from the queue itself when the lane runs on
    /// the driver's thread (`Some`); a share on another thread keeps a copy for the driver.
    fn send(
        &mut self,
        socket: &UdpSocket,
        queue: &mut TransmitQueue,
        relay: Option<&mut RelayLink>,
    ) {
        if queue.is_empty() {
            return;
        }
        let mut datagrams: Vec<(std::net::SocketAddr, &[u8])> = Vec::with_capacity(queue.len());
        self.origins.clear();
        let mut relayed = 0;
        for ((to, data), origin) in queue.pending().zip(queue.pending_origins()) {
            match to.via {
                Via::Direct => {
                    datagrams.push((to.addr, data));
                    self.origins.push(origin);
                }
                Via::Relay if relay.is_some() => relayed += 1,
                Via::Relay => self.relayed.push(to, data),
            }
        }
        self.dropped +=
            self.sender
                .send_timed(socket, &datagrams, Some((&self.origins, &mut self.delays)))
                as u64;
        drop(datagrams);
        if let Some(link) = relay
            && relayed > 0
        {
            self.dropped += link.send_all(
                queue
                    .pending()
                    .filter(|(to, _)| to.via == Via::Relay)
                    .map(|(to, d)| (to.addr, d)),
            );
        }
        let keep = self.spare.after_flush(queue.bytes());
        queue.clear_and_shrink(keep);
    }

    /// Tells the engine what this lane sent and dropped since it last did.
    fn report(&mut self, engine: &mut Engine) {
        if self.dropped > 0 {
            engine.count_send_drops(std::mem::take(&mut self.dropped));
        }
        engine.count_sends(self.sender.take_counts());
        engine.count_forward_delays(&self.delays);
        self.delays.clear();
    }
}

/// The datagrams taken from the engine, sent after its lock is released.
struct Outbound {
    queue: TransmitQueue,
    lane: Lane,
    /// The media threads beside the driver's own, when there are several.
    pool: Option<rayon::ThreadPool>,
    /// One queue and lane per thread, the driver's included, for a split fan-out.
    share_queues: Vec<TransmitQueue>,
    share_lanes: Vec<Lane>,
    /// Share queues the last split filled.
    shares_filled: usize,
}

impl Outbound {
    fn new(threads: usize) -> io::Result<Self> {
        let threads = threads.max(1);
        let pool = if threads > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads - 1)
                .thread_name(|i| format!("r58-media-{}", i + 1))
                .build()
                .map_err(io::Error::other)?;
            Some(pool)
        } else {
            None
        };
        let shares = if pool.is_some() { threads } else { 0 };
        Ok(Self {
            queue: TransmitQueue::default(),
            lane: Lane::default(),
            pool,
            share_queues: (0..shares).map(|_| TransmitQueue::default()).collect(),
            share_lanes: (0..shares).map(|_| Lane::default()).collect(),
            shares_filled: 0,
        })
    }

    /// Takes what the engine queued (handing it the emptied buffer of the last send), the
    /// media split across the threads when it is worth it, and reports the last send's
    /// counts.
    fn take(&mut self, engine: &mut Engine) {
        self.lane.report(engine);
        for lane in &mut self.share_lanes {
            lane.report(engine);
        }
        if let Some(pool) = &self.pool {
            self.shares_filled =
                engine.send_unsent_split(&mut self.share_queues, MIN_SHARE_DATAGRAMS, |shares| {
                    in_parallel(pool, shares, FanoutShare::run)
                });
        }
        self.queue.clear();
        engine.swap_transmits(&mut self.queue);
    }

    /// Sends the taken datagrams: the engine's queue first (it holds what is older than a
    /// split's media, such as a joiner's keyframe cache), then the shares at once, then what
    /// leaves by the relay.
    fn send(&mut self, socket: &UdpSocket, mut relay: Option<&mut RelayLink>) {
        self.lane
            .send(socket, &mut self.queue, relay.as_deref_mut());
        let filled = std::mem::take(&mut self.shares_filled);
        if let (Some(pool), true) = (&self.pool, filled > 0) {
            let mut shares: Vec<(&mut TransmitQueue, &mut Lane)> = self
                .share_queues
                .iter_mut()
                .zip(&mut self.share_lanes)
                .take(filled)
                .collect();
            in_parallel(pool, &mut shares, |(queue, lane)| {
                lane.send(socket, queue, None)
            });
        }
        for lane in &mut self.share_lanes {
            match relay.as_deref_mut() {
                Some(link) => {
                    lane.dropped +=
                        link.send_all(lane.relayed.pending().map(|(to, d)| (to.addr, d)));
                }
                None => lane.dropped += lane.relayed.len() as u64,
            }
            lane.relayed.clear();
        }
    }
}

/// Runs `work` on every item, the first on this thread and the others on `pool`'s, and
/// returns when all are done.
fn in_parallel<T: Send>(pool: &rayon::ThreadPool, items: &mut [T], work: impl Fn(&mut T) + Sync) {
    let Some((first, rest)) = items.split_first_mut() else {
        return;
    };
    let work = &work;
    pool.in_place_scope(|scope| {
        for item in rest {
            scope.spawn(move |_| work(item));
        }
        work(first);
    });
}

/// One datagram from `socket`, with its receive timestamp when `receiver` is there.
fn receive(
    receiver: Option<&mut TimestampedReceiver>,
    socket: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<Received> {
    match receiver {
        Some(receiver) => receiver.recv(socket, buf),
        None => socket.try_recv_from(buf).map(|(len, from)| Received {
            len,
            from,
            waited: None,
        }),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use crate::webrtc::PeerAddr;

    #[test]
    fn spare_room_follows_the_typical_media_flush_not_the_peak() {
        let mut room = SpareRoom::default();
        assert_eq!(
            room.after_flush(500),
            SpareRoom::MIN,
            "small flushes keep the minimum"
        );
        // 500 viewers: 29 delta-frame flushes of ~5 MB, then a keyframe of ~19 MB.
        let delta = 5 << 20;
        let mut keep = 0;
        for _ in 0..60 {
            keep = room.after_flush(delta);
        }
        assert!(
            (9 << 20..=10 << 20).contains(&keep),
            "room for twice a delta flush: {keep}"
        );
        let after_keyframe = room.after_flush(19 << 20);
        assert!(
            after_keyframe < 19 << 20,
            "a keyframe's peak is given back: {after_keyframe}"
        );
        for _ in 0..100 {
            keep = room.after_flush(200 << 20);
        }
        assert_eq!(keep, SpareRoom::MAX, "bounded whatever the flushes");
    }

    /// Datagrams pass from the engine's queue through the swap and the send outside the lock:
    /// every one arrives, in order per destination, round after round (the two queues
    /// alternate between rounds).
    #[tokio::test]
    async fn queued_datagrams_all_arrive_in_order_across_swaps() {
        let mut engine = Engine::new(EngineConfig::default()).expect("engine");
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let viewers: Vec<std::net::UdpSocket> = (0..2)
            .map(|_| {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind viewer");
                s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .expect("timeout");
                // What the kernel allows; a round below fits the default 208 KB anyway.
                let _ = socket2::SockRef::from(&s).set_recv_buffer_size(1 << 20);
                s
            })
            .collect();
        let mut out = Outbound::new(1).expect("outbound");
        // Small enough per round to fit a viewer socket's default receive buffer.
        const PER_VIEWER: usize = 48;
        for round in 0..3u8 {
            let mut queue = TransmitQueue::default();
            for i in 0..PER_VIEWER {
                for (v, viewer) in viewers.iter().enumerate() {
                    let mut datagram = vec![round, v as u8];
                    datagram.extend_from_slice(&(i as u32).to_be_bytes());
                    // Equal sizes except every 8th, as a frame's packets: GSO runs and breaks.
                    datagram.resize(if i % 8 == 7 { 900 } else { 1200 }, 0xaa);
                    queue.push(
                        PeerAddr::direct(viewer.local_addr().expect("addr")),
                        &datagram,
                    );
                }
            }
            engine.swap_transmits(&mut queue);
            out.take(&mut engine);
            assert_eq!(
                engine.pending_transmit_count(),
                0,
                "the engine's queue is handed over"
            );
            out.send(&socket, None);
            assert_eq!(
                out.lane.dropped, 0,
                "round {round}: the socket refused datagrams"
            );
            for (v, viewer) in viewers.iter().enumerate() {
                let mut buf = [0u8; 2048];
                for i in 0..PER_VIEWER {
                    let n = viewer.recv(&mut buf).expect("every datagram arrives");
                    let expected_len = if i % 8 == 7 { 900 } else { 1200 };
                    assert_eq!(n, expected_len, "round {round}, viewer {v}, packet {i}");
                    assert_eq!(&buf[..2], &[round, v as u8]);
                    let seq = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]);
                    assert_eq!(seq as usize, i, "round {round}, viewer {v}: out of order");
                }
            }
        }
        assert!(out.queue.is_empty());
    }
}
