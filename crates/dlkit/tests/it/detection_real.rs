//! Detection on real data (`cargo xtask data stardist deepforest`): rotated nuclei boxes of stardist.

use dlkit::data::preprocess::AugmentParams;
use dlkit::data::read::{CocoReadParams, read_dl_dataset_from_coco};
use dlkit::data::{
    DLDataset, DLSample, InstanceType, ModelType, TileParams, gen_dl_samples, tile_dl_dataset,
};
use dlkit::eval::{Evaluation, Evaluator, EvaluatorParams};
use dlkit::train::{ChangeStrategy, SerializationStrategy, StartEpoch, TrainParam, train_dl_model};
use dlkit::{DetectorOptions, Model};
use serde_json::json;

/// AP@0.5, mean_ap and SoAP of `model` applied to the raw `samples` (original coordinates).
fn measure(model: &Model, samples: &[DLSample]) -> (f64, f64, f64) {
    let results = model.apply(samples.iter().map(|s| s.image.clone()).collect()).unwrap();
    let mut ev = Evaluator::new(ModelType::Detection, &model.classes().ids, &EvaluatorParams::default());
    for (s, r) in samples.iter().zip(&results) {
        ev.add(s, r).unwrap();
    }
    let Evaluation::Detection(d) = ev.finish().unwrap() else { panic!() };
    let j = d.to_json();
    (j["ap_iou_05"].as_f64().unwrap(), j["mean_ap"].as_f64().unwrap(), j["soap"].as_f64().unwrap())
}

