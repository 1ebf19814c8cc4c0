//! Detection models (`type = detection`): creation on any backbone — from scratch or pretrained — and
//! HALCON's OD parameters (SPEC §5.2): the architecture ones readable, the post-processing ones and the
//! loss weights also settable.

use crate::model::{MethodConfig, Model, ModelDescription, ModelParams};
use crate::{Error, Result};
use dl_data::{InstanceType, ModelType};
use dl_nets::{Capacity, DetectionConfig, DetectionParams};
use serde_json::{Value, json};
use std::path::Path;
use tch::Device;

/// The OD parameters of a detection model (HALCON's names): first those that fix the architecture,
/// then the post-processing parameters and loss weights.
pub const DETECTION_PARAM_NAMES: &[&str] = &[
    "backbone",
    "instance_type",
    "min_level",
    "max_level",
    "anchor_num_subscales",
    "anchor_aspect_ratios",
    "anchor_angles",
    "capacity",
    "ignore_direction",
    "class_ids_no_orientation",
    "rotated_box_loss",
    "box_loss",
    "anchor_assignment",
    "max_num_detections",
    "max_overlap",
    "max_overlap_class_agnostic",
    "min_confidence",
    "bbox_heads_weight",
    "class_heads_weight",
    "test_time_augmentation",
];

/// How many of [`DETECTION_PARAM_NAMES`] fix the architecture (set at creation only).
const NUM_ARCHITECTURE_PARAMS: usize = 13;

/// How to build a detector (HALCON's defaults: rectangle1, levels 2 … 4, 3 subscales, aspect ratios
/// 1, 2, 0.5, angle 0, capacity high, and the default post-processing).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorOptions {
    /// rectangle1 or rectangle2.
    pub instance_type: InstanceType,
    /// Finest level.
    pub min_level: i64,
    /// Coarsest level.
    pub max_level: i64,
    /// Anchor sizes per level.
    pub anchor_num_subscales: usize,
    /// Anchor aspect ratios (height / width).
    pub anchor_aspect_ratios: Vec<f64>,
    /// rectangle2: anchor angles (radians).
    pub anchor_angles: Vec<f64>,
    /// Head width and depth.
    pub capacity: Capacity,
    /// rectangle2: boxes without a front.
    pub ignore_direction: bool,
    /// rectangle2: classes whose boxes are axis-parallel.
    pub class_ids_no_orientation: Vec<i64>,
    /// rectangle2: periodic (L1 on deltas and (sin, cos) of the angle), kld (Gaussian KL divergence) or
    /// probiou (the Gaussians' Hellinger distance).
    pub rotated_box_loss: dl_nets::RotatedBoxLoss,
    /// rectangle1: l1 (on the deltas) or giou (1 − GIoU of the decoded boxes).
    pub box_loss: dl_nets::BoxLoss,
    /// Training targets: iou (torchvision's RetinaNet matcher) or atss (adaptive IoU thresholds).
    pub anchor_assignment: dl_nets::AnchorAssignment,
    /// Post-processing and loss weights.
    pub params: DetectionParams,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        let c = DetectionConfig::new(1, InstanceType::Rectangle1);
        Self {
            instance_type: c.instance_type,
            min_level: c.min_level,
            max_level: c.max_level,
            anchor_num_subscales: c.anchor_num_subscales,
            anchor_aspect_ratios: c.anchor_aspect_ratios,
            anchor_angles: c.anchor_angles,
            capacity: c.capacity,
            ignore_direction: c.ignore_direction,
            class_ids_no_orientation: Vec::new(),
            rotated_box_loss: c.rotated_box_loss,
            box_loss: c.box_loss,
            anchor_assignment: c.anchor_assignment,
            params: DetectionParams::default(),
        }
    }
}

fn param_error(name: &str, message: impl Into<String>) -> Error {
    Error::Param { name: name.into(), message: message.into() }
}

