//! TorchScript export: the exported file, loaded back through libtorch (tch's `CModule`) and through
//! Python's `torch.jit.load` (fixtures/scripts/torchscript_check.py, run with the torch 2.13 venv),
//! gives dlkit's outputs within 1e-5 — classification (three normalisations), segmentation, detection
//! (every anchor's scores and boxes, from which dlkit's own NMS gives `apply`'s detections) and both
//! anomaly model types.

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

fn flat(t: &Tensor) -> Vec<f32> {
    Vec::try_from(t.to_kind(Kind::Float).reshape([-1])).unwrap()
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
}

/// Detectors (axis-aligned, and rotated without a front): the exported scores and boxes of every anchor
/// equal dlkit's [`Model::detections_before_nms`] in libtorch and Python, and dlkit's own thresholding
/// and NMS on the exported outputs give exactly `apply`'s detections.
#[test]
fn exported_detectors_give_every_anchor_and_dlkit_detections_follow() {
    let tmp = tempfile::tempdir().unwrap();
    let names: Vec<String> = ["bright", "dark"].iter().map(|s| (*s).to_owned()).collect();
    for rotated in [false, true] {
        let options = dlkit::DetectorOptions {
            instance_type: if rotated {
                dlkit::data::InstanceType::Rectangle2
            } else {
                dlkit::data::InstanceType::Rectangle1
            },
            ignore_direction: rotated,
            ..Default::default()
        };
        tch::manual_seed(7);
        let mut m = Model::create_detector("compact", &names, &[3, 8], (64, 48, 1), &options).unwrap();
        let (imgs, x) = images(2, 1, 48, 64);
        let shape = [2, 1, 48, 64];
        let (scores, boxes) = m.detections_before_nms(&Tensor::from_slice(&x).reshape(shape)).unwrap();
        let (want_scores, want_boxes) = (flat(&scores), flat(&boxes));
        // A threshold that 1000 (anchor, class) pairs of both images pass, so no pyramid level of an image
        // reaches post-processing's cap of 1000 candidates (of an untrained detector many of them have
        // boxes that apply then drops).
        let mut sorted = want_scores.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let min_confidence = f64::from(sorted[999]);
        m.set_param("min_confidence", &serde_json::json!(min_confidence)).unwrap();
        let path = tmp.path().join(format!("det{rotated}.pt"));
        m.export_torchscript(&path).unwrap();
        let (k, dims) = (2, if rotated { 5 } else { 4 });
        let want = flat(&Tensor::cat(&[scores, boxes], -1));
        let out = traced(&path, &x, shape);
        let d = dl_testkit::max_abs_diff(&out, &want);
        assert!(d <= 1e-5, "rotated {rotated}: libtorch's outputs differ from dlkit's by {d:e}");
        python_check(tmp.path(), &path, &x, &want, shape);
        // Per anchor: the scores, then the box.
        let rows = out.len() / (k + dims);
        let got: [Vec<f32>; 2] = [
            (0..rows).flat_map(|r| out[r * (k + dims)..][..k].to_vec()).collect(),
            (0..rows).flat_map(|r| out[r * (k + dims) + k..][..dims].to_vec()).collect(),
        ];
        assert!(dl_testkit::max_abs_diff(&got[0], &want_scores) <= 1e-5);
        assert!(dl_testkit::max_abs_diff(&got[1], &want_boxes) <= 1e-5);

        // dlkit's results from the exported outputs: threshold, NMS.
        let results = m.apply(imgs).unwrap();
        let anchors = got[0].len() / 2 / k;
        let kind = |key: &str| m.get_param(key).unwrap().as_f64().unwrap();
        let (overlap, agnostic) = (kind("max_overlap"), kind("max_overlap_class_agnostic"));
        let max_num = m.get_param("max_num_detections").unwrap().as_u64().unwrap() as usize;
        for (i, r) in results.iter().enumerate() {
            let mut rows: Vec<(u32, f64, Vec<f64>)> = Vec::new();
            for a in 0..anchors {
                let b: Vec<f64> =
                    got[1][(i * anchors + a) * dims..][..dims].iter().map(|&v| f64::from(v)).collect();
                for c in 0..k {
                    let score = got[0][(i * anchors + a) * k + c];
                    if f64::from(score) < min_confidence {
                        continue;
                    }
                    // Rotated boxes whose centre leaves the input are dropped.
                    if rotated
                        && !(b[0] + 0.5 > 0.0 && b[0] + 0.5 < 48.0 && b[1] + 0.5 > 0.0 && b[1] + 0.5 < 64.0)
                    {
                        continue;
                    }
                    // Axis-aligned boxes that clipping to the input leaves empty are dropped.
                    if !rotated && dlkit::core::Rect1::new(b[0], b[1], b[2], b[3]).is_err() {
                        continue;
                    }
                    rows.push((c as u32, f64::from(score), b.clone()));
                }
            }
            let ids = |kept: Vec<usize>| -> Vec<(i64, f64, Vec<f64>)> {
                kept.into_iter().map(|j| ([3, 8][rows[j].0 as usize], rows[j].1, rows[j].2.clone())).collect()
            };
            let mine = if rotated {
                let dets: Vec<_> = rows
                    .iter()
                    .map(|(c, s, b)| dlkit::core::Detection {
                        class: *c,
                        score: *s,
                        bbox: dlkit::core::Rect2::new(b[0], b[1], b[2], b[3], b[4]).unwrap(),
                    })
                    .collect();
                // Without direction apply describes each kept box long side first.
                let kept = ids(dlkit::core::nms(&dets, overlap, agnostic, max_num));
                kept.into_iter()
                    .map(|(c, s, b)| {
                        let l =
                            dlkit::core::Rect2::new(b[0], b[1], b[2], b[3], b[4]).unwrap().long_side_first();
                        (c, s, vec![l.row(), l.col(), l.phi(), l.length1(), l.length2()])
                    })
                    .collect()
            } else {
                let dets: Vec<_> = rows
                    .iter()
                    .map(|(c, s, b)| dlkit::core::Detection {
                        class: *c,
                        score: *s,
                        bbox: dlkit::core::Rect1::new(b[0], b[1], b[2], b[3]).unwrap(),
                    })
                    .collect();
                ids(dlkit::core::nms(&dets, overlap, agnostic, max_num))
            };
            let theirs: Vec<(i64, f64, Vec<f64>)> = {
                let ids = r.bbox_class_id.as_ref().unwrap();
                let conf = r.bbox_confidence.as_ref().unwrap();
                let cols: Vec<&Vec<f64>> = if rotated {
                    vec![
                        r.bbox_row.as_ref(),
                        r.bbox_col.as_ref(),
                        r.bbox_phi.as_ref(),
                        r.bbox_length1.as_ref(),
                        r.bbox_length2.as_ref(),
                    ]
                } else {
                    vec![
                        r.bbox_row1.as_ref(),
                        r.bbox_col1.as_ref(),
                        r.bbox_row2.as_ref(),
                        r.bbox_col2.as_ref(),
                    ]
                }
                .into_iter()
                .map(Option::unwrap)
                .collect();
                (0..ids.len())
                    .map(|j| (i64::from(ids[j].get()), conf[j], cols.iter().map(|c| c[j]).collect()))
                    .collect()
            };
            assert!(!theirs.is_empty(), "rotated {rotated}, image {i}: no detections to compare");
            assert_eq!(mine.len(), theirs.len(), "rotated {rotated}, image {i}: number of detections");
            for (a, b) in mine.iter().zip(&theirs) {
                assert_eq!(a.0, b.0, "class");
                assert!((a.1 - b.1).abs() <= 1e-6, "score {} vs {}", a.1, b.1);
                let d = dl_testkit::max_abs_diff(&a.2, &b.2);
                assert!(d <= 1e-3, "rotated {rotated}: box {:?} vs {:?}", a.2, b.2);
            }
        }
    }
}

