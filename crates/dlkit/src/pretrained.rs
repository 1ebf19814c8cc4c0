//! Pretrained classifiers by the names HALCON users know (`pretrained_dl_classifier_…`): genuine
//! ImageNet weights converted by `cargo xtask weights`, each with its own input size and normalisation.

use crate::model::{Architecture, MethodConfig, Model, ModelDescription, ModelParams};
use crate::{Error, Result};
use dl_data::ModelType;
use dl_data::preprocess::{DLPreprocessParam, NormalizationType};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use tch::Device;

/// A pretrained model: HALCON-style name, architecture, weight file, its pinned sha256, input size,
/// normalisation means and deviations (0 … 255 units), whether the file holds the ImageNet head, and
/// the factor a detector's pyramid multiplies its maps by.
struct Spec {
    name: &'static str,
    architecture: &'static str,
    weights: &'static str,
    sha256: &'static str,
    size: usize,
    mean: [f64; 3],
    std: [f64; 3],
    imagenet_head: bool,
    /// Brings the maps a detector taps to about MobileNetV2's scale (standard deviations 0.5 … 0.8 at
    /// strides 4 … 16 on a deepforest tile, in eval mode), which the pyramid's initialisation suits:
    /// EfficientNet-Lite0 / 2 give 8.3 / 6.8 / 5.1 and 9.7 / 7.8 / 5.7 (× 0.1), SqueezeNet (0 … 255
    /// inputs) 45 / 37 / 7.6 (× 0.02), MobileNetV1 1.4 / 1.0 / 0.7 (× 1).
    feature_scale: f64,
}

const SPECS: &[Spec] = &[
    Spec {
        name: "pretrained_dl_classifier_efficientnet_lite0",
        architecture: "efficientnet_lite0",
        weights: "efficientnet_lite0",
        sha256: "66ef597633c882e6e61583ab7459f9602e30e5b03f5b51cdd1293a59bf6058f2",
        size: 224,
        mean: [127.0; 3],
        std: [128.0; 3],
        imagenet_head: true,
        feature_scale: 0.1,
    },
    Spec {
        name: "pretrained_dl_classifier_efficientnet_lite1",
        architecture: "efficientnet_lite1",
        weights: "efficientnet_lite1",
        sha256: "2c979e0de7131108553c02666182e7d6e1252db33306740f07347ecb5376aa21",
        size: 240,
        mean: [127.0; 3],
        std: [128.0; 3],
        imagenet_head: true,
        feature_scale: 0.1,
    },
    Spec {
        name: "pretrained_dl_classifier_efficientnet_lite2",
        architecture: "efficientnet_lite2",
        weights: "efficientnet_lite2",
        sha256: "fd1f6b7e952f773f62573b68a3257f55ec098b814883dfcd3108ae60987c3495",
        size: 260,
        mean: [127.0; 3],
        std: [128.0; 3],
        imagenet_head: true,
        feature_scale: 0.1,
    },
    Spec {
        name: "pretrained_dl_classifier_squeezenet",
        architecture: "squeezenet",
        weights: "squeezenet",
        sha256: "1ab3db4f5882ea8a637f9df3b3cf488b7f39023a5917bca3db958e2631e7ca57",
        size: 224,
        // Caffe's BGR means, in RGB order (conv1's input channels were reversed at conversion).
        mean: [122.679, 116.669, 104.006],
        std: [1.0; 3],
        imagenet_head: true,
        feature_scale: 0.02,
    },
    Spec {
        name: "pretrained_dl_classifier_mobilenet_v1",
        architecture: "mobilenet_v1",
        weights: "mobilenet_v1",
        sha256: "74e7dd9fa5ddc8edd789a4c5f203181f1674a23b4db6ba87fad4430367107de5",
        size: 224,
        mean: [128.0; 3],
        std: [128.0; 3],
        imagenet_head: true,
        feature_scale: 1.0,
    },
    Spec {
        name: "pretrained_dl_classifier_mobilenet_v2",
        architecture: "mobilenet_v2",
        weights: "mobilenet_v2",
        sha256: "fd76c30dd48b4cec73b9984bc673479c8c75127d32a64bcbf19640174d4230c9",
        size: 224,
        mean: dl_data::preprocess::IMAGENET_MEAN,
        std: dl_data::preprocess::IMAGENET_STD,
        imagenet_head: false,
        feature_scale: 1.0,
    },
];

/// The names of the pretrained models.
pub fn pretrained_names() -> Vec<&'static str> {
    SPECS.iter().map(|s| s.name).collect()
}

/// The 1000 ImageNet class names, in the order of the pretrained heads.
pub fn imagenet_class_names() -> Vec<String> {
    include_str!("../data/imagenet_classes.txt").lines().map(str::to_owned).collect()
}

/// Where `cargo xtask weights` puts the converted weights `name`.
pub fn weights_path(name: &str) -> PathBuf {
    dl_io::cache_root().join("weights").join(format!("{name}.safetensors"))
}

fn spec(name: &str) -> Result<&'static Spec> {
    SPECS.iter().find(|s| s.name == name).ok_or_else(|| {
        param_error(format!("unknown pretrained model `{name}`; known: {}", pretrained_names().join(", ")))
    })
}

