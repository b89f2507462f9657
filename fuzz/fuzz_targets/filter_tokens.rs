#![no_main]
//! Fuzz target: `kcap_fuzzing::filter_tokens` (see crates/fuzzing).
libfuzzer_sys::fuzz_target!(|data: &[u8]| kcap_fuzzing::filter_tokens(data));
