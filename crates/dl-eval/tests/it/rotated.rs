//! Rotated-box (rectangle2) evaluation: with every angle 0 it equals pycocotools on the axis-aligned
//! boxes (the committed fixtures/coco, made by fixtures/scripts/coco_eval_pycocotools.py); rotating the
//! whole scene changes no number.

use dl_core::{Rect1, Rect2};
use dl_eval::coco_files::load_coco_detections;
use dl_eval::detection::{
    Detection, DetectionEvalParams, DetectionEvaluation, GroundTruth, ImageDetections, evaluate_detections,
};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/coco")
}

fn expected() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap()
}

/// The rectangle1 box as a rectangle2 of angle 0 (length1 along the columns).
fn upright(b: &Rect1) -> Rect2 {
    Rect2::new(
        (b.row1() + b.row2()) / 2.0,
        (b.col1() + b.col2()) / 2.0,
        0.0,
        (b.col2() - b.col1()) / 2.0,
        (b.row2() - b.row1()) / 2.0,
    )
    .unwrap()
}

/// A fixture set with every box as an upright rectangle2 (ground-truth areas, crowd flags, classes,
/// scores and order unchanged).
fn upright_set(name: &str) -> Vec<ImageDetections<Rect2>> {
    let (images, _) = load_coco_detections::<Rect1>(
        &fixtures().join(format!("set_{name}_gt.json")),
        &fixtures().join(format!("set_{name}_dt.json")),
    )
    .unwrap();
    images
        .into_iter()
        .map(|i| ImageDetections {
            image_id: i.image_id,
            ground_truth: i
                .ground_truth
                .iter()
                .map(|g| GroundTruth {
                    class: g.class,
                    bbox: upright(&g.bbox),
                    area: g.area,
                    iscrowd: g.iscrowd,
                })
                .collect(),
            detections: i
                .detections
                .iter()
                .map(|d| Detection { class: d.class, bbox: upright(&d.bbox), score: d.score, area: d.area })
                .collect(),
        })
        .collect()
}

/// Every box turned by `theta` about (row0, col0): centre rotated, φ increased by θ (HALCON's φ turns
/// counter-clockwise with rows pointing down, so the direction (cos φ, −sin φ) in (col, row) turns along).
fn rotate_scene(
    images: &[ImageDetections<Rect2>],
    theta: f64,
    row0: f64,
    col0: f64,
) -> Vec<ImageDetections<Rect2>> {
    let (s, c) = theta.sin_cos();
    let turn = |b: &Rect2| {
        let (dr, dc) = (b.row() - row0, b.col() - col0);
        let (nc, nr) = (dc * c + dr * s, -dc * s + dr * c);
        Rect2::new(row0 + nr, col0 + nc, b.phi() + theta, b.length1(), b.length2()).unwrap()
    };
    images
        .iter()
        .map(|i| ImageDetections {
            image_id: i.image_id,
            ground_truth: i
                .ground_truth
                .iter()
                .map(|g| GroundTruth { bbox: turn(&g.bbox), ..g.clone() })
                .collect(),
            detections: i.detections.iter().map(|d| Detection { bbox: turn(&d.bbox), ..d.clone() }).collect(),
        })
        .collect()
}

/// Every number of an evaluation: the 12 COCO numbers, the precision and recall arrays, SoAP.
fn all_numbers(e: &DetectionEvaluation) -> Vec<f64> {
    let mut v = e.coco_summary().unwrap().to_vec();
    v.extend(&e.precision);
    v.extend(&e.recall);
    v.extend(&e.soap);
    v
}

