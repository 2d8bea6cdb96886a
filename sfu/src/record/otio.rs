//! The program's edit events (`super::cutlist`) as an OpenTimelineIO timeline (`.otio`, the
//! JSON form of `Timeline.1`), sans-IO: the same cuts as the CMX 3600 EDL, for editors that
//! import OTIO (DaVinci Resolve, Premiere through its plug-in, Avid via adapters, Kdenlive).
//!
//! Unlike the EDL, times here are the files' **wall-clock timecodes**: each ISO file's
//! available range starts at the UTC time of day of its first frame (from its `prft`), so a
//! clip's source range is the stretch of UTC time it was on program, and the timeline's
//! `global_start_time` is the UTC time of day the session began. At every cut the timeline's
//! time equals the source's time, as with time-of-day timecode on tape. Times are whole frames
//! at `fps` (rounded down, as in the EDL), counted from the UTC midnight before the earliest file
//! or cut: a session running past midnight keeps counting past 24 h rather than wrapping, so
//! every range stays continuous and the timeline's time still equals the sources'.
//!
//! One video track, `program`: a clip per event, its media an `ExternalReference` to the ISO
//! file by its path relative to the timeline file (both live in the recording directory, so
//! the folder can be moved as a whole). Stretches no file covers become `Gap`s, so later clips
//! keep their place. Each clip's metadata names its stream under `r58`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::cutlist::{EditEvent, frames};

const SECS_PER_DAY: u64 = 86_400;

/// The UTC midnight at or before `wall` (the epoch for times before 1970).
fn midnight_before(wall: SystemTime) -> SystemTime {
    let secs = wall
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    UNIX_EPOCH + Duration::from_secs(secs / SECS_PER_DAY * SECS_PER_DAY)
}

/// `wall` as whole frames since `midnight`.
fn time_of_day(wall: SystemTime, midnight: SystemTime, fps: u32) -> u64 {
    frames(wall.duration_since(midnight).unwrap_or_default(), fps)
}

fn rational(value: u64, fps: u32) -> Value {
    json!({ "OTIO_SCHEMA": "RationalTime.1", "rate": f64::from(fps), "value": value as f64 })
}

fn range(start: u64, duration: u64, fps: u32) -> Value {
    json!({
        "OTIO_SCHEMA": "TimeRange.1",
        "start_time": rational(start, fps),
        "duration": rational(duration, fps),
    })
}

fn gap(duration: u64, fps: u32) -> Value {
    json!({
        "OTIO_SCHEMA": "Gap.1",
        "name": "",
        "source_range": range(0, duration, fps),
        "effects": [],
        "markers": [],
        "enabled": true,
        "metadata": {},
    })
}

/// A clip of `event`'s file from frame `from` to `to`, on the clock counting from `midnight`.
fn clip(event: &EditEvent, midnight: SystemTime, from: u64, to: u64, fps: u32) -> Value {
    let path = format!("{}/{}", event.stream, event.file);
    let file_start = time_of_day(event.file_start, midnight, fps);
    let file_end = time_of_day(event.file_start + event.file_duration, midnight, fps);
    json!({
        "OTIO_SCHEMA": "Clip.2",
        "name": path,
        "source_range": range(from, to - from, fps),
        "media_references": {
            "DEFAULT_MEDIA": {
                "OTIO_SCHEMA": "ExternalReference.1",
                "name": event.file,
                "target_url": path,
                "available_range": range(file_start, file_end - file_start, fps),
                "available_image_bounds": null,
                "metadata": {},
            }
        },
        "active_media_reference_key": "DEFAULT_MEDIA",
        "effects": [],
        "markers": [],
        "enabled": true,
        "metadata": { "r58": { "stream": event.stream } },
    })
}

