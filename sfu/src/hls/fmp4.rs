//! CMAF fMP4 writing with `mp4-atom`: the init segment (ftyp + moov with mvex) and fragments
//! (moof + mdat), one per LL-HLS part.
//!
//! Tracks have fixed ids: video is track 1 (90 kHz), audio track 2 (48 kHz), so fragments never
//! need to look up the init segment. Video is H.264 (`avc1`) or, for the recorder, H.265
//! (`hvc1`, its VPS, SPS and PPS in the sample entry only). Samples have no composition
//! offsets: WebRTC H.264 has no B-frames, nor do the IP cameras' low-latency streams r58 takes,
//! so decode and presentation order are the same.

use bytes::Bytes;
use mp4_atom::{
    Audio, Avc1, Avcc, Dinf, Dops, Dref, Encode, Ftyp, Hdlr, Hvc1, HvcCArray, Hvcc, Matrix, Mdhd,
    Mdia, Mfhd, Minf, Moof, Moov, Mvex, Mvhd, Opus, Smhd, Stbl, Stsd, Tfdt, Tfhd, Tkhd, Traf, Trak,
    Trex, Trun, TrunEntry, TrunSamples, Url, Visual, Vmhd,
};
use thiserror::Error;

use super::sps::{SpsError, parse_sps};
use crate::media::avcc::{NalCodec, Picture};
use crate::media::h265::{self, HevcSps};

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
    #[error("a parameter set of {0} bytes does not fit an MP4 sample entry (at most 65535)")]
    ParameterSetSize(usize),
    #[error("fragment larger than 4 GiB")]
    TooLarge,
}

/// What the video sample entry needs: the parameter sets (NAL units without start codes) and the
/// picture size (parse it from the SPS with [`super::sps::parse_sps`] or
/// [`crate::media::h265::parse_sps`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoParams {
    pub sps: Bytes,
    pub pps: Bytes,
    pub width: u32,
    pub height: u32,
    /// H.265 (`hvc1`): its VPS and the SPS fields `hvcC` takes. None: H.264 (`avc1`).
    pub hevc: Option<HevcParams>,
}

/// The H.265 part of [`VideoParams`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcParams {
    pub vps: Bytes,
    pub sps: HevcSps,
}

