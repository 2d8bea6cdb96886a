//! An in-memory network on a virtual clock between r58's engine and `rtc` (webrtc-rs)
//! `RTCPeerConnection` clients: a second, independent WebRTC implementation.
//!
//! No sockets, no sleeps, no async runtime: datagrams move between the engine and the clients as
//! function calls, and time is an `Instant` that only the test advances. The clients and what
//! they received are in `peer.rs`; the publishers' media in `source.rs`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_nack, configure_rtcp_reports,
};
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use sfu::engine::{Engine, EngineConfig};

mod peer;
mod source;
pub use peer::*;
pub use source::*;

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The server's one media address: the host candidate in every answer.
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 5000);
pub const H264_PT: u8 = 102;
pub const OPUS_PT: u8 = 111;
pub const VIDEO_CLOCK: u32 = 90_000;
pub const FRAME_INTERVAL: Duration = Duration::from_millis(33);
pub const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
/// Every GOP_th video frame is a keyframe.
pub const GOP: u32 = 30;
/// Which datagrams the network loses. Called for every server -> client datagram with the
/// client's index and the datagram (SRTP: the RTP header is in the clear).
pub type DropFilter = Box<dyn FnMut(usize, &[u8]) -> bool>;

pub struct Net {
    pub engine: Engine,
    pub now: Instant,
    pub start: Instant,
    pub peers: Vec<Peer>,
    pub drop_filter: Option<DropFilter>,
    pub dropped: u64,
    /// Which client -> server datagrams the network loses (client index, datagram).
    pub upstream_drop_filter: Option<DropFilter>,
    /// Publishers opened from now on answer NACKs (rtc's NACK responder).
    pub publishers_answer_nack: bool,
    /// Print every non-media datagram (STUN, DTLS) with its direction and time.
    pub trace: bool,
}

/// Numbers the first transmissions of one RTP stream (1, 2, ...) and tells retransmissions
/// apart by sequence number, so a drop filter can lose chosen packets once and let their
/// repairs through.
#[derive(Default)]
pub struct FirstTransmissions {
    highest: Option<u16>,
    count: u32,
}

impl FirstTransmissions {
    /// The number of the packet with sequence `seq` among the first transmissions, or `None`
    /// for a retransmission (a sequence number not newer than the highest seen).
    pub fn number(&mut self, seq: u16) -> Option<u32> {
        let is_new = self.highest.is_none_or(|h| {
            let d = seq.wrapping_sub(h);
            d != 0 && d < 0x8000
        });
        if !is_new {
            return None;
        }
        self.highest = Some(seq);
        self.count += 1;
        Some(self.count)
    }
}

