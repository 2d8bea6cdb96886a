//! One peer session: a WHIP publisher or a WHEP viewer, as the engine keeps it.

use std::time::Instant;

use rtc_srtp::context::Context;

use crate::rtp::rewrite::Rewriter;
use crate::webrtc::dtls::Dtls;
use crate::webrtc::ice_lite::IceLite;
use crate::webrtc::sdp::MediaKind;
use crate::webrtc::srtp::SrtpSender;

pub type SessionId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Publish,
    Play,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    /// Answer sent; waiting for ICE and DTLS.
    Connecting,
    /// DTLS done, SRTP keys in place: media flows.
    Connected,
}

/// How a publisher's RTP maps onto the stream's tracks.
#[derive(Debug, Clone)]
pub struct InboundTrack {
    pub track_index: usize,
    pub payload_type: u8,
    /// SSRCs the offer announced for this m-line; empty when it announced none (then the
    /// payload type decides).
    pub ssrcs: Vec<u32>,
    /// The SSRC actually seen, learned from the first packet.
    pub seen_ssrc: Option<u32>,
    pub is_video: bool,
    /// Whether the publisher negotiated `nack` for this track's codec (we then NACK its loss).
    pub nack: bool,
    pub gaps: crate::rtp::gaps::SequenceGaps,
    pub repair: crate::rtp::gaps::PendingRepair,
}

impl InboundTrack {
    /// Notes a packet's sequence number: what its arrival shows missing is NACKed by the
    /// engine's timer (only when the publisher negotiated NACK).
    pub fn note_sequence(&mut self, now: Instant, sequence: u16) {
        if !self.nack {
            return;
        }
        self.repair.received(sequence);
        if let Some((first, count)) = self.gaps.on_packet(sequence) {
            self.repair.missing(now, first, count);
        }
    }
}

/// One of a viewer's outgoing tracks.
#[derive(Debug, Clone)]
pub struct OutboundTrack {
    pub track_index: usize,
    pub ssrc: u32,
    pub payload_type: u8,
    pub is_video: bool,
    pub rewriter: Rewriter,
    /// RTP packets and payload octets sent, for Sender Reports (wrapping, as RFC 3550 says).
    pub packets_sent: u32,
    pub octets_sent: u32,
    /// RFC 4588 retransmission stream, when the viewer negotiated one.
    pub rtx: Option<RtxStream>,
    /// The abs-capture-time header extension id, when the viewer negotiated it.
    pub abs_capture_ext: Option<u8>,
}

/// A viewer's retransmission stream: its own SSRC, payload type and sequence numbers.
#[derive(Debug, Clone, Copy)]
pub struct RtxStream {
    pub ssrc: u32,
    pub payload_type: u8,
    pub next_sequence: u16,
}

/// Per-session counters.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SessionStats {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub nacks_in: u64,
    pub retransmits: u64,
    pub keyframe_requests_in: u64,
    pub srtp_errors: u64,
    /// Datagrams dropped for exceeding the publisher bitrate cap.
    pub bitrate_cap_dropped: u64,
}

pub struct Session {
    pub id: SessionId,
    /// The addresses the client's offer and trickled fragments named as its candidates: the
    /// peers a TURN relay of ours must permit.
    pub remote_candidates: Vec<std::net::SocketAddr>,
    pub role: Role,
    pub stream: String,
    pub created_at: Instant,
    pub state: SessionState,
    pub ice: IceLite,
    pub dtls: Dtls,
    pub srtp_out: Option<Context>,
    /// Protects forwarded RTP in place; present once connected.
    pub rtp_out: Option<SrtpSender>,
    pub srtp_in: Option<Context>,
    /// Strong entity tag of the current ICE session (changes on ICE restart).
    pub etag: String,
    /// Our SSRC as the sender of RTCP feedback (PLI, REMB) on this session.
    pub feedback_ssrc: u32,
    pub remb: bool,
    pub inbound: Vec<InboundTrack>,
    pub outbound: Vec<OutboundTrack>,
    pub stats: SessionStats,
    pub last_media_at: Option<Instant>,
    /// The accepted m-lines, in BUNDLE order (for ICE restart answers).
    pub bundle: Vec<BundledMedia>,
    /// A publisher's hard inbound rate cap, when one is configured.
    pub bitrate_cap: Option<crate::webrtc::bitrate_cap::BitrateCap>,
}

/// One accepted m-line of the session.
#[derive(Debug, Clone)]
pub struct BundledMedia {
    pub mid: String,
    pub kind: MediaKind,
    pub payload_type: u8,
}

impl Session {
    /// The inbound track a publisher's packet belongs to: by SSRC when known, else by payload
    /// type (and the SSRC is then learned).
    pub fn inbound_for(&mut self, ssrc: u32, payload_type: u8) -> Option<&mut InboundTrack> {
        let position = self
            .inbound
            .iter()
            .position(|t| t.seen_ssrc == Some(ssrc) || t.ssrcs.contains(&ssrc))
            .or_else(|| {
                self.inbound
                    .iter()
                    .position(|t| t.seen_ssrc.is_none() && t.payload_type == payload_type)
            })?;
        let track = &mut self.inbound[position];
        if track.payload_type != payload_type {
            // An RTX or FEC packet on the track's SSRC space we did not negotiate: not media.
            return None;
        }
        track.seen_ssrc.get_or_insert(ssrc);
        Some(track)
    }

    /// The publisher's video SSRC, where keyframe requests go.
    pub fn video_ssrc(&self) -> Option<u32> {
        self.inbound
            .iter()
            .filter(|t| t.is_video)
            .find_map(|t| t.seen_ssrc.or_else(|| t.ssrcs.first().copied()))
    }
}
