//! PatchCore on all of ELPV (solar-cell electroluminescence images in the MVTec layout of `cargo xtask
//! data elpv`): fitted on every defect-free cell of `train/good`, evaluated on `test/good` and
//! `test/defect` (`test/uncertain` left out), for one configuration of taps and input size.
//!
//! Usage: `cargo run --release -p dlkit --example anomaly_elpv [SIZE] [STRIDES] [CORESET_RATIO]
//! [BACKBONE] [NEIGHBOURHOOD]` after `cargo xtask data elpv` and `cargo xtask weights`, e.g. `…
//! anomaly_elpv 320 4,8`. Defaults: 224, 8,16, 0.01, pretrained_dl_classifier_mobilenet_v2, 3. Prints
//! one JSON line: the fit's
//! images, patches, memory-bank entries and seconds, and the test image AUROC.

use dlkit::data::SampleSelector;
use dlkit::data::read::read_dl_dataset_anomaly;
use dlkit::nets::PatchCoreConfig;
use dlkit::train::{EvalParams, Evaluation, evaluate_dl_model};
use dlkit::{Model, NokInTrain};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let size: usize = args.first().map_or(Ok(224), |s| s.parse())?;
    let strides: Vec<i64> = match args.get(1) {
        Some(s) => s.split(',').map(str::parse).collect::<Result<_, _>>()?,
        None => vec![8, 16],
    };
    let coreset_ratio: f64 = args.get(2).map_or(Ok(0.01), |s| s.parse())?;
    let backbone = args.get(3).map_or("pretrained_dl_classifier_mobilenet_v2", String::as_str);
    let neighbourhood: i64 = args.get(4).map_or(Ok(3), |s| s.parse())?;
    let mut ds = read_dl_dataset_anomaly(&dl_testkit::data_dir("elpv"), None)?;
    ds.samples.retain(|s| !s.image_file_name.replace('\\', "/").starts_with("test/uncertain"));
    for s in &mut ds.samples {
        let train = s.image_file_name.replace('\\', "/").starts_with("train/");
        s.split = Some(if train { "train" } else { "test" }.parse()?);
    }
    let config = PatchCoreConfig {
        strides: strides.clone(),
        coreset_ratio,
        neighbourhood,
        ..PatchCoreConfig::default()
    };
    let mut model = Model::create_patchcore(backbone, None, (size, size, 3), &config)?;
    model.set_param("batch_size", &json!(16))?;
    let fit = model.fit_patchcore(&ds, NokInTrain::Refuse, 1, true)?;
    let t0 = std::time::Instant::now();
    let Evaluation::Anomaly(a) =
        evaluate_dl_model(&model, &ds, &SampleSelector::Split("test".parse()?), &EvalParams::default())?
    else {
        return Err("not an anomaly evaluation".into());
    };
    println!(
        "{}",
        json!({
            "backbone": backbone, "size": size, "strides": strides, "coreset_ratio": coreset_ratio,
            "neighbourhood": neighbourhood, "fit_images": fit.images, "patches": fit.patches, "memory_bank": fit.memory_bank_size,
            "fit_s": fit.seconds, "test_ok": a.ok_scores.len(), "test_nok": a.nok_scores.len(),
            "eval_s": t0.elapsed().as_secs_f64(), "image_auroc": a.image_auroc,
        })
    );
    Ok(())
}
