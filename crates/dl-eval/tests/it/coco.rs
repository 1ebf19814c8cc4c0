//! COCO bbox evaluation equals pycocotools 2.0.11 (fixtures/coco, made by
//! fixtures/scripts/coco_eval_pycocotools.py).

use dl_core::Rect1;
use dl_eval::coco_files::load_coco_detections;
use dl_eval::detection::{DetectionEvalParams, evaluate_detections};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/coco")
}

#[test]
fn twelve_summary_numbers_equal_pycocotools() {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap();
    let sets = expected["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 3);
    for (name, want) in sets {
        let (images, _) = load_coco_detections::<Rect1>(
            &fixtures().join(format!("set_{name}_gt.json")),
            &fixtures().join(format!("set_{name}_dt.json")),
        )
        .unwrap();
        let eval = evaluate_detections(&images, &DetectionEvalParams::coco()).unwrap();
        let got = eval.coco_summary().unwrap();
        assert_eq!(got.len(), want.as_array().unwrap().len(), "set {name}: number of COCO stats");
        for (i, (g, w)) in got.iter().zip(want.as_array().unwrap()).enumerate() {
            let w = w.as_f64().unwrap();
            assert!((g - w).abs() <= 1e-9, "set {name}, stat {i}: {g} vs pycocotools {w}");
        }
    }
}

#[test]
fn unknown_images_and_classes_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dt = tmp.path().join("dt.json");
    let gt = fixtures().join("set_sparse_gt.json");
    std::fs::write(&dt, r#"[{"image_id": 9999, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}]"#)
        .unwrap();
    let err = load_coco_detections::<Rect1>(&gt, &dt).unwrap_err().to_string();
    assert!(err.contains("detection 0") && err.contains("9999"), "{err}");
    std::fs::write(&dt, r#"[{"image_id": 1, "category_id": 77, "bbox": [0, 0, 5, 5], "score": 0.5}]"#)
        .unwrap();
    assert!(load_coco_detections::<Rect1>(&gt, &dt).unwrap_err().to_string().contains("category_id 77"));
    std::fs::write(&dt, r#"[{"image_id": 1, "category_id": 1, "bbox": [0, 0, -5, 5], "score": 0.5}]"#)
        .unwrap();
    assert!(load_coco_detections::<Rect1>(&gt, &dt).unwrap_err().to_string().contains("no area"));
    std::fs::write(&dt, r#"[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]}]"#).unwrap();
    assert!(load_coco_detections::<Rect1>(&gt, &dt).unwrap_err().to_string().contains("score"));
}
