//! Codec choice for publishers (what we ingest) and viewers (what can carry a stream).

use super::{CodecSpec, MediaKind, OfferedCodec, OfferedMedia, excerpt};
use crate::media::fmtp_param;

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
    let Some(pli) = fmtp_param(fmtp, "profile-level-id") else {
        return Some(H264Profile { idc: 0x42, iop: 0 });
    };
    if pli.len() != 6 || !pli.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| {
        pli.get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
    };
    // The third byte (level) is validated but unused: see `h264_mismatch`.
    byte(4)?;
    Some(H264Profile {
        idc: byte(0)?,
        iop: byte(2)?,
    })
}

/// `packetization-mode`; absent means 0. None if malformed.
fn packetization_mode(fmtp: &str) -> Option<u8> {
    match fmtp_param(fmtp, "packetization-mode") {
        None => Some(0),
        Some(v) => v.parse().ok(),
    }
}

fn is_opus(c: &OfferedCodec) -> bool {
    c.name.eq_ignore_ascii_case("opus") && c.clock_rate == 48_000
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
/// main, then high; offer order breaks ties), else VP8. Audio: opus/48000/2 (or without the
/// channel count, which GStreamer's webrtcbin may leave out). Nothing else.
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
        MediaKind::Audio => m
            .codecs
            .iter()
            .find(|c| is_opus(c) && matches!(c.channels, None | Some(2))),
        MediaKind::Application | MediaKind::Other => None,
    }
}

/// Why a viewer offering H.264 with fmtp `offered` cannot decode a stream described by `want`;
/// None when it can.
fn h264_mismatch(offered: &str, want: &str) -> Option<String> {
    let Some(pm_offered) = packetization_mode(offered) else {
        return Some("its packetization-mode is malformed".into());
    };
    let pm_want = packetization_mode(want).unwrap_or(1);
    if pm_offered != pm_want {
        let absent = if fmtp_param(offered, "packetization-mode").is_none() {
            " (no packetization-mode given, which means 0)"
        } else {
            ""
        };
        return Some(format!(
            "it has packetization-mode={pm_offered}{absent}; the stream is sent with \
             packetization-mode={pm_want} (FU-A fragments), so offer packetization-mode={pm_want}"
        ));
    }
    let Some(viewer) = h264_profile(offered) else {
        return Some("its profile-level-id is malformed".into());
    };
    let Some(stream) = h264_profile(want) else {
        return Some("the stream's profile-level-id is malformed".into());
    };
    if viewer.idc != stream.idc {
        return Some(format!(
            "its profile is {} (profile_idc {:#04x}); the stream is {} (profile_idc {:#04x})",
            h264_profile_name(viewer.idc),
            viewer.idc,
            h264_profile_name(stream.idc),
            stream.idc
        ));
    }
    // Baseline: 42e0xx (constrained), 42c0xx and 4200xx are interchangeable in practice —
    // WebRTC encoders emit constrained baseline under all three labels.
    if stream.idc == 0x42 {
        return None;
    }
    // Other profiles: every constraint the viewer's decoder requires must hold for the stream
    // (a constrained-high decoder cannot take plain high; a high decoder takes either).
    //
    // The level (third byte) is ignored on purpose: browsers and hardware decoders decode any
    // level of a profile they support, and the publisher's level often differs from what the
    // viewer offers (42e01f vs 42e034). Enforcing it would refuse working combinations.
    let required = viewer.iop & IOP_CONSTRAINT_MASK;
    (required & !stream.iop != 0).then(|| {
        format!(
            "its decoder requires constraint flags {required:#04x} that the stream ({:#04x}) \
             does not set",
            stream.iop & IOP_CONSTRAINT_MASK
        )
    })
}

fn h264_profile_name(idc: u8) -> &'static str {
    match idc {
        0x42 => "baseline",
        0x4d => "main",
        0x58 => "extended",
        0x64 => "high",
        0x6e => "high 10",
        0x7a => "high 4:2:2",
        0xf4 => "high 4:4:4",
        _ => "another profile",
    }
}

