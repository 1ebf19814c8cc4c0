//! `train_dl_model` (SPEC §6.2): seeded epochs over the train split, change strategies, augmentation,
//! evaluation on the validation split, the best model, serialization strategies, resume, and a stop
//! on a non-finite loss that keeps the last good files.

use crate::ema::WeightAverage;
use crate::evaluate::{EvalParams, evaluate_indices};
use crate::model::{
    TrainableModel, batch_sizes, model_err, model_optimizer, solver_param, train_dl_model_batch,
};
use crate::param::{SerializationStrategy, TrainParam};
use crate::pipeline::{BatchPlan, SampleSource, spawn_batches};
use crate::solver::Optimizer;
use crate::{Error, Result};
use dl_core::{Rng, Split};
use dl_data::{AnomalyLabel, DLDataset, InstanceType, ModelType};
use dl_eval::Evaluation;
use dl_eval::plots::{CurvePanel, training_curves_png};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Tensor;

/// Where training starts (`start_epoch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartEpoch {
    /// From epoch 0 with the model's weights.
    Fresh,
    /// From the checkpoint in the output folder: weights, solver state, log and the epoch reached.
    Resume,
}

/// One finished epoch in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The epoch (1-based: epoch 1 is the first pass).
    pub epoch: usize,
    /// Optimiser steps so far.
    pub iterations: u64,
    /// Mean `total_loss` over the epoch's steps.
    pub mean_loss: f64,
    /// Mean of each of the method's loss components over the epoch's steps, by name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub losses: std::collections::BTreeMap<String, f64>,
    /// The learning rate at the epoch's end.
    pub learning_rate: f64,
    /// Seconds spent in this epoch (training and evaluation).
    pub seconds: f64,
    /// The validation measure, when evaluated after this epoch.
    pub evaluation: Option<f64>,
}

/// The best model so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestRecord {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Its validation measure.
    pub value: f64,
}

/// The training log, written as `training_log.json` after every epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingLog {
    /// `running`, `finished`, or why training stopped.
    pub status: String,
    /// The comparison measure (CL `top1_error`).
    pub measure: String,
    /// Whether a lower measure is better.
    pub lower_is_better: bool,
    /// Samples in the train split.
    pub num_train_samples: usize,
    /// Samples in the validation split.
    pub num_validation_samples: usize,
    /// Optimiser steps per epoch.
    pub iterations_per_epoch: u64,
    /// Images per step (batch_size · batch_size_multiplier).
    pub images_per_step: usize,
    /// The finished epochs.
    pub epochs: Vec<EpochRecord>,
    /// (fractional epoch, mean loss over a window of steps).
    pub loss_curve: Vec<(f64, f64)>,
    /// (fractional epoch, learning rate).
    pub learning_rate_curve: Vec<(f64, f64)>,
    /// (epoch, validation measure).
    pub evaluation_curve: Vec<(f64, f64)>,
    /// The best epoch.
    pub best: Option<BestRecord>,
    /// Seconds of training over all runs (resumes add up).
    pub seconds: f64,
}

const CHECKPOINT: &str = "checkpoint.dlc";
const CHECKPOINT_KIND: &str = "dlkit training checkpoint";

/// Paths of the files `train_dl_model` writes in `output_dir`.
#[derive(Debug, Clone)]
pub struct TrainFiles {
    dir: PathBuf,
}

impl TrainFiles {
    /// The files of `dir`.
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned() }
    }
    /// `training_log.json`.
    pub fn log(&self) -> PathBuf {
        self.dir.join("training_log.json")
    }
    /// `training_curves.png`.
    pub fn curves(&self) -> PathBuf {
        self.dir.join("training_curves.png")
    }
    /// `checkpoint.dlc`, what `resume` reads.
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join(CHECKPOINT)
    }
    /// The model file of a strategy after (1-based) `epoch`.
    pub fn model(&self, strategy: &SerializationStrategy, epoch: usize) -> PathBuf {
        self.dir.join(format!("{}.dlm", strategy.stem(epoch)))
    }
    /// The training-info file beside a strategy's model file.
    pub fn info(&self, strategy: &SerializationStrategy, epoch: usize) -> PathBuf {
        self.dir.join(format!("{}_info.json", strategy.stem(epoch)))
    }
}