impl Net {
    pub fn new(mut config: EngineConfig) -> TestResult<Self> {
        config.candidates = vec![SERVER];
        let now = Instant::now();
        Ok(Self {
            engine: Engine::new(config)?,
            now,
            start: now,
            peers: Vec::new(),
            drop_filter: None,
            upstream_drop_filter: None,
            publishers_answer_nack: false,
            dropped: 0,
            trace: std::env::var_os("R58_NET_TRACE").is_some(),
        })
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Whether the engine still has peer `i`'s session.
    pub fn has_session(&self, i: usize) -> bool {
        self.engine
            .session_summary(self.peers[i].answer.session)
            .is_some()
    }

    fn next_addr(&self) -> SocketAddr {
        let n = self.peers.len() as u8 + 2;
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), 4000)
    }

    /// Builds an `rtc` client, has it offer, and gives the offer to the engine (WHIP or WHEP).
    /// Returns the peer's index; the peer is not connected yet (see [`Net::connect`]).
    pub fn open(&mut self, role: Role, stream: &str) -> TestResult<usize> {
        self.open_with(role, stream, H264_PT)
    }

    /// [`Net::open`] with the client's own payload type for H.264 (clients differ in numbering).
    pub fn open_with(&mut self, role: Role, stream: &str, h264_pt: u8) -> TestResult<usize> {
        let addr = self.next_addr();
        let mut me = media_engine(role, h264_pt)?;
        // `rtc` keeps inbound RTCP inside its interceptors unless one marks it for the
        // application; DeliverRtcp marks all of it so the tests can count PLIs, BYEs, ...
        let registry = Registry::new().with(Slot::from(14_000), DeliverRtcp::default());
        let registry = match role {
            // A publisher sends sender reports (the engine maps them for its viewers).
            Role::Publisher if self.publishers_answer_nack => {
                configure_rtcp_reports(configure_nack(registry, &mut me))
            }
            Role::Publisher => configure_rtcp_reports(registry),
            // A viewer runs the NACK generator (loss recovery) and receiver reports.
            Role::Viewer => configure_rtcp_reports(configure_nack(registry, &mut me)),
        };
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_media_engine(me)
            .with_interceptor_registry(registry)
            .build(self.now)?;
        let index = self.peers.len() as u32;
        let mut senders_wanted = Vec::new();
        for kind in [Kind::Video, Kind::Audio] {
            let codec_kind = match kind {
                Kind::Video => RtpCodecKind::Video,
                Kind::Audio => RtpCodecKind::Audio,
            };
            let init = match role {
                Role::Publisher => {
                    let ssrc = 0x1000_0000
                        + index * 0x100
                        + match kind {
                            Kind::Video => 1,
                            Kind::Audio => 2,
                        };
                    senders_wanted.push((kind, ssrc));
                    RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Sendonly,
                        streams: vec![],
                        send_encodings: vec![RTCRtpEncodingParameters {
                            rtp_coding_parameters: RTCRtpCodingParameters {
                                ssrc: Some(ssrc),
                                ..Default::default()
                            },
                            active: true,
                            codec: match kind {
                                Kind::Video => codec_h264(),
                                Kind::Audio => codec_opus(),
                            },
                            ..Default::default()
                        }],
                    }
                }
                Role::Viewer => RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    streams: vec![],
                    send_encodings: vec![],
                },
            };
            pc.add_transceiver_from_kind(codec_kind, Some(init))?;
        }
        let candidate = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: addr.ip().to_string(),
                port: addr.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()?;
        pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)?;
        pc.add_local_candidate(RTCIceCandidateInit::default())?;

        let offer = pc.create_offer(None)?;
        pc.set_local_description(self.now, offer.clone())?;
        let answer = match role {
            Role::Publisher => self.engine.publish(self.now, stream, &offer.sdp)?,
            Role::Viewer => self.engine.play(self.now, stream, &offer.sdp)?,
        };
        pc.set_remote_description(self.now, RTCSessionDescription::answer(answer.sdp.clone())?)?;

        let transceivers: Vec<_> = pc.get_transceivers().collect();
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for (i, id) in transceivers.into_iter().enumerate() {
            let kind = if i == 0 { Kind::Video } else { Kind::Audio };
            let t = pc.rtp_transceiver(id).ok_or("transceiver")?;
            if let Some(s) = t.sender()
                && let Some((_, ssrc)) = senders_wanted.iter().find(|(k, _)| *k == kind)
            {
                senders.push((kind, s, *ssrc));
            }
            if let Some(r) = t.receiver() {
                receivers.push((kind, r));
            }
        }
        self.peers.push(Peer {
            label: format!("{role:?}#{index}"),
            role,
            h264_pt,
            addr,
            pc,
            answer,
            online: true,
            state: RTCPeerConnectionState::New,
            connected_at: None,
            closed_at: None,
            rx: Vec::new(),
            rtcp: Vec::new(),
            senders,
            receivers,
            sent: HashMap::new(),
            sent_count: HashMap::new(),
            datagrams_out: 0,
            datagrams_in: 0,
            rtcp_datagrams_in: 0,
            dtls_alerts_in: 0,
            first_alert_at: None,
            errors: Vec::new(),
        });
        Ok(index as usize)
    }

    /// Opens a peer and runs the network until it is connected (at most 5 s of virtual time).
    pub fn open_connected(&mut self, role: Role, stream: &str) -> TestResult<usize> {
        let i = self.open(role, stream)?;
        self.connect(i)?;
        Ok(i)
    }

    pub fn connect(&mut self, i: usize) -> TestResult {
        let ok = self.run_until(Duration::from_millis(2), Duration::from_secs(5), |n| {
            n.peers[i].connected()
        });
        if !ok {
            return Err(format!(
                "{} did not connect within 5 s (state {:?}, errors {:?})",
                self.peers[i].label, self.peers[i].state, self.peers[i].errors
            )
            .into());
        }
        Ok(())
    }

    /// Advances virtual time by `dt`, fires due timers and moves every datagram.
    pub fn step(&mut self, dt: Duration) {
        self.now += dt;
        for p in &mut self.peers {
            if let Err(e) = p.pc.handle_timeout(self.now) {
                p.errors.push(format!("handle_timeout: {e}"));
            }
        }
        // As the driver does: the engine's timers run when its own next deadline has come,
        // and after they ran that deadline is in the future (else the driver would spin).
        if self.engine.poll_timeout().is_some_and(|at| at <= self.now) {
            self.engine.handle_timeout(self.now);
            let next = self.engine.poll_timeout();
            assert!(
                next.is_none_or(|at| at > self.now),
                "engine deadline still due after handle_timeout"
            );
        }
        self.pump();
    }

    /// Moves datagrams both ways until the network is quiet (no time passes).
    pub fn pump(&mut self) {
        let now = self.now;
        for _ in 0..10_000 {
            let mut moved = false;
            for (i, p) in self.peers.iter_mut().enumerate() {
                while let Some(out) = p.pc.poll_write() {
                    moved = true;
                    p.datagrams_out += 1;
                    if self.trace {
                        trace(now - self.start, &p.label, "->", p.online, &out.message);
                    }
                    if let Some(filter) = self.upstream_drop_filter.as_mut()
                        && filter(i, &out.message)
                    {
                        self.dropped += 1;
                        continue;
                    }
                    if p.online && out.transport.peer_addr == SERVER {
                        self.engine.handle_datagram(now, p.addr, &out.message);
                    }
                }
            }
            while let Some(t) = self.engine.poll_transmit() {
                moved = true;
                let Some(i) = self.peers.iter().position(|p| p.addr == t.to) else {
                    continue;
                };
                if !self.peers[i].online {
                    continue;
                }
                if let Some(filter) = self.drop_filter.as_mut()
                    && filter(i, &t.data)
                {
                    self.dropped += 1;
                    continue;
                }
                let p = &mut self.peers[i];
                if self.trace {
                    trace(now - self.start, &p.label, "<-", p.online, &t.data);
                }
                p.datagrams_in += 1;
                if t.data.len() > 1
                    && (128..=191).contains(&t.data[0])
                    && (192..=223).contains(&t.data[1])
                {
                    p.rtcp_datagrams_in += 1;
                }
                if t.data.first() == Some(&21) {
                    p.dtls_alerts_in += 1;
                    p.first_alert_at.get_or_insert(now);
                }
                let msg = TaggedBytesMut {
                    now,
                    transport: TransportContext {
                        local_addr: p.addr,
                        peer_addr: SERVER,
                        ecn: None,
                        transport_protocol: TransportProtocol::UDP,
                    },
                    message: BytesMut::from(&t.data[..]),
                };
                if let Err(e) = p.pc.handle_read(msg) {
                    p.errors.push(format!("handle_read: {e}"));
                }
                // `rtc` installs its SRTP keys when its DTLS-complete event is pumped, which
                // happens in `poll_event`, not in `handle_read`: drain after every datagram, as
                // a socket loop reading one datagram at a time does, or SRTP that follows the
                // DTLS Finished in the same batch is dropped.
                drain(p, now);
            }
            for p in &mut self.peers {
                drain(p, now);
            }
            if !moved {
                return;
            }
        }
        panic!("network did not settle");
    }

    /// Runs in steps of `dt` until `done` or `limit` of virtual time passed; true if done.
    pub fn run_until(
        &mut self,
        dt: Duration,
        limit: Duration,
        mut done: impl FnMut(&Net) -> bool,
    ) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step(dt);
        }
        done(self)
    }

    pub fn run_for(&mut self, dt: Duration, total: Duration) {
        let end = self.now + total;
        while self.now < end {
            self.step(dt);
        }
    }
}

