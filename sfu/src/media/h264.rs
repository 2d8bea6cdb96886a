//! The few H.264 bitstream facts every layer shares: NAL unit types, access units, and Annex B
//! splitting. Encoders produce [`AccessUnit`]s, the RTP depacketizer rebuilds them (or
//! assembles [`super::avcc::AvccUnit`]s), the packetizer and the fMP4 muxer consume them.

use std::ops::Range;

use bytes::Bytes;

use super::avcc::{NalCodec, Picture};

/// NAL unit types this crate looks at (H.264 table 7-1; 24 and 28 are RFC 6184's aggregates).
pub mod nal_type {
    pub const SLICE: u8 = 1;
    pub const IDR: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
    pub const FILLER: u8 = 12;
    pub const STAP_A: u8 = 24;
    pub const FU_A: u8 = 28;
}

/// The type of a NAL unit (0 for an empty one).
pub fn nal_unit_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// One picture's NAL units, without start codes, in decoding order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessUnit {
    /// Media time at 90 kHz: the RTP timestamp when the unit was depacketized, the capture time
    /// when an encoder made it.
    pub timestamp: u32,
    pub nals: Vec<Bytes>,
    /// Contains an IDR slice.
    pub keyframe: bool,
}

impl AccessUnit {
    /// The SPS and PPS carried in this access unit, if any.
    pub fn parameter_sets(&self) -> (Option<&Bytes>, Option<&Bytes>) {
        let find = |t: u8| self.nals.iter().find(|n| nal_unit_type(n) == t);
        (find(nal_type::SPS), find(nal_type::PPS))
    }

    /// An encoder's Annex B output as one access unit: its NAL units are zero-copy slices of
    /// `data`, and it is a keyframe when one of them is an IDR slice.
    pub fn from_annex_b(data: &Bytes, timestamp: u32) -> Self {
        let nals: Vec<Bytes> = split_annex_b(data)
            .into_iter()
            .map(|r| data.slice(r))
            .collect();
        let keyframe = nals.iter().any(|n| nal_unit_type(n) == nal_type::IDR);
        Self {
            timestamp,
            nals,
            keyframe,
        }
    }

    /// The NAL units in AVCC form (4-byte big-endian lengths), as MP4 samples store them.
    pub fn to_avcc(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_avcc(&mut out);
        out
    }
}

impl Picture for AccessUnit {
    fn codec(&self) -> NalCodec {
        NalCodec::H264
    }

    fn is_keyframe(&self) -> bool {
        self.keyframe
    }

    fn sps_pps(&self) -> (Option<&[u8]>, Option<&[u8]>) {
        let (sps, pps) = self.parameter_sets();
        (sps.map(|b| &b[..]), pps.map(|b| &b[..]))
    }

    fn vps(&self) -> Option<&[u8]> {
        None
    }

    fn write_avcc(&self, out: &mut Vec<u8>) {
        out.reserve(self.nals.iter().map(|n| n.len() + 4).sum());
        for nal in &self.nals {
            out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            out.extend_from_slice(nal);
        }
    }
}

/// Splits an Annex B byte stream into the ranges of its NAL units (start codes `00 00 01` or
/// `00 00 00 01` removed; trailing zero bytes belong to the next start code). Bytes before the
/// first start code are not a NAL unit and are skipped.
pub fn split_annex_b(data: &[u8]) -> Vec<Range<usize>> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (n, &start) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(data.len(), |next| next - 3);
        while end > start && data[end - 1] == 0 {
            end -= 1;
        }
        if end > start {
            out.push(start..end);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_splitting() {
        let data = [
            0xff, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 0, 0, 4, 0,
        ];
        let nals: Vec<&[u8]> = split_annex_b(&data).into_iter().map(|r| &data[r]).collect();
        assert_eq!(
            nals,
            [&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 0, 0, 4]],
            "leading garbage skipped, trailing zeros dropped, inner 00 00 kept"
        );
        assert!(split_annex_b(&[]).is_empty());
        assert!(split_annex_b(&[0, 0, 1]).is_empty());
        assert!(split_annex_b(&[0, 0, 1, 0, 0, 1, 0]).is_empty());
    }

    #[test]
    fn annex_b_output_becomes_a_keyframe_unit() {
        let data = Bytes::from_static(&[
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 4, 5,
        ]);
        let unit = AccessUnit::from_annex_b(&data, 90);
        assert_eq!(unit.nals.len(), 3);
        assert!(unit.keyframe);
        assert_eq!(unit.timestamp, 90);
        let (sps, pps) = unit.parameter_sets();
        assert_eq!(sps.map(|b| &b[..]), Some(&[0x67, 1, 2][..]));
        assert_eq!(pps.map(|b| &b[..]), Some(&[0x68, 3][..]));
        let delta = AccessUnit::from_annex_b(&Bytes::from_static(&[0, 0, 1, 0x41, 9]), 0);
        assert!(!delta.keyframe);
    }
}