/// Anomaly models: PatchCore (fitted on a few ELPV cells; unfitted it is refused), the student of
/// `anomaly_detection` and the Global Context model (its combined, local and global maps as three
/// channels) export anomaly images and scores equal to dlkit's results.
#[test]
fn exported_anomaly_models_give_dlkit_anomaly_images_and_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = dlkit::data::read::read_dl_dataset_anomaly(&dl_testkit::data_dir("elpv"), None).unwrap();
    let mut n = 0;
    ds.samples.retain_mut(|s| {
        n += 1;
        s.split = Some(dlkit::core::Split::Train);
        s.image_file_name.starts_with("train/") && n % 50 == 0
    });
    let (w, h) = (48, 40);
    let mut patchcore = Model::create_patchcore(
        "pretrained_dl_classifier_mobilenet_v2",
        None,
        (w, h, 3),
        &Default::default(),
    )
    .unwrap();
    let err = patchcore.export_torchscript(&tmp.path().join("pc.pt")).unwrap_err().to_string();
    assert!(err.contains("not fitted"), "{err}");
    patchcore.fit_patchcore(&ds, dlkit::NokInTrain::Skip, 1, false).unwrap();
    tch::manual_seed(2);
    let student = Model::create_anomaly_detection(
        "pretrained_dl_classifier_mobilenet_v2",
        None,
        (w, h, 3),
        &dlkit::nets::StudentConfig::default(),
    )
    .unwrap();
    let gc = Model::create_gc_anomaly_detection(
        "pretrained_dl_classifier_mobilenet_v2",
        None,
        (w, h, 3),
        &dlkit::nets::StudentConfig::default(),
        &dlkit::nets::GlobalConfig::default(),
    )
    .unwrap();
    for (name, m) in [("patchcore", &patchcore), ("student", &student), ("gc", &gc)] {
        let (imgs, x) = images(2, 3, h, w);
        let shape = [2, 3, h as i64, w as i64];
        let results = m.apply(imgs).unwrap();
        let want: Vec<f32> = results
            .iter()
            .flat_map(|r| [&r.anomaly_image, &r.anomaly_image_local, &r.anomaly_image_global])
            .flatten()
            .flat_map(|img| img.data.clone())
            .collect();
        let maps = if name == "gc" { 3 } else { 1 };
        assert_eq!(want.len(), 2 * maps * w * h, "{name}: one map per channel");
        let path = tmp.path().join(format!("{name}.pt"));
        m.export_torchscript(&path).unwrap();
        let got = traced(&path, &x, shape);
        let d = dl_testkit::max_abs_diff(&got, &want);
        assert!(d <= 1e-5, "{name}: libtorch's anomaly images differ from dlkit's by {d:e}");
        // The score is the image's maximum.
        for (i, r) in results.iter().enumerate() {
            let first = i * maps * w * h;
            let top = got[first..first + w * h].iter().copied().fold(f32::MIN, f32::max);
            assert!((f64::from(top) - r.anomaly_score.unwrap()).abs() <= 1e-5, "{name}: score");
        }
        python_check(tmp.path(), &path, &x, &want, shape);
    }
}