/// The OTIO JSON of `events` (placed by their files' wall clocks and `source_*` times), from
/// `origin` (the session's first cut), named `title`, at `fps`.
pub fn otio_timeline(title: &str, origin: SystemTime, fps: u32, events: &[EditEvent]) -> String {
    let midnight = midnight_before(
        events
            .iter()
            .map(|e| e.file_start)
            .fold(origin, SystemTime::min),
    );
    let mut children = Vec::with_capacity(events.len());
    // Every time is one wall clock in whole frames from `midnight`: a clip's source range is
    // its stretch of that clock, and the track's end so far is `at` on the same clock, so the
    // timeline's time equals the sources' at every cut and rounding cannot drift, nor a source
    // range run past its file's available range.
    let mut at = time_of_day(origin, midnight, fps);
    for event in events {
        let from = time_of_day(event.file_start + event.source_in, midnight, fps).max(at);
        let to = time_of_day(event.file_start + event.source_out, midnight, fps);
        if to <= from {
            continue;
        }
        if from > at {
            children.push(gap(from - at, fps));
        }
        children.push(clip(event, midnight, from, to, fps));
        at = to;
    }
    let start = time_of_day(origin, midnight, fps);
    let timeline = json!({
        "OTIO_SCHEMA": "Timeline.1",
        "name": title,
        "global_start_time": rational(start, fps),
        "metadata": {},
        "tracks": {
            "OTIO_SCHEMA": "Stack.1",
            "name": "tracks",
            "source_range": null,
            "effects": [],
            "markers": [],
            "enabled": true,
            "metadata": {},
            "children": [{
                "OTIO_SCHEMA": "Track.1",
                "name": "program",
                "kind": "Video",
                "source_range": null,
                "effects": [],
                "markers": [],
                "enabled": true,
                "metadata": {},
                "children": children,
            }],
        },
    });
    let mut text = serde_json::to_string_pretty(&timeline).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::cutlist::{IsoFile, ProgramCut, edit_events};

    #[test]
    fn clips_carry_the_files_wall_clock_timecodes() {
        // 2026-12-06 14:03:22 UTC.
        let t0 = UNIX_EPOCH + Duration::from_secs(1_796_565_802);
        let tod = (14 * 3600 + 3 * 60 + 22) * 30;
        let s = Duration::from_secs;
        let iso = |stream: &str, file: &str, start: SystemTime, secs| IsoFile {
            stream: stream.into(),
            file: file.into(),
            start,
            duration: s(secs),
        };
        // cam1's file begins 2 s after the cut to it: a gap, then the clip.
        let isos = [
            iso("cam0", "a.mp4", t0 - s(1), 600),
            iso("cam1", "c.mp4", t0 + s(7), 600),
        ];
        let cut = |source: &str, at| ProgramCut {
            source: source.into(),
            at,
        };
        let cuts = [
            cut("cam0", t0),
            cut("cam1", t0 + s(5)),
            cut("cam0", t0 + Duration::from_millis(12_500)),
        ];
        let events = edit_events(&cuts, t0 + s(20), &isos);
        let text = otio_timeline("program", t0, 30, &events);
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(doc["OTIO_SCHEMA"], "Timeline.1");
        assert_eq!(doc["global_start_time"]["value"], tod as f64);
        let track = &doc["tracks"]["children"][0];
        assert_eq!(track["kind"], "Video");
        let items = track["children"].as_array().expect("children");
        let summary: Vec<(String, String, f64, f64)> = items
            .iter()
            .map(|item| {
                let r = &item["source_range"];
                (
                    item["OTIO_SCHEMA"].as_str().unwrap_or_default().to_owned(),
                    item["media_references"]["DEFAULT_MEDIA"]["target_url"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    r["start_time"]["value"].as_f64().unwrap_or(-1.0),
                    r["duration"]["value"].as_f64().unwrap_or(-1.0),
                )
            })
            .collect();
        let t = |secs: f64| f64::from(tod) + secs * 30.0;
        assert_eq!(
            summary,
            [
                ("Clip.2".into(), "cam0/a.mp4".into(), t(0.0), 150.0),
                ("Gap.1".into(), String::new(), 0.0, 60.0),
                ("Clip.2".into(), "cam1/c.mp4".into(), t(7.0), 165.0),
                ("Clip.2".into(), "cam0/a.mp4".into(), t(12.5), 225.0),
            ]
        );
        // Each file's available range starts at its own first frame's time of day.
        let available =
            |i: usize| &items[i]["media_references"]["DEFAULT_MEDIA"]["available_range"];
        assert_eq!(available(0)["start_time"]["value"], t(-1.0));
        assert_eq!(available(0)["duration"]["value"], 18_000.0);
        assert_eq!(available(2)["start_time"]["value"], t(7.0));
        assert_eq!(items[2]["metadata"]["r58"]["stream"], "cam1");
        // The timeline's time at each cut equals the source's: global start + position.
        let mut position = 0.0;
        for item in items {
            let range = &item["source_range"];
            if item["OTIO_SCHEMA"] == "Clip.2" {
                assert_eq!(
                    range["start_time"]["value"].as_f64(),
                    Some(f64::from(tod) + position)
                );
            }
            position += range["duration"]["value"].as_f64().unwrap_or_default();
        }
        assert_eq!(position, 600.0, "the track runs to the end");
    }

    #[test]
    fn clips_stay_inside_their_files_whatever_the_rounding() {
        // Starts between frames: a file from 10.02 s with 9.97 s of frames, on program from its
        // first frame to its last and then another file's: frames are counted on one clock, so
        // the clip ends exactly where the file does and the next starts there.
        let ms = Duration::from_millis;
        let day = UNIX_EPOCH + Duration::from_secs(20 * SECS_PER_DAY);
        let event = |file: &str, start: u64, len: u64, from: u64, to: u64| EditEvent {
            stream: "cam0".into(),
            file: file.into(),
            file_start: day + ms(start),
            file_duration: ms(len),
            source_in: ms(from - start),
            source_out: ms(to - start),
            record_in: ms(from - 10_020),
            record_out: ms(to - 10_020),
        };
        let events = [
            event("a.mp4", 10_020, 9_970, 10_020, 19_990),
            event("b.mp4", 19_990, 5_000, 19_990, 24_990),
        ];
        let text = otio_timeline("t", day + ms(10_020), 30, &events);
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        let items = doc["tracks"]["children"][0]["children"]
            .as_array()
            .expect("children")
            .clone();
        let value = |v: &Value| v["value"].as_f64().unwrap_or(-1.0);
        let ends = |r: &Value| {
            (
                value(&r["start_time"]),
                value(&r["start_time"]) + value(&r["duration"]),
            )
        };
        assert_eq!(items.len(), 2, "no gap: {text}");
        let (a, b) = (
            ends(&items[0]["source_range"]),
            ends(&items[1]["source_range"]),
        );
        let available = ends(&items[0]["media_references"]["DEFAULT_MEDIA"]["available_range"]);
        // 10.02 s is frame 300.6, 19.99 s frame 599.7: both rounded down.
        assert_eq!(a, (300.0, 599.0));
        assert_eq!(
            available, a,
            "the clip is the whole file, not a frame past it"
        );
        assert_eq!(b.0, a.1, "back to back");
        assert_eq!(value(&doc["global_start_time"]), a.0);
    }

    #[test]
    fn no_events_is_an_empty_track_and_past_midnight_keeps_counting() {
        let text = otio_timeline("none", UNIX_EPOCH, 25, &[]);
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(doc["tracks"]["children"][0]["children"], json!([]));
        // A file started at 23:59:59 UTC: a clip 3 s in is at 24:00:02, not 00:00:02.
        let start = UNIX_EPOCH + Duration::from_secs(SECS_PER_DAY - 1);
        let event = EditEvent {
            stream: "cam0".into(),
            file: "x.mp4".into(),
            file_start: start,
            file_duration: Duration::from_secs(10),
            source_in: Duration::from_secs(3),
            source_out: Duration::from_secs(4),
            record_in: Duration::ZERO,
            record_out: Duration::from_secs(1),
        };
        let text = otio_timeline("midnight", start + Duration::from_secs(3), 25, &[event]);
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        let clip = &doc["tracks"]["children"][0]["children"][0];
        assert_eq!(
            clip["source_range"]["start_time"]["value"],
            ((SECS_PER_DAY + 2) * 25) as f64
        );
        assert_eq!(
            doc["global_start_time"]["value"],
            ((SECS_PER_DAY + 2) * 25) as f64,
            "the same clock as the clips"
        );
    }
}