/// One epoch as a line: loss, learning rate, validation measure, time.
pub fn epoch_line(r: &EpochRecord, epochs: usize, measure: &str) -> String {
    format!(
        "epoch {}/{epochs}: loss {:.4}, learning rate {:.3e}{}, {:.1} s",
        r.epoch,
        r.mean_loss,
        r.learning_rate,
        r.evaluation.map(|v| format!(", validation {measure} {v:.4}")).unwrap_or_default(),
        r.seconds
    )
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io(dl_io::Error::Io { action: "writing", path: path.to_owned(), source: e })
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("serialisable");
    bytes.push(b'\n');
    dl_io::write_bytes_atomic(path, &bytes)?;
    Ok(())
}

struct Checkpoint {
    train_param: TrainParam,
    model_key: Value,
    log: TrainingLog,
    epochs_done: usize,
    tensors: Vec<(String, Tensor)>,
}

/// The train and validation samples. Anomaly detection learns from the good ('ok') train images only
/// (a 'nok' one is refused, naming it, unless `skip_nok_train`), and evaluates only on a validation
/// split with both ok and nok images (none without: an image AUROC needs both); every other method
/// needs both splits.
fn train_and_validation(
    dataset: &DLDataset,
    model_type: ModelType,
    param: &TrainParam,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let split = |want: Split| -> Vec<usize> {
        (0..dataset.samples.len()).filter(|&i| dataset.samples[i].split == Some(want)).collect()
    };
    let (mut train, mut validation) = (split(Split::Train), split(Split::Validation));
    if model_type == ModelType::AnomalyDetection {
        train = good_train_samples(dataset, param.skip_nok_train)?;
        if !validation_holds_ok_and_nok(dataset) {
            validation.clear();
        }
        return Ok((train, validation));
    }
    if train.is_empty() || validation.is_empty() {
        return Err(Error::Param {
            key: "dataset",
            message: format!(
                "{} train and {} validation samples: both are needed — split the dataset first (dlkit dataset split)",
                train.len(),
                validation.len()
            ),
        });
    }
    Ok((train, validation))
}

/// Whether the validation split holds 'ok' and 'nok' images: what an anomaly model is evaluated on
/// (an image AUROC needs both), and so what the `best` model needs.
pub fn validation_holds_ok_and_nok(dataset: &DLDataset) -> bool {
    let labels = || {
        dataset.samples.iter().filter(|s| s.split == Some(Split::Validation)).filter_map(|s| s.anomaly_label)
    };
    labels().any(|l| l == AnomalyLabel::Ok) && labels().any(|l| l == AnomalyLabel::Nok)
}

/// The good ('ok') images of `dataset`'s train split, what anomaly models learn from: a 'nok' one is
/// refused, naming it, unless `skip_nok`; so is one without `anomaly_label`.
///
/// # Errors
/// [`Error::Param`] naming the sample, or for a train split without 'ok' images.
pub fn good_train_samples(dataset: &DLDataset, skip_nok: bool) -> Result<Vec<usize>> {
    let mut good = Vec::new();
    for (i, s) in dataset.samples.iter().enumerate() {
        if s.split != Some(Split::Train) {
            continue;
        }
        match s.anomaly_label {
            Some(AnomalyLabel::Ok) => good.push(i),
            Some(AnomalyLabel::Nok) if skip_nok => {}
            Some(AnomalyLabel::Nok) => {
                return Err(Error::Param {
                    key: "dataset",
                    message: format!(
                        "sample {} ({}) is 'nok' in the train split: anomaly models learn from good images \
                         only (move it to validation/test, or skip nok train images)",
                        s.image_id, s.image_file_name
                    ),
                });
            }
            None => check_method(dataset, ModelType::AnomalyDetection, None, [i].iter())?,
        }
    }
    if good.is_empty() {
        return Err(Error::Param {
            key: "dataset",
            message: "no 'ok' images in the train split (dlkit dataset split)".into(),
        });
    }
    Ok(good)
}

