//! Dataset readers: each returns a [`DLDataset`](crate::DLDataset) whose sample paths are relative to
//! its base folders (stored absolute), with a documented, stable id order.
//!
//! | reader | format |
//! |---|---|
//! | [`read_dl_dataset_classification`] | class folders or file names |
//! | [`read_dl_dataset_from_coco`] | COCO detection JSON (rectangle1; `[cx, cy, w, h, a]` bboxes → rectangle2) |
//! | [`read_dl_dataset_voc`] | Pascal VOC XML |
//! | [`read_dl_dataset_yolo`] | YOLO txt (rectangle1) and YOLO-OBB txt (rectangle2) |
//! | [`read_dl_dataset_dota`] | DOTA txt (rectangle2) |
//! | [`read_dl_dataset_labelme`] | labelme JSON (rectangles, polygons) |
//! | [`read_dl_dataset_segmentation`] | image folder + label-image folder |
//! | [`read_dl_dataset_anomaly`] | MVTec AD layout |
//!
//! [`write_coco`] writes a detection dataset back to COCO JSON.

mod anomaly;
mod classification;
mod coco;
mod dota;
mod labelme;
mod segmentation;
mod voc;
mod yolo;

pub use anomaly::read_dl_dataset_anomaly;
pub use classification::{LabelSource, read_dl_dataset_classification};
pub use coco::{CocoReadParams, read_dl_dataset_from_coco, write_coco};
pub use dota::read_dl_dataset_dota;
pub use labelme::{LABELME_IGNORE_VALUE, LabelmeReadParams, read_dl_dataset_labelme};
pub use segmentation::{SegmentationReadParams, read_dl_dataset_segmentation};
pub use voc::{VocCoordinates, read_dl_dataset_voc};
pub use yolo::{YoloReadParams, read_dl_dataset_yolo};

use crate::{Error, Result};
use dl_core::ClassId;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Image file extensions the readers pick up (case-insensitive).
pub const IMAGE_EXTENSIONS: &[&str] =
    &["png", "jpg", "jpeg", "bmp", "tif", "tiff", "gif", "pnm", "pbm", "pgm", "ppm"];

/// Whether `path` has an image extension.
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// The absolute, canonical form of a folder, as a string.
pub(crate) fn abs_dir(dir: &Path) -> Result<(PathBuf, String)> {
    let abs = std::fs::canonicalize(dir).map_err(Error::io("opening folder", dir))?;
    if !abs.is_dir() {
        return Err(Error::Io {
            action: "opening folder",
            path: dir.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a folder"),
        });
    }
    let s = abs.to_string_lossy().into_owned();
    Ok((abs, s))
}

/// A relative path with `/` separators.
pub(crate) fn rel_string(path: &Path) -> String {
    path.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Every file below `root` (recursively, hidden entries skipped) that `keep` accepts, as paths relative
/// to `root`, sorted byte-wise — the documented sample order of the folder readers.
pub(crate) fn walk_files(root: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for entry in std::fs::read_dir(&dir).map_err(Error::io("listing", &dir))? {
            let entry = entry.map_err(Error::io("listing", &dir))?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let file_type = entry.file_type().map_err(Error::io("listing", entry.path()))?;
            let child = rel.join(&name);
            let is_dir = file_type.is_dir() || (file_type.is_symlink() && entry.path().is_dir());
            if is_dir {
                stack.push(child);
            } else if keep(&child) {
                out.push(child);
            }
        }
    }
    out.sort_by(|a, b| a.as_os_str().as_encoded_bytes().cmp(b.as_os_str().as_encoded_bytes()));
    Ok(out)
}

/// Class names sorted, with ids 0 … n−1.
pub(crate) fn class_table(names: BTreeSet<String>) -> Result<(Vec<String>, Vec<ClassId>)> {
    let ids = (0..names.len())
        .map(|i| ClassId::new(i as i64))
        .collect::<dl_core::Result<Vec<_>>>()
        .map_err(|e| Error::Param { key: "class_names", message: format!("too many classes: {e}") })?;
    Ok((names.into_iter().collect(), ids))
}

/// Reads a text or JSON file, naming it in the error.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(Error::io("reading", path))?;
    String::from_utf8(bytes).map_err(|_| Error::annotation(path, "not UTF-8 text"))
}

/// The size (width, height) from an image's header, without decoding its pixels.
pub(crate) fn image_size(path: &Path) -> Result<(u32, u32)> {
    ::image::image_dimensions(path).map_err(|source| match source {
        ::image::ImageError::IoError(e) => {
            Error::Io { action: "reading image", path: path.to_owned(), source: e }
        }
        source => Error::Image { path: path.to_owned(), source },
    })
}

/// Parses a float field, naming the file and place in the error.
pub(crate) fn parse_f64(text: &str, path: &Path, place: &str) -> Result<f64> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| Error::annotation(path, format!("{place}: `{text}` is not a number")))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Error::annotation(path, format!("{place}: `{text}` is not finite")))
    }
}
