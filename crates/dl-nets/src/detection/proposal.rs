//! `determine_dl_model_detection_param`: anchor parameters proposed from a dataset's boxes.
//!
//! Coverage of a configuration = the share of boxes that have an anchor with IoU ≥ 0.5 under the
//! detector's own matching (axis-aligned IoU; for rotated boxes the IoU of the enclosing axis-parallel
//! boxes), computed against the anchors the detector really places (torchvision's grid, rounded sizes)
//! at the grid positions around each box's centre. The proposal searches levels from the box sizes,
//! 1 … 4 subscales, aspect-ratio sets clustered from the boxes (k-means in log space, k = 1 … 5, plus
//! HALCON's default 1, 2, 0.5) and, for rotated boxes, angle sets; among the configurations within half a
//! percent of the highest coverage it keeps the one that places the fewest anchors (anchors per position
//! times positions over the levels).

use super::anchors;
use super::assign::iou;
use serde::Serialize;
use std::f64::consts::PI;

/// A box in network coordinates: pixel-edge centre, full width (along θ) and height, θ (0 for
/// axis-aligned boxes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxShape {
    /// Centre x (column + 0.5).
    pub cx: f64,
    /// Centre y (row + 0.5).
    pub cy: f64,
    /// Full width.
    pub w: f64,
    /// Full height.
    pub h: f64,
    /// Angle.
    pub theta: f64,
}

/// Anchor parameters and their coverage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnchorProposal {
    /// Finest level.
    pub min_level: i64,
    /// Coarsest level.
    pub max_level: i64,
    /// Sizes per level.
    pub anchor_num_subscales: usize,
    /// Aspect ratios (height / width).
    pub anchor_aspect_ratios: Vec<f64>,
    /// Angles (rotated boxes; `[0]` otherwise).
    pub anchor_angles: Vec<f64>,
    /// Share of boxes with an anchor of IoU ≥ 0.5.
    pub coverage: f64,
}

fn enclosing(cx: f64, cy: f64, w: f64, h: f64, t: f64) -> [f32; 4] {
    let (s, c) = t.sin_cos();
    let hw = 0.5 * (w * c.abs() + h * s.abs());
    let hh = 0.5 * (w * s.abs() + h * c.abs());
    [cx - hw, cy - hh, cx + hw, cy + hh].map(|v| v as f32)
}

/// The coverage of an anchor configuration on `boxes` for an input of `width` × `height`.
pub fn coverage(boxes: &[BoxShape], (width, height): (f64, f64), p: &AnchorProposal, rotated: bool) -> f64 {
    if boxes.is_empty() {
        return 1.0;
    }
    let angles: &[f64] = if rotated { &p.anchor_angles } else { &[0.0] };
    let levels: Vec<(f64, Vec<[f32; 4]>)> = (p.min_level..=p.max_level)
        .map(|l| {
            let base = anchors::base_anchors(
                &anchors::level_sizes(l, p.anchor_num_subscales),
                &p.anchor_aspect_ratios,
            );
            let mut shapes = Vec::new();
            for b in &base {
                let (w, h) = (f64::from(b[2] - b[0]), f64::from(b[3] - b[1]));
                for &t in angles {
                    // Offsets of the (rotated) anchor's enclosing box from its grid point.
                    let (cx, cy) = (f64::from(b[0]) + 0.5 * w, f64::from(b[1]) + 0.5 * h);
                    shapes.push(enclosing(cx, cy, w, h, t));
                }
            }
            ((1i64 << l) as f64, shapes)
        })
        .collect();
    let covered = boxes
        .iter()
        .filter(|b| {
            let gt = enclosing(b.cx, b.cy, b.w, b.h, b.theta);
            levels.iter().any(|(s, shapes)| {
                let (nx, ny) = ((width / s).ceil().max(1.0), (height / s).ceil().max(1.0));
                let xs = [(b.cx / s).floor(), (b.cx / s).ceil()].map(|v| v.clamp(0.0, nx - 1.0));
                let ys = [(b.cy / s).floor(), (b.cy / s).ceil()].map(|v| v.clamp(0.0, ny - 1.0));
                xs.iter().any(|&x| {
                    ys.iter().any(|&y| {
                        let (ox, oy) = ((x * s) as f32, (y * s) as f32);
                        shapes.iter().any(|a| iou(&[a[0] + ox, a[1] + oy, a[2] + ox, a[3] + oy], &gt) >= 0.5)
                    })
                })
            })
        })
        .count();
    covered as f64 / boxes.len() as f64
}

/// k-means (k centres, 30 rounds, quantile start) of `values`.
fn kmeans(values: &[f64], k: usize) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut centres: Vec<f64> = (0..k).map(|i| sorted[((2 * i + 1) * sorted.len()) / (2 * k)]).collect();
    for _ in 0..30 {
        let mut sums = vec![(0.0, 0usize); k];
        for &v in values {
            let j = (0..k)
                .min_by(|&a, &b| (v - centres[a]).abs().total_cmp(&(v - centres[b]).abs()))
                .unwrap_or(0);
            sums[j].0 += v;
            sums[j].1 += 1;
        }
        for (c, (s, n)) in centres.iter_mut().zip(sums) {
            if n > 0 {
                *c = s / n as f64;
            }
        }
    }
    centres.sort_by(f64::total_cmp);
    centres.dedup_by(|a, b| (*a - *b).abs() < 1e-3);
    centres
}