/// stardist nuclei as rotated boxes without direction: train on 128×128 tiles of three 256×256
/// quadrants, test on the fourth quadrant at 256×256 (the fully convolutional detector's input size set
/// to the quadrant's).
#[test]
fn rotated_nuclei_of_stardist() {
    let dir = dl_testkit::data_dir("stardist").join("quadrants");
    let mut ds = read_dl_dataset_from_coco(
        &dir.join("rotated_coco.json"),
        &dir.join("images"),
        &CocoReadParams::default(),
    )
    .unwrap();
    assert_eq!(ds.samples.len(), 4);
    let tmp = tempfile::tempdir().unwrap();
    let params = TileParams { width: 128, height: 128, overlap: 64, min_visible: 0.5 };
    let mut tiles = tile_dl_dataset(&ds, &[0, 1, 2], &params, &tmp.path().join("tiles")).unwrap();
    assert_eq!(tiles.samples.len(), 27);
    // The centre tile of each training quadrant validates; the others train.
    for s in &mut tiles.samples {
        let centre = s.extra["tile_row"] == 64 && s.extra["tile_col"] == 64;
        s.split = Some(if centre { "validation" } else { "train" }.parse().unwrap());
    }
    let names = tiles.class_names.clone();
    let ids: Vec<i64> = tiles.class_ids.iter().map(|c| i64::from(c.get())).collect();
    let options = DetectorOptions {
        instance_type: InstanceType::Rectangle2,
        ignore_direction: true,
        capacity: dlkit::nets::Capacity::Medium,
        ..Default::default()
    };
    tch::manual_seed(1);
    let mut model = Model::create_detector("compact", &names, &ids, (128, 128, 1), &options).unwrap();
    for (k, v) in [("batch_size", json!(8)), ("solver_type", json!("adam")), ("learning_rate", json!(0.002))]
    {
        model.set_param(k, &v).unwrap();
    }
    let epochs = 90;
    let param = TrainParam {
        num_epochs: epochs,
        evaluation_interval_epochs: 30,
        output_dir: tmp.path().join("training"),
        display: false,
        seed: 3,
        serialization_strategies: vec![SerializationStrategy::Final],
        augmentation: Some(AugmentParams {
            mirror: Some("rc".parse().unwrap()),
            rotate: 90,
            ..Default::default()
        }),
        change_strategies: vec![ChangeStrategy::learning_rate_steps(0.002, 0.1, &[70.0])],
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let log = train_dl_model(&tiles, &mut model, &param, StartEpoch::Fresh).unwrap();
    let seconds = t0.elapsed().as_secs_f64();
    // The test quadrant, raw, at its own size.
    model.set_param("image_width", &json!(256)).unwrap();
    model.set_param("image_height", &json!(256)).unwrap();
    let test: DLDataset = {
        ds.samples.truncate(4);
        ds
    };
    let q3 = gen_dl_samples(&test, &[3]).unwrap();
    let (ap50, map, soap) = measure(&model, &q3);
    eprintln!(
        "stardist r2: {} tiles × {epochs} epochs in {seconds:.0} s (validation mean_ap {:?}); fourth quadrant: AP@0.5 {ap50:.3}, mean_ap {map:.3}, SoAP {soap:.3}",
        24, log.evaluation_curve
    );
    assert!(ap50 >= 0.6, "AP@0.5 {ap50}");
}

fn dlkit_cli(args: &[&str], cwd: &std::path::Path) -> std::process::Output {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_dlkit")).args(args).current_dir(cwd).output().unwrap();
    assert!(out.status.success(), "dlkit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The command-line workflow of a rotated detector: read, split, create, train, evaluate, apply.
#[test]
fn detection_through_the_command_line() {
    let q = dl_testkit::data_dir("stardist").join("quadrants");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (ann, img) = (q.join("rotated_coco.json"), q.join("images"));
    dlkit_cli(
        &[
            "dataset",
            "read",
            "--format",
            "coco-rotated",
            "--annotations",
            ann.to_str().unwrap(),
            "--images",
            img.to_str().unwrap(),
            "-o",
            "d.json",
        ],
        dir,
    );
    dlkit_cli(&["dataset", "split", "d.json", "--train", "50", "--validation", "25"], dir);
    let out = dlkit_cli(
        &["--json", "dataset", "detection-params", "d.json", "--width", "128", "--height", "128"],
        dir,
    );
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(p["rotated"] == true && p["num_boxes"].as_u64().unwrap() > 0, "{p}");
    assert!(p["proposal"]["coverage"].as_f64().unwrap() >= p["default_coverage"].as_f64().unwrap(), "{p}");
    dlkit_cli(
        &[
            "dataset",
            "tile",
            "d.json",
            "--width",
            "128",
            "--height",
            "128",
            "--overlap",
            "0",
            "--out",
            "tiles",
            "-o",
            "tiles.json",
        ],
        dir,
    );
    let tiles = dlkit::data::DLDataset::load(&dir.join("tiles.json")).unwrap();
    assert_eq!(tiles.samples.len(), 16);
    let out = dlkit_cli(
        &[
            "model",
            "create",
            "--type",
            "detection",
            "--backbone",
            "compact",
            "--dataset",
            "d.json",
            "--width",
            "128",
            "--height",
            "128",
            "--channels",
            "1",
            "--ignore-direction",
            "--capacity",
            "medium",
            "--min-confidence",
            "0.05",
            "-o",
            "m.dlm",
        ],
        dir,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("rectangle2 detector on compact"));
    let get = |name: &str| {
        let out = dlkit_cli(&["--json", "model", "get", "m.dlm", name], dir);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(get("instance_type"), "rectangle2");
    assert_eq!(get("ignore_direction"), true);
    assert_eq!(get("min_confidence"), 0.05);
    dlkit_cli(&["model", "set", "m.dlm", "max_num_detections", "50"], dir);
    dlkit_cli(
        &[
            "train",
            "--dataset",
            "d.json",
            "--model",
            "m.dlm",
            "--epochs",
            "2",
            "--batch-size",
            "2",
            "--solver",
            "adam",
            "--lr",
            "0.002",
            "--out",
            "t",
        ],
        dir,
    );
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("t/training_log.json")).unwrap()).unwrap();
    assert_eq!(log["measure"], "mean_ap");
    assert_eq!(log["lower_is_better"], false);
    let out = dlkit_cli(
        &[
            "--json",
            "evaluate",
            "model",
            "--model",
            "t/model_final.dlm",
            "--dataset",
            "d.json",
            "--split",
            "all",
            "--plots",
            "p",
        ],
        dir,
    );
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        e["mean_ap"].as_f64().unwrap() >= 0.0
            && e["soap"].is_number()
            && e["detailed_evaluation"]["num_fn"].is_number(),
        "{e}"
    );
    assert!(dir.join("p/pr_curves_iou_05.png").is_file());
    let q0 = img.join("q0.png");
    let out = dlkit_cli(
        &["--json", "apply", "--model", "t/model_final.dlm", q0.to_str().unwrap(), "--overlay", "shown"],
        dir,
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = r[0]["bbox_class_id"].as_array().unwrap().len();
    assert!(n <= 50 && r[0]["bbox_phi"].as_array().unwrap().len() == n, "{r}");
    assert_eq!(
        r[0]["bbox_class_name"].as_array().unwrap().first().map_or("nucleus", |v| v.as_str().unwrap()),
        "nucleus"
    );
    let shown = image::open(dir.join("shown/q0_result.png")).unwrap();
    assert_eq!((shown.width(), shown.height()), (512, 512));
}
