#![no_main]
//! Fuzz target: `kcap_fuzzing::stderr_classifier` (see crates/fuzzing).
libfuzzer_sys::fuzz_target!(|data: &[u8]| kcap_fuzzing::stderr_classifier(data));
