//! Convolutions with TensorFlow's "SAME" padding (the EfficientNet-Lite and MobileNetV1 weights were
//! trained with it).

use tch::{Tensor, nn};

/// A convolution with TensorFlow's "SAME" padding: output size ⌈input / stride⌉, the odd pixel of
/// padding at the bottom and right.
#[derive(Debug)]
pub(crate) struct SameConv {
    pub(crate) conv: nn::Conv2D,
    pub(crate) k: i64,
    pub(crate) stride: i64,
}

impl SameConv {
    /// `bn(conv(x))`, folded at inference ([`crate::fold`]); `eps` is the normalisation's ε.
    pub(crate) fn forward_bn(&self, x: &Tensor, bn: &nn::BatchNorm, eps: f64, train: bool) -> Tensor {
        crate::fold::conv_bn(
            &self.padded(x),
            &self.conv,
            crate::fold::Geometry::unpadded(self.stride),
            bn,
            eps,
            train,
        )
    }

    /// `x` zero-padded as TensorFlow's "same" padding asks (itself where no padding is needed).
    fn padded(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        let pad = |n: i64| ((n + self.stride - 1) / self.stride - 1) * self.stride + self.k - n;
        let (ph, pw) = (pad(size[2]).max(0), pad(size[3]).max(0));
        if ph == 0 && pw == 0 {
            return x.shallow_clone();
        }
        x.constant_pad_nd([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2])
    }
}
