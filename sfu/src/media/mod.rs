//! The bottom layer: what media is, independent of how it travels. Codec descriptions, the
//! kinds of tracks and sources, H.264 access units, pictures in AVCC form (H.264 or H.265),
//! and the parameter-set facts muxers need. Every other module may use these; this module
//! uses none of them.

pub mod avcc;
pub mod bits;
pub mod clock;
pub mod h264;
pub mod h265;
pub mod outputs;

pub use clock::WallClock;

/// The codec of a published stream, independent of any payload type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodecSpec {
    /// Encoding name (`H264`, `VP8`, `opus`).
    pub name: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Channel count, if given.
    pub channels: Option<u16>,
    /// The publisher's fmtp parameters.
    pub fmtp: String,
}

/// The value of `key` in an fmtp parameter list (`a=b;c=d`), key compared case-insensitively.
/// Works for any codec's fmtp (`apt=` of RTX, H.265's `sprop-*` too).
pub fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|param| {
        let (k, v) = param.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// Where a stream's media comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Whip,
    Camera,
    /// The switcher's program bus.
    Program,
    /// A guest's return feed from the switcher: the program picture and the program's audio
    /// without the guest's own voice (`<guest>.return`).
    Return,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Audio,
    Video,
}

/// Video codecs whose keyframes the hub recognizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    Vp8,
    /// Passed through from RTSP sources to RTSP readers and the recorder only (no WebRTC
    /// viewer here takes it).
    H265,
}

impl VideoCodec {
    /// Maps an SDP rtpmap encoding name to a codec we forward as video.
    pub fn from_sdp_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("H264") {
            Some(Self::H264)
        } else if name.eq_ignore_ascii_case("VP8") {
            Some(Self::Vp8)
        } else if name.eq_ignore_ascii_case("H265") {
            Some(Self::H265)
        } else {
            None
        }
    }
}
