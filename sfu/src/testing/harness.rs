//! An in-memory network for the engine and r58's own clients on a virtual clock.
//!
//! Tests and benchmarks use it to run real sessions (ICE, DTLS, SRTP) with no sockets and no
//! sleeps: datagrams move between the engine and the clients as function calls.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::client::{Client, ClientEvent, ClientRole};
use crate::engine::{Answer, Engine, EngineConfig, EngineError, TransmitQueue};
use crate::webrtc::{PeerAddr, Via};

/// The server's address inside the harness.
pub const SERVER_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 8189);

/// What one client received.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub rtp_packets: u64,
    pub rtp_bytes: u64,
    pub rtcp_packets: u64,
    /// Per SSRC: the last sequence number seen and how many were out of order or missing.
    pub last_seq: HashMap<u32, u16>,
    pub sequence_gaps: u64,
    /// Per SSRC: the RTP timestamp of the last packet.
    pub last_timestamp: HashMap<u32, u32>,
    pub connected: bool,
    pub closed: bool,
    /// abs-capture-time values received (NTP 32.32), in arrival order.
    pub capture_times: Vec<u64>,
}

pub struct HarnessClient {
    pub addr: SocketAddr,
    pub client: Client,
    pub answer: Answer,
    pub received: Received,
    /// When false, nothing this client sends reaches the server (a vanished peer).
    pub online: bool,
    /// How the client reaches the server: directly, or through the server's TURN relay (its
    /// datagrams arrive by [`Engine::handle_relayed`] and only relayed ones reach it).
    pub via: Via,
}

pub struct Harness {
    pub engine: Engine,
    pub now: Instant,
    pub clients: Vec<HarnessClient>,
    /// Count server datagrams without delivering them (benchmarks measure the engine alone).
    pub discard_media: bool,
    /// Splits each fan-out into this many shares of the viewers, each run on a thread of its
    /// own, as the driver does with several media threads; 0 or 1: fanned out in the engine.
    pub fanout_shares: usize,
    /// Fan-outs that were split into shares.
    pub split_fanouts: u64,
    /// Server datagrams addressed to no client by the way they were sent (a client there, but
    /// reached the other way, or none at all).
    pub misrouted: u64,
}

impl Harness {
    pub fn new(mut config: EngineConfig) -> Result<Self, EngineError> {
        config.candidates = vec![SERVER_ADDR];
        Ok(Self {
            engine: Engine::new(config)?,
            now: Instant::now(),
            clients: Vec::new(),
            discard_media: false,
            fanout_shares: 0,
            split_fanouts: 0,
            misrouted: 0,
        })
    }

    fn next_addr(&self) -> SocketAddr {
        let n = self.clients.len() as u32 + 2;
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, 1, (n >> 8) as u8, n as u8)),
            40_000,
        )
    }

    /// Opens a session of `role` on stream `name`; returns the client's index.
    pub fn open(&mut self, role: ClientRole, name: &str) -> Result<usize, EngineError> {
        self.open_via(role, name, Via::Direct)
    }

    /// [`Harness::open`] for a client that reaches the server `via` the given transport.
    pub fn open_via(
        &mut self,
        role: ClientRole,
        name: &str,
        via: Via,
    ) -> Result<usize, EngineError> {
        let mut client = Client::new(role).map_err(|e| EngineError::Internal(e.to_string()))?;
        let offer = client.offer();
        let answer = match role {
            ClientRole::Publish => self.engine.publish(self.now, name, &offer)?,
            ClientRole::Play => self.engine.play(self.now, name, &offer)?,
        };
        client
            .accept_answer(self.now, &answer.sdp)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        self.clients.push(HarnessClient {
            addr: self.next_addr(),
            client,
            answer,
            received: Received::default(),
            online: true,
            via,
        });
        Ok(self.clients.len() - 1)
    }

    /// Moves datagrams both ways until none are in flight.
    pub fn pump(&mut self) {
        while self.pump_once() {}
    }

    /// One round: every client's queued datagrams to the engine (in client order), then the
    /// engine's to the clients. Whether anything moved.
    pub fn pump_once(&mut self) -> bool {
        let mut moved = false;
        for c in &mut self.clients {
            while let Some((_, data)) = c.client.poll_transmit() {
                moved = true;
                if c.online {
                    match c.via {
                        Via::Direct => self.engine.handle_datagram(self.now, c.addr, &data),
                        Via::Relay => self.engine.handle_relayed(self.now, None, c.addr, &data),
                    }
                }
            }
        }
        let mut shares: Vec<TransmitQueue> = Vec::new();
        if self.fanout_shares > 1 {
            shares.resize_with(self.fanout_shares, TransmitQueue::default);
            let used = self.engine.send_unsent_split(&mut shares, 1, |shares| {
                std::thread::scope(|scope| {
                    for share in shares.iter_mut() {
                        scope.spawn(|| share.run());
                    }
                })
            });
            shares.truncate(used);
            self.split_fanouts += u64::from(used > 0);
        }
        // The engine's queue holds what is older than the shares' media: it goes first.
        while let Some(t) = self.engine.poll_transmit() {
            moved = true;
            self.deliver(
                PeerAddr {
                    addr: t.to,
                    via: t.via,
                },
                &t.data,
            );
        }
        for share in &shares {
            for (to, data) in share.pending() {
                moved = true;
                self.deliver(to, data);
            }
        }
        moved
    }

    /// Hands a datagram from the engine to the client it is addressed to.
    fn deliver(&mut self, to: PeerAddr, data: &[u8]) {
        if self.discard_media && data.first().is_some_and(|b| (128..=191).contains(b)) {
            return;
        }
        match self
            .clients
            .iter_mut()
            .find(|c| c.addr == to.addr && c.via == to.via)
        {
            Some(c) => {
                let _ = c.client.handle_datagram(self.now, data);
                while let Some(event) = c.client.poll_event() {
                    record(&mut c.received, event);
                }
            }
            None => self.misrouted += 1,
        }
    }

    /// Advances the clock by `dt`, firing every timer, and pumps.
    pub fn advance(&mut self, dt: Duration) {
        self.now += dt;
        let now = self.now;
        for c in &mut self.clients {
            c.client.handle_timeout(now);
        }
        self.engine.handle_timeout(now);
        // The driver sleeps until this deadline: one still due after the engine's timers ran
        // would make it spin, so every test that advances the clock checks it.
        let next = self.engine.poll_timeout();
        assert!(
            next.is_none_or(|at| at > now),
            "the engine's next deadline {:?} after now is not in the future after handle_timeout",
            next.map(|at| at.saturating_duration_since(now))
        );
        self.pump();
    }

    /// Runs in `step`s until `done` or `limit` of virtual time passed; true when `done`.
    pub fn run_until(
        &mut self,
        step: Duration,
        limit: Duration,
        mut done: impl FnMut(&Harness) -> bool,
    ) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.advance(step);
        }
        done(self)
    }

    /// Waits (virtually) until every open client is connected.
    pub fn connect_all(&mut self) -> bool {
        self.run_until(Duration::from_millis(5), Duration::from_secs(10), |h| {
            h.clients
                .iter()
                .filter(|c| c.online)
                .all(|c| c.received.connected)
        })
    }
}

