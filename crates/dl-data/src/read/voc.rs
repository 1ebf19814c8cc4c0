//! Pascal VOC XML (`read_dl_dataset_voc`).

use super::{abs_dir, class_table, parse_f64, read_text, rel_string, walk_files};
use crate::{DLDataset, Error, Result, SampleEntry};
use dl_core::{ClassId, ImageId, Rect1};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// How the `bndbox` numbers are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VocCoordinates {
    /// Pixel-edge coordinates starting at 0, as labelme, deepforest and torchvision write and read them:
    /// col1 = xmin − 0.5, col2 = xmax − 0.5 (like COCO).
    #[default]
    PixelEdge,
    /// The VOC devkit's 1-based inclusive pixel indices: col1 = xmin − 1.5, col2 = xmax − 0.5.
    OneBased,
}

/// Reads every `*.xml` below `annotation_dir`; images are `<filename>` relative to `image_dir`. Samples
/// follow the byte-wise order of the XML paths, with image ids 0 … n−1; class ids are 0 … k−1 in sorted
/// name order. Objects marked `difficult` are kept; their flags are stored per box in the sample's
/// `bbox_difficult` key.
///
/// # Errors
/// [`Error::Annotation`] naming the XML file and object for malformed XML, missing elements or
/// non-numeric coordinates; [`Error::InvalidBox`] naming the sample for zero-area boxes.
pub fn read_dl_dataset_voc(
    annotation_dir: &Path,
    image_dir: &Path,
    coords: VocCoordinates,
) -> Result<DLDataset> {
    let (ann_abs, _) = abs_dir(annotation_dir)?;
    let (_, image_dir) = abs_dir(image_dir)?;
    let files =
        walk_files(&ann_abs, &|p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")))?;
    let parsed: Vec<VocFile> = files.iter().map(|f| parse_voc(&ann_abs.join(f))).collect::<Result<_>>()?;
    let names: BTreeSet<String> =
        parsed.iter().flat_map(|(_, objs)| objs.iter().map(|o| o.0.clone())).collect();
    let (class_names, class_ids) = class_table(names)?;
    let offset = match coords {
        VocCoordinates::PixelEdge => 0.5,
        VocCoordinates::OneBased => 1.5,
    };
    let mut samples = Vec::with_capacity(parsed.len());
    for (i, (file_name, objects)) in parsed.into_iter().enumerate() {
        let mut s =
            SampleEntry { image_id: ImageId(i as u64), image_file_name: file_name, ..Default::default() };
        let mut boxes = Vec::with_capacity(objects.len());
        let mut difficult = Vec::with_capacity(objects.len());
        for (index, (name, [xmin, ymin, xmax, ymax], diff)) in objects.into_iter().enumerate() {
            let class: ClassId = class_ids[class_names.binary_search(&name).expect("name is in the table")];
            let b = Rect1::new(ymin - offset, xmin - offset, ymax - 0.5, xmax - 0.5)
                .map_err(|source| Error::InvalidBox { image_id: s.image_id, index, source })?;
            boxes.push((class, b));
            difficult.push(serde_json::Value::Bool(diff));
        }
        s.set_rect1_boxes(&boxes);
        s.extra.insert("bbox_difficult".into(), serde_json::Value::Array(difficult));
        samples.push(s);
    }
    Ok(DLDataset { image_dir, class_names, class_ids, samples, ..Default::default() })
}

/// `(filename, [(name, [xmin, ymin, xmax, ymax], difficult)])` of one VOC file.
type VocFile = (String, Vec<(String, [f64; 4], bool)>);

fn parse_voc(path: &Path) -> Result<VocFile> {
    let text = read_text(path)?;
    let doc = roxmltree::Document::parse(&text)
        .map_err(|e| Error::annotation(path, format!("invalid XML: {e}")))?;
    let root = doc.root_element();
    let child_text = |node: roxmltree::Node, name: &str| {
        node.children()
            .find(|c| c.has_tag_name(name))
            .and_then(|c| c.text())
            .map(str::trim)
            .map(str::to_owned)
    };
    let file_name = child_text(root, "filename").ok_or_else(|| Error::annotation(path, "no <filename>"))?;
    let mut objects = Vec::new();
    for (i, obj) in root.children().filter(|c| c.has_tag_name("object")).enumerate() {
        let place = format!("object {i}");
        let name =
            child_text(obj, "name").ok_or_else(|| Error::annotation(path, format!("{place}: no <name>")))?;
        let bndbox = obj
            .children()
            .find(|c| c.has_tag_name("bndbox"))
            .ok_or_else(|| Error::annotation(path, format!("{place}: no <bndbox>")))?;
        let mut v = [0.0; 4];
        for (k, key) in ["xmin", "ymin", "xmax", "ymax"].into_iter().enumerate() {
            let t = child_text(bndbox, key)
                .ok_or_else(|| Error::annotation(path, format!("{place}: no <{key}>")))?;
            v[k] = parse_f64(&t, path, &format!("{place} <{key}>"))?;
        }
        let difficult = child_text(obj, "difficult").is_some_and(|d| d == "1");
        objects.push((name, v, difficult));
    }
    let file_name = rel_string(&PathBuf::from(file_name));
    Ok((file_name, objects))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pixel_edge_boxes_and_reports_bad_xml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.xml"),
            "<annotation><filename>a.png</filename><object><name>tree</name><difficult>1</difficult>\
             <bndbox><xmin>10</xmin><ymin>20</ymin><xmax>30</xmax><ymax>45</ymax></bndbox></object></annotation>",
        )
        .unwrap();
        let ds = read_dl_dataset_voc(dir.path(), dir.path(), VocCoordinates::PixelEdge).unwrap();
        let b = ds.samples[0].rect1_boxes().unwrap()[0].1;
        assert_eq!((b.row1(), b.col1(), b.row2(), b.col2()), (19.5, 9.5, 44.5, 29.5));
        assert_eq!(b.to_coco(), [10.0, 20.0, 20.0, 25.0]);
        assert_eq!(ds.samples[0].extra["bbox_difficult"][0], true);
        let ds = read_dl_dataset_voc(dir.path(), dir.path(), VocCoordinates::OneBased).unwrap();
        assert_eq!(ds.samples[0].rect1_boxes().unwrap()[0].1.col1(), 8.5);
        std::fs::write(dir.path().join("b.xml"), "<annotation><filename>b.png</filename><object>").unwrap();
        let err =
            read_dl_dataset_voc(dir.path(), dir.path(), VocCoordinates::PixelEdge).unwrap_err().to_string();
        assert!(err.contains("b.xml") && err.contains("invalid XML"), "{err}");
    }
}
