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
    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        let pad = |n: i64| ((n + self.stride - 1) / self.stride - 1) * self.stride + self.k - n;
        let (ph, pw) = (pad(size[2]).max(0), pad(size[3]).max(0));
        if ph == 0 && pw == 0 {
            return x.apply(&self.conv);
        }
        x.constant_pad_nd([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2]).apply(&self.conv)
    }
}
