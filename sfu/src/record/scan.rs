//! Reading a recording back: what a file holds up to its last complete fragment, and what a
//! crash left behind it. Run on start over every file (a file is written front to back, so a
//! `kill -9` or a power cut can only leave a partial box at the end).
//!
//! The walk reads box headers and decodes the small boxes (`moov`, `prft`, `moof`) with
//! `mp4-atom`; it never reads a `mdat`'s payload. [`Repair`] says what a player needs:
//! cutting a partial tail (players differ in how they treat one: ffmpeg reads up to it with a
//! warning, strict ones refuse the file), or removing a file that never got its `moov` (it
//! holds no media: samples are only written after it).

use std::io::{self, Read, Seek, SeekFrom};
use std::time::SystemTime;

use mp4_atom::{Decode, Moof, Moov, Prft};
use thiserror::Error;

use super::writer::from_ntp;
use crate::hls::fmp4::{AUDIO_TIMESCALE, AUDIO_TRACK_ID, VIDEO_TIMESCALE, VIDEO_TRACK_ID};

/// The largest `moov`/`moof`/`prft` decoded: far above what the writer makes (a 1 s fragment's
/// `moof` at 60 fps is ~1 KiB), so a corrupt size cannot make the scan read a gigabyte.
const MAX_HEADER_BOX: u64 = 1 << 20;

#[derive(Debug, Error)]
pub enum ScanError {
    #[error("reading the file: {0}")]
    Io(#[from] io::Error),
}

/// What a recording holds.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScanReport {
    /// The file's length.
    pub len: u64,
    /// Where the last complete box a player can use ends: the length to keep.
    pub complete_len: u64,
    /// `ftyp` and `moov` are complete and decode.
    pub has_moov: bool,
    pub has_video: bool,
    pub has_audio: bool,
    /// Complete fragments (`moof` + `mdat`).
    pub fragments: u64,
    /// Media time of the complete fragments, in milliseconds (video, or audio when alone).
    pub duration_ms: u64,
    /// The wall clock of the first and the last complete fragment (from `prft`).
    pub first_wall: Option<SystemTime>,
    pub last_wall: Option<SystemTime>,
    /// Why the walk stopped before the end of the file, if it did.
    pub problem: Option<String>,
}

/// What to do with a file after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// Complete as it is.
    Nothing,
    /// Cut at this length: the tail is a partial fragment (or garbage).
    Truncate(u64),
    /// No `moov`: nothing playable; remove it.
    Remove,
}

