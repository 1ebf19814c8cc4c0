//! TorchScript export: a dlkit model as a traced libtorch module that existing serving engines load
//! (TorchServe, Triton's PyTorch backend, C++ with `torch::jit::load`, Python's `torch.jit.load`).

use super::{MethodConfig, Model};
use crate::{Error, Result};
use dl_data::preprocess::NormalizationType;
use dl_nets::Outputs;
use dl_nets::network::Network;
use std::path::Path;
use tch::{Kind, Tensor};

impl Model {
    /// Writes the model as a TorchScript file traced by libtorch (`forward` of one input). Input: raw
    /// images `[N, C, H, W]` as float32 0…255 at the model's size and channel count (already resized);
    /// the model's normalisation (`normalization_type`, `image_range_min/max`, constant means and
    /// deviations) is inside the graph. Outputs, classes in the order of the model's class ids:
    /// - classification: class probabilities `[N, classes]`;
    /// - segmentation: per-pixel class probabilities `[N, classes, H, W]`;
    /// - detection: `[N, M, classes + 4 | 5]`, every anchor's class scores followed by its box, before
    ///   thresholds and NMS, boxes in HALCON's coordinates of the network input (see
    ///   [`Model::detections_before_nms`], which gives the same from dlkit, and what dlkit does next);
    /// - anomaly detection: anomaly images `[N, 1, H, W]` at the network input's size; an image's
    ///   anomaly score is its maximum (thresholds are not applied). The Global Context model:
    ///   `[N, k, H, W]`, the combined map, then the local and / or global one (as `gc_anomaly_networks`
    ///   is when exported), each score a map's maximum.
    ///
    /// The file is written atomically.
    ///
    /// # Errors
    /// [`Error::Param`] for a PatchCore model that is not fitted; libtorch's tracing or writing errors.
    pub fn export_torchscript(&self, path: &Path) -> Result<()> {
        let d = &self.description;
        if let MethodConfig::Patchcore { patchcore, .. } = &d.method
            && patchcore.memory_bank_size == 0
        {
            return Err(Error::Param {
                name: "memory_bank_size".into(),
                message: "the patchcore model is not fitted yet: train it on good images before exporting"
                    .into(),
            });
        }
        // A copy with frozen variables: the tracer stores them as constants of the graph.
        let mut copy = Model::deserialize(&self.serialize()?, "export")?;
        copy.vs.freeze();
        let p = d.preprocess.clone();
        let (c, h, w) = (p.image_num_channels as i64, p.image_height as i64, p.image_width as i64);
        let example = Tensor::zeros([1, c, h, w], (Kind::Float, copy.vs.device()));
        // Detection: the anchors, from host data, made before tracing (inside, the tracer would tie them
        // to the example input).
        let anchors = match copy.detection_net() {
            Some(net) => {
                Some(tch::no_grad(|| net.anchor_tensor(&level_shapes(&net.forward_t(&example, false))))?)
            }
            None => None,
        };
        let tch_err = |e: tch::TchError| Error::Param { name: "torchscript".into(), message: e.to_string() };
        let module = tch::no_grad(|| {
            tch::CModule::create_by_tracing("DlkitModel", "forward", &[example], &mut |xs: &[Tensor]| {
                let x = normalize(&xs[0], &p);
                // PatchCore without chunks: a graph for any batch size.
                let out = match copy.net.as_any().downcast_ref::<dl_nets::PatchCoreNet>() {
                    Some(pc) => pc.anomaly_maps(&x, false),
                    None => copy.net.forward_t(&x, false),
                };
                match (&out, copy.detection_net(), &anchors) {
                    (Outputs::Classification { logits } | Outputs::Segmentation { logits }, _, _) => {
                        vec![logits.softmax(1, Kind::Float)]
                    }
                    // One output tensor (libtorch's exported methods return one value).
                    (Outputs::Detection { .. }, Some(net), Some(a)) => match net.decode_all(&out, a) {
                        Ok((scores, boxes)) => vec![Tensor::cat(&[scores, boxes], -1)],
                        Err(_) => vec![Tensor::new()],
                    },
                    (Outputs::Anomaly { maps, .. }, _, _) => vec![maps.shallow_clone()],
                    _ => vec![Tensor::new()],
                }
            })
        })
        .map_err(tch_err)?;
        dl_io::write_path_atomic(path, |tmp| module.save(tmp).map_err(tch_err))
    }

    /// Every anchor's class scores `[N, M, classes]` and decoded box `[N, M, 4 | 5]` for raw images
    /// `[N, C, H, W]` (0…255 at the model's size, as the TorchScript export takes them), before
    /// thresholds and NMS: what the exported detector gives. Boxes in HALCON's pixel-centre coordinates
    /// of the network input: `row1, col1, row2, col2`, or `row, col, phi, length1, length2`. dlkit's
    /// results then keep, per pyramid level, the 1000 best scores ≥ `min_confidence`, drop rotated
    /// boxes whose centre leaves the input, make the boxes of classes without orientation axis-parallel
    /// and run NMS (`max_overlap`, `max_overlap_class_agnostic`, `max_num_detections`).
    ///
    /// # Errors
    /// [`Error::Param`] for a model that is not a detector; libtorch errors.
    pub fn detections_before_nms(&self, raw: &Tensor) -> Result<(Tensor, Tensor)> {
        let net = self.detection_net().ok_or_else(|| Error::Param {
            name: "type".into(),
            message: "detections_before_nms needs a detection model".into(),
        })?;
        tch::no_grad(|| {
            let x = normalize(&raw.to_device(self.vs.device()), &self.description.preprocess);
            let out = net.forward_t(&x, false);
            let anchors = net.anchor_tensor(&level_shapes(&out))?;
            Ok(net.decode_all(&out, &anchors)?)
        })
    }

    fn detection_net(&self) -> Option<&dl_nets::detection::DetectionNet> {
        self.net.as_any().downcast_ref::<dl_nets::detection::DetectionNet>()
    }
}

/// The pyramid level shapes of detection outputs (none for other outputs).
fn level_shapes(out: &Outputs) -> Vec<(i64, i64)> {
    match out {
        Outputs::Detection { level_shapes, .. } => level_shapes.clone(),
        _ => Vec::new(),
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
