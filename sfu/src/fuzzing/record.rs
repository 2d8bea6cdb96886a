//! Fuzz entries of the recorder: what it reads back from disk on start (a recording after a
//! crash) and the file names the HTTP routes accept.

use std::io::Cursor;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;

use crate::hls::OpusParams;
use crate::media::h264::AccessUnit;
use crate::record::names::parse_relative;
use crate::record::scan::{Repair, scan};
use crate::record::{FileEvent, FileWriter, WriterConfig};

/// Fuzz entry: bytes as a recording file, through [`scan`]; a file cut where the scan says
/// must scan as complete, with the same fragments. Also the bytes as `stream/file` through
/// [`parse_relative`]: an accepted name never leaves its stream's directory.
pub fn record_scan(data: &[u8]) {
    let len = data.len() as u64;
    if let Ok(report) = scan(&mut Cursor::new(data), len) {
        assert!(report.complete_len <= len);
        if let Repair::Truncate(keep) = report.repair() {
            let kept = &data[..keep as usize];
            let again = scan(&mut Cursor::new(kept), keep).expect("a cursor does not fail");
            assert_eq!(again.repair(), Repair::Nothing, "{again:?}");
            assert_eq!(again.fragments, report.fragments);
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Some((stream, file)) = text.split_once('/')
        && parse_relative(stream, file).is_some()
    {
        assert!(!file.contains('/') && !file.contains("..") && !stream.contains('/'));
        assert!(stream != "." && stream != "..");
    }
}

/// A small recording (H.264 and Opus, three fragments) as a seed for [`record_scan`].
pub fn record_scan_seed() -> Vec<u8> {
    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];
    let config = WriterConfig {
        segment: Duration::from_secs(600),
        fragment_max: Duration::from_millis(100),
    };
    let Ok(mut writer) = FileWriter::new("seed", config, true, Some(OpusParams::default())) else {
        return Vec::new();
    };
    let wall = UNIX_EPOCH + Duration::from_secs(1_796_565_802);
    for i in 0..9u32 {
        let keyframe = i % 3 == 0;
        let mut nals = Vec::new();
        if keyframe {
            nals.extend([Bytes::from_static(SPS), Bytes::from_static(PPS)]);
            nals.push(Bytes::from(vec![0x65, 0x88, i as u8]));
        } else {
            nals.push(Bytes::from(vec![0x41, 0x9a, i as u8]));
        }
        let unit = AccessUnit {
            timestamp: i * 3000,
            nals,
            keyframe,
        };
        let dts = u64::from(i) * 3000;
        let _ = writer.push_video(dts, wall, &unit);
        let _ = writer.push_audio(
            dts * 48 / 90,
            wall,
            &Bytes::from_static(&[0xf8, 0x01, 0x02]),
        );
    }
    let _ = writer.finish();
    let mut out = Vec::new();
    while let Some(event) = writer.poll_event() {
        if let FileEvent::Write { bytes, .. } = event {
            out.extend_from_slice(bytes);
        }
    }
    out
}
