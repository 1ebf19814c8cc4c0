//! COCO ground-truth files and COCO result lists as inputs of [`evaluate_detections`](crate::detection::evaluate_detections).

use crate::detection::{Detection, EvalBox, GroundTruth, ImageDetections};
use crate::{Error, Result};
use dl_core::{Rect1, Rect2};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// A box type that can be built from a COCO `bbox`.
pub trait FromCocoBox: EvalBox + Sized + Clone {
    /// Number of values in the `bbox` (4, or 5 for rotated).
    const LEN: usize;
    /// The box and its area (w·h) from the bbox values.
    fn from_coco_values(v: &[f64]) -> Option<(Self, f64)>;
}

impl FromCocoBox for Rect1 {
    const LEN: usize = 4;
    /// `[x, y, w, h]` kept in pixel-edge coordinates (IoU does not depend on the half-pixel shift, and
    /// the same arithmetic as pycocotools keeps ties identical).
    fn from_coco_values(v: &[f64]) -> Option<(Self, f64)> {
        Some((Rect1::new(v[1], v[0], v[1] + v[3], v[0] + v[2]).ok()?, v[2] * v[3]))
    }
}

impl FromCocoBox for Rect2 {
    const LEN: usize = 5;
    fn from_coco_values(v: &[f64]) -> Option<(Self, f64)> {
        Some((Rect2::from_coco_rotated([v[0], v[1], v[2], v[3], v[4]]).ok()?, v[2] * v[3]))
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::InvalidInput(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::InvalidInput(format!(
            "{}: invalid JSON at line {}, column {}: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

fn bbox<B: FromCocoBox>(v: &Value, what: &str) -> Result<(B, f64)> {
    let values: Vec<f64> = v
        .get("bbox")
        .and_then(Value::as_array)
        .map(|b| b.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    if values.len() != B::LEN || values.iter().any(|x| !x.is_finite()) {
        return Err(Error::InvalidInput(format!(
            "{what}: `bbox` must be {} finite numbers, found {values:?}",
            B::LEN
        )));
    }
    B::from_coco_values(&values).ok_or_else(|| {
        Error::InvalidInput(format!("{what}: box {values:?} has no area (zero or negative size)"))
    })
}

/// Per-image evaluation inputs and the categories (id, name) of a COCO ground-truth file.
pub type CocoInputs<B> = (Vec<ImageDetections<B>>, Vec<(u32, String)>);

/// Reads a COCO ground-truth file and a COCO results list (`[{image_id, category_id, bbox, score}]`)
/// into per-image evaluation inputs, one per ground-truth image, plus the category ids and names.
/// Ground-truth `area` is used when present (else w·h); detection area is w·h, as pycocotools does.
///
/// # Errors
/// [`Error::InvalidInput`] naming the file and entry: malformed JSON, detections for unknown images or
/// categories, boxes with NaN, zero or negative sizes, missing scores.
pub fn load_coco_detections<B: FromCocoBox>(gt_path: &Path, dt_path: &Path) -> Result<CocoInputs<B>> {
    let gt = read_json(gt_path)?;
    let dt = read_json(dt_path)?;
    let g = gt_path.display();
    let arr = |v: &Value, key: &str| -> Result<Vec<Value>> {
        match v.get(key) {
            Some(Value::Array(a)) => Ok(a.clone()),
            None if key == "annotations" => Ok(Vec::new()),
            _ => Err(Error::InvalidInput(format!("{g}: `{key}` is missing or not a list"))),
        }
    };
    let mut categories = Vec::new();
    for (i, c) in arr(&gt, "categories")?.iter().enumerate() {
        let id = c
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::InvalidInput(format!("{g}: category {i} has no id")))?;
        categories.push((id as u32, c.get("name").and_then(Value::as_str).unwrap_or_default().to_owned()));
    }
    let mut images: Vec<ImageDetections<B>> = Vec::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    for (i, img) in arr(&gt, "images")?.iter().enumerate() {
        let id = img
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::InvalidInput(format!("{g}: image {i} has no id")))?;
        if index.insert(id, images.len()).is_some() {
            return Err(Error::InvalidInput(format!("{g}: image id {id} appears twice")));
        }
        images.push(ImageDetections { image_id: id, ground_truth: Vec::new(), detections: Vec::new() });
    }
    let known_class = |c: u64| categories.iter().any(|k| u64::from(k.0) == c);
    for (i, a) in arr(&gt, "annotations")?.iter().enumerate() {
        let what = format!("{g}: annotation {i}");
        let image = a
            .get("image_id")
            .and_then(Value::as_u64)
            .and_then(|id| index.get(&id).copied())
            .ok_or_else(|| Error::InvalidInput(format!("{what}: unknown image_id")))?;
        let class = a
            .get("category_id")
            .and_then(Value::as_u64)
            .filter(|&c| known_class(c))
            .ok_or_else(|| Error::InvalidInput(format!("{what}: unknown category_id")))?;
        let (bbox, box_area) = bbox::<B>(a, &what)?;
        let area = a.get("area").and_then(Value::as_f64).unwrap_or(box_area);
        let iscrowd = a.get("iscrowd").and_then(Value::as_i64).unwrap_or(0) != 0;
        images[image].ground_truth.push(GroundTruth { class: class as u32, bbox, area, iscrowd });
    }
    let d = dt_path.display();
    let Value::Array(results) = dt else {
        return Err(Error::InvalidInput(format!("{d}: a COCO results file is a list")));
    };
    for (i, r) in results.iter().enumerate() {
        let what = format!("{d}: detection {i}");
        let id = r
            .get("image_id")
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::InvalidInput(format!("{what}: no image_id")))?;
        let image = *index.get(&id).ok_or_else(|| {
            Error::InvalidInput(format!("{what}: image_id {id} is not in the ground truth"))
        })?;
        let class = r
            .get("category_id")
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::InvalidInput(format!("{what}: no category_id")))?;
        if !known_class(class) {
            return Err(Error::InvalidInput(format!(
                "{what}: category_id {class} is not in the ground truth"
            )));
        }
        let score = r
            .get("score")
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite())
            .ok_or_else(|| Error::InvalidInput(format!("{what}: no finite score")))?;
        let (bbox, area) = bbox::<B>(r, &what)?;
        images[image].detections.push(Detection { class: class as u32, bbox, score, area });
    }
    Ok((images, categories))
}
