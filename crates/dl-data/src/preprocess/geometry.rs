//! Pixel geometry of preprocessing: the crop-and-resize coordinate map, bilinear and nearest-neighbour
//! resizing, mirroring and 90° rotation of planes — all in the pixel-centre convention (SPEC §1.1).

use dl_core::{Point, Rect1, Rect2};

/// The coordinate map of "crop at (row0, col0), then resize by (sy, sx)":
/// r' = (r − row0 + 0.5)·sy − 0.5, c' = (c − col0 + 0.5)·sx − 0.5.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageMap {
    /// Crop offset in rows.
    pub row0: f64,
    /// Crop offset in columns.
    pub col0: f64,
    /// Row scale, new height / cropped height.
    pub sy: f64,
    /// Column scale, new width / cropped width.
    pub sx: f64,
    /// The region's (width, height) in the original image.
    pub region: (usize, usize),
    /// The original image's (width, height).
    pub source: (usize, usize),
}

impl ImageMap {
    /// The map from a `w`×`h` region at (`row0`, `col0`) to a `new_w`×`new_h` image.
    pub fn new(row0: usize, col0: usize, w: usize, h: usize, new_w: usize, new_h: usize) -> Self {
        Self {
            row0: row0 as f64,
            col0: col0 as f64,
            sy: new_h as f64 / h as f64,
            sx: new_w as f64 / w as f64,
            region: (w, h),
            source: (col0 + w, row0 + h),
        }
    }

    /// The same map for a region of a `width` × `height` original image (the default is the smallest
    /// image holding the region).
    pub fn with_source(self, width: usize, height: usize) -> Self {
        Self { source: (width, height), ..self }
    }

    /// Original → preprocessed.
    pub fn forward(&self, (r, c): Point) -> Point {
        ((r - self.row0 + 0.5) * self.sy - 0.5, (c - self.col0 + 0.5) * self.sx - 0.5)
    }

    /// Preprocessed → original.
    pub fn backward(&self, (r, c): Point) -> Point {
        ((r + 0.5) / self.sy - 0.5 + self.row0, (c + 0.5) / self.sx - 0.5 + self.col0)
    }

    fn rect1(&self, b: &Rect1, f: impl Fn(Point) -> Point) -> Rect1 {
        let (r1, c1) = f((b.row1(), b.col1()));
        let (r2, c2) = f((b.row2(), b.col2()));
        Rect1::new(r1, c1, r2, c2).expect("a positive scale keeps the box valid")
    }

    /// A rectangle1 mapped forward.
    pub fn rect1_forward(&self, b: &Rect1) -> Rect1 {
        self.rect1(b, |p| self.forward(p))
    }

    /// A rectangle1 mapped back to the original image.
    pub fn rect1_backward(&self, b: &Rect1) -> Rect1 {
        self.rect1(b, |p| self.backward(p))
    }

    fn rect2(&self, b: &Rect2, sy: f64, sx: f64, f: impl Fn(Point) -> Point) -> Rect2 {
        if sy == sx {
            let (r, c) = f((b.row(), b.col()));
            return Rect2::new(r, c, b.phi(), b.length1() * sx, b.length2() * sx)
                .expect("a positive scale keeps the box valid");
        }
        // Anisotropic: the corners form a parallelogram; refit with length1 along the first edge.
        let corners = b.corners().map(f);
        Rect2::from_corners(&corners).expect("a positive scale keeps the corners apart")
    }

    /// A rectangle2 mapped forward (isotropic: exact; anisotropic: through its corners, refitted).
    pub fn rect2_forward(&self, b: &Rect2) -> Rect2 {
        self.rect2(b, self.sy, self.sx, |p| self.forward(p))
    }

    /// A rectangle2 mapped back to the original image.
    pub fn rect2_backward(&self, b: &Rect2) -> Rect2 {
        self.rect2(b, 1.0 / self.sy, 1.0 / self.sx, |p| self.backward(p))
    }
}

