//! dlkit's side of `cargo xtask bench anomaly` (the Python side: `benches/python/patchcore_torch.py`).
//!
//! `anomaly_throughput prepare DIR`: the ELPV dataset (`dataset.json`: all 1 207 `train/good` cells for
//! fitting; every second `test/good` and `test/defect` cell for testing, listed in `test.txt` with 0 ok /
//! 1 nok), the list of train images (`train.txt`) and the backbone's ImageNet weights under torchvision's
//! names (`weights.safetensors`).
//!
//! `anomaly_throughput measure DIR`: JSON lines as the Python side's — `fit` (PatchCore on
//! ImageNet MobileNetV2, strides 8 + 16, 3×3 neighbourhood, 1 % coreset in chunks of 65 536 patches, at
//! 224×224: reading and preprocessing the PNGs, features, coreset; wall time, the memory bank's size, the
//! process's peak resident memory), `infer` (images/s of `Model::apply` on the test cells in batches of
//! 16, from decoded images: preprocessing, features, distances, upsampling, smoothing, results) with the
//! test scores and the image AUROC. Threads: `DLKIT_BENCH_THREADS` (default 2) for libtorch and rayon.
//! After measuring, the fitted memory bank is written to `DIR/bank.f32` (rows × features, little-endian)
//! with `DIR/bank.json` ({"rows", "features", "score_scale"}): the Python side's `--check` run scores the
//! test cells with it, and its scores must equal dlkit's.

use dlkit::core::Split;
use dlkit::data::read::read_dl_dataset_anomaly;
use dlkit::data::{AnomalyLabel, DLDataset, HostImage};
use dlkit::nets::PatchCoreConfig;
use dlkit::{Model, NokInTrain};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn prepare(dir: &Path) -> Res<()> {
    let elpv = dl_testkit::data_dir("elpv");
    let mut ds = read_dl_dataset_anomaly(&elpv, None)?;
    let mut seen = [0usize; 2];
    ds.samples.retain_mut(|s| {
        let name = s.image_file_name.replace('\\', "/");
        if name.starts_with("train/") {
            s.split = Some(Split::Train);
            return true;
        }
        if name.starts_with("test/uncertain") {
            return false;
        }
        let k = usize::from(name.starts_with("test/defect"));
        seen[k] += 1;
        s.split = Some(Split::Test);
        seen[k] % 2 == 1
    });
    ds.save(&dir.join("dataset.json"))?;
    let root = Path::new(&ds.image_dir);
    let list = |split: Split, labelled: bool| -> String {
        ds.samples
            .iter()
            .filter(|s| s.split == Some(split))
            .map(|s| {
                let path = root.join(&s.image_file_name).display().to_string();
                if labelled {
                    format!("{path}\t{}\n", u8::from(s.anomaly_label == Some(AnomalyLabel::Nok)))
                } else {
                    format!("{path}\n")
                }
            })
            .collect()
    };
    std::fs::write(dir.join("train.txt"), list(Split::Train, false))?;
    std::fs::write(dir.join("test.txt"), list(Split::Test, true))?;
    let model = Model::create_patchcore(
        "pretrained_dl_classifier_mobilenet_v2",
        None,
        (224, 224, 3),
        &PatchCoreConfig::default(),
    )?;
    std::fs::write(dir.join("weights.safetensors"), model.export_weights()?)?;
    println!("{} samples → {}", ds.samples.len(), dir.display());
    Ok(())
}

fn measure(dir: &Path) -> Res<()> {
    let threads: usize = std::env::var("DLKIT_BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    tch::set_num_threads(threads as i32);
    let tool = format!("dlkit (libtorch {threads} threads, rayon {} threads)", rayon::current_num_threads());
    let ds = DLDataset::load(&dir.join("dataset.json"))?;
    let t = Instant::now();
    let mut model = Model::create_patchcore(
        "pretrained_dl_classifier_mobilenet_v2",
        None,
        (224, 224, 3),
        &PatchCoreConfig::default(),
    )?;
    model.set_param("batch_size", &json!(16))?;
    let fit = model.fit_patchcore(&ds, NokInTrain::Refuse, 0, false)?;
    let seconds = t.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"bench": "fit", "tool": tool, "images": fit.images, "seconds": seconds, "patches": fit.patches,
               "memory_bank_size": fit.memory_bank_size, "peak_rss_mib": dl_testkit::peak_rss_mib()})
    );
    let test: Vec<(String, u8)> = std::fs::read_to_string(dir.join("test.txt"))?
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(p, y)| (p.to_owned(), y.parse().unwrap_or(0))))
        .collect();
    let images: Vec<HostImage> =
        test.iter().map(|(p, _)| HostImage::read(Path::new(p))).collect::<Result<_, _>>()?;
    let t = Instant::now();
    let mut scores = Vec::with_capacity(images.len());
    for chunk in images.chunks(16) {
        for r in model.apply(chunk.to_vec())? {
            scores.push(r.anomaly_score.unwrap_or(f64::NAN));
        }
    }
    let seconds = t.elapsed().as_secs_f64();
    let vars = model.var_store().variables();
    let (_, bank) =
        vars.iter().find(|(k, _)| k.ends_with("memory_bank")).ok_or("the fitted model has no memory bank")?;
    let (rows, features) = bank.size2()?;
    let values: Vec<f32> = Vec::try_from(bank.reshape([-1]))?;
    std::fs::write(dir.join("bank.f32"), values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())?;
    std::fs::write(
        dir.join("bank.json"),
        json!({"rows": rows, "features": features, "score_scale": fit.score_scale}).to_string(),
    )?;
    let nok: Vec<bool> = test.iter().map(|(_, y)| *y == 1).collect();
    let auroc = dlkit::eval::anomaly::auroc(&scores, &nok)?;
    println!(
        "{}",
        json!({"bench": "infer", "tool": tool, "images": images.len(), "seconds": seconds, "auroc": auroc, "scores": scores})
    );
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, dir] if cmd == "prepare" => prepare(Path::new(dir)),
        [cmd, dir] if cmd == "measure" => measure(Path::new(dir)),
        _ => Err("usage: anomaly_throughput prepare DIR | measure DIR".into()),
    }
}
