//! Cutting a detection dataset's large images into tiles (`tile_dl_dataset`): aerial and microscopy
//! images are far larger than a network input, and shrinking them would shrink the objects with them.
//!
//! Tiles of `width` × `height` start every `width − overlap` (`height − overlap`) pixels; the last tile
//! of a row or column is moved back to end at the image border, so every pixel is covered and no tile
//! leaves the image (an image smaller than a tile is one tile of its own size). A rectangle1 box is kept,
//! clipped to the tile, when at least `min_visible` of its area lies in it; a rectangle2 box when its
//! centre lies in the tile (as preprocessing keeps them). Crowd flags follow their boxes. Each tile
//! sample records where it came from (`tile_source_image_id`, `tile_row`, `tile_col` in its extra
//! keys) and keeps its source's split.

use crate::{DLDataset, Error, HostImage, Result, SampleEntry};
use dl_core::{ImageId, Rect1, Rect2};
use std::path::Path;

/// Parameters of [`tile_dl_dataset`].
#[derive(Debug, Clone, PartialEq)]
pub struct TileParams {
    /// Tile width.
    pub width: usize,
    /// Tile height.
    pub height: usize,
    /// Pixels shared by neighbouring tiles (less than the tile size).
    pub overlap: usize,
    /// rectangle1: the smallest share of a box's area inside a tile for it to be kept (default 0.5).
    pub min_visible: f64,
}

impl Default for TileParams {
    fn default() -> Self {
        Self { width: 400, height: 400, overlap: 50, min_visible: 0.5 }
    }
}

/// Start offsets of tiles of `size` with `step` over `len` pixels: 0, step, …, the last at `len − size`.
fn starts(len: usize, size: usize, step: usize) -> Vec<usize> {
    if len <= size {
        return vec![0];
    }
    let mut v: Vec<usize> = (0..).map(|i| i * step).take_while(|&s| s + size < len).collect();
    v.push(len - size);
    v
}

