//! Errors of dl-train.

/// Result of dl-train operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while training or evaluating.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The loss became NaN or infinite.
    #[error(
        "the loss is {loss} (not finite){}: training stopped, the files of the last finished epoch are kept; lower the learning rate",
        epoch.map(|e| format!(" at epoch {e:.3}")).unwrap_or_default()
    )]
    NonFiniteLoss {
        /// The loss value.
        loss: f64,
        /// The fractional epoch, within `train_dl_model`.
        epoch: Option<f64>,
    },
    /// A solver parameter out of range.
    #[error("invalid solver parameter `{key}` = {value}: {expected}")]
    InvalidParam {
        /// The key.
        key: &'static str,
        /// The value.
        value: f64,
        /// What is expected.
        expected: &'static str,
    },
    /// A train or evaluation parameter, or a dataset that does not fit.
    #[error("`{key}`: {message}")]
    Param {
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Something not implemented for this method yet.
    #[error("{0}")]
    Unsupported(String),
    /// A checkpoint that cannot be resumed from.
    #[error("resume: {0}")]
    Resume(String),
    /// An error of the model (parameters, writing).
    #[error("model: {0}")]
    Model(String),
    /// Reading or preprocessing samples.
    #[error(transparent)]
    Data(#[from] dl_data::Error),
    /// Computing measures or plots.
    #[error(transparent)]
    Eval(#[from] dl_eval::Error),
    /// Files.
    #[error(transparent)]
    Io(#[from] dl_io::Error),
    /// Weights.
    #[error(transparent)]
    Nets(#[from] dl_nets::Error),
    /// An error raised by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
