//! r58's own sans-IO WebRTC client (`sfu::testing::client`) driven over a real UDP socket
//! against the spawned server: real ICE checks, DTLS handshake and SRTP on loopback.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use sfu::testing::client::{Client, ClientEvent, ClientRole};
use sfu::testing::harness::H264Source;

use crate::server::Server;

pub struct Peer {
    pub client: Client,
    socket: UdpSocket,
    pub location: String,
    /// Video SSRC announced in the offer (publishers).
    pub ssrc: u32,
    /// Per SSRC: first and last sequence seen (extended over wraps) and packets received.
    pub streams: HashMap<u32, SeqStats>,
    pub closed: bool,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SeqStats {
    pub first: i64,
    pub last: i64,
    pub received: u64,
}

impl SeqStats {
    /// Packets the sender put between the first and last one seen.
    pub fn expected(&self) -> u64 {
        (self.last - self.first + 1).max(0) as u64
    }
}

impl Peer {
    /// Creates the session over HTTP and completes ICE + DTLS (within 10 s).
    pub fn connect(server: &Server, role: ClientRole, name: &str) -> Peer {
        Self::connect_from(server, role, name, "127.0.0.1")
    }

    /// [`Peer::connect`] from the local address `ip`.
    pub fn connect_from(server: &Server, role: ClientRole, name: &str, ip: &str) -> Peer {
        let client = Client::new(role).expect("client");
        let offer = client.offer();
        let ssrc = offer
            .lines()
            .find_map(|l| l.strip_prefix("a=ssrc:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let endpoint = match role {
            ClientRole::Publish => "whip",
            ClientRole::Play => "whep",
        };
        let created = server.post_sdp(&format!("/{endpoint}/{name}"), &offer);
        assert_eq!(created.status, 201, "{created:?}");
        let socket = bind(ip);
        let mut peer = Peer {
            client,
            socket,
            location: created.header("location").expect("location").to_owned(),
            ssrc,
            streams: HashMap::new(),
            closed: false,
        };
        peer.client
            .accept_answer(Instant::now(), &created.text())
            .expect("answer");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !peer.client.is_connected() {
            assert!(Instant::now() < deadline, "{name}: not connected in 10 s");
            if !peer.poll() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        peer
    }

    /// Sends what the client queued, reads what arrived, runs its timers. True if anything
    /// moved.
    pub fn poll(&mut self) -> bool {
        let now = Instant::now();
        let mut moved = false;
        while let Some((to, data)) = self.client.poll_transmit() {
            let _ = self.socket.send_to(&data, to);
            moved = true;
        }
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = self.socket.recv_from(&mut buf) {
            let _ = self.client.handle_datagram(now, &buf[..n]);
            moved = true;
        }
        self.client.handle_timeout(now);
        while let Some(event) = self.client.poll_event() {
            match event {
                ClientEvent::Rtp { ssrc, sequence, .. } => {
                    let s = self.streams.entry(ssrc).or_insert(SeqStats {
                        first: i64::from(sequence),
                        last: i64::from(sequence),
                        received: 0,
                    });
                    // Extend the 16-bit sequence number around the last one seen.
                    let delta = i64::from(sequence.wrapping_sub((s.last & 0xffff) as u16) as i16);
                    let extended = s.last + delta;
                    s.last = s.last.max(extended);
                    s.first = s.first.min(extended);
                    s.received += 1;
                }
                ClientEvent::Closed => self.closed = true,
                _ => {}
            }
        }
        while let Some((to, data)) = self.client.poll_transmit() {
            let _ = self.socket.send_to(&data, to);
        }
        moved
    }

    /// Moves to a new local address (the old socket is closed, as when an interface goes
    /// away) and restarts ICE from there with a PATCH; returns the new ETag.
    pub fn move_and_restart(&mut self, server: &Server, ip: &str) -> String {
        self.socket = bind(ip);
        let fragment = self.client.restart_ice();
        let r = server.request(
            "PATCH",
            &self.location,
            &[
                ("Content-Type", "application/trickle-ice-sdpfrag"),
                ("If-Match", "\"*\""),
            ],
            fragment.as_bytes(),
        );
        assert_eq!(r.status, 200, "ICE restart: {r:?}");
        self.client
            .accept_restart(Instant::now(), &r.text())
            .expect("restart answer");
        r.header("etag").expect("new ETag").to_owned()
    }

    /// Sends one frame of `source` (publishers).
    pub fn send_frame(&mut self, source: &mut H264Source) {
        for packet in source.next_frame() {
            let _ = self.client.send_rtp(&packet);
        }
        self.poll();
    }

    /// Ends the session with DELETE.
    pub fn delete(self, server: &Server) {
        let r = server.request("DELETE", &self.location, &[], b"");
        assert_eq!(r.status, 200, "{r:?}");
    }

    pub fn received(&self) -> u64 {
        self.streams.values().map(|s| s.received).sum()
    }

    pub fn expected(&self) -> u64 {
        self.streams.values().map(SeqStats::expected).sum()
    }
}

fn bind(ip: &str) -> UdpSocket {
    let socket = UdpSocket::bind((ip, 0)).expect("bind");
    socket.set_nonblocking(true).expect("nonblocking");
    socket
}

/// A light synthetic H.264 stream (~300 kbit/s at 30 fps) on `ssrc`.
pub fn light_source(ssrc: u32) -> H264Source {
    let mut source = H264Source::new(ssrc, sfu::testing::client::H264_PT);
    source.keyframe_bytes = 4000;
    source.delta_bytes = 1000;
    source
}
