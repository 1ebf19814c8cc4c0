//! DLDataset JSON and COCO round trips on generated datasets.

use dl_core::{ClassId, ImageId, Rect1, Rect2, Split};
use dl_data::read::{CocoReadParams, read_dl_dataset_from_coco, write_coco};
use dl_data::{DLDataset, SampleEntry};
use proptest::prelude::*;

/// Box coordinates COCO's `x − 0.5` conversion keeps exact: multiples of 1/8 from 0.5 up.
fn coord() -> impl Strategy<Value = f64> {
    (4u32..8000).prop_map(|v| f64::from(v) / 8.0)
}

fn rect1() -> impl Strategy<Value = Rect1> {
    (coord(), coord(), 1u32..800, 1u32..800).prop_map(|(r, c, h, w)| {
        Rect1::from_coco([c, r, f64::from(w) / 8.0, f64::from(h) / 8.0]).expect("positive size")
    })
}

fn dataset(rotated: bool) -> impl Strategy<Value = DLDataset> {
    let sample = (
        proptest::collection::vec((0i64..4, rect1(), any::<bool>(), -3.0..3.0f64), 0..6),
        proptest::option::of(0usize..3),
        "[a-z]{1,8}",
    );
    proptest::collection::vec(sample, 0..12).prop_map(move |samples| {
        let mut ds = DLDataset {
            image_dir: "/data/images".into(),
            class_names: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            class_ids: (0..4).map(|i| ClassId::new(i * 3).unwrap()).collect(),
            ..Default::default()
        };
        for (i, (boxes, split, name)) in samples.into_iter().enumerate() {
            let mut s = SampleEntry {
                image_id: ImageId(i as u64 * 7 + 1),
                image_file_name: format!("{name}/{i}.png"),
                split: split.map(|k| Split::ALL[k]),
                ..Default::default()
            };
            let labels = boxes.iter().map(|b| ds.class_ids[b.0 as usize]);
            if rotated {
                let r2: Vec<_> = labels
                    .zip(&boxes)
                    .map(|(c, b)| {
                        let r = b.1.to_rect2();
                        (c, Rect2::new(r.row(), r.col(), b.3, r.length1(), r.length2()).unwrap())
                    })
                    .collect();
                s.set_rect2_boxes(&r2);
            } else {
                s.set_rect1_boxes(&labels.zip(boxes.iter().map(|b| b.1)).collect::<Vec<_>>());
            }
            s.bbox_iscrowd = Some(boxes.iter().map(|b| b.2).collect());
            ds.samples.push(s);
        }
        ds
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn json_round_trip_is_exact(ds in dataset(false), rotated in dataset(true)) {
        let dir = tempfile::tempdir().unwrap();
        for d in [ds, rotated] {
            let path = dir.path().join("ds.json");
            d.save(&path).unwrap();
            prop_assert_eq!(DLDataset::load(&path).unwrap(), d);
        }
    }

    #[test]
    fn coco_round_trip_is_exact(ds in dataset(false)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coco.json");
        std::fs::write(&path, serde_json::to_vec(&write_coco(&ds).unwrap()).unwrap()).unwrap();
        let mut back = read_dl_dataset_from_coco(&path, dir.path(), &CocoReadParams::default()).unwrap();
        back.image_dir = ds.image_dir.clone();
        // COCO has no splits.
        let mut expected = ds.clone();
        expected.samples.iter_mut().for_each(|s| s.split = None);
        prop_assert_eq!(back, expected);
    }
}
