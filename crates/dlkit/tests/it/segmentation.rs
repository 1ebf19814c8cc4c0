//! Semantic segmentation on real data (`cargo xtask data stardist labelme`): stardist nuclei from
//! scratch and on a pretrained backbone, an 8-image labelme overfit, the CLI workflow on labelme's VOC
//! export (255 = ignore), results at the original image size, and bad input.

use dlkit::data::preprocess::geometry::resize_bilinear;
use dlkit::data::read::{
    LabelmeReadParams, SegmentationReadParams, read_dl_dataset_labelme, read_dl_dataset_segmentation,
};
use dlkit::data::{DLDataset, HostImage, LabelImage, ModelType, SampleSelector, gen_dl_samples};
use dlkit::eval::{Evaluation, Evaluator, EvaluatorParams};
use dlkit::train::{
    EvalParams, SerializationStrategy, StartEpoch, TrainParam, evaluate_dl_model, train_dl_model,
};
use dlkit::{Model, SegmenterOptions};
use serde_json::json;
use std::path::Path;

/// stardist's quadrants: q0 … q2 train, q3 test, and q2 once more (a second image id) to validate.
fn nuclei() -> DLDataset {
    let q = dl_testkit::data_dir("stardist").join("quadrants");
    let params = SegmentationReadParams {
        class_names: vec!["background".into(), "nucleus".into()],
        class_ids: vec![0, 1],
        ..Default::default()
    };
    let mut ds = read_dl_dataset_segmentation(&q.join("images"), &q.join("labels"), &params).unwrap();
    assert_eq!(ds.samples.len(), 4);
    for (i, s) in ds.samples.iter_mut().enumerate() {
        s.split = Some(if i == 3 { "test" } else { "train" }.parse().unwrap());
    }
    let mut val = ds.samples[2].clone();
    val.image_id = dlkit::core::ImageId(10);
    val.split = Some("validation".parse().unwrap());
    ds.samples.push(val);
    ds
}

fn train(model: &mut Model, ds: &DLDataset, epochs: usize, lr: f64, batch: usize, dir: &Path) {
    for (k, v) in [("batch_size", json!(batch)), ("solver_type", json!("adam")), ("learning_rate", json!(lr))]
    {
        model.set_param(k, &v).unwrap();
    }
    let param = TrainParam {
        num_epochs: epochs,
        evaluation_interval_epochs: 10,
        output_dir: dir.to_owned(),
        display: false,
        seed: 1,
        serialization_strategies: vec![SerializationStrategy::Best],
        ..Default::default()
    };
    train_dl_model(ds, model, &param, StartEpoch::Fresh).unwrap();
    *model = Model::read(&dir.join("model_best.dlm")).unwrap();
}

fn segmentation(e: Evaluation) -> dlkit::eval::SegmentationEvaluation {
    let Evaluation::Segmentation(s) = e else { panic!("not a segmentation evaluation") };
    s
}

/// Nucleus IoU on the held-out quadrant ≥ 0.80 from scratch (compact, gray) and on ImageNet
/// MobileNetV2 (the gray image replicated to 3 channels). The model file carries the preprocessing:
/// `apply` on the raw quadrant gives the masks the evaluation measured.
#[test]
fn stardist_nuclei_from_scratch_and_pretrained() {
    let ds = nuclei();
    let tmp = tempfile::tempdir().unwrap();
    let (names, ids) = (ds.class_names.clone(), vec![0i64, 1]);
    let options = SegmenterOptions::default();
    tch::manual_seed(1);
    let mut scratch =
        Model::create_segmenter("compact", None, &names, &ids, (256, 256, 1), &options).unwrap();
    let t0 = std::time::Instant::now();
    train(&mut scratch, &ds, 40, 0.003, 3, &tmp.path().join("scratch"));
    let scratch_s = t0.elapsed().as_secs_f64();
    tch::manual_seed(1);
    let mut pretrained = Model::create_segmenter(
        "pretrained_dl_classifier_mobilenet_v2",
        None,
        &names,
        &ids,
        (256, 256, 3),
        &options,
    )
    .unwrap();
    let t0 = std::time::Instant::now();
    train(&mut pretrained, &ds, 40, 0.001, 3, &tmp.path().join("pretrained"));
    let pretrained_s = t0.elapsed().as_secs_f64();
    let test = SampleSelector::Split("test".parse().unwrap());
    for (name, model, seconds) in
        [("compact", &scratch, scratch_s), ("mobilenet_v2", &pretrained, pretrained_s)]
    {
        let e = segmentation(evaluate_dl_model(model, &ds, &test, &EvalParams::default()).unwrap());
        eprintln!(
            "stardist {name}: {seconds:.0} s; fourth quadrant nucleus IoU {:.4}, mean_iou {:.4}, pixel accuracy {:.4}",
            e.class_iou[1], e.mean_iou, e.pixel_accuracy
        );
        assert!(e.class_iou[1] >= 0.80, "{name}: nucleus IoU {}", e.class_iou[1]);
        // The raw image through the model file's preprocessing: the same measures.
        let raw = gen_dl_samples(&ds, &[3]).unwrap();
        let results = model.apply(vec![raw[0].image.clone()]).unwrap();
        let mut ev =
            Evaluator::new(ModelType::Segmentation, &model.classes().ids, &EvaluatorParams::default());
        ev.add(&raw[0], &results[0]).unwrap();
        assert_eq!(segmentation(ev.finish().unwrap()), e, "{name}");
    }
}

