//! COCO-style detection evaluation for rectangle1 and rectangle2 boxes (SPEC §7), matching pycocotools.

use crate::{Error, Result};
use dl_core::{Rect1, Rect2};
use rayon::prelude::*;
use serde::Serialize;

/// Boxes the detection evaluation compares.
pub trait EvalBox: Sync + Send {
    /// Intersection area with `other`.
    fn intersection(&self, other: &Self) -> f64;
    /// Area of the box.
    fn box_area(&self) -> f64;
    /// Orientation, for SoAP (rectangle2 only).
    fn angle(&self) -> Option<f64> {
        None
    }
}

impl EvalBox for Rect1 {
    fn intersection(&self, other: &Self) -> f64 {
        self.intersection_area(other)
    }
    fn box_area(&self) -> f64 {
        self.area()
    }
}

impl EvalBox for Rect2 {
    fn intersection(&self, other: &Self) -> f64 {
        self.intersection_area(other)
    }
    fn box_area(&self) -> f64 {
        self.area()
    }
    fn angle(&self) -> Option<f64> {
        Some(self.phi())
    }
}

/// A ground-truth box.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth<B> {
    /// Class id.
    pub class: u32,
    /// The box.
    pub bbox: B,
    /// Area used for the area ranges (COCO's `area`; the box area when unknown).
    pub area: f64,
    /// Crowd region: never a false negative, matches many detections, IoU = intersection / detection area.
    pub iscrowd: bool,
}

/// A detection.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection<B> {
    /// Class id.
    pub class: u32,
    /// The box.
    pub bbox: B,
    /// Confidence.
    pub score: f64,
    /// Area used for the area ranges (COCO results: w·h).
    pub area: f64,
}

/// Ground truth and detections of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDetections<B> {
    /// Image id (images are evaluated in ascending id order).
    pub image_id: u64,
    /// Its ground truth.
    pub ground_truth: Vec<GroundTruth<B>>,
    /// Its detections, in the order given (ties in score keep it).
    pub detections: Vec<Detection<B>>,
}

/// An area range by name, `[min, max]` in pixels².
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AreaRange {
    /// Name (`all`, `small`, …).
    pub name: String,
    /// Smallest area.
    pub min: f64,
    /// Largest area.
    pub max: f64,
}

/// Parameters of [`evaluate_detections`].
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionEvalParams {
    /// IoU thresholds (default 0.50:0.05:0.95).
    pub iou_thresholds: Vec<f64>,
    /// Area ranges (default: `all`).
    pub area_ranges: Vec<AreaRange>,
    /// Detections per image considered, ascending (default: all).
    pub max_num_detections: Vec<usize>,
    /// rectangle2 boxes without a front (a detector with `ignore_direction`): SoAP's angle error is
    /// taken modulo π, so φ and φ ± π, the same box, differ by 0 (default false: modulo 2π).
    pub ignore_direction: bool,
}

/// numpy's `linspace(start, stop, num)`, value for value.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

impl Default for DetectionEvalParams {
    fn default() -> Self {
        Self {
            iou_thresholds: linspace(0.5, 0.95, 10),
            area_ranges: vec![AreaRange { name: "all".into(), min: 0.0, max: 1e10 }],
            max_num_detections: vec![usize::MAX],
            ignore_direction: false,
        }
    }
}

impl DetectionEvalParams {
    /// COCO's own settings: IoU 0.50:0.05:0.95, areas all / small (< 32²) / medium / large (> 96²),
    /// max detections 1, 10, 100.
    pub fn coco() -> Self {
        let r = |name: &str, min: f64, max: f64| AreaRange { name: name.into(), min, max };
        Self {
            iou_thresholds: linspace(0.5, 0.95, 10),
            area_ranges: vec![
                r("all", 0.0, 1e10),
                r("small", 0.0, 1024.0),
                r("medium", 1024.0, 9216.0),
                r("large", 9216.0, 1e10),
            ],
            max_num_detections: vec![1, 10, 100],
            ignore_direction: false,
        }
    }
}

