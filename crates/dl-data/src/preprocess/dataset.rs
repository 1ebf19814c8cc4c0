//! `preprocess_dl_dataset`: every sample preprocessed into a sample file, resumable.

use super::{
    DLPreprocessParam, SampleStorage, encode_samples_with, preprocess_sample, read_dl_samples,
    write_dl_samples_with,
};
use crate::{DLDataset, Error, Result, gen_dl_samples};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::path::Path;

/// Options of [`preprocess_dl_dataset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PreprocessOptions {
    /// Replace an existing output folder (default: refuse it, unless it holds an interrupted run with
    /// the same parameters, which is resumed).
    pub overwrite: bool,
    /// Show a progress bar on the terminal.
    pub show_progress: bool,
    /// How the sample files store pixels (default: compact, lossless).
    pub storage: SampleStorage,
}

/// What [`estimate_preprocessed_size`] expects a preprocessed dataset to take on disk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeEstimate {
    /// Bytes of all sample files.
    pub bytes: u64,
    /// Samples measured (preprocessed and encoded) for the estimate.
    pub measured: usize,
    /// Bytes the same samples would take with f32 pixels (for comparison).
    pub float32_bytes: u64,
}

/// Estimates the size of the sample files [`preprocess_dl_dataset`] would write: up to 16 samples
/// spread over the dataset are preprocessed and encoded with `storage`, and their mean size is
/// scaled to every sample.
///
/// # Errors
/// The first measured sample that fails to read or preprocess, naming it.
pub fn estimate_preprocessed_size(
    dataset: &DLDataset,
    param: &DLPreprocessParam,
    storage: SampleStorage,
) -> Result<SizeEstimate> {
    let n = dataset.samples.len();
    if n == 0 {
        return Ok(SizeEstimate { bytes: 0, measured: 0, float32_bytes: 0 });
    }
    let m = n.min(16);
    let picks: Vec<usize> = (0..m).map(|k| k * n / m).collect();
    let sizes = picks
        .par_iter()
        .map(|&i| -> Result<(u64, u64)> {
            let sample = gen_dl_samples(dataset, &[i])?.pop().expect("one sample per index");
            let (sample, _) = preprocess_sample(sample, param)?;
            let one = std::slice::from_ref(&sample);
            Ok((
                encode_samples_with(one, storage).len() as u64,
                encode_samples_with(one, SampleStorage::Float32).len() as u64,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let scale = |total: u64| (total as f64 * n as f64 / picks.len() as f64).round() as u64;
    Ok(SizeEstimate {
        bytes: scale(sizes.iter().map(|s| s.0).sum()),
        measured: picks.len(),
        float32_bytes: scale(sizes.iter().map(|s| s.1).sum()),
    })
}

/// The bytes available to an unprivileged user on the disk holding `path` (or its nearest existing
/// parent); `None` where the system does not say.
pub fn available_disk_space(path: &Path) -> Option<u64> {
    // A relative path without an existing parent is below the working folder.
    let existing = path.ancestors().find(|p| p.exists()).unwrap_or(Path::new("."));
    let s = rustix::fs::statvfs(existing).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

const STATE_FILE: &str = ".dlkit-preprocess-state.json";

/// Whether `dir` or a folder below it holds a file (or cannot be listed); the temporary files of
/// interrupted atomic writes do not count.
fn holds_files(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Err(_) => true,
        Ok(entries) => entries.into_iter().any(|e| match e {
            Err(_) => true,
            Ok(e) if e.path().is_dir() => holds_files(&e.path()),
            Ok(e) => !dl_io::is_temporary_name(&e.file_name().to_string_lossy()),
        }),
    }
}

/// The state file's content: the parameters, the storage and the source dataset's description (its
/// JSON's length and CRC-32): a run resumes, or a finished folder is reused, only with all unchanged.
fn state_bytes(dataset: &DLDataset, param: &DLPreprocessParam, storage: SampleStorage) -> Vec<u8> {
    let source = serde_json::to_vec(dataset).expect("datasets serialise");
    serde_json::to_vec(&serde_json::json!({
        "preprocess_param": param,
        "storage": storage,
        "dataset_bytes": source.len(),
        "dataset_crc32": crc32fast::hash(&source),
    }))
    .expect("parameters serialise")
}

/// Name of the dataset file written into the output folder.
pub const DATASET_FILE: &str = "dataset.json";

/// Preprocesses every sample of `dataset` into `out_dir/samples/<image_id>_dlsample.dls` and writes
/// the preprocessed dataset (with `dlsample_dir`, `dlsample_file_name`, `preprocess_param`) to
/// `out_dir/dataset.json`, which it also returns.
///
/// The folder keeps a state file naming the source dataset (its description, not its image files),
/// the parameters and the storage. A run on a folder with the same state resumes it: an interrupted
/// run, or a finished one run again, keeps every sample file that reads back correctly and writes only
/// the missing or damaged ones (a finished folder is checked and its dataset returned). Any other
/// existing `out_dir` is refused unless `overwrite`. Each file is written atomically, so an interruption
/// never leaves a half-written one.
///
/// # Errors
/// [`Error::Param`] for an existing folder or invalid parameters; the first sample that fails to read
/// or preprocess (naming it); write errors naming the file.
pub fn preprocess_dl_dataset(
    dataset: &DLDataset,
    out_dir: &Path,
    param: &DLPreprocessParam,
    options: PreprocessOptions,
) -> Result<DLDataset> {
    param.validate()?;
    let state_path = out_dir.join(STATE_FILE);
    let state = state_bytes(dataset, param, options.storage);
    let resume = out_dir.exists() && std::fs::read(&state_path).is_ok_and(|s| s == state);
    // A folder without any file (a run killed before it wrote its state) holds nothing to lose.
    if out_dir.exists() && !resume && holds_files(out_dir) {
        if !options.overwrite {
            return Err(Error::Param {
                key: "out_dir",
                message: format!(
                    "{} exists: set overwrite (dlkit dataset preprocess --overwrite) to replace it",
                    out_dir.display()
                ),
            });
        }
        std::fs::remove_dir_all(out_dir).map_err(Error::io("removing", out_dir))?;
    }
    let samples_dir = out_dir.join("samples");
    std::fs::create_dir_all(&samples_dir).map_err(Error::io("creating", &samples_dir))?;
    dl_io::write_bytes_atomic(&state_path, &state)?;
    let samples_abs = std::fs::canonicalize(&samples_dir).map_err(Error::io("opening", &samples_dir))?;

    let progress = if options.show_progress {
        ProgressBar::new(dataset.samples.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("preprocessing [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let names: Vec<String> = dataset.samples.iter().map(|s| format!("{}_dlsample.dls", s.image_id)).collect();
    (0..dataset.samples.len()).into_par_iter().try_for_each(|i| {
        let path = samples_abs.join(&names[i]);
        if resume && read_dl_samples(&path).is_ok() {
            progress.inc(1);
            return Ok(());
        }
        let sample = gen_dl_samples(dataset, &[i])?.pop().expect("one sample per index");
        let (sample, _) = preprocess_sample(sample, param)?;
        write_dl_samples_with(&path, std::slice::from_ref(&sample), options.storage)?;
        progress.inc(1);
        Ok::<(), Error>(())
    })?;
    progress.finish();
    let mut out = dataset.clone();
    out.dlsample_dir = Some(samples_abs.to_string_lossy().into_owned());
    out.preprocess_param = Some(param.clone());
    for (s, name) in out.samples.iter_mut().zip(names) {
        s.dlsample_file_name = Some(name);
    }
    out.save(&out_dir.join(DATASET_FILE))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::DLPreprocessParam;
    use crate::read::{LabelSource, read_dl_dataset_classification};
    use crate::{ModelType, SampleEntry};

    fn samples_mtimes(pre: &DLDataset) -> Vec<std::time::SystemTime> {
        let dir = Path::new(pre.dlsample_dir.as_ref().unwrap());
        pre.samples
            .iter()
            .map(|s| {
                let path = dir.join(s.dlsample_file_name.as_ref().unwrap());
                std::fs::metadata(path).unwrap().modified().unwrap()
            })
            .collect()
    }

    #[test]
    fn writes_refuses_resumes_and_overwrites() {
        let tmp = tempfile::tempdir().unwrap();
        let imgs = tmp.path().join("imgs/a");
        std::fs::create_dir_all(&imgs).unwrap();
        for i in 0..5 {
            image::GrayImage::from_pixel(6, 4, image::Luma([i * 50]))
                .save(imgs.join(format!("{i}.png")))
                .unwrap();
        }
        let ds = read_dl_dataset_classification(&tmp.path().join("imgs"), LabelSource::LastFolder).unwrap();
        let param = DLPreprocessParam::new(ModelType::Classification, 3, 2, 1).unwrap();
        let out = tmp.path().join("pre");
        let pre = preprocess_dl_dataset(&ds, &out, &param, PreprocessOptions::default()).unwrap();
        assert_eq!(DLDataset::load(&out.join(DATASET_FILE)).unwrap(), pre);
        let s = read_dl_samples(
            &Path::new(pre.dlsample_dir.as_ref().unwrap())
                .join(pre.samples[4].dlsample_file_name.as_ref().unwrap()),
        )
        .unwrap();
        assert_eq!((s[0].image.width, s[0].image.height), (3, 2));
        assert_eq!(s[0].image.data[0], -127.0 + 200.0);
        // A finished folder run again with the same dataset and parameters is checked and reused (no
        // sample rewritten); with other parameters, storage or dataset it is refused without overwrite.
        let first = samples_mtimes(&pre);
        assert_eq!(preprocess_dl_dataset(&ds, &out, &param, PreprocessOptions::default()).unwrap(), pre);
        assert_eq!(samples_mtimes(&pre), first, "nothing rewritten");
        let mut wider = param.clone();
        wider.image_width = 4;
        assert!(preprocess_dl_dataset(&ds, &out, &wider, PreprocessOptions::default()).is_err());
        let f32_files = PreprocessOptions { storage: SampleStorage::Float32, ..Default::default() };
        assert!(preprocess_dl_dataset(&ds, &out, &param, f32_files).is_err());
        let mut fewer = ds.clone();
        fewer.samples.pop();
        assert!(preprocess_dl_dataset(&fewer, &out, &param, PreprocessOptions::default()).is_err());
        // An interrupted run (one sample missing, one corrupt) is resumed.
        let samples = Path::new(pre.dlsample_dir.as_ref().unwrap());
        let keep = samples.join(pre.samples[0].dlsample_file_name.as_ref().unwrap());
        let before = std::fs::metadata(&keep).unwrap().modified().unwrap();
        std::fs::remove_file(samples.join(pre.samples[1].dlsample_file_name.as_ref().unwrap())).unwrap();
        std::fs::write(samples.join(pre.samples[2].dlsample_file_name.as_ref().unwrap()), b"junk").unwrap();
        let again = preprocess_dl_dataset(&ds, &out, &param, PreprocessOptions::default()).unwrap();
        assert_eq!(again, pre);
        assert_eq!(
            std::fs::metadata(&keep).unwrap().modified().unwrap(),
            before,
            "finished samples are not rewritten"
        );
        assert!(read_dl_samples(&samples.join(pre.samples[2].dlsample_file_name.as_ref().unwrap())).is_ok());
        // Overwrite replaces it.
        let mut bigger = param.clone();
        bigger.image_width = 6;
        let o = PreprocessOptions { overwrite: true, ..Default::default() };
        assert_eq!(
            preprocess_dl_dataset(&ds, &out, &bigger, o).unwrap().preprocess_param.unwrap().image_width,
            6
        );
        // A sample that cannot be read names its file.
        let mut broken = ds.clone();
        broken.samples.push(SampleEntry {
            image_id: dl_core::ImageId(99),
            image_file_name: "a/missing.png".into(),
            ..Default::default()
        });
        let err =
            preprocess_dl_dataset(&broken, &tmp.path().join("p2"), &param, PreprocessOptions::default())
                .unwrap_err();
        assert!(err.to_string().contains("missing.png"), "{err}");
    }
}
