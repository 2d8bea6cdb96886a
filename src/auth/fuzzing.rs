//! Fuzz entry for the sign-in parsers (the `auth_tokens` target in `fuzz/`; seeds in
//! `fuzz/seeds/auth_tokens/`, smoke test in `tests/auth_fuzz_smoke.rs`).

use std::time::{Duration, Instant, SystemTime};

use super::grants::HlsGrants;
use super::sessions::SessionId;
use super::users::Users;
use super::{Gatekeeper, cookie, parse_credentials};
use crate::config::AccessConfig;

/// Fuzz entry: the same bytes as a `Cookie` header, a session id, a sign-in body, a users
/// file, an invite token and an LL-HLS grant. Must not panic; a session id found in a cookie is
/// exactly its text; a made-up cookie is never a session, a made-up invite no invite, a
/// made-up grant no grant; a users file that parses writes back to the same users.
pub fn auth_tokens(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for id in cookie::session_ids([text.as_ref()]) {
        assert!(
            text.contains(&id.to_hex()),
            "an id that is not in the header"
        );
    }
    if let Some(id) = SessionId::parse(&text) {
        assert_eq!(id.to_hex(), text, "a session id that is not its text");
    }
    let keeper = Gatekeeper::new(
        AccessConfig {
            session_lifetime: Duration::from_secs(60),
            ..AccessConfig::default()
        },
        false,
    );
    assert!(
        keeper.signed_in(Instant::now(), [text.as_ref()]).is_none(),
        "a made-up cookie is a session"
    );
    if let Some((user, password)) = parse_credentials(data) {
        assert!(!user.is_empty() && password.len() <= 1024);
    }
    assert!(keeper.invites().check(SystemTime::now(), &text).is_err());
    let grants = HlsGrants::new([7; 32], 600);
    if grants.check(0, &text).is_ok() {
        // Only a forged HMAC could pass: the fuzzer does not know the key.
        assert_eq!(grants.issue(0), text, "a made-up grant passed");
    }
    if let Ok(users) = Users::parse(&text) {
        let again = Users::parse(&users.to_toml()).expect("written users parse");
        assert_eq!(again, users, "users change when written and read back");
    }
}
