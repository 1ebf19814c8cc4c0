//! Anomaly-detection measures (SPEC §7): image and pixel AUROC, PRO up to a false-positive rate,
//! threshold estimation, thresholding of results, confusion at a threshold, score histograms.

use crate::{Error, Result};
use dl_data::{DLResult, LabelImage};
use serde::Serialize;

/// The ROC curve (false-positive rates, true-positive rates) over the distinct scores, highest first,
/// starting at (0, 0), as scikit-learn's `roc_curve` with `drop_intermediate=False`.
///
/// # Errors
/// [`Error::InvalidInput`] for different lengths, NaN scores, or labels of one kind only.
pub fn roc_curve(scores: &[f64], positive: &[bool]) -> Result<(Vec<f64>, Vec<f64>)> {
    let (mut fpr, mut tpr) = (vec![0.0], vec![0.0]);
    roc_points(scores, positive, |f, t| {
        fpr.push(f);
        tpr.push(t);
    })?;
    Ok((fpr, tpr))
}

/// Area under the ROC curve (trapezoids over distinct thresholds; ties count half), as scikit-learn's
/// `roc_auc_score`.
///
/// # Errors
/// As [`roc_curve`].
pub fn auroc(scores: &[f64], positive: &[bool]) -> Result<f64> {
    let (mut area, mut prev) = (0.0, (0.0, 0.0));
    roc_points(scores, positive, |f, t| {
        area += (f - prev.0) * (t + prev.1) / 2.0;
        prev = (f, t);
    })?;
    Ok(area)
}

/// Calls `point(fpr, tpr)` at each distinct score, highest first (after the curve's start at (0, 0)).
/// The (score, label) pairs are sorted in parallel, by value rather than through an index: millions of
/// anomaly-image pixels take a fraction of a second.
fn roc_points(scores: &[f64], positive: &[bool], mut point: impl FnMut(f64, f64)) -> Result<()> {
    use rayon::slice::ParallelSliceMut;
    if scores.len() != positive.len() {
        return Err(Error::InvalidInput(format!("{} scores, {} labels", scores.len(), positive.len())));
    }
    if scores.iter().any(|s| s.is_nan()) {
        return Err(Error::InvalidInput("NaN score".into()));
    }
    let p = positive.iter().filter(|&&x| x).count();
    let n = positive.len() - p;
    if p == 0 || n == 0 {
        return Err(Error::InvalidInput("AUROC needs both ok and nok samples".into()));
    }
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(positive.iter().copied()).collect();
    pairs.par_sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    for (i, &(score, pos)) in pairs.iter().enumerate() {
        if pos {
            tp += 1
        } else {
            fp += 1
        }
        if i + 1 == pairs.len() || pairs[i + 1].0 != score {
            point(fp as f64 / n as f64, tp as f64 / p as f64);
        }
    }
    Ok(())
}

/// Connected regions (8-neighbourhood) of the non-zero pixels of a mask (whatever their values): a
/// region index per pixel (`u32::MAX` for background) and the region sizes. Labelled by imageproc.
pub fn connected_regions(mask: &LabelImage) -> (Vec<u32>, Vec<usize>) {
    let (w, h) = (mask.width as u32, mask.height as u32);
    let binary: Vec<u8> = mask.data.iter().map(|&v| u8::from(v != 0)).collect();
    let Some(binary) = image::GrayImage::from_raw(w, h, binary) else {
        return (vec![u32::MAX; mask.data.len()], Vec::new());
    };
    let regions = imageproc::region_labelling::connected_components(
        &binary,
        imageproc::region_labelling::Connectivity::Eight,
        image::Luma([0u8]),
    );
    // imageproc numbers regions 1 … n (0 = background).
    let mut sizes = Vec::new();
    let labels = regions
        .into_raw()
        .into_iter()
        .map(|l| {
            if l == 0 {
                return u32::MAX;
            }
            let i = l as usize - 1;
            if sizes.len() <= i {
                sizes.resize(i + 1, 0);
            }
            sizes[i] += 1;
            l - 1
        })
        .collect();
    (labels, sizes)
}

