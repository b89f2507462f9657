#![no_main]
//! Fuzz target: `kcap_fuzzing::sll_rewrite` (see crates/fuzzing).
libfuzzer_sys::fuzz_target!(|data: &[u8]| kcap_fuzzing::sll_rewrite(data));