impl ScanReport {
    pub fn repair(&self) -> Repair {
        if !self.has_moov {
            Repair::Remove
        } else if self.complete_len < self.len {
            Repair::Truncate(self.complete_len)
        } else {
            Repair::Nothing
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Ftyp,
    Moov,
    /// `prft` or `moof` (or the end).
    Fragment,
    /// The `mdat` of the `moof` just read.
    Mdat,
}

/// Walks `file` (of length `len`) box by box.
pub fn scan<R: Read + Seek>(file: &mut R, len: u64) -> Result<ScanReport, ScanError> {
    let mut report = ScanReport {
        len,
        ..ScanReport::default()
    };
    let mut at = 0u64;
    let mut expect = Expect::Ftyp;
    let mut pending_wall = None;
    let mut pending_ticks = 0u64;
    let mut timescale = u64::from(VIDEO_TIMESCALE);
    let mut ticks = 0u64;
    while at < len {
        let Some((kind, size, header)) = read_header(file, at, len)? else {
            report.problem = Some(format!("partial box header at byte {at}"));
            break;
        };
        let end = match at.checked_add(size) {
            Some(end) if size >= header && end <= len => end,
            _ => {
                report.problem = Some(format!(
                    "box '{}' at byte {at} runs past the end ({size} bytes)",
                    printable(&kind)
                ));
                break;
            }
        };
        let body_ok = match (expect, &kind) {
            (Expect::Ftyp, b"ftyp") => {
                expect = Expect::Moov;
                true
            }
            (Expect::Moov, b"moov") => match decode::<Moov>(file, at, size)? {
                Some(moov) => {
                    for trak in &moov.trak {
                        match trak.tkhd.track_id {
                            VIDEO_TRACK_ID => report.has_video = true,
                            AUDIO_TRACK_ID => report.has_audio = true,
                            _ => {}
                        }
                    }
                    if !report.has_video {
                        timescale = u64::from(AUDIO_TIMESCALE);
                    }
                    report.has_moov = true;
                    expect = Expect::Fragment;
                    true
                }
                None => false,
            },
            (Expect::Fragment, b"prft") => match decode::<Prft>(file, at, size)? {
                Some(prft) => {
                    pending_wall = Some(from_ntp(prft.ntp_timestamp));
                    true
                }
                None => false,
            },
            (Expect::Fragment, b"moof") => match decode::<Moof>(file, at, size)? {
                Some(moof) => {
                    let main = if report.has_video {
                        VIDEO_TRACK_ID
                    } else {
                        AUDIO_TRACK_ID
                    };
                    pending_ticks = moof
                        .traf
                        .iter()
                        .filter(|t| t.tfhd.track_id == main)
                        .flat_map(|t| &t.trun)
                        .flat_map(|r| r.samples.iter())
                        .map(|e| u64::from(e.duration.unwrap_or(0)))
                        .sum();
                    expect = Expect::Mdat;
                    true
                }
                None => false,
            },
            (Expect::Mdat, b"mdat") => {
                report.fragments += 1;
                ticks += pending_ticks;
                if let Some(wall) = pending_wall.take() {
                    report.first_wall.get_or_insert(wall);
                    report.last_wall = Some(wall);
                }
                expect = Expect::Fragment;
                true
            }
            _ => {
                report.problem = Some(format!(
                    "unexpected box '{}' at byte {at}",
                    printable(&kind)
                ));
                break;
            }
        };
        if !body_ok {
            report.problem = Some(format!(
                "box '{}' at byte {at} does not decode",
                printable(&kind)
            ));
            break;
        }
        at = end;
        if matches!(expect, Expect::Fragment) {
            report.complete_len = at;
        }
    }
    if !report.has_moov {
        report.complete_len = 0;
    }
    report.duration_ms = ticks * 1000 / timescale;
    Ok(report)
}

/// The box at `at`: its type, total size and header length; `None` when the header itself is
/// cut off.
fn read_header<R: Read + Seek>(
    file: &mut R,
    at: u64,
    len: u64,
) -> Result<Option<([u8; 4], u64, u64)>, ScanError> {
    if len - at < 8 {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(at))?;
    let mut head = [0u8; 8];
    file.read_exact(&mut head)?;
    let kind = [head[4], head[5], head[6], head[7]];
    let size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
    match size {
        // Extends to the end of the file: the writer never writes that, so it is not complete.
        0 => Ok(Some((kind, u64::MAX, 8))),
        1 => {
            if len - at < 16 {
                return Ok(None);
            }
            let mut large = [0u8; 8];
            file.read_exact(&mut large)?;
            Ok(Some((kind, u64::from_be_bytes(large), 16)))
        }
        _ => Ok(Some((kind, size, 8))),
    }
}

/// Decodes the whole box at `at`; `None` when it is too large or does not decode.
fn decode<T: Decode>(file: &mut impl ReadSeek, at: u64, size: u64) -> Result<Option<T>, ScanError> {
    if size > MAX_HEADER_BOX {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(at))?;
    let mut bytes = vec![0u8; size as usize];
    file.read_exact(&mut bytes)?;
    let mut buf = &bytes[..];
    Ok(T::decode(&mut buf).ok())
}

trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

fn printable(kind: &[u8; 4]) -> String {
    kind.iter()
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn headers_alone_are_not_a_recording() {
        let r = scan(&mut Cursor::new(vec![]), 0).unwrap();
        assert_eq!(r.repair(), Repair::Remove);
        let mut ftyp = vec![0, 0, 0, 16];
        ftyp.extend_from_slice(b"ftypiso6\0\0\0\0");
        let len = ftyp.len() as u64;
        let r = scan(&mut Cursor::new(ftyp), len).unwrap();
        assert!(!r.has_moov);
        assert_eq!(r.repair(), Repair::Remove);
        // A box claiming to be larger than the file.
        let mut huge = vec![0xff, 0xff, 0xff, 0xff];
        huge.extend_from_slice(b"ftyp");
        let r = scan(&mut Cursor::new(huge), 8).unwrap();
        assert!(r.problem.unwrap().contains("runs past the end"));
    }
}