/// Precision and recall tables of a detection evaluation (as pycocotools' `eval`): −1 where a class has
/// no ground truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectionEvaluation {
    /// Class ids, ascending (every class seen in ground truth or detections).
    pub class_ids: Vec<u32>,
    /// IoU thresholds.
    pub iou_thresholds: Vec<f64>,
    /// Area ranges.
    pub area_ranges: Vec<AreaRange>,
    /// Max detections.
    pub max_num_detections: Vec<usize>,
    /// `precision[t][r][k][a][m]` flattened, r over the 101 recall points.
    pub precision: Vec<f64>,
    /// `recall[t][k][a][m]` flattened.
    pub recall: Vec<f64>,
    /// SoAP per threshold (rectangle2): 1 − mean |Δφ| / π of the true positives, −1 without any.
    pub soap: Vec<f64>,
}

const RECALL_POINTS: usize = 101;

/// Per (image, class, area range): what accumulation needs.
struct ImageClassEval {
    scores: Vec<f64>,
    /// matched[t * n + d]
    matched: Vec<bool>,
    ignored: Vec<bool>,
    num_gt: usize,
    angle_errors: Vec<(f64, u32)>,
}

/// Every class id seen in ground truth or detections, ascending.
pub(crate) fn classes_of<B>(images: &[ImageDetections<B>]) -> Vec<u32> {
    let mut ids: Vec<u32> = images
        .iter()
        .flat_map(|i| i.ground_truth.iter().map(|g| g.class).chain(i.detections.iter().map(|d| d.class)))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// IoU of a detection with a ground-truth box; for crowd ground truth, intersection / detection area
/// (pycocotools' convention).
pub(crate) fn box_iou<B: EvalBox>(d: &B, g: &B, crowd: bool) -> f64 {
    let da = d.box_area();
    let inter = d.intersection(g);
    let union = if crowd { da } else { da + g.box_area() - inter };
    if union > 0.0 { inter / union } else { 0.0 }
}

fn iou_matrix<B: EvalBox>(dts: &[&Detection<B>], gts: &[&GroundTruth<B>]) -> Vec<f64> {
    let mut out = Vec::with_capacity(dts.len() * gts.len());
    for d in dts {
        out.extend(gts.iter().map(|g| box_iou(&d.bbox, &g.bbox, g.iscrowd)));
    }
    out
}

/// SoAP's angle error of orientations `a` and `b`: in [0, π], or in [0, π/2] without direction.
fn angle_error(a: f64, b: f64, ignore_direction: bool) -> f64 {
    let e = dl_core::normalize_phi(a - b).abs();
    if ignore_direction { e.min(std::f64::consts::PI - e) } else { e }
}

fn evaluate_image_class<B: EvalBox>(
    gts: &[&GroundTruth<B>],
    dts: &[&Detection<B>],
    params: &DetectionEvalParams,
    area: &AreaRange,
    max_det: usize,
) -> Option<ImageClassEval> {
    if gts.is_empty() && dts.is_empty() {
        return None;
    }
    let gt_ignore: Vec<bool> =
        gts.iter().map(|g| g.iscrowd || g.area < area.min || g.area > area.max).collect();
    // Non-ignored ground truth first (stable).
    let mut gorder: Vec<usize> = (0..gts.len()).collect();
    gorder.sort_by_key(|&i| gt_ignore[i]);
    let gts: Vec<&GroundTruth<B>> = gorder.iter().map(|&i| gts[i]).collect();
    let gt_ignore: Vec<bool> = gorder.iter().map(|&i| gt_ignore[i]).collect();
    let mut dorder: Vec<usize> = (0..dts.len()).collect();
    dorder.sort_by(|&a, &b| dts[b].score.total_cmp(&dts[a].score));
    dorder.truncate(max_det);
    let dts: Vec<&Detection<B>> = dorder.iter().map(|&i| dts[i]).collect();
    let ious = iou_matrix(&dts, &gts);
    let (nt, nd, ng) = (params.iou_thresholds.len(), dts.len(), gts.len());
    let mut matched = vec![false; nt * nd];
    let mut ignored = vec![false; nt * nd];
    let mut angle_errors = Vec::new();
    for (t, &thr) in params.iou_thresholds.iter().enumerate() {
        let mut gt_taken = vec![false; ng];
        for d in 0..nd {
            let mut best = thr.min(1.0 - 1e-10);
            let mut m: Option<usize> = None;
            for g in 0..ng {
                if gt_taken[g] && !gts[g].iscrowd {
                    continue;
                }
                if let Some(mm) = m
                    && !gt_ignore[mm]
                    && gt_ignore[g]
                {
                    break;
                }
                let iou = ious[d * ng + g];
                if iou < best {
                    continue;
                }
                best = iou;
                m = Some(g);
            }
            if let Some(g) = m {
                ignored[t * nd + d] = gt_ignore[g];
                matched[t * nd + d] = true;
                gt_taken[g] = true;
                if !gt_ignore[g]
                    && let (Some(a), Some(b)) = (dts[d].bbox.angle(), gts[g].bbox.angle())
                {
                    angle_errors.push((angle_error(a, b, params.ignore_direction), t as u32));
                }
            }
        }
    }
    for (d, det) in dts.iter().enumerate() {
        let a = det.area;
        if a < area.min || a > area.max {
            for t in 0..nt {
                if !matched[t * nd + d] {
                    ignored[t * nd + d] = true;
                }
            }
        }
    }
    Some(ImageClassEval {
        scores: dts.iter().map(|d| d.score).collect(),
        matched,
        ignored,
        num_gt: gt_ignore.iter().filter(|&&i| !i).count(),
        angle_errors,
    })
}

/// Evaluates detections against ground truth the way pycocotools does (per image and class: detections
/// by descending score matched greedily to the best unmatched ground truth with IoU ≥ t, non-ignored
/// ground truth first; crowd and out-of-range ground truth ignored; AP from the monotone precision
/// envelope at 101 recall points).
///
/// # Errors
/// [`Error::InvalidInput`] for NaN scores or areas, duplicate image ids, or empty parameter lists.
pub fn evaluate_detections<B: EvalBox + Clone>(
    images: &[ImageDetections<B>],
    params: &DetectionEvalParams,
) -> Result<DetectionEvaluation> {
    if params.iou_thresholds.is_empty()
        || params.area_ranges.is_empty()
        || params.max_num_detections.is_empty()
    {
        return Err(Error::InvalidInput(
            "iou_thresholds, area_ranges and max_num_detections must not be empty".into(),
        ));
    }
    let mut order: Vec<usize> = (0..images.len()).collect();
    order.sort_by_key(|&i| images[i].image_id);
    if order.windows(2).any(|w| images[w[0]].image_id == images[w[1]].image_id) {
        return Err(Error::InvalidInput("duplicate image id".into()));
    }
    for img in images {
        if img.detections.iter().any(|d| d.score.is_nan() || d.area.is_nan())
            || img.ground_truth.iter().any(|g| g.area.is_nan())
        {
            return Err(Error::InvalidInput(format!("image {}: NaN score or area", img.image_id)));
        }
    }
    let class_ids = classes_of(images);
    let (nt, nk, na, nm) = (
        params.iou_thresholds.len(),
        class_ids.len(),
        params.area_ranges.len(),
        params.max_num_detections.len(),
    );
    let max_det = *params.max_num_detections.iter().max().expect("not empty");
    // Evaluate every (image, class, area) in parallel; results indexed [k][a][image order].
    let per_image: Vec<Vec<Option<ImageClassEval>>> = order
        .par_iter()
        .map(|&i| {
            let img = &images[i];
            let mut out = Vec::with_capacity(nk * na);
            for &k in &class_ids {
                let gts: Vec<&GroundTruth<B>> = img.ground_truth.iter().filter(|g| g.class == k).collect();
                let dts: Vec<&Detection<B>> = img.detections.iter().filter(|d| d.class == k).collect();
                for area in &params.area_ranges {
                    out.push(evaluate_image_class(&gts, &dts, params, area, max_det));
                }
            }
            out
        })
        .collect();
    let mut precision = vec![-1.0; nt * RECALL_POINTS * nk * na * nm];
    let mut recall = vec![-1.0; nt * nk * na * nm];
    let rec_thresholds = linspace(0.0, 1.0, RECALL_POINTS);
    let cells: Vec<(usize, usize, usize)> =
        (0..nk).flat_map(|k| (0..na).flat_map(move |a| (0..nm).map(move |m| (k, a, m)))).collect();
    let results: Vec<Option<(Vec<f64>, Vec<f64>)>> = cells
        .par_iter()
        .map(|&(k, a, m)| {
            let max_det = params.max_num_detections[m];
            let evals: Vec<&ImageClassEval> =
                per_image.iter().filter_map(|v| v[k * na + a].as_ref()).collect();
            let num_gt: usize = evals.iter().map(|e| e.num_gt).sum();
            if evals.is_empty() || num_gt == 0 {
                return None;
            }
            // Detections of all images, each image's first max_det, by descending score (stable).
            let mut entries: Vec<(f64, usize, usize)> = Vec::new();
            for (ei, e) in evals.iter().enumerate() {
                for d in 0..e.scores.len().min(max_det) {
                    entries.push((e.scores[d], ei, d));
                }
            }
            entries.sort_by(|a, b| b.0.total_cmp(&a.0));
            let mut prec = vec![0.0; nt * RECALL_POINTS];
            let mut rec = vec![0.0; nt];
            for t in 0..nt {
                let (mut tp, mut fp) = (0usize, 0usize);
                let mut rc = Vec::with_capacity(entries.len());
                let mut pr = Vec::with_capacity(entries.len());
                for &(_, ei, d) in &entries {
                    let e = evals[ei];
                    let nd = e.scores.len();
                    if e.ignored[t * nd + d] {
                        // Ignored detections still take a slot in pycocotools' cumulative sums (as 0, 0).
                    } else if e.matched[t * nd + d] {
                        tp += 1;
                    } else {
                        fp += 1;
                    }
                    rc.push(tp as f64 / num_gt as f64);
                    pr.push(tp as f64 / (fp as f64 + tp as f64 + f64::EPSILON));
                }
                rec[t] = rc.last().copied().unwrap_or(0.0);
                for i in (1..pr.len()).rev() {
                    if pr[i] > pr[i - 1] {
                        pr[i - 1] = pr[i];
                    }
                }
                for (ri, &thr) in rec_thresholds.iter().enumerate() {
                    let pi = rc.partition_point(|&r| r < thr);
                    if pi >= pr.len() {
                        break;
                    }
                    prec[t * RECALL_POINTS + ri] = pr[pi];
                }
            }
            Some((prec, rec))
        })
        .collect();
    for (&(k, a, m), r) in cells.iter().zip(results) {
        if let Some((prec, rec)) = r {
            for t in 0..nt {
                for ri in 0..RECALL_POINTS {
                    precision[(((t * RECALL_POINTS + ri) * nk + k) * na + a) * nm + m] =
                        prec[t * RECALL_POINTS + ri];
                }
                recall[((t * nk + k) * na + a) * nm + m] = rec[t];
            }
        }
    }
    // SoAP over the `all`-area, largest-max-detection matches.
    let mut soap = vec![-1.0; nt];
    let mut sums = vec![(0.0, 0usize); nt];
    for v in &per_image {
        for k in 0..nk {
            if let Some(e) = &v[k * na] {
                for &(err, t) in &e.angle_errors {
                    sums[t as usize].0 += err;
                    sums[t as usize].1 += 1;
                }
            }
        }
    }
    for (t, (sum, n)) in sums.into_iter().enumerate() {
        if n > 0 {
            soap[t] = 1.0 - sum / n as f64 / std::f64::consts::PI;
        }
    }
    Ok(DetectionEvaluation {
        class_ids,
        iou_thresholds: params.iou_thresholds.clone(),
        area_ranges: params.area_ranges.clone(),
        max_num_detections: params.max_num_detections.clone(),
        precision,
        recall,
        soap,
    })
}

fn mean_defined(v: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = v.filter(|&x| x > -1.0).fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { -1.0 } else { sum / n as f64 }
}

impl DetectionEvaluation {
    fn dims(&self) -> (usize, usize, usize, usize) {
        (
            self.iou_thresholds.len(),
            self.class_ids.len(),
            self.area_ranges.len(),
            self.max_num_detections.len(),
        )
    }

    /// AP averaged over classes with ground truth, recall points and the given thresholds (all when
    /// `None`), for area range `a` and max-detection index `m`; −1 when undefined.
    pub fn average_precision(
        &self,
        threshold: Option<usize>,
        class: Option<usize>,
        a: usize,
        m: usize,
    ) -> f64 {
        let (nt, nk, na, nm) = self.dims();
        let ts: Vec<usize> = threshold.map_or((0..nt).collect(), |t| vec![t]);
        let ks: Vec<usize> = class.map_or((0..nk).collect(), |k| vec![k]);
        mean_defined(ts.iter().flat_map(|&t| {
            let ks = ks.clone();
            (0..RECALL_POINTS).flat_map(move |r| {
                ks.clone()
                    .into_iter()
                    .map(move |k| self.precision[(((t * RECALL_POINTS + r) * nk + k) * na + a) * nm + m])
            })
        }))
    }

    /// Recall averaged like [`DetectionEvaluation::average_precision`].
    pub fn average_recall(&self, threshold: Option<usize>, a: usize, m: usize) -> f64 {
        let (nt, nk, na, nm) = self.dims();
        let ts: Vec<usize> = threshold.map_or((0..nt).collect(), |t| vec![t]);
        mean_defined(
            ts.iter().flat_map(|&t| (0..nk).map(move |k| self.recall[((t * nk + k) * na + a) * nm + m])),
        )
    }

    /// `mean_ap`: AP over all thresholds and classes with ground truth (first area range, largest
    /// max detections).
    pub fn mean_ap(&self) -> f64 {
        self.average_precision(None, None, 0, self.max_num_detections.len() - 1)
    }

    /// COCO's 12 summary numbers (AP, AP50, AP75, AP small/medium/large, AR1, AR10, AR100, AR
    /// small/medium/large), for an evaluation made with [`DetectionEvalParams::coco`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the evaluation does not have COCO's settings.
    pub fn coco_summary(&self) -> Result<[f64; 12]> {
        let area = |name: &str| self.area_ranges.iter().position(|a| a.name == name);
        let md = |n: usize| self.max_num_detections.iter().position(|&m| m == n);
        let t = |v: f64| self.iou_thresholds.iter().position(|&x| (x - v).abs() < 1e-12);
        let (Some(all), Some(s), Some(me), Some(l), Some(m1), Some(m10), Some(m100), Some(t50), Some(t75)) = (
            area("all"),
            area("small"),
            area("medium"),
            area("large"),
            md(1),
            md(10),
            md(100),
            t(0.5),
            t(0.75),
        ) else {
            return Err(Error::InvalidInput("the evaluation was not made with COCO's settings".into()));
        };
        Ok([
            self.average_precision(None, None, all, m100),
            self.average_precision(Some(t50), None, all, m100),
            self.average_precision(Some(t75), None, all, m100),
            self.average_precision(None, None, s, m100),
            self.average_precision(None, None, me, m100),
            self.average_precision(None, None, l, m100),
            self.average_recall(None, all, m1),
            self.average_recall(None, all, m10),
            self.average_recall(None, all, m100),
            self.average_recall(None, s, m100),
            self.average_recall(None, me, m100),
            self.average_recall(None, l, m100),
        ])
    }

    /// HALCON-style result: `mean_ap`, `ap_iou_05`, `ap_iou_075`, per-class APs, per-threshold APs and
    /// `soap` (rectangle2), as JSON with HALCON's key names.
    pub fn to_halcon_json(&self) -> serde_json::Value {
        let m = self.max_num_detections.len() - 1;
        let t = |v: f64| self.iou_thresholds.iter().position(|&x| (x - v).abs() < 1e-12);
        let per_threshold: serde_json::Map<String, serde_json::Value> = self
            .iou_thresholds
            .iter()
            .enumerate()
            .map(|(ti, &thr)| {
                let classes: serde_json::Map<String, serde_json::Value> = self
                    .class_ids
                    .iter()
                    .enumerate()
                    .map(|(k, id)| (id.to_string(), serde_json::json!(self.average_precision(Some(ti), Some(k), 0, m))))
                    .collect();
                (
                    format!("iou_{}", format!("{thr:.2}").trim_end_matches('0').replace('.', "")),
                    serde_json::json!({"mean_ap": self.average_precision(Some(ti), None, 0, m), "class_ap": classes}),
                )
            })
            .collect();
        let class_ap: Vec<f64> =
            (0..self.class_ids.len()).map(|k| self.average_precision(None, Some(k), 0, m)).collect();
        let soap_defined: Vec<f64> = self.soap.iter().copied().filter(|&s| s > -1.0).collect();
        serde_json::json!({
            "mean_ap": self.mean_ap(),
            "ap_iou_05": t(0.5).map_or(-1.0, |i| self.average_precision(Some(i), None, 0, m)),
            "ap_iou_075": t(0.75).map_or(-1.0, |i| self.average_precision(Some(i), None, 0, m)),
            "class_ids": self.class_ids,
            "class_ap": class_ap,
            "per_threshold": per_threshold,
            "soap": if soap_defined.is_empty() { -1.0 } else { soap_defined.iter().sum::<f64>() / soap_defined.len() as f64 },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(r1: f64, c1: f64, r2: f64, c2: f64) -> Rect1 {
        Rect1::new(r1, c1, r2, c2).unwrap()
    }

    #[test]
    fn perfect_and_half_detections() {
        let gt = |b: Rect1| GroundTruth { class: 1, area: b.area(), bbox: b, iscrowd: false };
        let dt = |b: Rect1, score| Detection { class: 1, area: b.area(), bbox: b, score };
        let images = vec![
            ImageDetections {
                image_id: 1,
                ground_truth: vec![gt(r(0.0, 0.0, 10.0, 10.0))],
                detections: vec![dt(r(0.0, 0.0, 10.0, 10.0), 0.9)],
            },
            ImageDetections {
                image_id: 2,
                ground_truth: vec![gt(r(0.0, 0.0, 10.0, 10.0))],
                detections: vec![],
            },
        ];
        let e = evaluate_detections(&images, &DetectionEvalParams::default()).unwrap();
        // Recall 0.5 at precision 1: 51 of 101 recall points.
        assert!((e.mean_ap() - 51.0 / 101.0).abs() < 1e-12, "{}", e.mean_ap());
        assert!((e.average_recall(None, 0, 0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn crowd_ground_truth_absorbs_detections() {
        let images = vec![ImageDetections {
            image_id: 1,
            ground_truth: vec![GroundTruth {
                class: 0,
                bbox: r(0.0, 0.0, 100.0, 100.0),
                area: 1e4,
                iscrowd: true,
            }],
            detections: vec![Detection { class: 0, bbox: r(0.0, 0.0, 10.0, 10.0), score: 0.5, area: 100.0 }],
        }];
        let e = evaluate_detections(&images, &DetectionEvalParams::default()).unwrap();
        assert_eq!(e.mean_ap(), -1.0, "no non-crowd ground truth: undefined");
    }
}
