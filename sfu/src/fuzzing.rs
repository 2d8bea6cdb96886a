//! Fuzz entry points: one function per parser or state machine that takes bytes from outside.
//!
//! Each entry takes arbitrary bytes, ignores every error the code under test reports and must
//! never panic. The cargo-fuzz targets in `fuzz/fuzz_targets/` are one-line wrappers around
//! these, and `sfu/tests/fuzz_smoke.rs` runs each over the seed corpus in `fuzz/seeds/` plus
//! deterministic mutations on every build. Some entries also check invariants (offsets in
//! bounds, a correctly signed STUN request is accepted, strangers get no replies): a failed
//! invariant panics, which is what a fuzzer reports.

mod h265;
mod hls;
mod mixer;
mod record;
mod records;
pub mod smoke;

pub use h265::{h265_depacketizer, h265_depacketizer_seed, h265_sps, h265_sps_seeds};
pub use hls::{hls_ingest, hls_ingest_seed, hls_request, hls_segmenter, hls_segmenter_seeds};
pub use mixer::{mixer_packets, mixer_packets_seeds};
pub use record::{record_scan, record_scan_seed};

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc_shared::marshal::Marshal;
use rtc_stun::attributes::{
    ATTR_FINGERPRINT, ATTR_MESSAGE_INTEGRITY, ATTR_MESSAGE_INTEGRITY_SHA256,
};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{BINDING_ERROR, BINDING_SUCCESS, Message, Setter};

use crate::capture::frame::I420Frame;
use crate::capture::source::{RawFormat, RawFrame, RawLayout};
use crate::engine::EngineConfig;
use crate::media::VideoCodec;
use crate::rtp::keyframe::is_keyframe_payload;
use crate::rtp::packet::RtpHeader;
use crate::testing::client::{ClientRole, H264_PT, OPUS_PT};
use crate::testing::harness::{H264Source, Harness};
use crate::webrtc::ice_lite::BindingRequest;
use crate::webrtc::sdp::{parse_candidate_addr, parse_sdpfrag};

/// The ICE password the [`stun`] entry answers with. Seeds signed with it reach the code that
/// builds responses.
pub const STUN_PASSWORD: &str = "fuzzpasswordfuzzpassword";

/// The address the [`stun`] entry answers to.
const STUN_FROM: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 40_000);

/// An address no session knows, for [`engine_datagrams`].
const STRANGER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), 50_000);

/// Fuzz entry: an SDP offer (WHIP or WHEP body), through parsing, codec choice and both
/// answers. Forwards to [`crate::webrtc::sdp::fuzz_entry`].
pub fn sdp_offer(data: &[u8]) {
    crate::webrtc::sdp::fuzz_entry(data);
}

/// Fuzz entry: a session description as r58's own client reads it: a server's answer
/// ([`Client::accept_answer`]) and an offer it answers (Janus' streaming plugin,
/// [`Client::answer_offer`]); an accepted offer's answer must name our candidate.
pub fn client_sdp(data: &[u8]) {
    use crate::testing::client::Client;
    let text = String::from_utf8_lossy(data);
    let now = std::time::Instant::now();
    if let Ok(mut client) = Client::new(ClientRole::Play) {
        let _ = client.accept_answer(now, &text);
    }
    if let Ok(mut client) = Client::new(ClientRole::Play) {
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40_001);
        if let Ok(answer) = client.answer_offer(now, &text, local) {
            assert!(answer.contains("127.0.0.1 40001 typ host"), "{answer}");
        }
    }
}

/// Fuzz entry: a trickle-ice-sdpfrag body (WHIP/WHEP `PATCH`) and every candidate in it.
pub fn sdp_fragment(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(frag) = parse_sdpfrag(&text) else {
        return;
    };
    for (_, candidate) in &frag.candidates {
        let _ = parse_candidate_addr(candidate);
    }
}

/// Fuzz entry: an RTP packet through the forwarding path's header view. Asserts that the
/// offsets it reports lie inside the packet.
pub fn rtp_header(data: &[u8]) {
    let Ok(header) = RtpHeader::parse(data) else {
        return;
    };
    assert!(
        header.payload_offset <= header.payload_end && header.payload_end <= data.len(),
        "payload {}..{} outside a {}-byte packet",
        header.payload_offset,
        header.payload_end,
        data.len()
    );
    if let Some(ext) = header.extension_offset {
        assert!(
            ext + 4 <= header.payload_offset,
            "extension at {ext} overlaps payload at {}",
            header.payload_offset
        );
    }
    let _ = &data[header.payload_offset..header.payload_end];
}

