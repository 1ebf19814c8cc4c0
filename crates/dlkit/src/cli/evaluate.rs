//! `dlkit evaluate …`: measures from files of ground truth and results, as tables, JSON and PNG plots.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use dlkit::core::{ImageId, Rect1, Rect2, Split};
use dlkit::data::{DLDataset, DLResult, DLSample, HostImage, LabelImage, ModelType};
use dlkit::eval::anomaly;
use dlkit::eval::coco_files::load_coco_detections;
use dlkit::eval::detection::DetectionEvalParams;
use dlkit::eval::{
    AnomalyMeasures, DetectionMeasures, Evaluation, Evaluator, EvaluatorParams, SegmentationEvaluation, plots,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum EvaluateCommand {
    /// Apply a model to the samples of a dataset and measure it (evaluate_dl_model).
    Model {
        /// The model file.
        #[arg(long)]
        model: PathBuf,
        /// The dataset (raw, or preprocessed to the model's size).
        #[arg(long)]
        dataset: PathBuf,
        /// train | validation | test | all.
        #[arg(long, default_value = "test")]
        split: String,
        /// Largest k of the top-k errors.
        #[arg(long, default_value_t = 5)]
        max_k: usize,
        /// Write the confusion matrices here.
        #[arg(long)]
        plots: Option<PathBuf>,
        /// Device: cpu, cuda, cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// COCO-style detection evaluation of a COCO results list against COCO ground truth.
    Detections {
        /// COCO ground truth (rotated: bbox = [cx, cy, w, h, a]).
        #[arg(long)]
        ground_truth: PathBuf,
        /// COCO results list [{image_id, category_id, bbox, score}].
        #[arg(long)]
        detections: PathBuf,
        /// Boxes are rotated ([cx, cy, w, h, angle in degrees]).
        #[arg(long)]
        rotated: bool,
        /// Rotated boxes without a front (a detector with ignore_direction): SoAP's angle errors
        /// modulo 180°.
        #[arg(long, requires = "rotated")]
        ignore_direction: bool,
        /// COCO's settings (areas small/medium/large, max detections 1/10/100) and its 12 numbers.
        #[arg(long)]
        coco: bool,
        /// Write PR curves per class (IoU 0.5) here.
        #[arg(long)]
        plots: Option<PathBuf>,
        /// Also the detailed evaluation at IoU 0.5: TP, FN, FP by cause, detection confusion matrix.
        #[arg(long)]
        detailed: bool,
    },
    /// Classification: top-k error, precision / recall / F-score, confusion matrices.
    Classification {
        /// The dataset (image_label_id per sample).
        #[arg(long)]
        dataset: PathBuf,
        /// Results: a list of {image_id, classification_class_ids (best first)}.
        #[arg(long)]
        results: PathBuf,
        /// Only samples of this split.
        #[arg(long)]
        split: Option<String>,
        /// Largest k of the top-k errors.
        #[arg(long, default_value_t = 5)]
        max_k: usize,
        /// Write the confusion matrices here.
        #[arg(long)]
        plots: Option<PathBuf>,
    },
    /// Segmentation: pixel accuracy, class IoU, mean IoU … from predicted label images.
    Segmentation {
        /// The dataset (segmentation_dir, segmentation_file_name).
        #[arg(long)]
        dataset: PathBuf,
        /// Folder of predicted label images, same relative names as segmentation_file_name.
        #[arg(long)]
        predictions: PathBuf,
        /// Only samples of this split.
        #[arg(long)]
        split: Option<String>,
        /// Class ids left out of the measures.
        #[arg(long, value_delimiter = ',')]
        ignore_class_ids: Vec<i64>,
        /// Write the pixel confusion matrices here.
        #[arg(long)]
        plots: Option<PathBuf>,
    },
    /// Anomaly detection: image AUROC, HALCON's thresholds, confusion at them, score histogram.
    Anomaly {
        /// The dataset (anomaly_label per sample).
        #[arg(long)]
        dataset: PathBuf,
        /// Results: a list of {image_id, anomaly_score}.
        #[arg(long)]
        results: PathBuf,
        /// Only samples of this split.
        #[arg(long)]
        split: Option<String>,
        /// Write the score histogram and ROC curve here.
        #[arg(long)]
        plots: Option<PathBuf>,
    },
}

/// Prints classification measures as a table (or JSON) and writes the confusion matrices.
pub fn report_classification(
    e: &dlkit::eval::ClassificationEvaluation,
    class_names: &[String],
    plot_dir: Option<&Path>,
    json_out: bool,
) -> Result<()> {
    if let Some(dir) = plot_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let abs: Vec<f64> = e.absolute_confusion_matrix.iter().map(|&v| v as f64).collect();
        plots::confusion_matrix_png(
            &dir.join("confusion_matrix.png"),
            &abs,
            class_names,
            false,
            "confusion matrix",
        )?;
        plots::confusion_matrix_png(
            &dir.join("confusion_matrix_relative.png"),
            &e.relative_confusion_matrix,
            class_names,
            true,
            "relative confusion matrix",
        )?;
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(e)?);
    } else {
        println!("samples {}   top1_error {:.4}", e.num_samples, e.top1_error);
        for (k, v) in e.topk_error.iter().enumerate().skip(1) {
            println!("top{}_error {v:.4}", k + 1);
        }
        println!(
            "mean precision {:.4}  recall {:.4}  F-score {:.4}",
            e.mean_precision, e.mean_recall, e.mean_f_score
        );
        for (c, name) in class_names.iter().enumerate() {
            println!(
                "  {name:<24} precision {:>7.4}  recall {:>7.4}  F {:>7.4}",
                e.class_precision[c], e.class_recall[c], e.class_f_score[c]
            );
        }
        if let Some(dir) = plot_dir {
            println!("confusion matrices → {}", dir.display());
        }
    }
    Ok(())
}

