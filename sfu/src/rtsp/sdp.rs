//! The session description a DESCRIBE answers with (RFC 2326 appendix C, RFC 4566): one media
//! section per hub track, each with its own `a=control`, H.264 with the `sprop-parameter-sets`
//! and `profile-level-id` of the stream's current keyframe (RFC 6184), H.265 (passed through
//! from an IP camera) with its `sprop-vps`/`sprop-sps`/`sprop-pps` (RFC 7798 §7.1), Opus as
//! RFC 7587 says.
//!
//! The hub knows a stream's tracks and its keyframe cache; [`describe`] reads both under the
//! engine's lock and [`session_description`] writes the text without it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;

use crate::engine::Engine;
use crate::media::h264::nal_type;
use crate::media::{CodecSpec, TrackKind};
use crate::rtp::h264::H264Depacketizer;
use crate::rtp::history::StoredPacket;

/// A track as an RTSP client is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackDescription {
    pub kind: TrackKind,
    pub codec: CodecSpec,
    /// H.264: the SPS and PPS of the cached keyframe, when the cache has one.
    pub parameter_sets: Option<(Bytes, Bytes)>,
    /// H.265: the VPS, SPS and PPS of the cached keyframe, when the cache has them.
    pub h265_parameter_sets: Option<[Bytes; 3]>,
}

/// A stream as an RTSP client is told about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamDescription {
    pub tracks: Vec<TrackDescription>,
}

/// The RTP payload type track `index` is sent with: dynamic types from 96, one per track.
pub fn payload_type(index: usize) -> u8 {
    96u8.saturating_add(index.min(31) as u8)
}

/// The control URL suffix of track `index` (relative to the stream's Content-Base).
pub fn track_control(index: usize) -> String {
    format!("trackID={index}")
}

/// Stream `name` as the hub has it now, or `None` when nobody publishes it.
pub fn describe(engine: &Engine, name: &str) -> Option<StreamDescription> {
    let stream = engine.hub().get(name).filter(|s| s.publisher().is_some())?;
    Some(StreamDescription {
        tracks: stream
            .tracks
            .iter()
            .map(|track| TrackDescription {
                kind: track.kind,
                codec: track.codec.clone(),
                parameter_sets: if track.codec.name.eq_ignore_ascii_case("H264") {
                    parameter_sets(track.keyframe_cache())
                } else {
                    None
                },
                h265_parameter_sets: if track.codec.name.eq_ignore_ascii_case("H265") {
                    h265_parameter_sets(track.keyframe_cache())
                } else {
                    None
                },
            })
            .collect(),
    })
}

/// The publisher's latest Sender Report of each track of stream `name` (with the stream's
/// epoch), for the RTSP readers' own reports.
pub fn source_reports(engine: &Engine, name: &str) -> Vec<Option<super::output::SourceReport>> {
    let Some(stream) = engine.hub().get(name) else {
        return Vec::new();
    };
    stream
        .tracks
        .iter()
        .map(|t| {
            t.sender_report
                .map(|(ntp, rtp, at)| super::output::SourceReport {
                    epoch: stream.epoch(),
                    ntp,
                    rtp,
                    at,
                })
        })
        .collect()
}

/// The first SPS and PPS in `packets` (a keyframe cache: the keyframe's access unit first).
pub fn parameter_sets(packets: &[StoredPacket]) -> Option<(Bytes, Bytes)> {
    let mut depacketizer = H264Depacketizer::new();
    let (mut sps, mut pps) = (None, None);
    for packet in packets {
        let Ok(Some(unit)) = depacketizer.push(
            packet.sequence,
            packet.timestamp,
            packet.marker,
            &packet.payload,
        ) else {
            continue;
        };
        let (s, p) = unit.parameter_sets();
        sps = sps.or_else(|| s.cloned());
        pps = pps.or_else(|| p.cloned());
        if sps.is_some() && pps.is_some() {
            break;
        }
    }
    // A cache that ends inside the keyframe's access unit never completes it: look at the
    // single NAL units and STAP-A aggregates directly.
    if sps.is_none() || pps.is_none() {
        for packet in packets {
            for nal in single_nals(&packet.payload) {
                match crate::media::h264::nal_unit_type(&nal) {
                    nal_type::SPS => sps = sps.or(Some(nal)),
                    nal_type::PPS => pps = pps.or(Some(nal)),
                    _ => {}
                }
            }
        }
    }
    sps.zip(pps)
}