/// Bilinear resize of one plane (`w`×`h` → `nw`×`nh`), sampling at c = (c' + 0.5)·w/nw − 0.5 with
/// coordinates clamped to the image (edge pixels repeat).
pub fn resize_bilinear(src: &[f32], w: usize, h: usize, nw: usize, nh: usize) -> Vec<f32> {
    let mut out = vec![0f32; nw * nh];
    resize_bilinear_into(src, w, h, nw, nh, &mut out);
    out
}

/// [`resize_bilinear`] into a given `nw × nh` buffer.
///
/// # Panics
/// When `dst` does not hold `nw × nh` values.
pub fn resize_bilinear_into(src: &[f32], w: usize, h: usize, nw: usize, nh: usize, dst: &mut [f32]) {
    assert_eq!(dst.len(), nw * nh, "destination size");
    if w == nw && h == nh {
        dst.copy_from_slice(&src[..w * h]);
        return;
    }
    let taps = |n: usize, nn: usize| -> Vec<(usize, usize, f32)> {
        (0..nn)
            .map(|i| {
                let x = ((i as f64 + 0.5) * n as f64 / nn as f64 - 0.5).clamp(0.0, (n - 1) as f64);
                let x0 = x.floor() as usize;
                let x1 = (x0 + 1).min(n - 1);
                (x0, x1, (x - x0 as f64) as f32)
            })
            .collect()
    };
    let (cols, rows) = (taps(w, nw), taps(h, nh));
    for (r, &(y0, y1, fy)) in rows.iter().enumerate() {
        let (a, b) = (&src[y0 * w..(y0 + 1) * w], &src[y1 * w..(y1 + 1) * w]);
        let row = &mut dst[r * nw..(r + 1) * nw];
        for (d, &(x0, x1, fx)) in row.iter_mut().zip(&cols) {
            let top = a[x0] + (a[x1] - a[x0]) * fx;
            let bottom = b[x0] + (b[x1] - b[x0]) * fx;
            *d = top + (bottom - top) * fy;
        }
    }
}

/// Nearest-neighbour resize: each new pixel takes the source pixel its centre falls in,
/// floor((c' + 0.5)·w/nw).
pub fn resize_nearest<T: Copy>(src: &[T], w: usize, h: usize, nw: usize, nh: usize) -> Vec<T> {
    let index = |i: usize, n: usize, nn: usize| {
        (((i as f64 + 0.5) * n as f64 / nn as f64).floor() as usize).min(n - 1)
    };
    let cols: Vec<usize> = (0..nw).map(|c| index(c, w, nw)).collect();
    let mut out = Vec::with_capacity(nw * nh);
    for r in 0..nh {
        let row = &src[index(r, h, nh) * w..][..w];
        out.extend(cols.iter().map(|&c| row[c]));
    }
    out
}

/// Crops rows `r0 .. r0 + ch` and columns `c0 .. c0 + cw` of a `w`-wide plane.
pub fn crop<T: Copy>(src: &[T], w: usize, r0: usize, c0: usize, cw: usize, ch: usize) -> Vec<T> {
    (r0..r0 + ch).flat_map(|r| src[r * w + c0..r * w + c0 + cw].iter().copied()).collect()
}

/// Mirrors a plane: rows (r' = h − 1 − r), columns (c' = w − 1 − c), or both.
pub fn mirror<T: Copy>(src: &[T], w: usize, h: usize, rows: bool, cols: bool) -> Vec<T> {
    let mut out = Vec::with_capacity(src.len());
    for r in 0..h {
        let sr = if rows { h - 1 - r } else { r };
        let row = &src[sr * w..(sr + 1) * w];
        if cols { out.extend(row.iter().rev()) } else { out.extend_from_slice(row) }
    }
    out
}

