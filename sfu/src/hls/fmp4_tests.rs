use super::*;
use mp4_atom::{Any, Decode, TrunSamples};
use std::io::Cursor;

const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
    0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

fn video() -> VideoParams {
    VideoParams {
        sps: Bytes::from_static(SPS),
        pps: Bytes::from_static(PPS),
        width: 320,
        height: 240,
    }
}

#[test]
fn init_segment_parses_back() {
    let init = init_segment(Some(&video()), Some(&OpusParams::default())).unwrap();
    let mut buf = Cursor::new(&init[..]);
    let Any::Ftyp(ftyp) = Any::decode(&mut buf).unwrap() else {
        panic!("no ftyp first")
    };
    assert_eq!(ftyp.major_brand, b"iso6".into());
    let Any::Moov(moov) = Any::decode(&mut buf).unwrap() else {
        panic!("no moov")
    };
    assert_eq!(buf.position() as usize, init.len());
    let trex = &moov.mvex.as_ref().unwrap().trex;
    assert_eq!(trex.len(), 2);
    assert_eq!(moov.trak.len(), 2);
    let v = &moov.trak[0];
    assert_eq!(v.tkhd.track_id, VIDEO_TRACK_ID);
    assert_eq!(v.mdia.mdhd.timescale, 90_000);
    let mp4_atom::Codec::Avc1(avc1) = &v.mdia.minf.stbl.stsd.codecs[0] else {
        panic!("not avc1")
    };
    assert_eq!((avc1.visual.width, avc1.visual.height), (320, 240));
    assert_eq!(avc1.avcc.sequence_parameter_sets, [SPS.to_vec()]);
    assert_eq!(avc1.avcc.picture_parameter_sets, [PPS.to_vec()]);
    assert_eq!(avc1.avcc.avc_profile_indication, 0x42);
    let a = &moov.trak[1];
    assert_eq!(a.tkhd.track_id, AUDIO_TRACK_ID);
    assert_eq!(a.mdia.mdhd.timescale, 48_000);
    let mp4_atom::Codec::Opus(opus) = &a.mdia.minf.stbl.stsd.codecs[0] else {
        panic!("not Opus")
    };
    assert_eq!(opus.dops.output_channel_count, 2);
    assert_eq!(opus.dops.input_sample_rate, 48_000);
}

#[test]
fn init_segment_needs_a_track_and_a_valid_sps() {
    assert!(matches!(init_segment(None, None), Err(Fmp4Error::NoTracks)));
    let mut bad = video();
    bad.sps = Bytes::from_static(&[0x67]);
    assert!(init_segment(Some(&bad), None).is_err());
    bad = video();
    bad.width = 70_000;
    assert!(init_segment(Some(&bad), None).is_err());
    assert!(init_segment(None, Some(&OpusParams::default())).is_ok());
}

#[test]
fn fragment_round_trips_samples_and_offsets() {
    let video_samples: Vec<Sample> = (0..3u8)
        .map(|i| Sample {
            duration: 3000,
            sync: i == 0,
            data: Bytes::from(vec![i; 100 + usize::from(i)]),
        })
        .collect();
    let audio_samples: Vec<Sample> = (0..2u8)
        .map(|i| Sample {
            duration: 960,
            sync: true,
            data: Bytes::from(vec![0xa0 + i; 40]),
        })
        .collect();
    let runs = [
        TrackRun {
            track_id: VIDEO_TRACK_ID,
            decode_time: 90_000 * 5,
            samples: video_samples.clone(),
        },
        TrackRun {
            track_id: AUDIO_TRACK_ID,
            decode_time: 48_000 * 5,
            samples: audio_samples.clone(),
        },
    ];
    let bytes = fragment(7, &runs).unwrap();
    let mut buf = Cursor::new(&bytes[..]);
    let Any::Moof(moof) = Any::decode(&mut buf).unwrap() else {
        panic!("no moof")
    };
    let Any::Mdat(mdat) = Any::decode(&mut buf).unwrap() else {
        panic!("no mdat")
    };
    assert_eq!(moof.mfhd.sequence_number, 7);
    assert_eq!(moof.traf.len(), 2);
    for (traf, run) in moof.traf.iter().zip(&runs) {
        assert_eq!(traf.tfhd.track_id, run.track_id);
        assert!(traf.tfhd.default_base_is_moof);
        assert_eq!(
            traf.tfdt.as_ref().unwrap().base_media_decode_time,
            run.decode_time
        );
        let trun = &traf.trun[0];
        let offset = trun.data_offset.unwrap() as usize;
        let TrunSamples::Explicit(entries) = &trun.samples else {
            panic!("samples not explicit")
        };
        let mut at = offset;
        for (entry, sample) in entries.iter().zip(&run.samples) {
            let size = entry.size.unwrap() as usize;
            assert_eq!(&bytes[at..at + size], &sample.data[..], "data offset");
            assert_eq!(entry.duration, Some(sample.duration));
            let flags = entry.flags.unwrap();
            assert_eq!(flags & 0x0001_0000 == 0, sample.sync, "sync flag");
            at += size;
        }
    }
    assert_eq!(mdat.data.len(), 3 * 100 + 3 + 2 * 40);
}

#[test]
fn empty_fragment_is_valid() {
    let bytes = fragment(1, &[]).unwrap();
    let mut buf = Cursor::new(&bytes[..]);
    assert!(matches!(Any::decode(&mut buf).unwrap(), Any::Moof(_)));
}
