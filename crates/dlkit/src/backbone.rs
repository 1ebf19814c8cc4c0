//! Backbones of the dense methods (detection, segmentation): an architecture trained from scratch or
//! a pretrained classifier's ImageNet weights, with the preprocessing that goes with it.

use crate::model::Architecture;
use crate::pretrained::PretrainedBackbone;
use crate::{Error, Result};
use dl_data::ModelType;
use dl_data::preprocess::{DLPreprocessParam, NormalizationType};
use std::path::Path;
use tch::nn;

pub(crate) fn param_error(name: &str, message: impl Into<String>) -> Error {
    Error::Param { name: name.into(), message: message.into() }
}

/// A backbone chosen by name, with the model's starting preprocessing.
pub(crate) struct BackboneChoice {
    /// The family (its classification head is built but not used).
    pub(crate) architecture: Architecture,
    /// The preprocessing: the pretrained model's normalisation, `constant_values` (ImageNet) for 3
    /// channels from scratch, else `none`.
    pub(crate) preprocess: DLPreprocessParam,
    /// The pretrained weights, if `pretrained_dl_classifier_…`.
    pub(crate) pretrained: Option<(String, PretrainedBackbone)>,
}

impl BackboneChoice {
    /// `backbone` — an architecture name (`compact`, `enhanced`, `resnet18`, …) or a pretrained model
    /// (`pretrained_dl_classifier_…`, weights from `weights` or the cache) — for a `model_type` model
    /// with classes `class_names` / `class_ids` at `width` × `height` × `channels`.
    ///
    /// # Errors
    /// [`Error::Param`] naming the key: classes, unknown backbone, a pretrained backbone with other
    /// than 3 channels, missing or altered pretrained weights.
    pub(crate) fn new(
        backbone: &str,
        weights: Option<&Path>,
        model_type: ModelType,
        (class_names, class_ids): (&[String], &[i64]),
        (width, height, channels): (usize, usize, usize),
    ) -> Result<Self> {
        if class_names.is_empty() || class_names.len() != class_ids.len() {
            return Err(param_error(
                "class_names",
                format!("{} names for {} ids (at least one class)", class_names.len(), class_ids.len()),
            ));
        }
        let mut preprocess = DLPreprocessParam::new(model_type, width, height, channels)?;
        let pretrained = crate::pretrained::is_pretrained(backbone)
            .then(|| crate::pretrained::pretrained_backbone(backbone, weights))
            .transpose()?;
        let arch_name = match &pretrained {
            Some(p) => {
                if channels != 3 {
                    return Err(param_error(
                        "image_num_channels",
                        format!("{backbone} takes 3 channels, not {channels}"),
                    ));
                }
                preprocess.normalization_type = NormalizationType::ConstantValues;
                preprocess.mean_values_normalization = Some(p.mean.to_vec());
                preprocess.deviation_values_normalization = Some(p.std.to_vec());
                p.architecture
            }
            None => {
                if channels == 3 {
                    preprocess.normalization_type = NormalizationType::ConstantValues;
                }
                backbone
            }
        };
        let mut architecture = Architecture::by_name(arch_name, 1, channels as i64).map_err(|_| {
            param_error(
                "backbone",
                format!(
                    "`{backbone}`: expected compact, enhanced, resnet18, resnet50, mobilenet_v2, \
                     efficientnet_lite0/1/2, squeezenet, mobilenet_v1 or one of {}",
                    crate::pretrained_names().join(", ")
                ),
            )
        })?;
        // A detector's anchors sit on the `stride · i` grid: TensorFlow's "same" padding would put its
        // stride-16 features 15 px off it (on deepforest, EfficientNet-Lite0 with its maps scaled: YELL
        // AP@0.5 0.298 with "same", 0.487 symmetric).
        if model_type == ModelType::Detection {
            match &mut architecture {
                Architecture::EfficientnetLite(c) => c.symmetric_padding = true,
                Architecture::MobilenetV1(c) => c.symmetric_padding = true,
                _ => {}
            }
        }
        Ok(Self { architecture, preprocess, pretrained: pretrained.map(|p| (backbone.to_owned(), p)) })
    }

    /// The factor a detector's pyramid multiplies the backbone's maps by: the pretrained weights'
    /// (EfficientNet-Lite's and SqueezeNet's maps are an order of magnitude larger than MobileNetV2's),
    /// 1 from scratch.
    pub(crate) fn feature_scale(&self) -> f64 {
        self.pretrained.as_ref().map_or(1.0, |(_, p)| p.feature_scale)
    }

    /// The pretrained model's name, if any.
    pub(crate) fn pretrained_name(&self) -> Option<String> {
        self.pretrained.as_ref().map(|(n, _)| n.clone())
    }

    /// Loads the pretrained weights into `vs`: every backbone tensor, none of its classification head
    /// or of the method's `heads` (variable prefixes).
    ///
    /// # Errors
    /// [`Error::Param`] for weights that do not fit the backbone (naming the tensor).
    pub(crate) fn import_into(&self, vs: &nn::VarStore, heads: &[&str]) -> Result<()> {
        let Some((name, p)) = &self.pretrained else { return Ok(()) };
        let mut except = vec![crate::model::head_prefix(&self.architecture)];
        except.extend_from_slice(heads);
        dl_nets::weights::import_except(vs, &p.bytes, &except)
            .map_err(|e| param_error("backbone", format!("{name}: {e}")))
    }
}

/// Builds the backbone of `architecture` under `root`.
///
/// # Errors
/// Configuration errors of dl-nets.
pub(crate) fn build(architecture: &Architecture, root: &nn::Path) -> Result<Box<dyn dl_nets::Backbone>> {
    Ok(match architecture {
        Architecture::Compact(c) => Box::new(c.build(root)?),
        Architecture::Resnet(c) => Box::new(c.build(root)?),
        Architecture::MobilenetV2(c) => Box::new(c.build(root)?),
        Architecture::EfficientnetLite(c) => Box::new(c.build(root)?),
        Architecture::Squeezenet(c) => Box::new(c.build(root)?),
        Architecture::MobilenetV1(c) => Box::new(c.build(root)?),
    })
}

/// The `backbone` parameter's value: the pretrained model's name, else the architecture's.
pub(crate) fn backbone_name(architecture: &Architecture, pretrained: Option<&String>) -> serde_json::Value {
    match pretrained {
        Some(p) => serde_json::json!(p),
        None => serde_json::to_value(architecture).unwrap_or_default()["architecture"].clone(),
    }
}
