//! The RTSP server's I/O: the accept loop, one tokio task per connection around the sans-IO
//! [`sfu::rtsp::Connection`], the two UDP sockets of the UDP transport, and the hub reader each
//! playing client gets (a bounded queue: a client that cannot keep up loses packets, counted on
//! its reader in /api/streams, and never holds up the publisher or other readers).
//!
//! Who may read a stream is the `[[auth]]` rule of its WHEP path (`/whep/NAME`): reading over
//! RTSP is watching, the same right with the same token (as the password of Basic or Digest).
//! Connections per client address follow `[limits] sessions_per_ip` (beyond it 453), the
//! whole server `max_sessions` connections (503).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sfu::engine::SharedEngine;
use sfu::media::WallClock;
use sfu::rtsp::{Catalog, Connection, ConnectionConfig, Event, Output, StreamDescription};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::{AuthRule, Limits, RtspConfig, matches};
use crate::live::Live;

/// Packets a client's hub reader queues before it drops (about two seconds of a camera).
const READER_QUEUE: usize = 1024;
/// A client that takes no bytes for this long is cut off.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that has not sent a complete request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a refused connection (per-client limit, server full) may stay to read its answer.
const REFUSED_TIMEOUT: Duration = Duration::from_secs(2);

/// What every connection task shares.
pub struct RtspServer {
    engine: SharedEngine,
    /// Shared with the HTTP server; a configuration reload replaces them.
    auth: Live<Vec<AuthRule>>,
    limits: Live<Limits>,
    max_connections: usize,
    session_timeout: Duration,
    wall_clock: WallClock,
    udp: Option<UdpPair>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// UDP clients' RTCP addresses -> when a datagram last came from there (ms since
    /// `wall_clock.instant`), for their connections' session timeouts.
    rtcp_seen: Mutex<HashMap<SocketAddr, Arc<AtomicU64>>>,
    pub stats: Arc<RtspStats>,
}

/// Counters of the RTSP server (`/metrics`: `r58_rtsp_*`, with the readers per stream and
/// their losses from the hub).
#[derive(Debug, Default)]
pub struct RtspStats {
    /// Connections accepted, refused ones included.
    pub connections: AtomicU64,
    /// Connections answered 453 (per-client limit) or 503 (server full).
    pub refused: AtomicU64,
    /// Connections open now (refused ones not counted).
    pub open: AtomicU64,
    /// Bytes written to clients' TCP connections: answers and interleaved media.
    pub tcp_bytes: AtomicU64,
    /// Bytes sent in UDP datagrams (RTP and RTCP).
    pub udp_bytes: AtomicU64,
    /// UDP datagrams the socket did not take (its buffer full).
    pub udp_dropped: AtomicU64,
}

struct UdpPair {
    rtp: UdpSocket,
    rtcp: UdpSocket,
}

/// The sockets of a running RTSP server.
pub struct RtspSockets {
    pub listener: TcpListener,
    udp: Option<UdpPair>,
}

/// Binds the RTSP listener and the UDP transport's two sockets (on the listener's address).
/// `Ok(None)` when RTSP is off, or when its default port is taken (a warning: RTSP is then off
/// while everything else runs); an address that was configured must be bound.
pub async fn bind(config: &RtspConfig) -> std::io::Result<Option<RtspSockets>> {
    if !config.enabled {
        return Ok(None);
    }
    let listener = match TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) if !config.listen_configured => {
            warn!(addr = %config.listen, error = %e, "RTSP server off: its default port is taken (set [rtsp] listen)");
            return Ok(None);
        }
        Err(e) => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("cannot listen for RTSP on {}: {e}", config.listen),
            ));
        }
    };
    let ip = config.listen.ip();
    let udp = bind_udp_pair(ip, config.rtp_port).await?;
    Ok(Some(RtspSockets { listener, udp }))
}

async fn bind_udp_pair(ip: IpAddr, rtp_port: u16) -> std::io::Result<Option<UdpPair>> {
    if rtp_port != 0 {
        let rtp = UdpSocket::bind(SocketAddr::new(ip, rtp_port)).await?;
        let rtcp = UdpSocket::bind(SocketAddr::new(ip, rtp_port + 1)).await?;
        return Ok(Some(UdpPair { rtp, rtcp }));
    }
    // Any free pair; clients do not need them adjacent, but some expect an even RTP port.
    for _ in 0..16 {
        let rtp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let port = rtp.local_addr()?.port();
        if port < u16::MAX
            && let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await
        {
            return Ok(Some(UdpPair { rtp, rtcp }));
        }
    }
    let rtp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    let rtcp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    Ok(Some(UdpPair { rtp, rtcp }))
}

