//! Pictures in AVCC form: each NAL unit behind its 4-byte big-endian length, as MP4 samples of
//! both H.264 (`avc1`) and H.265 (`hvc1`) store them. [`AvccUnit`] is the reused buffer the RTP
//! depacketizers assemble into; [`Picture`] is what the fMP4 writers need of a picture, whether
//! it is an [`AvccUnit`] or an encoder's [`super::h264::AccessUnit`].

use std::ops::Range;

use super::h264::nal_type as h264_type;
use super::h265::nal_type as h265_type;

/// The codecs whose pictures are NAL units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NalCodec {
    #[default]
    H264,
    H265,
}

impl NalCodec {
    /// The type of a NAL unit of this codec (0 for an empty one).
    pub fn nal_unit_type(self, nal: &[u8]) -> u8 {
        match self {
            Self::H264 => super::h264::nal_unit_type(nal),
            Self::H265 => super::h265::nal_unit_type(nal),
        }
    }

    /// A NAL unit of this type is a parameter set (H.264 SPS/PPS, H.265 VPS/SPS/PPS).
    fn is_parameter_set(self, nal_type: u8) -> bool {
        match self {
            Self::H264 => matches!(nal_type, h264_type::SPS | h264_type::PPS),
            Self::H265 => matches!(nal_type, h265_type::VPS..=h265_type::PPS),
        }
    }
}

/// What the fMP4 writers need of a picture.
pub trait Picture {
    fn codec(&self) -> NalCodec;
    /// H.264: contains an IDR slice; H.265: an IRAP picture.
    fn is_keyframe(&self) -> bool;
    /// The first SPS and PPS NAL units carried, if any.
    fn sps_pps(&self) -> (Option<&[u8]>, Option<&[u8]>);
    /// The first VPS carried (H.265 only).
    fn vps(&self) -> Option<&[u8]>;
    /// Appends the picture as an MP4 sample: its NAL units in AVCC form. H.265 parameter sets
    /// are left out: `hvc1` keeps them in the sample entry only (ISO/IEC 14496-15 §8.4.1.1.2,
    /// `array_completeness` 1), and a new set starts a new init segment.
    fn write_avcc(&self, out: &mut Vec<u8>);
}

/// One picture in AVCC form (each NAL unit behind its 4-byte big-endian length), as an MP4
/// sample stores it. The buffer is meant to be reused: [`AvccUnit::clear`] keeps its capacity,
/// so assembling picture after picture allocates nothing once it has grown to the largest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AvccUnit {
    /// Media time at 90 kHz (the RTP timestamp).
    pub timestamp: u32,
    codec: NalCodec,
    data: Vec<u8>,
    keyframe: bool,
    /// Holds a slice (not only parameter sets or SEI).
    slice: bool,
    vps: Option<Range<usize>>,
    sps: Option<Range<usize>>,
    pps: Option<Range<usize>>,
    /// Where an unfinished NAL unit (its length placeholder) starts.
    open_nal: Option<usize>,
}

impl AvccUnit {
    /// An empty picture of `codec` (the default is H.264).
    pub fn new(codec: NalCodec) -> Self {
        Self {
            codec,
            ..Self::default()
        }
    }

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

    /// Holds a slice of the picture, not only parameter sets or SEI.
    pub fn has_slice(&self) -> bool {
        self.slice
    }