#[test]
fn upright_rectangle2_evaluation_equals_pycocotools() {
    let want = expected();
    let sets = want["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 3);
    for (name, stats) in sets {
        let images = upright_set(name);
        assert!(images.iter().map(|i| i.detections.len()).sum::<usize>() > 0, "set {name} is not empty");
        let eval = evaluate_detections(&images, &DetectionEvalParams::coco()).unwrap();
        let pycocotools: Vec<f64> = stats.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let d = dl_testkit::max_abs_diff(&eval.coco_summary().unwrap()[..], &pycocotools[..]);
        assert!(d <= 1e-9, "set {name}: rectangle2 numbers differ from pycocotools by {d:e}");
        // Angles all equal: the true positives' orientation is perfect.
        assert!(eval.soap.iter().all(|&s| s == 1.0 || s == -1.0), "set {name}: {:?}", eval.soap);
        assert!(eval.soap.contains(&1.0));
    }
}

#[test]
fn rotating_the_whole_scene_changes_no_number() {
    for name in ["dense", "mixed"] {
        let images = upright_set(name);
        let before = evaluate_detections(&images, &DetectionEvalParams::coco()).unwrap();
        for (theta, row0, col0) in
            [(0.6, 240.0, 320.0), (std::f64::consts::FRAC_PI_2, 0.0, 0.0), (-2.5, 100.0, -50.0)]
        {
            let after =
                evaluate_detections(&rotate_scene(&images, theta, row0, col0), &DetectionEvalParams::coco())
                    .unwrap();
            let d = dl_testkit::max_abs_diff(&all_numbers(&after), &all_numbers(&before));
            assert!(d <= 1e-9, "set {name}, θ = {theta}: numbers change by {d:e}");
        }
    }
}

#[test]
fn a_turned_detection_scores_soap_and_misses_at_high_thresholds() {
    // One ground-truth box and one detection turned by 0.2 rad about the same centre: IoU
    // = 1 − the uncovered corners; a true positive up to that IoU, SoAP = 1 − 0.2 / π there.
    let gt = Rect2::new(50.0, 50.0, 0.4, 20.0, 5.0).unwrap();
    let dt = Rect2::new(50.0, 50.0, 0.6, 20.0, 5.0).unwrap();
    let iou = gt.iou(&dt);
    assert!(iou > 0.5 && iou < 0.95, "{iou}");
    let images = vec![ImageDetections {
        image_id: 1,
        ground_truth: vec![GroundTruth { class: 1, bbox: gt, area: gt.area(), iscrowd: false }],
        detections: vec![Detection { class: 1, bbox: dt, score: 0.9, area: dt.area() }],
    }];
    let eval = evaluate_detections(&images, &DetectionEvalParams::coco()).unwrap();
    for (t, &thr) in eval.iou_thresholds.iter().enumerate() {
        if thr <= iou {
            assert!(
                (eval.soap[t] - (1.0 - 0.2 / std::f64::consts::PI)).abs() < 1e-12,
                "{thr}: {}",
                eval.soap[t]
            );
        } else {
            assert_eq!(eval.soap[t], -1.0, "{thr}: no true positive");
        }
    }
    // AP is 1 at the thresholds it matches and 0 above: the mean is their share.
    let matched = eval.iou_thresholds.iter().filter(|&&t| t <= iou).count() as f64;
    assert!(
        (eval.mean_ap() - matched / eval.iou_thresholds.len() as f64).abs() < 1e-12,
        "{}",
        eval.mean_ap()
    );
}

#[test]
fn soap_without_direction_takes_the_angle_error_modulo_a_half_turn() {
    // A near-vertical ground truth at φ = π/2 − 0.05 and a detection at −π/2 + 0.05 (normalised into
    // (−π/2, π/2] as a detector without direction gives it): the same box up to 0.1 rad. With a front
    // they point opposite ways (error π − 0.1); without one the error is 0.1. A half-turned copy of the
    // ground truth, an identical box, scores SoAP 1 without direction and 0 with it.
    use std::f64::consts::{FRAC_PI_2, PI};
    let gt = Rect2::new(50.0, 50.0, FRAC_PI_2 - 0.05, 20.0, 5.0).unwrap();
    let eval = |dt: Rect2, ignore_direction: bool| {
        let images = vec![ImageDetections {
            image_id: 1,
            ground_truth: vec![GroundTruth { class: 1, bbox: gt, area: gt.area(), iscrowd: false }],
            detections: vec![Detection { class: 1, bbox: dt, score: 0.9, area: dt.area() }],
        }];
        let params =
            DetectionEvalParams { iou_thresholds: vec![0.5], ignore_direction, ..Default::default() };
        let e = evaluate_detections(&images, &params).unwrap();
        assert!((e.mean_ap() - 1.0).abs() < 1e-9, "a true positive at IoU 0.5: {}", e.mean_ap());
        e.soap[0]
    };
    let near = Rect2::new(50.0, 50.0, -FRAC_PI_2 + 0.05, 20.0, 5.0).unwrap();
    assert!((eval(near, false) - (1.0 - (PI - 0.1) / PI)).abs() < 1e-9, "{}", eval(near, false));
    assert!((eval(near, true) - (1.0 - 0.1 / PI)).abs() < 1e-9, "{}", eval(near, true));
    let turned = Rect2::new(50.0, 50.0, gt.phi() - PI, 20.0, 5.0).unwrap();
    assert!(eval(turned, false).abs() < 1e-9, "{}", eval(turned, false));
    assert!((eval(turned, true) - 1.0).abs() < 1e-9, "{}", eval(turned, true));
}
