//! dlkit automation: `cargo xtask setup | data | test | ci`.
//!
//! Every command that needs libtorch runs `setup` first; `setup` is idempotent and fast once done.

mod data;
mod fetch;
mod setup;
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
  test [ARGS...]          setup, data, weights, then `cargo test --workspace ARGS...`
  ci                      setup, then fmt check, clippy (warnings denied), rustdoc (warnings denied)
  bench [NAME...]         run the benches (default: all): dataset (criterion), preprocess (criterion,
                          then dlkit vs torchvision/PIL side by side on the ELPV images), eval (criterion,
                          then dlkit vs pycocotools, faster-coco-eval, shapely and torchvision NMS),
                          infer (ResNet-18 CPU latency and throughput vs PyTorch eager; model file I/O),
                          train (compact classifier on 12 000 Fashion-MNIST PNGs: dlkit's training loop vs
                          a PyTorch loop with a 2-worker DataLoader, and vs the compute-only limit)
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
        "ci" => ci(&repo, rest)?,
        "bench" => bench(&repo, rest)?,
        "fixtures" => fixtures(&repo)?,
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
    phase("cargo test --workspace", || run_checked(cargo(repo).args(["test", "--workspace"]).args(extra)))
}

/// Criterion benches by name: (name, package, bench target, datasets it reads).
const BENCHES: &[(&str, &str, &str, &[&str])] = &[
    ("dataset", "dl-data", "dataset", &["fashion-mnist"]),
    ("preprocess", "dl-data", "preprocess", &["elpv"]),
    ("eval", "dl-eval", "eval", &[]),
    ("infer", "dlkit", "", &[]),
    ("train", "dlkit", "", &["fashion-mnist"]),
    ("detect", "dlkit", "", &["deepforest"]),
    ("segment", "dlkit", "", &["stardist"]),
    ("anomaly", "dlkit", "", &["elpv"]),
];

fn bench(repo: &Path, names: &[String]) -> Result<()> {
    let selected: Vec<_> = if names.is_empty() {
        BENCHES.iter().collect()
    } else {
        names
            .iter()
            .map(|n| {
                BENCHES.iter().find(|b| b.0 == n).ok_or_else(|| {
                    let known: Vec<_> = BENCHES.iter().map(|b| b.0).collect();
                    anyhow::anyhow!("unknown bench `{n}`: expected one of {}", known.join(", "))
                })
            })
            .collect::<Result<_>>()?
    };
    phase("setup", || setup::setup(repo, false))?;
    for (name, package, target, sets) in selected {
        phase("data", || data::fetch(sets))?;
        if !target.is_empty() {
            phase(&format!("bench {name}"), || {
                run_checked(cargo(repo).args(["bench", "-p", package, "--bench", target]))
            })?;
        }
        if *name == "preprocess" {
            phase("setup --bench-tools", || setup::setup(repo, true))?;
            phase("side by side: preprocess", || side_by_side_preprocess(repo))?;
        }
        if *name == "eval" {
            phase("setup --bench-tools", || setup::setup(repo, true))?;
            phase("side by side: eval", || side_by_side_eval(repo))?;
        }
        if *name == "infer" {
            phase("setup --bench-tools", || setup::setup(repo, true))?;
            phase("side by side: infer", || side_by_side_infer(repo))?;
        }
        if *name == "train" {
            phase("setup --bench-tools", || setup::setup(repo, true))?;
            phase("side by side: train", || side_by_side_train(repo))?;
        }
        if *name == "detect" {
            phase("setup --bench-tools", || setup::setup(repo, true))?;
            phase("side by side: detect", || side_by_side_detect(repo))?;
        }
        if *name == "segment" {
            phase("setup --bench-tools", || setup::setup(repo, true))?;
            phase("side by side: segment", || side_by_side_segment(repo))?;
        }
        if *name == "anomaly" {
            phase("setup --bench-tools", || setup::setup(repo, true))?;
            phase("weights", || weights::fetch(repo, &[]))?;
            phase("side by side: anomaly", || side_by_side_anomaly(repo))?;
        }
    }
    Ok(())
}

