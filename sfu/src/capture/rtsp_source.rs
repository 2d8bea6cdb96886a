//! IP cameras as streams: an RTSP client (the `retina` crate) pulls a camera's H.264 (and Opus,
//! if it has it) and publishes the RTP packets into the engine as a local source, like any
//! camera: WHEP viewers, LL-HLS, the recorder and the switcher read it as they read `cam0`.
//!
//! Kept up the way [`super::supervisor`] keeps a V4L2 camera up, with its constants: no packet
//! for [`STALL`] ends the stream as stalled, a failure or stall retries after a backoff from
//! [`BACKOFF_START`] doubling to [`BACKOFF_MAX`], reset after [`HEALTHY_AFTER`] of good running.
//!
//! Many cameras send their SPS and PPS only in the SDP (`sprop-parameter-sets`), never in the
//! stream. A browser's decoder, and the LL-HLS muxer, need them in band before each keyframe:
//! [`ParameterSets`] puts them there (and renumbers the packets so the inserted ones fit).
//!
//! A camera without H.264 but with H.265 is passed through as H.265: the hub carries it (and its
//! keyframe cache, for an instant start), RTSP readers and the recorder get it, and what is
//! built on H.264 (WebRTC viewers, LL-HLS, the program) says it cannot take it
//! ([`crate::media::outputs`]). Its SDP's VPS, SPS and PPS go into the stream's format
//! parameters (RTSP readers' DESCRIBE uses them when the cached keyframe lacks them, the
//! recorder's depacketizer starts with them), and so does its `sprop-max-don-diff`; unlike
//! H.264's, the parameter sets are not inserted in band.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use retina::client::{
    Credentials, PacketItem, PlayOptions, SessionOptions, SetupOptions, TcpTransportOptions,
    Transport, UdpTransportOptions,
};
use tracing::{Instrument, info, info_span, warn};

use super::supervisor::{BACKOFF_MAX, BACKOFF_START, HEALTHY_AFTER};
use crate::engine::{LocalSourceId, SharedEngine};
use crate::media::h264::nal_type;
use crate::media::{CodecSpec, SourceKind, TrackKind, fmtp_param};

/// No packet for this long and the stream ends as stalled (longer than a V4L2 camera's: an IP
/// camera on a busy network may pause briefly).
pub const STALL: Duration = Duration::from_secs(5);

/// How the camera's packets travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtspTransport {
    Tcp,
    Udp,
}

/// One `[[source]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspSourceSettings {
    /// The stream name it publishes.
    pub name: String,
    /// `rtsp://[user:password@]host[:port]/path`.
    pub url: String,
    pub transport: RtspTransport,
}

