//! Pretrained ImageNet backbones (`cargo xtask weights`): logits equal to the original weights in
//! PyTorch, real photos classified sensibly, bad weight files refused, fine-tuning a frozen backbone.

use dlkit::Model;
use dlkit::data::HostImage;
use std::path::Path;
use tch::{Device, Kind, Tensor, nn::ModuleT};

const LITES: [(&str, &str); 3] = [
    ("pretrained_dl_classifier_efficientnet_lite0", "efficientnet_lite0"),
    ("pretrained_dl_classifier_efficientnet_lite1", "efficientnet_lite1"),
    ("pretrained_dl_classifier_efficientnet_lite2", "efficientnet_lite2"),
];

fn pretrained(name: &str, weights: &str) -> Model {
    Model::create_pretrained_from(name, &dl_testkit::weights_path(weights), None).unwrap()
}

/// fixtures/pretrained_logits.json: the original weight files run in PyTorch
/// (fixtures/scripts/pretrained_reference.py) on a formula-filled image.
#[test]
fn converted_weights_give_the_original_logits() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pretrained_logits.json");
    let fixture: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for (name, weights) in LITES {
        let model = pretrained(name, weights);
        let want = &fixture["models"][weights];
        let size = want["input_size"].as_i64().unwrap();
        let n = 3 * size * size;
        let v: Vec<f32> = (0..n).map(|i| ((i as f64 * 0.7 + 7.0 * 1.3).sin()) as f32).collect();
        let x = Tensor::from_slice(&v).reshape([1, 3, size, size]);
        let logits = tch::no_grad(|| model.module().forward_t(&x, false)).to_kind(Kind::Double);
        let ours: Vec<f64> = Vec::try_from(logits.reshape([-1])).unwrap();
        let theirs: Vec<f64> =
            want["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(ours.len(), 1000);
        let worst = dl_testkit::max_abs_diff(&ours, &theirs);
        eprintln!("{weights}: max |ours − PyTorch| = {worst:e}");
        assert!(worst <= 1e-4, "{weights}: max |ours − PyTorch| = {worst:e}");
    }
    // MobileNetV1: the graph's 1001-way logits without its background class 0.
    let model = pretrained("pretrained_dl_classifier_mobilenet_v1", "mobilenet_v1");
    let want = &fixture["models"]["mobilenet_v1"];
    let v: Vec<f32> = (0..3 * 224 * 224).map(|i| ((i as f64 * 0.7 + 7.0 * 1.3).sin()) as f32).collect();
    let x = Tensor::from_slice(&v).reshape([1, 3, 224, 224]);
    let logits = tch::no_grad(|| model.module().forward_t(&x, false)).to_kind(Kind::Double);
    let ours: Vec<f64> = Vec::try_from(logits.reshape([-1])).unwrap();
    let theirs: Vec<f64> = want["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let worst = dl_testkit::max_abs_diff(&ours, &theirs);
    eprintln!("mobilenet_v1: max |ours − TF graph in PyTorch| = {worst:e}");
    assert!(worst <= 1e-4, "mobilenet_v1: max |ours − TF graph in PyTorch| = {worst:e}");
    // SqueezeNet: the original takes BGR; the converted network takes RGB (conv1's input channels were
    // reversed), so it gets the same image with its channels reversed.
    let model = pretrained("pretrained_dl_classifier_squeezenet", "squeezenet");
    let want = &fixture["models"]["squeezenet"];
    let n = 3 * 224 * 224;
    let v: Vec<f32> = (0..n).map(|i| ((i as f64 * 0.7 + 7.0 * 1.3).sin() * 100.0) as f32).collect();
    let x = Tensor::from_slice(&v).reshape([1, 3, 224, 224]).flip([1]);
    let logits = tch::no_grad(|| model.module().forward_t(&x, false)).to_kind(Kind::Double);
    let ours: Vec<f64> = Vec::try_from(logits.reshape([-1])).unwrap();
    let theirs: Vec<f64> = want["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let worst = dl_testkit::max_abs_diff(&ours, &theirs);
    let scale = dl_testkit::max_abs_diff(&theirs, &vec![0.0; theirs.len()]);
    eprintln!("squeezenet: max |ours − PyTorch| = {worst:e} (largest logit {scale})");
    assert!(worst <= 1e-4 * scale.max(1.0), "squeezenet: max |ours − PyTorch| = {worst:e} (scale {scale})");
}

/// The photos of Debian's darknet package: top-5 ImageNet classes contain the expected ones.
#[test]
fn real_photos_get_the_expected_imagenet_classes() {
    let photos = dl_testkit::data_dir("darknet");
    let dog_breeds: Vec<i64> = (151..=268).collect();
    // (photo, acceptable classes): any dog breed; bald eagle (22) or kite the bird (21); zebra (340,
    // the giraffe photo has zebras; ImageNet has no giraffe); the kite photo is a beach with kites in
    // the sky: seashore (978).
    let expected: [(&str, &[i64]); 4] =
        [("dog.jpg", &dog_breeds), ("eagle.jpg", &[21, 22]), ("giraffe.jpg", &[340]), ("kite.jpg", &[978])];
    // SqueezeNet, the smallest, ranks big cats above the zebras of the giraffe photo: that photo is
    // checked with the other networks only.
    let squeeze = [
        ("pretrained_dl_classifier_squeezenet", "squeezenet"),
        ("pretrained_dl_classifier_mobilenet_v1", "mobilenet_v1"),
    ];
    for (name, weights) in LITES.iter().chain(&squeeze) {
        let model = pretrained(name, weights);
        let images: Vec<HostImage> =
            expected.iter().map(|(p, _)| HostImage::read(&photos.join(p)).unwrap()).collect();
        let results = model.apply(images).unwrap();
        assert_eq!(results.len(), expected.len());
        for ((photo, ok), r) in expected.iter().zip(&results) {
            if *weights == "squeezenet" && *photo == "giraffe.jpg" {
                continue;
            }
            let top5: Vec<i64> = r
                .classification_class_ids
                .as_ref()
                .unwrap()
                .iter()
                .take(5)
                .map(|c| i64::from(c.get()))
                .collect();
            let names: Vec<&String> = r.classification_class_names.as_ref().unwrap().iter().take(5).collect();
            assert!(top5.iter().any(|c| ok.contains(c)), "{weights} {photo}: top-5 {top5:?} {names:?}");
        }
    }
}

#[test]
fn bad_weight_files_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read(dl_testkit::weights_path("efficientnet_lite0")).unwrap();
    let name = "pretrained_dl_classifier_efficientnet_lite0";
    // Truncated and altered files: the pinned sha256 does not match.
    let truncated = tmp.path().join("t.safetensors");
    std::fs::write(&truncated, &good[..good.len() / 3]).unwrap();
    let err = Model::create_pretrained_from(name, &truncated, None).unwrap_err().to_string();
    assert!(err.contains("sha256") && err.contains("cargo xtask weights"), "{err}");
    let mut altered = good.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    let path = tmp.path().join("a.safetensors");
    std::fs::write(&path, &altered).unwrap();
    assert!(Model::create_pretrained_from(name, &path, None).unwrap_err().to_string().contains("sha256"));
    let err = Model::create_pretrained_from(name, &tmp.path().join("missing.safetensors"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cargo xtask weights efficientnet_lite0"), "{err}");
    assert!(
        Model::create_pretrained("pretrained_dl_classifier_vgg", None)
            .unwrap_err()
            .to_string()
            .contains("known")
    );
    // Weights of another architecture: the error names the tensor and both shapes, nothing is loaded.
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let _ = dlkit::nets::EfficientNetLiteConfig::lite(2, 10, 3).unwrap().build(&vs.root()).unwrap();
    let before = dlkit::nets::weights::export_safetensors(&vs).unwrap();
    let err = dlkit::nets::weights::import_backbone(&vs, &good, "classifier.").unwrap_err().to_string();
    assert!(err.contains("the architecture expects shape") && err.contains("the file has"), "{err}");
    assert_eq!(dlkit::nets::weights::export_safetensors(&vs).unwrap(), before, "no partial load");
}

/// A new head for two classes on the pretrained backbone: with `freeze_backbone`, training changes only
/// the head (batch-norm statistics included); with `backbone_learning_rate_factor` 0, only the head's
/// weights move.
#[test]
fn fine_tuning_with_a_frozen_backbone_changes_only_the_head() {
    let names = vec!["good".to_owned(), "bad".to_owned()];
    let mut m = Model::create_pretrained_from(
        "pretrained_dl_classifier_mobilenet_v2",
        &dl_testkit::weights_path("mobilenet_v2"),
        Some((&names, &[0, 1])),
    )
    .unwrap();
    assert_eq!(m.get_param("image_dimensions").unwrap(), serde_json::json!([224, 224, 3]));
    m.set_param("freeze_backbone", &serde_json::json!(true)).unwrap();
    let before = dlkit::nets::weights::safetensors_to_tensors(&m.export_weights().unwrap()).unwrap();
    let mut opt = dlkit::train::Optimizer::new(
        m.var_store(),
        dlkit::train::SolverParam::Sgd { learning_rate: 0.1, momentum: 0.0, weight_prior: 0.0 },
    )
    .unwrap();
    let x = Tensor::randn([4, 3, 64, 64], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 0, 1]);
    for _ in 0..2 {
        opt.zero_grad();
        m.forward_t(&x, true).cross_entropy_for_logits(&y).backward();
        opt.step();
    }
    let after = dlkit::nets::weights::safetensors_to_tensors(&m.export_weights().unwrap()).unwrap();
    assert_eq!(before.len(), after.len());
    for ((name, a), (name_b, b)) in before.iter().zip(&after) {
        assert_eq!(name, name_b);
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        assert_eq!(a.equal(b), !name.starts_with("classifier."), "{name}");
    }
    // A lower backbone learning rate instead: factor 0 leaves the backbone's weights (not its batch-norm
    // statistics, which train mode updates) where they were; the head learns at the full rate.
    m.set_param("freeze_backbone", &serde_json::json!(false)).unwrap();
    m.set_param("backbone_learning_rate_factor", &serde_json::json!(0.0)).unwrap();
    let before = dlkit::nets::weights::safetensors_to_tensors(&m.export_weights().unwrap()).unwrap();
    let mut opt = dlkit::train::model_optimizer(&m).unwrap();
    for _ in 0..2 {
        opt.zero_grad();
        m.forward_t(&x, true).cross_entropy_for_logits(&y).backward();
        opt.step();
    }
    let after = dlkit::nets::weights::safetensors_to_tensors(&m.export_weights().unwrap()).unwrap();
    assert_eq!(before.len(), after.len());
    for ((name, a), (name_b, b)) in before.iter().zip(&after) {
        assert_eq!(name, name_b);
        if name.ends_with("num_batches_tracked")
            || name.ends_with("running_mean")
            || name.ends_with("running_var")
        {
            continue;
        }
        assert_eq!(a.equal(b), !name.starts_with("classifier."), "{name}");
    }
    assert!(m.set_param("backbone_learning_rate_factor", &serde_json::json!(2.0)).is_err());
    // The ImageNet head is not there to keep.
    let err = Model::create_pretrained_from(
        "pretrained_dl_classifier_mobilenet_v2",
        &dl_testkit::weights_path("mobilenet_v2"),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no ImageNet head"), "{err}");
}

/// Transfer learning on real data (a small, CI-sized version of `examples/transfer_elpv.rs`): ELPV
/// defect vs defect-free, 100 training images per class at 128×128. EfficientNet-Lite0 pretrained on
/// ImageNet with a frozen backbone reaches a lower error on 100 balanced test images than the same
/// network trained from scratch with the same budget (3 epochs, Adam, same images).
#[test]
fn a_pretrained_backbone_beats_training_from_scratch_on_elpv() {
    use dlkit::core::{Rng, Split};
    use dlkit::data::SampleSelector;
    use dlkit::data::read::{LabelSource, read_dl_dataset_classification};
    use dlkit::train::{EvalParams, Evaluation, StartEpoch, TrainParam, evaluate_dl_model, train_dl_model};
    use serde_json::json;

    let mut ds =
        read_dl_dataset_classification(&dl_testkit::data_dir("elpv"), LabelSource::LastFolder).unwrap();
    let mut rng = Rng::new(11);
    for (class, name) in ds.class_ids.clone().into_iter().zip(ds.class_names.clone()) {
        let mut idx: Vec<usize> = (0..ds.samples.len())
            .filter(|&i| ds.samples[i].image_label_id.as_ref().unwrap()[0] == class)
            .collect();
        rng.shuffle(&mut idx);
        for (k, &i) in idx.iter().enumerate() {
            ds.samples[i].split = match (name.as_str(), k) {
                ("uncertain", _) => None,
                (_, 0..100) => Some(Split::Train),
                (_, 100..120) => Some(Split::Validation),
                (_, 120..170) => Some(Split::Test),
                _ => None,
            };
        }
    }
    // Only defect and good are in the splits; the model knows all three folder classes.
    let ids: Vec<i64> = ds.class_ids.iter().map(|c| i64::from(c.get())).collect();
    let mut errors = Vec::new();
    for pretrained in [false, true] {
        tch::manual_seed(3);
        let reference = Model::create_pretrained_from(
            "pretrained_dl_classifier_efficientnet_lite0",
            &dl_testkit::weights_path("efficientnet_lite0"),
            Some((&ds.class_names, &ids)),
        )
        .unwrap();
        let mut m = if pretrained {
            reference
        } else {
            let mut m =
                Model::create_classifier("efficientnet_lite0", &ds.class_names, &ids, 224, 224, 3).unwrap();
            m.set_param("preprocess_param", &reference.get_param("preprocess_param").unwrap()).unwrap();
            m
        };
        m.set_param("freeze_backbone", &json!(pretrained)).unwrap();
        for (k, v) in [
            ("image_width", json!(128)),
            ("image_height", json!(128)),
            ("solver_type", json!("adam")),
            ("learning_rate", json!(0.001)),
            ("batch_size", json!(16)),
        ] {
            m.set_param(k, &v).unwrap();
        }
        let tmp = tempfile::tempdir().unwrap();
        let param = TrainParam {
            num_epochs: 3,
            seed: 3,
            output_dir: tmp.path().to_owned(),
            display: false,
            serialization_strategies: vec![],
            ..Default::default()
        };
        train_dl_model(&ds, &mut m, &param, StartEpoch::Fresh).unwrap();
        let Evaluation::Classification(measures) =
            evaluate_dl_model(&m, &ds, &SampleSelector::Split(Split::Test), &EvalParams::default()).unwrap()
        else {
            panic!("a classification evaluation")
        };
        assert_eq!(measures.num_samples, 100);
        errors.push(measures.top1_error);
    }
    let (scratch, pretrained) = (errors[0], errors[1]);
    eprintln!("ELPV 128×128, 3 epochs: scratch {scratch}, pretrained (frozen backbone) {pretrained}");
    assert!(pretrained < 0.35, "pretrained, frozen backbone: test error {pretrained}");
    assert!(pretrained + 0.1 < scratch, "pretrained {pretrained} vs scratch {scratch}");
}
