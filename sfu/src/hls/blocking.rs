//! Blocking playlist reload (RFC 8216bis §6.2.5.2), sans-IO: may a request with
//! `_HLS_msn=N[&_HLS_part=M]` be answered now, must it wait, or is it too far ahead (400)?

/// What the segmenter has published so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// The Media Sequence Number of the segment being built (its parts are in the playlist).
    pub open_msn: u64,
    /// How many parts of the open segment are published.
    pub open_parts: u32,
    /// PART-TARGET in seconds.
    pub part_target: f64,
    /// EXT-X-TARGETDURATION in seconds.
    pub target_duration: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// The playlist already holds the requested segment or part: answer now.
    Ready,
    /// Hold the request until the segmenter publishes more, then ask again.
    NotYet,
    /// Beyond what the server will wait for: answer 400 Bad Request.
    TooFarAhead,
}

impl Progress {
    /// The Advance Part Limit: three divided by the part target when that is under a second.
    pub fn advance_part_limit(&self) -> u64 {
        if self.part_target > 0.0 && self.part_target < 1.0 {
            (3.0 / self.part_target).floor() as u64
        } else {
            3
        }
    }

    /// About how many parts one segment has, to count parts ahead across segments.
    fn parts_per_segment(&self) -> u64 {
        if self.part_target > 0.0 {
            ((self.target_duration as f64 / self.part_target).ceil() as u64).max(1)
        } else {
            1
        }
    }

    /// Decides a blocking request for segment `msn` (whole) or its part `part`.
    pub fn ready(&self, msn: u64, part: Option<u32>) -> Ready {
        // The last segment of the playlist: the open one once it has parts, else the last
        // complete one.
        let last = if self.open_parts > 0 {
            Some(self.open_msn)
        } else {
            self.open_msn.checked_sub(1)
        };
        if last.map_or(msn > 2, |last| msn > last.saturating_add(2)) {
            return Ready::TooFarAhead;
        }
        match part {
            None => {
                if msn < self.open_msn {
                    Ready::Ready
                } else {
                    Ready::NotYet
                }
            }
            Some(part) => {
                if msn < self.open_msn || (msn == self.open_msn && part < self.open_parts) {
                    return Ready::Ready;
                }
                // Parts between the last published one and the requested one.
                let ahead = if msn == self.open_msn {
                    u64::from(part) + 1 - u64::from(self.open_parts)
                } else {
                    let rest_of_open = self
                        .parts_per_segment()
                        .saturating_sub(u64::from(self.open_parts));
                    rest_of_open
                        .saturating_add((msn - self.open_msn - 1) * self.parts_per_segment())
                        .saturating_add(u64::from(part) + 1)
                };
                if ahead > self.advance_part_limit() {
                    Ready::TooFarAhead
                } else {
                    Ready::NotYet
                }
            }
        }
    }
}

/// A media playlist request's query (RFC 8216bis §6.2.5): what to wait for, and whether a
/// delta update was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaylistRequest {
    /// `_HLS_msn` and `_HLS_part`: hold the request until that segment or part exists.
    pub block: Option<(u64, Option<u32>)>,
    /// `_HLS_skip=YES|v2`.
    pub skip: bool,
}

