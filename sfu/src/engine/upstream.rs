//! Loss on the publisher's path: the engine NACKs the packets a publisher's stream skipped
//! (when the publisher negotiated `nack`), one timer tick after the gap shows (so packets that
//! were only reordered are not asked for). The publisher resends
//! them on the media SSRC (no RTX is negotiated on publish), and they are forwarded late, which
//! viewers' jitter buffers and the LL-HLS muxer accept. What does not come is asked for again
//! (`rtp::gaps::PendingRepair`). Without this, one lost packet of a keyframe spoils a whole GOP
//! for every viewer.

use rtc_rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};
use rtc_shared::marshal::Marshal;

use std::time::Instant;

use super::Engine;
use super::media::send_rtcp;
use super::queue::TransmitQueue;
use crate::webrtc::session::{Role, Session};

/// Sends `session`'s publisher a NACK for the `lost` packets of `ssrc`.
pub(super) fn nack_publisher(
    session: &mut Session,
    ssrc: u32,
    lost: impl Iterator<Item = u16>,
    transmits: &mut TransmitQueue,
) {
    let missing: Vec<u16> = lost.collect();
    let nack = TransportLayerNack {
        sender_ssrc: session.feedback_ssrc,
        media_ssrc: ssrc,
        nacks: nack_pairs_from_sequence_numbers(&missing),
    };
    if let Ok(raw) = nack.marshal() {
        send_rtcp(session, &raw, transmits);
    }
}

impl Engine {
    /// NACKs what publishers' streams are missing, and again what they did not resend.
    pub(super) fn retry_upstream_nacks(&mut self, now: Instant) {
        for session in self.sessions.values_mut() {
            if session.role != Role::Publish || session.inbound.iter().all(|t| t.repair.is_empty())
            {
                continue;
            }
            for index in 0..session.inbound.len() {
                let track = &mut session.inbound[index];
                let Some(ssrc) = track.seen_ssrc else {
                    continue;
                };
                let due = track.repair.due(now);
                if due.is_empty() {
                    continue;
                }
                self.stats.upstream_nacked += due.len() as u64;
                nack_publisher(session, ssrc, due.into_iter(), &mut self.transmits);
            }
        }
    }
}
