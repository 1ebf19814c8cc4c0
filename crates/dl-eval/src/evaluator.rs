//! One streaming evaluator for every method (SPEC §7): `Evaluator::new(model_type, classes, params)`,
//! then `add(sample, result)` for each (ground truth, model output) pair, then `finish()`.
//!
//! Training (validation), `dlkit evaluate model` and the results-file evaluations of the command-line
//! tool all measure through it, so a number means the same wherever it is printed. Classification and
//! segmentation accumulate confusion matrices as they go; detection and anomaly detection keep what
//! their measures need (boxes, scores, anomaly images) until [`Evaluator::finish`].

use crate::anomaly;
use crate::detailed::{DetailedEvaluation, evaluate_detailed};
use crate::detection::{
    Detection, DetectionEvalParams, DetectionEvaluation, GroundTruth, ImageDetections, evaluate_detections,
};
use crate::{
    ClassificationAccumulator, ClassificationEvaluation, Error, Result, SegmentationAccumulator,
    SegmentationEvaluation,
};
use dl_core::{ClassId, Rect1, Rect2};
use dl_data::{Boxes, DLResult, DLSample, ModelType};
use serde::Serialize;

/// What an [`Evaluator`] measures beyond the defaults of its method.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluatorParams {
    /// CL: top-k errors for k = 1 … this (capped at the number of classes).
    pub top_k: usize,
    /// OD: IoU thresholds, area ranges, max detections.
    pub detection: DetectionEvalParams,
    /// OD: also the detailed evaluation (TP, FN, FP by cause) at IoU 0.5.
    pub detailed: bool,
    /// SE: class ids left out of every measure.
    pub ignore_class_ids: Vec<ClassId>,
    /// AD: the false-positive rate up to which PRO is integrated (default 0.3).
    pub pro_max_fpr: f64,
}

impl Default for EvaluatorParams {
    fn default() -> Self {
        Self {
            top_k: 1,
            detection: DetectionEvalParams::default(),
            detailed: false,
            ignore_class_ids: Vec::new(),
            pro_max_fpr: 0.3,
        }
    }
}

/// Detection measures: the COCO-style tables and, when asked for, the detailed evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectionMeasures {
    /// Precision and recall tables (as pycocotools' `eval`).
    pub evaluation: DetectionEvaluation,
    /// Rotated boxes were evaluated (SoAP is defined).
    pub rotated: bool,
    /// TP, FN and FP by cause at IoU 0.5.
    pub detailed: Option<DetailedEvaluation>,
}

impl DetectionMeasures {
    /// HALCON's keys (`mean_ap`, `ap_iou_05`, `class_ap`, `soap`, …) and the detailed evaluation.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = self.evaluation.to_halcon_json();
        if let Some(d) = &self.detailed {
            out["detailed_evaluation"] = serde_json::to_value(d).unwrap_or_default();
        }
        out
    }
}

/// Anomaly-detection measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyMeasures {
    /// Image-level AUROC of `anomaly_score` (the comparison key).
    pub image_auroc: f64,
    /// Pixel-level AUROC of `anomaly_image` against the ground-truth masks, when the results have
    /// anomaly images and some nok sample has a mask.
    pub pixel_auroc: Option<f64>,
    /// Per-region overlap integrated to `pro_max_fpr`, under the same condition.
    pub pro: Option<f64>,
    /// HALCON's classification thresholds: [max ok score, min nok score, the score minimising
    /// FPR + FNR].
    pub classification_thresholds: Vec<f64>,
    /// Precision, recall and confusion matrix at each threshold.
    pub at_thresholds: Vec<anomaly::AnomalyClassification>,
    /// Scores of the ok samples.
    pub ok_scores: Vec<f64>,
    /// Scores of the nok samples.
    pub nok_scores: Vec<f64>,
}

/// The result of an [`Evaluator`], per method.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Evaluation {
    /// CL: top-k errors, precision / recall / F-score, confusion matrices.
    Classification(ClassificationEvaluation),
    /// OD: COCO-style AP tables.
    Detection(DetectionMeasures),
    /// SE: pixel accuracies and IoUs.
    Segmentation(SegmentationEvaluation),
    /// AD: AUROC, PRO, thresholds.
    #[serde(rename = "anomaly_detection")]
    Anomaly(AnomalyMeasures),
}

