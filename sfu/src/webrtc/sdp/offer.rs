//! Offer parsing: `rtc-sdp` tokenises, this file interprets the WebRTC attributes.

use std::collections::{BTreeSet, HashMap};
use std::io::Cursor;
use std::net::SocketAddr;

use rtc_sdp::SessionDescription;
use rtc_sdp::description::common::Attribute;

use super::{
    Direction, DtlsSetup, MAX_MEDIA_SECTIONS, MAX_SDP_BYTES, MediaKind, Offer, OfferedCodec,
    OfferedMedia, SdpError, excerpt, is_ice_chars, is_token,
};

/// Longest mid accepted. RFC 8843 does not bound it, but the RTP `sdes:mid` header extension
/// carries at most 16 bytes, so anything much longer is not a WebRTC client.
const MAX_MID_LEN: usize = 32;
/// Cap on `a=rtcp-fb` values kept per codec (`a=rtcp-fb:*` lines repeat for every codec).
const MAX_RTCP_FB_PER_CODEC: usize = 16;

/// Parses a WHIP/WHEP offer and checks it is something the server can answer.
///
/// Fails on unparseable SDP, more than [`MAX_MEDIA_SECTIONS`] m-lines, no usable audio/video
/// m-line, missing mids, ICE credentials or sha-256 fingerprint on an active audio/video m-line,
/// `a=setup:passive`, missing `a=rtcp-mux`, and several active m-lines without BUNDLE.
/// Application and other m-lines are parsed but not validated: the answer rejects them.
pub fn parse_offer(sdp: &str) -> Result<Offer, SdpError> {
    if sdp.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge {
            len: sdp.len(),
            limit: MAX_SDP_BYTES,
        });
    }
    // Count m-lines before handing the text to the parser, so a body of thousands of tiny
    // m-lines is refused cheaply.
    let m_lines = sdp
        .split('\n')
        .filter(|l| l.trim_start_matches('\r').starts_with("m="))
        .count();
    if m_lines > MAX_MEDIA_SECTIONS {
        return Err(SdpError::TooManyMedia {
            count: m_lines,
            limit: MAX_MEDIA_SECTIONS,
        });
    }
    let desc = SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()))
        .map_err(|e| SdpError::Unparseable(excerpt(&e.to_string())))?;
    if desc.media_descriptions.len() > MAX_MEDIA_SECTIONS {
        return Err(SdpError::TooManyMedia {
            count: desc.media_descriptions.len(),
            limit: MAX_MEDIA_SECTIONS,
        });
    }

    let session = Transport::collect(&desc.attributes);
    let session_direction = last_direction(&desc.attributes).unwrap_or_default();
    let bundle_mids: Vec<String> = desc
        .attributes
        .iter()
        .filter(|a| a.key == "group")
        .filter_map(|a| a.value.as_deref())
        .map(str::split_whitespace)
        .find_map(|mut tokens| {
            (tokens.next() == Some("BUNDLE")).then(|| tokens.map(str::to_owned).collect())
        })
        .unwrap_or_default();
    let mut ice_trickle = has_trickle(&desc.attributes);
    let mut candidates: Vec<SocketAddr> = Vec::new();

    let mut media = Vec::with_capacity(desc.media_descriptions.len());
    let mut transports = Vec::with_capacity(desc.media_descriptions.len());
    for (index, md) in desc.media_descriptions.iter().enumerate() {
        let attrs = &md.attributes;
        ice_trickle |= has_trickle(attrs);
        for value in attrs
            .iter()
            .filter(|a| a.key == "candidate")
            .filter_map(|a| a.value.as_deref())
        {
            if let Some((addr, _)) = super::parse_candidate_addr(value)
                && !candidates.contains(&addr)
                && candidates.len() < MAX_OFFER_CANDIDATES
            {
                candidates.push(addr);
            }
        }
        let kind = MediaKind::from_sdp(&md.media_name.media);
        let bundle_only = attrs.iter().any(|a| a.key == "bundle-only");
        let rejected = md.media_name.port.value == 0 && !bundle_only;
        let mid = attr_value(attrs, "mid").unwrap_or("").trim().to_owned();
        if !mid.is_empty() && !is_token(&mid, MAX_MID_LEN) {
            return Err(SdpError::BadMid { index });
        }
        let mut formats: Vec<String> = Vec::new();
        for f in &md.media_name.formats {
            if formats.len() >= 128 {
                break;
            }
            if !formats.contains(f) {
                formats.push(f.clone());
            }
        }
        let (ssrcs, rtx_ssrcs, ssrc_msid) = parse_ssrcs(attrs);
        let msid = attr_value(attrs, "msid")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .or(ssrc_msid);
        media.push(OfferedMedia {
            mid,
            kind,
            media_type: md.media_name.media.clone(),
            proto: md.media_name.protos.join("/"),
            codecs: parse_codecs(kind, &formats, attrs),
            formats,
            rejected,
            direction: last_direction(attrs).unwrap_or(session_direction),
            rtcp_mux: attrs.iter().any(|a| a.key == "rtcp-mux"),
            rtcp_rsize: attrs.iter().any(|a| a.key == "rtcp-rsize"),
            extmaps: parse_extmaps(attrs),
            ssrcs,
            rtx_ssrcs,
            msid,
        });
        transports.push(Transport::collect(attrs).or(&session));
    }

    let (ice_ufrag, ice_pwd, fingerprint_sha256, setup) =
        validate(&media, &transports, &bundle_mids)?;
    Ok(Offer {
        ice_ufrag,
        ice_pwd,
        fingerprint_sha256,
        setup,
        ice_trickle,
        bundle_mids,
        media,
        candidates,
    })
}

