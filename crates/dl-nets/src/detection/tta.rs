//! Test-time augmentation of a detector: the network also looks at mirrored (and turned) copies of each
//! image, each view's boxes are mapped back, and the views' detections are fused by weighted box
//! fusion ([`dl_core::fuse_views`]).

use dl_core::{Rect1, Rect2};
use serde::{Deserialize, Serialize};
use std::f64::consts::{FRAC_PI_2, PI};
use tch::Tensor;

/// The IoU above which detections of different views are one object: weighted box fusion's default
/// (Solovyev et al. 2021).
pub const FUSION_IOU: f64 = 0.55;

/// Which views of an image a detector looks at (`test_time_augmentation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TestTimeAugmentation {
    /// The image only (HALCON's behaviour).
    #[default]
    None,
    /// The image and its copies mirrored along rows, columns and both (4 views).
    Mirror,
    /// Those and the same four turned by 90° (8 views, the symmetries of a square).
    Dihedral,
}

/// One view: mirrored along rows and/or columns, then turned by 90° counter-clockwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Turned by 90° counter-clockwise (after mirroring): a `w` × `h` image becomes `h` × `w`.
    pub turn: bool,
    /// Mirrored along rows (r' = h − 1 − r).
    pub rows: bool,
    /// Mirrored along columns (c' = w − 1 − c).
    pub cols: bool,
}

const fn view(turn: bool, rows: bool, cols: bool) -> View {
    View { turn, rows, cols }
}

const DIHEDRAL: [View; 8] = [
    view(false, false, false),
    view(false, true, false),
    view(false, false, true),
    view(false, true, true),
    view(true, false, false),
    view(true, true, false),
    view(true, false, true),
    view(true, true, true),
];

impl TestTimeAugmentation {
    /// The views, the image itself first.
    pub fn views(self) -> &'static [View] {
        match self {
            Self::None => &DIHEDRAL[..1],
            Self::Mirror => &DIHEDRAL[..4],
            Self::Dihedral => &DIHEDRAL,
        }
    }
}

impl View {
    /// The view of images `[N, C, H, W]`.
    pub fn apply(&self, images: &Tensor) -> Tensor {
        let mut x = images.shallow_clone();
        if self.rows {
            x = x.flip([2]);
        }
        if self.cols {
            x = x.flip([3]);
        }
        if self.turn {
            // torch.rot90 from H towards W: (r, c) → (w − 1 − c, r), counter-clockwise on screen.
            x = x.rot90(1, [2, 3]);
        }
        x
    }

    /// A point (row, col) of the view back in the `w` × `h` image.
    pub fn point_back(&self, (r, c): (f64, f64), w: usize, h: usize) -> (f64, f64) {
        let (wf, hf) = (w as f64 - 1.0, h as f64 - 1.0);
        let (r, c) = if self.turn { (c, wf - r) } else { (r, c) };
        (if self.rows { hf - r } else { r }, if self.cols { wf - c } else { c })
    }

    /// A box of the view back in the `w` × `h` image.
    pub fn rect1_back(&self, b: &Rect1, w: usize, h: usize) -> Rect1 {
        let (a, c) =
            (self.point_back((b.row1(), b.col1()), w, h), self.point_back((b.row2(), b.col2()), w, h));
        Rect1::new(a.0.min(c.0), a.1.min(c.1), a.0.max(c.0), a.1.max(c.1)).unwrap_or(*b)
    }

    /// A rotated box of the view back in the `w` × `h` image (φ not normalised modulo π).
    pub fn rect2_back(&self, b: &Rect2, w: usize, h: usize) -> Rect2 {
        let (r, c) = self.point_back((b.row(), b.col()), w, h);
        let mut phi = b.phi() - if self.turn { FRAC_PI_2 } else { 0.0 };
        if self.rows {
            phi = -phi;
        }
        if self.cols {
            phi = PI - phi;
        }
        Rect2::new(r, c, phi, b.length1(), b.length2()).unwrap_or(*b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tch::Kind;

    #[test]
    fn every_view_maps_its_pixels_back() {
        // One marked pixel per channel of a 5 × 3 image: where each view puts it, point_back finds it.
        let (w, h) = (5usize, 3usize);
        for &v in TestTimeAugmentation::Dihedral.views() {
            for (r, c) in [(0usize, 0usize), (2, 1), (1, 4)] {
                let x = Tensor::zeros([1, 1, h as i64, w as i64], (Kind::Float, tch::Device::Cpu));
                let _ = x.get(0).get(0).get(r as i64).get(c as i64).fill_(1.0);
                let y = v.apply(&x);
                let size = y.size();
                assert_eq!((size[2] as usize, size[3] as usize), if v.turn { (w, h) } else { (h, w) });
                let at = i64::try_from(y.reshape([-1]).argmax(0, false)).unwrap() as usize;
                let (vr, vc) = (at / size[3] as usize, at % size[3] as usize);
                assert_eq!(v.point_back((vr as f64, vc as f64), w, h), (r as f64, c as f64), "{v:?}");
            }
        }
        assert_eq!(TestTimeAugmentation::None.views(), &[view(false, false, false)]);
        assert_eq!(TestTimeAugmentation::Mirror.views().len(), 4);
    }

    /// The forward map of a rotated box (as training augmentation moves it: mirror, then turn).
    fn forward(v: &View, b: &Rect2, w: usize, h: usize) -> Rect2 {
        let (wf, hf) = (w as f64 - 1.0, h as f64 - 1.0);
        let (mut r, mut c, mut phi) = (b.row(), b.col(), b.phi());
        if v.cols {
            (c, phi) = (wf - c, PI - phi);
        }
        if v.rows {
            (r, phi) = (hf - r, -phi);
        }
        if v.turn {
            (r, c, phi) = (wf - c, r, phi + FRAC_PI_2);
        }
        Rect2::new(r, c, phi, b.length1(), b.length2()).unwrap()
    }

    proptest! {
        #[test]
        fn boxes_come_back_where_they_were(r in 0.0..30.0f64, c in 0.0..50.0f64, phi in -3.0..3.0f64, l1 in 1.0..9.0f64, l2 in 1.0..9.0f64, k in 0usize..8) {
            let (w, h) = (51, 31);
            let v = DIHEDRAL[k];
            let b = Rect2::new(r, c, phi, l1, l2).unwrap();
            let back = v.rect2_back(&forward(&v, &b, w, h), w, h);
            for (x, y) in [(back.row(), b.row()), (back.col(), b.col()), (back.length1(), l1), (back.length2(), l2)] {
                prop_assert!((x - y).abs() < 1e-9);
            }
            prop_assert!(dl_core::normalize_phi(back.phi() - b.phi()).abs() < 1e-9);
            // rectangle1: the corners of the enclosing box, mapped as points.
            let e = b.enclosing_rect1();
            let f = forward(&v, &b, w, h).enclosing_rect1();
            let eb = v.rect1_back(&f, w, h);
            for (x, y) in [(eb.row1(), e.row1()), (eb.col1(), e.col1()), (eb.row2(), e.row2()), (eb.col2(), e.col2())] {
                prop_assert!((x - y).abs() < 1e-9);
            }
        }
    }
}
