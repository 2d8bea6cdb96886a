#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sfu::turn::client::fuzzing::server_input(data));
