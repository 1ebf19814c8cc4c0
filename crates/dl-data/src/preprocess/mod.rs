//! Preprocessing (SPEC §4): parameters, `preprocess_dl_samples`, the preprocessed dataset and its
//! sample files, segmentation weights, augmentation and host batches.

mod augment;
mod batch;
mod dataset;
pub mod geometry;
mod param;
mod sample_file;
mod weights;

pub use augment::{AugmentParams, Mirror, augment_dl_samples};
pub use batch::{HostBatch, HostTargets, ImageBoxes, check_segmentation_labels, collate};
pub use dataset::{
    PreprocessOptions, SizeEstimate, available_disk_space, estimate_preprocessed_size, preprocess_dl_dataset,
};
pub use geometry::ImageMap;
pub use param::{
    DLPreprocessParam, DomainHandling, IMAGENET_MEAN, IMAGENET_STD, MAX_NETWORK_PIXELS, MAX_NETWORK_SIDE,
    NormalizationType,
};
pub use sample_file::{
    SAMPLE_FILE_HEADER, SAMPLE_FILE_VERSION, SampleStorage, decode_samples, encode_samples,
    encode_samples_with, read_dl_samples, write_dl_samples, write_dl_samples_with,
};
pub use weights::gen_dl_segmentation_weights;

use crate::{Boxes, DLSample, Error, HostImage, InstanceType, LabelImage, ModelType, Result};
use dl_core::{ClassId, Rect1};
use rayon::prelude::*;

/// Preprocesses samples in place and in parallel (SPEC §4.2): crop to the domain (`crop_domain`),
/// convert channels (1 → 3 replicates, 3 → 1 gray), bilinear resize to the network size, normalise,
/// move and rescale boxes (rectangle1 clipped to the image, rectangle2 dropped when its centre leaves
/// it; `class_ids_no_orientation` → axis-parallel; `ignore_direction` → φ modulo π), nearest-neighbour
/// resize of label images and anomaly masks, `class_ids_background` → `set_background_id`.
///
/// Channels are converted before normalising, so `constant_values` means refer to the network's
/// channels. Deterministic: the result does not depend on the number of threads.
///
/// # Errors
/// The first failing sample in order: [`Error::Sample`] naming it for a wrong channel count, a domain
/// outside the image, a box entirely outside the image, or annotations of another size than the image.
pub fn preprocess_dl_samples(samples: &mut [DLSample], param: &DLPreprocessParam) -> Result<()> {
    param.validate()?;
    samples.par_iter_mut().try_for_each(|s| {
        let taken = std::mem::replace(s, DLSample::from_image(s.image_id, HostImage::filled(0, 0, 0, 0.0)));
        *s = preprocess_sample(taken, param)?.0;
        Ok(())
    })
}