/// Fuzz entry: a plain (decrypted) RTCP compound packet, parsed with `rtc-rtcp` as the engine
/// does, and its NACKs walked as the engine walks them.
pub fn rtcp(data: &[u8]) {
    let mut buf = Bytes::copy_from_slice(data);
    let Ok(packets) = rtc_rtcp::packet::unmarshal(&mut buf) else {
        return;
    };
    for packet in &packets {
        if let Some(nack) = packet.as_any().downcast_ref::<TransportLayerNack>() {
            let lost: usize = nack
                .nacks
                .iter()
                .map(|pair| 1 + pair.lost_packets.count_ones() as usize)
                .sum();
            std::hint::black_box(lost);
        }
    }
}

thread_local! {
    static CRYPTO: Arc<dyn RTCCryptoProvider> =
        rtc_dtls::crypto_provider::default_provider().expect("crypto provider");
}

/// Fuzz entry: a datagram on the media port that starts like STUN.
///
/// Parses it as an ICE Binding request; if it parses, answers it and refuses it (as for an
/// ended session) with [`STUN_PASSWORD`]. Then, if the bytes decode as any STUN message,
/// re-signs that message's attributes with [`STUN_PASSWORD`] (new MESSAGE-INTEGRITY and
/// FINGERPRINT) and asserts that the answer to the re-signed request, if it is a Binding
/// request with a USERNAME, is a Binding success that verifies under the same password: so
/// arbitrary attributes reach the response builder, not only the integrity check.
pub fn stun(data: &[u8]) {
    CRYPTO.with(|provider| {
        let crypto = provider.crypto();
        if let Ok(request) = BindingRequest::parse(data) {
            let _ = request.answer(STUN_FROM, STUN_PASSWORD, crypto);
        }
        if let Ok(request) = BindingRequest::parse(data) {
            let _ = request.reject_ended(STUN_PASSWORD, crypto);
        }
        let Some(signed) = resign(data, provider.as_ref()) else {
            return;
        };
        let Ok(request) = BindingRequest::parse(&signed) else {
            return;
        };
        let response = request
            .answer(STUN_FROM, STUN_PASSWORD, crypto)
            .expect("a correctly signed Binding request is answered");
        let mut parsed = Message::new();
        parsed
            .unmarshal_binary(&response)
            .expect("our Binding response decodes");
        assert_eq!(parsed.typ, BINDING_SUCCESS);
        MessageIntegrity::check(&mut parsed, STUN_PASSWORD.as_bytes(), crypto)
            .expect("our Binding response verifies");
        if let Ok(request) = BindingRequest::parse(&signed) {
            let refusal = request
                .reject_ended(STUN_PASSWORD, crypto)
                .expect("a correctly signed Binding request is refused");
            let mut parsed = Message::new();
            parsed
                .unmarshal_binary(&refusal)
                .expect("our Binding error decodes");
            assert_eq!(parsed.typ, BINDING_ERROR);
        }
    });
}

/// `data` decoded as STUN, its integrity and fingerprint attributes dropped, then signed with
/// [`STUN_PASSWORD`] and fingerprinted again.
fn resign(data: &[u8], provider: &dyn RTCCryptoProvider) -> Option<Vec<u8>> {
    let mut original = Message::new();
    original.unmarshal_binary(data).ok()?;
    let mut out = Message::new();
    out.typ = original.typ;
    out.transaction_id = original.transaction_id;
    out.write_header();
    for attr in &original.attributes.0 {
        // Only attributes before the integrity attributes are signed: drop the old ones so
        // ours are the last.
        if [
            ATTR_MESSAGE_INTEGRITY,
            ATTR_MESSAGE_INTEGRITY_SHA256,
            ATTR_FINGERPRINT,
        ]
        .contains(&attr.typ)
        {
            continue;
        }
        out.add(attr.typ, &attr.value);
    }
    let integrity = MessageIntegrity::new_short_term_integrity_with_provider(
        STUN_PASSWORD.to_owned(),
        provider.crypto(),
    );
    integrity.add_to(&mut out).ok()?;
    FINGERPRINT.add_to(&mut out).ok()?;
    Some(out.raw)
}

