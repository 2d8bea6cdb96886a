//! The TURN REST credential scheme (draft-uberti-behave-turn-rest) that coturn checks with
//! `use-auth-secret` / `static-auth-secret`: username `"<unix expiry>:<user>"`, password
//! `base64(HMAC-SHA1(secret, username))`. coturn recomputes the password from the username and
//! refuses a username whose timestamp has passed, so nothing is stored on either side.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{IceServer, Secret};

/// A signed username/password pair and when coturn stops accepting it.
#[derive(Clone, PartialEq, Eq)]
pub struct RestCredential {
    pub username: String,
    pub credential: String,
    /// Unix time (seconds) written into the username.
    pub expires_unix: u64,
}

impl std::fmt::Debug for RestCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestCredential")
            .field("expires_unix", &self.expires_unix)
            .finish_non_exhaustive()
    }
}

/// The Unix time (whole seconds) `ttl` after `now`. A clock before 1970 counts as 1970.
pub fn expiry_unix(now: SystemTime, ttl: Duration) -> u64 {
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    now.saturating_add(ttl.as_secs())
}

/// `base64(HMAC-SHA1(secret, username))`.
pub fn password(secret: &[u8], username: &str) -> String {
    // SHA-1 because that is what coturn computes; HMAC-SHA1 is not broken as a MAC.
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    STANDARD.encode(hmac::sign(&key, username.as_bytes()).as_ref())
}

/// Credentials valid for `ttl` from `now` for `user`.
pub fn sign(secret: &Secret, user: &str, now: SystemTime, ttl: Duration) -> RestCredential {
    let expires_unix = expiry_unix(now, ttl);
    let username = format!("{expires_unix}:{user}");
    let credential = password(secret.expose().as_bytes(), &username);
    RestCredential {
        username,
        credential,
        expires_unix,
    }
}

/// The ICE servers for coturn: STUN first (if any), then the TURN URLs with fresh credentials.
pub fn ice_servers(
    stun_urls: &[String],
    turn_urls: &[String],
    secret: &Secret,
    user: &str,
    now: SystemTime,
    ttl: Duration,
) -> Vec<IceServer> {
    let signed = sign(secret, user, now, ttl);
    let mut out = Vec::with_capacity(2);
    if !stun_urls.is_empty() {
        out.push(IceServer::open(stun_urls.to_vec()));
    }
    out.push(IceServer {
        urls: turn_urls.to_vec(),
        username: Some(signed.username),
        credential: Some(signed.credential),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    // Expected values computed independently, once, with OpenSSL and Python:
    //   printf '%s' "1700000000:r58" | openssl dgst -sha1 -hmac testsecret -binary | base64
    //   python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(
    //       b"north", b"1735689600:guest", hashlib.sha1).digest()).decode())'
    #[test]
    fn hmac_vectors_match_openssl() {
        assert_eq!(
            password(b"testsecret", "1700000000:r58"),
            "89PZ0RO3cT9OSmSYRP43ft33YJw="
        );
        assert_eq!(
            password(b"north", "1735689600:guest"),
            "fCVb6A8XXxB9bSnD3M0869j9rtg="
        );
        // RFC 2202 test case 2 (key "Jefe"), digest effcdf6ae5eb2fa2d27416d5f184df9c259a7c79,
        // base64 as printed by `openssl dgst -sha1 -hmac Jefe -binary | base64`.
        assert_eq!(
            password(b"Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
    }

    #[test]
    fn username_carries_the_expiry_and_the_user() {
        let c = sign(
            &Secret::new("testsecret"),
            "r58",
            at(1_700_000_000 - 86_400),
            Duration::from_secs(86_400),
        );
        assert_eq!(c.username, "1700000000:r58");
        assert_eq!(c.expires_unix, 1_700_000_000);
        assert_eq!(c.credential, "89PZ0RO3cT9OSmSYRP43ft33YJw=");
    }

    #[test]
    fn expiry_arithmetic() {
        // Sub-second parts of now are dropped, not rounded up.
        let now = at(1_000) + Duration::from_millis(999);
        assert_eq!(expiry_unix(now, Duration::from_secs(60)), 1_060);
        assert_eq!(expiry_unix(at(0), Duration::ZERO), 0);
        // A clock before the epoch does not wrap around.
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(expiry_unix(before, Duration::from_secs(10)), 10);
        // Far future saturates instead of overflowing.
        assert_eq!(
            expiry_unix(at(u64::MAX / 2), Duration::from_secs(u64::MAX)),
            u64::MAX
        );
    }

    #[test]
    fn ice_servers_put_stun_first_and_sign_turn() {
        let servers = ice_servers(
            &["stun:127.0.0.1:3478".to_owned()],
            &["turn:127.0.0.1:3478?transport=udp".to_owned()],
            &Secret::new("north"),
            "guest",
            at(1_735_689_600 - 3_600),
            Duration::from_secs(3_600),
        );
        assert_eq!(servers.len(), 2);
        assert_eq!(
            servers[0],
            IceServer::open(vec!["stun:127.0.0.1:3478".into()])
        );
        assert_eq!(servers[1].username.as_deref(), Some("1735689600:guest"));
        assert_eq!(
            servers[1].credential.as_deref(),
            Some("fCVb6A8XXxB9bSnD3M0869j9rtg=")
        );
        // Without STUN URLs there is only the TURN entry.
        let only = ice_servers(
            &[],
            &["turn:a".to_owned()],
            &Secret::new("s"),
            "u",
            at(10),
            Duration::from_secs(1),
        );
        assert_eq!(only.len(), 1);
    }

    #[test]
    fn debug_output_redacts() {
        let c = sign(
            &Secret::new("topsecret"),
            "r58",
            at(0),
            Duration::from_secs(1),
        );
        let text = format!("{c:?} {:?}", Secret::new("topsecret"));
        assert!(!text.contains("topsecret"), "{text}");
        assert!(!text.contains(&c.credential), "{text}");
        assert!(!text.contains("1:r58"), "{text}");
    }
}
