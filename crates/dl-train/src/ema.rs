//! The exponential moving average of a model's variables ([`crate::TrainParam::ema_decay`]).

use crate::Result;
use crate::train::copy_from_checkpoint;
use tch::{Tensor, nn::VarStore};

/// The average of every variable of a var store (weights, and the batch-norm statistics and fitted
/// statistics stored beside them), kept beside the variables; [`WeightAverage::swap`] exchanges the
/// two, so evaluation and model files see the average while training steps see the raw weights.
pub(crate) struct WeightAverage {
    decay: f64,
    updates: u64,
    /// The model's variables (sharing their storage), sorted by name.
    vars: Vec<(String, Tensor)>,
    /// The averages (own storage), parallel to `vars`.
    average: Vec<Tensor>,
}

impl WeightAverage {
    /// Starts the average at the current variables, `updates` steps into training (the decay's
    /// warm-up follows the step count, so a resume continues it exactly).
    pub(crate) fn new(vs: &VarStore, decay: f64, updates: u64) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let average = tch::no_grad(|| vars.iter().map(|(_, v)| v.detach().copy()).collect());
        Self { decay, updates, vars, average }
    }

    /// The decay of update number `t` (1-based): `min(decay, (1 + t) / (10 + t))`.
    pub(crate) fn decay_at(decay: f64, t: u64) -> f64 {
        decay.min((1.0 + t as f64) / (10.0 + t as f64))
    }

    /// Moves the average toward the variables after one optimiser step.
    pub(crate) fn update(&mut self) {
        self.updates += 1;
        let weight = 1.0 - Self::decay_at(self.decay, self.updates);
        tch::no_grad(|| {
            for ((_, var), avg) in self.vars.iter().zip(&mut self.average) {
                if avg.is_floating_point() {
                    let _ = avg.lerp_(var, weight);
                } else {
                    avg.copy_(var);
                }
            }
        });
    }

    /// Exchanges the model's variables and the average.
    pub(crate) fn swap(&mut self) {
        tch::no_grad(|| {
            for ((_, var), avg) in self.vars.iter_mut().zip(&mut self.average) {
                let raw = var.detach().copy();
                var.copy_(avg);
                avg.copy_(&raw);
            }
        });
    }

    /// The averages, named `{prefix}{variable}`, for the checkpoint.
    pub(crate) fn tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        self.vars
            .iter()
            .zip(&self.average)
            .map(|((n, _), a)| (format!("{prefix}{n}"), a.shallow_clone()))
            .collect()
    }

    /// Sets the averages from a checkpoint's `{prefix}{variable}` tensors.
    ///
    /// # Errors
    /// [`Error::Resume`](crate::Error::Resume) for a missing tensor or another shape.
    pub(crate) fn restore(&mut self, tensors: &[(String, Tensor)], prefix: &str) -> Result<()> {
        let targets: Vec<(String, Tensor)> =
            self.vars.iter().zip(&self.average).map(|((n, _), a)| (n.clone(), a.shallow_clone())).collect();
        copy_from_checkpoint(&targets, tensors, prefix, "average of")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, nn};

    #[test]
    fn the_average_follows_the_warmed_up_decay_and_swaps_both_ways() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut w = vs.root().zeros("w", &[2]);
        let mut ema = WeightAverage::new(&vs, 0.9, 0);
        // Step 1: d = min(0.9, 2/11); the average moves 9/11 of the way from 0 to 1.
        tch::no_grad(|| w.copy_(&Tensor::from_slice(&[1.0f32, 2.0])));
        ema.update();
        let avg = |e: &WeightAverage| Vec::<f32>::try_from(&e.average[0]).unwrap();
        let d1 = 2.0 / 11.0;
        assert!((avg(&ema)[0] - (1.0 - d1) as f32).abs() < 1e-6);
        assert!((avg(&ema)[1] - 2.0 * (1.0 - d1) as f32).abs() < 1e-6);
        // Late steps use the decay itself.
        assert_eq!(WeightAverage::decay_at(0.9, 1000), 0.9);
        assert!((WeightAverage::decay_at(0.999, 8) - 9.0 / 18.0).abs() < 1e-12);
        let expected = avg(&ema);
        ema.swap();
        assert_eq!(Vec::<f32>::try_from(&w).unwrap(), expected, "the model holds the average");
        assert_eq!(avg(&ema), vec![1.0, 2.0], "the raw weights are kept");
        ema.swap();
        assert_eq!(Vec::<f32>::try_from(&w).unwrap(), vec![1.0, 2.0]);
        // A checkpoint round trip.
        let saved = ema.tensors("ema/");
        assert_eq!(saved[0].0, "ema/w");
        let saved: Vec<(String, Tensor)> = saved.into_iter().map(|(n, t)| (n, t.copy())).collect();
        let mut other = WeightAverage::new(&vs, 0.9, 1);
        other.restore(&saved, "ema/").unwrap();
        assert_eq!(avg(&other), expected);
        let err = other.restore(&[], "ema/").unwrap_err().to_string();
        assert!(err.contains("no average of `w`"), "{err}");
    }
}
