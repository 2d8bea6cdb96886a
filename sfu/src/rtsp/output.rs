//! What one client receives of one track: RTP packets rewritten into its own numbering (the
//! same [`Rewriter`] WHEP viewers use, so a publisher's takeover continues the timeline), and
//! RTCP Sender Reports that tie that numbering to the wall clock.

use std::net::SocketAddr;
use std::time::Instant;

use crate::hub::ReaderPacket;
use crate::media::WallClock;
use crate::rtp::rewrite::Rewriter;

/// Where a track's packets go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Interleaved in the RTSP connection (RFC 2326 section 10.12) on these channels.
    Interleaved { rtp: u8, rtcp: u8 },
    /// UDP datagrams to the client's address at these ports.
    Udp { rtp: SocketAddr, rtcp: SocketAddr },
}

/// One set-up track of a session.
#[derive(Debug, Clone)]
pub struct TrackOutput {
    pub delivery: Delivery,
    pub ssrc: u32,
    pub payload_type: u8,
    pub clock_rate: u32,
    pub is_video: bool,
    /// The first packet's sequence number and timestamp (PLAY's RTP-Info).
    pub initial_seq: u16,
    pub initial_ts: u32,
    rewriter: Rewriter,
    /// Video after a pause: nothing until a keyframe starts.
    pub waiting_keyframe: bool,
    pub packets_sent: u32,
    pub octets_sent: u32,
    /// The last packet sent: when it arrived and its client-space timestamp (the Sender
    /// Report's anchor).
    last: Option<(Instant, u32)>,
}

impl TrackOutput {
    pub fn new(
        delivery: Delivery,
        ssrc: u32,
        payload_type: u8,
        clock_rate: u32,
        is_video: bool,
        initial_seq: u16,
        initial_ts: u32,
    ) -> Self {
        Self {
            delivery,
            ssrc,
            payload_type,
            clock_rate,
            is_video,
            initial_seq,
            initial_ts,
            // The rewriter puts the first packet one tick after the value it starts from.
            rewriter: Rewriter::new(clock_rate.max(1), initial_seq, initial_ts.wrapping_sub(1)),
            waiting_keyframe: is_video,
            packets_sent: 0,
            octets_sent: 0,
            last: None,
        }
    }

    /// The RTP packet for `packet`, or `None` while video waits for a keyframe.
    pub fn rtp(&mut self, now: Instant, packet: &ReaderPacket) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(12 + packet.payload.len());
        self.write_rtp(now, packet, &mut out).then_some(out)
    }

    /// Appends the RTP packet for `packet` to `out` (a connection's output, without a copy of
    /// its own); false, and nothing written, while video waits for a keyframe.
    pub fn write_rtp(&mut self, now: Instant, packet: &ReaderPacket, out: &mut Vec<u8>) -> bool {
        if self.waiting_keyframe {
            if !packet.keyframe_start {
                return false;
            }
            self.waiting_keyframe = false;
            self.rewriter
                .splice(now, packet.epoch, packet.sequence, packet.timestamp);
        } else if self.rewriter.epoch() != Some(packet.epoch) {
            // The first packet, or a new publisher took the stream over: continue the numbering.
            self.rewriter
                .splice(now, packet.epoch, packet.sequence, packet.timestamp);
        }
        let (seq, ts) = self.rewriter.map(now, packet.sequence, packet.timestamp);
        out.reserve(12 + packet.payload.len());
        out.push(0x80);
        out.push(self.payload_type | if packet.marker { 0x80 } else { 0 });
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&packet.payload);
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(packet.payload.len() as u32);
        self.last = Some((packet.arrival, ts));
        true
    }

    /// A Sender Report with an SDES CNAME (one compound packet), once something was sent.
    ///
    /// With `source` (the publisher's latest Sender Report for this track: NTP time, RTP time,
    /// arrival, and the epoch it belongs to) the report is that mapping carried forward to
    /// `now` and into this client's numbering, as WHEP viewers get it, so players line audio up
    /// with video the way the publisher captured them. Without one (a camera, a publisher that
    /// sent none yet, or one of an earlier epoch) `now` on the wall clock is mapped to the RTP
    /// time extrapolated from the arrival of the last packet sent.
    pub fn sender_report(
        &self,
        now: Instant,
        clock: &WallClock,
        cname: &str,
        source: Option<SourceReport>,
    ) -> Option<Vec<u8>> {
        let (arrival, ts) = self.last?;
        let ticks = |since: Instant| {
            let elapsed = now.saturating_duration_since(since);
            (elapsed.as_micros() * u128::from(self.clock_rate) / 1_000_000) as u32
        };
        let (ntp, rtp) = match source.filter(|s| Some(s.epoch) == self.rewriter.epoch()) {
            Some(s) => {
                let elapsed = now.saturating_duration_since(s.at);
                let ntp_elapsed = (elapsed.as_secs() << 32)
                    + ((u64::from(elapsed.subsec_nanos()) << 32) / 1_000_000_000);
                (
                    s.ntp.wrapping_add(ntp_elapsed),
                    self.rewriter.out_timestamp(s.rtp.wrapping_add(ticks(s.at))),
                )
            }
            None => (clock.ntp_at(now), ts.wrapping_add(ticks(arrival))),
        };
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&[0x80, 200, 0, 6]);
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&ntp.to_be_bytes());
        out.extend_from_slice(&rtp.to_be_bytes());
        out.extend_from_slice(&self.packets_sent.to_be_bytes());
        out.extend_from_slice(&self.octets_sent.to_be_bytes());
        // SDES: one chunk, CNAME, end of list, padded to 32 bits.
        let name = &cname.as_bytes()[..cname.len().min(255)];
        let chunk_len = 4 + 2 + name.len() + 1;
        let padded = chunk_len.div_ceil(4) * 4;
        let words = (4 + padded) / 4 - 1;
        out.extend_from_slice(&[0x81, 202]);
        out.extend_from_slice(&(words as u16).to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.push(1);
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.resize(out.len() + padded - chunk_len + 1, 0);
        Some(out)
    }
}

