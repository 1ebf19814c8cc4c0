//! ResNet-18 / ResNet-50 classifiers with torchvision's layer names (`conv1`, `bn1`,
//! `layer1.0.conv1`, …, `fc`), so torchvision weights load; any input channels and class count.

use crate::fold::{Geometry, conv_bn};
use crate::guided::{Act, GuidedRecorder, activate};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Tensor, nn};

/// The 7×7 stem convolution's geometry (built and folded with it).
const STEM: Geometry = Geometry { stride: 2, padding: 3 };

/// Configuration of a ResNet classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetConfig {
    /// Blocks per stage (ResNet-18: [2, 2, 2, 2]; ResNet-50: [3, 4, 6, 3]).
    pub layers: [usize; 4],
    /// Bottleneck blocks (ResNet-50) instead of basic blocks (ResNet-18).
    pub bottleneck: bool,
    /// Number of output classes.
    pub num_classes: i64,
    /// Input channels (torchvision: 3).
    pub in_channels: i64,
}

impl ResNetConfig {
    /// ResNet-18.
    pub fn resnet18(num_classes: i64, in_channels: i64) -> Self {
        Self { layers: [2, 2, 2, 2], bottleneck: false, num_classes, in_channels }
    }

    /// ResNet-50.
    pub fn resnet50(num_classes: i64, in_channels: i64) -> Self {
        Self { layers: [3, 4, 6, 3], bottleneck: true, num_classes, in_channels }
    }

    /// Builds the network under `path`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for non-positive classes or channels, or an empty stage.
    pub fn build(&self, path: &nn::Path) -> Result<ResNet> {
        crate::error::check_classifier("resnet", self.num_classes, self.in_channels, None)?;
        if self.layers.contains(&0) {
            return Err(Error::InvalidConfig {
                config: "resnet",
                key: "layers",
                value: format!("{:?}", self.layers),
                expected: "at least one block per stage",
            });
        }
        let conv = |p: nn::Path, i, o, k, stride, padding| {
            nn::conv2d(p, i, o, k, nn::ConvConfig { stride, padding, bias: false, ..Default::default() })
        };
        let g = |stride, padding| Geometry { stride, padding };
        let expansion = if self.bottleneck { 4 } else { 1 };
        let mut stages = Vec::new();
        let mut inplanes = 64;
        for (s, &blocks) in self.layers.iter().enumerate() {
            let planes = 64 << s;
            let mut list = Vec::new();
            for b in 0..blocks {
                let p = path / format!("layer{}", s + 1) / b;
                let stride = if b == 0 && s > 0 { 2 } else { 1 };
                let out = planes * expansion;
                let downsample = (b == 0 && (stride != 1 || inplanes != out)).then(|| {
                    (
                        conv(&p / "downsample" / 0, inplanes, out, 1, stride, 0),
                        nn::batch_norm2d(&p / "downsample" / 1, out, Default::default()),
                        g(stride, 0),
                    )
                });
                let block = if self.bottleneck {
                    Block {
                        convs: vec![
                            (
                                conv(&p / "conv1", inplanes, planes, 1, 1, 0),
                                nn::batch_norm2d(&p / "bn1", planes, Default::default()),
                                g(1, 0),
                            ),
                            (
                                conv(&p / "conv2", planes, planes, 3, stride, 1),
                                nn::batch_norm2d(&p / "bn2", planes, Default::default()),
                                g(stride, 1),
                            ),
                            (
                                conv(&p / "conv3", planes, out, 1, 1, 0),
                                nn::batch_norm2d(&p / "bn3", out, Default::default()),
                                g(1, 0),
                            ),
                        ],
                        downsample,
                    }
                } else {
                    Block {
                        convs: vec![
                            (
                                conv(&p / "conv1", inplanes, planes, 3, stride, 1),
                                nn::batch_norm2d(&p / "bn1", planes, Default::default()),
                                g(stride, 1),
                            ),
                            (
                                conv(&p / "conv2", planes, planes, 3, 1, 1),
                                nn::batch_norm2d(&p / "bn2", planes, Default::default()),
                                g(1, 1),
                            ),
                        ],
                        downsample,
                    }
                };
                list.push(block);
                inplanes = out;
            }
            stages.push(list);
        }
        Ok(ResNet {
            conv1: conv(path / "conv1", self.in_channels, 64, 7, STEM.stride, STEM.padding),
            bn1: nn::batch_norm2d(path / "bn1", 64, Default::default()),
            stages,
            fc: nn::linear(path / "fc", inplanes, self.num_classes, Default::default()),
        })
    }
}

