#![no_main]
//! Fuzz target: `kcap_fuzzing::pcapng_file` (see crates/fuzzing).
libfuzzer_sys::fuzz_target!(|data: &[u8]| kcap_fuzzing::pcapng_file(data));
