//! `augment_dl_samples`: seeded, one distortion per augmented sample (SPEC §4.4).

use super::geometry::{self, ImageMap, resize_bilinear};
use crate::{Boxes, DLSample, Error, HostImage, LabelImage, Result};
use dl_core::{ClassId, Rect1, Rect2, Rng};
use rayon::prelude::*;
use std::f64::consts::{FRAC_PI_2, PI};

/// Which mirrorings are allowed (HALCON's `r`, `c`, `rc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mirror {
    /// Rows flipped (upside down).
    #[serde(rename = "r")]
    Rows,
    /// Columns flipped (left–right).
    #[serde(rename = "c")]
    Cols,
    /// Either or both, drawn uniformly among rows, columns and both.
    #[serde(rename = "rc")]
    RowsCols,
}

impl std::str::FromStr for Mirror {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "r" => Ok(Self::Rows),
            "c" => Ok(Self::Cols),
            "rc" => Ok(Self::RowsCols),
            other => Err(Error::Param { key: "mirror", message: format!("`{other}`: expected r, c or rc") }),
        }
    }
}

/// Augmentation parameters (HALCON's names). Values of brightness are in the units of the
/// preprocessed image.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentParams {
    /// Percentage of samples augmented (default 50).
    pub augmentation_percentage: f64,
    /// Mirroring, if enabled.
    pub mirror: Option<Mirror>,
    /// Rotation step: 0 (off), 90 (90°, 180°, 270°; 90/270 only on square images) or 180.
    pub rotate: u32,
    /// Uniform brightness offset in ±v (0 = off).
    pub brightness_variation: f64,
    /// A Gaussian spot (σ = a quarter of the smaller side, random centre) of a uniform ±v (0 = off).
    pub brightness_variation_spot: f64,
    /// CL and OD: crop a random window of this percentage of width and height, resize back (0 = off).
    /// For OD (an extension of HALCON's, where it is CL only) the boxes follow: a rectangle1 box is kept,
    /// clipped to the window, when at least half of its area lies in it, a rectangle2 box when its centre
    /// does.
    pub crop_percentage: f64,
    /// CL and OD: crop a random window this many pixels smaller, resize back (0 = off); boxes as for
    /// `crop_percentage`.
    pub crop_pixel: usize,
    /// CL only: rotate by 1 … v degrees either way, crop the inner rectangle, resize back (0 = off).
    pub rotate_range: f64,
    /// OD rectangle2: boxes have no front (φ kept modulo π).
    pub ignore_direction: bool,
    /// OD rectangle2: classes kept axis-parallel.
    pub class_ids_no_orientation: Vec<ClassId>,
    /// Seed; a sample's randomness is a function of (seed, epoch, image id).
    pub seed: u64,
}

