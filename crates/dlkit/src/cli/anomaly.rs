//! Command-line options of anomaly-detection models, shared by `dlkit model create` and `dlkit train`;
//! fitting PatchCore in `dlkit train`; the anomaly overlay of `dlkit apply --overlay`.

use anyhow::{Context, Result};
use clap::Args;
use dlkit::data::{DLDataset, DLResult, HostImage};
use dlkit::nets::PatchCoreConfig;
use dlkit::{Model, NokInTrain};
use serde_json::json;
use std::path::Path;

/// AD parameters (PatchCore); unset ones keep the defaults.
#[derive(Debug, Args, Default)]
pub struct AnomalyArgs {
    /// Anomaly (patchcore): backbone strides whose features are compared, comma-separated (default 8,16).
    #[arg(long, value_delimiter = ',')]
    pub patchcore_strides: Vec<i64>,
    /// Anomaly (patchcore): share of the good images' patches kept in the memory bank (default 0.01).
    #[arg(long)]
    pub coreset_ratio: Option<f64>,
    /// Anomaly (patchcore): patches per coreset chunk, which bounds the memory of fitting (default 65536).
    #[arg(long)]
    pub coreset_chunk_size: Option<usize>,
    /// Anomaly: leave 'nok' images of the train split out instead of refusing them.
    #[arg(long)]
    pub skip_nok_train: bool,
    /// Anomaly (anomaly_detection): stop when an epoch's mean error falls below it (default 0.001).
    #[arg(long)]
    pub error_threshold: Option<f64>,
    /// Anomaly (anomaly_detection): share of each image's positions per step (default 0.1).
    #[arg(long)]
    pub domain_ratio: Option<f64>,
    /// Anomaly (anomaly_detection): noise added to the student's input (default 1e-4).
    #[arg(long)]
    pub regularization_noise: Option<f64>,
    /// Anomaly (gc_anomaly_detection): the subnetworks the anomaly image is made of, local and / or
    /// global, comma-separated (default both).
    #[arg(long, value_delimiter = ',')]
    pub gc_anomaly_networks: Vec<String>,
}

/// The anomaly model types of `--type`.
pub const ANOMALY_TYPES: &[&str] = &["anomaly_detection", "gc_anomaly_detection", "patchcore"];

/// Creates an anomaly model of `model_type` (one of [`ANOMALY_TYPES`]) on the pretrained `backbone`
/// at `size`, with the options of `args`; also says what it is.
pub fn create(
    model_type: &str,
    backbone: &str,
    size: (usize, usize, usize),
    args: &AnomalyArgs,
) -> Result<(Model, String)> {
    let student = dlkit::nets::StudentConfig::default();
    let mut model = match model_type {
        "anomaly_detection" => Model::create_anomaly_detection(backbone, None, size, &student)?,
        "gc_anomaly_detection" => Model::create_gc_anomaly_detection(
            backbone,
            None,
            size,
            &student,
            &dlkit::nets::GlobalConfig::default(),
        )?,
        _ => Model::create_patchcore(backbone, None, size, &args.config())?,
    };
    if !args.gc_anomaly_networks.is_empty() {
        model.set_param("gc_anomaly_networks", &json!(args.gc_anomaly_networks))?;
    }
    let what = match model_type {
        "patchcore" => format!("patchcore anomaly model on {backbone} (fit it with dlkit train)"),
        t => format!("{t} model, teacher {backbone} (train it with dlkit train)"),
    };
    Ok((model, what))
}

impl AnomalyArgs {
    /// The PatchCore configuration.
    pub fn config(&self) -> PatchCoreConfig {
        let mut c = PatchCoreConfig::default();
        if !self.patchcore_strides.is_empty() {
            c.strides.clone_from(&self.patchcore_strides);
        }
        if let Some(r) = self.coreset_ratio {
            c.coreset_ratio = r;
        }
        if let Some(n) = self.coreset_chunk_size {
            c.coreset_chunk_size = n;
        }
        c
    }
}

