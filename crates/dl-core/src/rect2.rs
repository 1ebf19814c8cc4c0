//! Rotated boxes (`rectangle2`): validation, angle normalisation, corners, conversions.

use crate::{Error, Rect1, Result};
use serde::{Deserialize, Serialize};
use std::f64::consts::{FRAC_PI_2, PI};

/// A point in pixel-centre coordinates, row first.
pub type Point = (f64, f64);

/// A rotated box in HALCON's `rectangle2` convention: centre (`row`, `col`); `phi` in radians,
/// counter-clockwise from the column axis with rows pointing down, so the direction of `length1` in
/// (row, col) is (−sin φ, cos φ); `length1`, `length2` are **half** edge lengths (area = 4·L1·L2).
///
/// Invariant: all values finite, both lengths > 0, φ in (−π, π] — or in (−π/2, π/2] for boxes built
/// with `ignore_direction`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rect2 {
    row: f64,
    col: f64,
    phi: f64,
    length1: f64,
    length2: f64,
}

/// φ normalised into (−π, π].
pub fn normalize_phi(phi: f64) -> f64 {
    let mut p = phi.rem_euclid(2.0 * PI); // [0, 2π)
    if p > PI {
        p -= 2.0 * PI;
    }
    p
}

/// φ taken modulo π, into (−π/2, π/2] (a box without a front).
pub fn normalize_phi_no_direction(phi: f64) -> f64 {
    let mut p = phi.rem_euclid(PI); // [0, π)
    if p > FRAC_PI_2 {
        p -= PI;
    }
    p
}

impl Rect2 {
    /// A rotated box; φ is normalised into (−π, π].
    ///
    /// # Errors
    /// [`Error::InvalidBox`] when a value is not finite or a length is not positive.
    ///
    /// # Examples
    /// ```
    /// let b = dl_core::Rect2::new(10.0, 20.0, 4.0 * std::f64::consts::PI, 3.0, 2.0).unwrap();
    /// assert_eq!(b.phi(), 0.0);
    /// assert_eq!(b.area(), 24.0);
    /// ```
    pub fn new(row: f64, col: f64, phi: f64, length1: f64, length2: f64) -> Result<Self> {
        let values = [row, col, phi, length1, length2];
        let invalid = |reason| Error::InvalidBox { kind: "rectangle2", values: values.to_vec(), reason };
        if values.iter().any(|v| !v.is_finite()) {
            return Err(invalid("values must be finite"));
        }
        if length1 <= 0.0 || length2 <= 0.0 {
            return Err(invalid("length1 and length2 must be greater than 0"));
        }
        Ok(Self { row, col, phi: normalize_phi(phi), length1, length2 })
    }

    /// A rotated box; with `ignore_direction`, φ is taken modulo π into (−π/2, π/2].
    ///
    /// # Errors
    /// As [`Rect2::new`].
    pub fn with_direction(
        row: f64,
        col: f64,
        phi: f64,
        length1: f64,
        length2: f64,
        ignore_direction: bool,
    ) -> Result<Self> {
        let mut r = Self::new(row, col, phi, length1, length2)?;
        if ignore_direction {
            r.phi = normalize_phi_no_direction(r.phi);
        }
        Ok(r)
    }

    /// Centre row.
    pub fn row(&self) -> f64 {
        self.row
    }
    /// Centre column.
    pub fn col(&self) -> f64 {
        self.col
    }
    /// Orientation in radians.
    pub fn phi(&self) -> f64 {
        self.phi
    }
    /// Half length along the direction φ.
    pub fn length1(&self) -> f64 {
        self.length1
    }
    /// Half length across it.
    pub fn length2(&self) -> f64 {
        self.length2
    }
    /// Area, 4·L1·L2.
    pub fn area(&self) -> f64 {
        4.0 * self.length1 * self.length2
    }

    /// Unit vectors (row, col) along length1 and along length2: (−sin φ, cos φ) and (−cos φ, −sin φ).
    pub fn axes(&self) -> (Point, Point) {
        let (s, c) = self.phi.sin_cos();
        ((-s, c), (-c, -s))
    }

