//! Which outputs a stream's codecs allow. r58 forwards media without transcoding: WebRTC viewers
//! take whatever their browser decodes, but LL-HLS, recordings and the switcher's program are
//! fMP4/RTP of H.264 video and Opus audio, so a stream in another codec (VP8 from Firefox
//! without OpenH264) is live over WebRTC only. H.265 from an IP camera is the other way round:
//! recorded (`hvc1` files) and passed through to RTSP readers, but r58's WebRTC viewers take
//! H.264 or VP8, and LL-HLS and the program carry H.264 (most browsers' players cannot play
//! H.265). Every place that shows a stream (`/api/streams`, the guest page, the switcher) says
//! so with the same reason, and WHEP refuses such a stream with it.

use super::TrackKind;

/// An output a stream may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Output {
    /// WHEP viewers.
    Webrtc,
    /// LL-HLS for remote viewers.
    Hls,
    /// Recording to MP4.
    Recording,
    /// The switcher's program.
    Program,
}

impl Output {
    /// The name in `/api/streams`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webrtc => "webrtc",
            Self::Hls => "hls",
            Self::Recording => "recording",
            Self::Program => "program",
        }
    }

    /// The start of the reason a stream lacks this output.
    fn headline(self) -> &'static str {
        match self {
            Self::Webrtc => "no WebRTC viewers",
            Self::Hls => "no LL-HLS",
            Self::Recording => "no recording",
            Self::Program => "cannot go to program",
        }
    }
}

/// Why a stream with these tracks (kind, encoding name) cannot feed the outputs built on H.264
/// and Opus (LL-HLS, the program), or None when it can feed them all. Codec names compare
/// case-insensitively.
pub fn passthrough_refusal<'a>(
    tracks: impl IntoIterator<Item = (TrackKind, &'a str)>,
) -> Option<String> {
    refusal(tracks, false)
}

/// Why a stream with these tracks cannot be recorded: as [`passthrough_refusal`], but H.265
/// video is recorded too (to `hvc1` files).
pub fn recording_refusal<'a>(
    tracks: impl IntoIterator<Item = (TrackKind, &'a str)>,
) -> Option<String> {
    refusal(tracks, true)
}

fn refusal<'a>(
    tracks: impl IntoIterator<Item = (TrackKind, &'a str)>,
    takes_h265: bool,
) -> Option<String> {
    let mut empty = true;
    for (kind, codec) in tracks {
        empty = false;
        let h265 = kind == TrackKind::Video && codec.eq_ignore_ascii_case("H265");
        let (ok, wanted) = match kind {
            TrackKind::Video => (
                codec.eq_ignore_ascii_case("H264") || (takes_h265 && h265),
                if takes_h265 {
                    "H.264 or H.265"
                } else {
                    "H.264"
                },
            ),
            TrackKind::Audio => (codec.eq_ignore_ascii_case("opus"), "Opus"),
        };
        if h265 && !ok {
            // From an IP camera: the camera's setting is the way out, not the browser.
            return Some(
                "its video is H.265 and r58 does not transcode: these outputs carry H.264 \
                 video, which browsers' players need (r58 records H.265 and passes it to RTSP \
                 readers; set the camera to H.264 for the rest)"
                    .to_owned(),
            );
        }
        if !ok {
            let kind = match kind {
                TrackKind::Video => "video",
                TrackKind::Audio => "audio",
            };
            return Some(format!(
                "its {kind} is {codec} and r58 does not transcode: these outputs carry {wanted} \
                 {kind} (a browser with H.264, e.g. Chrome, or Firefox with OpenH264, sends it)"
            ));
        }
    }
    empty.then(|| "it has no tracks".to_owned())
}

