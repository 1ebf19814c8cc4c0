//! MobileNetV2 classifier with torchvision's layer names (`features.N…`, `classifier.1`), so
//! torchvision weights load; any input channels and class count.

use crate::Result;
use crate::fold::{Geometry, conv_bn};
use crate::guided::{Act, GuidedRecorder, activate};
use serde::{Deserialize, Serialize};
use tch::{Tensor, nn};

/// Configuration of a MobileNetV2 classifier (width multiplier 1.0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MobileNetV2Config {
    /// Number of output classes.
    pub num_classes: i64,
    /// Input channels (torchvision: 3).
    pub in_channels: i64,
    /// Dropout before the classifier (torchvision: 0.2).
    pub dropout: f64,
}

impl MobileNetV2Config {
    /// torchvision's MobileNetV2 for `num_classes` classes.
    pub fn new(num_classes: i64, in_channels: i64) -> Self {
        Self { num_classes, in_channels, dropout: 0.2 }
    }

    /// Builds the network under `path`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for non-positive classes or channels or a dropout outside [0, 1).
    pub fn build(&self, path: &nn::Path) -> Result<MobileNetV2> {
        crate::error::check_classifier(
            "mobilenet_v2",
            self.num_classes,
            self.in_channels,
            Some(self.dropout),
        )?;
        let f = path / "features";
        let cbr = |p: nn::Path, i: i64, o: i64, k: i64, stride: i64, groups: i64| ConvBn {
            conv: nn::conv2d(
                &p / 0,
                i,
                o,
                k,
                nn::ConvConfig { stride, padding: (k - 1) / 2, groups, bias: false, ..Default::default() },
            ),
            bn: nn::batch_norm2d(&p / 1, o, Default::default()),
            geometry: Geometry::same(k, stride),
            relu6: true,
        };
        let mut layers = vec![Layer::Conv(Box::new(cbr(&f / 0, self.in_channels, 32, 3, 2, 1)))];
        let settings: [(i64, i64, usize, i64); 7] = [
            (1, 16, 1, 1),
            (6, 24, 2, 2),
            (6, 32, 3, 2),
            (6, 64, 4, 2),
            (6, 96, 3, 1),
            (6, 160, 3, 2),
            (6, 320, 1, 1),
        ];
        let mut inp = 32;
        let mut index = 1;
        for (t, c, n, s) in settings {
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                let p = &f / index / "conv";
                let hidden = inp * t;
                let mut convs = Vec::new();
                let mut k = 0;
                if t != 1 {
                    convs.push(cbr(&p / k, inp, hidden, 1, 1, 1));
                    k += 1;
                }
                convs.push(cbr(&p / k, hidden, hidden, 3, stride, hidden));
                let project = ConvBn {
                    conv: nn::conv2d(
                        &p / (k + 1),
                        hidden,
                        c,
                        1,
                        nn::ConvConfig { bias: false, ..Default::default() },
                    ),
                    bn: nn::batch_norm2d(&p / (k + 2), c, Default::default()),
                    geometry: Geometry::same(1, 1),
                    relu6: false,
                };
                convs.push(project);
                layers.push(Layer::Inverted { convs, residual: stride == 1 && inp == c });
                inp = c;
                index += 1;
            }
        }
        layers.push(Layer::Conv(Box::new(cbr(&f / index, inp, 1280, 1, 1, 1))));
        Ok(MobileNetV2 {
            layers,
            dropout: self.dropout,
            classifier: nn::linear(path / "classifier" / 1, 1280, self.num_classes, Default::default()),
        })
    }
}

#[derive(Debug)]
struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    geometry: Geometry,
    relu6: bool,
}

impl ConvBn {
    fn forward_t(&self, x: &Tensor, train: bool, rec: Option<&GuidedRecorder>) -> Tensor {
        let y = conv_bn(x, &self.conv, self.geometry, &self.bn, 1e-5, train);
        if self.relu6 { activate(rec, y, Act::Relu6, true) } else { y }
    }
}

#[derive(Debug)]
enum Layer {
    Conv(Box<ConvBn>),
    Inverted { convs: Vec<ConvBn>, residual: bool },
}

