//! Fuzz entries of H.265 recording: an IP camera's RTP payloads through the RFC 7798
//! depacketizer and the recorder (`hvc1` files), and SPS bytes through the HEVC SPS parser and
//! the `hvc1` sample entry built from it.

use std::io::Cursor;
use std::time::{Duration, Instant, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mp4_atom::{Any, Decode};

use crate::engine::ReaderTrack;
use crate::hls::fmp4::{VideoParams, init_segment};
use crate::media::avcc::{AvccUnit, NalCodec, Picture};
use crate::media::h265::{nal_type, nal_unit_type, parse_sps};
use crate::media::{CodecSpec, TrackKind, WallClock};
use crate::record::scan::{Repair, scan};
use crate::record::{FileEvent, StreamRecorder, WriterConfig};
use crate::rtp::h265::{H265Depacketizer, H265Format};
use crate::testing::h265::{PPS, SPS_320X240, VPS_320X240, nal};

use super::records::{push_record, reader_packets};

/// The camera's format parameters: its parameter sets when `sprop`, else none.
fn fmtp(sprop: bool) -> String {
    if !sprop {
        return String::new();
    }
    format!(
        "sprop-vps={};sprop-sps={};sprop-pps={}",
        BASE64.encode(VPS_320X240),
        BASE64.encode(SPS_320X240),
        BASE64.encode(PPS)
    )
}

/// Fuzz entry: an H.265 camera's packets. The first byte's bit 0 puts real parameter sets in
/// the track's `sprop-*`; then packets as records (`super::records`: flags, sequence,
/// timestamp and arrival deltas, payload; video on track 1, Opus on track 0).
///
/// The video packets go through an [`H265Depacketizer`] alone, and all packets through a
/// [`StreamRecorder`] writing 1 s files. Invariants: every picture holds a slice, its AVCC data
/// is whole NAL units of at least a header each, a keyframe holds an IRAP slice, and its MP4
/// sample leaves the parameter sets out; every file the recorder closes scans as complete.
pub fn h265_depacketizer(data: &[u8]) {
    let Some((&first, records)) = data.split_first() else {
        return;
    };
    let fmtp = fmtp(first & 1 != 0);
    let Ok(format) = H265Format::from_fmtp(&fmtp) else {
        return;
    };
    let mut depacketizer = H265Depacketizer::new(format);
    let packets = reader_packets(records, Instant::now());
    for packet in packets.iter().filter(|p| p.track == 1) {
        if let Ok(Some(unit)) = depacketizer.push_avcc(
            packet.sequence,
            packet.timestamp,
            packet.marker,
            &packet.payload,
        ) {
            check_picture(unit);
        }
    }

    let start = packets.first().map_or_else(Instant::now, |p| p.arrival);
    let clock = WallClock {
        instant: start,
        system: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    };
    let track = |kind, name: &str, clock_rate, fmtp: &str| ReaderTrack {
        kind,
        codec: CodecSpec {
            name: name.to_owned(),
            clock_rate,
            channels: (kind == TrackKind::Audio).then_some(2),
            fmtp: fmtp.to_owned(),
        },
    };
    let tracks = [
        track(TrackKind::Audio, "opus", 48_000, ""),
        track(TrackKind::Video, "H265", 90_000, &fmtp),
    ];
    let config = WriterConfig {
        segment: Duration::from_secs(1),
        fragment_max: Duration::from_millis(300),
    };
    let Ok(mut recorder) = StreamRecorder::new("ipcam0", config, &tracks, clock) else {
        return;
    };
    let mut file = Vec::new();
    for packet in &packets {
        let _ = recorder.handle_packet(packet);
        let _ = recorder.wants_keyframe();
        drain(&mut recorder, &mut file);
    }
    let _ = recorder.finish();
    drain(&mut recorder, &mut file);
}

fn check_picture(unit: &AvccUnit) {
    assert!(unit.has_slice(), "a picture without a slice came out");
    let mut covered = 0;
    let mut irap = false;
    for range in unit.nal_ranges() {
        assert!(range.len() >= 2, "a NAL unit shorter than its header");
        assert!(range.end <= unit.data().len(), "a NAL unit past the data");
        irap |= nal_type::IRAP.contains(&nal_unit_type(&unit.data()[range.clone()]));
        covered = range.end;
    }
    assert_eq!(covered, unit.data().len(), "the data is whole NAL units");
    assert_eq!(unit.is_keyframe(), irap, "a keyframe is an IRAP picture");
    let mut sample = Vec::new();
    unit.write_avcc(&mut sample);
    let mut at = 0;
    while at < sample.len() {
        let len = u32::from_be_bytes([sample[at], sample[at + 1], sample[at + 2], sample[at + 3]]);
        let nal = &sample[at + 4..at + 4 + len as usize];
        assert!(
            !(nal_type::VPS..=nal_type::PPS).contains(&nal_unit_type(nal)),
            "a parameter set in an hvc1 sample"
        );
        at += 4 + len as usize;
    }
}

/// Collects the recorder's files; each closed one must scan as complete.
fn drain(recorder: &mut StreamRecorder, file: &mut Vec<u8>) {
    while let Some(event) = recorder.poll_event() {
        match event {
            FileEvent::Open { .. } => file.clear(),
            FileEvent::Write { bytes, .. } => file.extend_from_slice(bytes),
            FileEvent::Close { .. } => {
                let report = scan(&mut Cursor::new(&file[..]), file.len() as u64)
                    .expect("a cursor does not fail");
                assert_eq!(report.repair(), Repair::Nothing, "{report:?}");
                assert!(report.has_moov, "{report:?}");
                file.clear();
            }
        }
    }
}

/// A camera's first 2 s as [`h265_depacketizer`] input: a keyframe each second (its parameter
/// sets in an aggregation packet, its slice in three fragmentation units), trailing pictures
/// between, and Opus.
pub fn h265_depacketizer_seed() -> Vec<u8> {
    let mut out = vec![1];
    let mut record = |flags: u8, ts_delta: u16, arrival_ms: u8, payload: &[u8]| {
        push_record(&mut out, flags, ts_delta, arrival_ms, payload);
    };
    for frame in 0..60u32 {
        let step = if frame == 0 { 0 } else { 30 }; // 3000 ticks / 100
        if frame % 30 == 0 {
            let mut ap = vec![nal_type::AP << 1, 1];
            for set in [VPS_320X240, SPS_320X240, PPS] {
                ap.extend((set.len() as u16).to_be_bytes());
                ap.extend_from_slice(set);
            }
            record(1, step, 33, &ap);
            let fu = nal_type::FU << 1;
            record(1, 0, 0, &[fu, 1, 0x80 | 19, 0xaf, 1, 2]);
            record(1, 0, 0, &[fu, 1, 19, 3, 4]);
            record(3, 0, 0, &[fu, 1, 0x40 | 19, 5, 6]);
        } else {
            record(3, step, 33, &nal(1, &[0x9a, frame as u8]));
        }
        if frame % 3 == 0 {
            record(0, 10, 0, &[0xf8, 0x01, 0x02]);
            record(0, 9, 0, &[0xf8, 0x03]);
        }
    }
    out
}

/// Fuzz entry: bytes as an H.265 SPS NAL unit through [`parse_sps`]. An SPS it accepts has a
/// picture size within level 6.2's and bit depths `hvcC` can say; with a VPS and PPS it makes
/// an `hvc1` init segment that mp4-atom reads back with the same size, fields and SPS.
pub fn h265_sps(data: &[u8]) {
    let Ok(info) = parse_sps(data) else {
        return;
    };
    assert!((1..=16_888).contains(&info.width) && (1..=16_888).contains(&info.height));
    assert!((8..=15).contains(&info.bit_depth_luma) && (8..=15).contains(&info.bit_depth_chroma));
    assert!(info.chroma_format_idc <= 3 && (1..=7).contains(&info.sub_layers));
    let mut keyframe = AvccUnit::new(NalCodec::H265);
    for set in [VPS_320X240, data, PPS] {
        keyframe.push_nal(set);
    }
    keyframe.push_nal(&nal(19, &[0xaf]));
    let params = VideoParams::changed(None, &keyframe)
        .expect("an accepted SPS makes parameters")
        .expect("the first parameters");
    let init = match init_segment(Some(&params), None) {
        Ok(init) => init,
        Err(e) => {
            assert!(data.len() > usize::from(u16::MAX), "{e}");
            return;
        }
    };
    let mut buf = Cursor::new(&init[..]);
    let _ftyp = Any::decode(&mut buf).expect("ftyp");
    let Ok(Any::Moov(moov)) = Any::decode(&mut buf) else {
        panic!("no moov read back")
    };
    let Some(mp4_atom::Codec::Hvc1(hvc1)) = moov.trak[0].mdia.minf.stbl.stsd.codecs.first() else {
        panic!("no hvc1 read back")
    };
    assert_eq!(
        (u32::from(hvc1.visual.width), u32::from(hvc1.visual.height)),
        (info.width, info.height)
    );
    let hvcc = &hvc1.hvcc;
    assert_eq!(
        (
            hvcc.general_profile_space,
            hvcc.general_tier_flag,
            hvcc.general_profile_idc,
            hvcc.general_level_idc
        ),
        (
            info.general_profile_space,
            info.general_tier_flag,
            info.general_profile_idc,
            info.general_level_idc
        )
    );
    assert_eq!(
        (hvcc.chroma_format_idc, hvcc.bit_depth_luma_minus8 + 8),
        (info.chroma_format_idc, info.bit_depth_luma)
    );
    assert_eq!(hvcc.arrays[1].nalus, [data.to_vec()]);
}

/// Real SPSes (see [`crate::testing::h265`]) as [`h265_sps`] seeds.
pub fn h265_sps_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use crate::testing::h265::{SPS_318X178_MAIN10, SPS_318X178_REXT422, SPS_640X360};
    vec![
        ("main_320x240.bin", SPS_320X240.to_vec()),
        ("main_640x360.bin", SPS_640X360.to_vec()),
        ("main10_318x178.bin", SPS_318X178_MAIN10.to_vec()),
        ("rext422_318x178.bin", SPS_318X178_REXT422.to_vec()),
    ]
}
