#![no_main]
//! Fuzz target: `kcap_fuzzing::annotations` (see crates/fuzzing).
libfuzzer_sys::fuzz_target!(|data: &[u8]| kcap_fuzzing::annotations(data));
