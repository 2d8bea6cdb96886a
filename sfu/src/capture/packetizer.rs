//! H.264 access units to RTP packets, RFC 6184 packetization mode 1: a NAL unit that fits goes
//! alone, a bigger one in FU-A fragments, and SPS + PPS travel together in one STAP-A in front
//! of every IDR (so a viewer can start decoding at any keyframe).

use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use rand::RngExt;

use crate::media::h264::{AccessUnit, nal_type, nal_unit_type};
use crate::rtp::packet::write_fixed_header;

/// RTP payload bytes per packet with no configuration: with the 12-byte RTP header, SRTP's tag
/// and UDP/IP this stays well under a 1500-byte path MTU, and under the usual tunnel MTUs.
pub const DEFAULT_MTU_PAYLOAD: usize = 1200;
/// The video clock of H.264 over RTP.
pub const CLOCK_RATE: u64 = 90_000;
const RTP_HEADER: usize = 12;

/// Packetizes one H.264 stream.
pub struct H264Packetizer {
    ssrc: u32,
    payload_type: u8,
    sequence: u16,
    mtu_payload: usize,
    timestamp_base: u32,
    /// The capture instant of the first frame: RTP time counts from it.
    epoch: Option<Instant>,
    /// The latest parameter sets seen, resent before IDRs that come without them.
    sps: Option<Bytes>,
    pps: Option<Bytes>,
}

impl H264Packetizer {
    /// A packetizer with random SSRC, first sequence number and timestamp base (RFC 3550 5.1).
    /// `mtu_payload` below 16 bytes is raised to 16 so fragments always carry data.
    pub fn new(payload_type: u8, mtu_payload: usize) -> Self {
        let mut rng = rand::rng();
        Self {
            ssrc: rng.random(),
            payload_type: payload_type & 0x7f,
            sequence: rng.random(),
            mtu_payload: mtu_payload.max(16),
            timestamp_base: rng.random(),
            epoch: None,
            sps: None,
            pps: None,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The RTP timestamp of a frame captured at `at` (90 kHz since the first frame).
    pub fn timestamp(&mut self, at: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(at);
        let ticks = at.saturating_duration_since(epoch).as_micros() as u64 * CLOCK_RATE / 1_000_000;
        self.timestamp_base.wrapping_add(ticks as u32)
    }

    /// The RTP packets of one access unit captured at `at`, the marker bit on the last one.
    /// Access unit delimiters and filler data are left out; an empty unit gives no packets.
    pub fn packetize(&mut self, unit: &AccessUnit, at: Instant) -> Vec<Bytes> {
        let timestamp = self.timestamp(at);
        let mut payloads: Vec<Bytes> = Vec::new();
        let mut sps = None;
        let mut pps = None;
        for nal in &unit.nals {
            match nal_unit_type(nal) {
                nal_type::SPS => sps = Some(nal.clone()),
                nal_type::PPS => pps = Some(nal.clone()),
                _ => {}
            }
        }
        if sps.is_some() {
            self.sps = sps;
        }
        if pps.is_some() {
            self.pps = pps;
        }
        if unit.keyframe {
            self.push_parameter_sets(&mut payloads);
        }
        for nal in &unit.nals {
            match nal_unit_type(nal) {
                // Sent above, together, in front of the IDR.
                nal_type::SPS | nal_type::PPS if unit.keyframe => {}
                nal_type::AUD | nal_type::FILLER => {}
                _ if nal.is_empty() => {}
                _ => self.push_nal(&mut payloads, nal),
            }
        }
        let count = payloads.len();
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let mut packet = BytesMut::with_capacity(RTP_HEADER + payload.len());
                let mut header = [0u8; RTP_HEADER];
                write_fixed_header(
                    &mut header,
                    i + 1 == count,
                    self.payload_type,
                    self.sequence,
                    timestamp,
                    self.ssrc,
                );
                self.sequence = self.sequence.wrapping_add(1);
                packet.put_slice(&header);
                packet.put_slice(&payload);
                packet.freeze()
            })
            .collect()
    }

    /// SPS and PPS as one STAP-A, or one by one when they do not fit together.
    fn push_parameter_sets(&self, payloads: &mut Vec<Bytes>) {
        let sets: Vec<&Bytes> = [&self.sps, &self.pps].into_iter().flatten().collect();
        let stap_len = 1 + sets.iter().map(|s| 2 + s.len()).sum::<usize>();
        if sets.len() < 2 || stap_len > self.mtu_payload || sets.iter().any(|s| s.len() > 0xffff) {
            for set in sets {
                self.push_nal(payloads, set);
            }
            return;
        }
        let nri = sets.iter().map(|s| s[0] & 0x60).max().unwrap_or(0x60);
        let mut stap = BytesMut::with_capacity(stap_len);
        stap.put_u8(nri | nal_type::STAP_A);
        for set in sets {
            stap.put_u16(set.len() as u16);
            stap.put_slice(set);
        }
        payloads.push(stap.freeze());
    }

