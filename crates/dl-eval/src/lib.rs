//! dlkit evaluation measures (SPEC §7).
//!
//! Now: the classification confusion matrix (rows = predicted class, columns = ground-truth class) and
//! top-1 error, as a streaming accumulator. Landing with the evaluation issue: top-k, precision / recall
//! / F-score, COCO-style detection AP, segmentation IoU, anomaly measures and the PNG plots.

#![warn(missing_docs)]

pub mod coco_files;
mod confusion;
pub mod detection;
mod error;

pub use confusion::ConfusionMatrix;
pub use error::{Error, Result};