/// Per-region overlap integrated up to `max_fpr` and divided by it (MVTec AD's PRO score): pixels by
/// descending anomaly score; each ground-truth region of every image counts equally; the curve
/// (FPR over all normal pixels, mean region overlap) is integrated with trapezoids, interpolated at
/// `max_fpr`.
///
/// # Errors
/// [`Error::InvalidInput`] for size mismatches, no defect region, no normal pixel, or a bad `max_fpr`.
pub fn pro_score(anomaly_images: &[&[f32]], masks: &[&LabelImage], max_fpr: f64) -> Result<f64> {
    if anomaly_images.len() != masks.len() || !(max_fpr > 0.0 && max_fpr <= 1.0) {
        return Err(Error::InvalidInput("PRO needs one mask per anomaly image and 0 < max_fpr ≤ 1".into()));
    }
    let mut pixels: Vec<(f32, u32)> = Vec::new(); // (score, global region or MAX)
    let mut region_sizes: Vec<usize> = Vec::new();
    for (img, mask) in anomaly_images.iter().zip(masks) {
        if img.len() != mask.data.len() {
            return Err(Error::InvalidInput("an anomaly image and its mask differ in size".into()));
        }
        let (labels, sizes) = connected_regions(mask);
        let base = region_sizes.len() as u32;
        region_sizes.extend(sizes);
        pixels.extend(
            img.iter().zip(labels).map(|(&s, l)| (s, if l == u32::MAX { u32::MAX } else { base + l })),
        );
    }
    let negatives = pixels.iter().filter(|p| p.1 == u32::MAX).count();
    if region_sizes.is_empty() || negatives == 0 {
        return Err(Error::InvalidInput("PRO needs defect regions and normal pixels".into()));
    }
    if pixels.iter().any(|p| p.0.is_nan()) {
        return Err(Error::InvalidInput("NaN anomaly score".into()));
    }
    rayon::slice::ParallelSliceMut::par_sort_unstable_by(pixels.as_mut_slice(), |a, b| b.0.total_cmp(&a.0));
    let nr = region_sizes.len() as f64;
    let (mut fpr, mut pro) = (0.0f64, 0.0f64);
    let (mut prev_fpr, mut prev_pro) = (0.0f64, 0.0f64);
    let mut area = 0.0;
    for (i, &(score, region)) in pixels.iter().enumerate() {
        if region == u32::MAX {
            fpr += 1.0 / negatives as f64;
        } else {
            pro += 1.0 / (region_sizes[region as usize] as f64 * nr);
        }
        let last_of_score = i + 1 == pixels.len() || pixels[i + 1].0 != score;
        if !last_of_score {
            continue;
        }
        if fpr >= max_fpr {
            let t = if fpr > prev_fpr { (max_fpr - prev_fpr) / (fpr - prev_fpr) } else { 0.0 };
            let pro_at = prev_pro + t * (pro - prev_pro);
            area += (max_fpr - prev_fpr) * (prev_pro + pro_at) / 2.0;
            return Ok(area / max_fpr);
        }
        area += (fpr - prev_fpr) * (prev_pro + pro) / 2.0;
        (prev_fpr, prev_pro) = (fpr, pro);
    }
    Ok(area / max_fpr)
}

/// HALCON's anomaly thresholds (`compute_dl_anomaly_thresholds`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyThresholds {
    /// min(mean + 4·std of the validation anomaly pixels, 1).
    pub segmentation_threshold: f64,
    /// [max ok score, min nok score, the threshold minimising FPR + FNR]; an image is 'nok' when its
    /// score is greater than the threshold.
    pub classification_thresholds: Vec<f64>,
}

