//! `split_dl_dataset`: stratified, seeded split into train / validation / test (SPEC §3.2).

use crate::{AnomalyLabel, DLDataset, Error, LabelImage, ModelType, Result};
use dl_core::{Rng, Split};
use std::collections::{BTreeMap, BTreeSet};

/// Parameters of [`split_dl_dataset`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SplitParams {
    /// Split again a dataset that already has splits (default false: an error).
    pub overwrite_split: bool,
    /// The method; inferred from the first sample when `None`.
    pub model_type: Option<ModelType>,
    /// Seed of the shuffles and draws.
    pub seed: u64,
}

/// Splits `dataset` into `train_percent` % train, `validation_percent` % validation and the rest test.
///
/// Stratified: each image gets its label set (CL its class, OD its distinct box classes, SE the classes
/// in its label image, AD ok/nok). Classes go from the rarest to the most frequent; for each, its images
/// not yet assigned are shuffled, each split receives floor(ratio · images of the class) minus what it
/// already holds, and leftovers go to a split drawn with probability equal to its ratio. Images without
/// labels are split by ratio with the remainder to the largest split. AD: every 'nok' image goes to
/// test. The same seed and dataset give the same split on every machine.
///
/// # Errors
/// [`Error::Param`] for percentages outside 0…100 or summing over 100, or when the model type cannot be
/// inferred; [`Error::AlreadySplit`] without `overwrite_split`; SE: errors reading label images.
pub fn split_dl_dataset(
    dataset: &mut DLDataset,
    train_percent: f64,
    validation_percent: f64,
    params: &SplitParams,
) -> Result<()> {
    for (key, v) in [("train_percent", train_percent), ("validation_percent", validation_percent)] {
        if !(0.0..=100.0).contains(&v) {
            return Err(Error::Param { key, message: format!("{v} is outside 0 … 100") });
        }
    }
    if train_percent + validation_percent > 100.0 + 1e-9 {
        return Err(Error::Param {
            key: "validation_percent",
            message: format!("train {train_percent} + validation {validation_percent} exceeds 100"),
        });
    }
    let already = dataset.samples.iter().filter(|s| s.split.is_some()).count();
    if already > 0 && !params.overwrite_split {
        return Err(Error::AlreadySplit(already));
    }
    if dataset.samples.is_empty() {
        return Ok(());
    }
    let model_type = match params.model_type {
        Some(t) => t,
        None => ModelType::infer(&dataset.samples[0]).ok_or_else(|| Error::Param {
            key: "model_type",
            message: "cannot infer it from the first sample (no anomaly_label, image_label_id, \
                      bbox_label_id or segmentation_file_name); pass it explicitly"
                .into(),
        })?,
    };
    let ratios = [
        train_percent / 100.0,
        validation_percent / 100.0,
        (100.0 - train_percent - validation_percent).max(0.0) / 100.0,
    ];
    let labels = label_sets(dataset, model_type)?;
    let mut assigned: Vec<Option<usize>> = vec![None; dataset.samples.len()];
    let mut rng = Rng::new(params.seed);

    if model_type == ModelType::AnomalyDetection {
        for (i, s) in dataset.samples.iter().enumerate() {
            if s.anomaly_label == Some(AnomalyLabel::Nok) {
                assigned[i] = Some(2);
            }
        }
    }
    // Images of each class, classes from the rarest (ties: smaller label first).
    let mut images_of: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, set) in labels.iter().enumerate() {
        if assigned[i].is_none() {
            for &c in set {
                images_of.entry(c).or_default().push(i);
            }
        }
    }
    let mut classes: Vec<(usize, u32)> = images_of.iter().map(|(&c, v)| (v.len(), c)).collect();
    classes.sort();
    for (_, class) in classes {
        let all = &images_of[&class];
        let mut held = [0usize; 3];
        let mut free = Vec::new();
        for &i in all {
            match assigned[i] {
                Some(s) => held[s] += 1,
                None => free.push(i),
            }
        }
        rng.shuffle(&mut free);
        let mut next = free.into_iter();
        for (s, &ratio) in ratios.iter().enumerate() {
            let target = (ratio * all.len() as f64 + 1e-9).floor() as usize;
            for i in next.by_ref().take(target.saturating_sub(held[s])) {
                assigned[i] = Some(s);
            }
        }
        for i in next {
            assigned[i] = Some(draw(&mut rng, &ratios));
        }
    }
    // Images without labels: by ratio, the remainder to the largest split.
    let mut rest: Vec<usize> = (0..assigned.len()).filter(|&i| assigned[i].is_none()).collect();
    if !rest.is_empty() {
        rng.shuffle(&mut rest);
        let n = rest.len();
        let largest = (0..3).fold(0, |best, s| if ratios[s] > ratios[best] { s } else { best });
        let mut next = rest.into_iter();
        for (s, &ratio) in ratios.iter().enumerate() {
            for i in next.by_ref().take((ratio * n as f64 + 1e-9).floor() as usize) {
                assigned[i] = Some(s);
            }
        }
        for i in next {
            assigned[i] = Some(largest);
        }
    }
    for (sample, s) in dataset.samples.iter_mut().zip(assigned) {
        sample.split = Some(Split::ALL[s.expect("every image was assigned")]);
    }
    Ok(())
}