/// Preprocesses one sample; see [`preprocess_dl_samples`]. Returns the sample and the [`ImageMap`] from
/// the original image to the preprocessed one, with which results are mapped back.
///
/// # Errors
/// As [`preprocess_dl_samples`].
pub fn preprocess_sample(mut s: DLSample, param: &DLPreprocessParam) -> Result<(DLSample, ImageMap)> {
    let bad = |message: String| Error::Sample { image_id: s.image_id, message };
    let (w, h) = (s.image.width, s.image.height);
    if w == 0 || h == 0 {
        return Err(bad("the image is empty".into()));
    }
    for (what, size) in [
        ("segmentation_image", s.segmentation_image.as_ref().map(|l| (l.width, l.height))),
        ("anomaly_ground_truth", s.anomaly_ground_truth.as_ref().map(|l| (l.width, l.height))),
        ("weight_image", s.weight_image.as_ref().map(|l| (l.width, l.height))),
    ] {
        if let Some(size) = size
            && size != (w, h)
        {
            return Err(bad(format!("{what} is {}×{}, the image {w}×{h}", size.0, size.1)));
        }
    }
    // 1. Crop to the domain.
    let (r0, c0, cw, ch) = match (param.domain_handling, s.domain) {
        (DomainHandling::CropDomain, Some(d)) => {
            if d.row2 >= h || d.col2 >= w || d.row1 > d.row2 || d.col1 > d.col2 {
                return Err(bad(format!(
                    "domain rows {}..={} cols {}..={} does not fit the {w}×{h} image",
                    d.row1, d.row2, d.col1, d.col2
                )));
            }
            (d.row1, d.col1, d.col2 - d.col1 + 1, d.row2 - d.row1 + 1)
        }
        _ => (0, 0, w, h),
    };
    let (nw, nh) = (param.image_width, param.image_height);
    let map = ImageMap::new(r0, c0, cw, ch, nw, nh).with_source(w, h);
    // 2. Channels, resize, normalise.
    let img = &s.image;
    let full = (cw, ch) == (w, h);
    let planes: Vec<std::borrow::Cow<[f32]>> =
        (0..img.channels)
            .map(|c| {
                if full {
                    img.plane(c).into()
                } else {
                    geometry::crop(img.plane(c), w, r0, c0, cw, ch).into()
                }
            })
            .collect();
    // 3 → 1 is converted before resizing; 1 → 3 is replicated after it (same values, a third of the work).
    let want = param.image_num_channels;
    let sources = match (planes.len(), want) {
        (a, b) if a == b => planes,
        (1, 3) => planes,
        (3, 1) => vec![to_gray(&planes).into()],
        (a, b) => {
            return Err(bad(format!(
                "the image has {a} channels, the model takes {b}: only 1 → 3 and 3 → 1 are converted"
            )));
        }
    };
    let plane_len = nw * nh;
    let mut data = vec![0f32; plane_len * want];
    for (src, dst) in sources.iter().zip(data.chunks_mut(plane_len)) {
        geometry::resize_bilinear_into(src, cw, ch, nw, nh, dst);
    }
    if sources.len() < want {
        let (first, rest) = data.split_at_mut(plane_len);
        rest.chunks_mut(plane_len).for_each(|p| p.copy_from_slice(first));
    }
    let mut out = HostImage { width: nw, height: nh, channels: want, bit_depth: img.bit_depth, data };
    normalize(&mut out, param);
    // 3. Boxes.
    if let Some(boxes) = s.boxes.take() {
        let labels = s.bbox_label_id.get_or_insert_default();
        let (boxes, keep) = transform_boxes(boxes, labels, &map, (w, h), param, s.image_id)?;
        s.keep_box_annotations(&keep);
        s.boxes = Some(boxes);
    }
    // 4. Label images and masks: crop, nearest neighbour, background merge.
    let label = |l: LabelImage| -> LabelImage {
        let cropped = if (cw, ch) == (w, h) { l.data } else { geometry::crop(&l.data, w, r0, c0, cw, ch) };
        LabelImage { width: nw, height: nh, data: geometry::resize_nearest(&cropped, cw, ch, nw, nh) }
    };
    if let Some(mut l) = s.segmentation_image.take().map(label) {
        if let Some(bg) = param.set_background_id.first() {
            let merge: Vec<u16> = param.class_ids_background.iter().map(|c| c.get()).collect();
            l.data.iter_mut().filter(|v| merge.contains(v)).for_each(|v| *v = bg.get());
        }
        s.segmentation_image = Some(l);
    }
    s.anomaly_ground_truth = s.anomaly_ground_truth.take().map(label);
    s.weight_image = s.weight_image.take().map(|wimg| {
        let cropped =
            if (cw, ch) == (w, h) { wimg.data } else { geometry::crop(&wimg.data, w, r0, c0, cw, ch) };
        HostImage {
            width: nw,
            height: nh,
            channels: 1,
            bit_depth: 32,
            data: geometry::resize_nearest(&cropped, cw, ch, nw, nh),
        }
    });
    s.domain = match (param.domain_handling, s.domain) {
        (DomainHandling::KeepDomain, Some(d)) => {
            let (a, b) =
                (map.forward((d.row1 as f64, d.col1 as f64)), map.forward((d.row2 as f64, d.col2 as f64)));
            let clamp = |v: f64, n: usize| v.round().clamp(0.0, (n - 1) as f64) as usize;
            Some(crate::Domain {
                row1: clamp(a.0, nh),
                col1: clamp(a.1, nw),
                row2: clamp(b.0, nh),
                col2: clamp(b.1, nw),
            })
        }
        _ => None,
    };
    s.image = out;
    Ok((s, map))
}

