//! Semantic segmentation (`type = segmentation`): any [`Backbone`] → a U-Net-style decoder over all
//! its levels (from the coarsest: 1×1 convolution; then at each finer level, bilinear upsampling,
//! concatenation with the backbone's map and a 3×3 convolution, each with batch norm and ReLU) → 1×1
//! class logits at the finest level, bilinearly upsampled to the input size. `compact` (strides 1 … 8)
//! and `enhanced` (1 … 16) decode from full resolution; the pretrained families from stride 4.
//!
//! Training: per-pixel cross-entropy, each pixel weighted by its weight image value, pixels whose label
//! is not a class (ignored, index −1) left out; summed and divided by the number of counted pixels
//! (`loss_cross_entropy`). With `dice_loss_weight` > 0, a soft-Dice term over the classes' softmax
//! probabilities on the counted pixels is added (`loss_dice`). Inference: the softmax probabilities are
//! resized bilinearly to the original image region; `segmentation_image` is the most probable class,
//! `segmentation_confidence` its probability.

use crate::backbone::{Backbone, Level};
use crate::fold::{Geometry, conv_bn};
use crate::network::{Classes, Losses, MethodParams, Network, Outputs, Targets, wrong_targets};
use crate::{Error, Result};
use dl_data::preprocess::ImageMap;
use dl_data::{DLResult, HostImage, LabelImage, ModelType};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor, nn};

/// The architecture of a segmentation network: fixed at creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentationConfig {
    /// Number of classes.
    pub num_classes: i64,
    /// Decoder channels at strides ≥ 4 (halved at stride 2, quartered at stride 1).
    pub decoder_channels: i64,
}

impl SegmentationConfig {
    /// The default decoder (64 channels) for `num_classes` classes.
    pub fn new(num_classes: i64) -> Self {
        Self { num_classes, decoder_channels: 64 }
    }

    /// The decoder's channels at a level of `stride`.
    fn channels_at(&self, stride: i64) -> i64 {
        match stride {
            1 => (self.decoder_channels / 4).max(8),
            2 => (self.decoder_channels / 2).max(8),
            _ => self.decoder_channels,
        }
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the key.
    pub fn validate(&self, levels: &[Level]) -> Result<()> {
        let bad = |key, value: String, expected| Error::InvalidConfig {
            config: "segmentation",
            key,
            value,
            expected,
        };
        if self.num_classes < 2 {
            return Err(bad(
                "num_classes",
                self.num_classes.to_string(),
                "at least 2 (e.g. background and one class)",
            ));
        }
        if !(8..=1024).contains(&self.decoder_channels) {
            return Err(bad("decoder_channels", self.decoder_channels.to_string(), "in 8 … 1024"));
        }
        if levels.is_empty() {
            return Err(bad("backbone", "no levels".into(), "a backbone with feature levels"));
        }
        Ok(())
    }
}

/// Loss parameters: settable after creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SegmentationParams {
    /// Weight of the soft-Dice term (0: off, the default).
    pub dice_loss_weight: f64,
}

#[derive(Debug)]
struct ConvBnRelu {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    k: i64,
}

