//! The SDP layer of the answer-only server peer.
//!
//! The server is always the answerer: WHIP and WHEP clients send an offer, the server answers.
//! It is ICE-lite, always the DTLS server (`a=setup:passive`), and requires BUNDLE and
//! `rtcp-mux`. This module turns an offer into an [`Offer`] ([`parse_offer`]), picks codecs
//! ([`choose_publish_codec`], [`choose_play_codec`]), writes the answer ([`build_answer`]) and
//! handles trickle-ICE fragments ([`parse_sdpfrag`], [`build_restart_fragment`]).
//!
//! Offers are tokenised by `rtc-sdp`; everything WebRTC-specific (codecs, transport attributes,
//! SSRCs) is interpreted here. Answers are written by hand: the output is small and fixed, and
//! writing it directly keeps the attribute order exactly as browsers emit it.
//!
//! Every error's `Display` is a one-line reason fit for an HTTP 400 body; any piece of the
//! client's input quoted in it is shortened and stripped of control characters.

mod answer;
mod codec;
mod fuzz;
mod offer;
mod trickle;

#[cfg(test)]
mod tests;

pub use answer::{
    AcceptedMedia, AnswerMedia, AnswerParams, MediaAnswer, RelayCandidate, SendSsrc,
    answer_direction_for, build_answer,
};
pub use codec::{choose_play_codec, choose_publish_codec, play_refusal, publish_refusal};
pub use fuzz::fuzz_entry;
pub use offer::parse_offer;
pub use trickle::{
    FragmentMedia, SdpFrag, build_restart_fragment, parse_candidate_addr, parse_sdpfrag,
};

use std::fmt;
use std::net::SocketAddr;

use crate::media::CodecSpec;

/// The most `m=` sections an offer may carry.
pub const MAX_MEDIA_SECTIONS: usize = 16;

/// The RTP header extension carrying a frame's capture time (NTP), which receivers such as
/// Chromium expose as `RTCRtpSynchronizationSource.captureTimestamp`.
pub const ABS_CAPTURE_TIME_URI: &str =
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";

/// The largest offer or trickle fragment accepted, in bytes. A Chromium offer with audio and
/// video is about 6 KiB; this leaves room for many more sections without letting a client make
/// the parser chew on megabytes.
pub const MAX_SDP_BYTES: usize = 64 * 1024;

/// Why an offer, a fragment or the answer inputs were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is larger than [`MAX_SDP_BYTES`].
    #[error("SDP body is {len} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Size of the body.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The SDP parser refused the text.
    #[error("offer is not valid SDP: {0}")]
    Unparseable(String),
    /// More than [`MAX_MEDIA_SECTIONS`] m-lines.
    #[error("offer has {count} media sections, more than the limit of {limit}")]
    TooManyMedia {
        /// m-lines in the offer.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// An active m-line has no `a=mid`, or its mid is malformed.
    #[error("media section {index} has a missing or malformed a=mid")]
    BadMid {
        /// Zero-based m-line index.
        index: usize,
    },
    /// Two m-lines share a mid.
    #[error("mid {mid:?} is used by more than one media section")]
    DuplicateMid {
        /// The repeated mid.
        mid: String,
    },
    /// No `a=ice-ufrag`/`a=ice-pwd` for an active m-line, or they are malformed.
    #[error("offer lacks valid ICE credentials (a=ice-ufrag and a=ice-pwd) for mid {mid:?}")]
    MissingIceCredentials {
        /// The m-line lacking them.
        mid: String,
    },
    /// Bundled m-lines carry different ICE credentials.
    #[error("ICE credentials of mid {mid:?} differ from the other bundled media sections")]
    InconsistentIceCredentials {
        /// The first m-line that differs.
        mid: String,
    },
    /// No usable `a=fingerprint:sha-256` for an active m-line.
    #[error("offer has no valid sha-256 DTLS fingerprint for mid {mid:?}")]
    NoSha256Fingerprint {
        /// The m-line lacking one.
        mid: String,
    },
    /// Bundled m-lines carry different sha-256 fingerprints.
    #[error("sha-256 fingerprint of mid {mid:?} differs from the other bundled media sections")]
    InconsistentFingerprint {
        /// The first m-line that differs.
        mid: String,
    },
    /// The offer wants to be the DTLS server.
    #[error("offer has a=setup:passive; the server is always DTLS server, offer actpass or active")]
    SetupPassive,
    /// `a=setup` has a value other than actpass/active/passive.
    #[error("offer has an unsupported a=setup value {0:?}")]
    InvalidSetup(String),
    /// Every m-line is rejected (port 0) or not audio/video.
    #[error("offer has no usable audio or video media section")]
    NoUsableMedia,
    /// An active RTP m-line lacks `a=rtcp-mux`.
    #[error("media section {mid:?} lacks a=rtcp-mux, which is required")]
    RtcpMuxMissing {
        /// The m-line.
        mid: String,
    },
    /// Several active m-lines but this one is not in an `a=group:BUNDLE`.
    #[error("media section {mid:?} is not in an a=group:BUNDLE; BUNDLE is required")]
    BundleMissing {
        /// The unbundled m-line.
        mid: String,
    },
    /// The answer inputs are inconsistent with the offer or malformed (a caller bug).
    #[error("cannot build answer: {0}")]
    InvalidAnswer(String),
    /// No usable host candidate was given for the answer or restart fragment.
    #[error("no usable ICE host candidate to put in the answer")]
    NoCandidates,
    /// A trickle fragment line is neither `a=`, `m=` nor empty.
    #[error("trickle-ice-sdpfrag line {line} is not an a= or m= line")]
    FragmentBadLine {
        /// One-based line number.
        line: usize,
    },
    /// A trickle fragment is malformed in another way.
    #[error("invalid trickle-ice-sdpfrag: {0}")]
    FragmentInvalid(String),
}

