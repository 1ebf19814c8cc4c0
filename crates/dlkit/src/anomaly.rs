//! Anomaly-detection models (`type = anomaly_detection`): HALCON's `anomaly_detection` (a student
//! regressing a frozen pretrained teacher, trained by `train_dl_model_anomaly_dataset`), HALCON's
//! Global Context model `gc_anomaly_detection` (that student as the local subnetwork, an autoencoder
//! and a second student head as the global one; trained the same way) and `patchcore` (a feature
//! memory on a frozen pretrained backbone, fitted in one pass) — creation, training on the good images
//! of the train split, HALCON's thresholds (`compute_dl_anomaly_thresholds`) stored in the model, and
//! the AD parameters.

use crate::Result;
use crate::backbone::{BackboneChoice, param_error};
use crate::model::{MethodConfig, Model, ModelDescription, ModelParams};
use dl_core::Split;
use dl_data::{AnomalyLabel, DLDataset, ModelType};
use dl_nets::{AnomalyParams, GcNetwork, GlobalConfig, PatchCoreConfig, StudentConfig, StudentParams};
use dl_train::pipeline::{BatchPlan, SampleSource, spawn_batches};
use serde_json::{Value, json};
use std::path::Path;
use tch::Device;

/// The AD parameters (SPEC §5.2 AD, §7 AD): the PatchCore architecture (read-only) and the thresholds
/// (settable; `dlkit model thresholds` computes them).
pub const ANOMALY_PARAM_NAMES: &[&str] = &[
    "anomaly_method",
    "gc_anomaly_networks",
    "domain_ratio",
    "regularization_noise",
    "patchcore_strides",
    "coreset_ratio",
    "coreset_chunk_size",
    "memory_bank_size",
    "anomaly_segmentation_threshold",
    "anomaly_classification_threshold",
];

/// What [`Model::fit_patchcore`] did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FitReport {
    /// Good images fitted.
    pub images: usize,
    /// Patches seen.
    pub patches: usize,
    /// Entries kept in the memory bank.
    pub memory_bank_size: usize,
    /// The coverage radius (the anomaly image's unit).
    pub score_scale: f64,
    /// Seconds.
    pub seconds: f64,
}

/// Parameters of [`Model::train_dl_model_anomaly_dataset`] (HALCON's names and defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyTrainParam {
    /// At most this many epochs (default 30).
    pub max_num_epochs: usize,
    /// Stop when an epoch's mean error falls below it (default 0.001).
    pub error_threshold: f64,
    /// Share of each image's positions in the loss per step (default 0.1).
    pub domain_ratio: f64,
    /// Noise added to the student's input (default 1e−4).
    pub regularization_noise: f64,
    /// Seed of the epoch orders and the noise.
    pub seed: u64,
    /// 'nok' train images: refuse or skip.
    pub nok: NokInTrain,
    /// Show a progress bar.
    pub display: bool,
    /// Where the checkpoint and training log go (`None`: a scratch folder, removed afterwards).
    pub output_dir: Option<std::path::PathBuf>,
}

impl Default for AnomalyTrainParam {
    fn default() -> Self {
        Self {
            max_num_epochs: 30,
            error_threshold: 0.001,
            domain_ratio: 0.1,
            regularization_noise: 1e-4,
            seed: 42,
            nok: NokInTrain::Refuse,
            display: false,
            output_dir: None,
        }
    }
}

/// What [`Model::train_dl_model_anomaly_dataset`] returns.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AnomalyTrainResult {
    /// The last epoch's mean error.
    pub final_error: f64,
    /// Epochs done (1-based count).
    pub final_epoch: usize,
    /// Each epoch's mean error.
    pub errors: Vec<f64>,
    /// Seconds.
    pub seconds: f64,
}

/// What to do with 'nok' images in the train split when fitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NokInTrain {
    /// Refuse, naming the first one.
    #[default]
    Refuse,
    /// Leave them out.
    Skip,
}

