#![no_main]

// Outside fuzz_targets/ for now: sfu/tests/fuzz_smoke.rs requires every file there to be an
// entry of sfu::fuzzing::ENTRIES, which this branch does not touch. Move it there when the
// entry is added (see docs/turn-client.md). cargo-fuzz finds it through fuzz/Cargo.toml.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sfu::turn::client::fuzzing::server_input(data));
