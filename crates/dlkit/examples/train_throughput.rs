//! Training throughput for `cargo xtask bench train`, side by side with `benches/python/train_torch.py`.
//!
//! Usage: `train_throughput LIST_FILE EPOCHS` (one "path<TAB>class index" per line). The `compact`
//! classifier, Adam (lr 0.003), batch 64, images decoded and preprocessed from the PNG files by dlkit's
//! pipeline during training (`loop`: the wall time of the whole `train_dl_model` call, with its
//! per-epoch evaluation, checkpoint, log and plot writes), then the same steps on batches already in
//! memory (`compute`). Prints JSON lines like the Python script, with the process's peak resident
//! memory. Threads: `DLKIT_BENCH_THREADS` (default 2) for libtorch and for rayon's pool, both set here.

use dlkit::Model;
use dlkit::core::{ClassId, ImageId, Split};
use dlkit::data::preprocess::{HostBatch, collate};
use dlkit::data::{DLDataset, SampleEntry};
use dlkit::train::{
    Optimizer, StartEpoch, TrainParam, pipeline::SampleSource, solver_param, train_dl_model,
    train_dl_model_batch,
};
use serde_json::json;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [list, epochs] = args.as_slice() else {
        return Err("usage: train_throughput LIST_FILE EPOCHS".into());
    };
    let epochs: usize = epochs.parse()?;
    let threads: usize = std::env::var("DLKIT_BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    tch::set_num_threads(threads as i32);
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global()?;
    let mut samples = Vec::new();
    let mut num_classes = 0u16;
    for (i, line) in std::fs::read_to_string(list)?.lines().enumerate() {
        let (path, label) = line.split_once('\t').ok_or("expected path<TAB>label")?;
        let label: u16 = label.parse()?;
        num_classes = num_classes.max(label + 1);
        samples.push(SampleEntry {
            image_id: ImageId(i as u64),
            image_file_name: path.to_owned(),
            image_label_id: Some(vec![ClassId::new(i64::from(label))?]),
            // A small validation split: the evaluation after each epoch stays negligible.
            split: Some(if i % 200 == 0 { Split::Validation } else { Split::Train }),
            ..Default::default()
        });
    }
    let ids: Vec<i64> = (0..i64::from(num_classes)).collect();
    let names: Vec<String> = ids.iter().map(|i| format!("class{i}")).collect();
    let dataset = DLDataset {
        image_dir: String::new(),
        class_names: names.clone(),
        class_ids: ids.iter().map(|&i| ClassId::new(i)).collect::<Result<_, _>>()?,
        samples,
        ..Default::default()
    };
    tch::manual_seed(0);
    let mut model = Model::create_classifier("compact", &names, &ids, 28, 28, 1)?;
    for (k, v) in [("solver_type", json!("adam")), ("learning_rate", json!(0.003)), ("batch_size", json!(64))]
    {
        model.set_param(k, &v)?;
    }
    let out = std::env::temp_dir().join(format!("dlkit-train-bench-{}", std::process::id()));
    let param = TrainParam {
        num_epochs: epochs,
        output_dir: out.clone(),
        serialization_strategies: vec![],
        display: false,
        ..Default::default()
    };
    let t = Instant::now();
    let log = train_dl_model(&dataset, &mut model, &param, StartEpoch::Fresh)?;
    let seconds = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&out);
    let images = log.epochs.len() as u64 * log.iterations_per_epoch * log.images_per_step as u64;
    println!(
        "{}",
        json!({"bench": "loop",
               "tool": format!("dlkit train_dl_model (libtorch {threads} threads; decode + preprocess on rayon, {} threads), evaluation + checkpoint each epoch", rayon::current_num_threads()),
               "images": images, "seconds": seconds, "peak_rss_mib": dl_testkit::peak_rss_mib(),
               "final_loss": log.epochs.last().map(|e| e.mean_loss)})
    );

    // Compute only: one epoch of batches in memory, the same steps.
    let source = SampleSource::new(&dataset, &model.description().preprocess)?;
    let train: Vec<usize> =
        (0..dataset.samples.len()).filter(|&i| dataset.samples[i].split == Some(Split::Train)).collect();
    let batches: Vec<HostBatch> = train
        .chunks_exact(64)
        .map(|chunk| {
            Ok(collate(
                &source.load(chunk)?,
                &dataset.class_ids,
                Some(dlkit::data::ModelType::Classification),
            )?)
        })
        .collect::<Result<_, dlkit::train::Error>>()?;
    let mut optimizer = Optimizer::new(model.var_store(), solver_param(&model)?)?;
    for b in batches.iter().take(5) {
        train_dl_model_batch(&model, &mut optimizer, b)?;
    }
    let t = Instant::now();
    for _ in 0..epochs {
        for b in &batches {
            train_dl_model_batch(&model, &mut optimizer, b)?;
        }
    }
    println!(
        "{}",
        json!({"bench": "compute", "tool": "dlkit train_dl_model_batch on batches in memory",
               "images": epochs * batches.len() * 64, "seconds": t.elapsed().as_secs_f64()})
    );
    Ok(())
}