/// Kind of an m-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `m=audio`
    Audio,
    /// `m=video`
    Video,
    /// `m=application` (data channels)
    Application,
    /// Any other media type (`text`, `message`, `image`).
    Other,
}

impl MediaKind {
    pub(crate) fn from_sdp(media: &str) -> Self {
        match media {
            "audio" => Self::Audio,
            "video" => Self::Video,
            "application" => Self::Application,
            _ => Self::Other,
        }
    }

    /// The SDP media token (`Other` prints as `text`).
    pub fn as_sdp(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Application => "application",
            Self::Other => "text",
        }
    }
}

/// Media direction attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv` (the default when absent)
    #[default]
    SendRecv,
    /// `a=sendonly`
    SendOnly,
    /// `a=recvonly`
    RecvOnly,
    /// `a=inactive`
    Inactive,
}

impl Direction {
    pub(crate) fn from_attr(key: &str) -> Option<Self> {
        match key {
            "sendrecv" => Some(Self::SendRecv),
            "sendonly" => Some(Self::SendOnly),
            "recvonly" => Some(Self::RecvOnly),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }

    /// The attribute name.
    pub fn as_sdp(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// Whether the side with this direction sends media.
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// Whether the side with this direction receives media.
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_sdp())
    }
}

/// The offerer's DTLS role request (`passive` is refused while parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DtlsSetup {
    /// `a=setup:actpass`
    #[default]
    ActPass,
    /// `a=setup:active`, or no `a=setup` (RFC 4145 default).
    Active,
}

/// A parsed offer: the transport attributes shared by the bundle and each m-line in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The offerer's ICE username fragment (the same on every bundled m-line).
    pub ice_ufrag: String,
    /// The offerer's ICE password.
    pub ice_pwd: String,
    /// The offerer's sha-256 certificate fingerprint, lowercase hex with colons.
    pub fingerprint_sha256: String,
    /// The offerer's DTLS role request.
    pub setup: DtlsSetup,
    /// `a=ice-options` includes `trickle`.
    pub ice_trickle: bool,
    /// The mids of the first `a=group:BUNDLE`, as written.
    pub bundle_mids: Vec<String>,
    /// Every m-line, in offer order.
    pub media: Vec<OfferedMedia>,
    /// The UDP addresses of the offer's `a=candidate` lines (any m-line, deduplicated, at most
    /// 32): where the client may send from, which a TURN relay must permit.
    pub candidates: Vec<SocketAddr>,
}

