//! The `auth_tokens` fuzz entry (`r58::auth::fuzzing`), run briefly on every build like the
//! other smoke tests: its seeds (`fuzz/seeds/auth_tokens/`) and deterministic mutations.

use std::path::Path;

use r58::auth::cookie::session_ids;
use r58::auth::fuzzing::auth_tokens;
use r58::auth::parse_credentials;
use r58::auth::sessions::SessionId;
use r58::auth::users::Users;
use sfu::fuzzing::smoke::{MUTATIONS, run_smoke, seeds_in};

fn seeds() -> Vec<(String, Vec<u8>)> {
    seeds_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/auth_tokens"))
}

#[test]
fn smoke_auth_tokens() {
    run_smoke("auth_tokens", auth_tokens, &seeds(), MUTATIONS);
}

/// Each seed is a valid input of the parser it is named for, so mutations start deep.
#[test]
fn seeds_parse_as_named() {
    for (name, data) in seeds() {
        let text = String::from_utf8(data.clone()).expect("UTF-8");
        match name.as_str() {
            "cookie.txt" => assert_eq!(session_ids([text.as_str()]).len(), 1),
            "session_id.txt" => assert!(SessionId::parse(&text).is_some()),
            "credentials.json" => assert!(parse_credentials(&data).is_some()),
            "grant.txt" => assert!(
                text.split_once('-')
                    .is_some_and(|(e, s)| e.len() == 10 && s.len() == 32)
            ),
            "users.toml" => assert_eq!(Users::parse(&text).expect("users").users.len(), 1),
            other => panic!("unexpected seed {other}"),
        }
    }
}
