//! The sans-IO core of the server: every session, the hub, and the fan-out between them.
//!
//! Feed it datagrams with [`Engine::handle_datagram`], drive time with [`Engine::handle_timeout`]
//! at the deadline [`Engine::poll_timeout`] names, and send what [`Engine::poll_transmit`]
//! returns (the driver takes the same queue without copying, [`Engine::swap_transmits`]). The
//! HTTP layer calls [`Engine::publish`], [`Engine::play`], [`Engine::delete`] and friends.
//! Nothing here touches a socket, and time comes in as `now` (the one clock read is the
//! [`WallClock`] pairing made in [`Engine::new`]), so tests run peers against it on a virtual
//! clock.

mod control;
pub mod delay;
mod fanout;
mod local;
mod media;
mod queue;
mod readers;
mod relay;
mod shared;
mod stats;
mod timers;
mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use thiserror::Error;

use crate::hub::Hub;
use crate::media::WallClock;
use crate::webrtc::dtls::{DtlsError, DtlsIdentity};
use crate::webrtc::sdp::SdpError;
use crate::webrtc::session::{Session, SessionId};
use crate::webrtc::{PeerAddr, Via};
use delay::DelayHistogram;

pub use control::{Answer, StreamInfo, TrackInfo};
pub use fanout::FanoutShare;
pub use local::LocalSourceId;
pub use queue::TransmitQueue;
pub use readers::ReaderTrack;
pub use relay::{RelayNeed, RelayReport};
pub use shared::{EngineGuard, SharedEngine};
pub use stats::{EngineStats, SendCounts};

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

/// The part of [`EngineConfig`] a configuration reload may change while the engine runs. Each
/// applies from its next use on: the session limits to the next offer, the invited bitrate to
/// the next REMB, the forward delay to the next packet, the bitrate cap to publishers that
/// connect after the change (a connected publisher keeps the cap it started with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLimits {
    pub max_sessions: usize,
    pub max_viewers_per_stream: usize,
    pub publisher_bitrate_bps: u64,
    pub publisher_bitrate_cap_bps: u64,
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

/// A datagram to send, and the transport it leaves by.
#[derive(Debug)]
pub struct Transmit {
    pub to: SocketAddr,
    pub via: Via,
    pub data: BytesMut,
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
    /// The server is stopping ([`Engine::close_all`]).
    ServerStopping,
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
    by_addr: HashMap<PeerAddr, SessionId>,
    hub: Hub,
    /// Credentials of recently ended sessions, so their clients' checks get a clear refusal.
    tombstones: HashMap<String, Tombstone>,
    local_sources: HashMap<SessionId, local::LocalSource>,
    transmits: queue::TransmitQueue,
    next_session_id: SessionId,
    /// The wall clock at a monotonic instant, for capture times in NTP.
    wall_clock: WallClock,
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
    /// Our TURN allocation and what the driver's TURN client must do for the sessions.
    relay: relay::Relay,
    /// Sessions whose path went by a relay we no longer hold, and until when they are kept for
    /// their clients' ICE restart ([`timers::RELAY_RECOVERY`]).
    relay_recovery: HashMap<SessionId, Instant>,
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
            wall_clock: WallClock::now(),
            last_remb_at: None,
            stats: EngineStats::default(),
            unsent_packets: 0,
            unsent_datagrams: 0,
            mid_frame: false,
            received_at: None,
            relay: relay::Relay::default(),
            relay_recovery: HashMap::new(),
        })
    }

    /// `at` on the wall clock as NTP 32.32 (seconds since 1900).
    pub fn ntp_at(&self, at: Instant) -> u64 {
        self.wall_clock.ntp_at(at)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Changes the limits of a running engine (see [`EngineLimits`] for when each applies);
    /// sessions already admitted stay, even above a lowered limit.
    pub fn set_limits(&mut self, limits: EngineLimits) {
        self.config.max_sessions = limits.max_sessions;
        self.config.max_viewers_per_stream = limits.max_viewers_per_stream;
        self.config.publisher_bitrate_bps = limits.publisher_bitrate_bps;
        self.config.publisher_bitrate_cap_bps = limits.publisher_bitrate_cap_bps;
        self.config.max_forward_delay = limits.max_forward_delay;
    }

    /// The next datagram to send (a copy; the driver uses [`Engine::swap_transmits`]).
    ///
    /// Media is fanned out when the queue is read: the packets that arrived since the last
    /// read go out viewer by viewer (see [`crate::hub::UnsentPacket`]).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.send_unsent();
        self.transmits.pop().map(|(to, data)| Transmit {
            to: to.addr,
            via: to.via,
            data: BytesMut::from(data),
        })
    }

    /// The queued datagrams, in order, without copying; [`Engine::clear_transmits`] after.
    pub fn pending_transmits(&mut self) -> impl Iterator<Item = (PeerAddr, &[u8])> {
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
    pub fn count_sends(&mut self, sent: SendCounts) {
        self.stats.datagrams_out += sent.datagrams;
        self.stats.send_messages += sent.messages;
        self.stats.send_syscalls += sent.syscalls;
        self.stats.send_waits += sent.waits;
    }

    /// Delays the driver measured from media's arrival to its send.
    pub fn count_forward_delays(&mut self, delays: &DelayHistogram) {
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
mod relay_tests;
#[cfg(test)]
mod tests;
