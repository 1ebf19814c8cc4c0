//! Atomic file writes: temporary file in the target's folder, then rename.

use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes a file atomically: `write` fills a temporary file next to `path`, which is synced and then
/// renamed over `path`. On any error the temporary file is removed and an existing `path` is untouched.
///
/// # Errors
/// [`Error::Io`] naming the file when creating, writing, syncing or renaming fails; an error returned
/// by `write` is passed through.
///
/// # Examples
/// ```
/// # let dir = std::env::temp_dir().join(format!("dl-io-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("hello.txt");
/// dl_io::write_atomic(&path, |w| {
///     use std::io::Write;
///     w.write_all(b"hello").map_err(|source| dl_io::Error::Io { action: "writing", path: path.clone(), source })
/// })
/// .unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"hello");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_atomic<E>(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E>
where
    E: From<Error>,
{
    let tmp = temporary_path(path);
    let io = |action, source| Error::Io { action, path: path.to_owned(), source };
    let file = std::fs::File::create(&tmp).map_err(|e| io("creating a temporary file for", e))?;
    let mut writer = std::io::BufWriter::new(file);
    let result = write(&mut writer).and_then(|()| {
        let file = writer.into_inner().map_err(|e| io("writing", e.into_error()))?;
        file.sync_all().map_err(|e| io("syncing", e))?;
        std::fs::rename(&tmp, path).map_err(|e| io("renaming the temporary file onto", e))?;
        Ok(())
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes the file at `path` atomically through a function that creates it at a given path (for
/// writers that only take a path, such as libtorch's): `write` writes a temporary file beside `path`,
/// which is synced and renamed onto it; on failure the temporary file is removed and `path` is kept.
///
/// # Errors
/// What `write` returns; [`Error::Io`] naming `path` for syncing or renaming.
pub fn write_path_atomic<E>(
    path: &Path,
    write: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<(), E>
where
    E: From<Error>,
{
    let tmp = temporary_path(path);
    let io = |action, source| Error::Io { action, path: path.to_owned(), source };
    let result = write(&tmp).and_then(|()| {
        std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| io("syncing", e))?;
        std::fs::rename(&tmp, path).map_err(|e| io("renaming the temporary file onto", e))?;
        Ok(())
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Whether a file name is one of the temporary files of atomic writes (`.name.<pid>.<n>.tmp`), left
/// behind only when a process is killed mid-write; it never carries a final name.
pub fn is_temporary_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// `dir/.name.<pid>.<n>.tmp` beside `path`, unique within this process.
fn temporary_path(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Writes all of `bytes` to `path` atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |w| {
        w.write_all(bytes).map_err(|source| Error::Io { action: "writing", path: path.to_owned(), source })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_keeps_old_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        write_bytes_atomic(&path, b"old").unwrap();
        let result: Result<()> = write_atomic(&path, |w| {
            w.write_all(b"partial new content").unwrap();
            Err(Error::Truncated { what: "test".into(), expected: 1, found: 0 })
        });
        assert!(result.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("data.bin")]);
    }

    #[test]
    fn missing_folder_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/folder/data.bin");
        let err = write_bytes_atomic(&path, b"x").unwrap_err();
        assert!(err.to_string().contains("data.bin"), "{err}");
    }
}
