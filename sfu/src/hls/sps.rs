//! The parts of an H.264 sequence parameter set (ITU-T H.264 §7.3.2.1.1) that a muxer needs:
//! profile and level for the `avc1.PPCCLL` codec string, and the cropped picture size.

use crate::media::bits::{BitReader, BitsError, unescape_rbsp};
use thiserror::Error;

const NAL_SPS: u8 = 7;
/// Larger than any level's limit (level 6.2 allows 139264 macroblocks per frame).
const MAX_MACROBLOCKS: u64 = 1 << 20;

#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum SpsError {
    #[error("not an SPS NAL unit")]
    NotSps,
    #[error("SPS is truncated or malformed: {0}")]
    Bits(#[from] BitsError),
    #[error("SPS field {0} is out of range")]
    OutOfRange(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    pub profile_idc: u8,
    /// The constraint_set flags byte, as it appears in the codec string.
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub width: u32,
    pub height: u32,
}

impl SpsInfo {
    /// The RFC 6381 codec string, e.g. `avc1.42c01e`.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}

/// Parses an SPS NAL unit (with its one-byte NAL header, without a start code).
pub fn parse_sps(nal: &[u8]) -> Result<SpsInfo, SpsError> {
    let (&header, payload) = nal.split_first().ok_or(SpsError::NotSps)?;
    if header & 0x1f != NAL_SPS {
        return Err(SpsError::NotSps);
    }
    let rbsp = unescape_rbsp(payload);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.byte()?;
    let constraint_flags = r.byte()?;
    let level_idc = r.byte()?;
    let _seq_parameter_set_id = r.ue()?;

    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return Err(SpsError::OutOfRange("chroma_format_idc"));
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        let _bit_depth_luma = r.ue()?;
        let _bit_depth_chroma = r.ue()?;
        let _qpprime_y_zero_transform_bypass = r.bit()?;
        if r.bit()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let _log2_max_frame_num_minus4 = r.ue()?;
    match r.ue()? {
        0 => {
            let _log2_max_pic_order_cnt_lsb_minus4 = r.ue()?;
        }
        1 => {
            let _delta_pic_order_always_zero = r.bit()?;
            let _offset_for_non_ref_pic = r.se()?;
            let _offset_for_top_to_bottom_field = r.se()?;
            let cycle = r.ue()?;
            if cycle > 255 {
                return Err(SpsError::OutOfRange(
                    "num_ref_frames_in_pic_order_cnt_cycle",
                ));
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        2 => {}
        _ => return Err(SpsError::OutOfRange("pic_order_cnt_type")),
    }
    let _max_num_ref_frames = r.ue()?;
    let _gaps_in_frame_num_allowed = r.bit()?;
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        let _mb_adaptive_frame_field = r.bit()?;
    }
    let _direct_8x8_inference = r.bit()?;
    let field_factor: u64 = if frame_mbs_only { 1 } else { 2 };
    let height_mbs = height_map_units * field_factor;
    if width_mbs * height_mbs > MAX_MACROBLOCKS {
        return Err(SpsError::OutOfRange("picture size"));
    }
    let mut width = width_mbs * 16;
    let mut height = height_mbs * 16;
    if r.bit()? {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (unit_x, unit_y) = match chroma_array_type {
            1 => (2, 2 * field_factor),
            2 => (2, field_factor),
            _ => (1, field_factor),
        };
        let crop_x = (u64::from(left) + u64::from(right)) * unit_x;
        let crop_y = (u64::from(top) + u64::from(bottom)) * unit_y;
        if crop_x >= width || crop_y >= height {
            return Err(SpsError::OutOfRange("frame cropping"));
        }
        width -= crop_x;
        height -= crop_y;
    }
    Ok(SpsInfo {
        profile_idc,
        constraint_flags,
        level_idc,
        width: width as u32,
        height: height as u32,
    })
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), SpsError> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(SpsError::OutOfRange("delta_scale"));
            }
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x264 baseline 320x240 (ffmpeg testsrc): 20 x 15 macroblocks, no cropping.
    const BASELINE_320X240: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    ];
    /// x264 High profile 318x178: 20 x 12 macroblocks cropped by 2 and 14 pixels.
    const HIGH_318X178: &[u8] = &[
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0x9e, 0xa2, 0x30, 0x11, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x14, 0x29, 0x96,
    ];
    /// From mp4-atom's h264 sample: High profile 1280x720 (45 macroblock rows, cropped by 0).
    const HIGH_1280X720: &[u8] = &[
        103, 100, 0, 31, 172, 217, 128, 80, 5, 187, 1, 106, 2, 2, 2, 128, 0, 0, 3, 0, 128, 0, 0,
        30, 7, 140, 24, 205,
    ];

    #[test]
    fn parses_baseline_and_high_profile() {
        let sps = parse_sps(BASELINE_320X240).unwrap();
        assert_eq!((sps.width, sps.height), (320, 240));
        assert_eq!(sps.codec_string(), "avc1.42c00d");
        let sps = parse_sps(HIGH_318X178).unwrap();
        assert_eq!((sps.width, sps.height), (318, 178));
        assert_eq!(sps.codec_string(), "avc1.64000d");
        let sps = parse_sps(HIGH_1280X720).unwrap();
        assert_eq!((sps.width, sps.height), (1280, 720));
        assert_eq!(sps.codec_string(), "avc1.64001f");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(parse_sps(&[]), Err(SpsError::NotSps));
        assert_eq!(parse_sps(&[0x68, 1, 2]), Err(SpsError::NotSps));
        // Cut anywhere before the frame size fields end.
        for len in 1..8 {
            assert!(parse_sps(&BASELINE_320X240[..len]).is_err(), "{len}");
        }
        assert!(parse_sps(&[0x67, 0x42, 0, 0x1e, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
