//! LL-HLS output checked by an independent reader: a real H.264 clip (and Opus audio) made by
//! ffmpeg goes through the segmenter, directly as access units and through RTP packetization
//! and the depacketizer; ffprobe must read init + segments, init + each part, and the playlist,
//! and count every frame.
//!
//! ffmpeg/ffprobe missing: the tests print why and pass, unless `CI` is set (then they fail).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sfu::hls::annexb::{access_units, split_nals};
use sfu::hls::{
    HlsConfig, Lookup, OpusParams, Resource, Segmenter, media_playlist, multivariant_playlist,
};
use sfu::media::h264::AccessUnit;
use sfu::rtp::h264::H264Depacketizer;

const FRAMES: usize = 90;

fn tools_available(test: &str) -> bool {
    let ok = ["ffmpeg", "ffprobe"].iter().all(|tool| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: ffmpeg/ffprobe are required in CI"
        );
        println!("skipping {test}: ffmpeg or ffprobe not installed");
    }
    ok
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("r58-hls-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run tool");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "{cmd:?}: {stderr}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// 3 s of 320x240 30 fps constrained baseline, a keyframe every second.
fn clip(dir: &Path) -> Vec<AccessUnit> {
    let path = dir.join("clip.h264");
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi"])
        .args([
            "-i",
            "testsrc=size=320x240:rate=30",
            "-t",
            "3",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-g",
            "30",
            "-bsf:v",
            "h264_mp4toannexb",
            "-f",
            "h264",
        ])
        .arg(&path));
    let stream = Bytes::from(std::fs::read(&path).unwrap());
    let units = access_units(&split_nals(&stream), 3000);
    assert_eq!(units.len(), FRAMES);
    units
}

/// 3 s of a 440 Hz tone as Opus packets (20 ms each), read out of ffmpeg's Ogg.
fn opus_packets(dir: &Path) -> Vec<Bytes> {
    let path = dir.join("tone.ogg");
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .args([
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "3",
            "-ac",
            "2",
        ])
        .args(["-c:a", "libopus", "-b:a", "64k", "-frame_duration", "20"])
        .arg(&path));
    let data = std::fs::read(&path).unwrap();
    let mut packets = Vec::new();
    let mut packet = Vec::new();
    let mut at = 0;
    while at + 27 <= data.len() {
        assert_eq!(&data[at..at + 4], b"OggS");
        let segments = usize::from(data[at + 26]);
        let table = &data[at + 27..at + 27 + segments];
        let mut body = at + 27 + segments;
        for &lace in table {
            packet.extend_from_slice(&data[body..body + usize::from(lace)]);
            body += usize::from(lace);
            if lace < 255 {
                packets.push(Bytes::from(std::mem::take(&mut packet)));
            }
        }
        at = body;
    }
    // Drop the OpusHead and OpusTags headers.
    packets.drain(..2);
    packets
}

fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_764_000_000)
}

/// The clip through RTP: single NAL packets, FU-A above 1200 bytes, marker on the last one.
fn through_rtp(units: &[AccessUnit]) -> Vec<AccessUnit> {
    let mut depacketizer = H264Depacketizer::new();
    let mut out = Vec::new();
    let mut sequence = 1000u16;
    for unit in units {
        let mut payloads: Vec<Bytes> = Vec::new();
        for nal in &unit.nals {
            if nal.len() <= 1200 {
                payloads.push(nal.clone());
                continue;
            }
            let chunks: Vec<&[u8]> = nal[1..].chunks(1200).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                let mut fu = vec![(nal[0] & 0xe0) | 28, nal[0] & 0x1f];
                if i == 0 {
                    fu[1] |= 0x80;
                }
                if i == chunks.len() - 1 {
                    fu[1] |= 0x40;
                }
                fu.extend_from_slice(chunk);
                payloads.push(fu.into());
            }
        }
        let last = payloads.len() - 1;
        for (i, payload) in payloads.iter().enumerate() {
            sequence = sequence.wrapping_add(1);
            let timestamp = unit.timestamp.wrapping_add(0x1234_5678);
            if let Some(unit) = depacketizer
                .push(sequence, timestamp, i == last, payload)
                .unwrap()
            {
                out.push(unit);
            }
        }
    }
    out
}

