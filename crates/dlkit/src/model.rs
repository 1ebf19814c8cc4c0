//! `dlkit::Model`: a network of one method with its classes, preprocessing and parameters — create,
//! get/set parameters, apply to images, write / read / serialize / deserialize (SPEC §5).
//!
//! The model file's description is format version 2: `method` (a [`MethodConfig`] tagged by `type`),
//! classes, preprocessing, parameters. Version-1 files (`type` and `architecture` at the top level,
//! classification only) are read and converted.

use crate::{Error, Result};
use dl_data::preprocess::{DLPreprocessParam, NormalizationType, collate, preprocess_sample};
use dl_data::{DLResult, DLSample, HostImage, ModelType};
use dl_nets::{
    Classes, ClassificationNet, Classifier, CompactConfig, EfficientNetLiteConfig, MobileNetV1Config,
    MobileNetV2Config, Network, Outputs, ResNetConfig, SqueezeNetConfig,
};
pub use dl_train::{ModelParams, SolverType};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::Path;
use tch::{Device, Tensor, nn, nn::ModuleT};

mod export;

/// The network of a model, as a serde config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "architecture", content = "config", rename_all = "snake_case")]
pub enum Architecture {
    /// The compact all-convolutional net.
    Compact(CompactConfig),
    /// ResNet-18 or ResNet-50 (torchvision names).
    Resnet(ResNetConfig),
    /// MobileNetV2 (torchvision names).
    MobilenetV2(MobileNetV2Config),
    /// EfficientNet-Lite0/1/2.
    EfficientnetLite(EfficientNetLiteConfig),
    /// SqueezeNet 1.1.
    Squeezenet(SqueezeNetConfig),
    /// MobileNetV1 1.0 (TF-slim layout).
    MobilenetV1(MobileNetV1Config),
}

impl Architecture {
    /// An architecture by name: `compact`, `enhanced` (the compact family, deeper and wider),
    /// `resnet18`, `resnet50`, `mobilenet_v2`, `efficientnet_lite0`, `efficientnet_lite1`,
    /// `efficientnet_lite2`, `squeezenet`, `mobilenet_v1`.
    ///
    /// # Errors
    /// [`Error::Param`] for another name.
    pub fn by_name(name: &str, num_classes: i64, in_channels: i64) -> Result<Self> {
        Ok(match name {
            "compact" => Self::Compact(CompactConfig::new(num_classes, in_channels)),
            "enhanced" => Self::Compact(CompactConfig::enhanced(num_classes, in_channels)),
            "resnet18" => Self::Resnet(ResNetConfig::resnet18(num_classes, in_channels)),
            "resnet50" => Self::Resnet(ResNetConfig::resnet50(num_classes, in_channels)),
            "mobilenet_v2" => Self::MobilenetV2(MobileNetV2Config::new(num_classes, in_channels)),
            "efficientnet_lite0" => {
                Self::EfficientnetLite(EfficientNetLiteConfig::lite(0, num_classes, in_channels)?)
            }
            "efficientnet_lite1" => {
                Self::EfficientnetLite(EfficientNetLiteConfig::lite(1, num_classes, in_channels)?)
            }
            "efficientnet_lite2" => {
                Self::EfficientnetLite(EfficientNetLiteConfig::lite(2, num_classes, in_channels)?)
            }
            "squeezenet" => Self::Squeezenet(SqueezeNetConfig::new(num_classes, in_channels)),
            "mobilenet_v1" => Self::MobilenetV1(MobileNetV1Config::new(num_classes, in_channels)),
            other => {
                return Err(Error::Param {
                    name: "architecture".into(),
                    message: format!(
                        "`{other}`: expected compact, enhanced, resnet18, resnet50, mobilenet_v2, \
                         efficientnet_lite0, efficientnet_lite1, efficientnet_lite2, squeezenet or mobilenet_v1"
                    ),
                });
            }
        })
    }
}

impl ModuleT for Model {
    /// The network's main output tensor, inputs converted to the weights' channels-last layout: class
    /// logits `[N, classes]` (classification), per-anchor class logits `[N, M, classes]` (detection),
    /// per-pixel logits `[N, classes, H, W]` (segmentation), anomaly maps `[N, 1, H, W]` (anomaly models;
    /// in training mode the student's prediction `[N, D, h, w]`). `Model::network` gives all outputs.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self.net.forward_t(xs, train) {
            Outputs::Classification { logits } | Outputs::Segmentation { logits } => logits,
            Outputs::Detection { class_logits, .. } => class_logits,
            Outputs::Anomaly { maps, .. } => maps,
            Outputs::StudentTeacher { student, .. } => student,
            // A kind of output added to dl-nets later: an undefined tensor until it is listed here.
            _ => Tensor::new(),
        }
    }
}

/// The method of a model and its network configuration; serialised tagged by `type` (HALCON's model
/// type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum MethodConfig {
    /// A classifier.
    Classification {
        /// Its network.
        network: Architecture,
    },
    /// An object detector (RetinaNet family) on a backbone.
    Detection {
        /// The backbone family (its classification head is not used).
        backbone: Architecture,
        /// The pretrained weights the backbone started from (`pretrained_dl_classifier_…`), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pretrained: Option<String>,
        /// Pyramid, anchors and heads.
        detector: dl_nets::DetectionConfig,
        /// Post-processing and loss weights.
        params: dl_nets::DetectionParams,
    },
    /// HALCON's anomaly-detection model: a student network regressing a frozen pretrained teacher's
    /// features.
    AnomalyDetection {
        /// The teacher's family (its classification head is not used).
        backbone: Architecture,
        /// The teacher's pretrained weights (`pretrained_dl_classifier_…`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pretrained: Option<String>,
        /// Teacher taps and student.
        student: dl_nets::StudentConfig,
        /// Training parameters and thresholds.
        params: dl_nets::StudentParams,
    },
    /// HALCON's Global Context anomaly-detection model: the student of `anomaly_detection` (the local
    /// subnetwork) and an autoencoder with a second student head (the global subnetwork).
    GcAnomalyDetection {
        /// The teacher's family (its classification head is not used).
        backbone: Architecture,
        /// The teacher's pretrained weights (`pretrained_dl_classifier_…`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pretrained: Option<String>,
        /// Teacher taps and student (the local subnetwork).
        student: dl_nets::StudentConfig,
        /// The global subnetwork.
        global: dl_nets::GlobalConfig,
        /// Training parameters, the subnetworks used and thresholds.
        params: dl_nets::StudentParams,
    },
    /// An anomaly-detection model: PatchCore's feature memory on a frozen pretrained backbone.
    Patchcore {
        /// The backbone family (its classification head is not used).
        backbone: Architecture,
        /// The pretrained weights of the backbone (`pretrained_dl_classifier_…`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pretrained: Option<String>,
        /// Taps, coreset and the fitted bank's size and scale.
        patchcore: dl_nets::PatchCoreConfig,
        /// Thresholds.
        params: dl_nets::AnomalyParams,
    },
    /// A semantic segmentation network: a decoder on a backbone.
    Segmentation {
        /// The backbone family (its classification head is not used).
        backbone: Architecture,
        /// The pretrained weights the backbone started from (`pretrained_dl_classifier_…`), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pretrained: Option<String>,
        /// The decoder.
        segmenter: dl_nets::SegmentationConfig,
        /// Loss weights.
        params: dl_nets::SegmentationParams,
    },
}

