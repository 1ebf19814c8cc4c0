//! Evaluation benches on seeded synthetic inputs: rotated IoU per pair, NMS of 1 000 boxes, COCO-style
//! evaluation of 200 images × 100 detections. The side-by-side comparison with the Python tools runs
//! from `cargo xtask bench eval`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dl_core::{Detection, Rect1, Rect2, Rng, nms};
use dl_eval::detection::{self, DetectionEvalParams, GroundTruth, ImageDetections, evaluate_detections};
use std::hint::black_box;

fn rect1(rng: &mut Rng) -> Rect1 {
    let (r, c) = (rng.next_f64() * 400.0, rng.next_f64() * 600.0);
    Rect1::new(r, c, r + 8.0 + rng.next_f64() * 150.0, c + 8.0 + rng.next_f64() * 150.0)
        .expect("positive size")
}

fn eval(c: &mut Criterion) {
    let mut rng = Rng::new(1);
    let pairs: Vec<(Rect2, Rect2)> = (0..1000)
        .map(|_| {
            let mut b = || {
                Rect2::new(
                    rng.next_f64() * 20.0,
                    rng.next_f64() * 20.0,
                    rng.next_f64() * 6.0 - 3.0,
                    1.0 + rng.next_f64() * 20.0,
                    1.0 + rng.next_f64() * 20.0,
                )
                .expect("valid")
            };
            (b(), b())
        })
        .collect();
    let mut group = c.benchmark_group("eval");
    group.throughput(Throughput::Elements(pairs.len() as u64));
    group.bench_function("rotated_iou_1000_pairs", |b| {
        b.iter(|| pairs.iter().map(|(x, y)| x.iou(y)).sum::<f64>())
    });
    let dets: Vec<Detection<Rect1>> = (0..1000)
        .map(|_| Detection { class: rng.below(3) as u32, score: rng.next_f64(), bbox: rect1(&mut rng) })
        .collect();
    group.bench_function("nms_1000_boxes", |b| b.iter(|| nms(black_box(&dets), 0.5, 1.0, usize::MAX)));
    let images: Vec<ImageDetections<Rect1>> = (0..200)
        .map(|i| {
            let gts: Vec<GroundTruth<Rect1>> = (0..8)
                .map(|_| {
                    let b = rect1(&mut rng);
                    GroundTruth { class: rng.below(10) as u32, area: b.area(), bbox: b, iscrowd: false }
                })
                .collect();
            let dts = (0..100)
                .map(|_| {
                    let b = rect1(&mut rng);
                    detection::Detection {
                        class: rng.below(10) as u32,
                        area: b.area(),
                        bbox: b,
                        score: rng.next_f64(),
                    }
                })
                .collect();
            ImageDetections { image_id: i, ground_truth: gts, detections: dts }
        })
        .collect();
    group.throughput(Throughput::Elements(20_000));
    group.sample_size(20);
    group.bench_function("coco_eval_200_images_x_100", |b| {
        b.iter_batched(
            || (),
            |()| evaluate_detections(black_box(&images), &DetectionEvalParams::coco()).expect("evaluates"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, eval);
criterion_main!(benches);