/// A split index drawn with probability equal to its ratio.
fn draw(rng: &mut Rng, ratios: &[f64; 3]) -> usize {
    let total: f64 = ratios.iter().sum();
    if total <= 0.0 {
        return 2;
    }
    let mut x = rng.next_f64() * total;
    for (s, &r) in ratios.iter().enumerate() {
        if x < r {
            return s;
        }
        x -= r;
    }
    (0..3).rev().find(|&s| ratios[s] > 0.0).unwrap_or(2)
}

/// The label set of every sample for `model_type`.
fn label_sets(dataset: &DLDataset, model_type: ModelType) -> Result<Vec<BTreeSet<u32>>> {
    use rayon::prelude::*;
    match model_type {
        ModelType::Classification => Ok(dataset
            .samples
            .iter()
            .map(|s| s.image_label_id.iter().flatten().map(|c| u32::from(c.get())).collect())
            .collect()),
        ModelType::Detection => Ok(dataset
            .samples
            .iter()
            .map(|s| s.bbox_label_id.iter().flatten().map(|c| u32::from(c.get())).collect())
            .collect()),
        ModelType::AnomalyDetection => Ok(dataset
            .samples
            .iter()
            .map(|s| s.anomaly_label.map(|l| u32::from(l == AnomalyLabel::Nok)).into_iter().collect())
            .collect()),
        ModelType::Segmentation => {
            let dir = dataset.segmentation_dir.clone().unwrap_or_default();
            dataset
                .samples
                .par_iter()
                .map(|s| match &s.segmentation_file_name {
                    None => Ok(BTreeSet::new()),
                    Some(name) => Ok(LabelImage::read(&std::path::Path::new(&dir).join(name))?
                        .values()
                        .into_iter()
                        .map(u32::from)
                        .collect()),
                })
                .collect()
        }
    }
}