    /// The four corners (row, col): `c − L1·u − L2·v`, `c + L1·u − L2·v`, `c + L1·u + L2·v`,
    /// `c − L1·u + L2·v`, where u is the length1 axis and v the length2 axis. The first edge runs
    /// along length1, so [`Rect2::from_corners`] gives the box back.
    pub fn corners(&self) -> [Point; 4] {
        let ((ur, uc), (vr, vc)) = self.axes();
        let (a, b) = (self.length1, self.length2);
        let p =
            |su: f64, sv: f64| (self.row + su * a * ur + sv * b * vr, self.col + su * a * uc + sv * b * vc);
        [p(-1.0, -1.0), p(1.0, -1.0), p(1.0, 1.0), p(-1.0, 1.0)]
    }

    /// The smallest axis-parallel [`Rect1`] that encloses the box.
    pub fn enclosing_rect1(&self) -> Rect1 {
        let (hr, hc) = self.half_extents();
        Rect1::new(self.row - hr, self.col - hc, self.row + hr, self.col + hc)
            .expect("a valid rectangle2 has a positive extent")
    }

    /// The same box without a front, described with length1 ≥ length2 (φ + π/2 and the lengths swapped
    /// when length1 < length2) and φ modulo π in (−π/2, π/2]: the description [`Rect2::min_area`] gives.
    ///
    /// # Examples
    /// ```
    /// use std::f64::consts::FRAC_PI_2;
    /// let b = dl_core::Rect2::new(5.0, 5.0, 0.25, 2.0, 3.0).unwrap().long_side_first();
    /// assert_eq!((b.length1(), b.length2()), (3.0, 2.0));
    /// assert!((b.phi() - (0.25 + FRAC_PI_2 - std::f64::consts::PI)).abs() < 1e-12);
    /// ```
    pub fn long_side_first(&self) -> Rect2 {
        let (phi, length1, length2) = if self.length1 >= self.length2 {
            (self.phi, self.length1, self.length2)
        } else {
            (self.phi + FRAC_PI_2, self.length2, self.length1)
        };
        Rect2 { phi: normalize_phi_no_direction(phi), length1, length2, ..*self }
    }

    /// The smallest enclosing axis-parallel box as a rectangle2 (φ = 0, L1 = half extent along columns,
    /// L2 = half extent along rows), as `class_ids_no_orientation` asks.
    pub fn axis_parallel(&self) -> Rect2 {
        let (hr, hc) = self.half_extents();
        Rect2 { row: self.row, col: self.col, phi: 0.0, length1: hc, length2: hr }
    }

    fn half_extents(&self) -> (f64, f64) {
        let (s, c) = self.phi.sin_cos();
        let hr = self.length1 * s.abs() + self.length2 * c.abs();
        let hc = self.length1 * c.abs() + self.length2 * s.abs();
        (hr, hc)
    }

