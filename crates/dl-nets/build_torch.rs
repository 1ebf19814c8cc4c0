//! Build script shared by the crates on `tch`: checks that libtorch is set up, and links it for this
//! crate's binaries, tests and benches (rpath to torch's `lib/`, `libtorch_cuda` kept when present).
//!
//! dl-nets (`links = "dlkit_torch"`) does the check and passes the lib folder on as
//! `DEP_DLKIT_TORCH_LIB`; dl-train and dlkit depend on dl-nets, so their scripts run only after the
//! check passed, and a missing libtorch gives exactly one message. dlkit (`links = "dlkit"`) passes the
//! folder on again, so that a crate depending on dlkit reads it as `DEP_DLKIT_TORCH_LIB` in its own
//! build script and links its binaries the same way (see the README's "Using dlkit in your crate").

use std::path::{Path, PathBuf};

fn fail(message: &str) -> ! {
    eprintln!("\n{message}\n");
    std::process::exit(1);
}

fn main() {
    let links = std::env::var("CARGO_MANIFEST_LINKS").ok();
    if links.as_deref() != Some("dlkit_torch") {
        let lib = std::env::var_os("DEP_DLKIT_TORCH_LIB").expect("dl-nets passes the libtorch folder on");
        link_args(Path::new(&lib));
        if links.as_deref() == Some("dlkit") {
            println!("cargo:torch_lib={}", Path::new(&lib).display());
        }
        return;
    }
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Some(root) = std::env::var_os("LIBTORCH").map(PathBuf::from) else {
        fail(
            "libtorch is not set up: LIBTORCH is unset (it normally comes from .cargo/config.toml).\n\
             Run `cargo xtask setup` in the repository, then build again.",
        );
    };
    let lib = root.join("lib");
    let torch_cpu = lib.join("libtorch_cpu.so");
    // A missing file makes cargo rerun this script on every build, so removing the venv is noticed.
    println!("cargo:rerun-if-changed={}", torch_cpu.display());
    if !torch_cpu.is_file() {
        fail(&format!(
            "libtorch is not set up: {} does not exist.\n\
             Run `cargo xtask setup` in the repository (it installs torch 2.13.0 into a cached venv \
             once and links it), then build again.",
            torch_cpu.display()
        ));
    }
    let lib = std::fs::canonicalize(&lib).unwrap_or(lib);
    println!("cargo:lib={}", lib.display());
    link_args(&lib);
}

fn link_args(lib: &Path) {
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").is_file() {
        // `--as-needed` would drop libtorch_cuda (no symbol of it is referenced), and CUDA would then be
        // unavailable at run time even on a GPU machine.
        println!("cargo:rustc-link-arg=-Wl,-L,{},--no-as-needed,-ltorch_cuda,--as-needed", lib.display());
    }
}
