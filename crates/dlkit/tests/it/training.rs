//! Training on real data (mnist5k from `cargo xtask data`): learning, resume, strategies, NaN stop.

use dlkit::Model;
use dlkit::data::read::{LabelSource, read_dl_dataset_classification};
use dlkit::data::{DLDataset, SampleSelector, SplitParams, split_dl_dataset};
use dlkit::train::{
    ChangeStrategy, EvalParams, Evaluation, SerializationStrategy, StartEpoch, TrainParam, TrainingLog,
    evaluate_dl_model, train_dl_model,
};
use serde_json::json;
use std::path::Path;

/// mnist5k split seeded: `train`/`validation` percent, the rest test.
fn mnist(train: f64, validation: f64) -> DLDataset {
    let mut ds =
        read_dl_dataset_classification(&dl_testkit::data_dir("mnist5k"), LabelSource::LastFolder).unwrap();
    split_dl_dataset(&mut ds, train, validation, &SplitParams { seed: 7, ..Default::default() }).unwrap();
    ds
}

fn model(ds: &DLDataset, seed: i64) -> Model {
    tch::manual_seed(seed);
    let ids: Vec<i64> = ds.class_ids.iter().map(|c| i64::from(c.get())).collect();
    let mut m = Model::create_classifier("compact", &ds.class_names, &ids, 28, 28, 1).unwrap();
    m.set_param("batch_size", &json!(32)).unwrap();
    m
}

fn param(dir: &Path, epochs: usize) -> TrainParam {
    TrainParam {
        num_epochs: epochs,
        output_dir: dir.to_owned(),
        display: false,
        serialization_strategies: vec![SerializationStrategy::Final],
        ..Default::default()
    }
}

fn top1(m: &Model, ds: &DLDataset, split: &str) -> f64 {
    let e = evaluate_dl_model(m, ds, &SampleSelector::Split(split.parse().unwrap()), &EvalParams::default())
        .unwrap();
    let Evaluation::Classification(measures) = e else { panic!("a classification evaluation") };
    measures.top1_error
}

/// The learning test: 2 000 training images, top-1 error < 15 % on 2 500 held-out images.
/// (Measured on 2 cores: about 6 s of training.)
#[test]
fn a_compact_classifier_learns_mnist_from_2000_images() {
    let ds = mnist(40.0, 10.0);
    assert_eq!(ds.samples.iter().filter(|s| s.split == Some("train".parse().unwrap())).count(), 2000);
    let mut m = model(&ds, 1);
    m.set_param("solver_type", &json!("adam")).unwrap();
    m.set_param("learning_rate", &json!(0.003)).unwrap();
    let before = top1(&m, &ds, "test");
    let tmp = tempfile::tempdir().unwrap();
    let log = train_dl_model(&ds, &mut m, &param(tmp.path(), 6), StartEpoch::Fresh).unwrap();
    let after = top1(&m, &ds, "test");
    eprintln!("mnist5k, 2 000 training images, 6 epochs: test top-1 error {before} → {after}");
    assert!(before > 0.7, "an untrained net guesses: {before}");
    assert!(after < 0.15, "test top-1 error {after} after training (log: {:?})", log.epochs);
    assert_eq!(log.status, "finished");
    assert!(log.epochs[5].mean_loss < 0.5 * log.epochs[0].mean_loss, "{:?}", log.epochs);
    assert_eq!(log.iterations_per_epoch, 2000 / 32);
    // The final model on disk is the model in memory.
    let back = Model::read(&tmp.path().join("model_final.dlm")).unwrap();
    assert_eq!(back.export_weights().unwrap(), m.export_weights().unwrap());
}

fn small() -> DLDataset {
    // 400 train, 100 validation images.
    mnist(8.0, 2.0)
}

