//! The few H.265 (HEVC) bitstream facts r58 needs: NAL unit types, and what a muxer takes from a
//! sequence parameter set (ITU-T H.265 §7.3.2.2.1): the cropped picture size and the fields of
//! the `hvcC` box (ISO/IEC 14496-15 §8.3.3) that describe the profile, tier, level, chroma
//! format and bit depths.

use thiserror::Error;

use super::bits::{BitReader, BitsError, unescape_rbsp};

/// H.265 NAL unit types (ITU-T H.265 table 7-1) and RTP payload types (RFC 7798 §4.4).
pub mod nal_type {
    /// TRAIL_N ..= RSV_VCL31: slices of a picture (video coding layer).
    pub const VCL: std::ops::RangeInclusive<u8> = 0..=31;
    /// BLA_W_LP ..= CRA_NUT: the pictures a decoder can start at (IRAP).
    pub const IRAP: std::ops::RangeInclusive<u8> = 16..=21;
    pub const VPS: u8 = 32;
    pub const SPS: u8 = 33;
    pub const PPS: u8 = 34;
    /// Aggregation packet (RTP only).
    pub const AP: u8 = 48;
    /// Fragmentation unit (RTP only).
    pub const FU: u8 = 49;
    /// PACI packet (RTP only; r58 does not take it).
    pub const PACI: u8 = 50;
}

/// The type of an H.265 NAL unit (or RTP payload) from its first header byte.
pub fn nal_type_of(first: u8) -> u8 {
    (first >> 1) & 0x3f
}

/// The type of an H.265 NAL unit (0 for an empty one).
pub fn nal_unit_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |&b| nal_type_of(b))
}

/// Level 6.2's largest picture (MaxLumaPs, H.265 table A.8); `sqrt(8 * MaxLumaPs)` bounds
/// each side.
const MAX_LUMA_PICTURE_SIZE: u64 = 35_651_584;
const MAX_SIDE: u64 = 16_888;

#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum SpsError {
    #[error("not an H.265 SPS NAL unit")]
    NotSps,
    #[error("H.265 SPS is truncated or malformed: {0}")]
    Bits(#[from] BitsError),
    #[error("H.265 SPS field {0} is out of range")]
    OutOfRange(&'static str),
}

/// What the `hvcC` box and the sample entry take from an SPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HevcSps {
    pub general_profile_space: u8,
    pub general_tier_flag: bool,
    pub general_profile_idc: u8,
    /// The 32 compatibility flags, flag 0 in the most significant bit of the first byte.
    pub general_profile_compatibility_flags: [u8; 4],
    /// The 48 bits from `general_progressive_source_flag` on, as `hvcC` stores them.
    pub general_constraint_indicator_flags: [u8; 6],
    pub general_level_idc: u8,
    /// `sps_max_sub_layers_minus1 + 1` (`hvcC`'s `numTemporalLayers`).
    pub sub_layers: u8,
    pub temporal_id_nested: bool,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    /// The picture size after the conformance window.
    pub width: u32,
    pub height: u32,
}

