//! Detection models: learning on constructed scenes (axis-aligned and rotated), round trips, parameters,
//! bad input.

use dlkit::core::{ClassId, ImageId, Rect2, Rng};
use dlkit::data::preprocess::{collate, preprocess_sample};
use dlkit::data::{Boxes, DLResult, DLSample, HostImage, InstanceType, ModelType};
use dlkit::eval::{Evaluation, Evaluator, EvaluatorParams};
use dlkit::train::{SolverParam, build_optimizer, train_dl_model_batch};
use dlkit::{DetectorOptions, Model};

/// A 64×64 gray scene with 1–3 bright boxes (class 0) and dark boxes (class 1) on noise; rotated boxes
/// when `rotated`.
fn scene(seed: u64, rotated: bool) -> DLSample {
    let mut rng = Rng::new(seed);
    let (w, h) = (64usize, 64usize);
    let mut data: Vec<f32> = (0..w * h).map(|_| 100.0 + rng.below(40) as f32).collect();
    let n = 1 + rng.below(3) as usize;
    let (mut labels, mut r1, mut r2) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let class = rng.below(2) as i64;
        let (l1, l2) = (5.0 + rng.below(8) as f64, 3.0 + rng.below(4) as f64);
        let (row, col) = (14.0 + rng.below(36) as f64, 14.0 + rng.below(36) as f64);
        let phi = if rotated { (rng.below(180) as f64 - 90.0).to_radians() } else { 0.0 };
        let b = Rect2::new(row, col, phi, l1, l2).unwrap();
        let value = if class == 0 { 250.0 } else { 10.0 };
        let (e1, e2) = b.axes();
        for r in 0..h {
            for c in 0..w {
                let (dr, dc) = (r as f64 - row, c as f64 - col);
                if (dr * e1.0 + dc * e1.1).abs() <= l1 && (dr * e2.0 + dc * e2.1).abs() <= l2 {
                    data[r * w + c] = value;
                }
            }
        }
        labels.push(ClassId::new(class).unwrap());
        r1.push(b.enclosing_rect1());
        r2.push(b);
    }
    let mut s = DLSample::from_image(
        ImageId(seed),
        HostImage { width: w, height: h, channels: 1, bit_depth: 8, data },
    );
    s.boxes = Some(if rotated { Boxes::Rectangle2(r2) } else { Boxes::Rectangle1(r1) });
    s.bbox_label_id = Some(labels);
    s
}

fn names() -> (Vec<String>, Vec<i64>) {
    (vec!["bright".into(), "dark".into()], vec![0, 1])
}

fn train(model: &Model, samples: &[DLSample], steps: usize) -> f64 {
    let param = model.description().preprocess.clone();
    let pre: Vec<DLSample> =
        samples.iter().map(|s| preprocess_sample(s.clone(), &param).unwrap().0).collect();
    let ids: Vec<ClassId> = model.classes().ids;
    let mut opt = build_optimizer(
        model.var_store(),
        SolverParam::Adam { learning_rate: 2e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_prior: 0.0 },
    )
    .unwrap();
    let mut last = 0.0;
    for step in 0..steps {
        if step == steps * 3 / 4 {
            let slow = SolverParam::Adam {
                learning_rate: 2e-4,
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
                weight_prior: 0.0,
            };
            opt.set_param(slow).unwrap();
        }
        let chunk: Vec<DLSample> = (0..8).map(|i| pre[(step * 8 + i) % pre.len()].clone()).collect();
        let batch = collate(&chunk, &ids, Some(ModelType::Detection)).unwrap();
        let r = train_dl_model_batch(model, &mut opt, &batch).unwrap();
        last = r.total_loss;
        if step % 50 == 0 {
            eprintln!("step {step}: {:?}", r.components);
        }
    }
    last
}

fn mean_ap(model: &Model, samples: &[DLSample]) -> (f64, Vec<DLResult>) {
    let results = model.apply(samples.iter().map(|s| s.image.clone()).collect()).unwrap();
    let mut ev = Evaluator::new(ModelType::Detection, &model.classes().ids, &EvaluatorParams::default());
    assert_eq!(results.len(), samples.len());
    for (s, r) in samples.iter().zip(&results) {
        ev.add(s, r).unwrap();
    }
    let Evaluation::Detection(d) = ev.finish().unwrap() else { panic!() };
    (d.evaluation.mean_ap(), results)
}

