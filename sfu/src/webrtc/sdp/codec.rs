//! Codec choice for publishers (what we ingest) and viewers (what can carry a stream).

use super::{CodecSpec, MediaKind, OfferedCodec, OfferedMedia};

/// The value of `key` in an fmtp parameter list (`a=b;c=d`), key compared case-insensitively.
/// Works for any codec's fmtp (`apt=` of RTX too), not only H.264.
pub fn h264_fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|param| {
        let (k, v) = param.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// The three bytes of an H.264 `profile-level-id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct H264Profile {
    /// `profile_idc`: 0x42 baseline, 0x4d main, 0x64 high.
    idc: u8,
    /// `profile-iop`: the constraint_set0..5 flags in the top six bits.
    iop: u8,
}

/// Constraint flag bits of `profile-iop` (the low two bits are reserved).
const IOP_CONSTRAINT_MASK: u8 = 0xfc;
/// `constraint_set1_flag`: with profile_idc 0x42 it marks constrained baseline.
const IOP_CONSTRAINT_SET1: u8 = 0x40;

/// Parses `profile-level-id`; absent means `42000a` (RFC 6184 section 8.1); malformed is None.
fn h264_profile(fmtp: &str) -> Option<H264Profile> {
    let Some(pli) = h264_fmtp_param(fmtp, "profile-level-id") else {
        return Some(H264Profile { idc: 0x42, iop: 0 });
    };
    if pli.len() != 6 || !pli.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| {
        pli.get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
    };
    // The third byte (level) is validated but unused: see `h264_compatible`.
    byte(4)?;
    Some(H264Profile {
        idc: byte(0)?,
        iop: byte(2)?,
    })
}

/// `packetization-mode`; absent means 0. None if malformed.
fn packetization_mode(fmtp: &str) -> Option<u8> {
    match h264_fmtp_param(fmtp, "packetization-mode") {
        None => Some(0),
        Some(v) => v.parse().ok(),
    }
}

fn is_h264(c: &OfferedCodec) -> bool {
    c.name.eq_ignore_ascii_case("H264") && c.clock_rate == 90_000
}

/// Preference of an H.264 codec for ingest; lower is better. None when not acceptable
/// (we depacketize only packetization-mode 1: FU-A and STAP-A).
fn h264_publish_rank(c: &OfferedCodec) -> Option<(u8, u8)> {
    if !is_h264(c) || packetization_mode(&c.fmtp) != Some(1) {
        return None;
    }
    Some(match h264_profile(&c.fmtp) {
        Some(p) => {
            let profile_rank = match p.idc {
                0x42 => 0,
                0x4d => 1,
                0x64 => 2,
                _ => 3,
            };
            // Among baseline entries, constrained baseline (42e0xx/42c0xx) first.
            let constrained_rank = u8::from(p.idc == 0x42 && p.iop & IOP_CONSTRAINT_SET1 == 0);
            (profile_rank, constrained_rank)
        }
        None => (4, 0),
    })
}

/// The codec to accept from a publisher on this m-line, if any.
///
/// Video: H.264 with `packetization-mode=1` (constrained baseline, then other baseline, then
/// main, then high; offer order breaks ties), else VP8. Audio: opus/48000/2. Nothing else.
pub fn choose_publish_codec(m: &OfferedMedia) -> Option<&OfferedCodec> {
    if !m.is_usable() {
        return None;
    }
    match m.kind {
        MediaKind::Video => m
            .codecs
            .iter()
            .enumerate()
            .filter_map(|(i, c)| h264_publish_rank(c).map(|r| (r, i, c)))
            .min_by_key(|(r, i, _)| (*r, *i))
            .map(|(_, _, c)| c)
            .or_else(|| {
                m.codecs
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case("VP8") && c.clock_rate == 90_000)
            }),
        MediaKind::Audio => m.codecs.iter().find(|c| {
            c.name.eq_ignore_ascii_case("opus") && c.clock_rate == 48_000 && c.channels == Some(2)
        }),
        MediaKind::Application | MediaKind::Other => None,
    }
}

/// Whether a viewer offering `offered` can decode an H.264 stream described by `want`.
fn h264_compatible(offered: &str, want: &str) -> bool {
    let (Some(pm_offered), Some(pm_want)) = (packetization_mode(offered), packetization_mode(want))
    else {
        return false;
    };
    if pm_offered != pm_want {
        return false;
    }
    let (Some(viewer), Some(stream)) = (h264_profile(offered), h264_profile(want)) else {
        return false;
    };
    if viewer.idc != stream.idc {
        return false;
    }
    // Baseline: 42e0xx (constrained), 42c0xx and 4200xx are interchangeable in practice —
    // WebRTC encoders emit constrained baseline under all three labels.
    if stream.idc == 0x42 {
        return true;
    }
    // Other profiles: every constraint the viewer's decoder requires must hold for the stream
    // (a constrained-high decoder cannot take plain high; a high decoder takes either).
    //
    // The level (third byte) is ignored on purpose: browsers and hardware decoders decode any
    // level of a profile they support, and the publisher's level often differs from what the
    // viewer offers (42e01f vs 42e034). Enforcing it would refuse working combinations.
    let required = viewer.iop & IOP_CONSTRAINT_MASK;
    required & !stream.iop == 0
}

/// The viewer's codec on this m-line that can carry a stream encoded as `want`, if any.
///
/// Same name (case-insensitive), clock rate and channel count (absent counts as 1); for H.264
/// also the same packetization mode and a compatible profile (level may differ). The first
/// match in the viewer's order wins.
pub fn choose_play_codec<'a>(m: &'a OfferedMedia, want: &CodecSpec) -> Option<&'a OfferedCodec> {
    if !m.is_usable() {
        return None;
    }
    m.codecs.iter().find(|c| {
        c.name.eq_ignore_ascii_case(&want.name)
            && c.clock_rate == want.clock_rate
            && c.channels.unwrap_or(1) == want.channels.unwrap_or(1)
            && (!want.name.eq_ignore_ascii_case("H264") || h264_compatible(&c.fmtp, &want.fmtp))
    })
}