/// The proposal for `boxes` (see the module documentation); `finest_level` is the backbone's finest
/// usable level.
pub fn propose(boxes: &[BoxShape], size: (f64, f64), rotated: bool, finest_level: i64) -> AnchorProposal {
    let ideal: Vec<i64> =
        boxes.iter().map(|b| ((b.w * b.h).sqrt().max(1.0) / 4.0).log2().floor() as i64).collect();
    let lo = ideal.iter().copied().min().unwrap_or(2).clamp(finest_level, 10);
    let hi = ideal.iter().copied().max().unwrap_or(4).clamp(lo, 10);
    let log_ratios: Vec<f64> = boxes.iter().map(|b| (b.h / b.w).ln()).collect();
    let mut ratio_sets: Vec<Vec<f64>> = vec![vec![1.0, 2.0, 0.5]];
    if !log_ratios.is_empty() {
        for k in 1..=5.min(log_ratios.len()) {
            let set: Vec<f64> =
                kmeans(&log_ratios, k).into_iter().map(|v| (v.exp() * 100.0).round() / 100.0).collect();
            if !ratio_sets.contains(&set) {
                ratio_sets.push(set);
            }
        }
    }
    let angle_sets: Vec<Vec<f64>> = if rotated {
        vec![
            vec![0.0],
            vec![-PI / 4.0, 0.0, PI / 4.0, PI / 2.0],
            (0..6).map(|i| -PI / 2.0 + PI * f64::from(i) / 6.0 + PI / 6.0).collect(),
        ]
    } else {
        vec![vec![0.0]]
    };
    let mut candidates: Vec<(AnchorProposal, f64)> = Vec::new();
    for (min_level, max_level) in
        [(lo, hi), (lo, (hi + 1).min(10)), ((lo - 1).max(finest_level), hi), ((lo + 1).min(hi), hi)]
    {
        for n in 1..=4 {
            for ratios in &ratio_sets {
                for angles in &angle_sets {
                    let mut p = AnchorProposal {
                        min_level,
                        max_level,
                        anchor_num_subscales: n,
                        anchor_aspect_ratios: ratios.clone(),
                        anchor_angles: angles.clone(),
                        coverage: 0.0,
                    };
                    p.coverage = coverage(boxes, size, &p, rotated);
                    // Anchors the detector evaluates, relative: per position × positions of each level.
                    let positions: f64 = (min_level..=max_level).map(|l| 4f64.powi(-(l as i32))).sum();
                    let cost = (n * ratios.len() * angles.len()) as f64 * positions;
                    candidates.push((p, cost));
                }
            }
        }
    }
    // The best coverage, then (within half a percent of it) the fewest anchors.
    let top = candidates.iter().map(|c| c.0.coverage).fold(0.0, f64::max);
    let best = candidates
        .into_iter()
        .filter(|c| c.0.coverage >= top - 0.005)
        .min_by(|a, b| a.1.total_cmp(&b.1).then(b.0.coverage.total_cmp(&a.0.coverage)));
    // The candidate list is never empty; the defaults stand in for the type's sake.
    best.map_or_else(AnchorProposal::defaults, |b| b.0)
}

impl AnchorProposal {
    /// The anchor parameters of `config` (coverage not computed: 0).
    pub fn of(config: &super::DetectionConfig) -> Self {
        Self {
            min_level: config.min_level,
            max_level: config.max_level,
            anchor_num_subscales: config.anchor_num_subscales,
            anchor_aspect_ratios: config.anchor_aspect_ratios.clone(),
            anchor_angles: config.anchor_angles.clone(),
            coverage: 0.0,
        }
    }

    /// HALCON's defaults (levels 2 … 4, 3 subscales, ratios 1, 2, 0.5, angle 0).
    pub fn defaults() -> Self {
        Self::of(&super::DetectionConfig::new(1, dl_data::InstanceType::Rectangle1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default() -> AnchorProposal {
        AnchorProposal::defaults()
    }

    #[test]
    fn elongated_boxes_need_their_aspect_ratio() {
        // 60 × 6 boxes (ratio 0.1) anywhere: the defaults miss them, the proposal covers them all.
        let boxes: Vec<BoxShape> = (0..40)
            .map(|i| BoxShape {
                cx: 40.0 + 3.7 * f64::from(i),
                cy: 20.0 + 2.3 * f64::from(i),
                w: 60.0,
                h: 6.0,
                theta: 0.0,
            })
            .collect();
        let size = (256.0, 256.0);
        assert!(coverage(&boxes, size, &default(), false) < 0.2);
        let p = propose(&boxes, size, false, 2);
        // Thin boxes are hard to hit at every grid offset: measured 97.5 %.
        assert!(p.coverage >= 0.95, "{p:?}");
        assert!(p.anchor_aspect_ratios.iter().any(|&r| r < 0.2), "{p:?}");
        // Square boxes of the default sizes are covered by the defaults.
        let squares: Vec<BoxShape> = (0..20)
            .map(|i| BoxShape { cx: 50.0 + f64::from(i), cy: 60.0, w: 32.0, h: 30.0, theta: 0.0 })
            .collect();
        assert_eq!(coverage(&squares, size, &default(), false), 1.0);
    }
}