/// Fuzz entry: an RTP payload through keyframe detection, as H.264, VP8 and H.265, and as a
/// keyframe cache's packet through the RTSP DESCRIBE's parameter-set search (both codecs), and
/// as an IP camera's decoder configuration record.
pub fn keyframe(data: &[u8]) {
    std::hint::black_box(is_keyframe_payload(VideoCodec::H264, data));
    std::hint::black_box(is_keyframe_payload(VideoCodec::Vp8, data));
    std::hint::black_box(is_keyframe_payload(VideoCodec::H265, data));
    let cached = [crate::rtp::history::StoredPacket {
        epoch: 0,
        sequence: 0,
        timestamp: 0,
        marker: false,
        payload: Bytes::copy_from_slice(data),
    }];
    std::hint::black_box(crate::rtsp::sdp::h265_parameter_sets(&cached));
    std::hint::black_box(crate::rtsp::sdp::parameter_sets(&cached));
    // And as an IP camera's decoder configuration record (avcC, hvcC).
    std::hint::black_box(crate::capture::rtsp_source::avcc_parameter_sets(data));
    std::hint::black_box(crate::capture::rtsp_source::hvcc_sprop(data));
}

/// A connected publisher and viewer on the in-memory harness, reused across inputs.
struct EngineFixture {
    h: Harness,
    publisher: usize,
    viewer: usize,
    /// The publisher's (video, audio) SSRCs.
    publisher_ssrcs: (u32, u32),
    /// The video SSRC the server answered the viewer with.
    viewer_video_ssrc: u32,
}

impl EngineFixture {
    fn new() -> Self {
        // Publishers never time out here: the fuzzer decides when media flows, and a timed-out
        // stream would end the session the target needs.
        let config = EngineConfig {
            publisher_timeout: Duration::from_secs(24 * 3600),
            ..EngineConfig::default()
        };
        let mut h = Harness::new(config).expect("engine for the fuzz harness");
        let publisher = h
            .open(ClientRole::Publish, "fuzz")
            .expect("fuzz harness publisher");
        assert!(h.connect_all(), "fuzz harness publisher connects");
        let publisher_ssrcs = h.clients[publisher].client.ssrcs;
        // One keyframe, so the viewer joins with a cache and NACKs find history.
        let mut source = H264Source::new(publisher_ssrcs.0, H264_PT);
        source.keyframe_bytes = 3000;
        source.delta_bytes = 800;
        for _ in 0..2 {
            for packet in source.next_frame() {
                let _ = h.clients[publisher].client.send_rtp(&packet);
            }
            h.advance(Duration::from_millis(33));
        }
        let viewer = h
            .open(ClientRole::Play, "fuzz")
            .expect("fuzz harness viewer");
        assert!(h.connect_all(), "fuzz harness viewer connects");
        let viewer_video_ssrc = video_ssrc_of_answer(&h.clients[viewer].answer.sdp)
            .expect("the viewer's answer has a video SSRC");
        Self {
            h,
            publisher,
            viewer,
            publisher_ssrcs,
            viewer_video_ssrc,
        }
    }

    /// Both sessions still up: the fixture is worth reusing.
    fn healthy(&self) -> bool {
        self.h.engine.session_count() == 2
            && [self.publisher, self.viewer].iter().all(|&i| {
                let r = &self.h.clients[i].received;
                r.connected && !r.closed
            })
    }

    /// Runs one fuzz input; see [`engine_datagrams`] for the format.
    fn run(&mut self, data: &[u8]) {
        let mut rest = data;
        while let Some((&tag, tail)) = rest.split_first() {
            let Some((&len, tail)) = tail.split_first() else {
                break;
            };
            rest = tail;
            if tag % 8 == 7 {
                self.h.advance(Duration::from_millis(u64::from(len) * 4));
                continue;
            }
            let take = usize::from(len).min(rest.len());
            let (body, tail) = rest.split_at(take);
            rest = tail;
            self.op(tag, body);
            self.check_no_reply_to_stranger();
            self.h.advance(Duration::from_millis(1));
        }
        self.check_no_reply_to_stranger();
        self.h.pump();
    }

