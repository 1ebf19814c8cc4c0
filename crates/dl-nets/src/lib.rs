//! dlkit network architectures on libtorch (tch).
//!
//! Now: the device choice ([`device::select_device`]) and the `compact` classifier ([`CompactConfig`]),
//! a small all-convolutional net with global pooling and no fully connected layer. Landing with the
//! models issue: `enhanced`, ResNet-18/50 and MobileNetV2 with torchvision names, detection,
//! segmentation and anomaly architectures, host-batch upload and inference post-processing.

#![warn(missing_docs)]

pub mod compact;
pub mod device;
mod error;

pub use compact::{CompactConfig, CompactNet};
pub use error::{Error, Result};
