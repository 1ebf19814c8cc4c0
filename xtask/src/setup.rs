//! `cargo xtask setup`: find or install libtorch 2.13.0 and link it into this clone.
//!
//! Order: a `LIBTORCH` exported by the user; a `python3` on PATH whose torch is 2.13.0; the cached venv
//! (`$DLKIT_TORCH_VENV`, default `<cache>/torch-2.13.0`), created with `pip install torch==2.13.0` when
//! missing. The result is the git-ignored link `.dlkit/libtorch`, which `.cargo/config.toml` hands to
//! cargo as `LIBTORCH`; the torch build script (crates/dl-nets/build_torch.rs) adds an rpath to its `lib/`.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The libtorch version tch 0.26 is built against.
pub const TORCH_VERSION: &str = "2.13.0";
const BENCH_TOOLS: &[&str] = &[
    "torchvision==0.28.0",
    "pycocotools==2.0.11",
    "faster-coco-eval==1.8.0",
    "shapely==2.2.0",
    "scikit-learn",
    // Independent references for the pretrained-weight fixture (fixtures/scripts/pretrained_reference.py).
    "efficientnet_lite_pytorch==0.1.0",
    "protobuf==7.36.2",
];
const VENV_STAMP: &str = ".dlkit-complete";
const BENCH_STAMP: &str = ".dlkit-bench-tools";

/// The link this clone's cargo builds use as `LIBTORCH`.
pub fn link_path(repo: &Path) -> PathBuf {
    repo.join(".dlkit").join("libtorch")
}

/// The venv dlkit installs torch into.
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("DLKIT_TORCH_VENV").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => dl_testkit::cache_root().join(format!("torch-{TORCH_VERSION}")),
    }
}

/// The version of the libtorch in `dir` (a pip `torch/` folder or an unpacked libtorch), if it has one.
fn libtorch_version(dir: &Path) -> Option<String> {
    if !dir.join("lib").join("libtorch_cpu.so").is_file() {
        return None;
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("build-version")) {
        return Some(text.trim().to_owned());
    }
    let text = std::fs::read_to_string(dir.join("version.py")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix("__version__")?.trim_start().strip_prefix('=')?.trim();
        Some(rest.trim_matches(|c| c == '\'' || c == '"').to_owned())
    })
}

fn is_wanted(version: &str) -> bool {
    version.split('+').next() == Some(TORCH_VERSION)
}

/// Makes `.dlkit/libtorch` point at a libtorch 2.13.0, installing one when none is found.
/// With `bench_tools`, also installs the Python reference tools into the venv.
pub fn setup(repo: &Path, bench_tools: bool) -> Result<()> {
    let link = link_path(repo);
    let torch_dir = match libtorch_version(&link) {
        Some(v) if is_wanted(&v) && user_libtorch(repo).is_none() => {
            let target = std::fs::canonicalize(&link).unwrap_or_else(|_| link.clone());
            println!("libtorch {v} ready: {}", target.display());
            target
        }
        _ => {
            let dir = find_or_install(repo)?;
            make_link(&link, &dir)?;
            println!("linked {} -> {}", link.display(), dir.display());
            dir
        }
    };
    if bench_tools {
        install_bench_tools(&torch_dir)?;
    }
    Ok(())
}

/// `LIBTORCH` as the user exported it (cargo also sets it to our link for the processes it runs).
fn user_libtorch(repo: &Path) -> Option<PathBuf> {
    let value = PathBuf::from(std::env::var_os("LIBTORCH").filter(|v| !v.is_empty())?);
    (value != link_path(repo)).then_some(value)
}

fn find_or_install(repo: &Path) -> Result<PathBuf> {
    if let Some(dir) = user_libtorch(repo) {
        return match libtorch_version(&dir) {
            Some(v) if is_wanted(&v) => Ok(std::fs::canonicalize(&dir).unwrap_or(dir)),
            Some(v) => bail!(
                "LIBTORCH={} is libtorch {v}, but dlkit (tch 0.26) needs {TORCH_VERSION}.\n\
                 Unset LIBTORCH to let `cargo xtask setup` install torch {TORCH_VERSION} into a venv, \
                 or point LIBTORCH at a libtorch {TORCH_VERSION}.",
                dir.display()
            ),
            None => bail!(
                "LIBTORCH={} holds no libtorch (no lib/libtorch_cpu.so).\n\
                 Unset LIBTORCH to let `cargo xtask setup` install torch {TORCH_VERSION} into a venv.",
                dir.display()
            ),
        };
    }
    if let Some((version, dir)) = python_torch(Path::new("python3")) {
        if is_wanted(&version) {
            println!("using the torch {version} of python3 on PATH: {}", dir.display());
            return Ok(dir);
        }
        println!("python3 on PATH has torch {version}, not {TORCH_VERSION}: using a dedicated venv instead");
    }
    let venv = venv_dir();
    if venv.join(VENV_STAMP).is_file()
        && let Some(dir) = venv_torch_dir(&venv)
        && libtorch_version(&dir).is_some_and(|v| is_wanted(&v))
    {
        println!("reusing the venv {}", venv.display());
        return Ok(dir);
    }
    install_venv(&venv)
}

