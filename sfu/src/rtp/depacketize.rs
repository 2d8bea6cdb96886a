//! What the H.264 and H.265 depacketizers share: the errors, and [`PictureAssembler`], which
//! keeps packet order, finds where pictures end and drops what a loss damaged; each codec's
//! depacketizer only puts a payload's NAL units into the picture being built.

use thiserror::Error;

use crate::media::avcc::{AvccUnit, NalCodec, Picture};

/// Upper bound on one access unit, so a stream of fragments without an end cannot grow memory.
pub const MAX_ACCESS_UNIT_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DepacketizeError {
    #[error("packet {sequence}: empty payload")]
    Empty { sequence: u16 },
    #[error("packet {sequence}: NAL type {nal_type} is not allowed in packetization-mode 1")]
    Unsupported { sequence: u16, nal_type: u8 },
    #[error("packet {sequence}: STAP-A aggregate is truncated")]
    BadStapA { sequence: u16 },
    #[error("packet {sequence}: FU-A fragment is truncated")]
    BadFuA { sequence: u16 },
    #[error("packet {sequence}: payload shorter than the 2-byte H.265 payload header")]
    ShortH265Header { sequence: u16 },
    #[error(
        "packet {sequence}: H.265 payload type {payload_type} is not taken (only single NAL \
         units, aggregation packets and fragmentation units)"
    )]
    UnsupportedH265 { sequence: u16, payload_type: u8 },
    #[error("packet {sequence}: H.265 aggregation packet is truncated")]
    BadAp { sequence: u16 },
    #[error("packet {sequence}: H.265 fragmentation unit is truncated or malformed")]
    BadFu { sequence: u16 },
    #[error("packet {sequence}: a NAL unit's fragment without its start")]
    FuWithoutStart { sequence: u16 },
    #[error("packet {sequence}: {missing} packet(s) missing before it; waiting for a keyframe")]
    Loss { sequence: u16, missing: u16 },
    #[error("packet {sequence}: access unit exceeds {MAX_ACCESS_UNIT_BYTES} bytes")]
    TooLarge { sequence: u16 },
}

/// Packets in arrival order to pictures: a picture ends at its marker bit or when a new
/// timestamp starts. A missing packet or a malformed one drops the picture with an error
/// naming the packet and why; after a loss everything is skipped until the next keyframe,
/// since pictures referring to a lost one cannot be decoded.
///
/// Assembles straight into AVCC form in two [`AvccUnit`]s that take turns (the one being
/// filled, the one last completed), so steady-state depacketizing allocates nothing.
#[derive(Debug)]
pub struct PictureAssembler {
    timestamp: Option<u32>,
    building: AvccUnit,
    done: AvccUnit,
    last_sequence: Option<u16>,
    /// After a loss: drop everything until a picture that is a keyframe.
    waiting_keyframe: bool,
}

impl PictureAssembler {
    pub fn new(codec: NalCodec) -> Self {
        Self {
            timestamp: None,
            building: AvccUnit::new(codec),
            done: AvccUnit::new(codec),
            last_sequence: None,
            waiting_keyframe: false,
        }
    }

    /// One packet; `add` puts its payload's NAL units into the picture being built. Returns
    /// the picture the packet completed, if any; it stays valid until the next push.
    pub fn push(
        &mut self,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        add: impl FnOnce(&mut AvccUnit) -> Result<(), DepacketizeError>,
    ) -> Result<Option<&AvccUnit>, DepacketizeError> {
        let mut finished = false;
        if let Some(last) = self.last_sequence {
            let missing = sequence.wrapping_sub(last).wrapping_sub(1);
            if missing != 0 && missing < 0x8000 {
                self.last_sequence = Some(sequence);
                self.reset(true);
                return Err(DepacketizeError::Loss { sequence, missing });
            }
            if missing >= 0x8000 {
                // A duplicate or a late packet we have passed: ignore it.
                return Ok(None);
            }
        }
        self.last_sequence = Some(sequence);
        if self.timestamp.is_some_and(|t| t != timestamp) {
            // The previous access unit ended without a marker.
            finished = self.take_unit();
        }
        self.timestamp = Some(timestamp);
        match add(&mut self.building) {
            Ok(()) => {}
            // The rest of a frame whose start was lost: expected while resyncing.
            Err(DepacketizeError::FuWithoutStart { .. }) if self.waiting_keyframe => {
                return Ok(None);
            }
            Err(e) => {
                self.reset(true);
                return Err(e);
            }
        }
        if marker {
            // Both ends in one packet (a unit without marker, then a one-packet unit): the
            // later one is kept.
            finished |= self.take_unit();
        }
        Ok(finished.then_some(&self.done))
    }

    /// Completes the unit being built into `done`; `false` when there is none to give.
    fn take_unit(&mut self) -> bool {
        let Some(timestamp) = self.timestamp else {
            return false;
        };
        self.building.drop_open_nal();
        let usable =
            !self.building.is_empty() && (!self.waiting_keyframe || self.building.is_keyframe());
        if usable {
            self.waiting_keyframe = false;
            self.building.timestamp = timestamp;
            std::mem::swap(&mut self.building, &mut self.done);
        }
        self.building.clear();
        usable
    }

    fn reset(&mut self, lost: bool) {
        self.building.clear();
        self.timestamp = None;
        self.waiting_keyframe |= lost;
    }
}