#[derive(Debug)]
struct Block {
    convs: Vec<(nn::Conv2D, nn::BatchNorm, Geometry)>,
    downsample: Option<(nn::Conv2D, nn::BatchNorm, Geometry)>,
}

impl Block {
    fn forward_t(&self, x: &Tensor, train: bool, rec: Option<&GuidedRecorder>) -> Tensor {
        // In-place ReLU and addition, as torchvision: batch norm's backward needs its input, not its
        // output, so this is safe for training too, and saves allocations.
        let mut y = x.shallow_clone();
        let last = self.convs.len() - 1;
        for (i, (c, b, g)) in self.convs.iter().enumerate() {
            y = conv_bn(&y, c, *g, b, 1e-5, train);
            if i < last {
                y = activate(rec, y, Act::Relu, true);
            }
        }
        match &self.downsample {
            Some((c, b, g)) => y += conv_bn(x, c, *g, b, 1e-5, train),
            None => y += x,
        }
        activate(rec, y, Act::Relu, true)
    }
}

/// A built ResNet; see [`ResNetConfig`].
#[derive(Debug)]
pub struct ResNet {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    stages: Vec<Vec<Block>>,
    fc: nn::Linear,
}

impl crate::Backbone for ResNet {
    /// `layer1` … `layer4`: strides 4, 8, 16, 32.
    fn levels(&self) -> Vec<crate::Level> {
        self.stages
            .iter()
            .enumerate()
            .map(|(k, stage)| {
                let last = stage.last().expect("stages are not empty");
                let channels = last.convs.last().expect("blocks have convolutions").0.ws.size()[0];
                crate::Level { stride: 4 << k, channels }
            })
            .collect()
    }

    fn forward_levels(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        let stem = conv_bn(xs, &self.conv1, STEM, &self.bn1, 1e-5, train).relu_();
        let mut x = stem.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        let mut out = Vec::with_capacity(4);
        for stage in &self.stages {
            for block in stage {
                x = block.forward_t(&x, train, None);
            }
            out.push(x.shallow_clone());
        }
        out
    }
}

impl ResNet {
    /// The feature map of the last stage, `[N, C, H/32, W/32]` (Grad-CAM's default layer).
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.features_impl(xs, train, None)
    }

    fn features_impl(&self, xs: &Tensor, train: bool, rec: Option<&GuidedRecorder>) -> Tensor {
        let stem = activate(rec, conv_bn(xs, &self.conv1, STEM, &self.bn1, 1e-5, train), Act::Relu, true);
        let mut x = stem.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for stage in &self.stages {
            for block in stage {
                x = block.forward_t(&x, train, rec);
            }
        }
        x
    }

    /// Logits (eval mode) with every activation recorded for [`crate::guided::guided_backprop`].
    pub fn forward_guided(&self, xs: &Tensor, rec: &GuidedRecorder) -> Tensor {
        self.head(&self.features_impl(xs, false, Some(rec)))
    }

    /// Class logits from a feature map of [`ResNet::features_t`].
    pub fn head(&self, features: &Tensor) -> Tensor {
        features.adaptive_avg_pool2d([1, 1]).flatten(1, -1).apply(&self.fc)
    }
}
