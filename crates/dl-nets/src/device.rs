//! Device choice at run time: CPU by default, CUDA when asked for and present.

use crate::{Error, Result};
use tch::Device;

/// Parses a device name: `cpu`, `cuda` (the first GPU) or `cuda:N`; `auto` picks the first GPU when one
/// is present and the CPU otherwise.
///
/// # Errors
/// [`Error::Device`] for an unknown name or a CUDA device this machine does not have.
///
/// # Examples
/// ```
/// assert_eq!(dl_nets::device::select_device("cpu").unwrap(), tch::Device::Cpu);
/// assert!(dl_nets::device::select_device("tpu").is_err());
/// ```
pub fn select_device(name: &str) -> Result<Device> {
    let err = |reason: String| Error::Device { name: name.to_owned(), reason };
    let index = match name.trim() {
        "cpu" => return Ok(Device::Cpu),
        "auto" => return Ok(Device::cuda_if_available()),
        "cuda" => 0,
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(index)) => index,
            _ => return Err(err("expected `cpu`, `auto`, `cuda` or `cuda:N`".into())),
        },
    };
    let available = tch::Cuda::device_count().max(0) as usize;
    if index >= available {
        return Err(err(format!("this machine has {available} CUDA device(s)")));
    }
    Ok(Device::Cuda(index))
}

/// `t` (4-D, NCHW) with channels-last strides: the same values and shape, laid out N·H·W·C in memory.
/// oneDNN's CPU convolutions run markedly faster on this layout (measured for ResNet-18 inference and
/// the compact net's training); other tensors are returned as they are.
pub fn channels_last(t: &tch::Tensor) -> tch::Tensor {
    if t.dim() == 4 { t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]) } else { t.shallow_clone() }
}

/// Gives every 4-D variable of `vs` (the convolution weights) the channels-last layout, in place; values,
/// names and shapes are unchanged, so export and import are unaffected.
pub fn vars_to_channels_last(vs: &tch::nn::VarStore) {
    tch::no_grad(|| {
        for (_, mut var) in vs.variables() {
            if var.dim() == 4 {
                let cl = channels_last(&var);
                var.set_data(&cl);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_absent_gpus_are_refused() {
        assert_eq!(select_device("cpu").unwrap(), Device::Cpu);
        assert!(select_device("cuda:x").is_err());
        let gpus = tch::Cuda::device_count() as usize;
        assert!(select_device(&format!("cuda:{gpus}")).is_err());
        let auto = select_device("auto").unwrap();
        assert_eq!(auto.is_cuda(), gpus > 0);
    }
}
