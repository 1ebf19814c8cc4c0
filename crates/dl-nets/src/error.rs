//! Errors of dl-nets.

/// Result of dl-nets operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when building or running networks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An architecture configuration with a bad value.
    #[error("invalid {config} configuration: `{key}` = {value}: {expected}")]
    InvalidConfig {
        /// The configuration type.
        config: &'static str,
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is expected.
        expected: &'static str,
    },
    /// A device name that is not `cpu`, `cuda` or `cuda:N`, or a CUDA device that is not present.
    #[error("device `{name}`: {reason}")]
    Device {
        /// The name given.
        name: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Weight bytes that cannot be read or written.
    #[error("weights: {0}")]
    Weights(String),
    /// A weight tensor whose shape does not fit the architecture.
    #[error("weight `{name}`: the architecture expects shape {expected:?}, the file has {found:?}")]
    WeightShape {
        /// Tensor name.
        name: String,
        /// Shape of the architecture.
        expected: Vec<i64>,
        /// Shape in the file.
        found: Vec<i64>,
    },
    /// A weight the architecture needs is not in the file.
    #[error("weight `{0}` is missing from the file")]
    MissingWeight(String),
    /// A weight in the file that the architecture does not have.
    #[error("weight `{0}` in the file does not belong to this architecture")]
    UnexpectedWeight(String),
    /// An error raised by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
