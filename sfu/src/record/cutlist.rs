//! The program's cuts as an edit list over the ISO recordings, sans-IO: which source was on
//! program when, mapped onto the recorded files of that source, written as a CMX 3600 EDL an
//! editor imports to rebuild the program from the ISOs.
//!
//! Source timecodes are the file's own time from `00:00:00:00` (the files carry no timecode
//! track); the record side starts at `01:00:00:00`, the broadcast convention. Each event names
//! its file in a `* FROM CLIP NAME:` comment, the reel is `AX` (an auxiliary source), as
//! editors expect for file-based media. Non-drop-frame timecode at `fps`.
//!
//! The same events also go out as an OpenTimelineIO timeline (`super::otio`).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

/// One recorded file: its source, name, the wall clock of its first frame, its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoFile {
    pub stream: String,
    pub file: String,
    pub start: SystemTime,
    pub duration: Duration,
}

/// `source` went on program at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramCut {
    pub source: String,
    pub at: SystemTime,
}

/// One event of the edit list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditEvent {
    pub stream: String,
    pub file: String,
    /// The wall clock of the file's first frame, and its length.
    pub file_start: SystemTime,
    pub file_duration: Duration,
    pub source_in: Duration,
    pub source_out: Duration,
    /// From the first cut.
    pub record_in: Duration,
    pub record_out: Duration,
}

/// The events that rebuild the program from `cuts` (in order) until `end`: each stretch of a
/// source on program, split where its files split. Stretches no file covers are left out (the
/// record side keeps its time, so later events stay in place).
pub fn edit_events(cuts: &[ProgramCut], end: SystemTime, isos: &[IsoFile]) -> Vec<EditEvent> {
    let Some(first) = cuts.first() else {
        return Vec::new();
    };
    let since = |t: SystemTime| t.duration_since(first.at).unwrap_or_default();
    let mut events = Vec::new();
    for (i, cut) in cuts.iter().enumerate() {
        let until = cuts.get(i + 1).map_or(end, |next| next.at);
        if until <= cut.at {
            continue;
        }
        let mut files: Vec<&IsoFile> = isos.iter().filter(|f| f.stream == cut.source).collect();
        files.sort_by_key(|f| f.start);
        for file in files {
            let file_end = file.start + file.duration;
            let from = cut.at.max(file.start);
            let to = until.min(file_end);
            if to <= from {
                continue;
            }
            events.push(EditEvent {
                stream: file.stream.clone(),
                file: file.file.clone(),
                file_start: file.start,
                file_duration: file.duration,
                source_in: from.duration_since(file.start).unwrap_or_default(),
                source_out: to.duration_since(file.start).unwrap_or_default(),
                record_in: since(from),
                record_out: since(to),
            });
        }
    }
    events
}

/// Whole frames of `d` at `fps`, rounded down.
pub(crate) fn frames(d: Duration, fps: u32) -> u64 {
    (d.as_nanos() * u128::from(fps) / 1_000_000_000) as u64
}

/// `HH:MM:SS:FF` of `frames`, non-drop-frame, at `fps`, offset by `hours`.
fn timecode(frames: u64, fps: u32, hours: u64) -> String {
    let fps = u64::from(fps.max(1));
    let (secs, ff) = (frames / fps, frames % fps);
    format!(
        "{:02}:{:02}:{:02}:{:02}",
        hours + secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ff
    )
}

