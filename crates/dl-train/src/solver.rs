//! Solvers (SGD with momentum, Adam) with their state exposed as named tensors, so that a training run
//! can be checkpointed and resumed to the same weights.

use crate::{Error, Result};
use tch::{Kind, Tensor, nn};

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

    /// The step size.
    pub fn learning_rate(&self) -> f64 {
        match *self {
            SolverParam::Sgd { learning_rate, .. } | SolverParam::Adam { learning_rate, .. } => learning_rate,
        }
    }

    /// The L2 weight decay.
    pub fn weight_prior(&self) -> f64 {
        match *self {
            SolverParam::Sgd { weight_prior, .. } | SolverParam::Adam { weight_prior, .. } => weight_prior,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            SolverParam::Sgd { .. } => "sgd",
            SolverParam::Adam { .. } => "adam",
        }
    }
}

/// An optimiser over the trainable variables of a VarStore (those with `requires_grad`, so frozen
/// layers are left alone). Same update rules as PyTorch's `SGD` (momentum, no dampening, L2 added to
/// the gradient) and `Adam` (bias-corrected). Its state is available as named tensors.
#[derive(Debug)]
pub struct Optimizer {
    vars: Vec<(String, Tensor)>,
    /// Per variable, the factor of the learning rate (1 unless a backbone learns more slowly).
    factors: Vec<f64>,
    /// SGD: one momentum buffer per variable; Adam: first then second moments.
    state: Vec<Tensor>,
    steps: u64,
    param: SolverParam,
}

impl Optimizer {
    /// An optimiser of `param` over the trainable variables of `vs`, with zero state.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] naming the parameter.
    pub fn new(vs: &nn::VarStore, param: SolverParam) -> Result<Self> {
        Self::with_factors(vs, param, |_| 1.0)
    }

    /// As [`Optimizer::new`], with the learning rate of each variable multiplied by `factor(name)`
    /// (e.g. a smaller one for a pretrained backbone).
    ///
    /// # Errors
    /// [`Error::InvalidParam`] naming the parameter, also for a factor outside [0, 1].
    pub fn with_factors(vs: &nn::VarStore, param: SolverParam, factor: impl Fn(&str) -> f64) -> Result<Self> {
        param.validate()?;
        let mut vars: Vec<(String, Tensor)> =
            vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let factors: Vec<f64> = vars.iter().map(|(n, _)| factor(n)).collect();
        if let Some(&f) = factors.iter().find(|f| !(0.0..=1.0).contains(*f)) {
            return Err(Error::InvalidParam {
                key: "backbone_learning_rate_factor",
                value: f,
                expected: "in [0, 1]",
            });
        }
        let copies = if matches!(param, SolverParam::Adam { .. }) { 2 } else { 1 };
        let state = (0..copies).flat_map(|_| vars.iter().map(|(_, t)| t.zeros_like())).collect();
        Ok(Self { vars, factors, state, steps: 0, param })
    }

    /// The current parameters.
    pub fn param(&self) -> SolverParam {
        self.param
    }

    /// Changes the parameters (learning-rate schedules and the like); the state is kept.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] for a bad value or a change of solver type during training.
    pub fn set_param(&mut self, param: SolverParam) -> Result<()> {
        param.validate()?;
        if param.kind() != self.param.kind() {
            return Err(Error::InvalidParam {
                key: "solver_type",
                value: f64::NAN,
                expected: "unchanged during training (the solver state would be lost)",
            });
        }
        self.param = param;
        Ok(())
    }

    /// Number of steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Zeroes the gradients of all variables.
    pub fn zero_grad(&mut self) {
        for (_, var) in &self.vars {
            let mut grad = var.grad();
            if grad.defined() {
                let _ = grad.detach_();
                let _ = grad.zero_();
            }
        }
    }

