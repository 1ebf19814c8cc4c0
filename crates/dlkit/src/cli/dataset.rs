//! `dlkit dataset …`: read, split, inspect, validate and export datasets.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use dlkit::data::read::{self, LabelSource, VocCoordinates};
use dlkit::data::{DLDataset, InstanceType, ModelType, SplitParams, split_dl_dataset};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Read a dataset from folders or annotation files into a DLDataset JSON file.
    Read(Box<ReadArgs>),
    /// Split a dataset into train / validation / test (stratified, seeded); writes the file in place
    /// unless -o is given.
    Split {
        /// The dataset JSON file.
        dataset: PathBuf,
        /// Percentage of images for training.
        #[arg(long)]
        train: f64,
        /// Percentage of images for validation (test gets the rest).
        #[arg(long)]
        validation: f64,
        /// Seed of the split.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Split again a dataset that already has splits.
        #[arg(long)]
        overwrite: bool,
        /// Model type (default: inferred from the first sample).
        #[arg(long)]
        model_type: Option<String>,
        /// Output file (default: the input file).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Summarise a dataset: samples per split and class, box statistics, problems found.
    Info {
        /// The dataset JSON file.
        dataset: PathBuf,
    },
    /// Check a dataset; exit code 1 and the list of problems when there are any.
    Validate {
        /// The dataset JSON file.
        dataset: PathBuf,
    },
    /// Preprocess every sample into sample files (resumable) and write OUT/dataset.json.
    Preprocess(Box<PreprocessArgs>),
    /// Propose anchor parameters for a detector (determine_dl_model_detection_param): levels, subscales,
    /// aspect ratios (and angles for rotated boxes) that give every training box an anchor with
    /// IoU ≥ 0.5 at the network size; prints the share of boxes reached by the proposal and by the
    /// defaults.
    DetectionParams {
        /// The dataset JSON file (its train split is analysed; all samples when it has none).
        dataset: PathBuf,
        /// Network input width.
        #[arg(long)]
        width: usize,
        /// Network input height.
        #[arg(long)]
        height: usize,
        /// The backbone (its finest level bounds min_level).
        #[arg(long, default_value = "compact")]
        backbone: String,
    },
    /// Cut a detection dataset's images into tiles (boxes clipped to each tile, rotated ones kept by
    /// their centre) and write the tiles' dataset.
    Tile {
        /// The dataset JSON file.
        dataset: PathBuf,
        /// Tile width.
        #[arg(long, default_value_t = 400)]
        width: usize,
        /// Tile height.
        #[arg(long, default_value_t = 400)]
        height: usize,
        /// Pixels shared by neighbouring tiles.
        #[arg(long, default_value_t = 50)]
        overlap: usize,
        /// Keep an axis-aligned box when at least this share of its area lies in the tile.
        #[arg(long, default_value_t = 0.5)]
        min_visible: f64,
        /// Folder of the tile images.
        #[arg(long)]
        out: PathBuf,
        /// The tiles' dataset file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Segmentation weights (gen_dl_segmentation_weights): per-class weights from the train split's pixel
    /// frequencies (rarer classes weigh more, at most --max-weight); writes each train sample's
    /// weight_image into its sample file and class_weights into the dataset file.
    Weights {
        /// A preprocessed segmentation dataset (dataset.json of `dlkit dataset preprocess`).
        dataset: PathBuf,
        /// Largest class weight.
        #[arg(long, default_value_t = 1000.0)]
        max_weight: f64,
    },
    /// Write a detection dataset as COCO JSON.
    ExportCoco {
        /// The dataset JSON file.
        dataset: PathBuf,
        /// The COCO file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Folders,
    Coco,
    CocoRotated,
    Dota,
    Yolo,
    YoloObb,
    Voc,
    Labelme,
    Segmentation,
    Anomaly,
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The source format.
    #[arg(long, value_enum)]
    format: Format,
    /// Image folder (folders, coco, yolo, dota, voc, segmentation, anomaly).
    #[arg(long)]
    images: Option<PathBuf>,
    /// Annotation file (coco) or folder (voc, labelme).
    #[arg(long)]
    annotations: Option<PathBuf>,
    /// Label folder (yolo, yolo-obb, dota: txt files; segmentation: label images).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Anomaly ground-truth folder (anomaly).
    #[arg(long)]
    anomaly_dir: Option<PathBuf>,
    /// Where the class comes from (folders).
    #[arg(long, default_value = "last_folder")]
    label_source: String,
    /// Class names, comma-separated (yolo, segmentation).
    #[arg(long, value_delimiter = ',')]
    class_names: Vec<String>,
    /// Class ids, comma-separated, parallel to --class-names (segmentation).
    #[arg(long, value_delimiter = ',')]
    class_ids: Vec<i64>,
    /// Keep COCO's raw annotations for an exact export (coco).
    #[arg(long)]
    keep_raw: bool,
    /// Skip zero-area COCO boxes instead of failing (coco).
    #[arg(long)]
    skip_invalid_boxes: bool,
    /// Box type for labelme polygons: rectangle1 or rectangle2.
    #[arg(long, default_value = "rectangle1")]
    instance_type: String,
    /// labelme: draw label images into this folder and make a segmentation dataset.
    #[arg(long)]
    label_images: Option<PathBuf>,
    /// VOC coordinates are the devkit's 1-based pixel indices (default: 0-based pixel edges).
    #[arg(long)]
    voc_one_based: bool,
    /// Segmentation: skip images without label image.
    #[arg(long)]
    ignore_unmatched: bool,
    /// Leave out samples whose image file does not exist (default: fail, naming them).
    #[arg(long)]
    skip_missing_images: bool,
    /// Keep the split of a tree whose top folders are train/, validation/ (val/) and test/ (Fashion-MNIST,
    /// MVTec AD).
    #[arg(long)]
    split_from_folders: bool,
    /// The dataset JSON file to write.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Debug, Args)]
pub struct PreprocessArgs {
    /// The dataset JSON file.
    dataset: PathBuf,
    /// Output folder (samples/ and dataset.json).
    #[arg(long)]
    out: PathBuf,
    /// Network input width.
    #[arg(long)]
    width: usize,
    /// Network input height.
    #[arg(long)]
    height: usize,
    /// Network input channels (1 or 3).
    #[arg(long, default_value_t = 3)]
    channels: usize,
    /// none | all_channels | first_channel | constant_values.
    #[arg(long, default_value = "none")]
    normalization: String,
    /// full_domain | crop_domain | keep_domain.
    #[arg(long, default_value = "full_domain")]
    domain: String,
    /// Lower end of the value range.
    #[arg(long, default_value_t = -127.0, allow_hyphen_values = true)]
    range_min: f64,
    /// Upper end of the value range.
    #[arg(long, default_value_t = 128.0, allow_hyphen_values = true)]
    range_max: f64,
    /// Model type (default: inferred from the first sample).
    #[arg(long)]
    model_type: Option<String>,
    /// OD box type: rectangle1 or rectangle2.
    #[arg(long)]
    instance_type: Option<String>,
    /// OD rectangle2: boxes have no front.
    #[arg(long)]
    ignore_direction: bool,
    /// SE: label values left out of loss and measures, comma-separated (e.g. 255).
    #[arg(long, value_delimiter = ',')]
    ignore_class_ids: Vec<i64>,
    /// SE: the class that --class-ids-background are merged into.
    #[arg(long)]
    set_background_id: Option<i64>,
    /// SE: classes merged into --set-background-id, comma-separated.
    #[arg(long, value_delimiter = ',')]
    class_ids_background: Vec<i64>,
    /// Replace an existing output folder.
    #[arg(long)]
    overwrite: bool,
    /// How sample files store pixels: compact (lossless: one plane for equal channels, bytes where the
    /// values are 256 levels), f32, or f16 (half the size of f32, lossy: relative error ≤ 2⁻¹¹).
    #[arg(long, default_value = "compact", value_parser = ["compact", "f32", "f16"])]
    storage: String,
}

fn preprocess(args: &PreprocessArgs, json_out: bool) -> Result<()> {
    use dlkit::data::preprocess::{
        DLPreprocessParam, PreprocessOptions, SampleStorage, available_disk_space,
        estimate_preprocessed_size, preprocess_dl_dataset,
    };
    let ds = load(&args.dataset)?;
    let model_type: ModelType = match &args.model_type {
        Some(t) => t.parse().map_err(anyhow::Error::msg)?,
        None => ds
            .samples
            .first()
            .and_then(ModelType::infer)
            .context("cannot infer the model type: pass --model-type")?,
    };
    let mut value =
        serde_json::to_value(DLPreprocessParam::new(model_type, args.width, args.height, args.channels)?)?;
    value["normalization_type"] = json!(args.normalization);
    value["domain_handling"] = json!(args.domain);
    value["image_range_min"] = json!(args.range_min);
    value["image_range_max"] = json!(args.range_max);
    if let Some(t) = &args.instance_type {
        value["instance_type"] = json!(t);
    }
    if args.ignore_direction {
        value["ignore_direction"] = json!(true);
    }
    if !args.ignore_class_ids.is_empty() {
        value["ignore_class_ids"] = json!(args.ignore_class_ids);
    }
    if let Some(b) = args.set_background_id {
        value["set_background_id"] = json!([b]);
    }
    if !args.class_ids_background.is_empty() {
        value["class_ids_background"] = json!(args.class_ids_background);
    }
    let param = DLPreprocessParam::from_json(value)?;
    let storage = match args.storage.as_str() {
        "f32" => SampleStorage::Float32,
        "f16" => SampleStorage::Float16,
        _ => SampleStorage::Compact,
    };
    // The size first; refused when the disk lacks the space for what is not written yet (a resumed or
    // finished folder already holds part or all of it).
    let estimate = estimate_preprocessed_size(&ds, &param, storage)?;
    let free = available_disk_space(&args.out);
    let needed = estimate.bytes.saturating_sub(dir_bytes(&args.out.join("samples")));
    if !json_out {
        println!(
            "about {} for {} samples ({} storage; f32 would take {}){}",
            human_bytes(estimate.bytes),
            ds.samples.len(),
            args.storage,
            human_bytes(estimate.float32_bytes),
            free.map_or(String::new(), |f| format!(", {} free", human_bytes(f)))
        );
    }
    if let Some(free) = free
        && needed > free
    {
        bail!(
            "{} needs about {} but its disk has {} free: free space, preprocess to a smaller size, or use \
             --storage f16 (lossy, about half of f32)",
            args.out.display(),
            human_bytes(estimate.bytes),
            human_bytes(free)
        );
    }
    let options = PreprocessOptions { overwrite: args.overwrite, show_progress: !json_out, storage };
    let start = std::time::Instant::now();
    let out = preprocess_dl_dataset(&ds, &args.out, &param, options)?;
    let secs = start.elapsed().as_secs_f64();
    let file = args.out.join("dataset.json");
    if json_out {
        println!(
            "{}",
            json!({"output": file, "samples": out.samples.len(), "seconds": secs, "storage": args.storage,
                "estimated_bytes": estimate.bytes, "bytes": dir_bytes(&args.out.join("samples"))})
        );
    } else {
        println!(
            "{} samples preprocessed in {secs:.1} s ({:.0}/s), {} on disk → {}",
            out.samples.len(),
            out.samples.len() as f64 / secs,
            human_bytes(dir_bytes(&args.out.join("samples"))),
            file.display()
        );
    }
    Ok(())
}

/// Counts per split as "test 3, train 20".
fn per_split_text<T: std::fmt::Display>(splits: &BTreeMap<String, T>) -> String {
    splits.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

/// Bytes as B, KB, MB, GB (powers of 1000).
fn human_bytes(n: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", units[u]) }
}

/// The bytes of the files directly in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

fn need<'a>(value: &'a Option<PathBuf>, flag: &str, format: Format) -> Result<&'a Path> {
    value.as_deref().with_context(|| format!("--format {format:?} needs {flag}").to_lowercase())
}

pub fn read_dataset(args: &ReadArgs) -> Result<DLDataset> {
    let f = args.format;
    let instance_type = match args.instance_type.as_str() {
        "rectangle1" => InstanceType::Rectangle1,
        "rectangle2" => InstanceType::Rectangle2,
        other => bail!("--instance-type `{other}`: expected rectangle1 or rectangle2"),
    };
    Ok(match f {
        Format::Folders => {
            let source: LabelSource = args.label_source.parse()?;
            read::read_dl_dataset_classification(need(&args.images, "--images", f)?, source)?
        }
        Format::Coco | Format::CocoRotated => {
            let params = read::CocoReadParams {
                keep_raw_annotations: args.keep_raw,
                skip_invalid_boxes: args.skip_invalid_boxes,
            };
            let ds = read::read_dl_dataset_from_coco(
                need(&args.annotations, "--annotations", f)?,
                need(&args.images, "--images", f)?,
                &params,
            )?;
            let rotated = ds.samples.iter().any(|s| s.bbox_phi.is_some());
            if f == Format::CocoRotated && !rotated && ds.samples.iter().any(|s| s.num_boxes() > 0) {
                bail!(
                    "--format coco-rotated: the boxes have 4 values, not [cx, cy, w, h, a]; use --format coco"
                );
            }
            ds
        }
        Format::Voc => {
            let ann = need(&args.annotations, "--annotations", f)?;
            let coords =
                if args.voc_one_based { VocCoordinates::OneBased } else { VocCoordinates::PixelEdge };
            read::read_dl_dataset_voc(ann, args.images.as_deref().unwrap_or(ann), coords)?
        }
        Format::Yolo | Format::YoloObb => read::read_dl_dataset_yolo(
            need(&args.images, "--images", f)?,
            need(&args.labels, "--labels", f)?,
            &read::YoloReadParams { class_names: args.class_names.clone(), obb: f == Format::YoloObb },
        )?,
        Format::Dota => read::read_dl_dataset_dota(
            need(&args.images, "--images", f)?,
            need(&args.labels, "--labels", f)?,
        )?,
        Format::Labelme => read::read_dl_dataset_labelme(
            need(&args.annotations, "--annotations", f)?,
            &read::LabelmeReadParams { instance_type, label_image_dir: args.label_images.clone() },
        )?,
        Format::Segmentation => read::read_dl_dataset_segmentation(
            need(&args.images, "--images", f)?,
            need(&args.labels, "--labels", f)?,
            &read::SegmentationReadParams {
                class_names: args.class_names.clone(),
                class_ids: args.class_ids.clone(),
                ignore_unmatched_images: args.ignore_unmatched,
            },
        )?,
        Format::Anomaly => {
            read::read_dl_dataset_anomaly(need(&args.images, "--images", f)?, args.anomaly_dir.as_deref())?
        }
    })
}

fn load(path: &Path) -> Result<DLDataset> {
    DLDataset::load(path).with_context(|| format!("cannot read the dataset {}", path.display()))
}

/// Runs a dataset subcommand; returns the process exit code.
pub fn run(command: &DatasetCommand, json_out: bool) -> Result<u8> {
    match command {
        DatasetCommand::Read(args) => {
            let mut ds = read_dataset(args)?;
            let root = Path::new(&ds.image_dir).to_owned();
            let missing: Vec<String> = ds
                .samples
                .iter()
                .filter(|s| !root.join(&s.image_file_name).is_file())
                .map(|s| root.join(&s.image_file_name).display().to_string())
                .collect();
            if !missing.is_empty() {
                if !args.skip_missing_images {
                    bail!(
                        "{} of {} images do not exist, e.g. {}: check --images (or pass --skip-missing-images)",
                        missing.len(),
                        ds.samples.len(),
                        missing.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                    );
                }
                ds.samples.retain(|s| root.join(&s.image_file_name).is_file());
                eprintln!(
                    "left out {} samples whose image does not exist (e.g. {})",
                    missing.len(),
                    missing[0]
                );
            }
            if ds.samples.is_empty() {
                bail!("no samples found: check the paths given");
            }
            if args.split_from_folders {
                dlkit::data::split_from_folders(&mut ds)?;
            }
            ds.save(&args.output)?;
            let boxes: usize = ds.samples.iter().map(|s| s.num_boxes()).sum();
            if json_out {
                println!(
                    "{}",
                    json!({"output": args.output, "samples": ds.samples.len(), "classes": ds.class_names.len(), "boxes": boxes})
                );
            } else {
                println!(
                    "{} samples, {} classes, {boxes} boxes → {}",
                    ds.samples.len(),
                    ds.class_names.len(),
                    args.output.display()
                );
            }
        }
        DatasetCommand::Split { dataset, train, validation, seed, overwrite, model_type, output } => {
            let mut ds = load(dataset)?;
            let model_type: Option<ModelType> =
                model_type.as_deref().map(str::parse).transpose().map_err(anyhow::Error::msg)?;
            split_dl_dataset(
                &mut ds,
                *train,
                *validation,
                &SplitParams { overwrite_split: *overwrite, model_type, seed: *seed },
            )?;
            let out = output.as_deref().unwrap_or(dataset);
            ds.save(out)?;
            let counts = split_counts(&ds);
            if json_out {
                println!("{}", json!({"output": out, "splits": counts}));
            } else {
                let text: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
                println!("{} → {}", text.join(", "), out.display());
            }
        }
        DatasetCommand::Info { dataset } => info(&load(dataset)?, json_out)?,
        DatasetCommand::Weights { dataset, max_weight } => {
            let mut ds = load(dataset)?;
            let weights = dlkit::data::preprocess::gen_dl_segmentation_weights(&mut ds, *max_weight)?;
            ds.save(dataset)?;
            if json_out {
                println!("{}", json!({"output": dataset, "class_weights": weights}));
            } else {
                for ((name, id), w) in ds.class_names.iter().zip(&ds.class_ids).zip(&weights) {
                    println!("  class {id:>5} {name:<24} weight {w:.4}");
                }
                println!("weight images and class_weights → {}", dataset.display());
            }
        }
        DatasetCommand::Preprocess(args) => preprocess(args, json_out)?,
        DatasetCommand::Validate { dataset } => {
            let problems = load(dataset)?.validate();
            if json_out {
                println!("{}", serde_json::to_string_pretty(&json!({"problems": problems}))?);
            } else if problems.is_empty() {
                println!("no problems found");
            } else {
                for p in &problems {
                    println!("{p}");
                }
                println!("{} problem(s)", problems.len());
            }
            return Ok(u8::from(!problems.is_empty()));
        }
        DatasetCommand::DetectionParams { dataset, width, height, backbone } => {
            let ds = load(dataset)?;
            let r = dlkit::determine_dl_model_detection_param(&ds, (*width, *height), backbone)?;
            if json_out {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                let p = &r.proposal;
                println!(
                    "{} {} boxes at {width}×{height}:",
                    r.num_boxes,
                    if r.rotated { "rectangle2" } else { "rectangle1" }
                );
                println!("  min_level {}  max_level {}", p.min_level, p.max_level);
                println!("  anchor_num_subscales {}", p.anchor_num_subscales);
                println!("  anchor_aspect_ratios {:?}", p.anchor_aspect_ratios);
                if r.rotated {
                    println!("  anchor_angles {:?}", p.anchor_angles);
                }
                println!(
                    "coverage (boxes with an anchor of IoU ≥ 0.5): proposal {:.1}%, defaults {:.1}%",
                    100.0 * p.coverage,
                    100.0 * r.default_coverage
                );
            }
        }
        DatasetCommand::Tile { dataset, width, height, overlap, min_visible, out, output } => {
            let ds = load(dataset)?;
            let params = dlkit::data::TileParams {
                width: *width,
                height: *height,
                overlap: *overlap,
                min_visible: *min_visible,
            };
            let all: Vec<usize> = (0..ds.samples.len()).collect();
            let tiles = dlkit::data::tile_dl_dataset(&ds, &all, &params, out)?;
            tiles.save(output)?;
            if !json_out {
                let n: usize = tiles.samples.iter().map(dlkit::data::SampleEntry::num_boxes).sum();
                println!("{} tiles with {n} boxes → {}", tiles.samples.len(), output.display());
            }
        }
        DatasetCommand::ExportCoco { dataset, output } => {
            let ds = load(dataset)?;
            if !ds.samples.iter().any(|s| s.bbox_label_id.is_some()) {
                bail!(
                    "{} has no boxes (a {} dataset): COCO export is for detection datasets",
                    dataset.display(),
                    ds.samples.iter().find_map(ModelType::infer).map_or("label-less", ModelType::as_str)
                );
            }
            let coco = dlkit::data::read::write_coco(&ds)?;
            let bytes = serde_json::to_vec(&coco)?;
            dlkit::io::write_bytes_atomic(output, &bytes)?;
            if !json_out {
                println!("wrote {}", output.display());
            }
        }
    }
    Ok(0)
}

fn split_counts(ds: &DLDataset) -> BTreeMap<String, usize> {
    let mut per_split: BTreeMap<String, usize> = BTreeMap::new();
    for s in &ds.samples {
        *per_split.entry(s.split.map_or("unsplit".into(), |x| x.to_string())).or_default() += 1;
    }
    per_split
}

/// Min, mean and max of a list.
fn stats(v: &[f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((min, v.iter().sum::<f64>() / v.len() as f64, max))
}

fn info(ds: &DLDataset, json_out: bool) -> Result<()> {
    let per_split = split_counts(ds);
    let mut per_class: BTreeMap<u16, BTreeMap<String, usize>> = BTreeMap::new();
    let (mut widths, mut heights, mut aspects) = (Vec::new(), Vec::new(), Vec::new());
    for s in &ds.samples {
        let split = s.split.map_or("unsplit".into(), |x| x.to_string());
        for id in s.image_label_id.iter().flatten().chain(s.bbox_label_id.iter().flatten()) {
            *per_class.entry(id.get()).or_default().entry(split.clone()).or_default() += 1;
        }
        let sizes: Vec<(f64, f64)> = if s.bbox_phi.is_some() {
            s.rect2_boxes()
                .map(|b| b.iter().map(|(_, r)| (2.0 * r.length1(), 2.0 * r.length2())).collect())
                .unwrap_or_default()
        } else {
            s.rect1_boxes()
                .map(|b| b.iter().map(|(_, r)| (r.width(), r.height())).collect())
                .unwrap_or_default()
        };
        for (w, h) in sizes {
            widths.push(w);
            heights.push(h);
            aspects.push(w / h);
        }
    }
    let problems = ds.validate();
    // Anomaly detection: ok / nok images per split.
    let mut anomaly: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    for s in &ds.samples {
        if let Some(label) = s.anomaly_label {
            let key = if label == dlkit::data::AnomalyLabel::Nok { "nok" } else { "ok" };
            let split = s.split.map_or("unsplit".into(), |x| x.to_string());
            *anomaly.entry(key).or_default().entry(split).or_default() += 1;
        }
    }
    // Segmentation: pixels per label value and split.
    let segmentation = ds.samples.iter().any(|s| s.segmentation_file_name.is_some())
        || ds.preprocess_param.as_ref().is_some_and(|p| p.model_type == ModelType::Segmentation);
    // A label image that does not read is one of the problems listed below, not a failure of `info`.
    let (pixels, pixels_error) = match segmentation.then(|| dlkit::data::stats::segmentation_class_pixels(ds))
    {
        Some(Ok(p)) => (p, None),
        Some(Err(e)) => (Vec::new(), Some(e.to_string())),
        None => (Vec::new(), None),
    };
    let name_of = |id: u16| {
        ds.class_ids
            .iter()
            .position(|c| c.get() == id)
            .and_then(|i| ds.class_names.get(i))
            .cloned()
            .unwrap_or_default()
    };
    if json_out {
        let classes: Vec<_> = per_class
            .iter()
            .map(|(&id, splits)| json!({"class_id": id, "class_name": name_of(id), "count": splits.values().sum::<usize>(), "splits": splits}))
            .collect();
        let boxes = json!({"count": widths.len(), "width": stats(&widths), "height": stats(&heights), "aspect_ratio": stats(&aspects)});
        let pixels: Vec<_> = pixels
            .iter()
            .map(|c| {
                json!({
                    "value": c.value,
                    "class_name": if c.is_class { json!(name_of(c.value)) } else { json!(null) },
                    "is_class": c.is_class,
                    "pixels": c.pixels.values().sum::<u64>(),
                    "splits": c.pixels,
                    "images": c.images,
                })
            })
            .collect();
        let out = json!({"num_samples": ds.samples.len(), "splits": per_split, "classes": classes, "boxes": boxes,
            "anomaly_labels": anomaly, "segmentation_pixels": pixels, "segmentation_pixels_error": pixels_error,
            "problems": problems});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("samples: {}", ds.samples.len());
    for (split, n) in &per_split {
        println!("  {split}: {n}");
    }
    if !per_class.is_empty() {
        println!("labels per class (images for CL, boxes for OD):");
    }
    for (id, splits) in &per_class {
        println!(
            "  {id:>5} {:<24} {:>7}  ({})",
            name_of(*id),
            splits.values().sum::<usize>(),
            per_split_text(splits)
        );
    }
    if !anomaly.is_empty() {
        println!("anomaly labels (images):");
        for (label, splits) in &anomaly {
            println!("  {label:<4} {:>7}  ({})", splits.values().sum::<usize>(), per_split_text(splits));
        }
    }
    if let Some(e) = &pixels_error {
        println!("pixels per class: not counted ({e})");
    }
    if !pixels.is_empty() {
        let total: u64 = pixels.iter().flat_map(|c| c.pixels.values()).sum();
        println!(
            "pixels per class ({}):",
            if ds.dlsample_dir.is_some() { "sample files, at the network's size" } else { "label images" }
        );
        for c in &pixels {
            let n: u64 = c.pixels.values().sum();
            println!(
                "  {:>5} {:<24} {n:>12} {:>6.2}%  in {} images  ({})",
                c.value,
                if c.is_class { name_of(c.value) } else { "(not a class: ignored or unknown)".into() },
                100.0 * n as f64 / total.max(1) as f64,
                c.images,
                per_split_text(&c.pixels)
            );
        }
    }
    if let (Some(w), Some(h), Some(a)) = (stats(&widths), stats(&heights), stats(&aspects)) {
        println!("boxes: {}", widths.len());
        println!("  width  min {:.1} mean {:.1} max {:.1}", w.0, w.1, w.2);
        println!("  height min {:.1} mean {:.1} max {:.1}", h.0, h.1, h.2);
        println!("  aspect min {:.2} mean {:.2} max {:.2}", a.0, a.1, a.2);
    }
    if problems.is_empty() {
        println!("problems: none");
    } else {
        println!("problems: {}", problems.len());
        for p in problems.iter().take(20) {
            println!("  {p}");
        }
    }
    Ok(())
}