/// Runs one side-by-side command and parses its JSON lines (`{"bench"?, "tool", "items" | "images",
/// "seconds", …}`) into (bench, tool, items per second, the line).
fn measurements(cmd: &mut Command) -> Result<Vec<Measurement>> {
    let out = cmd.output().map_err(|e| anyhow::anyhow!("cannot start {cmd:?}: {e}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let items = v.get("items").or_else(|| v.get("images")).and_then(serde_json::Value::as_f64);
            let (Some(tool), Some(items), Some(secs)) = (v["tool"].as_str(), items, v["seconds"].as_f64())
            else {
                bail!("unexpected output: {line}")
            };
            Ok((v["bench"].as_str().unwrap_or_default().to_owned(), tool.to_owned(), items / secs, v))
        })
        .collect()
}

fn throughput(cmd: &mut Command) -> Result<(String, f64)> {
    let m = measurements(cmd)?;
    let (_, tool, rate, _) = m.into_iter().last().ok_or_else(|| anyhow::anyhow!("no measurement printed"))?;
    Ok((tool, rate))
}

fn side_by_side_eval(repo: &Path) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("dlkit-bench-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let python = setup::venv_dir().join("bin").join("python");
    println!(
        "generating the workloads and timing pycocotools, faster-coco-eval, shapely, torchvision (a few minutes)"
    );
    let theirs = measurements(Command::new(python).arg(repo.join("benches/python/eval_bench.py")).arg(&dir))?;
    let ours = measurements(
        cargo(repo)
            .args(["run", "--quiet", "--release", "-p", "dl-eval", "--example", "eval_throughput", "--"])
            .arg(&dir)
            .env("RAYON_NUM_THREADS", "2"),
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    for (bench, what, goal) in [
        (
            "coco",
            "COCO bbox evaluation, 5 000 images × 100 detections, 80 classes (detections/s)",
            "≥ 20× pycocotools, ≥ 1.5× faster-coco-eval",
        ),
        ("riou", "rotated IoU, 1 000 000 pairs (pairs/s)", "≥ 10× shapely"),
        ("nms", "NMS of 10 000 boxes at IoU 0.5 (boxes/s)", "≥ 1× torchvision"),
    ] {
        println!("{what}:");
        let Some(us) = ours.iter().find(|m| m.0 == bench) else {
            bail!("dlkit printed no `{bench}` measurement")
        };
        println!("  {:<48} {:>14.0}", us.1, us.2);
        for them in theirs.iter().filter(|m| m.0 == bench) {
            println!("  {:<48} {:>14.0}   dlkit is {:.1}× faster", them.1, them.2, us.2 / them.2);
        }
        if bench == "coco" {
            let (a, b) = (
                &us.3["stats"],
                &theirs
                    .iter()
                    .find(|m| m.1.starts_with("pycocotools"))
                    .map(|m| m.3["stats"].clone())
                    .unwrap_or_default(),
            );
            let diff = a.as_array().zip(b.as_array()).map(|(a, b)| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x.as_f64().unwrap_or(f64::NAN) - y.as_f64().unwrap_or(f64::NAN)).abs())
                    .fold(0.0, f64::max)
            });
            println!(
                "  largest difference of the 12 COCO numbers to pycocotools: {:e}",
                diff.unwrap_or(f64::NAN)
            );
        }
        println!("  goal: {goal}");
    }
    Ok(())
}

fn side_by_side_infer(repo: &Path) -> Result<()> {
    let python = setup::venv_dir().join("bin").join("python");
    let ours = measurements(
        cargo(repo)
            .args(["run", "--quiet", "--release", "-p", "dlkit", "--example", "infer_throughput"])
            .env("DLKIT_BENCH_THREADS", "2"),
    )?;
    let theirs = measurements(
        Command::new(python).arg(repo.join("benches/python/infer_torch.py")).env("DLKIT_BENCH_THREADS", "2"),
    )?;
    for (bench, what, goal) in [
        ("latency_b1", "ResNet-18, 224×224, batch 1, CPU: latency", "dlkit ≤ 0.9× PyTorch's latency"),
        (
            "throughput_b32",
            "ResNet-18, 224×224, batch 32, CPU: images/s",
            "dlkit ≥ 1.0× PyTorch's throughput",
        ),
    ] {
        let (Some(us), Some(them)) =
            (ours.iter().find(|m| m.0 == bench), theirs.iter().find(|m| m.0 == bench))
        else {
            bail!("missing `{bench}` measurement")
        };
        println!("{what}:");
        if bench == "latency_b1" {
            println!("  {:<52} {:>8.2} ms", us.1, 1000.0 / us.2);
            println!("  {:<52} {:>8.2} ms", them.1, 1000.0 / them.2);
            println!("  latency ratio dlkit / PyTorch: {:.2} (goal: {goal})", them.2 / us.2);
        } else {
            println!("  {:<52} {:>8.1}", us.1, us.2);
            println!("  {:<52} {:>8.1}", them.1, them.2);
            println!("  throughput ratio dlkit / PyTorch: {:.2} (goal: {goal})", us.2 / them.2);
        }
    }
    if let Some(m) = ours.iter().find(|m| m.0 == "model_file") {
        println!(
            "{}: write {:.2} s, read {:.2} s (goal: under 1 s each)",
            m.1,
            m.3["seconds"].as_f64().unwrap_or(f64::NAN),
            m.3["read_seconds"].as_f64().unwrap_or(f64::NAN)
        );
    }
    Ok(())
}

