//! Model files of format version 1 (written before the method-generic model of issue 12, by commit
//! 225eb02) still read, and classifiers give bit-identical outputs after the redesign (with batch
//! normalisation as its own operation, as then; folded into the convolutions, the default at inference
//! since, to float rounding).
//!
//! `fixtures/model_v1/compact_tiny.dlm` is a version-1 file of a tiny compact classifier;
//! `fixtures/model_v1/outputs.json` holds, as written by the version-1 code: the file's results on the
//! formula images below, and for every architecture the results of a model (40×32×3 input, three
//! classes) whose weights are set by a formula (so the check does not depend on libtorch's global
//! random generator, which tests running in parallel share).

use dlkit::Model;
use dlkit::data::{DLResult, HostImage};
use dlkit::nets::with_batch_norm_unfolded;
use std::path::{Path, PathBuf};

const ARCHITECTURES: [&str; 7] =
    ["compact", "enhanced", "resnet18", "mobilenet_v2", "efficientnet_lite0", "squeezenet", "mobilenet_v1"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/model_v1").join(name)
}

/// Formula-filled 8-bit images of other sizes and channel counts than the networks'.
fn images(channels: usize) -> Vec<HostImage> {
    [(50usize, 40usize, channels), (30, 30, 1)]
        .iter()
        .map(|&(w, h, c)| HostImage {
            width: w,
            height: h,
            channels: c,
            bit_depth: 8,
            data: (0..w * h * c).map(|i| ((i * 37 + i / w * 11) % 256) as f32).collect(),
        })
        .collect()
}

/// Sets every trainable variable from a formula: weights of magnitude √(3 / fan-in), batch-norm scales
/// around 1, biases around 0 (batch-norm statistics keep their deterministic initial values).
fn set_formula_weights(m: &Model) {
    let mut vars = m.var_store().variables().into_iter().collect::<Vec<_>>();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, (name, mut var)) in vars.into_iter().enumerate() {
        if !var.requires_grad() {
            continue;
        }
        let size = var.size();
        let n = var.numel();
        let wave = |i: usize| ((i as f64 * 0.7361 + k as f64 * 1.3).sin()) as f32;
        let values: Vec<f32> = if size.len() >= 2 {
            let scale = (3.0 * size[0] as f64 / n as f64).sqrt() as f32;
            (0..n).map(|i| wave(i) * scale).collect()
        } else if name.contains("bn") && name.ends_with("weight") {
            (0..n).map(|i| 1.0 + 0.1 * wave(i)).collect()
        } else {
            (0..n).map(|i| 0.1 * wave(i)).collect()
        };
        tch::no_grad(|| var.copy_(&tch::Tensor::from_slice(&values).reshape(size)));
    }
}

fn classes() -> (Vec<String>, Vec<i64>) {
    (vec!["a".into(), "b".into(), "c".into()], vec![0, 4, 7])
}

fn outputs() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture("outputs.json")).unwrap()).unwrap()
}

fn results(v: &serde_json::Value) -> Vec<DLResult> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn version_1_model_files_read_with_identical_outputs() {
    let m = Model::read(&fixture("compact_tiny.dlm")).unwrap();
    assert_eq!(m.description().class_names, ["a", "b", "c"]);
    let got = with_batch_norm_unfolded(|| m.apply(images(1)).unwrap());
    assert_eq!(got, results(&outputs()["compact_tiny"]));
    close(&m.apply(images(1)).unwrap(), &got, "compact_tiny");
    // Written again, it is a current-version file that reads back with the same outputs.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.dlm");
    m.write(&path).unwrap();
    assert_eq!(with_batch_norm_unfolded(|| Model::read(&path).unwrap().apply(images(1)).unwrap()), got);
}

/// Results with batch normalisation folded into the convolutions (the default at inference) equal the
/// version-1 ones to float rounding: the same classes in the same order, confidences within 1e-5.
fn close(folded: &[DLResult], want: &[DLResult], what: &str) {
    assert_eq!(folded.len(), want.len());
    for (a, b) in folded.iter().zip(want) {
        let (ca, cb) =
            (a.classification_confidences.as_ref().unwrap(), b.classification_confidences.as_ref().unwrap());
        assert_eq!(a.classification_class_ids, b.classification_class_ids, "{what}");
        assert!(ca.iter().zip(cb).all(|(x, y)| (x - y).abs() < 1e-5), "{what}: {ca:?} {cb:?}");
    }
}

/// Runs [`classifiers_give_the_version_1_outputs_here`] in a child process on MKL's reproducible code
/// path (`MKL_CBWR=COMPATIBLE`) with 2 threads, as the fixture was written (a 2-core AMD machine, where
/// MKL takes that path anyway). In-process the bits depend on the CPU: on a Xeon with AVX-512 and AMX
/// MKL's own kernels round resnet18's confidences differently in the 8th digit, and 1 thread changes
/// enhanced's; the environment must be set before libtorch starts, so a child process.
#[test]
fn classifiers_give_the_version_1_outputs() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "model_v1::classifiers_give_the_version_1_outputs_here",
            "--ignored",
            "--nocapture",
        ])
        .env("MKL_CBWR", "COMPATIBLE")
        .env("OMP_NUM_THREADS", "2")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

#[test]
#[ignore = "run by classifiers_give_the_version_1_outputs in a child process with a reproducible MKL"]
fn classifiers_give_the_version_1_outputs_here() {
    let (names, ids) = classes();
    let want = outputs();
    for arch in ARCHITECTURES {
        let m = Model::create_classifier(arch, &names, &ids, 40, 32, 3).unwrap();
        set_formula_weights(&m);
        let want = results(&want["architectures"][arch]);
        assert_eq!(with_batch_norm_unfolded(|| m.apply(images(3)).unwrap()), want, "{arch}");
        close(&m.apply(images(3)).unwrap(), &want, arch);
    }
}
