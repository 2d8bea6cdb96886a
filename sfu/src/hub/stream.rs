//! One named stream: its tracks, who publishes it and who watches it.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::hub::reader::{Offer, ReaderPacket, ReaderSlot};
use crate::media::{CodecSpec, SourceKind, TrackKind, VideoCodec};
use crate::rtp::history::{History, StoredPacket};
use crate::rtp::keyframe::is_keyframe_payload;

/// Packets kept per track for NACKs: ~4 s of a 2.5 Mbit/s video track.
const HISTORY_PACKETS: usize = 1024;
/// Upper bound of the keyframe cache; a GOP longer than this is not cached (joiners then wait
/// for the next keyframe, which they request).
const MAX_GOP_PACKETS: usize = 2048;
/// However many viewers ask, the publisher is asked for a keyframe at most this often.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// Counters of one track, for /api/streams and /metrics.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TrackStats {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub keyframes: u64,
    pub nacks: u64,
    pub retransmits: u64,
    /// Packets not sent to the viewers because they waited too long in the server (overload);
    /// the recorder and LL-HLS still got them.
    pub shed: u64,
    /// Payload bitrate over the last full second.
    pub bitrate_bps: u64,
    #[serde(skip)]
    window_start: Option<Instant>,
    #[serde(skip)]
    window_bytes: u64,
}

impl TrackStats {
    fn count_in(&mut self, now: Instant, bytes: usize) {
        self.packets_in += 1;
        self.bytes_in += bytes as u64;
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= Duration::from_secs(1) {
            self.bitrate_bps = self.window_bytes * 8 * 1000 / elapsed.as_millis().max(1) as u64;
            self.window_start = Some(now);
            self.window_bytes = 0;
        }
        self.window_bytes += bytes as u64;
    }
}

/// One published track.
#[derive(Debug)]
pub struct Track {
    pub kind: TrackKind,
    pub codec: CodecSpec,
    pub video_codec: Option<VideoCodec>,
    pub stats: TrackStats,
    /// The publisher's latest Sender Report for this track: (NTP time, RTP time, arrival).
    /// Viewers' Sender Reports are derived from it so browsers can sync audio and video.
    pub sender_report: Option<(u64, u32, Instant)>,
    history: History,
    gop: Vec<StoredPacket>,
    /// When each packet of `gop` arrived, so readers joining late still learn the capture time.
    gop_arrivals: Vec<Instant>,
    gop_timestamp: Option<u32>,
    /// Live packets are being shed until the track is on time again ([`Stream::admit_live`]).
    catching_up: bool,
}

impl Track {
    pub fn new(kind: TrackKind, codec: CodecSpec) -> Self {
        let video_codec = match kind {
            TrackKind::Video => VideoCodec::from_sdp_name(&codec.name),
            TrackKind::Audio => None,
        };
        Self {
            kind,
            codec,
            video_codec,
            stats: TrackStats::default(),
            sender_report: None,
            history: History::new(HISTORY_PACKETS),
            gop: Vec::new(),
            gop_arrivals: Vec::new(),
            gop_timestamp: None,
            catching_up: false,
        }
    }

    /// The packets since the last keyframe, oldest first (empty for audio or before a keyframe).
    pub fn keyframe_cache(&self) -> &[StoredPacket] {
        &self.gop
    }

    /// When each packet of [`Track::keyframe_cache`] arrived.
    pub fn keyframe_cache_arrivals(&self) -> &[Instant] {
        &self.gop_arrivals
    }

    /// How much media time the keyframe cache spans, in clock ticks.
    pub fn keyframe_cache_span(&self) -> u32 {
        match (self.gop.first(), self.gop.last()) {
            (Some(first), Some(last)) => last.timestamp.wrapping_sub(first.timestamp),
            _ => 0,
        }
    }

    /// The keyframe cache together with the counters its replay adds to.
    pub fn cache_and_stats(&mut self) -> (&[StoredPacket], &mut TrackStats) {
        (&self.gop, &mut self.stats)
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    fn reset_source(&mut self) {
        self.sender_report = None;
        self.history.clear();
        self.gop.clear();
        self.gop_arrivals.clear();
        self.gop_timestamp = None;
        self.catching_up = false;
    }
}

/// What the hub learned from one ingested packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The packet begins a new keyframe: viewers waiting to sync may start here.
    pub keyframe_start: bool,
}

/// Whether a live packet goes on to the viewers ([`Stream::admit_live`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it. With `resplice` its track has just caught up: viewers continue their numbering
    /// from this packet, so what was shed leaves no gap for them to ask for.
    Send { resplice: bool },
    /// Not sent: it waited too long, or its track is still catching up. `began` for the packet
    /// that started the catch-up.
    Shed { began: bool },
}

