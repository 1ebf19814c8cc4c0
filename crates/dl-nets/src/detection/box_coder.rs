//! Box coding: axis-aligned boxes exactly as torchvision's `BoxCoder` with weights (1, 1, 1, 1) (centre
//! offsets relative to the anchor size, log size ratios, `exp` clipped at log(1000/16)), in f32 as it
//! computes; rotated boxes with the centre offset measured along the anchor's own axes, log size ratios,
//! and the angle difference as (sin kΔ, cos kΔ) — k = 2 when boxes have no front (`ignore_direction`,
//! after choosing of the box's two equivalent descriptions the one nearer the anchor's angle, so that
//! |Δ| ≤ π/4), k = 1 otherwise (period 2π, the direction kept).

use super::anchors::RotatedAnchor;
use std::f64::consts::{FRAC_PI_2, PI};

/// torchvision's `bbox_xform_clip`.
pub const BBOX_XFORM_CLIP: f32 = 4.135_166_6; // ln(1000 / 16)

/// Deltas `(dx, dy, dw, dh)` of `gt` against `anchor` (both pixel-edge `x1, y1, x2, y2`).
pub fn encode(gt: &[f32; 4], anchor: &[f32; 4]) -> [f32; 4] {
    let (ew, eh) = (anchor[2] - anchor[0], anchor[3] - anchor[1]);
    let (ex, ey) = (anchor[0] + 0.5 * ew, anchor[1] + 0.5 * eh);
    let (gw, gh) = (gt[2] - gt[0], gt[3] - gt[1]);
    let (gx, gy) = (gt[0] + 0.5 * gw, gt[1] + 0.5 * gh);
    [(gx - ex) / ew, (gy - ey) / eh, (gw / ew).ln(), (gh / eh).ln()]
}

/// The box of deltas `d` on `anchor` (inverse of [`encode`], sizes clipped as torchvision).
pub fn decode(d: &[f32; 4], anchor: &[f32; 4]) -> [f32; 4] {
    let (w, h) = (anchor[2] - anchor[0], anchor[3] - anchor[1]);
    let (cx, cy) = (anchor[0] + 0.5 * w, anchor[1] + 0.5 * h);
    let (px, py) = (d[0] * w + cx, d[1] * h + cy);
    let (pw, ph) = (d[2].min(BBOX_XFORM_CLIP).exp() * w, d[3].min(BBOX_XFORM_CLIP).exp() * h);
    let (hw, hh) = (0.5 * pw, 0.5 * ph);
    [px - hw, py - hh, px + hw, py + hh]
}

/// A rotated box in the coder's terms: centre `(cx, cy)` (pixel-edge), full width along θ, full height
/// across it, θ (dlkit's φ).
pub type RotatedBox = [f64; 5];

/// Unit vectors (x, y) of a box's width and height axes at angle θ (counter-clockwise, rows down).
fn axes(theta: f64) -> ((f64, f64), (f64, f64)) {
    let (s, c) = theta.sin_cos();
    ((c, -s), (-s, -c))
}

fn wrap(a: f64, period: f64) -> f64 {
    let mut v = a.rem_euclid(period);
    if v > period / 2.0 {
        v -= period;
    }
    v
}

/// The description of `gt` to regress from `anchor`: as given, or — without a front — the one of its
/// four equivalent descriptions (θ + kπ/2, width and height swapped for odd k) whose angle is nearest.
pub fn canonical(gt: &RotatedBox, anchor_theta: f64, ignore_direction: bool) -> RotatedBox {
    if !ignore_direction {
        return *gt;
    }
    let d = wrap(gt[4] - anchor_theta, PI);
    if d.abs() <= PI / 4.0 {
        [gt[0], gt[1], gt[2], gt[3], anchor_theta + d]
    } else {
        let d = wrap(d - FRAC_PI_2, PI);
        [gt[0], gt[1], gt[3], gt[2], anchor_theta + d]
    }
}

/// Deltas `(u, v, dw, dh, sin kΔ, cos kΔ)` of `gt` against a rotated anchor: the centre offset along
/// the anchor's width and height axes relative to its width and height, log size ratios, and the angle
/// difference (see the module documentation).
pub fn encode_rotated(gt: &RotatedBox, anchor: &RotatedAnchor, ignore_direction: bool) -> [f32; 6] {
    let a = anchor.map(f64::from);
    let g = canonical(gt, a[4], ignore_direction);
    let (e1, e2) = axes(a[4]);
    let (dx, dy) = (g[0] - a[0], g[1] - a[1]);
    let k = if ignore_direction { 2.0 } else { 1.0 };
    let delta = g[4] - a[4];
    [
        (dx * e1.0 + dy * e1.1) / a[2],
        (dx * e2.0 + dy * e2.1) / a[3],
        (g[2] / a[2]).ln(),
        (g[3] / a[3]).ln(),
        (k * delta).sin(),
        (k * delta).cos(),
    ]
    .map(|v| v as f32)
}

