//! A big-endian bit reader over an H.264 or H.265 RBSP, with the exp-Golomb codes of ITU-T
//! H.264 §9.1 (H.265 §9.2 is the same).
//!
//! Every read is bounds checked and returns an error at the end of the data, so a parser built
//! on it cannot panic on truncated or hostile input.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum BitsError {
    #[error("read past the end of the data")]
    End,
    #[error("exp-Golomb code longer than 32 bits")]
    GolombTooLong,
}

/// Removes the emulation prevention bytes (`00 00 03` -> `00 00`) of a NAL unit payload.
pub fn unescape_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &byte in nal {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
    out
}

#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    position: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, position: 0 }
    }

    pub fn bit(&mut self) -> Result<bool, BitsError> {
        let byte = self.data.get(self.position / 8).ok_or(BitsError::End)?;
        let bit = (byte >> (7 - self.position % 8)) & 1;
        self.position += 1;
        Ok(bit == 1)
    }

    /// Reads `count` (at most 32) bits as an unsigned number.
    pub fn bits(&mut self, count: u32) -> Result<u32, BitsError> {
        debug_assert!(count <= 32);
        let mut value = 0u64;
        for _ in 0..count.min(32) {
            value = (value << 1) | u64::from(self.bit()?);
        }
        Ok(value as u32)
    }

    pub fn byte(&mut self) -> Result<u8, BitsError> {
        Ok(self.bits(8)? as u8)
    }

    /// Unsigned exp-Golomb, `ue(v)`.
    pub fn ue(&mut self) -> Result<u32, BitsError> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(BitsError::GolombTooLong);
            }
        }
        let rest = u64::from(self.bits(zeros)?);
        Ok(((1u64 << zeros) - 1 + rest) as u32)
    }

    /// Signed exp-Golomb, `se(v)`.
    pub fn se(&mut self) -> Result<i32, BitsError> {
        let code = i64::from(self.ue()?);
        let value = if code % 2 == 1 {
            (code + 1) / 2
        } else {
            -(code / 2)
        };
        Ok(value as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bits_and_golomb_codes() {
        // 1 | 010 | 011 | 00100 | 00101 -> ue 0, 1, 2, 3; then se(4) = -2
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&data);
        assert_eq!(r.ue().unwrap(), 0);
        assert_eq!(r.ue().unwrap(), 1);
        assert_eq!(r.ue().unwrap(), 2);
        assert_eq!(r.ue().unwrap(), 3);
        assert_eq!(r.se().unwrap(), -2);
        assert_eq!(r.bits(8), Err(BitsError::End));
    }

    #[test]
    fn long_or_truncated_codes_are_errors() {
        assert_eq!(BitReader::new(&[0; 8]).ue(), Err(BitsError::GolombTooLong));
        assert_eq!(BitReader::new(&[0, 0]).ue(), Err(BitsError::End));
        assert_eq!(BitReader::new(&[]).bit(), Err(BitsError::End));
        // 32 zeros, a one, 32 ones: the largest code there is.
        let mut max = vec![0, 0, 0, 0, 0x80];
        max.extend([0xff; 4]);
        assert_eq!(BitReader::new(&max).ue(), Err(BitsError::GolombTooLong));
    }

    #[test]
    fn emulation_prevention_is_removed() {
        assert_eq!(
            unescape_rbsp(&[1, 0, 0, 3, 1, 0, 0, 3, 0, 3]),
            [1, 0, 0, 1, 0, 0, 0, 3]
        );
    }
}
