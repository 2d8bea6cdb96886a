//! The multivariant (master) playlist, written with `hls_m3u8`: one variant pointing at the
//! media playlist by a relative URI, with CODECS from the SPS and Opus.

use hls_m3u8::MasterPlaylist;
use hls_m3u8::tags::VariantStream;
use hls_m3u8::types::StreamData;
use thiserror::Error;

use super::segmenter::Segmenter;

#[derive(Debug, Error)]
pub enum MultivariantError {
    #[error("the stream's codecs are not known yet (no keyframe seen)")]
    NotReady,
    #[error("playlist: {0}")]
    Playlist(#[from] hls_m3u8::Error),
}

/// Used as BANDWIDTH until a segment is complete.
pub const DEFAULT_BANDWIDTH: u64 = 2_500_000;

/// Writes a multivariant playlist with one variant, `media_uri` (relative, e.g. `stream.m3u8`).
pub fn multivariant_playlist(s: &Segmenter, media_uri: &str) -> Result<String, MultivariantError> {
    let codecs = s.codecs().ok_or(MultivariantError::NotReady)?;
    let mut data = StreamData::builder();
    data.bandwidth(s.peak_bandwidth().unwrap_or(DEFAULT_BANDWIDTH))
        .codecs(codecs);
    if let Some((width, height)) = s.resolution() {
        data.resolution((width as usize, height as usize));
    }
    let playlist = MasterPlaylist::builder()
        .variant_streams(vec![VariantStream::ExtXStreamInf {
            uri: media_uri.to_owned().into(),
            frame_rate: None,
            audio: None,
            subtitles: None,
            closed_captions: None,
            stream_data: data.build()?,
        }])
        .build()?;
    Ok(playlist.to_string())
}