fn selected(ds: &DLDataset, split: &Option<String>) -> Result<Vec<usize>> {
    let split: Option<Split> = split.as_deref().map(str::parse).transpose()?;
    Ok((0..ds.samples.len()).filter(|&i| split.is_none_or(|s| ds.samples[i].split == Some(s))).collect())
}

fn results_by_id(path: &Path) -> Result<HashMap<u64, Value>> {
    let v: Value = serde_json::from_slice(
        &std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
    )
    .with_context(|| format!("{}: invalid JSON", path.display()))?;
    let Value::Array(list) = v else { bail!("{}: expected a list of results", path.display()) };
    let mut out = HashMap::new();
    for (i, r) in list.into_iter().enumerate() {
        let id = r
            .get("image_id")
            .and_then(Value::as_u64)
            .with_context(|| format!("{}: result {i} has no image_id", path.display()))?;
        if out.insert(id, r).is_some() {
            bail!("{}: two results for image {id}", path.display());
        }
    }
    Ok(out)
}

/// Prints detection measures (table or JSON, COCO's 12 numbers with `coco`) and writes the PR curves.
fn report_detection(
    measures: &DetectionMeasures,
    categories: &[(u32, String)],
    coco: bool,
    plot_dir: Option<&Path>,
    json_out: bool,
) -> Result<()> {
    let eval = &measures.evaluation;
    let mut out = measures.to_json();
    if coco {
        out["coco_stats"] = json!(eval.coco_summary()?);
    }
    let name_of = |id: u32| categories.iter().find(|c| c.0 == id).map_or(id.to_string(), |c| c.1.clone());
    if let Some(dir) = plot_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let m = eval.max_num_detections.len() - 1;
        let (nk, na, nm) = (eval.class_ids.len(), eval.area_ranges.len(), eval.max_num_detections.len());
        let curves: Vec<(String, Vec<(f64, f64)>)> = (0..nk)
            .filter(|&k| eval.precision[k * na * nm + m] > -1.0)
            .map(|k| {
                let pts = (0..101)
                    .map(|r| (r as f64 / 100.0, eval.precision[((r * nk + k) * na) * nm + m].max(0.0)))
                    .collect();
                // The curves are those of the first IoU threshold (0.5): its AP in the legend.
                let ap = eval.average_precision(Some(0), Some(k), 0, m);
                (format!("{} (AP@0.5 {ap:.3})", name_of(eval.class_ids[k])), pts)
            })
            .collect();
        plots::curves_png(
            &dir.join("pr_curves_iou_05.png"),
            "precision–recall (IoU 0.5)",
            "recall",
            "precision",
            &curves,
        )?;
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if let Some(stats) = out.get("coco_stats").and_then(Value::as_array) {
        let names = [
            "AP @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
            "AP @[ IoU=0.50      | area=   all | maxDets=100 ]",
            "AP @[ IoU=0.75      | area=   all | maxDets=100 ]",
            "AP @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
            "AP @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
            "AP @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
            "AR @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]",
            "AR @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]",
            "AR @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
            "AR @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
            "AR @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
            "AR @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
        ];
        for (n, v) in names.iter().zip(stats) {
            println!(" Average {n} = {:.3}", v.as_f64().unwrap_or(-1.0));
        }
    }
    println!(
        "mean_ap {:.4}   ap_iou_05 {:.4}   ap_iou_075 {:.4}",
        out["mean_ap"].as_f64().unwrap_or(-1.0),
        out["ap_iou_05"].as_f64().unwrap_or(-1.0),
        out["ap_iou_075"].as_f64().unwrap_or(-1.0)
    );
    if measures.rotated {
        println!("soap {:.4}", out["soap"].as_f64().unwrap_or(-1.0));
    }
    if let Some(d) = &measures.detailed {
        println!(
            "detailed (IoU 0.5): TP {}  FN {}  FP: background {}, class confusion {}, localization {}, duplicate {}, multiple {}",
            d.num_tp,
            d.num_fn,
            d.num_fp_background,
            d.num_fp_class_confusion,
            d.num_fp_localization,
            d.num_fp_duplicate,
            d.num_fp_multiple
        );
    }
    for (k, id) in eval.class_ids.iter().enumerate() {
        println!(
            "  class {id:>5} {:<20} AP {:.4}",
            name_of(*id),
            out["class_ap"][k].as_f64().unwrap_or(-1.0)
        );
    }
    Ok(())
}

