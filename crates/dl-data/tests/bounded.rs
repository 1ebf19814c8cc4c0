//! Hostile files cannot exhaust memory: a PNG claiming 100 000 × 100 000 pixels, JSON nested 100 000
//! deep (dataset JSON, COCO, labelme), VOC XML nested 100 000 deep and an entity-expansion bomb, a
//! sample file declaring a record of 2^64 bytes. Each is a typed
//! error naming the file, and the process's peak resident memory grows by less than 64 MiB over all of
//! them. (Its own test binary, so that no other test shares the process's peak.)

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use dl_data::read::{
    CocoReadParams, LabelmeReadParams, VocCoordinates, read_dl_dataset_from_coco, read_dl_dataset_labelme,
    read_dl_dataset_voc,
};
use dl_data::{DLDataset, HostImage};

/// A valid 1×1 gray PNG whose header then claims `w × h` (checksum recomputed).
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut e = png::Encoder::new(&mut bytes, 1, 1);
        e.set_color(png::ColorType::Grayscale);
        e.set_depth(png::BitDepth::Eight);
        e.write_header().unwrap().write_image_data(&[7]).unwrap();
    }
    // Signature (8), IHDR length (4), "IHDR" (4), width (4), height (4), …, CRC over type + data.
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32fast::hash(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

#[test]
fn hostile_files_are_errors_and_memory_stays_small() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    let start = dl_testkit::peak_rss_mib();
    assert!(start.is_finite(), "peak memory is readable");

    // The 1×1 PNG reads; the same file claiming 10^10 pixels is refused before decoding.
    std::fs::write(p.join("small.png"), png_claiming(1, 1)).unwrap();
    assert_eq!(HostImage::read(&p.join("small.png")).unwrap().data, vec![7.0]);
    std::fs::write(p.join("bomb.png"), png_claiming(100_000, 100_000)).unwrap();
    let err = HostImage::read(&p.join("bomb.png")).unwrap_err().to_string();
    assert!(err.contains("bomb.png"), "{err}");

    // JSON nested 100 000 deep, where each reader expects its top-level object.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let nested = format!(r#"{{"image_dir": "x", "class_names": {deep}, "class_ids": [], "samples": []}}"#);
    std::fs::write(p.join("deep.json"), &nested).unwrap();
    let err = DLDataset::load(&p.join("deep.json")).unwrap_err().to_string();
    assert!(err.contains("deep.json"), "{err}");
    let coco = format!(r#"{{"images": [], "annotations": {deep}, "categories": []}}"#);
    std::fs::write(p.join("coco.json"), &coco).unwrap();
    let err = read_dl_dataset_from_coco(&p.join("coco.json"), p, &CocoReadParams::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("coco.json"), "{err}");
    let labelme = tmp.path().join("labelme");
    std::fs::create_dir_all(&labelme).unwrap();
    std::fs::write(labelme.join("a.json"), format!(r#"{{"imagePath": "a.png", "shapes": {deep}}}"#)).unwrap();
    let err = read_dl_dataset_labelme(&labelme, &LabelmeReadParams::default()).unwrap_err().to_string();
    assert!(err.contains("a.json"), "{err}");

    // Pascal VOC XML nested 100 000 deep, and an entity-expansion bomb ("billion laughs").
    let voc = p.join("voc");
    std::fs::create_dir_all(&voc).unwrap();
    let deep_xml = format!("<annotation>{}{}</annotation>", "<a>".repeat(100_000), "</a>".repeat(100_000));
    std::fs::write(voc.join("deep.xml"), deep_xml).unwrap();
    let err = read_dl_dataset_voc(&voc, p, VocCoordinates::PixelEdge).unwrap_err().to_string();
    assert!(err.contains("deep.xml"), "{err}");
    std::fs::remove_file(voc.join("deep.xml")).unwrap();
    let mut laughs = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    for i in 1..10 {
        let prev = if i == 1 { "lol".to_owned() } else { format!("lol{}", i - 1) };
        laughs.push_str(&format!("<!ENTITY lol{i} \"{}\">", format!("&{prev};").repeat(10)));
    }
    laughs.push_str("]><annotation><filename>&lol9;</filename></annotation>");
    std::fs::write(voc.join("laughs.xml"), laughs).unwrap();
    let err = read_dl_dataset_voc(&voc, p, VocCoordinates::PixelEdge).unwrap_err().to_string();
    assert!(err.contains("laughs.xml"), "{err}");

    // A sample file whose one record declares 2^64 − 1 bytes of annotations (checksum valid).
    let mut payload = 1u64.to_le_bytes().to_vec();
    payload.extend_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(p.join("huge.dls"), dl_io::encode(dl_data::preprocess::SAMPLE_FILE_HEADER, &payload))
        .unwrap();
    let err = dl_data::preprocess::read_dl_samples(&p.join("huge.dls")).unwrap_err().to_string();
    assert!(err.contains("huge.dls"), "{err}");

    let grown = dl_testkit::peak_rss_mib() - start;
    eprintln!("peak resident memory grew by {grown:.1} MiB");
    assert!(grown < 64.0, "peak resident memory grew by {grown:.1} MiB");
}