/// Why a viewer's `c` cannot carry a stream encoded as `want`; None when it can.
fn play_mismatch(c: &OfferedCodec, want: &CodecSpec) -> Option<String> {
    if !c.name.eq_ignore_ascii_case(&want.name) {
        return Some(format!("it is not {}", want.name));
    }
    if c.clock_rate != want.clock_rate {
        return Some(format!(
            "its clock rate is {} Hz, the stream's {} Hz",
            c.clock_rate, want.clock_rate
        ));
    }
    let (offered, needed) = (c.channels.unwrap_or(1), want.channels.unwrap_or(1));
    // Opus's rtpmap always says 2 channels (RFC 7587 section 7) and the real count travels in
    // the packets, so any Opus decoder takes any Opus stream: GStreamer's webrtcbin writes
    // `OPUS/48000` without the count when its caps lack one.
    if offered != needed && !is_opus(c) {
        return Some(format!("it has {offered} channel(s), the stream {needed}"));
    }
    if want.name.eq_ignore_ascii_case("H264") {
        return h264_mismatch(&c.fmtp, &want.fmtp);
    }
    None
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
    m.codecs.iter().find(|c| play_mismatch(c, want).is_none())
}

/// Why no codec of the viewer's m-line `m` can carry a stream encoded as `want`: the stream's
/// codec, then each offered codec with its reason, one line for an HTTP 422 body.
pub fn play_refusal(m: &OfferedMedia, want: &CodecSpec) -> String {
    let mut stream = format!("{}/{}", want.name, want.clock_rate);
    if !want.fmtp.trim().is_empty() {
        stream.push_str(&format!(" ({})", excerpt(want.fmtp.trim())));
    }
    let offered: Vec<String> = m
        .codecs
        .iter()
        .take(MAX_CODECS_EXPLAINED)
        .map(|c| {
            let why = play_mismatch(c, want).unwrap_or_else(|| "compatible".into());
            format!("{} pt {}: {why}", codec_label(c), c.payload_type)
        })
        .collect();
    let offered = if offered.is_empty() {
        "no codec with an rtpmap".to_owned()
    } else {
        offered.join("; ")
    };
    format!(
        "the stream sends {stream}; m-line {:?} offers {offered}",
        excerpt(&m.mid)
    )
}

/// Why a publisher's m-line `m` carries nothing r58 ingests, one line for an HTTP 422 body.
pub fn publish_refusal(m: &OfferedMedia) -> String {
    let mid = excerpt(&m.mid);
    let wanted = match m.kind {
        MediaKind::Video => "H264/90000 with packetization-mode=1, or VP8/90000",
        MediaKind::Audio => "opus/48000/2",
        MediaKind::Application | MediaKind::Other => {
            return format!("m-line {mid:?} is {}, not audio or video", m.kind.as_sdp());
        }
    };
    let offered: Vec<String> = m
        .codecs
        .iter()
        .take(MAX_CODECS_EXPLAINED)
        .map(|c| {
            let label = codec_label(c);
            if is_h264(c) && packetization_mode(&c.fmtp) != Some(1) {
                let mode = fmtp_param(&c.fmtp, "packetization-mode");
                format!(
                    "{label} pt {} has packetization-mode={}{}",
                    c.payload_type,
                    mode.map_or_else(|| "0".to_owned(), excerpt),
                    if mode.is_none() {
                        " (absent means 0)"
                    } else {
                        ""
                    }
                )
            } else {
                format!("{label} pt {}", c.payload_type)
            }
        })
        .collect();
    format!(
        "m-line {mid:?} ({}) offers {}; r58 ingests {wanted}",
        m.kind.as_sdp(),
        if offered.is_empty() {
            "no codec with an rtpmap".to_owned()
        } else {
            offered.join(", ")
        }
    )
}

/// Codecs listed in one refusal: enough for any real offer, bounded for a hostile one.
const MAX_CODECS_EXPLAINED: usize = 12;

/// `name/clock[/channels]`, shortened for an error message.
fn codec_label(c: &OfferedCodec) -> String {
    let channels = c.channels.map(|n| format!("/{n}")).unwrap_or_default();
    format!("{}/{}{channels}", excerpt(&c.name), c.clock_rate)
}
