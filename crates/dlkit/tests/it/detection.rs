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
    tch::manual_seed(3);
    let model = Model::create_detector("compact", &n, &ids, (64, 64, 1), &options).unwrap();
    let samples: Vec<DLSample> = (0..16).map(|i| scene(i, false)).collect();
    let loss = train(&model, &samples, 400);
    let (ap, _) = mean_ap(&model, &samples);
    eprintln!("rectangle1: final loss {loss:.4}, train mean_ap {ap:.3}");
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
    tch::manual_seed(3);
    let model = Model::create_detector("compact", &n, &ids, (64, 64, 1), &options).unwrap();
    let samples: Vec<DLSample> = (0..16).map(|i| scene(i, true)).collect();
    let loss = train(&model, &samples, 400);
    let (ap, results) = mean_ap(&model, &samples);
    eprintln!("rectangle2: final loss {loss:.4}, train mean_ap {ap:.3}");
    // Results refer to the original image and φ lies in (−π/2, π/2] (no direction).
    assert!(
        results
            .iter()
            .flat_map(|r| r.bbox_phi.clone().unwrap())
            .all(|p| p > -std::f64::consts::FRAC_PI_2 - 1e-12 && p <= std::f64::consts::FRAC_PI_2 + 1e-12)
    );
    assert!(ap >= 0.9, "train mean_ap {ap}");
}