impl Default for AugmentParams {
    fn default() -> Self {
        Self {
            augmentation_percentage: 50.0,
            mirror: None,
            rotate: 0,
            brightness_variation: 0.0,
            brightness_variation_spot: 0.0,
            crop_percentage: 0.0,
            crop_pixel: 0,
            rotate_range: 0.0,
            ignore_direction: false,
            class_ids_no_orientation: Vec::new(),
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Mirror,
    Rotate,
    Brightness,
    Spot,
    CropPercentage,
    CropPixel,
    RotateRange,
}

impl AugmentParams {
    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::Param`] naming the first bad key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key, message: String| Err(Error::Param { key, message });
        if !(0.0..=100.0).contains(&self.augmentation_percentage) {
            return bad(
                "augmentation_percentage",
                format!("{}: expected 0 … 100", self.augmentation_percentage),
            );
        }
        if ![0, 90, 180].contains(&self.rotate) {
            return bad("rotate", format!("{}: expected 0, 90 or 180", self.rotate));
        }
        if !(0.0..100.0).contains(&self.crop_percentage)
            || (self.crop_percentage > 0.0 && self.crop_percentage < 1.0)
        {
            return bad("crop_percentage", format!("{}: expected 0 (off) or 1 … 99", self.crop_percentage));
        }
        if !(0.0..=180.0).contains(&self.rotate_range) {
            return bad("rotate_range", format!("{}: expected 0 … 180 degrees", self.rotate_range));
        }
        for (key, v) in [
            ("brightness_variation", self.brightness_variation),
            ("brightness_variation_spot", self.brightness_variation_spot),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(key, format!("{v}: expected a finite value ≥ 0"));
            }
        }
        Ok(())
    }

    fn ops(&self, s: &DLSample) -> Vec<Op> {
        let classification =
            s.image_label_id.is_some() && s.boxes.is_none() && s.segmentation_image.is_none();
        // Detection samples crop too; their boxes follow (no label, weight or anomaly images, no domain).
        let detection = s.boxes.is_some()
            && s.segmentation_image.is_none()
            && s.weight_image.is_none()
            && s.anomaly_ground_truth.is_none()
            && s.domain.is_none();
        let crops = classification || detection;
        let mut ops = Vec::new();
        let mut add = |on: bool, op| {
            if on {
                ops.push(op)
            }
        };
        add(self.mirror.is_some(), Op::Mirror);
        add(self.rotate != 0, Op::Rotate);
        add(self.brightness_variation > 0.0, Op::Brightness);
        add(self.brightness_variation_spot > 0.0, Op::Spot);
        add(crops && self.crop_percentage > 0.0, Op::CropPercentage);
        add(
            crops && self.crop_pixel > 0 && self.crop_pixel < s.image.width.min(s.image.height),
            Op::CropPixel,
        );
        add(classification && self.rotate_range >= 1.0, Op::RotateRange);
        ops
    }
}

/// Augments samples in place: each is augmented with probability `augmentation_percentage` by one
/// distortion drawn uniformly from the enabled ones. Boxes, rectangle2 angles, label images, weight
/// images, anomaly masks and domains follow every geometric change. Randomness depends only on
/// (seed, epoch, image id).
///
/// # Errors
/// [`Error::Param`] naming an invalid parameter.
pub fn augment_dl_samples(samples: &mut [DLSample], params: &AugmentParams, epoch: u64) -> Result<()> {
    params.validate()?;
    samples.par_iter_mut().for_each(|s| {
        let mut rng = Rng::derived(params.seed, &[epoch, s.image_id.0]);
        if rng.next_f64() * 100.0 >= params.augmentation_percentage {
            return;
        }
        let ops = params.ops(s);
        if ops.is_empty() {
            return;
        }
        match ops[rng.below(ops.len() as u64) as usize] {
            Op::Mirror => {
                let (rows, cols) = match params.mirror.expect("enabled") {
                    Mirror::Rows => (true, false),
                    Mirror::Cols => (false, true),
                    Mirror::RowsCols => [(true, false), (false, true), (true, true)][rng.below(3) as usize],
                };
                mirror_sample(s, rows, cols, params);
            }
            Op::Rotate => {
                let square = s.image.width == s.image.height;
                let quarter = if params.rotate == 90 && square { 1 + rng.below(3) as u32 } else { 2 };
                for _ in 0..quarter {
                    rotate90_sample(s, params);
                }
            }
            Op::Brightness => {
                let v = (rng.next_f64() * 2.0 - 1.0) * params.brightness_variation;
                s.image.data.iter_mut().for_each(|x| *x += v as f32);
            }
            Op::Spot => {
                let (w, h) = (s.image.width, s.image.height);
                let v = (rng.next_f64() * 2.0 - 1.0) * params.brightness_variation_spot;
                let (cr, cc) = (rng.next_f64() * h as f64, rng.next_f64() * w as f64);
                let sigma = w.min(h) as f64 / 4.0;
                let spot: Vec<f32> = (0..h * w)
                    .map(|i| {
                        let (dr, dc) = ((i / w) as f64 - cr, (i % w) as f64 - cc);
                        (v * (-(dr * dr + dc * dc) / (2.0 * sigma * sigma)).exp()) as f32
                    })
                    .collect();
                for plane in s.image.data.chunks_mut(w * h) {
                    plane.iter_mut().zip(&spot).for_each(|(x, d)| *x += d);
                }
            }
            Op::CropPercentage => {
                let (w, h) = (s.image.width, s.image.height);
                let (cw, ch) = (
                    ((w as f64 * params.crop_percentage / 100.0).round() as usize).max(1),
                    ((h as f64 * params.crop_percentage / 100.0).round() as usize).max(1),
                );
                let (r0, c0) =
                    (rng.below((h - ch + 1) as u64) as usize, rng.below((w - cw + 1) as u64) as usize);
                crop_sample(s, r0, c0, cw, ch, params);
            }
            Op::CropPixel => {
                let n = params.crop_pixel;
                let (w, h) = (s.image.width, s.image.height);
                let (r0, c0) = (rng.below(n as u64 + 1) as usize, rng.below(n as u64 + 1) as usize);
                crop_sample(s, r0, c0, w - n, h - n, params);
            }
            Op::RotateRange => {
                let deg = 1.0 + rng.next_f64() * (params.rotate_range - 1.0);
                let sign = if rng.below(2) == 0 { -1.0 } else { 1.0 };
                rotate_inner(&mut s.image, sign * deg.to_radians());
            }
        }
    });
    Ok(())
}

/// Crops a `cw` × `ch` window at (`r0`, `c0`) and resizes it back to the image size; boxes follow (a
/// rectangle1 box kept, clipped, when at least half of its area stays in the image, a rectangle2 box when
/// its centre does), with their labels and crowd flags.
fn crop_sample(s: &mut DLSample, r0: usize, c0: usize, cw: usize, ch: usize, params: &AugmentParams) {
    let (w, h) = (s.image.width, s.image.height);
    crop_resize(&mut s.image, r0, c0, cw, ch);
    let Some(boxes) = &s.boxes else { return };
    let map = ImageMap::new(r0, c0, cw, ch, w, h);
    let (hi_r, hi_c) = (h as f64 - 0.5, w as f64 - 0.5);
    let labels = s.bbox_label_id.as_deref().unwrap_or_default();
    let mut kept = Vec::new();
    let boxes = match boxes {
        Boxes::Rectangle1(v) => Boxes::Rectangle1(
            v.iter()
                .enumerate()
                .filter_map(|(i, b)| {
                    let m = map.rect1_forward(b);
                    let clipped = Rect1::new(
                        m.row1().max(-0.5),
                        m.col1().max(-0.5),
                        m.row2().min(hi_r),
                        m.col2().min(hi_c),
                    )
                    .ok()?;
                    (clipped.area() >= 0.5 * m.area()).then(|| {
                        kept.push(i);
                        clipped
                    })
                })
                .collect(),
        ),
        Boxes::Rectangle2(v) => Boxes::Rectangle2(
            v.iter()
                .enumerate()
                .filter_map(|(i, b)| {
                    let m = map.rect2_forward(b);
                    (m.row() >= -0.5 && m.col() >= -0.5 && m.row() < hi_r && m.col() < hi_c).then(|| {
                        kept.push(i);
                        let class = labels.get(i).copied().unwrap_or(ClassId::new(0).expect("0"));
                        fix_r2(m, class, params)
                    })
                })
                .collect(),
        ),
    };
    s.boxes = Some(boxes);
    s.keep_box_annotations(&kept);
}

fn crop_resize(img: &mut HostImage, r0: usize, c0: usize, cw: usize, ch: usize) {
    let (w, h) = (img.width, img.height);
    let data = img
        .data
        .chunks(w * h)
        .flat_map(|p| resize_bilinear(&geometry::crop(p, w, r0, c0, cw, ch), cw, ch, w, h))
        .collect();
    img.data = data;
}

/// Rotates by `theta` about the centre (bilinear) and keeps the largest centred rectangle of the image's
/// aspect ratio inside the rotated image, resized back to the image size.
fn rotate_inner(img: &mut HostImage, theta: f64) {
    let (w, h) = (img.width as f64, img.height as f64);
    let (s, c) = (theta.sin().abs(), theta.cos().abs());
    let scale = (w / (w * c + h * s)).min(h / (w * s + h * c));
    let (sin, cos) = theta.sin_cos();
    let (cr, cc) = ((h - 1.0) / 2.0, (w - 1.0) / 2.0);
    let (iw, ih) = (img.width, img.height);
    let mut out = Vec::with_capacity(img.data.len());
    for plane in img.data.chunks(iw * ih) {
        for r in 0..ih {
            for col in 0..iw {
                let (y, x) = ((r as f64 - cr) * scale, (col as f64 - cc) * scale);
                let (sy, sx) = (cr + cos * y - sin * x, cc + sin * y + cos * x);
                out.push(bilinear_at(plane, iw, ih, sy, sx));
            }
        }
    }
    img.data = out;
}

fn bilinear_at(p: &[f32], w: usize, h: usize, r: f64, c: f64) -> f32 {
    let r = r.clamp(0.0, (h - 1) as f64);
    let c = c.clamp(0.0, (w - 1) as f64);
    let (r0, c0) = (r.floor() as usize, c.floor() as usize);
    let (r1, c1) = ((r0 + 1).min(h - 1), (c0 + 1).min(w - 1));
    let (fr, fc) = ((r - r0 as f64) as f32, (c - c0 as f64) as f32);
    let top = p[r0 * w + c0] + (p[r0 * w + c1] - p[r0 * w + c0]) * fc;
    let bottom = p[r1 * w + c0] + (p[r1 * w + c1] - p[r1 * w + c0]) * fc;
    top + (bottom - top) * fr
}

fn fix_r2(b: Rect2, class: ClassId, params: &AugmentParams) -> Rect2 {
    if params.class_ids_no_orientation.contains(&class) {
        b.axis_parallel()
    } else {
        Rect2::with_direction(b.row(), b.col(), b.phi(), b.length1(), b.length2(), params.ignore_direction)
            .expect("valid box stays valid")
    }
}

/// Mirrors image, annotations and boxes (c' = W − 1 − c, r' = H − 1 − r).
pub(crate) fn mirror_sample(s: &mut DLSample, rows: bool, cols: bool, params: &AugmentParams) {
    let (w, h) = (s.image.width, s.image.height);
    let (wf, hf) = (w as f64 - 1.0, h as f64 - 1.0);
    s.image.data = s.image.data.chunks(w * h).flat_map(|p| geometry::mirror(p, w, h, rows, cols)).collect();
    let lab = |l: &mut Option<LabelImage>| {
        if let Some(l) = l {
            l.data = geometry::mirror(&l.data, w, h, rows, cols);
        }
    };
    lab(&mut s.segmentation_image);
    lab(&mut s.anomaly_ground_truth);
    if let Some(wi) = &mut s.weight_image {
        wi.data = geometry::mirror(&wi.data, w, h, rows, cols);
    }
    let labels = s.bbox_label_id.clone().unwrap_or_default();
    match &mut s.boxes {
        Some(Boxes::Rectangle1(v)) => {
            for b in v.iter_mut() {
                let (r1, r2) = if rows { (hf - b.row2(), hf - b.row1()) } else { (b.row1(), b.row2()) };
                let (c1, c2) = if cols { (wf - b.col2(), wf - b.col1()) } else { (b.col1(), b.col2()) };
                *b = Rect1::new(r1, c1, r2, c2).expect("mirroring keeps the size");
            }
        }
        Some(Boxes::Rectangle2(v)) => {
            for (i, b) in v.iter_mut().enumerate() {
                let mut phi = b.phi();
                if cols {
                    phi = PI - phi;
                }
                if rows {
                    phi = -phi;
                }
                let r = if rows { hf - b.row() } else { b.row() };
                let c = if cols { wf - b.col() } else { b.col() };
                let m = Rect2::new(r, c, phi, b.length1(), b.length2()).expect("mirroring keeps the size");
                *b = fix_r2(m, labels.get(i).copied().unwrap_or(ClassId::new(0).expect("0")), params);
            }
        }
        None => {}
    }
    if let Some(d) = &mut s.domain {
        if rows {
            (d.row1, d.row2) = (h - 1 - d.row2, h - 1 - d.row1);
        }
        if cols {
            (d.col1, d.col2) = (w - 1 - d.col2, w - 1 - d.col1);
        }
    }
}

/// Rotates image and annotations by 90° counter-clockwise: (r, c) → (W − 1 − c, r), φ → φ + π/2.
pub(crate) fn rotate90_sample(s: &mut DLSample, params: &AugmentParams) {
    let (w, h) = (s.image.width, s.image.height);
    let wf = w as f64 - 1.0;
    s.image.data = s.image.data.chunks(w * h).flat_map(|p| geometry::rotate90(p, w, h)).collect();
    (s.image.width, s.image.height) = (h, w);
    let lab = |l: &mut Option<LabelImage>| {
        if let Some(l) = l {
            l.data = geometry::rotate90(&l.data, w, h);
            (l.width, l.height) = (h, w);
        }
    };
    lab(&mut s.segmentation_image);
    lab(&mut s.anomaly_ground_truth);
    if let Some(wi) = &mut s.weight_image {
        wi.data = geometry::rotate90(&wi.data, w, h);
        (wi.width, wi.height) = (h, w);
    }
    let labels = s.bbox_label_id.clone().unwrap_or_default();
    match &mut s.boxes {
        Some(Boxes::Rectangle1(v)) => {
            for b in v.iter_mut() {
                *b = Rect1::new(wf - b.col2(), b.row1(), wf - b.col1(), b.row2())
                    .expect("rotation keeps the size");
            }
        }
        Some(Boxes::Rectangle2(v)) => {
            for (i, b) in v.iter_mut().enumerate() {
                let m = Rect2::new(wf - b.col(), b.row(), b.phi() + FRAC_PI_2, b.length1(), b.length2())
                    .expect("rotation keeps the size");
                *b = fix_r2(m, labels.get(i).copied().unwrap_or(ClassId::new(0).expect("0")), params);
            }
        }
        None => {}
    }
    if let Some(d) = &mut s.domain {
        *d = crate::Domain { row1: w - 1 - d.col2, col1: d.row1, row2: w - 1 - d.col1, col2: d.row2 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dl_core::ImageId;
    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};

    fn sample(w: usize, h: usize, seed: u64, rect2: bool) -> DLSample {
        let mut rng = Rng::new(seed);
        let data = (0..w * h).map(|_| rng.below(255) as f32).collect();
        let mut s = DLSample::from_image(
            ImageId(seed),
            HostImage { width: w, height: h, channels: 1, bit_depth: 8, data },
        );
        s.segmentation_image =
            Some(LabelImage { width: w, height: h, data: (0..w * h).map(|_| rng.below(3) as u16).collect() });
        // Two boxes of different classes and sizes at random places.
        s.bbox_label_id = Some(vec![ClassId::new(1).unwrap(), ClassId::new(2).unwrap()]);
        let mut at = || (rng.next_f64() * h as f64, rng.next_f64() * w as f64, rng.next_f64() * 6.0 - 3.0);
        let ((r, c, phi), (r2, c2, phi2)) = (at(), at());
        s.boxes = Some(if rect2 {
            Boxes::Rectangle2(vec![
                Rect2::new(r, c, phi, 2.0, 1.0).unwrap(),
                Rect2::new(r2, c2, phi2, 1.5, 0.5).unwrap(),
            ])
        } else {
            Boxes::Rectangle1(vec![
                Rect1::new(r, c, r + 2.0, c + 3.0).unwrap(),
                Rect1::new(r2, c2, r2 + 0.5, c2 + 1.25).unwrap(),
            ])
        });
        s
    }

    /// Whether two samples are the same up to float rounding of box coordinates: every coordinate of
    /// every box (φ modulo 2π), the same number of boxes and labels, and every other field equal.
    fn close(a: &DLSample, b: &DLSample) -> bool {
        let near = |x: f64, y: f64| (x - y).abs() < 1e-9;
        let boxes = match (&a.boxes, &b.boxes) {
            (Some(Boxes::Rectangle1(x)), Some(Boxes::Rectangle1(y))) => {
                x.len() == y.len()
                    && x.iter().zip(y).all(|(p, q)| {
                        near(p.row1(), q.row1())
                            && near(p.col1(), q.col1())
                            && near(p.row2(), q.row2())
                            && near(p.col2(), q.col2())
                    })
            }
            (Some(Boxes::Rectangle2(x)), Some(Boxes::Rectangle2(y))) => {
                x.len() == y.len()
                    && x.iter().zip(y).all(|(p, q)| {
                        near(p.row(), q.row())
                            && near(p.col(), q.col())
                            && dl_core::normalize_phi(p.phi() - q.phi()).abs() < 1e-9
                            && near(p.length1(), q.length1())
                            && near(p.length2(), q.length2())
                    })
            }
            (None, None) => true,
            _ => false,
        };
        let rest = |s: &DLSample| {
            let mut s = s.clone();
            s.boxes = None;
            s
        };
        boxes && rest(a) == rest(b)
    }

    #[test]
    fn rotate90_moves_a_box_with_the_pixels() {
        let mut s = DLSample::from_image(ImageId(0), HostImage::filled(4, 4, 1, 0.0));
        s.image.data[1] = 9.0; // pixel (0, 1)
        s.bbox_label_id = Some(vec![ClassId::new(0).unwrap()]);
        s.boxes = Some(Boxes::Rectangle1(vec![Rect1::new(-0.5, 0.5, 0.5, 1.5).unwrap()]));
        rotate90_sample(&mut s, &AugmentParams::default());
        // (0, 1) → (W − 1 − 1, 0) = (2, 0).
        assert_eq!(s.image.data[2 * 4], 9.0);
        let Some(Boxes::Rectangle1(b)) = &s.boxes else { panic!() };
        assert_eq!((b[0].row1(), b[0].col1(), b[0].row2(), b[0].col2()), (1.5, -0.5, 2.5, 0.5));
    }

    #[test]
    fn detection_crops_carry_the_boxes_and_drop_those_left_out() {
        let mut s = DLSample::from_image(ImageId(0), HostImage::filled(10, 10, 1, 0.0));
        s.image.data[3 * 10 + 3] = 9.0; // pixel (3, 3)
        let id = |k| ClassId::new(k).unwrap();
        s.bbox_label_id = Some(vec![id(1), id(2), id(3)]);
        s.bbox_iscrowd = Some(vec![false, true, false]);
        s.boxes = Some(Boxes::Rectangle1(vec![
            Rect1::new(1.5, 1.5, 3.5, 3.5).unwrap(), // inside the window
            Rect1::new(7.5, 7.5, 9.5, 9.5).unwrap(), // outside
            Rect1::new(5.5, 5.5, 7.5, 7.5).unwrap(), // a quarter inside
        ]));
        // The window rows and columns 2 … 6, doubled.
        crop_sample(&mut s, 2, 2, 5, 5, &AugmentParams::default());
        let Some(Boxes::Rectangle1(b)) = &s.boxes else { panic!() };
        assert_eq!(b.len(), 1);
        assert_eq!((b[0].row1(), b[0].col1(), b[0].row2(), b[0].col2()), (-0.5, -0.5, 3.5, 3.5));
        assert_eq!(s.bbox_label_id, Some(vec![id(1)]));
        assert_eq!(s.bbox_iscrowd, Some(vec![false]));
        // Pixel (3, 3) lands at rows and columns 2 … 3 of the new image.
        assert!(s.image.data[2 * 10 + 2] > 0.0 && s.image.data[3 * 10 + 3] > 0.0 && s.image.data[0] == 0.0);
        // A rectangle2 box stays when its centre does, scaled.
        let mut s = DLSample::from_image(ImageId(0), HostImage::filled(10, 10, 1, 0.0));
        s.bbox_label_id = Some(vec![id(1), id(2)]);
        s.boxes = Some(Boxes::Rectangle2(vec![
            Rect2::new(4.0, 4.0, 0.3, 3.0, 1.0).unwrap(),
            Rect2::new(8.0, 1.0, 0.3, 3.0, 1.0).unwrap(),
        ]));
        crop_sample(&mut s, 2, 2, 5, 5, &AugmentParams::default());
        let Some(Boxes::Rectangle2(b)) = &s.boxes else { panic!() };
        assert_eq!(b.len(), 1);
        let near = |x: f64, y: f64| (x - y).abs() < 1e-9;
        assert!(near(b[0].row(), 4.5) && near(b[0].col(), 4.5) && near(b[0].phi(), 0.3));
        assert!(near(b[0].length1(), 6.0) && near(b[0].length2(), 2.0));
        assert_eq!(s.bbox_label_id, Some(vec![id(1)]));
    }

    proptest! {
        #[test]
        fn mirror_twice_and_rotate_four_times_are_identities(w in 1usize..9, seed in any::<u64>(), rect2 in any::<bool>()) {
            let params = AugmentParams::default();
            let orig = sample(w, w, seed, rect2);
            for (rows, cols) in [(true, false), (false, true), (true, true)] {
                let mut s = orig.clone();
                mirror_sample(&mut s, rows, cols, &params);
                mirror_sample(&mut s, rows, cols, &params);
                prop_assert!(close(&s, &orig));
            }
            let mut s = orig.clone();
            for _ in 0..4 {
                rotate90_sample(&mut s, &params);
            }
            prop_assert!(close(&s, &orig));
        }

        #[test]
        fn augmented_samples_keep_valid_labels_and_angles(seed in any::<u64>(), epoch in 0u64..5, ignore in any::<bool>()) {
            let params = AugmentParams {
                augmentation_percentage: 100.0, mirror: Some(Mirror::RowsCols), rotate: 90,
                brightness_variation: 5.0, brightness_variation_spot: 5.0, ignore_direction: ignore, seed,
                crop_percentage: 70.0, crop_pixel: 2, ..Default::default()
            };
            let mut batch: Vec<DLSample> = (0..4).map(|i| sample(6, 6, seed.wrapping_add(i), true)).collect();
            // Detection samples without label images also crop.
            for i in 0..4 {
                let mut s = sample(8, 8, seed.wrapping_add(10 + i), i % 2 == 0);
                s.segmentation_image = None;
                batch.push(s);
            }
            for s in &mut batch {
                if let Some(Boxes::Rectangle2(b)) = &mut s.boxes {
                    for x in b.iter_mut() {
                        *x = Rect2::with_direction(x.row(), x.col(), x.phi(), x.length1(), x.length2(), ignore).unwrap();
                    }
                }
            }
            let again = batch.clone();
            augment_dl_samples(&mut batch, &params, epoch).unwrap();
            let mut twice = again.clone();
            augment_dl_samples(&mut twice, &params, epoch).unwrap();
            prop_assert_eq!(&batch, &twice);
            for s in &batch {
                prop_assert!(s.segmentation_image.as_ref().is_none_or(|l| l.data.iter().all(|&v| v < 3)));
                prop_assert_eq!(s.boxes.as_ref().map_or(0, Boxes::len), s.bbox_label_id.as_ref().map_or(0, Vec::len));
                prop_assert_eq!((s.image.width, s.image.height), if s.segmentation_image.is_some() { (6, 6) } else { (8, 8) });
                if let Some(Boxes::Rectangle2(b)) = &s.boxes {
                    let lim = if ignore { FRAC_PI_2 } else { PI };
                    prop_assert!(b.iter().all(|b| b.phi() > -lim - 1e-12 && b.phi() <= lim + 1e-12));
                }
            }
        }

        #[test]
        fn classification_crops_keep_the_size(seed in any::<u64>()) {
            let params = AugmentParams { augmentation_percentage: 100.0, crop_percentage: 60.0, crop_pixel: 3, rotate_range: 20.0, seed, ..Default::default() };
            let mut s = DLSample::from_image(ImageId(seed), HostImage::filled(12, 9, 3, 1.0));
            s.image_label_id = Some(vec![ClassId::new(0).unwrap()]);
            let mut batch = vec![s];
            augment_dl_samples(&mut batch, &params, 0).unwrap();
            prop_assert_eq!((batch[0].image.width, batch[0].image.height, batch[0].image.data.len()), (12, 9, 12 * 9 * 3));
            prop_assert!(batch[0].image.data.iter().all(|&v| (v - 1.0).abs() < 1e-5));
        }
    }
}
