//! LL-HLS grants: a short-lived signed path prefix (`/hls/g/<grant>/...`) that lets a CDN cache
//! protected LL-HLS under one shared key per time window, sans-IO (the time comes in as unix
//! seconds).
//!
//! A grant is `<expiry>-<signature>`: the expiry in unix seconds and the first 128 bits of
//! HMAC-SHA256(server key, expiry), in hex. Everyone signed in during the same window gets the
//! same grant, so their requests share the cache's entries; a grant lasts one to two windows.
//! The key is random per server start (a restart invalidates grants; pages get a new one on
//! their next multivariant request).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::sessions::hex;

/// Why a grant does not admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantRefusal {
    #[error("not a grant")]
    Malformed,
    #[error("the grant is not this server's")]
    BadSignature,
    #[error("the grant has expired")]
    Expired,
}

/// Issues and checks grants.
pub struct HlsGrants {
    key: [u8; 32],
    window: u64,
}

impl std::fmt::Debug for HlsGrants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlsGrants")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl HlsGrants {
    /// Grants signed with `key`, one per `window_secs` (at least 1).
    pub fn new(key: [u8; 32], window_secs: u64) -> Self {
        Self {
            key,
            window: window_secs.max(1),
        }
    }

    fn sign(&self, expiry: u64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(expiry.to_string().as_bytes());
        hex(&mac.finalize().into_bytes()[..16])
    }

    /// The grant of the window `now` is in: it expires at the end of the next window.
    pub fn issue(&self, now: u64) -> String {
        let expiry = (now / self.window + 2) * self.window;
        format!("{expiry}-{}", self.sign(expiry))
    }

    /// Whether `grant` is this server's and not expired at `now`.
    pub fn check(&self, now: u64, grant: &str) -> Result<(), GrantRefusal> {
        let (expiry, signature) = grant.split_once('-').ok_or(GrantRefusal::Malformed)?;
        if expiry.is_empty() || expiry.len() > 20 || !expiry.bytes().all(|b| b.is_ascii_digit()) {
            return Err(GrantRefusal::Malformed);
        }
        let expiry: u64 = expiry.parse().map_err(|_| GrantRefusal::Malformed)?;
        if signature.len() != 32 {
            return Err(GrantRefusal::Malformed);
        }
        let expected = self.sign(expiry);
        let same = expected
            .bytes()
            .zip(signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if !same {
            return Err(GrantRefusal::BadSignature);
        }
        if now >= expiry {
            return Err(GrantRefusal::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_grant_per_window_signed_and_expiring() {
        let grants = HlsGrants::new([9; 32], 600);
        let t = 1_800_000_000; // a multiple of 600
        let g = grants.issue(t);
        assert!(g.starts_with(&format!("{}-", t + 1200)), "{g}");
        // The whole window shares it (one cache key), the next window gets another.
        assert_eq!(grants.issue(t + 599), g);
        assert_ne!(grants.issue(t + 600), g);
        assert_eq!(grants.check(t, &g), Ok(()));
        assert_eq!(grants.check(t + 1199, &g), Ok(()));
        assert_eq!(grants.check(t + 1200, &g), Err(GrantRefusal::Expired));
        // Another key's grant, a changed expiry, junk.
        let other = HlsGrants::new([8; 32], 600).issue(t);
        assert_eq!(grants.check(t, &other), Err(GrantRefusal::BadSignature));
        let sig = g.split_once('-').unwrap().1;
        let later = format!("{}-{sig}", t + 999_999);
        assert_eq!(grants.check(t, &later), Err(GrantRefusal::BadSignature));
        for junk in [
            "",
            "-",
            "12-34",
            "x-00000000000000000000000000000000",
            &"9".repeat(40),
        ] {
            assert_eq!(
                grants.check(t, junk),
                Err(GrantRefusal::Malformed),
                "{junk}"
            );
        }
        assert!(!format!("{grants:?}").contains("9, 9"));
    }
}
