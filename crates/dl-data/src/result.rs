//! DLResult: one model output, with HALCON's keys (SPEC §2.4).

use crate::{AnomalyLabel, Extra, HostImage, LabelImage};
use dl_core::ClassId;
use serde::{Deserialize, Serialize};

/// One model output (HALCON's DLResult). Which keys are set depends on the method; coordinates and
/// images refer to the original image given to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DLResult {
    /// CL: all class ids, sorted by confidence, descending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification_class_ids: Option<Vec<ClassId>>,
    /// CL: their names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification_class_names: Option<Vec<String>>,
    /// CL: their confidences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification_confidences: Option<Vec<f64>>,
    /// OD: class id per detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_class_id: Option<Vec<ClassId>>,
    /// OD: class name per detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_class_name: Option<Vec<String>>,
    /// OD: confidence per detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_confidence: Option<Vec<f64>>,
    /// OD rectangle1: upper rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_row1: Option<Vec<f64>>,
    /// OD rectangle1: left columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_col1: Option<Vec<f64>>,
    /// OD rectangle1: lower rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_row2: Option<Vec<f64>>,
    /// OD rectangle1: right columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_col2: Option<Vec<f64>>,
    /// OD rectangle2: centre rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_row: Option<Vec<f64>>,
    /// OD rectangle2: centre columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_col: Option<Vec<f64>>,
    /// OD rectangle2: orientations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_phi: Option<Vec<f64>>,
    /// OD rectangle2: half lengths along φ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_length1: Option<Vec<f64>>,
    /// OD rectangle2: half lengths across φ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_length2: Option<Vec<f64>>,
    /// SE: class id per pixel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segmentation_image: Option<LabelImage>,
    /// SE: confidence of that class per pixel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segmentation_confidence: Option<HostImage>,
    /// AD: one score per pixel, ≥ 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_image: Option<HostImage>,
    /// AD: image-level score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_score: Option<f64>,
    /// AD, Global Context model: the local subnetwork's anomaly image (normalised, ≥ 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_image_local: Option<HostImage>,
    /// AD, Global Context model: the local subnetwork's score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_score_local: Option<f64>,
    /// AD, Global Context model: the global subnetwork's anomaly image (normalised, ≥ 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_image_global: Option<HostImage>,
    /// AD, Global Context model: the global subnetwork's score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_score_global: Option<f64>,
    /// AD, after thresholding: 1 where the anomaly image exceeds the segmentation threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_region: Option<LabelImage>,
    /// AD, after thresholding: 'ok' or 'nok'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_class: Option<AnomalyLabel>,
    /// AD, after thresholding: 0 or 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_class_id: Option<u8>,
    /// Keys dlkit does not interpret.
    #[serde(flatten)]
    pub extra: Extra,
}

impl DLResult {
    /// HALCON's `threshold_dl_anomaly_results` on this result: `anomaly_region` (1 where the anomaly
    /// image exceeds `segmentation_threshold`), `anomaly_class` and `anomaly_class_id` (nok when the score
    /// exceeds `classification_threshold`). Returns false (and changes nothing) without an anomaly image
    /// or score.
    pub fn threshold_anomaly(&mut self, segmentation_threshold: f64, classification_threshold: f64) -> bool {
        let (Some(image), Some(score)) = (&self.anomaly_image, self.anomaly_score) else {
            return false;
        };
        self.anomaly_region = Some(LabelImage {
            width: image.width,
            height: image.height,
            data: image.data.iter().map(|&v| u16::from(f64::from(v) > segmentation_threshold)).collect(),
        });
        let nok = score > classification_threshold;
        self.anomaly_class = Some(if nok { AnomalyLabel::Nok } else { AnomalyLabel::Ok });
        self.anomaly_class_id = Some(u8::from(nok));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halcon_keys_round_trip() {
        let r = DLResult {
            classification_class_ids: Some(vec![ClassId::new(1).unwrap(), ClassId::new(0).unwrap()]),
            classification_class_names: Some(vec!["nok".into(), "ok".into()]),
            classification_confidences: Some(vec![0.75, 0.25]),
            ..Default::default()
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"classification_class_ids":[1,0],"classification_class_names":["nok","ok"],"classification_confidences":[0.75,0.25]}"#
        );
        assert_eq!(serde_json::from_str::<DLResult>(&text).unwrap(), r);
    }
}
