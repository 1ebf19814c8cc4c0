//! dlkit file formats: atomic writes and the checksummed binary container used by sample and model files.
//!
//! Every binary file dlkit writes is a [`container`]: a magic, a format version, the payload length and
//! a CRC-32 of the payload, then the payload. Readers refuse wrong magics, newer versions, truncation and
//! corruption with typed errors. Every write goes through [`write_atomic`]: a temporary file in the
//! same folder, flushed, then renamed over the target, so a crash never leaves a half-written file.
//! The model-file and sample-file payloads land with their issues (models, preprocessing).

#![warn(missing_docs)]

pub mod atomic;
pub mod container;
mod error;

pub use atomic::{write_atomic, write_bytes_atomic};
pub use container::{Header, decode, encode, read_container, write_container};
pub use error::{Error, Result};
