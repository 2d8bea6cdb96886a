//! Annex B byte streams (start-code delimited NAL units, as encoders and `ffmpeg -f h264` write
//! them) split into NAL units and grouped into access units (ITU-T H.264 §7.4.1.2.3).

use bytes::Bytes;

use crate::media::h264::{AccessUnit, split_annex_b};

/// The NAL units of an Annex B stream, without start codes (trailing zero bytes dropped).
pub fn split_nals(stream: &Bytes) -> Vec<Bytes> {
    split_annex_b(stream)
        .into_iter()
        .map(|range| stream.slice(range))
        .collect()
}

/// Groups NAL units into access units: a new one starts at an access unit delimiter, SEI, SPS or
/// PPS after a slice, or at a slice whose `first_mb_in_slice` is 0. Timestamps are the frame
/// index times `ticks_per_frame`.
pub fn access_units(nals: &[Bytes], ticks_per_frame: u32) -> Vec<AccessUnit> {
    let mut units = Vec::new();
    let mut current: Vec<Bytes> = Vec::new();
    let mut has_slice = false;
    for nal in nals {
        let Some(&header) = nal.first() else { continue };
        let nal_type = header & 0x1f;
        let is_slice = matches!(nal_type, 1 | 5);
        // ue(v) first_mb_in_slice == 0 is the single bit 1.
        let first_slice = is_slice && nal.get(1).is_some_and(|b| b & 0x80 != 0);
        let starts_unit = matches!(nal_type, 6..=9) || first_slice;
        if has_slice && starts_unit {
            push_unit(&mut units, std::mem::take(&mut current), ticks_per_frame);
            has_slice = false;
        }
        has_slice |= is_slice;
        current.push(nal.clone());
    }
    if has_slice {
        push_unit(&mut units, current, ticks_per_frame);
    }
    units
}

fn push_unit(units: &mut Vec<AccessUnit>, nals: Vec<Bytes>, ticks_per_frame: u32) {
    let keyframe = nals
        .iter()
        .any(|n| n.first().is_some_and(|b| b & 0x1f == 5));
    let timestamp = (units.len() as u32).wrapping_mul(ticks_per_frame);
    units.push(AccessUnit {
        timestamp,
        nals,
        keyframe,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_groups() {
        let stream = Bytes::from_static(&[
            0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 1, 0x65, 0x88, 3, 0, 0, 0, 1, 0x41, 0x9a,
            0, 0, 1, 0x41, 0x9a, 4, 0, 0, 1, 0x41, 0x1a, 5, 0, 0,
        ]);
        let nals = split_nals(&stream);
        assert_eq!(nals.len(), 6);
        assert_eq!(&nals[0][..], &[0x67, 1]);
        assert_eq!(&nals[3][..], &[0x41, 0x9a]);
        let units = access_units(&nals, 3000);
        assert_eq!(units.len(), 3);
        assert!(units[0].keyframe && units[0].nals.len() == 3);
        assert_eq!(units[2].nals.len(), 2, "a second slice of the same picture");
        assert_eq!(units[2].timestamp, 6000);
        assert!(split_nals(&Bytes::from_static(&[0, 0, 1])).is_empty());
        assert!(access_units(&[Bytes::new()], 1).is_empty());
    }
}
