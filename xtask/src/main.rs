//! dlkit automation: `cargo xtask setup | data | test | ci`.
//!
//! Every command that needs libtorch runs `setup` first; `setup` is idempotent and fast once done.

mod bench;
mod data;
mod fetch;
mod imgviz;
mod setup;
mod textures;
mod weights;

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  setup [--bench-tools]   find or install libtorch 2.13.0 (a cached venv) and link it into this clone;
                          --bench-tools also installs torchvision, pycocotools, faster-coco-eval,
                          shapely and scikit-learn into that venv (reference fixtures, side-by-side benches)
  data [NAME...]          fetch and convert the real datasets (default: all): fashion-mnist, mnist5k,
                          elpv, deepforest, labelme, darknet (six photos for ImageNet checks)
  weights [NAME...]       fetch and convert the pretrained ImageNet backbones (default: all):
                          efficientnet_lite0, efficientnet_lite1, efficientnet_lite2, mobilenet_v2,
                          squeezenet, mobilenet_v1
  test [ARGS...]          setup, data, weights, then `cargo test --workspace ARGS...`, then build and run
                          examples/downstream (the README's library example as a crate of its own)
  env                     what a crate of yours that depends on dlkit needs: LIBTORCH for its
                          .cargo/config.toml and the build.rs that links its binaries with libtorch
  ci                      setup, then fmt check, clippy (warnings denied), rustdoc (warnings denied)
  bench [NAME...|all]     run the benches (default: all, criterion and side by side); `all`: every
                          side-by-side comparison only. Each compares dlkit with the Python tools on the
                          same algorithm, the same thread budget (2 per side) and the same span, checks
                          that both sides' outputs agree, and ends with one table of ratios:
                          dataset (criterion), preprocess (ELPV: torchvision/PIL), eval (pycocotools,
                          faster-coco-eval, shapely, torchvision NMS), infer (ResNet-18 vs PyTorch eager;
                          model file I/O), train (compact classifier on 12 000 Fashion-MNIST PNGs), detect
                          (RetinaNet-style vs torchvision), segment (U-Net-style vs PyTorch), anomaly
                          (PatchCore vs an anomalib-style PyTorch implementation)
  fuzz [TARGET...] [--cases N] [--threads T] [--seed S]
                          mutation-fuzz every parser and file format in release mode (default: every
                          target, 1 000 000 cases each, 2 threads): dataset-json, coco, coco-rotated, voc,
                          yolo, yolo-obb, dota, labelme, sample-file, model-file-v1, model-file-v2,
                          checkpoint, safetensors, image; prints cases/s; a panicking input is saved under
                          fixtures/fuzz/TARGET/ and replayed by `cargo test -p dlkit --test it fuzz`
  fixtures                regenerate the committed reference fixtures with the Python tools
  demo [--epochs N]       the end-to-end demo: setup, fetch Fashion-MNIST, read, split, preprocess, train
                          a compact classifier, evaluate on the 10 000 test images, write the model,
                          confusion matrices, training curves and heatmaps to demo-out/

environment:
  DLKIT_CACHE             per-user cache (default ~/.cache/dlkit): venv, downloads, converted data
  DLKIT_TORCH_VENV        the venv folder (default $DLKIT_CACHE/torch-2.13.0)
  LIBTORCH                use this libtorch 2.13.0 instead of a venv
";

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nxtask error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let repo = repo_root();
    let Some((command, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(());
    };
    match command.as_str() {
        "setup" => {
            let bench_tools = match rest {
                [] => false,
                [flag] if flag == "--bench-tools" => true,
                _ => bail!("usage: cargo xtask setup [--bench-tools]"),
            };
            setup::setup(&repo, bench_tools)?;
        }
        "data" => data::fetch(&data::select(rest)?)?,
        "weights" => {
            setup::setup(&repo, false)?;
            weights::fetch(&repo, rest)?;
        }
        "test" => test(&repo, rest)?,
        "env" => {
            setup::setup(&repo, false)?;
            print!("{}", downstream_env(&repo));
        }
        "ci" => ci(&repo, rest)?,
        "bench" => bench::bench(&repo, rest)?,
        "fixtures" => fixtures(&repo)?,
        "fuzz" => {
            setup::setup(&repo, false)?;
            phase("fuzz (release)", || {
                run_checked(
                    cargo(&repo)
                        .args(["run", "--quiet", "--release", "-p", "dlkit", "--example", "fuzz", "--"])
                        .args(rest),
                )
            })?;
        }
        "demo" => demo(&repo, rest)?,
        "help" | "--help" | "-h" => print!("{USAGE}"),
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
    Ok(())
}

/// The workspace root (the parent of this crate's folder).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives one level below the root").to_owned()
}

/// Runs one timed phase and prints its duration.
fn phase<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    println!("==> {name}");
    let start = Instant::now();
    let out = f();
    let secs = start.elapsed().as_secs_f64();
    match &out {
        Ok(_) => println!("==> {name}: done in {secs:.1} s"),
        Err(_) => println!("==> {name}: FAILED after {secs:.1} s"),
    }
    out
}

