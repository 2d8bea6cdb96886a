//! Trickle ICE fragments (RFC 8840 `application/trickle-ice-sdpfrag`), as carried by WHIP and
//! WHEP `PATCH` requests (RFC 9725 section 4.3), and the fragment answering an ICE restart.

use std::net::{IpAddr, SocketAddr};

use super::answer::{RelayCandidate, candidate_lines};
use super::{MAX_SDP_BYTES, MediaKind, SdpError, excerpt, is_ice_chars, is_token};

/// A parsed trickle-ice-sdpfrag body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SdpFrag {
    /// `a=ice-ufrag`, if present. A different value from the session's means an ICE restart.
    pub ice_ufrag: Option<String>,
    /// `a=ice-pwd`, if present.
    pub ice_pwd: Option<String>,
    /// `(mid of the enclosing m= section, candidate value after "candidate:")`.
    pub candidates: Vec<(Option<String>, String)>,
    /// `a=end-of-candidates` was present.
    pub end_of_candidates: bool,
}

/// One bundled m-line, for the ICE restart fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentMedia<'a> {
    /// The m-line's mid.
    pub mid: &'a str,
    /// Its kind.
    pub kind: MediaKind,
    /// The payload type answered on it.
    pub payload_type: u8,
}

fn frag_err(msg: impl Into<String>) -> SdpError {
    SdpError::FragmentInvalid(msg.into())
}

/// Sets `slot` to `value`, refusing a different second value.
fn set_once(slot: &mut Option<String>, value: &str, what: &str) -> Result<(), SdpError> {
    let value = value.trim();
    if !is_ice_chars(value) {
        return Err(frag_err(format!("malformed {what}")));
    }
    match slot {
        Some(old) if old != value => Err(frag_err(format!("conflicting {what} values"))),
        Some(_) => Ok(()),
        None => {
            *slot = Some(value.to_owned());
            Ok(())
        }
    }
}

/// Parses a trickle-ice-sdpfrag body.
///
/// Accepts session-level `a=ice-ufrag`, `a=ice-pwd`, `a=ice-options`, `a=group:BUNDLE`, then
/// `m=` sections with `a=mid`, `a=candidate`, `a=end-of-candidates` (and media-level
/// ufrag/pwd, which must agree with the session's). Unknown `a=` lines are ignored; any line
/// that is not `a=`, `m=` or empty is an error. A candidate takes its section's mid even when
/// `a=mid` follows it.
pub fn parse_sdpfrag(body: &str) -> Result<SdpFrag, SdpError> {
    if body.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge {
            len: body.len(),
            limit: MAX_SDP_BYTES,
        });
    }
    let mut frag = SdpFrag::default();
    // Index into `frag.candidates` where the current m= section starts, and its mid.
    let mut section: Option<(usize, Option<String>)> = None;
    for (n, raw) in body.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with("m=") {
            section = Some((frag.candidates.len(), None));
            continue;
        }
        let Some(attr) = line.strip_prefix("a=") else {
            return Err(SdpError::FragmentBadLine { line: n + 1 });
        };
        let (key, value) = attr.split_once(':').unwrap_or((attr, ""));
        match key {
            "ice-ufrag" => set_once(&mut frag.ice_ufrag, value, "ice-ufrag")?,
            "ice-pwd" => set_once(&mut frag.ice_pwd, value, "ice-pwd")?,
            "end-of-candidates" => frag.end_of_candidates = true,
            "mid" => {
                let mid = value.trim();
                if !is_token(mid, 64) {
                    return Err(frag_err(format!("malformed a=mid on line {}", n + 1)));
                }
                let Some((start, slot)) = section.as_mut() else {
                    return Err(frag_err("a=mid outside an m= section"));
                };
                if slot.is_some() {
                    return Err(frag_err("two a=mid lines in one m= section"));
                }
                *slot = Some(mid.to_owned());
                for (m, _) in frag.candidates.iter_mut().skip(*start) {
                    *m = Some(mid.to_owned());
                }
            }
            "candidate" => {
                let value = value.trim();
                if value.is_empty() || value.chars().any(char::is_control) {
                    return Err(frag_err(format!("malformed a=candidate on line {}", n + 1)));
                }
                let mid = section.as_ref().and_then(|(_, mid)| mid.clone());
                frag.candidates.push((mid, value.to_owned()));
            }
            _ => {}
        }
    }
    Ok(frag)
}

