//! The `config_file` fuzz entry (`r58::config::fuzzing`), run briefly on every build like the
//! `sfu` entries in `sfu/tests/fuzz_smoke.rs`: its seeds (`fuzz/seeds/config_file/`) and
//! deterministic mutations of them.

use std::path::Path;

use r58::config::fuzzing::{config_file, from_file_text};
use sfu::fuzzing::smoke::{MUTATIONS, run_smoke, seeds_in};

fn seeds() -> Vec<(String, Vec<u8>)> {
    seeds_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/config_file"))
}

#[test]
fn smoke_config_file() {
    run_smoke("config_file", config_file, &seeds(), MUTATIONS);
}

/// The seeds start the fuzzer deep: the valid ones pass every check (so mutations reach the
/// code past parsing), `bad.toml` and `unknown_key.toml` are refused, and a relative `token_file` is refused without a
/// file to read.
#[test]
fn config_seeds_pass_or_fail_as_named() {
    for (name, data) in seeds() {
        let text = String::from_utf8(data).expect("seed is UTF-8");
        let result = from_file_text(&text);
        match name.as_str() {
            "bad.toml" => {
                let err = result.expect_err("bad.toml is refused").to_string();
                assert!(err.contains("auth[0].path"), "{err}");
            }
            "unknown_key.toml" => {
                let err = result.expect_err("an unknown key is refused").to_string();
                assert!(err.contains("unknown key 'hls.nonsense'"), "{err}");
            }
            "static_turn_tls.toml" => {
                let err = result.expect_err("no token file to read").to_string();
                assert!(err.contains("token_file"), "{err}");
            }
            _ => {
                let config = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                if name == "full.toml" {
                    assert_eq!(config.auth.len(), 2);
                    assert_eq!(config.cameras.len(), 1);
                    assert!(config.admin.token.is_some() && config.turn.token.is_some());
                }
            }
        }
    }
}
