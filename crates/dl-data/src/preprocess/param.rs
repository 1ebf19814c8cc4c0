//! DLPreprocessParam: how images and annotations are brought to the network's input (SPEC §4.1).

use crate::{Error, InstanceType, ModelType, Result};
use dl_core::ClassId;
use serde::{Deserialize, Serialize};

/// The largest network input side (`image_width`, `image_height`).
pub const MAX_NETWORK_SIDE: usize = 16_384;
/// The most pixels of a network input (`image_width · image_height`, 8192²).
pub const MAX_NETWORK_PIXELS: usize = 1 << 26;

/// How pixel values are mapped into `image_range_min … image_range_max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NormalizationType {
    /// 8-bit images mapped linearly from 0 … 255 to the range; other images untouched.
    #[default]
    None,
    /// Per channel, min … max stretched to the range (a constant channel is mapped as by `none`).
    AllChannels,
    /// The first channel's min … max used for every channel.
    FirstChannel,
    /// (v − mean_c) / deviation_c with `mean_values_normalization` and
    /// `deviation_values_normalization` (default: ImageNet's).
    ConstantValues,
}

/// What happens to an image's domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DomainHandling {
    /// The domain is ignored: the whole image is used.
    #[default]
    FullDomain,
    /// The image (and its annotations) are cropped to the domain's rectangle.
    CropDomain,
    /// AD only: the whole image is used and the domain is kept (mapped to the network size).
    KeepDomain,
}

/// ImageNet channel means (RGB, 0 … 255), the default of `constant_values`.
pub const IMAGENET_MEAN: [f64; 3] = [123.675, 116.28, 103.53];
/// ImageNet channel deviations (RGB, 0 … 255).
pub const IMAGENET_STD: [f64; 3] = [58.395, 57.12, 57.375];

fn default_range_min() -> f64 {
    -127.0
}
fn default_range_max() -> f64 {
    128.0
}

/// HALCON's DLPreprocessParam. Serialised with its key names; unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DLPreprocessParam {
    /// The method.
    pub model_type: ModelType,
    /// Network input width.
    pub image_width: usize,
    /// Network input height.
    pub image_height: usize,
    /// Network input channels (1 or 3).
    pub image_num_channels: usize,
    /// Lower end of the value range (default −127).
    #[serde(default = "default_range_min")]
    pub image_range_min: f64,
    /// Upper end of the value range (default 128).
    #[serde(default = "default_range_max")]
    pub image_range_max: f64,
    /// Value mapping.
    #[serde(default)]
    pub normalization_type: NormalizationType,
    /// Domain treatment.
    #[serde(default)]
    pub domain_handling: DomainHandling,
    /// SE: classes excluded from the loss and the evaluation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_class_ids: Vec<ClassId>,
    /// SE: the class id background classes are set to (at most one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_background_id: Vec<ClassId>,
    /// SE: classes merged into `set_background_id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_ids_background: Vec<ClassId>,
    /// OD: box type (default rectangle1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<InstanceType>,
    /// OD rectangle2: boxes have no front (φ modulo π).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_direction: Option<bool>,
    /// OD rectangle2: classes whose boxes become axis-parallel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_ids_no_orientation: Vec<ClassId>,
    /// `constant_values`: mean per channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_values_normalization: Option<Vec<f64>>,
    /// `constant_values`: deviation per channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deviation_values_normalization: Option<Vec<f64>>,
}

impl DLPreprocessParam {
    /// Parameters for `model_type` and the network size, with HALCON's defaults (range −127 … 128,
    /// normalisation `none`, full domain; OD: rectangle1).
    ///
    /// # Errors
    /// As [`DLPreprocessParam::validate`].
    ///
    /// # Examples
    /// ```
    /// use dl_data::{ModelType, preprocess::DLPreprocessParam};
    /// let p = DLPreprocessParam::new(ModelType::Classification, 224, 224, 3).unwrap();
    /// assert_eq!((p.image_range_min, p.image_range_max), (-127.0, 128.0));
    /// assert!(DLPreprocessParam::new(ModelType::Classification, 0, 224, 3).is_err());
    /// ```
    pub fn new(model_type: ModelType, width: usize, height: usize, channels: usize) -> Result<Self> {
        let p = Self {
            model_type,
            image_width: width,
            image_height: height,
            image_num_channels: channels,
            image_range_min: default_range_min(),
            image_range_max: default_range_max(),
            normalization_type: NormalizationType::None,
            domain_handling: DomainHandling::FullDomain,
            ignore_class_ids: Vec::new(),
            set_background_id: Vec::new(),
            class_ids_background: Vec::new(),
            instance_type: (model_type == ModelType::Detection).then_some(InstanceType::Rectangle1),
            ignore_direction: (model_type == ModelType::Detection).then_some(false),
            class_ids_no_orientation: Vec::new(),
            mean_values_normalization: None,
            deviation_values_normalization: None,
        };
        p.validate()?;
        Ok(p)
    }