/// The address and type (`host`, `srflx`, `prflx`, `relay`) of a UDP candidate.
///
/// `value` is the part after `candidate:` (a leading `candidate:` is tolerated). None for TCP
/// candidates, mDNS (`*.local`) addresses and anything malformed. Extensions after the type
/// (`raddr`, `rport`, `generation`, `ufrag`, `network-id`, ...) are ignored.
pub fn parse_candidate_addr(value: &str) -> Option<(SocketAddr, String)> {
    let value = value.trim();
    let value = value.strip_prefix("candidate:").unwrap_or(value);
    let mut it = value.split_ascii_whitespace();
    let foundation = it.next()?;
    let component = it.next()?;
    let transport = it.next()?;
    let priority = it.next()?;
    let addr = it.next()?;
    let port = it.next()?;
    if foundation.is_empty() || foundation.len() > 32 || it.next()? != "typ" {
        return None;
    }
    let typ = it.next()?;
    component.parse::<u16>().ok()?;
    priority.parse::<u32>().ok()?;
    if !transport.eq_ignore_ascii_case("udp") {
        return None;
    }
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    let ip: IpAddr = addr.parse().ok()?;
    let port: u16 = port.parse().ok()?;
    if !matches!(typ, "host" | "srflx" | "prflx" | "relay") {
        return None;
    }
    Some((SocketAddr::new(ip, port), typ.to_owned()))
}

/// The fragment a `200 OK` carries after an ICE restart `PATCH` (RFC 9725 section 4.3.2):
/// `a=ice-lite`, our new `a=ice-ufrag`/`a=ice-pwd`, `a=group:BUNDLE` with every bundled mid,
/// then an `m=` line for the first bundled mid (the BUNDLE tag) with `a=mid`, our candidates
/// and `a=end-of-candidates`. Lines end in CRLF.
pub fn build_restart_fragment(
    ice_ufrag: &str,
    ice_pwd: &str,
    bundle: &[FragmentMedia<'_>],
    candidates: &[SocketAddr],
    relay: Option<RelayCandidate>,
) -> Result<String, SdpError> {
    if ice_ufrag.len() < 4 || !is_ice_chars(ice_ufrag) {
        return Err(SdpError::InvalidAnswer(
            "ice-ufrag must be 4 to 256 ice-chars".into(),
        ));
    }
    if ice_pwd.len() < 22 || !is_ice_chars(ice_pwd) {
        return Err(SdpError::InvalidAnswer(
            "ice-pwd must be 22 to 256 ice-chars".into(),
        ));
    }
    let Some(first) = bundle.first() else {
        return Err(SdpError::InvalidAnswer(
            "restart fragment needs a bundled m-line".into(),
        ));
    };
    if let Some(bad) = bundle.iter().find(|m| !is_token(m.mid, 64)) {
        return Err(SdpError::InvalidAnswer(format!(
            "malformed mid {:?}",
            excerpt(bad.mid)
        )));
    }
    if first.payload_type >= 128 {
        return Err(SdpError::InvalidAnswer("payload type above 127".into()));
    }
    let cands = candidate_lines(candidates, relay)?;
    let mids: Vec<&str> = bundle.iter().map(|m| m.mid).collect();
    let mut lines = vec![
        "a=ice-lite".to_owned(),
        format!("a=ice-ufrag:{ice_ufrag}"),
        format!("a=ice-pwd:{ice_pwd}"),
        format!("a=group:BUNDLE {}", mids.join(" ")),
        format!(
            "m={} 9 UDP/TLS/RTP/SAVPF {}",
            first.kind.as_sdp(),
            first.payload_type
        ),
        format!("a=mid:{}", first.mid),
    ];
    lines.extend(cands.iter().map(|c| format!("a=candidate:{c}")));
    lines.push("a=end-of-candidates".to_owned());
    let mut out = lines.join("\r\n");
    out.push_str("\r\n");
    Ok(out)
}