/// Sets each sample's split from the first folder of its image path — `train`, `validation` or `val`,
/// `test` (any case), as in Fashion-MNIST's or MVTec AD's layout — and returns how many samples got one;
/// the others keep theirs.
///
/// # Errors
/// [`Error::Param`] when no image path starts with such a folder.
pub fn split_from_folders(dataset: &mut DLDataset) -> Result<usize> {
    let mut n = 0;
    for s in &mut dataset.samples {
        let first = s.image_file_name.split(['/', '\\']).next().unwrap_or("").to_ascii_lowercase();
        let split = match first.as_str() {
            "train" => Split::Train,
            "validation" | "val" => Split::Validation,
            "test" => Split::Test,
            _ => continue,
        };
        s.split = Some(split);
        n += 1;
    }
    if n == 0 {
        return Err(Error::Param {
            key: "split",
            message: "no image path starts with a train/, validation/ (val/) or test/ folder".into(),
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {

    #[test]
    fn splits_follow_the_top_folders() {
        let mut ds = DLDataset::default();
        for (i, name) in ["train/a/1.png", "TEST/b/2.png", "val/a/3.png", "other/4.png"].iter().enumerate() {
            ds.samples.push(crate::SampleEntry {
                image_id: dl_core::ImageId(i as u64),
                image_file_name: (*name).into(),
                ..Default::default()
            });
        }
        assert_eq!(split_from_folders(&mut ds).unwrap(), 3);
        let splits: Vec<Option<Split>> = ds.samples.iter().map(|s| s.split).collect();
        assert_eq!(splits, [Some(Split::Train), Some(Split::Test), Some(Split::Validation), None]);
        let mut flat = DLDataset::default();
        flat.samples.push(crate::SampleEntry { image_file_name: "1.png".into(), ..Default::default() });
        assert!(split_from_folders(&mut flat).is_err());
    }

    use super::*;
    use crate::SampleEntry;
    use dl_core::{ClassId, ImageId};
    use proptest::prelude::*;

    fn cl_dataset(labels: &[u16]) -> DLDataset {
        DLDataset {
            samples: labels
                .iter()
                .enumerate()
                .map(|(i, &l)| SampleEntry {
                    image_id: ImageId(i as u64),
                    image_file_name: format!("{i}.png"),
                    image_label_id: Some(vec![ClassId::new(i64::from(l)).unwrap()]),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn counts(ds: &DLDataset, class: u16) -> [usize; 3] {
        let mut c = [0; 3];
        for s in &ds.samples {
            if s.image_label_id.as_ref().unwrap()[0].get() == class {
                c[Split::ALL.iter().position(|x| Some(*x) == s.split).unwrap()] += 1;
            }
        }
        c
    }

    #[test]
    fn refuses_bad_percentages_and_resplitting() {
        let mut ds = cl_dataset(&[0, 1, 0]);
        assert!(split_dl_dataset(&mut ds, 80.0, 30.0, &SplitParams::default()).is_err());
        assert!(split_dl_dataset(&mut ds, -1.0, 30.0, &SplitParams::default()).is_err());
        split_dl_dataset(&mut ds, 50.0, 20.0, &SplitParams::default()).unwrap();
        assert!(matches!(
            split_dl_dataset(&mut ds, 50.0, 20.0, &SplitParams::default()),
            Err(Error::AlreadySplit(3))
        ));
        let again = SplitParams { overwrite_split: true, ..Default::default() };
        split_dl_dataset(&mut ds, 50.0, 20.0, &again).unwrap();
    }

    #[test]
    fn anomaly_nok_goes_to_test() {
        let mut ds = DLDataset::default();
        for i in 0..50 {
            ds.samples.push(SampleEntry {
                image_id: ImageId(i),
                anomaly_label: Some(if i % 5 == 0 { AnomalyLabel::Nok } else { AnomalyLabel::Ok }),
                ..Default::default()
            });
        }
        split_dl_dataset(&mut ds, 70.0, 15.0, &SplitParams::default()).unwrap();
        for s in &ds.samples {
            if s.anomaly_label == Some(AnomalyLabel::Nok) {
                assert_eq!(s.split, Some(Split::Test));
            }
        }
        let ok_train = ds.samples.iter().filter(|s| s.split == Some(Split::Train)).count();
        assert!(ok_train >= 28, "{ok_train}"); // floor(0.7 * 40)
    }

    proptest! {
        #[test]
        fn stratified_partition_and_deterministic(
            labels in proptest::collection::vec(0u16..5, 1..300),
            train in 0.0..100.0f64,
            frac in 0.0..1.0f64,
            seed in any::<u64>(),
        ) {
            let val = (100.0 - train) * frac;
            let mut a = cl_dataset(&labels);
            let params = SplitParams { seed, ..Default::default() };
            split_dl_dataset(&mut a, train, val, &params).unwrap();
            let mut b = cl_dataset(&labels);
            split_dl_dataset(&mut b, train, val, &params).unwrap();
            prop_assert_eq!(&a, &b);
            prop_assert!(a.samples.iter().all(|s| s.split.is_some()));
            let ratios = [train / 100.0, val / 100.0, (100.0 - train - val) / 100.0];
            for class in 0..5u16 {
                let n = labels.iter().filter(|&&l| l == class).count();
                let c = counts(&a, class);
                prop_assert_eq!(c.iter().sum::<usize>(), n);
                let floors: Vec<usize> = ratios.iter().map(|r| (r * n as f64 + 1e-9).floor() as usize).collect();
                for s in 0..3 {
                    prop_assert!(c[s] >= floors[s], "class {} split {} has {} < {}", class, s, c[s], floors[s]);
                    // Leftovers are fewer than the number of splits with a share.
                    prop_assert!(c[s] <= floors[s] + (n - floors.iter().sum::<usize>()));
                    if ratios[s] == 0.0 { prop_assert_eq!(c[s], 0); }
                }
            }
        }
    }
}
