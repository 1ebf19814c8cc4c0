//! What `dlkit dataset info` reports per class beyond label counts: the pixels of each class in a
//! segmentation dataset, per split.

use crate::preprocess::read_dl_samples;
use crate::{DLDataset, LabelImage, Result};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Pixels of one label value of a segmentation dataset.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClassPixels {
    /// The label value (a class id, or a value that is none: an ignore value such as 255).
    pub value: u16,
    /// Whether the value is one of the dataset's class ids.
    pub is_class: bool,
    /// Pixels per split (`unsplit` for samples without one).
    pub pixels: BTreeMap<String, u64>,
    /// Images in which the value appears.
    pub images: usize,
}

/// Pixels per label value and split of a segmentation dataset: its label images
/// (`segmentation_file_name` below `segmentation_dir`), or the sample files of a preprocessed one (at
/// the network's size). Values in ascending order.
///
/// # Errors
/// The first label image or sample file that cannot be read, naming it.
pub fn segmentation_class_pixels(dataset: &DLDataset) -> Result<Vec<ClassPixels>> {
    let labels = |i: usize| -> Result<Vec<LabelImage>> {
        let s = &dataset.samples[i];
        if let (Some(dir), Some(name)) = (&dataset.dlsample_dir, &s.dlsample_file_name) {
            return Ok(read_dl_samples(&Path::new(dir).join(name))?
                .into_iter()
                .filter_map(|d| d.segmentation_image)
                .collect());
        }
        match &s.segmentation_file_name {
            Some(name) => {
                let dir = dataset.segmentation_dir.as_deref().unwrap_or_default();
                Ok(vec![LabelImage::read(&Path::new(dir).join(name))?])
            }
            None => Ok(Vec::new()),
        }
    };
    // Per sample: its split and the pixels of each value.
    let per_sample: Vec<(String, BTreeMap<u16, u64>)> = (0..dataset.samples.len())
        .into_par_iter()
        .map(|i| -> Result<(String, BTreeMap<u16, u64>)> {
            // A count per possible value (no map lookup per pixel), then the values present.
            let mut counts = vec![0u64; 1 << 16];
            for l in labels(i)? {
                for &v in &l.data {
                    counts[usize::from(v)] += 1;
                }
            }
            let present = (0..=u16::MAX).zip(counts).filter(|&(_, n)| n > 0).collect();
            let split = dataset.samples[i].split.map_or_else(|| "unsplit".to_owned(), |s| s.to_string());
            Ok((split, present))
        })
        .collect::<Result<_>>()?;
    let mut out: BTreeMap<u16, ClassPixels> = BTreeMap::new();
    for (split, counts) in per_sample {
        for (v, n) in counts {
            let e = out.entry(v).or_insert_with(|| ClassPixels {
                value: v,
                is_class: dataset.class_ids.iter().any(|c| c.get() == v),
                pixels: BTreeMap::new(),
                images: 0,
            });
            *e.pixels.entry(split.clone()).or_insert(0) += n;
            e.images += 1;
        }
    }
    Ok(out.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_per_value_and_split_from_label_images() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("img");
        let lab = dir.path().join("lab");
        std::fs::create_dir_all(&img).unwrap();
        std::fs::create_dir_all(&lab).unwrap();
        for (name, values) in [("a.png", vec![0u8, 1, 1, 255]), ("b.png", vec![0, 0, 0, 1])] {
            image::GrayImage::new(2, 2).save(img.join(name)).unwrap();
            image::GrayImage::from_raw(2, 2, values).unwrap().save(lab.join(name)).unwrap();
        }
        let params = crate::read::SegmentationReadParams {
            class_names: vec!["background".to_owned(), "part".to_owned()],
            class_ids: vec![0, 1],
            ..Default::default()
        };
        let mut ds = crate::read::read_dl_dataset_segmentation(&img, &lab, &params).unwrap();
        ds.samples[0].split = Some(dl_core::Split::Train);
        let got = segmentation_class_pixels(&ds).unwrap();
        let row = |v: u16| got.iter().find(|c| c.value == v).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!((row(0).pixels["train"], row(0).pixels["unsplit"], row(0).images), (1, 3, 2));
        assert_eq!((row(1).pixels["train"], row(1).pixels["unsplit"], row(1).images), (2, 1, 2));
        assert_eq!((row(255).pixels["train"], row(255).is_class, row(255).images), (1, false, 1));
        assert!(row(1).is_class);
    }
}
