//! What training needs of a model, as a trait the facade's `dlkit::Model` implements (dl-train sits
//! below the facade), HALCON's general model parameters as a typed struct, and one optimiser step on a
//! batch (`train_dl_model_batch`): upload → forward → loss → backward, for every method.

use crate::solver::{Optimizer, SolverParam};
use crate::{Error, Result};
use dl_core::ClassId;
use dl_data::ModelType;
use dl_data::preprocess::{DLPreprocessParam, HostBatch};
use dl_nets::{Classes, Network};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, nn};

/// The solver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SolverType {
    /// SGD with momentum.
    #[default]
    Sgd,
    /// Adam.
    Adam,
}

/// HALCON's general model parameters that do not fix the architecture (SPEC §5.1), as training reads
/// them (typed; no JSON round trips through get/set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelParams {
    /// Images per batch.
    pub batch_size: usize,
    /// Batches accumulated per optimiser step.
    pub batch_size_multiplier: usize,
    /// Step size.
    pub learning_rate: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// L2 regularisation.
    pub weight_prior: f64,
    /// sgd or adam.
    pub solver_type: SolverType,
    /// Adam β1.
    pub adam_beta1: f64,
    /// Adam β2.
    pub adam_beta2: f64,
    /// Adam ε.
    pub adam_epsilon: f64,
    /// float32 (float16 / bfloat16 only on a GPU).
    pub precision: String,
    /// Free strings stored with the model.
    pub meta_data: BTreeMap<String, String>,
    /// Fine-tuning: train only the method's head; the backbone's weights and batch-norm statistics stay
    /// as they are (it runs in inference mode, without gradients).
    #[serde(default)]
    pub freeze_backbone: bool,
    /// Fine-tuning: the backbone learns with `learning_rate` × this factor (in [0, 1]; the head with
    /// the full rate).
    #[serde(default = "one")]
    pub backbone_learning_rate_factor: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for ModelParams {
    fn default() -> Self {
        Self {
            batch_size: 16,
            batch_size_multiplier: 1,
            learning_rate: 0.001,
            momentum: 0.9,
            weight_prior: 0.0,
            solver_type: SolverType::Sgd,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            precision: "float32".into(),
            meta_data: BTreeMap::new(),
            freeze_backbone: false,
            backbone_learning_rate_factor: 1.0,
        }
    }
}

/// An error of the model behind [`TrainableModel`].
pub type ModelError = Box<dyn std::error::Error + Send + Sync>;

/// A model that can be trained and evaluated: its variables, its network, its typed parameters, its
/// parameters by HALCON's names (for change strategies), and a way to write it.
pub trait TrainableModel {
    /// The variables.
    fn var_store(&self) -> &nn::VarStore;
    /// The network (forward, loss, post-processing).
    fn network(&self) -> &dyn Network;
    /// The network, to change (statistics measured before training).
    fn network_mut(&mut self) -> &mut dyn Network;
    /// Class ids and names in the order of the outputs.
    fn classes(&self) -> Classes;
    /// How raw images are preprocessed for this model.
    fn preprocess_param(&self) -> DLPreprocessParam;
    /// The general parameters.
    fn params(&self) -> &ModelParams;
    /// A parameter by name (`get_dl_model_param`).
    ///
    /// # Errors
    /// An unknown name.
    fn get_param(&self, name: &str) -> std::result::Result<Value, ModelError>;
    /// Sets a parameter by name (`set_dl_model_param`).
    ///
    /// # Errors
    /// An unknown name, a read-only parameter or a bad value.
    fn set_param(&mut self, name: &str, value: &Value) -> std::result::Result<(), ModelError>;
    /// Writes the model file atomically.
    ///
    /// # Errors
    /// Write errors naming the file.
    fn write(&self, path: &Path) -> std::result::Result<(), ModelError>;
    /// The method.
    fn model_type(&self) -> ModelType {
        self.network().model_type()
    }
    /// Class ids in the order of the outputs.
    fn class_ids(&self) -> Vec<ClassId> {
        self.classes().ids
    }
    /// The factor of the learning rate for the variable `name`: 1 for the head, the
    /// `backbone_learning_rate_factor` for the rest.
    fn learning_rate_factor(&self, name: &str) -> f64 {
        if self.network().is_head_var(name) { 1.0 } else { self.params().backbone_learning_rate_factor }
    }
}

/// The optimiser of a model: its solver parameters and per-variable learning-rate factors.
///
/// # Errors
/// As [`solver_param`] and [`Optimizer::with_factors`].
pub fn model_optimizer(model: &impl TrainableModel) -> Result<Optimizer> {
    Optimizer::with_factors(model.var_store(), solver_param(model)?, |n| model.learning_rate_factor(n))
}