/// Candidates kept from one offer: a browser offers a handful per network interface; the cap
/// keeps an offer from making r58 ask its TURN server for hundreds of permissions.
const MAX_OFFER_CANDIDATES: usize = 32;

/// Checks mids, rtcp-mux, BUNDLE and the shared transport of the usable m-lines; returns the
/// transport (ufrag, pwd, fingerprint, setup).
fn validate(
    media: &[OfferedMedia],
    transports: &[Transport<'_>],
    bundle_mids: &[String],
) -> Result<(String, String, String, DtlsSetup), SdpError> {
    let mut seen = BTreeSet::new();
    for (index, m) in media.iter().enumerate() {
        if m.mid.is_empty() {
            if m.is_usable() {
                return Err(SdpError::BadMid { index });
            }
        } else if !seen.insert(m.mid.as_str()) {
            return Err(SdpError::DuplicateMid { mid: m.mid.clone() });
        }
    }
    let usable: Vec<(&OfferedMedia, &Transport<'_>)> = media
        .iter()
        .zip(transports)
        .filter(|(m, _)| m.is_usable())
        .collect();
    if usable.is_empty() {
        return Err(SdpError::NoUsableMedia);
    }
    let mut shared: Option<(&str, &str, String)> = None;
    let mut setup = DtlsSetup::Active;
    for &(m, t) in &usable {
        let mid = || m.mid.clone();
        if !m.rtcp_mux {
            return Err(SdpError::RtcpMuxMissing { mid: mid() });
        }
        if usable.len() > 1 && !bundle_mids.contains(&m.mid) {
            return Err(SdpError::BundleMissing { mid: mid() });
        }
        let (Some(ufrag), Some(pwd)) = (t.ufrag, t.pwd) else {
            return Err(SdpError::MissingIceCredentials { mid: mid() });
        };
        if !is_ice_chars(ufrag) || !is_ice_chars(pwd) {
            return Err(SdpError::MissingIceCredentials { mid: mid() });
        }
        let Some(fp) = t.fingerprints.iter().find_map(|v| sha256_fingerprint(v)) else {
            return Err(SdpError::NoSha256Fingerprint { mid: mid() });
        };
        setup = match t.setup {
            None => DtlsSetup::Active,
            Some(s) if s.eq_ignore_ascii_case("actpass") => DtlsSetup::ActPass,
            Some(s) if s.eq_ignore_ascii_case("active") => DtlsSetup::Active,
            Some(s) if s.eq_ignore_ascii_case("passive") => return Err(SdpError::SetupPassive),
            Some(s) => return Err(SdpError::InvalidSetup(excerpt(s))),
        };
        match &shared {
            None => shared = Some((ufrag, pwd, fp)),
            Some((u, p, f)) => {
                if *u != ufrag || *p != pwd {
                    return Err(SdpError::InconsistentIceCredentials { mid: mid() });
                }
                if *f != fp {
                    return Err(SdpError::InconsistentFingerprint { mid: mid() });
                }
            }
        }
    }
    match shared {
        Some((u, p, f)) => Ok((u.to_owned(), p.to_owned(), f, setup)),
        None => Err(SdpError::NoUsableMedia),
    }
}

/// Transport attributes found at one level (session or media).
#[derive(Clone, Default)]
struct Transport<'a> {
    ufrag: Option<&'a str>,
    pwd: Option<&'a str>,
    fingerprints: Vec<&'a str>,
    setup: Option<&'a str>,
}

impl<'a> Transport<'a> {
    fn collect(attrs: &'a [Attribute]) -> Self {
        let mut t = Self::default();
        for a in attrs {
            let Some(v) = a.value.as_deref() else {
                continue;
            };
            match a.key.as_str() {
                "ice-ufrag" if t.ufrag.is_none() => t.ufrag = Some(v.trim()),
                "ice-pwd" if t.pwd.is_none() => t.pwd = Some(v.trim()),
                "fingerprint" => t.fingerprints.push(v),
                "setup" if t.setup.is_none() => t.setup = Some(v.trim()),
                _ => {}
            }
        }
        t
    }

    /// Media-level values, falling back to the session level for those absent.
    fn or(mut self, session: &Transport<'a>) -> Self {
        self.ufrag = self.ufrag.or(session.ufrag);
        self.pwd = self.pwd.or(session.pwd);
        if self.fingerprints.is_empty() {
            self.fingerprints.clone_from(&session.fingerprints);
        }
        self.setup = self.setup.or(session.setup);
        self
    }
}

/// `sha-256 AB:CD:...` → lowercase `ab:cd:...`, if it is a well-formed 32-byte fingerprint.
fn sha256_fingerprint(value: &str) -> Option<String> {
    let mut parts = value.split_whitespace();
    let alg = parts.next()?;
    let hex = parts.next()?;
    if !alg.eq_ignore_ascii_case("sha-256") || parts.next().is_some() {
        return None;
    }
    let mut count = 0;
    for byte in hex.split(':') {
        count += 1;
        if byte.len() != 2 || !byte.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
    }
    (count == 32).then(|| hex.to_ascii_lowercase())
}

fn attr_value<'a>(attrs: &'a [Attribute], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_deref())
}

