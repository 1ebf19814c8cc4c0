//! Host batches: preprocessed samples collated into contiguous buffers, ready for upload by dl-nets.

use crate::{Boxes, DLSample, Error, Result};
use dl_core::{ClassId, ImageId};

/// A batch in host memory: images as contiguous f32 NCHW, plus per-sample targets. Class ids are
/// mapped to class indices (positions in the model's `class_ids`).
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    /// Pixels, N × C × H × W.
    pub images: Vec<f32>,
    /// [N, C, H, W].
    pub shape: [usize; 4],
    /// Image id of each sample.
    pub image_ids: Vec<ImageId>,
    /// CL: the class index of each sample (its first label).
    pub class_indices: Option<Vec<i64>>,
    /// OD: per sample, class indices and boxes.
    pub boxes: Option<Vec<(Vec<i64>, Boxes)>>,
    /// SE: class index per pixel, N × H × W (classes not in `class_ids` → −1, to be ignored).
    pub segmentation: Option<Vec<i64>>,
    /// SE: pixel weights, N × H × W (1 where a sample has no weight image).
    pub weights: Option<Vec<f32>>,
    /// AD: 0 ok / 1 nok per sample.
    pub anomaly_label_ids: Option<Vec<u8>>,
}

/// Collates preprocessed samples into a [`HostBatch`]; `class_ids` gives the class order of the model.
///
/// # Errors
/// [`Error::Sample`] naming a sample whose size or channels differ from the first one, or whose label
/// is not in `class_ids`; [`Error::Param`] for an empty batch.
pub fn collate(samples: &[DLSample], class_ids: &[ClassId]) -> Result<HostBatch> {
    let first = samples.first().ok_or_else(|| Error::Param { key: "batch", message: "no samples".into() })?;
    let (c, h, w) = (first.image.channels, first.image.height, first.image.width);
    let index = |id: &ClassId, image_id: ImageId| -> Result<i64> {
        class_ids.iter().position(|c| c == id).map(|i| i as i64).ok_or_else(|| Error::Sample {
            image_id,
            message: format!("class id {id} is not one of the model's classes"),
        })
    };
    let mut images = Vec::with_capacity(samples.len() * c * h * w);
    let mut class_indices = first.image_label_id.as_ref().map(|_| Vec::new());
    let mut boxes = first.boxes.as_ref().map(|_| Vec::new());
    let mut segmentation = first.segmentation_image.as_ref().map(|_| Vec::new());
    let mut weights = first.segmentation_image.as_ref().map(|_| Vec::new());
    let mut anomaly = first.anomaly_label_id.map(|_| Vec::new());
    let table = segmentation.as_ref().map(|_| crate::class_index_table(class_ids));
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
        if let Some(v) = &mut class_indices {
            let id = s.image_label_id.as_ref().and_then(|l| l.first()).ok_or_else(|| Error::Sample {
                image_id: s.image_id,
                message: "no image_label_id in a classification batch".into(),
            })?;
            v.push(index(id, s.image_id)?);
        }
        if let Some(v) = &mut boxes {
            let labels = s
                .bbox_label_id
                .iter()
                .flatten()
                .map(|id| index(id, s.image_id))
                .collect::<Result<Vec<_>>>()?;
            let b = s.boxes.clone().unwrap_or(Boxes::Rectangle1(Vec::new()));
            v.push((labels, b));
        }
        if let Some(v) = &mut segmentation {
            let l = s.segmentation_image.as_ref().ok_or_else(|| Error::Sample {
                image_id: s.image_id,
                message: "no segmentation_image in a segmentation batch".into(),
            })?;
            if (l.width, l.height) != (w, h) {
                return Err(Error::Sample {
                    image_id: s.image_id,
                    message: "segmentation_image size differs from the image".into(),
                });
            }
            v.extend(l.class_indices(table.as_deref().expect("built for segmentation batches")));
            let wv = weights.as_mut().expect("set with segmentation");
            match &s.weight_image {
                Some(wi) => wv.extend_from_slice(&wi.data),
                None => wv.extend(std::iter::repeat_n(1.0, w * h)),
            }
        }
        if let Some(v) = &mut anomaly {
            v.push(s.anomaly_label_id.unwrap_or(0));
        }
    }
    Ok(HostBatch {
        images,
        shape: [samples.len(), c, h, w],
        image_ids: samples.iter().map(|s| s.image_id).collect(),
        class_indices,
        boxes,
        segmentation,
        weights,
        anomaly_label_ids: anomaly,
    })
}

#[cfg(test)]
mod tests {
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
        let b = collate(&[mk(0, 1.0, 9), mk(1, 2.0, 4)], &ids).unwrap();
        assert_eq!(b.shape, [2, 2, 1, 2]);
        assert_eq!(b.images, vec![1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]);
        assert_eq!(b.class_indices, Some(vec![1, 0]));
        let err = collate(&[mk(0, 1.0, 9), mk(7, 2.0, 5)], &ids).unwrap_err().to_string();
        assert!(err.contains("sample 7") && err.contains("class id 5"), "{err}");
        let mut seg = DLSample::from_image(ImageId(8), HostImage::filled(2, 1, 1, 0.0));
        seg.segmentation_image = Some(crate::LabelImage { width: 2, height: 1, data: vec![9, 5] });
        let b = collate(&[seg], &ids).unwrap();
        assert_eq!((b.segmentation, b.weights), (Some(vec![1, -1]), Some(vec![1.0, 1.0])));
        let mut odd = mk(3, 0.0, 4);
        odd.image = HostImage::filled(3, 1, 2, 0.0);
        assert!(collate(&[mk(0, 1.0, 9), odd], &ids).unwrap_err().to_string().contains("sample 3"));
    }
}
