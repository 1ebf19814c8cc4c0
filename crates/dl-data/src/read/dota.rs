//! DOTA txt: `x1 y1 x2 y2 x3 y3 x4 y4 class [difficult]` in pixel-edge coordinates → rectangle2.

use super::{abs_dir, class_table, is_image, parse_f64, read_text, rel_string, walk_files};
use crate::{DLDataset, Error, Result, SampleEntry};
use dl_core::{ImageId, Rect2};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Reads a DOTA dataset: every `*.txt` below `label_dir` describes the image with the same relative
/// stem below `image_dir` (any image extension). Header lines (`imagesource:`, `gsd:`) are skipped.
/// Each box is the rectangle2 fitting its four corners with length1 along the first edge. Samples follow
/// the byte-wise order of the label paths, image ids 0 … n−1; class ids 0 … k−1 in sorted name order.
/// `difficult` flags go to the sample's `bbox_difficult` key.
///
/// # Errors
/// [`Error::Annotation`] naming file and line; [`Error::Param`] when a label file has no image.
pub fn read_dl_dataset_dota(image_dir: &Path, label_dir: &Path) -> Result<DLDataset> {
    let (img_abs, image_dir_s) = abs_dir(image_dir)?;
    let (lab_abs, _) = abs_dir(label_dir)?;
    let images: HashMap<PathBuf, PathBuf> =
        walk_files(&img_abs, &is_image)?.into_iter().map(|p| (p.with_extension(""), p)).collect();
    let labels = walk_files(&lab_abs, &|p: &Path| p.extension().is_some_and(|e| e == "txt"))?;
    let mut parsed = Vec::with_capacity(labels.len());
    for rel in &labels {
        let path = lab_abs.join(rel);
        let image = images.get(&rel.with_extension("")).ok_or_else(|| Error::Param {
            key: "image_dir",
            message: format!("no image for {} in {}", rel.display(), img_abs.display()),
        })?;
        let mut objects = Vec::new();
        for (ln, line) in read_text(&path)?.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with("imagesource") || t.starts_with("gsd") {
                continue;
            }
            let place = format!("line {}", ln + 1);
            let f: Vec<&str> = t.split_whitespace().collect();
            if f.len() < 9 || f.len() > 10 {
                return Err(Error::annotation(
                    &path,
                    format!("{place}: expected 8 coordinates, a class and a difficulty flag"),
                ));
            }
            let v: Vec<f64> = f[..8].iter().map(|x| parse_f64(x, &path, &place)).collect::<Result<_>>()?;
            let corners = [0, 1, 2, 3].map(|k| (v[2 * k + 1] - 0.5, v[2 * k] - 0.5));
            objects.push((f[8].to_owned(), corners, f.get(9).is_some_and(|d| *d == "1")));
        }
        parsed.push((rel_string(image), objects));
    }
    let names: BTreeSet<String> = parsed.iter().flat_map(|(_, o)| o.iter().map(|x| x.0.clone())).collect();
    let (class_names, class_ids) = class_table(names)?;
    let mut samples = Vec::with_capacity(parsed.len());
    for (i, (file, objects)) in parsed.into_iter().enumerate() {
        let image_id = ImageId(i as u64);
        let mut boxes = Vec::new();
        let mut difficult = Vec::new();
        for (index, (name, corners, diff)) in objects.into_iter().enumerate() {
            let b = Rect2::from_corners(&corners).map_err(|source| Error::InvalidBox {
                image_id,
                index,
                source,
            })?;
            boxes.push((class_ids[class_names.binary_search(&name).expect("in table")], b));
            difficult.push(serde_json::Value::Bool(diff));
        }
        let mut s = SampleEntry { image_id, image_file_name: file, ..Default::default() };
        s.set_rect2_boxes(&boxes);
        s.extra.insert("bbox_difficult".into(), serde_json::Value::Array(difficult));
        samples.push(s);
    }
    Ok(DLDataset { image_dir: image_dir_s, class_names, class_ids, samples, ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rotated_boxes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p1.png"), b"").unwrap();
        std::fs::write(dir.path().join("p1.txt"), "imagesource:x\ngsd:0.1\n10 10 30 10 30 20 10 20 ship 0\n")
            .unwrap();
        let ds = read_dl_dataset_dota(dir.path(), dir.path()).unwrap();
        let (_, b) = ds.samples[0].rect2_boxes().unwrap()[0];
        assert_eq!((b.row(), b.col(), b.length1(), b.length2()), (14.5, 19.5, 10.0, 5.0));
        assert_eq!(ds.class_names, ["ship"]);
    }
}
