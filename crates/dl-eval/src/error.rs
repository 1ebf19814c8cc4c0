//! Errors of dl-eval.

/// Result of dl-eval operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when evaluating.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    /// A class index outside the matrix.
    #[error("class index {index} is out of range for {num_classes} classes ({role})")]
    ClassOutOfRange {
        /// The index given.
        index: usize,
        /// Number of classes of the matrix.
        num_classes: usize,
        /// `predicted` or `ground truth`.
        role: &'static str,
    },
    /// Input the evaluation cannot use (NaN values, duplicate ids, empty parameter lists).
    #[error("invalid evaluation input: {0}")]
    InvalidInput(String),
    /// A plot that could not be drawn or written.
    #[error("cannot draw the plot {0}")]
    Plot(String),
    /// Two accumulators of different sizes.
    #[error("cannot merge confusion matrices of {0} and {1} classes")]
    SizeMismatch(usize, usize),
}
