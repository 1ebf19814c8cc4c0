//! Side-by-side counterpart of `benches/python/preprocess_torchvision.py` for `cargo xtask bench
//! preprocess`: decode each image of a list, convert to 3 channels, resize to 224×224 and normalise
//! with ImageNet constants, in parallel over the cores rayon is given (RAYON_NUM_THREADS).
//!
//! usage: preprocess_throughput LIST_FILE — prints one JSON line {"tool", "images", "seconds"}.

use dl_data::preprocess::{DLPreprocessParam, NormalizationType, preprocess_sample};
use dl_data::{DLSample, HostImage, ModelType};
use rayon::prelude::*;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let list = std::env::args().nth(1).ok_or("usage: preprocess_throughput LIST_FILE")?;
    let paths: Vec<PathBuf> =
        std::fs::read_to_string(list)?.lines().filter(|l| !l.is_empty()).map(PathBuf::from).collect();
    let mut param = DLPreprocessParam::new(ModelType::Classification, 224, 224, 3)?;
    param.normalization_type = NormalizationType::ConstantValues;
    let run = |paths: &[PathBuf]| -> Result<usize, dl_data::Error> {
        paths
            .par_iter()
            .enumerate()
            .map(|(i, p)| {
                let s = DLSample::from_image(dl_core::ImageId(i as u64), HostImage::read(p)?);
                Ok(preprocess_sample(s, &param)?.0.image.data.len())
            })
            .try_reduce(|| 0, |a, b| Ok(a + b))
    };
    run(&paths[..paths.len().min(64)])?; // warm-up
    let start = std::time::Instant::now();
    let values = run(&paths)?;
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(values, paths.len() * 224 * 224 * 3);
    println!(
        "{{\"tool\": \"dlkit (rayon, {} threads)\", \"images\": {}, \"seconds\": {secs}}}",
        rayon::current_num_threads(),
        paths.len()
    );
    Ok(())
}
