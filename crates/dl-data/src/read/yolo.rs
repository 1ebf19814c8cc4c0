//! YOLO txt (normalised `class cx cy w h`) and YOLO-OBB txt (normalised `class x1 y1 … x4 y4`).

use super::{abs_dir, image_size, is_image, parse_f64, read_text, rel_string, walk_files};
use crate::{DLDataset, Error, Result, SampleEntry};
use dl_core::{ClassId, ImageId, Rect1, Rect2};
use std::path::Path;

/// Parameters of [`read_dl_dataset_yolo`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct YoloReadParams {
    /// Class names by YOLO class index. Empty: read `classes.txt` (one name per line) from the label
    /// folder or its parent, else name the classes by their index.
    pub class_names: Vec<String>,
    /// Oriented boxes (YOLO-OBB, four normalised corners) → rectangle2.
    pub obb: bool,
}

/// Reads a YOLO dataset: every image below `image_dir`, its labels in `label_dir` under the same
/// relative path with extension `.txt` (no label file: an image without boxes). Samples follow the
/// byte-wise order of the image paths with image ids 0 … n−1; class ids are YOLO's class indices.
/// Coordinates are normalised pixel-edge values: col1 = (cx − w/2)·W − 0.5, … (SPEC §1.2).
///
/// # Errors
/// [`Error::Annotation`] naming the label file and line for malformed lines or unknown class indices;
/// [`Error::InvalidBox`] naming the sample for boxes without area; image header errors naming the image.
pub fn read_dl_dataset_yolo(
    image_dir: &Path,
    label_dir: &Path,
    params: &YoloReadParams,
) -> Result<DLDataset> {
    let (img_abs, image_dir_s) = abs_dir(image_dir)?;
    let (lab_abs, _) = abs_dir(label_dir)?;
    let mut class_names = params.class_names.clone();
    if class_names.is_empty() {
        for candidate in [lab_abs.join("classes.txt"), lab_abs.join("../classes.txt")] {
            if candidate.is_file() {
                class_names = read_text(&candidate)?
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                break;
            }
        }
    }
    let files = walk_files(&img_abs, &is_image)?;
    let mut max_class: Option<u16> = None;
    let mut samples = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        let mut s = SampleEntry {
            image_id: ImageId(i as u64),
            image_file_name: rel_string(file),
            ..Default::default()
        };
        let label_path = lab_abs.join(file).with_extension("txt");
        let text = if label_path.is_file() { read_text(&label_path)? } else { String::new() };
        let (w, h) = image_size(&img_abs.join(file))?;
        let (w, h) = (f64::from(w), f64::from(h));
        let mut r1 = Vec::new();
        let mut r2 = Vec::new();
        for (ln, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let place = format!("line {}", ln + 1);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let expected = if params.obb { 9 } else { 5 };
            if fields.len() != expected {
                return Err(Error::annotation(
                    &label_path,
                    format!("{place}: expected {expected} values, found {}", fields.len()),
                ));
            }
            let class: u16 = fields[0].parse().ok().filter(|&c| c <= ClassId::MAX).ok_or_else(|| {
                Error::annotation(&label_path, format!("{place}: `{}` is not a class index", fields[0]))
            })?;
            let class_id = ClassId::new(i64::from(class)).expect("checked range");
            max_class = max_class.max(Some(class));
            let v: Vec<f64> =
                fields[1..].iter().map(|f| parse_f64(f, &label_path, &place)).collect::<Result<_>>()?;
            let index = r1.len() + r2.len();
            let invalid = |source| Error::InvalidBox { image_id: ImageId(i as u64), index, source };
            if params.obb {
                let c = |k: usize| (v[2 * k + 1] * h - 0.5, v[2 * k] * w - 0.5);
                r2.push((class_id, Rect2::from_corners(&[c(0), c(1), c(2), c(3)]).map_err(invalid)?));
            } else {
                let (cx, cy, bw, bh) = (v[0], v[1], v[2], v[3]);
                let b = Rect1::new(
                    (cy - bh / 2.0) * h - 0.5,
                    (cx - bw / 2.0) * w - 0.5,
                    (cy + bh / 2.0) * h - 0.5,
                    (cx + bw / 2.0) * w - 0.5,
                )
                .map_err(invalid)?;
                r1.push((class_id, b));
            }
        }
        if params.obb {
            s.set_rect2_boxes(&r2)
        } else {
            s.set_rect1_boxes(&r1)
        }
        samples.push(s);
    }
    let needed = max_class.map_or(0, |c| usize::from(c) + 1);
    if class_names.is_empty() {
        class_names = (0..needed).map(|c| c.to_string()).collect();
    } else if class_names.len() < needed {
        return Err(Error::Param {
            key: "class_names",
            message: format!(
                "{} names given, but the labels use class index {}",
                class_names.len(),
                needed - 1
            ),
        });
    }
    let class_ids = (0..class_names.len())
        .map(|c| ClassId::new(c as i64))
        .collect::<dl_core::Result<_>>()
        .map_err(|e| Error::Param { key: "class_names", message: e.to_string() })?;
    Ok(DLDataset { image_dir: image_dir_s, class_names, class_ids, samples, ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(label: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        std::fs::create_dir_all(dir.path().join("labels")).unwrap();
        image::GrayImage::new(100, 50).save(dir.path().join("images/a.png")).unwrap();
        std::fs::write(dir.path().join("labels/a.txt"), label).unwrap();
        dir
    }

    #[test]
    fn yolo_boxes_use_pixel_edges() {
        let dir = setup("1 0.5 0.5 0.2 0.4\n");
        let p = YoloReadParams::default();
        let ds = read_dl_dataset_yolo(&dir.path().join("images"), &dir.path().join("labels"), &p).unwrap();
        let (c, b) = ds.samples[0].rect1_boxes().unwrap()[0];
        assert_eq!(c.get(), 1);
        assert_eq!((b.row1(), b.col1(), b.row2(), b.col2()), (14.5, 39.5, 34.5, 59.5));
        assert_eq!(ds.class_names, ["0", "1"]);
    }

    #[test]
    fn obb_corners_become_rectangle2() {
        let dir = setup("0 0.1 0.2 0.3 0.2 0.3 0.6 0.1 0.6\n");
        let p = YoloReadParams { obb: true, class_names: vec!["part".into()] };
        let ds = read_dl_dataset_yolo(&dir.path().join("images"), &dir.path().join("labels"), &p).unwrap();
        let (_, b) = ds.samples[0].rect2_boxes().unwrap()[0];
        assert!(
            (b.length1() - 10.0).abs() < 1e-9 && (b.length2() - 10.0).abs() < 1e-9 && b.phi().abs() < 1e-12
        );
        assert!((b.row() - 19.5).abs() < 1e-9 && (b.col() - 19.5).abs() < 1e-9);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let dir = setup("0 0.5 0.5 0.2\n");
        let err = read_dl_dataset_yolo(
            &dir.path().join("images"),
            &dir.path().join("labels"),
            &YoloReadParams::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("a.txt") && err.contains("line 1"), "{err}");
    }
}