/// The CMX 3600 text of `events`.
///
/// Source and record durations must match to the frame (editors refuse events that differ),
/// but the two sides round from different origins (the file's first frame, the session's
/// first cut). The record side leads: events stay back to back, and each source out is its
/// source in plus the record duration, cut short (leaving a frame of gap) where that would
/// run past the file's last frame.
pub fn cmx3600(title: &str, fps: u32, events: &[EditEvent]) -> String {
    let mut out = format!("TITLE: {title}\nFCM: NON-DROP FRAME\n\n");
    let mut number = 0;
    for e in events {
        let record_in = frames(e.record_in, fps);
        let source_in = frames(e.source_in, fps);
        let length = frames(e.record_out, fps)
            .saturating_sub(record_in)
            .min(frames(e.file_duration, fps).saturating_sub(source_in));
        if length == 0 {
            continue;
        }
        number += 1;
        let _ = writeln!(
            out,
            "{number:03}  AX       V     C        {} {} {} {}",
            timecode(source_in, fps, 0),
            timecode(source_in + length, fps, 0),
            timecode(record_in, fps, 1),
            timecode(record_in + length, fps, 1),
        );
        let _ = writeln!(out, "* FROM CLIP NAME: {}/{}\n", e.stream, e.file);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn cuts_map_onto_the_files_of_each_source() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_796_565_802);
        let s = Duration::from_secs;
        let iso = |stream: &str, file: &str, start: SystemTime, secs| IsoFile {
            stream: stream.into(),
            file: file.into(),
            start,
            duration: s(secs),
        };
        let isos = [
            iso("cam0", "a.mp4", t0 - s(1), 10),
            iso("cam0", "b.mp4", t0 + s(9), 600),
            iso("cam1", "c.mp4", t0 - s(2), 600),
        ];
        let cut = |source: &str, at| ProgramCut {
            source: source.into(),
            at,
        };
        let cuts = [
            cut("cam0", t0),
            cut("cam1", t0 + s(5)),
            cut("cam0", t0 + s(12)),
        ];
        let events = edit_events(&cuts, t0 + s(20), &isos);
        let text = cmx3600("program", 30, &events);
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('0')).collect();
        assert_eq!(
            lines,
            [
                "001  AX       V     C        00:00:01:00 00:00:06:00 01:00:00:00 01:00:05:00",
                "002  AX       V     C        00:00:07:00 00:00:14:00 01:00:05:00 01:00:12:00",
                "003  AX       V     C        00:00:03:00 00:00:11:00 01:00:12:00 01:00:20:00",
            ]
        );
        assert!(text.contains("* FROM CLIP NAME: cam1/c.mp4"));
        // A stretch across two files of its source becomes two events, back to back.
        let across = edit_events(&[cut("cam0", t0 + s(8))], t0 + s(11), &isos);
        assert_eq!(across.len(), 2);
        assert_eq!((across[0].source_in, across[0].source_out), (s(9), s(10)));
        assert_eq!((across[1].source_in, across[1].source_out), (s(0), s(2)));
        assert_eq!(across[1].record_in, across[0].record_out);
        assert_eq!(
            timecode(frames(Duration::from_millis(3_723_500), 30), 30, 1),
            "02:02:03:15"
        );
    }

    /// Frames of an `HH:MM:SS:FF` timecode at 30 fps.
    fn frames_of(tc: &str) -> u64 {
        tc.split(':')
            .map(|x| x.parse::<u64>().expect("timecode"))
            .zip([108_000, 1_800, 30, 1])
            .map(|(v, unit)| v * unit)
            .sum()
    }

    #[test]
    fn source_and_record_durations_match_whatever_the_offsets() {
        // Files and cuts between frames, every 7 ms of offset across a frame and more: each
        // event's source and record lengths are equal (editors refuse events that are not),
        // events stay back to back, and no source runs past its file's last frame.
        let t0 = UNIX_EPOCH + Duration::from_secs(1_796_565_802);
        let ms = Duration::from_millis;
        for offset in (0..40).map(|i| i * 7) {
            let iso = |stream: &str, start, len| IsoFile {
                stream: stream.into(),
                file: format!("{stream}.mp4"),
                start,
                duration: ms(len),
            };
            let isos = [
                iso("cam0", t0 + ms(offset), 9_990),
                iso("cam1", t0 + ms(offset / 3), 9_000),
            ];
            let cut = |source: &str, at| ProgramCut {
                source: source.into(),
                at,
            };
            let cuts = [
                cut("cam0", t0 + ms(offset)),
                cut("cam1", t0 + ms(2_345)),
                cut("cam0", t0 + ms(6_789)),
            ];
            let events = edit_events(&cuts, t0 + ms(9_990 + offset), &isos);
            let text = cmx3600("t", 30, &events);
            let mut last_record_out = None;
            for line in text.lines().filter(|l| l.starts_with('0')) {
                let tc: Vec<u64> = line.split_whitespace().skip(4).map(frames_of).collect();
                assert_eq!(tc[1] - tc[0], tc[3] - tc[2], "offset {offset} ms: {line}");
                assert!(tc[1] <= 299, "past the file's end: {line}");
                if let Some(out) = last_record_out {
                    assert!(tc[2] == out || tc[2] == out + 1, "offset {offset}: {text}");
                }
                last_record_out = Some(tc[3]);
            }
        }
    }
}