    fn op(&mut self, tag: u8, body: &[u8]) {
        let now = self.h.now;
        match tag % 8 {
            0 => {
                let from = self.h.clients[self.publisher].addr;
                self.h.engine.handle_datagram(now, from, body);
            }
            1 => {
                let from = self.h.clients[self.viewer].addr;
                self.h.engine.handle_datagram(now, from, body);
            }
            2 => self.h.engine.handle_datagram(now, STRANGER, body),
            3 => {
                let mut packet = body.to_vec();
                packet.resize(packet.len().max(12), 0);
                packet[0] = 0x80 | (packet[0] & 0x3f);
                let (ssrc, pt) = if tag & 0x08 == 0 {
                    (self.publisher_ssrcs.0, H264_PT)
                } else {
                    (self.publisher_ssrcs.1, OPUS_PT)
                };
                packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
                if tag & 0x10 == 0 {
                    packet[1] = (packet[1] & 0x80) | pt;
                }
                let _ = self.h.clients[self.publisher].client.send_rtp(&packet);
            }
            4 => {
                let mut packet = body.to_vec();
                if tag & 0x08 == 0 && packet.len() >= 8 {
                    packet[4..8].copy_from_slice(&self.publisher_ssrcs.0.to_be_bytes());
                }
                let _ = self.h.clients[self.publisher].client.send_rtcp(&packet);
            }
            5 => {
                let mut packet = body.to_vec();
                if tag & 0x08 == 0 && packet.len() >= 12 {
                    packet[8..12].copy_from_slice(&self.viewer_video_ssrc.to_be_bytes());
                }
                let _ = self.h.clients[self.viewer].client.send_rtcp(&packet);
            }
            _ => {
                // A well-formed NACK for packets near the newest the viewer got.
                let newest = self.h.clients[self.viewer]
                    .received
                    .last_seq
                    .get(&self.viewer_video_ssrc)
                    .copied()
                    .unwrap_or(0);
                let back = u16::from(body.first().copied().unwrap_or(0));
                let mask = body
                    .get(1..3)
                    .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                let nack = TransportLayerNack {
                    sender_ssrc: 1,
                    media_ssrc: self.viewer_video_ssrc,
                    nacks: vec![NackPair {
                        packet_id: newest.wrapping_sub(back),
                        lost_packets: mask,
                    }],
                };
                if let Ok(raw) = nack.marshal() {
                    let _ = self.h.clients[self.viewer].client.send_rtcp(&raw);
                }
            }
        }
    }

    /// No session knows [`STRANGER`] and it cannot pass an ICE check (it does not know any
    /// session's password), so nothing may be sent to it.
    fn check_no_reply_to_stranger(&mut self) {
        assert!(
            self.h
                .engine
                .pending_transmits()
                .all(|(to, _)| to.addr != STRANGER),
            "the engine answered a datagram from an address that never passed an ICE check"
        );
    }
}

/// The first `a=ssrc:` of the answer's video section.
fn video_ssrc_of_answer(sdp: &str) -> Option<u32> {
    let video = &sdp[sdp.find("m=video")?..];
    let line = video.lines().find_map(|l| l.strip_prefix("a=ssrc:"))?;
    line.split_ascii_whitespace().next()?.parse().ok()
}

thread_local! {
    static ENGINE: RefCell<Option<EngineFixture>> = const { RefCell::new(None) };
}

/// Fuzz entry: a stateful target that drives the whole engine (ICE-lite, DTLS, SRTP, RTCP,
/// hub, fan-out) with a sequence of datagrams.
///
/// Uses a harness with one connected publisher and one connected viewer of stream `fuzz`,
/// built once per thread (it costs two DTLS handshakes) and reused by later inputs, so state
/// carries over from one input to the next; it is rebuilt when a session ended. A crash found
/// by libFuzzer therefore reproduces from a fresh process only if the input alone causes it.
///
/// The input is a sequence of operations, each `tag, len, len bytes of body` (a short last body
/// is used as is). `tag % 8` selects:
/// - 0, 1, 2: the body as a raw datagram from the publisher's, the viewer's, or an unknown
///   address (STUN, DTLS or SRTP by its first byte, as on the wire);
/// - 3: the body as plain RTP that the publisher's client protects with its SRTP key and
///   sends, version forced to 2 and the SSRC set to its video (`tag & 8 == 0`) or audio
///   stream; unless `tag & 16`, the payload type is set to that stream's;
/// - 4: the body as plain RTCP the publisher protects and sends (sender SSRC set unless
///   `tag & 8`);
/// - 5: the body as plain RTCP the viewer protects and sends (media SSRC at bytes 8..12 set to
///   its video SSRC unless `tag & 8`), such as PLI, FIR or NACK;
/// - 6: a NACK from the viewer for the packet `body[0]` before the newest it received, with
///   `body[1..3]` as the bitmask of the following 16;
/// - 7: no body; the clock advances by `len * 4` ms (every timer fires).
///
/// After each operation the clock advances 1 ms and datagrams flow between the engine and the
/// two clients until none are left. Asserts that nothing is ever sent to the unknown address.
pub fn engine_datagrams(data: &[u8]) {
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if !slot.as_ref().is_some_and(EngineFixture::healthy) {
            *slot = Some(EngineFixture::new());
        }
        if let Some(fixture) = slot.as_mut() {
            fixture.run(data);
        }
    });
}

