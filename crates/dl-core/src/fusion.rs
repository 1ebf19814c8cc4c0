//! Weighted box fusion (Solovyev et al., WBF) of the detections of several views of one image, as
//! test-time augmentation merges them.

use crate::nms::{Detection, Overlap};
use crate::{Rect1, Rect2, normalize_phi};
use std::f64::consts::FRAC_PI_2;

/// Boxes [`fuse_views`] can average.
pub trait Fuse: Overlap + Copy {
    /// The score-weighted mean of `members` (score, box), the first the best scored; `ignore_direction`:
    /// rectangle2 boxes without a front (φ modulo π).
    fn fuse(members: &[(f64, Self)], ignore_direction: bool) -> Self;
    /// The enclosing axis-parallel box (a cheap test before the exact overlap).
    fn bounds(&self) -> Rect1;
}

impl Fuse for Rect1 {
    fn fuse(members: &[(f64, Self)], _: bool) -> Self {
        let total: f64 = members.iter().map(|m| m.0).sum();
        let mean = |f: fn(&Rect1) -> f64| members.iter().map(|(w, b)| w * f(b)).sum::<f64>() / total;
        Rect1::new(mean(Rect1::row1), mean(Rect1::col1), mean(Rect1::row2), mean(Rect1::col2))
            .unwrap_or(members[0].1)
    }

    fn bounds(&self) -> Rect1 {
        *self
    }
}

impl Fuse for Rect2 {
    /// Centres and lengths are averaged, and φ as the reference's (the first member's) plus the mean
    /// angle difference. Each member is taken in the description nearest the reference: with a front
    /// only φ ± 2π; without one also (φ + π/2, length2, length1) and φ + π, the same rectangle.
    fn fuse(members: &[(f64, Self)], ignore_direction: bool) -> Self {
        let reference = members[0].1.phi();
        let (mut total, mut acc) = (0.0, [0.0; 5]);
        for &(w, b) in members {
            let mut delta = normalize_phi(b.phi() - reference);
            let (mut l1, mut l2) = (b.length1(), b.length2());
            if ignore_direction {
                // δ into (−π/4, π/4] by quarter turns, the lengths swapped by an odd number of them.
                let quarters = (delta / FRAC_PI_2).round();
                delta -= quarters * FRAC_PI_2;
                if (quarters as i64).rem_euclid(2) == 1 {
                    (l1, l2) = (l2, l1);
                }
            }
            for (a, v) in acc.iter_mut().zip([b.row(), b.col(), delta, l1, l2]) {
                *a += w * v;
            }
            total += w;
        }
        let [row, col, delta, l1, l2] = acc.map(|a| a / total);
        Rect2::with_direction(row, col, reference + delta, l1, l2, ignore_direction).unwrap_or(members[0].1)
    }

    fn bounds(&self) -> Rect1 {
        self.enclosing_rect1()
    }
}

