//! dlkit datasets: the DLDataset dictionary and its sample entries, with HALCON's key names.
//!
//! A [`DLDataset`] holds paths, not pixels: `image_dir`, `class_names` / `class_ids` and one
//! [`SampleEntry`] per image. It is stored as JSON with HALCON's keys; keys dlkit does not know are kept
//! in `extra` and written back, so nothing a user stored is lost. Writes are atomic (dl-io).
//!
//! Landing with later issues: the readers (folders, COCO, VOC, YOLO, DOTA, labelme, segmentation,
//! anomaly), `split_dl_dataset`, DLSample generation, preprocessing, augmentation and sample files.

#![warn(missing_docs)]

mod dataset;
mod error;

pub use dataset::{AnomalyLabel, DLDataset, SampleEntry};
pub use error::{Error, Result};
