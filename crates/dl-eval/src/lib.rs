//! dlkit evaluation measures (SPEC §7).
//!
//! One [`Evaluator`] for every method (`new(model_type, classes, params)`, `add(sample, result)`,
//! `finish()`), used by training, `dlkit evaluate model` and the results-file evaluations alike, over
//! streaming accumulators (update per batch, merge across threads, compute once) for classification
//! ([`ClassificationAccumulator`]: top-k error, precision / recall / F-score, confusion matrices with
//! rows = predicted, columns = ground truth) and segmentation ([`SegmentationAccumulator`]); COCO-style
//! detection evaluation for rectangle1 and rectangle2 boxes ([`detection`], equal to pycocotools);
//! anomaly measures ([`anomaly`]: AUROC, PRO, HALCON's thresholds); PNG plots ([`plots`]).

#![warn(missing_docs)]

pub mod anomaly;
mod classification;
pub mod coco_files;
mod confusion;
pub mod detailed;
pub mod detection;
mod error;
pub mod evaluator;
pub mod plots;
mod segmentation;

pub use classification::{ClassificationAccumulator, ClassificationEvaluation};
pub use confusion::ConfusionMatrix;
pub use error::{Error, Result};
pub use evaluator::{
    AnomalyMeasures, DetectionMeasures, Evaluation, Evaluator, EvaluatorParams, comparison_measure,
};
pub use segmentation::{SegmentationAccumulator, SegmentationEvaluation};
