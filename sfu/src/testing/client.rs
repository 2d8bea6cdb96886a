//! r58's own WHIP/WHEP client peer, sans-IO: the offering, ICE-controlling, DTLS-client side.
//!
//! It exists so the load generator and benchmarks can open thousands of real sessions (ICE,
//! DTLS, SRTP) against the server without a browser, and so one r58 can later push to or pull
//! from another. It offers H.264 (packetization-mode 1) video and Opus audio.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::RngExt;
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_shared::marshal::{MarshalSize, Unmarshal};
use rtc_srtp::context::Context;
use rtc_stun::attributes::{
    ATTR_ICE_CONTROLLED, ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USE_CANDIDATE, ATTR_USERNAME,
    RawAttribute,
};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{BINDING_REQUEST, Message, Setter, TransactionId};
use rtc_stun::textattrs::TextAttribute;
use thiserror::Error;

use crate::webrtc::dtls::{Dtls, DtlsIdentity};
use crate::webrtc::ice_lite::IceCredentials;

/// Connectivity checks are repeated this often until the first answer, then as consent.
const CHECK_INTERVAL: Duration = Duration::from_millis(50);
const CONSENT_INTERVAL: Duration = Duration::from_secs(5);

/// The payload types this client offers.
pub const H264_PT: u8 = 102;
pub const OPUS_PT: u8 = 111;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("the answer lacks {0}")]
    AnswerMissing(&'static str),
    #[error("the answer's candidate '{0}' is not a usable UDP address")]
    BadCandidate(String),
    #[error("DTLS: {0}")]
    Dtls(#[from] crate::webrtc::dtls::DtlsError),
    #[error("SRTP: {0}")]
    Srtp(String),
    #[error("not connected yet")]
    NotConnected,
}

/// Publish (WHIP: sendonly) or play (WHEP: recvonly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRole {
    Publish,
    Play,
}

/// What the client noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    Connected,
    /// An SRTP packet arrived: its clear-text RTP header fields (no decryption needed).
    Rtp {
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
        payload_type: u8,
        len: usize,
        /// The abs-capture-time extension's NTP capture timestamp, when present.
        capture_ntp: Option<u64>,
    },
    /// An SRTCP packet arrived (still protected; counted only).
    Rtcp {
        len: usize,
    },
    Closed,
}

/// The extension id a playing client offers abs-capture-time under.
pub const ABS_CAPTURE_EXT_ID: u8 = 7;

/// The NTP capture time in a packet's RFC 8285 one-byte header extension block, if there.
fn abs_capture_time(packet: &[u8], header: &crate::rtp::packet::RtpHeader) -> Option<u64> {
    let offset = header.extension_offset?;
    if packet.get(offset..offset + 2)? != [0xbe, 0xde] {
        return None;
    }
    let mut rest = packet.get(offset + 4..header.payload_offset)?;
    while let Some((&first, tail)) = rest.split_first() {
        if first == 0 {
            rest = tail; // padding
            continue;
        }
        let (id, len) = (first >> 4, usize::from(first & 0x0f) + 1);
        let data = tail.get(..len)?;
        if id == ABS_CAPTURE_EXT_ID && len >= 8 {
            return Some(u64::from_be_bytes(data[..8].try_into().ok()?));
        }
        rest = &tail[len..];
    }
    None
}

pub struct Client {
    role: ClientRole,
    provider: Arc<dyn RTCCryptoProvider>,
    identity: DtlsIdentity,
    local: IceCredentials,
    /// Our SSRCs when publishing: (video, audio).
    pub ssrcs: (u32, u32),
    server: Option<ServerSide>,
    dtls: Option<Dtls>,
    srtp_out: Option<Context>,
    srtp_in: Option<Context>,
    next_check_at: Option<Instant>,
    /// ICE role: controlling (and nominating) unless we answered a full-ICE offerer.
    controlling: bool,
    answered: bool,
    /// Checks under the current credentials have not been answered yet (also after an ICE
    /// restart): keep checking at the fast rate.
    awaiting_check_answer: bool,
    closed: bool,
    transmits: VecDeque<(SocketAddr, BytesMut)>,
    events: VecDeque<ClientEvent>,
}

struct ServerSide {
    ice: IceCredentials,
    fingerprint: String,
    addr: SocketAddr,
}

