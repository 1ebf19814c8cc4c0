//! Errors of dl-core.

/// Result of dl-core operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when building core values.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    /// A box whose coordinates do not describe a positive area.
    #[error("invalid {kind} box {values:?}: {reason}")]
    InvalidBox {
        /// `rectangle1` or `rectangle2`.
        kind: &'static str,
        /// The coordinates as given.
        values: Vec<f64>,
        /// Why they were refused.
        reason: &'static str,
    },
    /// A class id outside 0 … 65534.
    #[error("class id {0} is out of range: expected 0 ..= 65534")]
    ClassIdOutOfRange(i64),
    /// A split name other than `train`, `validation`, `test`.
    #[error("unknown split `{0}`: expected `train`, `validation` or `test`")]
    UnknownSplit(String),
}