fn last_direction(attrs: &[Attribute]) -> Option<Direction> {
    attrs
        .iter()
        .filter(|a| a.value.is_none())
        .filter_map(|a| Direction::from_attr(&a.key))
        .next_back()
}

fn has_trickle(attrs: &[Attribute]) -> bool {
    attrs
        .iter()
        .filter(|a| a.key == "ice-options")
        .filter_map(|a| a.value.as_deref())
        .any(|v| v.split_whitespace().any(|o| o == "trickle"))
}

/// Splits `<pt> <rest>` (the value of rtpmap/fmtp/rtcp-fb). `pt` may be `*` (rtcp-fb only).
fn pt_and_rest(value: &str) -> Option<(&str, &str)> {
    let value = value.trim_start();
    match value.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((pt, rest)) => Some((pt, rest.trim())),
        None => Some((value, "")),
    }
}

fn parse_pt(s: &str) -> Option<u8> {
    s.parse::<u8>().ok().filter(|pt| *pt < 128)
}

/// `name/clock[/channels]`.
fn parse_rtpmap(rest: &str) -> Option<(String, u32, Option<u16>)> {
    let mut it = rest.split('/');
    let name = it.next()?.trim();
    let clock = it.next()?.trim().parse::<u32>().ok()?;
    let channels = match it.next() {
        Some(c) => Some(c.trim().parse::<u16>().ok()?),
        None => None,
    };
    if name.is_empty() || it.next().is_some() || !is_token(name, 64) {
        return None;
    }
    Some((name.to_owned(), clock, channels))
}

/// RFC 3551 static payload types WebRTC clients may list without an rtpmap.
fn static_audio_codec(pt: u8) -> Option<(&'static str, u32)> {
    match pt {
        0 => Some(("PCMU", 8000)),
        8 => Some(("PCMA", 8000)),
        9 => Some(("G722", 8000)),
        13 => Some(("CN", 8000)),
        _ => None,
    }
}

