//! The driver's TURN allocation: r58's own relay candidate, for a box behind NAT with nothing
//! forwarded (RFC 8656). A [`RelayLink`] is the sans-IO [`TurnClient`] and the socket to its
//! server; the driver reads the socket, runs the client's timers, hands relayed datagrams to
//! the engine as coming from their peer by the relay ([`Engine::handle_relayed`]), sends the
//! engine's relayed datagrams through the client (ChannelData once a channel is bound), and
//! keeps the two in step ([`RelayLink::sync`]): the engine says which peers to permit and bind
//! ([`Engine::poll_relay_need`]), the client says when it holds an allocation
//! ([`Engine::set_relay`]).
//!
//! UDP to the TURN server only, for now; TCP and TLS are the client core's already (stream
//! framing) and need a connection here.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use tokio::net::UdpSocket;
use tracing::{debug, info, warn};

use crate::engine::{Engine, RelayNeed, RelayReport};
use crate::turn::Secret;
use crate::turn::client::{ClientConfig, Event, Inbound, Transport, TurnClient};
use crate::webrtc::sdp::RelayCandidate;

/// How often the engine gets the client's counters (for `/metrics`).
const REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Where and as whom r58 allocates its relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySettings {
    pub server: SocketAddr,
    pub username: String,
    pub password: String,
}

/// One allocation: the client and its socket to the server.
pub struct RelayLink {
    client: TurnClient,
    socket: UdpSocket,
    settings: RelaySettings,
    recv: Vec<u8>,
    out: Vec<u8>,
    /// The relay candidate the engine was last told of.
    announced: Option<RelayCandidate>,
    /// When the engine is next given the client's counters.
    next_report: Instant,
}

impl RelayLink {
    /// Opens a UDP socket towards `settings.server` and starts allocating.
    pub fn open(settings: RelaySettings, now: Instant) -> io::Result<Self> {
        let local: SocketAddr = if settings.server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let std_socket = std::net::UdpSocket::bind(local)?;
        std_socket.connect(settings.server)?;
        std_socket.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(std_socket)?;
        let config = ClientConfig::new(
            settings.server,
            Transport::Udp,
            settings.username.clone(),
            Secret::new(settings.password.clone()),
        );
        let mut client = TurnClient::new(config).map_err(io::Error::other)?;
        client.allocate(now);
        info!(server = %settings.server, transport = "udp", "TURN: allocating r58's relay");
        let mut link = Self {
            client,
            socket,
            settings,
            recv: vec![0; 65_536],
            out: Vec::with_capacity(2048),
            announced: None,
            next_report: now,
        };
        link.flush();
        Ok(link)
    }

    pub fn settings(&self) -> &RelaySettings {
        &self.settings
    }

    /// Completes when the server's socket has something to read.
    pub async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    /// The client's next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.client.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.client.handle_timeout(now);
        self.flush();
    }

    /// Reads everything the server sent; relayed data goes to the engine.
    pub fn receive(&mut self, engine: &mut Engine, now: Instant) {
        loop {
            let n = match self.socket.try_recv(&mut self.recv) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // ICMP unreachable and the like: the client's retransmissions and timeouts
                    // decide whether the allocation is lost.
                    debug!(server = %self.settings.server, error = %e, "TURN socket");
                    break;
                }
            };
            match self.client.handle_input(now, &self.recv[..n]) {
                Ok(Inbound::Data { peer, payload, .. }) => {
                    engine.handle_relayed(now, None, peer, payload);
                }
                Ok(Inbound::Handled) => {}
                Err(e) => debug!(error = %e, "TURN: datagram not used"),
            }
        }
        self.flush();
    }

    /// Sends `payload` to `peer` through the relay.
    pub fn send(&mut self, peer: SocketAddr, payload: &[u8]) -> bool {
        self.out.clear();
        match self.client.send_to(peer, payload, &mut self.out) {
            Ok(_) => self.socket.try_send(&self.out).is_ok(),
            Err(e) => {
                debug!(error = %e, "TURN: relayed datagram not sent");
                false
            }
        }
    }

    /// Brings engine and client in step: the sessions' permissions and channels to the client,
    /// the allocation's coming and going to the engine.
    pub fn sync(&mut self, engine: &mut Engine, now: Instant) {
        while let Some(event) = self.client.poll_event() {
            match event {
                Event::Allocated {
                    relayed, mapped, ..
                } => {
                    info!(%relayed, ?mapped, server = %self.settings.server, "TURN: relay allocated");
                    let candidate = RelayCandidate { relayed, mapped };
                    self.announced = Some(candidate);
                    engine.set_relay(Some(candidate));
                }
                Event::AllocationLost { relayed, failure } => {
                    warn!(%relayed, %failure, "TURN: relay lost; allocating again");
                    self.announced = None;
                    engine.set_relay(None);
                }
                Event::AllocationFailed { failure, retry_at } => {
                    warn!(%failure, retry_in = ?retry_at.map(|at| at.saturating_duration_since(now)), "TURN: no relay");
                    if self.announced.take().is_some() {
                        engine.set_relay(None);
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
                server: self.settings.server,
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
                RelayNeed::Channel(peer) => self.client.bind_channel(now, peer).map(drop),
                RelayNeed::Unbind(peer) => {
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
            engine.set_relay(None);
        }
        engine.note_relay_report(None);
    }

    /// Sends what the client queued for the server.
    fn flush(&mut self) {
        while let Some(datagram) = self.client.poll_transmit() {
            if let Err(e) = self.socket.try_send(&datagram) {
                debug!(server = %self.settings.server, error = %e, "TURN: send to server");
            }
        }
    }
}
