//! Segmentation datasets: an image folder and a label-image folder matched by file stem.

use super::{abs_dir, is_image, rel_string, walk_files};
use crate::{DLDataset, Error, LabelImage, Result, SampleEntry};
use dl_core::{ClassId, ImageId};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Parameters of [`read_dl_dataset_segmentation`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SegmentationReadParams {
    /// Class names. Empty: every value found in the label images becomes a class named by its value.
    pub class_names: Vec<String>,
    /// Class ids parallel to `class_names`; empty: 0 … n−1.
    pub class_ids: Vec<i64>,
    /// Skip images without a label image instead of failing.
    pub ignore_unmatched_images: bool,
}

/// Reads the images below `image_dir` and matches each with a label image below `label_dir`: first a
/// label image with the same stem, then one whose stem contains the image's stem; several candidates are
/// narrowed to the one in the same sub-path. Samples follow the byte-wise order of the image paths with
/// image ids 0 … n−1.
///
/// # Errors
/// [`Error::Unmatched`] for an image without a label image (unless ignored), [`Error::Ambiguous`] when
/// several label images fit, [`Error::Param`] for inconsistent class lists, label-image read errors.
pub fn read_dl_dataset_segmentation(
    image_dir: &Path,
    label_dir: &Path,
    params: &SegmentationReadParams,
) -> Result<DLDataset> {
    let (img_abs, image_dir_s) = abs_dir(image_dir)?;
    let (lab_abs, label_dir_s) = abs_dir(label_dir)?;
    let images = walk_files(&img_abs, &|p: &Path| is_image(p) && !img_abs.join(p).starts_with(&lab_abs))?;
    let labels = walk_files(&lab_abs, &is_image)?;
    let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut by_stem: HashMap<String, Vec<&PathBuf>> = HashMap::new();
    for l in &labels {
        by_stem.entry(stem(l)).or_default().push(l);
    }
    let label_stems: Vec<(String, &PathBuf)> = labels.iter().map(|l| (stem(l), l)).collect();
    let mut samples = Vec::with_capacity(images.len());
    for image in &images {
        let s = stem(image);
        let mut candidates: Vec<&PathBuf> = by_stem.get(&s).cloned().unwrap_or_default();
        if candidates.is_empty() {
            candidates = label_stems.iter().filter(|(ls, _)| ls.contains(&s)).map(|(_, l)| *l).collect();
        }
        if candidates.len() > 1 {
            let same: Vec<&PathBuf> =
                candidates.iter().copied().filter(|l| l.parent() == image.parent()).collect();
            if same.len() == 1 {
                candidates = same;
            } else {
                return Err(Error::Ambiguous {
                    image: img_abs.join(image),
                    candidates: candidates.iter().map(|l| lab_abs.join(l)).collect(),
                });
            }
        }
        let Some(label) = candidates.first() else {
            if params.ignore_unmatched_images {
                continue;
            }
            return Err(Error::Unmatched(img_abs.join(image)));
        };
        samples.push(SampleEntry {
            image_id: ImageId(samples.len() as u64),
            image_file_name: rel_string(image),
            segmentation_file_name: Some(rel_string(label)),
            ..Default::default()
        });
    }
    let (class_names, class_ids) = if params.class_names.is_empty() {
        use rayon::prelude::*;
        let sets: Vec<Vec<u16>> = samples
            .par_iter()
            .map(|s| {
                Ok(LabelImage::read(&lab_abs.join(s.segmentation_file_name.as_deref().unwrap_or_default()))?
                    .values())
            })
            .collect::<Result<_>>()?;
        let values: BTreeSet<u16> = sets.into_iter().flatten().collect();
        let ids: Vec<ClassId> = values
            .iter()
            .map(|&v| ClassId::new(i64::from(v)))
            .collect::<dl_core::Result<_>>()
            .map_err(|e| Error::Param { key: "class_ids", message: e.to_string() })?;
        (values.iter().map(u16::to_string).collect(), ids)
    } else {
        let ids: Vec<i64> = if params.class_ids.is_empty() {
            (0..params.class_names.len() as i64).collect()
        } else {
            params.class_ids.clone()
        };
        if ids.len() != params.class_names.len() {
            return Err(Error::Param {
                key: "class_ids",
                message: format!("{} ids for {} names", ids.len(), params.class_names.len()),
            });
        }
        let ids = ids
            .into_iter()
            .map(ClassId::new)
            .collect::<dl_core::Result<Vec<_>>>()
            .map_err(|e| Error::Param { key: "class_ids", message: e.to_string() })?;
        (params.class_names.clone(), ids)
    };
    Ok(DLDataset {
        image_dir: image_dir_s,
        class_names,
        class_ids,
        samples,
        segmentation_dir: Some(label_dir_s),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_exact_then_substring_and_reports_unmatched() {
        let dir = tempfile::tempdir().unwrap();
        let (img, lab) = (dir.path().join("img"), dir.path().join("lab"));
        std::fs::create_dir_all(&img).unwrap();
        std::fs::create_dir_all(&lab).unwrap();
        for n in ["a.png", "b.png", "c.png"] {
            image::GrayImage::new(2, 2).save(img.join(n)).unwrap();
        }
        image::GrayImage::from_raw(2, 2, vec![0, 1, 1, 0]).unwrap().save(lab.join("a.png")).unwrap();
        image::GrayImage::from_raw(2, 2, vec![0, 2, 2, 0]).unwrap().save(lab.join("b_label.png")).unwrap();
        let err = read_dl_dataset_segmentation(&img, &lab, &SegmentationReadParams::default()).unwrap_err();
        assert!(matches!(&err, Error::Unmatched(p) if p.ends_with("c.png")), "{err}");
        let params = SegmentationReadParams { ignore_unmatched_images: true, ..Default::default() };
        let ds = read_dl_dataset_segmentation(&img, &lab, &params).unwrap();
        assert_eq!(ds.samples.len(), 2);
        assert_eq!(ds.samples[1].segmentation_file_name.as_deref(), Some("b_label.png"));
        assert_eq!(ds.class_names, ["0", "1", "2"]);
    }
}
