//! Anomaly detection on real data (`cargo xtask data elpv`, `cargo xtask weights`): PatchCore fitted on
//! ELPV's good solar cells only.

use dlkit::data::read::read_dl_dataset_anomaly;
use dlkit::data::{DLDataset, ModelType, SampleSelector, gen_dl_samples};
use dlkit::eval::{Evaluation, Evaluator, EvaluatorParams};
use dlkit::nets::PatchCoreConfig;
use dlkit::train::{EvalParams, evaluate_dl_model};
use dlkit::{Model, NokInTrain};

/// ELPV in the MVTec layout: `train/good` → train (every `keep`-th image), `test/good` and
/// `test/defect` alternately validation and test; `test/uncertain` left out.
fn elpv(keep: usize) -> DLDataset {
    let dir = dl_testkit::data_dir("elpv");
    let mut ds = read_dl_dataset_anomaly(&dir, None).unwrap();
    let mut train = 0;
    let mut alternate = [0usize; 2];
    ds.samples.retain_mut(|s| {
        let name = s.image_file_name.replace('\\', "/");
        let split = if name.starts_with("train/") {
            train += 1;
            if (train - 1) % keep != 0 {
                return false;
            }
            "train"
        } else if name.starts_with("test/uncertain") {
            return false;
        } else {
            let k = usize::from(name.starts_with("test/defect"));
            alternate[k] += 1;
            if alternate[k] % 2 == 0 { "validation" } else { "test" }
        };
        s.split = Some(split.parse().unwrap());
        true
    });
    ds
}

fn anomaly(e: Evaluation) -> dlkit::eval::AnomalyMeasures {
    let Evaluation::Anomaly(a) = e else { panic!("not an anomaly evaluation") };
    a
}

/// PatchCore (ImageNet MobileNetV2, strides 8 + 16, 1 % coreset) fitted on every fourth good training
/// cell: image AUROC on the test half of ELPV's good and defective cells ≥ 0.80; thresholds computed on
/// the validation half and stored, so `apply` on the raw cell classifies as the evaluation did; the
/// model file round trip keeps the anomaly images and scores.
#[test]
fn patchcore_on_elpv() {
    let ds = elpv(4);
    let mut model = Model::create_patchcore(
        "pretrained_dl_classifier_mobilenet_v2",
        None,
        (224, 224, 3),
        &PatchCoreConfig::default(),
    )
    .unwrap();
    model.set_param("batch_size", &serde_json::json!(16)).unwrap();
    let fit = model.fit_patchcore(&ds, NokInTrain::Refuse, 1, false).unwrap();
    let test = SampleSelector::Split("test".parse().unwrap());
    let t0 = std::time::Instant::now();
    let a = anomaly(evaluate_dl_model(&model, &ds, &test, &EvalParams::default()).unwrap());
    let eval_s = t0.elapsed().as_secs_f64();
    let thresholds = model.compute_anomaly_thresholds(&ds).unwrap();
    eprintln!(
        "ELPV patchcore: fitted {} images ({} patches → {} entries) in {:.1} s; test image AUROC {:.4} ({} images in {eval_s:.1} s); thresholds {thresholds:?}",
        fit.images,
        fit.patches,
        fit.memory_bank_size,
        fit.seconds,
        a.image_auroc,
        a.ok_scores.len() + a.nok_scores.len()
    );
    // ⌈1 % of each chunk of 65 536 patches⌉.
    let (full, rest) = (fit.patches / 65_536, fit.patches % 65_536);
    assert_eq!(fit.memory_bank_size, full * 656 + (rest as f64 * 0.01).ceil() as usize);
    assert!(a.image_auroc >= 0.80, "image AUROC {}", a.image_auroc);
    // Raw cells through the model file: classes from the stored thresholds, as the evaluation's.
    let back = Model::deserialize(&model.serialize().unwrap(), "memory").unwrap();
    let test_split = Some("test".parse().unwrap());
    let pick = |label| -> Vec<usize> {
        (0..ds.samples.len())
            .filter(|&i| ds.samples[i].split == test_split && ds.samples[i].anomaly_label == Some(label))
            .take(3)
            .collect()
    };
    let mut idx = pick(dlkit::data::AnomalyLabel::Ok);
    idx.extend(pick(dlkit::data::AnomalyLabel::Nok));
    let raw = gen_dl_samples(&ds, &idx).unwrap();
    let images: Vec<_> = raw.iter().map(|s| s.image.clone()).collect();
    let (r1, r2) = (model.apply(images.clone()).unwrap(), back.apply(images).unwrap());
    let cls = thresholds.classification_thresholds[2];
    for ((s, a), b) in raw.iter().zip(&r1).zip(&r2) {
        assert_eq!(a.anomaly_score, b.anomaly_score);
        assert_eq!(a.anomaly_image, b.anomaly_image);
        let img = a.anomaly_image.as_ref().unwrap();
        assert_eq!((img.width, img.height), (s.image.width, s.image.height));
        assert_eq!(a.anomaly_class_id, Some(u8::from(a.anomaly_score.unwrap() > cls)));
    }
    // The evaluation of the same samples (preprocessed) gives the same scores.
    let e = anomaly(
        evaluate_dl_model(&model, &ds, &SampleSelector::Indices(idx.clone()), &EvalParams::default())
            .unwrap(),
    );
    let mut from_eval: Vec<f64> = e.ok_scores.iter().chain(&e.nok_scores).copied().collect();
    let mut from_apply: Vec<f64> = r1.iter().map(|r| r.anomaly_score.unwrap()).collect();
    from_eval.sort_by(f64::total_cmp);
    from_apply.sort_by(f64::total_cmp);
    for (a, b) in from_eval.iter().zip(&from_apply) {
        assert!((a - b).abs() < 1e-5 * a.abs().max(1.0), "{from_eval:?} vs {from_apply:?}");
    }
    let mut ev =
        Evaluator::new(ModelType::AnomalyDetection, &model.classes().ids, &EvaluatorParams::default());
    for (s, r) in raw.iter().zip(&r1) {
        ev.add(s, r).unwrap();
    }
    assert_eq!(anomaly(ev.finish().unwrap()).image_auroc, e.image_auroc, "raw results, original size");
}
