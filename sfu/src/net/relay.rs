//! The driver's TURN allocation: r58's own relay candidate, for a box behind NAT with nothing
//! forwarded (RFC 8656). A [`RelayLink`] is the sans-IO [`TurnClient`] and the connection to
//! its server; the driver reads the connection, runs the client's timers, hands relayed
//! datagrams to the engine as coming from their peer by the relay
//! ([`Engine::handle_relayed`]), sends the engine's relayed datagrams through the client
//! (ChannelData once a channel is bound), and keeps the two in step ([`RelayLink::sync`]):
//! the engine says which peers to permit and bind ([`Engine::poll_relay_need`]), the client
//! says when it holds an allocation ([`Engine::set_relay`]).
//!
//! The servers are tried in the order given (UDP first, then TCP, then TLS: RFC 8656 framing
//! over the stream, the relayed allocation still UDP): a server that does not grant a first
//! allocation within a few seconds (a venue that drops outbound UDP) makes the link move to
//! the next.
//! Once allocated on a transport, the link stays on it and the client re-allocates there.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::net::{TcpStream, UdpSocket};
use tracing::{debug, info, warn};

use super::relay_tls::TlsPipe;
use super::udp_batch::GsoSender;
use crate::engine::{Engine, RelayNeed, RelayReport};
use crate::turn::Secret;
use crate::turn::client::{
    ClientConfig, Event, Inbound, Retransmission, StreamFramer, Transport, TurnClient,
};
use crate::webrtc::sdp::RelayCandidate;

/// With relayed peers, a server silent this long is asked whether our allocation still exists
/// (a Refresh): clients send consent checks every few seconds and publishers media, so silence
/// means the server restarted or the path broke, and a 437 then re-allocates at once rather
/// than at the next scheduled refresh, minutes later.
const PROBE_AFTER: Duration = Duration::from_secs(4);
/// Without relayed peers (the sessions of a dead relay end by themselves within seconds), the
/// allocation is still probed this often when the server is silent, so new clients are not
/// offered a relay that no longer exists for long.
const IDLE_PROBE_AFTER: Duration = Duration::from_secs(15);

/// How often the engine gets the client's counters (for `/metrics`).
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Bytes waiting to be written to a TCP connection at most; beyond, relayed media is dropped
/// (and counted) rather than queued behind a stalled connection.
const MAX_STREAM_BACKLOG: usize = 4 << 20;

/// Retransmissions for r58's own allocation: about 5 s to give up on a server that does not
/// answer (RFC 8489's defaults take 39.5 s, too long before trying TCP).
fn retransmission() -> Retransmission {
    Retransmission {
        rto: Duration::from_millis(250),
        max_sends: 5,
        last_wait: 4,
        stream_timeout: Duration::from_secs(5),
    }
}

/// One TURN server to allocate on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayServer {
    pub addr: SocketAddr,
    pub transport: Transport,
    /// The host as written in the URL: the name a TLS certificate must carry.
    pub name: String,
}

/// Where and as whom r58 allocates its relay: servers in the order to try them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySettings {
    pub servers: Vec<RelayServer>,
    pub username: String,
    pub password: String,
    /// CA certificates (DER) trusted for `turns:` besides the public roots.
    pub extra_roots: Vec<Vec<u8>>,
}

/// The connection to the TURN server.
enum Conn {
    Udp(UdpSocket),
    Tcp {
        stream: TcpStream,
        framer: StreamFramer,
        /// Bytes not yet written.
        backlog: VecDeque<u8>,
    },
    Tls {
        pipe: TlsPipe,
        framer: StreamFramer,
    },
}

