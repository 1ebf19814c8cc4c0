//! The checksummed binary container: `magic (8) | version u32 LE | payload length u64 LE | crc32 u32 LE | payload`.

use crate::{Error, Result, atomic::write_atomic};
use std::io::Write;
use std::path::Path;

/// Size of the container header in bytes.
pub const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// What identifies one kind of container file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Eight bytes at the start of the file, e.g. `b"DLKMODEL"`.
    pub magic: [u8; 8],
    /// Format version written; readers accept this version and older ones.
    pub version: u32,
}

/// Encodes `payload` into a container with `header`.
pub fn encode(header: Header, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header.magic);
    out.extend_from_slice(&header.version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks a container's header and checksum and returns its version and payload.
///
/// `what` names the file or buffer in errors.
///
/// # Errors
/// [`Error::BadMagic`], [`Error::NewerVersion`], [`Error::Truncated`] (also for trailing bytes) or
/// [`Error::Checksum`].
pub fn decode<'a>(header: Header, bytes: &'a [u8], what: &str) -> Result<(u32, &'a [u8])> {
    let expected = String::from_utf8_lossy(&header.magic).into_owned();
    if bytes.len() < HEADER_LEN {
        if !header.magic.starts_with(&bytes[..bytes.len().min(8)]) {
            return Err(Error::BadMagic {
                what: what.into(),
                expected,
                found: bytes[..bytes.len().min(8)].to_vec(),
            });
        }
        return Err(Error::Truncated {
            what: what.into(),
            expected: HEADER_LEN as u64,
            found: bytes.len() as u64,
        });
    }
    if bytes[..8] != header.magic {
        return Err(Error::BadMagic { what: what.into(), expected, found: bytes[..8].to_vec() });
    }
    let field = |range: std::ops::Range<usize>| -> [u8; 8] {
        let mut buf = [0u8; 8];
        buf[..range.len()].copy_from_slice(&bytes[range]);
        buf
    };
    let version = u32::from_le_bytes(field(8..12)[..4].try_into().expect("4 bytes"));
    if version > header.version {
        return Err(Error::NewerVersion { what: what.into(), found: version, supported: header.version });
    }
    let len = u64::from_le_bytes(field(12..20));
    let stored = u32::from_le_bytes(field(20..24)[..4].try_into().expect("4 bytes"));
    let found = (bytes.len() - HEADER_LEN) as u64;
    if found != len {
        return Err(Error::Truncated {
            what: what.into(),
            expected: HEADER_LEN as u64 + len,
            found: bytes.len() as u64,
        });
    }
    let payload = &bytes[HEADER_LEN..];
    let computed = crc32fast::hash(payload);
    if computed != stored {
        return Err(Error::Checksum { what: what.into(), stored, computed });
    }
    Ok((version, payload))
}

/// Writes a container file atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_container(path: &Path, header: Header, payload: &[u8]) -> Result<()> {
    let bytes = encode(header, payload);
    write_atomic(path, |w| {
        w.write_all(&bytes).map_err(|source| Error::Io { action: "writing", path: path.to_owned(), source })
    })
}

/// Reads and checks a container file; returns its version and payload.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, else as [`decode`].
pub fn read_container(path: &Path, header: Header) -> Result<(u32, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        action: "reading",
        path: path.to_owned(),
        source,
    })?;
    let (version, payload) = decode(header, &bytes, &path.display().to_string())?;
    Ok((version, payload.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: Header = Header { magic: *b"DLKTEST0", version: 2 };

    /// A file that is not the container says what it looks like instead of listing bytes.
    #[test]
    fn bad_magic_says_what_the_file_looks_like() {
        let json = br#"{"image_dir": "imgs", "samples": []}"#;
        let e = decode(H, json, "d.json").unwrap_err().to_string();
        assert!(e.contains("not a DLKTEST0 file") && e.contains("starts like JSON"), "{e}");
        let png = b"\x89PNG\r\n\x1a\n0000000000000000000000000000";
        assert!(decode(H, png, "a.png").unwrap_err().to_string().contains("PNG image"));
        assert!(decode(H, b"", "empty").unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        write_container(&path, H, b"payload").unwrap();
        assert_eq!(read_container(&path, H).unwrap(), (2, b"payload".to_vec()));
    }

    #[test]
    fn newer_version_is_refused() {
        let bytes = encode(Header { version: 3, ..H }, b"abc");
        assert!(matches!(decode(H, &bytes, "x"), Err(Error::NewerVersion { found: 3, supported: 2, .. })));
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error() {
        let bytes = encode(H, b"some payload bytes");
        for n in 0..bytes.len() {
            assert!(decode(H, &bytes[..n], "x").is_err(), "truncated to {n}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(decode(H, &b, "x").is_err(), "flip at {i}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
            let bytes = encode(H, &payload);
            let (version, decoded) = decode(H, &bytes, "x").unwrap();
            prop_assert_eq!(version, 2);
            prop_assert_eq!(decoded, &payload[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(H, &bytes, "x");
        }
    }
}
