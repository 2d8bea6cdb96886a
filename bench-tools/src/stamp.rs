//! The publisher's send time, written into the media payload where only a subscriber that
//! decrypts the packet can read it.
//!
//! Layout inside an FU-A fragment, after the two FU bytes: the magic `R58T`, then the wall clock
//! at send in nanoseconds since the Unix epoch, big-endian.

use std::time::{SystemTime, UNIX_EPOCH};

const MAGIC: &[u8; 4] = b"R58T";

/// Wall-clock nanoseconds, the clock both the publisher's stamp and `SO_TIMESTAMPNS` use.
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
const FU_A: u8 = 28;
/// Offset of the stamp from the start of the RTP payload.
const AT: usize = 2;

/// Writes `ns` into the plain RTP packet `packet` (fixed 12-byte header) if it is an FU-A
/// fragment long enough to hold it; true when written.
pub fn write(packet: &mut [u8], ns: u64) -> bool {
    let start = 12 + AT;
    if packet.len() < start + 12 || packet[12] & 0x1f != FU_A {
        return false;
    }
    packet[start..start + 4].copy_from_slice(MAGIC);
    packet[start + 4..start + 12].copy_from_slice(&ns.to_be_bytes());
    true
}

/// Reads the stamp from a decrypted RTP packet (any header length), if it carries one.
pub fn read(packet: &[u8]) -> Option<u64> {
    let header = sfu::rtp::packet::RtpHeader::parse(packet).ok()?;
    let payload = packet.get(header.payload_offset..header.payload_end)?;
    if payload.first()? & 0x1f != FU_A {
        return None;
    }
    let stamp = payload.get(AT..AT + 12)?;
    if &stamp[..4] != MAGIC {
        return None;
    }
    Some(u64::from_be_bytes(stamp[4..].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfu::testing::harness::H264Source;

    #[test]
    fn round_trips_in_fu_a_and_skips_stap_a() {
        let mut source = H264Source::new(1, 102);
        let mut frame = source.next_frame(); // a keyframe: STAP-A first, then FU-A
        assert!(!write(&mut frame[0], 7), "STAP-A carries no stamp");
        assert!(write(&mut frame[1], 123_456_789));
        assert_eq!(read(&frame[1]), Some(123_456_789));
        assert_eq!(read(&frame[0]), None);
        assert_eq!(read(&frame[2]), None, "unstamped fragment");
    }
}
