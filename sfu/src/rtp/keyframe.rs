//! Tells whether an RTP payload carries the start of a keyframe, without depacketizing.

use crate::media::VideoCodec;
use crate::media::h264::nal_type::{
    FU_A as H264_FU_A, IDR as H264_IDR, SPS as H264_SPS, STAP_A as H264_STAP_A,
};
use crate::media::h265::nal_type as h265_type;
use crate::media::h265::nal_type_of as h265_nal_type;

/// True when `payload` holds (part of) a keyframe: an H.264 SPS or the first fragment of an
/// IDR slice, an H.265 VPS/SPS or the first fragment of an IRAP picture, or a VP8 key frame's
/// first partition.
pub fn is_keyframe_payload(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::H264 => h264_has_keyframe(payload),
        VideoCodec::Vp8 => vp8_is_keyframe_start(payload),
        VideoCodec::H265 => h265_has_keyframe(payload),
    }
}

fn h265_starts_keyframe(nal_type: u8) -> bool {
    h265_type::IRAP.contains(&nal_type) || nal_type == h265_type::VPS || nal_type == h265_type::SPS
}

fn h265_has_keyframe(payload: &[u8]) -> bool {
    // Two-byte payload header (RFC 7798 §1.1.4); DONL fields are absent (sprop-max-don-diff 0,
    // what r58 forwards).
    let Some(&first) = payload.first() else {
        return false;
    };
    if payload.len() < 2 {
        return false;
    }
    match h265_nal_type(first) {
        h265_type::AP => {
            let mut rest = &payload[2..];
            while rest.len() > 2 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                if size < 2 || rest.len() < 2 + size {
                    return false;
                }
                if h265_starts_keyframe(h265_nal_type(rest[2])) {
                    return true;
                }
                rest = &rest[2 + size..];
            }
            false
        }
        // FU header: S E FuType(6).
        h265_type::FU => payload
            .get(2)
            .is_some_and(|fu| fu & 0x80 != 0 && h265_starts_keyframe(fu & 0x3f)),
        other => h265_starts_keyframe(other),
    }
}

fn h264_has_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        H264_IDR | H264_SPS => true,
        H264_STAP_A => {
            let mut rest = &payload[1..];
            while rest.len() > 2 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                if size == 0 || rest.len() < 2 + size {
                    return false;
                }
                if matches!(rest[2] & 0x1f, H264_IDR | H264_SPS) {
                    return true;
                }
                rest = &rest[2 + size..];
            }
            false
        }
        H264_FU_A => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && fu & 0x1f == H264_IDR),
        _ => false,
    }
}

