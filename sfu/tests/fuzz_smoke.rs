//! The fuzz entries of `sfu::fuzzing`, run briefly on every build.
//!
//! Each entry runs over its seed corpus (`fuzz/seeds/<entry>/`, plus the seeds built below)
//! and a few thousand deterministic mutations of it (bit flips, interesting values,
//! truncations, insertions, deletions, duplications, splices). A panic fails the test with the
//! entry, the input's origin and its bytes in hex, ready to become a regression test below.
//!
//! The long runs are `cargo fuzz run <entry>` in `fuzz/` (see `fuzz/README.md`). To rewrite the
//! generated seed files after changing [`generated_seeds`]:
//! `cargo test -p sfu --test fuzz_smoke -- --ignored write_seed_files`.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use rtc_rtcp::goodbye::Goodbye;
use rtc_rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc_rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc_shared::marshal::Marshal;
use rtc_stun::attributes::{ATTR_PRIORITY, ATTR_USE_CANDIDATE, ATTR_USERNAME, RawAttribute};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{BINDING_REQUEST, Message, Setter, TransactionId};
use rtc_stun::textattrs::TextAttribute;
use sfu::fuzzing::smoke::{MUTATIONS, run_smoke, seeds_in};
use sfu::fuzzing::{ENTRIES, STUN_PASSWORD};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The seed files of `target`, sorted by name.
fn seeds_on_disk(target: &str) -> Vec<(String, Vec<u8>)> {
    seeds_in(&fuzz_dir().join("seeds").join(target))
}

/// The entry's seeds (files and generated), then [`MUTATIONS`] mutations of them.
fn smoke(target: &str) {
    let entry = ENTRIES
        .iter()
        .find(|(name, _)| *name == target)
        .map(|&(_, f)| f)
        .unwrap_or_else(|| panic!("no fuzz entry {target}"));
    let mut corpus = seeds_on_disk(target);
    assert!(!corpus.is_empty(), "fuzz/seeds/{target}/ is empty");
    corpus.extend(generated_seeds(target));
    // The mixer decodes and encodes Opus for every input: a thirtieth of the mutations keeps it
    // to seconds (the cargo-fuzz target runs it at full rate).
    let mutations = if target == "mixer_packets" {
        MUTATIONS / 30
    } else {
        MUTATIONS
    };
    run_smoke(target, entry, &corpus, mutations);
}

#[test]
fn smoke_sdp_offer() {
    smoke("sdp_offer");
}

#[test]
fn smoke_client_sdp() {
    smoke("client_sdp");
}

#[test]
fn smoke_sdp_fragment() {
    smoke("sdp_fragment");
}

#[test]
fn smoke_rtp_header() {
    smoke("rtp_header");
}

#[test]
fn smoke_rtcp() {
    smoke("rtcp");
}

#[test]
fn smoke_stun() {
    smoke("stun");
}

#[test]
fn smoke_keyframe() {
    smoke("keyframe");
}

#[test]
fn smoke_hls_ingest() {
    smoke("hls_ingest");
}

#[test]
fn smoke_hls_request() {
    smoke("hls_request");
}

#[test]
fn smoke_pixel_convert() {
    smoke("pixel_convert");
}

#[test]
fn smoke_engine_datagrams() {
    smoke("engine_datagrams");
}

#[test]
fn smoke_turn_response() {
    smoke("turn_response");
}

#[test]
fn smoke_hls_segmenter() {
    smoke("hls_segmenter");
}

#[test]
fn smoke_rtsp_connection() {
    smoke("rtsp_connection");
}

#[test]
fn smoke_turn_client() {
    smoke("turn_client");
}

#[test]
fn smoke_record_scan() {
    smoke("record_scan");
}

#[test]
fn smoke_h265_depacketizer() {
    smoke("h265_depacketizer");
}

#[test]
fn smoke_h265_sps() {
    smoke("h265_sps");
}

#[test]
fn smoke_mixer_packets() {
    smoke("mixer_packets");
}

/// Targets whose entry lives outside `sfu` (and the call their target must make); their smoke
/// tests live in their own crate.
const OTHER_CRATES: &[(&str, &str)] = &[
    ("config_file", "r58::config::fuzzing::config_file("),
    ("auth_tokens", "r58::auth::fuzzing::auth_tokens("),
];

