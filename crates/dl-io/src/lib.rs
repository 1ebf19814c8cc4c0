//! dlkit file formats: atomic writes and the checksummed binary container used by sample and model files.
//!
//! Every binary file dlkit writes is a [`container`]: a magic, a format version, the payload length and
//! a CRC-32 of the payload, then the payload. Readers refuse wrong magics, newer versions, truncation and
//! corruption with typed errors. Every write goes through [`write_atomic`]: a temporary file in the
//! same folder, flushed, then renamed over the target, so a crash never leaves a half-written file.
//! [`ModelFile`] is the model container (description JSON + safetensors weights); sample files live in
//! dl-data.

#![warn(missing_docs)]

pub mod atomic;
pub mod container;
mod error;
pub mod model_file;

pub use atomic::{is_temporary_name, write_atomic, write_bytes_atomic, write_path_atomic};
pub use container::{Header, decode, encode, read_container, write_container};
pub use error::{Error, Result};
pub use model_file::{MODEL_FILE_HEADER, MODEL_FILE_VERSION, ModelFile};

/// The per-user dlkit cache (libtorch venv, downloads, converted datasets, pretrained weights):
/// `$DLKIT_CACHE`, else `$XDG_CACHE_HOME/dlkit`, else `$HOME/.cache/dlkit`, else `.dlkit/cache` in the
/// current directory.
pub fn cache_root() -> std::path::PathBuf {
    use std::path::PathBuf;
    let var = |name| std::env::var_os(name).filter(|d| !d.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("DLKIT_CACHE") {
        return dir;
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return dir.join("dlkit");
    }
    if let Some(home) = var("HOME") {
        return home.join(".cache").join("dlkit");
    }
    PathBuf::from(".dlkit").join("cache")
}
