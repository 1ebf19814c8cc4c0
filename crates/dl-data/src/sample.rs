//! DLSamples: one model input with its decoded image and ground truth (`gen_dl_samples`), and
//! selecting samples (`find_dl_samples`).

use crate::{AnomalyLabel, DLDataset, Domain, Error, HostImage, LabelImage, Result};
use dl_core::{ClassId, ImageId, Rect1, Rect2, Split};
use rayon::prelude::*;
use std::path::Path;

/// The boxes of a detection sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Boxes {
    /// Axis-aligned boxes.
    Rectangle1(Vec<Rect1>),
    /// Rotated boxes.
    Rectangle2(Vec<Rect2>),
}

impl Boxes {
    /// Number of boxes.
    pub fn len(&self) -> usize {
        match self {
            Self::Rectangle1(b) => b.len(),
            Self::Rectangle2(b) => b.len(),
        }
    }

    /// No boxes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One model input (HALCON's DLSample): the image and the ground truth of its method. Serialised with
/// HALCON's keys (`image`, `image_id`, `image_label_id`, `bbox_label_id`, `bbox_row1` … or `bbox_row` …,
/// `segmentation_image`, `anomaly_label`, `anomaly_label_id`, `anomaly_ground_truth`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(into = "SampleWire", try_from = "SampleWire")]
pub struct DLSample {
    /// The image's id.
    pub image_id: ImageId,
    /// The pixels.
    pub image: HostImage,
    /// CL: class ids.
    pub image_label_id: Option<Vec<ClassId>>,
    /// OD: class id per box.
    pub bbox_label_id: Option<Vec<ClassId>>,
    /// OD: the boxes, parallel to `bbox_label_id`.
    pub boxes: Option<Boxes>,
    /// OD: crowd flags, parallel to the boxes.
    pub bbox_iscrowd: Option<Vec<bool>>,
    /// SE: class id per pixel.
    pub segmentation_image: Option<LabelImage>,
    /// SE: loss weight per pixel (from `gen_dl_segmentation_weights`).
    pub weight_image: Option<HostImage>,
    /// The image's domain (region of interest); `None` is the full image.
    pub domain: Option<Domain>,
    /// AD: 'ok' or 'nok'.
    pub anomaly_label: Option<AnomalyLabel>,
    /// AD: 0 for ok, 1 for nok.
    pub anomaly_label_id: Option<u8>,
    /// AD: the ground-truth mask, 1 where anomalous.
    pub anomaly_ground_truth: Option<LabelImage>,
}

/// DLSample with HALCON's flat box keys, for serde.
#[derive(serde::Serialize, serde::Deserialize)]
struct SampleWire {
    image_id: ImageId,
    image: HostImage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image_label_id: Option<Vec<ClassId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bbox_label_id: Option<Vec<ClassId>>,
    #[serde(flatten)]
    keys: BoxKeys,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    segmentation_image: Option<LabelImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight_image: Option<HostImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    domain: Option<Domain>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    anomaly_label_id: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    anomaly_ground_truth: Option<LabelImage>,
}

/// HALCON's box keys of a DLSample (and the AD label), for serde.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct BoxKeys {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bbox_row1: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bbox_col1: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bbox_row2: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bbox_col2: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bbox_row: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bbox_col: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bbox_phi: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bbox_length1: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bbox_length2: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bbox_iscrowd: Option<Vec<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    anomaly_label: Option<AnomalyLabel>,
}