/// The cargo target folder of this workspace.
fn target_dir(repo: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo.join("target"), PathBuf::from)
}

fn cargo(repo: &Path) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(repo);
    cmd
}

/// Runs a command, failing with its command line when it fails.
fn run_checked(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().map_err(|e| anyhow::anyhow!("cannot start {cmd:?}: {e}"))?;
    if !status.success() {
        bail!("command failed ({status}): {cmd:?}");
    }
    Ok(())
}

fn test(repo: &Path, extra: &[String]) -> Result<()> {
    phase("setup", || setup::setup(repo, false))?;
    phase("data", || data::fetch(data::TEST_SETS))?;
    phase("weights", || weights::fetch(repo, &[]))?;
    phase("cargo test --workspace", || run_checked(cargo(repo).args(["test", "--workspace"]).args(extra)))?;
    if extra.is_empty() {
        phase("examples/downstream: the README's library example in a crate of its own", || {
            downstream(repo)
        })?;
    }
    Ok(())
}

/// The build.rs of a crate that depends on dlkit (the one of examples/downstream).
const DOWNSTREAM_BUILD_RS: &str = include_str!("../../examples/downstream/build.rs");

/// The `[profile.dev…]` settings of a manifest as (section, line) pairs, comments left out.
fn dev_profiles(manifest: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in manifest.lines().map(|l| l.split('#').next().unwrap_or("").trim()) {
        if line.starts_with('[') {
            section = line.to_owned();
        } else if !line.is_empty() && section.starts_with("[profile.dev") {
            out.push((section.clone(), line.replace(' ', "")));
        }
    }
    out
}

/// What `cargo xtask env` prints: LIBTORCH for a crate's `.cargo/config.toml`, and its build.rs.
fn downstream_env(repo: &Path) -> String {
    format!(
        "# In your crate's .cargo/config.toml (the libtorch this dlkit checkout is set up with):\n\
         [env]\nLIBTORCH = \"{}\"\n\n\
         # Your crate's build.rs, which links its binaries with libtorch (dlkit passes the folder on):\n{}",
        setup::link_path(repo).display(),
        DOWNSTREAM_BUILD_RS.lines().map(|l| format!("{l}\n")).collect::<String>()
    )
}