/// Two epochs in one go, or one epoch then `resume` for the second: identical weights (SGD with
/// momentum and augmentation, so solver state and seeded orders must both be restored).
#[test]
fn resume_reaches_the_weights_of_an_uninterrupted_run() {
    let ds = small();
    let augment = dlkit::data::preprocess::AugmentParams {
        augmentation_percentage: 50.0,
        mirror: Some(dlkit::data::preprocess::Mirror::Cols),
        brightness_variation: 20.0,
        ..Default::default()
    };
    let mk = |dir: &Path, epochs| TrainParam {
        augmentation: Some(augment.clone()),
        change_strategies: vec![ChangeStrategy::learning_rate_steps(0.02, 0.5, &[1.5])],
        ..param(dir, epochs)
    };
    let a = tempfile::tempdir().unwrap();
    let mut straight = model(&ds, 3);
    train_dl_model(&ds, &mut straight, &mk(a.path(), 2), StartEpoch::Fresh).unwrap();

    let b = tempfile::tempdir().unwrap();
    let mut first = model(&ds, 3);
    train_dl_model(&ds, &mut first, &mk(b.path(), 1), StartEpoch::Fresh).unwrap();
    let one_epoch_log = std::fs::read(b.path().join("training_log.json")).unwrap();
    // A new process would start from a fresh model object: other initial weights, restored from the
    // checkpoint.
    let mut resumed = model(&ds, 99);
    let log = train_dl_model(&ds, &mut resumed, &mk(b.path(), 2), StartEpoch::Resume).unwrap();
    assert_eq!(log.epochs.len(), 2);
    assert_eq!(resumed.export_weights().unwrap(), straight.export_weights().unwrap());
    assert_eq!(resumed.get_param("learning_rate").unwrap(), json!(0.01));

    // A kill after the last checkpoint's write and before the log's: the folder holds the previous
    // epoch's log and no curves. The resume has no epoch left to train; it writes both from the
    // checkpoint, finished.
    std::fs::write(b.path().join("training_log.json"), &one_epoch_log).unwrap();
    std::fs::remove_file(b.path().join("training_curves.png")).unwrap();
    let log = train_dl_model(&ds, &mut model(&ds, 98), &mk(b.path(), 2), StartEpoch::Resume).unwrap();
    let on_disk: TrainingLog =
        serde_json::from_slice(&std::fs::read(b.path().join("training_log.json")).unwrap()).unwrap();
    assert_eq!((on_disk.epochs.len(), on_disk.status.as_str()), (2, "finished"));
    assert_eq!(on_disk, log);
    assert!(b.path().join("training_curves.png").is_file());

    // Other train parameters: refused, naming the key.
    let mut other = mk(b.path(), 3);
    other.seed = 5;
    let err = train_dl_model(&ds, &mut model(&ds, 3), &other, StartEpoch::Resume).unwrap_err().to_string();
    assert!(err.contains("seed"), "{err}");
    let none = tempfile::tempdir().unwrap();
    let err = train_dl_model(&ds, &mut model(&ds, 3), &mk(none.path(), 2), StartEpoch::Resume).unwrap_err();
    assert!(err.to_string().contains("checkpoint.dlc"), "{err}");
}

