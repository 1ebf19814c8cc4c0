//! `cargo xtask data textures`: an anomaly set in the MVTec AD layout with pixel masks, made from three
//! real texture photos of scikit-image's data (`brick`, `grass`, `gravel`, 512×512 gray, CC0) with
//! **synthetic defects drawn on them** (seeded, so every run writes the same bytes).
//!
//! Per texture `T`:
//! - `T/train/good/NNN.png`: 50 defect-free 128×128 crops of rows 0–127 and 256–383 (every 16
//!   columns).
//! - `T/test/good/NNN.png`: 26 defect-free crops of rows 128–255 and 384–511 (every 32 columns): no
//!   pixel of a test crop is in a training crop. The bands interleave because the photos are taken at
//!   an angle (the grain shrinks from top to bottom).
//! - `T/test/{scratch,spot,hole}/NNN.png`: the same 26 crops, each with one drawn defect (the kind
//!   cycling over the crops: 9, 9 and 8), and `T/ground_truth/<kind>/NNN_mask.png` (255 where
//!   the defect was drawn, 0 elsewhere).
//!
//! Defects: a *scratch* is a thin rotated bar (length 24–56, width 3–5 px) brightened or darkened; a
//! *spot* (a stain) a rotated ellipse (radii 6–12 × 4–9 px) whose texture is kept but 80 gray levels
//! brighter or darker (clamped); a *hole* a disc (radius 5–10 px) nearly black, keeping a trace of the
//! texture. (A stain of one flat tone looks like a smooth stone face on gravel: PatchCore found only its
//! rim.) The shapes are
//! rasterised by imageproc on the mask; the image changes exactly where the mask is set.

use crate::data::{Package, open_wheel, save_gray, wheel_member};
use crate::fetch::Source;
use anyhow::{Context, Result, bail};
use dl_core::Rng;
use image::{GrayImage, Luma};
use imageproc::drawing::{draw_filled_circle_mut, draw_polygon_mut};
use imageproc::point::Point;
use std::path::Path;

pub(crate) const SKIMAGE: Package = Package {
    source: Source::PipPlatform(
        "scikit-image==0.26.0",
        &["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11"],
    ),
    file: "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    sha256: "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
};

/// The textures, in seed order.
pub const TEXTURES: [&str; 3] = ["brick", "grass", "gravel"];
/// The defect kinds, cycling over the test crops.
pub const DEFECTS: [&str; 3] = ["scratch", "spot", "hole"];
/// Crop side in pixels.
pub const CROP: u32 = 128;
/// The first rows of the 128-row bands training crops come from.
const TRAIN_BANDS: [u32; 2] = [0, 256];
/// The first rows of the bands test crops come from (interleaved with the training bands, because the
/// photos are taken at an angle: the grain size changes from top to bottom).
const TEST_BANDS: [u32; 2] = [128, 384];

/// Top-left corners (row, col) of the crops whose top rows are `rows`, every `stride` columns across
/// the 512-wide image.
fn corners(rows: &[u32], stride: u32) -> Vec<(u32, u32)> {
    rows.iter().flat_map(|&r| (0..=(512 - CROP) / stride).map(move |k| (r, k * stride))).collect()
}

/// A uniform value in `[lo, hi)`.
fn uniform(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.next_f64()
}

/// The points (x, y) of `shape` (in the shape's own axes) rotated by `angle` about (x, y)'s origin and
/// moved to (x, y), as integer polygon points (imageproc's polygons are open: the first point is not
/// repeated).
fn placed(x: f64, y: f64, angle: f64, shape: impl Iterator<Item = (f64, f64)>) -> Vec<Point<i32>> {
    let (s, c) = angle.sin_cos();
    let mut pts: Vec<Point<i32>> = shape
        .map(|(u, v)| Point::new((x + u * c - v * s).round() as i32, (y + u * s + v * c).round() as i32))
        .collect();
    pts.dedup();
    while pts.len() > 1 && pts.first() == pts.last() {
        pts.pop();
    }
    pts
}

/// A bar of half sides `a` × `b`: its four corners.
fn bar(a: f64, b: f64) -> impl Iterator<Item = (f64, f64)> {
    [(a, b), (-a, b), (-a, -b), (a, -b)].into_iter()
}

/// An ellipse of radii `a` × `b` as an `n`-gon.
fn ellipse(a: f64, b: f64, n: usize) -> impl Iterator<Item = (f64, f64)> {
    (0..n).map(move |k| {
        let t = k as f64 * std::f64::consts::TAU / n as f64;
        (a * t.cos(), b * t.sin())
    })
}

