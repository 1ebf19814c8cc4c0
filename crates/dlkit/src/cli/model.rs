//! `dlkit model …` and `dlkit apply`: create, inspect and change model files; classify images.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use dlkit::Model;
use dlkit::data::{DLDataset, HostImage};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Create a classifier with fresh weights, or from pretrained ImageNet weights, or a detector or
    /// segmentation model on a backbone, and write it.
    Create {
        /// classification | detection | segmentation | anomaly_detection | gc_anomaly_detection |
        /// patchcore.
        #[arg(long = "type", default_value = "classification")]
        model_type: String,
        /// Classifier: compact | enhanced | resnet18 | resnet50 | mobilenet_v2 | efficientnet_lite0/1/2 |
        /// squeezenet | mobilenet_v1.
        #[arg(long, default_value = "compact")]
        arch: String,
        /// Detection and segmentation: the backbone — an architecture of --arch (from scratch) or a
        /// pretrained model (pretrained_dl_classifier_…, its ImageNet weights).
        #[arg(long, default_value = "compact")]
        backbone: String,
        /// Detection parameters.
        #[command(flatten)]
        detection: Box<super::detection::DetectionArgs>,
        /// Segmentation parameters.
        #[command(flatten)]
        segmentation: Box<super::segmentation::SegmentationArgs>,
        /// Anomaly-detection parameters.
        #[command(flatten)]
        anomaly: Box<super::anomaly::AnomalyArgs>,
        /// Start from pretrained weights (`cargo xtask weights`):
        /// pretrained_dl_classifier_efficientnet_lite0 | …_efficientnet_lite1 | …_efficientnet_lite2 |
        /// …_squeezenet | …_mobilenet_v1 | …_mobilenet_v2. The ImageNet
        /// head is replaced for the given classes (kept when no classes are given); the input size and
        /// normalisation are the weights' own.
        #[arg(long, conflicts_with_all = ["arch", "width", "height", "channels"])]
        pretrained: Option<String>,
        /// Class names, comma-separated (ids 0 … n−1) …
        #[arg(long, value_delimiter = ',')]
        classes: Vec<String>,
        /// … or the classes of this dataset.
        #[arg(long)]
        dataset: Option<PathBuf>,
        /// Network input width.
        #[arg(long, required_unless_present = "pretrained")]
        width: Option<usize>,
        /// Network input height.
        #[arg(long, required_unless_present = "pretrained")]
        height: Option<usize>,
        /// Network input channels (default 3).
        #[arg(long)]
        channels: Option<usize>,
        /// Seed of the initial weights.
        #[arg(long, default_value_t = 42)]
        seed: i64,
        /// The model file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Show a model's description and parameter count.
    Info {
        /// The model file.
        model: PathBuf,
    },
    /// Print one parameter (HALCON's names, e.g. batch_size, class_names, image_dimensions).
    Get {
        /// The model file.
        model: PathBuf,
        /// Parameter name.
        name: String,
    },
    /// Write the weights as safetensors with torchvision's names.
    ExportWeights {
        /// The model file.
        model: PathBuf,
        /// The safetensors file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Load weights from a safetensors file with torchvision's names (every tensor shape-checked) and
    /// write the model back.
    ImportWeights {
        /// The model file.
        model: PathBuf,
        /// The safetensors file.
        weights: PathBuf,
    },
    /// Compute HALCON's anomaly thresholds (compute_dl_anomaly_thresholds) on the dataset's validation
    /// split (ok and nok images) and store them in the model, so `apply` classifies good / defect.
    Thresholds {
        /// The anomaly model file (written back).
        model: PathBuf,
        /// The dataset, with a validation split.
        #[arg(long)]
        dataset: PathBuf,
    },
    /// Set one parameter and write the model back (atomically). VALUE is JSON (3, 0.01, "adam", ["a","b"]).
    Set {
        /// The model file.
        model: PathBuf,
        /// Parameter name.
        name: String,
        /// New value, as JSON (a bare word is taken as a string).
        value: String,
    },
    /// Export a classification or segmentation model as TorchScript (for TorchServe, Triton's PyTorch
    /// backend, libtorch C++, torch.jit.load): input raw 0…255 float images [N, C, H, W] at the model's
    /// size, normalisation inside; output class probabilities ([N, classes] or [N, classes, H, W]).
    ExportTorchscript {
        /// The model file.
        model: PathBuf,
        /// The TorchScript file to write (.pt).
        output: PathBuf,
    },
}

pub fn run_model(command: &ModelCommand, json_out: bool) -> Result<u8> {
    match command {
        ModelCommand::Create {
            model_type,
            arch,
            backbone,
            detection,
            segmentation,
            anomaly,
            pretrained,
            classes,
            dataset,
            width,
            height,
            channels,
            seed,
            output,
        } => {
            let given: Option<(Vec<String>, Vec<i64>)> = match (dataset, classes.is_empty()) {
                _ if super::anomaly::ANOMALY_TYPES.contains(&model_type.as_str()) => {
                    Some((vec!["ok".into(), "nok".into()], vec![0, 1]))
                }
                (Some(d), true) => {
                    let ds = DLDataset::load(d)?;
                    Some((ds.class_names.clone(), ds.class_ids.iter().map(|c| i64::from(c.get())).collect()))
                }
                (None, false) => Some((classes.clone(), (0..classes.len() as i64).collect())),
                (None, true) if pretrained.is_some() => None,
                _ => bail!("give the classes with either --classes or --dataset"),
            };
            tch::manual_seed(*seed);
            let (model, what) = if model_type == "detection" {
                let (names, ids) = given.context("give the classes with either --classes or --dataset")?;
                let default = match dataset {
                    Some(d) => super::detection::instance_type_of(&DLDataset::load(d)?),
                    None => dlkit::data::InstanceType::Rectangle1,
                };
                let size = (width.context("--width")?, height.context("--height")?, channels.unwrap_or(3));
                let model =
                    Model::create_detector(backbone, &names, &ids, size, &detection.options(default)?)?;
                let kind = model.get_param("instance_type")?.as_str().unwrap_or("").to_owned();
                (model, format!("{kind} detector on {backbone}"))
            } else if model_type == "segmentation" {
                let (names, ids) = given.context("give the classes with either --classes or --dataset")?;
                let size = (width.context("--width")?, height.context("--height")?, channels.unwrap_or(3));
                let ds = dataset.as_deref().map(DLDataset::load).transpose()?;
                let model = Model::create_segmenter(
                    backbone,
                    None,
                    &names,
                    &ids,
                    size,
                    &segmentation.options(ds.as_ref())?,
                )?;
                (model, format!("segmentation model on {backbone}"))
            } else if super::anomaly::ANOMALY_TYPES.contains(&model_type.as_str()) {
                let size = (width.context("--width")?, height.context("--height")?, channels.unwrap_or(3));
                super::anomaly::create(model_type, backbone, size, anomaly)?
            } else if model_type == "classification" {
                let model = match (pretrained, &given) {
                    (Some(name), g) => {
                        Model::create_pretrained(name, g.as_ref().map(|(n, i)| (&n[..], &i[..])))?
                    }
                    (None, Some((names, ids))) => Model::create_classifier(
                        arch,
                        names,
                        ids,
                        width.context("--width")?,
                        height.context("--height")?,
                        channels.unwrap_or(3),
                    )?,
                    (None, None) => unreachable!("classes are required without --pretrained"),
                };
                (model, format!("{} classifier", pretrained.as_ref().unwrap_or(arch)))
            } else {
                bail!(
                    "--type {model_type}: expected classification, detection, segmentation, anomaly_detection, gc_anomaly_detection or patchcore"
                );
            };
            model.write(output)?;
            if json_out {
                println!(
                    "{}",
                    json!({"output": output, "num_trainable_params": model.num_trainable_params()})
                );
            } else {
                println!(
                    "{what}, {} classes, {} parameters → {}",
                    model.description().class_names.len(),
                    model.num_trainable_params(),
                    output.display()
                );
            }
        }
        ModelCommand::Info { model } => {
            let m = Model::read(model)?;
            let mut v = serde_json::to_value(m.description())?;
            v["num_trainable_params"] = json!(m.num_trainable_params());
            if !json_out {
                // Long class lists (ImageNet's 1 000) are summarised; --json prints them all.
                for key in ["class_ids", "class_names"] {
                    if let Some(list) = v[key].as_array().filter(|l| l.len() > 12).cloned() {
                        let mut short: Vec<Value> = list[..5].to_vec();
                        short.push(json!(format!("… {} more …", list.len() - 6)));
                        short.push(list[list.len() - 1].clone());
                        v[key] = Value::Array(short);
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        ModelCommand::Get { model, name } => {
            let v = Model::read(model)?.get_param(name)?;
            println!(
                "{}",
                if json_out {
                    v.to_string()
                } else {
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                }
            );
        }
        ModelCommand::ExportWeights { model, output } => {
            let bytes = Model::read(model)?.export_weights()?;
            dlkit::io::write_bytes_atomic(output, &bytes)?;
            if !json_out {
                println!("{} bytes → {}", bytes.len(), output.display());
            }
        }
        ModelCommand::ImportWeights { model, weights } => {
            let mut m = Model::read(model)?;
            let bytes =
                std::fs::read(weights).with_context(|| format!("cannot read {}", weights.display()))?;
            m.import_weights(&bytes)
                .with_context(|| format!("{} does not fit {}", weights.display(), model.display()))?;
            m.write(model)?;
            if !json_out {
                println!("weights of {} → {}", weights.display(), model.display());
            }
        }
        ModelCommand::Thresholds { model, dataset } => {
            let mut m = Model::read(model)?;
            let t = m.compute_anomaly_thresholds(&DLDataset::load(dataset)?)?;
            m.write(model)?;
            if json_out {
                println!("{}", serde_json::to_string(&t)?);
            } else {
                println!(
                    "segmentation threshold {:.4}, classification thresholds {:?} (stored: {:.4}) → {}",
                    t.segmentation_threshold,
                    t.classification_thresholds,
                    t.classification_thresholds[2],
                    model.display()
                );
            }
        }
        ModelCommand::ExportTorchscript { model, output } => {
            let m = Model::read(model)?;
            m.export_torchscript(output)?;
            let d = m.description();
            let shape =
                [d.preprocess.image_num_channels, d.preprocess.image_height, d.preprocess.image_width];
            if json_out {
                println!(
                    "{}",
                    serde_json::json!({"output": output, "input_shape": ["N", shape[0], shape[1], shape[2]]})
                );
            } else {
                let what = match d.model_type() {
                    dlkit::data::ModelType::Classification => "class probabilities [N, classes]".to_owned(),
                    dlkit::data::ModelType::Segmentation => {
                        "class probabilities [N, classes, H, W]".to_owned()
                    }
                    dlkit::data::ModelType::Detection => format!(
                        "[N, anchors, {} class scores + the box ({})] of every anchor before thresholds and NMS",
                        d.class_ids.len(),
                        if m.get_param("instance_type").is_ok_and(|t| t == "rectangle2") {
                            "row, col, phi, length1, length2"
                        } else {
                            "row1, col1, row2, col2"
                        }
                    ),
                    dlkit::data::ModelType::AnomalyDetection
                        if m.get_param("anomaly_method").is_ok_and(|t| t == "gc_anomaly_detection") =>
                    {
                        "anomaly images [N, k, H, W]: the combined one, then the local and / or global one \
                         (gc_anomaly_networks); each score is a map's maximum"
                            .to_owned()
                    }
                    dlkit::data::ModelType::AnomalyDetection => {
                        "anomaly images [N, 1, H, W]; the score is each image's maximum".to_owned()
                    }
                };
                println!(
                    "TorchScript → {} (input: float32 [N, {}, {}, {}], raw 0…255; output: {what})",
                    output.display(),
                    shape[0],
                    shape[1],
                    shape[2]
                );
            }
        }
        ModelCommand::Set { model, name, value } => {
            let mut m = Model::read(model)?;
            let v: Value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.clone()));
            m.set_param(name, &v)?;
            m.write(model)?;
            if !json_out {
                println!("{name} = {v} → {}", model.display());
            }
        }
    }
    Ok(0)
}

/// `dlkit apply`: classify images, print DLResults.
pub fn run_apply(
    model: &std::path::Path,
    images: &[PathBuf],
    overlay: Option<&std::path::Path>,
    json_out: bool,
) -> Result<u8> {
    let m = Model::read(model).with_context(|| format!("cannot read the model {}", model.display()))?;
    let decoded: Vec<HostImage> = images.iter().map(|p| HostImage::read(p)).collect::<Result<_, _>>()?;
    let results = m.apply(decoded.clone())?;
    if let Some(dir) = overlay {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for ((path, image), r) in images.iter().zip(&decoded).zip(&results) {
            let stem = path.file_stem().map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
            if r.segmentation_image.is_some() {
                super::segmentation::write_overlay(dir, &stem, image, r, &m)?;
                continue;
            }
            if r.anomaly_image.is_some() {
                super::anomaly::write_overlay(dir, &stem, image, r)?;
                continue;
            }
            if r.bbox_class_id.is_some() {
                let rgb = image.to_rgb8();
                let boxes = super::detection::drawn_boxes(r, &m.description().class_ids)?;
                dlkit::eval::plots::detections_png(
                    &dir.join(format!("{stem}_result.png")),
                    rgb.as_raw(),
                    rgb.dimensions(),
                    &boxes,
                    512,
                )?;
                continue;
            }
            let names = r.classification_class_names.as_deref().unwrap_or_default();
            let conf = r.classification_confidences.as_deref().unwrap_or_default();
            let lines: Vec<String> =
                names.iter().zip(conf).take(3).map(|(n, c)| format!("{n}  {:.1}%", 100.0 * c)).collect();
            let rgb = image.to_rgb8();
            dlkit::eval::plots::labelled_image_png(
                &dir.join(format!("{stem}_result.png")),
                rgb.as_raw(),
                rgb.dimensions(),
                &lines,
                256,
            )?;
        }
    }
    if json_out {
        let list: Vec<Value> = images
            .iter()
            .zip(&results)
            .map(|(p, r)| {
                let mut v = serde_json::to_value(r).expect("serialisable");
                v["image_file_name"] = json!(p);
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        for (p, r) in images.iter().zip(&results) {
            if let Some(score) = r.anomaly_score {
                let class = match r.anomaly_class {
                    Some(dlkit::data::AnomalyLabel::Nok) => "nok",
                    Some(dlkit::data::AnomalyLabel::Ok) => "ok",
                    None => "no thresholds (dlkit model thresholds)",
                };
                println!("{}: anomaly score {score:.4}, {class}", p.display());
                continue;
            }
            if let Some(seg) = &r.segmentation_image {
                let d = m.description();
                let total = seg.data.len().max(1) as f64;
                let shares: Vec<String> = d
                    .class_ids
                    .iter()
                    .zip(&d.class_names)
                    .map(|(&id, n)| {
                        let count = seg.data.iter().filter(|&&v| i64::from(v) == id).count();
                        format!("{n} {:.1}%", 100.0 * count as f64 / total)
                    })
                    .collect();
                println!("{}: {}×{} pixels: {}", p.display(), seg.width, seg.height, shares.join(", "));
                continue;
            }
            if let Some(ids) = &r.bbox_class_id {
                let names = r.bbox_class_name.as_deref().unwrap_or_default();
                let conf = r.bbox_confidence.as_deref().unwrap_or_default();
                let mut counts: Vec<(String, usize)> = Vec::new();
                for n in names {
                    match counts.iter_mut().find(|c| &c.0 == n) {
                        Some(c) => c.1 += 1,
                        None => counts.push((n.clone(), 1)),
                    }
                }
                let summary: Vec<String> = counts.iter().map(|(n, c)| format!("{c} {n}")).collect();
                let best = conf.iter().copied().fold(f64::NAN, f64::max);
                println!(
                    "{}: {} detections ({}){}",
                    p.display(),
                    ids.len(),
                    summary.join(", "),
                    if best.is_nan() {
                        String::new()
                    } else {
                        format!(", best confidence {:.1}%", 100.0 * best)
                    }
                );
                continue;
            }
            let names = r.classification_class_names.as_deref().unwrap_or_default();
            let conf = r.classification_confidences.as_deref().unwrap_or_default();
            let top: Vec<String> =
                names.iter().zip(conf).take(3).map(|(n, c)| format!("{n} {:.1}%", 100.0 * c)).collect();
            println!("{}: {}", p.display(), top.join(", "));
        }
    }
    Ok(0)
}

/// `dlkit heatmap`: write the heatmap overlay of one image as PNG.
pub fn run_heatmap(
    model: &std::path::Path,
    image: &std::path::Path,
    method: &str,
    class: Option<i64>,
    output: &std::path::Path,
    json_out: bool,
) -> Result<u8> {
    let m = Model::read(model).with_context(|| format!("cannot read the model {}", model.display()))?;
    let img = HostImage::read(image)?;
    let hm = m.heatmap(&img, method.parse()?, class)?;
    let mut overlay = dlkit::heatmap_overlay(&img, &hm);
    // Small images (e.g. 28×28) are enlarged to at least 256 pixels wide, so the heatmap can be seen.
    let scale = 256u32.div_ceil(overlay.width()).max(1);
    if scale > 1 {
        overlay = image::imageops::resize(
            &overlay,
            overlay.width() * scale,
            overlay.height() * scale,
            image::imageops::FilterType::Nearest,
        );
    }
    dlkit::data::write_png_atomic(output, &image::DynamicImage::ImageRgb8(overlay))?;
    if json_out {
        println!("{}", json!({"output": output, "class_id": hm.class_id}));
    } else {
        let d = m.description();
        let name =
            d.class_ids.iter().position(|&c| c == hm.class_id).map_or("", |i| d.class_names[i].as_str());
        println!("{method} heatmap of class {} ({name}) → {}", hm.class_id, output.display());
    }
    Ok(0)
}
