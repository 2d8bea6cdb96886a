//! A hub reader's tracks on one timeline, sans-IO: the input side the LL-HLS ingest
//! ([`super::ingest`]) and the recorder (`crate::record::input`) share. The first video track
//! of a codec the reader takes ([`VideoCodecs`]: H.264, or for the recorder H.264 or H.265) is
//! depacketized into AVCC pictures (in reused buffers), the first Opus track passes through,
//! other tracks are ignored; every picture and packet gets a decode time on a timeline both
//! tracks share, placed from the packets' arrival and then following their RTP timestamps.
//!
//! A track whose clock jumps forwards further than [`MAX_TIMESTAMP_JUMP`] restarted it (or
//! paused that long): [`Placed::Jumped`] tells the caller to start a new timeline
//! ([`StreamTracks::restart`]) rather than stretch one sample over the gap.

use std::time::{Duration, Instant};

use thiserror::Error;

use super::fmp4::{AUDIO_TIMESCALE, OpusParams, VIDEO_TIMESCALE};
use super::timeline::TimestampUnwrapper;
use crate::engine::ReaderTrack;
use crate::hub::ReaderPacket;
use crate::media::TrackKind;
use crate::media::avcc::{AvccUnit, NalCodec};
use crate::rtp::depacketize::DepacketizeError;
use crate::rtp::h264::H264Depacketizer;
use crate::rtp::h265::{H265Depacketizer, H265Format, H265FormatError};

/// A forward jump between a track's packets beyond this is a restarted clock.
pub const MAX_TIMESTAMP_JUMP: Duration = Duration::from_secs(5);
/// Decode times start this far into the timeline, so a track whose first packet arrives a
/// little after another's, or a timestamp a little before the first, stays positive.
pub const TIMELINE_HEADROOM: Duration = Duration::from_secs(10);

/// The video codecs a reader of the tracks takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodecs {
    /// LL-HLS: what browsers' players decode (`avc1`).
    H264,
    /// The recorder: `avc1` or `hvc1` files.
    H264OrH265,
}

impl VideoCodecs {
    fn take(self, name: &str) -> Option<NalCodec> {
        if name.eq_ignore_ascii_case("H264") {
            Some(NalCodec::H264)
        } else if self == Self::H264OrH265 && name.eq_ignore_ascii_case("H265") {
            Some(NalCodec::H265)
        } else {
            None
        }
    }

    fn names(self) -> &'static str {
        match self {
            Self::H264 => "H.264",
            Self::H264OrH265 => "H.264 or H.265",
        }
    }
}

/// Why a stream's tracks cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TracksError {
    /// No video track of the codecs taken and no Opus track; the codecs the stream has.
    #[error("needs {wanted} video or Opus audio; the stream has {has}")]
    NoUsableTrack { wanted: &'static str, has: String },
    #[error("its H.265 track {track}: {error}")]
    H265Format {
        track: usize,
        error: H265FormatError,
    },
}

/// Why one packet gave nothing.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("packet for track {0}, which the stream does not have")]
    UnknownTrack(usize),
    #[error(transparent)]
    Depacketize(#[from] DepacketizeError),
}

