//! Transfer learning on real data: EfficientNet-Lite0 on a small subset of ELPV (solar-cell
//! electroluminescence images, defect vs defect-free), pretrained on ImageNet vs trained from scratch
//! with the same budget (images, epochs, solver, schedule).
//!
//! Usage: `cargo run --release -p dlkit --example transfer_elpv [EPOCHS]` after `cargo xtask data elpv`
//! and `cargo xtask weights efficientnet_lite0`. Train: 200 images per class; validation: 50 per class;
//! test: every other defect and defect-free image (the `uncertain` folder is left out; 465 defect and
//! 1 258 defect-free, so always answering "good" has an error of 27 %). Four runs: from scratch,
//! pretrained and fully fine-tuned, pretrained with the backbone at a tenth of the learning rate,
//! pretrained with a frozen backbone (head only). Prints one JSON line
//! per run with the test top-1 error and mean recall.

use dlkit::Model;
use dlkit::core::{Rng, Split};
use dlkit::data::read::{LabelSource, read_dl_dataset_classification};
use dlkit::data::{DLDataset, SampleSelector};
use dlkit::train::{
    ChangeStrategy, EvalParams, Evaluation, StartEpoch, TrainParam, evaluate_dl_model, train_dl_model,
};
use serde_json::json;
use std::time::Instant;

fn subset(dir: &std::path::Path) -> Result<DLDataset, Box<dyn std::error::Error>> {
    let mut ds = read_dl_dataset_classification(dir, LabelSource::LastFolder)?;
    let uncertain = ds.class_names.iter().position(|n| n == "uncertain").map(|i| ds.class_ids[i]);
    ds.samples.retain(|s| s.image_label_id.as_ref().and_then(|l| l.first()).copied() != uncertain);
    let keep: Vec<usize> =
        (0..ds.class_names.len()).filter(|&i| Some(ds.class_ids[i]) != uncertain).collect();
    ds.class_names = keep.iter().map(|&i| ds.class_names[i].clone()).collect();
    ds.class_ids = keep.iter().map(|&i| ds.class_ids[i]).collect();
    let mut rng = Rng::new(2024);
    for class in ds.class_ids.clone() {
        let mut idx: Vec<usize> = (0..ds.samples.len())
            .filter(|&i| ds.samples[i].image_label_id.as_ref().and_then(|l| l.first()) == Some(&class))
            .collect();
        rng.shuffle(&mut idx);
        for (k, &i) in idx.iter().enumerate() {
            ds.samples[i].split = Some(match k {
                0..200 => Split::Train,
                200..250 => Split::Validation,
                _ => Split::Test,
            });
        }
    }
    Ok(ds)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let epochs: usize = std::env::args().nth(1).map(|e| e.parse()).transpose()?.unwrap_or(8);
    let ds = subset(&dl_testkit::data_dir("elpv"))?;
    let ids: Vec<i64> = ds.class_ids.iter().map(|c| i64::from(c.get())).collect();
    let count = |split| ds.samples.iter().filter(|s| s.split == Some(split)).count();
    eprintln!(
        "ELPV subset: classes {:?}, train {}, validation {}, test {}",
        ds.class_names,
        count(Split::Train),
        count(Split::Validation),
        count(Split::Test)
    );
    for (run, pretrained, freeze, backbone_factor) in [
        ("scratch", false, false, 1.0),
        ("pretrained", true, false, 1.0),
        ("pretrained, backbone at 0.1 × the learning rate", true, false, 0.1),
        ("pretrained, frozen backbone", true, true, 1.0),
    ] {
        tch::manual_seed(7);
        let mut model = if pretrained {
            Model::create_pretrained(
                "pretrained_dl_classifier_efficientnet_lite0",
                Some((&ds.class_names, &ids)),
            )?
        } else {
            let mut m = Model::create_classifier("efficientnet_lite0", &ds.class_names, &ids, 224, 224, 3)?;
            // The same input normalisation as the pretrained model.
            m.set_param(
                "preprocess_param",
                &Model::create_pretrained(
                    "pretrained_dl_classifier_efficientnet_lite0",
                    Some((&ds.class_names, &ids)),
                )?
                .get_param("preprocess_param")?,
            )?;
            m
        };
        model.set_param("freeze_backbone", &json!(freeze))?;
        model.set_param("backbone_learning_rate_factor", &json!(backbone_factor))?;
        for (k, v) in
            [("solver_type", json!("adam")), ("learning_rate", json!(0.001)), ("batch_size", json!(16))]
        {
            model.set_param(k, &v)?;
        }
        let out = std::env::temp_dir().join(format!("dlkit-transfer-{}-{}", std::process::id(), run.len()));
        let _ = std::fs::remove_dir_all(&out);
        let param = TrainParam {
            num_epochs: epochs,
            seed: 7,
            augmentation: Some(dlkit::data::preprocess::AugmentParams {
                mirror: Some(dlkit::data::preprocess::Mirror::RowsCols),
                ..Default::default()
            }),
            change_strategies: vec![ChangeStrategy::learning_rate_steps(
                0.001,
                0.1,
                &[(epochs * 3 / 4) as f64],
            )],
            serialization_strategies: vec![dlkit::train::SerializationStrategy::Best],
            output_dir: out.clone(),
            display: true,
            ..Default::default()
        };
        let t = Instant::now();
        let log = train_dl_model(&ds, &mut model, &param, StartEpoch::Fresh)?;
        let best = Model::read(&out.join("model_best.dlm"))?;
        let Evaluation::Classification(measures) =
            evaluate_dl_model(&best, &ds, &SampleSelector::Split(Split::Test), &EvalParams::default())?
        else {
            return Err("not a classification evaluation".into());
        };
        let _ = std::fs::remove_dir_all(&out);
        println!(
            "{}",
            json!({"run": run, "epochs": epochs, "test_top1_error": measures.top1_error,
                   "test_mean_recall": measures.mean_recall,
                   "test_samples": measures.num_samples, "best_validation_error": log.best.map(|b| b.value),
                   "seconds": t.elapsed().as_secs_f64()})
        );
    }
    Ok(())
}
