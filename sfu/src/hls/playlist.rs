//! The LL-HLS media playlist (RFC 8216bis): written by hand, since `hls_m3u8` 0.7 knows no
//! EXT-X-PART, EXT-X-PRELOAD-HINT, EXT-X-SERVER-CONTROL or EXT-X-SKIP. All URIs are relative.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use super::names::Resource;
use super::segmenter::{Segment, Segmenter};

/// Parts are listed only for segments this many target durations from the live edge.
const PART_WINDOW_TARGETS: f64 = 3.0;

/// Writes the media playlist. `skip` answers a delta update request (`_HLS_skip=YES`): segments
/// older than CAN-SKIP-UNTIL are replaced by EXT-X-SKIP.
pub fn media_playlist(s: &Segmenter, skip: bool) -> String {
    let target = s.target_duration();
    let part_target = s.config().part_target.as_secs_f64();
    let skip_until = 6.0 * target as f64;
    let open = s.open_segment().filter(|seg| !seg.parts.is_empty());
    let all: Vec<&Segment> = s.segments().chain(open).collect();
    let total: f64 = all.iter().map(|seg| seg.duration).sum();

    let mut out = String::with_capacity(256 + all.len() * 400);
    out.push_str("#EXTM3U\n#EXT-X-VERSION:9\n");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(
        out,
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={skip_until:.1},PART-HOLD-BACK={:.3}",
        3.0 * part_target
    );
    let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={part_target:.3}");
    let first_msn = all.first().map_or(s.progress().open_msn, |seg| seg.msn);
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first_msn}");
    if s.discontinuity_sequence() > 0 {
        let _ = writeln!(
            out,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            s.discontinuity_sequence()
        );
    }

    // Segments whose whole span lies before CAN-SKIP-UNTIL from the end (complete ones only).
    let mut skipped = 0;
    if skip {
        let mut start = 0.0;
        for seg in &all {
            if seg.data.is_none() || total - start <= skip_until {
                break;
            }
            start += seg.duration;
            skipped += 1;
        }
        if skipped > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }
    }

    let mut start: f64 = all[..skipped].iter().map(|seg| seg.duration).sum();
    let mut map: Option<u32> = None;
    for seg in &all[skipped..] {
        if seg.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if map != Some(seg.init_id) {
            let _ = writeln!(
                out,
                "#EXT-X-MAP:URI=\"{}\"",
                Resource::Init(seg.init_id).uri()
            );
            map = Some(seg.init_id);
        }
        if let Some(time) = seg.program_date_time {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", rfc3339(time));
        }
        let from_end = total - start - seg.duration;
        if from_end < PART_WINDOW_TARGETS * target as f64 || seg.data.is_none() {
            for part in &seg.parts {
                let _ = write!(
                    out,
                    "#EXT-X-PART:DURATION={:.5},URI=\"{}\"",
                    part.duration,
                    Resource::Part(seg.msn, part.index).uri()
                );
                out.push_str(if part.independent {
                    ",INDEPENDENT=YES\n"
                } else {
                    "\n"
                });
            }
        }
        if seg.data.is_some() {
            let _ = writeln!(
                out,
                "#EXTINF:{:.5},\n{}",
                seg.duration,
                Resource::Segment(seg.msn).uri()
            );
        }
        start += seg.duration;
    }
    if s.ended() {
        out.push_str("#EXT-X-ENDLIST\n");
    } else {
        // The part being built; before any segment opens, part 0 of the next one.
        let progress = s.progress();
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
            Resource::Part(progress.open_msn, progress.open_parts).uri()
        );
    }
    out
}

/// `YYYY-MM-DDThh:mm:ss.sssZ` (UTC) for EXT-X-PROGRAM-DATE-TIME.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[path = "playlist_tests.rs"]
mod tests;
