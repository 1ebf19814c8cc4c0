//! Kill tests: real `dlkit` processes killed with SIGKILL at seeded random moments and resumed.
//!
//! - `dlkit train` of a classifier, a rotated-box detector, a segmentation model and HALCON's
//!   `anomaly_detection`: killed mid-epoch, during evaluation, while writing checkpoints and model files (the
//!   moments are drawn over the whole run), at least 5 times, each time resumed with `--resume`; after
//!   every kill each file in the output folder reads back whole, and the resumed runs end with weights
//!   bit-identical to an uninterrupted run.
//! - `dlkit dataset preprocess`: killed at least 5 times; every sample file reads back after each kill;
//!   the resumed run finishes with the same files as an uninterrupted one.
//! - A PatchCore fit (one pass, no checkpoint): killed, every file reads back, and the fit run again
//!   gives the same memory bank.
//! - `dlkit model set` and `dlkit dataset split` (in place): killed at random moments; the file is the
//!   old one or the new one, never torn.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use dlkit::core::Rng;
use dlkit::data::read::{LabelSource, read_dl_dataset_classification};
use dlkit::data::{DLDataset, SplitParams, split_dl_dataset};
use dlkit_e2e::{check_files, dlkit_exe, files_below};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// 400 train and 100 validation images of mnist5k (seeded), saved as `dir/d.json`.
fn dataset(dir: &Path) {
    let mut ds =
        read_dl_dataset_classification(&dl_testkit::data_dir("mnist5k"), LabelSource::LastFolder).unwrap();
    split_dl_dataset(&mut ds, 8.0, 2.0, &SplitParams { seed: 7, ..Default::default() }).unwrap();
    ds.samples.retain(|s| s.split != Some(dlkit::core::Split::Test));
    ds.save(&dir.join("d.json")).unwrap();
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(dlkit_exe()).args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "dlkit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Starts `dlkit args`, kills it with SIGKILL after `after` unless it ends first: `None` when it was
/// killed, else how long it ran.
fn run_or_kill(dir: &Path, args: &[&str], after: Duration) -> Option<Duration> {
    let mut child = Command::new(dlkit_exe())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < after {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            assert!(status.success(), "dlkit {args:?} failed: {err}\nfiles: {:?}", listing(dir));
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    None
}

/// Starts `dlkit args` and kills it after `after` unless it ends first; true when it was killed. A run
/// that ended shortens `whole` (the kill moments are drawn within it) to its own duration, so that a
/// reference measured on a busy machine does not make later kills come too late.
fn kill_after(dir: &Path, args: &[&str], after: Duration, whole: &mut Duration) -> bool {
    match run_or_kill(dir, args, after) {
        None => true,
        Some(took) => {
            *whole = (*whole).min(took);
            false
        }
    }
}

/// The files below `dir` other than sample files (for failure messages).
fn listing(dir: &Path) -> Vec<String> {
    files_below(dir)
        .unwrap_or_default()
        .iter()
        .filter(|p| p.extension().is_none_or(|x| x != "dls"))
        .map(|p| p.strip_prefix(dir).unwrap_or(p).display().to_string())
        .collect()
}

fn weights(path: &Path) -> Vec<u8> {
    dlkit::Model::read(path).unwrap().export_weights().unwrap()
}

/// `dlkit train` with `args` (and `--out OUT`) run once uninterrupted, then in chains of runs killed at
/// moments drawn (seeded) over a whole run and resumed with `--resume`, until `kills` kills: after each
/// kill every file of the output folder reads back; each chain ends with the uninterrupted run's
/// weights, bit for bit, and a log of `epochs` epochs.
fn killed_training_resumes(dir: &Path, args: &[&str], epochs: usize, kills: usize, seed: u64) {
    killed_runs_end_alike(dir, args, "model_current.dlm", Some(epochs), kills, seed);
}

/// As [`killed_training_resumes`], comparing the weights of `model` in the output folder, and the log's
/// epochs when `epochs` is given (a PatchCore fit has neither epochs nor a checkpoint: it starts over).
fn killed_runs_end_alike(
    dir: &Path,
    args: &[&str],
    model: &str,
    epochs: Option<usize>,
    kills: usize,
    seed: u64,
) {
    let with_out = |out: &str| -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).chain(["--out".to_owned(), out.to_owned()]).collect()
    };
    let t = Instant::now();
    let reference = with_out("reference");
    run(dir, &reference.iter().map(String::as_str).collect::<Vec<_>>());
    let mut whole = t.elapsed();
    let want = weights(&dir.join("reference").join(model));

    let mut rng = Rng::new(seed);
    let (mut killed, mut chains) = (0, 0);
    while killed < kills {
        // One chain: start fresh, then kill and resume until a run finishes.
        let out = format!("killed{chains}");
        chains += 1;
        assert!(chains <= 30, "training kept finishing before it could be killed {kills} times");
        loop {
            let mut a = with_out(&out);
            if dir.join(&out).join("checkpoint.dlc").is_file() {
                a.push("--resume".into());
            }
            let resume = a.last().is_some_and(|x| x == "--resume");
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            // After the last kill the chain's next run finishes: the test ends whatever the timing.
            if killed >= kills {
                run(dir, &a);
                break;
            }
            // A moment anywhere in a whole run: start-up, epochs, evaluation, file writes.
            let after = whole.mul_f64(0.05 + 0.9 * rng.next_f64());
            // Only a fresh run's duration may shorten the whole (a resumed one has fewer epochs left).
            let mut took = whole;
            let was_killed = kill_after(dir, &a, after, &mut took);
            if !resume {
                whole = took;
            }
            if !was_killed {
                break;
            }
            killed += 1;
            let checked = check_files(&dir.join(&out))
                .unwrap_or_else(|e| panic!("after kill {killed} ({after:?}): {e}"));
            eprintln!("kill {killed} after {after:?}: {checked} files read back");
        }
        let got = weights(&dir.join(&out).join(model));
        assert!(got == want, "chain {chains}: the resumed weights differ from the uninterrupted run's");
        if let Some(epochs) = epochs {
            let log: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join(&out).join("training_log.json")).unwrap())
                    .unwrap();
            assert_eq!(log["epochs"].as_array().unwrap().len(), epochs);
        }
    }
    eprintln!("{killed} kills over {chains} chains; an uninterrupted run takes {whole:?}");
}