impl MethodConfig {
    /// The model type.
    pub fn model_type(&self) -> ModelType {
        match self {
            Self::Classification { .. } => ModelType::Classification,
            Self::Detection { .. } => ModelType::Detection,
            Self::Segmentation { .. } => ModelType::Segmentation,
            Self::Patchcore { .. } | Self::AnomalyDetection { .. } | Self::GcAnomalyDetection { .. } => {
                ModelType::AnomalyDetection
            }
        }
    }

    /// The backbone and the pretrained model it started from, for every method but classification.
    pub fn backbone(&self) -> Option<(&Architecture, Option<&String>)> {
        match self {
            Self::Classification { .. } => None,
            Self::Detection { backbone, pretrained, .. }
            | Self::Segmentation { backbone, pretrained, .. }
            | Self::Patchcore { backbone, pretrained, .. }
            | Self::AnomalyDetection { backbone, pretrained, .. }
            | Self::GcAnomalyDetection { backbone, pretrained, .. } => Some((backbone, pretrained.as_ref())),
        }
    }

    /// The classifier or backbone architecture.
    pub fn architecture(&self) -> &Architecture {
        match self {
            Self::Classification { network } => network,
            Self::Detection { backbone, .. }
            | Self::Segmentation { backbone, .. }
            | Self::Patchcore { backbone, .. }
            | Self::AnomalyDetection { backbone, .. }
            | Self::GcAnomalyDetection { backbone, .. } => backbone,
        }
    }
}

/// Everything of a model but its weights and device; stored as the model file's description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDescription {
    /// The method and its network.
    pub method: MethodConfig,
    /// Class ids, parallel to `class_names`.
    pub class_ids: Vec<i64>,
    /// Class names.
    pub class_names: Vec<String>,
    /// Preprocessing of raw images.
    pub preprocess: DLPreprocessParam,
    /// General parameters.
    pub params: ModelParams,
}

impl ModelDescription {
    /// The model type.
    pub fn model_type(&self) -> ModelType {
        self.method.model_type()
    }

    /// The classifier architecture of a classification model, the backbone of the others.
    pub fn architecture(&self) -> &Architecture {
        self.method.architecture()
    }

    /// A description from model-file JSON of format `version`: version 1 had `type` and `architecture`
    /// at the top level (classification only); version 2 has `method`.
    ///
    /// # Errors
    /// The serde error of a description that does not parse.
    pub fn from_file_json(mut value: Value, version: u32) -> std::result::Result<Self, serde_json::Error> {
        if version < 2
            && let Some(obj) = value.as_object_mut()
        {
            let model_type = obj.remove("type").unwrap_or(Value::Null);
            let architecture = obj.remove("architecture").unwrap_or(Value::Null);
            obj.insert("method".into(), json!({"type": model_type, "network": architecture}));
        }
        serde_json::from_value(value)
    }