/// `ema_decay`: the returned model and its files hold the average of the weights, the steps train the
/// raw weights exactly as without it, and a resume continues both.
#[test]
fn weight_averaging_is_what_the_files_hold_and_resumes_exactly() {
    let ds = small();
    // One set of initial weights for every run (libtorch's generator is shared by parallel tests).
    let bytes = model(&ds, 3).serialize().unwrap();
    let fresh = || Model::deserialize(&bytes, "start").unwrap();
    let mk = |dir: &Path, epochs, ema_decay| TrainParam { ema_decay, ..param(dir, epochs) };
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut plain = fresh();
    train_dl_model(&ds, &mut plain, &mk(dirs[0].path(), 2, None), StartEpoch::Fresh).unwrap();
    let mut averaged = fresh();
    let log =
        train_dl_model(&ds, &mut averaged, &mk(dirs[1].path(), 2, Some(0.9)), StartEpoch::Fresh).unwrap();
    let on_disk = Model::read(&dirs[1].path().join("model_final.dlm")).unwrap();
    assert_eq!(on_disk.export_weights().unwrap(), averaged.export_weights().unwrap());
    assert_ne!(averaged.export_weights().unwrap(), plain.export_weights().unwrap(), "the average");
    // The validation measure is the average's.
    let validation = top1(&averaged, &ds, "validation");
    assert!(
        (log.evaluation_curve[1].1 - validation).abs() < 1e-9,
        "{:?} vs {validation}",
        log.evaluation_curve
    );
    // A decay too small to count keeps the average on the weights: bit-identical to a run without
    // averaging, so the averaging never touched what the steps train.
    let mut tracking = fresh();
    train_dl_model(&ds, &mut tracking, &mk(dirs[2].path(), 2, Some(1e-9)), StartEpoch::Fresh).unwrap();
    assert_eq!(tracking.export_weights().unwrap(), plain.export_weights().unwrap());
    // One epoch, then a resume from a fresh model object: the raw weights and the average restored.
    train_dl_model(&ds, &mut fresh(), &mk(dirs[3].path(), 1, Some(0.9)), StartEpoch::Fresh).unwrap();
    let mut resumed = model(&ds, 99);
    train_dl_model(&ds, &mut resumed, &mk(dirs[3].path(), 2, Some(0.9)), StartEpoch::Resume).unwrap();
    assert_eq!(resumed.export_weights().unwrap(), averaged.export_weights().unwrap());
    // Nothing left to train: the returned model is still the average.
    let mut again = model(&ds, 98);
    train_dl_model(&ds, &mut again, &mk(dirs[3].path(), 2, Some(0.9)), StartEpoch::Resume).unwrap();
    assert_eq!(again.export_weights().unwrap(), averaged.export_weights().unwrap());
    // Another decay: refused, naming it.
    let err = train_dl_model(&ds, &mut fresh(), &mk(dirs[3].path(), 3, Some(0.5)), StartEpoch::Resume)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ema_decay"), "{err}");
    let bad = train_dl_model(&ds, &mut fresh(), &mk(dirs[0].path(), 1, Some(1.5)), StartEpoch::Fresh);
    assert!(bad.unwrap_err().to_string().contains("ema_decay"));
}

/// A learning-rate step at epoch 1.5 applies from the first step at or after 1.5; serialization
/// strategies write exactly their files.
#[test]
fn change_and_serialization_strategies() {
    let ds = small();
    let tmp = tempfile::tempdir().unwrap();
    let mut m = model(&ds, 4);
    let p = TrainParam {
        change_strategies: vec![ChangeStrategy::learning_rate_steps(0.01, 0.1, &[1.5])],
        serialization_strategies: vec![
            SerializationStrategy::Best,
            SerializationStrategy::Final,
            SerializationStrategy::Epochs { every: 2 },
            SerializationStrategy::Current,
        ],
        evaluation_interval_epochs: 1,
        ..param(tmp.path(), 3)
    };
    let log = train_dl_model(&ds, &mut m, &p, StartEpoch::Fresh).unwrap();
    let ipe = log.iterations_per_epoch as f64;
    assert_eq!(ipe, 12.0); // 400 / 32
    // Every step is recorded (fewer than 25 per epoch): the point after step i is at (i + 1) / ipe.
    assert_eq!(log.learning_rate_curve.len(), 36);
    for &(x, lr) in &log.learning_rate_curve {
        let step_epoch = x - 1.0 / ipe;
        let expected = if step_epoch + 1e-9 >= 1.5 { 0.001 } else { 0.01 };
        assert!((lr - expected).abs() < 1e-12, "lr {lr} at step epoch {step_epoch}");
    }
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "checkpoint.dlc",
            "model_best.dlm",
            "model_best_info.json",
            "model_current.dlm",
            "model_current_info.json",
            "model_epoch_0002.dlm",
            "model_epoch_0002_info.json",
            "model_final.dlm",
            "model_final_info.json",
            "training_curves.png",
            "training_log.json"
        ]
    );
    let best = log.best.clone().unwrap();
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("model_best_info.json")).unwrap()).unwrap();
    assert_eq!(info["epoch"], json!(best.epoch));
    assert_eq!(info["evaluation"]["top1_error"].as_f64().unwrap(), best.value);
    // The best model file gives the logged validation error.
    let best_model = Model::read(&tmp.path().join("model_best.dlm")).unwrap();
    assert_eq!(top1(&best_model, &ds, "validation"), best.value);
    let on_disk: TrainingLog =
        serde_json::from_slice(&std::fs::read(tmp.path().join("training_log.json")).unwrap()).unwrap();
    assert_eq!(on_disk, log);
    let epoch2 = Model::read(&tmp.path().join("model_epoch_0002.dlm")).unwrap();
    assert_ne!(epoch2.export_weights().unwrap(), m.export_weights().unwrap());
}

