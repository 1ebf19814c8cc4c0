//! Errors of dl-data.

use dl_core::ImageId;
use std::path::PathBuf;

/// Result of dl-data operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong with datasets and samples.
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
    /// A JSON file that does not parse, or does not describe what was expected.
    #[error("{path}: invalid JSON at line {line}, column {column}")]
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
    /// An annotation file whose content is wrong (XML, text formats, COCO semantics).
    #[error("{path}: {message}")]
    Annotation {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line or element where known.
        message: String,
    },
    /// An image that cannot be read or decoded.
    #[error("cannot decode image {path}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: image::ImageError,
    },
    /// An image whose pixel type dlkit does not handle.
    #[error("image {path}: unsupported pixel type {kind}")]
    PixelType {
        /// The file.
        path: PathBuf,
        /// The pixel type found.
        kind: String,
    },
    /// A sample whose content is wrong: inconsistent box lists, an invalid box, an unknown class.
    #[error("sample {image_id}: {message}")]
    Sample {
        /// The sample's image id.
        image_id: ImageId,
        /// What is wrong.
        message: String,
    },
    /// A box the geometry refuses.
    #[error("sample {image_id}, box {index}")]
    InvalidBox {
        /// The sample's image id.
        image_id: ImageId,
        /// Index of the box in the sample.
        index: usize,
        /// The cause.
        #[source]
        source: dl_core::Error,
    },
    /// A reader or split parameter with a bad value.
    #[error("invalid parameter `{key}`: {message}")]
    Param {
        /// The parameter.
        key: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A dataset that already has splits, split again without `overwrite_split`.
    #[error(
        "the dataset is already split ({0} samples have a split): set overwrite_split (dlkit dataset split --overwrite) to split it again"
    )]
    AlreadySplit(usize),
    /// An image with no matching label image (segmentation reader).
    #[error("no label image matches {0} (pass ignore_unmatched_images to skip such images)")]
    Unmatched(PathBuf),
    /// Images and label images that match ambiguously.
    #[error("label image for {image} is ambiguous: {candidates:?}")]
    Ambiguous {
        /// The image.
        image: PathBuf,
        /// The label images that match.
        candidates: Vec<PathBuf>,
    },
    /// A file-format error from dl-io.
    #[error(transparent)]
    File(#[from] dl_io::Error),
}

impl Error {
    /// What went wrong, without the file or sample the error names (for messages that name them
    /// already), with the cause: "unsupported pixel type 3 channels …", "cannot decode: …", "reading
    /// image: …", "box 0: …".
    pub fn detail(&self) -> String {
        match self {
            Self::Io { action, source, .. } => format!("{action}: {source}"),
            Self::Image { source, .. } => format!("cannot decode: {source}"),
            Self::PixelType { kind, .. } => format!("unsupported pixel type {kind}"),
            Self::InvalidBox { index, source, .. } => format!("box {index}: {source}"),
            Self::Annotation { message, .. } => message.clone(),
            Self::Json { line, column, source, .. } => {
                format!("invalid JSON at line {line}, column {column}: {source}")
            }
            other => other.to_string(),
        }
    }
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { action, path, source }
    }

    pub(crate) fn annotation(path: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::Annotation { path: path.into(), message: message.into() }
    }

    pub(crate) fn json(path: impl Into<PathBuf>, source: serde_json::Error) -> Error {
        Error::Json { path: path.into(), line: source.line(), column: source.column(), source }
    }
}