impl From<DLSample> for SampleWire {
    fn from(s: DLSample) -> Self {
        let mut entry = crate::SampleEntry {
            image_id: s.image_id,
            bbox_iscrowd: s.bbox_iscrowd,
            anomaly_label: s.anomaly_label,
            ..Default::default()
        };
        let labels = s.bbox_label_id.clone().unwrap_or_default();
        match s.boxes {
            Some(Boxes::Rectangle1(b)) => {
                entry.set_rect1_boxes(&labels.iter().copied().zip(b).collect::<Vec<_>>())
            }
            Some(Boxes::Rectangle2(b)) => {
                entry.set_rect2_boxes(&labels.iter().copied().zip(b).collect::<Vec<_>>())
            }
            None => {}
        }
        let keys = BoxKeys {
            bbox_row1: entry.bbox_row1,
            bbox_col1: entry.bbox_col1,
            bbox_row2: entry.bbox_row2,
            bbox_col2: entry.bbox_col2,
            bbox_row: entry.bbox_row,
            bbox_col: entry.bbox_col,
            bbox_phi: entry.bbox_phi,
            bbox_length1: entry.bbox_length1,
            bbox_length2: entry.bbox_length2,
            bbox_iscrowd: entry.bbox_iscrowd,
            anomaly_label: entry.anomaly_label,
        };
        SampleWire {
            image_id: s.image_id,
            image: s.image,
            image_label_id: s.image_label_id,
            bbox_label_id: s.bbox_label_id,
            keys,
            segmentation_image: s.segmentation_image,
            weight_image: s.weight_image,
            domain: s.domain,
            anomaly_label_id: s.anomaly_label_id,
            anomaly_ground_truth: s.anomaly_ground_truth,
        }
    }
}

impl TryFrom<SampleWire> for DLSample {
    type Error = Error;
    fn try_from(w: SampleWire) -> Result<Self> {
        let k = w.keys;
        let entry = crate::SampleEntry {
            image_id: w.image_id,
            bbox_label_id: w.bbox_label_id.clone(),
            bbox_row1: k.bbox_row1,
            bbox_col1: k.bbox_col1,
            bbox_row2: k.bbox_row2,
            bbox_col2: k.bbox_col2,
            bbox_row: k.bbox_row,
            bbox_col: k.bbox_col,
            bbox_phi: k.bbox_phi,
            bbox_length1: k.bbox_length1,
            bbox_length2: k.bbox_length2,
            bbox_iscrowd: k.bbox_iscrowd,
            anomaly_label: k.anomaly_label,
            ..Default::default()
        };
        let boxes = match (entry.bbox_label_id.is_some(), entry.instance_type()) {
            (false, _) => None,
            (true, Some(crate::InstanceType::Rectangle2)) => {
                Some(Boxes::Rectangle2(entry.rect2_boxes()?.into_iter().map(|b| b.1).collect()))
            }
            (true, _) => Some(Boxes::Rectangle1(entry.rect1_boxes()?.into_iter().map(|b| b.1).collect())),
        };
        Ok(DLSample {
            image_id: w.image_id,
            image: w.image,
            image_label_id: w.image_label_id,
            bbox_label_id: w.bbox_label_id,
            boxes,
            bbox_iscrowd: entry.bbox_iscrowd,
            segmentation_image: w.segmentation_image,
            weight_image: w.weight_image,
            domain: w.domain,
            anomaly_label: entry.anomaly_label,
            anomaly_label_id: w.anomaly_label_id,
            anomaly_ground_truth: w.anomaly_ground_truth,
        })
    }
}

impl DLSample {
    /// A sample holding only an image (for inference).
    pub fn from_image(image_id: ImageId, image: HostImage) -> Self {
        Self {
            image_id,
            image,
            image_label_id: None,
            bbox_label_id: None,
            boxes: None,
            bbox_iscrowd: None,
            segmentation_image: None,
            weight_image: None,
            domain: None,
            anomaly_label: None,
            anomaly_label_id: None,
            anomaly_ground_truth: None,
        }
    }

    /// Keeps the labels and crowd flags of the boxes at `keep` (the indices of the boxes a map or crop
    /// kept), in that order; a missing crowd flag is `false`.
    pub(crate) fn keep_box_annotations(&mut self, keep: &[usize]) {
        if let Some(l) = &mut self.bbox_label_id {
            *l = keep.iter().filter_map(|&i| l.get(i).copied()).collect();
        }
        if let Some(c) = &mut self.bbox_iscrowd {
            *c = keep.iter().map(|&i| c.get(i).copied().unwrap_or(false)).collect();
        }
    }
}

