//! Datagrams in: STUN, DTLS, SRTP and SRTCP, demultiplexed per RFC 7983; and the fan-out of
//! every publisher packet to the viewers of its stream.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc_rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc_shared::marshal::Marshal;
use tracing::{debug, info, warn};

use super::fanout::{Timing, send_to_viewer, track_out};
use super::queue::TransmitQueue;
use super::{CloseReason, Engine};
use crate::hub::{Admission, ReaderPacket, Stream, UnsentPacket};
use crate::rtp::history::StoredPacket;
use crate::rtp::packet::{RtpHeader, is_rtcp};
use crate::webrtc::ice_lite::BindingRequest;
use crate::webrtc::session::{Role, Session, SessionId, SessionState};
use crate::webrtc::{PeerAddr, Via};

impl Engine {
    /// [`Engine::handle_datagram`] for a datagram the kernel received at `received_at` (its
    /// receive timestamp): media it carries is timed from then, so the forward delay the
    /// driver measures includes the time the datagram waited to be read.
    pub fn handle_received(
        &mut self,
        now: Instant,
        received_at: Instant,
        from: SocketAddr,
        data: &[u8],
    ) {
        self.received_at = Some(received_at.min(now));
        self.handle_from(now, PeerAddr::direct(from), data);
        self.received_at = None;
    }

