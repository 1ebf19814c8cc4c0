//! dlkit datasets: the DLDataset dictionary, readers for every common format, the stratified split, and
//! DLSamples with decoded images.
//!
//! A [`DLDataset`] holds paths, not pixels: `image_dir`, `class_names` / `class_ids` and one
//! [`SampleEntry`] per image. It is stored as JSON with HALCON's keys; keys dlkit does not know are kept
//! in `extra` and written back, so nothing a user stored is lost. Writes are atomic (dl-io).
//!
//! [`preprocess`] brings samples to the network: parameters, resizing and normalisation, sample files,
//! segmentation weights, augmentation and host batches.

#![warn(missing_docs)]

mod boxes;
mod dataset;
mod error;
mod image;
mod model_type;
pub mod preprocess;
pub mod read;
mod result;
mod sample;
mod split;
pub mod stats;
pub mod tile;
mod validate;

pub use boxes::InstanceType;
pub use dataset::{AnomalyLabel, DLDataset, Extra, IGNORE_CLASS_IDS, SampleEntry};
pub use error::{Error, Result};
pub use image::{Domain, HostImage, LabelImage, MAX_IMAGE_DECODE_BYTES, class_index_table, write_png_atomic};
pub use model_type::ModelType;
pub use result::DLResult;
pub use sample::{
    Boxes, DLSample, SampleSelector, find_dl_samples, gen_dl_samples, gen_dl_samples_from_images,
};
pub use split::{SplitParams, split_dl_dataset, split_from_folders};
pub use tile::{TileParams, tile_dl_dataset};
pub use validate::Problem;
