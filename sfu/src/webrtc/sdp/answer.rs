//! Writing the answer. The text is produced directly (CRLF line ends) rather than through
//! `rtc-sdp`'s builder, so the attribute order matches what browsers expect and every value
//! copied from the offer is checked before it is written.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::{
    Direction, Offer, OfferedCodec, OfferedMedia, SdpError, excerpt, is_ice_chars, is_token,
};

/// Everything the server contributes to an answer.
#[derive(Debug, Clone)]
pub struct AnswerParams<'a> {
    /// Our ICE username fragment (4 to 256 ice-chars).
    pub ice_ufrag: &'a str,
    /// Our ICE password (22 to 256 ice-chars).
    pub ice_pwd: &'a str,
    /// Our certificate's sha-256 fingerprint, `AB:CD:...` as we present it.
    pub fingerprint_sha256: &'a str,
    /// Our UDP host candidates; each becomes one `a=candidate` (IPv4 and IPv6). Unspecified
    /// addresses and port 0 are skipped; at least one must remain.
    pub candidates: &'a [SocketAddr],
    /// Our TURN allocation, when we hold one: one more candidate, after the host ones.
    pub relay: Option<RelayCandidate>,
    /// One entry per offered m-line, in offer order, with the same mids.
    pub media: Vec<AnswerMedia>,
    /// The `o=` session id (only the low 63 bits are used, for parsers that read it as i64).
    pub session_id: u64,
}

/// The answer to one offered m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerMedia {
    /// The offered mid.
    pub mid: String,
    /// What the answer says of it.
    pub answer: MediaAnswer,
}

/// What the answer says of one offered m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaAnswer {
    /// Media flows on it, as described.
    Accept(Box<AcceptedMedia>),
    /// Nothing flows on it but it stays in the BUNDLE group (port 9, `a=inactive`, with the
    /// transport attributes): an audio/video m-line the stream has no track for. RFC 8843
    /// forbids rejecting the offerer-tagged m-line (the first of its group) while keeping the
    /// others bundled, and a client that offers audio first for a video-only stream (GStreamer's
    /// webrtcbin with max-bundle) then waits forever for a transport that never comes.
    Inactive,
    /// Port 0: an m-line that cannot be bundled or understood (data channels, plain RTP/AVP,
    /// unknown media) or that the offerer already rejected. Left out of the BUNDLE group.
    Reject,
}

impl AnswerMedia {
    /// An accepted m-line.
    pub fn accept(mid: &str, accepted: AcceptedMedia) -> Self {
        Self {
            mid: mid.to_owned(),
            answer: MediaAnswer::Accept(Box::new(accepted)),
        }
    }

    /// The answer to an offered m-line that carries nothing of this session: inactive inside
    /// the bundle when it is audio/video secure RTP the offerer did not reject, else rejected.
    pub fn unused(offered: &OfferedMedia) -> Self {
        Self {
            mid: offered.mid.clone(),
            answer: if offered.is_usable() {
                MediaAnswer::Inactive
            } else {
                MediaAnswer::Reject
            },
        }
    }

    /// The accepted media, if media flows on this m-line.
    pub fn accepted(&self) -> Option<&AcceptedMedia> {
        match &self.answer {
            MediaAnswer::Accept(a) => Some(a),
            MediaAnswer::Inactive | MediaAnswer::Reject => None,
        }
    }

    /// Whether the m-line is in the answer's BUNDLE group.
    pub fn is_bundled(&self) -> bool {
        !matches!(self.answer, MediaAnswer::Reject)
    }
}

/// How an accepted m-line is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedMedia {
    /// The one codec answered: the offerer's payload type, rtpmap and fmtp; of its rtcp-fb only
    /// `nack`, `nack pli`, `ccm fir` and `goog-remb` are kept.
    pub codec: OfferedCodec,
    /// Also answer the offerer's RTX payload type for that codec, if it has one.
    pub with_rtx: bool,
    /// What the server does: RecvOnly for WHIP, SendOnly for WHEP.
    pub direction: Direction,
    /// The offered header extensions we keep (same ids and URIs as offered).
    pub extmaps: Vec<(u8, String)>,
    /// Our SSRCs and names when we send; ignored for a direction that does not send.
    pub send: Option<SendSsrc>,
}