    /// Checks that the parts agree: valid, distinct class ids, one name per id, as many network outputs
    /// as classes, and the network's input channels equal to the preprocessing's.
    ///
    /// # Errors
    /// [`Error::Param`] naming the key.
    pub fn validate(&self) -> Result<()> {
        let mut seen = std::collections::BTreeSet::new();
        for &id in &self.class_ids {
            dl_core::ClassId::new(id).map_err(|e| param_error("class_ids", e.to_string()))?;
            if !seen.insert(id) {
                return Err(param_error("class_ids", format!("class id {id} appears twice")));
            }
        }
        if self.class_ids.is_empty() || self.class_names.len() != self.class_ids.len() {
            return Err(param_error(
                "class_names",
                format!(
                    "{} names for {} class ids (at least one class)",
                    self.class_names.len(),
                    self.class_ids.len()
                ),
            ));
        }
        let (classes, channels) = match self.architecture() {
            Architecture::Compact(c) => (c.num_classes, c.in_channels),
            Architecture::Resnet(c) => (c.num_classes, c.in_channels),
            Architecture::MobilenetV2(c) => (c.num_classes, c.in_channels),
            Architecture::EfficientnetLite(c) => (c.num_classes, c.in_channels),
            Architecture::Squeezenet(c) => (c.num_classes, c.in_channels),
            Architecture::MobilenetV1(c) => (c.num_classes, c.in_channels),
        };
        let classes = match &self.method {
            MethodConfig::Classification { .. } => classes,
            MethodConfig::Detection { detector, .. } => {
                let p = &self.preprocess;
                if p.instance_type.unwrap_or_default() != detector.instance_type
                    || p.ignore_direction.unwrap_or(false) != detector.ignore_direction
                {
                    return Err(param_error(
                        "instance_type",
                        "the preprocessing's instance_type / ignore_direction differ from the detector's",
                    ));
                }
                let coarsest = 1usize << detector.max_level.clamp(0, 20);
                if p.image_width < coarsest || p.image_height < coarsest {
                    return Err(param_error(
                        "image_dimensions",
                        format!(
                            "{}×{} is smaller than the coarsest level's stride {coarsest} (max_level {})",
                            p.image_width, p.image_height, detector.max_level
                        ),
                    ));
                }
                detector.num_classes
            }
            MethodConfig::Patchcore { .. }
            | MethodConfig::AnomalyDetection { .. }
            | MethodConfig::GcAnomalyDetection { .. } => 2,
            MethodConfig::Segmentation { segmenter, .. } => {
                let p = &self.preprocess;
                if p.image_width < 32 || p.image_height < 32 {
                    return Err(param_error(
                        "image_dimensions",
                        format!(
                            "{}×{}: segmentation models take at least 32×32",
                            p.image_width, p.image_height
                        ),
                    ));
                }
                if let Some(c) =
                    p.ignore_class_ids.iter().find(|c| self.class_ids.contains(&i64::from(c.get())))
                {
                    return Err(param_error(
                        "ignore_class_ids",
                        format!("{c} is a class of the model: ignored pixels belong to no class"),
                    ));
                }
                if let Some(c) = p
                    .set_background_id
                    .iter()
                    .chain(&p.class_ids_background)
                    .find(|c| !self.class_ids.contains(&i64::from(c.get())))
                {
                    return Err(param_error(
                        "set_background_id",
                        format!("{c} (set_background_id / class_ids_background) is not a class of the model"),
                    ));
                }
                segmenter.num_classes
            }
        };
        if classes != self.class_ids.len() as i64 {
            return Err(param_error(
                "architecture",
                format!("{classes} network outputs for {} classes", self.class_ids.len()),
            ));
        }
        if channels != self.preprocess.image_num_channels as i64 {
            return Err(param_error(
                "architecture",
                format!(
                    "the network takes {channels} channels, the preprocessing makes {}",
                    self.preprocess.image_num_channels
                ),
            ));
        }
        if self.preprocess.model_type != self.model_type() {
            return Err(param_error(
                "type",
                format!(
                    "a {} model with {} preprocessing",
                    self.model_type().as_str(),
                    self.preprocess.model_type.as_str()
                ),
            ));
        }
        Ok(())
    }
}

/// A model: description, weights on a device.
#[derive(Debug)]
pub struct Model {
    description: ModelDescription,
    vs: nn::VarStore,
    net: Box<dyn Network>,
}

/// Parameter names [`Model::get_param`] knows.
pub const PARAM_NAMES: &[&str] = &[
    "type",
    "architecture",
    "batch_size",
    "batch_size_multiplier",
    "image_width",
    "image_height",
    "image_num_channels",
    "image_dimensions",
    "image_range_min",
    "image_range_max",
    "class_ids",
    "class_names",
    "learning_rate",
    "momentum",
    "weight_prior",
    "solver_type",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "device",
    "precision",
    "meta_data",
    "num_trainable_params",
    "preprocess_param",
    "freeze_backbone",
    "backbone_learning_rate_factor",
];

fn unknown_param(name: &str) -> Error {
    param_error(
        name,
        format!(
            "unknown parameter; valid names: {}; for detection models {}; for segmentation models backbone, {}; \
             for anomaly models backbone, {}",
            PARAM_NAMES.join(", "),
            crate::detection::DETECTION_PARAM_NAMES.join(", "),
            crate::segmentation::SEGMENTATION_PARAM_NAMES.join(", "),
            crate::anomaly::ANOMALY_PARAM_NAMES.join(", ")
        ),
    )
}

fn param_error(name: &str, message: impl Into<String>) -> Error {
    Error::Param { name: name.into(), message: message.into() }
}

impl Model {
    /// A new classifier with freshly initialised weights on the CPU: `architecture` by name, the classes,
    /// and the network input size. Preprocessing: `constant_values` (ImageNet) for 3 channels, `none`
    /// (range −127 … 128) for others.
    ///
    /// # Errors
    /// [`Error::Param`] for an unknown architecture, no classes, or class lists of different lengths;
    /// configuration errors from dl-nets and dl-data.
    pub fn create_classifier(
        architecture: &str,
        class_names: &[String],
        class_ids: &[i64],
        width: usize,
        height: usize,
        channels: usize,
    ) -> Result<Self> {
        if class_names.is_empty() || class_names.len() != class_ids.len() {
            return Err(param_error(
                "class_names",
                format!("{} names for {} ids (at least one class)", class_names.len(), class_ids.len()),
            ));
        }
        let arch = Architecture::by_name(architecture, class_names.len() as i64, channels as i64)?;
        let mut preprocess = DLPreprocessParam::new(ModelType::Classification, width, height, channels)?;
        if channels == 3 {
            preprocess.normalization_type = NormalizationType::ConstantValues;
        }
        let description = ModelDescription {
            method: MethodConfig::Classification { network: arch },
            class_ids: class_ids.to_vec(),
            class_names: class_names.to_vec(),
            preprocess,
            params: ModelParams::default(),
        };
        Self::from_description(description, Device::Cpu)
    }