/// Estimates thresholds from validation results: the anomaly pixels of (ok) validation images, and the
/// image scores of ok and nok validation images.
///
/// # Errors
/// [`Error::InvalidInput`] when a list is empty or holds NaN.
pub fn compute_dl_anomaly_thresholds(
    pixels: &[f32],
    ok_scores: &[f64],
    nok_scores: &[f64],
) -> Result<AnomalyThresholds> {
    if pixels.is_empty() || ok_scores.is_empty() || nok_scores.is_empty() {
        return Err(Error::InvalidInput("thresholds need anomaly pixels and ok and nok scores".into()));
    }
    if pixels.iter().any(|p| p.is_nan()) || ok_scores.iter().chain(nok_scores).any(|s| s.is_nan()) {
        return Err(Error::InvalidInput("NaN anomaly value".into()));
    }
    let n = pixels.len() as f64;
    let mean = pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / n;
    let var = pixels.iter().map(|&p| (f64::from(p) - mean).powi(2)).sum::<f64>() / n;
    Ok(AnomalyThresholds {
        segmentation_threshold: (mean + 4.0 * var.sqrt()).min(1.0),
        classification_thresholds: classification_thresholds(ok_scores, nok_scores)?,
    })
}

/// The names of [`classification_thresholds`]' three values, in order (for reports and plots).
pub const CLASSIFICATION_THRESHOLD_NAMES: [&str; 3] = ["max ok score", "min nok score", "min FPR + FNR"];

/// HALCON's image classification thresholds: [max ok score, min nok score, the threshold minimising
/// FPR + FNR (the smallest on ties)]; an image is 'nok' when its score is greater than the threshold.
///
/// # Errors
/// [`Error::InvalidInput`] when a list is empty or holds NaN.
pub fn classification_thresholds(ok_scores: &[f64], nok_scores: &[f64]) -> Result<Vec<f64>> {
    if ok_scores.is_empty() || nok_scores.is_empty() || ok_scores.iter().chain(nok_scores).any(|s| s.is_nan())
    {
        return Err(Error::InvalidInput("thresholds need ok and nok scores without NaN".into()));
    }
    let max_ok = ok_scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min_nok = nok_scores.iter().copied().fold(f64::INFINITY, f64::min);
    let mut candidates: Vec<f64> = ok_scores.iter().chain(nok_scores).copied().collect();
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    let cost = |t: f64| {
        let fp = ok_scores.iter().filter(|&&s| s > t).count() as f64 / ok_scores.len() as f64;
        let fnr = nok_scores.iter().filter(|&&s| s <= t).count() as f64 / nok_scores.len() as f64;
        fp + fnr
    };
    let best = candidates.iter().copied().fold((f64::INFINITY, candidates[0]), |(bc, bt), t| {
        let c = cost(t);
        if c < bc { (c, t) } else { (bc, bt) }
    });
    Ok(vec![max_ok, min_nok, best.1])
}

/// Sets `anomaly_region` (1 where the anomaly image exceeds `segmentation_threshold`), `anomaly_class`
/// and `anomaly_class_id` (nok when the score exceeds `classification_threshold`) on a result
/// (`threshold_dl_anomaly_results`).
///
/// # Errors
/// [`Error::InvalidInput`] when the result has no anomaly score or image.
pub fn threshold_dl_anomaly_results(
    result: &mut DLResult,
    segmentation_threshold: f64,
    classification_threshold: f64,
) -> Result<()> {
    if result.threshold_anomaly(segmentation_threshold, classification_threshold) {
        Ok(())
    } else {
        Err(Error::InvalidInput("the result has no anomaly_image or anomaly_score".into()))
    }
}

/// Image classification at a threshold: confusion matrix (rows predicted ok/nok, columns ground truth
/// ok/nok), and nok precision and recall (−1 when undefined).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyClassification {
    /// The threshold.
    pub threshold: f64,
    /// [[ok→ok, nok gt predicted ok], [ok gt predicted nok, nok→nok]] row-major.
    pub confusion_matrix: [u64; 4],
    /// nok precision.
    pub precision: f64,
    /// nok recall.
    pub recall: f64,
}