/// Which samples of a dataset to take.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleSelector {
    /// Every sample.
    All,
    /// The samples of a split.
    Split(Split),
    /// The samples with these image ids, in this order.
    ImageIds(Vec<ImageId>),
    /// The samples at these indices, in this order.
    Indices(Vec<usize>),
}

/// The indices of the selected samples (HALCON's `find_dl_samples`).
///
/// # Errors
/// [`Error::Param`] naming an image id or index the dataset does not have.
pub fn find_dl_samples(dataset: &DLDataset, selector: &SampleSelector) -> Result<Vec<usize>> {
    match selector {
        SampleSelector::All => Ok((0..dataset.samples.len()).collect()),
        SampleSelector::Split(split) => {
            Ok((0..dataset.samples.len()).filter(|&i| dataset.samples[i].split == Some(*split)).collect())
        }
        SampleSelector::ImageIds(ids) => {
            let index: std::collections::HashMap<ImageId, usize> =
                dataset.samples.iter().enumerate().map(|(i, s)| (s.image_id, i)).collect();
            ids.iter()
                .map(|id| {
                    index.get(id).copied().ok_or_else(|| Error::Param {
                        key: "image_ids",
                        message: format!("no sample has image id {id}"),
                    })
                })
                .collect()
        }
        SampleSelector::Indices(indices) => indices
            .iter()
            .map(|&i| {
                if i < dataset.samples.len() {
                    Ok(i)
                } else {
                    Err(Error::Param {
                        key: "indices",
                        message: format!("index {i} ≥ {} samples", dataset.samples.len()),
                    })
                }
            })
            .collect(),
    }
}

/// Decodes the samples at `indices` with their ground truth, in parallel (HALCON's `gen_dl_samples`).
///
/// # Errors
/// The first error in index order: a missing or corrupt image or label image (its path), an
/// inconsistent or invalid box (its sample), a label not in `class_ids` (its sample).
pub fn gen_dl_samples(dataset: &DLDataset, indices: &[usize]) -> Result<Vec<DLSample>> {
    let image_dir = Path::new(&dataset.image_dir);
    indices
        .par_iter()
        .map(|&i| {
            let entry = dataset.samples.get(i).ok_or_else(|| Error::Param {
                key: "indices",
                message: format!("index {i} ≥ {} samples", dataset.samples.len()),
            })?;
            let check = |ids: &Option<Vec<ClassId>>| -> Result<()> {
                for id in ids.iter().flatten() {
                    if !dataset.class_ids.contains(id) {
                        return Err(Error::Sample {
                            image_id: entry.image_id,
                            message: format!("class id {id} is not in class_ids"),
                        });
                    }
                }
                Ok(())
            };
            check(&entry.image_label_id)?;
            check(&entry.bbox_label_id)?;
            let mut sample = DLSample::from_image(
                entry.image_id,
                HostImage::read(&image_dir.join(&entry.image_file_name))?,
            );
            sample.image_label_id = entry.image_label_id.clone();
            if entry.bbox_label_id.is_some() {
                sample.bbox_label_id = entry.bbox_label_id.clone();
                sample.bbox_iscrowd = entry.bbox_iscrowd.clone();
                sample.boxes = Some(match entry.instance_type() {
                    Some(crate::InstanceType::Rectangle2) => {
                        Boxes::Rectangle2(entry.rect2_boxes()?.into_iter().map(|b| b.1).collect())
                    }
                    _ => Boxes::Rectangle1(entry.rect1_boxes()?.into_iter().map(|b| b.1).collect()),
                });
            }
            if let Some(name) = &entry.segmentation_file_name {
                let dir = dataset.segmentation_dir.as_deref().unwrap_or_default();
                sample.segmentation_image = Some(LabelImage::read(&Path::new(dir).join(name))?);
            }
            if let Some(label) = entry.anomaly_label {
                sample.anomaly_label = Some(label);
                sample.anomaly_label_id = Some(u8::from(label == AnomalyLabel::Nok));
                if let Some(name) = &entry.anomaly_file_name {
                    let dir = dataset.anomaly_dir.as_deref().unwrap_or_default();
                    let mut mask = LabelImage::read(&Path::new(dir).join(name))?;
                    mask.data.iter_mut().for_each(|v| *v = u16::from(*v != 0));
                    sample.anomaly_ground_truth = Some(mask);
                }
            }
            Ok(sample)
        })
        .collect()
}

