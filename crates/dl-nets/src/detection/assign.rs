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
}