/// The SSRCs and stream names the server sends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendSsrc {
    /// Primary SSRC.
    pub ssrc: u32,
    /// RTX SSRC, used when RTX is answered.
    pub rtx_ssrc: Option<u32>,
    /// RTCP CNAME.
    pub cname: String,
    /// MediaStream id for `a=msid`.
    pub stream_id: String,
    /// Track id for `a=msid`.
    pub track_id: String,
}

/// The rtcp-fb values the server honours.
const SUPPORTED_RTCP_FB: [&str; 4] = ["nack", "nack pli", "ccm fir", "goog-remb"];

/// The answer direction for an offered direction, or None if they cannot work together.
///
/// `we_send` false (WHIP): the offer must send (sendonly or sendrecv) and we answer recvonly.
/// `we_send` true (WHEP): the offer must receive (recvonly or sendrecv) and we answer sendonly.
pub fn answer_direction_for(offered: Direction, we_send: bool) -> Option<Direction> {
    match (we_send, offered) {
        (false, Direction::SendOnly | Direction::SendRecv) => Some(Direction::RecvOnly),
        (true, Direction::RecvOnly | Direction::SendRecv) => Some(Direction::SendOnly),
        _ => None,
    }
}

fn invalid(msg: impl Into<String>) -> SdpError {
    SdpError::InvalidAnswer(msg.into())
}

/// Builds the answer to `offer`. Fails (a caller bug, reported as [`SdpError::InvalidAnswer`])
/// when `params` do not match the offer or carry values that cannot be written into SDP, and
/// with [`SdpError::NoUsableMedia`] when no m-line is accepted.
///
/// The answer's BUNDLE group lists the accepted and inactive m-lines in the order of the
/// offer's group, so the offerer-tagged m-line stays first whenever it is audio or video.
pub fn build_answer(offer: &Offer, params: &AnswerParams<'_>) -> Result<String, SdpError> {
    if params.ice_ufrag.len() < 4 || !is_ice_chars(params.ice_ufrag) {
        return Err(invalid("ice-ufrag must be 4 to 256 ice-chars"));
    }
    if params.ice_pwd.len() < 22 || !is_ice_chars(params.ice_pwd) {
        return Err(invalid("ice-pwd must be 22 to 256 ice-chars"));
    }
    if !is_fingerprint(params.fingerprint_sha256) {
        return Err(invalid("fingerprint must be 32 colon-separated hex bytes"));
    }
    let candidates = candidate_lines(params.candidates, params.relay)?;
    if params.media.len() != offer.media.len() {
        return Err(invalid(format!(
            "{} answer media for {} offered m-lines",
            params.media.len(),
            offer.media.len()
        )));
    }
    let mut bundle = Vec::new();
    let mut accepted = 0;
    for (index, (a, o)) in params.media.iter().zip(&offer.media).enumerate() {
        if a.mid != o.mid {
            return Err(invalid(format!(
                "answer media {index} has mid {:?}, the offer {:?}",
                excerpt(&a.mid),
                excerpt(&o.mid)
            )));
        }
        match &a.answer {
            MediaAnswer::Accept(acc) => {
                check_accepted(o, acc)?;
                accepted += 1;
            }
            MediaAnswer::Inactive if !o.is_usable() => {
                return Err(invalid(format!(
                    "m-line {:?} cannot be bundled as inactive (not usable audio/video)",
                    excerpt(&o.mid)
                )));
            }
            MediaAnswer::Inactive | MediaAnswer::Reject => {}
        }
        if a.is_bundled() {
            bundle.push(a.mid.as_str());
        }
    }
    if accepted == 0 {
        return Err(SdpError::NoUsableMedia);
    }
    // The offer's group order (the tagged m-line first), then any bundled m-line it lacks (an
    // offer with a single m-line may have no group at all).
    let group_position = |mid: &str| {
        offer
            .bundle_mids
            .iter()
            .position(|m| m == mid)
            .unwrap_or(usize::MAX)
    };
    bundle.sort_by_key(|mid| group_position(mid));

    let mut out = String::with_capacity(1024 + 1024 * bundle.len());
    let mut line = |s: &str| {
        out.push_str(s);
        out.push_str("\r\n");
    };
    line("v=0");
    line(&format!(
        "o=- {} 2 IN IP4 127.0.0.1",
        params.session_id & (i64::MAX as u64)
    ));
    line("s=-");
    line("t=0 0");
    line(&format!("a=group:BUNDLE {}", bundle.join(" ")));
    line("a=ice-lite");
    line("a=msid-semantic: WMS *");
    for (a, o) in params.media.iter().zip(&offer.media) {
        match &a.answer {
            MediaAnswer::Reject => write_rejected(&mut line, params, o),
            MediaAnswer::Inactive => write_inactive(&mut line, params, o, &candidates),
            MediaAnswer::Accept(acc) => write_accepted(&mut line, params, o, acc, &candidates),
        }
    }
    Ok(out)
}