fn trace(at: Duration, label: &str, dir: &str, online: bool, data: &[u8]) {
    let what = match data.first() {
        Some(0..=3) => format!(
            "STUN {:02x}{:02x}",
            data.first().unwrap_or(&0),
            data.get(1).unwrap_or(&0)
        ),
        Some(20..=63) => format!(
            "DTLS ct={} hs={:?}",
            data[0],
            data.get(13).filter(|_| data[0] == 22)
        ),
        Some(128..=191) if data.get(1).is_some_and(|b| (192..=223).contains(b)) => {
            format!("SRTCP pt={}", data[1])
        }
        Some(128..=191) => return,
        _ => "?".into(),
    };
    println!(
        "{:>9.3}ms {label} {dir} {what} len={} {}",
        at.as_secs_f64() * 1000.0,
        data.len(),
        if online { "" } else { "(offline)" }
    );
}

fn drain(p: &mut Peer, now: Instant) {
    while let Some(ev) = p.pc.poll_event() {
        match ev {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                p.state = state;
                if state == RTCPeerConnectionState::Connected && p.connected_at.is_none() {
                    p.connected_at = Some(now);
                }
                if matches!(
                    state,
                    RTCPeerConnectionState::Closed
                        | RTCPeerConnectionState::Failed
                        | RTCPeerConnectionState::Disconnected
                ) && p.closed_at.is_none()
                {
                    p.closed_at = Some(now);
                }
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnClose(_)) => {}
            _ => {}
        }
    }
    while let Some(TaggedRTCMessage { now: at, message }) = p.pc.poll_read() {
        match message {
            RTCMessage::RtpPacket(_, pkt) => {
                let kind = if pkt.header.payload_type == p.h264_pt {
                    Kind::Video
                } else {
                    Kind::Audio
                };
                p.rx.push(RxPacket {
                    at,
                    kind,
                    ssrc: pkt.header.ssrc,
                    payload_type: pkt.header.payload_type,
                    sequence: pkt.header.sequence_number,
                    timestamp: pkt.header.timestamp,
                    marker: pkt.header.marker,
                    payload: pkt.payload,
                });
            }
            RTCMessage::RtcpPacket(_, packets) => {
                for packet in packets {
                    let header = packet.header();
                    // PT 206 FMT 1: PLI; PT 205 FMT 1: generic NACK.
                    let pli = header.packet_type as u8 == 206 && header.count == 1;
                    let nack = header.packet_type as u8 == 205 && header.count == 1;
                    let bye = header.packet_type as u8 == 203;
                    p.rtcp.push(RxRtcp {
                        at,
                        after_rx: p.rx.len(),
                        pli,
                        nack,
                        bye,
                        sr: packet.as_any().downcast_ref::<SenderReport>().map(|sr| {
                            (
                                sr.ssrc,
                                sr.ntp_time,
                                sr.rtp_time,
                                sr.packet_count,
                                sr.octet_count,
                            )
                        }),
                        media_ssrcs: packet.destination_ssrc(),
                        name: format!("{:?}", header.packet_type),
                        remb: packet
                            .as_any()
                            .downcast_ref::<ReceiverEstimatedMaximumBitrate>()
                            .map(|r| r.bitrate),
                    });
                }
            }
            _ => {}
        }
    }
}
