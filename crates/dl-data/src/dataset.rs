//! The DLDataset dictionary and its sample entries (SPEC §2.1–2.2), with JSON load and save.

use crate::{Error, Result};
use dl_core::{ClassId, ImageId, Split};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// Free-form JSON values kept for keys dlkit does not interpret.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// The dataset key (a dlkit extension of HALCON's dictionary) of label values to ignore.
pub const IGNORE_CLASS_IDS: &str = "ignore_class_ids";

/// A labelled dataset: paths, not pixels (HALCON's DLDataset). Paths of samples are relative to
/// `image_dir` (and `segmentation_dir`, `anomaly_dir`, `dlsample_dir`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DLDataset {
    /// Base path of all images.
    pub image_dir: String,
    /// Class names, parallel to `class_ids`.
    pub class_names: Vec<String>,
    /// Class ids, parallel to `class_names`.
    pub class_ids: Vec<ClassId>,
    /// One entry per image.
    pub samples: Vec<SampleEntry>,
    /// SE: base path of the label images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segmentation_dir: Option<String>,
    /// AD: base path of the anomaly ground-truth images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_dir: Option<String>,
    /// After preprocessing: base path of the sample files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dlsample_dir: Option<String>,
    /// After preprocessing: the DLPreprocessParam used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess_param: Option<crate::preprocess::DLPreprocessParam>,
    /// SE: per-class loss weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weights: Option<Vec<f64>>,
    /// Keys dlkit does not interpret, kept and written back.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `ok` or `nok`, the ground truth of an anomaly-detection sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnomalyLabel {
    /// Defect-free (class id 0).
    Ok,
    /// Anomalous (class id 1).
    Nok,
}

/// One image of a DLDataset (HALCON's sample entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SampleEntry {
    /// Unique id of the image.
    pub image_id: ImageId,
    /// Path relative to `image_dir`.
    pub image_file_name: String,
    /// Split, after splitting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    /// Sample file, relative to `dlsample_dir`, after preprocessing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dlsample_file_name: Option<String>,
    /// CL: ground-truth class ids (one for single-label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_label_id: Option<Vec<ClassId>>,
    /// OD: one class id per box.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_label_id: Option<Vec<ClassId>>,
    /// OD rectangle1: upper rows, one per box.
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
    /// OD rectangle2: orientations in radians.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_phi: Option<Vec<f64>>,
    /// OD rectangle2: half lengths along φ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_length1: Option<Vec<f64>>,
    /// OD rectangle2: half lengths across φ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_length2: Option<Vec<f64>>,
    /// OD, beyond HALCON: per box, whether it is a COCO crowd region (kept out of training, an ignored
    /// ground truth in evaluation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox_iscrowd: Option<Vec<bool>>,
    /// OD rectangle1, optional: the raw COCO annotation of each box, kept for export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coco_raw_annotations: Option<Vec<serde_json::Value>>,
    /// SE: label image relative to `segmentation_dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segmentation_file_name: Option<String>,
    /// AD: `ok` or `nok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_label: Option<AnomalyLabel>,
    /// AD: ground-truth anomaly mask relative to `anomaly_dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_file_name: Option<String>,
    /// Keys dlkit does not interpret (box coordinates until the datasets issue types them), kept and
    /// written back.
    #[serde(flatten)]
    pub extra: Extra,
}

impl DLDataset {
    /// Label values to ignore in segmentation (not classes): the dlkit key `ignore_class_ids` (written
    /// by readers that paint ignored regions, e.g. labelme's `__ignore__` = 255) and the
    /// preprocessing's `ignore_class_ids`.
    pub fn ignore_class_ids(&self) -> Vec<ClassId> {
        let mut ids: Vec<ClassId> = self
            .extra
            .get(IGNORE_CLASS_IDS)
            .and_then(|v| serde_json::from_value::<Vec<ClassId>>(v.clone()).ok())
            .unwrap_or_default();
        if let Some(p) = &self.preprocess_param {
            ids.extend(p.ignore_class_ids.iter().copied());
        }
        ids.sort();
        ids.dedup();
        ids
    }

    /// Reads a dataset from its JSON file.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file, or [`Error::Json`] with line and column.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            action: "reading",
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| {
            // Valid JSON of another kind (results, parameters, COCO): say so instead of a missing key.
            if source.is_data()
                && let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(&bytes)
                && !(map.contains_key("image_dir") && map.contains_key("samples"))
            {
                let keys: Vec<&str> = map.keys().take(6).map(String::as_str).collect();
                return Error::Annotation {
                    path: path.to_owned(),
                    message: format!(
                        "valid JSON, but not a DLDataset (it needs image_dir, class_names, class_ids and samples; \
                         this file has {})",
                        if keys.is_empty() { "no keys".to_owned() } else { keys.join(", ") }
                    ),
                };
            }
            Error::Json { path: path.to_owned(), line: source.line(), column: source.column(), source }
        })
    }

    /// Writes the dataset as JSON, atomically (an existing file is replaced only once the new one is
    /// complete).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::File`] naming the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        dl_io::write_atomic(path, |w| {
            let io = |source| Error::Io { action: "writing", path: path.to_owned(), source };
            serde_json::to_writer(&mut *w, self).map_err(|e| io(e.into()))?;
            w.write_all(b"\n").map_err(io)
        })
    }
}

#[cfg(test)]
mod tests {

    /// Valid JSON that is not a dataset (a results list's object, COCO) is named as such; broken JSON
    /// keeps its line and column.
    #[test]
    fn json_that_is_not_a_dataset_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("coco.json");
        std::fs::write(&p, br#"{"images": [], "annotations": [], "categories": []}"#).unwrap();
        let e = DLDataset::load(&p).unwrap_err().to_string();
        assert!(e.contains("not a DLDataset") && e.contains("images, annotations"), "{e}");
        std::fs::write(&p, b"{\n  \"image_dir\": ").unwrap();
        let e = DLDataset::load(&p).unwrap_err().to_string();
        assert!(e.contains("invalid JSON at line 2"), "{e}");
    }

    use super::*;

    #[test]
    fn json_round_trip_keeps_unknown_keys() {
        let text = r#"{"image_dir":"imgs","class_names":["a","b"],"class_ids":[0,7],
            "samples":[{"image_id":3,"image_file_name":"x.png","split":"train","image_label_id":[7],
            "my_key":{"n":1}}],"user_note":"keep me"}"#;
        let ds: DLDataset = serde_json::from_str(text).unwrap();
        assert_eq!(ds.class_ids[1].get(), 7);
        assert_eq!(ds.samples[0].split, Some(Split::Train));
        assert_eq!(ds.samples[0].extra["my_key"]["n"], 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ds.json");
        ds.save(&path).unwrap();
        assert_eq!(DLDataset::load(&path).unwrap(), ds);
        let again: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(again["user_note"], "keep me");
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, "{\n  \"image_dir\": 3,\n}").unwrap();
        let err = DLDataset::load(&path).unwrap_err();
        let Error::Json { line, .. } = &err else { panic!("{err:?}") };
        assert_eq!(*line, 2);
        assert!(err.to_string().contains("bad.json"));
    }

    #[test]
    fn class_id_out_of_range_is_refused() {
        let text = r#"{"image_dir":"","class_names":["a"],"class_ids":[70000],"samples":[]}"#;
        assert!(serde_json::from_str::<DLDataset>(text).is_err());
    }
}