/// Feeds the segmenter and writes every resource it serves into `dir`.
fn segment(dir: &Path, units: &[AccessUnit], audio: &[Bytes]) -> Segmenter {
    let opus = (!audio.is_empty()).then(OpusParams::default);
    let mut s = Segmenter::new(HlsConfig::default(), true, opus).unwrap();
    let mut audio = audio.iter().enumerate().peekable();
    for (i, unit) in units.iter().enumerate() {
        // Timestamps on one timeline: frame i at i/30 s, packet j at j/50 s.
        while let Some((j, packet)) = audio.next_if(|(j, _)| *j * 3 <= i * 5) {
            s.push_audio(j as u64 * 960, wall(), packet).unwrap();
        }
        s.push_video(i as u64 * 3000, wall(), unit).unwrap();
        // Every published part is readable the moment it is in the playlist.
        let p = s.progress();
        if p.open_parts > 0 {
            assert!(matches!(
                s.part(p.open_msn, p.open_parts - 1),
                Lookup::Found(_)
            ));
            assert_eq!(s.part(p.open_msn, p.open_parts), Lookup::Pending);
        }
    }
    s.finish().unwrap();
    let write = |name: String, data: Bytes| std::fs::write(dir.join(name), data).unwrap();
    write(Resource::Init(0).uri(), s.init(0).unwrap());
    for seg in s.segments() {
        write(Resource::Segment(seg.msn).uri(), seg.data.clone().unwrap());
        for part in &seg.parts {
            write(Resource::Part(seg.msn, part.index).uri(), part.data.clone());
        }
    }
    std::fs::write(dir.join("stream.m3u8"), media_playlist(&s, false)).unwrap();
    std::fs::write(
        dir.join("index.m3u8"),
        multivariant_playlist(&s, "stream.m3u8").unwrap(),
    )
    .unwrap();
    s
}

/// `key=value` lines of ffprobe's stream section for one file.
fn probe(path: &Path, extra: &[&str]) -> Vec<(String, String)> {
    let out = run(Command::new("ffprobe")
        .args(["-v", "error"])
        .args(extra)
        .args(["-count_frames", "-show_entries"])
        .args([
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "default=nw=1",
        ])
        .arg(path));
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn value<'a>(fields: &'a [(String, String)], key: &str, nth: usize) -> &'a str {
    fields
        .iter()
        .filter(|(k, _)| k == key)
        .nth(nth)
        .map_or("", |(_, v)| v.as_str())
}

fn concat(dir: &Path, name: &str, parts: &[Bytes]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, parts.concat()).unwrap();
    path
}