fn side_by_side_train(repo: &Path) -> Result<()> {
    let train = dl_testkit::data_dir("fashion-mnist").join("train");
    let mut classes: Vec<PathBuf> =
        std::fs::read_dir(&train)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
    classes.sort();
    let mut lines = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let mut images: Vec<PathBuf> =
            std::fs::read_dir(class)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
        images.sort();
        lines.extend(images.iter().step_by(5).map(|p| format!("{}\t{label}", p.display())));
    }
    let list = std::env::temp_dir().join(format!("dlkit-train-list-{}.txt", std::process::id()));
    std::fs::write(&list, lines.join("\n"))?;
    let epochs = "2";
    let python = setup::venv_dir().join("bin").join("python");
    let ours = measurements(
        cargo(repo)
            .args(["run", "--quiet", "--release", "-p", "dlkit", "--example", "train_throughput", "--"])
            .arg(&list)
            .arg(epochs),
    );
    let theirs = measurements(
        Command::new(python)
            .arg(repo.join("benches/python/train_torch.py"))
            .arg(&list)
            .arg(epochs)
            .env("DLKIT_BENCH_THREADS", "2"),
    );
    let _ = std::fs::remove_file(&list);
    let (ours, theirs) = (ours?, theirs?);
    let (us_loop, us_compute) = (find(&ours, "loop")?, find(&ours, "compute")?);
    let (them_loop, them_compute) = (find(&theirs, "loop")?, find(&theirs, "compute")?);
    println!(
        "compact classifier, {} Fashion-MNIST PNGs (28×28), Adam, batch 64, {epochs} timed epochs, 2 cores:",
        lines.len()
    );
    for m in [&us_loop, &them_loop, &us_compute, &them_compute] {
        println!("  {:<64} {:>8.0} images/s", m.1, m.2);
    }
    println!("  training loop ratio dlkit / PyTorch loop: {:.2}× (goal ≥ 1.2×)", us_loop.2 / them_loop.2);
    println!("  dlkit loop / dlkit compute-only: {:.2} (goal ≥ 0.95)", us_loop.2 / us_compute.2);
    println!("  (PyTorch loop / PyTorch compute-only: {:.2})", them_loop.2 / them_compute.2);
    let rss = |m: &serde_json::Value, k: &str| m[k].as_f64().unwrap_or(0.0);
    let ours_rss = rss(&us_loop.3, "peak_rss_mib");
    let theirs_rss = rss(&them_loop.3, "peak_rss_mib") + 2.0 * rss(&them_loop.3, "peak_rss_children_mib");
    println!(
        "  peak resident memory: dlkit {ours_rss:.0} MiB; PyTorch {theirs_rss:.0} MiB (main {:.0} + 2 workers × {:.0}) (goal: dlkit ≤ PyTorch)",
        rss(&them_loop.3, "peak_rss_mib"),
        rss(&them_loop.3, "peak_rss_children_mib")
    );
    Ok(())
}

/// Detections (pixel-edge x1 y1 x2 y2, score) of an `outputs` measurement.
fn detections_of(m: &serde_json::Value) -> Vec<([f64; 4], f64)> {
    let boxes = m["boxes"].as_array().cloned().unwrap_or_default();
    let scores = m["scores"].as_array().cloned().unwrap_or_default();
    boxes
        .iter()
        .zip(&scores)
        .map(|(b, s)| {
            let v: Vec<f64> =
                b.as_array().into_iter().flatten().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect();
            ([v[0], v[1], v[2], v[3]], s.as_f64().unwrap_or(f64::NAN))
        })
        .collect()
}