/// Prints segmentation measures (table or JSON) and writes the pixel confusion matrix (absolute and
/// relative to each ground-truth class).
fn report_segmentation(
    e: &SegmentationEvaluation,
    class_names: &[String],
    plot_dir: Option<&Path>,
    json_out: bool,
) -> Result<()> {
    if let Some(dir) = plot_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let n = class_names.len();
        let abs: Vec<f64> = e.pixel_confusion_matrix.iter().map(|&v| v as f64).collect();
        plots::confusion_matrix_png(
            &dir.join("pixel_confusion_matrix.png"),
            &abs,
            class_names,
            false,
            "pixel confusion matrix",
        )?;
        let rel = dlkit::eval::ConfusionMatrix::from_counts(n, e.pixel_confusion_matrix.clone())?.relative();
        plots::confusion_matrix_png(
            &dir.join("pixel_confusion_matrix_relative.png"),
            &rel,
            class_names,
            true,
            "pixel confusion matrix (share of each ground-truth class)",
        )?;
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(e)?);
        return Ok(());
    }
    println!(
        "pixel_accuracy {:.4}  mean_accuracy {:.4}  mean_iou {:.4}  frequency_weighted_iou {:.4}",
        e.pixel_accuracy, e.mean_accuracy, e.mean_iou, e.frequency_weighted_iou
    );
    for (c, name) in class_names.iter().enumerate() {
        println!(
            "  {name:<24} IoU {:>7.4}  pixel accuracy {:>7.4}",
            e.class_iou[c], e.class_pixel_accuracy[c]
        );
    }
    Ok(())
}

