//! Errors of dl-data.

use std::path::PathBuf;

/// Result of dl-data operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong with datasets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error on a file.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file that does not parse, or does not describe a dataset.
    #[error("{path}: invalid dataset JSON at line {line}, column {column}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Line of the error (1-based).
        line: usize,
        /// Column of the error (1-based).
        column: usize,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A file-format error from dl-io.
    #[error(transparent)]
    File(#[from] dl_io::Error),
}