/// Samples holding only images, for inference (HALCON's `gen_dl_samples_from_images`); image ids are
/// 0 … n−1 in the given order.
///
/// # Errors
/// The first image that is missing or cannot be decoded, naming its path.
pub fn gen_dl_samples_from_images(paths: &[impl AsRef<Path> + Sync]) -> Result<Vec<DLSample>> {
    paths
        .par_iter()
        .enumerate()
        .map(|(i, p)| Ok(DLSample::from_image(ImageId(i as u64), HostImage::read(p.as_ref())?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SampleEntry;

    #[test]
    fn serialises_with_halcon_keys_and_round_trips() {
        let mut s = DLSample::from_image(ImageId(3), HostImage::filled(2, 1, 1, 0.5));
        s.bbox_label_id = Some(vec![ClassId::new(2).unwrap()]);
        s.boxes = Some(Boxes::Rectangle2(vec![Rect2::new(1.0, 2.0, 0.5, 3.0, 1.0).unwrap()]));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["bbox_phi"][0], 0.5);
        assert_eq!(v["bbox_label_id"][0], 2);
        assert_eq!(v["image"]["width"], 2);
        assert_eq!(serde_json::from_value::<DLSample>(v).unwrap(), s);
    }

    #[test]
    fn find_by_split_ids_and_indices() {
        let mut ds = DLDataset::default();
        for i in 0..4u64 {
            ds.samples.push(SampleEntry {
                image_id: ImageId(10 + i),
                split: Some(if i % 2 == 0 { Split::Train } else { Split::Test }),
                ..Default::default()
            });
        }
        assert_eq!(find_dl_samples(&ds, &SampleSelector::Split(Split::Test)).unwrap(), [1, 3]);
        assert_eq!(
            find_dl_samples(&ds, &SampleSelector::ImageIds(vec![ImageId(12), ImageId(10)])).unwrap(),
            [2, 0]
        );
        assert!(find_dl_samples(&ds, &SampleSelector::ImageIds(vec![ImageId(3)])).is_err());
        assert!(find_dl_samples(&ds, &SampleSelector::Indices(vec![4])).is_err());
    }

    #[test]
    fn unknown_class_and_missing_image_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        image::GrayImage::new(3, 2).save(dir.path().join("a.png")).unwrap();
        let mut ds = DLDataset { image_dir: dir.path().to_string_lossy().into(), ..Default::default() };
        ds.class_ids = vec![ClassId::new(0).unwrap()];
        ds.samples.push(SampleEntry {
            image_id: ImageId(4),
            image_file_name: "a.png".into(),
            image_label_id: Some(vec![ClassId::new(0).unwrap()]),
            ..Default::default()
        });
        let s = gen_dl_samples(&ds, &[0]).unwrap();
        assert_eq!((s[0].image.width, s[0].image.height), (3, 2));
        ds.samples[0].image_label_id = Some(vec![ClassId::new(5).unwrap()]);
        assert!(gen_dl_samples(&ds, &[0]).unwrap_err().to_string().contains("sample 4"));
        ds.samples[0].image_file_name = "b.png".into();
        ds.samples[0].image_label_id = None;
        assert!(gen_dl_samples(&ds, &[0]).unwrap_err().to_string().contains("b.png"));
    }
}
