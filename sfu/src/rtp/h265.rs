//! RFC 7798 H.265 depacketizer: single NAL unit packets, aggregation packets (AP, type 48) and
//! fragmentation units (FU, type 49), each behind the two-byte payload header. Decoding order
//! numbers (DONL) are present only when the stream's `sprop-max-don-diff` is above 0; such a
//! stream is refused when the depacketizer is made ([`H265Format::from_fmtp`]).
//!
//! Pictures come out in AVCC form as [`PictureAssembler`] makes them (packet order, losses,
//! the wait for a keyframe, which for H.265 is an IRAP picture). The VPS, SPS and PPS are
//! kept as they go by, starting with the format's `sprop-vps`/`sprop-sps`/`sprop-pps`, and an
//! IRAP picture that arrives without them gets the kept ones put before its first slice: many
//! cameras send them in the SDP only, or before their first keyframe only, and a recording
//! needs them at every file's first keyframe. In-band ones replace the kept ones.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use thiserror::Error;

use super::depacketize::{DepacketizeError, MAX_ACCESS_UNIT_BYTES, PictureAssembler};
use crate::media::avcc::{AvccUnit, NalCodec, Picture};
use crate::media::h265::nal_type::{AP, FU, IRAP, PACI, PPS, SPS, VPS};
use crate::media::h265::{nal_type_of, nal_unit_type};

/// Why a track's format parameters (its SDP `fmtp`) cannot be depacketized.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum H265FormatError {
    #[error(
        "sprop-max-don-diff={0}: the stream carries decoding order numbers (DONL, RFC 7798 \
         §4.4), which r58 does not take (set the camera to send pictures in order)"
    )]
    DecodingOrderNumbers(u32),
    #[error("sprop-max-don-diff={0:?} is not a number")]
    BadMaxDonDiff(String),
    #[error("{0} is not base64 NAL units")]
    BadParameterSet(&'static str),
}

/// What the depacketizer takes from a track's format parameters: the parameter sets the SDP
/// gave (the first of each).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct H265Format {
    pub vps: Option<Vec<u8>>,
    pub sps: Option<Vec<u8>>,
    pub pps: Option<Vec<u8>>,
}

impl H265Format {
    /// Reads `sprop-vps`, `sprop-sps`, `sprop-pps` and `sprop-max-don-diff` from an fmtp
    /// (`key=value;...`); other parameters are not the depacketizer's business.
    pub fn from_fmtp(fmtp: &str) -> Result<Self, H265FormatError> {
        let mut format = Self::default();
        for param in fmtp.split(';') {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            let slot = match key.to_ascii_lowercase().as_str() {
                "sprop-max-don-diff" => {
                    let diff: u32 = value
                        .parse()
                        .map_err(|_| H265FormatError::BadMaxDonDiff(value.to_owned()))?;
                    if diff > 0 {
                        return Err(H265FormatError::DecodingOrderNumbers(diff));
                    }
                    continue;
                }
                "sprop-vps" => (&mut format.vps, "sprop-vps"),
                "sprop-sps" => (&mut format.sps, "sprop-sps"),
                "sprop-pps" => (&mut format.pps, "sprop-pps"),
                _ => continue,
            };
            let (out, name) = slot;
            // A list of base64 NAL units; the first is the one a decoder starts with.
            let first = value.split(',').next().unwrap_or_default();
            let nal = BASE64
                .decode(first)
                .map_err(|_| H265FormatError::BadParameterSet(name))?;
            if nal.len() < 2 {
                return Err(H265FormatError::BadParameterSet(name));
            }
            *out = Some(nal);
        }
        Ok(format)
    }
}

/// The latest VPS, SPS and PPS seen (reused buffers; empty: none yet).
#[derive(Debug, Default)]
struct KeptSets {
    vps: Vec<u8>,
    sps: Vec<u8>,
    pps: Vec<u8>,
}

impl KeptSets {
    fn from_format(format: &H265Format) -> Self {
        let take = |nal: &Option<Vec<u8>>| nal.clone().unwrap_or_default();
        Self {
            vps: take(&format.vps),
            sps: take(&format.sps),
            pps: take(&format.pps),
        }
    }

    /// Bytes kept, with the length prefixes they take in a picture.
    fn len(&self) -> usize {
        self.vps.len() + self.sps.len() + self.pps.len() + 12
    }

    /// Keeps `nal` if it is a parameter set.
    fn remember(&mut self, nal: &[u8]) {
        let slot = match nal_unit_type(nal) {
            VPS => &mut self.vps,
            SPS => &mut self.sps,
            PPS => &mut self.pps,
            _ => return,
        };
        slot.clear();
        slot.extend_from_slice(nal);
    }