    /// One NAL unit as it is, or as FU-A fragments when it is bigger than the payload size.
    fn push_nal(&self, payloads: &mut Vec<Bytes>, nal: &Bytes) {
        if nal.len() <= self.mtu_payload {
            payloads.push(nal.clone());
            return;
        }
        let indicator = (nal[0] & 0xe0) | nal_type::FU_A;
        let kind = nal[0] & 0x1f;
        let body = &nal[1..];
        let chunk = self.mtu_payload - 2;
        let fragments = body.len().div_ceil(chunk);
        for (i, piece) in body.chunks(chunk).enumerate() {
            let start = if i == 0 { 0x80 } else { 0 };
            let end = if i + 1 == fragments { 0x40 } else { 0 };
            let mut fu = BytesMut::with_capacity(2 + piece.len());
            fu.put_u8(indicator);
            fu.put_u8(start | end | kind);
            fu.put_slice(piece);
            payloads.push(fu.freeze());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A minimal RFC 6184 depacketizer: the NAL units of a list of packets, and whether the
    /// marker bit sits on the last packet only.
    fn depacketize(packets: &[Bytes]) -> (Vec<Vec<u8>>, bool) {
        let mut nals = Vec::new();
        let mut fu: Option<Vec<u8>> = None;
        let mut marker_ok = true;
        for (i, p) in packets.iter().enumerate() {
            let marker = p[1] & 0x80 != 0;
            marker_ok &= marker == (i + 1 == packets.len());
            let payload = &p[RTP_HEADER..];
            match payload[0] & 0x1f {
                nal_type::STAP_A => {
                    let mut rest = &payload[1..];
                    while rest.len() >= 2 {
                        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                        nals.push(rest[2..2 + len].to_vec());
                        rest = &rest[2 + len..];
                    }
                }
                nal_type::FU_A => {
                    let header = payload[1];
                    if header & 0x80 != 0 {
                        fu = Some(vec![(payload[0] & 0xe0) | (header & 0x1f)]);
                    }
                    let buf = fu.as_mut().expect("FU-A start first");
                    buf.extend_from_slice(&payload[2..]);
                    if header & 0x40 != 0 {
                        nals.push(fu.take().expect("open FU-A"));
                    }
                }
                _ => nals.push(payload.to_vec()),
            }
        }
        assert!(fu.is_none(), "unfinished FU-A");
        (nals, marker_ok)
    }

    fn nal(header: u8, len: usize) -> Bytes {
        let mut v = vec![header];
        v.extend((1..len).map(|i| (i * 7 % 251) as u8));
        Bytes::from(v)
    }

    #[test]
    fn round_trip_small_and_large_units() {
        let mut p = H264Packetizer::new(96, DEFAULT_MTU_PAYLOAD);
        let (sps, pps) = (nal(0x67, 12), nal(0x68, 4));
        let idr = nal(0x65, 50_000);
        let sei = nal(0x06, 20);
        let unit = AccessUnit {
            timestamp: 0,
            nals: vec![
                nal(0x09, 2),
                sps.clone(),
                pps.clone(),
                sei.clone(),
                idr.clone(),
            ],
            keyframe: true,
        };
        let t0 = Instant::now();
        let packets = p.packetize(&unit, t0);
        assert!(
            packets
                .iter()
                .all(|x| x.len() <= RTP_HEADER + DEFAULT_MTU_PAYLOAD)
        );
        assert_eq!(
            packets[0][RTP_HEADER] & 0x1f,
            nal_type::STAP_A,
            "SPS+PPS first"
        );
        let (nals, marker_ok) = depacketize(&packets);
        assert!(marker_ok);
        assert_eq!(
            nals,
            [&sps[..], &pps[..], &sei[..], &idr[..]],
            "AUD dropped"
        );

        let delta = nal(0x41, 300);
        let unit = AccessUnit {
            timestamp: 0,
            nals: vec![delta.clone()],
            keyframe: false,
        };
        let later = p.packetize(&unit, t0 + Duration::from_millis(100));
        assert_eq!(later.len(), 1);
        let (nals, marker_ok) = depacketize(&later);
        assert!(marker_ok);
        assert_eq!(nals, [&delta[..]]);
        let seq = |p: &Bytes| u16::from_be_bytes([p[2], p[3]]);
        let ts = |p: &Bytes| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        assert_eq!(
            seq(&later[0]),
            seq(&packets[packets.len() - 1]).wrapping_add(1)
        );
        assert_eq!(ts(&later[0]).wrapping_sub(ts(&packets[0])), 9000, "90 kHz");
        assert!(packets.iter().all(|x| ts(x) == ts(&packets[0])));
    }

    #[test]
    fn idr_without_parameter_sets_gets_the_last_ones() {
        let mut p = H264Packetizer::new(96, 100);
        let now = Instant::now();
        let (sps, pps) = (nal(0x67, 12), nal(0x68, 4));
        p.packetize(
            &AccessUnit {
                timestamp: 0,
                nals: vec![sps.clone(), pps.clone(), nal(0x65, 10)],
                keyframe: true,
            },
            now,
        );
        let idr = nal(0x65, 1000);
        let packets = p.packetize(
            &AccessUnit {
                timestamp: 0,
                nals: vec![idr.clone()],
                keyframe: true,
            },
            now,
        );
        assert!(packets.iter().all(|x| x.len() <= RTP_HEADER + 100));
        assert_eq!(packets[0][RTP_HEADER] & 0x1f, nal_type::STAP_A);
        assert_eq!(packets.len(), 1 + 1000usize.div_ceil(98));
        let (nals, marker_ok) = depacketize(&packets);
        assert!(marker_ok);
        assert_eq!(nals, [&sps[..], &pps[..], &idr[..]]);
    }

    #[test]
    fn parameter_sets_too_big_for_one_packet_go_alone() {
        let mut p = H264Packetizer::new(96, 32);
        let (sps, pps) = (nal(0x67, 25), nal(0x68, 10));
        let packets = p.packetize(
            &AccessUnit {
                timestamp: 0,
                nals: vec![sps.clone(), pps.clone(), nal(0x65, 5)],
                keyframe: true,
            },
            Instant::now(),
        );
        let (nals, marker_ok) = depacketize(&packets);
        assert!(marker_ok);
        assert_eq!(nals[..2], [&sps[..], &pps[..]]);
        assert!(packets.iter().all(|x| x.len() <= RTP_HEADER + 32));
        let empty = p.packetize(&AccessUnit::default(), Instant::now());
        assert!(empty.is_empty());
    }
}
