#![no_main]
//! Fuzz target: `kcap_fuzzing::stream_decoder` (see crates/fuzzing).
libfuzzer_sys::fuzz_target!(|data: &[u8]| kcap_fuzzing::stream_decoder(data));
