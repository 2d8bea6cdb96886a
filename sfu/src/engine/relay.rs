//! The engine's side of a TURN relay it holds (RFC 8656): the relay candidate it offers in
//! answers, and what the driver's TURN client must do for the sessions — permit each client's
//! candidate addresses (a TURN server drops whatever comes from a peer without a permission,
//! and an ICE-lite server never sends first, so the permission must exist before the client's
//! first check arrives) and bind a channel to every peer whose media goes by the relay.
//!
//! The engine only says what is needed ([`Engine::poll_relay_need`]); the TURN client in the
//! driver does it, and tells the engine its allocation ([`Engine::set_relay`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::Engine;
use crate::webrtc::Via;
use crate::webrtc::sdp::RelayCandidate;
use crate::webrtc::session::SessionId;

/// The driver's TURN allocation as `/metrics` shows it: which server and transport, the
/// relayed address while allocated, and the client's counters (since that client was made: a
/// new allocation on another transport or with new credentials starts them again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayReport {
    pub server: SocketAddr,
    pub transport: &'static str,
    pub relayed: Option<SocketAddr>,
    pub stats: crate::turn::client::Stats,
}

/// Something the TURN client must do for the engine's sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayNeed {
    /// A session's client may send from this IP: create (and keep refreshing) a permission.
    Permit(IpAddr),
    /// No session names this IP any more: let its permission lapse.
    Forget(IpAddr),
    /// Media to and from this peer goes by the relay: bind a channel.
    Channel(SocketAddr),
    /// No session uses this relayed path any more: the channel may lapse.
    Unbind(SocketAddr),
}

/// The relay's state in the engine.
#[derive(Debug, Default)]
pub(super) struct Relay {
    /// Our allocation, while we hold one.
    pub(super) candidate: Option<RelayCandidate>,
    /// Client IPs permitted, with the number of sessions naming each.
    permitted: HashMap<IpAddr, usize>,
    /// Relayed peers with a channel, with the number of sessions using each.
    channels: HashMap<SocketAddr, usize>,
    needs: std::collections::VecDeque<RelayNeed>,
    /// The driver's last report.
    pub(super) report: Option<RelayReport>,
}

/// Needs queued at most: far above what sessions produce between two driver passes; beyond it
/// the oldest are dropped (the driver re-reads everything after [`Engine::set_relay`]).
const MAX_NEEDS: usize = 4096;

impl Relay {
    fn push(&mut self, need: RelayNeed) {
        if self.needs.len() >= MAX_NEEDS {
            self.needs.pop_front();
        }
        self.needs.push_back(need);
    }

    fn permit(&mut self, ip: IpAddr) {
        // A relayed address of one family relays to peers of that family only (RFC 8656 §7.2:
        // a permission for the other family is refused with 443): none is asked for.
        if self
            .candidate
            .is_some_and(|c| c.relayed.is_ipv4() != ip.is_ipv4())
        {
            return;
        }
        let count = self.permitted.entry(ip).or_insert(0);
        *count += 1;
        if *count == 1 {
            self.push(RelayNeed::Permit(ip));
        }
    }

    fn forget(&mut self, ip: IpAddr) {
        if let Some(count) = self.permitted.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.permitted.remove(&ip);
                self.push(RelayNeed::Forget(ip));
            }
        }
    }

    pub(super) fn bind(&mut self, peer: SocketAddr) {
        let count = self.channels.entry(peer).or_insert(0);
        *count += 1;
        if *count == 1 {
            self.push(RelayNeed::Channel(peer));
        }
    }

    fn unbind(&mut self, peer: SocketAddr) {
        if let Some(count) = self.channels.get_mut(&peer) {
            *count -= 1;
            if *count == 0 {
                self.channels.remove(&peer);
                self.push(RelayNeed::Unbind(peer));
            }
        }
    }
}

impl Engine {
    /// Our TURN allocation changed: `Some` when the driver holds one (a new allocation, after a
    /// server restart or on another transport), `None` when it lost it. Answers and restart
    /// fragments carry the relay candidate from now on, and every permission and channel the
    /// live sessions need is asked for again (a new allocation has none).
    pub fn set_relay(&mut self, now: Instant, candidate: Option<RelayCandidate>) {
        if self.relay.candidate.is_some() && self.relay.candidate != candidate {
            // The sessions on the old relay lost their path: keep them for their clients' ICE
            // restart onto the new one (publishers would otherwise time out within seconds).
            let until = now + super::timers::RELAY_RECOVERY;
            for session in self.sessions.values() {
                if session.ice.selected.is_some_and(|p| p.via == Via::Relay) {
                    self.relay_recovery.insert(session.id, until);
                }
            }
        }
        self.relay_recovery.retain(|_, until| *until > now);
        self.relay.candidate = candidate;
        self.relay.permitted.clear();
        self.relay.channels.clear();
        self.relay.needs.clear();
        if candidate.is_none() {
            return;
        }
        let ips: Vec<IpAddr> = self
            .sessions
            .values()
            .flat_map(|s| s.remote_candidates.iter().map(SocketAddr::ip))
            .collect();
        for ip in ips {
            self.relay.permit(ip);
        }
        let peers: Vec<SocketAddr> = self
            .sessions
            .values()
            .flat_map(|s| s.ice.remotes.iter())
            .filter(|p| p.via == Via::Relay)
            .map(|p| p.addr)
            .collect();
        for peer in peers {
            self.relay.bind(peer);
        }
    }

    /// The driver's TURN allocation and counters, for `/metrics` (`None`: no relay).
    pub fn note_relay_report(&mut self, report: Option<RelayReport>) {
        self.relay.report = report;
    }

    pub fn relay_report(&self) -> Option<&RelayReport> {
        self.relay.report.as_ref()
    }

    /// Our relay candidate, if we hold an allocation.
    pub fn relay(&self) -> Option<RelayCandidate> {
        self.relay.candidate
    }

    /// The next thing the TURN client must do for the sessions.
    pub fn poll_relay_need(&mut self) -> Option<RelayNeed> {
        self.relay.needs.pop_front()
    }

    /// A session learned its client's candidate addresses (offer or trickle): permit them.
    pub(super) fn note_remote_candidates(&mut self, id: SessionId, candidates: &[SocketAddr]) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let mut new_ips = Vec::new();
        for &addr in candidates {
            if session.remote_candidates.len() >= MAX_CANDIDATES_PER_SESSION {
                break;
            }
            if !session.remote_candidates.contains(&addr) {
                if !session
                    .remote_candidates
                    .iter()
                    .any(|c| c.ip() == addr.ip())
                {
                    new_ips.push(addr.ip());
                }
                session.remote_candidates.push(addr);
            }
        }
        if self.relay.candidate.is_some() {
            for ip in new_ips {
                self.relay.permit(ip);
            }
        }
    }

    /// A session ended: what only it needed of the relay may lapse.
    pub(super) fn release_relay(&mut self, session: &crate::webrtc::session::Session) {
        if self.relay.candidate.is_none() {
            return;
        }
        let mut ips: Vec<IpAddr> = session
            .remote_candidates
            .iter()
            .map(SocketAddr::ip)
            .collect();
        ips.sort();
        ips.dedup();
        for ip in ips {
            self.relay.forget(ip);
        }
        for peer in session.ice.remotes.iter().filter(|p| p.via == Via::Relay) {
            self.relay.unbind(peer.addr);
        }
    }
}

/// Candidate addresses remembered per session (offer and trickle together).
const MAX_CANDIDATES_PER_SESSION: usize = 64;