fn parse_codecs(kind: MediaKind, formats: &[String], attrs: &[Attribute]) -> Vec<OfferedCodec> {
    if !matches!(kind, MediaKind::Audio | MediaKind::Video) {
        return Vec::new();
    }
    let mut rtpmap: HashMap<u8, (String, u32, Option<u16>)> = HashMap::new();
    let mut fmtp: HashMap<u8, String> = HashMap::new();
    let mut fb: HashMap<u8, Vec<String>> = HashMap::new();
    let mut fb_all: Vec<String> = Vec::new();
    for a in attrs {
        let Some((pt, rest)) = a.value.as_deref().and_then(pt_and_rest) else {
            continue;
        };
        match a.key.as_str() {
            "rtpmap" => {
                if let (Some(pt), Some(map)) = (parse_pt(pt), parse_rtpmap(rest)) {
                    rtpmap.entry(pt).or_insert(map);
                }
            }
            "fmtp" => {
                if let Some(pt) = parse_pt(pt) {
                    fmtp.entry(pt).or_insert_with(|| rest.to_owned());
                }
            }
            "rtcp-fb" => {
                let value = rest.split_whitespace().collect::<Vec<_>>().join(" ");
                if value.is_empty() {
                    continue;
                }
                let list = if pt == "*" {
                    &mut fb_all
                } else if let Some(pt) = parse_pt(pt) {
                    fb.entry(pt).or_default()
                } else {
                    continue;
                };
                if list.len() < MAX_RTCP_FB_PER_CODEC && !list.contains(&value) {
                    list.push(value);
                }
            }
            _ => {}
        }
    }

    let mut codecs = Vec::new();
    let mut rtx: Vec<(u8, u8)> = Vec::new(); // (rtx pt, apt)
    for pt in formats.iter().filter_map(|f| parse_pt(f)) {
        let (name, clock_rate, channels) = match rtpmap.get(&pt) {
            Some(m) => m.clone(),
            None => match static_audio_codec(pt).filter(|_| kind == MediaKind::Audio) {
                Some((n, c)) => (n.to_owned(), c, None),
                None => continue,
            },
        };
        let fmtp = fmtp.get(&pt).cloned().unwrap_or_default();
        if name.eq_ignore_ascii_case("rtx") {
            if let Some(apt) = crate::media::fmtp_param(&fmtp, "apt").and_then(parse_pt) {
                rtx.push((pt, apt));
            }
            continue;
        }
        let mut rtcp_fb = fb.remove(&pt).unwrap_or_default();
        for v in &fb_all {
            if rtcp_fb.len() < MAX_RTCP_FB_PER_CODEC && !rtcp_fb.contains(v) {
                rtcp_fb.push(v.clone());
            }
        }
        codecs.push(OfferedCodec {
            payload_type: pt,
            name,
            clock_rate,
            channels,
            fmtp,
            rtcp_fb,
            rtx_payload_type: None,
        });
    }
    for (rtx_pt, apt) in rtx {
        if let Some(c) = codecs
            .iter_mut()
            .find(|c| c.payload_type == apt && c.rtx_payload_type.is_none())
        {
            c.rtx_payload_type = Some(rtx_pt);
        }
    }
    codecs
}

/// `a=extmap:<id>[/<direction>] <uri> [<attributes>]`.
fn parse_extmaps(attrs: &[Attribute]) -> Vec<(u8, String)> {
    let mut out: Vec<(u8, String)> = Vec::new();
    for v in attrs
        .iter()
        .filter(|a| a.key == "extmap")
        .filter_map(|a| a.value.as_deref())
    {
        let mut it = v.split_whitespace();
        let (Some(id), Some(uri)) = (it.next(), it.next()) else {
            continue;
        };
        let id = id.split('/').next().unwrap_or(id);
        let Ok(id) = id.parse::<u8>() else {
            continue;
        };
        // 0 is reserved; 15 is reserved in the one-byte form but valid with two-byte headers.
        if id == 0 || !is_token(uri, 256) || out.iter().any(|(i, _)| *i == id) {
            continue;
        }
        out.push((id, uri.to_owned()));
    }
    out
}

/// Primary SSRCs, `(primary, rtx)` FID pairs and the first primary SSRC's `msid:` value.
fn parse_ssrcs(attrs: &[Attribute]) -> (Vec<u32>, Vec<(u32, u32)>, Option<String>) {
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    let mut secondary = BTreeSet::new();
    for v in attrs
        .iter()
        .filter(|a| a.key == "ssrc-group")
        .filter_map(|a| a.value.as_deref())
    {
        let mut it = v.split_whitespace();
        let semantics = it.next().unwrap_or("");
        let ssrcs: Vec<u32> = it.filter_map(|s| s.parse().ok()).collect();
        match (semantics, ssrcs.as_slice()) {
            ("FID", [primary, repair]) => {
                if !pairs.contains(&(*primary, *repair)) {
                    pairs.push((*primary, *repair));
                }
                secondary.insert(*repair);
            }
            ("FEC-FR" | "FEC", [_, repair, ..]) => {
                secondary.insert(*repair);
            }
            _ => {}
        }
    }
    let mut ssrcs: Vec<u32> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut msid = None;
    for v in attrs
        .iter()
        .filter(|a| a.key == "ssrc")
        .filter_map(|a| a.value.as_deref())
    {
        let (ssrc, rest) = v.split_once(' ').unwrap_or((v, ""));
        let Ok(ssrc) = ssrc.trim().parse::<u32>() else {
            continue;
        };
        if secondary.contains(&ssrc) {
            continue;
        }
        if seen.insert(ssrc) {
            ssrcs.push(ssrc);
        }
        if msid.is_none()
            && ssrcs.first() == Some(&ssrc)
            && let Some(m) = rest.trim().strip_prefix("msid:")
            && !m.trim().is_empty()
        {
            msid = Some(m.trim().to_owned());
        }
    }
    (ssrcs, pairs, msid)
}
