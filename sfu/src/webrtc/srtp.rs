//! Outbound SRTP for the forwarding path: protect in place, no allocation per packet.
//!
//! `rtc-srtp` returns a fresh buffer per packet and re-parses the header; forwarding protects
//! every packet once per viewer, so this module keys aws-lc directly and works in the caller's
//! buffer. Profiles: AEAD_AES_128_GCM (RFC 7714) and AES_CM_128_HMAC_SHA1_80 (RFC 3711), the
//! two our DTLS offers. Inbound packets (one per publisher packet, not per viewer) still go
//! through `rtc-srtp`.

use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use smallvec::SmallVec;
use thiserror::Error;

/// Bytes SRTP adds after the payload.
pub const GCM_TAG_LEN: usize = 16;
pub const HMAC_SHA1_80_TAG_LEN: usize = 10;
/// The most any profile adds: reserve this much after each packet.
pub const MAX_TRAILER: usize = GCM_TAG_LEN;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SrtpError {
    #[error("SRTP master key must be 16 bytes and salt {expected} bytes, got {key} and {salt}")]
    KeyLength {
        key: usize,
        salt: usize,
        expected: usize,
    },
    #[error("the crypto library refused the key")]
    Crypto,
    #[error("packet buffer has no room for the {0}-byte SRTP trailer")]
    NoRoom(usize),
}

/// The SRTP protection profiles the forwarding path implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    AeadAes128Gcm,
    Aes128CmHmacSha1_80,
}

impl Profile {
    pub fn salt_len(self) -> usize {
        match self {
            Profile::AeadAes128Gcm => 12,
            Profile::Aes128CmHmacSha1_80 => 14,
        }
    }

    pub fn trailer_len(self) -> usize {
        match self {
            Profile::AeadAes128Gcm => GCM_TAG_LEN,
            Profile::Aes128CmHmacSha1_80 => HMAC_SHA1_80_TAG_LEN,
        }
    }
}

// The GCM key schedule is stored inline on purpose: it is used for every forwarded packet, and
// boxing it would add a pointer chase per packet to save memory on the rarer HMAC profile.
#[allow(clippy::large_enum_variant)]
enum Cipher {
    Gcm {
        key: LessSafeKey,
        salt: [u8; 12],
    },
    CmHmac {
        key: EncryptingKey,
        auth: hmac::Key,
        salt: [u8; 14],
    },
}

/// Per-SSRC rollover counter: we number our own packets, so the newest sequence number seen
/// tells when the 16-bit sequence wrapped.
#[derive(Debug, Clone, Copy)]
struct Rollover {
    ssrc: u32,
    roc: u32,
    highest: u16,
}

/// Protects outgoing RTP packets of one session.
pub struct SrtpSender {
    cipher: Cipher,
    /// Per SSRC; a session sends a handful (video, audio, RTX), kept inline: fan-out touches
    /// every viewer's sender per packet, and a separate allocation was a cache miss each time.
    rollovers: SmallVec<[Rollover; 4]>,
}

/// RFC 3711 section 4.3.3 key derivation (AES-CM PRF, key derivation rate 0).
fn derive(
    master_key: &[u8; 16],
    master_salt: &[u8],
    label: u8,
    out: &mut [u8],
) -> Result<(), SrtpError> {
    let mut iv = [0u8; 16];
    iv[..master_salt.len()].copy_from_slice(master_salt);
    iv[7] ^= label;
    let key = EncryptingKey::ctr(
        UnboundCipherKey::new(&AES_128, master_key).map_err(|_| SrtpError::Crypto)?,
    )
    .map_err(|_| SrtpError::Crypto)?;
    out.fill(0);
    key.less_safe_encrypt(out, EncryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| SrtpError::Crypto)?;
    Ok(())
}

