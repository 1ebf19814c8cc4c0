//! Anchors per feature level, as torchvision's `AnchorGenerator` makes them: per position every
//! combination of aspect ratio (height / width) and size, centred on the position's top-left pixel edge
//! (x = col · stride), rounded to whole pixels; for rotated boxes each of them at every anchor angle.
//!
//! Coordinates here are torchvision's: pixel-edge `(x1, y1, x2, y2)` (x = column + 0.5, y = row + 0.5
//! in dlkit's pixel-centre convention).

/// The anchor sizes of a level: `4 · 2^level · 2^(i / num_subscales)` for i = 0 … num_subscales − 1
/// (RetinaNet's 32, 40.3, 50.8 at level 3, unrounded).
pub fn level_sizes(level: i64, num_subscales: usize) -> Vec<f64> {
    let base = 4.0 * 2f64.powi(level as i32);
    (0..num_subscales).map(|i| base * 2f64.powf(i as f64 / num_subscales as f64)).collect()
}

/// torchvision's `generate_anchors`: zero-centred base anchors `[x1, y1, x2, y2]` for every aspect ratio
/// (outer) and size (inner), in f32 and rounded half to even as `torch.round`.
pub fn base_anchors(sizes: &[f64], aspect_ratios: &[f64]) -> Vec<[f32; 4]> {
    let mut out = Vec::with_capacity(sizes.len() * aspect_ratios.len());
    for &ar in aspect_ratios {
        let h_ratio = (ar as f32).sqrt();
        let w_ratio = 1.0 / h_ratio;
        for &s in sizes {
            let (ws, hs) = (w_ratio * s as f32, h_ratio * s as f32);
            out.push([-ws / 2.0, -hs / 2.0, ws / 2.0, hs / 2.0].map(f32::round_ties_even));
        }
    }
    out
}

/// torchvision's `grid_anchors` for one level: positions row by row (y outer, x inner), the base anchors
/// of each position in order, shifted by `(x · stride, y · stride)`.
pub fn grid_anchors(base: &[[f32; 4]], height: i64, width: i64, stride: i64) -> Vec<[f32; 4]> {
    let mut out = Vec::with_capacity((height * width) as usize * base.len());
    for y in 0..height {
        for x in 0..width {
            let (sx, sy) = ((x * stride) as f32, (y * stride) as f32);
            out.extend(base.iter().map(|b| [b[0] + sx, b[1] + sy, b[2] + sx, b[3] + sy]));
        }
    }
    out
}

/// A rotated anchor: centre `(cx, cy)` (pixel-edge), full width along the box's own axis, full height
/// across it, angle θ (dlkit's φ: counter-clockwise from the column axis, rows pointing down).
pub type RotatedAnchor = [f32; 5];

/// Rotated anchors: every axis-aligned anchor of [`grid_anchors`] at every angle (angles innermost),
/// its width along the angle's direction.
pub fn rotated(anchors: &[[f32; 4]], angles: &[f64]) -> Vec<RotatedAnchor> {
    let mut out = Vec::with_capacity(anchors.len() * angles.len());
    for a in anchors {
        let (w, h) = (a[2] - a[0], a[3] - a[1]);
        let (cx, cy) = (a[0] + 0.5 * w, a[1] + 0.5 * h);
        out.extend(angles.iter().map(|&t| [cx, cy, w, h, t as f32]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retinanet_level_three_sizes_and_hand_anchors() {
        let s = level_sizes(3, 3);
        assert_eq!(s[0], 32.0);
        assert!((s[1] - 32.0 * 2f64.powf(1.0 / 3.0)).abs() < 1e-12);
        // Ratio 1, size 32 → ±16; ratio 2 (tall): w = 32/√2 = 22.6 → ±11.31 → 11, h ±22.63 → 23.
        let b = base_anchors(&[32.0], &[1.0, 2.0]);
        assert_eq!(b, vec![[-16.0, -16.0, 16.0, 16.0], [-11.0, -23.0, 11.0, 23.0]]);
        let g = grid_anchors(&b, 2, 3, 8);
        assert_eq!(g.len(), 12);
        assert_eq!(g[2 * 5 + 1], [-11.0 + 16.0, -23.0 + 8.0, 11.0 + 16.0, 23.0 + 8.0]);
        // round half to even: 2.5 → 2, as torch.round.
        assert_eq!(base_anchors(&[5.0], &[1.0])[0], [-2.0, -2.0, 2.0, 2.0]);
        let r = rotated(&g[..1], &[0.0, 1.0]);
        assert_eq!(r, vec![[0.0, 0.0, 32.0, 32.0, 0.0], [0.0, 0.0, 32.0, 32.0, 1.0]]);
    }
}
