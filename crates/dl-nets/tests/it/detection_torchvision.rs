//! Anchors, box coding, the focal loss and the GIoU loss equal torchvision's (fixtures/detection_torchvision.json,
//! made by fixtures/scripts/detection_torchvision.py with torch 2.13.0 and torchvision 0.28.0).

use dl_nets::detection::{anchors, box_coder, giou_loss_of_deltas, sigmoid_focal_loss};
use tch::Tensor;

fn fixture() -> serde_json::Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/detection_torchvision.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn rows<const N: usize>(v: &serde_json::Value) -> Vec<[f32; N]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let r: Vec<f32> = r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            r.try_into().unwrap()
        })
        .collect()
}

fn flat(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

/// The largest |a − b| / max(1, |b|), failing on NaN and on different lengths.
fn worst(a: &[f32], b: &[f32]) -> f32 {
    dl_testkit::max_rel_diff(a, b) as f32
}

#[test]
fn anchors_equal_torchvision_anchor_generator() {
    let f = fixture();
    let [h, w] = [64i64, 96];
    let want = rows::<4>(&f["anchors"]["boxes"]);
    let mut ours = Vec::new();
    let mut counts = Vec::new();
    for level in [2i64, 3, 4] {
        let base = anchors::base_anchors(&anchors::level_sizes(level, 3), &[1.0, 2.0, 0.5]);
        let s = 1 << level;
        let g = anchors::grid_anchors(&base, h / s, w / s, s);
        counts.push(g.len() as u64);
        ours.extend(g);
    }
    let want_counts: Vec<u64> =
        f["anchors"]["counts"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(counts, want_counts);
    assert_eq!(ours, want, "anchors differ");
}

#[test]
fn box_coding_equals_torchvision_box_coder() {
    let f = fixture();
    let e = &f["encode"];
    let (anc, gt, want) = (rows::<4>(&e["anchors"]), rows::<4>(&e["gt"]), rows::<4>(&e["deltas"]));
    assert_eq!(anc.len(), 200);
    let ours: Vec<f32> = gt.iter().zip(&anc).flat_map(|(g, a)| box_coder::encode(g, a)).collect();
    let w = worst(&ours, &want.concat());
    eprintln!("encode: worst relative difference {w:e}");
    assert!(w <= 1e-6, "{w}");
    let d = &f["decode"];
    let (anc, codes, want) = (rows::<4>(&d["anchors"]), rows::<4>(&d["deltas"]), rows::<4>(&d["boxes"]));
    let ours: Vec<f32> = codes.iter().zip(&anc).flat_map(|(c, a)| box_coder::decode(c, a)).collect();
    let w = worst(&ours, &want.concat());
    eprintln!("decode (10 with clipped sizes): worst relative difference {w:e}");
    assert!(w <= 1e-6, "{w}");
}

#[test]
fn focal_loss_equals_torchvision() {
    let f = fixture()["focal"].clone();
    let (x, t, want) = (flat(&f["logits"]), flat(&f["targets"]), flat(&f["loss"]));
    let loss = sigmoid_focal_loss(&Tensor::from_slice(&x), &Tensor::from_slice(&t), 0.25, 2.0);
    let ours: Vec<f32> = Vec::try_from(loss).unwrap();
    let worst_abs = dl_testkit::max_abs_diff(&ours, &want);
    eprintln!("focal loss: max |ours − torchvision| = {worst_abs:e}");
    assert!(worst_abs <= 1e-6, "{worst_abs}");
}

#[test]
fn giou_loss_equals_torchvision() {
    let g = fixture()["giou"].clone();
    let (pred, target, want) = (rows::<4>(&g["pred"]), rows::<4>(&g["target"]), flat(&g["loss"]));
    let t = |r: &[[f32; 4]]| Tensor::from_slice(&r.concat()).reshape([-1, 4]);
    // torchvision decodes on the anchors; the loss does not need them (GIoU is unchanged by moving and
    // scaling each axis).
    let ours: Vec<f32> = Vec::try_from(giou_loss_of_deltas(&t(&pred), &t(&target))).unwrap();
    let worst_abs = dl_testkit::max_abs_diff(&ours, &want);
    eprintln!("GIoU loss: max |ours − torchvision| = {worst_abs:e} over {} pairs", want.len());
    assert!(worst_abs <= 1e-5, "{worst_abs}");
}
