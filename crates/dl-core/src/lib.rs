//! dlkit vocabulary: ids, splits, boxes and their geometry, in HALCON's conventions.
//!
//! Conventions (SPEC §1): pixel (r, c) is centred on integer coordinates and covers
//! [r−0.5, r+0.5] × [c−0.5, c+0.5]; row comes before column; geometry is computed in f64.
//! This crate has no IO and no libtorch.

#![warn(missing_docs)]

mod error;
pub mod fusion;
mod ids;
pub mod nms;
pub mod polygon;
mod rect1;
pub mod rect2;
pub mod rng;
pub mod rotated_iou;

pub use error::{Error, Result};
pub use fusion::{Fuse, fuse_views};
pub use ids::{ClassId, ImageId, Split};
pub use nms::{Detection, Overlap, nms};
pub use rect1::Rect1;
pub use rect2::{Point, Rect2, normalize_phi, normalize_phi_no_direction};
pub use rng::Rng;
pub use rotated_iou::iou_rect1_rect2;
