//! Every parser fed arbitrary bytes returns an error or a value, never panics.

use dl_data::read::*;
use dl_data::{DLDataset, HostImage};
use proptest::prelude::*;

fn bytes_or_mutated_json() -> impl Strategy<Value = Vec<u8>> {
    let seed = br#"{"images":[{"id":1,"file_name":"a.png"}],"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[1,2,3,4]}],"categories":[{"id":1,"name":"x"}]}"#.to_vec();
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (0..seed.len(), any::<u8>(), 0..seed.len()).prop_map(move |(i, b, cut)| {
            let mut s = seed.clone();
            s[i] = b;
            s.truncate(cut.max(i + 1));
            s
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(bytes in bytes_or_mutated_json()) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("a.json"), &bytes).unwrap();
        let _ = DLDataset::load(&p.join("a.json"));
        let _ = read_dl_dataset_from_coco(&p.join("a.json"), p, &CocoReadParams::default());
        let _ = read_dl_dataset_labelme(p, &LabelmeReadParams::default());
        std::fs::remove_file(p.join("a.json")).unwrap();
        std::fs::write(p.join("a.xml"), &bytes).unwrap();
        let _ = read_dl_dataset_voc(p, p, VocCoordinates::PixelEdge);
        std::fs::remove_file(p.join("a.xml")).unwrap();
        image::GrayImage::new(4, 4).save(p.join("a.png")).unwrap();
        std::fs::write(p.join("a.txt"), &bytes).unwrap();
        let _ = read_dl_dataset_yolo(p, p, &YoloReadParams::default());
        let _ = read_dl_dataset_yolo(p, p, &YoloReadParams { obb: true, ..Default::default() });
        let _ = read_dl_dataset_dota(p, p);
        std::fs::write(p.join("b.png"), &bytes).unwrap();
        let _ = HostImage::read(&p.join("b.png"));
    }

    #[test]
    fn text_label_lines_never_panic(line in "[0-9 .eE+-]{0,60}") {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        image::GrayImage::new(4, 4).save(p.join("a.png")).unwrap();
        std::fs::write(p.join("a.txt"), &line).unwrap();
        let _ = read_dl_dataset_yolo(p, p, &YoloReadParams::default());
        let _ = read_dl_dataset_yolo(p, p, &YoloReadParams { obb: true, ..Default::default() });
        let _ = read_dl_dataset_dota(p, p);
    }
}
