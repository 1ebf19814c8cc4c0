//! Preprocessing benches on real ELPV images (`cargo xtask data elpv`): decode and preprocess one
//! 300×300 PNG to 224×224×3, and read one preprocessed 224×224×3 sample file (target: < 0.2 ms).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dl_data::preprocess::{
    DLPreprocessParam, NormalizationType, preprocess_sample, read_dl_samples, write_dl_samples,
};
use dl_data::{DLSample, HostImage, ModelType};
use std::hint::black_box;

fn preprocess(c: &mut Criterion) {
    let path = dl_testkit::data_dir("elpv").join("train/good/cell0002.png");
    let path = if path.is_file() {
        path
    } else {
        std::fs::read_dir(dl_testkit::data_dir("elpv").join("train/good"))
            .expect("folder")
            .next()
            .expect("an image")
            .expect("entry")
            .path()
    };
    let mut param = DLPreprocessParam::new(ModelType::Classification, 224, 224, 3).expect("valid");
    param.normalization_type = NormalizationType::ConstantValues;
    let mut group = c.benchmark_group("preprocess");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_png_300_to_224x224x3", |b| {
        b.iter(|| {
            let s = DLSample::from_image(
                dl_core::ImageId(0),
                HostImage::read(black_box(&path)).expect("decodes"),
            );
            preprocess_sample(s, &param).expect("preprocesses").0
        })
    });
    let decoded = DLSample::from_image(dl_core::ImageId(0), HostImage::read(&path).expect("decodes"));
    group.bench_function("preprocess_decoded_300_to_224x224x3", |b| {
        b.iter_batched(
            || decoded.clone(),
            |s| preprocess_sample(s, &param).expect("ok").0,
            criterion::BatchSize::SmallInput,
        )
    });
    let sample = preprocess_sample(decoded, &param).expect("preprocesses").0;
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("s.dls");
    write_dl_samples(&file, std::slice::from_ref(&sample)).expect("writes");
    group.bench_function("read_sample_file_224x224x3", |b| {
        b.iter(|| read_dl_samples(black_box(&file)).expect("reads"))
    });
    group.finish();
}

criterion_group!(benches, preprocess);
criterion_main!(benches);
