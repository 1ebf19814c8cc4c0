//! One model for every method: the [`Network`] trait that training, evaluation and inference see.
//!
//! A network turns images into [`Outputs`] (`forward_t`), outputs and [`Targets`] into named [`Losses`]
//! (`loss`), and outputs into DLResults in the original image coordinates (`postprocess`). The model owns
//! everything method-specific — anchors, target assignment, box coding, NMS — so the training loop only
//! sees named scalar losses and the evaluation only sees DLResults (as torchvision's detection models and
//! mmdetection's `loss` / `predict` modes).

use crate::{Classifier, Error, Result};
use dl_core::ClassId;
use dl_data::preprocess::{HostBatch, HostTargets, ImageBoxes, ImageMap};
use dl_data::{DLResult, ModelType};
use tch::{Device, Tensor};

/// What a network computed for a batch.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outputs {
    /// CL: class logits `[N, classes]`.
    Classification {
        /// The logits.
        logits: Tensor,
    },
    /// OD: per anchor (levels finest first, positions row by row, anchors innermost) class logits
    /// `[N, M, classes]` and box deltas `[N, M, 4 | 6]`.
    Detection {
        /// Class logits (sigmoid scores).
        class_logits: Tensor,
        /// Box deltas.
        box_deltas: Tensor,
        /// (height, width) of each pyramid level.
        level_shapes: Vec<(i64, i64)>,
        /// (height, width) of the network input.
        image_size: (i64, i64),
    },
    /// SE: class logits per pixel `[N, classes, H, W]` at the network input size.
    Segmentation {
        /// The logits.
        logits: Tensor,
    },
    /// AD (student–teacher): the standardised teacher features and the student's prediction
    /// `[N, D, h, w]`, with the (height, width) of the network input.
    StudentTeacher {
        /// The student's prediction.
        student: Tensor,
        /// The teacher's features.
        teacher: Tensor,
        /// (height, width) of the network input.
        image_size: (i64, i64),
        /// The Global Context model: the autoencoder's reconstruction of the teacher features.
        autoencoder: Option<Tensor>,
        /// The Global Context model: the student's prediction of the autoencoder's output.
        global_student: Option<Tensor>,
    },
    /// AD: anomaly maps `[N, 1, H, W]` at the network input size (≥ 0) and image scores `[N]`. The
    /// Global Context model: maps `[N, k, H, W]` and scores `[N, k]`, the combined map first, then the
    /// local and / or global one (see `StudentTeacherNet::map_kinds`).
    Anomaly {
        /// The maps.
        maps: Tensor,
        /// The scores.
        scores: Tensor,
    },
}

/// The ground truth of a batch on the network's device (or, for boxes, on the host: target assignment
/// runs per image).
#[derive(Debug)]
#[non_exhaustive]
pub enum Targets {
    /// No ground truth (inference).
    None,
    /// CL: class indices `[N]` (int64).
    Classification(Tensor),
    /// OD: per image, class indices, boxes and ignore flags (network coordinates).
    Detection(Vec<ImageBoxes>),
    /// SE: class index per pixel `[N, H, W]` (−1 ignored) and pixel weights `[N, H, W]`.
    Segmentation {
        /// Class indices (int64).
        labels: Tensor,
        /// Weights (float).
        weights: Tensor,
    },
    /// AD: 0 ok / 1 nok `[N]` and masks `[N, H, W]` (uint8).
    Anomaly {
        /// Labels.
        labels: Tensor,
        /// Masks.
        masks: Tensor,
    },
}

impl Targets {
    /// The targets of images `start .. start + len` (for gradient accumulation over chunks).
    pub fn narrow(&self, start: i64, len: i64) -> Targets {
        match self {
            Self::None => Self::None,
            Self::Classification(t) => Self::Classification(t.narrow(0, start, len)),
            Self::Detection(v) => Self::Detection(v[start as usize..(start + len) as usize].to_vec()),
            Self::Segmentation { labels, weights } => Self::Segmentation {
                labels: labels.narrow(0, start, len),
                weights: weights.narrow(0, start, len),
            },
            Self::Anomaly { labels, masks } => {
                Self::Anomaly { labels: labels.narrow(0, start, len), masks: masks.narrow(0, start, len) }
            }
        }
    }
}

/// Named loss components (each a scalar tensor, the mean over the batch); the total loss is their sum.
#[derive(Debug)]
pub struct Losses {
    /// (HALCON-style name, value), e.g. `("loss_cross_entropy", …)`.
    pub components: Vec<(&'static str, Tensor)>,
}

impl Losses {
    /// The sum of the components.
    pub fn total(&self) -> Tensor {
        let mut it = self.components.iter();
        let first = it.next().map_or_else(|| Tensor::from(0f32), |(_, t)| t.shallow_clone());
        it.fold(first, |acc, (_, t)| acc + t)
    }
}

/// The parameters of a method that can change after creation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MethodParams {
    /// OD post-processing and loss weights.
    Detection(crate::DetectionParams),
    /// SE loss weights.
    Segmentation(crate::SegmentationParams),
    /// AD thresholds.
    Anomaly(crate::anomaly::AnomalyParams),
    /// AD student–teacher training parameters and thresholds.
    StudentTeacher(crate::anomaly::student::StudentParams),
}

/// The classes of a model, parallel lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Classes {
    /// Class ids in the order of the network's outputs.
    pub ids: Vec<ClassId>,
    /// Their names.
    pub names: Vec<String>,
}

