//! Replays every saved fuzz input through its target's body: the seed corpora
//! (`fuzz/corpus/TARGET/`, from the test bed's real captures and files) and every
//! input that once crashed (`fuzz/regressions/TARGET/`). Runs on stable in CI;
//! `scripts/fuzz` is what finds new ones.

use std::path::Path;

#[test]
fn every_saved_input_passes_its_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut replayed = 0;
    for (name, body) in kcap_fuzzing::TARGETS {
        let mut seeds = 0;
        for folder in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(folder).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let result = std::panic::catch_unwind(|| body(&data));
                assert!(result.is_ok(), "{name}: {} fails", path.display());
                seeds += usize::from(folder == "corpus");
                replayed += 1;
            }
        }
        assert!(seeds > 0, "{name} has no seed corpus in fuzz/corpus/{name}");
    }
    eprintln!("replayed {replayed} inputs");
}
