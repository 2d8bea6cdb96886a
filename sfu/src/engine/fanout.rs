//! The fan-out: every packet a stream accepted, rewritten into each viewer's numbering,
//! protected with the viewer's SRTP key and queued for the socket.
//!
//! Done on the engine's thread ([`Engine::send_unsent`]) or, when a batch is large, split into
//! shares of the viewers that the driver runs on several cores ([`Engine::send_unsent_split`]).

use std::time::Instant;

use rustc_hash::FxHashMap;

use super::queue::TransmitQueue;
use super::{Engine, SessionMap};
use crate::hub::{Track, UnsentPacket};
use crate::rtp::history::StoredPacket;
use crate::webrtc::session::{Session, SessionId};

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
            let mut sent = vec![Sent::default(); stream.tracks.len()];
            for viewer in &stream.viewers {
                if let Some(session) = self.sessions.get_mut(viewer) {
                    fan_out_to_viewer(
                        session,
                        &stream.tracks,
                        &batch,
                        &mut sent,
                        &mut self.transmits,
                    );
                }
            }
            add_sent(&mut stream.tracks, &sent);
            // The emptied batch goes back, so its capacity is reused.
            batch.clear();
            stream.unsent = batch;
        }
    }

    /// Like [`Engine::send_unsent`], with the viewers split into shares, one per queue of
    /// `queues`, each share's datagrams queued in its own queue: `run` is handed the shares
    /// and runs each once ([`FanoutShare::run`]), on as many threads as it likes — a share
    /// holds its viewers' sessions exclusively, so shares run in parallel without locks.
    ///
    /// Splits only when at least `min_per_share` datagrams fall to each of two or more shares;
    /// returns how many shares were filled (queues past that are untouched). When it returns
    /// 0 nothing was sent: the next read of the transmit queue fans out on this thread.
    ///
    /// A viewer's datagrams are all in one share, in order; datagrams already in the engine's
    /// transmit queue (handshakes, a joiner's keyframe cache) are older and should be sent
    /// first.
    pub fn send_unsent_split(
        &mut self,
        queues: &mut [TransmitQueue],
        min_per_share: usize,
        run: impl FnOnce(&mut [FanoutShare<'_>]),
    ) -> usize {
        let count = queues
            .len()
            .min(self.unsent_datagrams / min_per_share.max(1));
        if count < 2 || self.unsent_packets == 0 {
            return 0;
        }
        self.unsent_packets = 0;
        self.unsent_datagrams = 0;
        self.stats.fanout_splits += 1;
        self.stats.fanout_shares += count as u64;
        let mut batches: Vec<Vec<UnsentPacket>> = self
            .hub
            .iter_mut()
            .map(|stream| std::mem::take(&mut stream.unsent))
            .collect();
        let work: Vec<StreamWork<'_>> = self
            .hub
            .iter()
            .zip(&batches)
            .map(|(stream, batch)| StreamWork {
                viewers: &stream.viewers,
                tracks: &stream.tracks,
                batch,
            })
            .collect();
        let assigned = assign_viewers(&mut self.sessions, &work, count);
        let mut shares: Vec<FanoutShare<'_>> = assigned
            .into_iter()
            .zip(queues.iter_mut())
            .map(|(viewers, queue)| FanoutShare {
                viewers,
                work: &work,
                sent: work
                    .iter()
                    .map(|w| vec![Sent::default(); w.tracks.len()])
                    .collect(),
                queue,
            })
            .collect();
        run(&mut shares);
        let sent: Vec<Vec<Vec<Sent>>> = shares.into_iter().map(|share| share.sent).collect();
        drop(work);
        for ((stream, batch), index) in self.hub.iter_mut().zip(&mut batches).zip(0..) {
            for share in &sent {
                add_sent(&mut stream.tracks, &share[index]);
            }
            // The emptied batch goes back, so its capacity is reused.
            batch.clear();
            stream.unsent = std::mem::take(batch);
        }
        count
    }
}

/// One stream's part of a split fan-out: its viewers, its tracks and the batch they are sent.
struct StreamWork<'a> {
    viewers: &'a [SessionId],
    tracks: &'a [Track],
    batch: &'a [UnsentPacket],
}