/// One offered m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedMedia {
    /// `a=mid`; empty only for a rejected m-line without one.
    pub mid: String,
    /// Media kind.
    pub kind: MediaKind,
    /// The media token as written (`audio`, `video`, `application`, `text`, ...).
    pub media_type: String,
    /// The transport protocol as written (`UDP/TLS/RTP/SAVPF`, `UDP/DTLS/SCTP`, ...).
    pub proto: String,
    /// The format tokens of the m-line, in order (deduplicated).
    pub formats: Vec<String>,
    /// Port 0 without `a=bundle-only`: the offerer already rejected this m-line.
    pub rejected: bool,
    /// The offerer's direction (media level, else session level, else sendrecv).
    pub direction: Direction,
    /// `a=rtcp-mux` present.
    pub rtcp_mux: bool,
    /// `a=rtcp-rsize` present.
    pub rtcp_rsize: bool,
    /// Codecs in m-line order. RTX entries are not listed: they show up as
    /// [`OfferedCodec::rtx_payload_type`] of the codec they repair.
    pub codecs: Vec<OfferedCodec>,
    /// `a=extmap` id and URI (a direction suffix such as `2/recvonly` is dropped).
    pub extmaps: Vec<(u8, String)>,
    /// SSRCs of the offerer's primary streams, in order of first appearance.
    pub ssrcs: Vec<u32>,
    /// `(primary, rtx)` pairs from `a=ssrc-group:FID`.
    pub rtx_ssrcs: Vec<(u32, u32)>,
    /// `a=msid` value (`<stream id> <track id>`), else the first primary SSRC's `msid:`.
    pub msid: Option<String>,
}

impl OfferedMedia {
    /// Not rejected, audio or video, and secure RTP with feedback (`.../SAVPF`): something the
    /// server can carry.
    pub fn is_usable(&self) -> bool {
        self.why_unusable().is_none()
    }

    /// Why the server cannot carry this m-line at all (whatever its codecs), or None.
    pub fn why_unusable(&self) -> Option<String> {
        let mid = excerpt(&self.mid);
        if !matches!(self.kind, MediaKind::Audio | MediaKind::Video) {
            Some(format!(
                "m-line {mid:?} is {} (not audio or video)",
                excerpt(&self.media_type)
            ))
        } else if self.rejected {
            Some(format!(
                "m-line {mid:?} has port 0 (rejected by the offerer)"
            ))
        } else if !self.proto.ends_with("/SAVPF") {
            Some(format!(
                "m-line {mid:?} uses {}; WebRTC media needs UDP/TLS/RTP/SAVPF",
                excerpt(&self.proto)
            ))
        } else {
            None
        }
    }
}

/// One offered codec (payload type) of an m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedCodec {
    /// RTP payload type.
    pub payload_type: u8,
    /// Encoding name as written (`H264`, `opus`, `VP8`).
    pub name: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Channel count, when the rtpmap gives one.
    pub channels: Option<u16>,
    /// Raw `a=fmtp` parameters; empty if none.
    pub fmtp: String,
    /// `a=rtcp-fb` values, whitespace-normalised (`nack`, `nack pli`, `transport-cc`).
    pub rtcp_fb: Vec<String>,
    /// Payload type of the RTX codec whose `apt` names this codec.
    pub rtx_payload_type: Option<u8>,
}

impl From<&OfferedCodec> for CodecSpec {
    fn from(c: &OfferedCodec) -> Self {
        Self {
            name: c.name.clone(),
            clock_rate: c.clock_rate,
            channels: c.channels,
            fmtp: c.fmtp.clone(),
        }
    }
}

/// Shortens client-supplied text for an error message: at most 64 characters, control
/// characters replaced, so the message stays on one line.
pub(crate) fn excerpt(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(64)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(64).is_some() {
        out.push('…');
    }
    out
}

/// A token safe to copy into an SDP line: non-empty, at most `max` bytes, visible ASCII only.
pub(crate) fn is_token(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_graphic())
}

/// RFC 8839 `ice-char` string (ALPHA / DIGIT / "+" / "/"), at most 256 characters.
pub(crate) fn is_ice_chars(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}
