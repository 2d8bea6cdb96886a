//! The few H.264 bitstream facts every layer shares: NAL unit types, access units, and Annex B
//! splitting. Encoders produce [`AccessUnit`]s, the RTP depacketizer rebuilds them, the packetizer
//! and the fMP4 muxer consume them.

use std::ops::Range;

use bytes::Bytes;

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

/// What the fMP4 writers need of a picture, whether it comes as separate NAL units
/// ([`AccessUnit`], from an encoder) or already in AVCC form ([`AvccUnit`], from the RTP
/// depacketizer, which assembles into a reused buffer).
pub trait H264Picture {
    fn is_keyframe(&self) -> bool;
    /// The first SPS and PPS NAL units carried, if any.
    fn sps_pps(&self) -> (Option<&[u8]>, Option<&[u8]>);
    /// Appends the NAL units in AVCC form (4-byte big-endian lengths).
    fn write_avcc(&self, out: &mut Vec<u8>);
}

impl H264Picture for AccessUnit {
    fn is_keyframe(&self) -> bool {
        self.keyframe
    }

    fn sps_pps(&self) -> (Option<&[u8]>, Option<&[u8]>) {
        let (sps, pps) = self.parameter_sets();
        (sps.map(|b| &b[..]), pps.map(|b| &b[..]))
    }

    fn write_avcc(&self, out: &mut Vec<u8>) {
        out.reserve(self.nals.iter().map(|n| n.len() + 4).sum());
        for nal in &self.nals {
            out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            out.extend_from_slice(nal);
        }
    }
}

/// One picture in AVCC form (each NAL unit behind its 4-byte big-endian length), as an MP4
/// sample stores it. The buffer is meant to be reused: [`AvccUnit::clear`] keeps its capacity,
/// so assembling picture after picture allocates nothing once it has grown to the largest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AvccUnit {
    /// Media time at 90 kHz (the RTP timestamp).
    pub timestamp: u32,
    data: Vec<u8>,
    keyframe: bool,
    sps: Option<Range<usize>>,
    pps: Option<Range<usize>>,
    /// Where an unfinished NAL unit (its length placeholder) starts.
    open_nal: Option<usize>,
}

impl AvccUnit {
    /// The complete NAL units, in AVCC form.
    pub fn data(&self) -> &[u8] {
        match self.open_nal {
            Some(start) => &self.data[..start],
            None => &self.data,
        }
    }

    /// Bytes held, an unfinished NAL unit included.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data().is_empty()
    }

    /// Empties the unit, keeping the buffer.
    pub fn clear(&mut self) {
        self.data.clear();
        self.keyframe = false;
        self.sps = None;
        self.pps = None;
        self.open_nal = None;
    }

    /// Appends one whole NAL unit (an unfinished one is dropped first).
    pub fn push_nal(&mut self, nal: &[u8]) {
        self.drop_open_nal();
        let start = self.data.len();
        self.data
            .extend_from_slice(&(nal.len() as u32).to_be_bytes());
        self.data.extend_from_slice(nal);
        self.note_nal(start);
    }

    /// Starts a NAL unit that arrives in pieces (FU-A), with its header byte.
    pub fn begin_nal(&mut self, header: u8) {
        self.drop_open_nal();
        self.open_nal = Some(self.data.len());
        self.data.extend_from_slice(&[0, 0, 0, 0, header]);
    }

    /// Appends to the NAL unit begun with [`AvccUnit::begin_nal`]; `false` when none is open.
    pub fn extend_nal(&mut self, body: &[u8]) -> bool {
        if self.open_nal.is_none() {
            return false;
        }
        self.data.extend_from_slice(body);
        true
    }

    /// Completes the open NAL unit (its length written in).
    pub fn end_nal(&mut self) {
        if let Some(start) = self.open_nal.take() {
            let len = (self.data.len() - start - 4) as u32;
            self.data[start..start + 4].copy_from_slice(&len.to_be_bytes());
            self.note_nal(start);
        }
    }

    pub fn has_open_nal(&self) -> bool {
        self.open_nal.is_some()
    }

    /// Forgets an unfinished NAL unit (its end was lost or a new one starts).
    pub fn drop_open_nal(&mut self) {
        if let Some(start) = self.open_nal.take() {
            self.data.truncate(start);
        }
    }

    fn note_nal(&mut self, start: usize) {
        let nal = start + 4..self.data.len();
        match nal_unit_type(&self.data[nal.clone()]) {
            nal_type::IDR => self.keyframe = true,
            nal_type::SPS if self.sps.is_none() => self.sps = Some(nal),
            nal_type::PPS if self.pps.is_none() => self.pps = Some(nal),
            _ => {}
        }
    }

    /// The complete NAL units' ranges in [`AvccUnit::data`] (without their length prefixes).
    pub fn nal_ranges(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        let data = self.data();
        let mut at = 0;
        std::iter::from_fn(move || {
            let prefix = data.get(at..at + 4)?;
            let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
            let range = at + 4..at + 4 + len;
            at = range.end;
            Some(range)
        })
    }

    /// The same picture as separate NAL units (one copy of the data).
    pub fn to_access_unit(&self) -> AccessUnit {
        let data = Bytes::copy_from_slice(self.data());
        AccessUnit {
            timestamp: self.timestamp,
            nals: self.nal_ranges().map(|r| data.slice(r)).collect(),
            keyframe: self.keyframe,
        }
    }
}

impl H264Picture for AvccUnit {
    fn is_keyframe(&self) -> bool {
        self.keyframe
    }

    fn sps_pps(&self) -> (Option<&[u8]>, Option<&[u8]>) {
        let get = |r: &Option<Range<usize>>| r.clone().map(|r| &self.data[r]);
        (get(&self.sps), get(&self.pps))
    }

    fn write_avcc(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.data());
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

    #[test]
    fn avcc_unit_assembles_whole_and_fragmented_nal_units() {
        let mut unit = AvccUnit::default();
        unit.push_nal(&[0x67, 1, 2]);
        unit.push_nal(&[0x68, 3]);
        unit.begin_nal(0x65);
        assert!(unit.extend_nal(&[4, 5]));
        unit.end_nal();
        unit.begin_nal(0x41);
        unit.extend_nal(&[9, 9, 9]);
        assert_eq!(
            unit.data().len(),
            7 + 6 + 7,
            "the unfinished NAL unit is not data"
        );
        unit.drop_open_nal();
        assert!(unit.is_keyframe());
        assert_eq!(
            unit.sps_pps(),
            (Some(&[0x67, 1, 2][..]), Some(&[0x68, 3][..]))
        );
        let nals = unit.to_access_unit();
        assert_eq!(nals.nals.len(), 3);
        assert_eq!(&nals.nals[2][..], &[0x65, 4, 5]);
        assert_eq!(
            nals.to_avcc(),
            unit.data(),
            "both forms write the same AVCC"
        );
        let capacity = unit.data.capacity();
        unit.clear();
        assert!(unit.is_empty() && !unit.is_keyframe() && unit.sps_pps() == (None, None));
        assert!(!unit.extend_nal(&[1]), "no NAL unit open after clear");
        assert_eq!(unit.data.capacity(), capacity, "clear keeps the buffer");
    }
}
