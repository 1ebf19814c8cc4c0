//! Side-by-side counterpart of `benches/python/infer_torch.py` for `cargo xtask bench infer`:
//! ResNet-18 at 224×224 on the CPU (same libtorch, same thread count): batch-1 latency (median of 50)
//! and batch-32 throughput; then writing and reading a ResNet-50 model file.
//!
//! usage: infer_throughput — prints JSON lines.

use std::time::Instant;
use tch::{Device, Kind, Tensor, nn::ModuleT};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads: i32 = std::env::var("DLKIT_BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let names: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let ids: Vec<i64> = (0..1000).collect();
    let model = dlkit::Model::create_classifier("resnet18", &names, &ids, 224, 224, 3)?;
    let net = model.module();
    let _g = tch::no_grad_guard();
    let x1 = Tensor::randn([1, 3, 224, 224], (Kind::Float, Device::Cpu));
    for _ in 0..5 {
        let _ = net.forward_t(&x1, false);
    }
    let mut times: Vec<f64> = (0..50)
        .map(|_| {
            let t = Instant::now();
            let _ = net.forward_t(&x1, false);
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"bench\": \"latency_b1\", \"tool\": \"dlkit resnet18 ({threads} threads)\", \"items\": 1, \"seconds\": {}}}",
        times[25]
    );
    let x32 = Tensor::randn([32, 3, 224, 224], (Kind::Float, Device::Cpu));
    let _ = net.forward_t(&x32, false);
    let reps = 3;
    let t = Instant::now();
    for _ in 0..reps {
        let _ = net.forward_t(&x32, false);
    }
    println!(
        "{{\"bench\": \"throughput_b32\", \"tool\": \"dlkit resnet18 ({threads} threads)\", \"items\": {}, \"seconds\": {}}}",
        32 * reps,
        t.elapsed().as_secs_f64()
    );

    let big = dlkit::Model::create_classifier("resnet50", &names, &ids, 224, 224, 3)?;
    let dir = std::env::temp_dir().join(format!("dlkit-infer-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("resnet50.dlm");
    let t = Instant::now();
    big.write(&path)?;
    let write = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let back = dlkit::Model::read(&path)?;
    let read = t.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path)?.len();
    std::fs::remove_dir_all(&dir)?;
    println!(
        "{{\"bench\": \"model_file\", \"tool\": \"dlkit resnet50 model file ({size} bytes)\", \"items\": 1, \"seconds\": {write}, \"read_seconds\": {read}, \"params\": {}}}",
        back.num_trainable_params()
    );
    Ok(())
}
