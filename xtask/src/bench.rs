//! `cargo xtask bench`: the criterion benches and the side-by-side comparisons with the Python tools.
//!
//! Every side-by-side bench runs the same algorithm on both sides with the same thread budget (set
//! explicitly on both sides and printed), times the same span, and compares both sides' outputs before
//! it prints a ratio: a bench whose outputs disagree prints the disagreement instead. Every ratio ends up
//! in one table ([`Ratio`]) printed at the end of the run.

use crate::{cargo, data, phase, run_checked, setup, weights};
use anyhow::{Result, bail};
use dl_testkit::try_max_abs_diff;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Benches by name: (name, package, criterion bench target or "", datasets it reads).
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

/// The thread budget of every side-by-side bench: 2 compute threads per side (libtorch / rayon, or
/// PyTorch's intra-op threads / DataLoader workers).
const THREADS: &str = "2";

/// One row of the summary table: what was compared, both sides' figures, the ratio (dlkit's advantage:
/// > 1 is better for dlkit) or why there is none, and the goal.
struct Ratio {
    name: String,
    dlkit: String,
    peer: String,
    ratio: std::result::Result<f64, String>,
    goal: String,
}

impl Ratio {
    fn new(
        name: &str,
        dlkit: String,
        peer: String,
        ratio: std::result::Result<f64, String>,
        goal: &str,
    ) -> Self {
        Self { name: name.into(), dlkit, peer, ratio, goal: goal.into() }
    }
}

fn print_table(rows: &[Ratio]) {
    println!();
    println!("{:<46} {:>16} {:>16} {:>9}  goal", "bench", "dlkit", "peer", "ratio");
    for r in rows {
        let ratio = match &r.ratio {
            Ok(v) => format!("{v:.2}×"),
            Err(_) => "—".into(),
        };
        println!("{:<46} {:>16} {:>16} {:>9}  {}", r.name, r.dlkit, r.peer, ratio, r.goal);
        if let Err(why) = &r.ratio {
            println!("{:<46} no ratio: {why}", "");
        }
    }
}

/// `cargo xtask bench [NAME…]`: each named bench's criterion part (where it has one), then its
/// side-by-side part; `all` runs every side-by-side part without the criterion ones. Prints the table
/// of ratios at the end.
pub fn bench(repo: &Path, names: &[String]) -> Result<()> {
    let all = names.iter().any(|n| n == "all");
    let selected: Vec<_> = if names.is_empty() || all {
        BENCHES.iter().collect()
    } else {
        names
            .iter()
            .map(|n| {
                BENCHES.iter().find(|b| b.0 == n).ok_or_else(|| {
                    let known: Vec<_> = BENCHES.iter().map(|b| b.0).collect();
                    anyhow::anyhow!("unknown bench `{n}`: expected all or one of {}", known.join(", "))
                })
            })
            .collect::<Result<_>>()?
    };
    phase("setup", || setup::setup(repo, false))?;
    let mut rows = Vec::new();
    for (name, package, target, sets) in selected {
        phase("data", || data::fetch(sets))?;
        if !target.is_empty() && !all {
            phase(&format!("bench {name}"), || {
                run_checked(cargo(repo).args(["bench", "-p", package, "--bench", target]))
            })?;
        }
        if *name == "dataset" {
            continue;
        }
        phase("setup --bench-tools", || setup::setup(repo, true))?;
        if *name == "anomaly" {
            phase("weights", || weights::fetch(repo, &[]))?;
        }
        let got = phase(&format!("side by side: {name}"), || match *name {
            "preprocess" => side_by_side_preprocess(repo),
            "eval" => side_by_side_eval(repo),
            "infer" => side_by_side_infer(repo),
            "train" => side_by_side_train(repo),
            "detect" => side_by_side_detect(repo),
            "segment" => side_by_side_segment(repo),
            "anomaly" => side_by_side_anomaly(repo),
            other => bail!("no side-by-side bench `{other}`"),
        })?;
        rows.extend(got);
    }
    if !rows.is_empty() {
        print_table(&rows);
    }
    Ok(())
}

/// One measurement line of a side-by-side command: (bench, tool, items per second, the line).
type Measurement = (String, String, f64, serde_json::Value);

/// Runs one side-by-side command and parses its JSON lines (`{"bench"?, "tool", "items" | "images",
/// "seconds", …}`) into measurements.
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

