//! Target assignment (torchvision's RetinaNet `Matcher(0.5, 0.4, allow_low_quality_matches=True)`):
//! each anchor takes the ground-truth box it overlaps most; IoU ≥ 0.5 makes it a positive, < 0.4 a
//! negative, in between it is ignored; every box also claims the anchors it overlaps most (so no box is
//! left without a positive). Boxes marked ignore (crowd) are not matched; anchors overlapping them with
//! IoU ≥ 0.5 that would be negatives are ignored instead. Rotated boxes are matched by the IoU of their
//! enclosing axis-parallel boxes (as mmrotate does); exact rotated IoU is used in NMS and evaluation.

/// Label of an anchor that is a negative.
pub const BACKGROUND: i64 = -1;
/// Label of an anchor that takes part in no loss.
pub const IGNORE: i64 = -2;

/// IoU of two pixel-edge boxes `[x1, y1, x2, y2]`.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = a[2].min(b[2]) - a[0].max(b[0]);
    let ih = a[3].min(b[3]) - a[1].max(b[1]);
    if iw <= 0.0 || ih <= 0.0 {
        return 0.0;
    }
    let inter = iw * ih;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

/// Per anchor: the index of the matched ground-truth box (≥ 0), [`BACKGROUND`] or [`IGNORE`].
pub fn match_anchors(anchors: &[[f32; 4]], gt: &[[f32; 4]], ignore: &[bool], fg: f32, bg: f32) -> Vec<i64> {
    let m = anchors.len();
    let mut best = vec![(0f32, -1i64); m];
    let mut gt_best = vec![0f32; gt.len()];
    let mut ignored_overlap = vec![0f32; m];
    for (g, b) in gt.iter().enumerate() {
        for (i, a) in anchors.iter().enumerate() {
            // Cheap reject before the division.
            if a[2] <= b[0] || a[0] >= b[2] || a[3] <= b[1] || a[1] >= b[3] {
                continue;
            }
            let v = iou(a, b);
            if ignore[g] {
                ignored_overlap[i] = ignored_overlap[i].max(v);
            } else {
                if v > best[i].0 {
                    best[i] = (v, g as i64);
                }
                gt_best[g] = gt_best[g].max(v);
            }
        }
    }
    let mut out: Vec<i64> = best
        .iter()
        .zip(&ignored_overlap)
        .map(|(&(v, g), &ig)| {
            if g >= 0 && v >= fg {
                g
            } else if (g >= 0 && v >= bg) || ig >= fg {
                IGNORE
            } else {
                BACKGROUND
            }
        })
        .collect();
    // Low-quality matches: each box's best anchors become positives of their own best box.
    for (g, b) in gt.iter().enumerate() {
        if ignore[g] || gt_best[g] <= 0.0 {
            continue;
        }
        for (i, a) in anchors.iter().enumerate() {
            if best[i].1 >= 0
                && a[2] > b[0]
                && a[0] < b[2]
                && a[3] > b[1]
                && a[1] < b[3]
                && iou(a, b) == gt_best[g]
            {
                out[i] = best[i].1;
            }
        }
    }
    out
}

