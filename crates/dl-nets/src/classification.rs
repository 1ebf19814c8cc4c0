//! The classification [`Network`]: any [`Classifier`] of dl-nets, cross-entropy, softmax results with
//! every class by descending confidence.

use crate::network::{Classes, Losses, Network, Outputs, Targets, wrong_targets};
use crate::{Classifier, Error, Result};
use dl_data::preprocess::ImageMap;
use dl_data::{DLResult, ModelType};
use tch::{Device, Kind, Tensor};

/// A classifier as a [`Network`].
#[derive(Debug)]
pub struct ClassificationNet {
    net: Box<dyn Classifier>,
    head_prefix: &'static str,
    frozen: bool,
}

impl ClassificationNet {
    /// The network `net`, whose head's variables start with `head_prefix` (e.g. `fc.`).
    pub fn new(net: Box<dyn Classifier>, head_prefix: &'static str) -> Self {
        Self { net, head_prefix, frozen: false }
    }
}

impl Network for ClassificationNet {
    fn model_type(&self) -> ModelType {
        ModelType::Classification
    }

    /// Logits; with a frozen backbone, the features are computed in inference mode without gradients
    /// and only the head trains.
    fn forward_t(&self, images: &Tensor, train: bool) -> Outputs {
        let x = crate::device::channels_last(images);
        let logits = if train && self.frozen {
            let f = tch::no_grad(|| self.net.features_t(&x, false));
            self.net.head_t(&f, true)
        } else {
            self.net.logits_t(&x, train)
        };
        Outputs::Classification { logits }
    }

    /// `loss_cross_entropy`: the mean cross-entropy.
    fn loss(&self, outputs: &Outputs, targets: &Targets) -> Result<Losses> {
        let Outputs::Classification { logits } = outputs else {
            return Err(wrong_targets("classification loss", "classification outputs"));
        };
        let Targets::Classification(labels) = targets else {
            return Err(wrong_targets("classification loss", "class indices"));
        };
        let ce = logits.f_cross_entropy_loss::<Tensor>(labels, None, tch::Reduction::Mean, -100, 0.0)?;
        Ok(Losses { components: vec![("loss_cross_entropy", ce)] })
    }

    /// Softmax; each result lists every class by descending confidence (ties in index order).
    fn postprocess(&self, outputs: &Outputs, maps: &[ImageMap], classes: &Classes) -> Result<Vec<DLResult>> {
        let Outputs::Classification { logits } = outputs else {
            return Err(wrong_targets("classification post-processing", "classification outputs"));
        };
        let probs = logits.f_softmax(-1, Kind::Float)?.f_to_device(Device::Cpu)?;
        let k = classes.ids.len();
        let n = probs.size().first().copied().unwrap_or(0) as usize;
        if n != maps.len() || probs.size().get(1).copied() != Some(k as i64) {
            return Err(Error::Targets(format!(
                "{:?} outputs for {} images and {k} classes",
                probs.size(),
                maps.len()
            )));
        }
        let mut values = vec![0f32; n * k];
        probs.f_copy_data(&mut values, n * k)?;
        Ok(values
            .chunks(k)
            .map(|row| {
                let mut order: Vec<usize> = (0..k).collect();
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
                DLResult {
                    classification_class_ids: Some(order.iter().map(|&i| classes.ids[i]).collect()),
                    classification_class_names: Some(
                        order.iter().map(|&i| classes.names[i].clone()).collect(),
                    ),
                    classification_confidences: Some(order.iter().map(|&i| f64::from(row[i])).collect()),
                    ..Default::default()
                }
            })
            .collect())
    }

    fn is_head_var(&self, name: &str) -> bool {
        name.starts_with(self.head_prefix)
    }

    fn freeze_backbone(&mut self, frozen: bool) {
        self.frozen = frozen;
    }

    fn as_classifier(&self) -> Option<&dyn Classifier> {
        Some(&*self.net)
    }
}
