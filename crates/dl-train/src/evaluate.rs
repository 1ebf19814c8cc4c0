//! `evaluate_dl_model`: a model on the samples of a dataset, measured with dl-eval's one [`Evaluator`]
//! (SPEC §7), for every method.

use crate::model::{TrainableModel, batch_sizes};
use crate::pipeline::{BatchPlan, SampleSource, spawn_batches};
use crate::{Error, Result};
use dl_data::preprocess::ImageMap;
use dl_data::{DLDataset, SampleSelector, find_dl_samples};
use dl_eval::{Evaluation, Evaluator, EvaluatorParams};

/// Parameters of [`evaluate_dl_model`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EvalParams {
    /// What the evaluator measures (CL top-k, OD thresholds, SE ignore classes, …).
    pub measures: EvaluatorParams,
    /// Show a progress bar.
    pub display: bool,
}

impl EvalParams {
    /// Classification with top-k errors up to `top_k`.
    pub fn top_k(top_k: usize) -> Self {
        Self { measures: EvaluatorParams { top_k, ..Default::default() }, display: false }
    }
}

/// Evaluates `model` on the samples of `dataset` chosen by `selector`; raw datasets are preprocessed
/// with the model's parameters on the fly, and the results (in network coordinates) are measured
/// against the preprocessed ground truth.
///
/// # Errors
/// [`Error::Param`] for an empty selection; errors naming a sample that cannot be read, lacks the
/// method's ground truth or has a class the model does not know.
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
    if indices.is_empty() {
        return Err(Error::Param {
            key: "samples",
            message: "no samples selected for the evaluation".into(),
        });
    }
    let classes = model.classes();
    let mut measures = params.measures.clone();
    measures.detection.ignore_direction |= model.network().ignores_direction();
    let mut evaluator = Evaluator::new(model.network().model_type(), &classes.ids, &measures);
    visit_results(model, source, indices, params.display, |sample, result| {
        Ok(evaluator.add(sample, result)?)
    })?;
    Ok(evaluator.finish()?)
}

/// Applies `model` to the samples at `indices` of `source` (batches of `batch_size`, read ahead by the
/// pipeline) and calls `visit` with each preprocessed sample and its result, in order. The ground
/// truth is preprocessed, so results stay in network coordinates. Segmentation label values are
/// checked against the model's classes and ignore ids.
///
/// # Errors
/// Errors naming a sample that cannot be read or whose labels are not the model's; libtorch errors;
/// what `visit` returns.
pub fn visit_results(
    model: &impl TrainableModel,
    source: &SampleSource,
    indices: &[usize],
    display: bool,
    mut visit: impl FnMut(&dl_data::DLSample, &dl_data::DLResult) -> Result<()>,
) -> Result<()> {
    let classes = model.classes();
    let net = model.network();
    let (batch_size, _) = batch_sizes(model)?;
    let order: Vec<Vec<usize>> = indices.chunks(batch_size).map(<[usize]>::to_vec).collect();
    let bar = crate::progress::bar(indices.len() as u64, display, "evaluating");
    let device = model.var_store().device();
    let _guard = tch::no_grad_guard();
    let ignore_class_ids = model.preprocess_param().ignore_class_ids;
    let label_check =
        (net.model_type() == dl_data::ModelType::Segmentation).then_some(crate::pipeline::LabelCheck {
            ignore_class_ids: &ignore_class_ids,
            require_weights: false,
        });
    let plan = BatchPlan { keep_samples: true, label_check, ..BatchPlan::inference(&classes.ids) };
    std::thread::scope(|scope| -> Result<()> {
        let rx = spawn_batches(scope, source, order, plan);
        for loaded in rx {
            let loaded = loaded?;
            let samples = loaded.samples.unwrap_or_default();
            let (images, _) = dl_nets::upload(&loaded.batch, device)?;
            let [_, _, h, w] = loaded.batch.shape;
            let maps = vec![ImageMap::new(0, 0, w, h, w, h); samples.len()];
            let results = net.infer(&images, &maps, &classes)?;
            for (sample, result) in samples.iter().zip(&results) {
                visit(sample, result)?;
            }
            bar.inc(samples.len() as u64);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok(())
}
