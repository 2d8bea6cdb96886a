//! One outstanding request to the TURN server and its retransmission schedule (RFC 8489
//! §6.2.1): over UDP the request is sent at 0, RTO, 3 RTO, 7 RTO ... (RTO doubling) up to
//! `max_sends` times, and fails `last_wait` RTOs after the last send; with the defaults (RTO
//! 500 ms, 7 sends, 16) that is 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s and failure at 39.5 s. Over a
//! stream (TCP, TLS) the transport retransmits, so the request is sent once and fails after
//! `stream_timeout` (RFC 8489 §6.2.2, Ti = 39.5 s).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rtc_stun::message::TransactionId;

/// Retransmission parameters; the defaults are RFC 8489's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retransmission {
    /// Initial retransmission timeout over UDP.
    pub rto: Duration,
    /// Sends in total over UDP (RFC 8489's Rc).
    pub max_sends: u32,
    /// How many initial RTOs to wait after the last send before giving up (Rm).
    pub last_wait: u32,
    /// How long to wait for an answer over TCP or TLS (Ti).
    pub stream_timeout: Duration,
}

impl Default for Retransmission {
    fn default() -> Self {
        Self {
            rto: Duration::from_millis(500),
            max_sends: 7,
            last_wait: 16,
            stream_timeout: Duration::from_millis(39_500),
        }
    }
}

/// What a request asks for; the parameters are kept to rebuild it with a fresh nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Request {
    Allocate { lifetime: Duration },
    Refresh { lifetime: Duration },
    Permission { peer: IpAddr },
    ChannelBind { peer: SocketAddr, channel: u16 },
}

impl Request {
    pub(super) fn method(&self) -> Method {
        match self {
            Request::Allocate { .. } => Method::Allocate,
            Request::Refresh { .. } => Method::Refresh,
            Request::Permission { .. } => Method::CreatePermission,
            Request::ChannelBind { .. } => Method::ChannelBind,
        }
    }
}

/// A TURN request method, for errors and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Allocate,
    Refresh,
    CreatePermission,
    ChannelBind,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Allocate => "Allocate",
            Method::Refresh => "Refresh",
            Method::CreatePermission => "CreatePermission",
            Method::ChannelBind => "ChannelBind",
        })
    }
}

/// What a transaction's timer asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Due {
    Nothing,
    Resend,
    /// No answer; the request has been outstanding this long.
    Failed(Duration),
}

#[derive(Debug)]
pub(super) struct Transaction {
    pub(super) id: TransactionId,
    pub(super) request: Request,
    /// The encoded request, resent as is (same transaction id, as RFC 8489 requires).
    pub(super) raw: Vec<u8>,
    /// Whether the request was sent with credentials (an Allocate's first try is not).
    pub(super) authenticated: bool,
    /// The nonce the request was signed with, to tell a 401 with a new nonce from a refusal.
    pub(super) nonce: Option<String>,
    /// Nonce renewals (438, or 401 with a new nonce) this request has gone through.
    pub(super) renewals: u8,
    started: Instant,
    next: Instant,
    sends: u32,
    rto: Duration,
    reliable: bool,
}

impl Transaction {
    pub(super) fn new(
        now: Instant,
        timing: &Retransmission,
        reliable: bool,
        request: Request,
        built: Built,
    ) -> Self {
        let next = now
            + if reliable {
                timing.stream_timeout
            } else {
                timing.rto
            };
        Self {
            id: built.id,
            request,
            raw: built.raw,
            authenticated: built.nonce.is_some(),
            nonce: built.nonce,
            renewals: 0,
            started: now,
            next,
            sends: 1,
            rto: timing.rto,
            reliable,
        }
    }

    /// When [`Self::on_timer`] has something to do.
    pub(super) fn deadline(&self) -> Instant {
        self.next
    }

    pub(super) fn on_timer(&mut self, now: Instant, timing: &Retransmission) -> Due {
        if now < self.next {
            return Due::Nothing;
        }
        if self.reliable || self.sends >= timing.max_sends.max(1) {
            return Due::Failed(now.saturating_duration_since(self.started));
        }
        self.sends += 1;
        self.rto = self.rto.saturating_mul(2);
        self.next = now
            + if self.sends >= timing.max_sends {
                timing.rto.saturating_mul(timing.last_wait)
            } else {
                self.rto
            };
        Due::Resend
    }
}

/// An encoded request: its id, bytes and the nonce it carries.
#[derive(Debug)]
pub(super) struct Built {
    pub(super) id: TransactionId,
    pub(super) raw: Vec<u8>,
    pub(super) nonce: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(now: Instant, reliable: bool) -> Transaction {
        let built = Built {
            id: TransactionId::new(),
            raw: vec![1],
            nonce: None,
        };
        let request = Request::Refresh {
            lifetime: Duration::ZERO,
        };
        Transaction::new(now, &Retransmission::default(), reliable, request, built)
    }

    /// Fires the timer at each deadline; returns the send times and the failure time (ms).
    fn run(mut t: Transaction, t0: Instant) -> (Vec<u128>, u128) {
        let timing = Retransmission::default();
        let mut sends = vec![0];
        loop {
            let at = t.deadline();
            assert_eq!(
                t.on_timer(at - Duration::from_millis(1), &timing),
                Due::Nothing
            );
            match t.on_timer(at, &timing) {
                Due::Resend => sends.push((at - t0).as_millis()),
                Due::Failed(after) => {
                    assert_eq!(after, at - t0);
                    return (sends, (at - t0).as_millis());
                }
                Due::Nothing => unreachable!(),
            }
        }
    }

    #[test]
    fn udp_schedule_is_rfc_8489() {
        let t0 = Instant::now();
        let (sends, failed) = run(tx(t0, false), t0);
        assert_eq!(sends, [0, 500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(failed, 39_500);
    }

    #[test]
    fn stream_sends_once() {
        let t0 = Instant::now();
        let (sends, failed) = run(tx(t0, true), t0);
        assert_eq!(sends, [0]);
        assert_eq!(failed, 39_500);
    }
}