/// Prints anomaly measures (table or JSON) and writes the score histogram and ROC curve.
fn report_anomaly(a: &AnomalyMeasures, plot_dir: Option<&Path>, json_out: bool) -> Result<()> {
    if let Some(dir) = plot_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        plots::score_histogram_png(
            &dir.join("anomaly_score_histogram.png"),
            &a.ok_scores,
            &a.nok_scores,
            40,
            &anomaly::CLASSIFICATION_THRESHOLD_NAMES
                .iter()
                .zip(&a.classification_thresholds)
                .map(|(n, &t)| ((*n).to_owned(), t))
                .collect::<Vec<_>>(),
        )?;
        let scores: Vec<f64> = a.ok_scores.iter().chain(&a.nok_scores).copied().collect();
        let nok: Vec<bool> =
            a.ok_scores.iter().map(|_| false).chain(a.nok_scores.iter().map(|_| true)).collect();
        let (fpr, tpr) = anomaly::roc_curve(&scores, &nok)?;
        plots::curves_png(
            &dir.join("roc_curve.png"),
            &format!("ROC (AUROC {:.4})", a.image_auroc),
            "false-positive rate",
            "true-positive rate",
            &[("images".into(), fpr.into_iter().zip(tpr).collect())],
        )?;
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(a)?);
        return Ok(());
    }
    println!("image AUROC {:.4}", a.image_auroc);
    if let (Some(p), Some(pro)) = (a.pixel_auroc, a.pro) {
        println!("pixel AUROC {p:.4}   PRO (FPR ≤ 0.3) {pro:.4}");
    }
    for (i, t) in a.at_thresholds.iter().enumerate() {
        let c = t.confusion_matrix;
        println!(
            "  {:<14} {:.6}: nok precision {:.4}, recall {:.4}; ok images: {} ok, {} nok; nok images: {} ok, {} nok",
            anomaly::CLASSIFICATION_THRESHOLD_NAMES.get(i).copied().unwrap_or("threshold"),
            t.threshold,
            t.precision,
            t.recall,
            c[0],
            c[2],
            c[1],
            c[3]
        );
    }
    Ok(())
}

/// Prints any evaluation of [`Evaluator`] in its method's form.
fn report(
    e: &Evaluation,
    (class_names, class_ids): (&[String], &[dlkit::core::ClassId]),
    plot_dir: Option<&Path>,
    json_out: bool,
) -> Result<()> {
    match e {
        Evaluation::Classification(c) => report_classification(c, class_names, plot_dir, json_out),
        Evaluation::Detection(d) => {
            let categories: Vec<(u32, String)> =
                class_ids.iter().zip(class_names).map(|(id, n)| (u32::from(id.get()), n.clone())).collect();
            report_detection(d, &categories, false, plot_dir, json_out)
        }
        Evaluation::Segmentation(s) => report_segmentation(s, class_names, plot_dir, json_out),
        Evaluation::Anomaly(a) => report_anomaly(a, plot_dir, json_out),
    }
}

/// A ground-truth sample of a dataset entry without pixels (for results-file evaluations).
fn bare_sample(s: &dlkit::data::SampleEntry) -> DLSample {
    let mut sample = DLSample::from_image(s.image_id, HostImage::filled(0, 0, 0, 0.0));
    sample.image_label_id = s.image_label_id.clone();
    sample.anomaly_label = s.anomaly_label;
    sample
}

fn result_of(res: &HashMap<u64, Value>, id: ImageId) -> Result<DLResult> {
    let r = res.get(&id.0).with_context(|| format!("no result for sample {id}"))?;
    serde_json::from_value(r.clone()).with_context(|| format!("result {id}: not a DLResult"))
}

