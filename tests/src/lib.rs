//! Support for the end-to-end tests: the `dlkit` binary, and checks that every file a command left
//! behind reads back.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `dlkit` binary of this build, rebuilt first when it is missing or older than this test binary
/// (under `cargo test -p dlkit-e2e` nothing else builds it; `cargo test --workspace` already did).
///
/// # Panics
/// When it cannot be built.
pub fn dlkit_exe() -> PathBuf {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    EXE.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary has a path");
        // target/<profile>/deps/<test> → target/<profile>/dlkit
        let dir =
            exe.parent().and_then(Path::parent).expect("the test binary lives in target/<profile>/deps");
        let path = dir.join("dlkit");
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        if modified(&path).is_none_or(|m| modified(&exe).is_some_and(|t| m < t)) {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-p", "dlkit", "--bin", "dlkit"]);
            if dir.file_name().is_some_and(|p| p == "release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("cargo runs");
            assert!(
                status.success() && path.is_file(),
                "cannot build the dlkit binary at {}",
                path.display()
            );
        }
        path
    })
    .clone()
}

/// Every file below `dir` (none when it was not made yet), without the temporary files of interrupted
/// atomic writes (they never carry a final name).
///
/// # Errors
/// A folder that cannot be listed, naming it.
pub fn files_below(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut stack = if dir.exists() { vec![dir.to_owned()] } else { Vec::new() };
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let e = e.map_err(|e| format!("{}: {e}", d.display()))?;
            if e.path().is_dir() {
                stack.push(e.path());
            } else if !dlkit::io::is_temporary_name(&e.file_name().to_string_lossy()) {
                out.push(e.path());
            }
        }
    }
    Ok(out)
}

/// Checks that every file below `dir` (as [`files_below`]) reads back whole: model files and
/// checkpoints through dlkit, sample files, JSON, PNG. Returns how many files were checked.
///
/// # Errors
/// The first file that does not read, naming it.
pub fn check_files(dir: &Path) -> Result<usize, String> {
    let files = files_below(dir)?;
    for path in &files {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let what = path.display().to_string();
        let ok = match path.extension().and_then(|x| x.to_str()) {
            Some("dlm") => dlkit::Model::deserialize(&bytes, &what).map(|_| ()).map_err(|e| e.to_string()),
            Some("dlc") => {
                dlkit::train::inspect_checkpoint(&bytes, &what).map(|_| ()).map_err(|e| e.to_string())
            }
            Some("dls") => {
                dlkit::data::preprocess::decode_samples(&bytes, &what).map(|_| ()).map_err(|e| e.to_string())
            }
            Some("json") => {
                serde_json::from_slice::<serde_json::Value>(&bytes).map(|_| ()).map_err(|e| e.to_string())
            }
            Some("png") => image::load_from_memory(&bytes).map(|_| ()).map_err(|e| e.to_string()),
            _ => Ok(()),
        };
        ok.map_err(|e| format!("{what} does not read back: {e}"))?;
    }
    Ok(files.len())
}
