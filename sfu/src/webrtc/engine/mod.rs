//! The sans-IO core of the server: every session, the hub, and the fan-out between them.
//!
//! Feed it datagrams with [`Engine::handle_datagram`], drive time with [`Engine::handle_timeout`],
//! and send what [`Engine::poll_transmit`] returns. The HTTP layer calls [`Engine::publish`],
//! [`Engine::play`], [`Engine::delete`] and friends. Nothing here reads a clock or touches a
//! socket, so tests run peers against it on a virtual clock.

mod control;
mod fanout;
mod local;
mod media;
mod queue;
mod readers;
mod timers;
mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use thiserror::Error;

use crate::hub::Hub;
use crate::webrtc::dtls::{DtlsError, DtlsIdentity};
use crate::webrtc::sdp::SdpError;
use crate::webrtc::session::{Session, SessionId};

pub use control::{Answer, StreamInfo, TrackInfo};
pub use fanout::FanoutShare;
pub use local::LocalSourceId;
pub use queue::TransmitQueue;
pub use readers::ReaderTrack;

/// How often the driver calls [`Engine::handle_timeout`].
pub fn timers_tick() -> Duration {
    timers::TICK
}

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Our host candidates: the addresses clients send media to.
    pub candidates: Vec<SocketAddr>,
    /// Sessions of both kinds above which new ones are refused (HTTP 503).
    pub max_sessions: usize,
    /// A connected publisher that sends nothing for this long is gone.
    pub publisher_timeout: Duration,
    /// After a publisher leaves with DELETE, its stream waits this long for a new publisher
    /// (a guest reloading the page) before its viewers are ended.
    pub takeover_grace: Duration,
    /// The bitrate we invite publishers to send (REMB), in bits per second.
    pub publisher_bitrate_bps: u64,
    /// Publisher media above this rate (bits per second) is dropped and counted; 0: no cap.
    pub publisher_bitrate_cap_bps: u64,
    /// Viewer sessions one stream may have (HTTP 503 beyond); 0: only `max_sessions` applies.
    pub max_viewers_per_stream: usize,
    /// Publisher media that waited longer than this in the server (from the kernel's receive
    /// to its fan-out: the server has fallen behind) is not sent to viewers; its track resumes
    /// at the next keyframe that is on time ([`crate::hub::Stream::admit_live`]). Zero: never.
    pub max_forward_delay: Duration,
}

/// [`EngineConfig::max_forward_delay`] unless configured: well past the few milliseconds a
/// server that keeps up adds, short enough that viewers stay live.
pub const DEFAULT_MAX_FORWARD_DELAY: Duration = Duration::from_millis(250);

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            candidates: Vec::new(),
            max_sessions: 1000,
            publisher_timeout: Duration::from_secs(3),
            takeover_grace: Duration::from_secs(2),
            publisher_bitrate_bps: 4_000_000,
            publisher_bitrate_cap_bps: 0,
            max_viewers_per_stream: 0,
            max_forward_delay: DEFAULT_MAX_FORWARD_DELAY,
        }
    }
}

