//! r58's own TURN client (RFC 8656), sans-IO: one allocation on one TURN server, so r58 can be
//! reached through a relay from behind a NAT that lets nothing in.
//!
//! [`TurnClient`] is a pure state machine. Time comes in as `now`, bytes from the server come
//! in through [`TurnClient::handle_input`], and what to send comes out of
//! [`TurnClient::poll_transmit`] (always to the server); [`TurnClient::poll_event`] says what
//! happened and [`TurnClient::poll_timeout`] when the client next needs
//! [`TurnClient::handle_timeout`]. The driver owns the socket (UDP, or a TCP/TLS connection
//! read through [`StreamFramer`]) and the clock.
//!
//! What it does on its own:
//! - Allocate, answering the server's 401 with the long-term credentials for its realm and
//!   nonce; a 438 (stale nonce) or a 401 with a new nonce re-signs and resends the request.
//! - Refresh the allocation at half its lifetime; permissions every 4 minutes (they live 5);
//!   channel bindings every 8 minutes (they live 10).
//! - Re-allocate at once when the allocation is lost: a Refresh answered 437 (the server
//!   restarted) or failing, or the lifetime running out. Permissions and channels the caller
//!   asked for are requested again on the new allocation; the caller learns the new relayed
//!   address from [`Event::Allocated`].
//! - A failed Allocate is retried after 1, 2, 4 .. 60 s ([`Event::AllocationFailed`] says when).
//! - Requests are retransmitted over UDP on RFC 8489's schedule and sent once over streams;
//!   either way a request without an answer fails with [`FailureKind::Timeout`].
//!
//! What the driver does: open the socket or connection; over TCP/TLS, reconnect after the
//! connection drops and call [`TurnClient::handle_connection_lost`] then
//! [`TurnClient::allocate`]; after an Allocate refused with 437 (the server still holds an
//! allocation for this 5-tuple, e.g. of a previous run) a new local port gets a new 5-tuple.
//!
//! The data path ([`TurnClient::send_to`], and [`Inbound::Data`] out of `handle_input`) neither
//! allocates nor copies beyond writing the frame into the caller's buffer: see [`wire`].

#![forbid(unsafe_code)]

mod framing;
mod machine;
mod peers;
mod proto;
mod transaction;
pub mod wire;

#[cfg(test)]
mod tests;

#[cfg(any(test, feature = "test-support"))]
pub mod fuzzing;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;

pub use framing::{DEFAULT_LIMIT, FramingError, MAX_FRAME, StreamFramer};
pub use machine::TurnClient;
pub use peers::{CHANNEL_COOLDOWN, CHANNEL_REFRESH, PERMISSION_REFRESH};
pub use transaction::{Method, Retransmission};
pub use wire::{CHANNEL_MAX, CHANNEL_MIN, WireError};

use super::Secret;

/// The allocation lifetime asked for unless configured: RFC 8656's default (10 minutes).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// Longest wait before retrying a failed Allocate.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How the client reaches the TURN server. The relayed side is UDP in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Whether messages travel over a byte stream (framed, padded, not retransmitted).
    pub fn is_stream(self) -> bool {
        self != Transport::Udp
    }

    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One allocation's configuration.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub server: SocketAddr,
    pub transport: Transport,
    /// Long-term credentials; TURN REST ones (coturn's shared secret, Cloudflare) are the same
    /// thing with an expiry in them.
    pub username: String,
    pub password: Secret,
    /// The lifetime asked for in Allocate and Refresh; the server may grant less.
    pub lifetime: Duration,
    pub retransmission: Retransmission,
}

impl ClientConfig {
    pub fn new(
        server: SocketAddr,
        transport: Transport,
        username: impl Into<String>,
        password: Secret,
    ) -> Self {
        Self {
            server,
            transport,
            username: username.into(),
            password,
            lifetime: DEFAULT_LIFETIME,
            retransmission: Retransmission::default(),
        }
    }
}

/// A transaction id, printed in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxId(pub [u8; 12]);

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a request, or the allocation, failed: which server, which request, why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("TURN server {server} ({transport}): {method}{}: {kind}",
    .transaction.map(|t| format!(" (transaction {t})")).unwrap_or_default())]
pub struct Failure {
    pub server: SocketAddr,
    pub transport: Transport,
    pub method: Method,
    pub transaction: Option<TxId>,
    pub kind: FailureKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FailureKind {
    #[error("no answer after {:.1} s", .0.as_secs_f32())]
    Timeout(Duration),
    #[error("credentials refused (401 {0})")]
    Unauthorized(String),
    #[error(
        "allocation mismatch (437): the server has no allocation for this client's address, \
         or (answering Allocate) already has one"
    )]
    Mismatch,
    #[error("refused with {code} {reason}")]
    Refused { code: u16, reason: String },
    #[error("the server sent a new nonce {0} times in a row")]
    NonceLoop(u8),
    #[error("unusable answer: {0}")]
    Malformed(String),
    #[error("the connection to the server was lost")]
    ConnectionLost,
    #[error("the allocation expired before a Refresh succeeded")]
    Expired,
}

impl FailureKind {
    /// A short fixed name, for metrics labels.
    pub fn label(&self) -> &'static str {
        match self {
            FailureKind::Timeout(_) => "timeout",
            FailureKind::Unauthorized(_) => "unauthorized",
            FailureKind::Mismatch => "mismatch",
            FailureKind::Refused { .. } => "refused",
            FailureKind::NonceLoop(_) => "stale_nonce",
            FailureKind::Malformed(_) => "malformed",
            FailureKind::ConnectionLost => "connection_lost",
            FailureKind::Expired => "expired",
        }
    }
}

