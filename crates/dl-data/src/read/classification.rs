//! Classification datasets from folders (`read_dl_dataset_classification`).

use super::{abs_dir, class_table, is_image, rel_string, walk_files};
use crate::{DLDataset, Error, Result, SampleEntry};
use dl_core::ImageId;
use std::collections::BTreeSet;
use std::path::Path;

/// Where an image's class comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabelSource {
    /// The name of the folder holding the image.
    #[default]
    LastFolder,
    /// The file stem.
    FileName,
    /// The file stem without its trailing index: digits, then separators `_`, `-`, ` `, `.` are removed
    /// from the end (`apple_017.png` → `apple`).
    FileNameRemoveIndex,
}

impl std::str::FromStr for LabelSource {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "last_folder" => Ok(Self::LastFolder),
            "file_name" => Ok(Self::FileName),
            "file_name_remove_index" => Ok(Self::FileNameRemoveIndex),
            other => Err(Error::Param {
                key: "label_source",
                message: format!("`{other}`: expected last_folder, file_name or file_name_remove_index"),
            }),
        }
    }
}

/// Reads every image below `dir` (recursively). Samples are in byte-wise order of their relative paths,
/// with image ids 0 … n−1 in that order; class ids are 0 … k−1 in sorted class-name order.
///
/// # Errors
/// [`Error::Io`] naming the folder; [`Error::Param`] when no image is found or a label is empty.
///
/// # Examples
/// ```no_run
/// use dl_data::read::{read_dl_dataset_classification, LabelSource};
/// let ds = read_dl_dataset_classification("fashion-mnist/train".as_ref(), LabelSource::LastFolder).unwrap();
/// println!("{} images, classes {:?}", ds.samples.len(), ds.class_names);
/// ```
pub fn read_dl_dataset_classification(dir: &Path, source: LabelSource) -> Result<DLDataset> {
    let (abs, image_dir) = abs_dir(dir)?;
    let files = walk_files(&abs, &is_image)?;
    if files.is_empty() {
        return Err(Error::Param {
            key: "image_dir",
            message: format!("no images found in {}", abs.display()),
        });
    }
    let labels: Vec<String> = files
        .iter()
        .map(|f| {
            let label = label_of(f, source);
            if label.is_empty() {
                let hint = if source == LabelSource::LastFolder
                    && f.parent().is_none_or(|p| p.as_os_str().is_empty())
                {
                    " — with label_source last_folder, images must be in class sub-folders (folder = class), \
                     or take the class from the file name"
                } else {
                    ""
                };
                Err(Error::Param {
                    key: "label_source",
                    message: format!("{}: empty class label{hint}", f.display()),
                })
            } else {
                Ok(label)
            }
        })
        .collect::<Result<_>>()?;
    let names: BTreeSet<String> = labels.iter().cloned().collect();
    let (class_names, class_ids) = class_table(names)?;
    let samples = files
        .iter()
        .zip(&labels)
        .enumerate()
        .map(|(i, (file, label))| {
            let class = class_names.binary_search(label).expect("every label is in the table");
            SampleEntry {
                image_id: ImageId(i as u64),
                image_file_name: rel_string(file),
                image_label_id: Some(vec![class_ids[class]]),
                ..Default::default()
            }
        })
        .collect();
    Ok(DLDataset { image_dir, class_names, class_ids, samples, ..Default::default() })
}

fn label_of(file: &Path, source: LabelSource) -> String {
    let stem = || file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    match source {
        LabelSource::LastFolder => file
            .parent()
            .and_then(|p| p.file_name())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        LabelSource::FileName => stem(),
        LabelSource::FileNameRemoveIndex => stem()
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .trim_end_matches(['_', '-', ' ', '.'])
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sources() {
        let p = Path::new("fruit/apple_017.png");
        assert_eq!(label_of(p, LabelSource::LastFolder), "fruit");
        assert_eq!(label_of(p, LabelSource::FileName), "apple_017");
        assert_eq!(label_of(p, LabelSource::FileNameRemoveIndex), "apple");
        assert_eq!(label_of(Path::new("a.png"), LabelSource::LastFolder), "");
    }

    #[test]
    fn reads_folders_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        for (class, name) in [("b", "2.png"), ("a", "9.png"), ("b", "1.png")] {
            std::fs::create_dir_all(dir.path().join(class)).unwrap();
            image::GrayImage::new(2, 2).save(dir.path().join(class).join(name)).unwrap();
        }
        std::fs::write(dir.path().join("a/notes.txt"), "x").unwrap();
        let ds = read_dl_dataset_classification(dir.path(), LabelSource::LastFolder).unwrap();
        assert_eq!(ds.class_names, ["a", "b"]);
        let files: Vec<_> = ds.samples.iter().map(|s| s.image_file_name.as_str()).collect();
        assert_eq!(files, ["a/9.png", "b/1.png", "b/2.png"]);
        assert_eq!(ds.samples[2].image_label_id.as_ref().unwrap()[0].get(), 1);
        assert!(
            read_dl_dataset_classification(&dir.path().join("missing"), LabelSource::LastFolder).is_err()
        );
    }
}