impl ConvBnRelu {
    fn new(p: &nn::Path, cin: i64, cout: i64, k: i64) -> Self {
        let cfg = nn::ConvConfig { padding: k / 2, bias: false, ..Default::default() };
        Self {
            conv: nn::conv2d(p / "conv", cin, cout, k, cfg),
            bn: nn::batch_norm2d(p / "bn", cout, Default::default()),
            k,
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        conv_bn(x, &self.conv, Geometry { stride: 1, padding: self.k / 2 }, &self.bn, 1e-5, train).relu_()
    }
}

/// A built segmentation network; see the module documentation.
#[derive(Debug)]
pub struct SegmentationNet {
    backbone: Box<dyn Backbone>,
    config: SegmentationConfig,
    /// Loss parameters.
    pub params: SegmentationParams,
    /// The coarsest level's 1×1 block, then one 3×3 block per finer level (coarse to fine).
    blocks: Vec<ConvBnRelu>,
    classifier: nn::Conv2D,
    frozen: bool,
}

/// The variable prefix of the decoder.
pub const HEAD_PREFIX: &str = "seg_head.";

impl SegmentationNet {
    /// Builds the decoder under `path / "seg_head"` on `backbone`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a configuration that does not fit the backbone.
    pub fn new(
        backbone: Box<dyn Backbone>,
        path: &nn::Path,
        config: SegmentationConfig,
        params: SegmentationParams,
    ) -> Result<Self> {
        let levels = backbone.levels();
        config.validate(&levels)?;
        let head = path / "seg_head";
        let coarsest = levels[levels.len() - 1];
        let mut blocks = vec![ConvBnRelu::new(
            &(&head / "top"),
            coarsest.channels,
            config.channels_at(coarsest.stride),
            1,
        )];
        let mut below = config.channels_at(coarsest.stride);
        for l in levels.iter().rev().skip(1) {
            let out = config.channels_at(l.stride);
            blocks.push(ConvBnRelu::new(&(&head / format!("up{}", l.stride)), below + l.channels, out, 3));
            below = out;
        }
        let classifier = nn::conv2d(&head / "classifier", below, config.num_classes, 1, Default::default());
        Ok(Self { backbone, config, params, blocks, classifier, frozen: false })
    }