/// The rotated box of deltas `d` on `anchor` (inverse of [`encode_rotated`]; sizes clipped as for
/// axis-aligned boxes). θ is returned unnormalised.
pub fn decode_rotated(d: &[f32; 6], anchor: &RotatedAnchor, ignore_direction: bool) -> RotatedBox {
    let a = anchor.map(f64::from);
    let d = d.map(f64::from);
    let (e1, e2) = axes(a[4]);
    let (u, v) = (d[0] * a[2], d[1] * a[3]);
    let clip = f64::from(BBOX_XFORM_CLIP);
    let k = if ignore_direction { 2.0 } else { 1.0 };
    [
        a[0] + u * e1.0 + v * e2.0,
        a[1] + u * e1.1 + v * e2.1,
        d[2].min(clip).exp() * a[2],
        d[3].min(clip).exp() * a[3],
        a[4] + d[4].atan2(d[5]) / k,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn identity_and_hand_values() {
        let a = [0.0, 0.0, 10.0, 20.0];
        assert_eq!(encode(&a, &a), [0.0, 0.0, 0.0, 0.0]);
        let d = encode(&[5.0, 0.0, 15.0, 40.0], &a);
        assert!((d[0] - 0.5).abs() < 1e-7 && (d[1] - 0.5).abs() < 1e-7 && d[2] == 0.0);
        assert!((d[3] - 2f32.ln()).abs() < 1e-7);
        // A huge size delta is clipped at 1000/16 times the anchor.
        let big = decode(&[0.0, 0.0, 100.0, 0.0], &a);
        assert!(((big[2] - big[0]) - 10.0 * 62.5).abs() < 1e-2);
    }

    proptest! {
        /// Axis-aligned: decode(encode(b)) = b.
        #[test]
        fn rect1_round_trip(x in -50f32..50.0, y in -50f32..50.0, w in 1f32..80.0, h in 1f32..80.0,
                            ax in -50f32..50.0, ay in -50f32..50.0, aw in 4f32..64.0, ah in 4f32..64.0) {
            let (g, a) = ([x, y, x + w, y + h], [ax, ay, ax + aw, ay + ah]);
            let back = decode(&encode(&g, &a), &a);
            for i in 0..4 {
                prop_assert!((back[i] - g[i]).abs() < 1e-3, "{:?} vs {:?}", back, g);
            }
        }

        /// Rotated: the decoded box is the same rectangle; with a front, φ is kept modulo 2π; without,
        /// the box equals the original up to its equivalent descriptions (same corners set).
        #[test]
        fn rect2_round_trip(cx in -50f64..50.0, cy in -50f64..50.0, w in 2f64..80.0, h in 2f64..80.0,
                            t in -3.2f64..3.2, at in -3.2f64..3.2, aw in 4f32..64.0, ah in 4f32..64.0,
                            ignore in any::<bool>()) {
            let g = [cx, cy, w, h, t];
            let a = [1.0f32, -2.0, aw, ah, at as f32];
            let back = decode_rotated(&encode_rotated(&g, &a, ignore), &a, ignore);
            prop_assert!((back[0] - cx).abs() < 1e-3 && (back[1] - cy).abs() < 1e-3);
            if ignore {
                let c = canonical(&g, f64::from(a[4]), true);
                prop_assert!((back[2] - c[2]).abs() < 1e-3 && (back[3] - c[3]).abs() < 1e-3);
                prop_assert!(wrap(back[4] - g[4], FRAC_PI_2).abs() < 1e-4);
                // The chosen description turns by 0 or a quarter turn, with the sizes swapped for the latter.
                if wrap(c[4] - g[4], PI).abs() > 0.1 {
                    prop_assert!(c[2] == g[3] && c[3] == g[2]);
                } else {
                    prop_assert!(c[2] == g[2] && c[3] == g[3]);
                }
            } else {
                prop_assert!((back[2] - w).abs() < 1e-3 && (back[3] - h).abs() < 1e-3);
                prop_assert!(wrap(back[4] - t, 2.0 * PI).abs() < 1e-4);
            }
        }
    }
}