/// Writes tiles of the samples at `indices` of `dataset` as PNG files into `out_dir` and returns the
/// dataset of the tiles (image_dir = `out_dir`, classes as the source's, image ids 1 … n in order).
///
/// # Errors
/// [`Error::Param`] for a tile size of 0, an overlap not smaller than the tile, `min_visible` outside
/// (0, 1], samples that are not detection samples; errors naming the image that cannot be read or the
/// tile that cannot be written.
pub fn tile_dl_dataset(
    dataset: &DLDataset,
    indices: &[usize],
    params: &TileParams,
    out_dir: &Path,
) -> Result<DLDataset> {
    let bad = |message: String| Error::Param { key: "tile", message };
    if params.width == 0 || params.height == 0 {
        return Err(bad("the tile size must be positive".into()));
    }
    if params.overlap >= params.width.min(params.height) {
        return Err(bad(format!(
            "overlap {} is not smaller than the tile {}×{}",
            params.overlap, params.width, params.height
        )));
    }
    if !(params.min_visible > 0.0 && params.min_visible <= 1.0) {
        return Err(bad(format!("min_visible {} is not in (0, 1]", params.min_visible)));
    }
    std::fs::create_dir_all(out_dir).map_err(|source| Error::Io {
        action: "creating",
        path: out_dir.to_owned(),
        source,
    })?;
    let mut out = DLDataset {
        image_dir: out_dir.display().to_string(),
        class_names: dataset.class_names.clone(),
        class_ids: dataset.class_ids.clone(),
        ..Default::default()
    };
    for &i in indices {
        let entry = dataset.samples.get(i).ok_or_else(|| bad(format!("no sample at index {i}")))?;
        if entry.bbox_label_id.is_none() {
            return Err(Error::Sample {
                image_id: entry.image_id,
                message: "not a detection sample (no bbox_label_id)".into(),
            });
        }
        let path = Path::new(&dataset.image_dir).join(&entry.image_file_name);
        let image = HostImage::read(&path)?;
        let rotated = entry.instance_type() == Some(crate::InstanceType::Rectangle2);
        let (r1, r2) =
            if rotated { (Vec::new(), entry.rect2_boxes()?) } else { (entry.rect1_boxes()?, Vec::new()) };
        let crowd = entry.bbox_iscrowd.clone().unwrap_or_default();
        let stem = Path::new(&entry.image_file_name)
            .file_stem()
            .map_or_else(|| format!("image{}", entry.image_id), |s| s.to_string_lossy().into_owned());
        for &row in &starts(image.height, params.height, params.height - params.overlap) {
            for &col in &starts(image.width, params.width, params.width - params.overlap) {
                let (tw, th) = (params.width.min(image.width), params.height.min(image.height));
                let tile = crop_image(&image, row, col, tw, th);
                let name = format!("{stem}_r{row}_c{col}.png");
                write_png(&tile, &out_dir.join(&name))?;
                let (r0, c0) = (row as f64, col as f64);
                let mut s = SampleEntry {
                    image_id: ImageId(out.samples.len() as u64 + 1),
                    image_file_name: name,
                    split: entry.split,
                    ..Default::default()
                };
                let mut flags = Vec::new();
                if !rotated {
                    // Tile bounds in pixel-centre coordinates: rows −0.5 … th − 0.5 after the shift.
                    let (lo_r, lo_c, hi_r, hi_c) =
                        (r0 - 0.5, c0 - 0.5, r0 + th as f64 - 0.5, c0 + tw as f64 - 0.5);
                    let mut kept = Vec::new();
                    for (k, (id, b)) in r1.iter().enumerate() {
                        let (a, bb, c, d) =
                            (b.row1().max(lo_r), b.col1().max(lo_c), b.row2().min(hi_r), b.col2().min(hi_c));
                        if c <= a || d <= bb || (c - a) * (d - bb) < params.min_visible * b.area() {
                            continue;
                        }
                        kept.push((
                            *id,
                            Rect1::new(a - r0, bb - c0, c - r0, d - c0).map_err(|source| {
                                Error::InvalidBox { image_id: entry.image_id, index: k, source }
                            })?,
                        ));
                        flags.push(crowd.get(k).copied().unwrap_or(false));
                    }
                    s.set_rect1_boxes(&kept);
                } else {
                    let mut kept = Vec::new();
                    for (k, (id, b)) in r2.iter().enumerate() {
                        let (r, c) = (b.row() - r0, b.col() - c0);
                        if r < -0.5 || c < -0.5 || r >= th as f64 - 0.5 || c >= tw as f64 - 0.5 {
                            continue;
                        }
                        kept.push((
                            *id,
                            Rect2::new(r, c, b.phi(), b.length1(), b.length2()).map_err(|source| {
                                Error::InvalidBox { image_id: entry.image_id, index: k, source }
                            })?,
                        ));
                        flags.push(crowd.get(k).copied().unwrap_or(false));
                    }
                    s.set_rect2_boxes(&kept);
                }
                if entry.bbox_iscrowd.is_some() {
                    s.bbox_iscrowd = Some(flags);
                }
                s.extra.insert("tile_source_image_id".into(), serde_json::json!(entry.image_id.0));
                s.extra.insert("tile_row".into(), serde_json::json!(row));
                s.extra.insert("tile_col".into(), serde_json::json!(col));
                out.samples.push(s);
            }
        }
    }
    Ok(out)
}

fn crop_image(img: &HostImage, row: usize, col: usize, w: usize, h: usize) -> HostImage {
    let mut data = Vec::with_capacity(w * h * img.channels);
    for c in 0..img.channels {
        let plane = img.plane(c);
        for r in row..row + h {
            data.extend_from_slice(&plane[r * img.width + col..r * img.width + col + w]);
        }
    }
    HostImage { width: w, height: h, channels: img.channels, bit_depth: img.bit_depth, data }
}