/// The largest difference between two detection lists matched box to box (each of ours to the
/// nearest of theirs by corner distance among those of nearly the same score), or why they disagree.
fn detection_difference(
    ours: &[([f64; 4], f64)],
    theirs: &[([f64; 4], f64)],
) -> std::result::Result<(f64, f64), String> {
    if ours.len() != theirs.len() {
        return Err(format!("{} detections vs {}", ours.len(), theirs.len()));
    }
    let (mut worst_box, mut worst_score) = (0f64, 0f64);
    for (b, s) in ours {
        let best = theirs
            .iter()
            .map(|(c, t)| (b.iter().zip(c).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max), (s - t).abs()))
            .filter(|(_, ds)| *ds < 1e-4)
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let Some((db, ds)) = best else { return Err(format!("no detection of score {s} on the other side")) };
        if db.is_nan() || ds.is_nan() {
            return Err("NaN in the detections".into());
        }
        worst_box = worst_box.max(db);
        worst_score = worst_score.max(ds);
    }
    if worst_box > 1e-2 {
        return Err(format!("a box differs by {worst_box:.3} px"));
    }
    Ok((worst_box, worst_score))
}

/// One measurement line of a side-by-side command: (bench, tool, items per second, the line).
type Measurement = (String, String, f64, serde_json::Value);

/// The measurement named `bench`.
fn find(m: &[Measurement], bench: &str) -> Result<Measurement> {
    m.iter().find(|x| x.0 == bench).cloned().ok_or_else(|| anyhow::anyhow!("missing `{bench}` measurement"))
}

