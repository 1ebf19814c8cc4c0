//! Readers, split and samples on the real datasets (fetched by `cargo xtask data`).

use dl_core::Split;
use dl_data::read::*;
use dl_data::*;
use dl_testkit::data_dir;
use std::collections::BTreeMap;

fn per_class(ds: &DLDataset) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in &ds.samples {
        for id in s.image_label_id.iter().flatten() {
            let i = ds.class_ids.iter().position(|c| c == id).unwrap();
            *m.entry(ds.class_names[i].clone()).or_default() += 1;
        }
    }
    m
}

#[test]
fn fashion_mnist_folders_read_and_split_exactly() {
    let dir = data_dir("fashion-mnist");
    let mut ds = read_dl_dataset_classification(&dir, LabelSource::LastFolder).unwrap();
    assert_eq!(ds.samples.len(), 70_000);
    assert_eq!(ds.class_names.len(), 10);
    assert!(per_class(&ds).values().all(|&n| n == 7_000), "{:?}", per_class(&ds));
    assert_eq!(ds.class_names[0], "Ankle boot");
    assert_eq!(ds.class_names[8], "T-shirt_top");
    let train = read_dl_dataset_classification(&dir.join("train"), LabelSource::LastFolder).unwrap();
    assert!(per_class(&train).values().all(|&n| n == 6_000));

    split_dl_dataset(&mut ds, 70.0, 15.0, &SplitParams { seed: 3, ..Default::default() }).unwrap();
    for class in 0..10u16 {
        let mut c = [0usize; 3];
        for s in ds.samples.iter().filter(|s| s.image_label_id.as_ref().unwrap()[0].get() == class) {
            c[Split::ALL.iter().position(|x| Some(*x) == s.split).unwrap()] += 1;
        }
        assert_eq!(c, [4_900, 1_050, 1_050], "class {class}");
    }
    // The JSON file round-trips exactly.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fm.json");
    ds.save(&path).unwrap();
    assert_eq!(DLDataset::load(&path).unwrap(), ds);
    // Decoding a few samples gives 28×28 gray images with their labels.
    let samples = gen_dl_samples(&ds, &[0, 1, 69_999]).unwrap();
    assert!(samples.iter().all(|s| (s.image.width, s.image.height, s.image.channels) == (28, 28, 1)));
    assert_eq!(samples[2].image_label_id, ds.samples[69_999].image_label_id);
}