fn vp8_is_keyframe_start(payload: &[u8]) -> bool {
    // RFC 7741 payload descriptor: X R N S R PID(3)
    let Some(&desc) = payload.first() else {
        return false;
    };
    let start_of_partition = desc & 0x10 != 0;
    let partition_id = desc & 0x07;
    if !start_of_partition || partition_id != 0 {
        return false;
    }
    let mut offset = 1;
    if desc & 0x80 != 0 {
        let Some(&ext) = payload.get(1) else {
            return false;
        };
        offset += 1;
        if ext & 0x80 != 0 {
            // PictureID: one byte, or two when its M bit is set
            let Some(&pid) = payload.get(offset) else {
                return false;
            };
            offset += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            offset += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            offset += 1; // TID/Y/KEYIDX
        }
    }
    // VP8 frame tag: bit 0 of the first byte is 0 for a key frame
    payload.get(offset).is_some_and(|tag| tag & 0x01 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h265_single_aggregated_and_fragmented_keyframes() {
        // Header bytes: type << 1, then layer/TID 0x01.
        let nal = |t: u8| [t << 1, 0x01];
        assert!(is_keyframe_payload(
            VideoCodec::H265,
            &[nal(19)[0], 1, 0xaf]
        )); // IDR_W_RADL
        assert!(is_keyframe_payload(
            VideoCodec::H265,
            &[nal(21)[0], 1, 0xaf]
        )); // CRA
        assert!(is_keyframe_payload(VideoCodec::H265, &nal(32))); // VPS
        assert!(!is_keyframe_payload(
            VideoCodec::H265,
            &[nal(1)[0], 1, 0xaf]
        )); // TRAIL_R
        assert!(
            !is_keyframe_payload(VideoCodec::H265, &nal(34)),
            "a PPS alone"
        );
        assert!(
            !is_keyframe_payload(VideoCodec::H265, &[nal(19)[0]]),
            "no full header"
        );
        // AP with a PPS and an IDR; then one with a trailing picture only; then truncated.
        let ap = [
            nal(48)[0],
            1,
            0,
            3,
            nal(34)[0],
            1,
            9,
            0,
            3,
            nal(19)[0],
            1,
            9,
        ];
        assert!(is_keyframe_payload(VideoCodec::H265, &ap));
        let ap = [nal(48)[0], 1, 0, 3, nal(1)[0], 1, 9];
        assert!(!is_keyframe_payload(VideoCodec::H265, &ap));
        assert!(!is_keyframe_payload(
            VideoCodec::H265,
            &[nal(48)[0], 1, 0, 9, nal(19)[0]]
        ));
        // FU: the start of an IDR, its middle, and the start of a trailing picture.
        assert!(is_keyframe_payload(
            VideoCodec::H265,
            &[nal(49)[0], 1, 0x80 | 19, 7]
        ));
        assert!(!is_keyframe_payload(
            VideoCodec::H265,
            &[nal(49)[0], 1, 19, 7]
        ));
        assert!(!is_keyframe_payload(
            VideoCodec::H265,
            &[nal(49)[0], 1, 0x80 | 1, 7]
        ));
        assert!(!is_keyframe_payload(VideoCodec::H265, &[nal(49)[0], 1]));
    }

    #[test]
    fn h264_single_nal_units() {
        assert!(is_keyframe_payload(VideoCodec::H264, &[0x65, 0x88]));
        assert!(is_keyframe_payload(VideoCodec::H264, &[0x67, 0x42]));
        assert!(!is_keyframe_payload(VideoCodec::H264, &[0x41, 0x9a]));
        assert!(!is_keyframe_payload(VideoCodec::H264, &[]));
    }

    #[test]
    fn h264_stap_a_with_sps() {
        let stap = [0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce];
        assert!(is_keyframe_payload(VideoCodec::H264, &stap));
        let no_key = [0x78, 0, 2, 0x06, 0x05, 0, 2, 0x68, 0xce];
        assert!(!is_keyframe_payload(VideoCodec::H264, &no_key));
        let truncated = [0x78, 0, 9, 0x67];
        assert!(!is_keyframe_payload(VideoCodec::H264, &truncated));
    }

    #[test]
    fn h264_fu_a_only_first_idr_fragment() {
        assert!(is_keyframe_payload(VideoCodec::H264, &[0x7c, 0x85, 1]));
        assert!(!is_keyframe_payload(VideoCodec::H264, &[0x7c, 0x05, 1]));
        assert!(!is_keyframe_payload(VideoCodec::H264, &[0x7c, 0x81, 1]));
        assert!(!is_keyframe_payload(VideoCodec::H264, &[0x7c]));
    }

    #[test]
    fn vp8_key_and_delta_frames() {
        assert!(is_keyframe_payload(VideoCodec::Vp8, &[0x10, 0x50]));
        assert!(!is_keyframe_payload(VideoCodec::Vp8, &[0x10, 0x51]));
        assert!(!is_keyframe_payload(VideoCodec::Vp8, &[0x00, 0x50]));
        // extended descriptor with a 15-bit picture id
        assert!(is_keyframe_payload(
            VideoCodec::Vp8,
            &[0x90, 0x80, 0x81, 0x23, 0x50]
        ));
        assert!(!is_keyframe_payload(VideoCodec::Vp8, &[0x90, 0x80]));
    }
}