/// Writes an 8- or 16-bit gray or RGB image as PNG, atomically.
pub(crate) fn write_png(img: &HostImage, path: &Path) -> Result<()> {
    let (w, h) = (img.width as u32, img.height as u32);
    let n = img.width * img.height;
    let interleaved = |max: f32| -> Vec<f32> {
        (0..n).flat_map(|p| (0..img.channels).map(move |c| img.data[c * n + p].clamp(0.0, max))).collect()
    };
    let dynamic = match (img.channels, img.bit_depth) {
        (1, 8) => image::DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(w, h, interleaved(255.0).iter().map(|&v| v.round() as u8).collect())
                .ok_or_else(|| Error::Param { key: "image", message: "size".into() })?,
        ),
        (3, 8) => image::DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(w, h, interleaved(255.0).iter().map(|&v| v.round() as u8).collect())
                .ok_or_else(|| Error::Param { key: "image", message: "size".into() })?,
        ),
        (1, 16) => image::DynamicImage::ImageLuma16(
            image::ImageBuffer::from_raw(
                w,
                h,
                interleaved(65535.0).iter().map(|&v| v.round() as u16).collect(),
            )
            .ok_or_else(|| Error::Param { key: "image", message: "size".into() })?,
        ),
        (c, b) => {
            return Err(Error::Param {
                key: "image",
                message: format!("{}: cannot write {c} channels of {b} bits as PNG", path.display()),
            });
        }
    };
    crate::write_png_atomic(path, &dynamic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dl_core::ClassId;

    #[test]
    fn tile_starts_cover_the_image() {
        assert_eq!(starts(1000, 400, 350), vec![0, 350, 600]);
        assert_eq!(starts(400, 400, 350), vec![0]);
        assert_eq!(starts(300, 400, 350), vec![0]);
        assert_eq!(starts(750, 400, 350), vec![0, 350]);
    }

    #[test]
    fn boxes_are_clipped_kept_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let img = HostImage {
            width: 20,
            height: 10,
            channels: 1,
            bit_depth: 8,
            data: (0..200).map(|v| v as f32).collect(),
        };
        write_png(&img, &dir.path().join("a.png")).unwrap();
        let mut e =
            SampleEntry { image_id: ImageId(7), image_file_name: "a.png".into(), ..Default::default() };
        let c = ClassId::new(3).unwrap();
        // Box 0 lies in the left tile only; box 1 straddles both tiles (60 % in the right one).
        e.set_rect1_boxes(&[
            (c, Rect1::new(1.0, 1.0, 5.0, 5.0).unwrap()),
            (c, Rect1::new(2.0, 8.0, 6.0, 13.0).unwrap()),
        ]);
        let ds = DLDataset {
            image_dir: dir.path().display().to_string(),
            class_ids: vec![c],
            class_names: vec!["x".into()],
            samples: vec![e],
            ..Default::default()
        };
        let out = dir.path().join("tiles");
        let params = TileParams { width: 12, height: 10, overlap: 4, min_visible: 0.5 };
        let t = tile_dl_dataset(&ds, &[0], &params, &out).unwrap();
        assert_eq!(t.samples.len(), 2);
        let left = t.samples[0].rect1_boxes().unwrap();
        let right = t.samples[1].rect1_boxes().unwrap();
        assert_eq!(left.len(), 2, "{left:?}");
        // In the right tile (cols 8 … 19): box 0 is outside; box 1 is whole, shifted by 8.
        assert_eq!(right, vec![(c, Rect1::new(2.0, 0.0, 6.0, 5.0).unwrap())]);
        assert_eq!(t.samples[1].extra["tile_col"], 8);
        let tile = HostImage::read(&out.join(&t.samples[1].image_file_name)).unwrap();
        assert_eq!((tile.width, tile.height), (12, 10));
        assert_eq!(tile.data[0], 8.0);
        assert!(tile_dl_dataset(&ds, &[0], &TileParams { overlap: 12, ..params }, &out).is_err());
    }
}
