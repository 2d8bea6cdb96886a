#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| r58::auth::fuzzing::auth_tokens(data));