/// Every entry has a cargo-fuzz target, a seed directory and a smoke test above; every target
/// is an entry.
#[test]
fn entries_targets_and_seeds_agree() {
    let targets_dir = fuzz_dir().join("fuzz_targets");
    let mut targets: Vec<String> = fs::read_dir(&targets_dir)
        .expect("fuzz/fuzz_targets")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    targets.retain(|t| OTHER_CRATES.iter().all(|(name, _)| name != t));
    targets.sort();
    for (name, call) in OTHER_CRATES {
        let target = fs::read_to_string(targets_dir.join(format!("{name}.rs"))).expect("target");
        assert!(
            target.contains(call),
            "fuzz_targets/{name}.rs does not call {call}"
        );
        assert!(
            fuzz_dir().join("seeds").join(name).is_dir(),
            "no fuzz/seeds/{name}/"
        );
    }
    let mut entries: Vec<String> = ENTRIES.iter().map(|(n, _)| (*n).to_owned()).collect();
    entries.sort();
    assert_eq!(
        targets, entries,
        "fuzz/fuzz_targets/*.rs vs sfu::fuzzing::ENTRIES"
    );
    let this_file = include_str!("fuzz_smoke.rs");
    for name in &entries {
        assert!(
            fuzz_dir().join("seeds").join(name).is_dir(),
            "no fuzz/seeds/{name}/"
        );
        let target = fs::read_to_string(targets_dir.join(format!("{name}.rs"))).expect("target");
        assert!(
            target.contains(&format!("sfu::fuzzing::{name}(")),
            "fuzz_targets/{name}.rs does not call sfu::fuzzing::{name}"
        );
        assert!(
            this_file.contains(&format!("smoke(\"{name}\")")),
            "no smoke test for {name}"
        );
    }
}

/// Writes [`generated_seeds`] into `fuzz/seeds/` (and the SDP test offers into
/// `fuzz/seeds/sdp_offer/`).
#[test]
#[ignore = "writes the seed corpus into the source tree; run by hand"]
fn write_seed_files() {
    let seeds = fuzz_dir().join("seeds");
    for (target, _) in ENTRIES {
        let dir = seeds.join(target);
        fs::create_dir_all(&dir).expect("create seed directory");
        for (name, data) in generated_seeds(target) {
            fs::write(dir.join(name), data).expect("write seed");
        }
    }
    let sdp = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sdp");
    for entry in fs::read_dir(sdp).expect("sfu/testdata/sdp") {
        let path = entry.expect("testdata entry").path();
        let name = path.file_name().expect("file name").to_owned();
        fs::copy(&path, seeds.join("sdp_offer").join(name)).expect("copy SDP seed");
    }
}

/// Seeds built in code: binary packets that are tedious to keep by hand, signed STUN requests.
fn generated_seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let seeds: Vec<(&str, Vec<u8>)> = match target {
        "sdp_fragment" => vec![
            ("trickle.sdpfrag", TRICKLE.as_bytes().to_vec()),
            ("restart.sdpfrag", RESTART.as_bytes().to_vec()),
            ("end_of_candidates.sdpfrag", END_ONLY.as_bytes().to_vec()),
        ],
        "rtp_header" => rtp_seeds(),
        "rtcp" => rtcp_seeds(),
        "stun" => stun_seeds(),
        "keyframe" => keyframe_seeds(),
        "engine_datagrams" => engine_seeds(),
        "hls_ingest" => vec![("av_2s.bin", sfu::fuzzing::hls_ingest_seed())],
        "hls_request" => vec![
            ("blocking.txt", b"12\n3\nYES\npart12.3.m4s".to_vec()),
            ("segment.txt", b"5\n\n\nseg5.m4s".to_vec()),
            ("init.txt", b"\n\nv2\ninit0.mp4".to_vec()),
        ],
        "pixel_convert" => pixel_seeds(),
        "hls_segmenter" => sfu::fuzzing::hls_segmenter_seeds(),
        "mixer_packets" => sfu::fuzzing::mixer_packets_seeds(),
        "h265_depacketizer" => vec![("camera_2s.bin", sfu::fuzzing::h265_depacketizer_seed())],
        "h265_sps" => sfu::fuzzing::h265_sps_seeds(),
        "record_scan" => vec![
            ("av_3_fragments.mp4", sfu::fuzzing::record_scan_seed()),
            ("name.txt", b"cam0/cam0_2026-12-06T14-03-22Z-2.mp4".to_vec()),
        ],
        _ => Vec::new(),
    };
    seeds
        .into_iter()
        .map(|(name, data)| (name.to_owned(), data))
        .collect()
}