pub fn run(command: &EvaluateCommand, json_out: bool) -> Result<u8> {
    match command {
        EvaluateCommand::Detections {
            ground_truth,
            detections: dt,
            rotated,
            ignore_direction,
            coco,
            plots: plot_dir,
            detailed,
        } => {
            let params = EvaluatorParams {
                detection: DetectionEvalParams {
                    ignore_direction: *ignore_direction,
                    ..if *coco { DetectionEvalParams::coco() } else { DetectionEvalParams::default() }
                },
                detailed: *detailed,
                ..Default::default()
            };
            let mut ev = Evaluator::new(ModelType::Detection, &[], &params);
            let categories = if *rotated {
                let (images, categories) = load_coco_detections::<Rect2>(ground_truth, dt)?;
                images.into_iter().try_for_each(|i| ev.add_rect2_image(i))?;
                categories
            } else {
                let (images, categories) = load_coco_detections::<Rect1>(ground_truth, dt)?;
                images.into_iter().try_for_each(|i| ev.add_rect1_image(i))?;
                categories
            };
            let Evaluation::Detection(measures) = ev.finish()? else { bail!("not a detection evaluation") };
            report_detection(&measures, &categories, *coco, plot_dir.as_deref(), json_out)?;
        }
        EvaluateCommand::Model { model, dataset, split, max_k, plots: plot_dir, device } => {
            let mut m = dlkit::Model::read(model)
                .with_context(|| format!("cannot read the model {}", model.display()))?;
            m.set_param("device", &json!(device))?;
            let ds = DLDataset::load(dataset)?;
            let d = m.description();
            let ds_ids: Vec<i64> = ds.class_ids.iter().map(|c| i64::from(c.get())).collect();
            if d.model_type() != ModelType::AnomalyDetection
                && (ds_ids != d.class_ids || ds.class_names != d.class_names)
            {
                let pairs = |ids: &[i64], names: &[String]| -> String {
                    ids.iter()
                        .zip(names)
                        .take(6)
                        .map(|(i, n)| format!("{i} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                eprintln!(
                    "warning: the model's classes ({}) differ from the dataset's ({}); samples are matched by class id",
                    pairs(&d.class_ids, &d.class_names),
                    pairs(&ds_ids, &ds.class_names)
                );
            }
            let selector = match split.as_str() {
                "all" => dlkit::data::SampleSelector::All,
                s => dlkit::data::SampleSelector::Split(s.parse()?),
            };
            let params = dlkit::train::EvalParams {
                measures: EvaluatorParams { top_k: *max_k, detailed: true, ..Default::default() },
                display: !json_out,
            };
            let t0 = std::time::Instant::now();
            let e = dlkit::train::evaluate_dl_model(&m, &ds, &selector, &params).with_context(|| {
                format!("evaluating {} on {} ({split})", model.display(), dataset.display())
            })?;
            let classes = m.classes();
            report(&e, (&classes.names, &classes.ids), plot_dir.as_deref(), json_out)?;
            if !json_out {
                println!("evaluated in {:.1} s", t0.elapsed().as_secs_f64());
            }
        }
        EvaluateCommand::Classification { dataset, results, split, max_k, plots: plot_dir } => {
            let ds = DLDataset::load(dataset)?;
            let res = results_by_id(results)?;
            let params = EvaluatorParams { top_k: *max_k, ..Default::default() };
            let mut ev = Evaluator::new(ModelType::Classification, &ds.class_ids, &params);
            for i in selected(&ds, split)? {
                let s = &ds.samples[i];
                ev.add(&bare_sample(s), &result_of(&res, s.image_id)?)?;
            }
            report(&ev.finish()?, (&ds.class_names, &ds.class_ids), plot_dir.as_deref(), json_out)?;
        }
        EvaluateCommand::Segmentation { dataset, predictions, split, ignore_class_ids, plots: plot_dir } => {
            let ds = DLDataset::load(dataset)?;
            let seg_dir =
                Path::new(ds.segmentation_dir.as_deref().context("the dataset has no segmentation_dir")?);
            let ignore = ignore_class_ids.iter().filter_map(|&c| dlkit::core::ClassId::new(c).ok()).collect();
            let params = EvaluatorParams { ignore_class_ids: ignore, ..Default::default() };
            let mut ev = Evaluator::new(ModelType::Segmentation, &ds.class_ids, &params);
            for i in selected(&ds, split)? {
                let s = &ds.samples[i];
                let name = s
                    .segmentation_file_name
                    .as_deref()
                    .with_context(|| format!("sample {}: no segmentation_file_name", s.image_id))?;
                let mut sample = bare_sample(s);
                sample.segmentation_image = Some(LabelImage::read(&seg_dir.join(name))?);
                let result = DLResult {
                    segmentation_image: Some(LabelImage::read(&predictions.join(name))?),
                    ..Default::default()
                };
                ev.add(&sample, &result)?;
            }
            report(&ev.finish()?, (&ds.class_names, &ds.class_ids), plot_dir.as_deref(), json_out)?;
        }
        EvaluateCommand::Anomaly { dataset, results, split, plots: plot_dir } => {
            let ds = DLDataset::load(dataset)?;
            let res = results_by_id(results)?;
            let mut ev =
                Evaluator::new(ModelType::AnomalyDetection, &ds.class_ids, &EvaluatorParams::default());
            for i in selected(&ds, split)? {
                let s = &ds.samples[i];
                if s.anomaly_label.is_none() {
                    bail!("sample {}: no anomaly_label", s.image_id);
                }
                // Scores only: anomaly images in a results file are not read.
                let r = result_of(&res, s.image_id)?;
                ev.add(&bare_sample(s), &DLResult { anomaly_score: r.anomaly_score, ..Default::default() })?;
            }
            report(&ev.finish()?, (&ds.class_names, &ds.class_ids), plot_dir.as_deref(), json_out)?;
        }
    }
    Ok(0)
}