    /// Before the first slice of an IRAP picture: the parameter sets it lacks, from the kept
    /// ones.
    fn complete(&self, unit: &mut AvccUnit, nal_type: u8) {
        if !IRAP.contains(&nal_type) || unit.is_keyframe() {
            return;
        }
        let (sps, pps) = unit.sps_pps();
        let missing = [
            (unit.vps().is_none(), &self.vps),
            (sps.is_none(), &self.sps),
            (pps.is_none(), &self.pps),
        ];
        for (missing, kept) in missing {
            if missing && !kept.is_empty() {
                unit.push_nal(kept);
            }
        }
    }
}

/// An RFC 7798 depacketizer for one track.
#[derive(Debug)]
pub struct H265Depacketizer {
    assembler: PictureAssembler,
    format: H265Format,
    kept: KeptSets,
}

impl H265Depacketizer {
    /// A depacketizer for a track with these format parameters.
    pub fn new(format: H265Format) -> Self {
        Self {
            assembler: PictureAssembler::new(NalCodec::H265),
            kept: KeptSets::from_format(&format),
            format,
        }
    }

    /// Starts afresh (a new publisher or timeline): from the next keyframe, with the format's
    /// parameter sets.
    pub fn restart(&mut self) {
        *self = Self::new(std::mem::take(&mut self.format));
    }

    /// Pushes one packet's payload. Returns the picture it completed, if any, in AVCC form; it
    /// stays valid until the next push. Parameter sets sent as pictures of their own (with
    /// their own timestamp) are kept, not given out.
    pub fn push_avcc(
        &mut self,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Option<&AvccUnit>, DepacketizeError> {
        let kept = &mut self.kept;
        let unit = self.assembler.push(sequence, timestamp, marker, |unit| {
            add_payload(unit, kept, sequence, payload)
        })?;
        Ok(unit.filter(|unit| unit.has_slice()))
    }
}

fn add_payload(
    unit: &mut AvccUnit,
    kept: &mut KeptSets,
    sequence: u16,
    payload: &[u8],
) -> Result<(), DepacketizeError> {
    match payload {
        [] => return Err(DepacketizeError::Empty { sequence }),
        [_] => return Err(DepacketizeError::ShortH265Header { sequence }),
        _ => {}
    }
    match nal_type_of(payload[0]) {
        AP => {
            let mut rest = &payload[2..];
            if rest.is_empty() {
                return Err(DepacketizeError::BadAp { sequence });
            }
            while !rest.is_empty() {
                if rest.len() < 2 {
                    return Err(DepacketizeError::BadAp { sequence });
                }
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                if size < 2 || rest.len() < 2 + size {
                    return Err(DepacketizeError::BadAp { sequence });
                }
                add_nal(unit, kept, sequence, &rest[2..2 + size])?;
                rest = &rest[2 + size..];
            }
            Ok(())
        }
        FU => {
            // FU header: S, E, then the fragmented NAL unit's type.
            let fu = *payload.get(2).ok_or(DepacketizeError::BadFu { sequence })?;
            let (start, end, nal_type) = (fu & 0x80 != 0, fu & 0x40 != 0, fu & 0x3f);
            if (start && end) || matches!(nal_type, AP | FU | PACI) {
                return Err(DepacketizeError::BadFu { sequence });
            }
            let body = &payload[3..];
            // Room for the body, its header, and the kept parameter sets that may go first.
            if unit.len() + body.len() + 6 + kept.len() > MAX_ACCESS_UNIT_BYTES {
                return Err(DepacketizeError::TooLarge { sequence });
            }
            if start {
                kept.complete(unit, nal_type);
                // The payload header with the fragmented unit's type is its NAL header.
                unit.begin_nal(&[(payload[0] & 0x81) | (nal_type << 1), payload[1]]);
            }
            if !unit.extend_nal(body) {
                return Err(DepacketizeError::FuWithoutStart { sequence });
            }
            if end && let Some(nal) = unit.end_nal() {
                kept.remember(nal);
            }
            Ok(())
        }
        payload_type @ PACI.. => Err(DepacketizeError::UnsupportedH265 {
            sequence,
            payload_type,
        }),
        _ => add_nal(unit, kept, sequence, payload),
    }
}

fn add_nal(
    unit: &mut AvccUnit,
    kept: &mut KeptSets,
    sequence: u16,
    nal: &[u8],
) -> Result<(), DepacketizeError> {
    // Room for the NAL unit and the kept parameter sets that may go before it.
    if unit.len() + nal.len() + 4 + kept.len() > MAX_ACCESS_UNIT_BYTES {
        return Err(DepacketizeError::TooLarge { sequence });
    }
    kept.complete(unit, nal_unit_type(nal));
    unit.push_nal(nal);
    kept.remember(nal);
    Ok(())
}

#[cfg(test)]
#[path = "h265_tests.rs"]
mod tests;
