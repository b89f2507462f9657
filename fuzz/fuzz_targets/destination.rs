#![no_main]
//! Fuzz target: `kcap_fuzzing::destination` (see crates/fuzzing).
libfuzzer_sys::fuzz_target!(|data: &[u8]| kcap_fuzzing::destination(data));
