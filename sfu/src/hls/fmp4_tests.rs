use super::*;
use mp4_atom::{Any, Decode, TrunSamples};

use crate::media::h264::AccessUnit;
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
        hevc: None,
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
    // A 16-bit length in avcC/hvcC: a longer parameter set is refused, not cut.
    bad = video();
    bad.pps = Bytes::from(vec![0x68; 70_000]);
    assert!(matches!(
        init_segment(Some(&bad), None),
        Err(Fmp4Error::ParameterSetSize(70_000))
    ));
}

/// (duration, sync, data) per sample.
type Samples = Vec<(u32, bool, Vec<u8>)>;

fn push_all(builder: &mut FragmentBuilder, video: &Samples, audio: &Samples) {
    for (duration, sync, data) in video {
        builder.push(Track::Video, 90_000 * 5, *duration, *sync, data);
    }
    for (duration, sync, data) in audio {
        builder.push(Track::Audio, 48_000 * 5, *duration, *sync, data);
    }
}

/// Reads a moof + mdat back: per traf, (track id, decode time, samples).
fn read_fragment(bytes: &[u8], sequence: u32) -> Vec<(u32, u64, Samples)> {
    let mut buf = Cursor::new(bytes);
    let Any::Moof(moof) = Any::decode(&mut buf).unwrap() else {
        panic!("no moof")
    };
    let Any::Mdat(_) = Any::decode(&mut buf).unwrap() else {
        panic!("no mdat")
    };
    assert_eq!(moof.mfhd.sequence_number, sequence);
    moof.traf
        .iter()
        .map(|traf| {
            assert!(traf.tfhd.default_base_is_moof);
            let trun = &traf.trun[0];
            let TrunSamples::Explicit(entries) = &trun.samples else {
                panic!("samples not explicit")
            };
            let mut at = trun.data_offset.unwrap() as usize;
            let samples = entries
                .iter()
                .map(|entry| {
                    let size = entry.size.unwrap() as usize;
                    let data = bytes[at..at + size].to_vec();
                    at += size;
                    let sync = entry.flags.unwrap() & 0x0001_0000 == 0;
                    (entry.duration.unwrap(), sync, data)
                })
                .collect();
            let decode_time = traf.tfdt.as_ref().unwrap().base_media_decode_time;
            (traf.tfhd.track_id, decode_time, samples)
        })
        .collect()
}

#[test]
fn fragment_round_trips_samples_and_offsets() {
    let video: Samples = (0..3u8)
        .map(|i| (3000, i == 0, vec![i; 100 + usize::from(i)]))
        .collect();
    let audio: Samples = (0..2u8).map(|i| (960, true, vec![0xa0 + i; 40])).collect();
    let mut builder = FragmentBuilder::new();
    push_all(&mut builder, &video, &audio);
    assert_eq!(builder.start(Track::Video), Some(90_000 * 5));
    assert_eq!(builder.end(Track::Audio), Some(48_000 * 5 + 2 * 960));
    let mut bytes = vec![0xee; 3]; // written after what the buffer holds
    builder.write(7, &mut bytes).unwrap();
    assert_eq!(&bytes[..3], &[0xee; 3]);
    let runs = read_fragment(&bytes[3..], 7);
    assert_eq!(
        runs,
        vec![
            (VIDEO_TRACK_ID, 90_000 * 5, video.clone()),
            (AUDIO_TRACK_ID, 48_000 * 5, audio.clone())
        ]
    );
    assert!(builder.is_empty(), "writing starts the next fragment");

    // The reused builder: a video-only fragment with a stretched last sample, then both again.
    builder.push(Track::Video, 7, 3000, true, &[1, 2, 3]);
    builder.push_with(Track::Video, 0, 3000, false, |out| out.extend([4, 5]));
    builder.stretch_last(Track::Video, 500);
    let mut second = Vec::new();
    builder.write(8, &mut second).unwrap();
    assert_eq!(
        read_fragment(&second, 8),
        vec![(
            VIDEO_TRACK_ID,
            7,
            vec![(3000, true, vec![1, 2, 3]), (3500, false, vec![4, 5])]
        )]
    );
    push_all(&mut builder, &video, &audio);
    let mut third = Vec::new();
    builder.write(7, &mut third).unwrap();
    assert_eq!(third, bytes[3..], "a reused builder writes the same bytes");
}

#[test]
fn empty_fragment_is_valid() {
    let mut bytes = Vec::new();
    FragmentBuilder::new().write(1, &mut bytes).unwrap();
    let mut buf = Cursor::new(&bytes[..]);
    assert!(matches!(Any::decode(&mut buf).unwrap(), Any::Moof(_)));
}

/// An H.264 keyframe carrying the test SPS and PPS in band.
fn h264_keyframe() -> AccessUnit {
    AccessUnit {
        timestamp: 0,
        nals: vec![
            Bytes::from_static(SPS),
            Bytes::from_static(PPS),
            Bytes::from_static(&[0x65, 1]),
        ],
        keyframe: true,
    }
}

#[test]
fn new_parameter_sets_are_found_and_parsed() {
    let keyframe = h264_keyframe();
    let params = VideoParams::changed(None, &keyframe).unwrap().unwrap();
    assert_eq!((params.width, params.height), (320, 240));
    assert!(
        VideoParams::changed(Some(&params), &keyframe)
            .unwrap()
            .is_none(),
        "the same"
    );
    let bare = AccessUnit {
        nals: vec![Bytes::from_static(&[0x65, 1])],
        ..keyframe.clone()
    };
    assert!(
        VideoParams::changed(Some(&params), &bare)
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        VideoParams::changed(None, &bare),
        Err(ParameterSetError::Missing)
    ));
}