    /// One datagram arrived on the media socket from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.handle_from(now, PeerAddr::direct(from), data);
    }

    /// One datagram arrived through our TURN allocation from `from` (the peer address the TURN
    /// server reported), received by the kernel at `received_at` when the driver knows.
    pub fn handle_relayed(
        &mut self,
        now: Instant,
        received_at: Option<Instant>,
        from: SocketAddr,
        data: &[u8],
    ) {
        self.received_at = received_at.map(|at| at.min(now));
        self.handle_from(now, PeerAddr::relayed(from), data);
        self.received_at = None;
    }

    /// One datagram from `from`, by whichever transport.
    pub fn handle_from(&mut self, now: Instant, from: PeerAddr, data: &[u8]) {
        self.stats.datagrams_in += 1;
        match data.first() {
            Some(0..=3) => {
                self.send_unsent();
                self.handle_stun(now, from, data)
            }
            Some(20..=63) => {
                self.send_unsent();
                self.handle_dtls(now, from, data)
            }
            Some(128..=191) => self.handle_srtp(now, from, data),
            _ => self.stats.datagrams_unknown_source += 1,
        }
    }

    fn handle_stun(&mut self, now: Instant, from: PeerAddr, data: &[u8]) {
        let Ok(request) = BindingRequest::parse(data) else {
            self.stats.stun_rejected += 1;
            return;
        };
        let Some(&id) = self.by_ufrag.get(&request.local_ufrag) else {
            self.stats.stun_rejected += 1;
            self.refuse_ended(now, from, request);
            return;
        };
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if request.remote_ufrag != session.ice.remote_ufrag {
            self.stats.stun_rejected += 1;
            return;
        }
        let use_candidate = request.use_candidate;
        match request.answer(from.addr, &session.ice.local.pwd, self.provider.crypto()) {
            Ok(response) => {
                if session.ice.on_valid_check(now, from, use_candidate) {
                    debug!(session = id, from = %from.addr, via = ?from.via, "new ICE path");
                    self.by_addr.insert(from, id);
                    if from.via == Via::Relay {
                        // Media to and from this peer goes by the relay: a channel makes its
                        // header 4 bytes instead of a Send indication's 36.
                        self.relay.bind(from.addr);
                    }
                }
                self.transmits.push(from, &response);
            }
            Err(e) => {
                self.stats.stun_rejected += 1;
                debug!(session = id, %from, error = %e, "rejected ICE check");
            }
        }
    }

    /// A check for a session that ended: answer 403 so the client gives up now.
    fn refuse_ended(&mut self, now: Instant, from: PeerAddr, request: BindingRequest) {
        let Some(tomb) = self.tombstones.get(&request.local_ufrag) else {
            return;
        };
        if tomb.until < now || tomb.remote_ufrag != request.remote_ufrag {
            return;
        }
        if let Ok(response) = request.reject_ended(&tomb.local_pwd, self.provider.crypto()) {
            self.transmits.push(from, &response);
        }
    }

    fn handle_dtls(&mut self, now: Instant, from: PeerAddr, data: &[u8]) {
        let Some(&id) = self.by_addr.get(&from) else {
            self.stats.datagrams_unknown_source += 1;
            return;
        };
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let result = session.dtls.handle_datagram(now, data);
        flush_dtls(session, &mut self.transmits);
        match result {
            Ok(progress) => {
                if progress.peer_closed {
                    self.close_session(now, id, CloseReason::PeerClosed);
                } else if progress.handshake_completed {
                    self.on_connected(now, id);
                }
            }
            Err(e) => {
                self.stats.dtls_errors += 1;
                debug!(session = id, error = %e, "DTLS error");
                if !session.dtls.is_completed() {
                    self.close_session(now, id, CloseReason::DtlsFailed);
                }
            }
        }
    }

    fn on_connected(&mut self, now: Instant, id: SessionId) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        match session.dtls.srtp_contexts(&self.provider) {
            Ok(srtp) => {
                session.rtp_out = Some(srtp.rtp_sender);
                session.srtp_out = Some(srtp.outbound);
                session.srtp_in = Some(srtp.inbound);
                session.state = SessionState::Connected;
            }
            Err(e) => {
                warn!(session = id, error = %e, "SRTP setup failed");
                self.close_session(now, id, CloseReason::DtlsFailed);
                return;
            }
        }
        info!(session = id, stream = %session.stream, role = ?session.role, "connected");
        if session.role == Role::Play {
            let stream_name = session.stream.clone();
            let Some(stream) = self.hub.get_mut(&stream_name) else {
                self.close_session(now, id, CloseReason::StreamEnded);
                return;
            };
            stream.viewers.push(id);
            self.replay_keyframe_cache(now, &stream_name, id);
        }
    }

    /// Sends a joining viewer the packets since the last keyframe, so it decodes at once; asks
    /// the publisher for a keyframe when none is cached.
    fn replay_keyframe_cache(&mut self, now: Instant, stream_name: &str, id: SessionId) {
        let (Some(stream), Some(session)) =
            (self.hub.get_mut(stream_name), self.sessions.get_mut(&id))
        else {
            return;
        };
        let epoch = stream.epoch();
        let mut want_keyframe = false;
        for out in session.outbound.iter_mut().filter(|o| o.is_video) {
            let Some(track) = stream.tracks.get(out.track_index) else {
                continue;
            };
            // A long cache makes the joiner decode a burst of old frames; ask for a fresh
            // keyframe so the next joiner (and this one's steady state) starts closer to live.
            if track.keyframe_cache_span() > track.codec.clock_rate {
                want_keyframe = true;
            }
            let cache = track.keyframe_cache();
            let (Some(first), Some(last)) = (cache.first(), cache.last()) else {
                want_keyframe = true;
                continue;
            };
            // Sequence numbers continue from the first cached packet; timestamps are anchored
            // on the newest one, so live frames that follow keep their true spacing.
            out.rewriter
                .splice(now, epoch, first.sequence, last.timestamp);
        }
        for out_index in 0..session.outbound.len() {
            let index = session.outbound[out_index].track_index;
            if !session.outbound[out_index].is_video {
                continue;
            }
            let Some(track) = stream.tracks.get_mut(index) else {
                continue;
            };
            let (cache, stats) = track.cache_and_stats();
            let Some(newest) = cache.last().map(|p| p.timestamp) else {
                continue;
            };
            // The cached frames are squeezed into the ticks just before the newest one: the
            // viewer decodes them all at once (they carry the references it needs) and plays
            // the newest as current, instead of replaying seconds of old video and staying
            // that far behind live.
            let mut frames_after = cache_frame_count(cache).saturating_sub(1);
            let mut previous = cache.first().map(|p| p.timestamp);
            for packet in cache {
                if previous != Some(packet.timestamp) {
                    previous = Some(packet.timestamp);
                    frames_after = frames_after.saturating_sub(1);
                }
                send_to_viewer(
                    now,
                    session,
                    out_index,
                    packet,
                    Timing::Squeezed {
                        newest,
                        ticks_before: frames_after,
                    },
                    &mut self.transmits,
                    &mut track_out(&mut stats.packets_out, &mut stats.bytes_out),
                );
            }
        }
        if want_keyframe && stream.request_keyframe(now) {
            self.send_keyframe_request(stream_name);
        }
    }

    fn handle_srtp(&mut self, now: Instant, from: PeerAddr, data: &[u8]) {
        let Some(&id) = self.by_addr.get(&from) else {
            self.stats.datagrams_unknown_source += 1;
            return;
        };
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let Some(srtp_in) = session.srtp_in.as_mut() else {
            return;
        };
        session.stats.packets_in += 1;
        session.stats.bytes_in += data.len() as u64;
        if is_rtcp(data) {
            match srtp_in.decrypt_rtcp(data) {
                Ok(plain) => self.handle_rtcp(now, id, plain.freeze()),
                Err(_) => {
                    session.stats.srtp_errors += 1;
                    self.stats.srtp_errors += 1;
                }
            }
            return;
        }
        if session.role != Role::Publish {
            return;
        }
        if let Some(cap) = session.bitrate_cap.as_mut()
            && !cap.admit(now, data.len())
        {
            session.stats.bitrate_cap_dropped += 1;
            self.stats.bitrate_cap_dropped += 1;
            return;
        }
        let plain = match srtp_in.decrypt_rtp(data) {
            Ok(plain) => plain.freeze(),
            Err(_) => {
                session.stats.srtp_errors += 1;
                self.stats.srtp_errors += 1;
                return;
            }
        };
        session.last_media_at = Some(now);
        let Ok(header) = RtpHeader::parse(&plain) else {
            return;
        };
        let Some(track_index) = session
            .inbound_for(header.ssrc, header.payload_type)
            .map(|t| {
                t.note_sequence(now, header.sequence);
                t.track_index
            })
        else {
            return;
        };
        // The stream is found through the session's name, but the borrow of the session ends
        // there: no copy of the name per packet.
        let Some(stream) = self.hub.get_mut(&session.stream) else {
            return;
        };
        let origin = Origin {
            arrival: self.received_at.unwrap_or(now),
            capture_ntp: None,
            shed_after: self.config.max_forward_delay,
        };
        let forwarded = forward(now, stream, id, track_index, &header, &plain, origin);
        self.note_forwarded(id, forwarded);
    }

    /// Counts what [`forward`] did with a packet of `source` (a publisher's session or a local
    /// source). While a track catches up the source is asked for a keyframe to resume at, again
    /// at the stream's keyframe-request interval: a browser sends one only when asked, and the
    /// one asked for may itself come too late to resume at.
    pub(super) fn note_forwarded(&mut self, source: SessionId, forwarded: Option<Forwarded>) {
        match forwarded {
            None => {}
            Some(Forwarded::Queued(accepted)) => self.note_unsent(accepted),
            Some(Forwarded::Shed {
                began,
                waited,
                ask_keyframe,
            }) => {
                self.stats.shed_packets += 1;
                self.stats.catch_ups += u64::from(began);
                if !(began || ask_keyframe) {
                    return;
                }
                let name = match self.sessions.get(&source) {
                    Some(session) => session.stream.clone(),
                    None => match self.local_sources.get(&source) {
                        Some(local) => local.stream.clone(),
                        None => return,
                    },
                };
                if began {
                    warn!(
                        stream = name,
                        waited_ms = waited.as_millis() as u64,
                        "media is late: shedding until a keyframe is on time"
                    );
                }
                if ask_keyframe {
                    self.send_keyframe_request(&name);
                }
            }
        }
    }

    fn handle_rtcp(&mut self, now: Instant, id: SessionId, plain: Bytes) {
        let mut buf = plain;
        let packets = match rtc_rtcp::packet::unmarshal(&mut buf) {
            Ok(p) => p,
            Err(_) => {
                self.stats.rtcp_parse_errors += 1;
                return;
            }
        };
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        if session.role == Role::Publish {
            self.record_sender_reports(now, id, &packets);
            return;
        }
        let stream_name = session.stream.clone();
        let mut wants_keyframe = false;
        for packet in &packets {
            let any = packet.as_any();
            if any.downcast_ref::<PictureLossIndication>().is_some()
                || any.downcast_ref::<FullIntraRequest>().is_some()
            {
                wants_keyframe = true;
            } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                self.answer_nack(now, id, &stream_name, nack);
            }
        }
        if wants_keyframe {
            if let Some(session) = self.sessions.get_mut(&id) {
                session.stats.keyframe_requests_in += 1;
            }
            if let Some(stream) = self.hub.get_mut(&stream_name)
                && stream.request_keyframe(now)
            {
                self.send_keyframe_request(&stream_name);
            }
        }
    }

    /// Keeps each publisher track's latest Sender Report, the clock mapping viewers' reports use.
    fn record_sender_reports(
        &mut self,
        now: Instant,
        id: SessionId,
        packets: &[Box<dyn rtc_rtcp::packet::Packet>],
    ) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let Some(stream) = self.hub.get_mut(&session.stream) else {
            return;
        };
        if stream.publisher() != Some(id) {
            return;
        }
        for packet in packets {
            let Some(sr) = packet.as_any().downcast_ref::<SenderReport>() else {
                continue;
            };
            let Some(index) = session
                .inbound
                .iter()
                .find(|t| t.seen_ssrc == Some(sr.ssrc) || t.ssrcs.contains(&sr.ssrc))
                .map(|t| t.track_index)
            else {
                continue;
            };
            if let Some(track) = stream.tracks.get_mut(index) {
                track.sender_report = Some((sr.ntp_time, sr.rtp_time, now));
            }
        }
    }

    /// Retransmits what a viewer lost, from the stream's history.
    fn answer_nack(
        &mut self,
        now: Instant,
        id: SessionId,
        stream_name: &str,
        nack: &TransportLayerNack,
    ) {
        let (Some(stream), Some(session)) =
            (self.hub.get_mut(stream_name), self.sessions.get_mut(&id))
        else {
            return;
        };
        let Some(out_index) = session
            .outbound
            .iter()
            .position(|o| o.ssrc == nack.media_ssrc)
        else {
            return;
        };
        let track_index = session.outbound[out_index].track_index;
        for pair in &nack.nacks {
            let lost = std::iter::once(pair.packet_id).chain(
                (0..16u16)
                    .filter(|bit| pair.lost_packets & (1 << bit) != 0)
                    .map(|bit| pair.packet_id.wrapping_add(bit + 1)),
            );
            for out_seq in lost {
                session.stats.nacks_in += 1;
                let source = session.outbound[out_index].rewriter.source_of(out_seq);
                let Some(track) = stream.tracks.get_mut(track_index) else {
                    return;
                };
                track.stats.nacks += 1;
                let Some((epoch, source_seq)) = source else {
                    continue;
                };
                let Some(packet) = track.history().get(epoch, source_seq).cloned() else {
                    continue;
                };
                track.stats.retransmits += 1;
                session.stats.retransmits += 1;
                send_to_viewer(
                    now,
                    session,
                    out_index,
                    &packet,
                    Timing::Retransmission,
                    &mut self.transmits,
                    &mut track_out(&mut track.stats.packets_out, &mut track.stats.bytes_out),
                );
            }
        }
    }

    /// Sends a PLI to the stream's publisher (the caller has applied the rate limit).
    pub(super) fn send_keyframe_request(&mut self, stream_name: &str) {
        let Some(publisher) = self.hub.get(stream_name).and_then(Stream::publisher) else {
            return;
        };
        if let Some(local) = self.local_sources.get_mut(&publisher) {
            local.keyframe_requested = true;
            self.stats.keyframe_requests_sent += 1;
            return;
        }
        let Some(session) = self.sessions.get_mut(&publisher) else {
            return;
        };
        let Some(media_ssrc) = session.video_ssrc() else {
            return;
        };
        let pli = PictureLossIndication {
            sender_ssrc: session.feedback_ssrc,
            media_ssrc,
        };
        if let Ok(raw) = pli.marshal() {
            self.stats.keyframe_requests_sent += 1;
            send_rtcp(session, &raw, &mut self.transmits);
        }
    }
}