    /// Empties the unit, keeping the buffer.
    pub fn clear(&mut self) {
        self.data.clear();
        self.keyframe = false;
        self.slice = false;
        self.vps = None;
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

    /// Starts a NAL unit that arrives in pieces (FU-A, H.265 FU), with its header (one byte
    /// for H.264, two for H.265).
    pub fn begin_nal(&mut self, header: &[u8]) {
        self.drop_open_nal();
        self.open_nal = Some(self.data.len());
        self.data.extend_from_slice(&[0, 0, 0, 0]);
        self.data.extend_from_slice(header);
    }

    /// Appends to the NAL unit begun with [`AvccUnit::begin_nal`]; `false` when none is open.
    pub fn extend_nal(&mut self, body: &[u8]) -> bool {
        if self.open_nal.is_none() {
            return false;
        }
        self.data.extend_from_slice(body);
        true
    }

    /// Completes the open NAL unit (its length written in); the NAL unit, if one was open.
    pub fn end_nal(&mut self) -> Option<&[u8]> {
        let start = self.open_nal.take()?;
        let len = (self.data.len() - start - 4) as u32;
        self.data[start..start + 4].copy_from_slice(&len.to_be_bytes());
        self.note_nal(start);
        Some(&self.data[start + 4..])
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
        let nal_type = self.codec.nal_unit_type(&self.data[nal.clone()]);
        let slot = match self.codec {
            NalCodec::H264 => match nal_type {
                h264_type::SLICE..=h264_type::IDR => {
                    self.slice = true;
                    self.keyframe |= nal_type == h264_type::IDR;
                    None
                }
                h264_type::SPS => Some(&mut self.sps),
                h264_type::PPS => Some(&mut self.pps),
                _ => None,
            },
            NalCodec::H265 => match nal_type {
                t if h265_type::VCL.contains(&t) => {
                    self.slice = true;
                    self.keyframe |= h265_type::IRAP.contains(&t);
                    None
                }
                h265_type::VPS => Some(&mut self.vps),
                h265_type::SPS => Some(&mut self.sps),
                h265_type::PPS => Some(&mut self.pps),
                _ => None,
            },
        };
        if let Some(slot) = slot {
            slot.get_or_insert(nal);
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
    pub fn to_access_unit(&self) -> super::h264::AccessUnit {
        let data = bytes::Bytes::copy_from_slice(self.data());
        super::h264::AccessUnit {
            timestamp: self.timestamp,
            nals: self.nal_ranges().map(|r| data.slice(r)).collect(),
            keyframe: self.keyframe,
        }
    }
}

impl Picture for AvccUnit {
    fn codec(&self) -> NalCodec {
        self.codec
    }

    fn is_keyframe(&self) -> bool {
        self.keyframe
    }

    fn sps_pps(&self) -> (Option<&[u8]>, Option<&[u8]>) {
        let get = |r: &Option<Range<usize>>| r.clone().map(|r| &self.data[r]);
        (get(&self.sps), get(&self.pps))
    }

    fn vps(&self) -> Option<&[u8]> {
        self.vps.clone().map(|r| &self.data[r])
    }

    fn write_avcc(&self, out: &mut Vec<u8>) {
        let has_sets = self.vps.is_some() || self.sps.is_some() || self.pps.is_some();
        if self.codec == NalCodec::H264 || !has_sets {
            out.extend_from_slice(self.data());
            return;
        }
        for nal in self.nal_ranges() {
            let nal_type = self.codec.nal_unit_type(&self.data[nal.clone()]);
            if !self.codec.is_parameter_set(nal_type) {
                out.extend_from_slice(&self.data[nal.start - 4..nal.end]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avcc_unit_assembles_whole_and_fragmented_nal_units() {
        let mut unit = AvccUnit::default();
        unit.push_nal(&[0x67, 1, 2]);
        unit.push_nal(&[0x68, 3]);
        assert!(!unit.has_slice(), "parameter sets only");
        unit.begin_nal(&[0x65]);
        assert!(unit.extend_nal(&[4, 5]));
        assert_eq!(unit.end_nal(), Some(&[0x65, 4, 5][..]));
        assert_eq!(unit.end_nal(), None, "nothing open");
        unit.begin_nal(&[0x41]);
        unit.extend_nal(&[9, 9, 9]);
        assert_eq!(
            unit.data().len(),
            7 + 6 + 7,
            "the unfinished NAL unit is not data"
        );
        unit.drop_open_nal();
        assert!(unit.is_keyframe() && unit.has_slice());
        assert_eq!(
            unit.sps_pps(),
            (Some(&[0x67, 1, 2][..]), Some(&[0x68, 3][..]))
        );
        assert_eq!(unit.vps(), None);
        let nals = unit.to_access_unit();
        assert_eq!(nals.nals.len(), 3);
        assert_eq!(&nals.nals[2][..], &[0x65, 4, 5]);
        assert_eq!(
            nals.to_avcc(),
            unit.data(),
            "both forms write the same AVCC"
        );
        let mut sample = Vec::new();
        unit.write_avcc(&mut sample);
        assert_eq!(sample, unit.data(), "H.264 samples keep their SPS and PPS");
        let capacity = unit.data.capacity();
        unit.clear();
        assert!(unit.is_empty() && !unit.is_keyframe() && unit.sps_pps() == (None, None));
        assert!(!unit.extend_nal(&[1]), "no NAL unit open after clear");
        assert_eq!(unit.data.capacity(), capacity, "clear keeps the buffer");
    }

    #[test]
    fn h265_units_know_irap_pictures_and_leave_parameter_sets_out_of_samples() {
        // Two-byte headers: type << 1, then layer 0 and temporal id 0 (plus 1).
        let nal = |t: u8, body: &[u8]| [&[t << 1, 1][..], body].concat();
        let mut unit = AvccUnit::new(NalCodec::H265);
        unit.push_nal(&nal(35, &[0x50])); // access unit delimiter
        unit.push_nal(&nal(32, &[1]));
        unit.push_nal(&nal(33, &[2, 2]));
        unit.push_nal(&nal(34, &[3]));
        assert!(!unit.has_slice() && !unit.is_keyframe());
        unit.begin_nal(&[19 << 1, 1]); // IDR_W_RADL in pieces
        unit.extend_nal(&[7, 7]);
        unit.end_nal();
        assert!(unit.is_keyframe() && unit.has_slice());
        assert_eq!(unit.vps(), Some(&nal(32, &[1])[..]));
        assert_eq!(
            unit.sps_pps(),
            (Some(&nal(33, &[2, 2])[..]), Some(&nal(34, &[3])[..]))
        );
        let mut sample = Vec::new();
        unit.write_avcc(&mut sample);
        let expected = [
            &[0, 0, 0, 3][..],
            &nal(35, &[0x50]),
            &[0, 0, 0, 4],
            &nal(19, &[7, 7]),
        ]
        .concat();
        assert_eq!(sample, expected, "the delimiter and the slice only");

        // A CRA is a keyframe too; a trailing picture and an H.264 IDR's header are not.
        for (header, keyframe) in [
            ([21 << 1, 1], true),
            ([1 << 1, 1], false),
            ([0x65, 0x88], false),
        ] {
            unit.clear();
            unit.push_nal(&[header[0], header[1], 0]);
            assert_eq!(unit.is_keyframe(), keyframe, "{header:?}");
        }
        let mut plain = Vec::new();
        unit.write_avcc(&mut plain);
        assert_eq!(plain, unit.data(), "nothing to leave out");
    }
}
