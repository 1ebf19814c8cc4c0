//! dlkit network architectures on libtorch (tch).
//!
//! Now: the device choice ([`device::select_device`]); classifiers as serde configs — `compact`
//! ([`CompactConfig`], all-convolutional, no fully connected layer), ResNet-18/50 ([`ResNetConfig`])
//! and MobileNetV2 ([`MobileNetV2Config`]) with torchvision's layer names (checked against torchvision's
//! logits); weights as safetensors with shape-checked import ([`weights`]). Still to come: `enhanced`,
//! detection, segmentation and anomaly architectures, inference post-processing.

#![warn(missing_docs)]

pub mod compact;
pub mod device;
pub mod efficientnet;
mod error;
pub mod guided;
pub mod mobilenet;
pub mod mobilenet_v1;
pub mod resnet;
mod same;
pub mod squeezenet;
pub mod weights;

pub use compact::{CompactConfig, CompactNet};
pub use efficientnet::{EfficientNetLite, EfficientNetLiteConfig};
pub use error::{Error, Result};
pub use mobilenet::{MobileNetV2, MobileNetV2Config};
pub use mobilenet_v1::{MobileNetV1, MobileNetV1Config};
pub use resnet::{ResNet, ResNetConfig};
pub use squeezenet::{SqueezeNet, SqueezeNetConfig};
