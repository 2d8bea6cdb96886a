//! The program's cuts as an edit list over the ISO recordings, sans-IO: which source was on
//! program when, mapped onto the recorded files of that source, written as a CMX 3600 EDL an
//! editor imports to rebuild the program from the ISOs.
//!
//! Source timecodes are the file's own time from `00:00:00:00` (the files carry no timecode
//! track); the record side starts at `01:00:00:00`, the broadcast convention. Each event names
//! its file in a `* FROM CLIP NAME:` comment, the reel is `AX` (an auxiliary source), as
//! editors expect for file-based media. Non-drop-frame timecode at `fps`.

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
                source_in: from.duration_since(file.start).unwrap_or_default(),
                source_out: to.duration_since(file.start).unwrap_or_default(),
                record_in: since(from),
                record_out: since(to),
            });
        }
    }
    events
}

/// `HH:MM:SS:FF`, non-drop-frame, at `fps`, offset by `hours`.
fn timecode(at: Duration, fps: u32, hours: u64) -> String {
    let frames = (at.as_nanos() * u128::from(fps) / 1_000_000_000) as u64;
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
pub fn cmx3600(title: &str, fps: u32, events: &[EditEvent]) -> String {
    let mut out = format!("TITLE: {title}\nFCM: NON-DROP FRAME\n\n");
    for (n, e) in events.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:03}  AX       V     C        {} {} {} {}",
            n + 1,
            timecode(e.source_in, fps, 0),
            timecode(e.source_out, fps, 0),
            timecode(e.record_in, fps, 1),
            timecode(e.record_out, fps, 1),
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
            timecode(Duration::from_millis(3_723_500), 30, 1),
            "02:02:03:15"
        );
    }
}
