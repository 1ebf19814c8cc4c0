//! Host batches: preprocessed samples collated into contiguous buffers, ready for upload by dl-nets.

use crate::{Boxes, DLSample, Error, ModelType, Result};
use dl_core::{ClassId, ImageId};

/// A batch in host memory: images as contiguous f32 NCHW, plus the targets of the model's method.
/// Class ids are mapped to class indices (positions in the model's `class_ids`).
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    /// Pixels, N × C × H × W.
    pub images: Vec<f32>,
    /// [N, C, H, W].
    pub shape: [usize; 4],
    /// Image id of each sample.
    pub image_ids: Vec<ImageId>,
    /// The ground truth, chosen by the model type given to [`collate`].
    pub targets: HostTargets,
}

/// One image's boxes in a detection batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageBoxes {
    /// Class index of each box.
    pub class_indices: Vec<i64>,
    /// The boxes (network coordinates).
    pub boxes: Boxes,
    /// Per box: crowd / ignored ground truth (neither positive nor negative in training).
    pub ignore: Vec<bool>,
}

/// The ground truth of a host batch, by method.
#[derive(Debug, Clone, PartialEq)]
pub enum HostTargets {
    /// Images only (inference).
    None,
    /// CL: the class index of each sample (its first label).
    Classification(Vec<i64>),
    /// OD: per sample, its boxes.
    Detection(Vec<ImageBoxes>),
    /// SE: class index per pixel, N × H × W (classes not in `class_ids` → −1, to be ignored), and
    /// pixel weights N × H × W (1 where a sample has no weight image).
    Segmentation {
        /// Class index per pixel.
        labels: Vec<i64>,
        /// Weight per pixel.
        weights: Vec<f32>,
    },
    /// AD: 0 ok / 1 nok per sample, and the anomaly masks (N × H × W, 0 or 1; all 0 where a sample has
    /// no mask).
    Anomaly {
        /// 0 ok / 1 nok.
        labels: Vec<u8>,
        /// Mask values per pixel.
        masks: Vec<u8>,
    },
}