    /// Parses parameters from JSON, refusing unknown keys, then validates them.
    ///
    /// # Errors
    /// [`Error::Param`] naming the key.
    pub fn from_json(value: serde_json::Value) -> Result<Self> {
        let p: Self = serde_json::from_value(value)
            .map_err(|e| Error::Param { key: "preprocess_param", message: e.to_string() })?;
        p.validate()?;
        Ok(p)
    }

    /// Checks every rule of SPEC §4.1, and the size limits ([`MAX_NETWORK_SIDE`],
    /// [`MAX_NETWORK_PIXELS`]) that keep a hostile file from asking for huge buffers.
    ///
    /// # Errors
    /// [`Error::Param`] naming the offending key with the value and what is expected.
    pub fn validate(&self) -> Result<()> {
        let bad = |key, message: String| Err(Error::Param { key, message });
        if self.image_width == 0 || self.image_height == 0 {
            return bad(
                "image_width",
                format!("{}×{}: both must be at least 1", self.image_width, self.image_height),
            );
        }
        if self.image_width > MAX_NETWORK_SIDE
            || self.image_height > MAX_NETWORK_SIDE
            || self.image_width * self.image_height > MAX_NETWORK_PIXELS
        {
            return bad(
                "image_width",
                format!(
                    "{}×{}: at most {MAX_NETWORK_SIDE} per side and {MAX_NETWORK_PIXELS} pixels (tile larger images)",
                    self.image_width, self.image_height
                ),
            );
        }
        if self.image_num_channels != 1 && self.image_num_channels != 3 {
            return bad("image_num_channels", format!("{}: expected 1 or 3", self.image_num_channels));
        }
        if !(self.image_range_min.is_finite() && self.image_range_max.is_finite())
            || self.image_range_min >= self.image_range_max
        {
            return bad(
                "image_range_min",
                format!(
                    "{} … {}: expected finite values with min < max",
                    self.image_range_min, self.image_range_max
                ),
            );
        }
        if self.domain_handling == DomainHandling::KeepDomain
            && self.model_type != ModelType::AnomalyDetection
        {
            return bad("domain_handling", "keep_domain is only for anomaly detection".into());
        }
        if self.normalization_type == NormalizationType::ConstantValues {
            let c = self.image_num_channels;
            for (key, v) in [
                ("mean_values_normalization", &self.mean_values_normalization),
                ("deviation_values_normalization", &self.deviation_values_normalization),
            ] {
                if let Some(v) = v
                    && v.len() != c
                    && v.len() != 1
                {
                    return bad(key, format!("{} values for {c} channels", v.len()));
                }
            }
            if self
                .deviation_values_normalization
                .as_ref()
                .is_some_and(|d| d.iter().any(|&x| x.is_nan() || x <= 0.0))
            {
                return bad("deviation_values_normalization", "deviations must be greater than 0".into());
            }
        } else if self.mean_values_normalization.is_some() || self.deviation_values_normalization.is_some() {
            return bad(
                "mean_values_normalization",
                "only used with normalization_type constant_values".into(),
            );
        }
        let od_keys = self.instance_type.is_some()
            || self.ignore_direction.is_some()
            || !self.class_ids_no_orientation.is_empty();
        let se_keys = !self.ignore_class_ids.is_empty()
            || !self.set_background_id.is_empty()
            || !self.class_ids_background.is_empty();
        match self.model_type {
            ModelType::Segmentation => {
                if od_keys {
                    return bad("instance_type", "detection keys must be empty for segmentation".into());
                }
                if self.set_background_id.len() > 1 {
                    return bad("set_background_id", format!("{:?}: at most one id", self.set_background_id));
                }
                if self.set_background_id.is_empty() != self.class_ids_background.is_empty() {
                    return bad(
                        "set_background_id",
                        "set_background_id and class_ids_background are set together".into(),
                    );
                }
                if self.class_ids_background.iter().any(|c| self.set_background_id.contains(c)) {
                    return bad("class_ids_background", "must not contain set_background_id".into());
                }
                if let Some(c) = self
                    .ignore_class_ids
                    .iter()
                    .find(|c| self.set_background_id.contains(c) || self.class_ids_background.contains(c))
                {
                    return bad("ignore_class_ids", format!("class {c} is also a background class"));
                }
            }
            ModelType::Detection => {
                if se_keys {
                    return bad("ignore_class_ids", "segmentation keys must be empty for detection".into());
                }
                if self.instance_type != Some(InstanceType::Rectangle2)
                    && (!self.class_ids_no_orientation.is_empty() || self.ignore_direction == Some(true))
                {
                    return bad(
                        "class_ids_no_orientation",
                        "ignore_direction and class_ids_no_orientation need instance_type rectangle2".into(),
                    );
                }
            }
            _ => {
                if od_keys || se_keys {
                    return bad(
                        "model_type",
                        format!(
                            "detection and segmentation keys must be empty for {}",
                            self.model_type.as_str()
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// Mean and deviation per channel for `constant_values` (ImageNet's by default; for one channel the
    /// averages of ImageNet's).
    pub fn normalization_constants(&self) -> (Vec<f64>, Vec<f64>) {
        let c = self.image_num_channels;
        let expand = |v: &Option<Vec<f64>>, default: [f64; 3]| match v {
            Some(v) if v.len() == c => v.clone(),
            Some(v) => vec![v[0]; c],
            None if c == 3 => default.to_vec(),
            None => vec![default.iter().sum::<f64>() / 3.0; c],
        };
        (
            expand(&self.mean_values_normalization, IMAGENET_MEAN),
            expand(&self.deviation_values_normalization, IMAGENET_STD),
        )
    }

    /// The box type, rectangle1 when unset.
    pub fn instance_type(&self) -> InstanceType {
        self.instance_type.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_are_enforced_with_the_key_named() {
        let base = json!({"model_type": "segmentation", "image_width": 64, "image_height": 32, "image_num_channels": 3});
        assert!(DLPreprocessParam::from_json(base.clone()).is_ok());
        let with = |k: &str, v: serde_json::Value| {
            let mut p = base.clone();
            p[k] = v;
            DLPreprocessParam::from_json(p).map(|_| ()).map_err(|e| e.to_string())
        };
        assert!(with("colour", json!(1)).unwrap_err().contains("unknown field `colour`"));
        assert!(with("normalization_type", json!("fancy")).unwrap_err().contains("fancy"));
        assert!(with("set_background_id", json!([0, 1])).unwrap_err().contains("set_background_id"));
        assert!(with("set_background_id", json!([0])).unwrap_err().contains("together"));
        assert!(with("instance_type", json!("rectangle2")).unwrap_err().contains("detection keys"));
        assert!(with("image_num_channels", json!(2)).unwrap_err().contains("image_num_channels"));
        assert!(with("domain_handling", json!("keep_domain")).unwrap_err().contains("anomaly"));
        let mut p = base.clone();
        p["set_background_id"] = json!([0]);
        p["class_ids_background"] = json!([3, 4]);
        p["ignore_class_ids"] = json!([4]);
        assert!(DLPreprocessParam::from_json(p).unwrap_err().to_string().contains("ignore_class_ids"));
    }

    #[test]
    fn constant_value_defaults() {
        let mut p = DLPreprocessParam::new(ModelType::Classification, 8, 8, 3).unwrap();
        p.normalization_type = NormalizationType::ConstantValues;
        assert_eq!(p.normalization_constants().0, IMAGENET_MEAN.to_vec());
        p.mean_values_normalization = Some(vec![1.0, 2.0]);
        assert!(p.validate().is_err());
    }
}