    pub(crate) fn from_description(description: ModelDescription, device: Device) -> Result<Self> {
        description.validate()?;
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let net: Box<dyn Network> = match &description.method {
            MethodConfig::Detection { backbone, detector, params, .. } => {
                Box::new(dl_nets::DetectionNet::new(
                    crate::backbone::build(backbone, &root)?,
                    &root,
                    detector.clone(),
                    params.clone(),
                )?)
            }
            MethodConfig::AnomalyDetection { backbone, student, params, .. }
            | MethodConfig::GcAnomalyDetection { backbone, student, params, .. } => {
                let global = match &description.method {
                    MethodConfig::GcAnomalyDetection { global, .. } => Some(global.clone()),
                    _ => None,
                };
                Box::new(dl_nets::StudentTeacherNet::new(
                    crate::backbone::build(backbone, &root)?,
                    &root,
                    description.preprocess.image_num_channels as i64,
                    student.clone(),
                    params.clone(),
                    global,
                )?)
            }
            MethodConfig::Patchcore { backbone, patchcore, params, .. } => {
                Box::new(dl_nets::PatchCoreNet::new(
                    crate::backbone::build(backbone, &root)?,
                    &root,
                    patchcore.clone(),
                    params.clone(),
                )?)
            }
            MethodConfig::Segmentation { backbone, segmenter, params, .. } => {
                Box::new(dl_nets::SegmentationNet::new(
                    crate::backbone::build(backbone, &root)?,
                    &root,
                    segmenter.clone(),
                    params.clone(),
                )?)
            }
            MethodConfig::Classification { network } => {
                let classifier: Box<dyn Classifier> = match network {
                    Architecture::Compact(c) => Box::new(c.build(&root)?),
                    Architecture::Resnet(c) => Box::new(c.build(&root)?),
                    Architecture::MobilenetV2(c) => Box::new(c.build(&root)?),
                    Architecture::EfficientnetLite(c) => Box::new(c.build(&root)?),
                    Architecture::Squeezenet(c) => Box::new(c.build(&root)?),
                    Architecture::MobilenetV1(c) => Box::new(c.build(&root)?),
                };
                Box::new(ClassificationNet::new(classifier, head_prefix(network)))
            }
        };
        // Convolutions run on the channels-last layout (inputs are converted in the forward pass).
        dl_nets::device::vars_to_channels_last(&vs);
        dl_nets::device::tune_allocator();
        let mut model = Self { description, vs, net };
        model.apply_freeze();
        Ok(model)
    }

