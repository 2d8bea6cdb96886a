//! LL-HLS (RFC 8216bis, Apple Low-Latency HLS), sans-IO: CMAF fMP4 fragments, parts and
//! segments cut from the hub's frames, the media and multivariant playlists, and the blocking
//! playlist reload decision. No sockets and no clocks here: time comes in with the samples and
//! the HTTP layer asks the [`Segmenter`] what exists and [`Progress::ready`] whether to wait.
//!
//! - [`fmp4`]: init segment and moof/mdat fragments (boxes from `mp4-atom`, built in reused
//!   buffers by [`fmp4::FragmentBuilder`]; the recorder writes its files with it too).
//! - [`sps`], [`opus`]: the few bitstream facts the muxer needs (bits read with
//!   [`crate::media::bits`]).
//! - [`segmenter`]: parts of ~PART-TARGET, segments cut at keyframes, 7 kept, discontinuities.
//! - [`playlist`] (hand-written LL-HLS tags) and [`multivariant`] (`hls_m3u8`).
//! - [`names`]: the relative URIs, parsed back strictly for the routes.
//! - [`caching`]: how long a CDN or proxy may keep each kind of answer.
//! - [`ingest`]: a hub reader's RTP packets to the segmenter (sans-IO); [`live`]: the tokio
//!   task per stream and the registry the HTTP routes read.

pub mod annexb;
pub mod blocking;
pub mod caching;
pub mod fmp4;
pub mod ingest;
pub mod live;
pub mod multivariant;
pub mod names;
pub mod opus;
pub mod playlist;
pub mod segmenter;
pub mod sps;
pub mod timeline;
pub mod tracks;

pub use blocking::{PlaylistRequest, Progress, QueryError, Ready};
pub use caching::{Answer, Timing, cache_control};
pub use fmp4::{OpusParams, VideoParams};
pub use ingest::{IngestError, StreamIngest};
pub use live::{HlsCounters, HlsService, LiveConfig, LiveStream, RequestKind};
pub use multivariant::{MultivariantError, multivariant_playlist};
pub use names::Resource;
pub use playlist::media_playlist;
pub use segmenter::{HlsConfig, HlsError, Lookup, Part, Segment, Segmenter};
pub use timeline::TimestampUnwrapper;
