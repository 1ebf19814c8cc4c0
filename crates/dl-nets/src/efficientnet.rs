//! EfficientNet-Lite0/1/2 (Google's mobile EfficientNets): MBConv blocks without squeeze-excitation,
//! ReLU6, TensorFlow "SAME" padding, batch norm with ε = 1e-3, stem and head not scaled. Parameter
//! names: `stem_conv`, `stem_bn`, `blocks.N.{expand_conv, expand_bn, dw_conv, dw_bn, project_conv,
//! project_bn}`, `head_conv`, `head_bn`, `classifier` (`cargo xtask weights` converts the published
//! ImageNet weights to them).

use crate::guided::{Act, GuidedRecorder, activate};
use crate::same::SameConv;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Tensor, nn};

/// (repeats, kernel, stride, expansion, in, out) of the seven stages of EfficientNet-B0 / Lite0.
/// The batch normalisations' ε (TensorFlow's, which the weights were trained with); the folded
/// inference uses the same value.
const BN_EPS: f64 = 1e-3;

const STAGES: [(usize, i64, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// Configuration of EfficientNet-Lite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EfficientNetLiteConfig {
    /// Number of output classes.
    pub num_classes: i64,
    /// Input channels.
    pub in_channels: i64,
    /// Channel multiplier (Lite0/1: 1.0, Lite2: 1.1).
    pub width: f64,
    /// Repeat multiplier (Lite0: 1.0, Lite1: 1.1, Lite2: 1.2).
    pub depth: f64,
    /// Dropout before the classifier during training.
    pub dropout: f64,
    /// PyTorch's symmetric padding instead of TensorFlow's "same" (which the weights were trained
    /// with): detectors set it, so that the features at stride s stay centred on the `s · i` grid of
    /// their anchors (files without it: "same").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub symmetric_padding: bool,
}

impl EfficientNetLiteConfig {
    /// Lite0 (224×224), Lite1 (240×240) or Lite2 (260×260) by index 0, 1, 2; the input size is
    /// [`EfficientNetLiteConfig::input_size`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for another index.
    pub fn lite(index: u8, num_classes: i64, in_channels: i64) -> Result<Self> {
        let (width, depth, dropout) = match index {
            0 => (1.0, 1.0, 0.2),
            1 => (1.0, 1.1, 0.2),
            2 => (1.1, 1.2, 0.3),
            other => {
                return Err(Error::InvalidConfig {
                    config: "efficientnet_lite",
                    key: "variant",
                    value: other.to_string(),
                    expected: "0, 1 or 2",
                });
            }
        };
        Ok(Self { num_classes, in_channels, width, depth, dropout, symmetric_padding: false })
    }

    /// The input size the published weights were trained at (224, 240, 260).
    pub fn input_size(&self) -> usize {
        match (self.width, self.depth) {
            (w, _) if w > 1.05 => 260,
            (_, d) if d > 1.05 => 240,
            _ => 224,
        }
    }

    fn round_filters(&self, c: i64) -> i64 {
        let scaled = c as f64 * self.width;
        let mut new = 8i64.max((scaled + 4.0) as i64 / 8 * 8);
        if (new as f64) < 0.9 * scaled {
            new += 8;
        }
        new
    }

    /// Builds the network under `path`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the key.
    pub fn build(&self, path: &nn::Path) -> Result<EfficientNetLite> {
        crate::error::check_classifier(
            "efficientnet_lite",
            self.num_classes,
            self.in_channels,
            Some(self.dropout),
        )?;
        let bad = |key, value: String, expected| Error::InvalidConfig {
            config: "efficientnet_lite",
            key,
            value,
            expected,
        };
        let in_range = |v: f64| v > 0.0 && v <= 4.0;
        if !in_range(self.width) || !in_range(self.depth) {
            return Err(bad("width", format!("{} / depth {}", self.width, self.depth), "in (0, 4]"));
        }
        let bn = |p: nn::Path, c| {
            nn::batch_norm2d(p, c, nn::BatchNormConfig { eps: BN_EPS, momentum: 0.01, ..Default::default() })
        };
        let conv = |p: nn::Path, cin, cout, k, stride, groups| SameConv {
            conv: nn::conv2d(
                p,
                cin,
                cout,
                k,
                nn::ConvConfig { stride, groups, bias: false, ..Default::default() },
            ),
            k,
            stride,
            symmetric: self.symmetric_padding,
        };
        let mut blocks = Vec::new();
        let last = STAGES.len() - 1;
        for (i, &(repeats, k, s, e, cin, cout)) in STAGES.iter().enumerate() {
            let cin = if i == 0 { 32 } else { self.round_filters(cin) };
            let cout = self.round_filters(cout);
            let repeats =
                if i == 0 || i == last { repeats } else { (self.depth * repeats as f64).ceil() as usize };
            for j in 0..repeats {
                let p = path / "blocks" / blocks.len();
                let inp = if j == 0 { cin } else { cout };
                let stride = if j == 0 { s } else { 1 };
                let hidden = inp * e;
                let expand = (e != 1)
                    .then(|| (conv(&p / "expand_conv", inp, hidden, 1, 1, 1), bn(&p / "expand_bn", hidden)));
                blocks.push(MbConv {
                    expand,
                    dw: (conv(&p / "dw_conv", hidden, hidden, k, stride, hidden), bn(&p / "dw_bn", hidden)),
                    project: (conv(&p / "project_conv", hidden, cout, 1, 1, 1), bn(&p / "project_bn", cout)),
                    skip: stride == 1 && inp == cout,
                });
            }
        }
        let head_in = self.round_filters(320);
        Ok(EfficientNetLite {
            stem: (conv(path / "stem_conv", self.in_channels, 32, 3, 2, 1), bn(path / "stem_bn", 32)),
            blocks,
            head: (conv(path / "head_conv", head_in, 1280, 1, 1, 1), bn(path / "head_bn", 1280)),
            dropout: self.dropout,
            classifier: nn::linear(path / "classifier", 1280, self.num_classes, Default::default()),
        })
    }
}

#[derive(Debug)]
struct MbConv {
    expand: Option<(SameConv, nn::BatchNorm)>,
    dw: (SameConv, nn::BatchNorm),
    project: (SameConv, nn::BatchNorm),
    skip: bool,
}

impl MbConv {
    fn forward_t(&self, x: &Tensor, train: bool, rec: Option<&GuidedRecorder>) -> Tensor {
        let mut y = x.shallow_clone();
        if let Some((c, b)) = &self.expand {
            y = activate(rec, c.forward_bn(&y, b, BN_EPS, train), Act::Relu6, true);
        }
        y = activate(rec, self.dw.0.forward_bn(&y, &self.dw.1, BN_EPS, train), Act::Relu6, true);
        y = self.project.0.forward_bn(&y, &self.project.1, BN_EPS, train);
        if self.skip { y + x } else { y }
    }
}

/// A built EfficientNet-Lite; see [`EfficientNetLiteConfig`].
#[derive(Debug)]
pub struct EfficientNetLite {
    stem: (SameConv, nn::BatchNorm),
    blocks: Vec<MbConv>,
    head: (SameConv, nn::BatchNorm),
    dropout: f64,
    classifier: nn::Linear,
}

impl crate::Backbone for EfficientNetLite {
    /// The last block of each resolution at strides 4, 8, 16, 32.
    fn levels(&self) -> Vec<crate::Level> {
        self.stage_ends()
            .into_iter()
            .map(|(i, stride)| crate::Level { stride, channels: self.blocks[i].project.0.conv.ws.size()[0] })
            .collect()
    }
    fn forward_levels(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        crate::backbone::tap_tensors(self.taps_t(xs, train))
    }
}

impl EfficientNetLite {
    /// (block index, stride) of the blocks that end a resolution at strides 4, 8, 16 and 32.
    fn stage_ends(&self) -> Vec<(usize, i64)> {
        // Block i ends a stage of stride s when the next block downsamples, or it is the last block.
        let mut stride = 2i64;
        let strides: Vec<i64> = self
            .blocks
            .iter()
            .map(|b| {
                stride *= b.dw.0.stride;
                stride
            })
            .collect();
        (0..strides.len())
            .filter(|&i| i + 1 == strides.len() || strides[i + 1] != strides[i])
            .map(|i| (i, strides[i]))
            .filter(|(_, s)| [4, 8, 16, 32].contains(s))
            .collect()
    }

    fn run(
        &self,
        xs: &Tensor,
        train: bool,
        rec: Option<&GuidedRecorder>,
        mut tap: impl FnMut(usize, &Tensor),
    ) -> Tensor {
        let mut x = activate(rec, self.stem.0.forward_bn(xs, &self.stem.1, BN_EPS, train), Act::Relu6, true);
        for (i, b) in self.blocks.iter().enumerate() {
            x = b.forward_t(&x, train, rec);
            tap(i, &x);
        }
        activate(rec, self.head.0.forward_bn(&x, &self.head.1, BN_EPS, train), Act::Relu6, true)
    }

    /// The last feature map, `[N, 1280, H/32, W/32]` (Grad-CAM's default layer).
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.run(xs, train, None, |_, _| {})
    }

    /// Feature maps at strides 4, 8, 16 and 32 (the ends of the stages of those strides), named
    /// `stride4` … `stride32`, for detection, segmentation and anomaly models.
    pub fn taps_t(&self, xs: &Tensor, train: bool) -> Vec<(String, Tensor)> {
        let ends = self.stage_ends();
        let mut out = Vec::with_capacity(4);
        let _ = self.run(xs, train, None, |i, x| {
            if let Some(&(_, s)) = ends.iter().find(|(e, _)| *e == i) {
                out.push((format!("stride{s}"), x.shallow_clone()));
            }
        });
        out
    }

    /// Class logits from a feature map of [`EfficientNetLite::features_t`].
    pub fn head_t(&self, features: &Tensor, train: bool) -> Tensor {
        features
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
            .dropout(self.dropout, train)
            .apply(&self.classifier)
    }

    /// Logits (eval mode) with every activation recorded for [`crate::guided::guided_backprop`].
    pub fn forward_guided(&self, xs: &Tensor, rec: &GuidedRecorder) -> Tensor {
        self.head_t(&self.run(xs, false, Some(rec), |_, _| {}), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, nn::ModuleT};

    #[test]
    fn layouts_match_the_published_variants() {
        // Parameter counts of the published Lite0/1/2 (with the 1000-class head): 4.65 M, 5.42 M, 6.09 M.
        for (i, want) in [(0u8, 4_652_008i64), (1, 5_416_680), (2, 6_092_072)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = EfficientNetLiteConfig::lite(i, 1000, 3).unwrap().build(&vs.root()).unwrap();
            let n: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
            assert_eq!(n, want, "lite{i}");
            if i == 0 {
                let x = Tensor::randn([1, 3, 224, 224], (Kind::Float, Device::Cpu));
                assert_eq!(net.forward_t(&x, false).size(), [1, 1000]);
                let taps: Vec<(String, Vec<i64>)> =
                    net.taps_t(&x, false).into_iter().map(|(n, t)| (n, t.size())).collect();
                assert_eq!(
                    taps,
                    [
                        ("stride4".to_owned(), vec![1, 24, 56, 56]),
                        ("stride8".to_owned(), vec![1, 40, 28, 28]),
                        ("stride16".to_owned(), vec![1, 112, 14, 14]),
                        ("stride32".to_owned(), vec![1, 320, 7, 7])
                    ]
                );
                // Odd sizes work ("SAME" padding).
                let x = Tensor::randn([2, 3, 97, 131], (Kind::Float, Device::Cpu));
                assert_eq!(net.forward_t(&x, false).size(), [2, 1000]);
            }
        }
        assert!(EfficientNetLiteConfig::lite(3, 10, 3).is_err());
    }
}
