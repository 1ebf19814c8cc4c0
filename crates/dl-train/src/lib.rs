//! dlkit training.
//!
//! Now: the solvers of SPEC §5.1 ([`SolverParam`]: SGD with momentum, Adam; `weight_prior` as L2) and
//! [`train_classifier_batch`], one optimiser step on one classification batch returning `total_loss`.
//! Landing with the training issue: `train_dl_model_batch` for every method with gradient accumulation,
//! `train_dl_model` (epochs, strategies, evaluation, checkpoints, resume), the data pipeline.

#![warn(missing_docs)]

mod error;
mod solver;

pub use error::{Error, Result};
pub use solver::{SolverParam, TrainBatchResult, build_optimizer, train_classifier_batch};
