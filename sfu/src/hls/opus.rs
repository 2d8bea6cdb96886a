//! The Opus TOC byte (RFC 6716 §3.1): how long an RTP Opus payload plays.
//!
//! One RTP packet carries one Opus packet (RFC 7587), which becomes one MP4 sample whose duration
//! is the frame duration times the frame count, in 48 kHz ticks.

use thiserror::Error;

/// The longest Opus packet: 120 ms at 48 kHz.
pub const MAX_PACKET_SAMPLES: u32 = 5760;

#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum OpusError {
    #[error("empty Opus packet")]
    Empty,
    #[error("code 3 Opus packet without its frame count byte")]
    MissingFrameCount,
    #[error("Opus packet with zero frames")]
    NoFrames,
    #[error("Opus packet longer than 120 ms ({0} samples at 48 kHz)")]
    TooLong(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusToc {
    /// The configuration number, 0-31 (mode, bandwidth and frame size).
    pub config: u8,
    pub stereo: bool,
    /// Duration of one frame in 48 kHz ticks.
    pub frame_samples: u32,
    pub frames: u32,
}

impl OpusToc {
    pub fn parse(packet: &[u8]) -> Result<Self, OpusError> {
        let toc = *packet.first().ok_or(OpusError::Empty)?;
        let config = toc >> 3;
        let frame_samples = match config {
            // SILK-only: 10, 20, 40, 60 ms.
            0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
            // Hybrid: 10, 20 ms.
            12..=15 => [480, 960][usize::from(config % 2)],
            // CELT-only: 2.5, 5, 10, 20 ms.
            _ => [120, 240, 480, 960][usize::from(config % 4)],
        };
        let frames = match toc & 3 {
            0 => 1,
            1 | 2 => 2,
            _ => {
                let count = packet.get(1).ok_or(OpusError::MissingFrameCount)? & 0x3f;
                if count == 0 {
                    return Err(OpusError::NoFrames);
                }
                u32::from(count)
            }
        };
        let toc = Self {
            config,
            stereo: toc & 4 != 0,
            frame_samples,
            frames,
        };
        let total = toc.samples();
        if total > MAX_PACKET_SAMPLES {
            return Err(OpusError::TooLong(total));
        }
        Ok(toc)
    }

    /// The packet's duration in 48 kHz ticks.
    pub fn samples(&self) -> u32 {
        self.frame_samples * self.frames
    }
}

/// The duration of an Opus packet in 48 kHz ticks.
pub fn packet_samples(packet: &[u8]) -> Result<u32, OpusError> {
    Ok(OpusToc::parse(packet)?.samples())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_from_the_toc() {
        // config 31 (CELT FB 20 ms), stereo, one frame: what browsers send.
        assert_eq!(packet_samples(&[0xfc, 0xff]).unwrap(), 960);
        // config 1 (SILK NB 20 ms), two frames (code 1).
        assert_eq!(packet_samples(&[0x09]).unwrap(), 1920);
        // config 16 (CELT 2.5 ms), code 3 with 4 frames.
        let toc = OpusToc::parse(&[0x83, 0x04]).unwrap();
        assert_eq!((toc.frame_samples, toc.frames, toc.stereo), (120, 4, false));
        // config 13 (hybrid 20 ms), code 2.
        assert_eq!(packet_samples(&[0x6a, 0, 0]).unwrap(), 1920);
    }

    #[test]
    fn bad_packets_are_errors() {
        assert_eq!(packet_samples(&[]), Err(OpusError::Empty));
        assert_eq!(packet_samples(&[0x03]), Err(OpusError::MissingFrameCount));
        assert_eq!(packet_samples(&[0x03, 0x80]), Err(OpusError::NoFrames));
        // 60 ms frames x 3 = 180 ms.
        assert_eq!(packet_samples(&[0x1b, 3]), Err(OpusError::TooLong(8640)));
    }
}
