//! dlkit network architectures on libtorch (tch).
//!
//! - [`Network`] ([`network`]): what training, evaluation and inference see of a model of any method —
//!   forward pass to [`Outputs`], named [`Losses`], post-processing to DLResults in original image
//!   coordinates. [`ClassificationNet`] is the classification network on any [`Classifier`].
//! - [`Backbone`] ([`backbone`]): feature maps at strides 2^k of every family, for detection
//!   ([`DetectionNet`]), segmentation ([`SegmentationNet`]) and anomaly models.
//! - Families as serde configs: `compact` / `enhanced` ([`CompactConfig`]), ResNet-18/50
//!   ([`ResNetConfig`]) and MobileNetV2 ([`MobileNetV2Config`]) with torchvision's layer names,
//!   EfficientNet-Lite0/1/2, MobileNetV1, SqueezeNet 1.1; the device choice ([`device::select_device`]);
//!   weights as safetensors with shape-checked import ([`weights`]).

#![warn(missing_docs)]

pub mod anomaly;
pub mod backbone;
pub mod classification;
pub mod compact;
pub mod detection;
pub mod device;
pub mod efficientnet;
mod error;
pub mod fold;
pub mod guided;
pub mod mobilenet;
pub mod mobilenet_v1;
pub mod network;
pub mod resnet;
mod same;
pub mod segmentation;
pub mod squeezenet;
pub mod weights;

pub use anomaly::global::{GcNetwork, GlobalConfig};
pub use anomaly::student::{StudentConfig, StudentParams, StudentTeacherNet};
pub use anomaly::{AnomalyParams, MapKind, PatchCoreConfig, PatchCoreNet};
pub use backbone::{Backbone, Level};
pub use classification::ClassificationNet;
pub use compact::{CompactConfig, CompactNet};
pub use detection::tta::TestTimeAugmentation;
pub use detection::{
    AnchorAssignment, BoxLoss, Capacity, DetectionConfig, DetectionNet, DetectionParams, RotatedBoxLoss,
};
pub use fold::with_batch_norm_unfolded;
pub use network::{AsAny, Classes, Losses, MethodParams, Network, Outputs, Targets, upload};
pub use segmentation::{SegmentationConfig, SegmentationNet, SegmentationParams};

use guided::GuidedRecorder;
use tch::Tensor;

/// What every classifier of dl-nets offers: the last feature map (Grad-CAM's layer), the head on it,
/// the logits, and a forward pass that records its activations for guided backpropagation.
pub trait Classifier: std::fmt::Debug + Send {
    /// The last convolutional feature map.
    fn features_t(&self, xs: &Tensor, train: bool) -> Tensor;
    /// Class logits from a feature map of [`Classifier::features_t`].
    fn head_t(&self, features: &Tensor, train: bool) -> Tensor;
    /// Logits (eval mode) with every activation recorded for [`guided::guided_backprop`].
    fn forward_guided(&self, xs: &Tensor, rec: &GuidedRecorder) -> Tensor;
    /// Class logits `[N, classes]` for images `[N, C, H, W]`.
    fn logits_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.head_t(&self.features_t(xs, train), train)
    }
}

/// Implements [`Classifier`] and `ModuleT` (logits = head of the features) for a network.
macro_rules! classifier {
    ($net:ty, head: |$n:ident, $f:ident, $train:ident| $head:expr) => {
        impl Classifier for $net {
            fn features_t(&self, xs: &Tensor, train: bool) -> Tensor {
                <$net>::features_t(self, xs, train)
            }
            fn head_t(&self, $f: &Tensor, $train: bool) -> Tensor {
                let $n = self;
                $head
            }
            fn forward_guided(&self, xs: &Tensor, rec: &GuidedRecorder) -> Tensor {
                <$net>::forward_guided(self, xs, rec)
            }
        }

        impl tch::nn::ModuleT for $net {
            /// Class logits `[N, num_classes]` for images `[N, C, H, W]`.
            fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
                Classifier::logits_t(self, xs, train)
            }
        }
    };
}

classifier!(CompactNet, head: |n, f, _train| n.head(f));
classifier!(ResNet, head: |n, f, _train| n.head(f));
classifier!(MobileNetV2, head: |n, f, train| n.head_t(f, train));
classifier!(MobileNetV1, head: |n, f, train| n.head_t(f, train));
classifier!(EfficientNetLite, head: |n, f, train| n.head_t(f, train));
classifier!(SqueezeNet, head: |n, f, train| n.head_t(f, train));
pub use efficientnet::{EfficientNetLite, EfficientNetLiteConfig};
pub use error::{Error, Result};
pub use mobilenet::{MobileNetV2, MobileNetV2Config};
pub use mobilenet_v1::{MobileNetV1, MobileNetV1Config};
pub use resnet::{ResNet, ResNetConfig};
pub use squeezenet::{SqueezeNet, SqueezeNetConfig};