/// Validates an accepted m-line against what was offered.
fn check_accepted(o: &OfferedMedia, acc: &AcceptedMedia) -> Result<(), SdpError> {
    let mid = excerpt(&o.mid);
    if !o.is_usable() || !is_token(&o.proto, 64) {
        return Err(invalid(format!(
            "m-line {mid:?} cannot be accepted (not usable audio/video)"
        )));
    }
    let c = &acc.codec;
    let Some(offered) = o.codecs.iter().find(|x| x.payload_type == c.payload_type) else {
        return Err(invalid(format!(
            "payload type {} was not offered on {mid:?}",
            c.payload_type
        )));
    };
    if !offered.name.eq_ignore_ascii_case(&c.name) || offered.clock_rate != c.clock_rate {
        return Err(invalid(format!(
            "payload type {} on {mid:?} is not {}",
            c.payload_type,
            excerpt(&c.name)
        )));
    }
    if !is_token(&c.name, 64) || c.fmtp.len() > 4096 || c.fmtp.chars().any(char::is_control) {
        return Err(invalid(format!(
            "codec on {mid:?} has an unwritable name or fmtp"
        )));
    }
    if acc.with_rtx
        && c.rtx_payload_type
            .is_some_and(|pt| pt >= 128 || pt == c.payload_type)
    {
        return Err(invalid(format!("bad rtx payload type on {mid:?}")));
    }
    for (id, uri) in &acc.extmaps {
        if !o.extmaps.iter().any(|(i, u)| i == id && u == uri) {
            return Err(invalid(format!("extmap {id} on {mid:?} was not offered")));
        }
    }
    if let Some(s) = acc.send.as_ref().filter(|_| acc.direction.sends()) {
        let ok = [&s.cname, &s.stream_id, &s.track_id]
            .iter()
            .all(|v| is_token(v, 256));
        if !ok {
            return Err(invalid(format!(
                "cname/stream/track id on {mid:?} must be tokens"
            )));
        }
        if s.rtx_ssrc == Some(s.ssrc) {
            return Err(invalid(format!(
                "rtx ssrc equals the primary ssrc on {mid:?}"
            )));
        }
    }
    Ok(())
}

/// The offer's media token and proto when they are plain tokens (else defaults), and the
/// offer's first codec, which a rejected or inactive m-line echoes with its rtpmap: aiortc and
/// GStreamer want one they know even there.
fn echoed(o: &OfferedMedia) -> (&str, &str, Option<&OfferedCodec>, String) {
    let media = if is_token(&o.media_type, 32) {
        o.media_type.as_str()
    } else {
        "audio"
    };
    let proto = if is_token(&o.proto, 64) {
        o.proto.as_str()
    } else {
        "UDP/TLS/RTP/SAVPF"
    };
    let codec = o.codecs.first().filter(|c| is_token(&c.name, 32));
    let fmt = match codec {
        Some(c) => c.payload_type.to_string(),
        None => o
            .formats
            .first()
            .filter(|f| is_token(f, 64))
            .map_or("0", String::as_str)
            .to_owned(),
    };
    (media, proto, codec, fmt)
}

