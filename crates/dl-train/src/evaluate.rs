//! `evaluate_dl_model`: a model on the samples of a dataset, measured with dl-eval (SPEC §7).

use crate::model::{TrainableModel, batch_sizes, batch_tensors};
use crate::pipeline::{SampleSource, spawn_batches};
use crate::{Error, Result};
use dl_core::ImageId;
use dl_data::{DLDataset, ModelType, SampleSelector, find_dl_samples};
use dl_eval::{ClassificationAccumulator, ClassificationEvaluation};
use serde::Serialize;
use tch::{Device, Kind};

/// Parameters of [`evaluate_dl_model`].
#[derive(Debug, Clone, PartialEq)]
pub struct EvalParams {
    /// Classification: top-k errors for k = 1 … this.
    pub top_k: usize,
    /// Show a progress bar.
    pub display: bool,
    /// Keep each sample's prediction in the result.
    pub keep_predictions: bool,
}

impl Default for EvalParams {
    fn default() -> Self {
        Self { top_k: 1, display: false, keep_predictions: false }
    }
}

/// One classified sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The image.
    pub image_id: ImageId,
    /// Index of the sample in the dataset.
    pub index: usize,
    /// Class index of the ground truth.
    pub ground_truth: usize,
    /// Class index of the top prediction.
    pub predicted: usize,
    /// Its softmax confidence.
    pub confidence: f32,
}

/// The result of [`evaluate_dl_model`], per method.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Evaluation {
    /// Classification measures, plus per-sample predictions when asked for.
    Classification {
        /// The measures.
        #[serde(flatten)]
        measures: ClassificationEvaluation,
        /// Per sample, when `keep_predictions`.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        predictions: Vec<Prediction>,
    },
}

impl Evaluation {
    /// The measure that picks the best model: its name, value, and whether lower is better (CL
    /// `top1_error`).
    pub fn comparison_key(&self) -> (&'static str, f64, bool) {
        match self {
            Evaluation::Classification { measures, .. } => ("top1_error", measures.top1_error, true),
        }
    }
}

/// Evaluates `model` on the samples of `dataset` chosen by `selector`; raw datasets are preprocessed
/// with the model's parameters on the fly.
///
/// # Errors
/// [`Error::Param`] for an empty selection; [`Error::Unsupported`] for methods other than
/// classification; errors naming a sample that cannot be read or whose class the model does not know.
pub fn evaluate_dl_model(
    model: &impl TrainableModel,
    dataset: &DLDataset,
    selector: &SampleSelector,
    params: &EvalParams,
) -> Result<Evaluation> {
    let indices = find_dl_samples(dataset, selector)?;
    let source = SampleSource::new(dataset, &model.preprocess_param())?;
    evaluate_indices(model, &source, &indices, params)
}

pub(crate) fn evaluate_indices(
    model: &impl TrainableModel,
    source: &SampleSource,
    indices: &[usize],
    params: &EvalParams,
) -> Result<Evaluation> {
    if model.model_type() != ModelType::Classification {
        return Err(Error::Unsupported(format!(
            "evaluating {} models is not implemented yet (classification only)",
            model.model_type().as_str()
        )));
    }
    if indices.is_empty() {
        return Err(Error::Param {
            key: "samples",
            message: "no samples selected for the evaluation".into(),
        });
    }
    let class_ids = model.class_ids();
    let k = class_ids.len();
    let (batch_size, _) = batch_sizes(model)?;
    let order: Vec<Vec<usize>> = indices.chunks(batch_size).map(<[usize]>::to_vec).collect();
    let bar = crate::progress::bar(indices.len() as u64, params.display, "evaluating");
    let mut acc = ClassificationAccumulator::new(k, params.top_k.min(k).max(1));
    let mut predictions = Vec::new();
    let device = model.var_store().device();
    let _guard = tch::no_grad_guard();
    std::thread::scope(|scope| -> Result<()> {
        let rx = spawn_batches(scope, source, order.clone(), None, 0, &class_ids, 3);
        for (chunk, batch) in order.iter().zip(rx) {
            let batch = batch?;
            let (images, labels) = batch_tensors(&batch, device)?;
            let probs = model.forward_t(&images, false).softmax(-1, Kind::Float).to_device(Device::Cpu);
            let n = chunk.len();
            let mut values = vec![0f32; n * k];
            probs.f_copy_data(&mut values, n * k)?;
            let labels: Vec<i64> = Vec::try_from(labels.to_device(Device::Cpu))?;
            for (i, row) in values.chunks(k).enumerate() {
                let mut ranked: Vec<usize> = (0..k).collect();
                ranked.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
                let truth = labels[i] as usize;
                acc.add(&ranked, truth)?;
                if params.keep_predictions {
                    predictions.push(Prediction {
                        image_id: batch.image_ids[i],
                        index: chunk[i],
                        ground_truth: truth,
                        predicted: ranked[0],
                        confidence: row[ranked[0]],
                    });
                }
            }
            bar.inc(n as u64);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok(Evaluation::Classification { measures: acc.compute(), predictions })
}
