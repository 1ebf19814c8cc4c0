//! `dlkit evaluate …` end to end.

use std::path::Path;
use std::process::{Command, Output};

fn dlkit(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dlkit")).args(args).current_dir(cwd).output().expect("dlkit runs")
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

#[test]
fn detections_with_coco_settings_print_pycocotools_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures().join("coco");
    let gt = f.join("set_dense_gt.json");
    let dt = f.join("set_dense_dt.json");
    let out = dlkit(
        &[
            "--json",
            "evaluate",
            "detections",
            "--ground-truth",
            gt.to_str().unwrap(),
            "--detections",
            dt.to_str().unwrap(),
            "--coco",
            "--plots",
            "plots",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.join("expected.json")).unwrap()).unwrap();
    let num = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
    };
    let worst = dl_testkit::max_abs_diff(&num(&v["coco_stats"]), &num(&expected["sets"]["dense"]));
    assert!(worst < 1e-9, "COCO stats differ from pycocotools by {worst:e}");
    assert!(tmp.path().join("plots/pr_curves_iou_05.png").is_file());
    // A detection on an unknown image is a clear error with exit code 2.
    std::fs::write(
        tmp.path().join("bad.json"),
        r#"[{"image_id": 424242, "category_id": 1, "bbox": [0,0,1,1], "score": 1}]"#,
    )
    .unwrap();
    let out = dlkit(
        &["evaluate", "detections", "--ground-truth", gt.to_str().unwrap(), "--detections", "bad.json"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("424242"));
}

#[test]
fn classification_and_anomaly_from_result_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ds = serde_json::json!({
        "image_dir": "/none", "class_names": ["a", "b", "c"], "class_ids": [0, 1, 2],
        "samples": [
            {"image_id": 1, "image_file_name": "1.png", "image_label_id": [0], "split": "test"},
            {"image_id": 2, "image_file_name": "2.png", "image_label_id": [1], "split": "test"},
            {"image_id": 3, "image_file_name": "3.png", "image_label_id": [2], "split": "test"},
            {"image_id": 4, "image_file_name": "4.png", "image_label_id": [2], "split": "train"}
        ]
    });
    std::fs::write(dir.join("ds.json"), ds.to_string()).unwrap();
    let res = r#"[{"image_id": 1, "classification_class_ids": [0, 1, 2]}, {"image_id": 2, "classification_class_ids": [2, 1, 0]},
                  {"image_id": 3, "classification_class_ids": [2, 0, 1]}]"#;
    std::fs::write(dir.join("res.json"), res).unwrap();
    let out = dlkit(
        &[
            "--json",
            "evaluate",
            "classification",
            "--dataset",
            "ds.json",
            "--results",
            "res.json",
            "--split",
            "test",
            "--plots",
            "p",
        ],
        dir,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!((v["top1_error"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(v["topk_error"][1], 0.0);
    assert!(dir.join("p/confusion_matrix_relative.png").is_file());

    let ad = serde_json::json!({
        "image_dir": "/none", "class_names": ["ok", "nok"], "class_ids": [0, 1],
        "samples": [
            {"image_id": 1, "image_file_name": "1.png", "anomaly_label": "ok"},
            {"image_id": 2, "image_file_name": "2.png", "anomaly_label": "ok"},
            {"image_id": 3, "image_file_name": "3.png", "anomaly_label": "nok"}
        ]
    });
    std::fs::write(dir.join("ad.json"), ad.to_string()).unwrap();
    std::fs::write(dir.join("ad_res.json"), r#"[{"image_id": 1, "anomaly_score": 0.1}, {"image_id": 2, "anomaly_score": 0.7}, {"image_id": 3, "anomaly_score": 0.6}]"#).unwrap();
    let out = dlkit(
        &[
            "--json",
            "evaluate",
            "anomaly",
            "--dataset",
            "ad.json",
            "--results",
            "ad_res.json",
            "--plots",
            "p",
        ],
        dir,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["image_auroc"], 0.5);
    assert!(dir.join("p/anomaly_score_histogram.png").is_file() && dir.join("p/roc_curve.png").is_file());
}

/// `evaluate detections --rotated` on the dense COCO fixture written as rotated boxes
/// ([cx, cy, w, h, angle]): with angle 0 the 12 numbers are pycocotools' on the axis-aligned boxes;
/// with the whole scene turned by 30° about a point, they stay the same.
#[test]
fn rotated_detections_with_zero_angles_print_pycocotools_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixtures().join("coco");
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(f.join(name)).unwrap()).unwrap()
    };
    let expected = read("expected.json");
    let want: Vec<f64> =
        expected["sets"]["dense"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    for degrees in [0.0f64, 30.0] {
        let (s, c) = degrees.to_radians().sin_cos();
        // Turning the image plane by the angle about (200, 100): centres turn; the boxes' angles grow.
        let turn = |b: &serde_json::Value| -> serde_json::Value {
            let v: Vec<f64> = b.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            let (cx, cy) = (v[0] + v[2] / 2.0 - 200.0, v[1] + v[3] / 2.0 - 100.0);
            serde_json::json!([200.0 + cx * c + cy * s, 100.0 - cx * s + cy * c, v[2], v[3], degrees])
        };
        let mut gt = read("set_dense_gt.json");
        for a in gt["annotations"].as_array_mut().unwrap() {
            a["bbox"] = turn(&a["bbox"]);
        }
        let mut dt = read("set_dense_dt.json");
        for d in dt.as_array_mut().unwrap() {
            d["bbox"] = turn(&d["bbox"]);
        }
        let (g, d) = (tmp.path().join("gt.json"), tmp.path().join("dt.json"));
        std::fs::write(&g, gt.to_string()).unwrap();
        std::fs::write(&d, dt.to_string()).unwrap();
        let out = dlkit(
            &[
                "--json",
                "evaluate",
                "detections",
                "--ground-truth",
                g.to_str().unwrap(),
                "--detections",
                d.to_str().unwrap(),
                "--rotated",
                "--coco",
            ],
            tmp.path(),
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let got: Vec<f64> =
            v["coco_stats"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect();
        let worst = dl_testkit::max_abs_diff(&got, &want);
        assert!(worst < 1e-9, "{degrees}°: rotated COCO numbers differ from pycocotools by {worst:e}");
        assert_eq!(v["soap"].as_f64(), Some(1.0), "{degrees}°: every true positive has the right angle");
        // The detections half-turned: the same boxes, front to back. Without direction they score as
        // before; with one every angle is off by 180°.
        for det in dt.as_array_mut().unwrap() {
            det["bbox"][4] = serde_json::json!(degrees - 180.0);
        }
        std::fs::write(&d, dt.to_string()).unwrap();
        for (flag, soap) in [(Some("--ignore-direction"), 1.0), (None, 0.0)] {
            let mut args = vec!["--json", "evaluate", "detections", "--ground-truth", g.to_str().unwrap()];
            args.extend(["--detections", d.to_str().unwrap(), "--rotated", "--coco"]);
            args.extend(flag);
            let out = dlkit(&args, tmp.path());
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let got: Vec<f64> =
                v["coco_stats"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect();
            assert!(dl_testkit::max_abs_diff(&got, &want) < 1e-9, "{degrees}°, half-turned, {flag:?}");
            let s = v["soap"].as_f64().unwrap();
            assert!((s - soap).abs() < 1e-9, "{degrees}°, half-turned, {flag:?}: SoAP {s}");
        }
    }
}