/// The measurement named `bench`.
fn find(m: &[Measurement], bench: &str) -> Result<Measurement> {
    m.iter().find(|x| x.0 == bench).cloned().ok_or_else(|| anyhow::anyhow!("missing `{bench}` measurement"))
}

/// The measurement named `bench` whose tool name starts with `tool`.
fn find_tool(m: &[Measurement], bench: &str, tool: &str) -> Result<Measurement> {
    m.iter()
        .find(|x| x.0 == bench && x.1.starts_with(tool))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("missing `{bench}` measurement of `{tool}`"))
}

/// The numbers of a JSON array (NaN for anything else, so that a comparison fails on it).
fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().into_iter().flatten().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
}

/// A float field of a measurement, or an error naming it (never a made-up 0).
fn field(m: &Measurement, key: &str) -> Result<f64> {
    m.3[key].as_f64().ok_or_else(|| anyhow::anyhow!("`{}` of {} printed no `{key}`", m.0, m.1))
}

/// Little-endian f64 values of a file.
fn read_f64(path: &Path) -> Result<Vec<f64>> {
    let b = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}

/// Little-endian f32 values of a file, as f64.
fn read_f32(path: &Path) -> Result<Vec<f64>> {
    let b = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(b.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes")))).collect())
}

/// `Ok(max difference)` when `a` and `b` agree within `tol`, else why not.
fn agree(a: &[f64], b: &[f64], tol: f64, what: &str) -> std::result::Result<f64, String> {
    match try_max_abs_diff(a, b) {
        Ok(d) if d <= tol => Ok(d),
        Ok(d) => Err(format!("{what} differ by up to {d:.3e} (tolerance {tol:e})")),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// Runs `f` in a fresh temporary folder for one bench, removed afterwards whatever `f` returns.
fn with_bench_dir<T>(name: &str, f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let dir = std::env::temp_dir().join(format!("dlkit-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = f(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Both sides kept the same non-empty list of box indices, in the same order, or how they differ.
fn same_kept(ours: &[f64], theirs: &[f64]) -> std::result::Result<(), String> {
    if ours.is_empty() {
        return Err("dlkit kept nothing".into());
    }
    if ours == theirs {
        return Ok(());
    }
    let first = ours.iter().zip(theirs).position(|(a, b)| a != b).unwrap_or(ours.len().min(theirs.len()));
    Err(format!("kept {} vs {} boxes, first difference at position {first}", ours.len(), theirs.len()))
}

/// A PyTorch measurement's peak memory: the main process plus its DataLoader workers (read while they
/// ran); returns (total, workers).
fn pytorch_memory(m: &Measurement) -> Result<(f64, Vec<f64>)> {
    let workers = numbers(&m.3["peak_rss_workers_mib"]);
    Ok((field(m, "peak_rss_mib")? + workers.iter().sum::<f64>(), workers))
}

fn python() -> PathBuf {
    setup::venv_dir().join("bin").join("python")
}

/// The Python side: `benches/python/SCRIPT ARGS…` with the thread budget in the environment.
fn python_script(repo: &Path, script: &str) -> Command {
    let mut c = Command::new(python());
    c.arg(repo.join("benches/python").join(script)).env("DLKIT_BENCH_THREADS", THREADS);
    c
}

/// dlkit's side: `cargo run --release -p PACKAGE --example EXAMPLE -- ARGS…` with the thread budget
/// for libtorch (`DLKIT_BENCH_THREADS`) and rayon (`RAYON_NUM_THREADS`).
fn example(repo: &Path, package: &str, example: &str) -> Command {
    let mut c = cargo(repo);
    c.args(["run", "--quiet", "--release", "-p", package, "--example", example, "--"])
        .env("DLKIT_BENCH_THREADS", THREADS)
        .env("RAYON_NUM_THREADS", THREADS);
    c
}

/// The side-by-side pattern of the model benches: in a fresh temporary folder, `EXAMPLE prepare DIR`,
/// then the Python `script` on DIR and `extra`, then `EXAMPLE measure DIR extra…`, then (with `after`)
/// the Python script once more on DIR and `after`; the folder is removed; returns (dlkit's, Python's)
/// measurements.
fn example_side_by_side(
    repo: &Path,
    name: &str,
    script: &str,
    extra: &[&str],
    after: Option<&[&str]>,
) -> Result<(Vec<Measurement>, Vec<Measurement>)> {
    let ex = format!("{name}_throughput");
    with_bench_dir(name, |dir| {
        let d = dir.display().to_string();
        run_checked(example(repo, "dlkit", &ex).args(["prepare", &d]))?;
        let mut theirs = measurements(python_script(repo, script).arg(dir).args(extra))?;
        let ours = measurements(example(repo, "dlkit", &ex).args(["measure", &d]).args(extra))?;
        if let Some(after) = after {
            theirs.extend(measurements(python_script(repo, script).arg(dir).args(after))?);
        }
        Ok((ours, theirs))
    })
}

/// Milliseconds of one item of a measurement.
fn ms(m: &Measurement) -> String {
    format!("{:.2} ms", 1000.0 / m.2)
}

/// Items per second of a measurement, with a unit.
fn per_s(m: &Measurement, unit: &str) -> String {
    if m.2 >= 100.0 { format!("{:.0} {unit}/s", m.2) } else { format!("{:.1} {unit}/s", m.2) }
}

fn side_by_side_preprocess(repo: &Path) -> Result<Vec<Ratio>> {
    let elpv = dl_testkit::data_dir("elpv");
    let mut images: Vec<PathBuf> = Vec::new();
    for folder in ["train/good", "test/good", "test/defect", "test/uncertain"] {
        for e in std::fs::read_dir(elpv.join(folder))? {
            images.push(e?.path());
        }
    }
    images.sort();
    let (ours, theirs, equal, default) = with_bench_dir("preprocess", |dir| {
        let list = dir.join("list.txt");
        std::fs::write(&list, images.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join("\n"))?;
        let ours =
            find(&measurements(example(repo, "dl-data", "preprocess_throughput").arg(&list).arg(dir))?, "")?;
        let theirs = measurements(python_script(repo, "preprocess_torchvision.py").arg(&list).arg(dir))?;
        // Both sides' tensors of the first four images, and the sums of every tenth image's values.
        let compare = |variant: &str, tol: f64| -> Result<std::result::Result<f64, String>> {
            let n = (224 * 224 * 3) as f64;
            let sums = read_f64(&dir.join("dlkit_sums.f64"))?;
            if sums.len() != images.len().div_ceil(10) {
                return Ok(Err(format!("{} sums for {} images", sums.len(), images.len())));
            }
            let mut worst = match agree(
                &sums,
                &read_f64(&dir.join(format!("{variant}_sums.f64")))?,
                tol * n,
                "image sums",
            ) {
                Ok(_) => 0.0f64,
                Err(e) => return Ok(Err(e)),
            };
            for k in 0..4 {
                let (a, b) = (
                    read_f32(&dir.join(format!("dlkit_{k}.f32")))?,
                    read_f32(&dir.join(format!("{variant}_{k}.f32")))?,
                );
                match agree(&a, &b, tol, &format!("the values of image {k}")) {
                    Ok(d) => worst = worst.max(d),
                    Err(e) => return Ok(Err(e)),
                }
            }
            Ok(Ok(worst))
        };
        Ok((ours, theirs, compare("equal", 1e-4)?, compare("default", f64::INFINITY)?))
    })?;
    let (eq, df) = (find(&theirs, "equal")?, find(&theirs, "default")?);
    println!(
        "{} ELPV PNGs (300×300 gray) → 224×224×3, ImageNet normalisation, 2 threads per side:",
        images.len()
    );
    for m in [&ours, &eq, &df] {
        println!("  {:<100} {:>8.0} images/s", m.1, m.2);
    }
    match &equal {
        Ok(d) => println!(
            "  same algorithm: outputs agree (largest difference {d:.2e}); ratio {:.2}× (goal ≥ 2×)",
            ours.2 / eq.2
        ),
        Err(e) => println!("  OUTPUTS DISAGREE with the same algorithm in PyTorch ({e}): no ratio"),
    }
    let diff = default.as_ref().map_or_else(|e| e.clone(), |d| format!("largest difference {d:.2}"));
    println!(
        "  against what a PyTorch user writes by default (PIL's antialiased resize, a different result: {diff}): {:.2}×",
        ours.2 / df.2
    );
    Ok(vec![
        Ratio::new(
            "preprocess: same algorithm (PyTorch interpolate)",
            per_s(&ours, "img"),
            per_s(&eq, "img"),
            equal.map(|_| ours.2 / eq.2),
            "≥ 2×",
        ),
        Ratio::new(
            "preprocess: vs PIL default (antialiased)",
            per_s(&ours, "img"),
            per_s(&df, "img"),
            Ok(ours.2 / df.2),
            "≥ 2× (different algorithm)",
        ),
    ])
}

fn side_by_side_eval(repo: &Path) -> Result<Vec<Ratio>> {
    println!(
        "generating the workloads and timing pycocotools, faster-coco-eval, shapely, torchvision (a few minutes)"
    );
    let (ours, theirs, (our_ious, their_ious)) = with_bench_dir("eval", |dir| {
        let theirs = measurements(python_script(repo, "eval_bench.py").arg(dir))?;
        let ours = measurements(example(repo, "dl-eval", "eval_throughput").arg(dir))?;
        let ious = (read_f64(&dir.join("riou_dlkit.f64"))?, read_f64(&dir.join("riou_shapely.f64"))?);
        Ok((ours, theirs, ious))
    })?;
    let mut rows = Vec::new();

    // COCO: the 12 numbers of every tool equal pycocotools'.
    let coco1 = find_tool(&ours, "coco", "dlkit (1 thread)")?;
    let coco_n = ours.iter().rfind(|m| m.0 == "coco").cloned().ok_or_else(|| anyhow::anyhow!("no coco"))?;
    let (py, fce) =
        (find_tool(&theirs, "coco", "pycocotools")?, find_tool(&theirs, "coco", "faster-coco-eval")?);
    let reference = numbers(&py.3["stats"]);
    let check = |m: &Measurement| {
        agree(&numbers(&m.3["stats"]), &reference, 1e-9, &format!("{}'s COCO numbers and pycocotools'", m.1))
    };
    let ours_agree = check(&coco1).and_then(|d| check(&coco_n).map(|e| d.max(e)));
    println!(
        "COCO bbox evaluation, 5 000 images × 100 detections, 80 classes (evaluate + accumulate + summarize):"
    );
    for m in [&coco1, &coco_n, &py, &fce] {
        println!("  {:<52} {:>12.0} detections/s", m.1, m.2);
    }
    match (&ours_agree, check(&fce)) {
        (Ok(d), f) => println!(
            "  dlkit's 12 numbers equal pycocotools' (largest difference {d:.1e}); faster-coco-eval's: {}",
            f.map_or_else(|e| e, |d| format!("largest difference {d:.1e}"))
        ),
        (Err(e), _) => println!("  DISAGREE: {e}"),
    }
    let r = |m: &Measurement, peer: &Measurement| ours_agree.clone().map(|_| m.2 / peer.2);
    rows.push(Ratio::new(
        "COCO eval vs pycocotools (1 thread each)",
        per_s(&coco1, "det"),
        per_s(&py, "det"),
        r(&coco1, &py),
        "≥ 20×",
    ));
    rows.push(Ratio::new(
        "COCO eval vs faster-coco-eval (1 thread each)",
        per_s(&coco1, "det"),
        per_s(&fce, "det"),
        r(&coco1, &fce),
        "≥ 1.5×",
    ));
    rows.push(Ratio::new(
        &format!("COCO eval vs faster-coco-eval (dlkit {} threads)", coco_n.3["threads"]),
        per_s(&coco_n, "det"),
        per_s(&fce, "det"),
        r(&coco_n, &fce),
        "(peer single-threaded)",
    ));

    // Rotated IoU: every pair's IoU equals shapely's.
    let riou1 = find_tool(&ours, "riou", "dlkit (1 thread)")?;
    let riou_n = ours.iter().rfind(|m| m.0 == "riou").cloned().ok_or_else(|| anyhow::anyhow!("no riou"))?;
    let shapely = find(&theirs, "riou")?;
    let iou_agree = agree(&our_ious, &their_ious, 1e-9, "rotated IoUs");
    println!(
        "rotated IoU of 1 000 000 pairs (boxes or polygons built from the raw arrays inside the clock):"
    );
    for m in [&riou1, &riou_n, &shapely] {
        println!("  {:<52} {:>12.0} pairs/s", m.1, m.2);
    }
    match &iou_agree {
        Ok(d) => println!("  every IoU equals shapely's (largest difference {d:.1e})"),
        Err(e) => println!("  DISAGREE: {e}"),
    }
    rows.push(Ratio::new(
        "rotated IoU vs shapely (1 thread each)",
        per_s(&riou1, "pair"),
        per_s(&shapely, "pair"),
        iou_agree.clone().map(|_| riou1.2 / shapely.2),
        "≥ 10×",
    ));
    rows.push(Ratio::new(
        &format!("rotated IoU vs shapely (dlkit {} threads)", riou_n.3["threads"]),
        per_s(&riou_n, "pair"),
        per_s(&shapely, "pair"),
        iou_agree.map(|_| riou_n.2 / shapely.2),
        "(peer single-threaded)",
    ));

    // NMS: the same kept boxes in the same order.
    let (un, tn) = (find(&ours, "nms")?, find(&theirs, "nms")?);
    let (uk, tk) = (numbers(&un.3["kept"]), numbers(&tn.3["kept"]));
    let same = same_kept(&uk, &tk);
    println!("NMS of 10 000 boxes at IoU 0.5:");
    for m in [&un, &tn] {
        println!("  {:<52} {:>12.0} boxes/s", m.1, m.2);
    }
    match &same {
        Ok(()) => println!("  the same {} kept boxes in the same order", uk.len()),
        Err(e) => println!("  DISAGREE: {e}"),
    }
    rows.push(Ratio::new(
        "NMS vs torchvision (1 thread each)",
        per_s(&un, "box"),
        per_s(&tn, "box"),
        same.map(|()| un.2 / tn.2),
        "≥ 1×",
    ));
    Ok(rows)
}

fn side_by_side_infer(repo: &Path) -> Result<Vec<Ratio>> {
    let (ours, theirs) = example_side_by_side(repo, "infer", "infer_torch.py", &[], None)?;
    let (uo, to) = (find(&ours, "outputs")?, find(&theirs, "outputs")?);
    let same = agree(&numbers(&uo.3["logits"]), &numbers(&to.3["logits"]), 1e-4, "the 1000 logits");
    println!("ResNet-18, 224×224, CPU, the same weights on both sides:");
    match &same {
        Ok(d) => println!("  outputs agree: largest logit difference {d:.2e}"),
        Err(e) => println!("  OUTPUTS DISAGREE: {e}"),
    }
    let mut rows = Vec::new();
    for (bench, what, goal) in [
        ("latency_b1", "ResNet-18 latency, batch 1", "≥ 1.11× (latency ≤ 0.9×)"),
        ("throughput_b32", "ResNet-18 throughput, batch 32", "≥ 1×"),
    ] {
        let (us, them) = (find(&ours, bench)?, find(&theirs, bench)?);
        println!("  {what}:");
        let (a, b) = if bench == "latency_b1" {
            (ms(&us), ms(&them))
        } else {
            (per_s(&us, "img"), per_s(&them, "img"))
        };
        println!("    {:<52} {a:>14}", us.1);
        println!("    {:<52} {b:>14}", them.1);
        rows.push(Ratio::new(what, a, b, same.clone().map(|_| us.2 / them.2), goal));
    }
    let m = find(&ours, "model_file")?;
    println!(
        "  {}: write {:.2} s, read {:.2} s (goal: under 1 s each)",
        m.1,
        field(&m, "seconds")?,
        field(&m, "read_seconds")?
    );
    Ok(rows)
}

fn side_by_side_train(repo: &Path) -> Result<Vec<Ratio>> {
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
    let epochs = "2";
    let (ours, theirs) = with_bench_dir("train", |dir| {
        let list = dir.join("list.txt");
        std::fs::write(&list, lines.join("\n"))?;
        let ours = measurements(example(repo, "dlkit", "train_throughput").arg(&list).arg(epochs))?;
        Ok((ours, measurements(python_script(repo, "train_torch.py").arg(&list).arg(epochs))?))
    })?;
    let (us_loop, us_compute) = (find(&ours, "loop")?, find(&ours, "compute")?);
    let (them_loop, them_compute) = (find(&theirs, "loop")?, find(&theirs, "compute")?);
    println!(
        "compact classifier, {} Fashion-MNIST PNGs (28×28), Adam, batch 64, {epochs} epochs (wall time of the whole training, evaluation and checkpoints included), 2 + 2 threads per side:",
        lines.len()
    );
    for m in [&us_loop, &them_loop, &us_compute, &them_compute] {
        println!("  {:<130} {:>8.0} images/s", m.1, m.2);
    }
    let equal_work =
        trained_alike(&us_loop, &them_loop).and_then(|()| trained_alike(&us_compute, &them_compute));
    if let Err(e) = &equal_work {
        println!("  NOT THE SAME WORK: {e}");
    }
    println!(
        "  final training loss: dlkit {:.3}, PyTorch {:.3}",
        field(&us_loop, "final_loss")?,
        field(&them_loop, "final_loss")?
    );
    println!("  dlkit loop / dlkit compute-only: {:.2} (goal ≥ 0.95)", us_loop.2 / us_compute.2);
    println!("  (PyTorch loop / PyTorch compute-only: {:.2})", them_loop.2 / them_compute.2);
    let ours_rss = field(&us_loop, "peak_rss_mib")?;
    let (theirs_rss, workers) = pytorch_memory(&them_loop)?;
    println!(
        "  peak resident memory: dlkit {ours_rss:.0} MiB; PyTorch {theirs_rss:.0} MiB (main {:.0} + workers {workers:.0?}) (goal: dlkit ≤ PyTorch)",
        field(&them_loop, "peak_rss_mib")?,
    );
    Ok(vec![
        Ratio::new(
            "training loop, compact, Fashion-MNIST",
            per_s(&us_loop, "img"),
            per_s(&them_loop, "img"),
            equal_work.clone().map(|()| us_loop.2 / them_loop.2),
            "≥ 1.2×",
        ),
        Ratio::new(
            "training compute only, compact",
            per_s(&us_compute, "img"),
            per_s(&them_compute, "img"),
            equal_work.map(|()| us_compute.2 / them_compute.2),
            "(limit)",
        ),
        memory_row("training peak memory, compact", ours_rss, theirs_rss, workers.len()),
    ])
}

/// Training runs cannot be compared value by value (different random streams): the same work means the
/// same number of images on both sides and a finite final loss on both.
fn trained_alike(a: &Measurement, b: &Measurement) -> std::result::Result<(), String> {
    let images =
        |m: &Measurement| m.3.get("images").or_else(|| m.3.get("items")).and_then(serde_json::Value::as_u64);
    if images(a) != images(b) {
        return Err(format!("{:?} vs {:?} images trained", images(a), images(b)));
    }
    for m in [a, b] {
        if let Some(l) = m.3.get("final_loss")
            && !l.as_f64().is_some_and(f64::is_finite)
        {
            return Err(format!("{} ended with loss {l}", m.1));
        }
    }
    Ok(())
}

/// A peak-memory row: the ratio is the peer's memory over dlkit's (> 1: dlkit needs less).
fn memory_row(name: &str, ours: f64, theirs: f64, workers: usize) -> Ratio {
    let ratio = if ours.is_finite() && theirs.is_finite() && ours > 0.0 {
        Ok(theirs / ours)
    } else {
        Err(format!("memory not measured (dlkit {ours}, peer {theirs})"))
    };
    Ratio::new(
        name,
        format!("{ours:.0} MiB"),
        format!("{theirs:.0} MiB ({workers} w.)"),
        ratio,
        "≥ 1× (less memory)",
    )
}

fn side_by_side_detect(repo: &Path) -> Result<Vec<Ratio>> {
    let epochs = "2";
    let (ours, theirs) = example_side_by_side(repo, "detect", "detect_torch.py", &[epochs], None)?;
    println!(
        "RetinaNet-style detector, MobileNetV2 backbone, 128-channel pyramid on strides 4/8/16, 9 anchors, 256×256 deepforest tiles, 2 threads per side:"
    );
    // The same function on both sides: the first tile's detections agree.
    let (uo, to) = (find(&ours, "outputs")?, find(&theirs, "outputs")?);
    let same = detection_difference(&detections_of(&uo.3), &detections_of(&to.3));
    match &same {
        Ok((b, s)) => println!(
            "  outputs agree: {} detections, largest corner difference {b:.2e} px, score difference {s:.2e}",
            detections_of(&uo.3).len()
        ),
        Err(e) => println!("  OUTPUTS DISAGREE ({e}): no latency ratio"),
    }
    let (ul, tl) = (find(&ours, "latency_b1")?, find(&theirs, "latency_b1")?);
    println!("  inference, batch 1 (preprocessing, forward, decoding, NMS):");
    println!("    {:<70} {:>10}", ul.1, ms(&ul));
    println!("    {:<70} {:>10}", tl.1, ms(&tl));
    let (up, tp) = (find(&ours, "postprocess")?, find(&theirs, "postprocess")?);
    let (uk, tk) = (numbers(&up.3["kept"]), numbers(&tp.3["kept"]));
    let kept_same = same_kept(&uk, &tk);
    println!("  post-processing of 100 000 candidates (decode, clip, NMS per class, 100 kept):");
    println!("    {:<70} {:>10}", up.1, format!("{:.2} ms", 1000.0 * field(&up, "seconds")?));
    println!("    {:<70} {:>10}", tp.1, format!("{:.2} ms", 1000.0 * field(&tp, "seconds")?));
    match &kept_same {
        Ok(()) => println!("    the same {} kept boxes in the same order", uk.len()),
        Err(e) => println!("    DISAGREE: {e}"),
    }
    let same = same.map(|_| ());
    let training = training_rows("detection", &ours, &theirs, epochs, "")?;
    Ok(vec![
        Ratio::new(
            "detection latency, batch 1",
            ms(&ul),
            ms(&tl),
            same.clone().map(|()| ul.2 / tl.2),
            "≥ 1.11× (latency ≤ 0.9×)",
        ),
        Ratio::new(
            "detection post-processing",
            format!("{:.2} ms", 1000.0 * field(&up, "seconds")?),
            format!("{:.2} ms", 1000.0 * field(&tp, "seconds")?),
            kept_same.map(|()| up.2 / tp.2),
            "≥ 1×",
        ),
    ]
    .into_iter()
    .chain(training)
    .collect())
}

fn side_by_side_segment(repo: &Path) -> Result<Vec<Ratio>> {
    let epochs = "2";
    let (ours, theirs) = example_side_by_side(repo, "segment", "segment_torch.py", &[epochs], None)?;
    println!(
        "segmentation, MobileNetV2 backbone, U-Net-style decoder of 64 channels on strides 4/8/16/32, 2 classes, stardist nuclei, 2 threads per side:"
    );
    // The same function on both sides: every pixel's class and confidence agree.
    let (uo, to) = (find(&ours, "outputs")?, find(&theirs, "outputs")?);
    let (uc, tc) = (numbers(&uo.3["classes"]), numbers(&to.3["classes"]));
    let (uf, tf) = (numbers(&uo.3["confidences"]), numbers(&to.3["confidences"]));
    let same = if uc.is_empty() || uc.len() != tc.len() {
        Err(format!("{} vs {} pixels", uc.len(), tc.len()))
    } else {
        let share = uc.iter().zip(&tc).filter(|(a, b)| a == b).count() as f64 / uc.len() as f64;
        agree(&uf, &tf, 1e-3, "the confidences").and_then(|d| {
            if share > 0.999 {
                Ok((share, d))
            } else {
                Err(format!("only {:.3}% of the pixels have the same class", 100.0 * share))
            }
        })
    };
    match &same {
        Ok((share, d)) => println!(
            "  outputs agree: {:.3}% of {} pixels the same class, largest confidence difference {d:.2e}",
            100.0 * share,
            uc.len()
        ),
        Err(e) => println!("  OUTPUTS DISAGREE ({e}): no latency ratio"),
    }
    let (ul, tl) = (find(&ours, "latency_b1")?, find(&theirs, "latency_b1")?);
    println!(
        "  inference at 512×512, batch 1 (normalisation, forward, softmax, classes and confidences on the host):"
    );
    println!("    {:<70} {:>10}", ul.1, ms(&ul));
    println!("    {:<70} {:>10}", tl.1, ms(&tl));
    let training = training_rows("segmentation", &ours, &theirs, epochs, " at 256×256")?;
    Ok(vec![Ratio::new(
        "segmentation latency, batch 1, 512²",
        ms(&ul),
        ms(&tl),
        same.map(|_| ul.2 / tl.2),
        "≥ 1.11× (latency ≤ 0.9×)",
    )]
    .into_iter()
    .chain(training)
    .collect())
}

/// The training part of the detect and segment benches: both sides' `train` measurements (the same
/// number of images, finite losses), printed; rows for images/s and peak memory (PyTorch's with its
/// workers').
fn training_rows(
    name: &str,
    ours: &[Measurement],
    theirs: &[Measurement],
    epochs: &str,
    size: &str,
) -> Result<Vec<Ratio>> {
    let (ut, tt) = (find(ours, "train")?, find(theirs, "train")?);
    let equal_work = trained_alike(&ut, &tt);
    println!(
        "  training{size}, {epochs} epochs, Adam, batch 8, images read from PNG (wall time; checkpoint each epoch on both sides, dlkit also evaluates):"
    );
    println!("    {:<70} {:>10}", ut.1, per_s(&ut, "img"));
    println!("    {:<70} {:>10}", tt.1, per_s(&tt, "img"));
    if let Err(e) = &equal_work {
        println!("    NOT THE SAME WORK: {e}");
    }
    let ours_rss = field(&ut, "peak_rss_mib").unwrap_or(f64::NAN);
    let (theirs_rss, workers) = pytorch_memory(&tt)?;
    println!(
        "  peak resident memory: dlkit {ours_rss:.0} MiB; PyTorch {theirs_rss:.0} MiB (main {:.0} + workers {workers:.0?})",
        field(&tt, "peak_rss_mib")?
    );
    Ok(vec![
        Ratio::new(
            &format!("{name} training{size}"),
            per_s(&ut, "img"),
            per_s(&tt, "img"),
            equal_work.map(|()| ut.2 / tt.2),
            "≥ 1.2×",
        ),
        memory_row(&format!("{name} training peak memory"), ours_rss, theirs_rss, workers.len()),
    ])
}

fn side_by_side_anomaly(repo: &Path) -> Result<Vec<Ratio>> {
    let (ours, theirs) =
        example_side_by_side(repo, "anomaly", "patchcore_torch.py", &[], Some(&["--check"]))?;
    println!(
        "PatchCore, ImageNet MobileNetV2 strides 8 + 16, 1 % coreset, ELPV at 224×224, 2 threads per side:"
    );
    let (uf, tf) = (find(&ours, "fit")?, find(&theirs, "fit")?);
    println!("  fit on the 1 207 good train cells (reading, features, coreset; wall time):");
    for m in [&uf, &tf] {
        println!(
            "    {:<72} {:>7.1} s, {} patches → {} entries, peak {:.0} MiB",
            m.1,
            field(m, "seconds")?,
            m.3["patches"],
            m.3["memory_bank_size"],
            field(m, "peak_rss_mib")?
        );
    }
    // The same work: as many patches and bank entries on both sides (the greedy picks themselves may
    // differ where two distances tie within float rounding).
    let fit_same =
        if uf.3["patches"] == tf.3["patches"] && uf.3["memory_bank_size"] == tf.3["memory_bank_size"] {
            Ok(())
        } else {
            Err(format!(
                "{} vs {} patches, {} vs {} bank entries",
                uf.3["patches"], tf.3["patches"], uf.3["memory_bank_size"], tf.3["memory_bank_size"]
            ))
        };
    println!(
        "    anomalib's unchunked coreset alone: ≈ {:.0} s (extrapolated from 100 steps)",
        field(&tf, "unchunked_coreset_seconds")?
    );
    let (ui, ti, check) = (find(&ours, "infer")?, find(&theirs, "infer")?, find(&theirs, "check")?);
    // The same inference function: PyTorch's scores with dlkit's memory bank equal dlkit's.
    let (us, cs) = (numbers(&ui.3["scores"]), numbers(&check.3["scores"]));
    let scale = us.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let infer_same = agree(&us, &cs, 1e-4 * scale, "the image scores with dlkit's memory bank");
    println!("  inference on {} test cells, batches of 16 (from decoded images):", us.len());
    for m in [&ui, &ti] {
        println!("    {:<72} {:>7.1} images/s, image AUROC {:.4}", m.1, m.2, field(m, "auroc")?);
    }
    match &infer_same {
        Ok(d) => println!(
            "    PyTorch's scores with dlkit's memory bank equal dlkit's (largest difference {d:.2e})"
        ),
        Err(e) => println!("    DISAGREE: {e}"),
    }
    let (ur, tr) = (field(&uf, "peak_rss_mib")?, field(&tf, "peak_rss_mib")?);
    Ok(vec![
        Ratio::new(
            "PatchCore fit (chunked coreset both sides)",
            format!("{:.1} s", field(&uf, "seconds")?),
            format!("{:.1} s", field(&tf, "seconds")?),
            fit_same.map(|()| uf.2 / tf.2),
            "≥ 2×",
        ),
        Ratio::new(
            "PatchCore inference, batch 16",
            per_s(&ui, "img"),
            per_s(&ti, "img"),
            infer_same.map(|_| ui.2 / ti.2),
            "≥ 1.5×",
        ),
        memory_row("PatchCore fit peak memory", ur, tr, 0),
    ])
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
            .map(|(c, t)| (try_max_abs_diff(&b[..], &c[..]).unwrap_or(f64::NAN), (s - t).abs()))
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