    /// The architecture.
    pub fn config(&self) -> &SegmentationConfig {
        &self.config
    }
}

/// Per-pixel weighted cross-entropy over the non-ignored pixels: Σ w·nll / max(1, #counted), for
/// logits `[N, K, H, W]`, labels `[N, H, W]` (−1 ignored) and weights `[N, H, W]`. Ignored pixels and
/// zero weights contribute exactly zero loss and gradient.
pub fn weighted_cross_entropy(logits: &Tensor, labels: &Tensor, weights: &Tensor) -> Tensor {
    if weights.eq(1.0).all().int64_value(&[]) == 1 {
        // Unit weights: libtorch's fused cross-entropy (the same value, fewer passes over the logits).
        let valid = labels.ge(0).any().int64_value(&[]) == 1;
        let ce = logits.cross_entropy_loss::<Tensor>(labels, None, tch::Reduction::Mean, -1, 0.0);
        return if valid { ce } else { (logits * 0.0).sum(Kind::Float) };
    }
    let valid = labels.ge(0).to_kind(Kind::Float);
    let safe = labels.clamp_min(0).unsqueeze(1);
    let nll = -logits.log_softmax(1, Kind::Float).gather(1, &safe, false).squeeze_dim(1);
    let w = weights * &valid;
    (nll * w).sum(Kind::Float) / valid.sum(Kind::Float).clamp_min(1.0)
}

/// Soft Dice over the classes, 1 − mean_c (2 Σ p·y + 1) / (Σ p + Σ y + 1) on the non-ignored pixels.
pub fn soft_dice(logits: &Tensor, labels: &Tensor) -> Tensor {
    let k = logits.size()[1];
    let valid = labels.ge(0).to_kind(Kind::Float).unsqueeze(1);
    let p = logits.softmax(1, Kind::Float) * &valid;
    let y = labels.clamp_min(0).one_hot(k).permute([0, 3, 1, 2]).to_kind(Kind::Float) * &valid;
    let dims: &[i64] = &[0, 2, 3];
    let inter = (&p * &y).sum_dim_intlist(dims, false, Kind::Float);
    let card = p.sum_dim_intlist(dims, false, Kind::Float) + y.sum_dim_intlist(dims, false, Kind::Float);
    let dice: Tensor = (inter * 2.0 + 1.0) / (card + 1.0);
    1.0 - dice.mean(Kind::Float)
}

impl Network for SegmentationNet {
    fn model_type(&self) -> ModelType {
        ModelType::Segmentation
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Outputs {
        let x = crate::device::channels_last(images);
        let size = images.size();
        let feats = if train && self.frozen {
            tch::no_grad(|| self.backbone.forward_levels(&x, false))
        } else {
            self.backbone.forward_levels(&x, train)
        };
        let mut y = self.blocks[0].forward(&feats[feats.len() - 1], train);
        for (block, f) in self.blocks[1..].iter().zip(feats.iter().rev().skip(1)) {
            let s = f.size();
            let up = y.upsample_bilinear2d([s[2], s[3]], false, None, None);
            y = block.forward(&Tensor::cat(&[up, f.shallow_clone()], 1), train);
        }
        let mut logits = y.apply(&self.classifier);
        let s = logits.size();
        if (s[2], s[3]) != (size[2], size[3]) {
            logits = logits.upsample_bilinear2d([size[2], size[3]], false, None, None);
        }
        Outputs::Segmentation { logits }
    }

    /// `loss_cross_entropy` ([`weighted_cross_entropy`]) and, with `dice_loss_weight` > 0,
    /// `loss_dice` ([`soft_dice`] × the weight).
    fn loss(&self, outputs: &Outputs, targets: &Targets) -> Result<Losses> {
        let Outputs::Segmentation { logits } = outputs else {
            return Err(wrong_targets("segmentation loss", "segmentation outputs"));
        };
        let Targets::Segmentation { labels, weights } = targets else {
            return Err(wrong_targets("segmentation loss", "label and weight images"));
        };
        let (ls, ts) = (logits.size(), labels.size());
        if ls.len() != 4 || ts != [ls[0], ls[2], ls[3]] || weights.size() != ts {
            return Err(Error::Targets(format!(
                "segmentation logits {ls:?}, labels {ts:?}, weights {:?}",
                weights.size()
            )));
        }
        let mut components = vec![("loss_cross_entropy", weighted_cross_entropy(logits, labels, weights))];
        if self.params.dice_loss_weight > 0.0 {
            components.push(("loss_dice", soft_dice(logits, labels) * self.params.dice_loss_weight));
        }
        Ok(Losses { components })
    }

    /// Per image: probabilities resized bilinearly to the original region of its map, the most probable
    /// class id and its probability; pixels outside the region (a cropped domain) get the first class
    /// and confidence 0.
    fn postprocess(&self, outputs: &Outputs, maps: &[ImageMap], classes: &Classes) -> Result<Vec<DLResult>> {
        let Outputs::Segmentation { logits } = outputs else {
            return Err(wrong_targets("segmentation post-processing", "segmentation outputs"));
        };
        let s = logits.size();
        if s.len() != 4 || s[0] != maps.len() as i64 || s[1] != classes.ids.len() as i64 {
            return Err(Error::Targets(format!(
                "{s:?} outputs for {} images and {} classes",
                maps.len(),
                classes.ids.len()
            )));
        }
        let probs = logits.f_softmax(1, Kind::Float)?;
        let (h, w) = (s[2] as usize, s[3] as usize);
        maps.iter()
            .enumerate()
            .map(|(i, map)| {
                let (rw, rh) = map.region;
                let mut p = probs.f_get(i as i64)?.f_unsqueeze(0)?;
                if (rw, rh) != (w, h) {
                    p = p.f_upsample_bilinear2d([rh as i64, rw as i64], false, None, None)?;
                }
                let (conf, idx) = p.f_max_dim(1, false)?;
                let n = rw * rh;
                let mut c = vec![0f32; n];
                conf.f_to_device(Device::Cpu)?.f_contiguous()?.f_copy_data(&mut c, n)?;
                let mut k = vec![0i64; n];
                idx.f_to_device(Device::Cpu)?.f_contiguous()?.f_copy_data(&mut k, n)?;
                let (sw, sh) = map.source;
                let (r0, c0) = (map.row0 as usize, map.col0 as usize);
                let fill = classes.ids.first().map_or(0, |c| c.get());
                let mut ids = vec![fill; sw * sh];
                let mut confidence = vec![0f32; sw * sh];
                for r in 0..rh.min(sh.saturating_sub(r0)) {
                    for col in 0..rw.min(sw.saturating_sub(c0)) {
                        let (src, dst) = (r * rw + col, (r0 + r) * sw + c0 + col);
                        ids[dst] = classes.ids[k[src] as usize].get();
                        confidence[dst] = c[src];
                    }
                }
                Ok(DLResult {
                    segmentation_image: Some(LabelImage { width: sw, height: sh, data: ids }),
                    segmentation_confidence: Some(HostImage {
                        width: sw,
                        height: sh,
                        channels: 1,
                        bit_depth: 32,
                        data: confidence,
                    }),
                    ..Default::default()
                })
            })
            .collect()
    }

    fn is_head_var(&self, name: &str) -> bool {
        name.starts_with(HEAD_PREFIX)
    }

    fn freeze_backbone(&mut self, frozen: bool) {
        self.frozen = frozen;
    }

    fn set_method_params(&mut self, params: &MethodParams) -> Result<()> {
        match params {
            MethodParams::Segmentation(p) => {
                self.params = p.clone();
                Ok(())
            }
            other => Err(Error::Targets(format!("{other:?} for a segmentation network"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CompactConfig, MobileNetV2Config};
    use dl_core::ClassId;

    fn net(vs: &nn::VarStore, backbone: Box<dyn Backbone>, k: i64) -> SegmentationNet {
        SegmentationNet::new(backbone, &vs.root(), SegmentationConfig::new(k), SegmentationParams::default())
            .unwrap()
    }

    /// Logits at the input size on every kind of backbone, also for sizes that are not multiples of the
    /// coarsest stride.
    #[test]
    fn logits_have_the_input_size() {
        let vs = nn::VarStore::new(Device::Cpu);
        let compact = net(&vs, Box::new(CompactConfig::new(1, 1).build(&(vs.root() / "a")).unwrap()), 3);
        let mobile = net(&vs, Box::new(MobileNetV2Config::new(1, 3).build(&(vs.root() / "b")).unwrap()), 2);
        let enhanced =
            net(&vs, Box::new(CompactConfig::enhanced(1, 3).build(&(vs.root() / "c")).unwrap()), 2);
        let squeeze =
            net(&vs, Box::new(crate::SqueezeNetConfig::new(1, 3).build(&(vs.root() / "d")).unwrap()), 2);
        let resnet =
            net(&vs, Box::new(crate::ResNetConfig::resnet18(1, 3).build(&(vs.root() / "e")).unwrap()), 4);
        for (n, c, h, w) in [
            (&compact, 1, 40, 56),
            (&compact, 1, 37, 45),
            (&mobile, 3, 64, 96),
            (&mobile, 3, 50, 70),
            (&enhanced, 3, 32, 48),
            (&squeeze, 3, 45, 61),
            (&resnet, 3, 33, 64),
        ] {
            let x = Tensor::randn([2, c, h, w], (Kind::Float, Device::Cpu));
            let Outputs::Segmentation { logits } = tch::no_grad(|| n.forward_t(&x, false)) else { panic!() };
            assert_eq!(logits.size(), [2, n.config.num_classes, h, w]);
        }
    }

    /// Ignored pixels get exactly zero gradient, changing their labels leaves the loss unchanged, and a
    /// zero weight image gives zero loss; the loss equals the hand-computed mean over counted pixels.
    #[test]
    fn ignored_pixels_and_zero_weights_do_not_count() {
        let logits = Tensor::randn([2, 3, 4, 5], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let labels = Tensor::randint(3, [2, 4, 5], (Kind::Int64, Device::Cpu));
        let mask = Tensor::rand([2, 4, 5], (Kind::Float, Device::Cpu)).lt(0.3);
        let ignored = labels.where_scalarother(&mask.logical_not(), -1);
        let weights = Tensor::rand([2, 4, 5], (Kind::Float, Device::Cpu)) + 0.5;
        let loss = weighted_cross_entropy(&logits, &ignored, &weights);
        loss.backward();
        let grad = logits.grad();
        let g_ignored = (grad.abs().sum_dim_intlist([1].as_slice(), false, Kind::Float)
            * mask.to_kind(Kind::Float))
        .sum(Kind::Float)
        .double_value(&[]);
        assert_eq!(g_ignored, 0.0);
        // Hand value.
        let lp = tch::no_grad(|| logits.log_softmax(1, Kind::Float));
        let (mut sum, mut count) = (0.0, 0.0);
        for n in 0..2 {
            for r in 0..4 {
                for c in 0..5 {
                    let l = ignored.int64_value(&[n, r, c]);
                    if l >= 0 {
                        sum -= weights.double_value(&[n, r, c]) * lp.double_value(&[n, l, r, c]);
                        count += 1.0;
                    }
                }
            }
        }
        assert!((loss.double_value(&[]) - sum / count).abs() < 1e-5);
        // Unit weights take libtorch's fused cross-entropy: the same value as the formula (forced here by
        // weight 2 on the ignored pixels, which do not count).
        let ones = Tensor::ones([2, 4, 5], (Kind::Float, Device::Cpu));
        let fused = tch::no_grad(|| weighted_cross_entropy(&logits, &ignored, &ones)).double_value(&[]);
        let formula = tch::no_grad(|| {
            weighted_cross_entropy(&logits, &ignored, &ones.where_scalarother(&mask.logical_not(), 2.0))
        })
        .double_value(&[]);
        let mut plain = 0.0;
        for n in 0..2 {
            for r in 0..4 {
                for c in 0..5 {
                    let l = ignored.int64_value(&[n, r, c]);
                    if l >= 0 {
                        plain -= lp.double_value(&[n, l, r, c]);
                    }
                }
            }
        }
        assert!((fused - plain / count).abs() < 1e-5 && (fused - formula).abs() < 1e-5, "{fused} {formula}");
        // Relabelling ignored pixels as other ignored values (any value outside the classes) changes nothing;
        // giving them real labels does.
        let zero = Tensor::zeros([2, 4, 5], (Kind::Float, Device::Cpu));
        assert_eq!(weighted_cross_entropy(&logits, &ignored, &zero).double_value(&[]), 0.0);
        let d = tch::no_grad(|| soft_dice(&logits, &ignored));
        let perfect = tch::no_grad(|| {
            soft_dice(&(labels.one_hot(3).permute([0, 3, 1, 2]).to_kind(Kind::Float) * 50.0), &labels)
        });
        assert!(d.double_value(&[]) > 0.1 && perfect.double_value(&[]) < 0.01, "{d:?} {perfect:?}");
    }

    /// Results map back to the original image: a 30×20 region at (5, 7) of a 50×40 image, the rest
    /// the first class with confidence 0; ids are class ids.
    #[test]
    fn results_have_the_original_size() {
        let vs = nn::VarStore::new(Device::Cpu);
        let n = net(&vs, Box::new(CompactConfig::new(1, 1).build(&(vs.root() / "a")).unwrap()), 2);
        // Class 1 wins on the left half of the 16×16 network image, class 0 on the right.
        let mut l = vec![0f32; 2 * 16 * 16];
        for r in 0..16 {
            for c in 0..8 {
                l[256 + r * 16 + c] = 5.0;
                l[r * 16 + 8 + c] = 2.0;
            }
        }
        let logits = Tensor::from_slice(&l).reshape([1, 2, 16, 16]);
        let classes = Classes {
            ids: vec![ClassId::new(3).unwrap(), ClassId::new(7).unwrap()],
            names: vec!["a".into(), "b".into()],
        };
        let map = ImageMap::new(5, 7, 30, 20, 16, 16).with_source(50, 40);
        let r = n.postprocess(&Outputs::Segmentation { logits }, &[map], &classes).unwrap().remove(0);
        let ids = r.segmentation_image.unwrap();
        let conf = r.segmentation_confidence.unwrap();
        assert_eq!((ids.width, ids.height, conf.width, conf.height), (50, 40, 50, 40));
        assert_eq!(ids.data[0], 3);
        assert_eq!(conf.data[0], 0.0);
        assert_eq!(ids.data[10 * 50 + 8], 7);
        assert_eq!(ids.data[10 * 50 + 35], 3);
        assert!((conf.data[10 * 50 + 35] - 1.0 / (1.0 + (-2f32).exp())).abs() < 1e-5);
    }
}