/// One allocation: the client and its connection to the server.
pub struct RelayLink {
    client: TurnClient,
    conn: Conn,
    settings: RelaySettings,
    /// Index in `settings.servers` of the server in use.
    server: usize,
    /// Whether this server ever granted an allocation (then the link stays on it).
    allocated_once: bool,
    recv: Vec<u8>,
    out: Vec<u8>,
    /// A flush's relayed datagrams encoded for the server, back to back, and where each is.
    batch: Vec<u8>,
    spans: Vec<(usize, usize)>,
    /// Sends a UDP flush to the server in `sendmmsg` batches, equal-sized ChannelData messages
    /// (one packet of a frame to each relayed viewer) as GSO runs.
    sender: GsoSender,
    /// The relay candidate the engine was last told of.
    announced: Option<RelayCandidate>,
    /// When the engine is next given the client's counters.
    next_report: Instant,
    /// The client gave up allocating on this server before it ever granted one.
    gave_up: bool,
    /// When the server last sent anything, and how many relayed peers have a channel: a silent
    /// server's allocation is probed ([`PROBE_AFTER`], [`IDLE_PROBE_AFTER`]).
    last_heard: Instant,
    relayed_peers: usize,
    /// The TCP or TLS connection broke: the driver connects again.
    connection_lost: bool,
}

