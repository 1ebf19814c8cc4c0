//! Guided backpropagation (Springenberg et al.): the gradient of a score with respect to the input image
//! where every ReLU passes back only positive gradients, and only where its input was positive. Used by
//! `guided_grad_cam` heatmaps.
//!
//! libtorch has no per-operation backward hook in tch, so the graph is cut at every activation: the
//! forward pass (run with a [`GuidedRecorder`]) replaces each activation output by a fresh leaf and
//! records (input, leaf). The backward pass then walks the activations from the last to the first,
//! applying the guided rule at each cut and propagating through the segment below it.

use crate::Result;
use std::cell::RefCell;
use tch::{Kind, Tensor};

/// An activation function of the networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    /// max(x, 0).
    Relu,
    /// min(max(x, 0), 6).
    Relu6,
}

/// Records the activations of one forward pass for [`guided_backprop`].
#[derive(Debug, Default)]
pub struct GuidedRecorder {
    records: RefCell<Vec<(Tensor, Tensor, Act)>>,
}

/// Applies `act` to `x`: plainly (in place when `inplace`) without a recorder, or as a recorded cut.
pub(crate) fn activate(rec: Option<&GuidedRecorder>, x: Tensor, act: Act, inplace: bool) -> Tensor {
    match rec {
        None => match (act, inplace) {
            (Act::Relu, true) => {
                let mut x = x;
                x.relu_()
            }
            (Act::Relu, false) => x.relu(),
            (Act::Relu6, true) => {
                let mut x = x;
                x.relu6_()
            }
            (Act::Relu6, false) => x.relu6(),
        },
        Some(r) => {
            let y = match act {
                Act::Relu => x.relu(),
                Act::Relu6 => x.relu6(),
            };
            let leaf = y.detach().set_requires_grad(true);
            r.records.borrow_mut().push((x, leaf.shallow_clone(), act));
            leaf
        }
    }
}

/// The guided gradient of the scalar `forward(input, recorder)` with respect to `input` (same shape).
/// `forward` must route every activation through the recorder (the networks' `forward_guided`).
///
/// # Errors
/// libtorch errors.
pub fn guided_backprop(
    input: &Tensor,
    forward: impl FnOnce(&Tensor, &GuidedRecorder) -> Tensor,
) -> Result<Tensor> {
    let x = input.detach().set_requires_grad(true);
    let rec = GuidedRecorder::default();
    let score = forward(&x, &rec);
    let records = rec.records.into_inner();
    let leaves: Vec<Tensor> = records.iter().map(|r| r.1.shallow_clone()).collect();
    // grads[k] for leaf k; grads[n] for the input.
    let mut grads: Vec<Option<Tensor>> = (0..=leaves.len()).map(|_| None).collect();
    let accumulate = |upto: usize, root: &Tensor, grads: &mut Vec<Option<Tensor>>| -> Result<()> {
        let mut inputs: Vec<&Tensor> = leaves[..upto].iter().collect();
        inputs.push(&x);
        let out = Tensor::f_run_backward(&[root], &inputs, true, false)?;
        for (i, g) in out.into_iter().enumerate() {
            if g.defined() {
                let slot = if i == upto { leaves.len() } else { i };
                grads[slot] = Some(match grads[slot].take() {
                    Some(acc) => acc + g,
                    None => g,
                });
            }
        }
        Ok(())
    };
    accumulate(leaves.len(), &score, &mut grads)?;
    for k in (0..records.len()).rev() {
        let Some(g) = grads[k].take() else { continue };
        let (input_k, _, act) = &records[k];
        let pass = match act {
            Act::Relu => input_k.gt(0.0),
            Act::Relu6 => input_k.gt(0.0).logical_and(&input_k.lt(6.0)),
        };
        let guided = g.clamp_min(0.0) * pass.to_kind(Kind::Float);
        if input_k.requires_grad() {
            let root = (input_k * guided.detach()).sum(Kind::Float);
            accumulate(k, &root, &mut grads)?;
        }
    }
    Ok(grads.pop().flatten().unwrap_or_else(|| x.zeros_like()))
}