/// A publisher's Sender Report for one track, as the hub keeps it
/// ([`crate::hub::Track::sender_report`]), with the stream's epoch it came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceReport {
    pub epoch: u32,
    pub ntp: u64,
    pub rtp: u32,
    pub at: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    fn packet(
        epoch: u32,
        sequence: u16,
        timestamp: u32,
        keyframe_start: bool,
        at: Instant,
    ) -> ReaderPacket {
        ReaderPacket {
            track: 0,
            epoch,
            sequence,
            timestamp,
            marker: true,
            keyframe_start,
            arrival: at,
            payload: Bytes::from_static(&[0x65, 1, 2]),
        }
    }

    fn seq_ts(rtp: &[u8]) -> (u16, u32) {
        (
            u16::from_be_bytes([rtp[2], rtp[3]]),
            u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]),
        )
    }

    #[test]
    fn starts_at_a_keyframe_with_the_announced_numbers_and_continues_over_a_takeover() {
        let t0 = Instant::now();
        let delivery = Delivery::Interleaved { rtp: 0, rtcp: 1 };
        let mut out = TrackOutput::new(delivery, 9, 96, 90_000, true, 1000, 50_000);
        assert!(out.rtp(t0, &packet(1, 7, 3000, false, t0)).is_none());
        let first = out.rtp(t0, &packet(1, 8, 6000, true, t0)).unwrap();
        assert_eq!(&first[..2], &[0x80, 0x80 | 96]);
        assert_eq!(seq_ts(&first), (1000, 50_000), "RTP-Info's values");
        let next = out.rtp(t0, &packet(1, 9, 9000, false, t0)).unwrap();
        assert_eq!(seq_ts(&next), (1001, 53_000));
        // A new publisher (epoch 2) with unrelated numbers, half a second later.
        let t1 = t0 + Duration::from_millis(500);
        let taken = out.rtp(t1, &packet(2, 60_000, 7, true, t1)).unwrap();
        assert_eq!(seq_ts(&taken), (1002, 53_000 + 45_000));
        assert_eq!(&taken[12..], &[0x65, 1, 2]);
    }

    #[test]
    fn sender_report_maps_now_to_the_extrapolated_rtp_time() {
        let clock = WallClock::now();
        let t0 = clock.instant;
        let mut out = TrackOutput::new(
            Delivery::Interleaved { rtp: 0, rtcp: 1 },
            5,
            97,
            48_000,
            false,
            1,
            100,
        );
        assert!(out.sender_report(t0, &clock, "r58", None).is_none());
        out.rtp(t0, &packet(1, 1, 0, false, t0)).unwrap();
        let now = t0 + Duration::from_millis(250);
        let sr = out.sender_report(now, &clock, "r58", None).unwrap();
        assert_eq!(sr.len() % 4, 0);
        assert_eq!(sr[1], 200);
        let ntp = u64::from_be_bytes(sr[8..16].try_into().unwrap());
        assert_eq!(ntp, clock.ntp_at(now));
        let rtp = u32::from_be_bytes(sr[16..20].try_into().unwrap());
        assert_eq!(rtp, 100 + 12_000);
        assert_eq!(
            u32::from_be_bytes(sr[20..24].try_into().unwrap()),
            1,
            "packets"
        );
        let sdes = &sr[28..];
        assert_eq!(sdes[1], 202);
        assert_eq!(
            usize::from(u16::from_be_bytes([sdes[2], sdes[3]]) + 1) * 4,
            sdes.len()
        );
    }
}
