//! Recording file names: `<stream>/<stream>_<UTC start>.mp4`, the start as
//! `2026-12-06T14-03-22Z` (ISO 8601 with `-` for `:`, which some file systems refuse), and the
//! strict parse back the HTTP routes use so no request names a file outside the directory.

use std::time::SystemTime;

use time::OffsetDateTime;

/// Same rule as WHIP stream names: 1-64 of letters, digits, `-`, `_`, `.`, and not only dots
/// (so a name is never `.` or `..`).
pub fn valid_stream_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.bytes().all(|b| b == b'.')
}

/// `2026-12-06T14-03-22Z` for a moment in UTC (seconds, rounded down).
pub fn utc_stamp(wall: SystemTime) -> String {
    let t = OffsetDateTime::from(wall);
    format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The file of stream `stream` started at `wall`, relative to the recording directory.
pub fn file_path(stream: &str, wall: SystemTime) -> String {
    format!("{stream}/{stream}_{}.mp4", utc_stamp(wall))
}

/// The same path with ` n` before the extension, for a second file started in the same second
/// (a takeover right after a split): `cam0/cam0_2026-12-06T14-03-22Z-2.mp4`.
pub fn numbered(relative_path: &str, n: u32) -> String {
    match relative_path.strip_suffix(".mp4") {
        Some(stem) => format!("{stem}-{n}.mp4"),
        None => format!("{relative_path}-{n}"),
    }
}

/// A recording named by a request: `<stream>/<file>`, where the file is one this module names
/// for that stream. Anything else (traversal, other directories, other extensions) is `None`.
pub fn parse_relative(stream: &str, file: &str) -> Option<(String, String)> {
    if !valid_stream_name(stream) {
        return None;
    }
    let rest = file.strip_prefix(stream)?.strip_prefix('_')?;
    let stamp = rest.strip_suffix(".mp4")?;
    let (stamp, suffix) = match stamp.split_at_checked(20) {
        Some((s, "")) => (s, None),
        Some((s, n)) => (s, Some(n.strip_prefix('-')?)),
        None => return None,
    };
    let shape = "dddd-dd-ddTdd-dd-ddZ";
    let ok = stamp.len() == shape.len()
        && stamp.bytes().zip(shape.bytes()).all(|(c, s)| match s {
            b'd' => c.is_ascii_digit(),
            _ => c == s,
        });
    let suffix_ok =
        suffix.is_none_or(|n| (1..=4).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()));
    (ok && suffix_ok).then(|| (stream.to_owned(), file.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn names_are_utc_and_parse_back() {
        // 2026-12-06T14:03:22.9Z
        let wall = UNIX_EPOCH + Duration::from_millis(1_796_565_802_900);
        assert_eq!(utc_stamp(wall), "2026-12-06T14-03-22Z");
        let path = file_path("cam0", wall);
        assert_eq!(path, "cam0/cam0_2026-12-06T14-03-22Z.mp4");
        assert_eq!(numbered(&path, 2), "cam0/cam0_2026-12-06T14-03-22Z-2.mp4");
        assert!(parse_relative("cam0", "cam0_2026-12-06T14-03-22Z.mp4").is_some());
        assert!(parse_relative("cam0", "cam0_2026-12-06T14-03-22Z-2.mp4").is_some());
        for (stream, file) in [
            ("..", ".._2026-12-06T14-03-22Z.mp4"),
            ("cam0", "../cam0_2026-12-06T14-03-22Z.mp4"),
            ("cam0", "cam1_2026-12-06T14-03-22Z.mp4"),
            ("cam0", "cam0_2026-12-06T14-03-22Z.mp4/x"),
            ("cam0", "cam0_2026-12-06T14-03-22Z.txt"),
            ("cam0", "cam0_2026-12-06T14:03:22Z.mp4"),
            ("cam0", "cam0_2026-12-06T14-03-22Z-.mp4"),
            ("a/b", "a/b_2026-12-06T14-03-22Z.mp4"),
        ] {
            assert_eq!(parse_relative(stream, file), None, "{stream} {file}");
        }
        assert!(!valid_stream_name("."));
        assert!(valid_stream_name("guest.1"));
    }
}