/// The first VPS, SPS and PPS among the whole NAL units of `packets` (single NAL unit packets
/// and aggregation packets, RFC 7798 §4.4.1-2; an encoder sends them before each keyframe).
pub fn h265_parameter_sets(packets: &[StoredPacket]) -> Option<[Bytes; 3]> {
    use crate::media::h265::nal_type as h265_type;
    use crate::media::h265::nal_type_of as h265_nal_type;
    let mut sets: [Option<Bytes>; 3] = [None, None, None];
    for packet in packets {
        let payload = &packet.payload;
        let nals = match payload.first().map(|b| h265_nal_type(*b)) {
            Some(h265_type::AP) => {
                let mut out = Vec::new();
                let mut at = 2;
                while at + 2 <= payload.len() {
                    let len = usize::from(u16::from_be_bytes([payload[at], payload[at + 1]]));
                    at += 2;
                    if len < 2 || at + len > payload.len() {
                        break;
                    }
                    out.push(payload.slice(at..at + len));
                    at += len;
                }
                out
            }
            Some(h265_type::FU) | None => Vec::new(),
            Some(_) if payload.len() >= 2 => vec![payload.clone()],
            Some(_) => Vec::new(),
        };
        for nal in nals {
            let slot = match h265_nal_type(nal[0]) {
                h265_type::VPS => 0,
                h265_type::SPS => 1,
                h265_type::PPS => 2,
                _ => continue,
            };
            sets[slot].get_or_insert(nal);
        }
        if sets.iter().all(Option::is_some) {
            break;
        }
    }
    let [vps, sps, pps] = sets;
    Some([vps?, sps?, pps?])
}

/// The NAL units a payload carries whole: itself, or a STAP-A's aggregated units.
fn single_nals(payload: &Bytes) -> Vec<Bytes> {
    match crate::media::h264::nal_unit_type(payload) {
        nal_type::STAP_A => {
            let mut out = Vec::new();
            let mut at = 1;
            while at + 2 <= payload.len() {
                let len = usize::from(u16::from_be_bytes([payload[at], payload[at + 1]]));
                at += 2;
                if len == 0 || at + len > payload.len() {
                    break;
                }
                out.push(payload.slice(at..at + len));
                at += len;
            }
            out
        }
        0 | nal_type::FU_A => Vec::new(),
        _ => vec![payload.clone()],
    }
}

/// The SDP text for `description`; `origin_ip` goes in the `o=` line (the address the client
/// reached us on).
pub fn session_description(
    name: &str,
    session_id: u64,
    origin_ip: std::net::IpAddr,
    description: &StreamDescription,
) -> String {
    let family = if origin_ip.is_ipv6() { "IP6" } else { "IP4" };
    let mut sdp = format!(
        "v=0\r\no=- {session_id} 1 IN {family} {origin_ip}\r\ns={name}\r\nc=IN {family} {}\r\nt=0 0\r\na=tool:r58\r\na=control:*\r\na=range:npt=0-\r\n",
        if origin_ip.is_ipv6() { "::" } else { "0.0.0.0" }
    );
    for (index, track) in description.tracks.iter().enumerate() {
        let pt = payload_type(index);
        let media = match track.kind {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
        };
        sdp.push_str(&format!("m={media} 0 RTP/AVP {pt}\r\n"));
        let codec = &track.codec;
        let name = if codec.name.eq_ignore_ascii_case("opus") {
            "opus".to_owned()
        } else {
            codec.name.to_ascii_uppercase()
        };
        match codec.channels {
            Some(channels) => sdp.push_str(&format!(
                "a=rtpmap:{pt} {name}/{}/{channels}\r\n",
                codec.clock_rate
            )),
            None => sdp.push_str(&format!("a=rtpmap:{pt} {name}/{}\r\n", codec.clock_rate)),
        }
        if let Some(fmtp) = fmtp(track) {
            sdp.push_str(&format!("a=fmtp:{pt} {fmtp}\r\n"));
        }
        sdp.push_str(&format!("a=control:{}\r\n", track_control(index)));
    }
    sdp
}