/// The ICE credentials, fingerprint and first UDP candidate of the far side's description.
fn remote_side(sdp: &str) -> Result<ServerSide, ClientError> {
    let attr = |name: &str| {
        sdp.lines()
            .find_map(|l| l.trim_end().strip_prefix(name).map(str::to_owned))
    };
    let ufrag = attr("a=ice-ufrag:").ok_or(ClientError::AnswerMissing("a=ice-ufrag"))?;
    let pwd = attr("a=ice-pwd:").ok_or(ClientError::AnswerMissing("a=ice-pwd"))?;
    let fingerprint = attr("a=fingerprint:sha-256 ")
        .ok_or(ClientError::AnswerMissing("a sha-256 fingerprint"))?;
    let candidate = sdp
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=candidate:"))
        .find(|c| {
            c.split_whitespace()
                .nth(2)
                .is_some_and(|t| t.eq_ignore_ascii_case("udp"))
        })
        .map(str::to_owned)
        .ok_or(ClientError::AnswerMissing("a=candidate"))?;
    let fields: Vec<&str> = candidate.split_whitespace().collect();
    let addr = match (fields.get(4), fields.get(5)) {
        (Some(ip), Some(port)) => format!("{ip}:{port}")
            .parse()
            .map_err(|_| ClientError::BadCandidate(candidate.clone()))?,
        _ => return Err(ClientError::BadCandidate(candidate)),
    };
    Ok(ServerSide {
        ice: IceCredentials { ufrag, pwd },
        fingerprint,
        addr,
    })
}

impl Client {
    /// Our ICE username fragment (what a trickle fragment of ours would carry).
    pub fn ice_ufrag(&self) -> &str {
        &self.local.ufrag
    }