impl crate::Backbone for MobileNetV2 {
    /// `features.3`, `.6`, `.13`, `.18`: strides 4, 8, 16, 32.
    fn levels(&self) -> Vec<crate::Level> {
        crate::backbone::fixed(&[(4, 24), (8, 32), (16, 96), (32, 1280)])
    }
    fn forward_levels(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        crate::backbone::tap_tensors(self.taps_t(xs, train))
    }
    fn forward_first_levels(&self, xs: &Tensor, train: bool, count: usize) -> Vec<Tensor> {
        crate::backbone::tap_tensors(self.first_taps(xs, train, count))
    }
}

/// A built MobileNetV2; see [`MobileNetV2Config`].
#[derive(Debug)]
pub struct MobileNetV2 {
    layers: Vec<Layer>,
    dropout: f64,
    classifier: nn::Linear,
}

impl MobileNetV2 {
    /// The last feature map, `[N, 1280, H/32, W/32]`.
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.features_impl(xs, train, None)
    }

    /// Feature maps at strides 4, 8, 16 and 32 — the outputs of `features.3`, `features.6`,
    /// `features.13` and `features.18` — named `stride4` … `stride32`, for detection, segmentation and
    /// anomaly models.
    pub fn taps_t(&self, xs: &Tensor, train: bool) -> Vec<(String, Tensor)> {
        self.first_taps(xs, train, 4)
    }

    /// The first `count` of [`MobileNetV2::taps_t`], the layers after the last of them not run.
    fn first_taps(&self, xs: &Tensor, train: bool, count: usize) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(4);
        let mut x = xs.shallow_clone();
        for (i, layer) in self.layers.iter().enumerate() {
            if out.len() >= count {
                break;
            }
            x = match layer {
                Layer::Conv(c) => c.forward_t(&x, train, None),
                Layer::Inverted { convs, residual } => {
                    let mut y = x.shallow_clone();
                    for c in convs {
                        y = c.forward_t(&y, train, None);
                    }
                    if *residual { x + y } else { y }
                }
            };
            let name = match i {
                3 => "stride4",
                6 => "stride8",
                13 => "stride16",
                18 => "stride32",
                _ => continue,
            };
            out.push((name.to_owned(), x.shallow_clone()));
        }
        out
    }

    /// Logits (eval mode) with every activation recorded for [`crate::guided::guided_backprop`].
    pub fn forward_guided(&self, xs: &Tensor, rec: &GuidedRecorder) -> Tensor {
        self.head_t(&self.features_impl(xs, false, Some(rec)), false)
    }

    fn features_impl(&self, xs: &Tensor, train: bool, rec: Option<&GuidedRecorder>) -> Tensor {
        let mut x = xs.shallow_clone();
        for layer in &self.layers {
            x = match layer {
                Layer::Conv(c) => c.forward_t(&x, train, rec),
                Layer::Inverted { convs, residual } => {
                    let mut y = x.shallow_clone();
                    for c in convs {
                        y = c.forward_t(&y, train, rec);
                    }
                    if *residual { x + y } else { y }
                }
            };
        }
        x
    }

    /// Class logits from a feature map of [`MobileNetV2::features_t`].
    pub fn head_t(&self, features: &Tensor, train: bool) -> Tensor {
        features
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
            .dropout(self.dropout, train)
            .apply(&self.classifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn taps_have_strides_4_8_16_32() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = MobileNetV2Config::new(5, 3).build(&vs.root()).unwrap();
        let x = Tensor::randn([1, 3, 128, 96], (Kind::Float, Device::Cpu));
        let taps: Vec<(String, Vec<i64>)> =
            net.taps_t(&x, false).into_iter().map(|(n, t)| (n, t.size())).collect();
        assert_eq!(
            taps,
            [
                ("stride4".to_owned(), vec![1, 24, 32, 24]),
                ("stride8".to_owned(), vec![1, 32, 16, 12]),
                ("stride16".to_owned(), vec![1, 96, 8, 6]),
                ("stride32".to_owned(), vec![1, 1280, 4, 3])
            ]
        );
        // The last tap is the feature map the classifier reads.
        assert!(taps[3].1 == net.features_t(&x, false).size());
    }
}