#[test]
fn killed_training_resumes_to_the_weights_of_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    dataset(dir);
    let args = [
        "train",
        "--dataset",
        "d.json",
        "--create",
        "compact",
        "--batch-size",
        "32",
        "--solver",
        "adam",
        "--lr",
        "0.003",
        "--augment",
        "mirror=c,augmentation_percentage=30",
        "--serialize",
        "best,current",
        "--epochs",
        "5",
    ];
    killed_training_resumes(dir, &args, 5, 5, 11);
}

/// ELPV as `dir/d.json`: every `every`-th good train cell → train; every 20th good and defective test
/// cell → validation.
fn elpv(dir: &Path, every: usize) {
    let mut ds = dlkit::data::read::read_dl_dataset_anomaly(&dl_testkit::data_dir("elpv"), None).unwrap();
    let mut seen = [0usize; 2];
    ds.samples.retain_mut(|s| {
        let name = s.image_file_name.replace('\\', "/");
        let (k, every, split) = match name {
            n if n.starts_with("train/") => (0, every, dlkit::core::Split::Train),
            n if n.starts_with("test/good") || n.starts_with("test/defect") => {
                (1, 20, dlkit::core::Split::Validation)
            }
            _ => return false,
        };
        seen[k] += 1;
        s.split = Some(split);
        (seen[k] - 1) % every == 0
    });
    ds.save(&dir.join("d.json")).unwrap();
}