/// Why a keyframe's parameter sets give no [`VideoParams`].
#[derive(Debug, Error)]
pub enum ParameterSetError {
    #[error(
        "keyframe without its parameter sets (SPS and PPS, and VPS for H.265) before any were \
         seen"
    )]
    Missing,
    #[error("bad SPS: {0}")]
    Sps(#[from] SpsError),
    #[error("bad SPS: {0}")]
    HevcSps(#[from] h265::SpsError),
}

impl VideoParams {
    /// The parameter sets a keyframe carries, when they differ from `current` (`None`: the
    /// same, or none carried and `current` goes on). A new SPS is parsed for the picture size.
    ///
    /// An H.264 keyframe needs its SPS and PPS, an H.265 one its VPS too; any of them new (or a
    /// new codec) is a change, which makes a new init segment.
    pub fn changed(
        current: Option<&VideoParams>,
        keyframe: &impl Picture,
    ) -> Result<Option<VideoParams>, ParameterSetError> {
        let codec = keyframe.codec();
        let vps = match codec {
            NalCodec::H264 => Some(None),
            NalCodec::H265 => keyframe.vps().map(Some),
        };
        let (Some(vps), (Some(sps), Some(pps))) = (vps, keyframe.sps_pps()) else {
            return match current {
                Some(_) => Ok(None),
                None => Err(ParameterSetError::Missing),
            };
        };
        if current.is_some_and(|v| {
            v.sps == sps && v.pps == pps && v.hevc.as_ref().map(|h| &h.vps[..]) == vps
        }) {
            return Ok(None);
        }
        let (width, height, hevc) = match vps {
            None => {
                let info = parse_sps(sps)?;
                (info.width, info.height, None)
            }
            Some(vps) => {
                let info = h265::parse_sps(sps)?;
                let hevc = HevcParams {
                    vps: Bytes::copy_from_slice(vps),
                    sps: info,
                };
                (info.width, info.height, Some(hevc))
            }
        };
        Ok(Some(VideoParams {
            sps: Bytes::copy_from_slice(sps),
            pps: Bytes::copy_from_slice(pps),
            width,
            height,
            hevc,
        }))
    }
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
    // avcC and hvcC give each parameter set a 16-bit length.
    let vps = video.hevc.as_ref().map(|h| &h.vps[..]);
    if let Some(set) = [Some(&video.sps[..]), Some(&video.pps[..]), vps]
        .into_iter()
        .flatten()
        .find(|set| set.len() > usize::from(u16::MAX))
    {
        return Err(Fmp4Error::ParameterSetSize(set.len()));
    }
    let visual = Visual {
        data_reference_index: 1,
        width,
        height,
        compressor: "r58".into(),
        ..Default::default()
    };
    let codec: mp4_atom::Codec = match &video.hevc {
        None => Avc1 {
            visual,
            avcc: Avcc::new(&video.sps, &video.pps)?,
            ..Default::default()
        }
        .into(),
        Some(hevc) => Hvc1 {
            visual,
            hvcc: hvcc(hevc, &video.sps, &video.pps),
            ..Default::default()
        }
        .into(),
    };
    let minf = Minf {
        vmhd: Some(Vmhd::default()),
        ..media_info(codec)
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

/// The HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3.1) of these parameter sets.
fn hvcc(hevc: &HevcParams, sps: &[u8], pps: &[u8]) -> Hvcc {
    let info = &hevc.sps;
    // `hvc1`: every parameter set is here and none in the samples (array_completeness 1).
    let array = |nal_unit_type: u8, nal: &[u8]| HvcCArray {
        completeness: true,
        nal_unit_type,
        nalus: vec![nal.to_vec()],
    };
    Hvcc {
        configuration_version: 1,
        general_profile_space: info.general_profile_space,
        general_tier_flag: info.general_tier_flag,
        general_profile_idc: info.general_profile_idc,
        general_profile_compatibility_flags: info.general_profile_compatibility_flags,
        general_constraint_indicator_flags: info.general_constraint_indicator_flags,
        general_level_idc: info.general_level_idc,
        // Unknown without the VUI: 0 (no segmentation or parallelism promised).
        min_spatial_segmentation_idc: 0,
        parallelism_type: 0,
        chroma_format_idc: info.chroma_format_idc,
        bit_depth_luma_minus8: info.bit_depth_luma - 8,
        bit_depth_chroma_minus8: info.bit_depth_chroma - 8,
        // Unspecified frame rate: cameras vary theirs.
        avg_frame_rate: 0,
        constant_frame_rate: 0,
        num_temporal_layers: info.sub_layers,
        temporal_id_nested: info.temporal_id_nested,
        // Samples are AVCC: 4-byte lengths.
        length_size_minus_one: 3,
        arrays: vec![
            array(h265::nal_type::VPS, &hevc.vps),
            array(h265::nal_type::SPS, sps),
            array(h265::nal_type::PPS, pps),
        ],
    }
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

/// Which of the two tracks a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Video,
    Audio,
}

impl Track {
    pub fn id(self) -> u32 {
        match self {
            Track::Video => VIDEO_TRACK_ID,
            Track::Audio => AUDIO_TRACK_ID,
        }
    }
}

/// One track's run in the fragment being built: its trun entries and samples' bytes, and a
/// `traf` kept for reuse (the entries move into it while the moof is encoded).
#[derive(Debug)]
struct RunBuilder {
    traf: Traf,
    entries: Vec<TrunEntry>,
    /// Decode time of the first sample, and where the last one ends (track timescale).
    start: u64,
    end: u64,
    data: Vec<u8>,
}

impl RunBuilder {
    fn new(track: Track) -> Self {
        Self {
            traf: Traf {
                tfhd: Tfhd {
                    track_id: track.id(),
                    default_base_is_moof: true,
                    ..Default::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: 0,
                }),
                trun: vec![Trun {
                    data_offset: Some(0),
                    samples: TrunSamples::Explicit(Vec::new()),
                }],
                ..Default::default()
            },
            entries: Vec::new(),
            start: 0,
            end: 0,
            data: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.data.clear();
    }
}

/// Builds moof + mdat fragments sample by sample, for the LL-HLS segmenter (a fragment per
/// part) and the recorder (a fragment per second at most). The boxes and buffers are kept and
/// reused, so once they have grown to the largest fragment, building one allocates nothing.
///
/// Samples of each track go into the mdat in order, video's run before audio's; data offsets
/// are relative to the moof (`default-base-is-moof`, as CMAF requires).
#[derive(Debug)]
pub struct FragmentBuilder {
    video: RunBuilder,
    audio: RunBuilder,
    moof: Moof,
}

impl Default for FragmentBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl FragmentBuilder {
    pub fn new() -> Self {
        Self {
            video: RunBuilder::new(Track::Video),
            audio: RunBuilder::new(Track::Audio),
            moof: Moof {
                mfhd: Mfhd { sequence_number: 0 },
                traf: Vec::with_capacity(2),
            },
        }
    }

    fn run(&self, track: Track) -> &RunBuilder {
        match track {
            Track::Video => &self.video,
            Track::Audio => &self.audio,
        }
    }

    fn run_mut(&mut self, track: Track) -> &mut RunBuilder {
        match track {
            Track::Video => &mut self.video,
            Track::Audio => &mut self.audio,
        }
    }

    /// Adds a sample whose bytes `write` appends (an access unit in AVCC form, an Opus
    /// packet); the track's first sample sets its run's decode time.
    pub fn push_with(
        &mut self,
        track: Track,
        decode_time: u64,
        duration: u32,
        sync: bool,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let run = self.run_mut(track);
        if run.entries.is_empty() {
            run.start = decode_time;
            run.end = decode_time;
        }
        let before = run.data.len();
        write(&mut run.data);
        let size = (run.data.len() - before) as u32;
        run.end += u64::from(duration);
        run.entries.push(TrunEntry {
            duration: Some(duration),
            size: Some(size),
            flags: Some(if sync {
                SYNC_SAMPLE_FLAGS
            } else {
                NON_SYNC_SAMPLE_FLAGS
            }),
            cts: None,
        });
    }

    /// Adds a sample with these bytes.
    pub fn push(&mut self, track: Track, decode_time: u64, duration: u32, sync: bool, data: &[u8]) {
        self.push_with(track, decode_time, duration, sync, |out| {
            out.extend_from_slice(data)
        });
    }

    /// Lengthens the track's last sample by `ticks` (over a gap left by a lost packet).
    pub fn stretch_last(&mut self, track: Track, ticks: u32) {
        let run = self.run_mut(track);
        if let Some(last) = run.entries.last_mut() {
            last.duration = Some(last.duration.unwrap_or(0).saturating_add(ticks));
            run.end += u64::from(ticks);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.video.entries.is_empty() && self.audio.entries.is_empty()
    }

    /// Samples of the track in the open fragment.
    pub fn samples(&self, track: Track) -> usize {
        self.run(track).entries.len()
    }

    /// Decode time of the track's first sample in the open fragment.
    pub fn start(&self, track: Track) -> Option<u64> {
        let run = self.run(track);
        (!run.entries.is_empty()).then_some(run.start)
    }

    /// Where the track's last sample in the open fragment ends.
    pub fn end(&self, track: Track) -> Option<u64> {
        let run = self.run(track);
        (!run.entries.is_empty()).then_some(run.end)
    }

    /// Drops the open fragment's samples.
    pub fn clear(&mut self) {
        self.video.clear();
        self.audio.clear();
    }

    /// Appends the open fragment to `out` as moof + mdat with this sequence number, and
    /// starts the next (empty) one. An empty fragment is a moof without runs and an empty mdat.
    pub fn write(&mut self, sequence_number: u32, out: &mut Vec<u8>) -> Result<(), Fmp4Error> {
        let result = self.encode(sequence_number, out);
        // The trafs go back to their runs whatever happened.
        for mut traf in self.moof.traf.drain(..) {
            let run = if traf.tfhd.track_id == VIDEO_TRACK_ID {
                &mut self.video
            } else {
                &mut self.audio
            };
            if let Some(trun) = traf.trun.first_mut()
                && let TrunSamples::Explicit(entries) =
                    std::mem::replace(&mut trun.samples, TrunSamples::Explicit(Vec::new()))
            {
                run.entries = entries;
            }
            run.traf = traf;
        }
        self.clear();
        result
    }

    fn encode(&mut self, sequence_number: u32, out: &mut Vec<u8>) -> Result<(), Fmp4Error> {
        self.moof.mfhd.sequence_number = sequence_number;
        let payload = self.video.data.len() + self.audio.data.len();
        for run in [&mut self.video, &mut self.audio] {
            if !run.entries.is_empty() {
                if let Some(tfdt) = run.traf.tfdt.as_mut() {
                    tfdt.base_media_decode_time = run.start;
                }
                if let Some(trun) = run.traf.trun.first_mut() {
                    trun.samples = TrunSamples::Explicit(std::mem::take(&mut run.entries));
                }
                self.moof.traf.push(std::mem::take(&mut run.traf));
            }
        }
        // Encode once to learn the moof's size (the offsets are fixed-width), then set them.
        let base = out.len();
        self.moof.encode(out)?;
        let moof_size = out.len() - base;
        out.truncate(base);
        let mdat_size = payload + 8;
        if moof_size + mdat_size > u32::MAX as usize {
            return Err(Fmp4Error::TooLarge);
        }
        let mut offset = moof_size + 8;
        for traf in &mut self.moof.traf {
            let data = if traf.tfhd.track_id == VIDEO_TRACK_ID {
                &self.video.data
            } else {
                &self.audio.data
            };
            if let Some(trun) = traf.trun.first_mut() {
                trun.data_offset = Some(i32::try_from(offset).map_err(|_| Fmp4Error::TooLarge)?);
            }
            offset += data.len();
        }
        out.reserve(moof_size + mdat_size);
        self.moof.encode(out)?;
        debug_assert_eq!(out.len() - base, moof_size);
        out.extend_from_slice(&(mdat_size as u32).to_be_bytes());
        out.extend_from_slice(b"mdat");
        out.extend_from_slice(&self.video.data);
        out.extend_from_slice(&self.audio.data);
        Ok(())
    }
}

#[cfg(test)]
#[path = "fmp4_tests.rs"]
mod tests;