const TRICKLE: &str = "a=ice-ufrag:EsAw\r\n\
a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
a=mid:0\r\n\
a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n\
a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\n\
a=candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active generation 0 ufrag EsAw network-id 1\r\n\
a=candidate:2154773085 1 udp 1686052607 203.0.113.3 61764 typ srflx raddr 192.0.2.1 rport 61764 generation 0\r\n\
a=candidate:3 1 UDP 92217087 [2001:db8::5] 3478 typ relay raddr 0.0.0.0 rport 0\r\n\
a=candidate:4 1 udp 2122260223 8f3b1c2e-1c5e-4c3f-9e8e-0f6b9c0f6b9c.local 5000 typ host\r\n\
a=end-of-candidates\r\n";

const RESTART: &str = "a=ice-options:trickle ice2\r\n\
a=ice-ufrag:ZZZZ\r\n\
a=ice-pwd:0123456789abcdefghijklmnop\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
a=candidate:1 1 udp 2130706431 10.0.0.9 40000 typ host\r\n\
a=mid:0\r\n";

const END_ONLY: &str = "m=audio 9 UDP/TLS/RTP/SAVPF 0\na=mid:0\na=end-of-candidates\n";

fn rtp(first: u8, second: u8, extra: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![
        first, second, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef,
    ];
    p.extend_from_slice(extra);
    p.extend_from_slice(payload);
    p
}

fn rtp_seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("plain.rtp", rtp(0x80, 0xe6, &[], &[0x65, 0x88, 0x84, 0x00])),
        (
            "csrc_ext_padding.rtp",
            rtp(
                0x80 | 0x20 | 0x10 | 1,
                0x66,
                &[0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0],
                &[7, 8, 0, 2],
            ),
        ),
        (
            "two_byte_ext.rtp",
            rtp(
                0x90,
                0x6f,
                &[0x10, 0x00, 0, 2, 1, 2, 0xaa, 0xbb, 3, 0, 0, 0],
                &[0xfc, 0xff, 0xfe],
            ),
        ),
        ("header_only.rtp", rtp(0x80, 0x00, &[], &[])),
        (
            "fifteen_csrcs.rtp",
            rtp(0x8f, 0x60, &[0x11; 60], &[0x41, 0x9a]),
        ),
    ]
}

fn marshal(packet: &impl Marshal) -> Vec<u8> {
    packet.marshal().expect("marshal seed RTCP").to_vec()
}

fn rtcp_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let report = ReceptionReport {
        ssrc: 0x1111_2222,
        fraction_lost: 12,
        total_lost: 40,
        last_sequence_number: 70_000,
        jitter: 300,
        last_sender_report: 0x1234_5678,
        delay: 655,
    };
    let sr = SenderReport {
        ssrc: 0x0102_0304,
        ntp_time: 0xe000_0000_8000_0000,
        rtp_time: 90_000,
        packet_count: 10,
        octet_count: 12_000,
        reports: vec![report.clone()],
        ..Default::default()
    };
    let rr = ReceiverReport {
        ssrc: 1,
        reports: vec![report],
        ..Default::default()
    };
    let pli = PictureLossIndication {
        sender_ssrc: 1,
        media_ssrc: 0x0102_0304,
    };
    let fir = FullIntraRequest {
        sender_ssrc: 1,
        media_ssrc: 0,
        fir: vec![FirEntry {
            ssrc: 0x0102_0304,
            sequence_number: 7,
        }],
    };
    let nack = TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: 0x0102_0304,
        nacks: vec![
            NackPair {
                packet_id: 1000,
                lost_packets: 0b1010,
            },
            NackPair {
                packet_id: 65_535,
                lost_packets: 0xffff,
            },
        ],
    };
    let remb = ReceiverEstimatedMaximumBitrate {
        sender_ssrc: 1,
        bitrate: 2_500_000.0,
        ssrcs: vec![0x0102_0304, 0x0506_0708],
    };
    let bye = Goodbye {
        sources: vec![0x0102_0304],
        reason: bytes::Bytes::from_static(b"reload"),
    };
    // An SDES with one CNAME chunk, written by hand.
    let sdes = vec![
        0x81, 202, 0, 3, 0x01, 0x02, 0x03, 0x04, 1, 4, b'r', b'5', b'8', b'!', 0, 0,
    ];
    let mut compound = marshal(&rr);
    compound.extend(marshal(&pli));
    compound.extend(marshal(&nack));
    compound.extend_from_slice(&sdes);
    vec![
        ("sender_report.rtcp", marshal(&sr)),
        ("pli.rtcp", marshal(&pli)),
        ("fir.rtcp", marshal(&fir)),
        ("nack.rtcp", marshal(&nack)),
        ("remb.rtcp", marshal(&remb)),
        ("bye.rtcp", marshal(&bye)),
        ("sdes.rtcp", sdes),
        ("compound.rtcp", compound),
    ]
}