/// Classification at each threshold (nok when score > threshold).
pub fn classify_at(scores: &[f64], nok: &[bool], thresholds: &[f64]) -> Vec<AnomalyClassification> {
    thresholds
        .iter()
        .map(|&t| {
            let mut m = [0u64; 4];
            for (&s, &g) in scores.iter().zip(nok) {
                m[usize::from(s > t) * 2 + usize::from(g)] += 1;
            }
            let (tp, fp, fnn) = (m[3] as f64, m[2] as f64, m[1] as f64);
            AnomalyClassification {
                threshold: t,
                confusion_matrix: m,
                precision: if tp + fp > 0.0 { tp / (tp + fp) } else { -1.0 },
                recall: if tp + fnn > 0.0 { tp / (tp + fnn) } else { -1.0 },
            }
        })
        .collect()
}

/// A histogram of `values` over `bins` equal bins spanning [min, max] of the values.
pub fn histogram(values: &[f64], bins: usize) -> (f64, f64, Vec<u64>) {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let mut counts = vec![0u64; bins.max(1)];
    if finite.is_empty() {
        return (0.0, 0.0, counts);
    }
    let width = (hi - lo).max(f64::MIN_POSITIVE);
    for v in finite {
        let i = (((v - lo) / width) * bins as f64).floor() as usize;
        counts[i.min(bins - 1)] += 1;
    }
    (lo, hi, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_hand_values_with_ties() {
        assert_eq!(auroc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap(), 0.75);
        assert_eq!(auroc(&[0.5, 0.5], &[false, true]).unwrap(), 0.5);
        assert!(auroc(&[0.5], &[true]).is_err());
    }

    #[test]
    fn pro_of_a_perfect_and_a_useless_detector() {
        let mask = LabelImage { width: 4, height: 1, data: vec![0, 1, 0, 1] };
        let perfect = [0.0f32, 1.0, 0.0, 1.0];
        assert!((pro_score(&[&perfect], &[&mask], 0.3).unwrap() - 1.0).abs() < 1e-12);
        let inverted = [1.0f32, 0.0, 1.0, 0.0];
        assert_eq!(pro_score(&[&inverted], &[&mask], 0.3).unwrap(), 0.0);
        // Two 4-connected but 8-connected diagonal pixels form one region.
        let diag = LabelImage { width: 2, height: 2, data: vec![1, 0, 0, 1] };
        assert_eq!(connected_regions(&diag).1, vec![2]);
        // Touching pixels of different non-zero values form one region; separate ones do not.
        let two = LabelImage { width: 4, height: 2, data: vec![1, 2, 0, 0, 0, 0, 0, 7] };
        let (labels, sizes) = connected_regions(&two);
        assert_eq!(sizes, vec![2, 1]);
        assert_eq!(labels, [0, 0, u32::MAX, u32::MAX, u32::MAX, u32::MAX, u32::MAX, 1]);
    }

    #[test]
    fn thresholds_follow_halcon() {
        let t = compute_dl_anomaly_thresholds(&[0.1, 0.1, 0.1, 0.1], &[0.1, 0.2, 0.3], &[0.25, 0.6, 0.7])
            .unwrap();
        assert!((t.segmentation_threshold - 0.1).abs() < 1e-7);
        assert_eq!(t.classification_thresholds[..2], [0.3, 0.25]);
        // t = 0.3: FPR 0, FNR 1/3; t = 0.2: FPR 1/3, FNR 0 → the smaller threshold wins the tie.
        assert_eq!(t.classification_thresholds[2], 0.2);
        let c = classify_at(&[0.1, 0.9], &[false, true], &[0.5]);
        assert_eq!((c[0].confusion_matrix, c[0].precision, c[0].recall), ([1, 0, 0, 1], 1.0, 1.0));
    }
}