/// Our ICE and DTLS parameters and the mid: every m-line carries them.
fn write_transport(line: &mut impl FnMut(&str), p: &AnswerParams, mid: &str) {
    line(&format!("a=ice-ufrag:{}", p.ice_ufrag));
    line(&format!("a=ice-pwd:{}", p.ice_pwd));
    line(&format!("a=fingerprint:sha-256 {}", p.fingerprint_sha256));
    line("a=setup:passive");
    if !mid.is_empty() {
        line(&format!("a=mid:{mid}"));
    }
}

fn write_rtpmap(line: &mut impl FnMut(&str), c: &OfferedCodec) {
    match c.channels {
        Some(ch) => line(&format!(
            "a=rtpmap:{} {}/{}/{ch}",
            c.payload_type, c.name, c.clock_rate
        )),
        None => line(&format!(
            "a=rtpmap:{} {}/{}",
            c.payload_type, c.name, c.clock_rate
        )),
    }
}

/// A rejected m-line: port 0, its mid, and (though browsers ignore them there) our ICE and DTLS
/// parameters, because some stacks (aiortc) refuse an answer with any m-line lacking them.
fn write_rejected(line: &mut impl FnMut(&str), p: &AnswerParams, o: &OfferedMedia) {
    let (media, proto, codec, fmt) = echoed(o);
    line(&format!("m={media} 0 {proto} {fmt}"));
    line("c=IN IP4 0.0.0.0");
    write_transport(line, p, &o.mid);
    if !matches!(o.kind, super::MediaKind::Audio | super::MediaKind::Video) {
        return;
    }
    line("a=inactive");
    line("a=rtcp-mux");
    if let Some(c) = codec {
        write_rtpmap(line, c);
    }
}

/// An inactive bundled m-line: port 9 and the full transport, with candidates, because it may be
/// the tagged m-line whose transport the whole bundle uses.
fn write_inactive(
    line: &mut impl FnMut(&str),
    p: &AnswerParams,
    o: &OfferedMedia,
    candidates: &[String],
) {
    let (media, proto, codec, fmt) = echoed(o);
    line(&format!("m={media} 9 {proto} {fmt}"));
    line("c=IN IP4 0.0.0.0");
    line("a=rtcp:9 IN IP4 0.0.0.0");
    write_transport(line, p, &o.mid);
    line("a=inactive");
    line("a=rtcp-mux");
    if o.rtcp_rsize {
        line("a=rtcp-rsize");
    }
    if let Some(c) = codec {
        write_rtpmap(line, c);
    }
    write_candidates(line, candidates);
}

fn write_candidates(line: &mut impl FnMut(&str), candidates: &[String]) {
    for cand in candidates {
        line(&format!("a=candidate:{cand}"));
    }
    line("a=end-of-candidates");
}