impl RelayLink {
    /// Connects to the first server of `settings` that takes a connection and starts
    /// allocating there.
    pub async fn open(settings: RelaySettings, now: Instant) -> io::Result<Self> {
        let mut last_error = io::Error::other("no TURN server given");
        for index in 0..settings.servers.len() {
            match Self::open_at(&settings, index, now).await {
                Ok(link) => return Ok(link),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    async fn open_at(settings: &RelaySettings, index: usize, now: Instant) -> io::Result<Self> {
        let server = &settings.servers[index];
        let conn = connect(server, &settings.extra_roots).await?;
        let mut config = ClientConfig::new(
            server.addr,
            server.transport,
            settings.username.clone(),
            Secret::new(settings.password.clone()),
        );
        config.retransmission = retransmission();
        let mut client = TurnClient::new(config).map_err(io::Error::other)?;
        client.allocate(now);
        info!(server = %server.addr, transport = server.transport.name(), "TURN: allocating r58's relay");
        let mut link = Self {
            client,
            conn,
            settings: settings.clone(),
            server: index,
            allocated_once: false,
            recv: vec![0; 65_536],
            out: Vec::with_capacity(2048),
            batch: Vec::new(),
            spans: Vec::new(),
            sender: GsoSender::new(true),
            announced: None,
            next_report: now,
            gave_up: false,
            last_heard: now,
            relayed_peers: 0,
            connection_lost: false,
        };
        link.flush();
        Ok(link)
    }

    /// A link over `socket` to `server` (a local stand-in for a TURN server) with `client`
    /// already allocated: for benchmarks of the send path.
    #[cfg(feature = "test-support")]
    pub fn with_client(client: TurnClient, socket: UdpSocket, server: SocketAddr) -> Self {
        Self {
            settings: RelaySettings {
                servers: vec![RelayServer {
                    addr: server,
                    transport: Transport::Udp,
                    name: server.ip().to_string(),
                }],
                username: String::new(),
                password: String::new(),
                extra_roots: Vec::new(),
            },
            client,
            conn: Conn::Udp(socket),
            server: 0,
            allocated_once: true,
            recv: Vec::new(),
            out: Vec::new(),
            batch: Vec::new(),
            spans: Vec::new(),
            sender: GsoSender::new(true),
            announced: None,
            next_report: Instant::now(),
            gave_up: false,
            last_heard: Instant::now(),
            relayed_peers: 0,
            connection_lost: false,
        }
    }

    pub fn settings(&self) -> &RelaySettings {
        &self.settings
    }

    /// Completes when the connection has something to read (or, over TCP with a backlog,
    /// room to write).
    pub async fn ready(&self) -> io::Result<()> {
        match &self.conn {
            Conn::Udp(socket) => socket.readable().await,
            Conn::Tcp {
                stream, backlog, ..
            } => {
                let interest = if backlog.is_empty() {
                    Interest::READABLE
                } else {
                    Interest::READABLE | Interest::WRITABLE
                };
                stream.ready(interest).await.map(drop)
            }
            Conn::Tls { pipe, .. } => {
                pipe.ready().await;
                Ok(())
            }
        }
    }

    /// The client's next deadline, or the next liveness probe.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let client = self.client.poll_timeout();
        match self.probe_at() {
            Some(probe) => Some(client.map_or(probe, |c| c.min(probe))),
            None => client,
        }
    }

    fn probe_at(&self) -> Option<Instant> {
        let after = if self.relayed_peers > 0 {
            PROBE_AFTER
        } else {
            IDLE_PROBE_AFTER
        };
        self.announced.is_some().then(|| self.last_heard + after)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.probe_at().is_some_and(|at| at <= now) {
            debug!(server = %self.client.server(), "TURN: server silent; probing the allocation");
            self.client.probe(now);
            // The next probe, if the server stays silent, after another PROBE_AFTER.
            self.last_heard = now;
        }
        self.client.handle_timeout(now);
        self.flush();
    }

    /// Reads everything the server sent; relayed data goes to the engine. Over TCP a closed or
    /// broken connection is reported to the client (which reports the allocation lost).
    pub fn receive(&mut self, engine: &mut Engine, now: Instant) {
        let Self {
            client,
            conn,
            recv,
            settings,
            server,
            last_heard,
            connection_lost,
            ..
        } = self;
        let addr = settings.servers[*server].addr;
        match conn {
            Conn::Udp(socket) => loop {
                let n = match socket.try_recv(recv) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        // ICMP unreachable and the like: the client's retransmissions and
                        // timeouts decide whether the allocation is lost.
                        debug!(server = %addr, error = %e, "TURN socket");
                        break;
                    }
                };
                *last_heard = now;
                deliver(client, engine, now, &recv[..n]);
            },
            Conn::Tls { pipe, framer } => {
                let (chunks, closed) = pipe.take();
                if !chunks.is_empty() {
                    *last_heard = now;
                }
                for chunk in chunks {
                    if let Err(e) = framer.push(&chunk) {
                        warn!(server = %addr, error = %e, "TURN: unusable stream");
                        client.handle_connection_lost(now);
                        *connection_lost = true;
                        break;
                    }
                    while let Ok(Some(frame)) = framer.next_frame() {
                        deliver(client, engine, now, frame);
                    }
                }
                if closed {
                    warn!(server = %addr, "TURN: the TLS connection ended");
                    client.handle_connection_lost(now);
                    *connection_lost = true;
                }
            }
            Conn::Tcp { stream, framer, .. } => loop {
                match stream.try_read(recv) {
                    Ok(0) => {
                        warn!(server = %addr, "TURN: the server closed the connection");
                        client.handle_connection_lost(now);
                        *connection_lost = true;
                        break;
                    }
                    Ok(n) => {
                        *last_heard = now;
                        if let Err(e) = framer.push(&recv[..n]) {
                            warn!(server = %addr, error = %e, "TURN: unusable stream");
                            client.handle_connection_lost(now);
                            *connection_lost = true;
                            break;
                        }
                        loop {
                            match framer.next_frame() {
                                Ok(Some(frame)) => deliver(client, engine, now, frame),
                                Ok(None) => break,
                                Err(e) => {
                                    warn!(server = %addr, error = %e, "TURN: unusable stream");
                                    client.handle_connection_lost(now);
                                    *connection_lost = true;
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        warn!(server = %addr, error = %e, "TURN: connection failed");
                        client.handle_connection_lost(now);
                        *connection_lost = true;
                        break;
                    }
                }
            },
        }
        self.flush();
    }

    /// Sends a flush's relayed datagrams (`(peer, payload)` in order) through the relay;
    /// returns how many were dropped. Over UDP they go out in `sendmmsg`/GSO batches to the
    /// server, the way direct datagrams go to viewers.
    pub fn send_all<'a>(&mut self, datagrams: impl Iterator<Item = (SocketAddr, &'a [u8])>) -> u64 {
        if !matches!(self.conn, Conn::Udp(_)) {
            return datagrams
                .map(|(peer, payload)| u64::from(!self.send(peer, payload)))
                .sum();
        }
        self.batch.clear();
        self.spans.clear();
        let mut dropped = 0u64;
        for (peer, payload) in datagrams {
            let start = self.batch.len();
            match self.client.send_to(peer, payload, &mut self.batch) {
                Ok(len) => self.spans.push((start, len)),
                Err(e) => {
                    debug!(error = %e, "TURN: relayed datagram not sent");
                    self.batch.truncate(start);
                    dropped += 1;
                }
            }
        }
        if let Conn::Udp(socket) = &self.conn
            && !self.spans.is_empty()
        {
            let server = self.settings.servers[self.server].addr;
            let messages: Vec<(SocketAddr, &[u8])> = self
                .spans
                .iter()
                .map(|&(start, len)| (server, &self.batch[start..start + len]))
                .collect();
            dropped += self.sender.send(socket, &messages) as u64;
        }
        dropped
    }

    /// Sends `payload` to `peer` through the relay.
    pub fn send(&mut self, peer: SocketAddr, payload: &[u8]) -> bool {
        self.out.clear();
        match self.client.send_to(peer, payload, &mut self.out) {
            Ok(_) => write(&mut self.conn, &self.out),
            Err(e) => {
                debug!(error = %e, "TURN: relayed datagram not sent");
                false
            }
        }
    }

    /// Whether the stream to the server broke: the driver replaces the link by a new one.
    pub fn wants_reconnect(&self) -> bool {
        self.connection_lost
    }

    /// Whether the driver should replace this link by one to the next server: the current
    /// one never granted an allocation and the client gave up on it.
    pub fn wants_next_server(&self) -> bool {
        !self.allocated_once
            && self.announced.is_none()
            && self.server + 1 < self.settings.servers.len()
            && self.gave_up
    }

    /// Brings engine and client in step: the sessions' permissions and channels to the client,
    /// the allocation's coming and going to the engine.
    pub fn sync(&mut self, engine: &mut Engine, now: Instant) {
        while let Some(event) = self.client.poll_event() {
            match event {
                Event::Allocated {
                    relayed, mapped, ..
                } => {
                    let transport = self.client.transport().name();
                    info!(%relayed, ?mapped, server = %self.client.server(), transport, "TURN: relay allocated");
                    self.allocated_once = true;
                    // The engine asks for every relayed peer's channel again.
                    self.relayed_peers = 0;
                    self.last_heard = now;
                    let candidate = RelayCandidate { relayed, mapped };
                    self.announced = Some(candidate);
                    engine.set_relay(now, Some(candidate));
                }
                Event::AllocationLost { relayed, failure } => {
                    warn!(%relayed, %failure, "TURN: relay lost; allocating again");
                    self.announced = None;
                    self.relayed_peers = 0;
                    engine.set_relay(now, None);
                }
                Event::AllocationFailed { failure, retry_at } => {
                    warn!(%failure, retry_in = ?retry_at.map(|at| at.saturating_duration_since(now)), "TURN: no relay");
                    if self.announced.take().is_some() {
                        engine.set_relay(now, None);
                    }
                    if !self.allocated_once {
                        self.gave_up = true;
                    }
                }
                Event::PermissionFailed { peer, failure } => {
                    debug!(%peer, %failure, "TURN: permission refused");
                }
                Event::ChannelFailed { peer, failure, .. } => {
                    debug!(%peer, %failure, "TURN: channel refused; Send indications meanwhile");
                }
                other => debug!(event = ?other, "TURN"),
            }
        }
        if now >= self.next_report {
            self.next_report = now + REPORT_INTERVAL;
            engine.note_relay_report(Some(RelayReport {
                server: self.client.server(),
                transport: self.client.transport().name(),
                relayed: self.client.relayed(),
                stats: self.client.stats(),
            }));
        }
        while let Some(need) = engine.poll_relay_need() {
            let done = match need {
                RelayNeed::Permit(ip) => self.client.create_permission(now, ip).map(drop),
                RelayNeed::Forget(ip) => {
                    self.client.remove_permission(ip);
                    Ok(())
                }
                RelayNeed::Channel(peer) => {
                    self.relayed_peers += 1;
                    self.client.bind_channel(now, peer).map(drop)
                }
                RelayNeed::Unbind(peer) => {
                    self.relayed_peers = self.relayed_peers.saturating_sub(1);
                    if self.relayed_peers == 0 {
                        // The last relayed session ended: often because the relay died under it
                        // (a publisher timeout, lapsed consent). Ask now rather than in 15 s.
                        self.last_heard = now.checked_sub(IDLE_PROBE_AFTER).unwrap_or(now);
                    }
                    self.client.remove_channel(now, peer);
                    Ok(())
                }
            };
            if let Err(e) = done {
                debug!(?need, error = %e, "TURN: not done");
            }
        }
        self.flush();
    }

    /// Lets the allocation go (the server is told, best effort).
    pub fn close(&mut self, engine: &mut Engine, now: Instant) {
        self.client.close(now);
        self.flush();
        if self.announced.take().is_some() {
            engine.set_relay(now, None);
        }
        engine.note_relay_report(None);
    }

    /// The link to the next server, when [`RelayLink::wants_next_server`].
    pub async fn next_server(&self, now: Instant) -> io::Result<Self> {
        let mut last_error = io::Error::other("no further TURN server");
        for index in self.server + 1..self.settings.servers.len() {
            match Self::open_at(&self.settings, index, now).await {
                Ok(link) => return Ok(link),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// Sends what the client queued for the server.
    fn flush(&mut self) {
        while let Some(message) = self.client.poll_transmit() {
            if !write(&mut self.conn, &message) {
                debug!(server = %self.client.server(), "TURN: message to the server not sent");
            }
        }
        if let Conn::Tcp {
            stream, backlog, ..
        } = &mut self.conn
        {
            drain(stream, backlog);
        }
    }
}

/// Opens the connection to `server`.
async fn connect(server: &RelayServer, extra_roots: &[Vec<u8>]) -> io::Result<Conn> {
    match server.transport {
        Transport::Udp => {
            let local: SocketAddr = if server.addr.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let socket = UdpSocket::bind(local).await?;
            socket.connect(server.addr).await?;
            Ok(Conn::Udp(socket))
        }
        Transport::Tcp => {
            let stream =
                tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(server.addr))
                    .await
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "TCP connect timed out")
                    })??;
            stream.set_nodelay(true)?;
            Ok(Conn::Tcp {
                stream,
                framer: StreamFramer::default(),
                backlog: VecDeque::new(),
            })
        }
        Transport::Tls => Ok(Conn::Tls {
            pipe: TlsPipe::connect(server.addr, &server.name, extra_roots).await?,
            framer: StreamFramer::default(),
        }),
    }
}