/// ATSS (Zhang et al. 2020, "Bridging the Gap Between Anchor-based and Anchor-free Detection"): per box
/// and pyramid level (`counts`: anchors per level, in order) the `k` anchors whose centres lie closest to
/// the box's centre are candidates; those whose IoU with the box reaches the candidates' mean + standard
/// deviation and whose centre lies inside the box are positives (an anchor claimed by several boxes takes
/// the one it overlaps most); every other anchor is a negative, or ignored when it overlaps an ignored box
/// with IoU ≥ 0.5.
pub fn match_anchors_atss(
    anchors: &[[f32; 4]],
    counts: &[usize],
    gt: &[[f32; 4]],
    ignore: &[bool],
    k: usize,
) -> Vec<i64> {
    let m = anchors.len();
    let mut best = vec![(0f32, BACKGROUND); m];
    let centre = |b: &[f32; 4]| ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
    // Once per image, not per box: the anchors' centres, and the buffers every box reuses.
    let centres: Vec<(f32, f32)> = anchors.iter().map(centre).collect();
    let mut d: Vec<(f32, usize)> = Vec::with_capacity(counts.iter().copied().max().unwrap_or(0));
    let mut candidates: Vec<(usize, f32)> = Vec::with_capacity(k * counts.len());
    for (g, b) in gt.iter().enumerate() {
        if ignore[g] {
            for (i, a) in anchors.iter().enumerate() {
                if iou(a, b) >= 0.5 && best[i].1 == BACKGROUND {
                    best[i].1 = IGNORE;
                }
            }
            continue;
        }
        let (gx, gy) = centre(b);
        candidates.clear();
        let mut start = 0;
        for &n in counts {
            d.clear();
            d.extend((start..start + n).map(|i| {
                let (ax, ay) = centres[i];
                ((ax - gx).powi(2) + (ay - gy).powi(2), i)
            }));
            let take = k.min(n);
            if take > 0 && take < d.len() {
                d.select_nth_unstable_by(take - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            }
            candidates.extend(d[..take].iter().map(|&(_, i)| (i, iou(&anchors[i], b))));
            start += n;
        }
        if candidates.is_empty() {
            continue;
        }
        let n = candidates.len() as f32;
        let mean = candidates.iter().map(|c| c.1).sum::<f32>() / n;
        let var = candidates.iter().map(|c| (c.1 - mean).powi(2)).sum::<f32>() / (n - 1.0).max(1.0);
        let threshold = mean + var.sqrt();
        for &(i, v) in &candidates {
            let (ax, ay) = centres[i];
            let inside = ax > b[0] && ax < b[2] && ay > b[1] && ay < b[3];
            if v >= threshold && v > 0.0 && inside && (best[i].1 < 0 || v > best[i].0) {
                best[i] = (v, g as i64);
            }
        }
    }
    best.into_iter().map(|(_, g)| g).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_low_quality_matches_and_ignored_boxes() {
        let anchors = [
            [0.0, 0.0, 10.0, 10.0],       // IoU 1 with box 0
            [0.0, 0.0, 10.0, 14.0],       // 0.714 with box 0
            [0.0, 0.0, 10.0, 22.0],       // 0.4545: ignored
            [50.0, 50.0, 60.0, 60.0],     // nothing
            [100.0, 100.0, 130.0, 130.0], // 0.111 with box 1: its best anchor → positive
            [200.0, 200.0, 210.0, 210.0], // on the crowd box: ignored
        ];
        let gt = [[0.0, 0.0, 10.0, 10.0], [100.0, 100.0, 110.0, 110.0], [200.0, 200.0, 210.0, 211.0]];
        let m = match_anchors(&anchors, &gt, &[false, false, true], 0.5, 0.4);
        assert_eq!(m, vec![0, 0, IGNORE, BACKGROUND, 1, IGNORE]);
        assert_eq!(match_anchors(&anchors, &[], &[], 0.5, 0.4), vec![BACKGROUND; 6]);
    }

    /// ATSS by hand: level 0 holds five 10×10 anchors at x = 0, 4, 8, 12, 40, level 1 two 20×20 anchors.
    /// The box [2, 0, 12, 10] takes the 3 nearest anchors of each level as candidates (level 0: x = 0, 4,
    /// 8 with IoU 0.667, 0.667, 0.25; level 1: both, 0.25 and 0); threshold mean 0.367 + standard
    /// deviation 0.292 = 0.659: the two at x = 0 and 4 are positives. A box equal to the anchor at x = 4
    /// (candidates 1, 0.429, 0.429, 0.25, 0; threshold 0.789) takes that anchor alone. Nothing is
    /// ignored but anchors on a crowd box with IoU ≥ 0.5; the rest is background.
    #[test]
    fn atss_thresholds_each_box_at_its_candidates_mean_plus_deviation() {
        let anchors = [
            [0.0, 0.0, 10.0, 10.0],
            [4.0, 0.0, 14.0, 10.0],
            [8.0, 0.0, 18.0, 10.0],
            [12.0, 0.0, 22.0, 10.0],
            [40.0, 0.0, 50.0, 10.0],
            [-5.0, -5.0, 15.0, 15.0],
            [60.0, 0.0, 80.0, 20.0],
        ];
        let counts = [5, 2];
        let b = [2.0, 0.0, 12.0, 10.0];
        let m = match_anchors_atss(&anchors, &counts, &[b], &[false], 3);
        assert_eq!(m, vec![0, 0, BACKGROUND, BACKGROUND, BACKGROUND, BACKGROUND, BACKGROUND]);
        let on = [4.0, 0.0, 14.0, 10.0];
        let m = match_anchors_atss(&anchors, &counts, &[on], &[false], 3);
        assert_eq!(m, vec![BACKGROUND, 0, BACKGROUND, BACKGROUND, BACKGROUND, BACKGROUND, BACKGROUND]);
        // Two boxes: each keeps its own positive; a crowd box on the anchor at 40 ignores it.
        let far = [12.0, 0.0, 22.0, 10.0];
        let crowd = [40.0, 0.0, 50.0, 10.0];
        let m = match_anchors_atss(&anchors, &counts, &[on, far, crowd], &[false, false, true], 3);
        assert_eq!(m, vec![BACKGROUND, 0, BACKGROUND, 1, IGNORE, BACKGROUND, BACKGROUND]);
        assert_eq!(match_anchors_atss(&anchors, &counts, &[], &[], 3), vec![BACKGROUND; 7]);
    }
}