/// Draws one defect of `kind` on `crop` and returns its mask (255 = defect).
fn draw_defect(crop: &mut GrayImage, kind: &str, rng: &mut Rng) -> GrayImage {
    let mut mask = GrayImage::new(CROP, CROP);
    let margin = 28.0;
    let x = uniform(rng, margin, f64::from(CROP) - margin);
    let y = uniform(rng, margin, f64::from(CROP) - margin);
    let angle = uniform(rng, 0.0, std::f64::consts::PI);
    let white = Luma([255u8]);
    let change: Box<dyn Fn(f64) -> f64> = match kind {
        "scratch" => {
            let (half_len, half_w) = (uniform(rng, 12.0, 28.0), uniform(rng, 1.5, 2.5));
            draw_polygon_mut(&mut mask, &placed(x, y, angle, bar(half_len, half_w)), white);
            let bright = rng.below(2) == 0;
            Box::new(move |v| if bright { v + 110.0 } else { v * 0.3 })
        }
        "spot" => {
            let (ra, rb) = (uniform(rng, 6.0, 12.0), uniform(rng, 4.0, 9.0));
            draw_polygon_mut(&mut mask, &placed(x, y, angle, ellipse(ra, rb, 32)), white);
            let shift = if rng.below(2) == 0 { -80.0 } else { 80.0 };
            Box::new(move |v| v + shift)
        }
        _ => {
            let r = 5 + rng.below(6) as i32;
            draw_filled_circle_mut(&mut mask, (x.round() as i32, y.round() as i32), r, white);
            Box::new(|v| 12.0 + 0.1 * v)
        }
    };
    for (p, m) in crop.pixels_mut().zip(mask.pixels()) {
        if m[0] > 0 {
            p[0] = change(f64::from(p[0])).round().clamp(0.0, 255.0) as u8;
        }
    }
    mask
}

/// Builds the set under `out`.
pub fn build(out: &Path) -> Result<String> {
    let mut wheel = open_wheel(&SKIMAGE)?;
    let mut summary = Vec::new();
    for (t, texture) in TEXTURES.iter().enumerate() {
        let name = format!("skimage/data/{texture}.png");
        let photo = image::load_from_memory(&wheel_member(&mut wheel, &name)?)
            .with_context(|| format!("{name}: not a readable PNG"))?
            .into_luma8();
        if photo.dimensions() != (512, 512) {
            bail!("{name}: expected 512×512, found {:?}", photo.dimensions());
        }
        let dir = out.join(texture);
        let crop = |(r, c): (u32, u32)| image::imageops::crop_imm(&photo, c, r, CROP, CROP).to_image();
        let train = corners(&TRAIN_BANDS, 16);
        let test = corners(&TEST_BANDS, 32);
        for (i, &at) in train.iter().enumerate() {
            save(&dir.join("train/good"), &format!("{i:03}.png"), crop(at))?;
        }
        let mut rng = Rng::derived(2026, &[t as u64]);
        let mut mask_pixels = 0usize;
        for (i, &at) in test.iter().enumerate() {
            let file = format!("{i:03}.png");
            save(&dir.join("test/good"), &file, crop(at))?;
            let kind = DEFECTS[i % DEFECTS.len()];
            let mut defective = crop(at);
            let mask = draw_defect(&mut defective, kind, &mut rng);
            let n = mask.pixels().filter(|p| p[0] > 0).count();
            if n == 0 {
                bail!("{texture} test crop {i}: the {kind} covers no pixel");
            }
            mask_pixels += n;
            save(&dir.join("test").join(kind), &file, defective)?;
            save(&dir.join("ground_truth").join(kind), &format!("{i:03}_mask.png"), mask)?;
        }
        summary.push(format!(
            "{texture}: {} train, {} good + {} defective test crops ({mask_pixels} defect pixels)",
            train.len(),
            test.len(),
            test.len()
        ));
    }
    Ok(summary.join("; "))
}

fn save(dir: &Path, file: &str, img: GrayImage) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (w, h) = img.dimensions();
    save_gray(&dir.join(file), w, h, img.into_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_keep_train_and_test_apart() {
        let (train, test) = (corners(&TRAIN_BANDS, 16), corners(&TEST_BANDS, 32));
        assert_eq!((train.len(), test.len()), (50, 26));
        let band = |r: u32| r / CROP;
        assert!(train.iter().all(|&(r, c)| r % CROP == 0 && band(r) % 2 == 0 && c + CROP <= 512));
        assert!(test.iter().all(|&(r, c)| r % CROP == 0 && band(r) % 2 == 1 && c + CROP <= 512));
    }

    #[test]
    fn defects_change_exactly_their_mask() {
        let mut rng = Rng::new(1);
        for kind in DEFECTS {
            let clean = GrayImage::from_fn(CROP, CROP, |x, y| Luma([(100 + (x * 7 + y * 3) % 40) as u8]));
            let mut img = clean.clone();
            let mask = draw_defect(&mut img, kind, &mut rng);
            let inside = mask.pixels().filter(|p| p[0] == 255).count();
            assert!(inside >= 20, "{kind}: {inside} pixels");
            assert!(mask.pixels().all(|p| p[0] == 0 || p[0] == 255));
            for ((a, b), m) in clean.pixels().zip(img.pixels()).zip(mask.pixels()) {
                if m[0] == 0 {
                    assert_eq!(a, b, "{kind}: changed outside the mask");
                }
            }
            let changed = clean.pixels().zip(img.pixels()).filter(|(a, b)| a != b).count();
            assert!(changed * 10 >= inside * 9, "{kind}: {changed} of {inside} mask pixels changed");
        }
    }
}