/// A Binding request as browsers send it, with a fixed transaction id.
fn binding_request(username: &str, password: &str, use_candidate: bool) -> Vec<u8> {
    let provider = rtc_dtls::crypto_provider::default_provider().expect("crypto provider");
    let mut setters: Vec<Box<dyn Setter>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId(*b"r58fuzzseed!")),
        Box::new(TextAttribute::new(ATTR_USERNAME, username.to_owned())),
        Box::new(RawAttribute {
            typ: ATTR_PRIORITY,
            length: 4,
            value: vec![0x6e, 0x7f, 0x1e, 0xff],
        }),
    ];
    if use_candidate {
        setters.push(Box::new(RawAttribute {
            typ: ATTR_USE_CANDIDATE,
            length: 0,
            value: vec![],
        }));
    }
    setters.push(Box::new(
        MessageIntegrity::new_short_term_integrity_with_provider(
            password.to_owned(),
            provider.crypto(),
        ),
    ));
    setters.push(Box::new(FINGERPRINT));
    let mut m = Message::new();
    m.build(&setters).expect("build seed STUN request");
    m.raw
}

fn stun_seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "binding_nominate.stun",
            binding_request("srvfrag:clifrag", STUN_PASSWORD, true),
        ),
        (
            "binding_check.stun",
            binding_request("srvfrag:clifrag", STUN_PASSWORD, false),
        ),
        (
            "binding_wrong_password.stun",
            binding_request("srvfrag:clifrag", "not-the-password-at-all", false),
        ),
        (
            "binding_no_colon.stun",
            binding_request("srvfragclifrag", STUN_PASSWORD, false),
        ),
        // A bare Binding request header: no attributes at all.
        (
            "binding_empty.stun",
            [
                &[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42][..],
                b"r58fuzzseed!",
            ]
            .concat(),
        ),
    ]
}

/// A 4x2 NV12 picture (stride 6) and a 4x2 YUYV one (stride 8), laid out as
/// `sfu::fuzzing::pixel_convert` reads them.
fn pixel_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut nv12 = vec![0, 1, 0, 6, 0, 2, 0, 0];
    nv12.extend((0..18).map(|i| i * 10));
    let mut yuyv = vec![1, 1, 0, 8, 0, 2, 0, 0];
    yuyv.extend((0..16).map(|i| 255 - i * 7));
    vec![("nv12_4x2.bin", nv12), ("yuyv_4x2.bin", yuyv)]
}

fn keyframe_seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("h264_idr.bin", vec![0x65, 0x88, 0x84, 0x00]),
        ("h264_sps.bin", vec![0x67, 0x42, 0xe0, 0x1f]),
        (
            "h264_stap_a.bin",
            vec![0x78, 0, 4, 0x67, 0x42, 0xe0, 0x1f, 0, 2, 0x68, 0xce],
        ),
        ("h264_fu_a_start.bin", vec![0x7c, 0x85, 0xb8, 0x00]),
        ("h264_fu_a_middle.bin", vec![0x7c, 0x05, 0xb8, 0x00]),
        ("vp8_key.bin", vec![0x10, 0x50, 0x00, 0x9d, 0x01, 0x2a]),
        ("vp8_delta.bin", vec![0x10, 0x51, 0x00]),
        (
            "vp8_extended.bin",
            vec![0x90, 0xf0, 0x81, 0x23, 0x05, 0x20, 0x50, 0x00],
        ),
    ]
}

/// `tag, len, body` operations for `engine_datagrams` (see its documentation).
fn op(tag: u8, body: &[u8]) -> Vec<u8> {
    let len = u8::try_from(body.len()).expect("seed op body fits a length byte");
    [&[tag, len][..], body].concat()
}

