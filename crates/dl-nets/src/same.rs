//! Convolutions with TensorFlow's "SAME" padding (the EfficientNet-Lite and MobileNetV1 weights were
//! trained with it), or PyTorch's symmetric padding where features must stay centred on their grid.

use tch::{Tensor, nn};

/// A convolution with TensorFlow's "SAME" padding: output size ⌈input / stride⌉, the odd pixel of
/// padding at the bottom and right. On an even input a stride-2 convolution's output `i` is then
/// centred on input pixel `2i + 1`, so after four of them a stride-16 feature sits 15 px right of and
/// below `16 i`, where a detector's anchors are; with `symmetric` the padding is PyTorch's
/// `(k − 1) / 2` on every side instead (the same output size, output `i` centred on `2i`).
#[derive(Debug)]
pub(crate) struct SameConv {
    pub(crate) conv: nn::Conv2D,
    pub(crate) k: i64,
    pub(crate) stride: i64,
    pub(crate) symmetric: bool,
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

    /// `x` zero-padded as TensorFlow's "same" padding asks (itself where no padding is needed), or by
    /// `(k − 1) / 2` on every side when symmetric (the same as "same" at stride 1).
    fn padded(&self, x: &Tensor) -> Tensor {
        if self.symmetric {
            let p = (self.k - 1) / 2;
            return x.constant_pad_nd([p, p, p, p]);
        }
        let size = x.size();
        let pad = |n: i64| ((n + self.stride - 1) / self.stride - 1) * self.stride + self.k - n;
        let (ph, pw) = (pad(size[2]).max(0), pad(size[3]).max(0));
        if ph == 0 && pw == 0 {
            return x.shallow_clone();
        }
        x.constant_pad_nd([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// A stride-2 convolution whose kernel picks its centre tap: "same" padding on an even input reads
    /// pixel `2i + 1`, symmetric padding pixel `2i` (PyTorch's grid); both give ⌈n / 2⌉ outputs.
    #[test]
    fn symmetric_padding_keeps_stride_two_outputs_on_the_even_pixels() {
        for (k, n) in [(3i64, 8i64), (5, 8), (3, 7), (5, 9)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let cfg = nn::ConvConfig { stride: 2, bias: false, ..Default::default() };
            let mut c =
                SameConv { conv: nn::conv2d(vs.root() / "c", 1, 1, k, cfg), k, stride: 2, symmetric: false };
            tch::no_grad(|| {
                let _ = c.conv.ws.zero_();
                let _ = c.conv.ws.narrow(2, (k - 1) / 2, 1).narrow(3, (k - 1) / 2, 1).fill_(1.0);
            });
            let x = Tensor::arange(n * n, (Kind::Float, Device::Cpu)).view([1, 1, n, n]);
            let same = c.padded(&x).apply(&c.conv);
            c.symmetric = true;
            let sym = c.padded(&x).apply(&c.conv);
            let half = (n + 1) / 2;
            assert_eq!(sym.size(), [1, 1, half, half]);
            assert_eq!(same.size(), [1, 1, half, half]);
            for i in 0..half - 1 {
                let at = |t: &Tensor| t.double_value(&[0, 0, i, i]);
                assert_eq!(at(&sym), (2 * i * n + 2 * i) as f64, "k {k} n {n} i {i}");
                let off = if n % 2 == 0 { 1 } else { 0 };
                assert_eq!(at(&same), ((2 * i + off) * n + 2 * i + off) as f64, "k {k} n {n} i {i}");
            }
        }
    }
}