/// Fuzz entry: a Cloudflare TURN API answer through [`crate::turn::cloudflare::parse_response`].
/// Asserts that whatever it accepts is safe to hand on: every URL a stun:/turn: URI fit for a
/// `Link` header, credentials printable, at least one TURN entry with credentials.
/// What a TURN server (or anything posing as one) sends r58's TURN client: STUN answers, Data
/// indications, ChannelData, and TCP/TLS stream framing, to clients in every state.
pub fn turn_client(data: &[u8]) {
    crate::turn::client::fuzzing::server_input(data);
}

pub fn turn_response(data: &[u8]) {
    let Ok(servers) = crate::turn::cloudflare::parse_response(data) else {
        return;
    };
    let printable = |v: &Option<String>| {
        v.as_deref()
            .is_none_or(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()))
    };
    assert!(servers.iter().any(|s| s.credential.is_some()));
    for server in &servers {
        assert!(!server.urls.is_empty());
        assert!(
            server
                .urls
                .iter()
                .all(|u| crate::turn::cloudflare::is_ice_url(u))
        );
        assert!(printable(&server.username) && printable(&server.credential));
    }
}

/// A fuzz entry point.
pub type FuzzEntry = fn(&[u8]);

/// Fuzz entry: a camera buffer as a V4L2 driver hands it over (NV12 or YUYV, with whatever
/// stride and plane height the driver reports) converted to I420, as for an OpenH264 camera.
/// Bytes 0..8 pick the layout: format bit, width and height (even, 2..=128), stride (0..512),
/// luma plane rows (0..160); the rest is the buffer.
pub fn pixel_convert(data: &[u8]) {
    let Some((head, pixels)) = data.split_first_chunk::<8>() else {
        return;
    };
    let format = if head[0] & 1 == 0 {
        RawFormat::Nv12
    } else {
        RawFormat::Yuyv
    };
    let width = (u32::from(head[1]) % 64 + 1) * 2;
    let height = (u32::from(head[2]) % 64 + 1) * 2;
    let layout = RawLayout {
        format,
        width,
        height,
        stride: usize::from(u16::from_le_bytes([head[3], head[4]])) % 512,
        plane_rows: usize::from(head[5]) % 160,
    };
    let Ok(mut out) = I420Frame::new(width, height) else {
        return;
    };
    let frame = RawFrame {
        layout,
        data: pixels,
    };
    std::hint::black_box(layout.len());
    let _ = std::hint::black_box(frame.to_i420(&mut out));
}

/// Every fuzz entry by name, as the `fuzz/` targets and seed directories are named.
pub const ENTRIES: &[(&str, FuzzEntry)] = &[
    ("sdp_offer", sdp_offer),
    ("sdp_fragment", sdp_fragment),
    ("rtp_header", rtp_header),
    ("rtcp", rtcp),
    ("stun", stun),
    ("keyframe", keyframe),
    ("engine_datagrams", engine_datagrams),
    ("hls_ingest", hls_ingest),
    ("hls_request", hls_request),
    ("turn_response", turn_response),
    ("pixel_convert", pixel_convert),
    ("client_sdp", client_sdp),
    ("hls_segmenter", hls_segmenter),
    ("turn_client", turn_client),
    ("rtsp_connection", rtsp_connection),
    ("record_scan", record_scan),
    ("mixer_packets", mixer_packets),
    ("h265_depacketizer", h265_depacketizer),
    ("h265_sps", h265_sps),
];

/// The streams [`rtsp_connection`] serves: `cam0` (H.264 + Opus, open) and `locked` (the same,
/// readable with the password `fuzz`).
struct RtspFuzzCatalog;

impl crate::rtsp::Catalog for RtspFuzzCatalog {
    fn describe(&self, name: &str) -> Option<crate::rtsp::StreamDescription> {
        (name == "cam0" || name == "locked").then(crate::rtsp::sample_description)
    }

    fn required_token(&self, name: &str) -> Option<String> {
        (name == "locked").then(|| "fuzz".to_owned())
    }
}

