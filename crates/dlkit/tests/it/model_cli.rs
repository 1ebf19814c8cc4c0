//! `dlkit model …` and `dlkit apply` end to end.

use image::GenericImageView;
use std::path::Path;
use std::process::{Command, Output};

fn dlkit(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dlkit")).args(args).current_dir(cwd).output().expect("dlkit runs")
}

#[test]
fn create_get_set_apply_and_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    image::RgbImage::from_pixel(40, 30, image::Rgb([200, 10, 10])).save(dir.join("red.png")).unwrap();
    let out = dlkit(
        &[
            "model",
            "create",
            "--arch",
            "compact",
            "--classes",
            "ok,scratch,dent",
            "--width",
            "32",
            "--height",
            "32",
            "-o",
            "m.dlm",
        ],
        dir,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = dlkit(&["model", "set", "m.dlm", "learning_rate", "0.05"], dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = dlkit(&["--json", "model", "get", "m.dlm", "learning_rate"], dir);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0.05");
    let out = dlkit(&["model", "set", "m.dlm", "class_ids", "[1,2,3]"], dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fixes the architecture"));
    let out = dlkit(&["model", "get", "m.dlm", "colour"], dir);
    assert!(String::from_utf8_lossy(&out.stderr).contains("valid names"));
    let out = dlkit(&["--json", "apply", "--model", "m.dlm", "red.png"], dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let conf: Vec<f64> =
        v[0]["classification_confidences"].as_array().unwrap().iter().map(|c| c.as_f64().unwrap()).collect();
    assert_eq!(conf.len(), 3);
    assert!((conf.iter().sum::<f64>() - 1.0).abs() < 1e-5 && conf.windows(2).all(|w| w[0] >= w[1]));
    // Heatmap overlay, weight export and shape-checked import.
    let out =
        dlkit(&["heatmap", "--model", "m.dlm", "red.png", "--method", "occlusion", "-o", "hm.png"], dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Enlarged ×7 (to at least 256 pixels wide) so a small image's heatmap can be seen.
    assert_eq!(image::open(dir.join("hm.png")).unwrap().dimensions(), (280, 210));
    let out =
        dlkit(&["heatmap", "--model", "m.dlm", "red.png", "--method", "guided_grad_cam", "-o", "g.png"], dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = dlkit(&["apply", "--model", "m.dlm", "red.png", "--overlay", "shown"], dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = image::open(dir.join("shown/red_result.png")).unwrap();
    assert!(shown.width() >= 256 && shown.height() > 210, "{:?}", shown.dimensions());
    let out = dlkit(&["model", "export-weights", "m.dlm", "-o", "w.safetensors"], dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = dlkit(
        &[
            "model",
            "create",
            "--arch",
            "compact",
            "--classes",
            "a,b",
            "--width",
            "32",
            "--height",
            "32",
            "-o",
            "two.dlm",
        ],
        dir,
    );
    assert!(out.status.success());
    let out = dlkit(&["model", "import-weights", "two.dlm", "w.safetensors"], dir);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("head.") && err.contains("[2") && err.contains("[3"), "{err}");
    // A truncated model file is a clear error.
    let bytes = std::fs::read(dir.join("m.dlm")).unwrap();
    std::fs::write(dir.join("t.dlm"), &bytes[..bytes.len() / 2]).unwrap();
    let out = dlkit(&["model", "info", "t.dlm"], dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
}

/// `dlkit … --json | head`: a reader that stops early ends dlkit quietly with exit code 0.
#[test]
fn a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A model with many classes makes `model info` print far more than a pipe holds.
    let classes: Vec<String> = (0..3000).map(|i| format!("class_{i}")).collect();
    let out = dlkit(
        &[
            "model",
            "create",
            "--classes",
            &classes.join(","),
            "--width",
            "16",
            "--height",
            "16",
            "-o",
            "m.dlm",
        ],
        dir,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut child = Command::new(env!("CARGO_BIN_EXE_dlkit"))
        .args(["model", "info", "m.dlm"])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("panicked"), "{:?}: {stderr}", out.status);
}