/// Why the engine refused a request. Each maps to one HTTP status in the control plane.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("{0}")]
    BadOffer(#[from] SdpError),
    #[error("the offer has no media this server can use: {0}")]
    NoUsableMedia(String),
    #[error("stream '{0}' is not being published")]
    StreamNotFound(String),
    #[error("the viewer cannot receive stream '{stream}': {reason}")]
    IncompatibleCodec { stream: String, reason: String },
    #[error("session limit of {0} reached")]
    TooManySessions(usize),
    #[error("stream '{stream}' has its limit of {limit} viewers")]
    TooManyViewers { stream: String, limit: usize },
    #[error("no such session")]
    SessionNotFound,
    #[error("ICE credentials in the fragment do not match the session")]
    IceCredentialMismatch,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DtlsError> for EngineError {
    fn from(e: DtlsError) -> Self {
        EngineError::Internal(e.to_string())
    }
}

/// A datagram to send.
#[derive(Debug)]
pub struct Transmit {
    pub to: SocketAddr,
    pub data: BytesMut,
}

/// Engine-wide counters (the per-stream and per-session ones live with them).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct EngineStats {
    pub datagrams_in: u64,
    pub datagrams_unknown_source: u64,
    pub stun_rejected: u64,
    pub dtls_errors: u64,
    pub srtp_errors: u64,
    pub rtcp_parse_errors: u64,
    pub sessions_opened: u64,
    pub sessions_closed: u64,
    pub keyframe_requests_sent: u64,
    pub send_dropped: u64,
    /// Datagrams, messages (a GSO run is one) and `sendmmsg` calls the media socket sent:
    /// datagrams per message says how well fan-out batched.
    pub datagrams_out: u64,
    pub send_messages: u64,
    pub send_syscalls: u64,
    /// Times the media socket's buffer was full and the driver waited for room.
    pub send_waits: u64,
    /// How long forwarded media took from its arrival (the kernel's receive time of the
    /// publisher's packet, when the driver has it) until each viewer's copy was handed to the
    /// kernel.
    pub forward_delay: crate::webrtc::delay::DelayHistogram,
    /// Fan-outs split into shares for several media threads, and the shares they made.
    pub fanout_splits: u64,
    pub fanout_shares: u64,
    /// Publisher packets not sent to viewers because they waited longer than
    /// [`EngineConfig::max_forward_delay`], and the catch-ups that shed them.
    pub shed_packets: u64,
    pub catch_ups: u64,
    /// Publisher datagrams dropped for exceeding the bitrate cap.
    pub bitrate_cap_dropped: u64,
    /// Packets publishers were asked (NACK) to send again.
    pub upstream_nacked: u64,
}

/// Why a session ended (for logs and events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Deleted,
    ConsentExpired,
    PublisherTimeout,
    PeerClosed,
    DtlsFailed,
    TakenOver,
    StreamEnded,
}

/// Sessions by id. The ids are ours (a counter), so the fast non-keyed hash is safe here; it is
/// looked up once per viewer per forwarded packet.
type SessionMap = HashMap<SessionId, Session, rustc_hash::FxBuildHasher>;

/// What remains of an ended session: enough to refuse its client's checks authentically.
struct Tombstone {
    local_pwd: String,
    remote_ufrag: String,
    until: Instant,
}

/// How long an ended session's credentials are remembered.
const TOMBSTONE_LIFETIME: Duration = Duration::from_secs(60);

pub struct Engine {
    config: EngineConfig,
    provider: Arc<dyn RTCCryptoProvider>,
    identity: DtlsIdentity,
    sessions: SessionMap,
    by_ufrag: HashMap<String, SessionId>,
    by_addr: HashMap<SocketAddr, SessionId>,
    hub: Hub,
    /// Credentials of recently ended sessions, so their clients' checks get a clear refusal.
    tombstones: HashMap<String, Tombstone>,
    local_sources: HashMap<SessionId, local::LocalSource>,
    transmits: queue::TransmitQueue,
    next_session_id: SessionId,
    /// The wall clock at a monotonic instant, for capture times in NTP.
    wall_anchor: (Instant, SystemTime),
    last_remb_at: Option<Instant>,
    stats: EngineStats,
    /// Packets the streams accepted and [`Engine::send_unsent`] has not yet sent, and the
    /// datagrams they will make (one per viewer at the time).
    unsent_packets: usize,
    unsent_datagrams: usize,
    /// The last video packet accepted did not end its frame (no marker bit).
    mid_frame: bool,
    /// The kernel's receive time of the datagram being handled, when the driver knows it.
    received_at: Option<Instant>,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        let provider = rtc_dtls::crypto_provider::default_provider()
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let identity = DtlsIdentity::generate(&provider)?;
        Ok(Self {
            config,
            provider,
            identity,
            sessions: SessionMap::default(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            hub: Hub::default(),
            tombstones: HashMap::new(),
            local_sources: HashMap::new(),
            transmits: queue::TransmitQueue::default(),
            next_session_id: 1,
            wall_anchor: (Instant::now(), SystemTime::now()),
            last_remb_at: None,
            stats: EngineStats::default(),
            unsent_packets: 0,
            unsent_datagrams: 0,
            mid_frame: false,
            received_at: None,
        })
    }

