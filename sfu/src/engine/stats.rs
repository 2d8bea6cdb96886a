//! The engine's own counters, and what the driver reports back into them.

use super::delay::DelayHistogram;

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
    pub forward_delay: DelayHistogram,
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

/// What a sender handed to the kernel: how well sends were batched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendCounts {
    /// Datagrams the kernel took.
    pub datagrams: u64,
    /// Messages they went in (a GSO run is one message).
    pub messages: u64,
    /// `sendmmsg` calls that sent something.
    pub syscalls: u64,
    /// Times the socket buffer was full and the sender waited for room.
    pub waits: u64,
}
