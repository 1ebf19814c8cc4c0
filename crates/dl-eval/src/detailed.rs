//! Detailed detection evaluation at one IoU threshold: true positives, false negatives, false positives
//! by cause, and a detection confusion matrix.

use crate::Result;
use crate::detection::{EvalBox, ImageDetections};
use serde::Serialize;

/// Why a detection is a false positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FalsePositiveCause {
    /// It covers no ground truth (IoU < 0.1 with every box).
    Background,
    /// It covers (IoU ≥ threshold) a ground truth of another class.
    ClassConfusion,
    /// It covers a ground truth of its class, but only with 0.1 ≤ IoU < threshold.
    Localization,
    /// It covers (IoU ≥ threshold) a ground truth of its class that a better detection already took.
    Duplicate,
    /// Wrong class and poorly placed: 0.1 ≤ IoU < threshold with a ground truth of another class only.
    Multiple,
}

/// Counts of a detailed evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetailedEvaluation {
    /// IoU threshold used.
    pub iou_threshold: f64,
    /// Class ids of the matrix (ascending), followed by one background row and column.
    pub class_ids: Vec<u32>,
    /// True positives.
    pub num_tp: usize,
    /// False negatives (non-crowd ground truth left unmatched).
    pub num_fn: usize,
    /// False positives by cause.
    pub num_fp_background: usize,
    /// See [`FalsePositiveCause::ClassConfusion`].
    pub num_fp_class_confusion: usize,
    /// See [`FalsePositiveCause::Localization`].
    pub num_fp_localization: usize,
    /// See [`FalsePositiveCause::Duplicate`].
    pub num_fp_duplicate: usize,
    /// See [`FalsePositiveCause::Multiple`].
    pub num_fp_multiple: usize,
    /// Detection confusion matrix, (n + 1) × (n + 1), rows = predicted class (last row: missed, i.e.
    /// false negatives), columns = ground-truth class (last column: background false positives).
    pub confusion_matrix: Vec<u64>,
}