fn engine_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let keyframe = [
        &[0x80, 0x80, 0x03, 0xe8, 0, 0, 0, 0, 0, 0, 0, 0][..],
        &[0x78, 0, 4, 0x67, 0x42, 0xe0, 0x1f, 0, 2, 0x68, 0xce],
    ]
    .concat();
    let delta = [
        &[0x80, 0x80, 0x03, 0xe9, 0, 0, 0x0b, 0xb8, 0, 0, 0, 0][..],
        &[0x41, 0x9a, 0x22, 0x33],
    ]
    .concat();
    let opus = [
        &[0x80, 0x00, 0x00, 0x10, 0, 0, 0x03, 0xc0, 0, 0, 0, 0][..],
        &[0xfc, 0xff, 0xfe],
    ]
    .concat();
    let pli = PictureLossIndication {
        sender_ssrc: 1,
        media_ssrc: 0,
    };
    let nack = TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: 0,
        nacks: vec![NackPair {
            packet_id: 0,
            lost_packets: 3,
        }],
    };
    let sr = SenderReport {
        ssrc: 0,
        ntp_time: 0xe000_0000_0000_0000,
        rtp_time: 3000,
        packet_count: 2,
        octet_count: 30,
        ..Default::default()
    };
    let stun = binding_request("srvfrag:clifrag", STUN_PASSWORD, true);
    let dtls_garbage = [22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 1];
    let srtp_garbage = rtp(0x80, 0x66, &[], &[0; 20]);
    vec![
        (
            "media_and_feedback.ops",
            [
                op(3, &keyframe),
                op(3, &delta),
                op(0x0b, &opus),
                op(4, &marshal(&sr)),
                op(5, &marshal(&pli)),
                op(6, &[0, 0x00, 0x03]),
                vec![7, 25],
                op(5, &marshal(&nack)),
            ]
            .concat(),
        ),
        (
            "raw_from_everyone.ops",
            [
                op(0, &stun),
                op(1, &dtls_garbage),
                op(2, &stun),
                op(2, &srtp_garbage),
                op(0, &srtp_garbage),
                op(1, &[0xff, 0x00]),
            ]
            .concat(),
        ),
        (
            "new_source_after_gap.ops",
            [
                op(3, &delta),
                vec![7, 250],
                op(0x13, &keyframe),
                op(6, &[5, 0xff, 0xff]),
            ]
            .concat(),
        ),
    ]
}

// Regression tests for inputs the fuzzers found go below.

/// Found by `engine_datagrams` (crash-d13ccbaa64a04264fbab444863d2e0ff5447dc07, minimized by
/// hand). A 26-byte plain RTP packet whose two-byte header extension block is one word long
/// (`10 00 00 01`) but whose element `01 08` claims 8 bytes: `rtc-rtp` reads the element past
/// the block, `Header::marshal_size()` becomes 28, and `rtc-srtp`'s `encrypt_rtp` panics
/// (`split_at_mut`, "mid > len") inside `Client::send_rtp`, where an error belongs.
#[test]
fn client_send_rtp_survives_extension_past_its_block() {
    use sfu::engine::EngineConfig;
    use sfu::testing::client::ClientRole;
    use sfu::testing::harness::Harness;

    let packet = [
        0x90, 0x66, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, // V=2 X=1 PT 102, seq 1, SSRC 1
        0x10, 0x00, 0x00, 0x01, // two-byte extension profile, block of 1 word
        0x01, 0x08, 0x00, 0x00, // element id 1 claiming 8 bytes
        0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
    ];
    let mut h = Harness::new(EngineConfig::default()).expect("engine");
    let publisher = h.open(ClientRole::Publish, "cam").expect("publish");
    assert!(h.connect_all(), "publisher connects");
    let result = catch_unwind(AssertUnwindSafe(|| {
        h.clients[publisher].client.send_rtp(&packet)
    }));
    assert!(
        result.is_ok(),
        "send_rtp panicked instead of returning an error"
    );
}

/// Found by the 10-minute `hls_ingest` run (docs/reliability.md): the muxer's first listed
/// segment (msn 1, 10.28 s, so cut at the length limit) has no independent part at all and no
/// forced cut before it in the list, which the harness's invariant refuses.
#[test]
fn hls_ingest_first_segment_starts_independent() {
    sfu::fuzzing::hls_ingest(include_bytes!(
        "../testdata/fuzz-regressions/hls_ingest-segment-not-independent.bin"
    ));
}
