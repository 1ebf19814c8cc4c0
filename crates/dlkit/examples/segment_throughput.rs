//! dlkit's side of `cargo xtask bench segment` (the Python side: `benches/python/segment_torch.py`).
//!
//! `segment_throughput prepare DIR`: 25 crops of 256×256 (stride 64) of stardist's 512×512 nuclei image
//! with their semantic labels (`images/`, `labels/`, PNG; the first crop validates, the others train)
//! and the full image as `full.png`; a segmentation model (MobileNetV2 backbone from scratch, the
//! U-Net-style decoder of 64 channels on strides 4/8/16/32, two classes, ImageNet normalisation of the
//! gray image replicated to RGB) as `model.dlm` with its weights under torchvision's names in
//! `weights.safetensors`.
//!
//! `segment_throughput measure DIR EPOCHS`: JSON lines as the Python side's — `outputs` (the class and
//! confidence of every pixel of the full image at 512×512), `latency_b1` (median of `Model::apply` on
//! the full image at 512×512: preprocessing, forward, softmax, class ids and confidences on the host)
//! and `train` (`train_dl_model` on the crops at 256×256: Adam 1e-3, batch 8, EPOCHS epochs, wall time
//! including evaluation, with the process's peak resident memory). Threads: `DLKIT_BENCH_THREADS`
//! (default 2) for libtorch and rayon.

use dlkit::data::read::{SegmentationReadParams, read_dl_dataset_segmentation};
use dlkit::data::{DLDataset, HostImage};
use dlkit::train::{StartEpoch, TrainParam, train_dl_model};
use dlkit::{Model, SegmenterOptions};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const CROP: usize = 256;

fn prepare(dir: &Path) -> Res<()> {
    let data = dl_testkit::data_dir("stardist");
    let image = image::open(data.join("nuclei.png"))?.into_luma8();
    let labels = image::open(data.join("instances.png"))?.into_luma16();
    image.save(dir.join("full.png"))?;
    for sub in ["images", "labels"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    for (k, (r, c)) in (0..5).flat_map(|r| (0..5).map(move |c| (r * 64, c * 64))).enumerate() {
        let name = format!("crop{k:02}.png");
        image::imageops::crop_imm(&image, c, r, CROP as u32, CROP as u32)
            .to_image()
            .save(dir.join("images").join(&name))?;
        let l = image::imageops::crop_imm(&labels, c, r, CROP as u32, CROP as u32).to_image();
        let semantic = image::GrayImage::from_fn(CROP as u32, CROP as u32, |x, y| {
            image::Luma([u8::from(l.get_pixel(x, y)[0] > 0)])
        });
        semantic.save(dir.join("labels").join(&name))?;
    }
    let params = SegmentationReadParams {
        class_names: vec!["background".into(), "nucleus".into()],
        class_ids: vec![0, 1],
        ..Default::default()
    };
    let mut ds = read_dl_dataset_segmentation(&dir.join("images"), &dir.join("labels"), &params)?;
    for (i, s) in ds.samples.iter_mut().enumerate() {
        s.split = Some(if i == 0 { "validation" } else { "train" }.parse()?);
    }
    ds.save(&dir.join("dataset.json"))?;
    tch::manual_seed(0);
    let mut model = Model::create_segmenter(
        "mobilenet_v2",
        None,
        &ds.class_names,
        &[0, 1],
        (CROP, CROP, 3),
        &SegmenterOptions::default(),
    )?;
    model.set_param("batch_size", &json!(8))?;
    model.set_param("solver_type", &json!("adam"))?;
    model.set_param("learning_rate", &json!(0.001))?;
    model.write(&dir.join("model.dlm"))?;
    std::fs::write(dir.join("weights.safetensors"), model.export_weights()?)?;
    println!("{} crops → {}", ds.samples.len(), dir.display());
    Ok(())
}

fn measure(dir: &Path, epochs: usize) -> Res<()> {
    let threads: usize = std::env::var("DLKIT_BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    tch::set_num_threads(threads as i32);
    let tool = format!("dlkit (libtorch {threads} threads, rayon {} threads)", rayon::current_num_threads());
    let ds = DLDataset::load(&dir.join("dataset.json"))?;
    let mut model = Model::read(&dir.join("model.dlm"))?;
    // Inference at 512×512 on the full image.
    let full = HostImage::read(&dir.join("full.png"))?;
    model.set_param("image_width", &json!(full.width))?;
    model.set_param("image_height", &json!(full.height))?;
    let r = model.apply(vec![full.clone()])?.remove(0);
    let ids = r.segmentation_image.ok_or("no segmentation_image")?;
    let conf = r.segmentation_confidence.ok_or("no segmentation_confidence")?;
    println!(
        "{}",
        json!({"bench": "outputs", "tool": tool, "items": 1, "seconds": 1.0,
               "classes": ids.data, "confidences": conf.data})
    );
    for _ in 0..3 {
        model.apply(vec![full.clone()])?;
    }
    let mut times: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let _ = model.apply(vec![full.clone()]);
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("{}", json!({"bench": "latency_b1", "tool": tool, "items": 1, "seconds": times[10]}));

    model.set_param("image_width", &json!(CROP))?;
    model.set_param("image_height", &json!(CROP))?;
    let out = dir.join("training");
    let param = TrainParam {
        num_epochs: epochs,
        evaluation_interval_epochs: epochs,
        output_dir: out.clone(),
        display: false,
        serialization_strategies: vec![],
        ..Default::default()
    };
    let t = Instant::now();
    let log = train_dl_model(&ds, &mut model, &param, StartEpoch::Fresh)?;
    let seconds = t.elapsed().as_secs_f64();
    let images = log.epochs.len() as u64 * log.iterations_per_epoch * log.images_per_step as u64;
    let _ = std::fs::remove_dir_all(&out);
    println!(
        "{}",
        json!({"bench": "train", "tool": tool, "images": images, "seconds": seconds, "peak_rss_mib": dl_testkit::peak_rss_mib()})
    );
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, dir] if cmd == "prepare" => prepare(Path::new(dir)),
        [cmd, dir, epochs] if cmd == "measure" => measure(Path::new(dir), epochs.parse()?),
        _ => Err("usage: segment_throughput prepare DIR | measure DIR EPOCHS".into()),
    }
}
