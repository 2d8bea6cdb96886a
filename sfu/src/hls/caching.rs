//! How long a cache (a CDN edge, a reverse proxy, the browser) may keep each LL-HLS answer:
//! the `Cache-Control` value per kind of response, from the stream's PART-TARGET and
//! EXT-X-TARGETDURATION. Pure; the HTTP layer picks the [`Answer`] and sends the header.
//!
//! Why these lifetimes (docs/hls.md "Behind a CDN" has the sources):
//! - Parts, segments and init segments never change under their URI (the muxer instance is in
//!   the path), so they are immutable for a year.
//! - A blocking playlist reload (`_HLS_msn=N&_HLS_part=M`, RFC 8216bis §6.2.5.2) has one URL
//!   per part, the same for every viewer, and any answer to it lists that part: it stays a
//!   correct answer for as long as the part is in the playlist (three target durations). One
//!   target duration is kept, so that a cache answers every viewer of that part from one origin
//!   request and a late viewer is never sent more than a segment back.
//! - A playlist request without delivery directives wants the newest playlist. HTTP lifetimes
//!   are whole seconds, so "half a part" is 0 s for sub-second parts; one second is kept then
//!   (as AWS MediaPackage does for LL-HLS media playlists). Players that read the `Age` header
//!   (RFC 8216bis Appendix C, "CDN Tune-in", which hls.js implements) ask for the part that is
//!   live *now*, and the others are answered at once by their next blocking reload.
//! - The multivariant playlist changes only when the stream restarts (a new instance): half a
//!   target duration, at least a second.
//! - Errors are kept for a second at most, never pinned: a 404 for a stream that is about to
//!   come online, or a 503 for a blocking request that timed out (its `Retry-After` is 1 s too),
//!   so a stalled stream costs the origin one answer per second per URL, not one per viewer.
//!   A 400 (a malformed or too-far-ahead request) is not stored, and neither is the 503 for a
//!   stream that has no part yet (right after it started): its retry must reach the origin,
//!   which then has the first part.

use std::time::Duration;

/// What the response is, as far as caching goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `index.m3u8`.
    Multivariant,
    /// A media playlist answering `_HLS_msn` (and `_HLS_part`): it holds the asked-for part.
    BlockingPlaylist,
    /// A media playlist without delivery directives (or a blocking one cut short because the
    /// stream ended, which does not hold the asked-for part).
    Playlist,
    /// A part, segment or init segment.
    Media,
    /// 404: no such stream, or a resource that is gone.
    NotFound,
    /// 503: the muxer is not ready, or a blocking request timed out.
    Unavailable,
    /// 400: a request that will never be answered as asked.
    BadRequest,
}

/// The stream facts the lifetimes derive from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub part_target: Duration,
    /// EXT-X-TARGETDURATION in seconds.
    pub target_duration: u64,
}

/// A year, the conventional "forever", with `immutable` (RFC 8246) so that browsers do not
/// revalidate on reload either.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The answer for errors when nothing is known about the stream.
pub const ERROR: &str = "public, max-age=1";
/// Not stored anywhere.
pub const NO_STORE: &str = "no-store";

/// The `Cache-Control` value for `answer`.
pub fn cache_control(answer: Answer, timing: Timing) -> String {
    let seconds = match answer {
        Answer::Media => return IMMUTABLE.to_owned(),
        Answer::BadRequest => return NO_STORE.to_owned(),
        Answer::NotFound | Answer::Unavailable => return ERROR.to_owned(),
        Answer::BlockingPlaylist => timing.target_duration.max(1),
        Answer::Playlist => (timing.part_target.as_secs() / 2).max(1),
        Answer::Multivariant => (timing.target_duration / 2).max(1),
    };
    format!("public, max-age={seconds}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(part_ms: u64, target: u64) -> Timing {
        Timing {
            part_target: Duration::from_millis(part_ms),
            target_duration: target,
        }
    }

    #[test]
    fn defaults_give_short_playlist_lifetimes_and_immutable_media() {
        let t = timing(200, 1);
        assert_eq!(
            cache_control(Answer::BlockingPlaylist, t),
            "public, max-age=1"
        );
        assert_eq!(cache_control(Answer::Playlist, t), "public, max-age=1");
        assert_eq!(cache_control(Answer::Multivariant, t), "public, max-age=1");
        assert_eq!(cache_control(Answer::Media, t), IMMUTABLE);
        assert_eq!(cache_control(Answer::NotFound, t), "public, max-age=1");
        assert_eq!(cache_control(Answer::Unavailable, t), "public, max-age=1");
        assert_eq!(cache_control(Answer::BadRequest, t), "no-store");
    }

    #[test]
    fn lifetimes_follow_longer_parts_and_segments() {
        let t = timing(4000, 12);
        assert_eq!(
            cache_control(Answer::BlockingPlaylist, t),
            "public, max-age=12"
        );
        assert_eq!(
            cache_control(Answer::Playlist, t),
            "public, max-age=2",
            "half a part"
        );
        assert_eq!(cache_control(Answer::Multivariant, t), "public, max-age=6");
        // Errors stay short whatever the stream.
        assert_eq!(cache_control(Answer::Unavailable, t), "public, max-age=1");
    }
}
