//! Tests of the SDP layer against offers as real clients write them (`sfu/testdata/sdp/`).

mod answer;
mod codec;
mod fuzz;
mod offer;
mod trickle;

use super::*;

pub(super) const CHROME_WHIP: &str = include_str!("../../../../testdata/sdp/chrome_whip.sdp");
pub(super) const CHROME_WHEP: &str = include_str!("../../../../testdata/sdp/chrome_whep.sdp");
pub(super) const FIREFOX_WHIP: &str = include_str!("../../../../testdata/sdp/firefox_whip.sdp");
pub(super) const AIORTC: &str = include_str!("../../../../testdata/sdp/aiortc_offer.sdp");
pub(super) const GSTREAMER: &str = include_str!("../../../../testdata/sdp/gstreamer_whip.sdp");

/// Every test offer, by name.
pub(super) const ALL: [(&str, &str); 5] = [
    ("chrome_whip", CHROME_WHIP),
    ("chrome_whep", CHROME_WHEP),
    ("firefox_whip", FIREFOX_WHIP),
    ("aiortc", AIORTC),
    ("gstreamer", GSTREAMER),
];

/// The files are stored with LF; clients send CRLF.
pub(super) fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Parses a test offer (as CRLF), panicking with the error on failure.
pub(super) fn offer(s: &str) -> Offer {
    match parse_offer(&crlf(s)) {
        Ok(o) => o,
        Err(e) => panic!("offer does not parse: {e}"),
    }
}

pub(super) fn media<'a>(o: &'a Offer, mid: &str) -> &'a OfferedMedia {
    o.media
        .iter()
        .find(|m| m.mid == mid)
        .unwrap_or_else(|| panic!("no mid {mid}"))
}

pub(super) fn codec(m: &OfferedMedia, pt: u8) -> &OfferedCodec {
    m.codecs
        .iter()
        .find(|c| c.payload_type == pt)
        .unwrap_or_else(|| panic!("no pt {pt}"))
}

/// Replaces `from` by `to` in a test offer and parses it (as CRLF).
pub(super) fn parse_edited(s: &str, from: &str, to: &str) -> Result<Offer, SdpError> {
    assert!(s.contains(from), "test edit target {from:?} not found");
    parse_offer(&crlf(&s.replace(from, to)))
}