/// Splits the viewers of streams with a batch into `count` shares of about equal datagrams,
/// each viewer with the index of its stream; viewers of a stream stay in the stream's order.
fn assign_viewers<'s>(
    sessions: &'s mut SessionMap,
    work: &[StreamWork<'_>],
    count: usize,
) -> Vec<Vec<(&'s mut Session, usize)>> {
    let mut by_id: FxHashMap<SessionId, &'s mut Session> =
        sessions.iter_mut().map(|(id, s)| (*id, s)).collect();
    let mut listed: Vec<(SessionId, usize, usize)> = Vec::new();
    for (w, index) in work.iter().zip(0..) {
        if w.batch.is_empty() {
            continue;
        }
        listed.extend(w.viewers.iter().map(|id| (*id, index, w.batch.len())));
    }
    let total: usize = listed.iter().map(|&(_, _, n)| n).sum();
    let mut shares: Vec<Vec<(&'s mut Session, usize)>> = (0..count).map(|_| Vec::new()).collect();
    let mut done = 0;
    for (id, index, datagrams) in listed {
        // Contiguous runs: share k takes the viewers whose datagrams start in its k-th of the
        // total.
        let share = (done * count / total.max(1)).min(count - 1);
        done += datagrams;
        if let Some(session) = by_id.remove(&id) {
            shares[share].push((session, index));
        }
    }
    shares
}

/// Part of a split fan-out: some viewers, the queue their datagrams go to, and what was sent.
pub struct FanoutShare<'a> {
    viewers: Vec<(&'a mut Session, usize)>,
    work: &'a [StreamWork<'a>],
    /// Per stream of `work`, per track.
    sent: Vec<Vec<Sent>>,
    queue: &'a mut TransmitQueue,
}

impl FanoutShare<'_> {
    /// Sends this share's viewers their batches, into the share's queue.
    pub fn run(&mut self) {
        for (session, index) in &mut self.viewers {
            let work = &self.work[*index];
            fan_out_to_viewer(
                session,
                work.tracks,
                work.batch,
                &mut self.sent[*index],
                self.queue,
            );
        }
    }
}

/// What a fan-out sent on one track.
#[derive(Debug, Default, Clone, Copy)]
struct Sent {
    packets: u64,
    bytes: u64,
}

fn add_sent(tracks: &mut [Track], sent: &[Sent]) {
    for (track, sent) in tracks.iter_mut().zip(sent) {
        track.stats.packets_out += sent.packets;
        track.stats.bytes_out += sent.bytes;
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

/// Sends one viewer its rewritten copy of each packet of `batch`: the viewer's session and
/// SRTP state are fetched once for the whole batch. `sent` counts per track of `tracks`.
fn fan_out_to_viewer(
    session: &mut Session,
    tracks: &[Track],
    batch: &[UnsentPacket],
    sent: &mut [Sent],
    transmits: &mut TransmitQueue,
) {
    for unsent in batch {
        let (Some(track), Some(counts)) = (
            tracks.get(unsent.track_index),
            sent.get_mut(unsent.track_index),
        ) else {
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
        if unsent.resplice || out.rewriter.epoch() != Some(packet.epoch) {
            // A new source, or the track caught up after shedding: video waits for its
            // keyframe, audio joins at once.
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
            &mut track_out(&mut counts.packets, &mut counts.bytes),
        );
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
    // Live media is measured from its arrival to its send (the driver's delay histogram).
    let origin = matches!(timing, Timing::Live { .. }).then_some(now);
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
            origin,
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
                origin,
                &[&fixed, &extension, &packet.payload],
                srtp.trailer_len(),
                |buf, len| srtp.protect(buf, len, fixed.len() + extension.len()).ok(),
            )
        } else {
            transmits.push_built(
                to,
                origin,
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