/// Access to a network's concrete type (for the methods whose fitting is not gradient training).
pub trait AsAny {
    /// The network as `Any`.
    fn as_any(&self) -> &dyn std::any::Any;
    /// The network as mutable `Any`.
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}

impl<T: std::any::Any> AsAny for T {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// A network of one method: forward pass, loss, post-processing. Object-safe; one per model.
pub trait Network: AsAny + std::fmt::Debug + Send {
    /// The method.
    fn model_type(&self) -> ModelType;
    /// The outputs for images `[N, C, H, W]` (in the network's layout; see
    /// [`crate::device::channels_last`]).
    fn forward_t(&self, images: &Tensor, train: bool) -> Outputs;
    /// The loss components of `outputs` against `targets`.
    ///
    /// # Errors
    /// [`Error::Targets`] for targets of another method; libtorch errors.
    fn loss(&self, outputs: &Outputs, targets: &Targets) -> Result<Losses>;
    /// One DLResult per image, in the original image coordinates given by `maps` (one per image: the map
    /// from the original image to the network input).
    ///
    /// # Errors
    /// [`Error::Targets`] for outputs of another method or a wrong number of maps; libtorch errors.
    fn postprocess(&self, outputs: &Outputs, maps: &[ImageMap], classes: &Classes) -> Result<Vec<DLResult>>;
    /// Inference: one DLResult per image of `images` (as [`Network::forward_t`] takes them), in the
    /// original coordinates given by `maps`. The forward pass and [`Network::postprocess`], unless the
    /// method also looks at transformed copies (a detector's `test_time_augmentation`).
    ///
    /// # Errors
    /// As [`Network::postprocess`].
    fn infer(&self, images: &Tensor, maps: &[ImageMap], classes: &Classes) -> Result<Vec<DLResult>> {
        self.postprocess(&self.forward_t(images, false), maps, classes)
    }
    /// Whether the variable `name` belongs to the method's head (trained at the full learning rate and
    /// kept trainable when the backbone is frozen).
    fn is_head_var(&self, name: &str) -> bool;
    /// Fine-tuning: with `frozen`, the backbone runs in inference mode without gradients while
    /// training (its weights and batch-norm statistics stay), and only the head learns.
    fn freeze_backbone(&mut self, frozen: bool);
    /// Replaces the method's settable parameters (post-processing, loss weights).
    ///
    /// # Errors
    /// [`Error::Targets`] for parameters of another method (or a method without any).
    fn set_method_params(&mut self, params: &MethodParams) -> Result<()> {
        Err(Error::Targets(format!("{params:?} for a {} network", self.model_type().as_str())))
    }
    /// How many train images the network measures before the first epoch (0: none): the
    /// student–teacher model standardises its teacher's features over good train images.
    fn statistics_images(&self) -> usize {
        0
    }
    /// Sets what [`Network::statistics_images`] asks for from batches of those train images
    /// (preprocessed, not augmented); stored in no-train variables, so checkpoints carry them.
    ///
    /// # Errors
    /// libtorch errors.
    fn fit_statistics(&mut self, _images: &[Tensor]) -> Result<()> {
        Ok(())
    }
    /// How many train images the network measures after every epoch (0: none): the Global Context
    /// model normalises its local and global maps by their quantiles on good images.
    fn epoch_statistics_images(&self) -> usize {
        0
    }
    /// Sets what [`Network::epoch_statistics_images`] asks for from batches of those train images
    /// (preprocessed, not augmented), without gradients; stored in no-train variables.
    ///
    /// # Errors
    /// libtorch errors.
    fn fit_epoch_statistics(&mut self, _images: &[Tensor]) -> Result<()> {
        Ok(())
    }
    /// The classifier behind a classification network (Grad-CAM, guided backpropagation).
    fn as_classifier(&self) -> Option<&dyn Classifier> {
        None
    }
    /// Whether the boxes of this network have no front (a rectangle2 detector with
    /// `ignore_direction`): the evaluation then takes orientation errors modulo π.
    fn ignores_direction(&self) -> bool {
        false
    }
}

/// Uploads a host batch: images `[N, C, H, W]` and the targets of its method.
///
/// # Errors
/// libtorch errors.
pub fn upload(batch: &HostBatch, device: Device) -> Result<(Tensor, Targets)> {
    let [n, c, h, w] = batch.shape.map(|v| v as i64);
    let images = Tensor::f_from_slice(&batch.images)?.f_reshape([n, c, h, w])?.f_to_device(device)?;
    let targets = match &batch.targets {
        HostTargets::None => Targets::None,
        HostTargets::Classification(v) => {
            Targets::Classification(Tensor::f_from_slice(v)?.f_to_device(device)?)
        }
        HostTargets::Detection(v) => Targets::Detection(v.clone()),
        HostTargets::Segmentation { labels, weights } => Targets::Segmentation {
            labels: Tensor::f_from_slice(labels)?.f_reshape([n, h, w])?.f_to_device(device)?,
            weights: Tensor::f_from_slice(weights)?.f_reshape([n, h, w])?.f_to_device(device)?,
        },
        HostTargets::Anomaly { labels, masks } => Targets::Anomaly {
            labels: Tensor::f_from_slice(labels)?.f_to_device(device)?,
            masks: Tensor::f_from_slice(masks)?.f_reshape([n, h, w])?.f_to_device(device)?,
        },
    };
    Ok((images, targets))
}

pub(crate) fn wrong_targets(what: &str, expected: &str) -> Error {
    Error::Targets(format!("{what}: expected {expected}"))
}
