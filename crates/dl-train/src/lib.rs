//! dlkit training (SPEC §6) and model evaluation (SPEC §7).
//!
//! - [`SolverParam`] and [`Optimizer`]: SGD with momentum and Adam (PyTorch's update rules, `weight_prior`
//!   as L2), with their state as named tensors so runs can be resumed.
//! - [`TrainableModel`]: what training needs of a model (its `dl_nets::Network`, typed
//!   [`ModelParams`]); `dlkit::Model` implements it.
//! - [`train_dl_model_batch`]: one step on a batch of any method (upload → forward → loss → backward),
//!   `batch_size_multiplier` as gradient accumulation.
//! - [`train_dl_model`] with [`TrainParam`] (`create_dl_train_param`): seeded epochs, change and
//!   serialization strategies, augmentation, evaluation, the best model, an exponential moving average
//!   of the weights, resume, NaN stop, progress bar, JSON log and training curves.
//! - [`evaluate_dl_model`]: dl-eval's one `Evaluator` on the samples of a dataset.
//! - [`pipeline`]: background batch preparation with a bounded queue.
//!
//! The loop is method-generic: a model type plugs in through its network's loss and post-processing.

#![warn(missing_docs)]

mod ema;
mod error;
mod evaluate;
mod model;
mod param;
pub mod pipeline;
pub mod progress;
mod solver;
mod train;

pub use dl_eval::{Evaluation, EvaluatorParams};
pub use error::{Error, Result};
pub use evaluate::{EvalParams, evaluate_dl_model, visit_results};
pub use model::{
    ModelError, ModelParams, SolverType, TrainBatchResult, TrainableModel, batch_sizes, model_optimizer,
    solver_param, train_dl_model_batch,
};
pub use param::{ChangeStrategy, SerializationStrategy, TrainParam};
pub use solver::{Optimizer, SolverParam, build_optimizer};
pub use train::{
    BestRecord, CheckpointSummary, EpochRecord, StartEpoch, TrainFiles, TrainingLog, good_train_samples,
    inspect_checkpoint, train_dl_model, validation_holds_ok_and_nok, write_curves,
};
