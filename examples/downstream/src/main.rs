//! The README's library example, run on a folder of class sub-folders (`images/`): read, split,
//! validate, decode samples, save the dataset, create a classifier, apply it, write it, train it for one
//! epoch and evaluate it on the test split.
//!
//! usage: dlkit-downstream-example IMAGES OUT

use dlkit::core::Split;
use dlkit::data::read::{LabelSource, read_dl_dataset_classification};
use dlkit::data::{SampleSelector, SplitParams, find_dl_samples, gen_dl_samples, split_dl_dataset};
use dlkit::train::{EvalParams, StartEpoch, TrainParam, evaluate_dl_model, train_dl_model};
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [images, out] = args.as_slice() else {
        anyhow::bail!("usage: dlkit-downstream-example IMAGES OUT");
    };
    std::fs::create_dir_all(out)?;
    let mut ds = read_dl_dataset_classification(images, LabelSource::LastFolder)?;
    split_dl_dataset(&mut ds, 70.0, 15.0, &SplitParams { seed: 42, ..Default::default() })?;
    for problem in ds.validate() {
        eprintln!("{problem}");
    }
    let train = find_dl_samples(&ds, &SampleSelector::Split(Split::Train))?;
    let samples = gen_dl_samples(&ds, &train[..8])?;
    ds.save(&out.join("dataset.json"))?;
    let ids: Vec<i64> = ds.class_ids.iter().map(|c| c.get().into()).collect();
    let mut model = dlkit::Model::create_classifier("compact", &ds.class_names, &ids, 28, 28, 1)?;
    let results = model.apply(samples.into_iter().map(|s| s.image).collect())?;
    println!(
        "{} results, the first's best class: {:?}",
        results.len(),
        results[0].classification_class_names
    );
    model.write(&out.join("model.dlm"))?;
    let param =
        TrainParam { num_epochs: 1, output_dir: out.join("training"), display: false, ..Default::default() };
    let log = train_dl_model(&ds, &mut model, &param, StartEpoch::Fresh)?;
    let test = evaluate_dl_model(&model, &ds, &SampleSelector::Split(Split::Test), &EvalParams::default())?;
    println!("trained {} epoch, test {:?}", log.epochs.len(), test.comparison_key());
    Ok(())
}
