//! dlkit's side of `cargo xtask bench detect` (the Python side: `benches/python/detect_torch.py`).
//!
//! `detect_throughput prepare DIR`: 256×256 tiles of the deepforest images (one class, "tree") as PNG
//! files with `coco.json`, a detector (MobileNetV2 backbone from scratch, pyramid of 128 channels on
//! strides 4/8/16, heads of four 128-channel convolutions, 9 anchors, min_confidence 0, the class head's last weights
//! scaled so that the untrained scores spread over (0, 1)) as
//! `model.dlm` with its weights under torchvision's names in `weights.safetensors`, and 100 000 random
//! candidate boxes in `candidates.f32` (anchor x1 y1 x2 y2, deltas, score, class per row).
//!
//! `detect_throughput measure DIR EPOCHS`: JSON lines as the Python side's — `outputs` (detections of
//! the first tile), `latency_b1` (median of `Model::apply` on one tile: preprocessing, forward, decoding,
//! NMS, mapping back), `postprocess` (decode, clip and NMS per class of the 100 000 candidates, kept
//! indices) and `train` (`train_dl_model` on the tiles: Adam 1e-3, batch 8, EPOCHS epochs, wall time
//! including evaluation and checkpoint writes). Threads: `DLKIT_BENCH_THREADS` (default 2) for libtorch
//! and rayon.

use dlkit::core::{Rect1, Rng};
use dlkit::data::read::{VocCoordinates, read_dl_dataset_voc};
use dlkit::data::{DLDataset, TileParams, gen_dl_samples, tile_dl_dataset};
use dlkit::nets::detection::box_coder;
use dlkit::train::{StartEpoch, TrainParam, train_dl_model};
use dlkit::{DetectorOptions, Model};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const TILE: usize = 256;
const CANDIDATES: usize = 100_000;

fn prepare(dir: &Path) -> Res<()> {
    let data = dl_testkit::data_dir("deepforest");
    let mut ds = read_dl_dataset_voc(&data, &data, VocCoordinates::default())?;
    let tree = dlkit::core::ClassId::new(0)?;
    for s in &mut ds.samples {
        s.bbox_label_id = s.bbox_label_id.take().map(|l| vec![tree; l.len()]);
    }
    ds.class_ids = vec![tree];
    ds.class_names = vec!["tree".into()];
    let all: Vec<usize> = (0..ds.samples.len()).collect();
    let params = TileParams { width: TILE, height: TILE, overlap: 32, min_visible: 0.5 };
    let mut tiles = tile_dl_dataset(&ds, &all, &params, dir)?;
    for (i, s) in tiles.samples.iter_mut().enumerate() {
        s.split = Some(if i == 0 { "validation" } else { "train" }.parse()?);
    }
    tiles.save(&dir.join("dataset.json"))?;
    let mut images = Vec::new();
    let mut annotations = Vec::new();
    for s in &tiles.samples {
        images
            .push(json!({"id": s.image_id.0, "file_name": s.image_file_name, "width": TILE, "height": TILE}));
        for (_, b) in s.rect1_boxes()? {
            annotations.push(json!({"id": annotations.len() + 1, "image_id": s.image_id.0, "category_id": 0,
                                    "bbox": b.to_coco(), "area": b.area(), "iscrowd": 0}));
        }
    }
    let coco =
        json!({"images": images, "annotations": annotations, "categories": [{"id": 0, "name": "tree"}]});
    std::fs::write(dir.join("coco.json"), serde_json::to_vec(&coco)?)?;
    let options = DetectorOptions {
        params: dlkit::nets::DetectionParams { min_confidence: 0.0, ..Default::default() },
        ..Default::default()
    };
    tch::manual_seed(0);
    let mut model =
        Model::create_detector("mobilenet_v2", &tiles.class_names, &[0], (TILE, TILE, 3), &options)?;
    model.set_param("batch_size", &json!(8))?;
    model.set_param("solver_type", &json!("adam"))?;
    model.set_param("learning_rate", &json!(0.001))?;
    // An untrained head scores every anchor near its 0.01 prior; spread the class logits so that the
    // detections of the two sides can be compared one by one (both load these weights).
    for (name, mut var) in model.var_store().variables() {
        if name == "det_head.class.out.weight" {
            tch::no_grad(|| {
                let _ = var.g_mul_scalar_(300.0);
            });
        }
    }
    model.write(&dir.join("model.dlm"))?;
    std::fs::write(dir.join("weights.safetensors"), model.export_weights()?)?;
    // Candidates: anchors of 16 … 100 pixels anywhere in the tile, small deltas, 5 classes.
    let mut rng = Rng::new(7);
    let mut u = || (rng.next_u64() >> 11) as f32 / (1u64 << 53) as f32;
    let mut rows = Vec::with_capacity(CANDIDATES * 10);
    for _ in 0..CANDIDATES {
        let (w, h) = (16.0 + 84.0 * u(), 16.0 + 84.0 * u());
        let (x, y) = (u() * (TILE as f32 - w), u() * (TILE as f32 - h));
        rows.extend([
            x,
            y,
            x + w,
            y + h,
            0.2 * (u() - 0.5),
            0.2 * (u() - 0.5),
            0.3 * (u() - 0.5),
            0.3 * (u() - 0.5),
        ]);
        rows.push(u());
        rows.push((u() * 5.0).floor().min(4.0));
    }
    let bytes: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("candidates.f32"), bytes)?;
    println!(
        "{} tiles, {} boxes, {CANDIDATES} candidates → {}",
        tiles.samples.len(),
        annotations.len(),
        dir.display()
    );
    Ok(())
}

