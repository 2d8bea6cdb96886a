use super::*;
use std::io::Cursor;

use mp4_atom::{Any, DecodeMaybe, Moof};

use crate::media::avcc::{AvccUnit, NalCodec};
use crate::media::h264::AccessUnit;
use crate::record::scan::{Repair, scan};

const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
    0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
];
const SPS_HIGH: &[u8] = &[
    0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0x9e, 0xa2, 0x30, 0x11, 0x00, 0x00, 0x03, 0x00,
    0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x14, 0x29, 0x96,
];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];
/// Opus TOC: config 31 (CELT fullband 20 ms), mono, one frame.
const OPUS_20MS: &[u8] = &[0xf8, 0x01, 0x02];

fn wall(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_796_565_802_000 + ms)
}

/// Frame `i`: its number in the slice's last two bytes, so files can be checked frame by frame.
fn unit(i: u32, keyframe: bool, sps: &'static [u8]) -> AccessUnit {
    let [hi, lo] = (i as u16).to_be_bytes();
    let mut nals = Vec::new();
    if keyframe {
        nals.push(Bytes::from_static(sps));
        nals.push(Bytes::from_static(PPS));
        nals.push(Bytes::from(vec![0x65, 0x88, hi, lo]));
    } else {
        nals.push(Bytes::from(vec![0x41, 0x9a, hi, lo]));
    }
    AccessUnit {
        timestamp: i * 3000,
        nals,
        keyframe,
    }
}

/// The files the events describe: (relative path, bytes, how it closed).
fn written(writer: &mut FileWriter) -> Vec<(String, Vec<u8>, Option<CloseReason>)> {
    let mut out: Vec<(String, Vec<u8>, Option<CloseReason>)> = Vec::new();
    while let Some(event) = writer.poll_event() {
        match event {
            FileEvent::Open { relative_path, .. } => out.push((relative_path, Vec::new(), None)),
            FileEvent::Write { bytes, .. } => out.last_mut().unwrap().1.extend_from_slice(bytes),
            FileEvent::Close { reason } => out.last_mut().unwrap().2 = Some(reason),
        }
    }
    out
}

/// Every sample of a file, as (track id, decode time, data), read back through its boxes; and
/// the `prft` media times and wall clocks.
type Samples = Vec<(u32, u64, Vec<u8>)>;
fn read_back(file: &[u8]) -> (Samples, Vec<(u64, u64)>) {
    let mut samples = Vec::new();
    let mut prfts = Vec::new();
    let mut buf = file;
    let mut moof_at = 0;
    let mut last_moof = None;
    loop {
        let at = file.len() - buf.len();
        let Some(atom) = Any::decode_maybe(&mut buf).unwrap() else {
            break;
        };
        match atom {
            Any::Prft(p) => prfts.push((p.media_time, p.ntp_timestamp)),
            Any::Moof(m) => {
                moof_at = at;
                last_moof = Some(m);
            }
            Any::Mdat(_) => {
                let moof: Moof = last_moof.take().expect("mdat after moof");
                for traf in &moof.traf {
                    let trun = &traf.trun[0];
                    let mut offset = moof_at + trun.data_offset.unwrap() as usize;
                    let mut dts = traf.tfdt.as_ref().unwrap().base_media_decode_time;
                    for entry in trun.samples.iter() {
                        let size = entry.size.unwrap() as usize;
                        samples.push((
                            traf.tfhd.track_id,
                            dts,
                            file[offset..offset + size].to_vec(),
                        ));
                        offset += size;
                        dts += u64::from(entry.duration.unwrap());
                    }
                }
            }
            _ => {}
        }
    }
    (samples, prfts)
}

/// The frame numbers of a file's video samples.
fn frame_numbers(file: &[u8]) -> Vec<u32> {
    read_back(file)
        .0
        .iter()
        .filter(|(track, ..)| *track == VIDEO_TRACK_ID)
        .map(|(_, _, data)| {
            let n = data.len();
            u32::from(u16::from_be_bytes([data[n - 2], data[n - 1]]))
        })
        .collect()
}

fn config(segment_secs: u64) -> WriterConfig {
    WriterConfig {
        segment: Duration::from_secs(segment_secs),
        fragment_max: Duration::from_secs(1),
    }
}

