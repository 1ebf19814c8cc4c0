//! Side-by-side counterpart of `benches/python/eval_bench.py` for `cargo xtask bench eval`: times
//! dlkit on the workloads that script wrote into DIR and prints one JSON line per measurement.
//!
//! usage: eval_throughput DIR

use dl_core::{Detection, Rect1, Rect2, nms};
use dl_eval::coco_files::load_coco_detections;
use dl_eval::detection::{DetectionEvalParams, evaluate_detections};
use std::path::Path;
use std::time::Instant;

fn read_f64(path: &Path) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: eval_throughput DIR")?);
    let threads = rayon::current_num_threads();

    let (images, _) = load_coco_detections::<Rect1>(&dir.join("coco_gt.json"), &dir.join("coco_dt.json"))?;
    let n: usize = images.iter().map(|i| i.detections.len()).sum();
    let start = Instant::now();
    let eval = evaluate_detections(&images, &DetectionEvalParams::coco())?;
    let stats = eval.coco_summary()?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"bench\": \"coco\", \"tool\": \"dlkit ({threads} threads)\", \"items\": {n}, \"seconds\": {secs}, \"stats\": {}}}",
        serde_json::to_string(&stats)?
    );

    let v = read_f64(&dir.join("riou_pairs.f64"))?;
    let pairs: Vec<(Rect2, Rect2)> = v
        .chunks_exact(10)
        .map(|p| Ok((Rect2::new(p[0], p[1], p[2], p[3], p[4])?, Rect2::new(p[5], p[6], p[7], p[8], p[9])?)))
        .collect::<Result<_, dl_core::Error>>()?;
    let start = Instant::now();
    let sum: f64 = {
        use rayon::prelude::*;
        pairs.par_iter().map(|(a, b)| a.iou(b)).sum()
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"bench\": \"riou\", \"tool\": \"dlkit ({threads} threads)\", \"items\": {}, \"seconds\": {secs}, \"checksum\": {sum}}}",
        pairs.len()
    );

    let b = read_f64(&dir.join("nms_boxes.f64"))?;
    let dets: Vec<Detection<Rect1>> = b
        .chunks_exact(5)
        .map(|x| Ok(Detection { class: 0, score: x[4], bbox: Rect1::new(x[1], x[0], x[3], x[2])? }))
        .collect::<Result<_, dl_core::Error>>()?;
    let reps = 20;
    let mut kept = 0;
    let start = Instant::now();
    for _ in 0..reps {
        kept = nms(&dets, 0.5, 1.0, usize::MAX).len();
    }
    let secs = start.elapsed().as_secs_f64() / f64::from(reps);
    println!(
        "{{\"bench\": \"nms\", \"tool\": \"dlkit (1 thread)\", \"items\": {}, \"seconds\": {secs}, \"kept\": {kept}}}",
        dets.len()
    );
    Ok(())
}
