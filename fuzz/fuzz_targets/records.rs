#![no_main]
//! Fuzz target: `kcap_fuzzing::records` (see crates/fuzzing).
libfuzzer_sys::fuzz_target!(|data: &[u8]| kcap_fuzzing::records(data));
