#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sfu::fuzzing::turn_client(data));