    pub fn new(role: ClientRole) -> Result<Self, ClientError> {
        let provider = rtc_dtls::crypto_provider::default_provider()
            .map_err(|e| ClientError::Srtp(e.to_string()))?;
        let identity = DtlsIdentity::generate(&provider)?;
        let mut rng = rand::rng();
        Ok(Self {
            role,
            provider,
            identity,
            local: IceCredentials::random(),
            ssrcs: (rng.random(), rng.random()),
            server: None,
            dtls: None,
            srtp_out: None,
            srtp_in: None,
            next_check_at: None,
            controlling: true,
            answered: false,
            awaiting_check_answer: true,
            closed: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// The SDP offer: BUNDLE of one H.264 video and one Opus audio m-line.
    pub fn offer(&self) -> String {
        let direction = match self.role {
            ClientRole::Publish => "sendonly",
            ClientRole::Play => "recvonly",
        };
        let mut sdp = format!(
            "v=0\r\no=- {} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
             a=msid-semantic: WMS r58\r\n",
            rand::rng().random::<u32>()
        );
        let media = [
            (
                "video",
                H264_PT,
                "H264/90000",
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
                self.ssrcs.0,
            ),
            (
                "audio",
                OPUS_PT,
                "opus/48000/2",
                "minptime=10;useinbandfec=1",
                self.ssrcs.1,
            ),
        ];
        for (mid, (kind, pt, rtpmap, fmtp, ssrc)) in media.into_iter().enumerate() {
            sdp.push_str(&format!(
                "m={kind} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
                 a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:sha-256 {}\r\na=setup:actpass\r\n\
                 a=mid:{mid}\r\na={direction}\r\na=rtcp-mux\r\na=rtpmap:{pt} {rtpmap}\r\n\
                 a=fmtp:{pt} {fmtp}\r\n",
                self.local.ufrag, self.local.pwd, self.identity.fingerprint
            ));
            if kind == "video" {
                sdp.push_str(&format!(
                    "a=rtcp-fb:{pt} nack\r\na=rtcp-fb:{pt} nack pli\r\na=rtcp-fb:{pt} goog-remb\r\n"
                ));
            }
            if self.role == ClientRole::Play {
                sdp.push_str(&format!(
                    "a=extmap:{ABS_CAPTURE_EXT_ID} {}\r\n",
                    crate::webrtc::sdp::ABS_CAPTURE_TIME_URI
                ));
            }
            if self.role == ClientRole::Publish {
                sdp.push_str(&format!(
                    "a=msid:r58 {kind}\r\na=ssrc:{ssrc} cname:r58-client\r\n"
                ));
            }
        }
        sdp
    }

    /// Takes the server's answer and starts connectivity checks.
    pub fn accept_answer(&mut self, now: Instant, answer: &str) -> Result<(), ClientError> {
        self.server = Some(remote_side(answer)?);
        self.next_check_at = Some(now);
        self.handle_timeout(now);
        Ok(())
    }

    /// Starts an ICE restart (the WHIP/WHEP PATCH with `If-Match: "*"`): new local ICE
    /// credentials, returned as the fragment to send. DTLS and SRTP carry on; only the path is
    /// checked again, from wherever the client now sends.
    pub fn restart_ice(&mut self) -> String {
        self.local = IceCredentials::random();
        format!(
            "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\nm=video 9 UDP/TLS/RTP/SAVPF {H264_PT}\r\na=mid:0\r\n",
            self.local.ufrag, self.local.pwd
        )
    }

    /// The server's answer to [`Client::restart_ice`]: its new credentials. Checks start again
    /// at once.
    pub fn accept_restart(&mut self, now: Instant, fragment: &str) -> Result<(), ClientError> {
        let attr = |name: &str| {
            fragment
                .lines()
                .find_map(|l| l.trim_end().strip_prefix(name).map(str::to_owned))
        };
        let ufrag = attr("a=ice-ufrag:").ok_or(ClientError::AnswerMissing("a=ice-ufrag"))?;
        let pwd = attr("a=ice-pwd:").ok_or(ClientError::AnswerMissing("a=ice-pwd"))?;
        let server = self
            .server
            .as_mut()
            .ok_or(ClientError::AnswerMissing("an answer before the restart"))?;
        server.ice = IceCredentials { ufrag, pwd };
        self.awaiting_check_answer = true;
        self.next_check_at = Some(now);
        self.handle_timeout(now);
        Ok(())
    }

    /// Answers a server that offers instead (Janus' streaming plugin, an ICE-lite offerer):
    /// receives the first H.264 video m-line (its payload type and fmtp mirrored), rejects the
    /// others, takes the DTLS client role (`setup:active`) and names `local` as our candidate.
    /// Connectivity checks start at once, as after [`Client::accept_answer`].
    pub fn answer_offer(
        &mut self,
        now: Instant,
        offer: &str,
        local: SocketAddr,
    ) -> Result<String, ClientError> {
        let server = remote_side(offer)?;
        let mut sdp = format!(
            "v=0\r\no=- {} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
            rand::rng().random::<u32>()
        );
        let mut sections = Vec::new();
        let mut accepted = Vec::new();
        let mut have_video = false;
        for section in offer.split("\nm=").skip(1) {
            let lines: Vec<&str> = section.lines().map(str::trim_end).collect();
            let first = lines.first().copied().unwrap_or_default();
            let kind = first.split_whitespace().next().unwrap_or_default();
            let proto = first
                .split_whitespace()
                .nth(2)
                .unwrap_or("UDP/TLS/RTP/SAVPF");
            let mid = lines
                .iter()
                .find_map(|l| l.strip_prefix("a=mid:"))
                .unwrap_or_default();
            let h264 = lines.iter().find_map(|l| {
                let (pt, codec) = l.strip_prefix("a=rtpmap:")?.split_once(' ')?;
                codec
                    .to_ascii_uppercase()
                    .starts_with("H264/")
                    .then_some(pt)
            });
            match h264 {
                Some(pt) if kind == "video" && !have_video => {
                    have_video = true;
                    accepted.push(mid.to_owned());
                    let fmtp = lines
                        .iter()
                        .find_map(|l| l.strip_prefix(&format!("a=fmtp:{pt} ")))
                        .unwrap_or("packetization-mode=1");
                    sections.push(format!(
                        "m=video 9 {proto} {pt}\r\nc=IN IP4 0.0.0.0\r\n\
                         a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:sha-256 {}\r\n\
                         a=setup:active\r\na=mid:{mid}\r\na=recvonly\r\na=rtcp-mux\r\n\
                         a=rtpmap:{pt} H264/90000\r\na=fmtp:{pt} {fmtp}\r\n\
                         a=candidate:1 1 udp 2130706431 {} {} typ host\r\na=end-of-candidates\r\n",
                        self.local.ufrag,
                        self.local.pwd,
                        self.identity.fingerprint,
                        local.ip(),
                        local.port()
                    ));
                }
                _ => {
                    let fmt = first.split_whitespace().nth(3).unwrap_or("0");
                    sections.push(format!(
                        "m={kind} 0 {proto} {fmt}\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\na=inactive\r\n"
                    ));
                }
            }
        }
        if !have_video {
            return Err(ClientError::AnswerMissing(
                "an H.264 video m-line in the offer",
            ));
        }
        sdp.push_str(&format!("a=group:BUNDLE {}\r\n", accepted.join(" ")));
        for section in sections {
            sdp.push_str(&section);
        }
        // A full ICE agent that offers controls (RFC 8445 6.1.1); facing a lite one we do.
        self.controlling = offer.lines().any(|l| l.trim_end() == "a=ice-lite");
        self.server = Some(server);
        self.next_check_at = Some(now);
        self.handle_timeout(now);
        Ok(sdp)
    }

    pub fn is_connected(&self) -> bool {
        self.srtp_out.is_some() && !self.closed
    }

    /// How far the connection got, for a load generator's diagnostics.
    pub fn progress(&self) -> &'static str {
        match (self.closed, self.is_connected(), &self.dtls, self.answered) {
            (true, ..) => "closed",
            (_, true, ..) => "connected",
            (_, _, Some(_), _) => "DTLS handshake",
            (_, _, None, true) => "ICE answered",
            _ => "ICE checking",
        }
    }

    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Sends connectivity checks and drives DTLS retransmissions.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if self.next_check_at.is_some_and(|at| at <= now) {
            self.send_check();
            let interval = if self.awaiting_check_answer {
                CHECK_INTERVAL
            } else {
                CONSENT_INTERVAL
            };
            self.next_check_at = Some(now + interval);
        }
        if let Some(dtls) = self.dtls.as_mut() {
            let _ = dtls.handle_timeout(now);
        }
        self.flush_dtls();
    }

    fn send_check(&mut self) {
        let Some(server) = &self.server else {
            return;
        };
        let mut message = Message::new();
        let mut setters: Vec<Box<dyn Setter>> = vec![
            Box::new(BINDING_REQUEST),
            Box::new(TransactionId::new()),
            Box::new(TextAttribute::new(
                ATTR_USERNAME,
                format!("{}:{}", server.ice.ufrag, self.local.ufrag),
            )),
            Box::new(RawAttribute {
                typ: if self.controlling {
                    ATTR_ICE_CONTROLLING
                } else {
                    ATTR_ICE_CONTROLLED
                },
                length: 8,
                value: rand::rng().random::<u64>().to_be_bytes().to_vec(),
            }),
        ];
        if self.controlling {
            setters.push(Box::new(RawAttribute {
                typ: ATTR_USE_CANDIDATE,
                length: 0,
                value: Vec::new(),
            }));
        }
        setters.extend::<[Box<dyn Setter>; 3]>([
            Box::new(RawAttribute {
                typ: ATTR_PRIORITY,
                length: 4,
                value: 0x6e00_1eff_u32.to_be_bytes().to_vec(),
            }),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                server.ice.pwd.clone(),
                self.provider.crypto(),
            )),
            Box::new(FINGERPRINT),
        ]);
        if message.build(&setters).is_ok() {
            self.transmits
                .push_back((server.addr, BytesMut::from(&message.raw[..])));
        }
    }

    fn flush_dtls(&mut self) {
        let (Some(dtls), Some(server)) = (self.dtls.as_mut(), self.server.as_ref()) else {
            return;
        };
        while let Some(data) = dtls.poll_transmit() {
            self.transmits.push_back((server.addr, data));
        }
    }

    /// One datagram from the server.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8]) -> Result<(), ClientError> {
        match data.first() {
            Some(0..=3) => {
                // A full ICE peer checks us too: answer checks for our credentials.
                if let Ok(request) = crate::webrtc::ice_lite::BindingRequest::parse(data) {
                    if let Some(server) = &self.server
                        && request.local_ufrag == self.local.ufrag
                        && let Ok(response) =
                            request.answer(server.addr, &self.local.pwd, self.provider.crypto())
                    {
                        self.transmits
                            .push_back((server.addr, BytesMut::from(&response[..])));
                    }
                    return Ok(());
                }
                let mut m = Message::new();
                let is_success =
                    m.unmarshal_binary(data).is_ok() && m.typ == rtc_stun::message::BINDING_SUCCESS;
                if is_success {
                    self.awaiting_check_answer = false;
                }
                if is_success && !self.answered {
                    self.answered = true;
                    self.start_dtls(now)?;
                } else if !is_success && m.typ == rtc_stun::message::BINDING_ERROR {
                    self.close();
                }
            }
            Some(20..=63) => {
                let Some(dtls) = self.dtls.as_mut() else {
                    return Ok(());
                };
                let progress = dtls.handle_datagram(now, data)?;
                self.flush_dtls();
                if progress.peer_closed {
                    self.close();
                } else if progress.handshake_completed {
                    self.on_handshake(now)?;
                }
            }
            Some(128..=191) => {
                if crate::rtp::packet::is_rtcp(data) {
                    self.events.push_back(ClientEvent::Rtcp { len: data.len() });
                } else if let Ok(h) = crate::rtp::packet::RtpHeader::parse(data) {
                    self.events.push_back(ClientEvent::Rtp {
                        ssrc: h.ssrc,
                        sequence: h.sequence,
                        timestamp: h.timestamp,
                        payload_type: h.payload_type,
                        len: data.len(),
                        capture_ntp: abs_capture_time(data, &h),
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn start_dtls(&mut self, now: Instant) -> Result<(), ClientError> {
        let Some(server) = &self.server else {
            return Ok(());
        };
        self.dtls = Some(Dtls::client(
            now,
            &self.identity,
            &server.fingerprint,
            &self.provider,
        )?);
        self.flush_dtls();
        Ok(())
    }

    fn on_handshake(&mut self, _now: Instant) -> Result<(), ClientError> {
        let Some(dtls) = &self.dtls else {
            return Ok(());
        };
        let srtp = dtls.srtp_contexts(&self.provider)?;
        self.srtp_out = Some(srtp.outbound);
        self.srtp_in = Some(srtp.inbound);
        self.events.push_back(ClientEvent::Connected);
        Ok(())
    }

    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.events.push_back(ClientEvent::Closed);
        }
    }

    /// Protects and queues one RTP packet (a complete plain RTP packet).
    pub fn send_rtp(&mut self, packet: &[u8]) -> Result<(), ClientError> {
        let (Some(srtp), Some(server)) = (self.srtp_out.as_mut(), self.server.as_ref()) else {
            return Err(ClientError::NotConnected);
        };
        let mut buf = packet;
        let header = rtc_rtp::header::Header::unmarshal(&mut buf)
            .map_err(|e| ClientError::Srtp(format!("not an RTP packet: {e}")))?;
        // rtc-rtp accepts an extension element that runs past its declared block; the header it
        // returns is then larger than the packet and rtc-srtp would slice out of bounds.
        if header.marshal_size() > packet.len() {
            return Err(ClientError::Srtp(
                "RTP header extension runs past the packet".into(),
            ));
        }
        let protected = srtp
            .encrypt_rtp_with_header(packet, &header)
            .map_err(|e| ClientError::Srtp(e.to_string()))?;
        self.transmits.push_back((server.addr, protected));
        Ok(())
    }

    /// Protects and queues one RTCP compound packet.
    pub fn send_rtcp(&mut self, packet: &[u8]) -> Result<(), ClientError> {
        let (Some(srtp), Some(server)) = (self.srtp_out.as_mut(), self.server.as_ref()) else {
            return Err(ClientError::NotConnected);
        };
        let protected = srtp
            .encrypt_rtcp(packet)
            .map_err(|e| ClientError::Srtp(e.to_string()))?;
        self.transmits.push_back((server.addr, protected));
        Ok(())
    }

    /// Unprotects an SRTP packet from the server (for the samples a load test decrypts).
    pub fn decrypt_rtp(&mut self, data: &[u8]) -> Result<BytesMut, ClientError> {
        let srtp = self.srtp_in.as_mut().ok_or(ClientError::NotConnected)?;
        srtp.decrypt_rtp(data)
            .map_err(|e| ClientError::Srtp(e.to_string()))
    }
}
