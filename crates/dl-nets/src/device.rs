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