/// A learning rate of 1e30 from epoch 1 on makes the loss explode: training stops with the error, and
/// the files of epoch 1 stay as they were.
#[test]
fn a_non_finite_loss_stops_training_and_keeps_the_last_good_model() {
    let ds = small();
    let tmp = tempfile::tempdir().unwrap();
    let mut m = model(&ds, 5);
    // The same initial weights, copied: a second `model(&ds, 5)` would draw from libtorch's global
    // generator, which tests on other threads reseed.
    let mut one_epoch = Model::deserialize(&m.serialize().unwrap(), "copy").unwrap();
    let p = TrainParam {
        change_strategies: vec![ChangeStrategy::learning_rate_steps(0.01, 1e32, &[1.0])],
        serialization_strategies: vec![SerializationStrategy::Current],
        ..param(tmp.path(), 3)
    };
    let err = train_dl_model(&ds, &mut m, &p, StartEpoch::Fresh).unwrap_err();
    let dlkit::train::Error::NonFiniteLoss { epoch: Some(epoch), .. } = err else { panic!("{err}") };
    assert!((1.0..2.0).contains(&epoch), "{epoch}");
    let current = tmp.path().join("model_current.dlm");
    let saved = Model::read(&current).unwrap();
    // The kept model is exactly the model of a run that stopped after epoch 1.
    let one = tempfile::tempdir().unwrap();
    train_dl_model(
        &ds,
        &mut one_epoch,
        &TrainParam { num_epochs: 1, output_dir: one.path().to_owned(), ..p.clone() },
        StartEpoch::Fresh,
    )
    .unwrap();
    assert!(
        saved.export_weights().unwrap() == one_epoch.export_weights().unwrap(),
        "the kept model differs from the 1-epoch model"
    );
    let error = top1(&saved, &ds, "validation");
    let log: TrainingLog =
        serde_json::from_slice(&std::fs::read(tmp.path().join("training_log.json")).unwrap()).unwrap();
    assert!(log.status.starts_with("stopped"), "{}", log.status);
    assert_eq!(log.epochs.len(), 1);
    // Resuming from the kept checkpoint with a sane schedule finishes the run.
    let sane =
        TrainParam { change_strategies: vec![ChangeStrategy::learning_rate_steps(0.01, 0.5, &[1.0])], ..p };
    let mut resumed = model(&ds, 55);
    let log = train_dl_model(&ds, &mut resumed, &sane, StartEpoch::Resume).unwrap();
    assert_eq!((log.status.as_str(), log.epochs.len()), ("finished", 3));
    assert!(top1(&resumed, &ds, "validation") <= error + 0.05);
}

#[test]
fn bad_datasets_and_parameters_are_clear_errors() {
    let mut ds = small();
    let tmp = tempfile::tempdir().unwrap();
    let mut m = model(&ds, 6);
    m.set_param("batch_size", &json!(1000)).unwrap();
    let err = train_dl_model(&ds, &mut m, &param(tmp.path(), 1), StartEpoch::Fresh).unwrap_err().to_string();
    assert!(err.contains("fewer than one step"), "{err}");
    for s in &mut ds.samples {
        if s.split == Some("validation".parse().unwrap()) {
            s.split = Some("test".parse().unwrap());
        }
    }
    let err = train_dl_model(&ds, &mut model(&ds, 6), &param(tmp.path(), 1), StartEpoch::Fresh)
        .unwrap_err()
        .to_string();
    assert!(err.contains("0 validation samples"), "{err}");
    // A model for other classes.
    let ds = small();
    let mut other =
        Model::create_classifier("compact", &["a".into(), "b".into()], &[0, 1], 28, 28, 1).unwrap();
    let err =
        train_dl_model(&ds, &mut other, &param(tmp.path(), 1), StartEpoch::Fresh).unwrap_err().to_string();
    assert!(err.contains("not classes of the model"), "{err}");
}

