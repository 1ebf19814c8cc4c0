//! SqueezeNet 1.1: a 3×3 stride-2 convolution ("SAME" padding), max pooling, eight fire modules
//! (a 1×1 squeeze, then 1×1 and 3×3 expands concatenated), dropout, a 1×1 convolution to the classes,
//! ReLU and global average pooling. No batch norm, no fully connected layer. Parameter names:
//! `conv1`, `fire{2…9}.{squeeze, expand1x1, expand3x3}`, `conv10` (the classifier).

use crate::Result;
use crate::guided::{Act, GuidedRecorder, activate};
use serde::{Deserialize, Serialize};
use tch::{Tensor, nn};

/// (squeeze, expand) channels of fire2 … fire9.
const FIRES: [(i64, i64); 8] =
    [(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)];

/// Configuration of SqueezeNet 1.1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqueezeNetConfig {
    /// Number of output classes.
    pub num_classes: i64,
    /// Input channels.
    pub in_channels: i64,
    /// Dropout before the classifier during training (0.5 in the original).
    pub dropout: f64,
}

impl SqueezeNetConfig {
    /// SqueezeNet 1.1 for `num_classes` classes.
    pub fn new(num_classes: i64, in_channels: i64) -> Self {
        Self { num_classes, in_channels, dropout: 0.5 }
    }

    /// Builds the network under `path`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the key.
    pub fn build(&self, path: &nn::Path) -> Result<SqueezeNet> {
        crate::error::check_classifier("squeezenet", self.num_classes, self.in_channels, Some(self.dropout))?;
        let conv = |p: nn::Path, cin, cout, k, stride, padding| {
            nn::conv2d(p, cin, cout, k, nn::ConvConfig { stride, padding, ..Default::default() })
        };
        let mut fires = Vec::new();
        let mut cin = 64;
        for (i, &(s, e)) in FIRES.iter().enumerate() {
            let p = path / format!("fire{}", i + 2);
            fires.push(Fire {
                squeeze: conv(&p / "squeeze", cin, s, 1, 1, 0),
                expand1: conv(&p / "expand1x1", s, e, 1, 1, 0),
                expand3: conv(&p / "expand3x3", s, e, 3, 1, 1),
            });
            cin = 2 * e;
        }
        Ok(SqueezeNet {
            conv1: conv(path / "conv1", self.in_channels, 64, 3, 2, 0),
            fires,
            dropout: self.dropout,
            conv10: conv(path / "conv10", 512, self.num_classes, 1, 1, 0),
        })
    }
}

#[derive(Debug)]
struct Fire {
    squeeze: nn::Conv2D,
    expand1: nn::Conv2D,
    expand3: nn::Conv2D,
}

impl Fire {
    fn forward(&self, x: &Tensor, rec: Option<&GuidedRecorder>) -> Tensor {
        let s = activate(rec, x.apply(&self.squeeze), Act::Relu, true);
        let a = activate(rec, s.apply(&self.expand1), Act::Relu, true);
        let b = activate(rec, s.apply(&self.expand3), Act::Relu, true);
        Tensor::cat(&[a, b], 1)
    }
}

/// A built SqueezeNet 1.1; see [`SqueezeNetConfig`].
#[derive(Debug)]
pub struct SqueezeNet {
    conv1: nn::Conv2D,
    fires: Vec<Fire>,
    dropout: f64,
    conv10: nn::Conv2D,
}

impl crate::Backbone for SqueezeNet {
    /// fire3, fire5, fire9: strides 4, 8, 16.
    fn levels(&self) -> Vec<crate::Level> {
        crate::backbone::fixed(&[(4, 128), (8, 256), (16, 512)])
    }
    fn forward_levels(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        crate::backbone::tap_tensors(self.taps_t(xs, train))
    }
}

impl SqueezeNet {
    fn run(&self, xs: &Tensor, rec: Option<&GuidedRecorder>, mut tap: impl FnMut(usize, &Tensor)) -> Tensor {
        // TensorFlow "SAME" padding of the stride-2 stem: the odd pixel at the bottom and right.
        let size = xs.size();
        let pad = |n: i64| (((n + 1) / 2 - 1) * 2 + 3 - n).max(0);
        let (ph, pw) = (pad(size[2]), pad(size[3]));
        let x = xs.constant_pad_nd([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2]).apply(&self.conv1);
        let mut x = activate(rec, x, Act::Relu, true);
        for (i, fire) in self.fires.iter().enumerate() {
            if i == 0 || i == 2 || i == 4 {
                x = x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false);
            }
            x = fire.forward(&x, rec);
            tap(i, &x);
        }
        x
    }

    /// The output of fire9, `[N, 512, H/16, W/16]` (Grad-CAM's default layer).
    pub fn features_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        self.run(xs, None, |_, _| {})
    }

    /// Feature maps at strides 4, 8 and 16 (the outputs of fire3, fire5 and fire9), named `stride4` …
    /// `stride16`.
    pub fn taps_t(&self, xs: &Tensor, _train: bool) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(3);
        let _ = self.run(xs, None, |i, x| {
            let name = match i {
                1 => "stride4",
                3 => "stride8",
                7 => "stride16",
                _ => return,
            };
            out.push((name.to_owned(), x.shallow_clone()));
        });
        out
    }

    /// Class scores from a feature map of [`SqueezeNet::features_t`]: dropout, conv10, ReLU, average.
    pub fn head_t(&self, features: &Tensor, train: bool) -> Tensor {
        features
            .dropout(self.dropout, train)
            .apply(&self.conv10)
            .relu()
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
    }

    /// Logits (eval mode) with every activation recorded for [`crate::guided::guided_backprop`].
    pub fn forward_guided(&self, xs: &Tensor, rec: &GuidedRecorder) -> Tensor {
        self.head_t(&self.run(xs, Some(rec), |_, _| {}), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, nn::ModuleT};

    #[test]
    fn layout_and_taps() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = SqueezeNetConfig::new(1000, 3).build(&vs.root()).unwrap();
        let n: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert_eq!(n, 1_235_496, "SqueezeNet 1.1 has 1 235 496 parameters");
        let x = Tensor::randn([1, 3, 224, 224], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&x, false).size(), [1, 1000]);
        let taps: Vec<(String, Vec<i64>)> =
            net.taps_t(&x, false).into_iter().map(|(n, t)| (n, t.size())).collect();
        assert_eq!(
            taps,
            [
                ("stride4".to_owned(), vec![1, 128, 55, 55]),
                ("stride8".to_owned(), vec![1, 256, 27, 27]),
                ("stride16".to_owned(), vec![1, 512, 13, 13])
            ]
        );
    }
}
