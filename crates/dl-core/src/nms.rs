//! Non-maximum suppression for rectangle1 and rectangle2 detections, per class and class-agnostic.

use crate::{Rect1, Rect2};

/// A scored detection for [`nms`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection<B> {
    /// Class of the detection (suppression within a class uses `max_overlap`).
    pub class: u32,
    /// Confidence; higher is better. NaN scores sort last.
    pub score: f64,
    /// The box.
    pub bbox: B,
}

/// Boxes [`nms`] can compare.
pub trait Overlap {
    /// Intersection over union.
    fn overlap(&self, other: &Self) -> f64;
}

impl Overlap for Rect1 {
    fn overlap(&self, other: &Self) -> f64 {
        self.iou(other)
    }
}

impl Overlap for Rect2 {
    fn overlap(&self, other: &Self) -> f64 {
        self.iou(other)
    }
}

/// Greedy NMS: detections by descending score (ties: lower index first); one is kept unless a kept
/// detection of the same class overlaps it with IoU > `max_overlap`, or a kept detection of any class
/// with IoU > `max_overlap_class_agnostic` (1.0 turns that off). At most `max_num_detections` are
/// kept. Returns the kept indices, by descending score.
///
/// # Examples
/// ```
/// use dl_core::{nms, Detection, Rect1};
/// let d = |score, c| Detection { class: 0, score, bbox: Rect1::new(0.0, c, 10.0, c + 10.0).unwrap() };
/// let kept = nms(&[d(0.9, 0.0), d(0.8, 1.0), d(0.7, 20.0)], 0.5, 1.0, 100);
/// assert_eq!(kept, vec![0, 2]);
/// ```
pub fn nms<B: Overlap>(
    dets: &[Detection<B>],
    max_overlap: f64,
    max_overlap_class_agnostic: f64,
    max_num_detections: usize,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..dets.len()).collect();
    order.sort_by(|&a, &b| {
        let (sa, sb) = (dets[a].score, dets[b].score);
        sb.partial_cmp(&sa).unwrap_or_else(|| sa.is_nan().cmp(&sb.is_nan())).then(a.cmp(&b))
    });
    let agnostic = max_overlap_class_agnostic < 1.0;
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        if kept.len() >= max_num_detections {
            break;
        }
        let d = &dets[i];
        let suppressed = kept.iter().any(|&k| {
            let other = &dets[k];
            let same = other.class == d.class;
            if !same && !agnostic {
                return false;
            }
            let iou = d.bbox.overlap(&other.bbox);
            (same && iou > max_overlap) || (agnostic && iou > max_overlap_class_agnostic)
        });
        if !suppressed {
            kept.push(i);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dets() -> impl Strategy<Value = Vec<Detection<Rect1>>> {
        proptest::collection::vec(
            (0u32..3, 0.0..1.0f64, 0.0..50.0f64, 0.0..50.0f64, 1.0..20.0f64, 1.0..20.0f64),
            0..60,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(class, score, r, c, h, w)| Detection {
                    class,
                    score,
                    bbox: Rect1::new(r, c, r + h, c + w).unwrap(),
                })
                .collect()
        })
    }

    #[test]
    fn per_class_and_agnostic() {
        let b = Rect1::new(0.0, 0.0, 10.0, 10.0).unwrap();
        let d =
            vec![Detection { class: 0, score: 0.9, bbox: b }, Detection { class: 1, score: 0.8, bbox: b }];
        assert_eq!(nms(&d, 0.5, 1.0, 10), vec![0, 1]);
        assert_eq!(nms(&d, 0.5, 0.7, 10), vec![0]);
        assert_eq!(nms(&d, 0.5, 1.0, 1), vec![0]);
    }

    proptest! {
        #[test]
        fn subset_sorted_and_no_kept_pair_above_threshold(d in dets(), t in 0.1..0.9f64, cap in 1usize..80) {
            let kept = nms(&d, t, 1.0, cap);
            prop_assert!(kept.len() <= cap);
            prop_assert!(kept.windows(2).all(|w| d[w[0]].score >= d[w[1]].score));
            let mut uniq = kept.clone();
            uniq.sort();
            uniq.dedup();
            prop_assert_eq!(uniq.len(), kept.len());
            for (x, &i) in kept.iter().enumerate() {
                for &j in &kept[x + 1..] {
                    if d[i].class == d[j].class {
                        prop_assert!(d[i].bbox.iou(&d[j].bbox) <= t);
                    }
                }
            }
            // Non-empty input gives non-empty output; below the cap, every dropped detection overlaps a
            // kept one of its class, of at least its score, above the threshold (an NMS that drops
            // everything, or too much, fails here).
            prop_assert_eq!(d.is_empty(), kept.is_empty());
            if kept.len() < cap {
                for (i, di) in d.iter().enumerate().filter(|(i, _)| !kept.contains(i)) {
                    let covered = kept.iter().any(|&k| {
                        d[k].class == di.class && d[k].score >= di.score && d[k].bbox.iou(&di.bbox) > t
                    });
                    prop_assert!(covered, "detection {} was suppressed by no kept detection", i);
                }
            }
        }

        /// With class-agnostic suppression too, a dropped detection overlaps a kept one: of its class
        /// above `t`, or of any class above `t_agnostic`.
        #[test]
        fn class_agnostic_suppression_is_explained(d in dets(), t in 0.1..0.9f64, ta in 0.1..0.9f64) {
            let kept = nms(&d, t, ta, usize::MAX);
            prop_assert_eq!(d.is_empty(), kept.is_empty());
            for (x, &i) in kept.iter().enumerate() {
                for &j in &kept[x + 1..] {
                    let iou = d[i].bbox.iou(&d[j].bbox);
                    prop_assert!(iou <= ta && (d[i].class != d[j].class || iou <= t));
                }
            }
            for (i, di) in d.iter().enumerate().filter(|(i, _)| !kept.contains(i)) {
                let covered = kept.iter().any(|&k| {
                    let iou = d[k].bbox.iou(&di.bbox);
                    d[k].score >= di.score && ((d[k].class == di.class && iou > t) || iou > ta)
                });
                prop_assert!(covered, "detection {} was suppressed by no kept detection", i);
            }
        }
    }
}