    /// The rectangle2 fitting four corners (row, col), with length1 along the first edge (corner 0 →
    /// corner 1): φ from that edge, the extents of all four points along and across it. An exact
    /// rectangle is recovered exactly (up to rounding); DOTA's near-rectangles get their enclosing box in
    /// that orientation.
    ///
    /// # Errors
    /// [`Error::InvalidBox`] when the first edge has zero length or the points span no area.
    pub fn from_corners(corners: &[Point; 4]) -> Result<Self> {
        let (dr, dc) = (corners[1].0 - corners[0].0, corners[1].1 - corners[0].1);
        let flat: Vec<f64> = corners.iter().flat_map(|&(r, c)| [r, c]).collect();
        if dr == 0.0 && dc == 0.0 || flat.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidBox {
                kind: "rectangle2",
                values: flat,
                reason: "the four corners need a first edge of non-zero length",
            });
        }
        let phi = (-dr).atan2(dc);
        Self::fit_in_direction(corners, phi)
    }

    /// The box with orientation φ that encloses `points` most tightly.
    fn fit_in_direction(points: &[Point], phi: f64) -> Result<Self> {
        let (s, c) = phi.sin_cos();
        let (u, v) = ((-s, c), (-c, -s));
        let (mut umin, mut umax, mut vmin, mut vmax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(r, col) in points {
            let pu = r * u.0 + col * u.1;
            let pv = r * v.0 + col * v.1;
            umin = umin.min(pu);
            umax = umax.max(pu);
            vmin = vmin.min(pv);
            vmax = vmax.max(pv);
        }
        let (cu, cv) = ((umin + umax) / 2.0, (vmin + vmax) / 2.0);
        // u and v are orthonormal: the point is cu·u + cv·v.
        let row = cu * u.0 + cv * v.0;
        let col = cu * u.1 + cv * v.1;
        Self::new(row, col, phi, (umax - umin) / 2.0, (vmax - vmin) / 2.0)
    }

    /// COCO's rotated box (detectron2's XYWHA): `[cx, cy, w, h, a]`, centre in pixel-edge coordinates,
    /// full width and height, `a` in degrees counter-clockwise on screen.
    ///
    /// # Errors
    /// As [`Rect2::new`].
    pub fn from_coco_rotated(b: [f64; 5]) -> Result<Self> {
        Self::new(b[1] - 0.5, b[0] - 0.5, b[4].to_radians(), b[2] / 2.0, b[3] / 2.0)
    }

    /// The inverse of [`Rect2::from_coco_rotated`]; the angle in degrees in (−180, 180].
    pub fn to_coco_rotated(&self) -> [f64; 5] {
        [self.col + 0.5, self.row + 0.5, 2.0 * self.length1, 2.0 * self.length2, self.phi.to_degrees()]
    }

    /// The minimum-area rotated rectangle enclosing `points` (rotating calipers over the convex hull),
    /// with length1 ≥ length2 and φ in (−π/2, π/2] (HALCON's `smallest_rectangle2`).
    ///
    /// # Errors
    /// [`Error::InvalidBox`] when the points are fewer than three, not finite or all on one line.
    pub fn min_area(points: &[Point]) -> Result<Self> {
        let hull = crate::polygon::convex_hull(points);
        let invalid = |reason| Error::InvalidBox {
            kind: "rectangle2",
            values: points.iter().take(8).flat_map(|&(r, c)| [r, c]).collect(),
            reason,
        };
        if points.iter().any(|&(r, c)| !r.is_finite() || !c.is_finite()) {
            return Err(invalid("points must be finite"));
        }
        if hull.len() < 3 {
            return Err(invalid("the points span no area"));
        }
        let mut best: Option<Rect2> = None;
        for i in 0..hull.len() {
            let (a, b) = (hull[i], hull[(i + 1) % hull.len()]);
            let phi = (-(b.0 - a.0)).atan2(b.1 - a.1);
            let Ok(candidate) = Self::fit_in_direction(&hull, phi) else { continue };
            if best.is_none_or(|b| candidate.area() < b.area() * (1.0 - 1e-12)) {
                best = Some(candidate);
            }
        }
        let best = best.ok_or_else(|| invalid("the points span no area"))?;
        let (phi, l1, l2) = if best.length1 >= best.length2 {
            (best.phi, best.length1, best.length2)
        } else {
            (best.phi + FRAC_PI_2, best.length2, best.length1)
        };
        Self::with_direction(best.row, best.col, phi, l1, l2, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dl_testkit::assert_close;
    use proptest::prelude::*;

    fn rect2() -> impl Strategy<Value = Rect2> {
        (-100.0..100.0f64, -100.0..100.0f64, -4.0..4.0f64, 0.1..30.0f64, 0.1..30.0f64)
            .prop_map(|(r, c, p, a, b)| Rect2::new(r, c, p, a, b).expect("valid"))
    }

    #[test]
    fn direction_of_length1_follows_the_spec() {
        // φ = π/2: length1 points up (towards smaller rows).
        let b = Rect2::new(0.0, 0.0, FRAC_PI_2, 2.0, 1.0).unwrap();
        let c = b.corners();
        assert_close!(c[1].0 - c[0].0, -4.0, 1e-12);
        assert_close!(c[1].1 - c[0].1, 0.0, 1e-12);
    }

    #[test]
    fn phi_normalisation_ranges() {
        assert_close!(normalize_phi(-PI), PI, 1e-15);
        assert_close!(normalize_phi(3.0 * PI / 2.0), -FRAC_PI_2, 1e-15);
        assert_close!(normalize_phi_no_direction(-FRAC_PI_2), FRAC_PI_2, 1e-15);
        assert_close!(normalize_phi_no_direction(PI * 0.75), -PI * 0.25, 1e-15);
        assert!(Rect2::new(0.0, 0.0, 0.0, 0.0, 1.0).is_err());
    }

    #[test]
    fn axis_parallel_of_a_rotated_square() {
        let b = Rect2::new(5.0, 5.0, PI / 4.0, 1.0, 1.0).unwrap().axis_parallel();
        assert_close!(b.length1(), 2f64.sqrt(), 1e-12);
        assert_close!(b.length2(), 2f64.sqrt(), 1e-12);
        assert_eq!(b.phi(), 0.0);
    }

    #[test]
    fn min_area_of_pixel_corners_of_a_diagonal_bar() {
        // A 1-pixel wide axis-parallel bar of 5 pixels: its pixel corners.
        let pts: Vec<Point> = (0..5)
            .flat_map(|c| {
                [(-0.5, c as f64 - 0.5), (0.5, c as f64 - 0.5), (-0.5, c as f64 + 0.5), (0.5, c as f64 + 0.5)]
            })
            .collect();
        let b = Rect2::min_area(&pts).unwrap();
        assert_close!(b.area(), 5.0, 1e-9);
        assert_close!(b.length1(), 2.5, 1e-9);
        assert_close!(b.phi().abs(), 0.0, 1e-9);
        assert!(Rect2::min_area(&[(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)]).is_err());
    }

    proptest! {
        #[test]
        fn corners_round_trip(b in rect2()) {
            let back = Rect2::from_corners(&b.corners()).unwrap();
            prop_assert!((back.row() - b.row()).abs() < 1e-9 && (back.col() - b.col()).abs() < 1e-9);
            prop_assert!((back.length1() - b.length1()).abs() < 1e-9 && (back.length2() - b.length2()).abs() < 1e-9);
            prop_assert!((normalize_phi(back.phi() - b.phi())).abs() < 1e-9);
        }

        #[test]
        fn min_area_of_corners_is_the_box(b in rect2()) {
            let m = Rect2::min_area(&b.corners()).unwrap();
            prop_assert!((m.area() - b.area()).abs() < 1e-7 * b.area().max(1.0));
            prop_assert!((m.row() - b.row()).abs() < 1e-7 && (m.col() - b.col()).abs() < 1e-7);
            prop_assert!(m.length1() >= m.length2());
            prop_assert!(m.phi() > -FRAC_PI_2 && m.phi() <= FRAC_PI_2);
        }

        #[test]
        fn long_side_first_is_the_same_box(b in rect2()) {
            let l = b.long_side_first();
            prop_assert!(l.length1() >= l.length2());
            prop_assert!(l.phi() > -FRAC_PI_2 && l.phi() <= FRAC_PI_2);
            // The same four corners, in some order.
            for c in l.corners() {
                let near = b.corners().iter().any(|d| (c.0 - d.0).abs() < 1e-9 && (c.1 - d.1).abs() < 1e-9);
                prop_assert!(near, "corner {:?} of {:?} is no corner of {:?}", c, l, b);
            }
            prop_assert_eq!(l.long_side_first(), l);
        }

        #[test]
        fn coco_rotated_round_trip(b in rect2()) {
            let back = Rect2::from_coco_rotated(b.to_coco_rotated()).unwrap();
            prop_assert!((back.row() - b.row()).abs() < 1e-9 && (back.length1() - b.length1()).abs() < 1e-9);
            prop_assert!((normalize_phi(back.phi() - b.phi())).abs() < 1e-9);
        }

        #[test]
        fn phi_stays_normalised(b in rect2(), p in -20.0..20.0f64) {
            let r = Rect2::with_direction(b.row(), b.col(), p, 1.0, 1.0, true).unwrap();
            prop_assert!(r.phi() > -FRAC_PI_2 - 1e-12 && r.phi() <= FRAC_PI_2);
            let r = Rect2::new(b.row(), b.col(), p, 1.0, 1.0).unwrap();
            prop_assert!(r.phi() > -PI && r.phi() <= PI);
        }

        #[test]
        fn enclosing_rect1_contains_corners(b in rect2()) {
            let e = b.enclosing_rect1();
            for (r, c) in b.corners() {
                prop_assert!(r >= e.row1() - 1e-9 && r <= e.row2() + 1e-9 && c >= e.col1() - 1e-9 && c <= e.col2() + 1e-9);
            }
        }
    }
}
