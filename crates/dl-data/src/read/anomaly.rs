//! Anomaly datasets in the MVTec AD layout.

use super::{abs_dir, is_image, rel_string, walk_files};
use crate::{AnomalyLabel, DLDataset, Result, SampleEntry};
use dl_core::{ClassId, ImageId};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Reads every image below `image_dir`: one whose folder is `good` or `ok` (any case) is 'ok', any other
/// is 'nok'. With `anomaly_dir`, a 'nok' image's ground-truth mask is the image below it with the same
/// sub-folder and stem, or stem + `_mask` (MVTec's `ground_truth/<defect>/000_mask.png` for
/// `test/<defect>/000.png`; the `train`/`test` level is ignored in the match). Images inside
/// `anomaly_dir` are not samples. Classes are ['ok', 'nok'] with ids [0, 1]; samples follow the byte-wise
/// order of image paths with image ids 0 … n−1.
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) naming a folder that cannot be read.
pub fn read_dl_dataset_anomaly(image_dir: &Path, anomaly_dir: Option<&Path>) -> Result<DLDataset> {
    let (img_abs, image_dir_s) = abs_dir(image_dir)?;
    let anomaly = anomaly_dir.map(abs_dir).transpose()?;
    let skip = anomaly.as_ref().map(|(a, _)| a.clone());
    let images = walk_files(&img_abs, &|p: &Path| {
        is_image(p) && skip.as_ref().is_none_or(|a| !img_abs.join(p).starts_with(a))
    })?;
    let mut masks: HashMap<(String, String), PathBuf> = HashMap::new();
    if let Some((abs, _)) = &anomaly {
        for m in walk_files(abs, &is_image)? {
            let folder = last_folder(&m);
            let stem = m.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let stem = stem.strip_suffix("_mask").map(str::to_owned).unwrap_or(stem);
            masks.insert((folder, stem), m);
        }
    }
    let samples = images
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let folder = last_folder(p);
            let ok = folder.eq_ignore_ascii_case("good") || folder.eq_ignore_ascii_case("ok");
            let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let mask = if ok { None } else { masks.get(&(folder, stem)).map(|m| rel_string(m)) };
            SampleEntry {
                image_id: ImageId(i as u64),
                image_file_name: rel_string(p),
                anomaly_label: Some(if ok { AnomalyLabel::Ok } else { AnomalyLabel::Nok }),
                anomaly_file_name: mask,
                ..Default::default()
            }
        })
        .collect();
    Ok(DLDataset {
        image_dir: image_dir_s,
        class_names: vec!["ok".into(), "nok".into()],
        class_ids: vec![ClassId::new(0).expect("0 is valid"), ClassId::new(1).expect("1 is valid")],
        samples,
        anomaly_dir: anomaly.map(|(_, s)| s),
        ..Default::default()
    })
}

fn last_folder(p: &Path) -> String {
    p.parent().and_then(|f| f.file_name()).map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mvtec_layout_with_masks() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "train/good/000.png",
            "test/good/000.png",
            "test/crack/000.png",
            "ground_truth/crack/000_mask.png",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            image::GrayImage::new(2, 2).save(p).unwrap();
        }
        let ds = read_dl_dataset_anomaly(dir.path(), Some(&dir.path().join("ground_truth"))).unwrap();
        let labels: Vec<_> =
            ds.samples.iter().map(|s| (s.image_file_name.as_str(), s.anomaly_label.unwrap())).collect();
        assert_eq!(
            labels,
            [
                ("test/crack/000.png", AnomalyLabel::Nok),
                ("test/good/000.png", AnomalyLabel::Ok),
                ("train/good/000.png", AnomalyLabel::Ok)
            ]
        );
        assert_eq!(ds.samples[0].anomaly_file_name.as_deref(), Some("crack/000_mask.png"));
    }
}
