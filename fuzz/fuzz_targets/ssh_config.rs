#![no_main]
//! Fuzz target: `kcap_fuzzing::ssh_config` (see crates/fuzzing).
libfuzzer_sys::fuzz_target!(|data: &[u8]| kcap_fuzzing::ssh_config(data));
