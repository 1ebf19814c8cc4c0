//! MobileNetV1 1.0 (TF-slim's layout): a 3×3 stride-2 convolution, then 13 depthwise-separable blocks
//! (3×3 depthwise, 1×1 pointwise, each with batch norm ε = 1e-3 and ReLU6), TensorFlow "SAME" padding,
//! global average pooling and a linear classifier. Parameter names: `conv0.{conv, bn}`,
//! `blocks.{1…13}.{dw_conv, dw_bn, pw_conv, pw_bn}`, `classifier`.

use crate::Result;
use crate::guided::{Act, GuidedRecorder, activate};
use crate::same::SameConv;
use serde::{Deserialize, Serialize};
use tch::{Tensor, nn};

/// (output channels, depthwise stride) of blocks 1 … 13.
/// The batch normalisations' ε (TensorFlow's, which the weights were trained with); the folded
/// inference uses the same value.
const BN_EPS: f64 = 1e-3;

const BLOCKS: [(i64, i64); 13] = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
];

/// Configuration of MobileNetV1 1.0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MobileNetV1Config {
    /// Number of output classes.
    pub num_classes: i64,
    /// Input channels.
    pub in_channels: i64,
    /// Dropout before the classifier during training.
    pub dropout: f64,
    /// PyTorch's symmetric padding instead of TensorFlow's "same" (which the weights were trained
    /// with): detectors set it, so that the features at stride s stay centred on the `s · i` grid of
    /// their anchors (files without it: "same").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub symmetric_padding: bool,
}

impl MobileNetV1Config {
    /// MobileNetV1 1.0 for `num_classes` classes.
    pub fn new(num_classes: i64, in_channels: i64) -> Self {
        Self { num_classes, in_channels, dropout: 0.001, symmetric_padding: false }
    }

    /// Builds the network under `path`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the key.
    pub fn build(&self, path: &nn::Path) -> Result<MobileNetV1> {
        crate::error::check_classifier(
            "mobilenet_v1",
            self.num_classes,
            self.in_channels,
            Some(self.dropout),
        )?;
        let bn = |p: nn::Path, c| {
            nn::batch_norm2d(p, c, nn::BatchNormConfig { eps: BN_EPS, ..Default::default() })
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
        let conv0 =
            (conv(path / "conv0" / "conv", self.in_channels, 32, 3, 2, 1), bn(path / "conv0" / "bn", 32));
        let mut blocks = Vec::new();
        let mut cin = 32;
        for (i, &(cout, stride)) in BLOCKS.iter().enumerate() {
            let p = path / "blocks" / (i + 1);
            blocks.push([
                (conv(&p / "dw_conv", cin, cin, 3, stride, cin), bn(&p / "dw_bn", cin)),
                (conv(&p / "pw_conv", cin, cout, 1, 1, 1), bn(&p / "pw_bn", cout)),
            ]);
            cin = cout;
        }
        Ok(MobileNetV1 {
            conv0,
            blocks,
            dropout: self.dropout,
            classifier: nn::linear(path / "classifier", 1024, self.num_classes, Default::default()),
        })
    }
}

/// A built MobileNetV1; see [`MobileNetV1Config`].
#[derive(Debug)]
pub struct MobileNetV1 {
    conv0: (SameConv, nn::BatchNorm),
    blocks: Vec<[(SameConv, nn::BatchNorm); 2]>,
    dropout: f64,
    classifier: nn::Linear,
}

impl crate::Backbone for MobileNetV1 {
    /// The ends of blocks 3, 5, 11, 13: strides 4, 8, 16, 32.
    fn levels(&self) -> Vec<crate::Level> {
        crate::backbone::fixed(&[(4, 128), (8, 256), (16, 512), (32, 1024)])
    }
    fn forward_levels(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        crate::backbone::tap_tensors(self.taps_t(xs, train))
    }
}

impl MobileNetV1 {
    fn run(
        &self,
        xs: &Tensor,
        train: bool,
        rec: Option<&GuidedRecorder>,
        mut tap: impl FnMut(usize, &Tensor),
    ) -> Tensor {
        let cbr = |x: &Tensor, (c, b): &(SameConv, nn::BatchNorm)| {
            activate(rec, c.forward_bn(x, b, BN_EPS, train), Act::Relu6, true)
        };
        let mut x = cbr(xs, &self.conv0);
        for (i, block) in self.blocks.iter().enumerate() {
            x = cbr(&cbr(&x, &block[0]), &block[1]);
            tap(i + 1, &x);
        }
        x
    }

    /// The last feature map, `[N, 1024, H/32, W/32]` (Grad-CAM's default layer).
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.run(xs, train, None, |_, _| {})
    }

    /// Feature maps at strides 4, 8, 16 and 32 (the ends of blocks 3, 5, 11 and 13), named `stride4` …
    /// `stride32`.
    pub fn taps_t(&self, xs: &Tensor, train: bool) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(4);
        let _ = self.run(xs, train, None, |i, x| {
            let name = match i {
                3 => "stride4",
                5 => "stride8",
                11 => "stride16",
                13 => "stride32",
                _ => return,
            };
            out.push((name.to_owned(), x.shallow_clone()));
        });
        out
    }

    /// Class logits from a feature map of [`MobileNetV1::features_t`].
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
    fn layout_and_taps() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = MobileNetV1Config::new(1000, 3).build(&vs.root()).unwrap();
        let n: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert_eq!(n, 4_231_976, "MobileNetV1 1.0 has 4 231 976 parameters");
        let x = Tensor::randn([1, 3, 224, 224], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&x, false).size(), [1, 1000]);
        let taps: Vec<(String, Vec<i64>)> =
            net.taps_t(&x, false).into_iter().map(|(n, t)| (n, t.size())).collect();
        assert_eq!(
            taps,
            [
                ("stride4".to_owned(), vec![1, 128, 56, 56]),
                ("stride8".to_owned(), vec![1, 256, 28, 28]),
                ("stride16".to_owned(), vec![1, 512, 14, 14]),
                ("stride32".to_owned(), vec![1, 1024, 7, 7])
            ]
        );
    }
}