/// The pretrained backbone of an anomaly model and its classes 'ok' (0) and 'nok' (1); `why` says why
/// it must be pretrained.
fn pretrained_choice(
    backbone: &str,
    weights: Option<&Path>,
    size: (usize, usize, usize),
    why: &str,
) -> Result<(BackboneChoice, Vec<String>, Vec<i64>)> {
    if !crate::pretrained::is_pretrained(backbone) {
        return Err(param_error(
            "backbone",
            format!("`{backbone}`: {why}; expected one of {}", crate::pretrained_names().join(", ")),
        ));
    }
    let (names, ids) = (vec!["ok".to_owned(), "nok".to_owned()], vec![0, 1]);
    let choice = BackboneChoice::new(backbone, weights, ModelType::AnomalyDetection, (&names, &ids), size)?;
    Ok((choice, names, ids))
}

impl Model {
    /// A PatchCore model on a pretrained `backbone` (`pretrained_dl_classifier_…`; weights from
    /// `weights` or the cache) at the network input size; classes 'ok' (0) and 'nok' (1). Not fitted:
    /// [`Model::fit_patchcore`] fills its memory bank.
    ///
    /// # Errors
    /// [`Error::Param`](crate::Error::Param) for a backbone that is not pretrained, a configuration that does not fit it,
    /// missing or altered weights.
    pub fn create_patchcore(
        backbone: &str,
        weights: Option<&Path>,
        size: (usize, usize, usize),
        config: &PatchCoreConfig,
    ) -> Result<Self> {
        let (choice, names, ids) = pretrained_choice(
            backbone,
            weights,
            size,
            "patchcore compares features of a pretrained backbone",
        )?;
        let mut config = config.clone();
        config.memory_bank_size = 0;
        let description = ModelDescription {
            method: MethodConfig::Patchcore {
                backbone: choice.architecture.clone(),
                pretrained: choice.pretrained_name(),
                patchcore: config,
                params: AnomalyParams::default(),
            },
            class_ids: ids,
            class_names: names,
            preprocess: choice.preprocess.clone(),
            params: ModelParams::default(),
        };
        let model = Model::from_description(description, Device::Cpu)?;
        choice.import_into(model.var_store(), &[dl_nets::anomaly::MEMORY_BANK])?;
        Ok(model)
    }