/// A packet the stream accepted from its source and has not yet sent to its viewers.
///
/// The engine lets the packets that arrive together (a frame's, in one read of the socket)
/// gather here and then serves the batch viewer by viewer: each viewer's session and SRTP key
/// come into the cache once per batch instead of once per packet. At a thousand viewers those
/// states no longer fit the cache, and fetching them again for every packet was most of the
/// engine's own cost.
#[derive(Debug, Clone)]
pub struct UnsentPacket {
    pub track_index: usize,
    pub packet: StoredPacket,
    pub keyframe_start: bool,
    /// The capture time (NTP 32.32) when the source knows it.
    pub capture_ntp: Option<u64>,
    pub arrival: Instant,
    /// The first packet after a catch-up: each viewer splices here.
    pub resplice: bool,
}

/// A named stream and its audience.
#[derive(Debug)]
pub struct Stream {
    name: String,
    pub source: SourceKind,
    /// Bumped each time a new source takes the stream over; viewers splice at epoch changes.
    epoch: u32,
    publisher: Option<u64>,
    pub tracks: Vec<Track>,
    pub viewers: Vec<u64>,
    /// Readers outside the engine (LL-HLS, recorder, switcher), each with its own queue.
    pub readers: Vec<ReaderSlot>,
    /// Accepted packets waiting for the engine's next fan-out, in arrival order.
    pub unsent: Vec<UnsentPacket>,
    pub created_at: Instant,
    /// Set when the publisher left; the stream ends unless a new one arrives in time.
    pub orphaned_at: Option<Instant>,
    pub last_packet_at: Option<Instant>,
    last_keyframe_request: Option<Instant>,
    keyframe_request_pending: bool,
    pub keyframe_requests: u64,
}

