//! Time-driven work: DTLS retransmissions, consent and publisher liveness, stream endings,
//! deferred keyframe requests and bitrate invitations (REMB).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rtc_rtcp::goodbye::Goodbye;
use rtc_rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc_rtcp::sender_report::SenderReport;
use rtc_shared::marshal::Marshal;
use tracing::info;

use super::media::{flush_dtls, send_rtcp};
use super::{CloseReason, Engine, TOMBSTONE_LIFETIME, Tombstone};
use crate::webrtc::session::{Role, SessionId, SessionState};

/// How often publishers are told the bitrate we accept.
const REMB_INTERVAL: Duration = Duration::from_secs(1);
/// A duration in 32.32 fixed-point NTP units.
fn ntp_duration(d: Duration) -> u64 {
    (d.as_secs() << 32) + ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
}

/// A publisher whose media comes by our relay gets this much longer before it counts as gone:
/// a TURN server that restarted is noticed by the driver's probe a few seconds into the
/// silence, and the session must still be there for the client's ICE restart onto the new
/// relay ([`RELAY_RECOVERY`]).
const RELAYED_PUBLISHER_SLACK: Duration = Duration::from_secs(3);
/// After our relay changed (lost, or allocated anew), how long the sessions that went by the
/// old one are kept for their clients to restart ICE onto the new one: a browser notices the
/// dead path in ~5-7 s, a page then waits a few seconds before restarting.
pub(super) const RELAY_RECOVERY: Duration = Duration::from_secs(20);

/// When a connected publisher that sends nothing more times out: its last media plus the
/// limit, later when its path goes by our relay, and not before the end of a relay recovery it
/// is in.
fn publisher_deadline(
    config: &super::EngineConfig,
    relay_recovery: &HashMap<SessionId, Instant>,
    session: &crate::webrtc::session::Session,
) -> Option<Instant> {
    let since = session.last_media_at.unwrap_or(session.created_at);
    let relayed = session
        .ice
        .selected
        .is_some_and(|p| p.via == crate::webrtc::Via::Relay);
    let limit = config.publisher_timeout
        + if relayed {
            RELAYED_PUBLISHER_SLACK
        } else {
            Duration::ZERO
        };
    let deadline = since.checked_add(limit)?;
    Some(match relay_recovery.get(&session.id) {
        Some(&until) => deadline.max(until),
        None => deadline,
    })
}

impl Engine {
    fn publisher_deadline(&self, session: &crate::webrtc::session::Session) -> Option<Instant> {
        publisher_deadline(&self.config, &self.relay_recovery, session)
    }