/// Computes and stores the thresholds of `model` from `ds`'s validation split (when it has ok and nok
/// images); says why not otherwise, unless `json_out`.
pub fn store_thresholds(
    model: &mut Model,
    ds: &DLDataset,
    json_out: bool,
) -> Option<dlkit::eval::anomaly::AnomalyThresholds> {
    match model.compute_anomaly_thresholds(ds) {
        Ok(t) => {
            if !json_out {
                println!(
                    "thresholds from the validation split: segmentation {:.4}, classification {:.4} (max ok {:.4}, min nok {:.4})",
                    t.segmentation_threshold,
                    t.classification_thresholds[2],
                    t.classification_thresholds[0],
                    t.classification_thresholds[1]
                );
            }
            Some(t)
        }
        Err(e) => {
            if !json_out {
                println!("no thresholds stored ({e}); compute them later with `dlkit model thresholds`");
            }
            None
        }
    }
}

/// After `dlkit train` of an `anomaly_detection` model: each model file written in `files` gets the
/// thresholds of its weights (from the validation split), rewritten atomically.
pub fn store_thresholds_in_files(ds: &DLDataset, files: &[std::path::PathBuf], json_out: bool) -> Result<()> {
    for path in files {
        let mut m = Model::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        if !json_out {
            print!("{}: ", path.display());
        }
        if store_thresholds(&mut m, ds, json_out).is_some() {
            m.write(path)?;
        }
    }
    Ok(())
}

/// Fits a PatchCore model on the dataset's good train images and writes `model_final.dlm` (thresholds
/// from the validation split when it has ok and nok images) into `out`.
pub fn fit(
    model: &mut Model,
    ds: &DLDataset,
    args: &AnomalyArgs,
    out: &Path,
    seed: u64,
    json_out: bool,
) -> Result<()> {
    let nok = if args.skip_nok_train { NokInTrain::Skip } else { NokInTrain::Refuse };
    let report = model.fit_patchcore(ds, nok, seed, !json_out)?;
    if !json_out {
        println!(
            "fitted {} good images ({} patches → memory bank of {}) in {:.1} s",
            report.images, report.patches, report.memory_bank_size, report.seconds
        );
    }
    let thresholds = store_thresholds(model, ds, json_out);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let path = out.join("model_final.dlm");
    model.write(&path)?;
    if json_out {
        println!("{}", json!({"fit": report, "thresholds": thresholds, "output": path}));
    } else {
        println!("model → {}", path.display());
    }
    Ok(())
}

/// Writes `{stem}_result.png`: the anomaly image as a jet heat overlay (from its minimum, blue, to its
/// maximum or 1 — the memory bank's coverage radius — whichever is larger, red), with score and class.
pub fn write_overlay(dir: &Path, stem: &str, image: &HostImage, r: &DLResult) -> Result<()> {
    let map = r.anomaly_image.as_ref().context("the result has no anomaly_image")?;
    let top = map.data.iter().copied().fold(0f32, f32::max).max(1.0);
    let low = map.data.iter().copied().fold(f32::INFINITY, f32::min).min(top * 0.99);
    let heat = dlkit::Heatmap {
        width: map.width,
        height: map.height,
        values: map.data.iter().map(|&v| ((v - low) / (top - low)).clamp(0.0, 1.0)).collect(),
        class_id: 1,
    };
    let overlay = dlkit::heatmap_overlay(image, &heat);
    let class = match r.anomaly_class {
        Some(dlkit::data::AnomalyLabel::Nok) => "nok (defect)",
        Some(dlkit::data::AnomalyLabel::Ok) => "ok",
        None => "not thresholded",
    };
    let lines = vec![format!("anomaly score {:.4}  {class}", r.anomaly_score.unwrap_or(f64::NAN))];
    dlkit::eval::plots::labelled_image_png(
        &dir.join(format!("{stem}_result.png")),
        overlay.as_raw(),
        overlay.dimensions(),
        &lines,
        256,
    )?;
    Ok(())
}
