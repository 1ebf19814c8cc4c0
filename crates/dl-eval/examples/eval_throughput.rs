//! Side-by-side counterpart of `benches/python/eval_bench.py` for `cargo xtask bench eval`: times
//! dlkit on the workloads that script wrote into DIR and prints one JSON line per measurement, each
//! with a single thread (the Python tools' budget) and with the whole rayon pool (`RAYON_NUM_THREADS`).
//!
//! - `coco`: evaluation + summary of the COCO files (loading excluded, as on the Python side), with the
//!   12 numbers;
//! - `riou`: rotated boxes built from the raw arrays and their IoUs (as shapely builds its polygons
//!   inside its clock); the IoUs are written to `DIR/riou_dlkit.f64` for the comparison;
//! - `nms`: NMS at IoU 0.5 (one thread), with the kept indices.
//!
//! usage: eval_throughput DIR

use dl_core::{Detection, Rect1, Rect2, nms};
use dl_eval::coco_files::load_coco_detections;
use dl_eval::detection::{DetectionEvalParams, evaluate_detections};
use rayon::prelude::*;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn read_f64(path: &Path) -> Res<Vec<f64>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect())
}

/// Runs `f` on a pool of `threads` threads.
fn on<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> Res<T> {
    Ok(rayon::ThreadPoolBuilder::new().num_threads(threads).build()?.install(f))
}

fn riou(v: &[f64]) -> Result<Vec<f64>, dl_core::Error> {
    v.par_chunks_exact(10)
        .map(
            |p| Ok(Rect2::new(p[0], p[1], p[2], p[3], p[4])?.iou(&Rect2::new(p[5], p[6], p[7], p[8], p[9])?)),
        )
        .collect()
}

fn main() -> Res<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: eval_throughput DIR")?);
    let all = rayon::current_num_threads();

    let (images, _) = load_coco_detections::<Rect1>(&dir.join("coco_gt.json"), &dir.join("coco_dt.json"))?;
    let n: usize = images.iter().map(|i| i.detections.len()).sum();
    for threads in [1, all] {
        let start = Instant::now();
        let stats = on(threads, || -> Result<Vec<f64>, dl_eval::Error> {
            Ok(evaluate_detections(&images, &DetectionEvalParams::coco())?.coco_summary()?.to_vec())
        })??;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{}",
            json!({"bench": "coco", "tool": format!("dlkit ({threads} thread{})", if threads > 1 { "s" } else { "" }),
                   "threads": threads, "items": n, "seconds": secs, "stats": stats})
        );
    }

    let v = read_f64(&dir.join("riou_pairs.f64"))?;
    let mut ious = Vec::new();
    for threads in [1, all] {
        let start = Instant::now();
        ious = on(threads, || riou(&v))??;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{}",
            json!({"bench": "riou", "tool": format!("dlkit ({threads} thread{})", if threads > 1 { "s" } else { "" }),
                   "threads": threads, "items": ious.len(), "seconds": secs})
        );
    }
    std::fs::write(
        dir.join("riou_dlkit.f64"),
        ious.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
    )?;

    let b = read_f64(&dir.join("nms_boxes.f64"))?;
    let dets: Vec<Detection<Rect1>> = b
        .chunks_exact(5)
        .map(|x| Ok(Detection { class: 0, score: x[4], bbox: Rect1::new(x[1], x[0], x[3], x[2])? }))
        .collect::<Result<_, dl_core::Error>>()?;
    let reps = 20;
    let mut kept = Vec::new();
    let start = Instant::now();
    for _ in 0..reps {
        kept = nms(&dets, 0.5, 1.0, usize::MAX);
    }
    let secs = start.elapsed().as_secs_f64() / f64::from(reps);
    println!(
        "{}",
        json!({"bench": "nms", "tool": "dlkit (1 thread)", "threads": 1, "items": dets.len(), "seconds": secs, "kept": kept})
    );
    Ok(())
}