impl SrtpSender {
    pub fn new(profile: Profile, master_key: &[u8], master_salt: &[u8]) -> Result<Self, SrtpError> {
        let key: &[u8; 16] = master_key
            .try_into()
            .ok()
            .filter(|_| master_salt.len() == profile.salt_len())
            .ok_or(SrtpError::KeyLength {
                key: master_key.len(),
                salt: master_salt.len(),
                expected: profile.salt_len(),
            })?;
        let mut session_key = [0u8; 16];
        derive(key, master_salt, 0x00, &mut session_key)?;
        let cipher = match profile {
            Profile::AeadAes128Gcm => {
                let mut salt = [0u8; 12];
                derive(key, master_salt, 0x02, &mut salt)?;
                let unbound =
                    UnboundKey::new(&AES_128_GCM, &session_key).map_err(|_| SrtpError::Crypto)?;
                Cipher::Gcm {
                    key: LessSafeKey::new(unbound),
                    salt,
                }
            }
            Profile::Aes128CmHmacSha1_80 => {
                let mut salt = [0u8; 14];
                derive(key, master_salt, 0x02, &mut salt)?;
                let mut auth_key = [0u8; 20];
                derive(key, master_salt, 0x01, &mut auth_key)?;
                let unbound =
                    UnboundCipherKey::new(&AES_128, &session_key).map_err(|_| SrtpError::Crypto)?;
                Cipher::CmHmac {
                    key: EncryptingKey::ctr(unbound).map_err(|_| SrtpError::Crypto)?,
                    auth: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &auth_key),
                    salt,
                }
            }
        };
        Ok(Self {
            cipher,
            rollovers: SmallVec::new(),
        })
    }

    pub fn trailer_len(&self) -> usize {
        match self.cipher {
            Cipher::Gcm { .. } => GCM_TAG_LEN,
            Cipher::CmHmac { .. } => HMAC_SHA1_80_TAG_LEN,
        }
    }

    /// The rollover counter for `sequence` on `ssrc`, advancing it when the sequence wrapped.
    fn rollover(&mut self, ssrc: u32, sequence: u16) -> u32 {
        let entry = match self.rollovers.iter_mut().find(|r| r.ssrc == ssrc) {
            Some(entry) => entry,
            None => {
                self.rollovers.push(Rollover {
                    ssrc,
                    roc: 0,
                    highest: sequence,
                });
                return 0;
            }
        };
        let forward = sequence.wrapping_sub(entry.highest);
        if forward != 0 && forward < 0x8000 {
            if sequence < entry.highest {
                entry.roc = entry.roc.wrapping_add(1);
            }
            entry.highest = sequence;
            entry.roc
        } else if sequence > entry.highest {
            // An older packet (a retransmission) from before the last wrap.
            entry.roc.wrapping_sub(1)
        } else {
            entry.roc
        }
    }

    /// Protects the RTP packet in `buf[..len]` (header of `header_len` bytes, then payload) in
    /// place and appends the trailer; returns the protected length. `buf` must have
    /// `trailer_len()` spare bytes after `len`.
    pub fn protect(
        &mut self,
        buf: &mut [u8],
        len: usize,
        header_len: usize,
    ) -> Result<usize, SrtpError> {
        let trailer = self.trailer_len();
        if buf.len() < len + trailer || header_len < 12 || header_len > len {
            return Err(SrtpError::NoRoom(trailer));
        }
        let sequence = u16::from_be_bytes([buf[2], buf[3]]);
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let roc = self.rollover(ssrc, sequence);
        match &self.cipher {
            Cipher::Gcm { key, salt } => {
                let mut iv = [0u8; 12];
                iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
                iv[6..10].copy_from_slice(&roc.to_be_bytes());
                iv[10..12].copy_from_slice(&sequence.to_be_bytes());
                iv.iter_mut().zip(salt).for_each(|(b, s)| *b ^= s);
                let (header, rest) = buf.split_at_mut(header_len);
                let (payload, tail) = rest.split_at_mut(len - header_len);
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(iv),
                        Aad::from(&*header),
                        payload,
                    )
                    .map_err(|_| SrtpError::Crypto)?;
                tail[..GCM_TAG_LEN].copy_from_slice(tag.as_ref());
            }
            Cipher::CmHmac { key, auth, salt } => {
                let mut iv = [0u8; 16];
                iv[..14].copy_from_slice(salt);
                ssrc.to_be_bytes()
                    .iter()
                    .zip(&mut iv[4..8])
                    .for_each(|(s, b)| *b ^= s);
                roc.to_be_bytes()
                    .iter()
                    .chain(&sequence.to_be_bytes())
                    .zip(&mut iv[8..14])
                    .for_each(|(s, b)| *b ^= s);
                key.less_safe_encrypt(
                    &mut buf[header_len..len],
                    EncryptionContext::Iv128(FixedLength::from(iv)),
                )
                .map_err(|_| SrtpError::Crypto)?;
                let mut mac = hmac::Context::with_key(auth);
                mac.update(&buf[..len]);
                mac.update(&roc.to_be_bytes());
                let tag = mac.sign();
                buf[len..len + HMAC_SHA1_80_TAG_LEN]
                    .copy_from_slice(&tag.as_ref()[..HMAC_SHA1_80_TAG_LEN]);
            }
        }
        Ok(len + trailer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_srtp::context::Context;
    use rtc_srtp::protection_profile::ProtectionProfile;

    fn receiver(profile: ProtectionProfile, key: &[u8], salt: &[u8]) -> Context {
        let provider = rtc_dtls::crypto_provider::default_provider().expect("provider");
        Context::new(key, salt, profile, None, None, provider.crypto()).expect("context")
    }

    fn packet(seq: u16, payload_len: usize) -> Vec<u8> {
        let mut header = [0u8; 12];
        crate::rtp::packet::write_fixed_header(&mut header, false, 96, seq, 90_000, 0x1234_5678);
        let mut p = header.to_vec();
        p.extend((0..payload_len).map(|i| i as u8));
        p
    }

    /// Our protection must decrypt with rtc-srtp, an independent implementation, across a
    /// sequence number wrap (rollover counter) for both profiles.
    fn round_trip(ours: Profile, theirs: ProtectionProfile) {
        let key: Vec<u8> = (1..=16).collect();
        let salt: Vec<u8> = (100..100 + ours.salt_len() as u8).collect();
        let mut sender = SrtpSender::new(ours, &key, &salt).unwrap();
        let mut rx = receiver(theirs, &key, &salt);
        for seq in [65_530u16, 65_531, 65_535, 0, 1, 2, 65_534, 3] {
            let plain = packet(seq, 300);
            let mut buf = plain.clone();
            buf.resize(plain.len() + MAX_TRAILER, 0);
            let n = sender.protect(&mut buf, plain.len(), 12).unwrap();
            assert_eq!(n, plain.len() + ours.trailer_len());
            assert_ne!(&buf[12..plain.len()], &plain[12..], "payload encrypted");
            let decrypted = rx.decrypt_rtp(&buf[..n]).expect("rtc-srtp decrypts ours");
            assert_eq!(&decrypted[..], &plain[..], "seq {seq}");
        }
    }

    #[test]
    fn gcm_interoperates_with_rtc_srtp() {
        round_trip(Profile::AeadAes128Gcm, ProtectionProfile::AeadAes128Gcm);
    }

    #[test]
    fn cm_hmac_interoperates_with_rtc_srtp() {
        round_trip(
            Profile::Aes128CmHmacSha1_80,
            ProtectionProfile::Aes128CmHmacSha1_80,
        );
    }

    #[test]
    fn refuses_bad_keys_and_small_buffers() {
        assert!(SrtpSender::new(Profile::AeadAes128Gcm, &[0; 15], &[0; 12]).is_err());
        assert!(SrtpSender::new(Profile::AeadAes128Gcm, &[0; 16], &[0; 14]).is_err());
        let mut s = SrtpSender::new(Profile::AeadAes128Gcm, &[0; 16], &[0; 12]).unwrap();
        let mut p = packet(1, 10);
        let len = p.len();
        assert_eq!(s.protect(&mut p, len, 12), Err(SrtpError::NoRoom(16)));
    }
}