/// `dlkit train` and `dlkit evaluate model` end to end, with a resume.
#[test]
fn train_resume_and_evaluate_from_the_command_line() {
    use std::process::Command;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    small().save(&dir.join("d.json")).unwrap();
    let dlkit = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_dlkit")).args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "dlkit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let common = [
        "--dataset",
        "d.json",
        "--create",
        "compact",
        "--batch-size",
        "32",
        "--solver",
        "adam",
        "--lr",
        "0.003",
        "--augment",
        "mirror=c,augmentation_percentage=30",
        "--serialize",
        "best,current",
        "--out",
        "run",
    ];
    dlkit(&[&["train", "--epochs", "1"][..], &common].concat());
    let out = dlkit(&[&["--json", "train", "--epochs", "2", "--resume"][..], &common].concat());
    let log: TrainingLog = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((log.status.as_str(), log.epochs.len()), ("finished", 2));
    for f in
        ["model_best.dlm", "model_current.dlm", "training_log.json", "training_curves.png", "checkpoint.dlc"]
    {
        assert!(dir.join("run").join(f).is_file(), "{f}");
    }
    let out = dlkit(&[
        "--json",
        "evaluate",
        "model",
        "--model",
        "run/model_current.dlm",
        "--dataset",
        "d.json",
        "--split",
        "validation",
        "--max-k",
        "2",
        "--plots",
        "plots",
    ]);
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["num_samples"], 100);
    assert!(e["top1_error"].as_f64().unwrap() < 0.7, "{e}");
    assert_eq!(e["top1_error"].as_f64().unwrap(), log.epochs[1].evaluation.unwrap(), "the logged value");
    assert!(e["topk_error"][1].as_f64().unwrap() <= e["top1_error"].as_f64().unwrap());
    assert!(dir.join("plots/confusion_matrix.png").is_file());
    // Bad input: a clear error and exit code 2.
    let out = Command::new(env!("CARGO_BIN_EXE_dlkit"))
        .args([
            "train",
            "--dataset",
            "d.json",
            "--create",
            "compact",
            "--augment",
            "mirror=sideways",
            "--out",
            "x",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mirror"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `dlkit train --train-param tp.json`: the file's values hold unless a flag is given explicitly.
#[test]
fn train_param_file_values_are_kept_unless_a_flag_overrides_them() {
    use std::process::Command;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    small().save(&dir.join("d.json")).unwrap();
    let tp = serde_json::to_value(TrainParam {
        num_epochs: 1,
        seed: 9,
        output_dir: "from_file".into(),
        serialization_strategies: vec![SerializationStrategy::Final],
        ..Default::default()
    })
    .unwrap();
    std::fs::write(dir.join("tp.json"), tp.to_string()).unwrap();
    let dlkit = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_dlkit")).args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "dlkit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let base = [
        "--json",
        "train",
        "--dataset",
        "d.json",
        "--create",
        "compact",
        "--batch-size",
        "32",
        "--train-param",
        "tp.json",
    ];
    let log: TrainingLog = serde_json::from_slice(&dlkit(&base).stdout).unwrap();
    assert_eq!(log.epochs.len(), 1, "the file's num_epochs, not the flag's default");
    assert!(
        dir.join("from_file/model_final.dlm").is_file() && !dir.join("from_file/model_best.dlm").exists()
    );
    assert!(!dir.join("training").exists(), "the file's output_dir");
    let log: TrainingLog =
        serde_json::from_slice(&dlkit(&[&base[..], &["--epochs", "2", "--out", "flag"]].concat()).stdout)
            .unwrap();
    assert_eq!(log.epochs.len(), 2, "an explicit flag overrides the file");
    assert!(dir.join("flag/model_final.dlm").is_file());
}
