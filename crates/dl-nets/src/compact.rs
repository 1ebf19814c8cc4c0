//! The `compact` classifier: conv–BN–ReLU stages, global average pooling and a 1×1 convolution to the
//! class scores. No fully connected layer, so any input of at least 15×15 pixels works.

use crate::fold::{Geometry, conv_bn};
use crate::guided::{Act, GuidedRecorder, activate};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Tensor, nn};

/// Configuration of the `compact` classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactConfig {
    /// Number of output classes (≥ 1).
    pub num_classes: i64,
    /// Channels of the input image (≥ 1).
    pub in_channels: i64,
    /// Output channels of each stage; every stage after the first halves the resolution.
    pub widths: Vec<i64>,
    /// Conv–BN–ReLU layers per stage (default 1).
    #[serde(default = "one")]
    pub convs_per_stage: usize,
}

fn one() -> usize {
    1
}

impl CompactConfig {
    /// The default layout: four stages of 16, 32, 64 and 128 channels (about 100 k parameters).
    pub fn new(num_classes: i64, in_channels: i64) -> Self {
        Self { num_classes, in_channels, widths: vec![16, 32, 64, 128], convs_per_stage: 1 }
    }

    /// The `enhanced` layout: five stages of 32 … 512 channels, two conv–BN–ReLU layers each (about
    /// 4.7 M parameters), still without a fully connected layer.
    pub fn enhanced(num_classes: i64, in_channels: i64) -> Self {
        Self { num_classes, in_channels, widths: vec![32, 64, 128, 256, 512], convs_per_stage: 2 }
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the key.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |key, value: String, expected| Error::InvalidConfig { config: "compact", key, value, expected };
        if self.num_classes < 1 {
            return Err(bad("num_classes", self.num_classes.to_string(), "at least 1"));
        }
        if self.in_channels < 1 {
            return Err(bad("in_channels", self.in_channels.to_string(), "at least 1"));
        }
        if self.convs_per_stage == 0 {
            return Err(bad("convs_per_stage", "0".into(), "at least 1"));
        }
        if self.widths.is_empty() || self.widths.iter().any(|&w| w < 1) {
            return Err(bad(
                "widths",
                format!("{:?}", self.widths),
                "a non-empty list of positive channel counts",
            ));
        }
        Ok(())
    }

    /// Builds the network with its variables under `path`.
    ///
    /// # Errors
    /// As [`CompactConfig::validate`].
    pub fn build(&self, path: &nn::Path) -> Result<CompactNet> {
        self.validate()?;
        let mut stages = Vec::with_capacity(self.widths.len());
        let mut strides = Vec::with_capacity(self.widths.len());
        let mut channels = self.in_channels;
        for (i, &width) in self.widths.iter().enumerate() {
            let p = path / format!("stage{i}");
            for j in 0..self.convs_per_stage {
                let stride = if i > 0 && j == 0 { 2 } else { 1 };
                let suffix = if j == 0 { String::new() } else { j.to_string() };
                let conv_cfg = nn::ConvConfig { stride, padding: 1, bias: false, ..Default::default() };
                let conv = nn::conv2d(&p / format!("conv{suffix}"), channels, width, 3, conv_cfg);
                let bn = nn::batch_norm2d(&p / format!("bn{suffix}"), width, Default::default());
                stages.push((conv, bn));
                strides.push(stride);
                channels = width;
            }
        }
        let head = nn::conv2d(path / "head", channels, self.num_classes, 1, Default::default());
        Ok(CompactNet { stages, strides, head })
    }
}

impl crate::Backbone for CompactNet {
    /// The end of every stage: strides 1, 2, 4, … with the stage widths.
    fn levels(&self) -> Vec<crate::Level> {
        let mut stride = 1;
        let mut out: Vec<crate::Level> = Vec::new();
        for ((conv, _), &s) in self.stages.iter().zip(&self.strides) {
            if s > 1 || out.is_empty() {
                stride *= s;
                out.push(crate::Level { stride, channels: 0 });
            }
            if let Some(last) = out.last_mut() {
                last.channels = conv.ws.size()[0];
            }
        }
        out
    }

    fn forward_levels(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        let mut out = Vec::new();
        let mut x = xs.shallow_clone();
        for (i, (conv, bn)) in self.stages.iter().enumerate() {
            x = conv_bn(&x, conv, Geometry::same(3, self.strides[i]), bn, 1e-5, train).relu_();
            let next_downsamples = self.strides.get(i + 1).is_none_or(|&s| s > 1);
            if next_downsamples {
                out.push(x.shallow_clone());
            }
        }
        out
    }
}

/// The built `compact` network; see [`CompactConfig`].
#[derive(Debug)]
pub struct CompactNet {
    stages: Vec<(nn::Conv2D, nn::BatchNorm)>,
    /// The stride of each convolution of `stages`.
    strides: Vec<i64>,
    head: nn::Conv2D,
}

impl CompactNet {
    /// The last convolutional feature map (Grad-CAM's default layer).
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.features_impl(xs, train, None)
    }

    fn features_impl(&self, xs: &Tensor, train: bool, rec: Option<&GuidedRecorder>) -> Tensor {
        let mut x = xs.shallow_clone();
        for ((conv, bn), &stride) in self.stages.iter().zip(&self.strides) {
            let y = conv_bn(&x, conv, Geometry::same(3, stride), bn, 1e-5, train);
            x = activate(rec, y, Act::Relu, true);
        }
        x
    }

    /// Logits (eval mode) with every activation recorded for [`crate::guided::guided_backprop`].
    pub fn forward_guided(&self, xs: &Tensor, rec: &GuidedRecorder) -> Tensor {
        self.head(&self.features_impl(xs, false, Some(rec)))
    }

    /// Class logits from a feature map of [`CompactNet::features_t`].
    pub fn head(&self, features: &Tensor) -> Tensor {
        features.adaptive_avg_pool2d([1, 1]).apply(&self.head).flatten(1, -1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, nn::ModuleT};

    #[test]
    fn logits_have_one_column_per_class_for_any_size() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = CompactConfig::new(7, 1).build(&vs.root()).unwrap();
        for (h, w) in [(15, 15), (28, 28), (64, 40)] {
            let x = Tensor::randn([3, 1, h, w], (Kind::Float, Device::Cpu));
            assert_eq!(net.forward_t(&x, false).size(), vec![3, 7]);
        }
    }

    #[test]
    fn backward_reaches_every_variable() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = CompactConfig::new(3, 3).build(&vs.root()).unwrap();
        let x = Tensor::randn([4, 3, 20, 20], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 0]);
        net.forward_t(&x, true).cross_entropy_for_logits(&y).backward();
        for (name, var) in vs.variables().into_iter().filter(|(_, v)| v.requires_grad()) {
            let grad = var.grad();
            assert!(grad.defined(), "{name} has no gradient");
            assert!(grad.abs().sum(Kind::Float).double_value(&[]) > 0.0, "{name} has a zero gradient");
        }
    }

    #[test]
    fn invalid_configs_name_the_key() {
        let vs = nn::VarStore::new(Device::Cpu);
        let err = CompactConfig { widths: vec![], ..CompactConfig::new(2, 1) }.build(&vs.root()).unwrap_err();
        assert!(err.to_string().contains("`widths`"), "{err}");
        let json = r#"{"num_classes":2,"in_channels":1,"widths":[8],"depth":3}"#;
        assert!(serde_json::from_str::<CompactConfig>(json).is_err());
    }
}