/// Builds examples/downstream as a user's crate would be — copied outside this repository (so that
/// none of its cargo settings apply), dlkit by absolute path, LIBTORCH as `cargo xtask env` prints it,
/// no LD_LIBRARY_PATH — and runs it on mnist5k. The shared target folder and the workspace's lock
/// file let it reuse the compiled dependencies.
fn downstream(repo: &Path) -> Result<()> {
    let src = repo.join("examples").join("downstream");
    let (ours, theirs) = (
        dev_profiles(&std::fs::read_to_string(repo.join("Cargo.toml"))?),
        dev_profiles(&std::fs::read_to_string(src.join("Cargo.toml"))?),
    );
    anyhow::ensure!(
        ours == theirs,
        "examples/downstream/Cargo.toml's dev profiles {theirs:?} differ from the workspace's {ours:?}: \
         it would rebuild every dependency"
    );
    let dir = std::env::temp_dir().join(format!("dlkit-downstream-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src"))?;
    let manifest = std::fs::read_to_string(src.join("Cargo.toml"))?;
    let dlkit = repo.join("crates").join("dlkit");
    let manifest = manifest.replace("\"../../crates/dlkit\"", &format!("{:?}", dlkit.display().to_string()));
    anyhow::ensure!(
        manifest.contains(&dlkit.display().to_string()),
        "examples/downstream/Cargo.toml: no dlkit path"
    );
    std::fs::write(dir.join("Cargo.toml"), manifest)?;
    for file in ["build.rs", "src/main.rs"] {
        std::fs::copy(src.join(file), dir.join(file))?;
    }
    std::fs::copy(repo.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    let images = dl_testkit::data_dir("mnist5k");
    let result = run_checked(
        cargo(repo)
            .current_dir(&dir)
            .env("LIBTORCH", setup::link_path(repo))
            .env("CARGO_TARGET_DIR", target_dir(repo))
            .env_remove("LD_LIBRARY_PATH")
            .args(["run", "--quiet", "--"])
            .arg(&images)
            .arg(dir.join("out")),
    );
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The demo's training settings (measured in the closing note of the training issue).
const DEMO_EPOCHS: usize = 20;

fn demo(repo: &Path, args: &[String]) -> Result<()> {
    let epochs = match args {
        [] => DEMO_EPOCHS,
        [flag, n] if flag == "--epochs" => {
            n.parse().map_err(|_| anyhow::anyhow!("--epochs: `{n}` is not a number"))?
        }
        _ => bail!("usage: cargo xtask demo [--epochs N]"),
    };
    let start = Instant::now();
    phase("setup", || setup::setup(repo, false))?;
    phase("data", || data::fetch(&["fashion-mnist"]))?;
    phase("cargo build --release -p dlkit", || {
        run_checked(cargo(repo).args(["build", "--release", "-p", "dlkit"]))
    })?;
    let exe = target_dir(repo).join("release").join("dlkit");
    let out = repo.join("demo-out");
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| anyhow::anyhow!("cannot clear {}: {e}", out.display()))?;
    }
    std::fs::create_dir_all(out.join("heatmaps"))?;
    let fashion = dl_testkit::data_dir("fashion-mnist");
    let dlkit = |args: &[&std::ffi::OsStr]| -> Result<()> {
        println!("$ dlkit {}", args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "));
        run_checked(Command::new(&exe).args(args).current_dir(&out))
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    let train_images = fashion.join("train");
    let test_images = fashion.join("test");
    let pipeline_start = Instant::now();
    phase("read, split and preprocess the 60 000 training images", || {
        dlkit(&[
            &os("dataset"),
            &os("read"),
            &os("--format"),
            &os("folders"),
            &os("--images"),
            train_images.as_os_str(),
            &os("-o"),
            &os("train.json"),
        ])?;
        dlkit(&[
            &os("dataset"),
            &os("split"),
            &os("train.json"),
            &os("--train"),
            &os("90"),
            &os("--validation"),
            &os("10"),
        ])?;
        dlkit(&[
            &os("dataset"),
            &os("preprocess"),
            &os("train.json"),
            &os("--out"),
            &os("preprocessed"),
            &os("--width"),
            &os("28"),
            &os("--height"),
            &os("28"),
            &os("--channels"),
            &os("1"),
        ])?;
        dlkit(&[
            &os("dataset"),
            &os("read"),
            &os("--format"),
            &os("folders"),
            &os("--images"),
            test_images.as_os_str(),
            &os("-o"),
            &os("test.json"),
        ])
    })?;
    let epochs_text = epochs.to_string();
    let steps = format!("{},{}", (epochs * 2).div_ceil(3), (epochs * 5).div_ceil(6));
    let train_start = Instant::now();
    phase("train a compact classifier", || {
        dlkit(&[
            &os("train"),
            &os("--dataset"),
            &os("preprocessed/dataset.json"),
            &os("--create"),
            &os("compact"),
            &os("--epochs"),
            &os(&epochs_text),
            &os("--solver"),
            &os("adam"),
            &os("--lr"),
            &os("0.003"),
            &os("--lr-steps"),
            &os(&steps),
            &os("--lr-factor"),
            &os("0.2"),
            &os("--batch-size"),
            &os("64"),
            &os("--augment"),
            &os("augmentation_percentage=50,mirror=c"),
            &os("--out"),
            &os("training"),
        ])
    })?;
    let train_secs = train_start.elapsed().as_secs_f64();
    let model = out.join("training").join("model_best.dlm");
    let eval = phase("evaluate on the 10 000 test images", || {
        let o = Command::new(&exe)
            .args(["--json", "evaluate", "model", "--model"])
            .arg(&model)
            .args(["--dataset", "test.json", "--split", "all", "--max-k", "2", "--plots", "."])
            .current_dir(&out)
            .output()?;
        if !o.status.success() {
            bail!("dlkit evaluate model failed: {}", String::from_utf8_lossy(&o.stderr));
        }
        Ok(serde_json::from_slice::<serde_json::Value>(&o.stdout)?)
    })?;
    phase("heatmaps of one test image per class", || {
        let mut classes: Vec<PathBuf> =
            std::fs::read_dir(&test_images)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
        classes.sort();
        for class in classes {
            let mut images: Vec<PathBuf> =
                std::fs::read_dir(&class)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
            images.sort();
            let (Some(image), Some(name)) = (images.first(), class.file_name()) else { continue };
            let target = out.join("heatmaps").join(format!("{}_grad_cam.png", name.to_string_lossy()));
            dlkit(&[
                &os("heatmap"),
                &os("--model"),
                model.as_os_str(),
                image.as_os_str(),
                &os("--method"),
                &os("grad_cam"),
                &os("-o"),
                target.as_os_str(),
            ])?;
        }
        Ok(())
    })?;
    let top1 = eval["top1_error"].as_f64().unwrap_or(f64::NAN);
    let top2 = eval["topk_error"][1].as_f64().unwrap_or(f64::NAN);
    println!();
    println!(
        "Fashion-MNIST, compact classifier, {epochs} epochs on {} CPU threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "  test top-1 error {:.2}%   top-2 error {:.2}%   (10 000 test images)",
        100.0 * top1,
        100.0 * top2
    );
    println!(
        "  training {:.0} s; read + split + preprocess + train + evaluate {:.0} s; demo total {:.0} s",
        train_secs,
        pipeline_start.elapsed().as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    println!(
        "  {}: model training/model_best.dlm, training/training_curves.png, training/training_log.json,",
        out.display()
    );
    println!("  confusion_matrix.png, confusion_matrix_relative.png, heatmaps/*.png");
    Ok(())
}

/// The fixture scripts and what they write (relative to the repository).
const FIXTURES: &[(&str, &str)] = &[
    ("fixtures/scripts/rotated_iou_shapely.py", "fixtures/rotated_iou_shapely.json"),
    ("fixtures/scripts/coco_eval_pycocotools.py", "fixtures/coco"),
    ("fixtures/scripts/classification_sklearn.py", "fixtures/sklearn_measures.json"),
    ("fixtures/scripts/torchvision_logits.py", "fixtures/torchvision_logits.json"),
    ("fixtures/scripts/detection_torchvision.py", "fixtures/detection_torchvision.json"),
];

/// Regenerates the committed reference fixtures with the Python tools of `setup --bench-tools`.
fn fixtures(repo: &Path) -> Result<()> {
    phase("setup --bench-tools", || setup::setup(repo, true))?;
    let python = setup::venv_dir().join("bin").join("python");
    for (script, out) in FIXTURES {
        phase(script, || run_checked(Command::new(&python).arg(repo.join(script)).arg(repo.join(out))))?;
    }
    let script = "fixtures/scripts/pretrained_reference.py";
    phase(script, || {
        let originals = std::env::temp_dir().join(format!("dlkit-originals-{}", std::process::id()));
        weights::extract_originals(&originals)?;
        let result = run_checked(
            Command::new(&python)
                .arg(repo.join(script))
                .arg(&originals)
                .arg(repo.join("fixtures/pretrained_logits.json")),
        );
        let _ = std::fs::remove_dir_all(&originals);
        result
    })?;
    println!("fixtures regenerated; review `git diff fixtures/` before committing");
    Ok(())
}

fn ci(repo: &Path, rest: &[String]) -> Result<()> {
    if !rest.is_empty() {
        bail!("usage: cargo xtask ci");
    }
    phase("setup", || setup::setup(repo, false))?;
    phase("cargo fmt --check", || run_checked(cargo(repo).args(["fmt", "--all", "--", "--check"])))?;
    phase("cargo clippy (-D warnings)", || {
        run_checked(cargo(repo).args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))
    })?;
    phase("cargo doc (-D warnings)", || {
        run_checked(cargo(repo).args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings"))
    })
}