    /// When [`Engine::handle_timeout`] next has work: the earliest of every session's DTLS
    /// retransmission, consent expiry and publisher liveness, every pending NACK retry, every
    /// stream's takeover grace and pending keyframe request, and the next bitrate invitation
    /// and sender reports. A deadline already past means "now". Anything that changes these
    /// (a datagram, a new session, a keyframe asked for) happens under the engine's lock, after
    /// which the driver asks again ([`crate::engine::SharedEngine`]).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        };
        for session in self.sessions.values() {
            if !session.dtls.is_completed() {
                consider(session.dtls.poll_timeout());
            }
            consider(Some(session.ice.consent_deadline(session.created_at)));
            if session.role == Role::Publish && session.state == SessionState::Connected {
                // Timed out strictly after the limit (see handle_timeout).
                consider(
                    self.publisher_deadline(session)
                        .map(|d| d + Duration::from_nanos(1)),
                );
                for track in &session.inbound {
                    consider(track.repair.next_due());
                }
            }
        }
        let grace = self.config.takeover_grace;
        for stream in self.hub.iter() {
            consider(stream.orphaned_at.and_then(|at| at.checked_add(grace)));
            consider(stream.keyframe_request_due());
        }
        // Bitrate invitations, sender reports and tombstone expiry share one interval; before
        // the first, they are due at once.
        consider(Some(match self.last_remb_at {
            Some(at) => at + REMB_INTERVAL,
            None => self.wall_clock.instant,
        }));
        next
    }

    /// Advances every timer to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Sender reports count what was sent, and a stream may end here.
        self.send_unsent();
        let mut to_close: Vec<(SessionId, CloseReason)> = Vec::new();
        for (id, session) in self.sessions.iter_mut() {
            if session.dtls.handle_timeout(now).is_err() {
                to_close.push((*id, CloseReason::DtlsFailed));
            }
            flush_dtls(session, &mut self.transmits);
            if session.ice.consent_expired(now, session.created_at) {
                to_close.push((*id, CloseReason::ConsentExpired));
            } else if session.role == Role::Publish
                && session.state == SessionState::Connected
                && publisher_deadline(&self.config, &self.relay_recovery, session)
                    .is_some_and(|deadline| now > deadline)
            {
                to_close.push((*id, CloseReason::PublisherTimeout));
            }
        }
        for (id, reason) in to_close {
            self.close_session(now, id, reason);
        }

        let grace = self.config.takeover_grace;
        let ended: Vec<String> = self
            .hub
            .iter()
            .filter(|s| {
                s.orphaned_at
                    .is_some_and(|at| now.saturating_duration_since(at) >= grace)
            })
            .map(|s| s.name().to_owned())
            .collect();
        for name in ended {
            self.end_stream(now, &name);
        }

        self.retry_upstream_nacks(now);
        let due: Vec<String> = self
            .hub
            .iter_mut()
            .filter_map(|s| s.poll_keyframe_request(now).then(|| s.name().to_owned()))
            .collect();
        for name in due {
            self.send_keyframe_request(&name);
        }

        if self
            .last_remb_at
            .is_none_or(|at| now.saturating_duration_since(at) >= REMB_INTERVAL)
        {
            self.last_remb_at = Some(now);
            self.send_remb();
            self.send_sender_reports(now);
            self.tombstones.retain(|_, t| t.until >= now);
        }
    }

    /// Sends each viewer a Sender Report per track, mapped from the publisher's latest one, so
    /// its browser can line audio up with video.
    fn send_sender_reports(&mut self, now: Instant) {
        for session in self.sessions.values_mut() {
            if session.role != Role::Play || session.state != SessionState::Connected {
                continue;
            }
            let Some(stream) = self.hub.get(&session.stream) else {
                continue;
            };
            let reports: Vec<SenderReport> = session
                .outbound
                .iter()
                .filter(|out| out.rewriter.epoch() == Some(stream.epoch()))
                .filter_map(|out| {
                    let track = stream.tracks.get(out.track_index)?;
                    let (ntp, rtp, at) = track.sender_report?;
                    let elapsed = now.saturating_duration_since(at);
                    let ticks =
                        elapsed.as_micros() * u128::from(track.codec.clock_rate) / 1_000_000;
                    Some(SenderReport {
                        ssrc: out.ssrc,
                        ntp_time: ntp.wrapping_add(ntp_duration(elapsed)),
                        rtp_time: out.rewriter.out_timestamp(rtp.wrapping_add(ticks as u32)),
                        packet_count: out.packets_sent,
                        octet_count: out.octets_sent,
                        ..Default::default()
                    })
                })
                .collect();
            for report in reports {
                if let Ok(raw) = report.marshal() {
                    send_rtcp(session, &raw, &mut self.transmits);
                }
            }
        }
    }

    fn send_remb(&mut self) {
        let bitrate = self.config.publisher_bitrate_bps as f32;
        for session in self.sessions.values_mut() {
            if session.role != Role::Publish
                || session.state != SessionState::Connected
                || !session.remb
            {
                continue;
            }
            let Some(ssrc) = session.video_ssrc() else {
                continue;
            };
            let remb = ReceiverEstimatedMaximumBitrate {
                sender_ssrc: session.feedback_ssrc,
                bitrate,
                ssrcs: vec![ssrc],
            };
            if let Ok(raw) = remb.marshal() {
                send_rtcp(session, &raw, &mut self.transmits);
            }
        }
    }

    /// Ends a session: says goodbye (RTCP BYE, DTLS close_notify), forgets it, and updates its
    /// stream. A publisher that vanished ends its stream now; one that said DELETE leaves the
    /// stream a grace period for a successor.
    pub(super) fn close_session(&mut self, now: Instant, id: SessionId, reason: CloseReason) {
        let Some(mut session) = self.sessions.remove(&id) else {
            return;
        };
        self.relay_recovery.remove(&id);
        self.stats.sessions_closed += 1;
        info!(session = id, stream = %session.stream, ?reason, "session closed");
        if session.state == SessionState::Connected {
            let sources: Vec<u32> = session.outbound.iter().map(|o| o.ssrc).collect();
            if !sources.is_empty()
                && let Ok(raw) = (Goodbye {
                    sources,
                    reason: bytes::Bytes::new(),
                })
                .marshal()
            {
                send_rtcp(&mut session, &raw, &mut self.transmits);
            }
        }
        session.dtls.close(now);
        flush_dtls(&mut session, &mut self.transmits);
        if self.by_ufrag.get(&session.ice.local.ufrag) == Some(&id) {
            self.by_ufrag.remove(&session.ice.local.ufrag);
        }
        self.tombstones.insert(
            session.ice.local.ufrag.clone(),
            Tombstone {
                local_pwd: session.ice.local.pwd.clone(),
                remote_ufrag: session.ice.remote_ufrag.clone(),
                until: now + TOMBSTONE_LIFETIME,
            },
        );
        for addr in &session.ice.remotes {
            if self.by_addr.get(addr) == Some(&id) {
                self.by_addr.remove(addr);
            }
        }
        self.release_relay(&session);
        let Some(stream) = self.hub.get_mut(&session.stream) else {
            return;
        };
        match session.role {
            Role::Play => stream.viewers.retain(|v| *v != id),
            Role::Publish if stream.publisher() == Some(id) => match reason {
                // A client that leaves on purpose may be reloading: give a successor time.
                CloseReason::Deleted | CloseReason::PeerClosed => stream.orphan(now),
                CloseReason::TakenOver => {}
                _ => self.end_stream(now, &session.stream),
            },
            Role::Publish => {}
        }
    }

    /// Removes a stream and ends every session on it.
    pub(super) fn end_stream(&mut self, now: Instant, name: &str) {
        let Some(stream) = self.hub.remove(name) else {
            return;
        };
        info!(
            stream = name,
            viewers = stream.viewers.len(),
            "stream ended"
        );
        if let Some(publisher) = stream.publisher() {
            // A local source loses its stream too: its next ingest fails, so it notices.
            self.local_sources.remove(&publisher);
        }
        let members = stream.viewers.iter().copied().chain(stream.publisher());
        let pending: Vec<SessionId> = self
            .sessions
            .values()
            .filter(|s| s.stream == name)
            .map(|s| s.id)
            .chain(members)
            .collect();
        for id in pending {
            self.close_session(now, id, CloseReason::StreamEnded);
        }
    }
}
