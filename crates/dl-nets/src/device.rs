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

/// Allocation requests above this size stay in the heap instead of a fresh `mmap` (glibc's default moves
/// between 128 KiB and 32 MiB).
pub const MMAP_THRESHOLD: i32 = 1 << 30;
/// Freed memory at the top of the heap kept for reuse before it is returned to the system.
pub const TRIM_THRESHOLD: i32 = 1 << 28;

/// Lets glibc's `malloc` reuse the memory of freed activations (once per process; called when a model
/// is built or read). By default glibc serves every allocation above a few MiB — most activation and
/// gradient tensors — with a fresh `mmap` and returns it to the system when freed, so each training
/// step faults in hundreds of MiB of new pages; measured for the detection bench on 2 cores: 10 % of a
/// training step's time. With [`MMAP_THRESHOLD`] and [`TRIM_THRESHOLD`] the pages stay mapped and are
/// reused (peak memory measured about 5 % higher).
///
/// It changes the process's allocator settings, so it stays away when the process was given its own
/// (any of the `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` variables or `GLIBC_TUNABLES` set) and when
/// `DLKIT_MALLOC=system`. Other C libraries: nothing to do. Returns whether the settings are in force
/// (the same answer on every call).
pub fn tune_allocator() -> bool {
    static TUNED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TUNED.get_or_init(|| allocator_tuning_wanted(|v| std::env::var_os(v)) && set_malloc_thresholds())
}

/// Whether the environment (read through `var`) leaves the allocator settings to dlkit.
fn allocator_tuning_wanted(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    let own = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"]
        .iter()
        .any(|v| var(v).is_some());
    !own && var("DLKIT_MALLOC").as_deref() != Some("system".as_ref())
}

/// Sets both thresholds; true when glibc accepted both.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_malloc_thresholds() -> bool {
    // SAFETY: mallopt only sets two of glibc's allocator parameters; it is thread-safe (it takes the
    // arenas' locks) and any value is valid for them (they bound when memory is mapped and returned).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_malloc_thresholds() -> bool {
    false
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

    #[test]
    fn allocator_settings_yield_to_the_environment() {
        let env = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| set.iter().find(|(k, _)| *k == name).map(|(_, v)| std::ffi::OsString::from(v))
        };
        assert!(allocator_tuning_wanted(env(&[])));
        assert!(allocator_tuning_wanted(env(&[("DLKIT_MALLOC", "tuned")])));
        assert!(!allocator_tuning_wanted(env(&[("DLKIT_MALLOC", "system")])));
        assert!(!allocator_tuning_wanted(env(&[("MALLOC_MMAP_THRESHOLD_", "65536")])));
        assert!(!allocator_tuning_wanted(env(&[("MALLOC_TRIM_THRESHOLD_", "0")])));
        assert!(!allocator_tuning_wanted(env(&[("GLIBC_TUNABLES", "glibc.malloc.arena_max=1")])));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_accepts_the_thresholds_and_tuning_is_stable() {
        // Thresholds above glibc's limits would be refused (mallopt returns 0).
        assert!(set_malloc_thresholds());
        let first = tune_allocator();
        assert_eq!(first, tune_allocator());
        let wanted = allocator_tuning_wanted(|v| std::env::var_os(v));
        assert_eq!(first, wanted);
    }
}
