//! Command-line options of segmentation models, shared by `dlkit model create` and `dlkit train`, and
//! the drawing of segmentation results for `dlkit apply --overlay`.

use anyhow::{Context, Result, bail};
use clap::Args;
use dlkit::SegmenterOptions;
use dlkit::data::{DLResult, HostImage};
use std::path::Path;

/// SE parameters (SPEC §5.2 SE); unset ones keep the defaults.
#[derive(Debug, Args, Default)]
pub struct SegmentationArgs {
    /// Segmentation: label values left out of loss and measures, comma-separated (e.g. 255; default:
    /// the dataset's ignore_class_ids).
    #[arg(long, value_delimiter = ',')]
    pub ignore_class_ids: Vec<i64>,
    /// Segmentation: the class that --class-ids-background are merged into.
    #[arg(long)]
    pub set_background_id: Option<i64>,
    /// Segmentation: classes merged into --set-background-id, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub class_ids_background: Vec<i64>,
    /// Segmentation: decoder channels (default 64).
    #[arg(long)]
    pub decoder_channels: Option<i64>,
    /// Segmentation: weight of the soft-Dice loss term (default 0 = off).
    #[arg(long)]
    pub dice_loss_weight: Option<f64>,
}

impl SegmentationArgs {
    /// The segmenter options; without --ignore-class-ids, the dataset's `ignore_class_ids` (e.g. 255
    /// for labelme's `__ignore__`).
    pub fn options(&self, dataset: Option<&dlkit::data::DLDataset>) -> Result<SegmenterOptions> {
        let ignore = if self.ignore_class_ids.is_empty() {
            dataset
                .map(|d| d.ignore_class_ids().iter().map(|c| i64::from(c.get())).collect())
                .unwrap_or_default()
        } else {
            self.ignore_class_ids.clone()
        };
        let mut o = SegmenterOptions {
            ignore_class_ids: ignore,
            set_background_id: self.set_background_id,
            class_ids_background: self.class_ids_background.clone(),
            ..Default::default()
        };
        if let Some(c) = self.decoder_channels {
            o.decoder_channels = c;
        }
        if let Some(w) = self.dice_loss_weight {
            if !(w.is_finite() && w >= 0.0) {
                bail!("--dice-loss-weight {w}: expected a number ≥ 0");
            }
            o.params.dice_loss_weight = w;
        }
        if o.set_background_id.is_none() && !o.class_ids_background.is_empty() {
            bail!("--class-ids-background needs --set-background-id");
        }
        Ok(o)
    }
}

/// Writes `{stem}_result.png` (the classes over the image, with a legend; classes named like
/// "background" and the background id are not coloured) and `{stem}_segmentation.png` (the
/// segmentation_image, class id per pixel, 16-bit when ids exceed 255) into `dir`.
pub fn write_overlay(
    dir: &Path,
    stem: &str,
    image: &HostImage,
    r: &DLResult,
    model: &dlkit::Model,
) -> Result<()> {
    let Some(seg) = &r.segmentation_image else { bail!("the result has no segmentation_image") };
    let d = model.description();
    let index: Vec<i64> = seg
        .data
        .iter()
        .map(|&v| d.class_ids.iter().position(|&c| c == i64::from(v)).map_or(-1, |i| i as i64))
        .collect();
    let background: Vec<usize> = (0..d.class_ids.len())
        .filter(|&i| {
            d.class_names[i].to_lowercase().contains("background")
                || d.preprocess.set_background_id.iter().any(|c| i64::from(c.get()) == d.class_ids[i])
        })
        .collect();
    let rgb = image.to_rgb8();
    dlkit::eval::plots::segmentation_png(
        &dir.join(format!("{stem}_result.png")),
        rgb.as_raw(),
        rgb.dimensions(),
        &index,
        &d.class_names,
        &background,
        512,
    )?;
    let path = dir.join(format!("{stem}_segmentation.png"));
    let (w, h) = (seg.width as u32, seg.height as u32);
    let png = if seg.data.iter().all(|&v| v <= 255) {
        image::GrayImage::from_raw(w, h, seg.data.iter().map(|&v| v as u8).collect())
            .map(image::DynamicImage::ImageLuma8)
    } else {
        image::ImageBuffer::<image::Luma<u16>, _>::from_raw(w, h, seg.data.clone())
            .map(image::DynamicImage::ImageLuma16)
    };
    let png =
        png.with_context(|| format!("{}: the segmentation image has the wrong pixel count", path.display()))?;
    dlkit::data::write_png_atomic(&path, &png)?;
    Ok(())
}