/// Results have the original image's size for other sizes and aspect ratios, and (resized with it)
/// agree with the network-size result on most pixels; the model file round trip keeps the masks.
#[test]
fn masks_have_the_original_size() {
    let ds = nuclei();
    let tmp = tempfile::tempdir().unwrap();
    tch::manual_seed(2);
    let mut model = Model::create_segmenter(
        "compact",
        None,
        &ds.class_names,
        &[0, 1],
        (128, 128, 1),
        &SegmenterOptions::default(),
    )
    .unwrap();
    train(&mut model, &ds, 15, 0.003, 3, tmp.path());
    let img = gen_dl_samples(&ds, &[3]).unwrap().remove(0).image;
    let same = model.apply(vec![img.clone()]).unwrap().remove(0).segmentation_image.unwrap();
    assert_eq!((same.width, same.height), (256, 256));
    // The model file round trip: same description, same masks.
    let back = Model::deserialize(&model.serialize().unwrap(), "memory").unwrap();
    assert_eq!(back.description(), model.description());
    assert_eq!(back.apply(vec![img.clone()]).unwrap().remove(0).segmentation_image.unwrap(), same);
    for (w, h) in [(300, 170), (97, 211), (256, 64)] {
        let data = resize_bilinear(&img.data, 256, 256, w, h);
        let other = HostImage { width: w, height: h, channels: 1, bit_depth: 8, data };
        let r = model.apply(vec![other]).unwrap().remove(0);
        let seg = r.segmentation_image.unwrap();
        let conf = r.segmentation_confidence.unwrap();
        assert_eq!((seg.width, seg.height, conf.width, conf.height), (w, h, w, h));
        assert!(
            conf.data.iter().all(|&c| (0.5..=1.0).contains(&c)),
            "{w}×{h}: confidences of the argmax class"
        );
        if w >= 128 && h >= 128 {
            let expected = dlkit::data::preprocess::geometry::resize_nearest(&same.data, 256, 256, w, h);
            let agree =
                expected.iter().zip(&seg.data).filter(|(a, b)| a == b).count() as f64 / (w * h) as f64;
            assert!(agree > 0.9, "{w}×{h}: {agree}");
        }
    }
}

