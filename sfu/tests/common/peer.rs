//! The test's client side: one `rtc` (webrtc-rs) `RTCPeerConnection` per publisher or viewer,
//! what it received, and the SDP/SRTP helpers the tests read it with. `Net` (mod.rs) moves its
//! datagrams to and from the engine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX, MediaEngine,
};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;

use sfu::engine::Answer;

use super::{OPUS_PT, TestResult, VIDEO_CLOCK};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Publisher,
    Viewer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Video,
    Audio,
}

/// One RTP packet a client received, as `rtc` handed it to the application.
#[derive(Debug, Clone)]
pub struct RxPacket {
    pub at: Instant,
    pub kind: Kind,
    pub ssrc: u32,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Bytes,
}

/// One RTCP packet a client received (only what `rtc` passes up to the application).
#[derive(Debug, Clone)]
pub struct RxRtcp {
    pub at: Instant,
    /// RTP packets this client had received before this one (`rx[..after_rx]`): arrival
    /// order, which `at` cannot tell within one instant of the virtual clock.
    pub after_rx: usize,
    pub pli: bool,
    pub nack: bool,
    pub bye: bool,
    /// A Sender Report: (ssrc, ntp time, rtp time, packet count, octet count).
    pub sr: Option<(u32, u64, u32, u32, u32)>,
    pub media_ssrcs: Vec<u32>,
    pub name: String,
    /// A REMB's bitrate (bits per second).
    pub remb: Option<f32>,
}

pub struct Peer {
    pub label: String,
    pub role: Role,
    /// The payload type this client uses for H.264.
    pub h264_pt: u8,
    pub addr: SocketAddr,
    pub pc: RTCPeerConnection,
    pub answer: Answer,
    /// When false the peer is cut off: nothing it sends reaches the server, nothing reaches it.
    pub online: bool,
    pub state: RTCPeerConnectionState,
    pub connected_at: Option<Instant>,
    pub closed_at: Option<Instant>,
    pub rx: Vec<RxPacket>,
    pub rtcp: Vec<RxRtcp>,
    pub senders: Vec<(Kind, RTCRtpSenderId, u32)>,
    pub receivers: Vec<(Kind, RTCRtpReceiverId)>,
    /// Sent RTP (publisher): payload -> (kind, frame or audio packet number, packet index).
    pub sent: HashMap<Bytes, (Kind, u32, u32)>,
    pub sent_count: HashMap<Kind, u64>,
    pub datagrams_out: u64,
    pub datagrams_in: u64,
    /// SRTCP datagrams delivered to this peer (counted on the wire, before `rtc` sees them).
    pub rtcp_datagrams_in: u64,
    /// DTLS alert records (close_notify) delivered to this peer, with the time of the first.
    pub dtls_alerts_in: u64,
    pub first_alert_at: Option<Instant>,
    pub errors: Vec<String>,
}

impl Peer {
    pub fn connected(&self) -> bool {
        self.state == RTCPeerConnectionState::Connected
    }

    pub fn video(&self) -> impl Iterator<Item = &RxPacket> {
        self.rx.iter().filter(|p| p.kind == Kind::Video)
    }

    pub fn audio(&self) -> impl Iterator<Item = &RxPacket> {
        self.rx.iter().filter(|p| p.kind == Kind::Audio)
    }

    pub fn sender_ssrc(&self, kind: Kind) -> Option<u32> {
        self.senders
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map(|(_, _, s)| *s)
    }

    /// The SSRC our answer announced for `kind` (a=ssrc in that m-section).
    pub fn answered_ssrc(&self, kind: Kind) -> Option<u32> {
        answered_ssrc(&self.answer.sdp, kind)
    }

    /// PLIs received (publisher side).
    pub fn plis(&self) -> Vec<Instant> {
        self.rtcp.iter().filter(|r| r.pli).map(|r| r.at).collect()
    }

    /// When RTCP BYEs arrived.
    pub fn byes(&self) -> Vec<Instant> {
        self.rtcp.iter().filter(|r| r.bye).map(|r| r.at).collect()
    }