/// torch's version and folder as `python` reports them, if it has torch.
fn python_torch(python: &Path) -> Option<(String, PathBuf)> {
    let out = Command::new(python)
        .args(["-c", "import os, torch; print(torch.__version__); print(os.path.dirname(torch.__file__))"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    Some((lines.next()?.trim().to_owned(), PathBuf::from(lines.next()?.trim())))
}

fn venv_torch_dir(venv: &Path) -> Option<PathBuf> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    lib.filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages").join("torch"))
        .find(|p| p.join("lib").join("libtorch_cpu.so").is_file())
}

fn install_venv(venv: &Path) -> Result<PathBuf> {
    let python3 = which("python3").context(
        "python3 is not installed: install Python 3 (Debian: `apt-get install python3 python3-venv`), \
         or export LIBTORCH pointing at a libtorch 2.13.0",
    )?;
    if venv.exists() {
        println!("removing the unfinished venv {}", venv.display());
        std::fs::remove_dir_all(venv).with_context(|| format!("cannot remove {}", venv.display()))?;
    }
    if let Some(parent) = venv.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    println!("creating the venv {} (once per machine; every clone reuses it)", venv.display());
    let out = Command::new(&python3).args(["-m", "venv"]).arg(venv).output()?;
    if !out.status.success() {
        bail!(
            "`python3 -m venv {}` failed: {}\nInstall the venv module (Debian: `apt-get install python3-venv`).",
            venv.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let python = venv.join("bin").join("python");
    println!("installing torch=={TORCH_VERSION} from PyPI into it (about a minute, 4.7 GB)");
    pip_install(&python, &[&format!("torch=={TORCH_VERSION}")])?;
    let dir = venv_torch_dir(venv).context("torch installed, but its lib/libtorch_cpu.so is missing")?;
    match libtorch_version(&dir) {
        Some(v) if is_wanted(&v) => {}
        other => bail!("pip installed torch {other:?}, expected {TORCH_VERSION}"),
    }
    std::fs::write(venv.join(VENV_STAMP), TORCH_VERSION)?;
    Ok(dir)
}

fn pip_install(python: &Path, specs: &[&str]) -> Result<()> {
    let status = Command::new(python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"])
        .args(specs)
        .status()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !status.success() {
        bail!(
            "pip could not install {} ({status}).\nCheck that PyPI is reachable from this machine \
             (proxy settings, PIP_INDEX_URL) and that there is disk space, then run `cargo xtask setup` again.",
            specs.join(" ")
        );
    }
    Ok(())
}

fn install_bench_tools(torch_dir: &Path) -> Result<()> {
    let venv = venv_dir();
    if !torch_dir.starts_with(&venv) {
        bail!(
            "--bench-tools installs into dlkit's venv {}, but libtorch comes from {}; \
             unset LIBTORCH (or remove the link .dlkit/libtorch) and run `cargo xtask setup --bench-tools`",
            venv.display(),
            torch_dir.display()
        );
    }
    let stamp = venv.join(BENCH_STAMP);
    let wanted = BENCH_TOOLS.join(" ");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        println!("bench tools ready in {}", venv.display());
        return Ok(());
    }
    println!("installing the reference tools into {}: {wanted}", venv.display());
    pip_install(&venv.join("bin").join("python"), BENCH_TOOLS)?;
    std::fs::write(stamp, wanted)?;
    Ok(())
}

fn make_link(link: &Path, target: &Path) -> Result<()> {
    let parent = link.parent().expect("the link has a parent");
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = parent.join(".libtorch.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("cannot create the link {}", tmp.display()))?;
    std::fs::rename(&tmp, link).with_context(|| format!("cannot create the link {}", link.display()))?;
    Ok(())
}

/// The full path of `program` on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}