/// labelme's semantic-segmentation and video-annotation examples (8 images, 7 classes and
/// background, `__ignore__` = 255) drawn into label images: a compact model fits them, train
/// mean_iou ≥ 0.9.
#[test]
fn overfits_eight_labelme_images() {
    let root = dl_testkit::data_dir("labelme");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for (from, to) in [("video_annotation", "video"), ("semantic_segmentation", "voc")] {
        let dir = src.join(to);
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(root.join(from).join("data_annotated")).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    let params = LabelmeReadParams { label_image_dir: Some(tmp.path().join("labels")), ..Default::default() };
    let mut ds = read_dl_dataset_labelme(&src, &params).unwrap();
    assert_eq!(ds.samples.len(), 8);
    assert_eq!(ds.class_names, ["_background_", "bottle", "bus", "car", "chair", "person", "sofa", "track"]);
    let ignored = ds
        .samples
        .iter()
        .map(|s| {
            let l =
                LabelImage::read(&tmp.path().join("labels").join(s.segmentation_file_name.as_ref().unwrap()))
                    .unwrap();
            l.data.iter().filter(|&&v| v == 255).count()
        })
        .sum::<usize>();
    assert!(ignored > 0, "__ignore__ polygons are drawn as 255");
    assert_eq!(ds.ignore_class_ids(), [dlkit::core::ClassId::new(255).unwrap()]);
    assert!(ds.validate().is_empty(), "{:?}", ds.validate());
    for s in &mut ds.samples {
        s.split = Some("train".parse().unwrap());
    }
    let mut val = ds.samples[0].clone();
    val.image_id = dlkit::core::ImageId(100);
    val.split = Some("validation".parse().unwrap());
    ds.samples.push(val);
    let ids: Vec<i64> = (0..8).collect();
    let options = SegmenterOptions {
        ignore_class_ids: vec![255],
        params: dlkit::nets::SegmentationParams { dice_loss_weight: 1.0 },
        ..Default::default()
    };
    tch::manual_seed(3);
    let mut model =
        Model::create_segmenter("compact", None, &ds.class_names, &ids, (192, 128, 3), &options).unwrap();
    for (k, v) in [("batch_size", json!(4)), ("solver_type", json!("adam")), ("learning_rate", json!(0.003))]
    {
        model.set_param(k, &v).unwrap();
    }
    let param = TrainParam {
        num_epochs: 150,
        evaluation_interval_epochs: 150,
        output_dir: tmp.path().join("training"),
        display: false,
        serialization_strategies: vec![SerializationStrategy::Final],
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    train_dl_model(&ds, &mut model, &param, StartEpoch::Fresh).unwrap();
    let train_split = SampleSelector::Split("train".parse().unwrap());
    let e = segmentation(evaluate_dl_model(&model, &ds, &train_split, &EvalParams::default()).unwrap());
    eprintln!(
        "labelme 8 images: {:.0} s; train mean_iou {:.4}, class IoU {:?}",
        t0.elapsed().as_secs_f64(),
        e.mean_iou,
        e.class_iou
    );
    assert!(e.mean_iou >= 0.9, "train mean_iou {}", e.mean_iou);
}

fn dlkit_cli(args: &[&str], cwd: &Path) -> std::process::Output {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_dlkit")).args(args).current_dir(cwd).output().unwrap();
    assert!(out.status.success(), "dlkit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// labelme's VOC export (palette PNGs, 21 classes, 255 = ignore) through the command line: read,
/// split, preprocess with the ignore class, weights, train, evaluate (confusion matrix PNG), apply
/// with an overlay.
#[test]
fn labelme_voc_export_through_the_command_line() {
    let voc = dl_testkit::data_dir("labelme").join("semantic_segmentation").join("data_dataset_voc");
    let names: Vec<String> =
        std::fs::read_to_string(voc.join("class_names.txt")).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(names.len(), 21);
    let ids: Vec<String> = (0..names.len()).map(|i| i.to_string()).collect();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (images, labels) = (voc.join("JPEGImages"), voc.join("SegmentationClassPNG"));
    dlkit_cli(
        &[
            "dataset",
            "read",
            "--format",
            "segmentation",
            "--images",
            images.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--class-names",
            &names.join(","),
            "--class-ids",
            &ids.join(","),
            "-o",
            "d.json",
        ],
        dir,
    );
    dlkit_cli(&["dataset", "split", "d.json", "--train", "67", "--validation", "33"], dir);
    // dataset info: pixels per class and split, 255 (labelme's ignore value) named as no class.
    let out = dlkit_cli(&["--json", "dataset", "info", "d.json"], dir);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pixels = info["segmentation_pixels"].as_array().unwrap();
    let row = |v: u64| pixels.iter().find(|p| p["value"] == v).unwrap_or_else(|| panic!("{info}"));
    assert_eq!(
        (row(0)["class_name"].as_str(), row(0)["images"].as_u64()),
        (Some("_background_"), Some(3)),
        "{info}"
    );
    assert_eq!(row(255)["is_class"], false, "{info}");
    let total: u64 = pixels.iter().map(|p| p["pixels"].as_u64().unwrap()).sum();
    assert_eq!(total, 500 * 338 + 2 * 500 * 375, "every pixel of the three label images");
    let text = String::from_utf8_lossy(&dlkit_cli(&["dataset", "info", "d.json"], dir).stdout).into_owned();
    assert!(text.contains("pixels per class (label images)") && text.contains("not a class"), "{text}");
    dlkit_cli(
        &[
            "dataset",
            "preprocess",
            "d.json",
            "--out",
            "pre",
            "--width",
            "96",
            "--height",
            "64",
            "--normalization",
            "constant_values",
            "--ignore-class-ids",
            "255",
        ],
        dir,
    );
    let out = dlkit_cli(&["--json", "dataset", "weights", "pre/dataset.json", "--max-weight", "10"], dir);
    let w: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(w["class_weights"].as_array().unwrap().len(), 21);
    assert_eq!(w["class_weights"][0], 1.0, "the most frequent class (background) weighs 1");
    let out = dlkit_cli(
        &[
            "train",
            "--dataset",
            "pre/dataset.json",
            "--create",
            "compact",
            "--epochs",
            "3",
            "--batch-size",
            "2",
            "-o",
            "training",
        ],
        dir,
    );
    // Without a terminal, one line per epoch (no progress bar is drawn).
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("epoch 1/3: loss") && log.contains("epoch 3/3: loss"), "{log}");
    let out = dlkit_cli(
        &[
            "--json",
            "evaluate",
            "model",
            "--model",
            "training/model_final.dlm",
            "--dataset",
            "pre/dataset.json",
            "--split",
            "all",
            "--plots",
            "plots",
        ],
        dir,
    );
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "pixel_accuracy",
        "class_pixel_accuracy",
        "mean_accuracy",
        "class_iou",
        "mean_iou",
        "frequency_weighted_iou",
    ] {
        assert!(!e[key].is_null(), "{key} in {e}");
    }
    assert!(dir.join("plots/pixel_confusion_matrix.png").is_file());
    let model = Model::read(&dir.join("training/model_final.dlm")).unwrap();
    assert_eq!(model.get_param("ignore_class_ids").unwrap(), json!([255]));
    let image = images.join("2011_000003.jpg");
    let out = dlkit_cli(
        &["apply", "--model", "training/model_final.dlm", "--overlay", "overlay", image.to_str().unwrap()],
        dir,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("_background_"));
    let mask = LabelImage::read(&dir.join("overlay/2011_000003_segmentation.png")).unwrap();
    let original = HostImage::read(&image).unwrap();
    assert_eq!((mask.width, mask.height), (original.width, original.height));
    assert!(dir.join("overlay/2011_000003_result.png").is_file());
}

/// Bad input: label values that are neither classes nor ignored, a label image of another size, a
/// model for other classes, ignore classes that are classes, class weights without weight images —
/// each a clear error naming the sample or key.
#[test]
fn bad_segmentation_input_is_refused() {
    let ds = nuclei();
    let tmp = tempfile::tempdir().unwrap();
    let options = SegmenterOptions::default();
    let mk = |ids: &[i64], opts: &SegmenterOptions| {
        Model::create_segmenter("compact", None, &["a".into(), "b".into()], ids, (64, 64, 1), opts)
    };
    let param = |name: &str| TrainParam {
        num_epochs: 1,
        output_dir: tmp.path().join(name),
        display: false,
        ..Default::default()
    };
    // Label value 1 is not a class of a model for classes 0 and 2 (the dataset's classes are checked
    // first: give the dataset the model's classes).
    let mut other = ds.clone();
    other.class_ids = vec![dlkit::core::ClassId::new(0).unwrap(), dlkit::core::ClassId::new(2).unwrap()];
    let mut model = mk(&[0, 2], &options).unwrap();
    model.set_param("batch_size", &json!(1)).unwrap();
    let err = train_dl_model(&other, &mut model, &param("a"), StartEpoch::Fresh).unwrap_err().to_string();
    assert!(err.contains("label value 1") && err.contains("label image q"), "{err}");
    // A model for other classes than the dataset's.
    let err = train_dl_model(&ds, &mut model, &param("b"), StartEpoch::Fresh).unwrap_err().to_string();
    assert!(err.contains("not classes of the model"), "{err}");
    // A label image of another size than its image.
    let small = tmp.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    for q in 0..4 {
        image::GrayImage::new(100, 100).save(small.join(format!("q{q}.png"))).unwrap();
    }
    let mut sized = ds.clone();
    sized.segmentation_dir = Some(small.to_string_lossy().into_owned());
    let mut model = mk(&[0, 1], &options).unwrap();
    model.set_param("batch_size", &json!(1)).unwrap();
    let err = train_dl_model(&sized, &mut model, &param("c"), StartEpoch::Fresh).unwrap_err().to_string();
    assert!(err.contains("100×100") && err.contains("256×256"), "{err}");
    // Ignore classes that are classes; a background id that is not one.
    let err = mk(&[0, 1], &SegmenterOptions { ignore_class_ids: vec![1], ..Default::default() }).unwrap_err();
    assert!(err.to_string().contains("ignore_class_ids"), "{err}");
    let err =
        mk(&[0, 1], &SegmenterOptions { set_background_id: Some(5), ..Default::default() }).unwrap_err();
    assert!(err.to_string().contains("set_background_id"), "{err}");
    let err = mk(&[0, 1], &SegmenterOptions { decoder_channels: 2, ..Default::default() }).unwrap_err();
    assert!(err.to_string().contains("decoder_channels"), "{err}");
    // Class weights in the dataset, but the sample files have no weight images.
    let pre = dlkit::data::preprocess::preprocess_dl_dataset(
        &ds,
        &tmp.path().join("pre"),
        &model.description().preprocess,
        dlkit::data::preprocess::PreprocessOptions::default(),
    );
    let mut pre = pre.unwrap();
    pre.class_weights = Some(vec![1.0, 3.0]);
    let err = train_dl_model(&pre, &mut model, &param("d"), StartEpoch::Fresh).unwrap_err().to_string();
    assert!(err.contains("no weight_image"), "{err}");
}
