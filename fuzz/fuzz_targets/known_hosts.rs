#![no_main]
//! Fuzz target: `kcap_fuzzing::known_hosts` (see crates/fuzzing).
libfuzzer_sys::fuzz_target!(|data: &[u8]| kcap_fuzzing::known_hosts(data));
