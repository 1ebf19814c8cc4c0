//! `DLDataset::validate`: every problem of a dataset, each naming its sample or file.

use crate::{DLDataset, LabelImage};
use dl_core::ImageId;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// One problem found by [`DLDataset::validate`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Problem {
    /// The sample concerned, if any.
    pub image_id: Option<ImageId>,
    /// The file concerned, if any.
    pub path: Option<PathBuf>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(id) = self.image_id {
            write!(f, "sample {id}: ")?;
        }
        if let Some(p) = &self.path {
            write!(f, "{}: ", p.display())?;
        }
        f.write_str(&self.message)
    }
}

impl DLDataset {
    /// Checks the dataset and returns every problem found (empty when it is sound): class lists of
    /// different lengths or with duplicate ids, duplicate image ids, missing images, label images or
    /// anomaly masks, class ids not in `class_ids`, inconsistent or invalid boxes, label images whose
    /// values are neither class ids nor [`DLDataset::ignore_class_ids`] (or unreadable).
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let global = |message: String| Problem { image_id: None, path: None, message };
        if self.class_names.len() != self.class_ids.len() {
            problems.push(global(format!(
                "{} class_names but {} class_ids",
                self.class_names.len(),
                self.class_ids.len()
            )));
        }
        let mut seen = HashSet::new();
        for id in &self.class_ids {
            if !seen.insert(*id) {
                problems.push(global(format!("class id {id} appears twice in class_ids")));
            }
        }
        let classes: HashSet<u16> = self.class_ids.iter().map(|c| c.get()).collect();
        let labels: HashSet<u16> =
            classes.iter().copied().chain(self.ignore_class_ids().iter().map(|c| c.get())).collect();
        let mut ids: HashMap<ImageId, usize> = HashMap::new();
        for s in &self.samples {
            *ids.entry(s.image_id).or_default() += 1;
        }
        let mut dup: Vec<_> = ids.into_iter().filter(|&(_, n)| n > 1).collect();
        dup.sort();
        for (id, n) in dup {
            problems.push(Problem {
                image_id: Some(id),
                path: None,
                message: format!("image id used by {n} samples"),
            });
        }
        let image_dir = Path::new(&self.image_dir);
        let seg_dir = Path::new(self.segmentation_dir.as_deref().unwrap_or_default());
        let ano_dir = Path::new(self.anomaly_dir.as_deref().unwrap_or_default());
        let per_sample: Vec<Vec<Problem>> = self
            .samples
            .par_iter()
            .map(|s| {
                let mut out = Vec::new();
                let mut push = |path: Option<PathBuf>, message: String| {
                    out.push(Problem { image_id: Some(s.image_id), path, message })
                };
                let image = image_dir.join(&s.image_file_name);
                if !image.is_file() {
                    push(Some(image), "image file is missing".into());
                }
                for id in s.image_label_id.iter().flatten().chain(s.bbox_label_id.iter().flatten()) {
                    if !classes.contains(&id.get()) {
                        push(None, format!("class id {id} is not in class_ids"));
                    }
                }
                if s.bbox_label_id.is_some() {
                    let boxes = if s.bbox_phi.is_some() {
                        s.rect2_boxes().map(|_| ())
                    } else {
                        s.rect1_boxes().map(|_| ())
                    };
                    if let Err(e) = boxes {
                        push(None, e.detail());
                    }
                }
                if let Some(name) = &s.segmentation_file_name {
                    let path = seg_dir.join(name);
                    match LabelImage::read(&path) {
                        Err(e) => push(Some(path), format!("label image: {}", e.detail())),
                        Ok(label) => {
                            let bad: Vec<u16> =
                                label.values().into_iter().filter(|v| !labels.contains(v)).collect();
                            if !bad.is_empty() {
                                push(
                                    Some(path),
                                    format!("label image values {bad:?} are neither class ids nor ignore_class_ids"),
                                );
                            }
                        }
                    }
                }
                if let Some(name) = &s.anomaly_file_name {
                    let path = ano_dir.join(name);
                    if !path.is_file() {
                        push(Some(path), "anomaly mask is missing".into());
                    }
                }
                out
            })
            .collect();
        problems.extend(per_sample.into_iter().flatten());
        problems
    }
}

#[cfg(test)]
mod tests {
    use crate::{DLDataset, SampleEntry};
    use dl_core::{ClassId, ImageId};

    #[test]
    fn reports_every_problem_with_its_sample() {
        let dir = tempfile::tempdir().unwrap();
        image::GrayImage::new(2, 2).save(dir.path().join("a.png")).unwrap();
        let mut ds = DLDataset { image_dir: dir.path().to_string_lossy().into(), ..Default::default() };
        ds.class_ids = vec![ClassId::new(0).unwrap(), ClassId::new(0).unwrap()];
        ds.class_names = vec!["x".into()];
        let entry = |id, file: &str| SampleEntry {
            image_id: ImageId(id),
            image_file_name: file.into(),
            ..Default::default()
        };
        ds.samples = vec![entry(1, "a.png"), entry(1, "gone.png"), entry(2, "a.png")];
        ds.samples[2].bbox_label_id = Some(vec![ClassId::new(3).unwrap()]);
        ds.samples[2].bbox_row1 = Some(vec![0.0]);
        ds.samples[2].bbox_col1 = Some(vec![0.0]);
        ds.samples[2].bbox_row2 = Some(vec![0.0]);
        ds.samples[2].bbox_col2 = Some(vec![1.0]);
        let text: Vec<String> = ds.validate().iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 6, "{text:#?}");
        assert!(text[0].contains("1 class_names but 2 class_ids"));
        assert!(text[1].contains("class id 0 appears twice"));
        assert!(text[2].starts_with("sample 1: image id used by 2 samples"));
        assert!(text[3].contains("gone.png") && text[3].contains("missing"));
        assert!(text[4].starts_with("sample 2: class id 3 is not in class_ids"));
        assert!(text[5].starts_with("sample 2: box 0: invalid rectangle1"), "{}", text[5]);
    }

    /// Label-image problems name the file once, with the cause.
    #[test]
    fn label_image_problems_name_the_file_once() {
        let dir = tempfile::tempdir().unwrap();
        image::GrayImage::new(2, 2).save(dir.path().join("a.png")).unwrap();
        image::RgbImage::new(2, 2).save(dir.path().join("rgb.png")).unwrap();
        std::fs::write(dir.path().join("junk.png"), b"junk").unwrap();
        let mut ds = DLDataset { image_dir: dir.path().to_string_lossy().into(), ..Default::default() };
        ds.segmentation_dir = Some(dir.path().to_string_lossy().into());
        ds.class_ids = vec![ClassId::new(0).unwrap()];
        ds.class_names = vec!["x".into()];
        ds.samples = ["rgb.png", "junk.png", "gone.png"]
            .iter()
            .enumerate()
            .map(|(i, label)| SampleEntry {
                image_id: ImageId(i as u64),
                image_file_name: "a.png".into(),
                segmentation_file_name: Some((*label).into()),
                ..Default::default()
            })
            .collect();
        let text: Vec<String> = ds.validate().iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:#?}");
        for (t, (name, cause)) in text.iter().zip([
            ("rgb.png", "label image: unsupported pixel type 3 channels"),
            ("junk.png", "label image: cannot decode: "),
            ("gone.png", "label image: reading image: "),
        ]) {
            assert_eq!(t.matches(name).count(), 1, "{t}");
            assert!(t.contains(cause), "{t}");
        }
    }
}
