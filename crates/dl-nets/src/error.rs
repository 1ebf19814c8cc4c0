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
    /// Targets or outputs of another method than the network's, or of the wrong size.
    #[error("{0}")]
    Targets(String),
    /// An error raised by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// The checks every classifier configuration shares: at least one class and one input channel, and a
/// dropout (when the network has one) in [0, 1).
///
/// # Errors
/// [`Error::InvalidConfig`] naming `config` and the key.
pub(crate) fn check_classifier(
    config: &'static str,
    num_classes: i64,
    in_channels: i64,
    dropout: Option<f64>,
) -> Result<()> {
    let bad = |key, value: String, expected| Err(Error::InvalidConfig { config, key, value, expected });
    if num_classes < 1 {
        return bad("num_classes", num_classes.to_string(), "at least 1");
    }
    if in_channels < 1 {
        return bad("in_channels", in_channels.to_string(), "at least 1");
    }
    if let Some(d) = dropout.filter(|d| !(0.0..1.0).contains(d)) {
        return bad("dropout", d.to_string(), "in [0, 1)");
    }
    Ok(())
}