impl RtspServer {
    pub fn new(
        engine: SharedEngine,
        auth: Live<Vec<AuthRule>>,
        limits: Live<Limits>,
        max_connections: usize,
        config: &RtspConfig,
    ) -> Self {
        Self {
            engine,
            auth,
            limits,
            max_connections,
            session_timeout: config.session_timeout,
            wall_clock: WallClock::now(),
            udp: None,
            per_ip: Mutex::new(HashMap::new()),
            rtcp_seen: Mutex::new(HashMap::new()),
            stats: Arc::default(),
        }
    }

    /// The same server counting into `stats` (shared with `/metrics`).
    pub fn with_stats(mut self, stats: Arc<RtspStats>) -> Self {
        self.stats = stats;
        self
    }

    /// Serves RTSP clients on `sockets` until the listener fails.
    pub async fn serve(mut self, sockets: RtspSockets) -> std::io::Result<()> {
        self.udp = sockets.udp;
        let udp_ports = match &self.udp {
            Some(pair) => Some((
                pair.rtp.local_addr()?.port(),
                pair.rtcp.local_addr()?.port(),
            )),
            None => None,
        };
        info!(rtsp = %sockets.listener.local_addr()?, ?udp_ports, "RTSP serving");
        let server = Arc::new(self);
        if server.udp.is_some() {
            // Receiver reports and NAT pings arrive here; read and drop them so the socket's
            // buffer never fills.
            tokio::spawn(drain_rtcp(server.clone()));
        }
        loop {
            let (stream, peer) = match sockets.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    debug!(error = %e, "RTSP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let server = server.clone();
            let span = info_span!("rtsp", %peer);
            tokio::spawn(server.connection(stream, peer, udp_ports).instrument(span));
        }
    }

    /// Whether a new connection from `ip` is admitted; counts it when it is.
    fn admit(&self, ip: IpAddr) -> Option<u16> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = per_ip.values().sum();
        if self.max_connections > 0 && total >= self.max_connections {
            return Some(503);
        }
        let limits = self.limits.load();
        let limit = limits.sessions_per_ip;
        let held = per_ip.get(&ip).copied().unwrap_or(0);
        if limit > 0 && !limits.unlimited_ips.contains(&ip) && held >= limit {
            return Some(453);
        }
        *per_ip.entry(ip).or_insert(0) += 1;
        None
    }