/// The samples hold the model's ground truth: class labels for classification, boxes of the model's
/// instance type for detection, label images for segmentation (naming the first sample that does not).
fn check_method<'a>(
    dataset: &DLDataset,
    model_type: ModelType,
    instance: Option<InstanceType>,
    indices: impl Iterator<Item = &'a usize>,
) -> Result<()> {
    let instance = instance.unwrap_or_default();
    for &i in indices {
        let s = &dataset.samples[i];
        let problem = match model_type {
            ModelType::Classification if s.image_label_id.is_none() => {
                Some("has no image_label_id".to_owned())
            }
            ModelType::Detection => match s.instance_type() {
                Some(t) if t != instance => Some(format!(
                    "has {} boxes, the model detects {}",
                    serde_json::to_value(t).unwrap_or_default().as_str().unwrap_or("other"),
                    serde_json::to_value(instance).unwrap_or_default().as_str().unwrap_or("other")
                )),
                None if s.bbox_label_id.is_none() => Some("has no boxes (bbox_label_id)".to_owned()),
                _ => None,
            },
            ModelType::Segmentation
                if s.segmentation_file_name.is_none() && dataset.dlsample_dir.is_none() =>
            {
                Some("has no segmentation_file_name".to_owned())
            }
            ModelType::AnomalyDetection if s.anomaly_label.is_none() => {
                Some("has no anomaly_label".to_owned())
            }
            _ => None,
        };
        if let Some(p) = problem {
            return Err(Error::Param {
                key: "dataset",
                message: format!(
                    "sample {} ({}) {p}: it does not fit this {} model",
                    s.image_id,
                    s.image_file_name,
                    model_type.as_str()
                ),
            });
        }
    }
    Ok(())
}

fn model_key(model: &impl TrainableModel) -> Result<Value> {
    let mut key = serde_json::Map::new();
    for name in ["solver_type", "batch_size", "batch_size_multiplier", "class_ids"] {
        key.insert(name.into(), model.get_param(name).map_err(model_err)?);
    }
    Ok(Value::Object(key))
}

fn write_checkpoint(
    files: &TrainFiles,
    model: &impl TrainableModel,
    optimizer: &Optimizer,
    param: &TrainParam,
    log: &TrainingLog,
    epochs_done: usize,
    average: Option<&WeightAverage>,
) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> =
        model.var_store().variables().into_iter().map(|(n, t)| (format!("model/{n}"), t)).collect();
    tensors.extend(optimizer.state_tensors().into_iter().map(|(n, t)| (format!("solver/{n}"), t)));
    tensors.extend(average.map(|a| a.tensors("ema/")).unwrap_or_default());
    let description = json!({
        "kind": CHECKPOINT_KIND,
        "epochs_done": epochs_done,
        "train_param": param,
        "model_key": model_key(model)?,
        "log": log,
    });
    dl_io::ModelFile { description, weights: dl_nets::weights::tensors_to_safetensors(tensors)? }
        .write(&files.checkpoint())?;
    Ok(())
}

fn read_checkpoint(files: &TrainFiles) -> Result<Checkpoint> {
    let path = files.checkpoint();
    let bytes = std::fs::read(&path).map_err(|e| {
        Error::Resume(format!(
            "cannot read {}: {e} (was training started with this output folder?)",
            path.display()
        ))
    })?;
    decode_checkpoint(&bytes, &path.display().to_string())
}

fn decode_checkpoint(bytes: &[u8], what: &str) -> Result<Checkpoint> {
    let file = dl_io::ModelFile::from_bytes(bytes, what)?;
    let d = &file.description;
    if d["kind"] != CHECKPOINT_KIND {
        return Err(Error::Resume(format!("{what} is not a training checkpoint")));
    }
    let parse = |key: &str| -> Result<Value> {
        d.get(key).cloned().ok_or_else(|| Error::Resume(format!("{what}: `{key}` is missing")))
    };
    let bad = |key: &str, e: serde_json::Error| Error::Resume(format!("{what}: `{key}`: {e}"));
    Ok(Checkpoint {
        train_param: serde_json::from_value(parse("train_param")?).map_err(|e| bad("train_param", e))?,
        model_key: parse("model_key")?,
        log: serde_json::from_value(parse("log")?).map_err(|e| bad("log", e))?,
        epochs_done: serde_json::from_value(parse("epochs_done")?).map_err(|e| bad("epochs_done", e))?,
        tensors: dl_nets::weights::safetensors_to_tensors(&file.weights)?,
    })
}