    /// Fits a PatchCore model on the 'ok' images of `dataset`'s train split: one pass (batches of
    /// `batch_size`, a progress bar when `display`), patches streamed into the chunked k-center coreset
    /// (seeded by `seed`), the memory bank and its coverage radius stored in the model. The thresholds
    /// are reset (compute them again).
    ///
    /// # Errors
    /// [`Error::Param`](crate::Error::Param) for another model, a dataset of another method, an empty train split, 'nok'
    /// train images (unless `nok` is [`NokInTrain::Skip`]); errors naming an image that cannot be read.
    pub fn fit_patchcore(
        &mut self,
        dataset: &DLDataset,
        nok: NokInTrain,
        seed: u64,
        display: bool,
    ) -> Result<FitReport> {
        let t0 = std::time::Instant::now();
        let MethodConfig::Patchcore { patchcore, .. } = &self.description().method else {
            return Err(param_error("type", "fit_patchcore needs a patchcore model"));
        };
        let config = patchcore.clone();
        let indices = dl_train::good_train_samples(dataset, nok == NokInTrain::Skip)?;
        let source = SampleSource::new(dataset, &self.description().preprocess)?;
        let batch = self.description().params.batch_size.max(1);
        let order: Vec<Vec<usize>> = indices.chunks(batch).map(<[usize]>::to_vec).collect();
        let classes = self.classes();
        let plan = BatchPlan::inference(&classes.ids);
        let dim = self.patchcore_net()?.feature_dim() as usize;
        let mut builder = dl_nets::anomaly::coreset::CoresetBuilder::new(
            dim,
            config.coreset_ratio,
            config.coreset_chunk_size,
            seed,
        );
        let bar = dl_train::progress::bar(indices.len() as u64, display, "fitting patchcore");
        let device = self.var_store().device();
        std::thread::scope(|scope| -> Result<()> {
            let rx = spawn_batches(scope, &source, order, plan);
            for loaded in rx {
                let loaded = loaded?;
                let (images, _) = dl_nets::upload(&loaded.batch, device)?;
                let f = self.patchcore_net()?.features(&images);
                let rows =
                    f.permute([0, 2, 3, 1]).reshape([-1, dim as i64]).to_device(Device::Cpu).contiguous();
                let n = rows.numel();
                let mut v = vec![0f32; n];
                rows.f_copy_data(&mut v, n)?;
                builder.push(&v);
                bar.inc(loaded.batch.shape[0] as u64);
            }
            Ok(())
        })?;
        bar.finish_and_clear();
        let patches = builder.seen();
        let (kept, radius) = builder.finish();
        let m = kept.len() / dim;
        let scale = if radius > 0.0 { f64::from(radius) } else { 1.0 };
        // The bank's size is part of the architecture: rebuild with it, keep the backbone's weights.
        let mut d = self.description().clone();
        if let MethodConfig::Patchcore { patchcore, params, .. } = &mut d.method {
            patchcore.memory_bank_size = m as i64;
            patchcore.score_scale = scale;
            *params = AnomalyParams::default();
        }
        let fitted = Model::from_description(d, device)?;
        let old = self.var_store().variables();
        tch::no_grad(|| -> Result<()> {
            for (name, mut var) in fitted.var_store().variables() {
                if name == dl_nets::anomaly::MEMORY_BANK {
                    let bank = tch::Tensor::f_from_slice(&kept)?
                        .f_reshape([m as i64, dim as i64])?
                        .f_to_device(device)?;
                    var.f_copy_(&bank)?;
                } else if let Some(src) = old.get(&name) {
                    var.f_copy_(src)?;
                }
            }
            Ok(())
        })?;
        *self = fitted;
        Ok(FitReport {
            images: indices.len(),
            patches,
            memory_bank_size: m,
            score_scale: scale,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    fn patchcore_net(&self) -> Result<&dl_nets::PatchCoreNet> {
        self.network()
            .as_any()
            .downcast_ref::<dl_nets::PatchCoreNet>()
            .ok_or_else(|| param_error("type", "not a patchcore model"))
    }

    /// `compute_dl_anomaly_thresholds` on the model: applies it to `dataset`'s validation split (which
    /// must hold 'ok' and 'nok' images), computes HALCON's thresholds from the ok images' anomaly pixels
    /// and the ok / nok scores, and stores the segmentation threshold and the classification threshold
    /// that minimises FPR + FNR in the model, so `apply` classifies as the evaluation does.
    ///
    /// # Errors
    /// [`Error::Param`](crate::Error::Param) for a model that is not an anomaly model, a dataset without a validation split or
    /// without ok and nok validation images; errors naming an image that cannot be read.
    pub fn compute_anomaly_thresholds(
        &mut self,
        dataset: &DLDataset,
    ) -> Result<dl_eval::anomaly::AnomalyThresholds> {
        if self.description().model_type() != ModelType::AnomalyDetection {
            return Err(param_error("type", "thresholds are for anomaly-detection models"));
        }
        let indices: Vec<usize> = (0..dataset.samples.len())
            .filter(|&i| dataset.samples[i].split == Some(Split::Validation))
            .collect();
        if indices.is_empty() {
            return Err(param_error(
                "dataset",
                "no validation split: thresholds are computed on validation images (dlkit dataset split)",
            ));
        }
        let source = SampleSource::new(dataset, &self.description().preprocess)?;
        let (mut pixels, mut ok, mut nok) = (Vec::new(), Vec::new(), Vec::new());
        let mut next = indices.iter();
        // Streamed: only the ok images' pixels are kept, not every anomaly image.
        dl_train::visit_results(self, &source, &indices, false, |_, r| {
            let i = *next.next().expect("one result per index");
            let score = r.anomaly_score.unwrap_or(f64::NAN);
            match dataset.samples[i].anomaly_label {
                Some(AnomalyLabel::Ok) => {
                    ok.push(score);
                    if let Some(img) = &r.anomaly_image {
                        pixels.extend_from_slice(&img.data);
                    }
                }
                Some(AnomalyLabel::Nok) => nok.push(score),
                None => {}
            }
            Ok(())
        })?;
        if ok.is_empty() || nok.is_empty() {
            return Err(param_error(
                "dataset",
                format!(
                    "the validation split has {} ok and {} nok images: thresholds need both",
                    ok.len(),
                    nok.len()
                ),
            ));
        }
        let t = dl_eval::anomaly::compute_dl_anomaly_thresholds(&pixels, &ok, &nok)?;
        let params = AnomalyParams {
            anomaly_segmentation_threshold: Some(t.segmentation_threshold),
            anomaly_classification_threshold: t.classification_thresholds.get(2).copied(),
        };
        self.set_anomaly_params(params)?;
        Ok(t)
    }

    fn set_anomaly_params(&mut self, p: AnomalyParams) -> Result<()> {
        match &mut self.description_mut().method {
            MethodConfig::Patchcore { params, .. } => *params = p.clone(),
            MethodConfig::AnomalyDetection { params, .. }
            | MethodConfig::GcAnomalyDetection { params, .. } => {
                params.thresholds = p.clone();
            }
            _ => return Err(param_error("type", "not an anomaly model")),
        }
        self.network_mut().set_method_params(&dl_nets::MethodParams::Anomaly(p))?;
        Ok(())
    }

    fn anomaly_thresholds(&self) -> Option<&AnomalyParams> {
        match &self.description().method {
            MethodConfig::Patchcore { params, .. } => Some(params),
            MethodConfig::AnomalyDetection { params, .. }
            | MethodConfig::GcAnomalyDetection { params, .. } => Some(&params.thresholds),
            _ => None,
        }
    }

    /// The training parameters of a student–teacher model (`anomaly_detection`, `gc_anomaly_detection`).
    fn student_params(&self) -> Option<&StudentParams> {
        match &self.description().method {
            MethodConfig::AnomalyDetection { params, .. }
            | MethodConfig::GcAnomalyDetection { params, .. } => Some(params),
            _ => None,
        }
    }

    /// Replaces them in the description and the network.
    fn set_student_params(&mut self, p: StudentParams) -> Result<()> {
        self.network_mut().set_method_params(&dl_nets::MethodParams::StudentTeacher(p.clone()))?;
        match &mut self.description_mut().method {
            MethodConfig::AnomalyDetection { params, .. }
            | MethodConfig::GcAnomalyDetection { params, .. } => {
                *params = p;
                Ok(())
            }
            _ => Err(param_error("type", "not a student–teacher anomaly model")),
        }
    }

    /// HALCON's `anomaly_detection` model: a student regressing the patch features of a frozen
    /// pretrained teacher (`pretrained_dl_classifier_…`; weights from `weights` or the cache), at the
    /// network input size; classes 'ok' (0) and 'nok' (1). Train it with
    /// [`Model::train_dl_model_anomaly_dataset`].
    ///
    /// # Errors
    /// [`Error::Param`](crate::Error::Param) for a teacher that is not pretrained, a configuration that
    /// does not fit it, missing or altered weights.
    pub fn create_anomaly_detection(
        backbone: &str,
        weights: Option<&Path>,
        size: (usize, usize, usize),
        config: &StudentConfig,
    ) -> Result<Self> {
        Self::create_student_teacher(backbone, weights, size, config, None)
    }

    /// HALCON's Global Context model `gc_anomaly_detection`: the student of
    /// [`Model::create_anomaly_detection`] as the local subnetwork, and the global subnetwork of
    /// `global` (an autoencoder seeing the whole image and a second student head predicting it; see
    /// [`dl_nets::anomaly::global`]). Trained as `anomaly_detection` (by
    /// [`Model::train_dl_model_anomaly_dataset`] or the shared loop); `gc_anomaly_networks` chooses
    /// the subnetworks the anomaly image is made of (default both).
    ///
    /// # Errors
    /// As [`Model::create_anomaly_detection`]; [`Error::Param`](crate::Error::Param) for a global
    /// configuration out of range.
    pub fn create_gc_anomaly_detection(
        backbone: &str,
        weights: Option<&Path>,
        size: (usize, usize, usize),
        config: &StudentConfig,
        global: &GlobalConfig,
    ) -> Result<Self> {
        Self::create_student_teacher(backbone, weights, size, config, Some(global))
    }

    fn create_student_teacher(
        backbone: &str,
        weights: Option<&Path>,
        size: (usize, usize, usize),
        config: &StudentConfig,
        global: Option<&GlobalConfig>,
    ) -> Result<Self> {
        let (choice, names, ids) =
            pretrained_choice(backbone, weights, size, "the student learns a pretrained teacher's features")?;
        // The teacher stays as pretrained; only the student learns.
        let model_params = ModelParams {
            freeze_backbone: true,
            solver_type: dl_train::SolverType::Adam,
            learning_rate: 1e-3,
            ..Default::default()
        };
        let (backbone, pretrained) = (choice.architecture.clone(), choice.pretrained_name());
        let (student, params) = (config.clone(), StudentParams::default());
        let method = match global {
            None => MethodConfig::AnomalyDetection { backbone, pretrained, student, params },
            Some(g) => {
                MethodConfig::GcAnomalyDetection { backbone, pretrained, student, global: g.clone(), params }
            }
        };
        let description = ModelDescription {
            method,
            class_ids: ids,
            class_names: names,
            preprocess: choice.preprocess.clone(),
            params: model_params,
        };
        let model = Model::from_description(description, Device::Cpu)?;
        choice.import_into(model.var_store(), &[dl_nets::anomaly::student::STUDENT_PREFIX, "anomaly."])?;
        Ok(model)
    }

    /// Sets what training an `anomaly_detection` or `gc_anomaly_detection` model uses — the share of
    /// positions in each step's loss and the noise on the student's input (`None`: the model's values
    /// stay) — and clears its thresholds (they belong to the old weights). [`dl_train::train_dl_model`]
    /// then trains it like any model.
    ///
    /// # Errors
    /// [`Error::Param`](crate::Error::Param) for another model or values out of range.
    pub fn prepare_anomaly_training(
        &mut self,
        domain_ratio: Option<f64>,
        regularization_noise: Option<f64>,
    ) -> Result<()> {
        let Some(params) = self.student_params() else {
            return Err(param_error(
                "type",
                "prepare_anomaly_training needs an anomaly_detection or gc_anomaly_detection model",
            ));
        };
        let mut p = params.clone();
        p.domain_ratio = domain_ratio.unwrap_or(p.domain_ratio);
        p.regularization_noise = regularization_noise.unwrap_or(p.regularization_noise);
        p.thresholds = AnomalyParams::default();
        self.set_student_params(p)
    }

    /// `train_dl_model_anomaly_dataset`: trains an `anomaly_detection` model on the 'ok' images of
    /// `dataset`'s train split through [`dl_train::train_dl_model`] — first the teacher's feature
    /// statistics (one pass over up to 64 images), then epochs of the shared training step (seeded order
    /// and noise) until the epoch's mean error falls below `error_threshold` or `max_num_epochs` are
    /// done. Thresholds are reset. The checkpoint and log go to `output_dir` (a scratch folder when
    /// `None`); no model file is written.
    ///
    /// # Errors
    /// [`Error::Param`](crate::Error::Param) for another model, bad parameters, a dataset of another
    /// method, an empty train split, 'nok' train images (unless skipped); a non-finite loss; errors
    /// naming an image that cannot be read.
    pub fn train_dl_model_anomaly_dataset(
        &mut self,
        dataset: &DLDataset,
        param: &AnomalyTrainParam,
    ) -> Result<AnomalyTrainResult> {
        if param.max_num_epochs == 0 || param.error_threshold.is_nan() || param.error_threshold < 0.0 {
            return Err(param_error("max_num_epochs", "at least 1 epoch and an error_threshold ≥ 0"));
        }
        self.prepare_anomaly_training(Some(param.domain_ratio), Some(param.regularization_noise))?;
        let scratch;
        let output_dir = match &param.output_dir {
            Some(dir) => dir.clone(),
            None => {
                scratch = tempfile::tempdir()
                    .map_err(|e| param_error("output_dir", format!("cannot create a scratch folder: {e}")))?;
                scratch.path().to_owned()
            }
        };
        let train = dl_train::TrainParam {
            num_epochs: param.max_num_epochs,
            evaluation_interval_epochs: 0,
            seed: param.seed,
            serialization_strategies: Vec::new(),
            output_dir,
            display: param.display,
            error_threshold: Some(param.error_threshold),
            skip_nok_train: param.nok == NokInTrain::Skip,
            ..Default::default()
        };
        let log = dl_train::train_dl_model(dataset, self, &train, dl_train::StartEpoch::Fresh)?;
        let errors: Vec<f64> = log.epochs.iter().map(|e| e.mean_loss).collect();
        Ok(AnomalyTrainResult {
            final_error: errors.last().copied().unwrap_or(f64::NAN),
            final_epoch: errors.len(),
            errors,
            seconds: log.seconds,
        })
    }

    /// An AD parameter; `None` for a name that is not one.
    pub(crate) fn get_anomaly_param(&self, name: &str) -> Option<Result<Value>> {
        if !ANOMALY_PARAM_NAMES.contains(&name) {
            return None;
        }
        let d = self.description();
        if let MethodConfig::AnomalyDetection { student, params, .. }
        | MethodConfig::GcAnomalyDetection { student, params, .. } = &d.method
        {
            let gc = matches!(d.method, MethodConfig::GcAnomalyDetection { .. });
            return Some(match name {
                "anomaly_method" if gc => Ok(json!("gc_anomaly_detection")),
                "anomaly_method" => Ok(json!("anomaly_detection")),
                "gc_anomaly_networks" if gc => Ok(json!(params.gc_anomaly_networks)),
                "gc_anomaly_networks" => {
                    Err(param_error(name, "is a parameter of gc_anomaly_detection models"))
                }
                "patchcore_strides" => Ok(json!(student.strides)),
                "domain_ratio" => Ok(json!(params.domain_ratio)),
                "regularization_noise" => Ok(json!(params.regularization_noise)),
                "anomaly_segmentation_threshold" => {
                    Ok(json!(params.thresholds.anomaly_segmentation_threshold))
                }
                "anomaly_classification_threshold" => {
                    Ok(json!(params.thresholds.anomaly_classification_threshold))
                }
                _ => Err(param_error(name, "is a patchcore parameter")),
            });
        }
        let MethodConfig::Patchcore { patchcore: c, params: p, .. } = &d.method else {
            return Some(Err(param_error(
                name,
                format!("is an anomaly-detection parameter; this is a {} model", d.model_type().as_str()),
            )));
        };
        Some(Ok(match name {
            "anomaly_method" => json!("patchcore"),
            "domain_ratio" | "regularization_noise" | "gc_anomaly_networks" => {
                return Some(Err(param_error(name, "is a parameter of anomaly_detection models")));
            }
            "patchcore_strides" => json!(c.strides),
            "coreset_ratio" => json!(c.coreset_ratio),
            "coreset_chunk_size" => json!(c.coreset_chunk_size),
            "memory_bank_size" => json!(c.memory_bank_size),
            "anomaly_segmentation_threshold" => json!(p.anomaly_segmentation_threshold),
            _ => json!(p.anomaly_classification_threshold),
        }))
    }

    /// Sets an AD parameter; `None` for a name that is not one.
    pub(crate) fn set_anomaly_param(&mut self, name: &str, value: &Value) -> Option<Result<()>> {
        if !ANOMALY_PARAM_NAMES.contains(&name) {
            return None;
        }
        Some((|| {
            if name == "gc_anomaly_networks" {
                return self.set_gc_anomaly_networks(value);
            }
            let Some(params) = self.anomaly_thresholds() else {
                return Err(param_error(name, "is an anomaly-detection parameter"));
            };
            let mut p = params.clone();
            let v = if value.is_null() {
                None
            } else {
                Some(value.as_f64().filter(|v| v.is_finite()).ok_or_else(|| {
                    param_error(name, format!("{value}: expected a number (or null to clear it)"))
                })?)
            };
            match name {
                "anomaly_segmentation_threshold" => p.anomaly_segmentation_threshold = v,
                "anomaly_classification_threshold" => p.anomaly_classification_threshold = v,
                _ => return Err(param_error(name, "fixes the architecture or is set by fitting")),
            }
            self.set_anomaly_params(p)
        })())
    }
}

impl Model {
    /// `gc_anomaly_networks`: "local", "global" or a list of them (each once). Another choice makes
    /// other anomaly images, so the stored thresholds (computed on the old ones) are cleared.
    fn set_gc_anomaly_networks(&mut self, value: &Value) -> Result<()> {
        let name = "gc_anomaly_networks";
        if !matches!(self.description().method, MethodConfig::GcAnomalyDetection { .. }) {
            return Err(param_error(name, "is a parameter of gc_anomaly_detection models"));
        }
        let list = if value.is_array() { value.clone() } else { Value::Array(vec![value.clone()]) };
        let networks: Vec<GcNetwork> = serde_json::from_value(list).map_err(|e| {
            param_error(name, format!("{value}: {e} (\"local\", \"global\" or a list of them)"))
        })?;
        let mut p = self.student_params().cloned().expect("a gc_anomaly_detection model");
        if p.gc_anomaly_networks != networks {
            p.gc_anomaly_networks = networks;
            p.thresholds = AnomalyParams::default();
        }
        self.set_student_params(p)
    }
}