impl Model {
    /// A detector on `backbone` — an architecture name (`compact`, `enhanced`, `resnet18`, …, trained
    /// from scratch) or a pretrained model (`pretrained_dl_classifier_…`, its ImageNet weights loaded into
    /// the backbone) — for the classes, at the network input size. Preprocessing: the pretrained
    /// model's normalisation, `constant_values` (ImageNet) for 3 channels from scratch, else `none`.
    ///
    /// # Errors
    /// [`Error::Param`] naming the key: unknown backbone, classes, a configuration that does not fit the
    /// backbone, an input smaller than the coarsest level, a pretrained backbone with other than 3
    /// channels, missing or altered pretrained weights.
    pub fn create_detector(
        backbone: &str,
        class_names: &[String],
        class_ids: &[i64],
        (width, height, channels): (usize, usize, usize),
        options: &DetectorOptions,
    ) -> Result<Self> {
        Self::create_detector_from(backbone, None, class_names, class_ids, (width, height, channels), options)
    }

    /// As [`Model::create_detector`], with a pretrained backbone's converted weights read from
    /// `weights` instead of the cache.
    ///
    /// # Errors
    /// As [`Model::create_detector`].
    pub fn create_detector_from(
        backbone: &str,
        weights: Option<&Path>,
        class_names: &[String],
        class_ids: &[i64],
        (width, height, channels): (usize, usize, usize),
        options: &DetectorOptions,
    ) -> Result<Self> {
        let choice = crate::backbone::BackboneChoice::new(
            backbone,
            weights,
            ModelType::Detection,
            (class_names, class_ids),
            (width, height, channels),
        )?;
        let mut preprocess = choice.preprocess.clone();
        let no_orientation = options
            .class_ids_no_orientation
            .iter()
            .map(|id| {
                class_ids.iter().position(|c| c == id).map(|i| i as i64).ok_or_else(|| {
                    param_error(
                        "class_ids_no_orientation",
                        format!("{id} is not one of the classes {class_ids:?}"),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        preprocess.instance_type = Some(options.instance_type);
        if options.instance_type == InstanceType::Rectangle2 {
            preprocess.ignore_direction = Some(options.ignore_direction);
            preprocess.class_ids_no_orientation = options
                .class_ids_no_orientation
                .iter()
                .map(|&c| dl_core::ClassId::new(c))
                .collect::<dl_core::Result<_>>()?;
        } else if options.ignore_direction || !no_orientation.is_empty() {
            return Err(param_error(
                "instance_type",
                "ignore_direction and class_ids_no_orientation are rectangle2 parameters",
            ));
        }
        preprocess.validate()?;
        let detector = DetectionConfig {
            num_classes: class_ids.len() as i64,
            instance_type: options.instance_type,
            min_level: options.min_level,
            max_level: options.max_level,
            anchor_num_subscales: options.anchor_num_subscales,
            anchor_aspect_ratios: options.anchor_aspect_ratios.clone(),
            anchor_angles: options.anchor_angles.clone(),
            capacity: options.capacity,
            ignore_direction: options.ignore_direction,
            class_indices_no_orientation: no_orientation,
            rotated_box_loss: options.rotated_box_loss,
            box_loss: options.box_loss,
            anchor_assignment: options.anchor_assignment,
            feature_scale: choice.feature_scale(),
        };
        let description = ModelDescription {
            method: MethodConfig::Detection {
                backbone: choice.architecture.clone(),
                pretrained: choice.pretrained_name(),
                detector,
                params: options.params.clone(),
            },
            class_ids: class_ids.to_vec(),
            class_names: class_names.to_vec(),
            preprocess,
            params: ModelParams::default(),
        };
        let model = Model::from_description(description, Device::Cpu)?;
        choice.import_into(model.var_store(), &["neck.", "det_head."])?;
        Ok(model)
    }

    /// An OD parameter; `None` for a name that is not one.
    pub(crate) fn get_detection_param(&self, name: &str) -> Option<Result<Value>> {
        if !DETECTION_PARAM_NAMES.contains(&name) {
            return None;
        }
        let d = self.description();
        let MethodConfig::Detection { backbone, pretrained, detector: c, params: p } = &d.method else {
            return Some(Err(param_error(
                name,
                format!("is a detection parameter; this is a {} model", d.model_type().as_str()),
            )));
        };
        let ids: Vec<i64> = c.class_indices_no_orientation.iter().map(|&i| d.class_ids[i as usize]).collect();
        Some(Ok(match name {
            "backbone" => crate::backbone::backbone_name(backbone, pretrained.as_ref()),
            "instance_type" => serde_json::to_value(c.instance_type).unwrap_or_default(),
            "min_level" => json!(c.min_level),
            "max_level" => json!(c.max_level),
            "anchor_num_subscales" => json!(c.anchor_num_subscales),
            "anchor_aspect_ratios" => json!(c.anchor_aspect_ratios),
            "anchor_angles" => json!(c.anchor_angles),
            "capacity" => serde_json::to_value(c.capacity).unwrap_or_default(),
            "ignore_direction" => json!(c.ignore_direction),
            "class_ids_no_orientation" => json!(ids),
            "rotated_box_loss" => serde_json::to_value(c.rotated_box_loss).unwrap_or_default(),
            "box_loss" => serde_json::to_value(c.box_loss).unwrap_or_default(),
            "anchor_assignment" => serde_json::to_value(c.anchor_assignment).unwrap_or_default(),
            "max_num_detections" => json!(p.max_num_detections),
            "max_overlap" => json!(p.max_overlap),
            "max_overlap_class_agnostic" => json!(p.max_overlap_class_agnostic),
            "min_confidence" => json!(p.min_confidence),
            "bbox_heads_weight" => json!(p.bbox_heads_weight),
            "class_heads_weight" => json!(p.class_heads_weight),
            _ => serde_json::to_value(p.test_time_augmentation).unwrap_or_default(),
        }))
    }

    /// Sets an OD parameter; `None` for a name that is not one.
    pub(crate) fn set_detection_param(&mut self, name: &str, value: &Value) -> Option<Result<()>> {
        if !DETECTION_PARAM_NAMES.contains(&name) {
            return None;
        }
        if DETECTION_PARAM_NAMES[..NUM_ARCHITECTURE_PARAMS].contains(&name) {
            return Some(Err(param_error(name, "fixes the architecture: set it when creating the model")));
        }
        Some(self.set_postprocess_param(name, value))
    }

    fn set_postprocess_param(&mut self, name: &str, value: &Value) -> Result<()> {
        let model_type = self.description().model_type();
        let MethodConfig::Detection { params, .. } = &mut self.description_mut().method else {
            return Err(param_error(
                name,
                format!("is a detection parameter; this is a {} model", model_type.as_str()),
            ));
        };
        let mut p = params.clone();
        let unit = |v: Option<f64>| {
            v.filter(|v| (0.0..=1.0).contains(v))
                .ok_or_else(|| param_error(name, format!("{value}: expected a number in [0, 1]")))
        };
        let weight = |v: Option<f64>| {
            v.filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| param_error(name, format!("{value}: expected a number ≥ 0")))
        };
        match name {
            "max_num_detections" => {
                p.max_num_detections = value
                    .as_u64()
                    .filter(|&v| v >= 1)
                    .ok_or_else(|| param_error(name, format!("{value}: expected an integer ≥ 1")))?
                    as usize
            }
            "max_overlap" => p.max_overlap = unit(value.as_f64())?,
            "max_overlap_class_agnostic" => p.max_overlap_class_agnostic = unit(value.as_f64())?,
            "min_confidence" => p.min_confidence = unit(value.as_f64())?,
            "bbox_heads_weight" => p.bbox_heads_weight = weight(value.as_f64())?,
            "class_heads_weight" => p.class_heads_weight = weight(value.as_f64())?,
            _ => {
                p.test_time_augmentation = serde_json::from_value(value.clone()).map_err(|_| {
                    param_error(name, format!("{value}: expected \"none\", \"mirror\" or \"dihedral\""))
                })?
            }
        }
        *params = p.clone();
        self.network_mut().set_method_params(&dl_nets::MethodParams::Detection(p))?;
        Ok(())
    }
}

/// What [`determine_dl_model_detection_param`] found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DetectionParamReport {
    /// The proposed anchor parameters and their coverage.
    pub proposal: dl_nets::detection::proposal::AnchorProposal,
    /// Coverage of HALCON's defaults (levels 2 … 4, 3 subscales, ratios 1, 2, 0.5, angle 0).
    pub default_coverage: f64,
    /// Boxes analysed.
    pub num_boxes: usize,
    /// rectangle2 boxes.
    pub rotated: bool,
}

/// `determine_dl_model_detection_param`: from the boxes of `dataset`'s train split (all samples when it
/// has no split), scaled to a `width` × `height` network input, proposes min/max level, subscales,
/// aspect ratios (and angles for rectangle2) such that every box has an anchor with IoU ≥ 0.5, and
/// reports the share of boxes reached by the proposal and by the defaults. `backbone` fixes the finest
/// usable level (stride 4 for the pretrained families and ResNet).
///
/// # Errors
/// [`Error::Param`] for a dataset without boxes; errors naming an image whose size cannot be read or a
/// box that is invalid.
pub fn determine_dl_model_detection_param(
    dataset: &dl_data::DLDataset,
    (width, height): (usize, usize),
    backbone: &str,
) -> Result<DetectionParamReport> {
    use dl_nets::detection::proposal::{AnchorProposal, BoxShape, coverage, propose};
    let train: Vec<&dl_data::SampleEntry> = if dataset.samples.iter().any(|s| s.split.is_some()) {
        dataset.samples.iter().filter(|s| s.split == Some(dl_core::Split::Train)).collect()
    } else {
        dataset.samples.iter().collect()
    };
    let rotated = train.iter().any(|s| s.instance_type() == Some(InstanceType::Rectangle2));
    let mut boxes = Vec::new();
    for s in train {
        let Some(kind) = s.instance_type() else { continue };
        let path = Path::new(&dataset.image_dir).join(&s.image_file_name);
        let (w, h) = image::image_dimensions(&path)
            .map_err(|e| param_error("image_file_name", format!("{}: {e}", path.display())))?;
        let map = dl_data::preprocess::ImageMap::new(0, 0, w as usize, h as usize, width, height);
        if kind == InstanceType::Rectangle2 {
            for (_, b) in s.rect2_boxes()? {
                let b = map.rect2_forward(&b);
                boxes.push(BoxShape {
                    cx: b.col() + 0.5,
                    cy: b.row() + 0.5,
                    w: 2.0 * b.length1(),
                    h: 2.0 * b.length2(),
                    theta: b.phi(),
                });
            }
        } else {
            for (_, b) in s.rect1_boxes()? {
                let b = map.rect1_forward(&b);
                boxes.push(BoxShape {
                    cx: 0.5 * (b.col1() + b.col2()) + 0.5,
                    cy: 0.5 * (b.row1() + b.row2()) + 0.5,
                    w: b.width(),
                    h: b.height(),
                    theta: 0.0,
                });
            }
        }
    }
    if boxes.is_empty() {
        return Err(param_error("dataset", "no boxes in the train split: nothing to analyse"));
    }
    let finest = if matches!(backbone, "compact" | "enhanced") { 0 } else { 2 };
    let size = (width as f64, height as f64);
    let proposal = propose(&boxes, size, rotated, finest);
    let default = AnchorProposal::defaults();
    Ok(DetectionParamReport {
        default_coverage: coverage(&boxes, size, &default, rotated),
        proposal,
        num_boxes: boxes.len(),
        rotated,
    })
}