impl Stream {
    pub fn new(
        name: String,
        source: SourceKind,
        publisher: u64,
        tracks: Vec<Track>,
        now: Instant,
    ) -> Self {
        Self {
            name,
            source,
            epoch: 1,
            publisher: Some(publisher),
            tracks,
            viewers: Vec::new(),
            readers: Vec::new(),
            unsent: Vec::new(),
            created_at: now,
            orphaned_at: None,
            last_packet_at: None,
            last_keyframe_request: None,
            keyframe_request_pending: false,
            keyframe_requests: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    pub fn publisher(&self) -> Option<u64> {
        self.publisher
    }

    /// Whether `tracks` can replace this stream's tracks without viewers renegotiating: the same
    /// kinds in the same order, each with a codec of the same name and clock rate.
    pub fn accepts_takeover(&self, tracks: &[Track]) -> bool {
        self.tracks.len() == tracks.len()
            && self.tracks.iter().zip(tracks).all(|(old, new)| {
                old.kind == new.kind
                    && old.codec.name.eq_ignore_ascii_case(&new.codec.name)
                    && old.codec.clock_rate == new.codec.clock_rate
            })
    }

    /// A new publisher takes the stream over; viewers stay and splice onto it.
    pub fn take_over(&mut self, publisher: u64, tracks: Vec<Track>) {
        self.epoch = self.epoch.wrapping_add(1);
        self.publisher = Some(publisher);
        self.orphaned_at = None;
        for (old, new) in self.tracks.iter_mut().zip(tracks) {
            old.codec = new.codec;
            old.video_codec = new.video_codec;
            old.reset_source();
        }
        self.last_keyframe_request = None;
        self.keyframe_request_pending = true;
    }

    /// The publisher left (DELETE, consent lost, media timeout).
    pub fn orphan(&mut self, now: Instant) {
        self.publisher = None;
        self.orphaned_at = Some(now);
    }

    /// Records one packet of track `index` from the current publisher.
    pub fn ingest(
        &mut self,
        now: Instant,
        index: usize,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        payload: Bytes,
    ) -> IngestOutcome {
        self.last_packet_at = Some(now);
        let epoch = self.epoch;
        let Some(track) = self.tracks.get_mut(index) else {
            return IngestOutcome {
                keyframe_start: false,
            };
        };
        track.stats.count_in(now, payload.len());
        let stored = StoredPacket {
            epoch,
            sequence,
            timestamp,
            marker,
            payload,
        };
        let mut keyframe_start = false;
        if let Some(codec) = track.video_codec {
            if is_keyframe_payload(codec, &stored.payload) && track.gop_timestamp != Some(timestamp)
            {
                keyframe_start = true;
                track.stats.keyframes += 1;
                track.gop.clear();
                track.gop_arrivals.clear();
                track.gop_timestamp = Some(timestamp);
            }
            if track.gop_timestamp.is_some() {
                if track.gop.len() < MAX_GOP_PACKETS {
                    track.gop.push(stored.clone());
                    track.gop_arrivals.push(now);
                } else {
                    track.gop.clear();
                    track.gop_arrivals.clear();
                    track.gop_timestamp = None;
                }
            }
        }
        track.history.insert(stored);
        IngestOutcome { keyframe_start }
    }

    /// Decides whether a live packet of track `index` (already ingested) that waited `waited`
    /// in the server is fanned out. Zero `limit`: always.
    ///
    /// A server that falls behind its publishers (more viewers than its cores can serve) would
    /// otherwise fall further behind with every frame, seconds within a minute, until its
    /// receive buffer overflows and drops at random. Instead, the first packet later than
    /// `limit` starts a catch-up: nothing of the track is sent (the backlog drains at the cost
    /// of reading it) until a packet is on time again (within half the limit, so one keyframe
    /// burst does not start the next catch-up) and, for video, starts a keyframe, which
    /// viewers can decode without what was shed.
    pub fn admit_live(
        &mut self,
        index: usize,
        keyframe_start: bool,
        waited: Duration,
        limit: Duration,
    ) -> Admission {
        let Some(track) = self.tracks.get_mut(index) else {
            return Admission::Send { resplice: false };
        };
        if limit.is_zero() {
            return Admission::Send { resplice: false };
        }
        if track.catching_up {
            let can_start = track.video_codec.is_none() || keyframe_start;
            if can_start && waited <= limit / 2 {
                track.catching_up = false;
                return Admission::Send { resplice: true };
            }
            track.stats.shed += 1;
            return Admission::Shed { began: false };
        }
        if waited > limit {
            track.catching_up = true;
            track.stats.shed += 1;
            return Admission::Shed { began: true };
        }
        Admission::Send { resplice: false }
    }

    /// Offers a packet to every reader; readers that went away are removed.
    pub fn offer_to_readers(&mut self, packet: &ReaderPacket) {
        let is_video = self
            .tracks
            .get(packet.track)
            .is_some_and(|t| t.kind == TrackKind::Video);
        self.readers
            .retain_mut(|r| r.offer(packet, is_video) != Offer::Closed);
    }

    /// Asks for a keyframe from the publisher; returns true when one should be sent now, false
    /// when rate limited (it is then sent by [`Stream::poll_keyframe_request`] later).
    pub fn request_keyframe(&mut self, now: Instant) -> bool {
        self.keyframe_request_pending = true;
        self.poll_keyframe_request(now)
    }

    /// Records a keyframe request that goes out now whatever the rate limit (an operator's cut:
    /// rare, and waiting up to the limit would show as a slow cut).
    pub fn force_keyframe_request(&mut self, now: Instant) -> bool {
        if self.publisher.is_none() {
            return false;
        }
        self.keyframe_request_pending = false;
        self.last_keyframe_request = Some(now);
        self.keyframe_requests += 1;
        true
    }

    /// True when a pending keyframe request may go out now.
    pub fn poll_keyframe_request(&mut self, now: Instant) -> bool {
        if !self.keyframe_request_pending || self.publisher.is_none() {
            return false;
        }
        let allowed = self
            .last_keyframe_request
            .is_none_or(|at| now.saturating_duration_since(at) >= KEYFRAME_REQUEST_INTERVAL);
        if allowed {
            self.keyframe_request_pending = false;
            self.last_keyframe_request = Some(now);
            self.keyframe_requests += 1;
        }
        allowed
    }

    /// When [`Stream::poll_keyframe_request`] will next say yes, if a request is pending.
    pub fn keyframe_request_due(&self) -> Option<Instant> {
        if !self.keyframe_request_pending || self.publisher.is_none() {
            return None;
        }
        Some(match self.last_keyframe_request {
            Some(at) => at + KEYFRAME_REQUEST_INTERVAL,
            // Never asked before: due at once (any instant not after now says so).
            None => self.created_at,
        })
    }

    pub fn has_keyframe_cached(&self) -> bool {
        self.tracks
            .iter()
            .filter(|t| t.kind == TrackKind::Video)
            .all(|t| !t.gop.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h264() -> CodecSpec {
        CodecSpec {
            name: "H264".into(),
            clock_rate: 90_000,
            channels: None,
            fmtp: "packetization-mode=1".into(),
        }
    }

    fn opus() -> CodecSpec {
        CodecSpec {
            name: "opus".into(),
            clock_rate: 48_000,
            channels: Some(2),
            fmtp: String::new(),
        }
    }

    fn stream(now: Instant) -> Stream {
        Stream::new(
            "s".into(),
            SourceKind::Whip,
            1,
            vec![Track::new(TrackKind::Video, h264())],
            now,
        )
    }

    #[test]
    fn late_packets_are_shed_until_a_keyframe_or_audio_packet_is_on_time_again() {
        let now = Instant::now();
        let mut s = stream(now);
        s.tracks.push(Track::new(TrackKind::Audio, opus()));
        let limit = Duration::from_millis(200);
        let ms = Duration::from_millis;
        let send = |resplice| Admission::Send { resplice };
        let shed = |began| Admission::Shed { began };
        // Video: late starts a catch-up; on-time deltas, and a keyframe within the limit but
        // not within half of it, are still shed; an on-time keyframe resumes with a splice.
        assert_eq!(s.admit_live(0, false, ms(150), limit), send(false));
        assert_eq!(s.admit_live(0, false, ms(250), limit), shed(true));
        assert_eq!(s.admit_live(0, false, ms(1), limit), shed(false));
        assert_eq!(s.admit_live(0, true, ms(150), limit), shed(false));
        assert_eq!(s.admit_live(0, true, ms(100), limit), send(true));
        assert_eq!(s.admit_live(0, false, ms(1), limit), send(false));
        assert_eq!(s.tracks[0].stats.shed, 3);
        // Audio resumes at the first packet on time; the tracks catch up independently.
        assert_eq!(s.admit_live(1, false, ms(300), limit), shed(true));
        assert_eq!(s.admit_live(1, false, ms(120), limit), shed(false));
        assert_eq!(s.admit_live(1, false, ms(90), limit), send(true));
        assert_eq!(s.tracks[1].stats.shed, 2);
        // No limit: nothing is shed, however late.
        assert_eq!(
            s.admit_live(0, false, Duration::from_secs(9), Duration::ZERO),
            send(false)
        );
    }

    #[test]
    fn caches_from_the_last_keyframe() {
        let now = Instant::now();
        let mut s = stream(now);
        let delta = Bytes::from_static(&[0x41, 1]);
        let sps = Bytes::from_static(&[0x67, 1]);
        let idr = Bytes::from_static(&[0x7c, 0x85, 1]);
        assert!(!s.ingest(now, 0, 1, 0, true, delta.clone()).keyframe_start);
        assert!(s.tracks[0].keyframe_cache().is_empty());
        assert!(s.ingest(now, 0, 2, 3000, false, sps).keyframe_start);
        assert!(
            !s.ingest(now, 0, 3, 3000, true, idr).keyframe_start,
            "same AU"
        );
        s.ingest(now, 0, 4, 6000, true, delta);
        let seqs: Vec<u16> = s.tracks[0]
            .keyframe_cache()
            .iter()
            .map(|p| p.sequence)
            .collect();
        assert_eq!(seqs, [2, 3, 4]);
        assert!(s.tracks[0].history().get(1, 1).is_some());
    }

    #[test]
    fn keyframe_requests_are_rate_limited() {
        let t0 = Instant::now();
        let mut s = stream(t0);
        assert!(s.request_keyframe(t0));
        assert!(!s.request_keyframe(t0 + Duration::from_millis(100)));
        assert!(!s.request_keyframe(t0 + Duration::from_millis(200)));
        assert!(!s.poll_keyframe_request(t0 + Duration::from_millis(400)));
        assert!(s.poll_keyframe_request(t0 + Duration::from_millis(500)));
        assert!(
            !s.poll_keyframe_request(t0 + Duration::from_millis(2000)),
            "none pending"
        );
        assert_eq!(s.keyframe_requests, 2);
    }

    #[test]
    fn takeover_bumps_epoch_and_clears_caches() {
        let now = Instant::now();
        let mut s = stream(now);
        s.ingest(now, 0, 2, 3000, false, Bytes::from_static(&[0x67, 1]));
        let new_tracks = vec![Track::new(TrackKind::Video, h264())];
        assert!(s.accepts_takeover(&new_tracks));
        s.take_over(2, new_tracks);
        assert_eq!((s.epoch(), s.publisher()), (2, Some(2)));
        assert!(s.tracks[0].keyframe_cache().is_empty());
        let audio = vec![Track::new(TrackKind::Audio, opus())];
        assert!(!s.accepts_takeover(&audio));
    }
}