#[test]
fn ffprobe_reads_segments_parts_and_playlist() {
    if !tools_available("ffprobe_reads_segments_parts_and_playlist") {
        return;
    }
    let dir = temp_dir("video");
    let units = clip(&dir);
    let s = segment(&dir, &units, &[]);
    let segments: Vec<_> = s.segments().collect();
    assert_eq!(segments.len(), 3, "cut at each keyframe, 1 s apart");
    let init = s.init(0).unwrap();

    // init + all segments: every frame, h264, 320x240.
    let mut whole = vec![init.clone()];
    whole.extend(segments.iter().map(|seg| seg.data.clone().unwrap()));
    let fields = probe(&concat(&dir, "all.mp4", &whole), &[]);
    assert_eq!(value(&fields, "codec_name", 0), "h264");
    assert_eq!(value(&fields, "width", 0), "320");
    assert_eq!(value(&fields, "height", 0), "240");
    assert_eq!(value(&fields, "nb_read_frames", 0), FRAMES.to_string());

    // init + each part alone: the independent ones decode on their own (6 frames of 0.2 s).
    for seg in &segments {
        assert_eq!(seg.parts.len(), 5);
        let first = &seg.parts[0];
        assert!(first.independent);
        let path = concat(&dir, "part.mp4", &[init.clone(), first.data.clone()]);
        let fields = probe(&path, &[]);
        assert_eq!(value(&fields, "nb_read_frames", 0), "6", "msn {}", seg.msn);
    }

    // The playlist, read by ffmpeg's HLS demuxer from the files on disk.
    let playlist = dir.join("stream.m3u8");
    let fields = probe(&playlist, &["-allowed_extensions", "ALL"]);
    assert_eq!(value(&fields, "codec_name", 0), "h264");
    assert_eq!(value(&fields, "nb_read_frames", 0), FRAMES.to_string());
    let fields = probe(&dir.join("index.m3u8"), &["-allowed_extensions", "ALL"]);
    assert_eq!(value(&fields, "nb_read_frames", 0), FRAMES.to_string());

    // The LL-HLS tags (hls_m3u8 0.7 cannot parse these; see the parse test below).
    let text = std::fs::read_to_string(&playlist).unwrap();
    for tag in [
        "#EXT-X-VERSION:9",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,",
        "PART-HOLD-BACK=0.600",
        "#EXT-X-PART-INF:PART-TARGET=0.200",
        "#EXT-X-MAP:URI=\"init0.mp4\"",
        "#EXT-X-PROGRAM-DATE-TIME:2025-11-24T16:00:00.000Z",
        "#EXT-X-PART:DURATION=0.20000,URI=\"part2.0.m4s\",INDEPENDENT=YES",
        "#EXT-X-ENDLIST",
    ] {
        assert!(text.contains(tag), "{tag} missing in\n{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rtp_path_gives_the_same_bytes() {
    if !tools_available("rtp_path_gives_the_same_bytes") {
        return;
    }
    let dir = temp_dir("rtp");
    let units = clip(&dir);
    let direct = segment(&dir, &units, &[]);
    let depacketized = through_rtp(&units);
    assert_eq!(depacketized.len(), FRAMES);
    let via_rtp = segment(&dir, &depacketized, &[]);
    assert_eq!(direct.init(0), via_rtp.init(0));
    let a: Vec<_> = direct.segments().map(|s| s.data.clone()).collect();
    let b: Vec<_> = via_rtp.segments().map(|s| s.data.clone()).collect();
    assert_eq!(a, b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn audio_and_video_play_through_the_playlist() {
    if !tools_available("audio_and_video_play_through_the_playlist") {
        return;
    }
    let dir = temp_dir("av");
    let units = clip(&dir);
    let audio = opus_packets(&dir);
    assert!(audio.len() >= 145, "{} packets", audio.len());
    let s = segment(&dir, &units, &audio);
    assert_eq!(s.codecs().unwrap(), ["avc1.42c00d", "opus"]);
    let fields = probe(&dir.join("stream.m3u8"), &["-allowed_extensions", "ALL"]);
    let video = (0..2)
        .find(|&i| value(&fields, "codec_name", i) == "h264")
        .unwrap();
    let audio_stream = 1 - video;
    assert_eq!(value(&fields, "codec_name", audio_stream), "opus");
    assert_eq!(value(&fields, "nb_read_frames", video), FRAMES.to_string());
    let audio_frames: usize = value(&fields, "nb_read_frames", audio_stream)
        .parse()
        .unwrap();
    assert!(audio_frames >= 145, "{audio_frames} Opus frames");
    let index = std::fs::read_to_string(dir.join("index.m3u8")).unwrap();
    assert!(index.contains("CODECS=\"avc1.42c00d,opus\""), "{index}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn standard_tags_parse_with_hls_m3u8() {
    // No tools needed: synthetic frames are enough for the playlist's structure.
    let mut s = Segmenter::new(HlsConfig::default(), true, None).unwrap();
    let sps = Bytes::from_static(&[
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    ]);
    for i in 0..100u32 {
        let keyframe = i % 30 == 0;
        let mut nals = vec![Bytes::from(vec![if keyframe { 0x65 } else { 0x41 }, 0x88])];
        if keyframe {
            nals.splice(
                0..0,
                [
                    sps.clone(),
                    Bytes::from_static(&[0x68, 0xcb, 0x83, 0xcb, 0x20]),
                ],
            );
        }
        let unit = AccessUnit {
            timestamp: 0,
            nals,
            keyframe,
        };
        s.push_video(u64::from(i) * 3000, wall(), &unit).unwrap();
    }
    let text = media_playlist(&s, false);
    let ll_hls = [
        "#EXT-X-PART",
        "#EXT-X-PRELOAD-HINT",
        "#EXT-X-SERVER-CONTROL",
        "#EXT-X-SKIP",
    ];
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|l| !ll_hls.iter().any(|t| l.starts_with(t)))
        .collect();
    // Drop the open segment's tags (its parts are gone) and claim the version hls_m3u8 knows.
    while lines.last().is_some_and(|l| l.starts_with('#')) {
        lines.pop();
    }
    let standard = lines
        .join("\n")
        .replace("#EXT-X-VERSION:9", "#EXT-X-VERSION:7")
        + "\n";
    let parsed = hls_m3u8::MediaPlaylist::try_from(standard.as_str())
        .unwrap_or_else(|e| panic!("{e}\n{standard}"));
    assert_eq!(parsed.media_sequence, 0);
    assert_eq!(parsed.segments.num_elements(), 3);
    assert_eq!(parsed.target_duration, Duration::from_secs(1));
}

#[test]
fn audio_only_playlist_plays() {
    if !tools_available("audio_only_playlist_plays") {
        return;
    }
    let dir = temp_dir("audio");
    let packets = opus_packets(&dir);
    let mut s = Segmenter::new(HlsConfig::default(), false, Some(OpusParams::default())).unwrap();
    for (i, packet) in packets.iter().enumerate() {
        s.push_audio(i as u64 * 960, wall(), packet).unwrap();
    }
    s.finish().unwrap();
    std::fs::write(dir.join("init0.mp4"), s.init(0).unwrap()).unwrap();
    for seg in s.segments() {
        let name = Resource::Segment(seg.msn).uri();
        std::fs::write(dir.join(name), seg.data.clone().unwrap()).unwrap();
        assert!(seg.parts.iter().all(|p| p.independent));
    }
    std::fs::write(dir.join("stream.m3u8"), media_playlist(&s, false)).unwrap();
    let fields = probe(&dir.join("stream.m3u8"), &["-allowed_extensions", "ALL"]);
    assert_eq!(value(&fields, "codec_name", 0), "opus");
    assert_eq!(
        value(&fields, "nb_read_frames", 0),
        packets.len().to_string()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
