//! RFC 6184 H.264 depacketizer (packetization-mode 1: single NAL units, STAP-A, FU-A).
//!
//! Push RTP payloads in arrival order; an access unit comes out when its last packet (marker bit,
//! or a new timestamp) arrives. A missing packet or a malformed one drops the access unit with an
//! error naming the packet and why; after a loss the depacketizer skips until the next keyframe,
//! since frames referring to a lost one cannot be decoded ([`PictureAssembler`]).

use bytes::Bytes;

use super::depacketize::{DepacketizeError, MAX_ACCESS_UNIT_BYTES, PictureAssembler};
use crate::media::avcc::{AvccUnit, NalCodec};
use crate::media::h264::AccessUnit;
use crate::media::h264::nal_type::{FU_A, STAP_A};

/// Assembles straight into AVCC form ([`AvccUnit`], in reused buffers, see
/// [`PictureAssembler`]): [`H264Depacketizer::push_avcc`] lends the completed picture,
/// [`H264Depacketizer::push`] copies it out as an [`AccessUnit`].
#[derive(Debug)]
pub struct H264Depacketizer {
    assembler: PictureAssembler,
}

impl Default for H264Depacketizer {
    fn default() -> Self {
        Self::new()
    }
}

impl H264Depacketizer {
    pub fn new() -> Self {
        Self {
            assembler: PictureAssembler::new(NalCodec::H264),
        }
    }

    /// Pushes one packet's payload. Returns the access unit it completed, if any.
    pub fn push(
        &mut self,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        payload: &Bytes,
    ) -> Result<Option<AccessUnit>, DepacketizeError> {
        Ok(self
            .push_avcc(sequence, timestamp, marker, payload)?
            .map(AvccUnit::to_access_unit))
    }

