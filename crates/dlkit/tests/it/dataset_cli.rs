//! `dlkit dataset …` end to end on small folders made here.

use std::path::Path;
use std::process::{Command, Output};

fn dlkit(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dlkit")).args(args).current_dir(cwd).output().expect("dlkit runs")
}

fn make_folders(root: &Path) {
    for (class, n) in [("good", 10), ("scratch", 4)] {
        std::fs::create_dir_all(root.join("imgs").join(class)).unwrap();
        for i in 0..n {
            image::GrayImage::new(8, 8).save(root.join(format!("imgs/{class}/{i}.png"))).unwrap();
        }
    }
}

#[test]
fn read_split_info_validate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_folders(dir);
    let out = dlkit(&["dataset", "read", "--format", "folders", "--images", "imgs", "-o", "ds.json"], dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        dlkit(&["dataset", "split", "ds.json", "--train", "50", "--validation", "25", "--seed", "1"], dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = dlkit(&["--json", "dataset", "info", "ds.json"], dir);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["num_samples"], 14);
    // 10 'good' images: floors 5 / 2 / 2, the one leftover drawn by ratio.
    let good_train = info["classes"][0]["splits"]["train"].as_u64().unwrap();
    assert!((5..=6).contains(&good_train), "{good_train}");
    assert_eq!(info["classes"][1]["splits"]["train"], 2);
    assert_eq!(info["problems"].as_array().unwrap().len(), 0);
    // Splitting again without --overwrite is refused and leaves the file as it was.
    let before = std::fs::read(dir.join("ds.json")).unwrap();
    let out = dlkit(&["dataset", "split", "ds.json", "--train", "10", "--validation", "10"], dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already split"));
    assert_eq!(std::fs::read(dir.join("ds.json")).unwrap(), before);
    // A missing image makes validate fail with the problem listed.
    std::fs::remove_file(dir.join("imgs/scratch/3.png")).unwrap();
    let out = dlkit(&["dataset", "validate", "ds.json"], dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("scratch/3.png"));
}

#[test]
fn bad_input_gives_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = dlkit(&["dataset", "read", "--format", "coco", "--images", ".", "-o", "x.json"], dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --annotations"));
    std::fs::write(dir.join("bad.json"), "{\"image_dir\": \n").unwrap();
    let out = dlkit(&["dataset", "info", "bad.json"], dir);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json") && err.contains("line 2"), "{err}");
}

/// Annotations whose images are not where `--images` points: reading fails naming
/// the missing files, unless they are to be skipped (then nothing is left, which is an error too).
#[test]
fn read_refuses_missing_images() {
    let voc = dl_testkit::data_dir("labelme").join("bbox_detection/data_dataset_voc");
    let tmp = tempfile::tempdir().unwrap();
    // The images are in JPEGImages/, not beside the annotation folders.
    let wrong = voc.clone();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "dataset".to_owned(),
            "read".into(),
            "--format".into(),
            "voc".into(),
            "--annotations".into(),
            voc.join("Annotations").display().to_string(),
            "--images".into(),
            wrong.display().to_string(),
            "-o".into(),
            "d.json".into(),
        ];
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    let run = |a: Vec<String>| dlkit(&a.iter().map(String::as_str).collect::<Vec<_>>(), tmp.path());
    let out = run(args(&[]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("do not exist") && err.contains("data_dataset_voc/2011_"),
        "{err}"
    );
    assert!(!tmp.path().join("d.json").exists());
    let out = run(args(&["--skip-missing-images"]));
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no samples"));
    // The right folder reads.
    let out = dlkit(
        &[
            "dataset",
            "read",
            "--format",
            "voc",
            "--annotations",
            voc.join("Annotations").to_str().unwrap(),
            "--images",
            voc.join("JPEGImages").to_str().unwrap(),
            "-o",
            "d.json",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// COCO export of a dataset without boxes is refused instead of writing an empty file.
#[test]
fn export_coco_needs_boxes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_folders(dir);
    let out = dlkit(&["dataset", "read", "--format", "folders", "--images", "imgs", "-o", "ds.json"], dir);
    assert!(out.status.success());
    let out = dlkit(&["dataset", "export-coco", "ds.json", "-o", "coco.json"], dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no boxes") && err.contains("classification"), "{err}");
    assert!(!dir.join("coco.json").exists());
}

/// A tree with top-level `train/` and `test/` folders keeps that split when asked; a flat folder's
/// error says that images must be in class sub-folders.
#[test]
fn read_keeps_the_folder_split() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (split, class, n) in [("train", "good", 3), ("test", "good", 2), ("test", "bad", 2)] {
        std::fs::create_dir_all(dir.join("tree").join(split).join(class)).unwrap();
        for i in 0..n {
            image::GrayImage::new(8, 8).save(dir.join(format!("tree/{split}/{class}/{i}.png"))).unwrap();
        }
    }
    let out = dlkit(
        &[
            "dataset",
            "read",
            "--format",
            "folders",
            "--images",
            "tree",
            "--split-from-folders",
            "-o",
            "d.json",
        ],
        dir,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ds = dlkit::data::DLDataset::load(&dir.join("d.json")).unwrap();
    let count = |s: &str| ds.samples.iter().filter(|x| x.split == Some(s.parse().unwrap())).count();
    assert_eq!((count("train"), count("test")), (3, 4));
    assert_eq!(ds.class_names, ["bad", "good"]);
    std::fs::create_dir_all(dir.join("flat")).unwrap();
    image::GrayImage::new(8, 8).save(dir.join("flat/a.png")).unwrap();
    let out = dlkit(&["dataset", "read", "--format", "folders", "--images", "flat", "-o", "f.json"], dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("class sub-folders"), "{err}");
}
