//! The recording directory: listing `<dir>/<stream>/<stream>_<start>.mp4` files, repairing
//! what a crash left (see [`super::scan`]), and writing the program's cut list beside them.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::cutlist::{IsoFile, ProgramCut, cmx3600, edit_events};
use super::names::{parse_relative, utc_stamp, valid_stream_name};
use super::otio::otio_timeline;
use super::scan::{Repair, scan};

/// One recording on disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordingFile {
    pub stream: String,
    pub file: String,
    pub bytes: u64,
    /// The UTC start from the name, `2026-12-06T14-03-22Z`.
    pub started: String,
    pub modified: Option<SystemTime>,
    /// Being written now.
    pub open: bool,
}

/// Every recording in `dir`, oldest first (by start, then name); `open` names the files being
/// written (relative paths). Other files and directories are ignored.
pub fn list_files(dir: &Path, open: &HashSet<String>) -> io::Result<Vec<RecordingFile>> {
    let mut out = Vec::new();
    for stream_dir in fs::read_dir(dir)? {
        let stream_dir = stream_dir?;
        let Some(stream) = stream_dir.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !valid_stream_name(&stream) || !stream_dir.file_type()?.is_dir() {
            continue;
        }
        for entry in fs::read_dir(stream_dir.path())? {
            let entry = entry?;
            let Some(file) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if parse_relative(&stream, &file).is_none() {
                continue;
            }
            let meta = entry.metadata()?;
            if !meta.is_file() {
                continue;
            }
            let started = file[stream.len() + 1..stream.len() + 21].to_owned();
            out.push(RecordingFile {
                open: open.contains(&format!("{stream}/{file}")),
                stream: stream.clone(),
                bytes: meta.len(),
                started,
                modified: meta.modified().ok(),
                file,
            });
        }
    }
    out.sort_by(|a, b| a.started.cmp(&b.started).then(a.file.cmp(&b.file)));
    Ok(out)
}

/// Scans every recording in `dir` and repairs what a player needs: a partial last fragment is
/// cut off, a file without its `moov` removed. Returns what was done, per file.
pub fn repair_dir(dir: &Path) -> io::Result<Vec<(PathBuf, String)>> {
    let mut done = Vec::new();
    for file in list_files(dir, &HashSet::new())? {
        let path = dir.join(&file.stream).join(&file.file);
        if let Some(what) = repair_file(&path)? {
            done.push((path, what));
        }
    }
    Ok(done)
}

/// Repairs one file; what was done, if anything.
pub fn repair_file(path: &Path) -> io::Result<Option<String>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let report = scan(&mut f, len).map_err(io::Error::other)?;
    drop(f);
    Ok(match report.repair() {
        Repair::Nothing => None,
        Repair::Truncate(keep) => {
            let f = OpenOptions::new().write(true).open(path)?;
            f.set_len(keep)?;
            f.sync_all()?;
            Some(format!(
                "cut {} bytes of a partial fragment ({} fragments, {} ms kept; {})",
                len - keep,
                report.fragments,
                report.duration_ms,
                report.problem.unwrap_or_default()
            ))
        }
        Repair::Remove => {
            fs::remove_file(path)?;
            Some(format!("removed: no playable media ({len} bytes)"))
        }
    })
}

/// Writes the edit list of `cuts` (the program's sources from `since` to `until`) over the
/// recordings in `dir` as `<dir>/cuts_<UTC since>.edl` (CMX 3600) and `.otio`
/// (OpenTimelineIO), both at 30 fps; returns their paths, none when there were no cuts in
/// that time.
pub fn write_cut_list(
    dir: &Path,
    since: SystemTime,
    until: SystemTime,
    cuts: &[ProgramCut],
) -> io::Result<Vec<PathBuf>> {
    // The source on program at `since` is the last one cut to before it.
    let before = cuts
        .iter()
        .rev()
        .find(|c| c.at <= since)
        .map(|c| ProgramCut {
            source: c.source.clone(),
            at: since,
        });
    let cuts: Vec<ProgramCut> = before
        .into_iter()
        .chain(
            cuts.iter()
                .filter(|c| c.at > since && c.at < until)
                .cloned(),
        )
        .collect();
    let Some(origin) = cuts.first().map(|c| c.at) else {
        return Ok(Vec::new());
    };
    let mut isos = Vec::new();
    for file in list_files(dir, &HashSet::new())? {
        if !cuts.iter().any(|c| c.source == file.stream) {
            continue;
        }
        let path = dir.join(&file.stream).join(&file.file);
        let mut f = File::open(&path)?;
        let len = f.metadata()?.len();
        let report = scan(&mut f, len).map_err(io::Error::other)?;
        if let Some(start) = report.first_wall {
            isos.push(IsoFile {
                stream: file.stream,
                file: file.file,
                start,
                duration: Duration::from_millis(report.duration_ms),
            });
        }
    }
    let events = edit_events(&cuts, until, &isos);
    let stem = format!("cuts_{}", utc_stamp(since));
    let edl = dir.join(format!("{stem}.edl"));
    fs::write(&edl, cmx3600(&format!("{stem}.edl"), 30, &events))?;
    let otio = dir.join(format!("{stem}.otio"));
    fs::write(&otio, otio_timeline(&stem, origin, 30, &events))?;
    Ok(vec![edl, otio])
}