/// Gray from three planes: 0.299 R + 0.587 G + 0.114 B.
fn to_gray(planes: &[std::borrow::Cow<[f32]>]) -> Vec<f32> {
    planes[0]
        .iter()
        .zip(planes[1].iter())
        .zip(planes[2].iter())
        .map(|((r, g), b)| 0.299 * r + 0.587 * g + 0.114 * b)
        .collect()
}

/// Applies the normalisation of `param` in place (each mapping is a multiply-add per value).
fn normalize(img: &mut HostImage, param: &DLPreprocessParam) {
    let (lo, hi) = (param.image_range_min, param.image_range_max);
    let n = img.width * img.height;
    // The affine map sending min → lo and max → hi, as (scale, offset).
    let linear = |min: f64, max: f64| {
        let scale = (hi - lo) / (max - min);
        (scale as f32, (lo - min * scale) as f32)
    };
    let apply = |plane: &mut [f32], (scale, offset): (f32, f32)| {
        plane.iter_mut().for_each(|v| *v = *v * scale + offset)
    };
    let top = if img.bit_depth == 16 { 65535.0 } else { 255.0 };
    let stretch = |min: f32, max: f32| {
        if max > min { linear(f64::from(min), f64::from(max)) } else { linear(0.0, top) }
    };
    let min_max =
        |p: &[f32]| p.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    match param.normalization_type {
        NormalizationType::None => {
            if img.bit_depth == 8 {
                apply(&mut img.data, linear(0.0, 255.0));
            }
        }
        NormalizationType::AllChannels => {
            for plane in img.data.chunks_mut(n) {
                let (min, max) = min_max(plane);
                apply(plane, stretch(min, max));
            }
        }
        NormalizationType::FirstChannel => {
            let (min, max) = min_max(&img.data[..n]);
            apply(&mut img.data, stretch(min, max));
        }
        NormalizationType::ConstantValues => {
            let (mean, dev) = param.normalization_constants();
            for (c, plane) in img.data.chunks_mut(n).enumerate() {
                apply(plane, ((1.0 / dev[c]) as f32, (-mean[c] / dev[c]) as f32));
            }
        }
    }
    img.bit_depth = 32;
}