/// Parses an SPS NAL unit (with its two-byte NAL header, without a start code), as far as the
/// bit depths.
pub fn parse_sps(nal: &[u8]) -> Result<HevcSps, SpsError> {
    if nal.len() < 2 || nal_unit_type(nal) != nal_type::SPS {
        return Err(SpsError::NotSps);
    }
    let rbsp = unescape_rbsp(&nal[2..]);
    let mut r = BitReader::new(&rbsp);
    let _sps_video_parameter_set_id = r.bits(4)?;
    let max_sub_layers_minus1 = r.bits(3)? as u8;
    if max_sub_layers_minus1 > 6 {
        return Err(SpsError::OutOfRange("sps_max_sub_layers_minus1"));
    }
    let temporal_id_nested = r.bit()?;

    // profile_tier_level(1, sps_max_sub_layers_minus1), §7.3.3: the general part first.
    let general_profile_space = r.bits(2)? as u8;
    let general_tier_flag = r.bit()?;
    let general_profile_idc = r.bits(5)? as u8;
    let general_profile_compatibility_flags = r.bits(32)?.to_be_bytes();
    let mut general_constraint_indicator_flags = [0u8; 6];
    for byte in &mut general_constraint_indicator_flags {
        *byte = r.byte()?;
    }
    let general_level_idc = r.byte()?;
    // Then what each sub-layer has, which is skipped.
    let mut sub_layer_present = [(false, false); 6];
    for present in sub_layer_present
        .iter_mut()
        .take(usize::from(max_sub_layers_minus1))
    {
        *present = (r.bit()?, r.bit()?);
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            let _reserved_zero_2bits = r.bits(2)?;
        }
    }
    for &(profile, level) in sub_layer_present
        .iter()
        .take(usize::from(max_sub_layers_minus1))
    {
        if profile {
            // Profile space, tier, idc, 32 compatibility flags, 48 constraint bits.
            skip_bits(&mut r, 2 + 1 + 5 + 32 + 48)?;
        }
        if level {
            let _sub_layer_level_idc = r.byte()?;
        }
    }

    let _sps_seq_parameter_set_id = r.ue()?;
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc > 3 {
        return Err(SpsError::OutOfRange("chroma_format_idc"));
    }
    let separate_colour_plane = chroma_format_idc == 3 && r.bit()?;
    let width = u64::from(r.ue()?);
    let height = u64::from(r.ue()?);
    if width == 0
        || height == 0
        || width > MAX_SIDE
        || height > MAX_SIDE
        || width * height > MAX_LUMA_PICTURE_SIZE
    {
        return Err(SpsError::OutOfRange("pic_width/height_in_luma_samples"));
    }
    let (mut width, mut height) = (width, height);
    if r.bit()? {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        // The offsets count chroma samples (SubWidthC, SubHeightC of table 6-1).
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_width, sub_height) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let crop_x = (u64::from(left) + u64::from(right)) * sub_width;
        let crop_y = (u64::from(top) + u64::from(bottom)) * sub_height;
        if crop_x >= width || crop_y >= height {
            return Err(SpsError::OutOfRange("conformance window"));
        }
        width -= crop_x;
        height -= crop_y;
    }
    let bit_depth_luma_minus8 = r.ue()?;
    let bit_depth_chroma_minus8 = r.ue()?;
    // H.265 allows up to 16 bits; hvcC has three bits for each (up to 15).
    if bit_depth_luma_minus8 > 7 || bit_depth_chroma_minus8 > 7 {
        return Err(SpsError::OutOfRange("bit_depth_minus8"));
    }
    Ok(HevcSps {
        general_profile_space,
        general_tier_flag,
        general_profile_idc,
        general_profile_compatibility_flags,
        general_constraint_indicator_flags,
        general_level_idc,
        sub_layers: max_sub_layers_minus1 + 1,
        temporal_id_nested,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma: bit_depth_luma_minus8 as u8 + 8,
        bit_depth_chroma: bit_depth_chroma_minus8 as u8 + 8,
        width: width as u32,
        height: height as u32,
    })
}