impl Evaluation {
    /// The measure that picks the best model: its name, value, and whether lower is better (CL
    /// `top1_error`, lower is better; OD `mean_ap`, SE `mean_iou`, AD `image_auroc`, higher is better).
    pub fn comparison_key(&self) -> (&'static str, f64, bool) {
        match self {
            Self::Classification(e) => ("top1_error", e.top1_error, true),
            Self::Detection(d) => ("mean_ap", d.evaluation.mean_ap(), false),
            Self::Segmentation(e) => ("mean_iou", e.mean_iou, false),
            Self::Anomaly(a) => ("image_auroc", a.image_auroc, false),
        }
    }

    /// The model type it measures.
    pub fn model_type(&self) -> ModelType {
        match self {
            Self::Classification(_) => ModelType::Classification,
            Self::Detection(_) => ModelType::Detection,
            Self::Segmentation(_) => ModelType::Segmentation,
            Self::Anomaly(_) => ModelType::AnomalyDetection,
        }
    }
}

/// The comparison measure of a method and whether lower is better, before anything is evaluated (CL
/// `top1_error`, lower; OD `mean_ap`, SE `mean_iou`, AD `image_auroc`, higher).
pub fn comparison_measure(model_type: ModelType) -> (&'static str, bool) {
    match model_type {
        ModelType::Classification => ("top1_error", true),
        ModelType::Detection => ("mean_ap", false),
        ModelType::Segmentation => ("mean_iou", false),
        ModelType::AnomalyDetection => ("image_auroc", false),
    }
}

#[derive(Debug)]
enum State {
    Classification(ClassificationAccumulator),
    Detection { r1: Vec<ImageDetections<Rect1>>, r2: Vec<ImageDetections<Rect2>> },
    Segmentation { acc: SegmentationAccumulator, table: Vec<i64>, ignore: Vec<i64> },
    Anomaly { scores: Vec<f64>, nok: Vec<bool>, maps: Vec<(Vec<f32>, dl_data::LabelImage)>, with_maps: bool },
}

/// Measures (ground truth, result) pairs of one method; see the module documentation.
#[derive(Debug)]
pub struct Evaluator {
    classes: Vec<ClassId>,
    params: EvaluatorParams,
    state: State,
    count: usize,
}

/// One image's ground truth (box areas, crowd flags) and detections (`result_box(i)` for each result).
fn paired<B: crate::detection::EvalBox + Copy>(
    image_id: u64,
    gt: &[B],
    labels: &[ClassId],
    crowd: &[bool],
    ids: &[ClassId],
    scores: &[f64],
    result_box: impl Fn(usize) -> Result<B>,
) -> Result<ImageDetections<B>> {
    let class = |id: ClassId| u32::from(id.get());
    let detections = (0..ids.len())
        .map(|i| {
            let bbox = result_box(i)?;
            Ok(Detection { class: class(ids[i]), area: bbox.box_area(), bbox, score: scores[i] })
        })
        .collect::<Result<_>>()?;
    let ground_truth = gt
        .iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (b, &l))| GroundTruth {
            class: class(l),
            bbox: *b,
            area: b.box_area(),
            iscrowd: crowd.get(i).copied().unwrap_or(false),
        })
        .collect();
    Ok(ImageDetections { image_id, ground_truth, detections })
}

fn sample_error(sample: &DLSample, message: impl Into<String>) -> Error {
    Error::InvalidInput(format!("sample {}: {}", sample.image_id, message.into()))
}

impl Evaluator {
    /// An evaluator for `model_type` with the model's classes (CL, OD, SE: the class order of the
    /// measures; AD: ignored, the classes are ok / nok).
    pub fn new(model_type: ModelType, classes: &[ClassId], params: &EvaluatorParams) -> Self {
        let k = classes.len();
        let state = match model_type {
            ModelType::Classification => {
                State::Classification(ClassificationAccumulator::new(k, params.top_k.min(k).max(1)))
            }
            ModelType::Detection => State::Detection { r1: Vec::new(), r2: Vec::new() },
            ModelType::Segmentation => State::Segmentation {
                acc: SegmentationAccumulator::new(k),
                table: dl_data::class_index_table(classes),
                ignore: params
                    .ignore_class_ids
                    .iter()
                    .filter_map(|c| classes.iter().position(|x| x == c).map(|i| i as i64))
                    .collect(),
            },
            ModelType::AnomalyDetection => {
                State::Anomaly { scores: Vec::new(), nok: Vec::new(), maps: Vec::new(), with_maps: true }
            }
        };
        Self { classes: classes.to_vec(), params: params.clone(), state, count: 0 }
    }

