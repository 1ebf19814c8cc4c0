//! Errors of dl-train.

/// Result of dl-train operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while training.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The loss became NaN or infinite.
    #[error("the loss is {loss} (not finite): training stopped; lower the learning rate")]
    NonFiniteLoss {
        /// The loss value.
        loss: f64,
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
    /// An error raised by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
