//! Which outputs a stream's codecs allow. r58 forwards media without transcoding: WebRTC viewers
//! take whatever their browser decodes, but LL-HLS, recordings and the switcher's program are
//! fMP4/RTP of H.264 video and Opus audio, so a stream in another codec (VP8 from Firefox
//! without OpenH264) is live over WebRTC only. H.265 from an IP camera is the other way round:
//! passed through to RTSP readers only, since r58's WebRTC viewers take H.264 or VP8 (and
//! LL-HLS, recording and the program carry H.264). Every place that shows a stream
//! (`/api/streams`, the guest page, the switcher) says so with the same reason, and WHEP
//! refuses such a stream with it.

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
/// and Opus, or None when it can feed them all. Codec names compare case-insensitively.
pub fn passthrough_refusal<'a>(
    tracks: impl IntoIterator<Item = (TrackKind, &'a str)>,
) -> Option<String> {
    let mut empty = true;
    for (kind, codec) in tracks {
        empty = false;
        let (ok, wanted) = match kind {
            TrackKind::Video => (codec.eq_ignore_ascii_case("H264"), "H.264"),
            TrackKind::Audio => (codec.eq_ignore_ascii_case("opus"), "Opus"),
        };
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
/// passes through from IP cameras to RTSP readers only.
pub fn webrtc_refusal<'a>(
    tracks: impl IntoIterator<Item = (TrackKind, &'a str)>,
) -> Option<String> {
    tracks
        .into_iter()
        .any(|(kind, codec)| kind == TrackKind::Video && codec.eq_ignore_ascii_case("H265"))
        .then(|| {
            "its video is H.265, which r58 passes through to RTSP readers only: its WebRTC \
             viewers take H.264 or VP8 and r58 does not transcode (read it over RTSP, or set \
             the camera to H.264)"
                .to_owned()
        })
}

/// The outputs a stream with these tracks cannot have, each with its reason (empty when it can
/// have all of them).
pub fn unavailable_outputs<'a>(
    tracks: impl IntoIterator<Item = (TrackKind, &'a str)> + Clone,
) -> Vec<(Output, String)> {
    let mut missing: Vec<(Output, String)> = webrtc_refusal(tracks.clone())
        .map(|why| {
            (
                Output::Webrtc,
                format!("{}: {why}", Output::Webrtc.headline()),
            )
        })
        .into_iter()
        .collect();
    if let Some(why) = passthrough_refusal(tracks) {
        missing.extend(
            [Output::Hls, Output::Recording, Output::Program]
                .into_iter()
                .map(|o| (o, format!("{}: {why}", o.headline()))),
        );
    }
    missing
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
    fn h265_video_lacks_webrtc_too_and_says_why() {
        let tracks = [(TrackKind::Video, "H265")];
        let missing = unavailable_outputs(tracks);
        let outputs: Vec<&str> = missing.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(outputs, ["webrtc", "hls", "recording", "program"]);
        assert!(
            missing[0]
                .1
                .starts_with("no WebRTC viewers: its video is H.265"),
            "{}",
            missing[0].1
        );
        assert!(missing[0].1.contains("RTSP"), "{}", missing[0].1);
        assert!(
            missing[1].1.contains("its video is H265"),
            "{}",
            missing[1].1
        );
        assert_eq!(webrtc_refusal([(TrackKind::Video, "VP8")]), None);
        assert_eq!(webrtc_refusal([(TrackKind::Audio, "H265")]), None);
    }

    #[test]
    fn other_audio_and_no_tracks_are_refused() {
        let why = passthrough_refusal([(TrackKind::Audio, "PCMU")]).unwrap_or_default();
        assert!(why.contains("its audio is PCMU"), "{why}");
        assert_eq!(passthrough_refusal([]).as_deref(), Some("it has no tracks"));
    }
}