/// A PatchCore fit killed at random moments (feature pass, coreset, thresholds, the model write) and
/// run again: the model file always reads back, and the fit that finishes gives the uninterrupted fit's
/// memory bank, bit for bit.
#[test]
fn killed_patchcore_fit_leaves_readable_files_and_refits_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    elpv(dir, 6);
    let args = [
        "train",
        "--dataset",
        "d.json",
        "--create",
        "pretrained_dl_classifier_mobilenet_v2",
        "--width",
        "128",
        "--height",
        "128",
        "--batch-size",
        "4",
    ];
    killed_runs_end_alike(dir, &args, "model_final.dlm", None, 5, 15);
}

/// HALCON's `anomaly_detection` (a student regressing a pretrained teacher's features) killed and
/// resumed: the teacher statistics measured before the first epoch and the per-step noise and loss
/// masks (libtorch's generator, reseeded per epoch) resume to the same weights too.
#[test]
fn killed_anomaly_training_resumes_to_the_weights_of_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    elpv(dir, 40);
    let args = [
        "train",
        "--dataset",
        "d.json",
        "--create",
        "pretrained_dl_classifier_mobilenet_v2",
        "--type",
        "anomaly_detection",
        "--width",
        "64",
        "--height",
        "64",
        "--batch-size",
        "4",
        "--error-threshold",
        "0",
        "--serialize",
        "best,current",
        "--epochs",
        "4",
    ];
    killed_training_resumes(dir, &args, 4, 5, 14);
}

/// A file or folder of stardist's nuclei quadrants (four 256×256 images).
fn quadrants(name: &str) -> String {
    dl_testkit::data_dir("stardist").join("quadrants").join(name).display().to_string()
}

/// stardist's quadrants read as `format` (`extra`: the format's flags) into `dir/d.json`, split 2
/// train, 1 validation, 1 test.
fn stardist(dir: &Path, format: &str, extra: &[&str]) {
    let images = quadrants("images");
    let mut args = vec!["dataset", "read", "--format", format, "--images", &images, "-o", "d.json"];
    args.extend(extra);
    run(dir, &args);
    run(dir, &["dataset", "split", "d.json", "--train", "50", "--validation", "25", "--seed", "1"]);
}

/// `dlkit train` of a compact model on `d.json` (stardist's quadrants) at `size`² gray for `epochs`:
/// batches of one, Adam, mirroring, the best and the current model written.
fn stardist_training(size: usize, epochs: usize) -> Vec<String> {
    let (size, epochs) = (size.to_string(), epochs.to_string());
    [
        "train",
        "--dataset",
        "d.json",
        "--create",
        "compact",
        "--width",
        &size,
        "--height",
        &size,
        "--channels",
        "1",
        "--batch-size",
        "1",
        "--solver",
        "adam",
        "--lr",
        "0.001",
        "--augment",
        "mirror=rc,augmentation_percentage=50",
        "--serialize",
        "best,current",
        "--epochs",
        &epochs,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// A rotated-box detector (the method's own loss, anchors and evaluation) killed and resumed.
#[test]
fn killed_detection_training_resumes_to_the_weights_of_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    stardist(dir, "coco-rotated", &["--annotations", &quadrants("rotated_coco.json")]);
    let args = stardist_training(96, 6);
    killed_training_resumes(dir, &args.iter().map(String::as_str).collect::<Vec<_>>(), 6, 5, 12);
}

/// A segmentation model killed and resumed.
#[test]
fn killed_segmentation_training_resumes_to_the_weights_of_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    stardist(
        dir,
        "segmentation",
        &["--labels", &quadrants("labels"), "--class-names", "background,nucleus", "--class-ids", "0,1"],
    );
    let args = stardist_training(128, 8);
    killed_training_resumes(dir, &args.iter().map(String::as_str).collect::<Vec<_>>(), 8, 5, 13);
}