#[test]
fn splits_at_a_keyframe_without_losing_or_repeating_a_frame() {
    let mut w = FileWriter::new("cam0", config(2), true, None).unwrap();
    // Frames before the first keyframe wait; 30 fps, a keyframe every 15 frames.
    w.push_video(0, wall(0), &unit(999, false, SPS)).unwrap();
    assert_eq!(w.stats.skipped_frames, 1);
    assert!(w.poll_event().is_none(), "no file before a keyframe");
    for i in 0..200u32 {
        let dts = 1_000_000 + u64::from(i) * 3000;
        w.push_video(dts, wall(u64::from(i) * 33), &unit(i, i % 15 == 0, SPS))
            .unwrap();
    }
    w.finish().unwrap();
    let files = written(&mut w);
    // 2 s = 60 frames: files start at frames 0, 60, 120, 180.
    assert_eq!(files.len(), 4);
    assert_eq!(files[0].0, "cam0/cam0_2026-12-06T14-03-22Z.mp4");
    let mut all = Vec::new();
    for (i, (_, bytes, reason)) in files.iter().enumerate() {
        let numbers = frame_numbers(bytes);
        assert_eq!(numbers[0] % 60, 0, "file {i} starts at a split keyframe");
        all.extend(numbers);
        let expected = if i == 3 {
            CloseReason::Finished
        } else {
            CloseReason::Split
        };
        assert_eq!(*reason, Some(expected));
        let report = scan(&mut Cursor::new(bytes), bytes.len() as u64).unwrap();
        assert_eq!(report.repair(), Repair::Nothing, "{report:?}");
        assert!(report.has_video && !report.has_audio);
    }
    assert_eq!(
        all,
        (0..200).collect::<Vec<_>>(),
        "every frame once, in order"
    );
    // Decode times restart in each file; the first file has 4 fragments of 15 frames (cut at
    // the keyframes), each with a prft whose wall clock is its first frame's.
    let (samples, prfts) = read_back(&files[1].1);
    assert_eq!(samples[0].1, 0);
    assert_eq!(prfts.len(), 4);
    assert_eq!(prfts[1], (15 * 3000, ntp(wall(75 * 33))));
    assert_eq!(w.stats.fragments, 4 + 4 + 4 + 2);
}

#[test]
fn fragments_hold_at_most_a_second_without_keyframes() {
    let mut w = FileWriter::new("cam0", config(600), true, None).unwrap();
    for i in 0..100u32 {
        w.push_video(u64::from(i) * 3000, wall(0), &unit(i, i == 0, SPS))
            .unwrap();
    }
    w.finish().unwrap();
    let files = written(&mut w);
    assert_eq!(files.len(), 1);
    let (samples, prfts) = read_back(&files[0].1);
    assert_eq!(samples.len(), 100);
    let starts: Vec<u64> = prfts.iter().map(|p| p.0).collect();
    assert_eq!(
        starts,
        vec![0, 90_000, 180_000, 270_000],
        "a fragment per second"
    );
}

#[test]
fn new_parameter_sets_start_a_new_file() {
    let mut w = FileWriter::new("cam1", config(600), true, None).unwrap();
    for i in 0..30u32 {
        w.push_video(u64::from(i) * 3000, wall(0), &unit(i, i % 10 == 0, SPS))
            .unwrap();
    }
    for i in 30..60u32 {
        let sps = if i >= 40 { SPS_HIGH } else { SPS };
        w.push_video(u64::from(i) * 3000, wall(0), &unit(i, i % 10 == 0, sps))
            .unwrap();
    }
    w.finish().unwrap();
    let files = written(&mut w);
    assert_eq!(
        files.len(),
        2,
        "same second: the second file is numbered by the driver"
    );
    assert_eq!(files[0].2, Some(CloseReason::NewParameters));
    assert_eq!(frame_numbers(&files[0].1), (0..40).collect::<Vec<_>>());
    assert_eq!(frame_numbers(&files[1].1), (40..60).collect::<Vec<_>>());
}

