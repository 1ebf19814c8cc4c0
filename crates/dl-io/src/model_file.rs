//! The model file: one self-contained container (magic `DLKMODEL`, format version, CRC-32) holding a
//! JSON description (model type, architecture, parameters, classes, preprocessing, meta_data) and the
//! weights as safetensors bytes. dl-io stays free of libtorch: it stores the weight bytes as given.

use crate::container::{Header, decode, encode};
use crate::{Error, Result, write_bytes_atomic};
use std::path::Path;

/// The model-file format version this build writes (and the newest it reads). Version 2 (the
/// method-generic description) replaced version 1 (classifiers only); readers of the description
/// convert version-1 descriptions.
pub const MODEL_FILE_VERSION: u32 = 2;
/// The container header of model files (and training checkpoints) this build writes.
pub const MODEL_FILE_HEADER: Header = Header { magic: *b"DLKMODEL", version: MODEL_FILE_VERSION };

/// The two parts of a model file.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    /// Everything but the weights, as JSON.
    pub description: serde_json::Value,
    /// The weights, in safetensors layout.
    pub weights: Vec<u8>,
}

impl ModelFile {
    /// The file's bytes: the container around `u64 description length | description JSON | weights`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let description = serde_json::to_vec(&self.description).expect("a JSON value serialises");
        let mut payload = Vec::with_capacity(8 + description.len() + self.weights.len());
        payload.extend_from_slice(&(description.len() as u64).to_le_bytes());
        payload.extend_from_slice(&description);
        payload.extend_from_slice(&self.weights);
        encode(MODEL_FILE_HEADER, &payload)
    }

    /// Parses model-file bytes; `what` names the file or buffer in errors.
    ///
    /// # Errors
    /// [`Error::BadMagic`], [`Error::NewerVersion`], [`Error::Truncated`], [`Error::Checksum`], or
    /// [`Error::Corrupt`] for a payload that does not hold a description.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Self> {
        Ok(Self::from_bytes_with_version(bytes, what)?.1)
    }

    /// As [`ModelFile::from_bytes`], with the format version the bytes were written in.
    ///
    /// # Errors
    /// As [`ModelFile::from_bytes`].
    pub fn from_bytes_with_version(bytes: &[u8], what: &str) -> Result<(u32, Self)> {
        let (version, payload) = decode(MODEL_FILE_HEADER, bytes, what)?;
        let corrupt = |message: String| Error::Corrupt { what: what.to_owned(), message };
        let len = payload.get(..8).ok_or_else(|| corrupt("no description length".into()))?;
        let len = usize::try_from(u64::from_le_bytes(len.try_into().expect("8 bytes")))
            .map_err(|_| corrupt("description length".into()))?;
        let end = 8usize
            .checked_add(len)
            .filter(|&e| e <= payload.len())
            .ok_or_else(|| corrupt("description runs past the end".into()))?;
        let description =
            serde_json::from_slice(&payload[8..end]).map_err(|e| corrupt(format!("description: {e}")))?;
        Ok((version, Self { description, weights: payload[end..].to_vec() }))
    }

    /// Writes the model file atomically.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_bytes_atomic(path, &self.to_bytes())
    }

    /// Reads a model file.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file, else as [`ModelFile::from_bytes`].
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            action: "reading",
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_every_truncation() {
        let m = ModelFile {
            description: serde_json::json!({"type": "classification", "class_names": ["a"]}),
            weights: vec![1, 2, 3, 4],
        };
        let bytes = m.to_bytes();
        assert_eq!(ModelFile::from_bytes(&bytes, "m").unwrap(), m);
        for n in 0..bytes.len() {
            assert!(ModelFile::from_bytes(&bytes[..n], "m").is_err(), "{n}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.dlm");
        m.write(&p).unwrap();
        assert_eq!(ModelFile::read(&p).unwrap(), m);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = ModelFile::from_bytes(&bytes, "x");
        }
    }
}