    /// Number of pairs added.
    pub fn len(&self) -> usize {
        self.count
    }

    /// No pair added yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn class_index(&self, sample: &DLSample, id: ClassId, role: &str) -> Result<usize> {
        self.classes
            .iter()
            .position(|&c| c == id)
            .ok_or_else(|| sample_error(sample, format!("{role} class id {id} is not one of the classes")))
    }

    /// Adds one sample's ground truth and the model's result for it. Both must refer to the same image
    /// coordinates (for a model: the preprocessed sample and the result in network coordinates, or the
    /// raw sample and the result in original coordinates).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the sample: ground truth or result keys of the method missing,
    /// class ids not among the classes, images of different sizes, mixed box types.
    pub fn add(&mut self, sample: &DLSample, result: &DLResult) -> Result<()> {
        match &mut self.state {
            State::Classification(_) => {
                let truth = sample
                    .image_label_id
                    .as_ref()
                    .and_then(|l| l.first())
                    .ok_or_else(|| sample_error(sample, "no image_label_id"))?;
                let truth = self.class_index(sample, *truth, "ground-truth")?;
                let ranked = result
                    .classification_class_ids
                    .as_ref()
                    .ok_or_else(|| sample_error(sample, "the result has no classification_class_ids"))?
                    .iter()
                    .map(|&id| self.class_index(sample, id, "result"))
                    .collect::<Result<Vec<_>>>()?;
                let State::Classification(acc) = &mut self.state else { unreachable!() };
                acc.add(&ranked, truth).map_err(|e| sample_error(sample, e.to_string()))?;
            }
            State::Detection { .. } => self.add_detection(sample, result)?,
            State::Segmentation { acc, table, ignore } => {
                let gt = sample
                    .segmentation_image
                    .as_ref()
                    .ok_or_else(|| sample_error(sample, "no segmentation_image"))?;
                let pred = result
                    .segmentation_image
                    .as_ref()
                    .ok_or_else(|| sample_error(sample, "the result has no segmentation_image"))?;
                if (gt.width, gt.height) != (pred.width, pred.height) {
                    return Err(sample_error(
                        sample,
                        format!(
                            "predicted segmentation_image {}×{}, ground truth {}×{}",
                            pred.width, pred.height, gt.width, gt.height
                        ),
                    ));
                }
                let p = pred.class_indices(table);
                if let Some(bad) = p.iter().position(|&v| v < 0) {
                    return Err(sample_error(
                        sample,
                        format!("predicted value {} is not a class id", pred.data[bad]),
                    ));
                }
                acc.add(&p, &gt.class_indices(table), ignore)
                    .map_err(|e| sample_error(sample, e.to_string()))?;
            }
            State::Anomaly { scores, nok, maps, with_maps } => {
                let label = sample
                    .anomaly_label_id
                    .or(sample.anomaly_label.map(|l| u8::from(l == dl_data::AnomalyLabel::Nok)))
                    .ok_or_else(|| sample_error(sample, "no anomaly_label"))?;
                let score = result
                    .anomaly_score
                    .ok_or_else(|| sample_error(sample, "the result has no anomaly_score"))?;
                if !score.is_finite() {
                    return Err(sample_error(sample, format!("anomaly_score {score}")));
                }
                scores.push(score);
                nok.push(label == 1);
                match (&result.anomaly_image, *with_maps) {
                    (Some(img), true) => {
                        if (img.width, img.height) != (sample.image.width, sample.image.height) {
                            return Err(sample_error(
                                sample,
                                format!(
                                    "anomaly_image {}×{}, the image {}×{}",
                                    img.width, img.height, sample.image.width, sample.image.height
                                ),
                            ));
                        }
                        let mask = sample.anomaly_ground_truth.clone().unwrap_or(dl_data::LabelImage {
                            width: img.width,
                            height: img.height,
                            data: vec![0; img.width * img.height],
                        });
                        if (mask.width, mask.height) != (img.width, img.height) {
                            return Err(sample_error(
                                sample,
                                "anomaly_ground_truth and anomaly_image sizes differ",
                            ));
                        }
                        maps.push((img.plane(0).to_vec(), mask));
                    }
                    _ => {
                        *with_maps = false;
                        maps.clear();
                    }
                }
            }
        }
        self.count += 1;
        Ok(())
    }

    fn add_detection(&mut self, sample: &DLSample, result: &DLResult) -> Result<()> {
        let labels = sample.bbox_label_id.as_deref().unwrap_or_default();
        let crowd = sample.bbox_iscrowd.as_deref().unwrap_or_default();
        let boxes = sample.boxes.as_ref().ok_or_else(|| sample_error(sample, "no boxes"))?;
        if boxes.len() != labels.len() {
            return Err(sample_error(
                sample,
                format!("{} bbox_label_id for {} boxes", labels.len(), boxes.len()),
            ));
        }
        for &l in labels {
            self.class_index(sample, l, "ground-truth")?;
        }
        let ids = result.bbox_class_id.as_deref().unwrap_or_default();
        let scores = result.bbox_confidence.as_deref().unwrap_or_default();
        if scores.len() != ids.len() {
            return Err(sample_error(
                sample,
                "the result's bbox_confidence and bbox_class_id differ in length",
            ));
        }
        for &id in ids {
            self.class_index(sample, id, "result")?;
        }
        let image_id = sample.image_id.0;
        let list = |key: &str, v: &Option<Vec<f64>>| -> Result<Vec<f64>> {
            let v = v.clone().unwrap_or_default();
            if v.len() == ids.len() {
                Ok(v)
            } else {
                Err(sample_error(sample, format!("the result has {} {key} for {} boxes", v.len(), ids.len())))
            }
        };
        let State::Detection { r1, r2 } = &mut self.state else { unreachable!() };
        match boxes {
            Boxes::Rectangle1(gt) => {
                if !r2.is_empty() || result.bbox_phi.is_some() {
                    return Err(sample_error(sample, "rectangle1 and rectangle2 boxes mixed"));
                }
                let (a, b, c, d) = (
                    list("bbox_row1", &result.bbox_row1)?,
                    list("bbox_col1", &result.bbox_col1)?,
                    list("bbox_row2", &result.bbox_row2)?,
                    list("bbox_col2", &result.bbox_col2)?,
                );
                let image = paired(image_id, gt, labels, crowd, ids, scores, |i| {
                    Rect1::new(a[i], b[i], c[i], d[i])
                        .map_err(|e| sample_error(sample, format!("result box {i}: {e}")))
                })?;
                r1.push(image);
            }
            Boxes::Rectangle2(gt) => {
                if !r1.is_empty() || result.bbox_row1.is_some() {
                    return Err(sample_error(sample, "rectangle1 and rectangle2 boxes mixed"));
                }
                let (a, b, c, d, e) = (
                    list("bbox_row", &result.bbox_row)?,
                    list("bbox_col", &result.bbox_col)?,
                    list("bbox_phi", &result.bbox_phi)?,
                    list("bbox_length1", &result.bbox_length1)?,
                    list("bbox_length2", &result.bbox_length2)?,
                );
                let image = paired(image_id, gt, labels, crowd, ids, scores, |i| {
                    Rect2::new(a[i], b[i], c[i], d[i], e[i])
                        .map_err(|err| sample_error(sample, format!("result box {i}: {err}")))
                })?;
                r2.push(image);
            }
        }
        Ok(())
    }

    /// Adds one image of axis-aligned ground truth and detections as they are (COCO files: their own
    /// areas and crowd flags).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an evaluator of another method or one that holds rotated boxes.
    pub fn add_rect1_image(&mut self, image: ImageDetections<Rect1>) -> Result<()> {
        match &mut self.state {
            State::Detection { r1, r2 } if r2.is_empty() => r1.push(image),
            _ => return Err(Error::InvalidInput("rectangle1 boxes for an evaluator of another kind".into())),
        }
        self.count += 1;
        Ok(())
    }

    /// Adds one image of rotated ground truth and detections as they are; see
    /// [`Evaluator::add_rect1_image`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an evaluator of another method or one that holds axis-aligned boxes.
    pub fn add_rect2_image(&mut self, image: ImageDetections<Rect2>) -> Result<()> {
        match &mut self.state {
            State::Detection { r1, r2 } if r1.is_empty() => r2.push(image),
            _ => return Err(Error::InvalidInput("rectangle2 boxes for an evaluator of another kind".into())),
        }
        self.count += 1;
        Ok(())
    }

    /// Computes the measures.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when nothing was added, or (AD) when ok or nok samples are missing.
    pub fn finish(self) -> Result<Evaluation> {
        if self.count == 0 {
            return Err(Error::InvalidInput("no samples were evaluated".into()));
        }
        Ok(match self.state {
            State::Classification(acc) => Evaluation::Classification(acc.compute()),
            State::Segmentation { acc, .. } => Evaluation::Segmentation(acc.compute()),
            State::Detection { r1, r2 } => {
                let p = &self.params;
                let detailed_at = 0.5;
                if r2.is_empty() {
                    Evaluation::Detection(DetectionMeasures {
                        evaluation: evaluate_detections(&r1, &p.detection)?,
                        rotated: false,
                        detailed: if p.detailed {
                            Some(evaluate_detailed(&r1, detailed_at, 0.0)?)
                        } else {
                            None
                        },
                    })
                } else {
                    Evaluation::Detection(DetectionMeasures {
                        evaluation: evaluate_detections(&r2, &p.detection)?,
                        rotated: true,
                        detailed: if p.detailed {
                            Some(evaluate_detailed(&r2, detailed_at, 0.0)?)
                        } else {
                            None
                        },
                    })
                }
            }
            State::Anomaly { scores, nok, maps, with_maps } => {
                let image_auroc = anomaly::auroc(&scores, &nok)?;
                let ok_scores: Vec<f64> = scores.iter().zip(&nok).filter(|p| !*p.1).map(|p| *p.0).collect();
                let nok_scores: Vec<f64> = scores.iter().zip(&nok).filter(|p| *p.1).map(|p| *p.0).collect();
                let classification_thresholds = anomaly::classification_thresholds(&ok_scores, &nok_scores)?;
                let at_thresholds = anomaly::classify_at(&scores, &nok, &classification_thresholds);
                let has_masks = maps.iter().any(|(_, m)| m.data.iter().any(|&v| v > 0));
                let (pixel_auroc, pro) = if with_maps && has_masks {
                    let values: Vec<f64> =
                        maps.iter().flat_map(|(a, _)| a.iter().map(|&v| f64::from(v))).collect();
                    let truth: Vec<bool> =
                        maps.iter().flat_map(|(_, m)| m.data.iter().map(|&v| v > 0)).collect();
                    let images: Vec<&[f32]> = maps.iter().map(|(a, _)| a.as_slice()).collect();
                    let masks: Vec<&dl_data::LabelImage> = maps.iter().map(|(_, m)| m).collect();
                    (
                        Some(anomaly::auroc(&values, &truth)?),
                        Some(anomaly::pro_score(&images, &masks, self.params.pro_max_fpr)?),
                    )
                } else {
                    (None, None)
                };
                Evaluation::Anomaly(AnomalyMeasures {
                    image_auroc,
                    pixel_auroc,
                    pro,
                    classification_thresholds,
                    at_thresholds,
                    ok_scores,
                    nok_scores,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dl_core::ImageId;
    use dl_data::{HostImage, LabelImage};

    fn ids(v: &[u16]) -> Vec<ClassId> {
        v.iter().map(|&i| ClassId::new(i64::from(i)).unwrap()).collect()
    }

    fn sample(id: u64) -> DLSample {
        DLSample::from_image(ImageId(id), HostImage::filled(2, 2, 1, 0.0))
    }

    #[test]
    fn classification_counts_every_pair_and_names_bad_samples() {
        let classes = ids(&[3, 5]);
        let mut ev = Evaluator::new(ModelType::Classification, &classes, &EvaluatorParams::default());
        for (i, (truth, first)) in [(3u16, 3u16), (5, 3), (5, 5)].into_iter().enumerate() {
            let mut s = sample(i as u64);
            s.image_label_id = Some(ids(&[truth]));
            let other = if first == 3 { 5 } else { 3 };
            let r = DLResult { classification_class_ids: Some(ids(&[first, other])), ..Default::default() };
            ev.add(&s, &r).unwrap();
        }
        let mut bad = sample(9);
        bad.image_label_id = Some(ids(&[4]));
        let err = ev.add(&bad, &DLResult::default()).unwrap_err().to_string();
        assert!(err.contains("sample 9") && err.contains("class id 4"), "{err}");
        assert_eq!(ev.len(), 3);
        let e = ev.finish().unwrap();
        let Evaluation::Classification(c) = &e else { panic!("{e:?}") };
        assert!((c.top1_error - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(c.absolute_confusion_matrix, vec![1, 1, 0, 1]);
        assert_eq!(e.comparison_key(), ("top1_error", c.top1_error, true));
        assert!(
            Evaluator::new(ModelType::Classification, &classes, &EvaluatorParams::default())
                .finish()
                .is_err()
        );
    }

    /// DLSample / DLResult pairs give exactly the numbers of `evaluate_detections` on the same boxes.
    #[test]
    fn detection_pairs_equal_the_coco_evaluation() {
        let classes = ids(&[1, 2]);
        let gt = [Rect1::new(0.0, 0.0, 10.0, 10.0).unwrap(), Rect1::new(20.0, 20.0, 40.0, 30.0).unwrap()];
        let dt = [
            (1u16, 0.9, Rect1::new(1.0, 0.0, 10.0, 11.0).unwrap()),
            (2, 0.8, Rect1::new(20.0, 21.0, 39.0, 30.0).unwrap()),
            (2, 0.7, Rect1::new(0.0, 0.0, 10.0, 10.0).unwrap()),
        ];
        let mut s = sample(4);
        s.boxes = Some(Boxes::Rectangle1(gt.to_vec()));
        s.bbox_label_id = Some(ids(&[1, 2]));
        let r = DLResult {
            bbox_class_id: Some(dt.iter().map(|d| ids(&[d.0])[0]).collect()),
            bbox_confidence: Some(dt.iter().map(|d| d.1).collect()),
            bbox_row1: Some(dt.iter().map(|d| d.2.row1()).collect()),
            bbox_col1: Some(dt.iter().map(|d| d.2.col1()).collect()),
            bbox_row2: Some(dt.iter().map(|d| d.2.row2()).collect()),
            bbox_col2: Some(dt.iter().map(|d| d.2.col2()).collect()),
            ..Default::default()
        };
        let params = EvaluatorParams { detailed: true, ..Default::default() };
        let mut ev = Evaluator::new(ModelType::Detection, &classes, &params);
        ev.add(&s, &r).unwrap();
        let Evaluation::Detection(d) = ev.finish().unwrap() else { panic!() };
        let direct = ImageDetections {
            image_id: 4,
            ground_truth: gt
                .iter()
                .zip([1, 2])
                .map(|(b, c)| GroundTruth { class: c, bbox: *b, area: b.area(), iscrowd: false })
                .collect(),
            detections: dt
                .iter()
                .map(|d| Detection { class: u32::from(d.0), bbox: d.2, score: d.1, area: d.2.area() })
                .collect(),
        };
        assert_eq!(
            d.evaluation,
            evaluate_detections(std::slice::from_ref(&direct), &DetectionEvalParams::default()).unwrap()
        );
        assert_eq!(d.detailed, Some(evaluate_detailed(&[direct], 0.5, 0.0).unwrap()));
        assert!(!d.rotated && d.evaluation.mean_ap() > 0.0);
        // A result with a rectangle2 key is refused in a rectangle1 evaluation, and lists must agree.
        let mut ev = Evaluator::new(ModelType::Detection, &classes, &params);
        let err = ev.add(&s, &DLResult { bbox_phi: Some(vec![]), ..r.clone() }).unwrap_err().to_string();
        assert!(err.contains("sample 4") && err.contains("mixed"), "{err}");
        let err = ev.add(&s, &DLResult { bbox_row2: Some(vec![1.0]), ..r }).unwrap_err().to_string();
        assert!(err.contains("bbox_row2"), "{err}");
    }

    #[test]
    fn rotated_pairs_give_soap() {
        let classes = ids(&[0]);
        let gt = Rect2::new(10.0, 10.0, 0.3, 6.0, 3.0).unwrap();
        let mut s = sample(1);
        s.boxes = Some(Boxes::Rectangle2(vec![gt]));
        s.bbox_label_id = Some(ids(&[0]));
        let r = DLResult {
            bbox_class_id: Some(ids(&[0])),
            bbox_confidence: Some(vec![0.9]),
            bbox_row: Some(vec![10.0]),
            bbox_col: Some(vec![10.0]),
            bbox_phi: Some(vec![0.3 + 0.05]),
            bbox_length1: Some(vec![6.0]),
            bbox_length2: Some(vec![3.0]),
            ..Default::default()
        };
        let mut ev = Evaluator::new(ModelType::Detection, &classes, &EvaluatorParams::default());
        ev.add(&s, &r).unwrap();
        let Evaluation::Detection(d) = ev.finish().unwrap() else { panic!() };
        assert!(d.rotated);
        // IoU of a 0.05 rad turn is above 0.9: a true positive at every threshold up to 0.9.
        assert!(
            (d.evaluation.soap[0] - (1.0 - 0.05 / std::f64::consts::PI)).abs() < 1e-9,
            "{:?}",
            d.evaluation.soap
        );
    }

    #[test]
    fn segmentation_measures_leave_out_ignored_classes() {
        let classes = ids(&[0, 1, 255]);
        let params = EvaluatorParams { ignore_class_ids: ids(&[255]), ..Default::default() };
        let mut ev = Evaluator::new(ModelType::Segmentation, &classes, &params);
        let mut s = sample(0);
        s.segmentation_image = Some(LabelImage { width: 2, height: 2, data: vec![0, 1, 1, 255] });
        let pred = |d: Vec<u16>| DLResult {
            segmentation_image: Some(LabelImage { width: 2, height: 2, data: d }),
            ..Default::default()
        };
        ev.add(&s, &pred(vec![0, 1, 0, 0])).unwrap();
        // The ignored pixel's prediction does not matter.
        let mut other = Evaluator::new(ModelType::Segmentation, &classes, &params);
        other.add(&s, &pred(vec![0, 1, 0, 1])).unwrap();
        let (a, b) = (ev.finish().unwrap(), other.finish().unwrap());
        assert_eq!(a, b);
        let Evaluation::Segmentation(e) = a else { panic!() };
        // class 0: TP 1, FP 1 → IoU 1/2; class 1: TP 1, FN 1 → 1/2.
        assert!((e.mean_iou - 0.5).abs() < 1e-12 && (e.pixel_accuracy - 2.0 / 3.0).abs() < 1e-12, "{e:?}");
        let mut ev = Evaluator::new(ModelType::Segmentation, &classes, &params);
        let err = ev.add(&s, &pred(vec![0, 7, 0, 0])).unwrap_err().to_string();
        assert!(err.contains("sample 0") && err.contains("7"), "{err}");
    }

    #[test]
    fn anomaly_scores_and_maps() {
        let mut ev = Evaluator::new(ModelType::AnomalyDetection, &ids(&[0, 1]), &EvaluatorParams::default());
        for (i, (label, score)) in [(0u8, 0.1), (0, 0.4), (1, 0.3), (1, 0.9)].into_iter().enumerate() {
            let mut s = sample(i as u64);
            s.anomaly_label_id = Some(label);
            s.anomaly_ground_truth =
                Some(LabelImage { width: 2, height: 2, data: vec![0, 0, 0, u16::from(label)] });
            let map = HostImage {
                width: 2,
                height: 2,
                channels: 1,
                bit_depth: 32,
                data: vec![0.0, 0.1, 0.0, score as f32],
            };
            ev.add(
                &s,
                &DLResult { anomaly_score: Some(score), anomaly_image: Some(map), ..Default::default() },
            )
            .unwrap();
        }
        let e = ev.finish().unwrap();
        let Evaluation::Anomaly(a) = &e else { panic!() };
        assert!((a.image_auroc - 0.75).abs() < 1e-12);
        assert_eq!(a.classification_thresholds[..2], [0.4, 0.3]);
        // Pixels: the two defect pixels (0.3, 0.9) against 14 ok pixels (max 0.4): 0.9 beats all 14,
        // 0.3 beats 13 of them (all but 0.4) → (14 + 13) / 28.
        assert!((a.pixel_auroc.unwrap() - 27.0 / 28.0).abs() < 1e-12, "{a:?}");
        assert!(a.pro.is_some());
        assert_eq!(e.comparison_key(), ("image_auroc", 0.75, false));
    }
}