/// What one packet gave.
#[derive(Debug)]
pub enum Placed<'a> {
    /// Nothing yet (a picture's first packets) or an ignored track.
    Nothing,
    /// A complete picture; it stays valid until the next packet.
    Video { dts: u64, unit: &'a AvccUnit },
    /// An Opus packet.
    Audio { dts: u64, payload: &'a [u8] },
    /// The track's clock jumped: call [`StreamTracks::restart`].
    Jumped,
}

#[derive(Debug, Default)]
struct Timeline {
    unwrapper: TimestampUnwrapper,
    offset: Option<i128>,
    last: Option<u64>,
}

impl Timeline {
    /// The decode time of an RTP timestamp: the track's first packet is placed at its arrival
    /// after `origin`, later ones follow their timestamps. `None`: the clock jumped.
    fn place(
        &mut self,
        timestamp: u32,
        origin: Instant,
        arrival: Instant,
        rate: u32,
    ) -> Option<u64> {
        let extended = i128::from(self.unwrapper.unwrap(timestamp));
        let offset = *self.offset.get_or_insert_with(|| {
            let since = arrival.saturating_duration_since(origin) + TIMELINE_HEADROOM;
            (since.as_nanos() * u128::from(rate) / 1_000_000_000) as i128 - extended
        });
        let dts = (extended + offset).clamp(0, i128::from(u64::MAX)) as u64;
        let limit = MAX_TIMESTAMP_JUMP.as_secs() * u64::from(rate);
        if self
            .last
            .is_some_and(|last| dts > last.saturating_add(limit))
        {
            return None;
        }
        self.last = Some(dts);
        Some(dts)
    }
}

/// A video track's depacketizer, per codec.
#[derive(Debug)]
enum VideoDepacketizer {
    H264(H264Depacketizer),
    H265(H265Depacketizer),
}

impl VideoDepacketizer {
    fn codec(&self) -> NalCodec {
        match self {
            Self::H264(_) => NalCodec::H264,
            Self::H265(_) => NalCodec::H265,
        }
    }

    fn push_avcc(
        &mut self,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Option<&AvccUnit>, DepacketizeError> {
        match self {
            Self::H264(d) => d.push_avcc(sequence, timestamp, marker, payload),
            Self::H265(d) => d.push_avcc(sequence, timestamp, marker, payload),
        }
    }

    /// Fresh depacketizing from the next keyframe.
    fn restart(&mut self) {
        match self {
            Self::H264(d) => *d = H264Depacketizer::new(),
            Self::H265(d) => d.restart(),
        }
    }
}

#[derive(Debug)]
enum TrackInput {
    Video {
        /// Boxed: it holds two picture buffers, the other variants next to nothing.
        depacketizer: Box<VideoDepacketizer>,
        timeline: Timeline,
    },
    Audio {
        timeline: Timeline,
    },
    Ignored,
}

impl TrackInput {
    /// What [`StreamTracks::same_layout`] compares: the kind of track and its codec.
    fn layout(&self) -> (u8, Option<NalCodec>) {
        match self {
            Self::Video { depacketizer, .. } => (0, Some(depacketizer.codec())),
            Self::Audio { .. } => (1, None),
            Self::Ignored => (2, None),
        }
    }
}

/// One stream's tracks: packets in, pictures and Opus packets with decode times out.
#[derive(Debug)]
pub struct StreamTracks {
    tracks: Vec<TrackInput>,
    /// The publisher's epoch (the hub counts publishers of a stream).
    epoch: Option<u32>,
    /// The arrival time that decode time [`TIMELINE_HEADROOM`] stands for, per timeline.
    origin: Option<Instant>,
    video: bool,
    audio: Option<OpusParams>,
}

impl StreamTracks {
    /// The tracks as [`crate::engine::Engine::attach_reader`] reports them: the first video
    /// track of the codecs `video` takes and the first Opus track are carried.
    pub fn new(tracks: &[ReaderTrack], video: VideoCodecs) -> Result<Self, TracksError> {
        let mut has_video = false;
        let mut audio = None;
        let mut inputs = Vec::with_capacity(tracks.len());
        for (index, t) in tracks.iter().enumerate() {
            let codec = (t.kind == TrackKind::Video && !has_video)
                .then(|| video.take(&t.codec.name))
                .flatten();
            inputs.push(match (t.kind, codec) {
                (TrackKind::Video, Some(codec)) => {
                    has_video = true;
                    let depacketizer = match codec {
                        NalCodec::H264 => VideoDepacketizer::H264(H264Depacketizer::new()),
                        NalCodec::H265 => {
                            let format = H265Format::from_fmtp(&t.codec.fmtp).map_err(|error| {
                                TracksError::H265Format {
                                    track: index,
                                    error,
                                }
                            })?;
                            VideoDepacketizer::H265(H265Depacketizer::new(format))
                        }
                    };
                    TrackInput::Video {
                        depacketizer: Box::new(depacketizer),
                        timeline: Timeline::default(),
                    }
                }
                (TrackKind::Audio, _)
                    if audio.is_none() && t.codec.name.eq_ignore_ascii_case("opus") =>
                {
                    audio = Some(OpusParams {
                        channels: t.codec.channels.map_or(2, |c| c.clamp(1, 2) as u8),
                        ..OpusParams::default()
                    });
                    TrackInput::Audio {
                        timeline: Timeline::default(),
                    }
                }
                _ => TrackInput::Ignored,
            });
        }
        if !has_video && audio.is_none() {
            let names: Vec<&str> = tracks.iter().map(|t| t.codec.name.as_str()).collect();
            return Err(TracksError::NoUsableTrack {
                wanted: video.names(),
                has: if names.is_empty() {
                    "no tracks".to_owned()
                } else {
                    names.join(", ")
                },
            });
        }
        Ok(Self {
            tracks: inputs,
            epoch: None,
            origin: None,
            video: has_video,
            audio,
        })
    }

    /// A video track is carried.
    pub fn has_video(&self) -> bool {
        self.video
    }

    /// The Opus track's sample entry, when one is carried.
    pub fn audio(&self) -> Option<OpusParams> {
        self.audio
    }

    /// The same layout: the same kinds of track (and video codecs) at the same places.
    pub fn same_layout(&self, other: &StreamTracks) -> bool {
        self.tracks.len() == other.tracks.len()
            && self
                .tracks
                .iter()
                .zip(&other.tracks)
                .all(|(a, b)| a.layout() == b.layout())
    }

    /// Whether a packet of publisher `epoch` comes from another publisher than the packets
    /// before it (the caller starts a new timeline); the first packet's does not.
    pub fn publisher_changed(&mut self, epoch: u32) -> bool {
        let changed = self.epoch.is_some_and(|known| known != epoch);
        self.epoch = Some(epoch);
        changed
    }

    /// The next packet's publisher counts as the first (a re-attach that restarted already).
    pub fn forget_publisher(&mut self) {
        self.epoch = None;
    }

    /// One packet from the reader queue.
    pub fn place<'a>(&'a mut self, packet: &'a ReaderPacket) -> Result<Placed<'a>, PacketError> {
        let origin = *self.origin.get_or_insert(packet.arrival);
        match self.tracks.get_mut(packet.track) {
            None => Err(PacketError::UnknownTrack(packet.track)),
            Some(TrackInput::Ignored) => Ok(Placed::Nothing),
            Some(TrackInput::Video {
                depacketizer,
                timeline,
            }) => {
                let Some(unit) = depacketizer.push_avcc(
                    packet.sequence,
                    packet.timestamp,
                    packet.marker,
                    &packet.payload,
                )?
                else {
                    return Ok(Placed::Nothing);
                };
                Ok(
                    match timeline.place(unit.timestamp, origin, packet.arrival, VIDEO_TIMESCALE) {
                        Some(dts) => Placed::Video { dts, unit },
                        None => Placed::Jumped,
                    },
                )
            }
            Some(TrackInput::Audio { timeline }) => Ok(
                match timeline.place(packet.timestamp, origin, packet.arrival, AUDIO_TIMESCALE) {
                    Some(dts) => Placed::Audio {
                        dts,
                        payload: &packet.payload,
                    },
                    None => Placed::Jumped,
                },
            ),
        }
    }

    /// A new timeline (a new publisher, a restarted clock): fresh depacketizing from the next
    /// keyframe, times placed anew from the next packets' arrival.
    pub fn restart(&mut self) {
        self.origin = None;
        for track in &mut self.tracks {
            match track {
                TrackInput::Video {
                    depacketizer,
                    timeline,
                } => {
                    depacketizer.restart();
                    *timeline = Timeline::default();
                }
                TrackInput::Audio { timeline } => *timeline = Timeline::default(),
                TrackInput::Ignored => {}
            }
        }
    }
}
