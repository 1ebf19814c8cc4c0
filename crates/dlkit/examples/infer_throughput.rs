//! Side-by-side counterpart of `benches/python/infer_torch.py` for `cargo xtask bench infer`:
//! ResNet-18 at 224×224 on the CPU (same libtorch, same thread count, the same weights on both sides):
//! batch-1 latency (median of 50) and batch-32 throughput; then writing and reading a ResNet-50 model file.
//!
//! usage: `infer_throughput prepare DIR` writes the seeded network's weights under torchvision's names
//! (`DIR/weights.safetensors`) and a fixed input (`DIR/input.f32`, 1×3×224×224); `infer_throughput
//! measure DIR` prints JSON lines: `outputs` (the logits of that input, which the Python side's must
//! equal), `latency_b1`, `throughput_b32`, `model_file`.

use std::path::Path;
use std::time::Instant;
use tch::{Device, Kind, Tensor, nn::ModuleT};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn resnet18() -> Res<dlkit::Model> {
    tch::manual_seed(0);
    let names: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let ids: Vec<i64> = (0..1000).collect();
    Ok(dlkit::Model::create_classifier("resnet18", &names, &ids, 224, 224, 3)?)
}

fn input() -> Vec<f32> {
    (0..3 * 224 * 224).map(|i| ((i as f64 * 0.37).sin() * 2.0) as f32).collect()
}

fn prepare(dir: &Path) -> Res<()> {
    std::fs::write(dir.join("weights.safetensors"), resnet18()?.export_weights()?)?;
    std::fs::write(dir.join("input.f32"), input().iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())?;
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, dir] if cmd == "prepare" => prepare(Path::new(dir)),
        [cmd, _] if cmd == "measure" => measure(),
        _ => Err("usage: infer_throughput prepare DIR | measure DIR".into()),
    }
}

fn measure() -> Res<()> {
    let threads: i32 = std::env::var("DLKIT_BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    tch::set_num_threads(threads);
    let model = resnet18()?;
    let names: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let ids: Vec<i64> = (0..1000).collect();
    let net = model.module();
    let _g = tch::no_grad_guard();
    let logits: Vec<f32> = Vec::try_from(
        net.forward_t(&Tensor::from_slice(&input()).reshape([1, 3, 224, 224]), false).reshape([-1]),
    )?;
    println!(
        "{}",
        serde_json::json!({"bench": "outputs", "tool": "dlkit", "items": 1, "seconds": 1.0, "logits": logits})
    );
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