/// Rotates a `w`×`h` plane by 90° counter-clockwise (as seen on screen): the result is `h`×`w` and
/// pixel (r, c) moves to (w − 1 − c, r).
pub fn rotate90<T: Copy + Default>(src: &[T], w: usize, h: usize) -> Vec<T> {
    let (nw, _nh) = (h, w);
    let mut out = vec![T::default(); src.len()];
    for r in 0..h {
        for c in 0..w {
            out[(w - 1 - c) * nw + r] = src[r * w + c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bilinear_hand_values_and_border() {
        // 2×1 → 4×1: sample points x = -0.25, 0.25, 0.75, 1.25 → clamped 0, 0.25, 0.75, 1.
        let out = resize_bilinear(&[0.0, 8.0], 2, 1, 4, 1);
        assert_eq!(out, vec![0.0, 2.0, 6.0, 8.0]);
        // 4×1 → 2×1: x = 0.5, 2.5 → means of neighbours.
        assert_eq!(resize_bilinear(&[0.0, 2.0, 4.0, 6.0], 4, 1, 2, 1), vec![1.0, 5.0]);
    }

    #[test]
    fn nearest_takes_the_covering_pixel() {
        assert_eq!(resize_nearest(&[1u16, 2, 3], 3, 1, 6, 1), vec![1, 1, 2, 2, 3, 3]);
        assert_eq!(resize_nearest(&[1u16, 2, 3, 4], 4, 1, 2, 1), vec![2, 4]);
    }

    #[test]
    fn map_matches_spec_formula() {
        let m = ImageMap::new(0, 0, 100, 50, 200, 100);
        assert_eq!(m.forward((-0.5, -0.5)), (-0.5, -0.5));
        assert_eq!(m.forward((49.5, 99.5)), (99.5, 199.5));
        assert_eq!(m.forward((0.0, 0.0)), (0.5, 0.5));
    }

    proptest! {
        #[test]
        fn box_maps_invert(w in 10usize..500, h in 10usize..500, nw in 10usize..500, nh in 10usize..500,
                           r0 in 0usize..20, c0 in 0usize..20,
                           r in -10.0..400.0f64, c in -10.0..400.0f64, dh in 0.5..100.0f64, dw in 0.5..100.0f64,
                           phi in -3.1..3.1f64) {
            let m = ImageMap::new(r0, c0, w, h, nw, nh);
            let b = Rect1::new(r, c, r + dh, c + dw).unwrap();
            let back = m.rect1_backward(&m.rect1_forward(&b));
            for (x, y) in [(back.row1(), b.row1()), (back.col1(), b.col1()), (back.row2(), b.row2()), (back.col2(), b.col2())] {
                prop_assert!((x - y).abs() < 1e-6);
            }
            // Isotropic rectangle2: exact inverse.
            let iso = ImageMap::new(r0, c0, w, h, nw, nw * h / w.max(1));
            let iso = ImageMap { sy: iso.sx, ..iso };
            let b2 = Rect2::new(r, c, phi, dh, dw).unwrap();
            let back2 = iso.rect2_backward(&iso.rect2_forward(&b2));
            prop_assert!((back2.row() - b2.row()).abs() < 1e-6 && (back2.col() - b2.col()).abs() < 1e-6);
            prop_assert!((back2.length1() - b2.length1()).abs() < 1e-6 && (back2.phi() - b2.phi()).abs() < 1e-9);
        }

        #[test]
        fn mirror_twice_and_rotate_four_times_are_identities(w in 1usize..12, h in 1usize..12, seed in any::<u64>()) {
            let mut rng = dl_core::Rng::new(seed);
            let img: Vec<u16> = (0..w * h).map(|_| rng.below(100) as u16).collect();
            for (rows, cols) in [(true, false), (false, true), (true, true)] {
                prop_assert_eq!(mirror(&mirror(&img, w, h, rows, cols), w, h, rows, cols), img.clone());
            }
            let r1 = rotate90(&img, w, h);
            let r2 = rotate90(&r1, h, w);
            let r3 = rotate90(&r2, w, h);
            prop_assert_eq!(rotate90(&r3, h, w), img);
        }
    }
}