/// What a training checkpoint (`checkpoint.dlc`) holds, read without a model: epochs done, the logged
/// epochs, and the number of tensors (weights and solver state).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointSummary {
    /// Epochs finished when it was written.
    pub epochs_done: usize,
    /// Epochs in its training log.
    pub logged_epochs: usize,
    /// Tensors stored.
    pub tensors: usize,
}

/// Reads checkpoint bytes (`what` names them in errors) as `resume` does, without restoring anything.
///
/// # Errors
/// The errors `resume` reports for a corrupt, truncated or foreign file.
pub fn inspect_checkpoint(bytes: &[u8], what: &str) -> Result<CheckpointSummary> {
    let c = decode_checkpoint(bytes, what)?;
    Ok(CheckpointSummary {
        epochs_done: c.epochs_done,
        logged_epochs: c.log.epochs.len(),
        tensors: c.tensors.len(),
    })
}

fn restore_weights(model: &impl TrainableModel, tensors: &[(String, Tensor)]) -> Result<()> {
    let vars: Vec<(String, Tensor)> = model.var_store().variables().into_iter().collect();
    copy_from_checkpoint(&vars, tensors, "model/", "weight")
}

/// Copies a checkpoint's `{prefix}{name}` tensors into `targets` (tensors sharing their storage, by
/// name), each one found and shape-checked before any is copied; `what` names them in errors.
pub(crate) fn copy_from_checkpoint(
    targets: &[(String, Tensor)],
    tensors: &[(String, Tensor)],
    prefix: &str,
    what: &str,
) -> Result<()> {
    let mut pairs = Vec::with_capacity(targets.len());
    for (name, var) in targets {
        let key = format!("{prefix}{name}");
        let src = tensors
            .iter()
            .find(|(n, _)| *n == key)
            .map(|(_, t)| t)
            .ok_or_else(|| Error::Resume(format!("the checkpoint has no {what} `{name}`")))?;
        if src.size() != var.size() {
            return Err(Error::Resume(format!(
                "{what} `{name}`: the checkpoint has shape {:?}, the model {:?}",
                src.size(),
                var.size()
            )));
        }
        pairs.push((var.shallow_clone(), src));
    }
    tch::no_grad(|| {
        for (mut var, src) in pairs {
            var.copy_(&src.to_device(var.device()));
        }
    });
    Ok(())
}

/// Applies the change strategies for fractional epoch `epoch`; returns whether a value changed.
fn apply_strategies(model: &mut impl TrainableModel, param: &TrainParam, epoch: f64) -> Result<bool> {
    let mut changed = false;
    for s in &param.change_strategies {
        if let Some(v) = s.value_at(epoch) {
            let current = model.get_param(&s.model_param).map_err(model_err)?;
            if &current != v {
                model.set_param(&s.model_param, v).map_err(|e| Error::Param {
                    key: "change_strategies",
                    message: format!("`{}` = {v}: {e}", s.model_param),
                })?;
                changed = true;
            }
        }
    }
    Ok(changed)
}

/// Whether an epoch's mean loss fell below `error_threshold` (that epoch ends training).
fn below_error_threshold(param: &TrainParam, mean_loss: Option<f64>) -> bool {
    param.error_threshold.zip(mean_loss).is_some_and(|(t, loss)| loss < t)
}

/// When the network measures its train images.
#[derive(Clone, Copy)]
enum Statistics {
    /// Before the first epoch ([`dl_nets::Network::statistics_images`]).
    BeforeTraining,
    /// After every epoch ([`dl_nets::Network::epoch_statistics_images`]).
    AfterEpoch,
}

/// Measures what the network needs `when` on the first train images, preprocessed without
/// augmentation.
fn fit_statistics(
    model: &mut impl TrainableModel,
    source: &SampleSource,
    train: &[usize],
    class_ids: &[dl_core::ClassId],
    when: Statistics,
) -> Result<()> {
    let n = match when {
        Statistics::BeforeTraining => model.network().statistics_images(),
        Statistics::AfterEpoch => model.network().epoch_statistics_images(),
    };
    if n == 0 {
        return Ok(());
    }
    let images = first_images(model, source, train, class_ids, n)?;
    tch::no_grad(|| match when {
        Statistics::BeforeTraining => model.network_mut().fit_statistics(&images),
        Statistics::AfterEpoch => model.network_mut().fit_epoch_statistics(&images),
    })?;
    Ok(())
}

