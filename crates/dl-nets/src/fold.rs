//! A convolution followed by batch normalisation, with the normalisation folded into the convolution at
//! inference.
//!
//! In inference mode batch normalisation is an affine map per channel, y = γ (x − μ) / √(σ² + ε) + β,
//! so conv followed by it is one convolution with weights W·s and bias β + (b − μ)·s, s = γ / √(σ² + ε).
//! The folded weights are computed at each forward pass (a few small operations on the weights, not on
//! the activations: no cache to go stale when training or loading changes the weights) and save the
//! normalisation's pass over every activation — measured: MobileNetV2 inference on 2 cores about twice
//! as fast. In training the two run as written (batch statistics, running-statistics updates).
//!
//! The results equal the unfolded ones to float rounding; [`with_batch_norm_unfolded`] runs a closure
//! with the normalisation as its own operation (PyTorch eager's numerics, bit for bit).

use std::cell::Cell;
use tch::{Tensor, nn};

thread_local! {
    static FOLD: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` with batch normalisation applied as its own operation after each convolution (on this
/// thread), instead of folded into the convolution's weights: outputs bit-identical to PyTorch eager's
/// order of operations, and to dlkit before the folding.
pub fn with_batch_norm_unfolded<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            FOLD.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(FOLD.with(|c| c.replace(false)));
    f()
}

/// The geometry of a convolution (tch keeps its configuration private): stride and zero padding, the
/// same in both directions; groups follow from the input's and the weights' channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) stride: i64,
    pub(crate) padding: i64,
}

impl Geometry {
    /// Stride `stride`, "same" padding (k − 1) / 2 for a `k`×`k` kernel.
    pub(crate) fn same(k: i64, stride: i64) -> Self {
        Self { stride, padding: (k - 1) / 2 }
    }

    /// Stride `stride`, no padding (inputs padded explicitly beforehand).
    pub(crate) fn unpadded(stride: i64) -> Self {
        Self { stride, padding: 0 }
    }
}

/// `bn(conv(x))`; at inference (`train` false) one convolution with the folded weights. `eps` is the
/// normalisation's ε and `geometry` the convolution's, as they were built.
pub(crate) fn conv_bn(
    x: &Tensor,
    conv: &nn::Conv2D,
    geometry: Geometry,
    bn: &nn::BatchNorm,
    eps: f64,
    train: bool,
) -> Tensor {
    if train || !FOLD.with(Cell::get) {
        return x.apply(conv).apply_t(bn, train);
    }
    let (weight, bias) = folded(conv, bn, eps);
    let groups = x.size()[1] / conv.ws.size()[1];
    let (s, p) = (geometry.stride, geometry.padding);
    x.conv2d(&weight, Some(&bias), [s, s], [p, p], [1, 1], groups)
}

/// The folded weights and bias of `conv` followed by `bn` (in inference mode).
fn folded(conv: &nn::Conv2D, bn: &nn::BatchNorm, eps: f64) -> (Tensor, Tensor) {
    let mut scale = (&bn.running_var + eps).rsqrt();
    if let Some(gamma) = &bn.ws {
        scale *= gamma;
    }
    let weight = &conv.ws * scale.view([-1, 1, 1, 1]);
    let mut shift = match &conv.bs {
        Some(b) => b - &bn.running_mean,
        None => -&bn.running_mean,
    };
    shift *= &scale;
    if let Some(beta) = &bn.bs {
        shift += beta;
    }
    (weight, shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Folded and unfolded inference agree to float rounding for plain, strided, grouped and biased
    /// convolutions with trained-looking statistics; unfolded is exactly the two operations.
    #[test]
    fn folding_equals_the_two_operations() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        for (i, (cin, cout, k, stride, groups, bias, eps)) in
            [(3, 8, 3, 2, 1, false, 1e-5), (8, 8, 3, 1, 8, false, 1e-3), (8, 16, 1, 1, 1, true, 1e-5)]
                .into_iter()
                .enumerate()
        {
            let g = Geometry::same(k, stride);
            let conv = nn::conv2d(
                &root / format!("c{i}"),
                cin,
                cout,
                k,
                nn::ConvConfig { stride, padding: g.padding, groups, bias, ..Default::default() },
            );
            let mut bn = nn::batch_norm2d(
                &root / format!("b{i}"),
                cout,
                nn::BatchNormConfig { eps, ..Default::default() },
            );
            tch::no_grad(|| {
                bn.running_mean = Tensor::randn([cout], (Kind::Float, Device::Cpu));
                bn.running_var = Tensor::rand([cout], (Kind::Float, Device::Cpu)) + 0.1;
                bn.ws.as_mut().unwrap().copy_(&(Tensor::rand([cout], (Kind::Float, Device::Cpu)) + 0.5));
                bn.bs.as_mut().unwrap().copy_(&Tensor::randn([cout], (Kind::Float, Device::Cpu)));
            });
            let x = Tensor::randn([2, cin, 11, 9], (Kind::Float, Device::Cpu));
            let plain = x.apply(&conv).apply_t(&bn, false);
            let fold = conv_bn(&x, &conv, g, &bn, eps, false);
            assert_eq!(fold.size(), plain.size());
            let diff = (&fold - &plain).abs().max().double_value(&[]);
            let scale = plain.abs().max().double_value(&[]);
            assert!(diff <= 1e-5 * scale, "case {i}: {diff} of {scale}");
            let unfolded = with_batch_norm_unfolded(|| conv_bn(&x, &conv, g, &bn, eps, false));
            assert!(unfolded.equal(&plain), "case {i}: unfolded is the two operations");
            assert!(FOLD.with(Cell::get), "folding is restored");
        }
    }
}
