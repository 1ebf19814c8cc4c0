//! The [`Backbone`] trait: feature maps at several strides ("levels") of any network family, for the
//! detection necks, segmentation decoders and anomaly feature extractors that take any backbone.

use tch::Tensor;

/// One feature level of a backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// Downsampling factor against the input (a power of two).
    pub stride: i64,
    /// Channels of the feature map.
    pub channels: i64,
}

/// Feature maps at increasing strides (every family of dl-nets: compact and enhanced, ResNet,
/// MobileNetV1, MobileNetV2, EfficientNet-Lite, SqueezeNet).
pub trait Backbone: std::fmt::Debug + Send {
    /// The levels, by increasing stride.
    fn levels(&self) -> Vec<Level>;
    /// The feature maps of [`Backbone::levels`] for images `[N, C, H, W]`, in the same order. For inputs
    /// whose size is not a multiple of a level's stride, that level's size is rounded as the network's
    /// convolutions round it.
    fn forward_levels(&self, xs: &Tensor, train: bool) -> Vec<Tensor>;
    /// The first `count` of [`Backbone::forward_levels`]; a family may stop computing after the last of
    /// them (MobileNetV2 does: the anomaly models tap strides 8 and 16 and skip the rest).
    fn forward_first_levels(&self, xs: &Tensor, train: bool, count: usize) -> Vec<Tensor> {
        let mut levels = self.forward_levels(xs, train);
        levels.truncate(count);
        levels
    }
}

/// The feature maps of a tap list (`stride4` …), in order.
pub(crate) fn tap_tensors(taps: Vec<(String, Tensor)>) -> Vec<Tensor> {
    taps.into_iter().map(|(_, t)| t).collect()
}

/// Levels of fixed (stride, channels) pairs.
pub(crate) fn fixed(levels: &[(i64, i64)]) -> Vec<Level> {
    levels.iter().map(|&(stride, channels)| Level { stride, channels }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        CompactConfig, EfficientNetLiteConfig, MobileNetV1Config, MobileNetV2Config, ResNetConfig,
        SqueezeNetConfig,
    };
    use tch::{Device, Kind, nn};

    /// Every family: the levels' strides and channels are the feature maps' (input 96×64, so each map is
    /// exactly input / stride), strides double from level to level, the first levels alone are the same
    /// as with all.
    #[test]
    fn levels_describe_the_feature_maps_of_every_family() {
        let vs = nn::VarStore::new(Device::Cpu);
        let r = vs.root();
        let nets: Vec<(&str, Box<dyn Backbone>, Vec<i64>)> = vec![
            ("compact", Box::new(CompactConfig::new(2, 3).build(&(&r / "a")).unwrap()), vec![1, 2, 4, 8]),
            (
                "enhanced",
                Box::new(CompactConfig::enhanced(2, 3).build(&(&r / "b")).unwrap()),
                vec![1, 2, 4, 8, 16],
            ),
            (
                "resnet18",
                Box::new(ResNetConfig::resnet18(2, 3).build(&(&r / "c")).unwrap()),
                vec![4, 8, 16, 32],
            ),
            (
                "resnet50",
                Box::new(ResNetConfig::resnet50(2, 3).build(&(&r / "d")).unwrap()),
                vec![4, 8, 16, 32],
            ),
            (
                "mobilenet_v2",
                Box::new(MobileNetV2Config::new(2, 3).build(&(&r / "e")).unwrap()),
                vec![4, 8, 16, 32],
            ),
            (
                "mobilenet_v1",
                Box::new(MobileNetV1Config::new(2, 3).build(&(&r / "f")).unwrap()),
                vec![4, 8, 16, 32],
            ),
            (
                "efficientnet_lite0",
                Box::new(EfficientNetLiteConfig::lite(0, 2, 3).unwrap().build(&(&r / "g")).unwrap()),
                vec![4, 8, 16, 32],
            ),
            ("squeezenet", Box::new(SqueezeNetConfig::new(2, 3).build(&(&r / "h")).unwrap()), vec![4, 8, 16]),
        ];
        let (h, w) = (64, 96);
        let x = Tensor::randn([2, 3, h, w], (Kind::Float, Device::Cpu));
        for (name, net, strides) in nets {
            let levels = net.levels();
            assert_eq!(levels.iter().map(|l| l.stride).collect::<Vec<_>>(), strides, "{name}");
            let maps = tch::no_grad(|| net.forward_levels(&x, false));
            assert_eq!(maps.len(), levels.len(), "{name}");
            // The first levels alone are the same maps.
            let first = tch::no_grad(|| net.forward_first_levels(&x, false, 2));
            assert_eq!(first.len(), 2, "{name}");
            for (a, b) in first.iter().zip(&maps) {
                assert_eq!(a, b, "{name}: the first levels alone");
            }
            for (l, m) in levels.iter().zip(&maps) {
                let size = m.size();
                assert_eq!(size[1], l.channels, "{name} stride {}", l.stride);
                if name != "squeezenet" {
                    // SqueezeNet's unpadded pools round down: 64 → 31 → 15 → 7 at strides 4/8/16.
                    assert_eq!(
                        (size[2], size[3]),
                        (h / l.stride, w / l.stride),
                        "{name} stride {}",
                        l.stride
                    );
                }
            }
        }
    }
}