/// Why WebRTC viewers cannot take a stream with these tracks: its video is H.265, which r58
/// records and passes through from IP cameras to RTSP readers.
pub fn webrtc_refusal<'a>(
    tracks: impl IntoIterator<Item = (TrackKind, &'a str)>,
) -> Option<String> {
    tracks
        .into_iter()
        .any(|(kind, codec)| kind == TrackKind::Video && codec.eq_ignore_ascii_case("H265"))
        .then(|| {
            "its video is H.265, which r58 records and passes through to RTSP readers: its \
             WebRTC viewers take H.264 or VP8 and r58 does not transcode (read it over RTSP, \
             or set the camera to H.264)"
                .to_owned()
        })
}

/// The outputs a stream with these tracks cannot have, each with its reason (empty when it can
/// have all of them).
pub fn unavailable_outputs<'a>(
    tracks: impl IntoIterator<Item = (TrackKind, &'a str)> + Clone,
) -> Vec<(Output, String)> {
    let why = |output: Output| {
        let reason = match output {
            Output::Webrtc => webrtc_refusal(tracks.clone()),
            Output::Recording => recording_refusal(tracks.clone()),
            Output::Hls | Output::Program => passthrough_refusal(tracks.clone()),
        };
        reason.map(|why| (output, format!("{}: {why}", output.headline())))
    };
    [
        Output::Webrtc,
        Output::Hls,
        Output::Recording,
        Output::Program,
    ]
    .into_iter()
    .filter_map(why)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_and_opus_have_every_output() {
        let tracks = [(TrackKind::Audio, "OPUS"), (TrackKind::Video, "h264")];
        assert!(unavailable_outputs(tracks).is_empty());
        assert_eq!(passthrough_refusal([(TrackKind::Video, "H264")]), None);
    }

    #[test]
    fn vp8_video_lacks_hls_recording_and_program_and_says_why() {
        let tracks = [(TrackKind::Audio, "opus"), (TrackKind::Video, "VP8")];
        let missing = unavailable_outputs(tracks);
        let outputs: Vec<&str> = missing.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(outputs, ["hls", "recording", "program"]);
        for (_, why) in &missing {
            assert!(why.contains("its video is VP8"), "{why}");
            assert!(why.contains("does not transcode"), "{why}");
        }
        assert!(missing[0].1.starts_with("no LL-HLS: "), "{}", missing[0].1);
    }

    #[test]
    fn h265_video_is_recorded_but_lacks_webrtc_hls_and_program_and_says_why() {
        let tracks = [(TrackKind::Video, "H265"), (TrackKind::Audio, "opus")];
        let missing = unavailable_outputs(tracks);
        let outputs: Vec<&str> = missing.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(outputs, ["webrtc", "hls", "program"]);
        assert!(
            missing[0]
                .1
                .starts_with("no WebRTC viewers: its video is H.265"),
            "{}",
            missing[0].1
        );
        assert!(missing[0].1.contains("RTSP"), "{}", missing[0].1);
        for (_, why) in &missing[1..] {
            assert!(why.contains("its video is H.265"), "{why}");
            assert!(why.contains("set the camera to H.264"), "{why}");
            assert!(!why.contains("Firefox"), "not a browser's matter: {why}");
        }
        assert!(missing[1].1.starts_with("no LL-HLS: "), "{}", missing[1].1);
        assert_eq!(recording_refusal(tracks), None);
        assert_eq!(webrtc_refusal([(TrackKind::Video, "VP8")]), None);
        assert_eq!(webrtc_refusal([(TrackKind::Audio, "H265")]), None);
        // What the recorder does not take it says with its own list.
        let why = recording_refusal([(TrackKind::Video, "VP8")]).unwrap_or_default();
        assert!(why.contains("carry H.264 or H.265 video"), "{why}");
        assert!(recording_refusal([(TrackKind::Audio, "PCMU")]).is_some());
    }

    #[test]
    fn other_audio_and_no_tracks_are_refused() {
        let why = passthrough_refusal([(TrackKind::Audio, "PCMU")]).unwrap_or_default();
        assert!(why.contains("its audio is PCMU"), "{why}");
        assert_eq!(passthrough_refusal([]).as_deref(), Some("it has no tracks"));
    }
}