    fn release(&self, ip: IpAddr) {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&ip);
            }
        }
    }

    async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        udp_ports: Option<(u16, u16)>,
    ) {
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        let refuse = self.admit(peer.ip());
        if refuse.is_some() {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.open.fetch_add(1, Ordering::Relaxed);
        }
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(peer);
        let now = Instant::now();
        let mut conn = Connection::new(
            now,
            ConnectionConfig {
                peer,
                local,
                udp_ports,
                session_timeout: self.session_timeout,
                // A refused client gets a moment to send a request and read why, no more: a
                // flood of refused connections must not pile up.
                idle_timeout: if refuse.is_some() {
                    REFUSED_TIMEOUT
                } else {
                    IDLE_TIMEOUT
                },
                wall_clock: self.wall_clock,
                seed: rand::random(),
                refuse,
            },
        );
        let reason = self.run(&mut conn, stream).await;
        debug!(reason, stats = ?conn.stats, "RTSP connection ended");
        if refuse.is_none() {
            self.release(peer.ip());
            self.stats.open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    async fn run(&self, conn: &mut Connection, stream: TcpStream) -> &'static str {
        let (mut read_half, mut write_half) = stream.into_split();
        let mut reader: Option<mpsc::Receiver<sfu::hub::ReaderPacket>> = None;
        let mut input = vec![0u8; 16 * 1024];
        let catalog = EngineCatalog { server: self };
        let rtcp_seen = Arc::new(AtomicU64::new(0));
        let mut registered: Vec<SocketAddr> = Vec::new();
        let reason = loop {
            // Send what the core produced, and act on what it asked for.
            while let Some(output) = conn.poll_output() {
                match output {
                    Output::Tcp(bytes) => {
                        match tokio::time::timeout(WRITE_TIMEOUT, write_half.write_all(&bytes))
                            .await
                        {
                            Ok(Ok(())) => {
                                self.stats
                                    .tcp_bytes
                                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                            }
                            Ok(Err(_)) => return self.unregister(&registered, "write failed"),
                            Err(_) => {
                                return self.unregister(&registered, "client stopped reading");
                            }
                        }
                    }
                    Output::Udp { to, rtcp, data } => {
                        if let Some(pair) = &self.udp {
                            let socket = if rtcp { &pair.rtcp } else { &pair.rtp };
                            // A full socket buffer loses this datagram, as the network could.
                            match socket.try_send_to(&data, to) {
                                Ok(n) => {
                                    self.stats.udp_bytes.fetch_add(n as u64, Ordering::Relaxed)
                                }
                                Err(_) => self.stats.udp_dropped.fetch_add(1, Ordering::Relaxed),
                            };
                        }
                    }
                }
            }
            while let Some(event) = conn.poll_event() {
                match event {
                    Event::Play { stream } => {
                        let attached = self.engine.lock().attach_reader(
                            Instant::now(),
                            &stream,
                            "rtsp",
                            READER_QUEUE,
                        );
                        match attached {
                            Ok((_, rx)) => {
                                self.engine.lock().request_keyframe(Instant::now(), &stream);
                                reader = Some(rx);
                            }
                            Err(_) => conn.handle_stream_ended(),
                        }
                    }
                    Event::Close { reason } => {
                        // Flush what the core wrote last (the answer to TEARDOWN, a 400).
                        while let Some(Output::Tcp(bytes)) = conn.poll_output() {
                            let _ =
                                tokio::time::timeout(WRITE_TIMEOUT, write_half.write_all(&bytes))
                                    .await;
                        }
                        let _ = write_half.shutdown().await;
                        return self.unregister(&registered, reason);
                    }
                }
            }
            let deadline = conn.poll_timeout();
            tokio::select! {
                read = read_half.read(&mut input) => match read {
                    Ok(0) | Err(_) => break "client closed",
                    Ok(n) => {
                        conn.handle_input(Instant::now(), &input[..n], &catalog);
                        let addresses = conn.udp_rtcp_addresses();
                        if addresses != registered {
                            let mut seen =
                                self.rtcp_seen.lock().unwrap_or_else(|e| e.into_inner());
                            for a in &registered {
                                seen.remove(a);
                            }
                            for a in &addresses {
                                seen.insert(*a, rtcp_seen.clone());
                            }
                            registered = addresses;
                        }
                    }
                },
                packet = recv(&mut reader) => match packet {
                    Some(first) => {
                        let now = Instant::now();
                        conn.handle_media(now, &first);
                        // Take what else is queued now, so it leaves in one write.
                        if let Some(rx) = reader.as_mut() {
                            let mut n = 0;
                            while n < 64 && let Ok(more) = rx.try_recv() {
                                conn.handle_media(now, &more);
                                n += 1;
                            }
                        }
                    }
                    None => {
                        reader = None;
                        conn.handle_stream_ended();
                    }
                },
                _ = sleep_until(deadline) => {
                    let now = Instant::now();
                    // Sender Reports are due: take the publisher's latest from the hub.
                    if conn.report_due().is_some_and(|at| at <= now)
                        && let Some(stream) = conn.playing_stream()
                    {
                        let reports = sfu::rtsp::source_reports(&self.engine.lock(), stream);
                        conn.set_source_reports(reports);
                    }
                    let heard = rtcp_seen.swap(0, Ordering::Relaxed);
                    if heard > 0 {
                        let at = self.wall_clock.instant + Duration::from_millis(heard);
                        conn.handle_client_rtcp(at.min(now));
                    }
                    conn.handle_timeout(now);
                }
            }
        };
        self.unregister(&registered, reason)
    }

    /// Forgets a connection's UDP RTCP addresses; passes `reason` through.
    fn unregister(&self, registered: &[SocketAddr], reason: &'static str) -> &'static str {
        let mut seen = self.rtcp_seen.lock().unwrap_or_else(|e| e.into_inner());
        for a in registered {
            seen.remove(a);
        }
        reason
    }
}

/// The next packet of the reader, or never when there is none.
async fn recv(
    reader: &mut Option<mpsc::Receiver<sfu::hub::ReaderPacket>>,
) -> Option<sfu::hub::ReaderPacket> {
    match reader {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

async fn drain_rtcp(server: Arc<RtspServer>) {
    let Some(pair) = &server.udp else {
        return;
    };
    let (mut a, mut b) = ([0u8; 2048], [0u8; 2048]);
    loop {
        let failed = tokio::select! {
            r = pair.rtcp.recv_from(&mut a) => match r {
                Ok((_, from)) => {
                    // A receiver report: its connection counts it as a keep-alive.
                    let seen = server.rtcp_seen.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(at) = seen.get(&from) {
                        let ms = server.wall_clock.instant.elapsed().as_millis() as u64;
                        at.store(ms, Ordering::Relaxed);
                    }
                    false
                }
                Err(_) => true,
            },
            r = pair.rtp.recv_from(&mut b) => r.is_err(),
        };
        if failed {
            // ICMP port unreachable from a client that went away, reported on the next read.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The streams as the engine has them, and the `[[auth]]` rules of their WHEP paths.
struct EngineCatalog<'a> {
    server: &'a RtspServer,
}

impl Catalog for EngineCatalog<'_> {
    fn describe(&self, name: &str) -> Option<StreamDescription> {
        sfu::rtsp::describe(&self.server.engine.lock(), name)
    }

    fn required_token(&self, name: &str) -> Option<String> {
        let path = format!("/whep/{name}");
        self.server
            .auth
            .load()
            .iter()
            .find(|rule| matches(&rule.path, &path))
            .map(|rule| rule.token.clone())
    }
}
