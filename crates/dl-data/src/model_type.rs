//! The four deep-learning methods.

use crate::SampleEntry;
use serde::{Deserialize, Serialize};

/// HALCON's model types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelType {
    /// Classification (CL).
    Classification,
    /// Object detection (OD).
    Detection,
    /// Semantic segmentation (SE).
    Segmentation,
    /// Anomaly detection (AD).
    AnomalyDetection,
}

impl ModelType {
    /// The type a sample's keys imply: anomaly_label → AD, image_label_id → CL, bbox_label_id → OD,
    /// segmentation_file_name → SE (checked in that order).
    pub fn infer(sample: &SampleEntry) -> Option<Self> {
        if sample.anomaly_label.is_some() {
            Some(Self::AnomalyDetection)
        } else if sample.image_label_id.is_some() {
            Some(Self::Classification)
        } else if sample.bbox_label_id.is_some() {
            Some(Self::Detection)
        } else if sample.segmentation_file_name.is_some() {
            Some(Self::Segmentation)
        } else {
            None
        }
    }

    /// HALCON's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classification => "classification",
            Self::Detection => "detection",
            Self::Segmentation => "segmentation",
            Self::AnomalyDetection => "anomaly_detection",
        }
    }
}

impl std::str::FromStr for ModelType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "classification" => Ok(Self::Classification),
            "detection" => Ok(Self::Detection),
            "segmentation" => Ok(Self::Segmentation),
            "anomaly_detection" => Ok(Self::AnomalyDetection),
            other => Err(format!(
                "unknown model type `{other}`: expected classification, detection, segmentation or anomaly_detection"
            )),
        }
    }
}