    /// One update with the accumulated gradients.
    pub fn step(&mut self) {
        let _guard = tch::no_grad_guard();
        self.steps += 1;
        let n = self.vars.len();
        for (i, (_, var)) in self.vars.iter_mut().enumerate() {
            let grad = var.grad();
            if !grad.defined() {
                continue;
            }
            let wd = self.param.weight_prior();
            let grad = if wd > 0.0 { &grad + &(&*var * wd) } else { grad };
            let factor = self.factors[i];
            match self.param {
                SolverParam::Sgd { learning_rate, momentum, .. } => {
                    let update = if momentum > 0.0 {
                        let buf = &mut self.state[i];
                        let _ = buf.g_mul_scalar_(momentum).g_add_(&grad);
                        buf.shallow_clone()
                    } else {
                        grad
                    };
                    let _ = var.g_add_(&(update * (-learning_rate * factor)));
                }
                SolverParam::Adam { learning_rate, beta1, beta2, epsilon, .. } => {
                    let t = self.steps as i32;
                    let m = &mut self.state[i];
                    let _ = m.g_mul_scalar_(beta1).g_add_(&(&grad * (1.0 - beta1)));
                    let m = m.shallow_clone();
                    let v = &mut self.state[n + i];
                    let _ = v.g_mul_scalar_(beta2).g_add_(&(&grad * &grad * (1.0 - beta2)));
                    let bc1 = 1.0 - beta1.powi(t);
                    let bc2 = 1.0 - beta2.powi(t);
                    let denom = (v.sqrt() / bc2.sqrt()) + epsilon;
                    let _ = var.g_add_(&((m / denom) * (-learning_rate * factor / bc1)));
                }
            }
        }
    }

    /// The state as named tensors (`<solver>.<i>.<variable>` and `steps`).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let n = self.vars.len().max(1);
        let mut out: Vec<(String, Tensor)> = self
            .state
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("{}.{}.{}", self.param.kind(), i / n, self.vars[i % n].0), t.copy()))
            .collect();
        out.push(("steps".into(), Tensor::from_slice(&[self.steps as f64]).to_kind(Kind::Float)));
        out
    }

    /// Restores the state saved by [`Optimizer::state_tensors`].
    ///
    /// # Errors
    /// [`Error::Resume`] naming a missing tensor or one of another shape.
    pub fn load_state(&mut self, tensors: &[(String, Tensor)]) -> Result<()> {
        let find = |name: &str| {
            tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| Error::Resume(format!("solver state `{name}` is missing")))
        };
        let n = self.vars.len().max(1);
        let mut loaded = Vec::with_capacity(self.state.len());
        for (i, t) in self.state.iter().enumerate() {
            let name = format!("{}.{}.{}", self.param.kind(), i / n, self.vars[i % n].0);
            let src = find(&name)?;
            if src.size() != t.size() {
                return Err(Error::Resume(format!(
                    "solver state `{name}` has shape {:?}, the model {:?}",
                    src.size(),
                    t.size()
                )));
            }
            loaded.push(src.to_device(t.device()));
        }
        let steps = find("steps")?.double_value(&[0]);
        tch::no_grad(|| {
            for (dst, src) in self.state.iter_mut().zip(loaded) {
                dst.copy_(&src);
            }
        });
        self.steps = steps as u64;
        Ok(())
    }
}