/// Why a session with the camera ended.
#[derive(Debug, thiserror::Error)]
pub enum RtspSourceError {
    #[error("bad URL: {0}")]
    Url(String),
    #[error("RTSP: {0}")]
    Rtsp(#[from] retina::Error),
    #[error("the camera offers no H.264 or H.265 video (it has: {0})")]
    NoUsableVideo(String),
    #[error("no packet for {STALL:?}: stalled")]
    Stalled,
    #[error("the camera ended the session")]
    Ended,
    #[error("the engine refused the stream: {0}")]
    Engine(#[from] crate::engine::EngineError),
}

/// Counters of one RTSP source, for logs and tests.
#[derive(Debug, Default)]
pub struct RtspSourceStats {
    pub packets: AtomicU64,
    pub opens: AtomicU64,
    pub failures: AtomicU64,
}

/// A running source; dropping it stops the source and ends its stream.
pub struct RtspSourceHandle {
    task: tokio::task::JoinHandle<()>,
    pub stats: Arc<RtspSourceStats>,
}

impl Drop for RtspSourceHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts pulling `settings.url` into stream `settings.name` on the current tokio runtime.
pub fn start_rtsp_source(engine: SharedEngine, settings: RtspSourceSettings) -> RtspSourceHandle {
    let stats = Arc::new(RtspSourceStats::default());
    let span = info_span!("rtsp_source", stream = %settings.name);
    let task = tokio::spawn(supervise(engine, settings, stats.clone()).instrument(span));
    RtspSourceHandle { task, stats }
}

async fn supervise(
    engine: SharedEngine,
    settings: RtspSourceSettings,
    stats: Arc<RtspSourceStats>,
) {
    let mut backoff = BACKOFF_START;
    loop {
        let started = Instant::now();
        let mut live = None;
        let result = session(&engine, &settings, &stats, &mut live).await;
        if let Some(id) = live.take() {
            engine.lock().close_local_source(Instant::now(), id);
            engine.flush_soon();
        }
        stats.failures.fetch_add(1, Ordering::Relaxed);
        if started.elapsed() >= HEALTHY_AFTER {
            backoff = BACKOFF_START;
        }
        let why = result
            .err()
            .map_or_else(|| "ended".to_owned(), |e| e.to_string());
        warn!(url = %redacted(&settings.url), error = %why, retry_in = ?backoff, "RTSP source down");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One session with the camera: DESCRIBE, SETUP, PLAY, then packets into the engine until it
/// fails or stalls. `live` holds the engine's id while the stream is open.
async fn session(
    engine: &SharedEngine,
    settings: &RtspSourceSettings,
    stats: &RtspSourceStats,
    live: &mut Option<LocalSourceId>,
) -> Result<(), RtspSourceError> {
    let (url, creds) = split_credentials(&settings.url)?;
    let options = SessionOptions::default()
        .creds(creds)
        .user_agent("r58".to_owned());
    let mut described = retina::client::Session::describe(url, options).await?;
    let streams = described.streams();
    let offered: Vec<String> = streams
        .iter()
        .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
        .collect();
    let video_in = |codec: &str| {
        streams
            .iter()
            .position(|s| s.media() == "video" && s.encoding_name().eq_ignore_ascii_case(codec))
    };
    // H.264 when the camera offers it (every output takes it), else H.265 passed through.
    let (video, h265) = match (video_in("h264"), video_in("h265")) {
        (Some(v), _) => (v, false),
        (None, Some(v)) => (v, true),
        (None, None) => return Err(RtspSourceError::NoUsableVideo(offered.join(", "))),
    };
    let audio = streams
        .iter()
        .position(|s| s.media() == "audio" && s.encoding_name().eq_ignore_ascii_case("opus"));
    let (codec, fmtp, parameter_sets) = if h265 {
        // The camera's parameter sets from its SDP, for RTSP readers' DESCRIBE until the
        // keyframe cache has in-band ones.
        let mut fmtp = match described.streams()[video].parameters() {
            Some(retina::codec::ParametersRef::Video(v)) => hvcc_sprop(v.extra_data()),
            _ => None,
        }
        .unwrap_or_default();
        // Decoding order numbers in the payloads (RFC 7798 §4.4.1): what reads the stream must
        // know (the recorder refuses it, RTSP readers are told).
        let payload_type = described.streams()[video].rtp_payload_type();
        if let Some(diff) = video_fmtp_param(described.sdp(), payload_type, "sprop-max-don-diff") {
            if !fmtp.is_empty() {
                fmtp.push(';');
            }
            fmtp.push_str(&format!("sprop-max-don-diff={diff}"));
        }
        ("H265", fmtp, None)
    } else {
        let parameter_sets = match described.streams()[video].parameters() {
            Some(retina::codec::ParametersRef::Video(v)) => avcc_parameter_sets(v.extra_data()),
            _ => None,
        };
        (
            "H264",
            video_fmtp(&described.streams()[video]),
            parameter_sets,
        )
    };
    let mut tracks = vec![(
        TrackKind::Video,
        CodecSpec {
            name: codec.into(),
            clock_rate: 90_000,
            channels: None,
            fmtp,
        },
    )];
    let mut chosen = vec![video];
    if let Some(a) = audio {
        let s = &described.streams()[a];
        tracks.push((
            TrackKind::Audio,
            CodecSpec {
                name: "opus".into(),
                clock_rate: s.clock_rate_hz(),
                channels: Some(s.channels().map_or(2, |c| c.get())),
                fmtp: String::new(),
            },
        ));
        chosen.push(a);
    }
    let transport = match settings.transport {
        RtspTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
        RtspTransport::Udp => Transport::Udp(UdpTransportOptions::default()),
    };
    for &i in &chosen {
        described
            .setup(i, SetupOptions::default().transport(transport.clone()))
            .await?;
    }
    let mut playing = described.play(PlayOptions::default()).await?;
    let id = engine.lock().open_local_source(
        Instant::now(),
        &settings.name,
        SourceKind::Camera,
        tracks,
    )?;
    *live = Some(id);
    stats.opens.fetch_add(1, Ordering::Relaxed);
    engine.flush_soon();
    info!(url = %redacted(&settings.url), transport = ?settings.transport, video = codec, audio = audio.is_some(), "RTSP source live");
    // For H.265 (no parameter sets to insert) this only numbers the packets on.
    let mut video_out = ParameterSets::new(parameter_sets);
    let mut audio_seq = 0u16;
    loop {
        let item = match tokio::time::timeout(STALL, playing.next()).await {
            Err(_) => return Err(RtspSourceError::Stalled),
            Ok(None) => return Err(RtspSourceError::Ended),
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(Some(Ok(item))) => item,
        };
        let PacketItem::Rtp(packet) = item else {
            continue;
        };
        let Some(track) = chosen.iter().position(|&i| i == packet.stream_id()) else {
            continue;
        };
        let now = Instant::now();
        let packets = if track == 0 {
            video_out.packets(packet.raw())
        } else {
            // Audio keeps its numbering; only gaps retina skipped are numbered through.
            audio_seq = audio_seq.wrapping_add(1);
            vec![renumbered(packet.raw(), audio_seq)]
        };
        {
            let mut engine = engine.lock();
            for p in packets {
                stats.packets.fetch_add(1, Ordering::Relaxed);
                engine.ingest_local(now, id, track, p)?;
            }
        }
        engine.flush_soon();
    }
}

/// The URL without its user info, and the credentials it carried.
fn split_credentials(raw: &str) -> Result<(url::Url, Option<Credentials>), RtspSourceError> {
    let mut url = url::Url::parse(raw).map_err(|e| RtspSourceError::Url(e.to_string()))?;
    if url.scheme() != "rtsp" {
        return Err(RtspSourceError::Url(format!(
            "'{}' is not rtsp://",
            url.scheme()
        )));
    }
    let creds = (!url.username().is_empty()).then(|| Credentials {
        username: decode(url.username()),
        password: decode(url.password().unwrap_or("")),
    });
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok((url, creds))
}

/// Percent-decoding of user info (`p%40ss` is `p@ss`).
fn decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The URL for logs: the password replaced.
pub fn redacted(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "(invalid URL)".to_owned(),
    }
}

/// The value of format parameter `key` in the `a=fmtp` line of payload type `payload_type` of
/// a video section of a camera's SDP.
pub fn video_fmtp_param(sdp: &[u8], payload_type: u8, key: &str) -> Option<String> {
    let text = String::from_utf8_lossy(sdp);
    let prefix = format!("a=fmtp:{payload_type} ");
    let mut video = false;
    for line in text.lines().map(str::trim) {
        if let Some(media) = line.strip_prefix("m=") {
            video = media.starts_with("video ");
        } else if video && let Some(params) = line.strip_prefix(&prefix) {
            return fmtp_param(params, key).map(str::to_owned);
        }
    }
    None
}

fn video_fmtp(stream: &retina::client::Stream) -> String {
    let mut fmtp = "packetization-mode=1".to_owned();
    if let Some(retina::codec::ParametersRef::Video(v)) = stream.parameters()
        && let Some(profile) = v.rfc6381_codec().strip_prefix("avc1.")
    {
        fmtp.push_str(&format!(
            ";profile-level-id={}",
            profile.to_ascii_lowercase()
        ));
    }
    fmtp
}

/// The SPS and PPS of an AVCDecoderConfigurationRecord (ISO 14496-15 5.3.3.1), the form
/// `retina` gives a stream's parameters in.
pub fn avcc_parameter_sets(avcc: &[u8]) -> Option<(Bytes, Bytes)> {
    let mut at = 5;
    let count = usize::from(*avcc.get(at)? & 0x1f);
    at += 1;
    let read = |at: &mut usize| -> Option<Bytes> {
        let len = usize::from(u16::from_be_bytes([*avcc.get(*at)?, *avcc.get(*at + 1)?]));
        let nal = avcc.get(*at + 2..*at + 2 + len)?;
        *at += 2 + len;
        Some(Bytes::copy_from_slice(nal))
    };
    let mut sps = None;
    for _ in 0..count {
        let nal = read(&mut at)?;
        sps = sps.or(Some(nal));
    }
    let pps_count = usize::from(*avcc.get(at)?);
    at += 1;
    let mut pps = None;
    for _ in 0..pps_count {
        let nal = read(&mut at)?;
        pps = pps.or(Some(nal));
    }
    sps.zip(pps)
}

/// The VPS, SPS and PPS of an HEVCDecoderConfigurationRecord (ISO 14496-15 8.3.3.1, the form
/// `retina` gives an H.265 stream's parameters in) as RFC 7798 format parameters:
/// `sprop-vps=..;sprop-sps=..;sprop-pps=..` (the first of each).
pub fn hvcc_sprop(hvcc: &[u8]) -> Option<String> {
    use base64::Engine as _;
    // 22 bytes of profile, level, chroma and bit-depth fields, then the NAL unit arrays.
    let arrays = *hvcc.get(22)?;
    let mut at = 23;
    let mut sets: [Option<&[u8]>; 3] = [None, None, None];
    for _ in 0..arrays {
        let nal_type = *hvcc.get(at)? & 0x3f;
        let count = u16::from_be_bytes([*hvcc.get(at + 1)?, *hvcc.get(at + 2)?]);
        at += 3;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([*hvcc.get(at)?, *hvcc.get(at + 1)?]));
            let nal = hvcc.get(at + 2..at + 2 + len)?;
            at += 2 + len;
            let slot = match nal_type {
                32 => 0,
                33 => 1,
                34 => 2,
                _ => continue,
            };
            sets[slot].get_or_insert(nal);
        }
    }
    let [vps, sps, pps] = sets;
    let b64 = |nal: &[u8]| base64::engine::general_purpose::STANDARD.encode(nal);
    Some(format!(
        "sprop-vps={};sprop-sps={};sprop-pps={}",
        b64(vps?),
        b64(sps?),
        b64(pps?)
    ))
}

/// Puts the SDP's SPS and PPS before each keyframe that comes without them, numbering the
/// video packets anew so the inserted ones fit in.
#[derive(Debug)]
pub struct ParameterSets {
    sets: Option<(Bytes, Bytes)>,
    seq: u16,
    /// The timestamp whose access unit has had its parameter sets (in band or inserted).
    covered_ts: Option<u32>,
}

impl ParameterSets {
    pub fn new(sets: Option<(Bytes, Bytes)>) -> Self {
        Self {
            sets,
            seq: 0,
            covered_ts: None,
        }
    }

