//! Axis-aligned boxes (`rectangle1`) and their IoU.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// An axis-aligned box in HALCON's `rectangle1` convention: upper-left (`row1`, `col1`), lower-right
/// (`row2`, `col2`), subpixel reals in pixel-centre coordinates. Area is (row2 − row1)·(col2 − col1),
/// without +1. Invariant: row1 < row2 and col1 < col2, all finite.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rect1 {
    row1: f64,
    col1: f64,
    row2: f64,
    col2: f64,
}

impl Rect1 {
    /// A box from its corners.
    ///
    /// # Errors
    /// [`Error::InvalidBox`] when a value is not finite, row1 ≥ row2 or col1 ≥ col2.
    ///
    /// # Examples
    /// ```
    /// let b = dl_core::Rect1::new(0.0, 0.0, 2.0, 3.0).unwrap();
    /// assert_eq!(b.area(), 6.0);
    /// assert!(dl_core::Rect1::new(0.0, 0.0, 0.0, 3.0).is_err());
    /// ```
    pub fn new(row1: f64, col1: f64, row2: f64, col2: f64) -> Result<Self> {
        let values = [row1, col1, row2, col2];
        let invalid = |reason| Error::InvalidBox { kind: "rectangle1", values: values.to_vec(), reason };
        if values.iter().any(|v| !v.is_finite()) {
            return Err(invalid("coordinates must be finite"));
        }
        if row1 >= row2 || col1 >= col2 {
            return Err(invalid("expected row1 < row2 and col1 < col2"));
        }
        Ok(Self { row1, col1, row2, col2 })
    }

    /// Upper row.
    pub fn row1(&self) -> f64 {
        self.row1
    }
    /// Left column.
    pub fn col1(&self) -> f64 {
        self.col1
    }
    /// Lower row.
    pub fn row2(&self) -> f64 {
        self.row2
    }
    /// Right column.
    pub fn col2(&self) -> f64 {
        self.col2
    }
    /// Width, col2 − col1.
    pub fn width(&self) -> f64 {
        self.col2 - self.col1
    }
    /// Height, row2 − row1.
    pub fn height(&self) -> f64 {
        self.row2 - self.row1
    }
    /// Area, (row2 − row1)·(col2 − col1).
    pub fn area(&self) -> f64 {
        self.width() * self.height()
    }

    /// A box from COCO's `[x, y, w, h]` (pixel-edge coordinates): col1 = x − 0.5, row1 = y − 0.5,
    /// col2 = x + w − 0.5, row2 = y + h − 0.5.
    ///
    /// # Errors
    /// As [`Rect1::new`] (zero or negative width or height).
    ///
    /// # Examples
    /// ```
    /// let b = dl_core::Rect1::from_coco([10.0, 20.0, 5.0, 4.0]).unwrap();
    /// assert_eq!((b.row1(), b.col1(), b.row2(), b.col2()), (19.5, 9.5, 23.5, 14.5));
    /// assert_eq!(b.to_coco(), [10.0, 20.0, 5.0, 4.0]);
    /// ```
    pub fn from_coco(b: [f64; 4]) -> Result<Self> {
        Self::new(b[1] - 0.5, b[0] - 0.5, b[1] + b[3] - 0.5, b[0] + b[2] - 0.5)
    }

    /// COCO's `[x, y, w, h]` of the box, the inverse of [`Rect1::from_coco`] (exact whenever the
    /// coordinates are at least 0.5 and carry no more binary digits than f64 holds after adding 0.5).
    pub fn to_coco(&self) -> [f64; 4] {
        let (x, y) = (self.col1 + 0.5, self.row1 + 0.5);
        [x, y, (self.col2 + 0.5) - x, (self.row2 + 0.5) - y]
    }

    /// The box as a rectangle2 (φ = 0, L1 = half width, L2 = half height).
    pub fn to_rect2(&self) -> crate::Rect2 {
        crate::Rect2::new(
            (self.row1 + self.row2) / 2.0,
            (self.col1 + self.col2) / 2.0,
            0.0,
            self.width() / 2.0,
            self.height() / 2.0,
        )
        .expect("a valid rectangle1 has positive extents")
    }

    /// Area of the intersection with `other` (0 when disjoint or touching).
    pub fn intersection_area(&self, other: &Rect1) -> f64 {
        let h = self.row2.min(other.row2) - self.row1.max(other.row1);
        let w = self.col2.min(other.col2) - self.col1.max(other.col1);
        if h <= 0.0 || w <= 0.0 { 0.0 } else { h * w }
    }

    /// Intersection over union with `other`, in [0, 1].
    pub fn iou(&self, other: &Rect1) -> f64 {
        let inter = self.intersection_area(other);
        if inter == 0.0 {
            return 0.0;
        }
        inter / (self.area() + other.area() - inter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dl_testkit::assert_close;
    use proptest::prelude::*;

    fn rect() -> impl Strategy<Value = Rect1> {
        (-100.0..100.0f64, -100.0..100.0f64, 0.01..50.0f64, 0.01..50.0f64)
            .prop_map(|(r, c, h, w)| Rect1::new(r, c, r + h, c + w).expect("positive size"))
    }

    #[test]
    fn iou_of_half_overlap() {
        let a = Rect1::new(0.0, 0.0, 10.0, 10.0).unwrap();
        let b = Rect1::new(0.0, 5.0, 10.0, 15.0).unwrap();
        assert_close!(a.iou(&b), 50.0 / 150.0, 1e-15);
    }

    #[test]
    fn refuses_degenerate_and_nan() {
        assert!(Rect1::new(1.0, 0.0, 1.0, 5.0).is_err());
        assert!(Rect1::new(0.0, 6.0, 1.0, 5.0).is_err());
        assert!(Rect1::new(f64::NAN, 0.0, 1.0, 5.0).is_err());
    }

    proptest! {
        #[test]
        fn iou_is_symmetric_and_bounded(a in rect(), b in rect()) {
            let (ab, ba) = (a.iou(&b), b.iou(&a));
            prop_assert!((ab - ba).abs() < 1e-12);
            prop_assert!((0.0..=1.0).contains(&ab));
            prop_assert!((a.iou(&a) - 1.0).abs() < 1e-12);
        }
    }
}