/// Maps boxes through `map`, converts them to the parameter's instance type, clips or drops them.
/// Returns the new boxes and the indices of the kept ones.
fn transform_boxes(
    boxes: Boxes,
    labels: &[ClassId],
    map: &ImageMap,
    (w, h): (usize, usize),
    param: &DLPreprocessParam,
    image_id: dl_core::ImageId,
) -> Result<(Boxes, Vec<usize>)> {
    let (nw, nh) = (param.image_width as f64, param.image_height as f64);
    let outside = |index: usize, what: String| Error::Sample {
        image_id,
        message: format!("box {index} lies entirely outside the {w}×{h} image: {what}"),
    };
    let in_image = |r1: f64, c1: f64, r2: f64, c2: f64| {
        r2 > -0.5 && c2 > -0.5 && r1 < h as f64 - 0.5 && c1 < w as f64 - 0.5
    };
    let mut keep = Vec::new();
    let as_r2 = param.model_type == ModelType::Detection && param.instance_type() == InstanceType::Rectangle2;
    let r2_list: Vec<dl_core::Rect2> = match boxes {
        Boxes::Rectangle1(list) if !as_r2 => {
            let mut out = Vec::new();
            for (i, b) in list.iter().enumerate() {
                if !in_image(b.row1(), b.col1(), b.row2(), b.col2()) {
                    return Err(outside(i, format!("{b:?}")));
                }
                let m = map.rect1_forward(b);
                let clipped = Rect1::new(
                    m.row1().max(-0.5),
                    m.col1().max(-0.5),
                    m.row2().min(nh - 0.5),
                    m.col2().min(nw - 0.5),
                );
                if let Ok(c) = clipped {
                    out.push(c);
                    keep.push(i);
                }
            }
            return Ok((Boxes::Rectangle1(out), keep));
        }
        Boxes::Rectangle1(list) => list.iter().map(Rect1::to_rect2).collect(),
        Boxes::Rectangle2(list) => list,
    };
    let mut out = Vec::new();
    for (i, b) in r2_list.iter().enumerate() {
        let e = b.enclosing_rect1();
        if !in_image(e.row1(), e.col1(), e.row2(), e.col2()) {
            return Err(outside(i, format!("{b:?}")));
        }
        let mut m = map.rect2_forward(b);
        if !(m.row() >= -0.5 && m.row() <= nh - 0.5 && m.col() >= -0.5 && m.col() <= nw - 0.5) {
            continue;
        }
        if param.class_ids_no_orientation.contains(&labels[i]) {
            m = m.axis_parallel();
        } else if param.ignore_direction == Some(true) {
            m = dl_core::Rect2::with_direction(m.row(), m.col(), m.phi(), m.length1(), m.length2(), true)
                .expect("a valid box stays valid");
        }
        out.push(m);
        keep.push(i);
    }
    if as_r2 {
        Ok((Boxes::Rectangle2(out), keep))
    } else {
        let r1 = out
            .iter()
            .map(|b| {
                let e = b.enclosing_rect1();
                Rect1::new(
                    e.row1().max(-0.5),
                    e.col1().max(-0.5),
                    e.row2().min(nh - 0.5),
                    e.col2().min(nw - 0.5),
                )
                .expect("the centre is inside, so the clipped box has area")
            })
            .collect();
        Ok((Boxes::Rectangle1(r1), keep))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Domain;
    use dl_core::ImageId;

    fn gray(w: usize, h: usize, data: Vec<f32>) -> DLSample {
        DLSample::from_image(ImageId(1), HostImage { width: w, height: h, channels: 1, bit_depth: 8, data })
    }

    fn param(norm: NormalizationType, w: usize, h: usize, c: usize) -> DLPreprocessParam {
        let mut p = DLPreprocessParam::new(ModelType::Classification, w, h, c).unwrap();
        p.normalization_type = norm;
        p
    }

    #[test]
    fn normalisation_hand_values() {
        let s = gray(2, 1, vec![0.0, 255.0]);
        let out = preprocess_sample(s.clone(), &param(NormalizationType::None, 2, 1, 1)).unwrap().0;
        assert_eq!(out.image.data, vec![-127.0, 128.0]);
        let out =
            preprocess_sample(gray(2, 1, vec![10.0, 20.0]), &param(NormalizationType::AllChannels, 2, 1, 1))
                .unwrap()
                .0;
        assert_eq!(out.image.data, vec![-127.0, 128.0]);
        // A constant channel is mapped as by `none`.
        let out =
            preprocess_sample(gray(2, 1, vec![51.0, 51.0]), &param(NormalizationType::AllChannels, 2, 1, 1))
                .unwrap()
                .0;
        assert_eq!(out.image.data, vec![-76.0, -76.0]);
        let out =
            preprocess_sample(gray(1, 1, vec![123.675]), &param(NormalizationType::ConstantValues, 1, 1, 3))
                .unwrap()
                .0;
        assert_eq!(out.image.data[0], 0.0);
        assert!((out.image.data[1] - (123.675 - 116.28) / 57.12).abs() < 1e-6);
        // first_channel: the first channel's range for all.
        let rgb = DLSample::from_image(
            ImageId(1),
            HostImage {
                width: 2,
                height: 1,
                channels: 3,
                bit_depth: 8,
                data: vec![0.0, 10.0, 5.0, 20.0, 0.0, 0.0],
            },
        );
        let mut p = param(NormalizationType::FirstChannel, 2, 1, 3);
        p.image_range_min = 0.0;
        p.image_range_max = 1.0;
        let out = preprocess_sample(rgb, &p).unwrap().0;
        assert_eq!(out.image.data, vec![0.0, 1.0, 0.5, 2.0, 0.0, 0.0]);
    }

    #[test]
    fn channel_conversion_and_errors() {
        let out =
            preprocess_sample(gray(1, 1, vec![255.0]), &param(NormalizationType::None, 1, 1, 3)).unwrap().0;
        assert_eq!(out.image.data, vec![128.0; 3]);
        let two = DLSample::from_image(
            ImageId(5),
            HostImage { width: 1, height: 1, channels: 2, bit_depth: 8, data: vec![0.0, 0.0] },
        );
        let err = preprocess_sample(two, &param(NormalizationType::None, 1, 1, 3)).unwrap_err().to_string();
        assert!(err.contains("sample 5") && err.contains("2 channels"), "{err}");
    }

    #[test]
    fn crop_domain_moves_boxes_and_refuses_oversized_domains() {
        let mut s = gray(10, 10, vec![0.0; 100]);
        s.domain = Some(Domain { row1: 2, col1: 4, row2: 6, col2: 8 });
        s.bbox_label_id = Some(vec![ClassId::new(0).unwrap(), ClassId::new(1).unwrap()]);
        s.boxes = Some(Boxes::Rectangle1(vec![
            Rect1::new(2.5, 4.5, 4.5, 6.5).unwrap(),
            Rect1::new(0.0, 0.0, 1.0, 1.0).unwrap(),
        ]));
        let mut p = DLPreprocessParam::new(ModelType::Detection, 10, 10, 1).unwrap();
        p.domain_handling = DomainHandling::CropDomain;
        let out = preprocess_sample(s.clone(), &p).unwrap().0;
        let Some(Boxes::Rectangle1(b)) = &out.boxes else { panic!() };
        // Crop 5×5 at (2, 4), resize ×2: r' = (r − 2 + 0.5)·2 − 0.5.
        assert_eq!(b.len(), 1, "the box outside the domain is dropped");
        assert_eq!((b[0].row1(), b[0].col1(), b[0].row2(), b[0].col2()), (1.5, 1.5, 5.5, 5.5));
        assert_eq!(out.bbox_label_id.as_ref().unwrap()[0].get(), 0);
        s.domain = Some(Domain { row1: 2, col1: 4, row2: 12, col2: 8 });
        assert!(preprocess_sample(s.clone(), &p).unwrap_err().to_string().contains("does not fit"));
        s.domain = None;
        s.boxes = Some(Boxes::Rectangle1(vec![
            Rect1::new(20.0, 20.0, 30.0, 30.0).unwrap(),
            Rect1::new(0.0, 0.0, 1.0, 1.0).unwrap(),
        ]));
        assert!(preprocess_sample(s, &p).unwrap_err().to_string().contains("entirely outside"));
    }

    #[test]
    fn labels_use_nearest_neighbour_and_background_merge() {
        let mut s = gray(2, 2, vec![0.0; 4]);
        s.segmentation_image = Some(LabelImage { width: 2, height: 2, data: vec![0, 3, 5, 1] });
        let mut p = DLPreprocessParam::new(ModelType::Segmentation, 4, 4, 1).unwrap();
        p.set_background_id = vec![ClassId::new(0).unwrap()];
        p.class_ids_background = vec![ClassId::new(5).unwrap()];
        let out = preprocess_sample(s, &p).unwrap().0;
        assert_eq!(
            out.segmentation_image.unwrap().data,
            vec![0, 0, 3, 3, 0, 0, 3, 3, 0, 0, 1, 1, 0, 0, 1, 1]
        );
    }
}