/// Fuses the detections of `views` views of one image (each view's detections after its own NMS, all
/// in the image's coordinates): by descending score, each detection joins the cluster of its class
/// whose fused box it overlaps most with IoU > `iou`, or starts one; a cluster's box is the
/// score-weighted mean of its members ([`Fuse`]), its score the members' mean score × min(n, views) /
/// views (a box found in every view keeps its score, one found in one view of eight an eighth of it).
/// Returns the fused detections by descending score.
///
/// # Examples
/// ```
/// use dl_core::{fuse_views, Detection, Rect1};
/// let d = |score, c| Detection { class: 0, score, bbox: Rect1::new(0.0, c, 10.0, c + 10.0).unwrap() };
/// let fused = fuse_views(&[d(0.9, 0.0), d(0.3, 2.0), d(0.6, 40.0)], 2, 0.55, false);
/// assert_eq!(fused.len(), 2);
/// assert!((fused[0].score - 0.6).abs() < 1e-12 && (fused[0].bbox.col1() - 0.5).abs() < 1e-12);
/// assert!((fused[1].score - 0.3).abs() < 1e-12);
/// ```
pub fn fuse_views<B: Fuse>(
    dets: &[Detection<B>],
    views: usize,
    iou: f64,
    ignore_direction: bool,
) -> Vec<Detection<B>> {
    let views = views.max(1);
    let mut order: Vec<&Detection<B>> = dets.iter().filter(|d| d.score.is_finite()).collect();
    order.sort_by(|a, b| b.score.total_cmp(&a.score));
    struct Cluster<B> {
        class: u32,
        members: Vec<(f64, B)>,
        fused: B,
        bounds: Rect1,
    }
    let mut clusters: Vec<Cluster<B>> = Vec::new();
    for d in order {
        let bounds = d.bbox.bounds();
        let best = clusters
            .iter()
            .enumerate()
            .filter(|(_, c)| c.class == d.class && c.bounds.intersection_area(&bounds) > 0.0)
            .map(|(i, c)| (i, c.fused.overlap(&d.bbox)))
            .filter(|&(_, o)| o > iou)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        match best {
            Some((i, _)) => {
                let c = &mut clusters[i];
                c.members.push((d.score, d.bbox));
                c.fused = B::fuse(&c.members, ignore_direction);
                c.bounds = c.fused.bounds();
            }
            None => clusters.push(Cluster {
                class: d.class,
                members: vec![(d.score, d.bbox)],
                fused: d.bbox,
                bounds,
            }),
        }
    }
    let mut fused: Vec<Detection<B>> = clusters
        .into_iter()
        .map(|c| {
            let n = c.members.len();
            let mean = c.members.iter().map(|m| m.0).sum::<f64>() / n as f64;
            Detection { class: c.class, score: mean * n.min(views) as f64 / views as f64, bbox: c.fused }
        })
        .collect();
    fused.sort_by(|a, b| b.score.total_cmp(&a.score));
    fused
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::f64::consts::PI;

    #[test]
    fn rectangle1_members_average_by_score() {
        let a = Rect1::new(0.0, 0.0, 10.0, 10.0).unwrap();
        let b = Rect1::new(2.0, 1.0, 12.0, 11.0).unwrap();
        let f = Rect1::fuse(&[(0.75, a), (0.25, b)], false);
        assert_eq!([f.row1(), f.col1(), f.row2(), f.col2()], [0.5, 0.25, 10.5, 10.25]);
    }

    #[test]
    fn rectangle2_without_front_averages_the_nearest_description() {
        // The same 10 × 4 rectangle as (φ = 0.1, 5, 2) and as (φ = 0.1 + π/2, 2, 5), and a slightly
        // turned copy described with φ + π: the fusion is the rectangle at the mean angle.
        let a = Rect2::new(5.0, 5.0, 0.1, 5.0, 2.0).unwrap();
        let b = Rect2::new(5.0, 5.0, 0.1 + FRAC_PI_2, 2.0, 5.0).unwrap();
        let c = Rect2::new(5.0, 5.0, 0.2 + PI, 5.0, 2.0).unwrap();
        let f = Rect2::fuse(&[(1.0, a), (1.0, b), (2.0, c)], true);
        assert!((f.phi() - 0.15).abs() < 1e-12 && (f.length1() - 5.0).abs() < 1e-12, "{f:?}");
        assert!((f.length2() - 2.0).abs() < 1e-12);
        // With a front, φ + π is the opposite direction: the angles are averaged as they are.
        let d = Rect2::new(5.0, 5.0, PI - 0.1, 5.0, 2.0).unwrap();
        let e = Rect2::new(5.0, 5.0, -PI + 0.1, 5.0, 2.0).unwrap();
        let g = Rect2::fuse(&[(1.0, d), (1.0, e)], false);
        assert!((g.phi() - PI).abs() < 1e-12, "{g:?}");
    }

    #[test]
    fn clusters_keep_classes_apart() {
        let b = Rect1::new(0.0, 0.0, 10.0, 10.0).unwrap();
        let dets = [
            Detection { class: 0, score: 0.8, bbox: b },
            Detection { class: 1, score: 0.6, bbox: b },
            Detection { class: 0, score: 0.4, bbox: b },
            Detection { class: 0, score: f64::NAN, bbox: b },
        ];
        let f = fuse_views(&dets, 4, 0.55, false);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].class, f[1].class), (0, 1));
        assert!((f[0].score - 0.3).abs() < 1e-12 && (f[1].score - 0.15).abs() < 1e-12);
    }

    fn rect2s() -> impl Strategy<Value = Vec<(f64, Rect2)>> {
        proptest::collection::vec(
            (0.05..1.0f64, 0.0..40.0f64, 0.0..40.0f64, -4.0..4.0f64, 1.0..20.0f64, 1.0..20.0f64),
            1..8,
        )
        .prop_map(|v| {
            v.into_iter().map(|(s, r, c, phi, l1, l2)| (s, Rect2::new(r, c, phi, l1, l2).unwrap())).collect()
        })
    }

    proptest! {
        #[test]
        fn one_view_of_one_box_is_that_box(s in 0.01..1.0f64, r in 0.0..50.0f64, c in 0.0..50.0f64, phi in -4.0..4.0f64, l1 in 1.0..9.0f64, l2 in 1.0..9.0f64, ignore in any::<bool>()) {
            let b = Rect2::with_direction(r, c, phi, l1, l2, ignore).unwrap();
            let f = fuse_views(&[Detection { class: 2, score: s, bbox: b }], 1, 0.55, ignore);
            prop_assert_eq!(f, vec![Detection { class: 2, score: s, bbox: b }]);
        }

        #[test]
        fn fused_boxes_stay_within_their_members(members in rect2s(), ignore in any::<bool>()) {
            // The fused centre and lengths lie within the members' ranges (lengths up to the swap
            // without a front); its angle is normalised as the detector gives it.
            let f = Rect2::fuse(&members, ignore);
            let range = |v: Vec<f64>| (v.iter().copied().fold(f64::INFINITY, f64::min) - 1e-9, v.iter().copied().fold(f64::NEG_INFINITY, f64::max) + 1e-9);
            let (r0, r1) = range(members.iter().map(|m| m.1.row()).collect());
            let (c0, c1) = range(members.iter().map(|m| m.1.col()).collect());
            let (l0, l9) = range(members.iter().flat_map(|m| [m.1.length1(), m.1.length2()]).collect());
            prop_assert!((r0..=r1).contains(&f.row()) && (c0..=c1).contains(&f.col()));
            prop_assert!((l0..=l9).contains(&f.length1()) && (l0..=l9).contains(&f.length2()));
            if ignore {
                prop_assert!(f.phi() > -FRAC_PI_2 && f.phi() <= FRAC_PI_2);
            }
        }

        #[test]
        fn fused_scores_never_exceed_the_best_member(members in rect2s(), views in 1usize..9) {
            let dets: Vec<_> = members.iter().map(|&(score, bbox)| Detection { class: 0, score, bbox: bbox.enclosing_rect1() }).collect();
            let f = fuse_views(&dets, views, 0.55, false);
            let best = members.iter().map(|m| m.0).fold(0.0, f64::max);
            prop_assert!(!f.is_empty() && f.len() <= dets.len());
            prop_assert!(f.iter().all(|d| d.score <= best + 1e-12));
            prop_assert!(f.windows(2).all(|w| w[0].score >= w[1].score));
        }
    }
}
