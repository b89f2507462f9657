#![no_main]
//! Fuzz target: `kcap_fuzzing::agent_inputs` (see crates/fuzzing).
libfuzzer_sys::fuzz_target!(|data: &[u8]| kcap_fuzzing::agent_inputs(data));
