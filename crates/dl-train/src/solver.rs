//! Solvers (SGD with momentum, Adam) and one optimiser step on a classification batch.

use crate::{Error, Result};
use tch::{Tensor, nn, nn::ModuleT, nn::OptimizerConfig};

/// HALCON's solver parameters (`solver_type`, `learning_rate`, `momentum`, `weight_prior`,
/// `adam_beta1/beta2/epsilon`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SolverParam {
    /// Stochastic gradient descent with momentum.
    Sgd {
        /// Step size.
        learning_rate: f64,
        /// Momentum, in [0, 1).
        momentum: f64,
        /// L2 weight decay.
        weight_prior: f64,
    },
    /// Adam.
    Adam {
        /// Step size.
        learning_rate: f64,
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator offset.
        epsilon: f64,
        /// L2 weight decay.
        weight_prior: f64,
    },
}

impl SolverParam {
    fn validate(&self) -> Result<()> {
        let check = |key, value: f64, ok: bool, expected| {
            if ok && value.is_finite() { Ok(()) } else { Err(Error::InvalidParam { key, value, expected }) }
        };
        match *self {
            SolverParam::Sgd { learning_rate, momentum, weight_prior } => {
                check("learning_rate", learning_rate, learning_rate > 0.0, "greater than 0")?;
                check("momentum", momentum, (0.0..1.0).contains(&momentum), "in [0, 1)")?;
                check("weight_prior", weight_prior, weight_prior >= 0.0, "at least 0")
            }
            SolverParam::Adam { learning_rate, beta1, beta2, epsilon, weight_prior } => {
                check("learning_rate", learning_rate, learning_rate > 0.0, "greater than 0")?;
                check("adam_beta1", beta1, (0.0..1.0).contains(&beta1), "in [0, 1)")?;
                check("adam_beta2", beta2, (0.0..1.0).contains(&beta2), "in [0, 1)")?;
                check("adam_epsilon", epsilon, epsilon > 0.0, "greater than 0")?;
                check("weight_prior", weight_prior, weight_prior >= 0.0, "at least 0")
            }
        }
    }
}

/// Builds the optimiser of `param` over the variables of `vs`.
///
/// # Errors
/// [`Error::InvalidParam`] naming the parameter, or a libtorch error.
pub fn build_optimizer(vs: &nn::VarStore, param: SolverParam) -> Result<nn::Optimizer> {
    param.validate()?;
    let optimizer = match param {
        SolverParam::Sgd { learning_rate, momentum, weight_prior } => {
            nn::Sgd { momentum, wd: weight_prior, ..Default::default() }.build(vs, learning_rate)?
        }
        SolverParam::Adam { learning_rate, beta1, beta2, epsilon, weight_prior } => {
            nn::Adam { beta1, beta2, eps: epsilon, wd: weight_prior, amsgrad: false }
                .build(vs, learning_rate)?
        }
    };
    Ok(optimizer)
}

/// What one training step returns (HALCON's `train_dl_model_batch` result).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainBatchResult {
    /// Loss of the batch before the step.
    pub total_loss: f64,
}

/// One optimiser step of a classifier on `images` `[N, C, H, W]` (f32) with class indices `labels` `[N]`
/// (i64), cross-entropy loss.
///
/// # Errors
/// [`Error::NonFiniteLoss`] when the loss is NaN or infinite (the weights are then left unchanged), or a
/// libtorch error for mismatched shapes.
pub fn train_classifier_batch(
    net: &impl ModuleT,
    optimizer: &mut nn::Optimizer,
    images: &Tensor,
    labels: &Tensor,
) -> Result<TrainBatchResult> {
    let logits = net.forward_t(images, true);
    let loss = logits.f_cross_entropy_loss::<Tensor>(labels, None, tch::Reduction::Mean, -100, 0.0)?;
    let total_loss = loss.f_double_value(&[])?;
    if !total_loss.is_finite() {
        optimizer.zero_grad();
        return Err(Error::NonFiniteLoss { loss: total_loss });
    }
    optimizer.zero_grad();
    loss.f_backward()?;
    optimizer.step();
    Ok(TrainBatchResult { total_loss })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dl_nets::CompactConfig;
    use tch::{Device, Kind};

    /// The libtorch smoke test: a small conv net, forward and backward on CPU, and the loss falls over
    /// 20 SGD steps on a fixed batch.
    #[test]
    fn sgd_steps_reduce_the_loss_on_a_fixed_batch() {
        tch::manual_seed(7);
        let vs = nn::VarStore::new(Device::Cpu);
        let net =
            CompactConfig { widths: vec![8, 16], ..CompactConfig::new(4, 1) }.build(&vs.root()).unwrap();
        let mut opt =
            build_optimizer(&vs, SolverParam::Sgd { learning_rate: 0.2, momentum: 0.9, weight_prior: 0.0 })
                .unwrap();
        // Four classes told apart by which quadrant is bright.
        let images = Tensor::zeros([16, 1, 16, 16], (Kind::Float, Device::Cpu));
        let mut labels = Vec::new();
        for i in 0..16i64 {
            let q = i % 4;
            let _ = images.get(i).narrow(1, (q / 2) * 8, 8).narrow(2, (q % 2) * 8, 8).fill_(1.0);
            labels.push(q);
        }
        let labels = Tensor::from_slice(&labels);
        let losses: Vec<f64> = (0..20)
            .map(|_| train_classifier_batch(&net, &mut opt, &images, &labels).unwrap().total_loss)
            .collect();
        assert!(losses[19] < 0.75 * losses[0], "loss did not fall: {losses:?}");
    }

    #[test]
    fn nan_loss_is_an_error_and_leaves_weights_alone() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = CompactConfig::new(2, 1).build(&vs.root()).unwrap();
        let mut opt =
            build_optimizer(&vs, SolverParam::Sgd { learning_rate: 0.1, momentum: 0.0, weight_prior: 0.0 })
                .unwrap();
        let before: Vec<Tensor> = vs.trainable_variables().iter().map(Tensor::copy).collect();
        let images = Tensor::full([2, 1, 16, 16], f64::NAN, (Kind::Float, Device::Cpu));
        let err =
            train_classifier_batch(&net, &mut opt, &images, &Tensor::from_slice(&[0i64, 1])).unwrap_err();
        assert!(matches!(err, Error::NonFiniteLoss { .. }), "{err}");
        for (a, b) in before.iter().zip(vs.trainable_variables()) {
            assert!(a.equal(&b));
        }
    }

    #[test]
    fn bad_solver_values_are_refused() {
        let vs = nn::VarStore::new(Device::Cpu);
        let err =
            build_optimizer(&vs, SolverParam::Sgd { learning_rate: 0.1, momentum: 1.5, weight_prior: 0.0 })
                .unwrap_err();
        assert!(err.to_string().contains("`momentum` = 1.5"), "{err}");
    }
}
