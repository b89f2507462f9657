#![no_main]
//! Fuzz target: `kcap_fuzzing::pcap_file` (see crates/fuzzing).
libfuzzer_sys::fuzz_target!(|data: &[u8]| kcap_fuzzing::pcap_file(data));