/// Fuzz entry: what an RTSP client sends the server (requests with any headers and bodies,
/// interleaved frames, garbage), fed in chunks of the first byte's size, then media and
/// timeouts. Every byte written back must start a response (`RTSP/1.0 `) or an interleaved
/// frame (`$`), and UDP must only go to the client's own address.
pub fn rtsp_connection(data: &[u8]) {
    use crate::rtsp::{Connection, ConnectionConfig, Output};
    use std::time::Instant;
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk.max(1));
    let now = Instant::now();
    let peer: SocketAddr = "127.0.0.9:40000".parse().expect("address");
    let mut conn = Connection::new(
        now,
        ConnectionConfig {
            peer,
            local: "127.0.0.1:8554".parse().expect("address"),
            udp_ports: Some((6970, 6971)),
            session_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(10),
            wall_clock: crate::media::WallClock {
                instant: now,
                system: std::time::UNIX_EPOCH,
            },
            seed: 7,
            refuse: None,
        },
    );
    let check = |conn: &mut Connection| {
        while let Some(output) = conn.poll_output() {
            match output {
                Output::Tcp(bytes) => {
                    assert!(
                        bytes.starts_with(b"RTSP/1.0 ") || bytes.first() == Some(&b'$'),
                        "output starts with {:?}",
                        &bytes[..bytes.len().min(16)]
                    );
                }
                Output::Udp { to, .. } => assert_eq!(to.ip(), peer.ip(), "UDP to a third party"),
            }
        }
        while conn.poll_event().is_some() {}
    };
    for (i, piece) in rest.chunks(chunk).enumerate() {
        let at = now + Duration::from_millis(i as u64);
        conn.handle_input(at, piece, &RtspFuzzCatalog);
        check(&mut conn);
    }
    let later = now + Duration::from_secs(1);
    for (i, keyframe_start) in [true, false].into_iter().enumerate() {
        conn.handle_media(
            later,
            &crate::hub::ReaderPacket {
                track: i,
                epoch: 1,
                sequence: i as u16,
                timestamp: 0,
                marker: true,
                keyframe_start,
                arrival: later,
                payload: Bytes::from_static(&[0x65, 1]),
            },
        );
    }
    if let Some(at) = conn.poll_timeout() {
        conn.handle_timeout(at.max(later));
    }
    check(&mut conn);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_ssrc_is_read_from_the_video_section() {
        let sdp = "m=audio 9 X 111\r\na=ssrc:1 cname:a\r\nm=video 9 X 96\r\na=ssrc:42 cname:a\r\n";
        assert_eq!(video_ssrc_of_answer(sdp), Some(42));
        assert_eq!(video_ssrc_of_answer("m=audio 9 X 111\r\n"), None);
    }

    /// The operations reach the data plane: fuzz RTP is forwarded, a NACK is answered from
    /// history, a PLI reaches the publisher.
    #[test]
    fn engine_operations_reach_forwarding_nack_and_pli() {
        let mut f = EngineFixture::new();
        let viewer_rx = |f: &EngineFixture| f.h.clients[f.viewer].received.rtp_packets;
        let video = |f: &EngineFixture| {
            f.h.engine.streams()[0]
                .tracks
                .iter()
                .find(|t| t.codec.eq_ignore_ascii_case("H264"))
                .map(|t| t.stats.clone())
                .expect("video track")
        };
        let before = viewer_rx(&f);
        // seq 0x1000 continues well after the fixture's own packets; a single IDR NAL.
        let rtp = [
            0x80, 0x80, 0x10, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0x65, 0x88, 0x84,
        ];
        f.run(&[&[3, rtp.len() as u8][..], &rtp].concat());
        assert!(
            viewer_rx(&f) > before,
            "fuzz RTP is forwarded to the viewer"
        );
        let retransmits = video(&f).retransmits;
        f.run(&[6, 1, 0]);
        assert!(video(&f).retransmits > retransmits, "NACK is answered");
        let requests = f.h.engine.stats().keyframe_requests_sent;
        let pli = [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0];
        f.run(&[&[7, 200, 5, pli.len() as u8][..], &pli].concat());
        assert!(
            f.h.engine.stats().keyframe_requests_sent > requests,
            "PLI from the viewer reaches the publisher"
        );
        assert!(f.healthy());
    }

    #[test]
    fn engine_fixture_connects_and_survives_empty_input() {
        engine_datagrams(&[]);
        engine_datagrams(&[7, 10, 9]);
        ENGINE.with(|cell| {
            assert!(cell.borrow().as_ref().is_some_and(EngineFixture::healthy));
        });
    }
}
