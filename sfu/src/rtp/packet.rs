//! A borrowed view of an RTP packet's fixed header.
//!
//! `rtc-rtp`'s `Header` owns `Vec`s for CSRCs and extensions, which costs allocations on every
//! forwarded packet; the forwarding path only needs the fixed fields and where the payload starts.

use thiserror::Error;

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RtpError {
    #[error("RTP packet of {0} bytes is shorter than the 12-byte fixed header")]
    TooShort(usize),
    #[error("RTP version {0} is not 2")]
    BadVersion(u8),
    #[error("RTP header claims {claimed} bytes but the packet has {len}")]
    Truncated { claimed: usize, len: usize },
    #[error("RTP padding of {pad} bytes does not fit a {len}-byte packet")]
    BadPadding { pad: usize, len: usize },
}

/// The fields of an RTP header that forwarding reads, and where the payload lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Offset of the header extension block (the 4-byte profile/length word), if present.
    pub extension_offset: Option<usize>,
    /// Offset of the first payload byte.
    pub payload_offset: usize,
    /// Offset one past the last payload byte (padding excluded).
    pub payload_end: usize,
}

impl RtpHeader {
    /// Parses the fixed header, CSRC list, extension block and padding of `packet`.
    pub fn parse(packet: &[u8]) -> Result<Self, RtpError> {
        let len = packet.len();
        if len < 12 {
            return Err(RtpError::TooShort(len));
        }
        let version = packet[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let has_padding = packet[0] & 0x20 != 0;
        let has_extension = packet[0] & 0x10 != 0;
        let csrc_count = usize::from(packet[0] & 0x0f);
        let mut offset = 12 + 4 * csrc_count;
        let mut extension_offset = None;
        if has_extension {
            if len < offset + 4 {
                return Err(RtpError::Truncated {
                    claimed: offset + 4,
                    len,
                });
            }
            extension_offset = Some(offset);
            let words = usize::from(u16::from_be_bytes([packet[offset + 2], packet[offset + 3]]));
            offset += 4 + 4 * words;
        }
        if len < offset {
            return Err(RtpError::Truncated {
                claimed: offset,
                len,
            });
        }
        let mut payload_end = len;
        if has_padding {
            let pad = usize::from(packet[len - 1]);
            if pad == 0 || offset + pad > len {
                return Err(RtpError::BadPadding { pad, len });
            }
            payload_end = len - pad;
        }
        Ok(Self {
            marker: packet[1] & 0x80 != 0,
            payload_type: packet[1] & 0x7f,
            sequence: u16::from_be_bytes([packet[2], packet[3]]),
            timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
            ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
            extension_offset,
            payload_offset: offset,
            payload_end,
        })
    }
}

/// Writes a 12-byte RTP fixed header (no CSRCs, no extension, no padding) into `out[..12]`.
pub fn write_fixed_header(
    out: &mut [u8; 12],
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) {
    out[0] = 0x80;
    out[1] = (u8::from(marker) << 7) | (payload_type & 0x7f);
    out[2..4].copy_from_slice(&sequence.to_be_bytes());
    out[4..8].copy_from_slice(&timestamp.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// Whether a demultiplexed datagram (RFC 7983 first byte 128..=191) is RTCP rather than RTP:
/// RTCP packet types 192..=223 sit where RTP has marker + payload type.
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 2 && (192..=223).contains(&datagram[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(first: u8, extra: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            first,
            0x80 | 96,
            0x12,
            0x34,
            0,
            0,
            0x10,
            0,
            0xde,
            0xad,
            0xbe,
            0xef,
        ];
        p.extend_from_slice(extra);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn parses_fixed_fields() {
        let p = packet(0x80, &[], &[1, 2, 3]);
        let h = RtpHeader::parse(&p).unwrap();
        assert!(h.marker);
        assert_eq!(h.payload_type, 96);
        assert_eq!(h.sequence, 0x1234);
        assert_eq!(h.timestamp, 0x1000);
        assert_eq!(h.ssrc, 0xdeadbeef);
        assert_eq!(&p[h.payload_offset..h.payload_end], &[1, 2, 3]);
    }

    #[test]
    fn skips_csrcs_extension_and_padding() {
        // one CSRC, a one-word extension, 2 bytes payload, 2 bytes padding
        let mut p = packet(
            0x80 | 0x20 | 0x10 | 1,
            &[0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0],
            &[7, 8, 0, 2],
        );
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!(h.extension_offset, Some(16));
        assert_eq!(&p[h.payload_offset..h.payload_end], &[7, 8]);
        p.truncate(18);
        assert!(RtpHeader::parse(&p).is_err());
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(RtpHeader::parse(&[0x80; 5]), Err(RtpError::TooShort(5)));
        assert_eq!(RtpHeader::parse(&[0x40; 12]), Err(RtpError::BadVersion(1)));
        let mut p = packet(0xa0, &[], &[9]);
        *p.last_mut().unwrap() = 40;
        assert!(matches!(
            RtpHeader::parse(&p),
            Err(RtpError::BadPadding { .. })
        ));
    }

    #[test]
    fn fixed_header_round_trips() {
        let mut h = [0u8; 12];
        write_fixed_header(&mut h, true, 111, 65535, 7, 42);
        let parsed = RtpHeader::parse(&h).unwrap();
        assert_eq!(
            (
                parsed.marker,
                parsed.payload_type,
                parsed.sequence,
                parsed.timestamp,
                parsed.ssrc
            ),
            (true, 111, 65535, 7, 42)
        );
    }

    #[test]
    fn classifies_rtcp() {
        assert!(is_rtcp(&[0x81, 200]));
        assert!(!is_rtcp(&[0x80, 96]));
    }
}