fn skip_bits(r: &mut BitReader<'_>, mut count: u32) -> Result<(), BitsError> {
    while count > 0 {
        let step = count.min(32);
        r.bits(step)?;
        count -= step;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real SPSes from x265 (how they were made: crate::testing::h265), and two more:
    // 1280x720 and 1920x1080 Main (x265's minimum coding unit is 8, so 1080 rows need no
    // conformance window; 318x178 in testing::h265 does).
    use crate::testing::h265::{SPS_318X178_MAIN10, SPS_318X178_REXT422};
    /// 1280x720 yuv420p: Main, level 3.1 (93).
    const MAIN_1280X720: &str =
        "42010101600000030090000003000003005da00280802d165959a4932bc05a020000030002000003003c10";
    /// 1920x1080 yuv420p: Main, level 4 (120).
    const MAIN_1920X1080: &str =
        "420101016000000300900000030000030078a003c08010e596566924caf0168080000003008000000f04";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn picture_sizes_after_the_conformance_window() {
        let sizes: Vec<(u32, u32)> = [
            hex(MAIN_1280X720),
            hex(MAIN_1920X1080),
            SPS_318X178_MAIN10.to_vec(),
            SPS_318X178_REXT422.to_vec(),
        ]
        .iter()
        .map(|sps| {
            let sps = parse_sps(sps).unwrap();
            (sps.width, sps.height)
        })
        .collect();
        assert_eq!(sizes, [(1280, 720), (1920, 1080), (318, 178), (318, 178)]);
    }

    #[test]
    fn hvcc_fields() {
        let main = parse_sps(&hex(MAIN_1280X720)).unwrap();
        assert_eq!(
            main,
            HevcSps {
                general_profile_space: 0,
                general_tier_flag: false,
                general_profile_idc: 1,
                // Main and, by implication, Main 10 (flags 1 and 2).
                general_profile_compatibility_flags: [0x60, 0, 0, 0],
                // Progressive source, frame only.
                general_constraint_indicator_flags: [0x90, 0, 0, 0, 0, 0],
                general_level_idc: 93,
                sub_layers: 1,
                temporal_id_nested: true,
                chroma_format_idc: 1,
                bit_depth_luma: 8,
                bit_depth_chroma: 8,
                width: 1280,
                height: 720,
            }
        );
        let main10 = parse_sps(SPS_318X178_MAIN10).unwrap();
        assert_eq!(
            (main10.general_profile_idc, main10.general_level_idc),
            (2, 60)
        );
        assert_eq!(main10.general_profile_compatibility_flags, [0x20, 0, 0, 0]);
        assert_eq!((main10.bit_depth_luma, main10.bit_depth_chroma), (10, 10));
        let rext = parse_sps(SPS_318X178_REXT422).unwrap();
        assert_eq!((rext.general_profile_idc, rext.chroma_format_idc), (4, 2));
        assert_eq!(rext.general_profile_compatibility_flags, [0x08, 0, 0, 0]);
        // After progressive and frame-only: max_12bit, max_10bit, max_422chroma and
        // lower_bit_rate, which is Main 4:2:2 10 (ffprobe: "Rext", yuv422p10le).
        assert_eq!(
            rext.general_constraint_indicator_flags,
            [0x9d, 0x08, 0, 0, 0, 0]
        );
        assert_eq!((rext.bit_depth_luma, rext.bit_depth_chroma), (10, 10));
    }

    #[test]
    fn bad_input_is_an_error() {
        let sps = hex(MAIN_1280X720);
        assert_eq!(parse_sps(&[]), Err(SpsError::NotSps));
        assert_eq!(parse_sps(&[0x42]), Err(SpsError::NotSps));
        assert_eq!(parse_sps(&hex("4401c172b46240")), Err(SpsError::NotSps));
        // Cut anywhere before the bit depths end.
        for len in 2..24 {
            assert!(parse_sps(&sps[..len]).is_err(), "{len}");
        }
        // After the profile, tier and level (18 bytes with their emulation prevention):
        // sps id 0 and 4:2:0, then this size, window and bit depths (minus 8).
        let tail = |size: [u32; 2], window: Option<[u32; 4]>, depths: [u32; 2]| {
            let ue = |v: u32| {
                let code = format!("{:b}", v + 1);
                "0".repeat(code.len() - 1) + &code
            };
            let mut bits = ue(0) + &ue(1) + &ue(size[0]) + &ue(size[1]);
            match window {
                Some(offsets) => {
                    bits += "1";
                    offsets.iter().for_each(|&o| bits += &ue(o));
                }
                None => bits += "0",
            }
            bits += &(ue(depths[0]) + &ue(depths[1]));
            bits += &"0".repeat((8 - bits.len() % 8) % 8);
            let mut nal = sps[..18].to_vec();
            nal.extend(
                (0..bits.len())
                    .step_by(8)
                    .map(|i| u8::from_str_radix(&bits[i..i + 8], 2).unwrap()),
            );
            nal
        };
        let fits = parse_sps(&tail([8, 8], Some([3, 0, 1, 0]), [0, 2])).unwrap();
        assert_eq!(
            (fits.width, fits.height),
            (2, 6),
            "offsets in 4:2:0 chroma units"
        );
        assert_eq!((fits.bit_depth_luma, fits.bit_depth_chroma), (8, 10));
        assert_eq!(
            parse_sps(&tail([8, 8], Some([4, 0, 0, 0]), [0, 0])),
            Err(SpsError::OutOfRange("conformance window")),
            "a window as wide as the picture"
        );
        for size in [[0, 8], [8, 0], [16_889, 8], [8_000, 8_000]] {
            assert_eq!(
                parse_sps(&tail(size, None, [0, 0])),
                Err(SpsError::OutOfRange("pic_width/height_in_luma_samples")),
                "{size:?}"
            );
        }
        assert_eq!(
            parse_sps(&tail([8, 8], None, [8, 0])),
            Err(SpsError::OutOfRange("bit_depth_minus8")),
            "16 bits do not fit hvcC"
        );
    }
}
