//! Errors of dl-io.

use std::path::PathBuf;

/// Result of dl-io operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong reading or writing dlkit files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error on a file.
    #[error("{action} {path}")]
    Io {
        /// What was being done (`writing`, `reading`, …).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The bytes do not start with the expected magic.
    #[error("{what}: not a {expected} file ({})", describe_start(found))]
    BadMagic {
        /// The file or buffer.
        what: String,
        /// The kind of file expected.
        expected: String,
        /// The first bytes found.
        found: Vec<u8>,
    },
    /// The file was written by a newer dlkit.
    #[error(
        "{what}: format version {found} is newer than the newest this build reads ({supported}); update dlkit"
    )]
    NewerVersion {
        /// The file or buffer.
        what: String,
        /// Version in the file.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// Fewer bytes than the header announces.
    #[error("{what}: truncated: expected {expected} bytes, found {found}")]
    Truncated {
        /// The file or buffer.
        what: String,
        /// Bytes expected.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// A payload that passed the checksum but does not have the expected structure.
    #[error("{what}: corrupt content: {message}")]
    Corrupt {
        /// The file or buffer.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The payload does not match its checksum.
    #[error(
        "{what}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is corrupted"
    )]
    Checksum {
        /// The file or buffer.
        what: String,
        /// CRC-32 stored in the header.
        stored: u32,
        /// CRC-32 of the payload read.
        computed: u32,
    },
}

/// What the first bytes of a file that is not the expected container look like.
fn describe_start(found: &[u8]) -> String {
    let text = String::from_utf8_lossy(found);
    let t = text.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        format!("it starts like JSON, `{t}…`: a dataset, parameter or results file?")
    } else if found.starts_with(b"\x89PNG") {
        "it is a PNG image".into()
    } else if found.starts_with(b"\xff\xd8") {
        "it is a JPEG image".into()
    } else if found.starts_with(b"PK") {
        "it is a zip archive".into()
    } else if found.is_empty() {
        "the file is empty".into()
    } else {
        format!("it starts with the bytes {found:?}")
    }
}