#[test]
fn a_detector_learns_constructed_scenes() {
    let (n, ids) = names();
    let options = DetectorOptions { capacity: dlkit::nets::Capacity::Medium, ..Default::default() };
    let model = Model::create_detector("compact", &n, &ids, (64, 64, 1), &options).unwrap();
    let samples: Vec<DLSample> = (0..16).map(|i| scene(i, false)).collect();
    let loss = train(&model, &samples, 400);
    let (ap, _) = mean_ap(&model, &samples);
    eprintln!("rectangle1: final loss {loss:.4}, train mean_ap {ap:.3}");
    assert!(!dlkit::nets::Network::ignores_direction(model.network()));
    // Measured 0.93–1.0 over initialisations (1.000 with the He-initialised heads).
    assert!(ap >= 0.9, "train mean_ap {ap}");
}

#[test]
fn a_rotated_detector_learns_constructed_scenes() {
    let (n, ids) = names();
    let options = DetectorOptions {
        instance_type: InstanceType::Rectangle2,
        ignore_direction: true,
        capacity: dlkit::nets::Capacity::Medium,
        ..Default::default()
    };
    // Seeded just before creation (the initialisation is libtorch's global generator, which tests in
    // other threads share); 600 steps: 400 gave 0.807–0.963 over initialisations.
    tch::manual_seed(1);
    let model = Model::create_detector("compact", &n, &ids, (64, 64, 1), &options).unwrap();
    let samples: Vec<DLSample> = (0..16).map(|i| scene(i, true)).collect();
    let loss = train(&model, &samples, 600);
    let (ap, results) = mean_ap(&model, &samples);
    eprintln!("rectangle2: final loss {loss:.4}, train mean_ap {ap:.3}");
    // Boxes without a front: evaluate_dl_model (training's validation, `dlkit evaluate model`) takes
    // SoAP's angle errors modulo π for this network.
    assert!(dlkit::nets::Network::ignores_direction(model.network()));
    // Results refer to the original image and φ lies in (−π/2, π/2] (no direction).
    assert!(
        results
            .iter()
            .flat_map(|r| r.bbox_phi.clone().unwrap())
            .all(|p| p > -std::f64::consts::FRAC_PI_2 - 1e-12 && p <= std::f64::consts::FRAC_PI_2 + 1e-12)
    );
    // The bound. Measured at 600 steps: 0.964 (seed 1; before the He-initialised heads 0.957,
    // and 0.915 and 0.918 for seeds 2 and 5); rotated IoU at thresholds up to 0.95 is strict.
    assert!(ap >= 0.9, "train mean_ap {ap}");
}

fn gray(seed: u64, w: usize, h: usize) -> HostImage {
    let mut rng = Rng::new(seed);
    HostImage {
        width: w,
        height: h,
        channels: 1,
        bit_depth: 8,
        data: (0..w * h).map(|_| rng.below(256) as f32).collect(),
    }
}