/// Collates preprocessed samples into a [`HostBatch`]; `class_ids` gives the class order of the model
/// and `model_type` which ground truth the batch carries (`None`: images only, for inference). The
/// targets never depend on which keys the first sample happens to have.
///
/// # Errors
/// [`Error::Sample`] naming a sample whose size or channels differ from the first one, that lacks the
/// method's ground truth, or whose label is not in `class_ids`; [`Error::Param`] for an empty batch.
pub fn collate(
    samples: &[DLSample],
    class_ids: &[ClassId],
    model_type: Option<ModelType>,
) -> Result<HostBatch> {
    let first = samples.first().ok_or_else(|| Error::Param { key: "batch", message: "no samples".into() })?;
    let (c, h, w) = (first.image.channels, first.image.height, first.image.width);
    let index = |id: &ClassId, image_id: ImageId| -> Result<i64> {
        class_ids.iter().position(|c| c == id).map(|i| i as i64).ok_or_else(|| Error::Sample {
            image_id,
            message: format!("class id {id} is not one of the model's classes"),
        })
    };
    let missing = |s: &DLSample, what: &str| Error::Sample {
        image_id: s.image_id,
        message: format!("no {what} in a {} batch", model_type.map_or("", ModelType::as_str)),
    };
    let mut images = Vec::with_capacity(samples.len() * c * h * w);
    for s in samples {
        if (s.image.channels, s.image.height, s.image.width) != (c, h, w) {
            return Err(Error::Sample {
                image_id: s.image_id,
                message: format!(
                    "image is {}×{}×{}, the batch {c}×{h}×{w}: preprocess the samples first",
                    s.image.channels, s.image.height, s.image.width
                ),
            });
        }
        images.extend_from_slice(&s.image.data);
    }
    let same_size = |s: &DLSample, what: &str, size: (usize, usize)| -> Result<()> {
        if size == (w, h) {
            Ok(())
        } else {
            Err(Error::Sample {
                image_id: s.image_id,
                message: format!("{what} is {}×{}, the image {w}×{h}", size.0, size.1),
            })
        }
    };
    let targets = match model_type {
        None => HostTargets::None,
        Some(ModelType::Classification) => HostTargets::Classification(
            samples
                .iter()
                .map(|s| {
                    let id = s
                        .image_label_id
                        .as_ref()
                        .and_then(|l| l.first())
                        .ok_or_else(|| missing(s, "image_label_id"))?;
                    index(id, s.image_id)
                })
                .collect::<Result<_>>()?,
        ),
        Some(ModelType::Detection) => HostTargets::Detection(
            samples
                .iter()
                .map(|s| {
                    let boxes = s.boxes.clone().ok_or_else(|| missing(s, "boxes"))?;
                    let class_indices = s
                        .bbox_label_id
                        .iter()
                        .flatten()
                        .map(|id| index(id, s.image_id))
                        .collect::<Result<Vec<_>>>()?;
                    if class_indices.len() != boxes.len() {
                        return Err(Error::Sample {
                            image_id: s.image_id,
                            message: format!(
                                "{} bbox_label_id for {} boxes",
                                class_indices.len(),
                                boxes.len()
                            ),
                        });
                    }
                    let mut ignore = s.bbox_iscrowd.clone().unwrap_or_default();
                    ignore.resize(boxes.len(), false);
                    Ok(ImageBoxes { class_indices, boxes, ignore })
                })
                .collect::<Result<_>>()?,
        ),
        Some(ModelType::Segmentation) => {
            let table = crate::class_index_table(class_ids);
            let (mut labels, mut weights) = (Vec::with_capacity(samples.len() * w * h), Vec::new());
            for s in samples {
                let l = s.segmentation_image.as_ref().ok_or_else(|| missing(s, "segmentation_image"))?;
                same_size(s, "segmentation_image", (l.width, l.height))?;
                labels.extend(l.class_indices(&table));
                match &s.weight_image {
                    Some(wi) => {
                        same_size(s, "weight_image", (wi.width, wi.height))?;
                        weights.extend_from_slice(&wi.data);
                    }
                    None => weights.extend(std::iter::repeat_n(1.0, w * h)),
                }
            }
            HostTargets::Segmentation { labels, weights }
        }
        Some(ModelType::AnomalyDetection) => {
            let (mut labels, mut masks) = (Vec::with_capacity(samples.len()), Vec::new());
            for s in samples {
                labels.push(s.anomaly_label_id.ok_or_else(|| missing(s, "anomaly_label_id"))?);
                match &s.anomaly_ground_truth {
                    Some(m) => {
                        same_size(s, "anomaly_ground_truth", (m.width, m.height))?;
                        masks.extend(m.data.iter().map(|&v| u8::from(v > 0)));
                    }
                    None => masks.extend(std::iter::repeat_n(0, w * h)),
                }
            }
            HostTargets::Anomaly { labels, masks }
        }
    };
    Ok(HostBatch {
        images,
        shape: [samples.len(), c, h, w],
        image_ids: samples.iter().map(|s| s.image_id).collect(),
        targets,
    })
}

/// Checks that every label value of the samples' `segmentation_image` is a class id or one of
/// `ignore_class_ids` ([`collate`] maps both others and ignored values to −1, left out of the loss).
///
/// # Errors
/// [`Error::Sample`] naming the first sample with another value, and the value.
pub fn check_segmentation_labels(
    samples: &[DLSample],
    class_ids: &[ClassId],
    ignore_class_ids: &[ClassId],
) -> Result<()> {
    let mut known = vec![false; 65536];
    for c in class_ids.iter().chain(ignore_class_ids) {
        known[usize::from(c.get())] = true;
    }
    for s in samples {
        if let Some(v) =
            s.segmentation_image.iter().flat_map(|l| l.data.iter()).find(|&&v| !known[usize::from(v)])
        {
            return Err(Error::Sample {
                image_id: s.image_id,
                message: format!(
                    "label value {v} is neither a class id ({}) nor in ignore_class_ids ({})",
                    join(class_ids),
                    if ignore_class_ids.is_empty() { "none".to_owned() } else { join(ignore_class_ids) }
                ),
            });
        }
    }
    Ok(())
}