/// Where a forwarded packet comes from, in time.
pub(super) struct Origin {
    /// When it arrived: the kernel's receive time for a publisher's datagram when the driver
    /// knows it, so the delay the fan-out measures includes the wait in the socket buffer.
    pub arrival: Instant,
    /// Its capture time (NTP 32.32) when the source knows it (a camera): viewers that
    /// negotiated abs-capture-time get it in a header extension.
    pub capture_ntp: Option<u64>,
    /// Shed it when it arrived longer ago than this ([`Stream::admit_live`]); zero: never.
    pub shed_after: Duration,
}

/// Records one packet of the stream's publisher `source` and queues it for its viewers
/// ([`Engine::send_unsent`]) unless it came too late. `None` when the packet is not the
/// stream's publisher's.
pub(super) fn forward(
    now: Instant,
    stream: &mut Stream,
    source: SessionId,
    track_index: usize,
    header: &RtpHeader,
    plain: &Bytes,
    origin: Origin,
) -> Option<Forwarded> {
    if stream.publisher() != Some(source) {
        return None;
    }
    let payload = plain.slice(header.payload_offset..header.payload_end);
    let outcome = stream.ingest(
        now,
        track_index,
        header.sequence,
        header.timestamp,
        header.marker,
        payload.clone(),
    );
    if !stream.readers.is_empty() {
        stream.offer_to_readers(&ReaderPacket {
            track: track_index,
            epoch: stream.epoch(),
            sequence: header.sequence,
            timestamp: header.timestamp,
            marker: header.marker,
            keyframe_start: outcome.keyframe_start,
            arrival: now,
            payload: payload.clone(),
        });
    }
    let waited = now.saturating_duration_since(origin.arrival);
    let resplice = match stream.admit_live(
        track_index,
        outcome.keyframe_start,
        waited,
        origin.shed_after,
    ) {
        Admission::Send { resplice } => resplice,
        Admission::Shed { began } => {
            // Asked on every shed packet; the stream's rate limit decides when one goes out.
            let ask_keyframe = stream.request_keyframe(now);
            return Some(Forwarded::Shed {
                began,
                waited,
                ask_keyframe,
            });
        }
    };
    let packet = StoredPacket {
        epoch: stream.epoch(),
        sequence: header.sequence,
        timestamp: header.timestamp,
        marker: header.marker,
        payload,
    };
    stream.unsent.push(UnsentPacket {
        track_index,
        packet,
        keyframe_start: outcome.keyframe_start,
        capture_ntp: origin.capture_ntp,
        arrival: origin.arrival,
        resplice,
    });
    Some(Forwarded::Queued(Accepted {
        viewers: stream.viewers.len(),
        video_marker: stream
            .tracks
            .get(track_index)
            .and_then(|t| t.video_codec.as_ref().map(|_| header.marker)),
    }))
}