#[test]
fn audio_rides_along_and_audio_alone_makes_files_too() {
    let mut w = FileWriter::new("guest", config(600), true, Some(OpusParams::default())).unwrap();
    w.push_audio(0, wall(0), &Bytes::from_static(OPUS_20MS))
        .unwrap();
    assert!(!w.is_open(), "audio waits for video's keyframe");
    for i in 0..60u32 {
        let dts = 90_000 + u64::from(i) * 3000;
        w.push_video(dts, wall(0), &unit(i, i % 30 == 0, SPS))
            .unwrap();
        // Two 20 ms packets per 33 ms frame, roughly: 48 kHz ticks on the same timeline.
        let audio = dts * 48 / 90;
        w.push_audio(audio, wall(0), &Bytes::from_static(OPUS_20MS))
            .unwrap();
        w.push_audio(audio + 960, wall(0), &Bytes::from_static(OPUS_20MS))
            .unwrap();
    }
    w.finish().unwrap();
    let files = written(&mut w);
    let (samples, _) = read_back(&files[0].1);
    let audio: Vec<_> = samples.iter().filter(|s| s.0 == AUDIO_TRACK_ID).collect();
    assert_eq!(audio.len(), 120);
    assert_eq!(audio[0].1, 0, "audio starts with the file");
    let report = scan(&mut Cursor::new(&files[0].1), files[0].1.len() as u64).unwrap();
    assert!(report.has_audio && report.has_video);

    let mut w = FileWriter::new("mic", config(2), false, Some(OpusParams::default())).unwrap();
    for i in 0..250u64 {
        w.push_audio(i * 960, wall(i * 20), &Bytes::from_static(OPUS_20MS))
            .unwrap();
    }
    w.finish().unwrap();
    let files = written(&mut w);
    assert_eq!(files.len(), 3, "5 s of audio in 2 s files");
    let counts: Vec<usize> = files.iter().map(|f| read_back(&f.1).0.len()).collect();
    assert_eq!(counts, vec![100, 100, 50]);
}

#[test]
fn a_file_cut_anywhere_scans_to_its_last_complete_fragment() {
    let mut w = FileWriter::new("cam0", config(600), true, None).unwrap();
    for i in 0..90u32 {
        w.push_video(u64::from(i) * 3000, wall(0), &unit(i, i % 30 == 0, SPS))
            .unwrap();
    }
    w.finish().unwrap();
    let bytes = written(&mut w).remove(0).1;
    let full = scan(&mut Cursor::new(&bytes), bytes.len() as u64).unwrap();
    assert_eq!((full.fragments, full.duration_ms), (3, 3000));
    assert_eq!(full.first_wall, Some(wall(0)).map(|w| from_ntp(ntp(w))));
    let mut cuts = 0;
    for len in (0..bytes.len()).step_by(7) {
        let cut = &bytes[..len];
        let report = scan(&mut Cursor::new(cut), len as u64).unwrap();
        match report.repair() {
            Repair::Remove => assert!(!report.has_moov),
            Repair::Truncate(keep) => {
                cuts += 1;
                let kept = &cut[..keep as usize];
                let again = scan(&mut Cursor::new(kept), keep).unwrap();
                assert_eq!(again.repair(), Repair::Nothing);
                assert_eq!(again.fragments, report.fragments);
                assert_eq!(frame_numbers(kept).len() as u64, report.fragments * 30);
            }
            Repair::Nothing => assert_eq!(report.complete_len, len as u64),
        }
    }
    assert!(cuts > 10);
}

/// H.265 frame `i`: an IRAP picture (an IDR first, then CRAs, as x265 makes them) with `sps`,
/// or a trailing picture; its number in the slice's last two bytes.
fn hevc_unit(i: u32, keyframe: bool, sps: &[u8]) -> AvccUnit {
    use crate::testing::h265::{PPS as HEVC_PPS, VPS_320X240, nal};
    let [hi, lo] = (i as u16).to_be_bytes();
    let mut unit = AvccUnit::new(NalCodec::H265);
    if keyframe {
        for set in [VPS_320X240, sps, HEVC_PPS] {
            unit.push_nal(set);
        }
        let irap = if i == 0 { 19 } else { 21 };
        unit.push_nal(&nal(irap, &[0xaf, hi, lo]));
    } else {
        unit.push_nal(&nal(1, &[0x9a, hi, lo]));
    }
    unit.timestamp = i * 3000;
    unit
}

