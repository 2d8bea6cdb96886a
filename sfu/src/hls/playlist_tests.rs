use super::*;
use crate::hls::multivariant::multivariant_playlist;
use crate::hls::segmenter::HlsConfig;
use crate::media::h264::AccessUnit;
use bytes::Bytes;
use std::time::Duration;

const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
    0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_764_066_000_250)
}

fn segmenter(frames: u32) -> Segmenter {
    let mut s = Segmenter::new(HlsConfig::default(), true, None).unwrap();
    for i in 0..frames {
        let keyframe = i % 30 == 0;
        let mut nals = vec![Bytes::from(vec![if keyframe { 0x65 } else { 0x41 }, 0x88])];
        if keyframe {
            nals.insert(0, Bytes::from_static(PPS));
            nals.insert(0, Bytes::from_static(SPS));
        }
        let unit = AccessUnit {
            timestamp: i * 3000,
            nals,
            keyframe,
        };
        s.push_video(u64::from(i) * 3000, wall(), &unit).unwrap();
    }
    s
}

#[test]
fn dates_are_rfc3339_utc() {
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(wall()), "2025-11-25T10:20:00.250Z");
    let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
    assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
}

#[test]
fn media_playlist_has_the_low_latency_tags() {
    let s = segmenter(30 * 9 + 10);
    let text = media_playlist(&s, false);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "#EXTM3U");
    assert!(lines.contains(&"#EXT-X-VERSION:9"));
    assert!(lines.contains(&"#EXT-X-TARGETDURATION:1"));
    assert!(lines.contains(
        &"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.0,PART-HOLD-BACK=0.600"
    ));
    assert!(lines.contains(&"#EXT-X-PART-INF:PART-TARGET=0.200"));
    assert!(lines.contains(&"#EXT-X-MEDIA-SEQUENCE:2"), "7 of 9 kept");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("#EXTINF:1.00000,"))
            .count(),
        7
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("#EXT-X-MAP:"))
            .count(),
        1
    );
    assert!(lines.contains(&"#EXT-X-MAP:URI=\"init0.mp4\""));
    assert!(lines.contains(&"#EXT-X-PROGRAM-DATE-TIME:2025-11-25T10:20:02.250Z"));
    // Parts of the last 3 segments, and the open segment's.
    let parts: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .collect();
    assert_eq!(parts.len(), 3 * 5 + 1);
    assert_eq!(
        *parts[0],
        "#EXT-X-PART:DURATION=0.20000,URI=\"part6.0.m4s\",INDEPENDENT=YES"
    );
    assert_eq!(
        *parts[1],
        "#EXT-X-PART:DURATION=0.20000,URI=\"part6.1.m4s\""
    );
    assert_eq!(
        *parts[15],
        "#EXT-X-PART:DURATION=0.20000,URI=\"part9.0.m4s\",INDEPENDENT=YES"
    );
    assert_eq!(
        lines.last(),
        Some(&"#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part9.1.m4s\"")
    );
    assert!(!text.contains("://") && !text.contains("#EXT-X-SKIP"));
}

#[test]
fn delta_update_skips_old_segments() {
    let s = segmenter(30 * 9 + 10);
    let text = media_playlist(&s, true);
    // 7.33 s listed; segments starting more than 6 s before the end are skipped.
    assert!(text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n"), "{text}");
    assert!(!text.contains("seg2.m4s") && !text.contains("seg3.m4s"));
    assert!(text.contains("#EXT-X-MAP:URI=\"init0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME"));
    assert!(text.contains("seg4.m4s"));
}

#[test]
fn empty_and_ended_playlists() {
    let s = Segmenter::new(HlsConfig::default(), true, None).unwrap();
    let text = media_playlist(&s, true);
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:0"));
    assert!(text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part0.0.m4s\"\n"));
    let mut s = segmenter(40);
    s.discontinuity().unwrap();
    s.finish().unwrap();
    let text = media_playlist(&s, false);
    assert!(text.ends_with("seg1.m4s\n#EXT-X-ENDLIST\n"), "{text}");
    assert!(!text.contains("PRELOAD-HINT"));
}

#[test]
fn multivariant_names_the_codecs() {
    let s = Segmenter::new(HlsConfig::default(), true, None).unwrap();
    assert!(multivariant_playlist(&s, "stream.m3u8").is_err());
    let s = segmenter(61);
    let text = multivariant_playlist(&s, "stream.m3u8").unwrap();
    assert!(text.contains("CODECS=\"avc1.42c00d\""), "{text}");
    assert!(text.contains("RESOLUTION=320x240"));
    assert!(text.contains("\nstream.m3u8"));
    let parsed = hls_m3u8::MasterPlaylist::try_from(text.as_str()).unwrap();
    assert_eq!(parsed.variant_streams.len(), 1);
}
