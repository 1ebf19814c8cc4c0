//! Rotated IoU against shapely (fixtures/rotated_iou_shapely.json, made by
//! fixtures/scripts/rotated_iou_shapely.py).

use dl_core::Rect2;

fn fixture(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn rect2(v: &serde_json::Value) -> Rect2 {
    let n = |i: usize| v[i].as_i64().unwrap() as f64;
    Rect2::new(n(0) / 64.0, n(1) / 64.0, n(2) * std::f64::consts::PI / 4096.0, n(3) / 64.0, n(4) / 64.0)
        .unwrap()
}

#[test]
fn rotated_iou_equals_shapely_on_10000_pairs() {
    let f = fixture("rotated_iou_shapely.json");
    let pairs = f["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 10_000);
    let mut worst = 0.0f64;
    for (i, p) in pairs.iter().enumerate() {
        let (a, b, want) = (rect2(&p[0]), rect2(&p[1]), p[2].as_f64().unwrap());
        let got = a.iou(&b);
        worst = worst.max((got - want).abs());
        assert!((got - want).abs() <= 1e-9, "pair {i}: {got} vs shapely {want} ({a:?}, {b:?})");
    }
    eprintln!("largest difference to shapely: {worst:e}");
}