    /// Sends a PLI for the stream's video from this viewer (through `rtc`'s receiver API).
    pub fn send_pli(&mut self, now: Instant) -> TestResult {
        let media_ssrc = self.answered_ssrc(Kind::Video).ok_or("no video ssrc")?;
        let (_, id) = *self
            .receivers
            .iter()
            .find(|(k, _)| *k == Kind::Video)
            .ok_or("no video receiver")?;
        let mut receiver = self.pc.rtp_receiver(id).ok_or("receiver gone")?;
        receiver.write_rtcp(
            now,
            vec![Box::new(PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            })],
        )?;
        Ok(())
    }

    /// Writes one RTP packet on the sender of `kind` and remembers its payload.
    pub fn send_rtp(&mut self, now: Instant, kind: Kind, pkt: Out) -> TestResult {
        let (_, id, ssrc) = *self
            .senders
            .iter()
            .find(|(k, _, _)| *k == kind)
            .ok_or("no sender of that kind")?;
        let payload_type = match kind {
            Kind::Video => self.h264_pt,
            Kind::Audio => OPUS_PT,
        };
        self.sent
            .insert(pkt.payload.clone(), (kind, pkt.unit, pkt.index));
        *self.sent_count.entry(kind).or_default() += 1;
        let packet = rtc::rtp::packet::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker: pkt.marker,
                payload_type,
                sequence_number: pkt.sequence,
                timestamp: pkt.timestamp,
                ssrc,
                ..Default::default()
            },
            payload: pkt.payload,
        };
        let mut sender = self.pc.rtp_sender(id).ok_or("sender gone")?;
        sender.write_rtp(now, packet)?;
        Ok(())
    }
}

/// An RTP packet for a publisher to send.
#[derive(Debug, Clone)]
pub struct Out {
    pub sequence: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Bytes,
    /// Video frame number or audio packet number.
    pub unit: u32,
    /// Index of the packet within its frame.
    pub index: u32,
}

/// Marks every inbound RTCP packet for delivery to the application (see `rtc`'s
/// rtcp-processing example); without it `rtc`'s chain terminus drops inbound RTCP.
#[derive(Default)]
pub(super) struct DeliverRtcp {
    read: std::collections::VecDeque<TaggedPacket>,
    write: std::collections::VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for DeliverRtcp {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if matches!(msg.message.packet, Packet::Rtcp(_)) {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }

    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Self::Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }
}

impl Interceptor for DeliverRtcp {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

pub(super) fn codec_h264() -> RTCRtpCodec {
    let fb = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: VIDEO_CLOCK,
        channels: 0,
        sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
            .to_owned(),
        rtcp_feedback: vec![
            fb("nack", ""),
            fb("nack", "pli"),
            fb("ccm", "fir"),
            fb("goog-remb", ""),
        ],
    }
}

pub(super) fn codec_opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// H.264 and Opus; a viewer also offers RTX for H.264, as browsers do.
pub(super) fn media_engine(role: Role, h264_pt: u8) -> TestResult<MediaEngine> {
    let mut me = MediaEngine::default();
    if role == Role::Viewer {
        me.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_RTX.to_owned(),
                    clock_rate: VIDEO_CLOCK,
                    channels: 0,
                    sdp_fmtp_line: format!("apt={h264_pt}"),
                    rtcp_feedback: vec![],
                },
                payload_type: h264_pt + 1,
            },
            RtpCodecKind::Video,
        )?;
    }
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: codec_h264(),
            payload_type: h264_pt,
        },
        RtpCodecKind::Video,
    )?;
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: codec_opus(),
            payload_type: OPUS_PT,
        },
        RtpCodecKind::Audio,
    )?;
    Ok(me)
}

/// The first `a=ssrc:` of the m-section of `kind` in `sdp`.
pub fn answered_ssrc(sdp: &str, kind: Kind) -> Option<u32> {
    let want = match kind {
        Kind::Video => "m=video",
        Kind::Audio => "m=audio",
    };
    let mut inside = false;
    for line in sdp.lines() {
        if line.starts_with("m=") {
            inside = line.starts_with(want);
        } else if inside && let Some(rest) = line.strip_prefix("a=ssrc:") {
            return rest.split_whitespace().next()?.parse().ok();
        }
    }
    None
}

/// RTP fields readable in the clear in an SRTP datagram: (payload type, sequence, ssrc).
pub fn srtp_header(data: &[u8]) -> Option<(u8, u16, u32)> {
    if data.len() < 12 || !(128..=191).contains(&data[0]) || (192..=223).contains(&data[1]) {
        return None;
    }
    Some((
        data[1] & 0x7f,
        u16::from_be_bytes([data[2], data[3]]),
        u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
    ))
}