    /// The packets to publish for one received RTP packet `raw` (header and payload).
    pub fn packets(&mut self, raw: &[u8]) -> Vec<Bytes> {
        let Some(header) = crate::rtp::packet::RtpHeader::parse(raw).ok() else {
            return Vec::new();
        };
        let payload = &raw[header.payload_offset..header.payload_end];
        let ts = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
        let mut out = Vec::with_capacity(3);
        match first_nal_type(payload) {
            Some(nal_type::SPS) => self.covered_ts = Some(ts),
            Some(nal_type::IDR) if self.covered_ts != Some(ts) => {
                if let Some((sps, pps)) = self.sets.clone() {
                    for nal in [sps, pps] {
                        self.seq = self.seq.wrapping_add(1);
                        let mut packet = BytesMut::with_capacity(12 + nal.len());
                        packet.put_slice(&raw[..2]);
                        packet[0] = 0x80; // no padding, extension or CSRCs
                        packet[1] &= 0x7f; // not the end of the access unit
                        packet.put_u16(self.seq);
                        packet.put_slice(&raw[4..12]);
                        packet.put_slice(&nal);
                        out.push(packet.freeze());
                    }
                }
                self.covered_ts = Some(ts);
            }
            _ => {}
        }
        self.seq = self.seq.wrapping_add(1);
        out.push(renumbered(raw, self.seq));
        out
    }
}

/// The NAL type a payload starts (a single NAL's, a STAP-A's first, an FU-A start's).
fn first_nal_type(payload: &[u8]) -> Option<u8> {
    let first = *payload.first()? & 0x1f;
    match first {
        nal_type::STAP_A => payload.get(3).map(|b| b & 0x1f),
        nal_type::FU_A => payload
            .get(1)
            .filter(|fu| *fu & 0x80 != 0)
            .map(|fu| fu & 0x1f),
        t => Some(t),
    }
}

/// `raw` with sequence number `seq`.
fn renumbered(raw: &[u8], seq: u16) -> Bytes {
    let mut out = BytesMut::from(raw);
    if out.len() >= 4 {
        out[2..4].copy_from_slice(&seq.to_be_bytes());
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 96 | if marker { 0x80 } else { 0 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&7u32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn parameter_sets_go_before_keyframes_that_lack_them() {
        let sets = (
            Bytes::from_static(&[0x67, 1, 2]),
            Bytes::from_static(&[0x68, 3]),
        );
        let mut p = ParameterSets::new(Some(sets));
        // An IDR in FU-A fragments without SPS/PPS: two packets inserted before its first.
        let out = p.packets(&rtp(500, 9000, false, &[0x7c, 0x85, 0xaa]));
        assert_eq!(out.len(), 3);
        assert_eq!(&out[0][12..], &[0x67, 1, 2]);
        assert_eq!(&out[1][12..], &[0x68, 3]);
        let seqs: Vec<u16> = out
            .iter()
            .map(|b| u16::from_be_bytes([b[2], b[3]]))
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert!(out.iter().all(|b| b[4..8] == 9000u32.to_be_bytes()));
        // The rest of the frame, and a delta frame: numbered on, nothing inserted.
        assert_eq!(
            p.packets(&rtp(501, 9000, true, &[0x7c, 0x45, 0xbb])).len(),
            1
        );
        let delta = p.packets(&rtp(502, 12000, true, &[0x41, 0x9a]));
        assert_eq!(u16::from_be_bytes([delta[0][2], delta[0][3]]), 5);
        // A keyframe that brings its own SPS: nothing inserted.
        assert_eq!(p.packets(&rtp(503, 15000, false, &[0x67, 9])).len(), 1);
        assert_eq!(p.packets(&rtp(504, 15000, true, &[0x65, 9])).len(), 1);
        assert!(p.packets(&[1, 2]).is_empty(), "not RTP");
    }

    #[test]
    fn hvcc_gives_the_sprop_parameters() {
        let mut hvcc = vec![1u8; 22];
        hvcc.push(3); // arrays: VPS, SPS, PPS (the PPS array with two, the first one counts)
        hvcc.extend_from_slice(&[0x80 | 32, 0, 1, 0, 3, 0x40, 0x01, 0x0c]);
        hvcc.extend_from_slice(&[33, 0, 1, 0, 3, 0x42, 0x01, 0x01]);
        hvcc.extend_from_slice(&[34, 0, 2, 0, 3, 0x44, 0x01, 0xc1, 0, 2, 0x44, 0x01]);
        assert_eq!(
            hvcc_sprop(&hvcc).as_deref(),
            Some("sprop-vps=QAEM;sprop-sps=QgEB;sprop-pps=RAHB")
        );
        assert_eq!(hvcc_sprop(&hvcc[..hvcc.len() - 3]), None, "truncated");
        assert_eq!(hvcc_sprop(&hvcc[..31]), None, "no SPS or PPS");
        assert_eq!(hvcc_sprop(&[]), None);
    }

    #[test]
    fn a_cameras_decoding_order_parameter_is_found_in_its_video_section() {
        let sdp = b"v=0\r\nm=audio 0 RTP/AVP 96\r\na=fmtp:96 sprop-max-don-diff=9\r\n\
                    m=video 0 RTP/AVP 96 97\r\na=rtpmap:96 H265/90000\r\n\
                    a=fmtp:96 profile-id=1; Sprop-Max-Don-Diff=2;sprop-vps=QAEM\r\n";
        assert_eq!(
            video_fmtp_param(sdp, 96, "sprop-max-don-diff").as_deref(),
            Some("2"),
            "the video section's, not the audio's"
        );
        assert_eq!(video_fmtp_param(sdp, 97, "sprop-max-don-diff"), None);
        assert_eq!(video_fmtp_param(sdp, 96, "tx-mode"), None);
        assert_eq!(video_fmtp_param(b"", 96, "x"), None);
    }

    #[test]
    fn avcc_and_credentials() {
        let avcc = [
            1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 3,
        ];
        let (sps, pps) = avcc_parameter_sets(&avcc).unwrap();
        assert_eq!((&sps[..], &pps[..]), (&[0x67, 1, 2][..], &[0x68, 3][..]));
        assert_eq!(avcc_parameter_sets(&avcc[..10]), None);
        let (url, creds) = split_credentials("rtsp://admin:p%40ss@127.0.0.1:554/s1").unwrap();
        assert_eq!(url.as_str(), "rtsp://127.0.0.1:554/s1");
        let creds = creds.unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("admin", "p@ss")
        );
        assert_eq!(redacted("rtsp://admin:secret@h/s"), "rtsp://admin:***@h/s");
        assert!(split_credentials("http://h/s").is_err());
    }
}
