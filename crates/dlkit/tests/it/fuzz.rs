//! The fuzz harness in the normal test run: every saved regression input (`fixtures/fuzz/TARGET/*.bin`,
//! written by `cargo xtask fuzz` when an input panicked) is replayed, and each target runs a few hundred
//! seeded mutations; no input may panic.

use dlkit::fuzz::{TARGETS, Target, fuzz};
use std::path::Path;

#[test]
fn saved_fuzz_inputs_and_fresh_mutations_do_not_panic() {
    let regressions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/fuzz");
    let crashes = tempfile::tempdir().unwrap();
    for name in TARGETS {
        let target = Target::new(name).unwrap();
        // The seeds parse (checked by `Target::new`), so mutations start from valid files.
        assert!(!target.seeds().is_empty(), "{name}");
        let dir = regressions.join(name);
        if dir.is_dir() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let path = e.unwrap().path();
                if path.extension().is_some_and(|x| x == "bin") {
                    let input = std::fs::read(&path).unwrap();
                    let _ = target.run(&input); // an error or a value; a panic fails the test
                }
            }
        }
        let report = fuzz(name, 400, 99, 1, crashes.path()).unwrap();
        assert!(report.crashes.is_empty(), "{name}: panicking inputs saved as {:?}", report.crashes);
        // Mutations are near the seeds: some still parse, most do not.
        assert!(report.accepted < report.cases, "{name}: every mutation parsed");
    }
}