    /// The name prefix of the classification head's variables.
    pub(crate) fn head_prefix(&self) -> &'static str {
        head_prefix(self.description.architecture())
    }

    /// The network.
    pub fn network(&self) -> &dyn Network {
        &*self.net
    }

    pub(crate) fn network_mut(&mut self) -> &mut dyn Network {
        &mut *self.net
    }

    pub(crate) fn description_mut(&mut self) -> &mut ModelDescription {
        &mut self.description
    }

    /// The classifier of a classification model (Grad-CAM, guided backpropagation).
    ///
    /// # Errors
    /// [`Error::Param`] for a model of another method.
    pub(crate) fn classifier(&self) -> Result<&dyn Classifier> {
        self.net.as_classifier().ok_or_else(|| {
            param_error(
                "type",
                format!("a {} model has no classifier", self.description.model_type().as_str()),
            )
        })
    }

    /// The classes as dl-nets takes them.
    pub fn classes(&self) -> Classes {
        let d = &self.description;
        // Ids were validated when the model was created or read.
        Classes {
            ids: d.class_ids.iter().filter_map(|&i| dl_core::ClassId::new(i).ok()).collect(),
            names: d.class_names.clone(),
        }
    }

    /// Sets `requires_grad` of the backbone's variables from `freeze_backbone`, and the network's
    /// inference-mode backbone. Variables that are not trainable (batch-norm statistics, a memory
    /// bank, the teacher's statistics) never require gradients.
    fn apply_freeze(&mut self) {
        let frozen = self.description.params.freeze_backbone;
        self.net.freeze_backbone(frozen);
        let trainable: std::collections::HashSet<usize> =
            self.vs.trainable_variables().iter().map(|t| t.data_ptr() as usize).collect();
        for (name, var) in self.vs.variables() {
            if name.ends_with("running_mean")
                || name.ends_with("running_var")
                || var.numel() == 0
                || !trainable.contains(&(var.data_ptr() as usize))
            {
                continue;
            }
            let _ = var.set_requires_grad(!frozen || self.net.is_head_var(&name));
        }
    }

    /// Replaces the preprocessing parameters (e.g. with those a dataset was preprocessed with). The model
    /// type and the number of channels must stay.
    ///
    /// # Errors
    /// [`Error::Param`] for another model type or channel count; invalid parameters.
    pub fn set_preprocess_param(&mut self, param: DLPreprocessParam) -> Result<()> {
        param.validate()?;
        let d = &self.description.preprocess;
        if param.model_type != d.model_type || param.image_num_channels != d.image_num_channels {
            return Err(param_error(
                "preprocess_param",
                format!(
                    "{} with {} channels does not fit this {} model with {} channels",
                    param.model_type.as_str(),
                    param.image_num_channels,
                    d.model_type.as_str(),
                    d.image_num_channels
                ),
            ));
        }
        let old = std::mem::replace(&mut self.description.preprocess, param);
        if let Err(e) = self.description.validate() {
            self.description.preprocess = old;
            return Err(e);
        }
        Ok(())
    }

    /// The description (type, architecture, classes, preprocessing, parameters).
    pub fn description(&self) -> &ModelDescription {
        &self.description
    }

    /// The variables (for training).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// The network.
    pub fn module(&self) -> &impl ModuleT {
        self
    }

    /// Number of trainable values.
    pub fn num_trainable_params(&self) -> i64 {
        self.vs.trainable_variables().iter().map(Tensor::numel).map(|n| n as i64).sum()
    }

    /// A parameter by HALCON's name (`get_dl_model_param`).
    ///
    /// # Errors
    /// [`Error::Param`] for an unknown name, listing the valid ones.
    pub fn get_param(&self, name: &str) -> Result<Value> {
        let d = &self.description;
        let p = &d.params;
        Ok(match name {
            "type" => json!(d.model_type().as_str()),
            "architecture" => serde_json::to_value(d.architecture()).expect("serialisable"),
            "batch_size" => json!(p.batch_size),
            "batch_size_multiplier" => json!(p.batch_size_multiplier),
            "image_width" => json!(d.preprocess.image_width),
            "image_height" => json!(d.preprocess.image_height),
            "image_num_channels" => json!(d.preprocess.image_num_channels),
            "image_dimensions" => {
                json!([d.preprocess.image_width, d.preprocess.image_height, d.preprocess.image_num_channels])
            }
            "image_range_min" => json!(d.preprocess.image_range_min),
            "image_range_max" => json!(d.preprocess.image_range_max),
            "class_ids" => json!(d.class_ids),
            "class_names" => json!(d.class_names),
            "learning_rate" => json!(p.learning_rate),
            "momentum" => json!(p.momentum),
            "weight_prior" => json!(p.weight_prior),
            "solver_type" => serde_json::to_value(p.solver_type).expect("serialisable"),
            "adam_beta1" => json!(p.adam_beta1),
            "adam_beta2" => json!(p.adam_beta2),
            "adam_epsilon" => json!(p.adam_epsilon),
            "device" => json!(match self.vs.device() {
                Device::Cuda(i) => format!("cuda:{i}"),
                _ => "cpu".to_owned(),
            }),
            "precision" => json!(p.precision),
            "meta_data" => json!(p.meta_data),
            "num_trainable_params" => json!(self.num_trainable_params()),
            "preprocess_param" => serde_json::to_value(&d.preprocess).expect("serialisable"),
            "freeze_backbone" => json!(p.freeze_backbone),
            "backbone_learning_rate_factor" => json!(p.backbone_learning_rate_factor),
            "backbone" if d.method.backbone().is_some() => {
                let (backbone, pretrained) = d.method.backbone().expect("checked");
                crate::backbone::backbone_name(backbone, pretrained)
            }
            other => {
                return self
                    .get_detection_param(other)
                    .or_else(|| self.get_segmentation_param(other))
                    .or_else(|| self.get_anomaly_param(other))
                    .unwrap_or_else(|| Err(unknown_param(other)));
            }
        })
    }

    /// Sets a parameter by HALCON's name (`set_dl_model_param`). Parameters that fix the architecture
    /// (`type`, `architecture`, `image_num_channels`, `class_ids`) and `num_trainable_params` are refused.
    ///
    /// # Errors
    /// [`Error::Param`] naming the parameter: unknown (listing the valid names), read-only, wrong type
    /// or out of range.
    pub fn set_param(&mut self, name: &str, value: &Value) -> Result<()> {
        let num = || {
            value
                .as_f64()
                .filter(|v| v.is_finite())
                .ok_or_else(|| param_error(name, format!("{value}: expected a number")))
        };
        let positive_int = || {
            value
                .as_u64()
                .filter(|&v| v >= 1)
                .map(|v| v as usize)
                .ok_or_else(|| param_error(name, format!("{value}: expected an integer ≥ 1")))
        };
        if name == "backbone" {
            return Err(param_error(name, "fixes the architecture: set it when creating the model"));
        }
        if let Some(r) = self.set_detection_param(name, value) {
            return r;
        }
        if let Some(r) = self.set_segmentation_param(name, value) {
            return r;
        }
        if let Some(r) = self.set_anomaly_param(name, value) {
            return r;
        }
        let d = &mut self.description;
        match name {
            "type" | "architecture" | "image_num_channels" | "class_ids" | "image_dimensions" => {
                return Err(param_error(name, "fixes the architecture: set it when creating the model"));
            }
            "num_trainable_params" => return Err(param_error(name, "read-only")),
            "backbone_learning_rate_factor" => {
                d.params.backbone_learning_rate_factor = num().and_then(|v| {
                    if (0.0..=1.0).contains(&v) { Ok(v) } else { Err(param_error(name, "must be in [0, 1]")) }
                })?
            }
            "freeze_backbone" => {
                d.params.freeze_backbone = value
                    .as_bool()
                    .ok_or_else(|| param_error(name, format!("{value}: expected true or false")))?;
                self.apply_freeze();
            }
            "preprocess_param" => {
                let p = DLPreprocessParam::from_json(value.clone())
                    .map_err(|e| param_error(name, e.to_string()))?;
                return self.set_preprocess_param(p);
            }
            "batch_size" => d.params.batch_size = positive_int()?,
            "batch_size_multiplier" => d.params.batch_size_multiplier = positive_int()?,
            "image_width" => d.preprocess.image_width = positive_int()?,
            "image_height" => d.preprocess.image_height = positive_int()?,
            "image_range_min" | "image_range_max" => {
                let v = num()?;
                let mut p = d.preprocess.clone();
                if name == "image_range_min" {
                    p.image_range_min = v
                } else {
                    p.image_range_max = v
                }
                p.validate().map_err(|e| param_error(name, e.to_string()))?;
                d.preprocess = p;
            }
            "class_names" => {
                let names: Vec<String> = serde_json::from_value(value.clone())
                    .map_err(|_| param_error(name, "expected a list of strings"))?;
                if names.len() != d.class_ids.len() {
                    return Err(param_error(
                        name,
                        format!("{} names for {} classes", names.len(), d.class_ids.len()),
                    ));
                }
                d.class_names = names;
            }
            "learning_rate" => {
                d.params.learning_rate =
                    num().and_then(|v| if v > 0.0 { Ok(v) } else { Err(param_error(name, "must be > 0")) })?
            }
            "momentum" => {
                d.params.momentum = num().and_then(|v| {
                    if (0.0..1.0).contains(&v) { Ok(v) } else { Err(param_error(name, "must be in [0, 1)")) }
                })?
            }
            "weight_prior" => {
                d.params.weight_prior = num()
                    .and_then(|v| if v >= 0.0 { Ok(v) } else { Err(param_error(name, "must be ≥ 0")) })?
            }
            "adam_beta1" | "adam_beta2" => {
                let v = num()?;
                if !(0.0..1.0).contains(&v) {
                    return Err(param_error(name, "must be in [0, 1)"));
                }
                if name == "adam_beta1" { d.params.adam_beta1 = v } else { d.params.adam_beta2 = v }
            }
            "adam_epsilon" => {
                d.params.adam_epsilon =
                    num().and_then(|v| if v > 0.0 { Ok(v) } else { Err(param_error(name, "must be > 0")) })?
            }
            "solver_type" => {
                d.params.solver_type = serde_json::from_value(value.clone())
                    .map_err(|_| param_error(name, format!("{value}: expected \"sgd\" or \"adam\"")))?
            }
            "precision" => {
                let p = value.as_str().ok_or_else(|| param_error(name, "expected a string"))?;
                match p {
                    "float32" => d.params.precision = p.to_owned(),
                    "float16" | "bfloat16" if self.vs.device().is_cuda() => d.params.precision = p.to_owned(),
                    "float16" | "bfloat16" => {
                        return Err(param_error(name, format!("{p} needs a GPU; this model is on the CPU")));
                    }
                    other => {
                        return Err(param_error(
                            name,
                            format!("`{other}`: expected float32, float16 or bfloat16"),
                        ));
                    }
                }
            }
            "meta_data" => {
                d.params.meta_data = serde_json::from_value(value.clone())
                    .map_err(|_| param_error(name, "expected an object of strings"))?
            }
            "device" => {
                let device = dl_nets::device::select_device(
                    value.as_str().ok_or_else(|| param_error(name, "expected a string"))?,
                )?;
                self.vs.set_device(device);
            }
            other => return Err(unknown_param(other)),
        }
        Ok(())
    }

    /// Applies the model to raw images (`apply_dl_model`): preprocessing from the model's parameters,
    /// batches of `batch_size`, the network's post-processing; results refer to the original images
    /// (CL: every class by descending confidence).
    ///
    /// # Errors
    /// Preprocessing errors naming the image (index as image id); libtorch errors.
    pub fn apply(&self, images: Vec<HostImage>) -> Result<Vec<DLResult>> {
        let d = &self.description;
        let (samples, maps): (Vec<DLSample>, Vec<_>) = images
            .into_iter()
            .enumerate()
            .map(|(i, img)| {
                preprocess_sample(DLSample::from_image(dl_core::ImageId(i as u64), img), &d.preprocess)
            })
            .collect::<dl_data::Result<Vec<_>>>()?
            .into_iter()
            .unzip();
        let classes = self.classes();
        let mut results = Vec::with_capacity(samples.len());
        let _guard = tch::no_grad_guard();
        let step = d.params.batch_size.max(1);
        for (chunk, chunk_maps) in samples.chunks(step).zip(maps.chunks(step)) {
            let batch = collate(chunk, &classes.ids, None)?;
            let (x, _) = dl_nets::upload(&batch, self.vs.device())?;
            results.extend(self.net.infer(&x, chunk_maps, &classes)?);
        }
        Ok(results)
    }

    /// The weights as safetensors bytes with torchvision's names (PyTorch export).
    ///
    /// # Errors
    /// Serialisation errors.
    pub fn export_weights(&self) -> Result<Vec<u8>> {
        Ok(dl_nets::weights::export_safetensors(&self.vs)?)
    }

    /// Loads weights from safetensors bytes with torchvision's names (PyTorch import). Every tensor of
    /// the architecture must be present with its shape; extra tensors (e.g. `num_batches_tracked`) are
    /// ignored. Nothing changes unless all fit.
    ///
    /// # Errors
    /// Errors naming the missing tensor or the tensor with its expected and found shapes.
    pub fn import_weights(&mut self, bytes: &[u8]) -> Result<()> {
        Ok(dl_nets::weights::import_safetensors(&self.vs, bytes, true)?)
    }

    /// The model as bytes (`serialize_dl_model`): the same bytes [`Model::write`] writes.
    ///
    /// # Errors
    /// Weight export errors.
    pub fn serialize(&self) -> Result<Vec<u8>> {
        let description = serde_json::to_value(&self.description).expect("serialisable");
        Ok(dl_io::ModelFile { description, weights: dl_nets::weights::export_safetensors(&self.vs)? }
            .to_bytes())
    }

    /// A model from bytes (`deserialize_dl_model`), on the CPU; `what` names the source in errors.
    ///
    /// # Errors
    /// Format errors (magic, version, truncation, checksum), a description that does not parse, weights
    /// that do not fit the architecture (naming the tensor).
    pub fn deserialize(bytes: &[u8], what: &str) -> Result<Self> {
        let (version, file) = dl_io::ModelFile::from_bytes_with_version(bytes, what)?;
        let description = ModelDescription::from_file_json(file.description, version).map_err(|e| {
            Error::Io(dl_io::Error::Corrupt {
                what: what.to_owned(),
                message: format!("model description: {e}"),
            })
        })?;
        description.preprocess.validate().map_err(|e| {
            Error::Io(dl_io::Error::Corrupt {
                what: what.to_owned(),
                message: format!("model description: {e}"),
            })
        })?;
        check_declared_sizes(&description, &file.weights, what)?;
        let model = Self::from_description(description, Device::Cpu)?;
        dl_nets::weights::import_safetensors(&model.vs, &file.weights, false)?;
        Ok(model)
    }

    /// Writes the model file atomically (`write_dl_model`). The device is not stored.
    ///
    /// # Errors
    /// As [`Model::serialize`], and write errors naming the file.
    pub fn write(&self, path: &Path) -> Result<()> {
        dl_io::write_bytes_atomic(path, &self.serialize()?)?;
        Ok(())
    }

    /// Reads a model file (`read_dl_model`).
    ///
    /// # Errors
    /// As [`Model::deserialize`], and read errors naming the file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| dl_io::Error::Io {
            action: "reading",
            path: path.to_owned(),
            source,
        })?;
        Self::deserialize(&bytes, &path.display().to_string())
    }
}

