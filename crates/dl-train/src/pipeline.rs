//! The data pipeline: a background thread reads (in parallel with rayon), augments and collates the next
//! batches while the model computes; a bounded queue keeps memory to a few batches.

use crate::{Error, Result};
use dl_core::ClassId;
use dl_data::preprocess::{
    AugmentParams, DLPreprocessParam, HostBatch, augment_dl_samples, check_segmentation_labels, collate,
    preprocess_dl_samples, read_dl_samples,
};
use dl_data::{DLDataset, DLSample, ModelType, gen_dl_samples};
use rayon::prelude::*;
use std::path::Path;
use std::sync::mpsc::{Receiver, sync_channel};

/// Where samples come from: the sample files of a preprocessed dataset, or the images of a raw one
/// preprocessed on the fly with the model's parameters.
#[derive(Debug)]
pub struct SampleSource<'a> {
    dataset: &'a DLDataset,
    /// `None` when the dataset is preprocessed.
    preprocess: Option<DLPreprocessParam>,
}

impl<'a> SampleSource<'a> {
    /// A source for a model with preprocessing `param`. A preprocessed dataset must have been
    /// preprocessed to the model's image size and channels.
    ///
    /// # Errors
    /// [`Error::Param`] when a preprocessed dataset does not fit the model (naming both sizes).
    pub fn new(dataset: &'a DLDataset, param: &DLPreprocessParam) -> Result<Self> {
        if dataset.dlsample_dir.is_none() {
            param.validate()?;
            return Ok(Self { dataset, preprocess: Some(param.clone()) });
        }
        if let Some(p) = &dataset.preprocess_param {
            let ds = (p.image_width, p.image_height, p.image_num_channels);
            let model = (param.image_width, param.image_height, param.image_num_channels);
            if ds != model {
                return Err(Error::Param {
                    key: "dataset",
                    message: format!(
                        "the dataset was preprocessed to {}×{}×{}, the model takes {}×{}×{}: preprocess \
                         it again or train on the raw dataset",
                        ds.0, ds.1, ds.2, model.0, model.1, model.2
                    ),
                });
            }
        }
        Ok(Self { dataset, preprocess: None })
    }

    /// The dataset.
    pub fn dataset(&self) -> &DLDataset {
        self.dataset
    }

    /// The preprocessed samples at `indices` (parallel).
    ///
    /// # Errors
    /// Errors naming the sample file or image that cannot be read.
    pub fn load(&self, indices: &[usize]) -> Result<Vec<DLSample>> {
        match (&self.preprocess, &self.dataset.dlsample_dir) {
            (Some(param), _) => {
                let mut samples = gen_dl_samples(self.dataset, indices)?;
                preprocess_dl_samples(&mut samples, param)?;
                Ok(samples)
            }
            (None, Some(dir)) => indices
                .par_iter()
                .map(|&i| {
                    let entry = &self.dataset.samples[i];
                    let name = entry.dlsample_file_name.as_ref().ok_or_else(|| Error::Param {
                        key: "dlsample_file_name",
                        message: format!("sample with image id {} has no sample file", entry.image_id),
                    })?;
                    let mut samples = read_dl_samples(&Path::new(dir).join(name))?;
                    if samples.len() != 1 {
                        return Err(Error::Param {
                            key: "dlsample_file_name",
                            message: format!("{name} holds {} samples, expected 1", samples.len()),
                        });
                    }
                    Ok(samples.remove(0))
                })
                .collect(),
            (None, None) => unreachable!("a source without preprocessing has a sample folder"),
        }
    }
}

/// How [`spawn_batches`] prepares each batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchPlan<'a> {
    /// Augment with these parameters (training).
    pub augment: Option<&'a AugmentParams>,
    /// The epoch (augmentation is a function of seed, epoch and image id).
    pub epoch: u64,
    /// The model's class order.
    pub class_ids: &'a [ClassId],
    /// Which ground truth to collate (`None`: images only).
    pub targets: Option<ModelType>,
    /// Also hand over the preprocessed samples (evaluation: the ground truth the results are measured
    /// against).
    pub keep_samples: bool,
    /// At most this many batches wait in the queue.
    pub prefetch: usize,
    /// Segmentation: the checks of each sample's label image.
    pub label_check: Option<LabelCheck<'a>>,
}

impl<'a> BatchPlan<'a> {
    /// Images only, in order, without augmentation or checks: a pass of inference or feature extraction.
    pub fn inference(class_ids: &'a [ClassId]) -> Self {
        Self {
            augment: None,
            epoch: 0,
            class_ids,
            targets: None,
            keep_samples: false,
            prefetch: 3,
            label_check: None,
        }
    }
}

/// What [`spawn_batches`] checks of segmentation samples.
#[derive(Debug, Clone, Copy)]
pub struct LabelCheck<'a> {
    /// Every label value is a class id or one of these ignored ids.
    pub ignore_class_ids: &'a [ClassId],
    /// Every sample has a weight image (the dataset has class weights: training uses them).
    pub require_weights: bool,
}

/// A prepared batch, and its samples when [`BatchPlan::keep_samples`].
#[derive(Debug)]
pub struct Loaded {
    /// The collated batch.
    pub batch: HostBatch,
    /// The samples it was collated from.
    pub samples: Option<Vec<DLSample>>,
}

/// Batches of `order` (lists of sample indices), produced in order by a background thread with at most
/// `plan.prefetch` batches waiting. Each batch is loaded, augmented (when `plan.augment` is given) and
/// collated for `plan.targets`. The thread stops early when the receiver is dropped.
pub fn spawn_batches<'scope, 'env: 'scope>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    source: &'env SampleSource<'env>,
    order: Vec<Vec<usize>>,
    plan: BatchPlan<'env>,
) -> Receiver<Result<Loaded>> {
    let (tx, rx) = sync_channel(plan.prefetch.max(1));
    scope.spawn(move || {
        for indices in order {
            let batch = source.load(&indices).and_then(|mut samples| {
                if let Some(check) = plan.label_check {
                    check_segmentation_labels(&samples, plan.class_ids, check.ignore_class_ids)
                        .map_err(|e| name_sample(source.dataset(), e))?;
                    if let Some(s) =
                        samples.iter().find(|s| check.require_weights && s.weight_image.is_none())
                    {
                        let e = dl_data::Error::Sample {
                            image_id: s.image_id,
                            message: "no weight_image, but the dataset has class_weights: run \
                                      gen_dl_segmentation_weights (dlkit dataset weights) again"
                                .into(),
                        };
                        return Err(name_sample(source.dataset(), e));
                    }
                }
                if let Some(params) = plan.augment {
                    augment_dl_samples(&mut samples, params, plan.epoch)?;
                }
                let batch = collate(&samples, plan.class_ids, plan.targets)?;
                Ok(Loaded { batch, samples: plan.keep_samples.then_some(samples) })
            });
            let failed = batch.is_err();
            if tx.send(batch).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// A sample error with the sample's image (and label image) file names.
fn name_sample(dataset: &DLDataset, e: dl_data::Error) -> Error {
    match &e {
        dl_data::Error::Sample { image_id, message } => {
            match dataset.samples.iter().find(|s| s.image_id == *image_id) {
                Some(s) => Error::Param {
                    key: "dataset",
                    message: format!(
                        "sample {image_id} ({}{}): {message}",
                        s.image_file_name,
                        s.segmentation_file_name
                            .as_ref()
                            .map(|n| format!(", label image {n}"))
                            .unwrap_or_default()
                    ),
                },
                None => e.into(),
            }
        }
        _ => e.into(),
    }
}
