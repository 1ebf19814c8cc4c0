//! Preprocessing on the real data: boxes mapped back agree with the annotations; sample files.

use dl_data::preprocess::*;
use dl_data::read::*;
use dl_data::*;
use dl_testkit::data_dir;

#[test]
fn deepforest_boxes_survive_preprocessing_to_224() {
    let dir = data_dir("deepforest");
    let ds = read_dl_dataset_voc(&dir, &dir, VocCoordinates::PixelEdge).unwrap();
    let param = DLPreprocessParam::new(ModelType::Detection, 224, 224, 3).unwrap();
    // The PNG images (the TIFF is the same scene as OSBS_029.png).
    let indices: Vec<usize> =
        (0..ds.samples.len()).filter(|&i| ds.samples[i].image_file_name.ends_with(".png")).collect();
    assert_eq!(indices.len(), 3);
    let originals = gen_dl_samples(&ds, &indices).unwrap();
    let mut samples = originals.clone();
    preprocess_dl_samples(&mut samples, &param).unwrap();
    let mut checked = 0;
    assert_eq!(originals.len(), samples.len());
    for (orig, pre) in originals.iter().zip(&samples) {
        assert_eq!((pre.image.width, pre.image.height, pre.image.channels), (224, 224, 3));
        assert!(pre.image.data.iter().all(|v| (-127.0..=128.0).contains(v)));
        let map = ImageMap::new(0, 0, orig.image.width, orig.image.height, 224, 224);
        let (Some(Boxes::Rectangle1(a)), Some(Boxes::Rectangle1(b))) = (&orig.boxes, &pre.boxes) else {
            panic!()
        };
        assert_eq!(a.len(), b.len(), "no box of {} leaves the image", orig.image_id);
        for (o, p) in a.iter().zip(b) {
            let back = map.rect1_backward(p);
            // Clipping only touches boxes that reach the border.
            if p.row1() > -0.5 && p.col1() > -0.5 && p.row2() < 223.5 && p.col2() < 223.5 {
                for (x, y) in [
                    (back.row1(), o.row1()),
                    (back.col1(), o.col1()),
                    (back.row2(), o.row2()),
                    (back.col2(), o.col2()),
                ] {
                    assert!((x - y).abs() < 1e-6, "{back:?} vs {o:?}");
                }
                checked += 1;
            }
        }
    }
    // 890 boxes in the three PNG images; the others reach the image border and are clipped.
    assert!(checked > 850, "{checked}");
}

#[test]
fn elpv_preprocessed_samples_round_trip_through_files() {
    let ds = read_dl_dataset_anomaly(&data_dir("elpv"), None).unwrap();
    let mut samples = gen_dl_samples(&ds, &[0, 1500]).unwrap();
    let mut param = DLPreprocessParam::new(ModelType::AnomalyDetection, 224, 224, 3).unwrap();
    param.normalization_type = NormalizationType::ConstantValues;
    preprocess_dl_samples(&mut samples, &param).unwrap();
    // Same result whatever the thread count: compare with a sequential run.
    let seq: Vec<DLSample> = gen_dl_samples(&ds, &[0, 1500])
        .unwrap()
        .into_iter()
        .map(|s| preprocess::preprocess_sample(s, &param).unwrap().0)
        .collect();
    assert_eq!(seq, samples);
    assert!(samples.iter().all(|s| (s.image.width, s.image.height, s.image.channels) == (224, 224, 3)));
    // Gray replicated to three channels, then normalised per channel.
    let (mean, std) = (IMAGENET_MEAN, IMAGENET_STD);
    let raw = |c: usize, i: usize| f64::from(samples[0].image.plane(c)[i]) * std[c] + mean[c];
    assert!(
        (0..224 * 224).all(|i| (raw(0, i) - raw(1, i)).abs() < 1e-3 && (raw(0, i) - raw(2, i)).abs() < 1e-3)
    );
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.dls");
    write_dl_samples(&path, &samples).unwrap();
    assert_eq!(read_dl_samples(&path).unwrap(), samples);
    assert_eq!(samples[1].anomaly_label, ds.samples[1500].anomaly_label);
}