/// The largest class count, and channel count of a layer, that a model file may declare.
const MAX_DECLARED_CLASSES: u64 = 1 << 16;
const MAX_DECLARED_CHANNELS: u64 = 8192;
/// The longest list (stage widths, anchor ratios and angles, strides) a model file may declare.
const MAX_DECLARED_LIST: usize = 64;

/// Checks the sizes a model file's description declares before a network is built from it (which
/// allocates what they say): class and channel counts, list lengths, anchor subscales and pyramid
/// levels within limits, and a PatchCore memory bank of exactly the rows the file's weights hold — a
/// hostile file cannot make dlkit allocate more than a real model of that size would.
fn check_declared_sizes(d: &ModelDescription, weights: &[u8], what: &str) -> Result<()> {
    let corrupt = |message: String| {
        Error::Io(dl_io::Error::Corrupt {
            what: what.to_owned(),
            message: format!("model description: {message}"),
        })
    };
    if d.class_ids.len() as u64 > MAX_DECLARED_CLASSES {
        return Err(corrupt(format!("{} classes (at most {MAX_DECLARED_CLASSES})", d.class_ids.len())));
    }
    // Every value of the method's configuration, with the key it is under (array items: the array's).
    let mut stack = vec![("method".to_owned(), serde_json::to_value(&d.method).expect("serialisable"))];
    while let Some((key, value)) = stack.pop() {
        let limit: Option<f64> = match key.as_str() {
            "num_classes" => Some(MAX_DECLARED_CLASSES as f64),
            "in_channels" => Some(64.0),
            "layers" => Some(36.0),
            "decoder_channels" | "student_channels" => Some(1024.0),
            "widths" => Some(MAX_DECLARED_CHANNELS as f64),
            "anchor_num_subscales" | "convs_per_stage" => Some(16.0),
            "min_level" | "max_level" => Some(12.0),
            // EfficientNet's width and depth multipliers.
            "width" | "depth" => Some(4.0),
            _ => None,
        };
        match value {
            Value::Array(items) if items.len() > MAX_DECLARED_LIST => {
                return Err(corrupt(format!(
                    "`{key}` lists {} values (at most {MAX_DECLARED_LIST})",
                    items.len()
                )));
            }
            Value::Number(n) if limit.is_some_and(|l| n.as_f64().is_none_or(|v| !(0.0..=l).contains(&v))) => {
                return Err(corrupt(format!("`{key}` {n} (expected 0 … {})", limit.unwrap_or_default())));
            }
            Value::Object(map) => stack.extend(map),
            Value::Array(items) => stack.extend(items.into_iter().map(|v| (key.clone(), v))),
            _ => {}
        }
    }
    // What the weights hold bounds what the network may have: every variable must be in the file.
    let shapes = dl_nets::weights::safetensors_shapes(weights)?;
    let held: u64 = shapes.iter().map(|(_, s)| s.iter().map(|&v| v as u64).product::<u64>()).sum();
    let network = match &d.method {
        MethodConfig::Classification { network } => network,
        MethodConfig::Detection { backbone, .. }
        | MethodConfig::AnomalyDetection { backbone, .. }
        | MethodConfig::GcAnomalyDetection { backbone, .. }
        | MethodConfig::Patchcore { backbone, .. }
        | MethodConfig::Segmentation { backbone, .. } => backbone,
    };
    if let Architecture::Compact(c) = network {
        // At least the 3×3 convolutions of each stage and the head's weights.
        let mut needs = 0u64;
        let mut cin = c.in_channels.max(0) as u64;
        for &w in &c.widths {
            needs += cin * w.max(0) as u64 * 9 * c.convs_per_stage as u64;
            cin = w.max(0) as u64;
        }
        needs += cin * d.class_ids.len() as u64;
        if needs > held {
            return Err(corrupt(format!(
                "the compact network declares at least {needs} weights, the file holds {held}"
            )));
        }
    }
    if d.class_ids.len() as u64 > held {
        return Err(corrupt(format!("{} classes, the file holds {held} weights", d.class_ids.len())));
    }
    if let MethodConfig::Patchcore { patchcore, .. } = &d.method {
        let rows = shapes
            .iter()
            .find(|(n, _)| n == dl_nets::anomaly::MEMORY_BANK)
            .and_then(|(_, s)| s.first().copied())
            .unwrap_or(0);
        if patchcore.memory_bank_size < 0 || patchcore.memory_bank_size as usize != rows {
            return Err(corrupt(format!(
                "memory_bank_size {}, but the weights hold a memory bank of {rows} rows",
                patchcore.memory_bank_size
            )));
        }
    }
    Ok(())
}