/// The format parameters of one track: for H.264 the publisher's with the parameter sets and
/// profile of the cached keyframe put in (they may have changed since the publisher's offer).
fn fmtp(track: &TrackDescription) -> Option<String> {
    let mut params: Vec<String> = track
        .codec
        .fmtp
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    if track.codec.name.eq_ignore_ascii_case("H264") {
        let key_is = |p: &String, key: &str| {
            p.split('=')
                .next()
                .is_some_and(|k| k.trim().eq_ignore_ascii_case(key))
        };
        if !params.iter().any(|p| key_is(p, "packetization-mode")) {
            params.push("packetization-mode=1".to_owned());
        }
        if let Some((sps, pps)) = &track.parameter_sets {
            params.retain(|p| !key_is(p, "sprop-parameter-sets") && !key_is(p, "profile-level-id"));
            if sps.len() >= 4 {
                params.push(format!(
                    "profile-level-id={:02X}{:02X}{:02X}",
                    sps[1], sps[2], sps[3]
                ));
            }
            params.push(format!(
                "sprop-parameter-sets={},{}",
                BASE64.encode(sps),
                BASE64.encode(pps)
            ));
        }
    }
    if track.codec.name.eq_ignore_ascii_case("H265")
        && let Some(sets) = &track.h265_parameter_sets
    {
        // The cached sets replace the source's; `sprop-max-don-diff` and the like stay.
        const SETS: [&str; 3] = ["sprop-vps", "sprop-sps", "sprop-pps"];
        params.retain(|p| {
            let key = p.split('=').next().unwrap_or_default().trim();
            !SETS.iter().any(|set| key.eq_ignore_ascii_case(set))
        });
        for (key, nal) in SETS.iter().zip(sets) {
            params.push(format!("{key}={}", BASE64.encode(nal)));
        }
    }
    (!params.is_empty()).then(|| params.join(";"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(sequence: u16, timestamp: u32, marker: bool, payload: &'static [u8]) -> StoredPacket {
        StoredPacket {
            epoch: 1,
            sequence,
            timestamp,
            marker,
            payload: Bytes::from_static(payload),
        }
    }

    #[test]
    fn parameter_sets_come_from_single_nals_and_stap_a() {
        let single = [
            stored(1, 0, false, &[0x67, 0x42, 0xc0, 0x1f, 0xaa]),
            stored(2, 0, false, &[0x68, 0xce, 0x3c, 0x80]),
            stored(3, 0, true, &[0x65, 0x88, 0x84]),
        ];
        let (sps, pps) = parameter_sets(&single).unwrap();
        assert_eq!(&sps[..], &[0x67, 0x42, 0xc0, 0x1f, 0xaa]);
        assert_eq!(&pps[..], &[0x68, 0xce, 0x3c, 0x80]);
        // STAP-A with SPS and PPS, and a cache cut before the keyframe's last packet.
        let stap = [stored(
            9,
            0,
            false,
            &[0x18, 0, 3, 0x67, 0x64, 0x00, 0, 2, 0x68, 0xee],
        )];
        let (sps, pps) = parameter_sets(&stap).unwrap();
        assert_eq!(
            (&sps[..], &pps[..]),
            (&[0x67, 0x64, 0x00][..], &[0x68, 0xee][..])
        );
        assert_eq!(parameter_sets(&[stored(1, 0, true, &[0x41, 1])]), None);
    }

    #[test]
    fn sdp_names_each_track_with_parameter_sets_and_control() {
        let description = StreamDescription {
            tracks: vec![
                TrackDescription {
                    kind: TrackKind::Video,
                    codec: CodecSpec {
                        name: "H264".into(),
                        clock_rate: 90_000,
                        channels: None,
                        fmtp:
                            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
                                .into(),
                    },
                    parameter_sets: Some((
                        Bytes::from_static(&[0x67, 0x64, 0x00, 0x28, 1]),
                        Bytes::from_static(&[0x68, 2]),
                    )),
                    h265_parameter_sets: None,
                },
                TrackDescription {
                    kind: TrackKind::Audio,
                    codec: CodecSpec {
                        name: "opus".into(),
                        clock_rate: 48_000,
                        channels: Some(2),
                        fmtp: "minptime=10;useinbandfec=1".into(),
                    },
                    parameter_sets: None,
                    h265_parameter_sets: None,
                },
            ],
        };
        let sdp = session_description("cam0", 7, "127.0.0.1".parse().unwrap(), &description);
        assert!(
            sdp.starts_with("v=0\r\no=- 7 1 IN IP4 127.0.0.1\r\ns=cam0\r\n"),
            "{sdp}"
        );
        assert!(
            sdp.contains("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"),
            "{sdp}"
        );
        assert!(
            sdp.contains(
                "a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640028;sprop-parameter-sets=Z2QAKAE=,aAI=\r\n"
            ),
            "{sdp}"
        );
        assert!(sdp.contains("a=control:trackID=0\r\n"));
        assert!(
            sdp.contains("m=audio 0 RTP/AVP 97\r\na=rtpmap:97 opus/48000/2\r\n"),
            "{sdp}"
        );
        assert!(sdp.contains("a=fmtp:97 minptime=10;useinbandfec=1\r\na=control:trackID=1\r\n"));
    }

    #[test]
    fn h265_parameter_sets_come_from_the_cache_into_the_sdp() {
        // A VPS alone, then an AP with SPS and PPS, then an IDR's FU start.
        let cache = [
            stored(1, 0, false, &[0x40, 0x01, 0x0c]),
            stored(
                2,
                0,
                false,
                &[0x60, 0x01, 0, 3, 0x42, 0x01, 0x01, 0, 3, 0x44, 0x01, 0xc1],
            ),
            stored(3, 0, false, &[0x62, 0x01, 0x93, 0xaf]),
        ];
        let sets = h265_parameter_sets(&cache).unwrap();
        assert_eq!(&sets[0][..], &[0x40, 0x01, 0x0c]);
        assert_eq!(&sets[1][..], &[0x42, 0x01, 0x01]);
        assert_eq!(&sets[2][..], &[0x44, 0x01, 0xc1]);
        assert_eq!(h265_parameter_sets(&cache[1..]), None, "no VPS");
        let description = StreamDescription {
            tracks: vec![TrackDescription {
                kind: TrackKind::Video,
                codec: CodecSpec {
                    name: "H265".into(),
                    clock_rate: 90_000,
                    channels: None,
                    // The camera's SDP sets (replaced) and its decoding order parameter (kept).
                    fmtp: "sprop-vps=AAAA;sprop-max-don-diff=2;SPROP-SPS=AAAA".into(),
                },
                parameter_sets: None,
                h265_parameter_sets: Some(sets),
            }],
        };
        let sdp = session_description("ipcam0", 1, "127.0.0.1".parse().unwrap(), &description);
        assert!(
            sdp.contains(
                "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n\
                 a=fmtp:96 sprop-max-don-diff=2;sprop-vps=QAEM;sprop-sps=QgEB;sprop-pps=RAHB\r\n"
            ),
            "{sdp}"
        );
    }
}