#[test]
fn killed_preprocessing_resumes_and_every_sample_file_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    dataset(dir);
    let args = |out: &'static str| {
        ["dataset", "preprocess", "d.json", "--out", out, "--width", "32", "--height", "32"]
    };
    let t = Instant::now();
    run(dir, &args("reference"));
    let mut whole = t.elapsed();
    let mut rng = Rng::new(5);
    let mut kills = 0;
    let mut attempts = 0;
    while kills < 5 {
        attempts += 1;
        assert!(attempts < 50, "preprocessing finished before it could be killed 5 times");
        // A finished folder is started over (so that the next run has work to be killed in); an
        // interrupted one is resumed.
        if dir.join("killed/dataset.json").is_file() || attempts % 3 == 0 {
            let _ = std::fs::remove_dir_all(dir.join("killed"));
        }
        if kill_after(dir, &args("killed"), whole.mul_f64(0.1 + 0.8 * rng.next_f64()), &mut whole) {
            kills += 1;
            check_files(&dir.join("killed")).unwrap_or_else(|e| panic!("after kill {kills}: {e}"));
            // The interrupted folder resumes (same parameters) and finishes; a folder a kill after
            // the last write left finished (dataset.json is written last) is checked and reused.
            if rng.below(2) == 0 {
                run(dir, &args("killed"));
                check_files(&dir.join("killed")).unwrap();
            }
        }
    }
    if !dir.join("killed/dataset.json").is_file() {
        run(dir, &args("killed"));
    }
    let list = |d: &str| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join(d).join("samples"))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
            })
            .filter(|(n, _)| !n.starts_with('.'))
            .collect();
        v.sort();
        v
    };
    let (a, b) = (list("reference"), list("killed"));
    assert_eq!(a.len(), 500);
    assert!(a == b, "the resumed sample files differ from an uninterrupted run's");
    let ds = DLDataset::load(&dir.join("killed/dataset.json")).unwrap();
    assert_eq!(ds.samples.len(), 500);
}

#[test]
fn killed_model_set_and_split_leave_the_old_or_the_new_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run(
        dir,
        &[
            "model",
            "create",
            "--arch",
            "compact",
            "--classes",
            "a,b",
            "--width",
            "32",
            "--height",
            "32",
            "-o",
            "m.dlm",
        ],
    );
    let lr = |p: &Path| dlkit::Model::read(p).unwrap().get_param("learning_rate").unwrap().as_f64().unwrap();
    let t = Instant::now();
    run(dir, &["model", "set", "m.dlm", "learning_rate", "0.5"]);
    let mut whole = t.elapsed();
    let mut rng = Rng::new(3);
    let mut old = 0.5;
    let mut killed = 0;
    for i in 0..20 {
        let new = 0.001 * f64::from(i + 1);
        let v = new.to_string();
        let after = whole.mul_f64(1.2 * rng.next_f64());
        let was_killed = kill_after(dir, &["model", "set", "m.dlm", "learning_rate", &v], after, &mut whole);
        killed += usize::from(was_killed);
        let now = lr(&dir.join("m.dlm")); // reads back: never torn
        assert!(now == old || now == new, "learning_rate {now}: neither the old {old} nor the new {new}");
        assert!(was_killed || now == new, "a finished `model set` wrote the new value");
        old = now;
    }
    assert!(killed >= 5, "only {killed} of 20 `model set` runs were killed");

    dataset(dir);
    let before = DLDataset::load(&dir.join("d.json")).unwrap();
    let mut killed = 0;
    for seed in 0..12u64 {
        let s = seed.to_string();
        let args = [
            "dataset",
            "split",
            "d.json",
            "--train",
            "60",
            "--validation",
            "20",
            "--overwrite",
            "--seed",
            &s,
        ];
        killed += usize::from(run_or_kill(dir, &args, Duration::from_millis(5 + rng.below(400))).is_none());
        let ds = DLDataset::load(&dir.join("d.json")).unwrap(); // never torn
        assert_eq!(ds.samples.len(), before.samples.len());
    }
    assert!(killed >= 3, "only {killed} of 12 `dataset split` runs were killed");
}