fn write_accepted(
    line: &mut impl FnMut(&str),
    p: &AnswerParams<'_>,
    o: &OfferedMedia,
    acc: &AcceptedMedia,
    candidates: &[String],
) {
    let c = &acc.codec;
    let rtx = c.rtx_payload_type.filter(|_| acc.with_rtx);
    let mut m_line = format!("m={} 9 {} {}", o.media_type, o.proto, c.payload_type);
    if let Some(rtx) = rtx {
        let _ = write!(m_line, " {rtx}");
    }
    line(&m_line);
    line("c=IN IP4 0.0.0.0");
    line("a=rtcp:9 IN IP4 0.0.0.0");
    write_transport(line, p, &o.mid);
    for (id, uri) in &acc.extmaps {
        line(&format!("a=extmap:{id} {uri}"));
    }
    line(&format!("a={}", acc.direction));
    line("a=rtcp-mux");
    if o.rtcp_rsize {
        line("a=rtcp-rsize");
    }
    let pt = c.payload_type;
    write_rtpmap(line, c);
    if !c.fmtp.trim().is_empty() {
        line(&format!("a=fmtp:{pt} {}", c.fmtp.trim()));
    }
    for fb in SUPPORTED_RTCP_FB {
        if c.rtcp_fb.iter().any(|v| v == fb) {
            line(&format!("a=rtcp-fb:{pt} {fb}"));
        }
    }
    if let Some(rtx) = rtx {
        line(&format!("a=rtpmap:{rtx} rtx/{}", c.clock_rate));
        line(&format!("a=fmtp:{rtx} apt={pt}"));
    }
    if let Some(s) = acc.send.as_ref().filter(|_| acc.direction.sends()) {
        let msid = format!("{} {}", s.stream_id, s.track_id);
        line(&format!("a=msid:{msid}"));
        let rtx_ssrc = s.rtx_ssrc.filter(|_| rtx.is_some());
        if let Some(r) = rtx_ssrc {
            line(&format!("a=ssrc-group:FID {} {r}", s.ssrc));
        }
        for ssrc in std::iter::once(s.ssrc).chain(rtx_ssrc) {
            line(&format!("a=ssrc:{ssrc} cname:{}", s.cname));
            line(&format!("a=ssrc:{ssrc} msid:{msid}"));
        }
    }
    write_candidates(line, candidates);
}

/// `AB:CD:...`, 32 bytes.
fn is_fingerprint(s: &str) -> bool {
    let mut n = 0;
    for b in s.split(':') {
        n += 1;
        if b.len() != 2 || !b.bytes().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
    }
    n == 32
}

/// Our TURN allocation as an ICE candidate: the relayed address peers send to, and the
/// address the TURN server sees us at (`raddr`/`rport`; unknown is written `0.0.0.0 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayCandidate {
    pub relayed: SocketAddr,
    pub mapped: Option<SocketAddr>,
}

/// The candidate values (after `candidate:`) for our host addresses, then our relay.
///
/// Foundation: a hash of the IP address, since host candidates with the same base address
/// share a foundation (RFC 8445 section 5.1.1.3). Priority: host type preference 126, local
/// preference 65535 falling by one per candidate so the given order is our preference,
/// component 1 (RFC 8445 section 5.1.2.1). The relay candidate has type preference 0, so a
/// client that reaches a host candidate uses it and the relay only when nothing else works.
pub(crate) fn candidate_lines(
    addrs: &[SocketAddr],
    relay: Option<RelayCandidate>,
) -> Result<Vec<String>, SdpError> {
    let mut out = Vec::new();
    for addr in addrs
        .iter()
        .filter(|a| !a.ip().is_unspecified() && a.port() != 0)
    {
        let local_pref = 65_535u32.saturating_sub(u32::try_from(out.len()).unwrap_or(u32::MAX));
        let priority = (126u32 << 24) | (local_pref << 8) | 255;
        out.push(format!(
            "{} 1 udp {priority} {} {} typ host",
            foundation(addr),
            addr.ip(),
            addr.port()
        ));
    }
    if let Some(relay) = relay.filter(|r| !r.relayed.ip().is_unspecified() && r.relayed.port() != 0)
    {
        let priority = (65_535u32 << 8) | 255;
        let (raddr, rport) = relay.mapped.map_or(("0.0.0.0".to_owned(), 0), |m| {
            (m.ip().to_string(), m.port())
        });
        out.push(format!(
            "{} 1 udp {priority} {} {} typ relay raddr {raddr} rport {rport}",
            // Another foundation than any host candidate's: a different type and base.
            foundation(&relay.relayed).wrapping_add(1),
            relay.relayed.ip(),
            relay.relayed.port()
        ));
    }
    if out.is_empty() {
        return Err(SdpError::NoCandidates);
    }
    Ok(out)
}

/// FNV-1a of the address bytes, as decimal (foundations are 1 to 32 ice-chars).
fn foundation(addr: &SocketAddr) -> u32 {
    let bytes: Vec<u8> = match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
        std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}