/// Evaluates detections with confidence ≥ `min_confidence` at one IoU threshold, image by image:
/// detections by descending score take the best unmatched ground truth of their class with
/// IoU ≥ `iou_threshold`; the others are false positives by cause; crowd ground truth is ignored.
///
/// # Errors
/// [`crate::Error::InvalidInput`] for a threshold outside (0, 1].
pub fn evaluate_detailed<B: EvalBox>(
    images: &[ImageDetections<B>],
    iou_threshold: f64,
    min_confidence: f64,
) -> Result<DetailedEvaluation> {
    if !(iou_threshold > 0.0 && iou_threshold <= 1.0) {
        return Err(crate::Error::InvalidInput(format!("IoU threshold {iou_threshold} is outside (0, 1]")));
    }
    let class_ids = crate::detection::classes_of(images);
    let n = class_ids.len();
    let idx = |c: u32| class_ids.binary_search(&c).expect("collected above");
    let mut e = DetailedEvaluation {
        iou_threshold,
        class_ids: class_ids.clone(),
        num_tp: 0,
        num_fn: 0,
        num_fp_background: 0,
        num_fp_class_confusion: 0,
        num_fp_localization: 0,
        num_fp_duplicate: 0,
        num_fp_multiple: 0,
        confusion_matrix: vec![0; (n + 1) * (n + 1)],
    };
    let cell = |p: usize, g: usize| p * (n + 1) + g;
    for img in images {
        let gts: Vec<_> = img.ground_truth.iter().filter(|g| !g.iscrowd).collect();
        let mut dts: Vec<_> = img.detections.iter().filter(|d| d.score >= min_confidence).collect();
        dts.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut taken = vec![false; gts.len()];
        for d in &dts {
            let ious: Vec<f64> =
                gts.iter().map(|g| crate::detection::box_iou(&d.bbox, &g.bbox, false)).collect();
            let best_free = (0..gts.len())
                .filter(|&g| !taken[g] && gts[g].class == d.class && ious[g] >= iou_threshold)
                .max_by(|&a, &b| ious[a].total_cmp(&ious[b]));
            if let Some(g) = best_free {
                taken[g] = true;
                e.num_tp += 1;
                e.confusion_matrix[cell(idx(d.class), idx(d.class))] += 1;
                continue;
            }
            let same = |g: usize| gts[g].class == d.class;
            let any = |pred: &dyn Fn(usize) -> bool| (0..gts.len()).any(pred);
            let cause = if any(&|g| same(g) && ious[g] >= iou_threshold) {
                FalsePositiveCause::Duplicate
            } else if any(&|g| !same(g) && ious[g] >= iou_threshold) {
                FalsePositiveCause::ClassConfusion
            } else if any(&|g| same(g) && ious[g] >= 0.1) {
                FalsePositiveCause::Localization
            } else if any(&|g| !same(g) && ious[g] >= 0.1) {
                FalsePositiveCause::Multiple
            } else {
                FalsePositiveCause::Background
            };
            match cause {
                FalsePositiveCause::Background => e.num_fp_background += 1,
                FalsePositiveCause::ClassConfusion => e.num_fp_class_confusion += 1,
                FalsePositiveCause::Localization => e.num_fp_localization += 1,
                FalsePositiveCause::Duplicate => e.num_fp_duplicate += 1,
                FalsePositiveCause::Multiple => e.num_fp_multiple += 1,
            }
            let column = match cause {
                FalsePositiveCause::ClassConfusion => {
                    let g = (0..gts.len())
                        .filter(|&g| !same(g))
                        .max_by(|&a, &b| ious[a].total_cmp(&ious[b]))
                        .expect("one exists");
                    idx(gts[g].class)
                }
                FalsePositiveCause::Background => n,
                _ => idx(d.class),
            };
            if cause == FalsePositiveCause::ClassConfusion || cause == FalsePositiveCause::Background {
                e.confusion_matrix[cell(idx(d.class), column)] += 1;
            }
        }
        for (g, gt) in gts.iter().enumerate() {
            if !taken[g] {
                e.num_fn += 1;
                e.confusion_matrix[cell(n, idx(gt.class))] += 1;
            }
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::{Detection, GroundTruth};
    use dl_core::Rect1;

    #[test]
    fn every_cause_is_found() {
        let b = |c: f64| Rect1::new(0.0, c, 10.0, c + 10.0).unwrap();
        let gt = |class, c| GroundTruth { class, bbox: b(c), area: 100.0, iscrowd: false };
        let dt = |class, c, score| Detection { class, bbox: b(c), score, area: 100.0 };
        let img = ImageDetections {
            image_id: 1,
            ground_truth: vec![gt(0, 0.0), gt(1, 100.0), gt(0, 200.0)],
            detections: vec![
                dt(0, 0.0, 0.9),   // TP
                dt(0, 0.5, 0.8),   // duplicate
                dt(0, 100.0, 0.7), // class confusion (a class-1 box)
                dt(0, 206.0, 0.6), // localization (IoU 4/16)
                dt(0, 500.0, 0.5), // background
                dt(0, 107.0, 0.4), // multiple: poorly on a class-1 box
            ],
        };
        let e = evaluate_detailed(&[img], 0.5, 0.0).unwrap();
        assert_eq!((e.num_tp, e.num_fn), (1, 2));
        assert_eq!(
            (
                e.num_fp_duplicate,
                e.num_fp_class_confusion,
                e.num_fp_localization,
                e.num_fp_background,
                e.num_fp_multiple
            ),
            (1, 1, 1, 1, 1)
        );
        // rows predicted (0, 1, missed), columns gt (0, 1, background)
        assert_eq!(e.confusion_matrix, vec![1, 1, 1, 0, 0, 0, 1, 1, 0]);
    }
}