/// Hands one datagram or frame from the server to the client, and relayed data to the engine.
fn deliver(client: &mut TurnClient, engine: &mut Engine, now: Instant, input: &[u8]) {
    match client.handle_input(now, input) {
        Ok(Inbound::Data { peer, payload, .. }) => engine.handle_relayed(now, None, peer, payload),
        Ok(Inbound::Handled) => {}
        Err(e) => debug!(error = %e, "TURN: input not used"),
    }
}

/// Writes one message to the connection: a datagram, or bytes appended to the stream (written
/// as the socket takes them). False when it had to be dropped.
fn write(conn: &mut Conn, message: &[u8]) -> bool {
    match conn {
        // Straight to the kernel: tokio's try_send reports WouldBlock until the reactor has
        // seen the new socket writable, which lost the first Allocate of every link.
        Conn::Udp(socket) => socket2::SockRef::from(&*socket).send(message).is_ok(),
        Conn::Tcp {
            stream, backlog, ..
        } => {
            if backlog.len() + message.len() > MAX_STREAM_BACKLOG {
                return false;
            }
            backlog.extend(message);
            drain(stream, backlog);
            true
        }
        Conn::Tls { pipe, .. } => pipe.write(message),
    }
}

/// Writes what the socket takes of `backlog` now.
fn drain(stream: &TcpStream, backlog: &mut VecDeque<u8>) {
    while !backlog.is_empty() {
        let (front, _) = backlog.as_slices();
        match stream.try_write(front) {
            Ok(0) => break,
            Ok(n) => {
                backlog.drain(..n);
            }
            Err(_) => break,
        }
    }
}