/// Batches (of `batch_size`) of the first `n` train images on the model's device, preprocessed without
/// augmentation.
fn first_images(
    model: &impl TrainableModel,
    source: &SampleSource,
    train: &[usize],
    class_ids: &[dl_core::ClassId],
    n: usize,
) -> Result<Vec<tch::Tensor>> {
    let (batch_size, _) = batch_sizes(model)?;
    let first: Vec<usize> = train.iter().take(n).copied().collect();
    let order: Vec<Vec<usize>> = first.chunks(batch_size).map(<[usize]>::to_vec).collect();
    let device = model.var_store().device();
    let mut images = Vec::with_capacity(order.len());
    std::thread::scope(|scope| -> Result<()> {
        for loaded in spawn_batches(scope, source, order, BatchPlan::inference(class_ids)) {
            images.push(dl_nets::upload(&loaded?.batch, device)?.0);
        }
        Ok(())
    })?;
    Ok(images)
}

/// Trains `model` on the train split of `dataset` (HALCON's `train_dl_model`).
///
/// Every method trains here. Anomaly detection learns from the good train images only (see
/// [`good_train_samples`]), measures the network's statistics first (the student–teacher model's
/// teacher standardisation) and, for the Global Context model, after every epoch (its maps'
/// normalisation), and is evaluated on the validation split only when it holds ok and nok images;
/// `error_threshold` ends training early when an epoch's mean loss falls below it.
///
/// Each epoch visits the train split in an order drawn from (seed, epoch); `floor(#train /
/// (batch_size · batch_size_multiplier))` steps, the last partial batch dropped. Raw datasets are
/// preprocessed on the fly with the model's parameters; preprocessed ones are read from their sample
/// files. After every `evaluation_interval_epochs` epochs and the last, the model is evaluated on the
/// validation split. Files in `output_dir`: the model files of the serialization strategies with their
/// `_info.json`, `training_log.json`, `training_curves.png` and `checkpoint.dlc` (always written, so
/// that [`StartEpoch::Resume`] can continue — to the same weights as an uninterrupted run on the CPU).
///
/// # Errors
/// [`Error::Param`] for bad parameters, no train or validation samples, or fewer train samples than one
/// step needs; [`Error::Resume`] for a missing or incompatible checkpoint (naming the differing keys);
/// [`Error::NonFiniteLoss`] when a loss is NaN or infinite — training stops, the files of the last
/// finished epoch stay as they are; read and write errors naming the file.
pub fn train_dl_model<M: TrainableModel>(
    dataset: &DLDataset,
    model: &mut M,
    param: &TrainParam,
    start: StartEpoch,
) -> Result<TrainingLog> {
    param.validate()?;
    let (train, validation) = train_and_validation(dataset, model.model_type(), param)?;
    if validation.is_empty() && param.serialization_strategies.contains(&SerializationStrategy::Best) {
        return Err(Error::Param {
            key: "serialization_strategies",
            message: "`best` needs a validation split with ok and nok images to compare epochs by".into(),
        });
    }
    let class_ids = model.class_ids();
    let unknown: Vec<String> =
        dataset.class_ids.iter().filter(|c| !class_ids.contains(c)).map(ToString::to_string).collect();
    if !unknown.is_empty() {
        return Err(Error::Param {
            key: "class_ids",
            message: format!("the dataset's classes {} are not classes of the model", unknown.join(", ")),
        });
    }
    check_method(
        dataset,
        model.model_type(),
        model.preprocess_param().instance_type,
        train.iter().chain(&validation),
    )?;
    let (batch_size, multiplier) = batch_sizes(model)?;
    let per_step = batch_size * multiplier;
    let iterations_per_epoch = (train.len() / per_step) as u64;
    if iterations_per_epoch == 0 {
        return Err(Error::Param {
            key: "batch_size",
            message: format!(
                "{} train samples are fewer than one step needs (batch_size {batch_size} × batch_size_multiplier {multiplier})",
                train.len()
            ),
        });
    }
    let files = TrainFiles::new(&param.output_dir);
    std::fs::create_dir_all(&param.output_dir).map_err(|e| io_err(&param.output_dir, e))?;
    let source = SampleSource::new(dataset, &model.preprocess_param())?;
    let model_type = model.model_type();
    let (measure, lower_is_better) = dl_eval::comparison_measure(model_type);

    if start == StartEpoch::Fresh {
        fit_statistics(model, &source, &train, &class_ids, Statistics::BeforeTraining)?;
    }
    // The resolved parameters: initial values of the change strategies taken from the model.
    let mut param = param.clone();
    // The average of the weights (the key a resume keeps): from the initial weights, or the checkpoint's.
    let ema_decay = param.ema_decay;
    let (mut log, start_epoch, mut optimizer, mut average) = match start {
        StartEpoch::Fresh => {
            for s in &mut param.change_strategies {
                if s.initial_value.is_none() {
                    s.initial_value = Some(model.get_param(&s.model_param).map_err(model_err)?);
                }
            }
            apply_strategies(model, &param, 0.0)?;
            let optimizer = model_optimizer(model)?;
            let log = TrainingLog {
                status: "running".into(),
                measure: measure.into(),
                lower_is_better,
                num_train_samples: train.len(),
                num_validation_samples: validation.len(),
                iterations_per_epoch,
                images_per_step: per_step,
                epochs: Vec::new(),
                loss_curve: Vec::new(),
                learning_rate_curve: Vec::new(),
                evaluation_curve: Vec::new(),
                best: None,
                seconds: 0.0,
            };
            let average = ema_decay.map(|d| WeightAverage::new(model.var_store(), d, 0));
            (log, 0, optimizer, average)
        }
        StartEpoch::Resume => {
            let cp = read_checkpoint(&files)?;
            let before = cp.train_param.resume_key();
            let mut resolved = param.clone();
            for s in &mut resolved.change_strategies {
                if s.initial_value.is_none() {
                    let old =
                        cp.train_param.change_strategies.iter().find(|o| o.model_param == s.model_param);
                    s.initial_value = old.and_then(|o| o.initial_value.clone());
                }
                if s.initial_value.is_none() {
                    s.initial_value = Some(model.get_param(&s.model_param).map_err(model_err)?);
                }
            }
            let now = resolved.resume_key();
            if before != now {
                let keys: Vec<&String> = now
                    .as_object()
                    .into_iter()
                    .flat_map(|m| m.iter())
                    .filter(|(k, v)| before.get(k.as_str()) != Some(v))
                    .map(|(k, _)| k)
                    .collect();
                return Err(Error::Resume(format!(
                    "the train parameters differ from the checkpoint's in {keys:?}; resume with the same ones"
                )));
            }
            let key = model_key(model)?;
            if key != cp.model_key {
                return Err(Error::Resume(format!(
                    "the model's {key} differ from the checkpoint's {}; resume with the same model",
                    cp.model_key
                )));
            }
            param = resolved;
            restore_weights(model, &cp.tensors)?;
            apply_strategies(model, &param, cp.epochs_done as f64)?;
            let mut optimizer = model_optimizer(model)?;
            let solver: Vec<(String, Tensor)> = cp
                .tensors
                .iter()
                .filter_map(|(n, t)| n.strip_prefix("solver/").map(|n| (n.to_owned(), t.shallow_clone())))
                .collect();
            optimizer.load_state(&solver)?;
            let mut log = cp.log;
            log.status = "running".into();
            // A kill between the checkpoint's write and the log's leaves the files one epoch behind
            // the checkpoint: they are written again from it.
            write_json(&files.log(), &log)?;
            write_curves(&files.curves(), &log)?;
            let average = match ema_decay {
                Some(d) => {
                    let steps = cp.epochs_done as u64 * iterations_per_epoch;
                    let mut a = WeightAverage::new(model.var_store(), d, steps);
                    a.restore(&cp.tensors, "ema/")?;
                    Some(a)
                }
                None => None,
            };
            (log, cp.epochs_done, optimizer, average)
        }
    };

    let total_iterations = iterations_per_epoch * param.num_epochs.saturating_sub(start_epoch) as u64;
    let bar = crate::progress::bar(total_iterations, param.display, "training");
    // Rotated boxes follow the model's box conventions (no front, axis-parallel classes) when augmented.
    let pp = model.preprocess_param();
    let augment = param.augmentation.clone().map(|a| dl_data::preprocess::AugmentParams {
        seed: param.seed,
        ignore_direction: a.ignore_direction || pp.ignore_direction.unwrap_or(false),
        class_ids_no_orientation: if a.class_ids_no_orientation.is_empty() {
            pp.class_ids_no_orientation.clone()
        } else {
            a.class_ids_no_orientation.clone()
        },
        ..a
    });
    let window = (iterations_per_epoch / 25).max(1);
    let eval_params = EvalParams::top_k(param.evaluation_top_k);
    let ignore_class_ids = model.preprocess_param().ignore_class_ids;
    let label_check = (model_type == ModelType::Segmentation).then(|| crate::pipeline::LabelCheck {
        ignore_class_ids: &ignore_class_ids,
        require_weights: dataset.class_weights.is_some() && dataset.dlsample_dir.is_some(),
    });
    let best_text = |log: &TrainingLog| {
        log.best.as_ref().map_or(String::new(), |b| format!(" best {} {:.2}%", log.measure, 100.0 * b.value))
    };

    for epoch in start_epoch..param.num_epochs {
        if below_error_threshold(&param, log.epochs.last().map(|e| e.mean_loss)) {
            break; // a resume of a run that stopped early
        }
        let t0 = Instant::now();
        tch::manual_seed((Rng::derived(param.seed, &[epoch as u64, 1]).next_u64() >> 1) as i64);
        let mut order = train.clone();
        Rng::derived(param.seed, &[epoch as u64]).shuffle(&mut order);
        let steps: Vec<Vec<usize>> = order.chunks_exact(per_step).map(<[usize]>::to_vec).collect();
        let mut epoch_loss = 0.0;
        let mut components = std::collections::BTreeMap::<String, f64>::new();
        let mut window_loss = (0.0, 0u64);
        let outcome = std::thread::scope(|scope| -> Result<()> {
            let plan = BatchPlan {
                augment: augment.as_ref(),
                epoch: epoch as u64,
                class_ids: &class_ids,
                targets: Some(model_type),
                keep_samples: false,
                prefetch: param.prefetch_batches,
                label_check,
            };
            let rx = spawn_batches(scope, &source, steps, plan);
            for it in 0..iterations_per_epoch {
                let epoch_f = epoch as f64 + it as f64 / iterations_per_epoch as f64;
                if apply_strategies(model, &param, epoch_f)? {
                    optimizer.set_param(solver_param(model)?)?;
                }
                let batch = rx.recv().map_err(|_| Error::Model("the data pipeline stopped".into()))??.batch;
                let result = train_dl_model_batch(model, &mut optimizer, &batch).map_err(|e| match e {
                    Error::NonFiniteLoss { loss, .. } => Error::NonFiniteLoss { loss, epoch: Some(epoch_f) },
                    other => other,
                })?;
                if let Some(a) = &mut average {
                    a.update();
                }
                epoch_loss += result.total_loss;
                for (name, v) in &result.components {
                    *components.entry(name.clone()).or_insert(0.0) += v;
                }
                window_loss.0 += result.total_loss;
                window_loss.1 += 1;
                if window_loss.1 == window || it + 1 == iterations_per_epoch {
                    let x = epoch as f64 + (it + 1) as f64 / iterations_per_epoch as f64;
                    log.loss_curve.push((x, window_loss.0 / window_loss.1 as f64));
                    log.learning_rate_curve.push((x, optimizer.param().learning_rate()));
                    bar.set_message(format!(
                        "epoch {x:.2}/{} loss {:.4} lr {:.1e}{}",
                        param.num_epochs,
                        window_loss.0 / window_loss.1 as f64,
                        optimizer.param().learning_rate(),
                        best_text(&log)
                    ));
                    window_loss = (0.0, 0);
                }
                bar.inc(1);
            }
            Ok(())
        });
        if let Err(e) = outcome {
            log.status = format!("stopped: {e}");
            log.seconds += t0.elapsed().as_secs_f64();
            bar.abandon();
            let _ = write_json(&files.log(), &log);
            return Err(e);
        }
        // Statistics, validation and model files see the average; the next steps the raw weights.
        if let Some(a) = &mut average {
            a.swap();
        }
        fit_statistics(model, &source, &train, &class_ids, Statistics::AfterEpoch)?;
        let done = epoch + 1;
        let mean_loss = epoch_loss / iterations_per_epoch as f64;
        let last = done == param.num_epochs || below_error_threshold(&param, Some(mean_loss));
        let evaluate = !validation.is_empty()
            && (last
                || (param.evaluation_interval_epochs > 0 && done % param.evaluation_interval_epochs == 0));
        let mut evaluation: Option<Evaluation> = None;
        let mut improved = false;
        if evaluate {
            let e = evaluate_indices(model, &source, &validation, &eval_params)?;
            let (_, value, lower) = e.comparison_key();
            log.evaluation_curve.push((done as f64, value));
            improved =
                log.best.as_ref().is_none_or(|b| if lower { value < b.value } else { value > b.value });
            if improved {
                log.best = Some(BestRecord { epoch: done, value });
            }
            evaluation = Some(e);
        }
        let seconds = t0.elapsed().as_secs_f64();
        log.seconds += seconds;
        log.epochs.push(EpochRecord {
            epoch: done,
            iterations: done as u64 * iterations_per_epoch,
            mean_loss,
            losses: components.into_iter().map(|(k, v)| (k, v / iterations_per_epoch as f64)).collect(),
            learning_rate: optimizer.param().learning_rate(),
            seconds,
            evaluation: evaluation.as_ref().map(|e| e.comparison_key().1),
        });
        if last {
            log.status = "finished".into();
        }
        let record = log.epochs.last().expect("just pushed").clone();
        for s in &param.serialization_strategies {
            let write = match s {
                SerializationStrategy::Best => improved,
                SerializationStrategy::Final => last,
                SerializationStrategy::Epochs { every } => done % every == 0,
                SerializationStrategy::Current => true,
            };
            if write {
                model.write(&files.model(s, done)).map_err(model_err)?;
                write_json(
                    &files.info(s, done),
                    &json!({"epoch": done, "record": record, "evaluation": evaluation, "train_param": param}),
                )?;
            }
        }
        if let Some(a) = &mut average {
            a.swap();
        }
        write_checkpoint(&files, model, &optimizer, &param, &log, done, average.as_ref())?;
        write_json(&files.log(), &log)?;
        write_curves(&files.curves(), &log)?;
        bar.set_message(format!(
            "epoch {done}/{} loss {:.4} lr {:.1e}{}",
            param.num_epochs,
            record.mean_loss,
            record.learning_rate,
            best_text(&log)
        ));
        if param.display && !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            // No bar is drawn without a terminal (a log file, CI): one line per epoch instead.
            eprintln!("{}", epoch_line(&record, param.num_epochs, &log.measure));
        }
    }
    // The returned model is the one written last: the average.
    if let Some(a) = &mut average {
        a.swap();
    }
    if log.epochs.len() >= param.num_epochs
        || below_error_threshold(&param, log.epochs.last().map(|e| e.mean_loss))
    {
        // Also when a resume finds every epoch done already (its log is written here, finished).
        if log.status != "finished" {
            log.status = "finished".into();
            write_json(&files.log(), &log)?;
        }
    }
    bar.finish();
    Ok(log)
}

/// Writes the loss, learning-rate and validation curves of a log as PNG.
///
/// # Errors
/// Plot errors naming the file.
pub fn write_curves(path: &Path, log: &TrainingLog) -> Result<()> {
    let epochs: Vec<(f64, f64)> = log.epochs.iter().map(|e| (e.epoch as f64 - 0.5, e.mean_loss)).collect();
    training_curves_png(
        path,
        &[
            CurvePanel {
                title: "training loss".into(),
                y_desc: "loss".into(),
                series: vec![
                    ("loss (window mean)".into(), log.loss_curve.clone()),
                    ("epoch mean".into(), epochs),
                ],
                log_y: false,
            },
            CurvePanel {
                title: "learning rate".into(),
                y_desc: "learning rate".into(),
                series: vec![("learning_rate".into(), log.learning_rate_curve.clone())],
                log_y: true,
            },
            CurvePanel {
                title: format!("validation {}", log.measure),
                y_desc: log.measure.clone(),
                series: vec![(format!("validation {}", log.measure), log.evaluation_curve.clone())],
                log_y: false,
            },
        ],
    )?;
    Ok(())
}
