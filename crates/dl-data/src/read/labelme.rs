//! labelme JSON: rectangles and polygons → boxes, or polygons → label images.

use super::{abs_dir, class_table, read_text, rel_string, walk_files};
use crate::{DLDataset, Error, InstanceType, Result, SampleEntry};
use dl_core::{ClassId, ImageId, Point, Rect1, Rect2};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The labelme label whose pixels are left out of training and evaluation (segmentation).
const IGNORE_LABEL: &str = "__ignore__";
/// The label-image value of `__ignore__` pixels (add it to `ignore_class_ids`).
pub const LABELME_IGNORE_VALUE: u16 = 255;
const IGNORE_VALUE: ClassId = ClassId::from_u16(LABELME_IGNORE_VALUE).unwrap();

/// Parameters of [`read_dl_dataset_labelme`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelmeReadParams {
    /// Box type: rectangle1 (a polygon becomes its enclosing box) or rectangle2 (a polygon becomes its
    /// minimum-area rectangle; a rectangle keeps φ = 0).
    pub instance_type: InstanceType,
    /// When set, write one label image per sample into this folder (PNG, class id per pixel, 0 =
    /// `_background_`, 255 = `__ignore__`, shapes painted in file order) and return a segmentation
    /// dataset instead (with `ignore_class_ids` = `[255]` when `__ignore__` shapes were painted).
    pub label_image_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
struct LabelmeFile {
    #[serde(rename = "imagePath")]
    image_path: String,
    #[serde(rename = "imageHeight")]
    image_height: Option<usize>,
    #[serde(rename = "imageWidth")]
    image_width: Option<usize>,
    shapes: Vec<Shape>,
}

#[derive(Deserialize)]
struct Shape {
    label: String,
    points: Vec<[f64; 2]>,
    #[serde(default = "polygon")]
    shape_type: String,
}

fn polygon() -> String {
    "polygon".into()
}