/// The side-by-side pattern of the model benches: in a fresh temporary folder, `cargo run --example
/// EXAMPLE -- prepare DIR`, then the Python `script` on DIR and `extra`, then `EXAMPLE measure DIR
/// extra…` (2 threads each); the folder is removed; returns (dlkit's, Python's) measurements.
fn example_side_by_side(
    repo: &Path,
    example: &str,
    script: &str,
    extra: &[&str],
) -> Result<(Vec<Measurement>, Vec<Measurement>)> {
    let dir = std::env::temp_dir().join(format!("dlkit-bench-{example}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let run = |args: &[&str]| {
        let mut c = cargo(repo);
        c.args(["run", "--quiet", "--release", "-p", "dlkit", "--example", example, "--"])
            .args(args)
            .env("DLKIT_BENCH_THREADS", "2")
            .env("RAYON_NUM_THREADS", "2");
        c
    };
    let d = dir.display().to_string();
    run_checked(&mut run(&["prepare", &d]))?;
    let python = setup::venv_dir().join("bin").join("python");
    let theirs = measurements(
        Command::new(python)
            .arg(repo.join("benches/python").join(script))
            .arg(&dir)
            .args(extra)
            .env("DLKIT_BENCH_THREADS", "2"),
    );
    let mut args = vec!["measure", d.as_str()];
    args.extend_from_slice(extra);
    let ours = measurements(&mut run(&args));
    let _ = std::fs::remove_dir_all(&dir);
    Ok((ours?, theirs?))
}

fn side_by_side_detect(repo: &Path) -> Result<()> {
    let epochs = "2";
    let (ours, theirs) = example_side_by_side(repo, "detect_throughput", "detect_torch.py", &[epochs])?;
    println!(
        "RetinaNet-style detector, MobileNetV2 backbone, 128-channel pyramid on strides 4/8/16, 9 anchors, 256×256 deepforest tiles, 2 threads:"
    );
    // The same function on both sides: the first tile's detections agree.
    let (uo, to) = (find(&ours, "outputs")?, find(&theirs, "outputs")?);
    let agree = detection_difference(&detections_of(&uo.3), &detections_of(&to.3));
    match &agree {
        Ok((b, s)) => println!(
            "  outputs agree: {} detections, largest corner difference {b:.2e} px, score difference {s:.2e}",
            detections_of(&uo.3).len()
        ),
        Err(e) => println!("  OUTPUTS DISAGREE ({e}): no latency ratio is printed"),
    }
    let (ul, tl) = (find(&ours, "latency_b1")?, find(&theirs, "latency_b1")?);
    println!("  inference, batch 1 (preprocessing, forward, decoding, NMS):");
    println!("    {:<70} {:>8.2} ms", ul.1, 1000.0 / ul.2);
    println!("    {:<70} {:>8.2} ms", tl.1, 1000.0 / tl.2);
    if agree.is_ok() {
        println!("    latency ratio dlkit / torchvision: {:.2} (goal ≤ 0.9)", tl.2 / ul.2);
    }
    let (up, tp) = (find(&ours, "postprocess")?, find(&theirs, "postprocess")?);
    let kept = |m: &serde_json::Value| -> Vec<u64> {
        m["kept"].as_array().into_iter().flatten().filter_map(serde_json::Value::as_u64).collect()
    };
    let same = kept(&up.3) == kept(&tp.3);
    println!("  post-processing of 100 000 candidates (decode, clip, NMS per class, 100 kept):");
    println!("    {:<70} {:>8.2} ms", up.1, 1000.0 * up.3["seconds"].as_f64().unwrap_or(f64::NAN));
    println!("    {:<70} {:>8.2} ms", tp.1, 1000.0 * tp.3["seconds"].as_f64().unwrap_or(f64::NAN));
    if same {
        println!(
            "    same kept boxes in the same order; ratio dlkit / torchvision speed: {:.2}× (goal ≥ 1×)",
            up.2 / tp.2
        );
    } else {
        println!(
            "    KEPT BOXES DIFFER ({} vs {}): no ratio is printed",
            kept(&up.3).len(),
            kept(&tp.3).len()
        );
    }
    let (ut, tt) = (find(&ours, "train")?, find(&theirs, "train")?);
    println!("  training, {epochs} epochs, Adam, batch 8, images read from PNG (wall time, all included):");
    println!("    {:<70} {:>8.1} images/s", ut.1, ut.2);
    println!("    {:<70} {:>8.1} images/s", tt.1, tt.2);
    println!("    training ratio dlkit / torchvision: {:.2}× (goal ≥ 1.2×)", ut.2 / tt.2);
    Ok(())
}

fn side_by_side_anomaly(repo: &Path) -> Result<()> {
    let (ours, theirs) = example_side_by_side(repo, "anomaly_throughput", "patchcore_torch.py", &[])?;
    println!("PatchCore, ImageNet MobileNetV2 strides 8 + 16, 1 % coreset, ELPV at 224×224, 2 threads:");
    let (uf, tf) = (find(&ours, "fit")?, find(&theirs, "fit")?);
    let secs = |m: &serde_json::Value, k: &str| m[k].as_f64().unwrap_or(f64::NAN);
    println!("  fit on the 1 207 good train cells (reading, features, coreset; wall time):");
    for m in [&uf, &tf] {
        println!(
            "    {:<72} {:>7.1} s, {} patches → {} entries, peak {:.0} MiB",
            m.1,
            secs(&m.3, "seconds"),
            m.3["patches"],
            m.3["memory_bank_size"],
            secs(&m.3, "peak_rss_mib")
        );
    }
    println!(
        "    fit ratio dlkit / PyTorch (chunked like dlkit): {:.2}× (goal ≥ 2×); anomalib's unchunked coreset alone: ≈ {:.0} s (extrapolated from 100 steps)",
        secs(&tf.3, "seconds") / secs(&uf.3, "seconds"),
        secs(&tf.3, "unchunked_coreset_seconds")
    );
    let (ui, ti) = (find(&ours, "infer")?, find(&theirs, "infer")?);
    println!("  inference on 509 test cells, batches of 16 (from decoded images):");
    for m in [&ui, &ti] {
        println!("    {:<72} {:>7.1} images/s, image AUROC {:.4}", m.1, m.2, secs(&m.3, "auroc"));
    }
    println!("    inference ratio dlkit / PyTorch: {:.2}× (goal ≥ 1.5×)", ui.2 / ti.2);
    Ok(())
}

fn side_by_side_segment(repo: &Path) -> Result<()> {
    let epochs = "2";
    let (ours, theirs) = example_side_by_side(repo, "segment_throughput", "segment_torch.py", &[epochs])?;
    println!(
        "segmentation, MobileNetV2 backbone, U-Net-style decoder of 64 channels on strides 4/8/16/32, 2 classes, stardist nuclei, 2 threads:"
    );
    // The same function on both sides: every pixel's class and confidence agree.
    let (uo, to) = (find(&ours, "outputs")?, find(&theirs, "outputs")?);
    let values = |m: &serde_json::Value, k: &str| -> Vec<f64> {
        m[k].as_array().into_iter().flatten().filter_map(serde_json::Value::as_f64).collect()
    };
    let (uc, tc) = (values(&uo.3, "classes"), values(&to.3, "classes"));
    let (uf, tf) = (values(&uo.3, "confidences"), values(&to.3, "confidences"));
    let agree = if uc.len() == tc.len() && uf.len() == tf.len() && !uc.is_empty() {
        let same = uc.iter().zip(&tc).filter(|(a, b)| a == b).count() as f64 / uc.len() as f64;
        let diff = uf.iter().zip(&tf).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        (same > 0.999 && diff < 1e-3).then_some((same, diff)).ok_or((same, diff))
    } else {
        Err((0.0, f64::NAN))
    };
    match agree {
        Ok((same, diff)) => println!(
            "  outputs agree: {:.3}% of {} pixels the same class, largest confidence difference {diff:.2e}",
            100.0 * same,
            uc.len()
        ),
        Err((same, diff)) => println!(
            "  OUTPUTS DISAGREE ({:.3}% same class, confidence difference {diff:.2e}, {} vs {} pixels): no latency ratio is printed",
            100.0 * same,
            uc.len(),
            tc.len()
        ),
    }
    let (ul, tl) = (find(&ours, "latency_b1")?, find(&theirs, "latency_b1")?);
    println!(
        "  inference at 512×512, batch 1 (normalisation, forward, softmax, classes and confidences on the host):"
    );
    println!("    {:<70} {:>8.2} ms", ul.1, 1000.0 / ul.2);
    println!("    {:<70} {:>8.2} ms", tl.1, 1000.0 / tl.2);
    if agree.is_ok() {
        println!("    latency ratio dlkit / PyTorch: {:.2} (goal ≤ 0.9)", tl.2 / ul.2);
    }
    let (ut, tt) = (find(&ours, "train")?, find(&theirs, "train")?);
    println!(
        "  training at 256×256, {epochs} epochs, Adam, batch 8, images read from PNG (wall time, all included):"
    );
    println!("    {:<70} {:>8.1} images/s", ut.1, ut.2);
    println!("    {:<70} {:>8.1} images/s", tt.1, tt.2);
    println!("    training ratio dlkit / PyTorch: {:.2}× (goal ≥ 1.2×)", ut.2 / tt.2);
    let rss = |m: &serde_json::Value, k: &str| m[k].as_f64().unwrap_or(0.0);
    let ours_rss = rss(&ut.3, "peak_rss_mib");
    let theirs_rss = rss(&tt.3, "peak_rss_mib") + 2.0 * rss(&tt.3, "peak_rss_children_mib");
    println!(
        "  peak resident memory: dlkit {ours_rss:.0} MiB; PyTorch {theirs_rss:.0} MiB (main {:.0} + 2 workers × {:.0}) (goal: dlkit ≤ PyTorch)",
        rss(&tt.3, "peak_rss_mib"),
        rss(&tt.3, "peak_rss_children_mib")
    );
    Ok(())
}

fn side_by_side_preprocess(repo: &Path) -> Result<()> {
    let elpv = dl_testkit::data_dir("elpv");
    let mut images: Vec<PathBuf> = Vec::new();
    for folder in ["train/good", "test/good", "test/defect", "test/uncertain"] {
        for e in std::fs::read_dir(elpv.join(folder))? {
            images.push(e?.path());
        }
    }
    images.sort();
    let list = std::env::temp_dir().join(format!("dlkit-preprocess-list-{}.txt", std::process::id()));
    std::fs::write(&list, images.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join("\n"))?;
    let python = setup::venv_dir().join("bin").join("python");
    let ours = throughput(
        cargo(repo)
            .args([
                "run",
                "--quiet",
                "--release",
                "-p",
                "dl-data",
                "--example",
                "preprocess_throughput",
                "--",
            ])
            .arg(&list)
            .env("RAYON_NUM_THREADS", "2"),
    )?;
    let theirs = throughput(
        Command::new(python).arg(repo.join("benches/python/preprocess_torchvision.py")).arg(&list),
    )?;
    let _ = std::fs::remove_file(&list);
    println!("{} ELPV PNGs (300×300 gray) → 224×224×3, ImageNet normalisation, 2 cores:", images.len());
    println!("  {:<60} {:>8.0} images/s", ours.0, ours.1);
    println!("  {:<60} {:>8.0} images/s", theirs.0, theirs.1);
    println!("  ratio dlkit / Python: {:.2}× (goal ≥ 2×)", ours.1 / theirs.1);
    Ok(())
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
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo.join("target"), PathBuf::from);
    let exe = target.join("release").join("dlkit");
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
