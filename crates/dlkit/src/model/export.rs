//! TorchScript export: a dlkit model as a traced libtorch module that existing serving engines load
//! (TorchServe, Triton's PyTorch backend, C++ with `torch::jit::load`, Python's `torch.jit.load`).

use super::Model;
use crate::{Error, Result};
use dl_data::ModelType;
use dl_data::preprocess::NormalizationType;
use dl_nets::Outputs;
use std::path::Path;
use tch::{Kind, Tensor};

impl Model {
    /// Writes the model as a TorchScript file traced by libtorch (`forward` of one input). Input: raw
    /// images `[N, C, H, W]` as float32 0…255 at the model's size and channel count (already resized);
    /// the model's normalisation (`normalization_type`, `image_range_min/max`, constant means and
    /// deviations) is inside the graph. Output: class probabilities `[N, classes]` (classification) or
    /// per-pixel class probabilities `[N, classes, H, W]` (segmentation), classes in the order of the
    /// model's class ids. The file is written atomically.
    ///
    /// # Errors
    /// [`Error::Param`] for a model type without an export yet (detection, anomaly); libtorch's tracing
    /// or writing errors.
    pub fn export_torchscript(&self, path: &Path) -> Result<()> {
        let d = &self.description;
        let kind = d.model_type();
        if !matches!(kind, ModelType::Classification | ModelType::Segmentation) {
            return Err(Error::Param {
                name: "type".into(),
                message: format!(
                    "TorchScript export covers classification and segmentation models, not {}",
                    kind.as_str()
                ),
            });
        }
        // A copy with frozen variables: the tracer stores them as constants of the graph.
        let mut copy = Model::deserialize(&self.serialize()?, "export")?;
        copy.vs.freeze();
        let p = d.preprocess.clone();
        let (c, h, w) = (p.image_num_channels as i64, p.image_height as i64, p.image_width as i64);
        let example = Tensor::zeros([1, c, h, w], (Kind::Float, copy.vs.device()));
        let tch_err = |e: tch::TchError| Error::Param { name: "torchscript".into(), message: e.to_string() };
        let module = tch::no_grad(|| {
            tch::CModule::create_by_tracing("DlkitModel", "forward", &[example], &mut |xs: &[Tensor]| {
                let x = normalize(&xs[0], &p);
                match copy.net.forward_t(&x, false) {
                    Outputs::Classification { logits } | Outputs::Segmentation { logits } => {
                        vec![logits.softmax(1, Kind::Float)]
                    }
                    _ => vec![Tensor::new()],
                }
            })
        })
        .map_err(tch_err)?;
        dl_io::write_path_atomic(path, |tmp| module.save(tmp).map_err(tch_err))
    }
}

/// The preprocessing's normalisation of raw 0…255 images `[N, C, H, W]` in tensor operations (the
/// arithmetic of `dl_data::preprocess`: an affine map per image, channel or model).
fn normalize(x: &Tensor, p: &dl_data::preprocess::DLPreprocessParam) -> Tensor {
    let (lo, hi) = (p.image_range_min, p.image_range_max);
    let fixed = |min: f64, max: f64| {
        let scale = (hi - lo) / (max - min);
        x * scale + (lo - min * scale)
    };
    // min/max per image (`dims` [2, 3] per channel, or of the first channel), 0…255 when constant.
    let stretch = |src: &Tensor| {
        let min = src.amin([2, 3].as_slice(), true);
        let max = src.amax([2, 3].as_slice(), true);
        let flat = max.le_tensor(&min);
        let min = min.where_self(&flat.logical_not(), &Tensor::zeros_like(&min));
        let max = max.where_self(&flat.logical_not(), &Tensor::full_like(&max, 255.0));
        let scale = (&max - &min).reciprocal() * (hi - lo);
        x * &scale + (-(min * &scale) + lo)
    };
    match p.normalization_type {
        NormalizationType::None => fixed(0.0, 255.0),
        NormalizationType::AllChannels => stretch(x),
        NormalizationType::FirstChannel => stretch(&x.narrow(1, 0, 1)),
        NormalizationType::ConstantValues => {
            // Per channel, with scalars: tensors made from host data inside the trace would be frozen
            // into the graph together with what they touch.
            let (mean, dev) = p.normalization_constants();
            let planes: Vec<Tensor> = (0..mean.len())
                .map(|c| x.narrow(1, c as i64, 1) * (1.0 / dev[c]) + (-mean[c] / dev[c]))
                .collect();
            Tensor::cat(&planes, 1)
        }
    }
}
