//! COCO detection JSON: reader (`read_dl_dataset_from_coco`) and writer ([`write_coco`]).

use super::{abs_dir, read_text};
use crate::{DLDataset, Error, Extra, Result, SampleEntry};
use dl_core::{ClassId, ImageId, Rect1, Rect2};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;

/// Parameters of [`read_dl_dataset_from_coco`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CocoReadParams {
    /// Keep each box's raw COCO annotation (`coco_raw_annotations`), each image's raw entry and the
    /// file's other keys, so [`write_coco`] reproduces the file.
    pub keep_raw_annotations: bool,
    /// Skip boxes of zero width or height instead of failing (COCO files in the wild contain some).
    pub skip_invalid_boxes: bool,
}

const RAW_IMAGE: &str = "coco_raw_image";
const RAW_TOP: &str = "coco_raw_file";
const RAW_CATEGORIES: &str = "coco_raw_categories";

/// Reads a COCO detection file. `bbox` `[x, y, w, h]` becomes rectangle1 (SPEC §1.2: col1 = x − 0.5, …);
/// a file whose boxes have a fifth value (`[cx, cy, w, h, a]`, rotated COCO) becomes rectangle2. Class
/// ids are COCO's category ids and names its category names (in the file's order); image ids are COCO's
/// image ids; samples follow the `images` array and boxes the `annotations` array. Crowd annotations
/// (`iscrowd` 1) are kept with `bbox_iscrowd` true: out of training, ignored ground truth in evaluation.
///
/// # Errors
/// [`Error::Json`] with line and column for malformed JSON; [`Error::Annotation`] naming the annotation
/// for unknown images or categories, bad boxes (unless skipped) or duplicate ids.
pub fn read_dl_dataset_from_coco(
    json_path: &Path,
    image_dir: &Path,
    params: &CocoReadParams,
) -> Result<DLDataset> {
    let (_, image_dir) = abs_dir(image_dir)?;
    let text = read_text(json_path)?;
    let root: Value = serde_json::from_str(&text).map_err(|e| Error::json(json_path, e))?;
    let bad = |message: String| Error::annotation(json_path, message);
    let Value::Object(mut top) = root else { return Err(bad("the top level is not an object".into())) };
    let take_array = |top: &mut Extra, key: &str| -> Result<Vec<Value>> {
        match top.remove(key) {
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(bad(format!("`{key}` is not a list"))),
            None if key == "annotations" => Ok(Vec::new()),
            None => Err(bad(format!("`{key}` is missing"))),
        }
    };
    let images = take_array(&mut top, "images")?;
    let annotations = take_array(&mut top, "annotations")?;
    let categories = take_array(&mut top, "categories")?;

    let mut class_ids = Vec::new();
    let mut class_names = Vec::new();
    for (i, c) in categories.iter().enumerate() {
        let id = c
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad(format!("category {i}: no integer `id`")))?;
        let id = ClassId::new(id).map_err(|e| bad(format!("category {i}: {e}")))?;
        if class_ids.contains(&id) {
            return Err(bad(format!("category {i}: duplicate id {id}")));
        }
        let name =
            c.get("name").and_then(Value::as_str).ok_or_else(|| bad(format!("category {i}: no `name`")))?;
        class_ids.push(id);
        class_names.push(name.to_owned());
    }

    let mut samples = Vec::with_capacity(images.len());
    let mut index_of: HashMap<i64, usize> = HashMap::with_capacity(images.len());
    for (i, img) in images.into_iter().enumerate() {
        let id = img
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad(format!("image {i}: no integer `id`")))?;
        let file = img
            .get("file_name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("image {i}: no `file_name`")))?;
        if id < 0 || index_of.insert(id, samples.len()).is_some() {
            return Err(bad(format!("image {i}: id {id} is negative or not unique")));
        }
        let mut s = SampleEntry {
            image_id: ImageId(id as u64),
            image_file_name: file.to_owned(),
            bbox_label_id: Some(Vec::new()),
            bbox_iscrowd: Some(Vec::new()),
            ..Default::default()
        };
        if params.keep_raw_annotations {
            s.coco_raw_annotations = Some(Vec::new());
            s.extra.insert(RAW_IMAGE.into(), img);
        }
        samples.push(s);
    }

    let rotated =
        annotations.iter().any(|a| a.get("bbox").and_then(Value::as_array).is_some_and(|b| b.len() == 5));
    let mut r1: Vec<Vec<Rect1>> = vec![Vec::new(); samples.len()];
    let mut r2: Vec<Vec<Rect2>> = vec![Vec::new(); samples.len()];
    for (i, ann) in annotations.into_iter().enumerate() {
        let ann_id = ann.get("id").map_or_else(|| "?".to_owned(), Value::to_string);
        let place = format!("annotation {i} (id {ann_id})");
        let image = ann
            .get("image_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad(format!("{place}: no `image_id`")))?;
        let &si = index_of.get(&image).ok_or_else(|| bad(format!("{place}: unknown image_id {image}")))?;
        let cat = ann
            .get("category_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad(format!("{place}: no `category_id`")))?;
        let class = ClassId::new(cat)
            .ok()
            .filter(|c| class_ids.contains(c))
            .ok_or_else(|| bad(format!("{place}: unknown category_id {cat}")))?;
        let bbox: Vec<f64> = ann
            .get("bbox")
            .and_then(Value::as_array)
            .map(|b| b.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        let expected = if rotated { 5 } else { 4 };
        if bbox.len() != expected {
            return Err(bad(format!("{place}: `bbox` must be {expected} numbers, found {bbox:?}")));
        }
        let geometry = if rotated {
            Rect2::from_coco_rotated([bbox[0], bbox[1], bbox[2], bbox[3], bbox[4]]).map(|b| r2[si].push(b))
        } else {
            Rect1::from_coco([bbox[0], bbox[1], bbox[2], bbox[3]]).map(|b| r1[si].push(b))
        };
        if let Err(e) = geometry {
            if params.skip_invalid_boxes {
                continue;
            }
            return Err(Error::Sample { image_id: samples[si].image_id, message: format!("{place}: {e}") });
        }
        let crowd = ann.get("iscrowd").and_then(Value::as_i64).unwrap_or(0) != 0;
        let s = &mut samples[si];
        s.bbox_label_id.get_or_insert_default().push(class);
        s.bbox_iscrowd.get_or_insert_default().push(crowd);
        if let Some(raw) = s.coco_raw_annotations.as_mut() {
            raw.push(ann);
        }
    }
    for (i, s) in samples.iter_mut().enumerate() {
        let labels = s.bbox_label_id.take().unwrap_or_default();
        if rotated {
            s.set_rect2_boxes(&labels.into_iter().zip(r2[i].iter().copied()).collect::<Vec<_>>());
        } else {
            s.set_rect1_boxes(&labels.into_iter().zip(r1[i].iter().copied()).collect::<Vec<_>>());
        }
    }
    let mut extra = Extra::new();
    if params.keep_raw_annotations {
        extra.insert(RAW_TOP.into(), Value::Object(top));
        extra.insert(RAW_CATEGORIES.into(), Value::Array(categories));
    }
    Ok(DLDataset { image_dir, class_names, class_ids, samples, extra, ..Default::default() })
}

/// Writes a detection dataset as COCO JSON. Boxes whose raw annotation was kept (and still describes
/// the same box) are written as read, so reading with `keep_raw_annotations` and writing reproduces the
/// file; other boxes get fresh annotations (`id` counting from 1, `area` = w·h, `iscrowd`). Rectangle2
/// boxes are written as `[cx, cy, w, h, a]`.
///
/// # Errors
/// [`Error::Sample`] or [`Error::InvalidBox`] for samples whose box lists are inconsistent.
pub fn write_coco(dataset: &DLDataset) -> Result<Value> {
    let mut out = match dataset.extra.get(RAW_TOP) {
        Some(Value::Object(top)) => top.clone(),
        _ => Extra::new(),
    };
    let mut images = Vec::with_capacity(dataset.samples.len());
    let mut annotations = Vec::new();
    let mut next_id = 1i64;
    for s in &dataset.samples {
        let mut image = match s.extra.get(RAW_IMAGE) {
            Some(Value::Object(raw)) => raw.clone(),
            _ => Extra::new(),
        };
        image.insert("id".into(), json!(s.image_id.0));
        image.insert("file_name".into(), json!(s.image_file_name));
        images.push(Value::Object(image));
        let crowd = s.bbox_iscrowd.clone().unwrap_or_default();
        let raw = s.coco_raw_annotations.as_deref().unwrap_or_default();
        let boxes: Vec<(ClassId, Value, f64)> = if s.bbox_phi.is_some() {
            s.rect2_boxes()?.into_iter().map(|(c, b)| (c, json!(b.to_coco_rotated()), b.area())).collect()
        } else {
            s.rect1_boxes()?.into_iter().map(|(c, b)| (c, json!(b.to_coco()), b.area())).collect()
        };
        for (i, (class, bbox, area)) in boxes.into_iter().enumerate() {
            let kept = raw.get(i).filter(|r| {
                r.get("category_id").and_then(Value::as_i64) == Some(i64::from(class.get()))
                    && same_box(r.get("bbox"), &bbox)
            });
            match kept {
                Some(r) => annotations.push(r.clone()),
                None => {
                    annotations.push(json!({
                        "id": next_id, "image_id": s.image_id.0, "category_id": class.get(),
                        "bbox": bbox, "area": area, "iscrowd": i32::from(crowd.get(i).copied().unwrap_or(false)),
                    }));
                }
            }
            next_id += 1;
        }
    }
    let categories = match dataset.extra.get(RAW_CATEGORIES) {
        Some(Value::Array(c)) if c.len() == dataset.class_ids.len() => c.clone(),
        _ => dataset
            .class_ids
            .iter()
            .zip(&dataset.class_names)
            .map(|(id, name)| json!({"id": id.get(), "name": name}))
            .collect(),
    };
    out.insert("images".into(), Value::Array(images));
    out.insert("annotations".into(), Value::Array(annotations));
    out.insert("categories".into(), Value::Array(categories));
    Ok(Value::Object(out))
}

/// Whether a raw COCO bbox converts to the same box as `bbox` (written from the current box).
fn same_box(raw: Option<&Value>, bbox: &Value) -> bool {
    let (Some(raw), Some(now)) = (raw.and_then(Value::as_array), bbox.as_array()) else { return false };
    let raw: Vec<f64> = raw.iter().filter_map(Value::as_f64).collect();
    let now: Vec<f64> = now.iter().filter_map(Value::as_f64).collect();
    match raw.len() {
        4 => Rect1::from_coco([raw[0], raw[1], raw[2], raw[3]])
            .ok()
            .zip(Rect1::from_coco([now[0], now[1], now[2], now[3]]).ok())
            .is_some_and(|(a, b)| a == b || a.to_coco() == now[..]),
        5 => raw.iter().zip(&now).all(|(a, b)| (a - b).abs() <= 1e-9 * a.abs().max(1.0)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COCO: &str = r#"{"info":{"v":1},"images":[{"id":5,"file_name":"a.png","width":10,"height":8},
      {"id":7,"file_name":"b.png"}],
      "annotations":[{"id":1,"image_id":5,"category_id":3,"bbox":[1.25,2,3,4],"area":12,"iscrowd":0},
      {"id":2,"image_id":5,"category_id":9,"bbox":[0,0,10,8],"area":80,"iscrowd":1,"segmentation":{"counts":"x"}}],
      "categories":[{"id":3,"name":"cat","supercategory":"animal"},{"id":9,"name":"crowd"}]}"#;

    fn read(text: &str, keep: bool) -> Result<DLDataset> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        std::fs::write(&p, text).unwrap();
        read_dl_dataset_from_coco(
            &p,
            dir.path(),
            &CocoReadParams { keep_raw_annotations: keep, ..Default::default() },
        )
    }

    #[test]
    fn reads_boxes_crowd_and_empty_images() {
        let ds = read(COCO, false).unwrap();
        assert_eq!(ds.class_names, ["cat", "crowd"]);
        let b = ds.samples[0].rect1_boxes().unwrap();
        assert_eq!((b[0].1.row1(), b[0].1.col1(), b[0].1.row2(), b[0].1.col2()), (1.5, 0.75, 5.5, 3.75));
        assert_eq!(ds.samples[0].bbox_iscrowd, Some(vec![false, true]));
        assert_eq!(ds.samples[1].num_boxes(), 0);
        assert_eq!(ds.samples[1].image_id, ImageId(7));
    }

    #[test]
    fn round_trip_with_raw_is_exact() {
        let ds = read(COCO, true).unwrap();
        let written = write_coco(&ds).unwrap();
        let original: Value = serde_json::from_str(COCO).unwrap();
        assert_eq!(written, original);
    }

    #[test]
    fn round_trip_without_raw_reads_back_equal() {
        let ds = read(COCO, false).unwrap();
        let written = serde_json::to_string(&write_coco(&ds).unwrap()).unwrap();
        let mut again = read(&written, false).unwrap();
        again.image_dir = ds.image_dir.clone();
        assert_eq!(again, ds);
    }

    #[test]
    fn errors_name_the_annotation() {
        let err = read(
            &COCO.replace("\"image_id\":5,\"category_id\":3", "\"image_id\":6,\"category_id\":3"),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("annotation 0 (id 1): unknown image_id 6"), "{err}");
        let err = read(&COCO.replace("[1.25,2,3,4]", "[1,2,0,4]"), false).unwrap_err().to_string();
        assert!(err.contains("sample 5") && err.contains("annotation 0"), "{err}");
        let err = read("{\"images\": [", false).unwrap_err();
        assert!(matches!(err, Error::Json { line: 1, .. }), "{err}");
    }
}
