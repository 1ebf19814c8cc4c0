//! What training needs of a model, as a trait the facade's `dlkit::Model` implements (dl-train sits
//! below the facade), and one optimiser step on a batch (`train_dl_model_batch`).

use crate::solver::{Optimizer, SolverParam};
use crate::{Error, Result};
use dl_core::ClassId;
use dl_data::ModelType;
use dl_data::preprocess::{DLPreprocessParam, HostBatch};
use serde_json::Value;
use std::path::Path;
use tch::{Device, Kind, Tensor, nn};

/// An error of the model behind [`TrainableModel`].
pub type ModelError = Box<dyn std::error::Error + Send + Sync>;

/// A model that can be trained and evaluated: its variables, its forward pass, its parameters by
/// HALCON's names, and a way to write it.
pub trait TrainableModel {
    /// The variables.
    fn var_store(&self) -> &nn::VarStore;
    /// The network's output for images `[N, C, H, W]` (CL: logits `[N, classes]`).
    fn forward_t(&self, images: &Tensor, train: bool) -> Tensor;
    /// The method.
    fn model_type(&self) -> ModelType;
    /// Class ids in the order of the outputs.
    fn class_ids(&self) -> Vec<ClassId>;
    /// Class names, parallel to [`TrainableModel::class_ids`].
    fn class_names(&self) -> Vec<String>;
    /// How raw images are preprocessed for this model.
    fn preprocess_param(&self) -> DLPreprocessParam;
    /// A general parameter by name (`get_dl_model_param`).
    ///
    /// # Errors
    /// An unknown name.
    fn get_param(&self, name: &str) -> std::result::Result<Value, ModelError>;
    /// Sets a general parameter by name (`set_dl_model_param`).
    ///
    /// # Errors
    /// An unknown name, a read-only parameter or a bad value.
    fn set_param(&mut self, name: &str, value: &Value) -> std::result::Result<(), ModelError>;
    /// Writes the model file atomically.
    ///
    /// # Errors
    /// Write errors naming the file.
    fn write(&self, path: &Path) -> std::result::Result<(), ModelError>;
    /// The factor of the learning rate for the variable `name` (default 1; a model may let its
    /// pretrained backbone learn more slowly).
    fn learning_rate_factor(&self, _name: &str) -> f64 {
        1.0
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

fn number(model: &impl TrainableModel, name: &str) -> Result<f64> {
    model
        .get_param(name)
        .map_err(model_err)?
        .as_f64()
        .ok_or_else(|| Error::Model(format!("parameter `{name}` is not a number")))
}

/// `batch_size` and `batch_size_multiplier` of a model.
///
/// # Errors
/// [`Error::Model`] when the model does not report them as integers ≥ 1.
pub fn batch_sizes(model: &impl TrainableModel) -> Result<(usize, usize)> {
    let get = |name| -> Result<usize> {
        let v = number(model, name)?;
        if v >= 1.0 && v.fract() == 0.0 {
            Ok(v as usize)
        } else {
            Err(Error::Model(format!("parameter `{name}` = {v}: expected an integer ≥ 1")))
        }
    };
    Ok((get("batch_size")?, get("batch_size_multiplier")?))
}

/// The solver parameters of a model (`solver_type`, `learning_rate`, …).
///
/// # Errors
/// [`Error::Model`] for a missing parameter or an unknown solver type.
pub fn solver_param(model: &impl TrainableModel) -> Result<SolverParam> {
    let solver = model.get_param("solver_type").map_err(model_err)?;
    let learning_rate = number(model, "learning_rate")?;
    let weight_prior = number(model, "weight_prior")?;
    match solver.as_str() {
        Some("sgd") => {
            Ok(SolverParam::Sgd { learning_rate, momentum: number(model, "momentum")?, weight_prior })
        }
        Some("adam") => Ok(SolverParam::Adam {
            learning_rate,
            beta1: number(model, "adam_beta1")?,
            beta2: number(model, "adam_beta2")?,
            epsilon: number(model, "adam_epsilon")?,
            weight_prior,
        }),
        _ => Err(Error::Model(format!("solver_type {solver}: expected \"sgd\" or \"adam\""))),
    }
}

/// What one training step returns (HALCON's `train_dl_model_batch` result).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainBatchResult {
    /// Loss of the batch before the step: the method's loss plus `weight_prior`/2 · Σ w².
    pub total_loss: f64,
    /// CL: the mean cross-entropy.
    pub loss_cross_entropy: f64,
    /// The regularisation part of `total_loss`.
    pub loss_weight_prior: f64,
}

/// Uploads a host batch: images `[N, C, H, W]` and, for classification, class indices `[N]`.
///
/// # Errors
/// [`Error::Unsupported`] for a batch without classification labels.
pub fn batch_tensors(batch: &HostBatch, device: Device) -> Result<(Tensor, Tensor)> {
    let [n, c, h, w] = batch.shape.map(|v| v as i64);
    let images = Tensor::from_slice(&batch.images).reshape([n, c, h, w]).to_device(device);
    let labels = batch
        .class_indices
        .as_ref()
        .ok_or_else(|| Error::Unsupported("training needs classification labels (image_label_id)".into()))?;
    Ok((images, Tensor::from_slice(labels).to_device(device)))
}

/// One optimiser step on `batch` (HALCON's `train_dl_model_batch`): the batch is split into chunks of
/// `batch_size` whose gradients are accumulated (so a batch of `batch_size · batch_size_multiplier`
/// samples makes one step with the gradient of their mean loss). Classification: cross-entropy.
///
/// # Errors
/// [`Error::NonFiniteLoss`] when a loss is NaN or infinite — the weights are then left unchanged;
/// [`Error::Unsupported`] for methods other than classification; libtorch errors.
pub fn train_dl_model_batch(
    model: &impl TrainableModel,
    optimizer: &mut Optimizer,
    batch: &HostBatch,
) -> Result<TrainBatchResult> {
    if model.model_type() != ModelType::Classification {
        return Err(Error::Unsupported(format!(
            "training {} models is not implemented yet (classification only)",
            model.model_type().as_str()
        )));
    }
    let device = model.var_store().device();
    let (images, labels) = batch_tensors(batch, device)?;
    let n = images.size()[0];
    let (batch_size, _) = batch_sizes(model)?;
    optimizer.zero_grad();
    let mut loss_sum = 0.0;
    let mut start = 0;
    while start < n {
        let len = (batch_size as i64).min(n - start);
        let logits = model.forward_t(&images.narrow(0, start, len), true);
        let loss = logits.f_cross_entropy_loss::<Tensor>(
            &labels.narrow(0, start, len),
            None,
            tch::Reduction::Sum,
            -100,
            0.0,
        )?;
        let value = loss.f_double_value(&[])?;
        if !value.is_finite() {
            optimizer.zero_grad();
            return Err(Error::NonFiniteLoss { loss: value / len as f64, epoch: None });
        }
        loss_sum += value;
        (loss / n as f64).f_backward()?;
        start += len;
    }
    let loss_cross_entropy = loss_sum / n as f64;
    let wd = optimizer.param().weight_prior();
    let loss_weight_prior = if wd > 0.0 {
        let _guard = tch::no_grad_guard();
        let sq: f64 = optimizer_vars_sq(model);
        0.5 * wd * sq
    } else {
        0.0
    };
    optimizer.step();
    Ok(TrainBatchResult {
        total_loss: loss_cross_entropy + loss_weight_prior,
        loss_cross_entropy,
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
