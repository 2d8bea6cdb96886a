//! Tells whether an RTP payload carries the start of a keyframe, without depacketizing.

use crate::media::VideoCodec;
use crate::media::h264::nal_type::{
    FU_A as H264_FU_A, IDR as H264_IDR, SPS as H264_SPS, STAP_A as H264_STAP_A,
};

/// True when `payload` holds (part of) a keyframe: an H.264 SPS or the first fragment of an
/// IDR slice, or a VP8 key frame's first partition.
pub fn is_keyframe_payload(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::H264 => h264_has_keyframe(payload),
        VideoCodec::Vp8 => vp8_is_keyframe_start(payload),
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
