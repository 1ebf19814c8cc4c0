//! Side-by-side counterpart of `benches/python/preprocess_torchvision.py` for `cargo xtask bench
//! preprocess`: decode each image of a list, convert to 3 channels, resize bilinearly (half-pixel
//! centres, no antialiasing) to 224×224 and normalise with ImageNet constants, in parallel over the
//! threads rayon is given (`RAYON_NUM_THREADS`, printed).
//!
//! usage: preprocess_throughput LIST_FILE OUT_DIR — prints one JSON line {"tool", "images", "seconds",
//! "threads"} for the timed pass (after a warm-up pass over the first 64 images), then, untimed, writes
//! what the Python side compares against: `OUT_DIR/dlkit_sums.f64` (the sum of every 10th image's
//! values) and `OUT_DIR/dlkit_{k}.f32` (the whole tensors of images 0…3, channel-major).

use dl_data::preprocess::{DLPreprocessParam, NormalizationType, preprocess_sample};
use dl_data::{DLSample, HostImage, ModelType};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [list, out] = args.as_slice() else {
        return Err("usage: preprocess_throughput LIST_FILE OUT_DIR".into());
    };
    let paths: Vec<PathBuf> =
        std::fs::read_to_string(list)?.lines().filter(|l| !l.is_empty()).map(PathBuf::from).collect();
    let mut param = DLPreprocessParam::new(ModelType::Classification, 224, 224, 3)?;
    param.normalization_type = NormalizationType::ConstantValues;
    let one = |i: usize, p: &Path| -> Result<Vec<f32>, dl_data::Error> {
        let s = DLSample::from_image(dl_core::ImageId(i as u64), HostImage::read(p)?);
        Ok(preprocess_sample(s, &param)?.0.image.data)
    };
    let run = |paths: &[PathBuf]| -> Result<usize, dl_data::Error> {
        paths.par_iter().enumerate().map(|(i, p)| Ok(one(i, p)?.len())).try_reduce(|| 0, |a, b| Ok(a + b))
    };
    run(&paths[..paths.len().min(64)])?; // warm-up: the thread pool and the page cache
    let start = std::time::Instant::now();
    let values = run(&paths)?;
    let secs = start.elapsed().as_secs_f64();
    if values != paths.len() * 224 * 224 * 3 {
        return Err(format!("{values} values for {} images", paths.len()).into());
    }
    let threads = rayon::current_num_threads();
    println!(
        "{{\"tool\": \"dlkit preprocess_sample (rayon, {threads} threads)\", \"images\": {}, \"seconds\": {secs}, \"threads\": {threads}}}",
        paths.len()
    );
    // The outputs the comparison reads, outside the timed span.
    let out = Path::new(out);
    let sums: Vec<u8> = paths
        .iter()
        .enumerate()
        .step_by(10)
        .map(|(i, p)| Ok(one(i, p)?.iter().map(|&v| f64::from(v)).sum::<f64>()))
        .collect::<Result<Vec<f64>, dl_data::Error>>()?
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(out.join("dlkit_sums.f64"), sums)?;
    for (k, p) in paths.iter().take(4).enumerate() {
        let bytes: Vec<u8> = one(k, p)?.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(out.join(format!("dlkit_{k}.f32")), bytes)?;
    }
    Ok(())
}
