//! Segmentation models (`type = segmentation`): creation on any backbone — from scratch or pretrained —
//! with the SE preprocessing (ignore classes, background merge) carried in the model, and the SE
//! parameters (SPEC §5.2 SE).

use crate::Result;
use crate::backbone::{BackboneChoice, param_error};
use crate::model::{MethodConfig, Model, ModelDescription, ModelParams};
use dl_core::ClassId;
use dl_data::ModelType;
use dl_nets::{SegmentationConfig, SegmentationParams};
use serde_json::{Value, json};
use std::path::Path;
use tch::Device;

/// The SE parameters of a segmentation model: `backbone` and `decoder_channels` fix the architecture,
/// `dice_loss_weight` can be set; `ignore_class_ids`, `set_background_id` and `class_ids_background`
/// are the preprocessing's (settable through `preprocess_param`).
pub const SEGMENTATION_PARAM_NAMES: &[&str] = &[
    "decoder_channels",
    "dice_loss_weight",
    "ignore_class_ids",
    "set_background_id",
    "class_ids_background",
];

/// How to build a segmentation model.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmenterOptions {
    /// Decoder channels at strides ≥ 4 (default 64).
    pub decoder_channels: i64,
    /// Loss parameters (soft-Dice weight; default off).
    pub params: SegmentationParams,
    /// Label values whose pixels are left out of loss and measures (not classes of the model; e.g. 255).
    pub ignore_class_ids: Vec<i64>,
    /// The class the `class_ids_background` classes are merged into.
    pub set_background_id: Option<i64>,
    /// Classes merged into `set_background_id` by the preprocessing.
    pub class_ids_background: Vec<i64>,
}

impl Default for SegmenterOptions {
    fn default() -> Self {
        Self {
            decoder_channels: SegmentationConfig::new(2).decoder_channels,
            params: SegmentationParams::default(),
            ignore_class_ids: Vec::new(),
            set_background_id: None,
            class_ids_background: Vec::new(),
        }
    }
}

fn class_ids(name: &str, ids: &[i64]) -> Result<Vec<ClassId>> {
    ids.iter().map(|&i| ClassId::new(i).map_err(|e| param_error(name, e.to_string()))).collect()
}

impl Model {
    /// A segmentation model on `backbone` — an architecture name (`compact`, `enhanced`, `resnet18`, …,
    /// trained from scratch) or a pretrained model (`pretrained_dl_classifier_…`, its ImageNet weights
    /// loaded into the backbone; `weights` overrides the cached file) — for the classes, at the network
    /// input size (at least 32×32).
    ///
    /// # Errors
    /// [`Error::Param`](crate::Error::Param) naming the key: unknown backbone, classes, ignore classes
    /// that are classes, a background id that is not, an input smaller than 32×32, a pretrained backbone
    /// with other than 3 channels, missing or altered pretrained weights.
    pub fn create_segmenter(
        backbone: &str,
        weights: Option<&Path>,
        class_names: &[String],
        class_ids_: &[i64],
        size: (usize, usize, usize),
        options: &SegmenterOptions,
    ) -> Result<Self> {
        let choice =
            BackboneChoice::new(backbone, weights, ModelType::Segmentation, (class_names, class_ids_), size)?;
        let mut preprocess = choice.preprocess.clone();
        preprocess.ignore_class_ids = class_ids("ignore_class_ids", &options.ignore_class_ids)?;
        preprocess.set_background_id = class_ids("set_background_id", options.set_background_id.as_slice())?;
        preprocess.class_ids_background = class_ids("class_ids_background", &options.class_ids_background)?;
        preprocess.validate()?;
        let description = ModelDescription {
            method: MethodConfig::Segmentation {
                backbone: choice.architecture.clone(),
                pretrained: choice.pretrained_name(),
                segmenter: SegmentationConfig {
                    num_classes: class_ids_.len() as i64,
                    decoder_channels: options.decoder_channels,
                },
                params: options.params.clone(),
            },
            class_ids: class_ids_.to_vec(),
            class_names: class_names.to_vec(),
            preprocess,
            params: ModelParams::default(),
        };
        let model = Model::from_description(description, Device::Cpu)?;
        choice.import_into(model.var_store(), &[dl_nets::segmentation::HEAD_PREFIX])?;
        Ok(model)
    }

    /// An SE parameter; `None` for a name that is not one.
    pub(crate) fn get_segmentation_param(&self, name: &str) -> Option<Result<Value>> {
        if !SEGMENTATION_PARAM_NAMES.contains(&name) {
            return None;
        }
        let d = self.description();
        let MethodConfig::Segmentation { segmenter, params, .. } = &d.method else {
            return Some(Err(param_error(
                name,
                format!("is a segmentation parameter; this is a {} model", d.model_type().as_str()),
            )));
        };
        let p = &d.preprocess;
        let ids = |v: &[ClassId]| json!(v.iter().map(|c| c.get()).collect::<Vec<_>>());
        Some(Ok(match name {
            "decoder_channels" => json!(segmenter.decoder_channels),
            "dice_loss_weight" => json!(params.dice_loss_weight),
            "ignore_class_ids" => ids(&p.ignore_class_ids),
            "set_background_id" => ids(&p.set_background_id),
            _ => ids(&p.class_ids_background),
        }))
    }

    /// Sets an SE parameter; `None` for a name that is not one.
    pub(crate) fn set_segmentation_param(&mut self, name: &str, value: &Value) -> Option<Result<()>> {
        if !SEGMENTATION_PARAM_NAMES.contains(&name) {
            return None;
        }
        Some(self.set_segmentation_param_inner(name, value))
    }

    fn set_segmentation_param_inner(&mut self, name: &str, value: &Value) -> Result<()> {
        let model_type = self.description().model_type();
        let MethodConfig::Segmentation { params, .. } = &mut self.description_mut().method else {
            return Err(param_error(
                name,
                format!("is a segmentation parameter; this is a {} model", model_type.as_str()),
            ));
        };
        match name {
            "dice_loss_weight" => {
                let w = value
                    .as_f64()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| param_error(name, format!("{value}: expected a number ≥ 0")))?;
                let mut p = params.clone();
                p.dice_loss_weight = w;
                *params = p.clone();
                self.network_mut().set_method_params(&dl_nets::MethodParams::Segmentation(p))?;
                Ok(())
            }
            "decoder_channels" => {
                Err(param_error(name, "fixes the architecture: set it when creating the model"))
            }
            _ => {
                let mut p = self.description().preprocess.clone();
                let ids: Vec<i64> = serde_json::from_value(value.clone())
                    .map_err(|_| param_error(name, format!("{value}: expected a list of class ids")))?;
                let ids = class_ids(name, &ids)?;
                match name {
                    "ignore_class_ids" => p.ignore_class_ids = ids,
                    "set_background_id" => p.set_background_id = ids,
                    _ => p.class_ids_background = ids,
                }
                self.set_preprocess_param(p)
            }
        }
    }
}