#[test]
fn detection_model_files_parameters_and_refusals() {
    let (n, ids) = names();
    let options = DetectorOptions {
        capacity: dlkit::nets::Capacity::Medium,
        // A cap well below the candidates that survive clipping: an untrained net's boxes (its weights
        // drawn from libtorch's generator, which tests running in parallel share) may leave the image, and
        // the boxes clipping empties are dropped — 97 of the default 100 were left once.
        params: dlkit::nets::DetectionParams {
            min_confidence: 0.0,
            max_num_detections: 40,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut m = Model::create_detector("compact", &n, &ids, (64, 48, 1), &options).unwrap();
    let imgs = vec![gray(1, 80, 50), gray(2, 64, 64)];
    let a = m.apply(imgs.clone()).unwrap();
    assert_eq!(a[0].bbox_confidence.as_ref().unwrap().len(), 40, "max_num_detections caps the results");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.dlm");
    m.write(&path).unwrap();
    let back = Model::read(&path).unwrap();
    assert_eq!(back.description(), m.description());
    assert_eq!(back.apply(imgs.clone()).unwrap(), a, "identical detections after the round trip");
    for name in dlkit::DETECTION_PARAM_NAMES {
        m.get_param(name).unwrap();
    }
    assert_eq!(m.get_param("type").unwrap(), "detection");
    assert_eq!(m.get_param("backbone").unwrap(), "compact");
    assert_eq!(m.get_param("anchor_aspect_ratios").unwrap(), serde_json::json!([1.0, 2.0, 0.5]));
    assert_eq!(m.get_param("box_loss").unwrap(), "l1");
    for (name, value) in [
        ("max_num_detections", serde_json::json!(7)),
        ("max_overlap", serde_json::json!(0.3)),
        ("max_overlap_class_agnostic", serde_json::json!(0.9)),
        ("min_confidence", serde_json::json!(0.2)),
        ("bbox_heads_weight", serde_json::json!(2.0)),
        ("class_heads_weight", serde_json::json!(0.5)),
    ] {
        m.set_param(name, &value).unwrap();
        assert_eq!(m.get_param(name).unwrap(), value, "{name}");
    }
    let r = m.apply(imgs.clone()).unwrap();
    assert!(r.iter().all(|r| r.bbox_confidence.as_ref().unwrap().len() <= 7));
    m.set_param("min_confidence", &serde_json::json!(1.0)).unwrap();
    assert!(m.apply(imgs).unwrap().iter().all(|r| r.bbox_class_id.as_ref().unwrap().is_empty()));
    for name in ["min_level", "anchor_angles", "capacity", "instance_type", "backbone"] {
        let err = m.set_param(name, &serde_json::json!(3)).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains("architecture"), "{err}");
    }
    assert!(m.set_param("max_overlap", &serde_json::json!(1.5)).is_err());
    // A classifier has no OD parameters.
    let c = Model::create_classifier("compact", &n, &ids, 16, 16, 1).unwrap();
    assert!(c.get_param("min_confidence").unwrap_err().to_string().contains("classification model"));
}

/// `test_time_augmentation`: the detector's views (turned and mirrored on the network input) give what
/// applying it to each view of the image made on the host, mapping its boxes back and fusing them
/// gives, for rectangle1 and rectangle2 without direction.
#[test]
fn test_time_augmentation_fuses_the_views_of_the_image() {
    use dlkit::core::{Detection, Rect1, fuse_views, nms};
    use dlkit::data::preprocess::geometry::{mirror, rotate90};
    use dlkit::nets::TestTimeAugmentation;
    let (n, ids) = names();
    for rotated in [false, true] {
        let options = DetectorOptions {
            instance_type: if rotated { InstanceType::Rectangle2 } else { InstanceType::Rectangle1 },
            ignore_direction: rotated,
            // The dark class's rotated boxes are axis-parallel: turned views give them back as φ = ±π/2.
            class_ids_no_orientation: if rotated { vec![1] } else { Vec::new() },
            capacity: dlkit::nets::Capacity::Medium,
            params: dlkit::nets::DetectionParams {
                min_confidence: 0.002,
                max_num_detections: 30,
                ..Default::default()
            },
            ..Default::default()
        };
        tch::manual_seed(3);
        let mut m = Model::create_detector("compact", &n, &ids, (64, 64, 1), &options).unwrap();
        let img = gray(9, 64, 64);
        let mut pooled_r1: Vec<Detection<Rect1>> = Vec::new();
        let mut pooled_r2: Vec<Detection<Rect2>> = Vec::new();
        let views = TestTimeAugmentation::Dihedral.views();
        for v in views {
            let mut x = img.clone();
            x.data = mirror(&x.data, 64, 64, v.rows, v.cols);
            if v.turn {
                x.data = rotate90(&x.data, 64, 64);
            }
            let r = m.apply(vec![x]).unwrap().remove(0);
            let class = |i: usize| {
                ids.iter().position(|&c| c == i64::from(r.bbox_class_id.as_ref().unwrap()[i].get())).unwrap()
                    as u32
            };
            for (i, &score) in r.bbox_confidence.as_ref().unwrap().iter().enumerate() {
                if rotated {
                    let col = |c: &Option<Vec<f64>>| c.as_ref().unwrap()[i];
                    let b = Rect2::new(
                        col(&r.bbox_row),
                        col(&r.bbox_col),
                        col(&r.bbox_phi),
                        col(&r.bbox_length1),
                        col(&r.bbox_length2),
                    )
                    .unwrap();
                    let b = v.rect2_back(&b, 64, 64);
                    let mut bbox =
                        Rect2::with_direction(b.row(), b.col(), b.phi(), b.length1(), b.length2(), true)
                            .unwrap();
                    if class(i) == 1 {
                        bbox = bbox.axis_parallel();
                    }
                    pooled_r2.push(Detection { class: class(i), score, bbox });
                } else {
                    let col = |c: &Option<Vec<f64>>| c.as_ref().unwrap()[i];
                    let b = Rect1::new(
                        col(&r.bbox_row1),
                        col(&r.bbox_col1),
                        col(&r.bbox_row2),
                        col(&r.bbox_col2),
                    )
                    .unwrap();
                    pooled_r1.push(Detection { class: class(i), score, bbox: v.rect1_back(&b, 64, 64) });
                }
            }
        }
        let fused: Vec<(u32, f64, Vec<f64>)> = if rotated {
            let mut f = fuse_views(&pooled_r2, 8, 0.55, true);
            f.retain(|d| d.score >= 0.002);
            nms(&f, 0.5, 1.0, 30)
                .into_iter()
                .map(|i| {
                    let b = f[i].bbox;
                    (f[i].class, f[i].score, vec![b.row(), b.col(), b.phi(), b.length1(), b.length2()])
                })
                .collect()
        } else {
            let mut f = fuse_views(&pooled_r1, 8, 0.55, false);
            f.retain(|d| d.score >= 0.002);
            nms(&f, 0.5, 1.0, 30)
                .into_iter()
                .map(|i| {
                    let b = f[i].bbox;
                    (f[i].class, f[i].score, vec![b.row1(), b.col1(), b.row2(), b.col2()])
                })
                .collect()
        };
        m.set_param("test_time_augmentation", &serde_json::json!("dihedral")).unwrap();
        assert_eq!(m.get_param("test_time_augmentation").unwrap(), "dihedral");
        let r = m.apply(vec![img.clone()]).unwrap().remove(0);
        let got = r.bbox_confidence.as_ref().unwrap();
        assert!(fused.len() > 5 && fused.len() <= 30, "{} fused", fused.len());
        if rotated {
            // Both classes among the fused boxes, the axis-parallel one at φ = 0.
            assert!(fused.iter().any(|d| d.0 == 0) && fused.iter().any(|d| d.0 == 1));
            assert!(fused.iter().filter(|d| d.0 == 1).all(|d| d.2[2] == 0.0));
        }
        assert_eq!(got.len(), fused.len(), "rotated {rotated}");
        for (i, (class, score, b)) in fused.iter().enumerate() {
            assert_eq!(i64::from(r.bbox_class_id.as_ref().unwrap()[i].get()), ids[*class as usize]);
            assert!((got[i] - score).abs() < 1e-6, "{} vs {score}", got[i]);
            let cols: Vec<f64> = if rotated {
                [&r.bbox_row, &r.bbox_col, &r.bbox_phi, &r.bbox_length1, &r.bbox_length2]
                    .iter()
                    .map(|c| c.as_ref().unwrap()[i])
                    .collect()
            } else {
                [&r.bbox_row1, &r.bbox_col1, &r.bbox_row2, &r.bbox_col2]
                    .iter()
                    .map(|c| c.as_ref().unwrap()[i])
                    .collect()
            };
            for (x, y) in cols.iter().zip(b) {
                assert!((x - y).abs() < 1e-4, "rotated {rotated}, detection {i}: {cols:?} vs {b:?}");
            }
        }
        // A non-square image (resized into the network input): fused boxes lie in it.
        let wide = m.apply(vec![gray(4, 120, 50)]).unwrap().remove(0);
        if !rotated {
            let inside =
                |v: &Option<Vec<f64>>, hi: f64| v.as_ref().unwrap().iter().all(|&x| (-0.5..=hi).contains(&x));
            assert!(
                inside(&wide.bbox_row1, 49.5)
                    && inside(&wide.bbox_row2, 49.5)
                    && inside(&wide.bbox_col2, 119.5)
            );
        }
        let err = m.set_param("test_time_augmentation", &serde_json::json!("flip")).unwrap_err().to_string();
        assert!(err.contains("test_time_augmentation") && err.contains("dihedral"), "{err}");
    }
}

#[test]
fn bad_detector_configurations_and_targets_are_errors() {
    let (n, ids) = names();
    let small = Model::create_detector("compact", &n, &ids, (12, 64, 1), &DetectorOptions::default());
    let err = small.unwrap_err().to_string();
    assert!(err.contains("coarsest") && err.contains("12"), "{err}");
    let bad = DetectorOptions { min_level: 1, ..Default::default() };
    let err = Model::create_detector("resnet18", &n, &ids, (64, 64, 3), &bad).unwrap_err().to_string();
    assert!(err.contains("min_level"), "{err}");
    let err = Model::create_detector("vgg", &n, &ids, (64, 64, 3), &DetectorOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("backbone") && err.contains("vgg"), "{err}");
    let odd = DetectorOptions {
        class_ids_no_orientation: vec![5],
        instance_type: InstanceType::Rectangle2,
        ..Default::default()
    };
    let err = Model::create_detector("compact", &n, &ids, (64, 64, 1), &odd).unwrap_err().to_string();
    assert!(err.contains("class_ids_no_orientation") && err.contains('5'), "{err}");
    // GIoU is the axis-aligned detectors' option; rotated boxes choose rotated_box_loss.
    let giou = DetectorOptions { box_loss: dlkit::nets::BoxLoss::Giou, ..Default::default() };
    let mut m = Model::create_detector("compact", &n, &ids, (64, 64, 1), &giou).unwrap();
    assert_eq!(m.get_param("box_loss").unwrap(), "giou");
    assert_eq!(m.get_param("anchor_assignment").unwrap(), "iou");
    let atss =
        DetectorOptions { anchor_assignment: dlkit::nets::AnchorAssignment::Atss, ..Default::default() };
    let back = Model::deserialize(
        &Model::create_detector("compact", &n, &ids, (64, 64, 1), &atss).unwrap().serialize().unwrap(),
        "atss",
    )
    .unwrap();
    assert_eq!(back.get_param("anchor_assignment").unwrap(), "atss");
    let err = m.set_param("anchor_assignment", &serde_json::json!("atss")).unwrap_err().to_string();
    assert!(err.contains("anchor_assignment") && err.contains("architecture"), "{err}");
    let err = m.set_param("box_loss", &serde_json::json!("l1")).unwrap_err().to_string();
    assert!(err.contains("box_loss") && err.contains("architecture"), "{err}");
    let rotated_giou = DetectorOptions { instance_type: InstanceType::Rectangle2, ..giou };
    let err =
        Model::create_detector("compact", &n, &ids, (64, 64, 1), &rotated_giou).unwrap_err().to_string();
    assert!(err.contains("box_loss") && err.contains("rotated_box_loss"), "{err}");
    // Rotated boxes for an axis-aligned detector: the loss names the mismatch.
    let m = Model::create_detector("compact", &n, &ids, (64, 64, 1), &DetectorOptions::default()).unwrap();
    let mut opt = build_optimizer(
        m.var_store(),
        SolverParam::Sgd { learning_rate: 0.01, momentum: 0.9, weight_prior: 0.0 },
    )
    .unwrap();
    let batch = collate(&[scene(1, true)], &m.classes().ids, Some(ModelType::Detection)).unwrap();
    let err = train_dl_model_batch(&m, &mut opt, &batch).unwrap_err().to_string();
    assert!(err.contains("rectangle2 boxes for a rectangle1 detector"), "{err}");
    // A class the model does not know: collate names the sample.
    let mut s = scene(4, false);
    s.bbox_label_id = Some(vec![ClassId::new(9).unwrap(); s.bbox_label_id.as_ref().unwrap().len()]);
    let err = collate(&[s], &m.classes().ids, Some(ModelType::Detection)).unwrap_err().to_string();
    assert!(err.contains("sample 4") && err.contains("class id 9"), "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Post-processing of an untrained detector (many candidates) on images of any size: every box lies
    /// in the original image, results are sorted by confidence ≥ min_confidence, at most
    /// max_num_detections, and no two kept boxes of one class overlap above max_overlap.
    #[test]
    fn postprocessing_invariants(w in 20usize..140, h in 20usize..140, seed in 0u64..1000, rotated in proptest::prelude::any::<bool>()) {
        thread_local! {
            static MODELS: (Model, Model) = {
                let (n, ids) = names();
                let params = dlkit::nets::DetectionParams { min_confidence: 0.0, max_num_detections: 60, ..Default::default() };
                let o = DetectorOptions { capacity: dlkit::nets::Capacity::Medium, params, ..Default::default() };
                let o2 = DetectorOptions { instance_type: InstanceType::Rectangle2, anchor_angles: vec![0.0, 0.7], ..o.clone() };
                (
                    Model::create_detector("compact", &n, &ids, (48, 40, 1), &o).unwrap(),
                    Model::create_detector("compact", &n, &ids, (48, 40, 1), &o2).unwrap(),
                )
            };
        }
        let r = MODELS.with(|(r1, r2)| {
            let m = if rotated { r2 } else { r1 };
            m.apply(vec![gray(seed, w, h)]).unwrap().remove(0)
        });
        let conf = r.bbox_confidence.clone().unwrap();
        let classes = r.bbox_class_id.clone().unwrap();
        proptest::prop_assert!(!conf.is_empty() && conf.len() <= 60);
        proptest::prop_assert!(conf.windows(2).all(|p| p[0] >= p[1]) && conf.iter().all(|&c| c > 0.0));
        let (wf, hf) = (w as f64, h as f64);
        let eps = 1e-6;
        if rotated {
            let b: Vec<Rect2> = (0..conf.len())
                .map(|i| {
                    Rect2::new(
                        r.bbox_row.as_ref().unwrap()[i],
                        r.bbox_col.as_ref().unwrap()[i],
                        r.bbox_phi.as_ref().unwrap()[i],
                        r.bbox_length1.as_ref().unwrap()[i],
                        r.bbox_length2.as_ref().unwrap()[i],
                    )
                    .unwrap()
                })
                .collect();
            for (i, x) in b.iter().enumerate() {
                // The centre lies in the image (rotated boxes are not clipped).
                proptest::prop_assert!(x.row() > -0.5 - eps && x.row() < hf - 0.5 + eps && x.col() > -0.5 - eps && x.col() < wf - 0.5 + eps);
                for (j, y) in b.iter().enumerate().skip(i + 1) {
                    proptest::prop_assert!(classes[i] != classes[j] || x.iou(y) <= 0.5 + 1e-9, "{i} {j}");
                }
            }
        } else {
            let b: Vec<dlkit::core::Rect1> = (0..conf.len())
                .map(|i| {
                    dlkit::core::Rect1::new(
                        r.bbox_row1.as_ref().unwrap()[i],
                        r.bbox_col1.as_ref().unwrap()[i],
                        r.bbox_row2.as_ref().unwrap()[i],
                        r.bbox_col2.as_ref().unwrap()[i],
                    )
                    .unwrap()
                })
                .collect();
            for (i, x) in b.iter().enumerate() {
                proptest::prop_assert!(x.row1() >= -0.5 - eps && x.col1() >= -0.5 - eps && x.row2() <= hf - 0.5 + eps && x.col2() <= wf - 0.5 + eps, "{x:?} in {w}×{h}");
                for (j, y) in b.iter().enumerate().skip(i + 1) {
                    proptest::prop_assert!(classes[i] != classes[j] || x.iou(y) <= 0.5 + 1e-9, "{i} {j}");
                }
            }
        }
    }
}