fn record(received: &mut Received, event: ClientEvent) {
    match event {
        ClientEvent::Connected => received.connected = true,
        ClientEvent::Closed => received.closed = true,
        ClientEvent::Rtcp { .. } => received.rtcp_packets += 1,
        ClientEvent::Rtp {
            ssrc,
            sequence,
            timestamp,
            len,
            capture_ntp,
            ..
        } => {
            received.last_timestamp.insert(ssrc, timestamp);
            if let Some(ntp) = capture_ntp {
                received.capture_times.push(ntp);
            }
            received.rtp_packets += 1;
            received.rtp_bytes += len as u64;
            if let Some(last) = received.last_seq.insert(ssrc, sequence)
                && sequence != last.wrapping_add(1)
            {
                received.sequence_gaps += 1;
            }
        }
    }
}

/// Builds plain RTP packets of a synthetic H.264 stream: a keyframe (STAP-A with SPS and PPS,
/// then an IDR slice in FU-A fragments) every `gop` frames, single-NAL delta frames between.
pub struct H264Source {
    pub ssrc: u32,
    pub payload_type: u8,
    pub sequence: u16,
    pub frame: u32,
    pub gop: u32,
    /// Payload bytes per packet (FU-A fragments of keyframes are this size too).
    pub mtu_payload: usize,
    /// Bytes of a keyframe and of a delta frame.
    pub keyframe_bytes: usize,
    pub delta_bytes: usize,
}

impl H264Source {
    pub fn new(ssrc: u32, payload_type: u8) -> Self {
        // ~2.5 Mbit/s at 30 fps: 10.4 KB per frame on average, keyframes ~4x a delta frame.
        Self {
            ssrc,
            payload_type,
            sequence: 1000,
            frame: 0,
            gop: 30,
            mtu_payload: 1180,
            keyframe_bytes: 36_000,
            delta_bytes: 9_200,
        }
    }

    /// The packets of the next frame.
    pub fn next_frame(&mut self) -> Vec<Vec<u8>> {
        let timestamp = self.frame.wrapping_mul(3000);
        let keyframe = self.frame.is_multiple_of(self.gop);
        self.frame += 1;
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        let (nal_type, size) = if keyframe {
            payloads.push(vec![0x78, 0, 4, 0x67, 0x42, 0xe0, 0x1f, 0, 2, 0x68, 0xce]);
            (5u8, self.keyframe_bytes)
        } else {
            (1u8, self.delta_bytes)
        };
        let body_len = self.mtu_payload - 2;
        let fragments = size.div_ceil(body_len);
        for i in 0..fragments {
            let len = if i + 1 == fragments {
                size - i * body_len
            } else {
                body_len
            };
            let mut p = Vec::with_capacity(len + 2);
            let start = if i == 0 { 0x80 } else { 0 };
            let end = if i + 1 == fragments { 0x40 } else { 0 };
            p.push(0x7c); // FU-A indicator, NRI 3
            p.push(start | end | nal_type);
            p.extend(std::iter::repeat_n((self.frame & 0xff) as u8, len));
            payloads.push(p);
        }
        let count = payloads.len();
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let mut header = [0u8; 12];
                crate::rtp::packet::write_fixed_header(
                    &mut header,
                    i + 1 == count,
                    self.payload_type,
                    self.sequence,
                    timestamp,
                    self.ssrc,
                );
                self.sequence = self.sequence.wrapping_add(1);
                let mut packet = header.to_vec();
                packet.extend_from_slice(&payload);
                packet
            })
            .collect()
    }
}