pub(crate) fn model_err(e: ModelError) -> Error {
    Error::Model(e.to_string())
}

/// `batch_size` and `batch_size_multiplier` of a model.
///
/// # Errors
/// [`Error::Model`] when either is 0.
pub fn batch_sizes(model: &impl TrainableModel) -> Result<(usize, usize)> {
    let p = model.params();
    for (name, v) in [("batch_size", p.batch_size), ("batch_size_multiplier", p.batch_size_multiplier)] {
        if v == 0 {
            return Err(Error::Model(format!("parameter `{name}` = 0: expected an integer ≥ 1")));
        }
    }
    Ok((p.batch_size, p.batch_size_multiplier))
}

/// The solver parameters of a model (`solver_type`, `learning_rate`, …).
///
/// # Errors
/// None today (the parameters are typed); kept fallible for solvers with checks.
pub fn solver_param(model: &impl TrainableModel) -> Result<SolverParam> {
    let p = model.params();
    Ok(match p.solver_type {
        SolverType::Sgd => SolverParam::Sgd {
            learning_rate: p.learning_rate,
            momentum: p.momentum,
            weight_prior: p.weight_prior,
        },
        SolverType::Adam => SolverParam::Adam {
            learning_rate: p.learning_rate,
            beta1: p.adam_beta1,
            beta2: p.adam_beta2,
            epsilon: p.adam_epsilon,
            weight_prior: p.weight_prior,
        },
    })
}

/// What one training step returns (HALCON's `train_dl_model_batch` result).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainBatchResult {
    /// Loss of the batch before the step: the method's loss components plus `weight_prior`/2 · Σ w².
    pub total_loss: f64,
    /// The method's components by name (CL `loss_cross_entropy`), each the mean over the batch.
    pub components: Vec<(String, f64)>,
    /// The regularisation part of `total_loss`.
    pub loss_weight_prior: f64,
}

impl TrainBatchResult {
    /// A component by name.
    pub fn component(&self, name: &str) -> Option<f64> {
        self.components.iter().find(|(n, _)| n == name).map(|&(_, v)| v)
    }
}

/// One optimiser step on `batch` (HALCON's `train_dl_model_batch`), for every method: upload, then per
/// chunk of `batch_size` images forward, loss, backward (gradients accumulated, so a batch of
/// `batch_size · batch_size_multiplier` samples makes one step with the gradient of the mean loss),
/// then the step.
///
/// # Errors
/// [`Error::NonFiniteLoss`] when a loss is NaN or infinite — the weights are then left unchanged;
/// targets of another method (naming what is expected); libtorch errors.
pub fn train_dl_model_batch(
    model: &impl TrainableModel,
    optimizer: &mut Optimizer,
    batch: &HostBatch,
) -> Result<TrainBatchResult> {
    let device = model.var_store().device();
    let net = model.network();
    let (images, targets) = dl_nets::upload(batch, device)?;
    let n = images.size()[0];
    let (batch_size, _) = batch_sizes(model)?;
    optimizer.zero_grad();
    let mut sums: Vec<(&'static str, f64)> = Vec::new();
    let mut start = 0;
    while start < n {
        let len = (batch_size as i64).min(n - start);
        let outputs = net.forward_t(&images.narrow(0, start, len), true);
        let losses = net.loss(&outputs, &targets.narrow(start, len))?;
        let total = losses.total();
        let value = total.f_double_value(&[])?;
        if !value.is_finite() {
            optimizer.zero_grad();
            return Err(Error::NonFiniteLoss { loss: value, epoch: None });
        }
        for (name, t) in &losses.components {
            let v = t.f_double_value(&[])? * len as f64;
            match sums.iter_mut().find(|(n, _)| n == name) {
                Some(s) => s.1 += v,
                None => sums.push((name, v)),
            }
        }
        (total * (len as f64 / n as f64)).f_backward()?;
        start += len;
    }
    let components: Vec<(String, f64)> =
        sums.into_iter().map(|(k, v)| (k.to_owned(), v / n as f64)).collect();
    let wd = optimizer.param().weight_prior();
    let loss_weight_prior = if wd > 0.0 {
        let _guard = tch::no_grad_guard();
        0.5 * wd * optimizer_vars_sq(model)
    } else {
        0.0
    };
    optimizer.step();
    Ok(TrainBatchResult {
        total_loss: components.iter().map(|(_, v)| v).sum::<f64>() + loss_weight_prior,
        components,
        loss_weight_prior,
    })
}

fn optimizer_vars_sq(model: &impl TrainableModel) -> f64 {
    model
        .var_store()
        .trainable_variables()
        .iter()
        .map(|t| t.square().sum(Kind::Double).double_value(&[]))
        .sum()
}
