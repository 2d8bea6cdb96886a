//! CMAF fMP4 writing with `mp4-atom`: the init segment (ftyp + moov with mvex) and fragments
//! (moof + mdat), one per LL-HLS part.
//!
//! Tracks have fixed ids: video is track 1 (90 kHz), audio track 2 (48 kHz), so fragments never
//! need to look up the init segment. Samples have no composition offsets: WebRTC H.264 has no
//! B-frames, so decode and presentation order are the same.

use bytes::Bytes;
use mp4_atom::{
    Audio, Avc1, Avcc, Dinf, Dops, Dref, Encode, Ftyp, Hdlr, Matrix, Mdhd, Mdia, Mfhd, Minf, Moof,
    Moov, Mvex, Mvhd, Opus, Smhd, Stbl, Stsd, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun, TrunEntry,
    Url, Visual, Vmhd,
};
use thiserror::Error;

pub const VIDEO_TRACK_ID: u32 = 1;
pub const AUDIO_TRACK_ID: u32 = 2;
pub const VIDEO_TIMESCALE: u32 = 90_000;
pub const AUDIO_TIMESCALE: u32 = 48_000;

/// `sample_depends_on = 2` (an I-frame, depends on nothing).
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_depends_on = 1` and `sample_is_non_sync_sample`.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

#[derive(Debug, Error)]
pub enum Fmp4Error {
    #[error("MP4 box encoding failed: {0}")]
    Encode(#[from] mp4_atom::Error),
    #[error("an init segment needs at least one track")]
    NoTracks,
    #[error("picture size {0}x{1} does not fit an MP4 sample entry")]
    PictureSize(u32, u32),
    #[error("fragment larger than 4 GiB")]
    TooLarge,
}

/// What the video sample entry needs: the parameter sets (NAL units without start codes) and the
/// picture size (parse it from the SPS with [`super::sps::parse_sps`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoParams {
    pub sps: Bytes,
    pub pps: Bytes,
    pub width: u32,
    pub height: u32,
}

/// The Opus sample entry (RFC 7845 identification header fields, family 0: mono or stereo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusParams {
    pub channels: u8,
    pub pre_skip: u16,
    pub input_sample_rate: u32,
}

impl Default for OpusParams {
    fn default() -> Self {
        Self {
            channels: 2,
            pre_skip: 0,
            input_sample_rate: 48_000,
        }
    }
}

/// One sample of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Duration in the track's timescale.
    pub duration: u32,
    /// A sync sample (keyframe); every audio sample is one.
    pub sync: bool,
    /// AVCC-framed access unit, or one Opus packet.
    pub data: Bytes,
}

/// The samples of one track in a fragment, starting at `decode_time` (track timescale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRun {
    pub track_id: u32,
    pub decode_time: u64,
    pub samples: Vec<Sample>,
}

pub fn init_segment(
    video: Option<&VideoParams>,
    audio: Option<&OpusParams>,
) -> Result<Bytes, Fmp4Error> {
    if video.is_none() && audio.is_none() {
        return Err(Fmp4Error::NoTracks);
    }
    let mut trak = Vec::new();
    let mut trex = Vec::new();
    if let Some(video) = video {
        trak.push(video_trak(video)?);
        trex.push(trex_for(VIDEO_TRACK_ID));
    }
    if let Some(audio) = audio {
        trak.push(audio_trak(audio));
        trex.push(trex_for(AUDIO_TRACK_ID));
    }
    let ftyp = Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![b"iso6".into(), b"cmfc".into(), b"mp41".into()],
    };
    let moov = Moov {
        mvhd: Mvhd {
            timescale: 1000,
            next_track_id: AUDIO_TRACK_ID + 1,
            ..Default::default()
        },
        mvex: Some(Mvex { mehd: None, trex }),
        trak,
        ..Default::default()
    };
    let mut out = Vec::with_capacity(1024);
    ftyp.encode(&mut out)?;
    moov.encode(&mut out)?;
    Ok(out.into())
}

fn trex_for(track_id: u32) -> Trex {
    Trex {
        track_id,
        default_sample_description_index: 1,
        default_sample_duration: 0,
        default_sample_size: 0,
        default_sample_flags: 0,
    }
}

fn video_trak(video: &VideoParams) -> Result<Trak, Fmp4Error> {
    let too_big = || Fmp4Error::PictureSize(video.width, video.height);
    let width = u16::try_from(video.width).map_err(|_| too_big())?;
    let height = u16::try_from(video.height).map_err(|_| too_big())?;
    let avcc = Avcc::new(&video.sps, &video.pps)?;
    let avc1 = Avc1 {
        visual: Visual {
            data_reference_index: 1,
            width,
            height,
            compressor: "r58".into(),
            ..Default::default()
        },
        avcc,
        ..Default::default()
    };
    let minf = Minf {
        vmhd: Some(Vmhd::default()),
        ..media_info(avc1.into())
    };
    Ok(Trak {
        tkhd: Tkhd {
            track_id: VIDEO_TRACK_ID,
            enabled: true,
            in_movie: true,
            matrix: Matrix::default(),
            width: width.into(),
            height: height.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: VIDEO_TIMESCALE,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: b"vide".into(),
                name: "Video".into(),
            },
            minf,
        },
        ..Default::default()
    })
}

fn audio_trak(audio: &OpusParams) -> Trak {
    let opus = Opus {
        audio: Audio {
            data_reference_index: 1,
            channel_count: u16::from(audio.channels),
            sample_size: 16,
            sample_rate: 48_000u16.into(),
        },
        dops: Dops {
            output_channel_count: audio.channels,
            pre_skip: audio.pre_skip,
            input_sample_rate: audio.input_sample_rate,
            output_gain: 0,
            channel_mapping: None,
        },
        btrt: None,
    };
    let minf = Minf {
        smhd: Some(Smhd::default()),
        ..media_info(opus.into())
    };
    Trak {
        tkhd: Tkhd {
            track_id: AUDIO_TRACK_ID,
            enabled: true,
            in_movie: true,
            alternate_group: 1,
            volume: 1.into(),
            matrix: Matrix::default(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: AUDIO_TIMESCALE,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: b"soun".into(),
                name: "Audio".into(),
            },
            minf,
        },
        ..Default::default()
    }
}

/// A media information box with one sample entry and empty sample tables (fragmented file).
fn media_info(codec: mp4_atom::Codec) -> Minf {
    Minf {
        dinf: Dinf {
            dref: Dref {
                entries: vec![Url::default().into()],
            },
        },
        stbl: Stbl {
            stsd: Stsd {
                codecs: vec![codec],
            },
            stco: Some(Default::default()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A moof + mdat pair. Each run's samples are stored in order in the mdat, one run after another;
/// data offsets are relative to the moof (`default-base-is-moof`, as CMAF requires).
pub fn fragment(sequence_number: u32, runs: &[TrackRun]) -> Result<Bytes, Fmp4Error> {
    let mut moof = Moof {
        mfhd: Mfhd { sequence_number },
        traf: runs
            .iter()
            .map(|run| Traf {
                tfhd: Tfhd {
                    track_id: run.track_id,
                    default_base_is_moof: true,
                    ..Default::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: run.decode_time,
                }),
                trun: vec![Trun {
                    data_offset: Some(0),
                    samples: run
                        .samples
                        .iter()
                        .map(|s| TrunEntry {
                            duration: Some(s.duration),
                            size: Some(s.data.len() as u32),
                            flags: Some(if s.sync {
                                SYNC_SAMPLE_FLAGS
                            } else {
                                NON_SYNC_SAMPLE_FLAGS
                            }),
                            cts: None,
                        })
                        .collect::<Vec<_>>()
                        .into(),
                }],
                ..Default::default()
            })
            .collect(),
    };
    let payload: usize = runs
        .iter()
        .flat_map(|r| &r.samples)
        .map(|s| s.data.len())
        .sum();
    // Encode once to learn the moof's size (the offsets are fixed-width), then set them.
    let mut probe = Vec::new();
    moof.encode(&mut probe)?;
    let moof_size = probe.len();
    let mdat_size = payload + 8;
    if moof_size + mdat_size > u32::MAX as usize {
        return Err(Fmp4Error::TooLarge);
    }
    let mut offset = moof_size + 8;
    for (traf, run) in moof.traf.iter_mut().zip(runs) {
        if let Some(trun) = traf.trun.first_mut() {
            trun.data_offset = Some(i32::try_from(offset).map_err(|_| Fmp4Error::TooLarge)?);
        }
        offset += run.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    let mut out = Vec::with_capacity(moof_size + mdat_size);
    moof.encode(&mut out)?;
    debug_assert_eq!(out.len(), moof_size);
    out.extend_from_slice(&(mdat_size as u32).to_be_bytes());
    out.extend_from_slice(b"mdat");
    for sample in runs.iter().flat_map(|r| &r.samples) {
        out.extend_from_slice(&sample.data);
    }
    Ok(out.into())
}

#[cfg(test)]
#[path = "fmp4_tests.rs"]
mod tests;
