//! The fan-out: every packet a stream accepted, rewritten into each viewer's numbering,
//! protected with the viewer's SRTP key and queued for the socket.

use std::time::Instant;

use super::queue::TransmitQueue;
use super::{Engine, SessionMap};
use crate::hub::{Stream, UnsentPacket};
use crate::rtp::history::StoredPacket;
use crate::webrtc::session::Session;

impl Engine {
    /// Sends the viewers every packet the streams accepted since the last call.
    ///
    /// Called before anything reads the transmit queue, before handshakes (a viewer that
    /// connects is sent the keyframe cache, which already holds these packets) and before
    /// timers: between calls only media arrives.
    pub(super) fn send_unsent(&mut self) {
        if self.unsent_packets == 0 {
            return;
        }
        self.unsent_packets = 0;
        self.unsent_datagrams = 0;
        for stream in self.hub.iter_mut() {
            if stream.unsent.is_empty() {
                continue;
            }
            let mut batch = std::mem::take(&mut stream.unsent);
            fan_out(stream, &batch, &mut self.sessions, &mut self.transmits);
            // The emptied batch goes back, so its capacity is reused.
            batch.clear();
            stream.unsent = batch;
        }
    }
}

/// Counters a forwarded packet adds to.
pub(super) struct TrackOut<'a> {
    pub packets: &'a mut u64,
    pub bytes: &'a mut u64,
}

pub(super) fn track_out<'a>(packets: &'a mut u64, bytes: &'a mut u64) -> TrackOut<'a> {
    TrackOut { packets, bytes }
}

/// Sends every viewer of `stream` its rewritten copy of each packet of `batch`, viewer by
/// viewer: the viewer's session and SRTP state are fetched once for the whole batch.
fn fan_out(
    stream: &mut Stream,
    batch: &[UnsentPacket],
    sessions: &mut SessionMap,
    transmits: &mut TransmitQueue,
) {
    for viewer in &stream.viewers {
        let Some(session) = sessions.get_mut(viewer) else {
            continue;
        };
        for unsent in batch {
            let Some(track) = stream.tracks.get_mut(unsent.track_index) else {
                continue;
            };
            let Some(out_index) = session
                .outbound
                .iter()
                .position(|o| o.track_index == unsent.track_index)
            else {
                continue;
            };
            let out = &mut session.outbound[out_index];
            let packet = &unsent.packet;
            if out.rewriter.epoch() != Some(packet.epoch) {
                // A new source: video waits for its keyframe, audio joins at once.
                if track.video_codec.is_some() && !unsent.keyframe_start {
                    continue;
                }
                out.rewriter.splice(
                    unsent.arrival,
                    packet.epoch,
                    packet.sequence,
                    packet.timestamp,
                );
            }
            send_to_viewer(
                unsent.arrival,
                session,
                out_index,
                packet,
                Timing::Live {
                    capture_ntp: unsent.capture_ntp,
                },
                transmits,
                &mut track_out(&mut track.stats.packets_out, &mut track.stats.bytes_out),
            );
        }
    }
}

/// How a forwarded packet's timestamp is chosen.
#[derive(Debug, Clone, Copy)]
pub(super) enum Timing {
    /// The packet's own timestamp, rewritten; with the capture time when the source knows it.
    Live { capture_ntp: Option<u64> },
    /// A NACKed packet sent again: on the RTX stream when the viewer has one (RFC 4588).
    Retransmission,
    /// A cached frame replayed to a joiner: `ticks_before` the rewritten `newest` timestamp.
    Squeezed { newest: u32, ticks_before: u32 },
}

/// An RFC 8285 one-byte header extension block holding abs-capture-time (element `id`, the
/// 64-bit NTP capture timestamp, no clock offset), padded to a word boundary.
fn abs_capture_extension(id: u8, ntp: u64) -> [u8; 16] {
    let mut block = [0u8; 16];
    block[..4].copy_from_slice(&[0xbe, 0xde, 0x00, 0x03]);
    block[4] = (id << 4) | 7; // length - 1
    block[5..13].copy_from_slice(&ntp.to_be_bytes());
    block
}

/// Rewrites `packet` into the viewer's numbering, protects it and queues it.
pub(super) fn send_to_viewer(
    now: Instant,
    session: &mut Session,
    out_index: usize,
    packet: &StoredPacket,
    timing: Timing,
    transmits: &mut TransmitQueue,
    counters: &mut TrackOut<'_>,
) {
    let Some(to) = session.ice.selected else {
        return;
    };
    let Some(out) = session.outbound.get_mut(out_index) else {
        return;
    };
    let (sequence, timestamp) = match timing {
        Timing::Live { .. } | Timing::Retransmission => {
            out.rewriter.map(now, packet.sequence, packet.timestamp)
        }
        Timing::Squeezed {
            newest,
            ticks_before,
        } => {
            let (sequence, newest_out) = out.rewriter.map(now, packet.sequence, newest);
            (sequence, newest_out.wrapping_sub(ticks_before))
        }
    };
    let Some(srtp) = session.rtp_out.as_mut() else {
        return;
    };
    let mut fixed = [0u8; 12];
    let rtx = out
        .rtx
        .as_mut()
        .filter(|_| matches!(timing, Timing::Retransmission));
    let protected = if let Some(rtx) = rtx {
        // RTX payload: the original sequence number, then the original payload.
        crate::rtp::packet::write_fixed_header(
            &mut fixed,
            packet.marker,
            rtx.payload_type,
            rtx.next_sequence,
            timestamp,
            rtx.ssrc,
        );
        rtx.next_sequence = rtx.next_sequence.wrapping_add(1);
        transmits.push_built(
            to,
            &[&fixed, &sequence.to_be_bytes(), &packet.payload],
            srtp.trailer_len(),
            |buf, len| srtp.protect(buf, len, fixed.len()).ok(),
        )
    } else {
        crate::rtp::packet::write_fixed_header(
            &mut fixed,
            packet.marker,
            out.payload_type,
            sequence,
            timestamp,
            out.ssrc,
        );
        let capture = match (timing, out.abs_capture_ext) {
            (
                Timing::Live {
                    capture_ntp: Some(ntp),
                },
                Some(id),
            ) => Some((id, ntp)),
            _ => None,
        };
        if let Some((id, ntp)) = capture {
            fixed[0] |= 0x10; // X: a header extension follows
            let extension = abs_capture_extension(id, ntp);
            transmits.push_built(
                to,
                &[&fixed, &extension, &packet.payload],
                srtp.trailer_len(),
                |buf, len| srtp.protect(buf, len, fixed.len() + extension.len()).ok(),
            )
        } else {
            transmits.push_built(
                to,
                &[&fixed, &packet.payload],
                srtp.trailer_len(),
                |buf, len| srtp.protect(buf, len, fixed.len()).ok(),
            )
        }
    };
    match protected {
        Some(len) => {
            out.packets_sent = out.packets_sent.wrapping_add(1);
            out.octets_sent = out.octets_sent.wrapping_add(packet.payload.len() as u32);
            session.stats.packets_out += 1;
            session.stats.bytes_out += len as u64;
            *counters.packets += 1;
            *counters.bytes += len as u64;
        }
        None => session.stats.srtp_errors += 1,
    }
}