/// What happened, for the driver (relay candidates, logs, metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An allocation exists: peers reach us at `relayed`; `mapped` is our address as the
    /// server sees it (server-reflexive), when the server said.
    Allocated {
        relayed: SocketAddr,
        mapped: Option<SocketAddr>,
        lifetime: Duration,
    },
    /// Allocate failed; the client tries again at `retry_at` (`None`: after the driver calls
    /// [`TurnClient::allocate`], e.g. once a new connection is up).
    AllocationFailed {
        failure: Failure,
        retry_at: Option<Instant>,
    },
    /// The allocation at `relayed` is gone; unless the connection was lost, a new Allocate is
    /// already under way.
    AllocationLost {
        relayed: SocketAddr,
        failure: Failure,
    },
    /// A Refresh succeeded; the server granted `lifetime`.
    Refreshed {
        lifetime: Duration,
    },
    PermissionCreated {
        peer: IpAddr,
    },
    /// The permission is dropped (the caller may ask again).
    PermissionFailed {
        peer: IpAddr,
        failure: Failure,
    },
    ChannelBound {
        peer: SocketAddr,
        channel: u16,
    },
    /// The channel is dropped; data to `peer` goes as Send indications while a permission
    /// for its address exists.
    ChannelFailed {
        peer: SocketAddr,
        channel: u16,
        failure: Failure,
    },
    /// [`TurnClient::close`] finished (or the server could not be told).
    Closed,
}

/// What a datagram or frame from the server was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// A response or indication the client used (or, for a late retransmission's answer,
    /// dropped); nothing for the caller.
    Handled,
    /// Relayed data from `peer`, borrowed from the input; `channel` when it came as ChannelData.
    Data {
        peer: SocketAddr,
        payload: &'a [u8],
        channel: Option<u16>,
    },
}

/// Bytes from the server the client cannot use. The client's state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    #[error("from TURN server {server}: {source}")]
    Wire {
        server: SocketAddr,
        #[source]
        source: WireError,
    },
    #[error("from TURN server {server}: ChannelData on channel {channel:#06x}, which is not ours")]
    UnknownChannel { server: SocketAddr, channel: u16 },
    #[error("from TURN server {server}: neither STUN nor ChannelData (first byte {first:#04x})")]
    NotTurn { server: SocketAddr, first: u8 },
    #[error("from TURN server {server}: a STUN request (type {kind:#06x}); TURN clients take none")]
    UnexpectedRequest { server: SocketAddr, kind: u16 },
    #[error("from TURN server {server}: answer to transaction {transaction}: {detail}")]
    BadAnswer {
        server: SocketAddr,
        transaction: TxId,
        detail: String,
    },
}

/// Why [`TurnClient::send_to`] wrote nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    #[error("TURN server {server}: no allocation to send through")]
    NotAllocated { server: SocketAddr },
    #[error("TURN server {server}: no permission for {peer} (the relay would drop it)")]
    NoPermission {
        server: SocketAddr,
        peer: SocketAddr,
    },
    #[error("TURN server {server}: {source}")]
    Encode {
        server: SocketAddr,
        #[source]
        source: WireError,
    },
}

/// Misuse or exhaustion the caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientError {
    #[error("TURN server {server}: all 4096 channel numbers are in use or cooling down")]
    ChannelsExhausted { server: SocketAddr },
    #[error("TURN server {server}: the client is closed")]
    Closed { server: SocketAddr },
    #[error("no crypto provider: {0}")]
    Crypto(String),
}

/// Failures counted by [`FailureKind::label`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FailureCounts {
    pub timeout: u64,
    pub unauthorized: u64,
    pub mismatch: u64,
    pub refused: u64,
    pub stale_nonce: u64,
    pub malformed: u64,
    pub connection_lost: u64,
    pub expired: u64,
}

impl FailureCounts {
    pub(crate) fn count(&mut self, kind: &FailureKind) {
        let n = match kind {
            FailureKind::Timeout(_) => &mut self.timeout,
            FailureKind::Unauthorized(_) => &mut self.unauthorized,
            FailureKind::Mismatch => &mut self.mismatch,
            FailureKind::Refused { .. } => &mut self.refused,
            FailureKind::NonceLoop(_) => &mut self.stale_nonce,
            FailureKind::Malformed(_) => &mut self.malformed,
            FailureKind::ConnectionLost => &mut self.connection_lost,
            FailureKind::Expired => &mut self.expired,
        };
        *n += 1;
    }
}

/// Packets and payload bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    pub packets: u64,
    pub bytes: u64,
}

impl Traffic {
    fn add(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
    }
}

/// Counters since the client was made (plus two gauges), for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub allocations: u64,
    pub allocation_failures: FailureCounts,
    pub allocations_lost: FailureCounts,
    pub refreshes: u64,
    pub permissions_created: u64,
    pub permission_refreshes: u64,
    pub permission_failures: u64,
    pub channels_bound: u64,
    pub channel_refreshes: u64,
    pub channel_failures: u64,
    pub requests: u64,
    pub retransmissions: u64,
    pub nonce_renewals: u64,
    /// Answers to transactions no longer outstanding (late answers to retransmissions).
    pub late_answers: u64,
    pub input_errors: u64,
    /// Payload relayed to peers, as ChannelData and as Send indications.
    pub sent_channel: Traffic,
    pub sent_indication: Traffic,
    /// Payload relayed from peers.
    pub received_channel: Traffic,
    pub received_indication: Traffic,
    /// Gauges: permissions and channels currently installed.
    pub permissions: u64,
    pub channels: u64,
}