/// The name prefix of a classifier's head variables.
pub(crate) fn head_prefix(architecture: &Architecture) -> &'static str {
    match architecture {
        Architecture::Compact(_) => "head.",
        Architecture::Resnet(_) => "fc.",
        Architecture::MobilenetV2(_) | Architecture::EfficientnetLite(_) | Architecture::MobilenetV1(_) => {
            "classifier."
        }
        Architecture::Squeezenet(_) => "conv10.",
    }
}

impl dl_train::TrainableModel for Model {
    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }
    fn network(&self) -> &dyn Network {
        &*self.net
    }
    fn network_mut(&mut self) -> &mut dyn Network {
        &mut *self.net
    }
    fn classes(&self) -> Classes {
        Model::classes(self)
    }
    fn preprocess_param(&self) -> DLPreprocessParam {
        self.description.preprocess.clone()
    }
    fn params(&self) -> &ModelParams {
        &self.description.params
    }
    fn get_param(&self, name: &str) -> std::result::Result<Value, dl_train::ModelError> {
        Ok(Model::get_param(self, name)?)
    }
    fn set_param(&mut self, name: &str, value: &Value) -> std::result::Result<(), dl_train::ModelError> {
        Ok(Model::set_param(self, name, value)?)
    }
    fn write(&self, path: &Path) -> std::result::Result<(), dl_train::ModelError> {
        Ok(Model::write(self, path)?)
    }
}

