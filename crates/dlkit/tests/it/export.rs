//! TorchScript export: the exported file, loaded back through libtorch (tch's `CModule`) and through
//! Python's `torch.jit.load` (fixtures/scripts/torchscript_check.py, run with the torch 2.13 venv),
//! gives dlkit's outputs within 1e-5 — classification (two normalisations) and segmentation.

use dlkit::Model;
use dlkit::data::HostImage;
use std::path::Path;
use std::process::Command;
use tch::{Kind, Tensor};

/// Raw images `[n, c, h, w]` (0…255) as HostImages and as one float tensor.
fn images(n: usize, c: usize, h: usize, w: usize) -> (Vec<HostImage>, Vec<f32>) {
    let mut rng = dlkit::core::Rng::new(17);
    let imgs: Vec<HostImage> = (0..n)
        .map(|_| HostImage {
            width: w,
            height: h,
            channels: c,
            bit_depth: 8,
            data: (0..w * h * c).map(|_| rng.below(256) as f32).collect(),
        })
        .collect();
    let flat = imgs.iter().flat_map(|i| i.data.iter().copied()).collect();
    (imgs, flat)
}

/// The exported module's output for `x` (loaded with tch's CModule).
fn traced(path: &Path, x: &[f32], shape: [i64; 4]) -> Vec<f32> {
    let m = tch::CModule::load(path).unwrap();
    let y = tch::no_grad(|| m.forward_ts(&[Tensor::from_slice(x).reshape(shape)])).unwrap();
    Vec::try_from(y.to_kind(Kind::Float).reshape([-1])).unwrap()
}

/// Python's `torch.jit.load` on the file must give `expected` within 1e-5.
fn python_check(dir: &Path, model: &Path, x: &[f32], expected: &[f32], shape: [i64; 4]) {
    let venv = std::env::var_os("DLKIT_TORCH_VENV")
        .map_or_else(|| dl_testkit::cache_root().join("torch-2.13.0"), std::path::PathBuf::from);
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "the torch venv's python is missing at {}: run `cargo xtask setup`",
        python.display()
    );
    let bytes = |v: &[f32]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
    std::fs::write(dir.join("x.f32"), bytes(x)).unwrap();
    std::fs::write(dir.join("y.f32"), bytes(expected)).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scripts/torchscript_check.py");
    let out = Command::new(python)
        .arg(script)
        .arg(model)
        .arg(dir.join("x.f32"))
        .arg(dir.join("y.f32"))
        .args(shape.iter().map(i64::to_string))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "torch.jit.load check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("python: {}", String::from_utf8_lossy(&out.stdout).trim());
}

#[test]
fn exported_classifiers_give_dlkit_outputs_in_libtorch_and_python() {
    let tmp = tempfile::tempdir().unwrap();
    let names: Vec<String> = ["ok", "scratch", "dent"].iter().map(|s| (*s).to_owned()).collect();
    let ids = [4, 0, 9];
    for normalization in ["none", "all_channels", "constant_values"] {
        tch::manual_seed(3);
        let mut m = Model::create_classifier("compact", &names, &ids, 40, 24, 3).unwrap();
        let mut pp = m.get_param("preprocess_param").unwrap();
        pp["normalization_type"] = serde_json::json!(normalization);
        m.set_param("preprocess_param", &pp).unwrap();
        let (imgs, x) = images(3, 3, 24, 40);
        // dlkit's probabilities, by class index (the order of the model's class ids).
        let results = m.apply(imgs).unwrap();
        let mut want = Vec::new();
        for r in &results {
            let (cls, conf) = (
                r.classification_class_ids.as_ref().unwrap(),
                r.classification_confidences.as_ref().unwrap(),
            );
            for id in ids {
                let k = cls.iter().position(|c| i64::from(c.get()) == id).unwrap();
                want.push(conf[k] as f32);
            }
        }
        let path = tmp.path().join(format!("{normalization}.pt"));
        m.export_torchscript(&path).unwrap();
        let shape = [3, 3, 24, 40];
        let got = traced(&path, &x, shape);
        let d = dl_testkit::max_abs_diff(&got, &want);
        assert!(d <= 1e-5, "{normalization}: libtorch's output differs from dlkit's by {d:e}");
        python_check(tmp.path(), &path, &x, &want, shape);
    }
}

#[test]
fn exported_segmenter_and_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let names: Vec<String> = ["background", "nucleus"].iter().map(|s| (*s).to_owned()).collect();
    tch::manual_seed(5);
    let m = Model::create_segmenter(
        "compact",
        None,
        &names,
        &[0, 1],
        (64, 32, 1),
        &dlkit::SegmenterOptions::default(),
    )
    .unwrap();
    m.write(&tmp.path().join("seg.dlm")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dlkit"))
        .args(["model", "export-torchscript", "seg.dlm", "seg.pt"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (imgs, x) = images(2, 1, 32, 64);
    let results = m.apply(imgs).unwrap();
    let shape = [2, 1, 32, 64];
    let probs = traced(&tmp.path().join("seg.pt"), &x, shape);
    // Per pixel: the exported probabilities' argmax is dlkit's class, their maximum dlkit's confidence.
    let n = 32 * 64;
    let (mut classes_differ, mut worst) = (0, 0f32);
    for (i, r) in results.iter().enumerate() {
        let seg = r.segmentation_image.as_ref().unwrap();
        let conf = r.segmentation_confidence.as_ref().unwrap();
        for p in 0..n {
            let (a, b) = (probs[(i * 2) * n + p], probs[(i * 2 + 1) * n + p]);
            classes_differ += usize::from(u16::from(b > a) != seg.data[p]);
            worst = worst.max((a.max(b) - conf.data[p]).abs());
        }
    }
    assert_eq!(classes_differ, 0);
    assert!(worst <= 1e-5, "confidence differs by {worst:e}");
    python_check(tmp.path(), &tmp.path().join("seg.pt"), &x, &probs, shape);
    // Detection models have no export yet: a clear error (and no file).
    let det =
        Model::create_detector("compact", &names, &[0, 1], (64, 64, 1), &dlkit::DetectorOptions::default())
            .unwrap();
    let err = det.export_torchscript(&tmp.path().join("det.pt")).unwrap_err().to_string();
    assert!(err.contains("classification and segmentation"), "{err}");
    assert!(!tmp.path().join("det.pt").exists());
}