    /// Pushes one packet's payload. Returns the picture it completed, if any, in AVCC form;
    /// it stays valid until the next push.
    pub fn push_avcc(
        &mut self,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Option<&AvccUnit>, DepacketizeError> {
        self.assembler.push(sequence, timestamp, marker, |unit| {
            add_payload(unit, sequence, payload)
        })
    }
}

fn add_payload(unit: &mut AvccUnit, sequence: u16, payload: &[u8]) -> Result<(), DepacketizeError> {
    let header = *payload
        .first()
        .ok_or(DepacketizeError::Empty { sequence })?;
    match header & 0x1f {
        1..=23 => add_nal(unit, sequence, payload),
        STAP_A => {
            let mut rest = &payload[1..];
            while !rest.is_empty() {
                if rest.len() < 2 {
                    return Err(DepacketizeError::BadStapA { sequence });
                }
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                if size == 0 || rest.len() < 2 + size {
                    return Err(DepacketizeError::BadStapA { sequence });
                }
                add_nal(unit, sequence, &rest[2..2 + size])?;
                rest = &rest[2 + size..];
            }
            Ok(())
        }
        FU_A => {
            let fu = *payload
                .get(1)
                .ok_or(DepacketizeError::BadFuA { sequence })?;
            let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
            let body = &payload[2..];
            if unit.len() + body.len() + 5 > MAX_ACCESS_UNIT_BYTES {
                return Err(DepacketizeError::TooLarge { sequence });
            }
            if start {
                unit.begin_nal(&[(header & 0xe0) | (fu & 0x1f)]);
            }
            if !unit.extend_nal(body) {
                return Err(DepacketizeError::FuWithoutStart { sequence });
            }
            if end {
                unit.end_nal();
            }
            Ok(())
        }
        nal_type => Err(DepacketizeError::Unsupported { sequence, nal_type }),
    }
}

fn add_nal(unit: &mut AvccUnit, sequence: u16, nal: &[u8]) -> Result<(), DepacketizeError> {
    if unit.len() + nal.len() + 4 > MAX_ACCESS_UNIT_BYTES {
        return Err(DepacketizeError::TooLarge { sequence });
    }
    unit.push_nal(nal);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::avcc::Picture;
    use crate::testing::harness::H264Source;

    fn payloads(source: &mut H264Source) -> Vec<(u16, u32, bool, Bytes)> {
        source
            .next_frame()
            .into_iter()
            .map(|p| {
                let h = crate::rtp::packet::RtpHeader::parse(&p).unwrap();
                (
                    h.sequence,
                    h.timestamp,
                    h.marker,
                    Bytes::copy_from_slice(&p[h.payload_offset..h.payload_end]),
                )
            })
            .collect()
    }

    #[test]
    fn reassembles_keyframes_and_deltas() {
        let mut source = H264Source::new(1, 96);
        let mut d = H264Depacketizer::new();
        let mut units = Vec::new();
        for _ in 0..3 {
            for (seq, ts, marker, payload) in payloads(&mut source) {
                if let Some(unit) = d.push(seq, ts, marker, &payload).unwrap() {
                    units.push(unit);
                }
            }
        }
        assert_eq!(units.len(), 3);
        let key = &units[0];
        assert!(key.keyframe);
        let (sps, pps) = key.parameter_sets();
        assert!(sps.is_some() && pps.is_some());
        assert_eq!(key.nals.len(), 3, "SPS, PPS, IDR");
        assert_eq!(
            key.nals[2].len(),
            36_000 + 1,
            "fragments rejoined with the NAL header"
        );
        assert_eq!(key.nals[2][0] & 0x1f, 5);
        assert!(!units[1].keyframe);
        assert_eq!(units[1].timestamp, 3000);
        let avcc = units[1].to_avcc();
        assert_eq!(&avcc[..4], &(9_200u32 + 1).to_be_bytes());

        // The same packets lent as AVCC pictures: the same bytes, the buffers reused.
        let mut source = H264Source::new(1, 96);
        let mut d = H264Depacketizer::new();
        let mut lent = Vec::new();
        for _ in 0..3 {
            for (seq, ts, marker, payload) in payloads(&mut source) {
                if let Some(unit) = d.push_avcc(seq, ts, marker, &payload).unwrap() {
                    lent.push((unit.timestamp, unit.is_keyframe(), unit.data().to_vec()));
                }
            }
        }
        let expected: Vec<_> = units
            .iter()
            .map(|u| (u.timestamp, u.keyframe, u.to_avcc()))
            .collect();
        assert_eq!(lent, expected);
    }

    #[test]
    fn a_loss_skips_to_the_next_keyframe() {
        let mut source = H264Source::new(1, 96);
        source.gop = 3;
        let mut d = H264Depacketizer::new();
        let mut units = Vec::new();
        let mut errors = Vec::new();
        for frame in 0..6 {
            for (i, (seq, ts, marker, payload)) in payloads(&mut source).into_iter().enumerate() {
                if frame == 1 && i == 2 {
                    continue; // lose a packet of the first delta frame
                }
                match d.push(seq, ts, marker, &payload) {
                    Ok(Some(unit)) => units.push(unit.timestamp / 3000),
                    Ok(None) => {}
                    Err(e) => errors.push(e),
                }
            }
        }
        assert_eq!(units, [0, 3, 4, 5], "frames 1 and 2 depend on the loss");
        assert!(matches!(
            errors[..],
            [DepacketizeError::Loss { missing: 1, .. }]
        ));
    }

    #[test]
    fn malformed_packets_are_errors_not_panics() {
        let mut d = H264Depacketizer::new();
        let cases: [&[u8]; 5] = [&[], &[0x78, 0, 9, 1], &[0x7c], &[0x7c, 0x05, 1], &[0x1e, 1]];
        for (i, case) in cases.iter().enumerate() {
            let seq = i as u16 * 10; // gaps on purpose: each is its own loss context
            assert!(
                d.push(seq, 0, true, &Bytes::copy_from_slice(case)).is_err(),
                "{case:?}"
            );
        }
    }
}