/// A tiny classifier (a 4-channel compact net on 16×16 gray images, classes a and b): a model file of
/// a few kilobytes, for the fuzz harness and the model-file tests.
pub(crate) fn tiny_classifier() -> Result<Model> {
    let names = vec!["a".to_owned(), "b".to_owned()];
    let mut d = Model::create_classifier("compact", &names, &[0, 1], 16, 16, 1)?.description().clone();
    d.method = MethodConfig::Classification {
        network: Architecture::Compact(CompactConfig { widths: vec![4], ..CompactConfig::new(2, 1) }),
    };
    Model::from_description(d, Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> (Vec<String>, Vec<i64>) {
        ((0..n).map(|i| format!("c{i}")).collect(), (0..n as i64).map(|i| i * 2).collect())
    }

    fn image(seed: u64, w: usize, h: usize, c: usize) -> HostImage {
        let mut rng = dl_core::Rng::new(seed);
        HostImage {
            width: w,
            height: h,
            channels: c,
            bit_depth: 8,
            data: (0..w * h * c).map(|_| rng.below(256) as f32).collect(),
        }
    }

    #[test]
    fn round_trips_are_bit_identical_for_every_architecture() {
        let (n, ids) = names(3);
        for arch in [
            "compact",
            "enhanced",
            "resnet18",
            "mobilenet_v2",
            "efficientnet_lite0",
            "squeezenet",
            "mobilenet_v1",
        ] {
            tch::manual_seed(1);
            let m = Model::create_classifier(arch, &n, &ids, 40, 32, 3).unwrap();
            let imgs = vec![image(1, 50, 40, 3), image(2, 30, 30, 1)];
            let a = m.apply(imgs.clone()).unwrap();
            // Every heatmap method runs on every architecture: finite values in [0, 1] (normalised at the
            // network's resolution, then resized to the image).
            for method in [
                crate::HeatmapMethod::GradCam,
                crate::HeatmapMethod::GuidedGradCam,
                crate::HeatmapMethod::Occlusion,
            ] {
                let hm = m.heatmap(&imgs[0], method, None).unwrap();
                assert_eq!((hm.width, hm.height), (50, 40));
                assert!(
                    hm.values.iter().all(|v| v.is_finite() && (0.0..=1.0 + 1e-5).contains(v)),
                    "{arch} {method:?}"
                );
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("m.dlm");
            m.write(&path).unwrap();
            let back = Model::read(&path).unwrap();
            assert_eq!(back.description(), m.description());
            assert_eq!(back.apply(imgs.clone()).unwrap(), a, "{arch}");
            let bytes = m.serialize().unwrap();
            assert_eq!(bytes, std::fs::read(&path).unwrap());
            assert_eq!(Model::deserialize(&bytes, "mem").unwrap().apply(imgs).unwrap(), a);
            let r = &a[0];
            let conf = r.classification_confidences.as_ref().unwrap();
            assert!(conf.windows(2).all(|w| w[0] >= w[1]) && (conf.iter().sum::<f64>() - 1.0).abs() < 1e-5);
            assert_eq!(r.classification_class_names.as_ref().unwrap().len(), 3);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]
        /// Mutated model files — truncated, bytes overwritten, or bytes overwritten with the checksum
        /// recomputed so the description and weight parsers see them — are errors or valid models, never
        /// panics (declared network sizes are checked before a network is built).
        #[test]
        fn mutated_model_files_never_panic(
            mode in 0u8..3,
            pos in 0usize..100_000,
            len in 1usize..8,
            value in proptest::prelude::any::<u8>(),
        ) {
            static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
            let bytes = BYTES.get_or_init(|| tiny_classifier().unwrap().serialize().unwrap());
            let mut b = bytes.clone();
            match mode {
                0 => b.truncate(pos % b.len()),
                1 => {
                    let p = pos % b.len();
                    for v in &mut b[p..(p + len).min(bytes.len())] {
                        *v = value;
                    }
                }
                _ => {
                    let header = dl_io::MODEL_FILE_HEADER;
                    let (_, payload) = dl_io::container::decode(header, bytes, "m").unwrap();
                    let mut payload = payload.to_vec();
                    let p = pos % payload.len();
                    let end = (p + len).min(payload.len());
                    for v in &mut payload[p..end] {
                        *v = value;
                    }
                    b = dl_io::container::encode(header, &payload);
                }
            }
            if let Ok(m) = Model::deserialize(&b, "mutated") {
                // A model that reads back is usable.
                let _ = m.apply(vec![image(1, 16, 16, 1)]);
            }
        }
    }

    #[test]
    fn every_truncation_of_a_model_file_is_an_error() {
        let (n, ids) = names(2);
        let m = Model::create_classifier("compact", &n, &ids, 16, 16, 1).unwrap();
        let bytes = m.serialize().unwrap();
        assert!(bytes.len() > 10_000, "{} bytes", bytes.len());
        for len in 0..bytes.len() {
            assert!(Model::deserialize(&bytes[..len], "x").is_err(), "{len}");
        }
    }

    #[test]
    fn params_get_set_and_errors() {
        let (n, ids) = names(2);
        let mut m = Model::create_classifier("compact", &n, &ids, 16, 16, 1).unwrap();
        for name in PARAM_NAMES {
            m.get_param(name).unwrap();
        }
        for (name, value) in [
            ("batch_size", json!(8)),
            ("batch_size_multiplier", json!(2)),
            ("learning_rate", json!(0.01)),
            ("momentum", json!(0.5)),
            ("weight_prior", json!(1e-4)),
            ("solver_type", json!("adam")),
            ("adam_beta1", json!(0.8)),
            ("adam_beta2", json!(0.99)),
            ("adam_epsilon", json!(1e-6)),
            ("image_width", json!(32)),
            ("image_height", json!(24)),
            ("image_range_min", json!(-1.0)),
            ("image_range_max", json!(1.0)),
            ("class_names", json!(["good", "bad"])),
            ("meta_data", json!({"author": "me"})),
            ("precision", json!("float32")),
            ("device", json!("cpu")),
            ("freeze_backbone", json!(true)),
            ("backbone_learning_rate_factor", json!(0.1)),
        ] {
            m.set_param(name, &value).unwrap();
            assert_eq!(m.get_param(name).unwrap(), value, "{name}");
        }
        // The preprocessing parameters as one dictionary (create_dl_preprocess_param from a model).
        let mut pp = m.get_param("preprocess_param").unwrap();
        assert_eq!(pp["image_width"], json!(32));
        pp["normalization_type"] = json!("all_channels");
        m.set_param("preprocess_param", &pp).unwrap();
        assert_eq!(m.get_param("preprocess_param").unwrap(), pp);
        pp["image_num_channels"] = json!(3);
        assert!(m.set_param("preprocess_param", &pp).unwrap_err().to_string().contains("channels"));
        pp["bogus_key"] = json!(1);
        assert!(m.set_param("preprocess_param", &pp).is_err());
        let err = m.set_param("colour", &json!(1)).unwrap_err().to_string();
        assert!(err.contains("valid names") && err.contains("batch_size"), "{err}");
        assert!(
            m.set_param("image_num_channels", &json!(3)).unwrap_err().to_string().contains("architecture")
        );
        assert!(m.set_param("batch_size", &json!("many")).is_err());
        assert!(m.set_param("precision", &json!("float16")).unwrap_err().to_string().contains("GPU"));
        assert!(m.get_param("num_trainable_params").unwrap().as_i64().unwrap() > 1000);
    }
}