fn measure(dir: &Path, epochs: usize) -> Res<()> {
    let threads: usize = std::env::var("DLKIT_BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    tch::set_num_threads(threads as i32);
    let tool = format!("dlkit (libtorch {threads} threads, rayon {} threads)", rayon::current_num_threads());
    let ds = DLDataset::load(&dir.join("dataset.json"))?;
    let mut model = Model::read(&dir.join("model.dlm"))?;
    let tile = gen_dl_samples(&ds, &[0])?.remove(0).image;
    let r = model.apply(vec![tile.clone()])?.remove(0);
    // Results as torchvision's pixel-edge x1 y1 x2 y2.
    let boxes: Vec<[f64; 4]> = (0..r.bbox_confidence.as_ref().map_or(0, Vec::len))
        .map(|i| {
            let g = |v: &Option<Vec<f64>>| v.as_ref().map_or(0.0, |v| v[i]);
            [g(&r.bbox_col1) + 0.5, g(&r.bbox_row1) + 0.5, g(&r.bbox_col2) + 0.5, g(&r.bbox_row2) + 0.5]
        })
        .collect();
    println!(
        "{}",
        json!({"bench": "outputs", "tool": tool, "items": 1, "seconds": 1.0, "boxes": boxes, "scores": r.bbox_confidence})
    );
    for _ in 0..3 {
        model.apply(vec![tile.clone()])?;
    }
    let mut times: Vec<f64> = (0..30)
        .map(|_| {
            let t = Instant::now();
            let _ = model.apply(vec![tile.clone()]);
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("{}", json!({"bench": "latency_b1", "tool": tool, "items": 1, "seconds": times[15]}));

    // Post-processing of the shared candidates: decode, clip, NMS per class, 100 kept.
    let raw = std::fs::read(dir.join("candidates.f32"))?;
    let v: Vec<f32> = raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let size = TILE as f64;
    let mut times = Vec::new();
    let mut kept = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let dets: Vec<dlkit::core::Detection<Rect1>> = v
            .chunks_exact(10)
            .filter_map(|c| {
                let b =
                    box_coder::decode(&[c[4], c[5], c[6], c[7]], &[c[0], c[1], c[2], c[3]]).map(f64::from);
                let (x1, y1, x2, y2) = (
                    b[0].clamp(0.0, size),
                    b[1].clamp(0.0, size),
                    b[2].clamp(0.0, size),
                    b[3].clamp(0.0, size),
                );
                let bbox = Rect1::new(y1 - 0.5, x1 - 0.5, y2 - 0.5, x2 - 0.5).ok()?;
                Some(dlkit::core::Detection { class: c[9] as u32, score: f64::from(c[8]), bbox })
            })
            .collect();
        kept = dlkit::core::nms(&dets, 0.5, 1.0, 100);
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(dets.len(), CANDIDATES, "no candidate is degenerate");
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({"bench": "postprocess", "tool": format!("dlkit decode + NMS per class ({tool})"), "items": CANDIDATES, "seconds": times[2], "kept": kept})
    );

    let train = ds
        .samples
        .iter()
        .filter(|s| s.split == Some("train".parse().unwrap_or(dlkit::core::Split::Train)))
        .count();
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
        json!({"bench": "train", "tool": tool, "images": images, "seconds": seconds, "train_samples": train, "peak_rss_mib": dl_testkit::peak_rss_mib()})
    );
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, dir] if cmd == "prepare" => prepare(Path::new(dir)),
        [cmd, dir, epochs] if cmd == "measure" => measure(Path::new(dir), epochs.parse()?),
        _ => Err("usage: detect_throughput prepare DIR | measure DIR EPOCHS".into()),
    }
}