/// The weight bytes at `path`, checked against the pinned sha256.
fn checked_weights(spec: &Spec, path: &std::path::Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| {
        param_error(format!(
            "cannot read the weights {} ({e}): run `cargo xtask weights {}`",
            path.display(),
            spec.weights
        ))
    })?;
    let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    if sha != spec.sha256 {
        return Err(param_error(format!(
            "{} has sha256 {sha}, expected {} (a damaged or altered file): run `cargo xtask weights {}` again",
            path.display(),
            spec.sha256,
            spec.weights
        )));
    }
    Ok(bytes)
}

/// A pretrained backbone for the models of other methods: its architecture name, checked weight bytes,
/// normalisation means and deviations, and the factor a detector's pyramid multiplies its maps by.
pub(crate) struct PretrainedBackbone {
    pub(crate) architecture: &'static str,
    pub(crate) bytes: Vec<u8>,
    pub(crate) mean: [f64; 3],
    pub(crate) std: [f64; 3],
    pub(crate) feature_scale: f64,
}

/// The pretrained backbone `name` (`pretrained_dl_classifier_…`), its weights read from `path` (default:
/// where `cargo xtask weights` puts them).
pub(crate) fn pretrained_backbone(name: &str, path: Option<&std::path::Path>) -> Result<PretrainedBackbone> {
    let spec = spec(name)?;
    let default = weights_path(spec.weights);
    let bytes = checked_weights(spec, path.unwrap_or(&default))?;
    Ok(PretrainedBackbone {
        architecture: spec.architecture,
        bytes,
        mean: spec.mean,
        std: spec.std,
        feature_scale: spec.feature_scale,
    })
}

/// Whether `name` is a pretrained model's name.
pub(crate) fn is_pretrained(name: &str) -> bool {
    name.starts_with("pretrained_dl_classifier_")
}

fn param_error(message: String) -> Error {
    Error::Param { name: "pretrained".into(), message }
}

impl Model {
    /// A pretrained classifier (`read_dl_model('pretrained_dl_classifier_…')`). With `classes` (names and
    /// ids), the ImageNet head is replaced by a fresh one for them; without, the model keeps the
    /// 1000-class ImageNet head (EfficientNet-Lite only: the MobileNetV2 weights ship without one).
    /// Preprocessing: 3 channels at the size the weights were trained at, with their normalisation.
    ///
    /// # Errors
    /// [`Error::Param`] for an unknown name (listing the known ones), missing weights (naming the command
    /// that fetches them), a file whose sha256 differs from the pinned one (tampered or truncated), or no
    /// classes for a model without an ImageNet head; weight errors naming the tensor and both shapes.
    pub fn create_pretrained(name: &str, classes: Option<(&[String], &[i64])>) -> Result<Self> {
        let spec = spec(name)?;
        Self::create_pretrained_from(name, &weights_path(spec.weights), classes)
    }

    /// As [`Model::create_pretrained`], with the converted weights read from `path`.
    ///
    /// # Errors
    /// As [`Model::create_pretrained`].
    pub fn create_pretrained_from(
        name: &str,
        path: &std::path::Path,
        classes: Option<(&[String], &[i64])>,
    ) -> Result<Self> {
        let spec = spec(name)?;
        let bytes = checked_weights(spec, path)?;
        let imagenet: (Vec<String>, Vec<i64>);
        let (names, ids) = match classes {
            Some((n, i)) => (n, i),
            None if spec.imagenet_head => {
                imagenet = (imagenet_class_names(), (0..1000).collect());
                (&imagenet.0[..], &imagenet.1[..])
            }
            None => {
                return Err(param_error(format!(
                    "{name} has no ImageNet head: give the classes to train (e.g. --dataset)"
                )));
            }
        };
        if names.is_empty() || names.len() != ids.len() {
            return Err(param_error(format!("{} class names for {} ids", names.len(), ids.len())));
        }
        let mut preprocess = DLPreprocessParam::new(ModelType::Classification, spec.size, spec.size, 3)?;
        preprocess.normalization_type = NormalizationType::ConstantValues;
        preprocess.mean_values_normalization = Some(spec.mean.to_vec());
        preprocess.deviation_values_normalization = Some(spec.std.to_vec());
        preprocess.validate()?;
        let description = ModelDescription {
            method: MethodConfig::Classification {
                network: Architecture::by_name(spec.architecture, names.len() as i64, 3)?,
            },
            class_ids: ids.to_vec(),
            class_names: names.to_vec(),
            preprocess,
            params: ModelParams::default(),
        };
        let model = Model::from_description(description, Device::Cpu)?;
        let what = |e: dl_nets::Error| Error::Param {
            name: "pretrained".into(),
            message: format!("{}: {e}", path.display()),
        };
        if classes.is_none() {
            dl_nets::weights::import_safetensors(model.var_store(), &bytes, false).map_err(what)?;
        } else {
            dl_nets::weights::import_backbone(model.var_store(), &bytes, model.head_prefix())
                .map_err(what)?;
        }
        Ok(model)
    }
}
