//! Small pieces of RTSP's wire format the connection uses: reason phrases, what a request URL
//! names, the base URL of a stream's tracks, interleaved framing, and identifiers.

use rtsp_types::Url;

/// RFC 2326's reason phrases for the statuses r58 answers with.
pub(super) fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Request Entity Too Large",
        453 => "Not Enough Bandwidth",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        459 => "Aggregate Operation Not Allowed",
        461 => "Unsupported transport",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "RTSP Version not supported",
        _ => "Error",
    }
}

/// `rtsp://host/NAME[/CONTROL]` into the stream name and the track control, if the name is
/// one a stream can have.
pub(super) fn stream_and_control(url: &Url) -> Option<(String, Option<String>)> {
    let path = url.path().trim_start_matches('/').trim_end_matches('/');
    let (name, control) = match path.split_once('/') {
        Some((name, control)) => (name, Some(control.to_owned())),
        None => (path, None),
    };
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    valid.then(|| (name.to_owned(), control.filter(|c| !c.is_empty())))
}

/// The base for the tracks' relative control URLs: the stream's URL with a trailing slash.
pub(super) fn content_base(url: Option<&Url>, stream: &str) -> String {
    let Some(url) = url else {
        return format!("rtsp://localhost/{stream}/");
    };
    let mut base = url.clone();
    base.set_query(None);
    let s = base.as_str().trim_end_matches('/').to_owned();
    format!("{s}/")
}

/// An interleaved frame: `$`, channel, 16-bit length, data.
pub(super) fn frame(out: &mut Vec<u8>, channel: u8, data: &[u8]) {
    let len = data.len().min(usize::from(u16::MAX));
    out.push(b'$');
    out.push(channel);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&data[..len]);
}

/// A small PRNG for identifiers (SplitMix64): the driver's random seed makes them unguessable,
/// a test's fixed seed makes them repeatable.
pub(super) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