/// The video sample entry of a file: (four-character code, width, height).
fn video_entry(file: &[u8]) -> (String, u16, u16) {
    let mut buf = file;
    while let Some(atom) = Any::decode_maybe(&mut buf).unwrap() {
        if let Any::Moov(moov) = atom {
            let codec = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0];
            let (name, visual) = match codec {
                mp4_atom::Codec::Avc1(c) => ("avc1", &c.visual),
                mp4_atom::Codec::Hvc1(c) => ("hvc1", &c.visual),
                other => panic!("video entry {other:?}"),
            };
            return (name.to_owned(), visual.width, visual.height);
        }
    }
    panic!("no moov")
}

#[test]
fn h265_files_split_at_irap_pictures_and_at_new_parameter_sets() {
    use crate::testing::h265::{SPS_320X240, SPS_640X360};
    let mut w = FileWriter::new("ipcam0", config(2), true, None).unwrap();
    // A trailing picture before the first keyframe waits; then 30 fps with an IRAP picture
    // every 15 frames, the SPS growing to 640x360 at frame 150.
    w.push_video(0, wall(0), &hevc_unit(999, false, SPS_320X240))
        .unwrap();
    assert_eq!(w.stats.skipped_frames, 1);
    for i in 0..200u32 {
        let sps = if i >= 150 { SPS_640X360 } else { SPS_320X240 };
        let dts = 1_000_000 + u64::from(i) * 3000;
        w.push_video(
            dts,
            wall(u64::from(i) * 33),
            &hevc_unit(i, i % 15 == 0, sps),
        )
        .unwrap();
    }
    w.finish().unwrap();
    let files = written(&mut w);
    // 2 s = 60 frames: splits at the CRAs of frames 60 and 120; then the new SPS at 150.
    let starts: Vec<u32> = files.iter().map(|f| frame_numbers(&f.1)[0]).collect();
    assert_eq!(starts, [0, 60, 120, 150]);
    let reasons: Vec<_> = files.iter().map(|f| f.2).collect();
    assert_eq!(
        reasons,
        [
            Some(CloseReason::Split),
            Some(CloseReason::Split),
            Some(CloseReason::NewParameters),
            Some(CloseReason::Finished)
        ]
    );
    let entries: Vec<_> = files.iter().map(|f| video_entry(&f.1)).collect();
    assert_eq!(entries[0], ("hvc1".to_owned(), 320, 240));
    assert_eq!(entries[2], ("hvc1".to_owned(), 320, 240));
    assert_eq!(entries[3], ("hvc1".to_owned(), 640, 360));
    let mut all = Vec::new();
    for (_, bytes, _) in &files {
        all.extend(frame_numbers(bytes));
        let report = scan(&mut Cursor::new(bytes), bytes.len() as u64).unwrap();
        assert_eq!(report.repair(), Repair::Nothing, "{report:?}");
        // Samples hold the slices only: the parameter sets are in the hvcC.
        for (_, _, sample) in read_back(bytes).0 {
            let first = usize::from(u16::from_be_bytes([sample[2], sample[3]])) + 4;
            assert_eq!(first, sample.len(), "one NAL unit per sample");
            assert!(matches!((sample[4] >> 1) & 0x3f, 1 | 19 | 21), "{sample:?}");
        }
    }
    assert_eq!(all, (0..200).collect::<Vec<_>>(), "every frame once");
    // A keyframe file starts with an IRAP picture marked as a sync sample.
    let first = read_fragment_flags(&files[1].1);
    assert!(first[0] && !first[1], "{first:?}");
}

/// The sync flags of the first fragment's video samples.
fn read_fragment_flags(file: &[u8]) -> Vec<bool> {
    let mut buf = file;
    while let Some(atom) = Any::decode_maybe(&mut buf).unwrap() {
        if let Any::Moof(moof) = atom {
            return moof.traf[0].trun[0]
                .samples
                .iter()
                .map(|e| e.flags.unwrap() & 0x0001_0000 == 0)
                .collect();
        }
    }
    Vec::new()
}