#[test]
fn hvc1_init_segment_parses_back_with_the_hvcc_fields() {
    use crate::media::avcc::{AvccUnit, NalCodec};
    use crate::testing::h265::{PPS as HEVC_PPS, SPS_320X240, VPS_320X240, nal};

    let mut keyframe = AvccUnit::new(NalCodec::H265);
    for set in [VPS_320X240, SPS_320X240, HEVC_PPS] {
        keyframe.push_nal(set);
    }
    keyframe.push_nal(&nal(19, &[0xaf, 1]));
    let params = VideoParams::changed(None, &keyframe).unwrap().unwrap();
    assert_eq!((params.width, params.height), (320, 240));
    let init = init_segment(Some(&params), Some(&OpusParams::default())).unwrap();
    let mut buf = Cursor::new(&init[..]);
    let Any::Ftyp(_) = Any::decode(&mut buf).unwrap() else {
        panic!("no ftyp first")
    };
    let Any::Moov(moov) = Any::decode(&mut buf).unwrap() else {
        panic!("no moov")
    };
    let v = &moov.trak[0];
    assert_eq!(v.tkhd.track_id, VIDEO_TRACK_ID);
    assert_eq!((v.tkhd.width, v.tkhd.height), (320.into(), 240.into()));
    let mp4_atom::Codec::Hvc1(hvc1) = &v.mdia.minf.stbl.stsd.codecs[0] else {
        panic!("not hvc1: {:?}", v.mdia.minf.stbl.stsd.codecs)
    };
    assert_eq!((hvc1.visual.width, hvc1.visual.height), (320, 240));
    let hvcc = &hvc1.hvcc;
    assert_eq!(hvcc.configuration_version, 1);
    assert_eq!(
        (
            hvcc.general_profile_space,
            hvcc.general_tier_flag,
            hvcc.general_profile_idc,
            hvcc.general_level_idc
        ),
        (0, false, 1, 60),
        "Main, main tier, level 2"
    );
    assert_eq!(hvcc.general_profile_compatibility_flags, [0x60, 0, 0, 0]);
    assert_eq!(
        hvcc.general_constraint_indicator_flags,
        [0x90, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        (
            hvcc.chroma_format_idc,
            hvcc.bit_depth_luma_minus8,
            hvcc.bit_depth_chroma_minus8
        ),
        (1, 0, 0)
    );
    assert_eq!(
        (
            hvcc.num_temporal_layers,
            hvcc.temporal_id_nested,
            hvcc.length_size_minus_one
        ),
        (1, true, 3)
    );
    let arrays: Vec<(bool, u8, Vec<Vec<u8>>)> = hvcc
        .arrays
        .iter()
        .map(|a| (a.completeness, a.nal_unit_type, a.nalus.clone()))
        .collect();
    assert_eq!(
        arrays,
        [
            (true, 32, vec![VPS_320X240.to_vec()]),
            (true, 33, vec![SPS_320X240.to_vec()]),
            (true, 34, vec![HEVC_PPS.to_vec()]),
        ]
    );
    // The audio track is as with H.264.
    assert!(matches!(
        moov.trak[1].mdia.minf.stbl.stsd.codecs[0],
        mp4_atom::Codec::Opus(_)
    ));
}

#[test]
fn h265_parameter_changes_are_per_codec() {
    use crate::media::avcc::{AvccUnit, NalCodec};
    use crate::testing::h265::{PPS as HEVC_PPS, SPS_320X240, SPS_640X360, VPS_320X240, nal};

    let keyframe = |sets: &[&[u8]]| {
        let mut unit = AvccUnit::new(NalCodec::H265);
        sets.iter().for_each(|s| unit.push_nal(s));
        unit.push_nal(&nal(19, &[0xaf]));
        unit
    };
    let first = keyframe(&[VPS_320X240, SPS_320X240, HEVC_PPS]);
    let params = VideoParams::changed(None, &first).unwrap().unwrap();
    assert!(params.hevc.is_some());
    assert!(
        VideoParams::changed(Some(&params), &first)
            .unwrap()
            .is_none()
    );
    // Without a VPS an H.265 keyframe cannot start; later it goes on with the current sets.
    let no_vps = keyframe(&[SPS_320X240, HEVC_PPS]);
    assert!(matches!(
        VideoParams::changed(None, &no_vps),
        Err(ParameterSetError::Missing)
    ));
    assert!(
        VideoParams::changed(Some(&params), &no_vps)
            .unwrap()
            .is_none()
    );
    // A new SPS (a new size), or only a new VPS, is a change.
    let bigger = keyframe(&[VPS_320X240, SPS_640X360, HEVC_PPS]);
    let changed = VideoParams::changed(Some(&params), &bigger)
        .unwrap()
        .unwrap();
    assert_eq!((changed.width, changed.height), (640, 360));
    let mut other_vps = VPS_320X240.to_vec();
    *other_vps.last_mut().unwrap() ^= 1;
    let new_vps = keyframe(&[&other_vps, SPS_320X240, HEVC_PPS]);
    assert!(
        VideoParams::changed(Some(&params), &new_vps)
            .unwrap()
            .is_some()
    );
    // The H.264 SPS of the same size is another codec: a change too.
    let h264 = h264_keyframe();
    let avc = VideoParams::changed(Some(&params), &h264).unwrap().unwrap();
    assert!(avc.hevc.is_none());
    // A bad H.265 SPS is an error naming it.
    let bad = keyframe(&[VPS_320X240, &SPS_320X240[..8], HEVC_PPS]);
    let error = VideoParams::changed(None, &bad).unwrap_err();
    assert!(matches!(error, ParameterSetError::HevcSps(_)), "{error}");
}