#[test]
fn mnist5k_file_names_and_folders() {
    let ds = read_dl_dataset_classification(&data_dir("mnist5k"), LabelSource::LastFolder).unwrap();
    assert_eq!(ds.samples.len(), 5_000);
    assert_eq!(ds.class_names, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
}

#[test]
fn elpv_in_mvtec_layout() {
    let dir = data_dir("elpv");
    let mut ds = read_dl_dataset_anomaly(&dir, None).unwrap();
    let ok = ds.samples.iter().filter(|s| s.anomaly_label == Some(AnomalyLabel::Ok)).count();
    let nok = ds.samples.len() - ok;
    assert_eq!((ok, nok), (1_508, 715 + 401));
    split_dl_dataset(&mut ds, 70.0, 15.0, &SplitParams::default()).unwrap();
    assert!(
        ds.samples
            .iter()
            .filter(|s| s.anomaly_label == Some(AnomalyLabel::Nok))
            .all(|s| s.split == Some(Split::Test))
    );
    let train = ds.samples.iter().filter(|s| s.split == Some(Split::Train)).count();
    assert!(train >= 1_055, "{train}"); // floor(0.7 · 1508)
    let s = gen_dl_samples(&ds, &[0]).unwrap();
    assert_eq!((s[0].image.width, s[0].image.height, s[0].image.channels), (300, 300, 1));
    assert_eq!(s[0].anomaly_label_id, Some(u8::from(ds.samples[0].anomaly_label == Some(AnomalyLabel::Nok))));
}

#[test]
fn deepforest_voc_has_951_boxes_as_annotated() {
    let dir = data_dir("deepforest");
    let ds = read_dl_dataset_voc(&dir, &dir, VocCoordinates::PixelEdge).unwrap();
    assert_eq!(ds.samples.len(), 4);
    assert_eq!(ds.samples.iter().map(SampleEntry::num_boxes).sum::<usize>(), 951);
    assert_eq!(ds.class_names, ["Alive", "Dead", "Tree"]);
    assert!(ds.validate().is_empty(), "{:?}", ds.validate());
    let osbs = ds.samples.iter().find(|s| s.image_file_name == "OSBS_029.tif").unwrap();
    // First object of OSBS_029.xml: xmin 203, ymin 67, xmax 227, ymax 90 (pixel edges).
    let (_, b) = osbs.rect1_boxes().unwrap()[0];
    assert_eq!((b.row1(), b.col1(), b.row2(), b.col2()), (66.5, 202.5, 89.5, 226.5));
    let idx = ds.samples.iter().position(|s| s.image_file_name == "SOAP_061.png").unwrap();
    let s = gen_dl_samples(&ds, &[idx]).unwrap();
    assert_eq!((s[0].image.width, s[0].image.height, s[0].image.channels), (400, 400, 3));
    assert!(matches!(&s[0].boxes, Some(Boxes::Rectangle1(b)) if b.len() == 37));
}

#[test]
fn labelme_coco_voc_and_json_agree() {
    let dir = data_dir("labelme");
    let coco_dir = dir.join("instance_segmentation/data_dataset_coco");
    let coco_file = coco_dir.join("annotations.json");
    let params = CocoReadParams { keep_raw_annotations: true, ..Default::default() };
    let coco = read_dl_dataset_from_coco(&coco_file, &coco_dir, &params).unwrap();
    assert_eq!(coco.samples.len(), 3);
    assert_eq!(coco.samples.iter().map(SampleEntry::num_boxes).sum::<usize>(), 12);
    assert!(coco.validate().is_empty(), "{:?}", coco.validate());
    // Reading with raw annotations and writing reproduces the file.
    let original: serde_json::Value = serde_json::from_slice(&std::fs::read(&coco_file).unwrap()).unwrap();
    assert_eq!(write_coco(&coco).unwrap(), original);

    let voc_dir = dir.join("bbox_detection/data_dataset_voc");
    let voc = read_dl_dataset_voc(
        &voc_dir.join("Annotations"),
        &voc_dir.join("JPEGImages"),
        VocCoordinates::PixelEdge,
    )
    .unwrap();
    assert_eq!(voc.samples.iter().map(SampleEntry::num_boxes).sum::<usize>(), 9);
    assert!(voc.validate().is_empty(), "{:?}", voc.validate());

    // labelme's own JSON of the same images gives the same boxes as its VOC export.
    let json =
        read_dl_dataset_labelme(&dir.join("bbox_detection/data_annotated"), &LabelmeReadParams::default())
            .unwrap();
    assert_eq!(json.class_names, voc.class_names);
    assert_eq!(json.samples.len(), voc.samples.len());
    for (a, b) in json.samples.iter().zip(&voc.samples) {
        let (ra, rb) = (a.rect1_boxes().unwrap(), b.rect1_boxes().unwrap());
        assert_eq!(ra.len(), rb.len());
        for ((ca, ba), (cb, bb)) in ra.iter().zip(&rb) {
            assert_eq!(ca, cb);
            for (x, y) in [
                (ba.row1(), bb.row1()),
                (ba.col1(), bb.col1()),
                (ba.row2(), bb.row2()),
                (ba.col2(), bb.col2()),
            ] {
                assert!((x - y).abs() < 1e-9, "{ba:?} vs {bb:?}");
            }
        }
    }
}

#[test]
fn labelme_polygons_to_label_images_and_rotated_boxes() {
    let dir = data_dir("labelme").join("instance_segmentation/data_annotated");
    let tmp = tempfile::tempdir().unwrap();
    let params = LabelmeReadParams { label_image_dir: Some(tmp.path().to_owned()), ..Default::default() };
    let mut ds = read_dl_dataset_labelme(&dir, &params).unwrap();
    assert_eq!(ds.class_names[0], "_background_");
    assert!(ds.validate().is_empty(), "{:?}", ds.validate());
    let s = gen_dl_samples(&ds, &[0]).unwrap();
    let label = s[0].segmentation_image.as_ref().unwrap();
    assert_eq!((label.width, label.height), (s[0].image.width, s[0].image.height));
    assert!(label.values().len() >= 2, "a label image with only background");
    split_dl_dataset(&mut ds, 50.0, 0.0, &SplitParams::default()).unwrap();
    assert!(ds.samples.iter().all(|s| s.split.is_some()));

    let r2 = read_dl_dataset_labelme(
        &dir,
        &LabelmeReadParams { instance_type: InstanceType::Rectangle2, ..Default::default() },
    )
    .unwrap();
    for s in &r2.samples {
        for (_, b) in s.rect2_boxes().unwrap() {
            assert!(b.length1() >= b.length2() && b.phi().abs() <= std::f64::consts::FRAC_PI_2);
        }
    }
    assert!(r2.samples.iter().map(SampleEntry::num_boxes).sum::<usize>() >= 10);
}