    /// `at` on the wall clock as NTP 32.32 (seconds since 1900).
    pub fn ntp_at(&self, at: Instant) -> u64 {
        const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
        let (instant, wall) = self.wall_anchor;
        let wall = match at.checked_duration_since(instant) {
            Some(after) => wall + after,
            None => wall - instant.duration_since(at),
        };
        let since = wall
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        ((since.as_secs() + NTP_UNIX_OFFSET) << 32)
            + ((u64::from(since.subsec_nanos()) << 32) / 1_000_000_000)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The next datagram to send (a copy; the driver uses [`Engine::swap_transmits`]).
    ///
    /// Media is fanned out when the queue is read: the packets that arrived since the last
    /// read go out viewer by viewer (see [`crate::hub::UnsentPacket`]).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.send_unsent();
        self.transmits.pop().map(|(to, data)| Transmit {
            to,
            data: BytesMut::from(data),
        })
    }

    /// The queued datagrams, in order, without copying; [`Engine::clear_transmits`] after.
    pub fn pending_transmits(&mut self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.send_unsent();
        self.transmits.pending()
    }

    pub fn clear_transmits(&mut self) {
        self.send_unsent();
        self.transmits.clear();
    }

    /// Datagrams queued and not yet handed out, counting the media still to be fanned out.
    pub fn pending_transmit_count(&self) -> usize {
        self.transmits.len() + self.unsent_datagrams
    }

    /// Exchanges the engine's queue of datagrams with `spare` (give it an empty one): the
    /// driver sends the queued datagrams without holding the engine, then clears the queue and
    /// swaps it back in next time, so neither buffer is ever reallocated.
    pub fn swap_transmits(&mut self, spare: &mut TransmitQueue) {
        self.send_unsent();
        std::mem::swap(&mut self.transmits, spare);
    }

    /// Whether media waits to be fanned out and the last video packet accepted did not end
    /// its frame: the driver then keeps reading, so the frame's packets to each viewer leave
    /// in one flush (one GSO message) rather than two.
    pub fn mid_frame(&self) -> bool {
        self.unsent_packets > 0 && self.mid_frame
    }

    /// A stream accepted a packet; [`Engine::send_unsent`] sends it.
    fn note_unsent(&mut self, accepted: media::Accepted) {
        self.unsent_packets += 1;
        self.unsent_datagrams += accepted.viewers;
        if let Some(marker) = accepted.video_marker {
            self.mid_frame = !marker;
        }
    }

    /// The driver could not send datagrams (socket buffer full): they are dropped and counted.
    pub fn count_send_drops(&mut self, count: u64) {
        self.stats.send_dropped += count;
    }

    /// What the driver handed to the kernel since it last reported.
    pub fn count_sends(&mut self, sent: super::udp_batch::SendCounts) {
        self.stats.datagrams_out += sent.datagrams;
        self.stats.send_messages += sent.messages;
        self.stats.send_syscalls += sent.syscalls;
        self.stats.send_waits += sent.waits;
    }

    /// Delays the driver measured from media's arrival to its send.
    pub fn count_forward_delays(&mut self, delays: &crate::webrtc::delay::DelayHistogram) {
        self.stats.forward_delay.merge(delays);
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Entries of the engine's lookup tables, by table: what a flood must not grow.
    pub fn table_sizes(&self) -> [(&'static str, usize); 6] {
        [
            ("sessions", self.sessions.len()),
            ("by_ufrag", self.by_ufrag.len()),
            ("by_addr", self.by_addr.len()),
            ("tombstones", self.tombstones.len()),
            ("streams", self.hub.len()),
            ("local_sources", self.local_sources.len()),
        ]
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The SDP fingerprint of our DTLS certificate.
    pub fn fingerprint(&self) -> &str {
        &self.identity.fingerprint
    }
}

#[cfg(test)]
mod tests;