fn join(ids: &[ClassId]) -> String {
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_must_be_classes_or_ignored() {
        let ids = [ClassId::new(0).unwrap(), ClassId::new(3).unwrap()];
        let mut s = DLSample::from_image(ImageId(5), HostImage::filled(3, 1, 1, 0.0));
        s.segmentation_image = Some(crate::LabelImage { width: 3, height: 1, data: vec![0, 3, 255] });
        let err = check_segmentation_labels(std::slice::from_ref(&s), &ids, &[]).unwrap_err().to_string();
        assert!(err.contains("sample 5") && err.contains("label value 255"), "{err}");
        check_segmentation_labels(&[s], &ids, &[ClassId::new(255).unwrap()]).unwrap();
    }

    use super::*;
    use crate::HostImage;

    #[test]
    fn collates_nchw_and_maps_classes() {
        let ids = [ClassId::new(4).unwrap(), ClassId::new(9).unwrap()];
        let mk = |i: u64, v: f32, label: i64| {
            let mut s = DLSample::from_image(ImageId(i), HostImage::filled(2, 1, 2, v));
            s.image_label_id = Some(vec![ClassId::new(label).unwrap()]);
            s
        };
        let cl = Some(ModelType::Classification);
        let b = collate(&[mk(0, 1.0, 9), mk(1, 2.0, 4)], &ids, cl).unwrap();
        assert_eq!(b.shape, [2, 2, 1, 2]);
        assert_eq!(b.images, vec![1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]);
        assert_eq!(b.targets, HostTargets::Classification(vec![1, 0]));
        // Images only: labels are not looked at.
        assert_eq!(collate(&[mk(0, 1.0, 9), mk(7, 2.0, 5)], &ids, None).unwrap().targets, HostTargets::None);
        let err = collate(&[mk(0, 1.0, 9), mk(7, 2.0, 5)], &ids, cl).unwrap_err().to_string();
        assert!(err.contains("sample 7") && err.contains("class id 5"), "{err}");
        let mut seg = DLSample::from_image(ImageId(8), HostImage::filled(2, 1, 1, 0.0));
        seg.segmentation_image = Some(crate::LabelImage { width: 2, height: 1, data: vec![9, 5] });
        let b = collate(&[seg.clone()], &ids, Some(ModelType::Segmentation)).unwrap();
        assert_eq!(b.targets, HostTargets::Segmentation { labels: vec![1, -1], weights: vec![1.0, 1.0] });
        // The model type decides, not the first sample's keys.
        let err = collate(&[seg], &ids, cl).unwrap_err().to_string();
        assert!(err.contains("sample 8") && err.contains("image_label_id"), "{err}");
        let mut odd = mk(3, 0.0, 4);
        odd.image = HostImage::filled(3, 1, 2, 0.0);
        assert!(collate(&[mk(0, 1.0, 9), odd], &ids, cl).unwrap_err().to_string().contains("sample 3"));
    }

    #[test]
    fn detection_and_anomaly_targets() {
        let ids = [ClassId::new(4).unwrap(), ClassId::new(9).unwrap()];
        let mut s = DLSample::from_image(ImageId(2), HostImage::filled(2, 2, 1, 0.0));
        let b = dl_core::Rect1::new(0.0, 0.0, 1.0, 1.0).unwrap();
        s.boxes = Some(Boxes::Rectangle1(vec![b, b]));
        s.bbox_label_id = Some(vec![ids[1], ids[0]]);
        s.bbox_iscrowd = Some(vec![false, true]);
        let t = collate(std::slice::from_ref(&s), &ids, Some(ModelType::Detection)).unwrap().targets;
        assert_eq!(
            t,
            HostTargets::Detection(vec![ImageBoxes {
                class_indices: vec![1, 0],
                boxes: Boxes::Rectangle1(vec![b, b]),
                ignore: vec![false, true]
            }])
        );
        s.bbox_label_id = Some(vec![ids[1]]);
        let err = collate(&[s], &ids, Some(ModelType::Detection)).unwrap_err().to_string();
        assert!(err.contains("sample 2") && err.contains("1 bbox_label_id for 2 boxes"), "{err}");
        let mut a = DLSample::from_image(ImageId(3), HostImage::filled(2, 1, 1, 0.0));
        a.anomaly_label_id = Some(1);
        a.anomaly_ground_truth = Some(crate::LabelImage { width: 2, height: 1, data: vec![0, 255] });
        let mut ok = DLSample::from_image(ImageId(4), HostImage::filled(2, 1, 1, 0.0));
        ok.anomaly_label_id = Some(0);
        let t = collate(&[a, ok], &ids, Some(ModelType::AnomalyDetection)).unwrap().targets;
        assert_eq!(t, HostTargets::Anomaly { labels: vec![1, 0], masks: vec![0, 1, 0, 0] });
    }
}