/// What [`forward`] did with a publisher's packet.
pub(super) enum Forwarded {
    /// Queued for the viewers.
    Queued(Accepted),
    /// Recorded (history, keyframe cache, readers) but not sent to the viewers: it had waited
    /// `waited` in the server. `began`: its track just started catching up. `ask_keyframe`: a
    /// keyframe request to the source is due now (the stream's rate limit allows one).
    Shed {
        began: bool,
        waited: Duration,
        ask_keyframe: bool,
    },
}

/// A packet [`forward`] queued for its stream's viewers.
pub(super) struct Accepted {
    /// The datagrams it will make.
    pub viewers: usize,
    /// For a video packet, whether it ends its frame.
    pub video_marker: Option<bool>,
}

/// Distinct frames (timestamps) in a keyframe cache.
fn cache_frame_count(cache: &[StoredPacket]) -> u32 {
    let mut count = 0;
    let mut previous = None;
    for p in cache {
        if previous != Some(p.timestamp) {
            previous = Some(p.timestamp);
            count += 1;
        }
    }
    count
}

/// Protects and queues an RTCP compound packet to the session's peer.
pub(super) fn send_rtcp(session: &mut Session, raw: &[u8], transmits: &mut TransmitQueue) {
    let (Some(to), Some(srtp)) = (session.ice.selected, session.srtp_out.as_mut()) else {
        return;
    };
    match srtp.encrypt_rtcp(raw) {
        Ok(data) => transmits.push(to, &data),
        Err(_) => session.stats.srtp_errors += 1,
    }
}

/// Queues whatever the session's DTLS association wants to send, on the selected path.
pub(super) fn flush_dtls(session: &mut Session, transmits: &mut TransmitQueue) {
    while let Some(data) = session.dtls.poll_transmit() {
        if let Some(to) = session.ice.selected {
            transmits.push(to, &data);
        }
    }
}