/// Why a playlist query was refused (the HTTP layer answers 400 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("{key} must be a decimal integer, not {value:?}")]
    NotANumber { key: &'static str, value: String },
    #[error("{key} is out of range: {value:?}")]
    OutOfRange { key: &'static str, value: String },
    #[error("_HLS_part needs _HLS_msn")]
    PartWithoutMsn,
    #[error("_HLS_skip must be YES or v2, not {0:?}")]
    BadSkip(String),
}

impl PlaylistRequest {
    /// From the raw values of `_HLS_msn`, `_HLS_part` and `_HLS_skip` (absent: `None`).
    pub fn parse(
        msn: Option<&str>,
        part: Option<&str>,
        skip: Option<&str>,
    ) -> Result<Self, QueryError> {
        fn number(key: &'static str, value: &str, max: u64) -> Result<u64, QueryError> {
            if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(QueryError::NotANumber {
                    key,
                    value: value.chars().take(40).collect(),
                });
            }
            value
                .parse()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| QueryError::OutOfRange {
                    key,
                    value: value.to_owned(),
                })
        }
        let msn = msn.map(|v| number("_HLS_msn", v, u64::MAX)).transpose()?;
        let part = part
            .map(|v| number("_HLS_part", v, u64::from(u32::MAX)).map(|n| n as u32))
            .transpose()?;
        if part.is_some() && msn.is_none() {
            return Err(QueryError::PartWithoutMsn);
        }
        let skip = match skip {
            None => false,
            Some("YES" | "v2") => true,
            Some(other) => return Err(QueryError::BadSkip(other.chars().take(40).collect())),
        };
        Ok(Self {
            block: msn.map(|msn| (msn, part)),
            skip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlist_queries_parse_strictly() {
        assert_eq!(
            PlaylistRequest::parse(Some("12"), Some("3"), Some("YES")),
            Ok(PlaylistRequest {
                block: Some((12, Some(3))),
                skip: true
            })
        );
        assert_eq!(
            PlaylistRequest::parse(None, None, None),
            Ok(PlaylistRequest {
                block: None,
                skip: false
            })
        );
        for (msn, part, skip) in [
            (Some("-1"), None, None),
            (Some("+1"), None, None),
            (Some("1e3"), None, None),
            (Some(""), None, None),
            (Some("99999999999999999999999"), None, None),
            (Some("18446744073709551616"), None, None),
            (Some("1"), Some("4294967296"), None),
            (None, Some("1"), None),
            (None, None, Some("NO")),
        ] {
            let err = PlaylistRequest::parse(msn, part, skip).unwrap_err();
            assert!(err.to_string().contains("_HLS_"), "{err}");
        }
    }

    fn progress(open_msn: u64, open_parts: u32) -> Progress {
        Progress {
            open_msn,
            open_parts,
            part_target: 0.2,
            target_duration: 1,
        }
    }

    #[test]
    fn published_parts_and_segments_are_ready() {
        let p = progress(10, 2);
        assert_eq!(p.ready(9, None), Ready::Ready);
        assert_eq!(p.ready(3, Some(4)), Ready::Ready);
        assert_eq!(p.ready(10, Some(0)), Ready::Ready);
        assert_eq!(p.ready(10, Some(1)), Ready::Ready);
    }

    #[test]
    fn the_next_parts_wait() {
        let p = progress(10, 2);
        assert_eq!(
            p.ready(10, Some(2)),
            Ready::NotYet,
            "the preload-hinted part"
        );
        assert_eq!(p.ready(10, None), Ready::NotYet);
        assert_eq!(p.ready(11, Some(0)), Ready::NotYet);
        assert_eq!(p.ready(12, None), Ready::NotYet);
        assert_eq!(
            p.ready(11, Some(9)),
            Ready::NotYet,
            "13 parts ahead, limit 15"
        );
    }

    #[test]
    fn too_far_ahead_is_a_bad_request() {
        let p = progress(10, 2);
        assert_eq!(p.advance_part_limit(), 15);
        assert_eq!(p.ready(12, Some(7)), Ready::TooFarAhead, "16 parts ahead");
        assert_eq!(p.ready(12, Some(6)), Ready::NotYet, "15 parts ahead");
        assert_eq!(p.ready(10, Some(17)), Ready::TooFarAhead);
        assert_eq!(p.ready(10, Some(16)), Ready::NotYet);
        assert_eq!(p.ready(13, Some(0)), Ready::TooFarAhead);
        assert_eq!(p.ready(12, None), Ready::NotYet);
        assert_eq!(p.ready(13, None), Ready::TooFarAhead);
        assert_eq!(progress(10, 0).ready(11, None), Ready::NotYet);
        assert_eq!(progress(10, 0).ready(12, None), Ready::TooFarAhead);
        assert_eq!(progress(0, 0).ready(3, None), Ready::TooFarAhead);
        assert_eq!(
            progress(0, 0).ready(u64::MAX, Some(u32::MAX)),
            Ready::TooFarAhead
        );
    }
}