/// Builds the optimiser of `param` over the trainable variables of `vs`.
///
/// # Errors
/// [`Error::InvalidParam`] naming the parameter.
pub fn build_optimizer(vs: &nn::VarStore, param: SolverParam) -> Result<Optimizer> {
    Optimizer::new(vs, param)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn quadratic(param: SolverParam, steps: usize) -> Vec<f64> {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var_copy("w", &Tensor::from_slice(&[1.0f32, -2.0, 3.0]));
        let mut opt = Optimizer::new(&vs, param).unwrap();
        for _ in 0..steps {
            opt.zero_grad();
            (&w * &w).sum(Kind::Float).backward();
            opt.step();
        }
        Vec::<f64>::try_from(w.to_kind(Kind::Double)).unwrap()
    }

    /// Hand-computed updates of PyTorch's rules on f(w) = Σ w².
    #[test]
    fn updates_follow_pytorch_rules() {
        // SGD, momentum 0.5, lr 0.1: w1 = w − 0.1·2w = 0.8w; buf1 = 2w; g2 = 1.6w; buf2 = 0.5·2w + 1.6w =
        // 2.6w; w2 = 0.8w − 0.26w = 0.54w.
        let w = quadratic(SolverParam::Sgd { learning_rate: 0.1, momentum: 0.5, weight_prior: 0.0 }, 2);
        for (a, b) in w.iter().zip([0.54, -1.08, 1.62]) {
            assert!((a - b).abs() < 1e-6, "{w:?}");
        }
        // Weight prior 0.5 adds 0.5·w to the gradient: w1 = w − 0.1·2.5w = 0.75w.
        let w = quadratic(SolverParam::Sgd { learning_rate: 0.1, momentum: 0.0, weight_prior: 0.5 }, 1);
        assert!((w[0] - 0.75).abs() < 1e-6, "{w:?}");
        // Adam's first step moves every weight by lr (sign of the gradient), up to ε.
        let adam = SolverParam::Adam {
            learning_rate: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_prior: 0.0,
        };
        let w = quadratic(adam, 1);
        for (a, b) in w.iter().zip([0.9, -1.9, 2.9]) {
            assert!((a - b).abs() < 1e-6, "{w:?}");
        }
    }

    #[test]
    fn learning_rate_factors_scale_the_steps() {
        let vs = nn::VarStore::new(Device::Cpu);
        let a = (vs.root() / "backbone").var_copy("w", &Tensor::from_slice(&[1.0f32]));
        let b = (vs.root() / "head").var_copy("w", &Tensor::from_slice(&[1.0f32]));
        let sgd = SolverParam::Sgd { learning_rate: 0.1, momentum: 0.0, weight_prior: 0.0 };
        let mut opt =
            Optimizer::with_factors(&vs, sgd, |n| if n.starts_with("head") { 1.0 } else { 0.1 }).unwrap();
        opt.zero_grad();
        (&a * &a + &b * &b).sum(Kind::Float).backward();
        opt.step();
        // Gradient 2: the head moves by 0.2, the backbone by 0.02.
        assert!((a.double_value(&[0]) - 0.98).abs() < 1e-6 && (b.double_value(&[0]) - 0.8).abs() < 1e-6);
        assert!(Optimizer::with_factors(&vs, sgd, |_| 2.0).is_err());
    }

    #[test]
    fn state_round_trip_continues_identically() {
        let adam = SolverParam::Adam {
            learning_rate: 0.05,
            beta1: 0.9,
            beta2: 0.99,
            epsilon: 1e-8,
            weight_prior: 0.0,
        };
        let straight = quadratic(adam, 6);
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var_copy("w", &Tensor::from_slice(&[1.0f32, -2.0, 3.0]));
        let mut opt = Optimizer::new(&vs, adam).unwrap();
        for _ in 0..3 {
            opt.zero_grad();
            (&w * &w).sum(Kind::Float).backward();
            opt.step();
        }
        let saved = opt.state_tensors();
        let mut resumed = Optimizer::new(&vs, adam).unwrap();
        resumed.load_state(&saved).unwrap();
        assert_eq!(resumed.steps(), 3);
        for _ in 0..3 {
            resumed.zero_grad();
            (&w * &w).sum(Kind::Float).backward();
            resumed.step();
        }
        assert_eq!(Vec::<f64>::try_from(w.to_kind(Kind::Double)).unwrap(), straight);
        assert!(resumed.load_state(&saved[1..]).is_err());
    }

    /// The libtorch smoke test: a small conv net, forward and backward on CPU, and the loss falls over
    /// 20 SGD steps on a fixed batch.
    #[test]
    fn sgd_steps_reduce_the_loss_on_a_fixed_batch() {
        use dl_nets::CompactConfig;
        use tch::nn::ModuleT;
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
            .map(|_| {
                opt.zero_grad();
                let loss = net.forward_t(&images, true).cross_entropy_for_logits(&labels);
                loss.backward();
                opt.step();
                loss.double_value(&[])
            })
            .collect();
        assert!(losses[19] < 0.75 * losses[0], "loss did not fall: {losses:?}");
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