/// Reads every labelme `*.json` below `dir`; each names its image by `imagePath`, relative to the JSON
/// file. Only `rectangle` and `polygon` shapes are used (points, lines and circles are skipped). labelme
/// points are pixel-edge (x, y): they become (row, col) = (y − 0.5, x − 0.5). Samples follow the
/// byte-wise order of the JSON paths, image ids 0 … n−1; class ids 0 … k−1 in sorted label order (with
/// `label_image_dir`: 0 is `_background_`, labels from 1).
///
/// # Errors
/// [`Error::Json`] with line and column; [`Error::Annotation`] for shapes with too few points;
/// [`Error::InvalidBox`] for shapes without area; write errors naming the label image.
pub fn read_dl_dataset_labelme(dir: &Path, params: &LabelmeReadParams) -> Result<DLDataset> {
    let (abs, image_dir) = abs_dir(dir)?;
    let files = walk_files(&abs, &|p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")))?;
    let mut parsed = Vec::with_capacity(files.len());
    for rel in &files {
        let path = abs.join(rel);
        let file: LabelmeFile =
            serde_json::from_str(&read_text(&path)?).map_err(|e| Error::json(&path, e))?;
        let image = rel.parent().unwrap_or(Path::new("")).join(&file.image_path);
        parsed.push((path, rel_string(&image), file));
    }
    let used = |s: &Shape| s.shape_type == "rectangle" || s.shape_type == "polygon";
    let labels: BTreeSet<String> = parsed
        .iter()
        .flat_map(|(_, _, f)| f.shapes.iter().filter(|s| used(s)).map(|s| s.label.clone()))
        .collect();
    let segmentation = params.label_image_dir.is_some();
    let mut labels = labels;
    if segmentation {
        // labelme2voc's conventions: `_background_` is class 0, `__ignore__` pixels are 255.
        labels.remove("_background_");
        labels.remove(IGNORE_LABEL);
    }
    let (mut class_names, mut class_ids) = class_table(labels)?;
    if segmentation {
        class_names.insert(0, "_background_".into());
        class_ids.push(
            ClassId::new(class_ids.len() as i64)
                .map_err(|e| Error::Param { key: "labels", message: e.to_string() })?,
        );
    }
    let seg_dir = match &params.label_image_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(Error::io("creating", d))?;
            Some(abs_dir(d)?)
        }
        None => None,
    };
    let mut samples = Vec::with_capacity(parsed.len());
    let mut painted_ignore = false;
    for (i, (path, image_file_name, file)) in parsed.into_iter().enumerate() {
        let image_id = ImageId(i as u64);
        let mut s = SampleEntry { image_id, image_file_name, ..Default::default() };
        let class_of = |label: &str| {
            if segmentation && label == IGNORE_LABEL {
                return IGNORE_VALUE;
            }
            let idx = class_names.iter().position(|n| n == label).expect("label is in the table");
            class_ids[idx]
        };
        let mut shapes: Vec<(ClassId, Vec<Point>, bool)> = Vec::new();
        for (k, shape) in file.shapes.iter().filter(|s| used(s)).enumerate() {
            let rect = shape.shape_type == "rectangle";
            let need = if rect { 2 } else { 3 };
            if shape.points.len() < need {
                return Err(Error::annotation(
                    &path,
                    format!("shape {k} ({}): {} points, need {need}", shape.shape_type, shape.points.len()),
                ));
            }
            let pts: Vec<Point> = shape.points.iter().map(|p| (p[1] - 0.5, p[0] - 0.5)).collect();
            shapes.push((class_of(&shape.label), pts, rect));
        }
        if let Some((seg_abs, _)) = &seg_dir {
            let (Some(h), Some(w)) = (file.image_height, file.image_width) else {
                return Err(Error::annotation(
                    &path,
                    "imageHeight and imageWidth are needed to draw label images",
                ));
            };
            let mut label = vec![0u8; w * h];
            painted_ignore |= shapes.iter().any(|(c, _, _)| *c == IGNORE_VALUE);
            for (class, pts, rect) in &shapes {
                let poly = if *rect {
                    let (a, b) = (pts[0], pts[1]);
                    vec![(a.0, a.1), (a.0, b.1), (b.0, b.1), (b.0, a.1)]
                } else {
                    pts.clone()
                };
                fill_polygon(&mut label, w, h, &poly, class.get().min(255) as u8);
            }
            let name = format!("{}.png", Path::new(&s.image_file_name).with_extension("").to_string_lossy());
            let out = seg_abs.join(&name);
            if let Some(parent) = out.parent() {
                std::fs::create_dir_all(parent).map_err(Error::io("creating", parent))?;
            }
            let img = ::image::GrayImage::from_raw(w as u32, h as u32, label).expect("buffer has w·h pixels");
            crate::write_png_atomic(&out, &::image::DynamicImage::ImageLuma8(img))?;
            s.segmentation_file_name = Some(name);
        } else {
            let mut r1 = Vec::new();
            let mut r2 = Vec::new();
            for (index, (class, pts, rect)) in shapes.into_iter().enumerate() {
                let invalid = |source| Error::InvalidBox { image_id, index, source };
                let (rows, cols): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
                let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
                let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let enclosing =
                    Rect1::new(min(&rows), min(&cols), max(&rows), max(&cols)).map_err(invalid)?;
                match params.instance_type {
                    InstanceType::Rectangle1 => r1.push((class, enclosing)),
                    InstanceType::Rectangle2 if rect => r2.push((class, enclosing.to_rect2())),
                    InstanceType::Rectangle2 => r2.push((class, Rect2::min_area(&pts).map_err(invalid)?)),
                }
            }
            match params.instance_type {
                InstanceType::Rectangle1 => s.set_rect1_boxes(&r1),
                InstanceType::Rectangle2 => s.set_rect2_boxes(&r2),
            }
        }
        samples.push(s);
    }
    let mut extra = crate::Extra::new();
    if painted_ignore {
        extra.insert(crate::dataset::IGNORE_CLASS_IDS.into(), serde_json::json!([LABELME_IGNORE_VALUE]));
    }
    Ok(DLDataset {
        image_dir,
        class_names,
        class_ids,
        samples,
        segmentation_dir: seg_dir.map(|(_, s)| s),
        extra,
        ..Default::default()
    })
}

/// Paints every pixel whose centre lies inside `poly` (even–odd rule; (row, col) pixel-centre coords).
fn fill_polygon(label: &mut [u8], w: usize, h: usize, poly: &[Point], value: u8) {
    let n = poly.len();
    for r in 0..h {
        let y = r as f64;
        let mut xs: Vec<f64> = Vec::new();
        for i in 0..n {
            let (a, b) = (poly[i], poly[(i + 1) % n]);
            if (a.0 <= y && b.0 > y) || (b.0 <= y && a.0 > y) {
                xs.push(a.1 + (y - a.0) / (b.0 - a.0) * (b.1 - a.1));
            }
        }
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks_exact(2) {
            let start = pair[0].ceil().max(0.0) as usize;
            let end = pair[1].floor().min(w as f64 - 1.0);
            if end < 0.0 {
                continue;
            }
            for c in start..=end as usize {
                label[r * w + c] = value;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_polygon_fills_its_pixels() {
        let mut label = vec![0u8; 25];
        // Pixel-edge square from (1,1) to (3,3) → centres 1..=2.
        fill_polygon(&mut label, 5, 5, &[(0.5, 0.5), (0.5, 2.5), (2.5, 2.5), (2.5, 0.5)], 7);
        let set: Vec<usize> = (0..25).filter(|&i| label[i] == 7).collect();
        assert_eq!(set, vec![6, 7, 11, 12]);
    }
}
