//! Dataset benches on the real Fashion-MNIST tree (`cargo xtask data fashion-mnist`): reading the
//! 70 000-image folder tree into a DLDataset (no decoding), splitting it, and its JSON load and save.
//! Targets (issue "Datasets"): read < 1 s, split < 50 ms, load and save < 200 ms each.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dl_data::read::{LabelSource, read_dl_dataset_classification};
use dl_data::{DLDataset, SplitParams, split_dl_dataset};
use std::hint::black_box;

fn dataset(c: &mut Criterion) {
    let dir = dl_testkit::data_dir("fashion-mnist");
    let ds = read_dl_dataset_classification(&dir, LabelSource::LastFolder).expect("readable");
    let n = ds.samples.len() as u64;
    let mut group = c.benchmark_group("fashion_mnist_70k");
    group.sample_size(10).throughput(Throughput::Elements(n));
    group.bench_function("read_folders", |b| {
        b.iter(|| read_dl_dataset_classification(black_box(&dir), LabelSource::LastFolder).expect("readable"))
    });
    group.bench_function("split_70_15_15", |b| {
        b.iter_batched(
            || ds.clone(),
            |mut d| {
                split_dl_dataset(&mut d, 70.0, 15.0, &SplitParams { seed: 1, ..Default::default() })
                    .expect("splits")
            },
            criterion::BatchSize::LargeInput,
        )
    });
    let mut split = ds.clone();
    split_dl_dataset(&mut split, 70.0, 15.0, &SplitParams::default()).expect("splits");
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("fm.json");
    split.save(&path).expect("saves");
    group.bench_function("save_json", |b| b.iter(|| split.save(black_box(&path)).expect("saves")));
    group.bench_function("load_json", |b| b.iter(|| DLDataset::load(black_box(&path)).expect("loads")));
    group.finish();
}

criterion_group!(benches, dataset);
criterion_main!(benches);
