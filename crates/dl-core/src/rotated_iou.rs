//! Exact IoU of rotated boxes by convex polygon clipping (Sutherland–Hodgman), in f64.

use crate::{Point, Rect1, Rect2};

/// Signed area of a polygon (shoelace; positive when counter-clockwise in (col, row) axes, i.e. the
/// usual x/y orientation).
pub fn polygon_area(poly: &[Point]) -> f64 {
    let n = poly.len();
    if n < 3 {
        return 0.0;
    }
    let mut twice = 0.0;
    for i in 0..n {
        let (r0, c0) = poly[i];
        let (r1, c1) = poly[(i + 1) % n];
        twice += c0 * r1 - c1 * r0;
    }
    twice / 2.0
}

/// The corners of `b` in counter-clockwise order (positive [`polygon_area`]).
fn ccw_corners(b: &Rect2) -> [Point; 4] {
    let mut c = b.corners();
    if polygon_area(&c) < 0.0 {
        c.reverse();
    }
    c
}

/// Area of the intersection of two convex polygons given counter-clockwise.
pub fn convex_intersection_area(subject: &[Point], clip: &[Point]) -> f64 {
    let mut output: Vec<Point> = subject.to_vec();
    let m = clip.len();
    for i in 0..m {
        if output.is_empty() {
            return 0.0;
        }
        let (a, b) = (clip[i], clip[(i + 1) % m]);
        // Inside: on the left of a→b (cross ≥ 0 in (col, row) = (x, y) axes).
        let side = |p: Point| (b.1 - a.1) * (p.0 - a.0) - (b.0 - a.0) * (p.1 - a.1);
        let input = std::mem::take(&mut output);
        let k = input.len();
        for j in 0..k {
            let (p, q) = (input[j], input[(j + 1) % k]);
            let (sp, sq) = (side(p), side(q));
            if sp >= 0.0 {
                output.push(p);
            }
            if (sp >= 0.0) != (sq >= 0.0) {
                let t = sp / (sp - sq);
                output.push((p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1)));
            }
        }
    }
    polygon_area(&output).max(0.0)
}

impl Rect2 {
    /// Area of the intersection with `other`, exact up to rounding.
    pub fn intersection_area(&self, other: &Rect2) -> f64 {
        // Quick reject by enclosing circles.
        let (dr, dc) = (self.row() - other.row(), self.col() - other.col());
        let reach = self.length1().hypot(self.length2()) + other.length1().hypot(other.length2());
        if dr * dr + dc * dc > reach * reach {
            return 0.0;
        }
        convex_intersection_area(&ccw_corners(self), &ccw_corners(other)).min(self.area()).min(other.area())
    }

    /// Intersection over union with `other`, in [0, 1]. A rectangle has no front as a point set, so the
    /// IoU is the same for φ and φ + π (`ignore_direction` or not); direction is scored separately (SoAP).
    pub fn iou(&self, other: &Rect2) -> f64 {
        let inter = self.intersection_area(other);
        if inter <= 0.0 {
            return 0.0;
        }
        (inter / (self.area() + other.area() - inter)).clamp(0.0, 1.0)
    }
}

/// IoU between an axis-aligned box and a rotated one.
pub fn iou_rect1_rect2(a: &Rect1, b: &Rect2) -> f64 {
    a.to_rect2().iou(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dl_testkit::assert_close;
    use proptest::prelude::*;
    use std::f64::consts::PI;

    fn rect2() -> impl Strategy<Value = Rect2> {
        (-50.0..50.0f64, -50.0..50.0f64, -4.0..4.0f64, 0.01..30.0f64, 0.01..30.0f64)
            .prop_map(|(r, c, p, a, b)| Rect2::new(r, c, p, a, b).unwrap())
    }

    #[test]
    fn edge_cases() {
        let a = Rect2::new(0.0, 0.0, 0.3, 4.0, 2.0).unwrap();
        assert_close!(a.iou(&a), 1.0, 1e-12);
        let flipped = Rect2::new(0.0, 0.0, 0.3 + PI, 4.0, 2.0).unwrap();
        assert_close!(a.iou(&flipped), 1.0, 1e-12);
        // Nested: the small one inside.
        let inner = Rect2::new(0.0, 0.0, 0.3, 1.0, 1.0).unwrap();
        assert_close!(a.iou(&inner), 4.0 / 32.0, 1e-12);
        // Touching along an edge: zero.
        let b = Rect2::new(0.0, 0.0, 0.0, 1.0, 1.0).unwrap();
        let c = Rect2::new(0.0, 2.0, 0.0, 1.0, 1.0).unwrap();
        assert_eq!(b.iou(&c), 0.0);
        // Collinear edges, half overlap.
        let d = Rect2::new(0.0, 1.0, 0.0, 1.0, 1.0).unwrap();
        assert_close!(b.iou(&d), 1.0 / 3.0, 1e-12);
        // Degenerate thin boxes crossing.
        let t1 = Rect2::new(0.0, 0.0, 0.0, 10.0, 1e-9).unwrap();
        let t2 = Rect2::new(0.0, 0.0, PI / 2.0, 10.0, 1e-9).unwrap();
        let v = t1.iou(&t2);
        assert!((0.0..=1e-9).contains(&v), "{v}");
    }

    proptest! {
        #[test]
        fn symmetric_bounded_and_one_for_identical(a in rect2(), b in rect2()) {
            let (ab, ba) = (a.iou(&b), b.iou(&a));
            prop_assert!((ab - ba).abs() < 1e-9);
            prop_assert!((0.0..=1.0).contains(&ab));
            prop_assert!((a.iou(&a) - 1.0).abs() < 1e-9);
        }

        #[test]
        fn equals_axis_aligned_iou_at_phi_zero(r in -50.0..50.0f64, c in -50.0..50.0f64, h in 0.1..30.0f64, w in 0.1..30.0f64,
                                               r2 in -50.0..50.0f64, c2 in -50.0..50.0f64, h2 in 0.1..30.0f64, w2 in 0.1..30.0f64) {
            let a = Rect1::new(r, c, r + h, c + w).unwrap();
            let b = Rect1::new(r2, c2, r2 + h2, c2 + w2).unwrap();
            prop_assert!((a.to_rect2().iou(&b.to_rect2()) - a.iou(&b)).abs() < 1e-9);
        }

        #[test]
        fn invariant_under_joint_rotation_and_translation(a in rect2(), b in rect2(), theta in -4.0..4.0f64, dr in -20.0..20.0f64, dc in -20.0..20.0f64) {
            let (s, c) = theta.sin_cos();
            // Rotate centres counter-clockwise on screen about the origin: direction (−sin, cos) turns by θ.
            let turn = |x: &Rect2| {
                let (r, col) = (x.row(), x.col());
                Rect2::new(c * r - s * col + dr, s * r + c * col + dc, x.phi() + theta, x.length1(), x.length2()).unwrap()
            };
            prop_assert!((turn(&a).iou(&turn(&b)) - a.iou(&b)).abs() < 1e-9);
        }
    }
}
