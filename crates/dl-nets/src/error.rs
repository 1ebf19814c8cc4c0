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
    /// An error raised by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
