//! `gen_dl_segmentation_weights`: per-class loss weights from train-split pixel frequencies.

use super::{SampleStorage, read_dl_samples, write_dl_samples_with};
use crate::{DLDataset, Error, HostImage, Result};
use dl_core::Split;
use rayon::prelude::*;
use std::path::Path;

/// Computes per-class weights from the train split of a preprocessed segmentation dataset and writes
/// them: w_c = 1 / (freq_c + 1e−4) for classes present, scaled so the most frequent class has weight 1,
/// clipped at `max_weight`; classes in `ignore_class_ids` and classes absent from the train split get
/// weight 0. Each train sample file gets a `weight_image` (its pixels' class weights); the dataset gets
/// `class_weights`, parallel to `class_ids`. Returns the weights.
///
/// # Errors
/// [`Error::Param`] when the dataset is not preprocessed, has no train split, or `max_weight` is not
/// positive; sample-file errors naming the file.
pub fn gen_dl_segmentation_weights(dataset: &mut DLDataset, max_weight: f64) -> Result<Vec<f64>> {
    if max_weight.is_nan() || max_weight <= 0.0 {
        return Err(Error::Param {
            key: "max_weight",
            message: format!("{max_weight}: must be greater than 0"),
        });
    }
    let (Some(dir), Some(param)) = (dataset.dlsample_dir.clone(), dataset.preprocess_param.clone()) else {
        return Err(Error::Param { key: "dlsample_dir", message: "the dataset is not preprocessed".into() });
    };
    let dir = Path::new(&dir);
    let ignore: Vec<u16> = param.ignore_class_ids.iter().map(|c| c.get()).collect();
    let table = crate::class_index_table(&dataset.class_ids);
    let index_of = |v: u16| usize::try_from(table[usize::from(v)]).ok();
    let train: Vec<&str> = dataset
        .samples
        .iter()
        .filter(|s| s.split == Some(Split::Train))
        .filter_map(|s| s.dlsample_file_name.as_deref())
        .collect();
    if train.is_empty() {
        return Err(Error::Param {
            key: "split",
            message: "no train samples with sample files: split the dataset before computing weights".into(),
        });
    }
    let n = dataset.class_ids.len();
    let counts = train
        .par_iter()
        .map(|name| -> Result<Vec<u64>> {
            let mut c = vec![0u64; n];
            for s in read_dl_samples(&dir.join(name))? {
                for &v in s.segmentation_image.iter().flat_map(|l| l.data.iter()) {
                    if let Some(i) = index_of(v)
                        && !ignore.contains(&v)
                    {
                        c[i] += 1;
                    }
                }
            }
            Ok(c)
        })
        .try_reduce(|| vec![0u64; n], |a, b| Ok(a.iter().zip(&b).map(|(x, y)| x + y).collect()))?;
    let total: u64 = counts.iter().sum();
    let freq: Vec<f64> =
        counts.iter().map(|&c| if total > 0 { c as f64 / total as f64 } else { 0.0 }).collect();
    let max_freq = freq.iter().copied().fold(0.0, f64::max);
    let weights: Vec<f64> = (0..n)
        .map(|i| if counts[i] == 0 { 0.0 } else { ((max_freq + 1e-4) / (freq[i] + 1e-4)).min(max_weight) })
        .collect();
    train.par_iter().try_for_each(|name| -> Result<()> {
        let path = dir.join(name);
        let mut samples = read_dl_samples(&path)?;
        for s in &mut samples {
            if let Some(l) = &s.segmentation_image {
                let data = l.data.iter().map(|&v| index_of(v).map_or(0.0, |i| weights[i] as f32)).collect();
                s.weight_image =
                    Some(HostImage { width: l.width, height: l.height, channels: 1, bit_depth: 32, data });
            }
        }
        // Compact: lossless, so the pixels stay as they were stored.
        write_dl_samples_with(&path, &samples, SampleStorage::Compact)
    })?;
    dataset.class_weights = Some(weights.clone());
    Ok(weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::{DLPreprocessParam, write_dl_samples};
    use crate::{DLSample, LabelImage, ModelType, SampleEntry};
    use dl_core::{ClassId, ImageId};

    #[test]
    fn weights_follow_the_formula_and_reach_the_samples() {
        let tmp = tempfile::tempdir().unwrap();
        // 100 pixels: class 0 ×90, class 1 ×9, class 2 ×1 (ignored).
        let mut data = vec![0u16; 90];
        data.extend([1u16; 9]);
        data.push(2);
        let mut s = DLSample::from_image(ImageId(0), HostImage::filled(10, 10, 1, 0.0));
        s.segmentation_image = Some(LabelImage { width: 10, height: 10, data });
        write_dl_samples(&tmp.path().join("0.dls"), &[s]).unwrap();
        let mut param = DLPreprocessParam::new(ModelType::Segmentation, 10, 10, 1).unwrap();
        param.ignore_class_ids = vec![ClassId::new(2).unwrap()];
        let mut ds = DLDataset {
            class_ids: (0..4).map(|i| ClassId::new(i).unwrap()).collect(),
            dlsample_dir: Some(tmp.path().to_string_lossy().into()),
            preprocess_param: Some(param),
            samples: vec![SampleEntry {
                split: Some(Split::Train),
                dlsample_file_name: Some("0.dls".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let w = gen_dl_segmentation_weights(&mut ds, 20.0).unwrap();
        let f0 = 90.0 / 99.0;
        let f1 = 9.0 / 99.0;
        assert!((w[0] - 1.0).abs() < 1e-12);
        assert!((w[1] - (f0 + 1e-4) / (f1 + 1e-4)).abs() < 1e-9);
        assert_eq!((w[2], w[3]), (0.0, 0.0));
        let w2 = gen_dl_segmentation_weights(&mut ds, 2.0).unwrap();
        assert_eq!(w2[1], 2.0);
        let back = read_dl_samples(&tmp.path().join("0.dls")).unwrap();
        let wi = back[0].weight_image.as_ref().unwrap();
        assert_eq!((wi.data[0], wi.data[95], wi.data[99]), (1.0, 2.0, 0.0));
        assert_eq!(ds.class_weights.as_deref(), Some(&w2[..]));
    }
}
