//! Mutation fuzzing of every parser and file format on stable Rust (`cargo xtask fuzz`).
//!
//! Each target has valid seed inputs (built here, checked to parse) and a runner that feeds one input to
//! the parser the way a user's file reaches it — through a file in a scratch folder for the dataset
//! readers and images, from bytes for the container formats. [`mutate`] derives inputs from the seeds
//! (bit flips, overwritten, inserted and deleted bytes, copied ranges, format tokens such as `-1`, `1e309`,
//! `null`, `"`, `]`; for the checksummed containers, mostly inside the payload with the length and CRC
//! recomputed so that the parsers behind the checksum see them). [`fuzz`] runs seeded cases and reports
//! any input that panics, saved under `fixtures/fuzz/TARGET/` so that a normal test replays it.
//!
//! Model files and checkpoints are mutated like every format, digits included: a description that
//! declares a network larger than its weights (or beyond dlkit's size limits) is refused before the
//! network is built.

use crate::Model;
use dl_core::{ClassId, ImageId, Rect1, Rect2, Rng};
use dl_data::preprocess::{decode_samples, encode_samples, encode_samples_with};
use dl_data::read::{
    CocoReadParams, LabelmeReadParams, VocCoordinates, YoloReadParams, read_dl_dataset_dota,
    read_dl_dataset_from_coco, read_dl_dataset_labelme, read_dl_dataset_voc, read_dl_dataset_yolo,
};
use dl_data::{Boxes, DLDataset, DLSample, HostImage, LabelImage};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

/// The fuzz targets, by name.
pub const TARGETS: &[&str] = &[
    "dataset-json",
    "coco",
    "coco-rotated",
    "voc",
    "yolo",
    "yolo-obb",
    "dota",
    "labelme",
    "sample-file",
    "model-file-v1",
    "model-file-v2",
    "checkpoint",
    "safetensors",
    "image",
];

/// A container format: payload mutations get their header recomputed.
fn container(target: &str) -> Option<dl_io::Header> {
    match target {
        "sample-file" => Some(dl_data::preprocess::SAMPLE_FILE_HEADER),
        "model-file-v1" | "model-file-v2" | "checkpoint" => Some(dl_io::MODEL_FILE_HEADER),
        _ => None,
    }
}

/// One fuzz target: its seeds and a scratch folder with what its runner needs (images beside the
/// annotation file).
pub struct Target {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    scratch: tempfile::TempDir,
}

fn io<E: std::fmt::Display>(e: E) -> crate::Error {
    crate::Error::Param { name: "fuzz".into(), message: e.to_string() }
}

fn png(path: &Path, w: u32, h: u32) -> crate::Result<()> {
    image::GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 40 + y * 7) as u8])).save(path).map_err(io)
}

fn annotated_sample(id: u64, rotated: bool) -> DLSample {
    let mut s = DLSample::from_image(
        ImageId(id),
        HostImage {
            width: 3,
            height: 2,
            channels: 1,
            bit_depth: 8,
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        },
    );
    s.bbox_label_id = Some(vec![ClassId::new(1).expect("small id")]);
    s.boxes = Some(if rotated {
        Boxes::Rectangle2(vec![Rect2::new(1.0, 1.0, 0.3, 1.0, 0.5).expect("valid box")])
    } else {
        Boxes::Rectangle1(vec![Rect1::new(0.0, 0.0, 1.0, 2.0).expect("valid box")])
    });
    s.segmentation_image = Some(LabelImage { width: 3, height: 2, data: vec![0, 1, 1, 0, 2, 2] });
    s
}

impl Target {
    /// The target `name` with its seeds (each checked to parse) and scratch folder.
    ///
    /// # Errors
    /// An unknown name, a seed that does not parse, or a scratch folder that cannot be made.
    pub fn new(name: &str) -> crate::Result<Self> {
        let name = TARGETS.iter().copied().find(|t| *t == name).ok_or_else(|| {
            io(format!("unknown fuzz target `{name}`: expected one of {}", TARGETS.join(", ")))
        })?;
        let base = Path::new("/dev/shm");
        let scratch =
            if base.is_dir() { tempfile::tempdir_in(base) } else { tempfile::tempdir() }.map_err(io)?;
        let dir = scratch.path();
        std::fs::create_dir_all(dir.join("images")).map_err(io)?;
        png(&dir.join("images/a.png"), 64, 48)?;
        let s = |v: &str| v.as_bytes().to_vec();
        let seeds: Vec<Vec<u8>> = match name {
            "dataset-json" => vec![
                s(r#"{"image_dir": "images", "class_names": ["a", "b"], "class_ids": [0, 1], "samples": [
                    {"image_file_name": "a.png", "image_id": 0, "split": "train", "bbox_label_id": [0, 1],
                     "bbox_row1": [1.0, 2.5], "bbox_col1": [2.0, 3.0], "bbox_row2": [5.0, 9.0], "bbox_col2": [6.0, 7.5]},
                    {"image_file_name": "b.png", "image_id": 1, "split": "validation", "bbox_label_id": [1],
                     "bbox_row": [3.0], "bbox_col": [3.0], "bbox_phi": [0.5], "bbox_length1": [2.0], "bbox_length2": [1.0]}]}"#),
                s(r#"{"image_dir": "images", "class_names": ["ok", "nok"], "class_ids": [0, 1], "samples": [
                    {"image_file_name": "a.png", "image_id": 0, "image_label_id": [1], "anomaly_label": "nok",
                     "segmentation_file_name": "a.png", "split": "test"}]}"#),
            ],
            "coco" => vec![s(
                r#"{"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}, {"id": 2, "file_name": "a.png"}],
                 "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1.5, 2, 10, 20], "area": 200, "iscrowd": 0},
                                 {"id": 2, "image_id": 2, "category_id": 7, "bbox": [0, 0, 5, 5], "iscrowd": 1}],
                 "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]}"#,
            )],
            "coco-rotated" => {
                vec![s(r#"{"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
                 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [20, 20, 10, 4, 30.0]},
                                 {"id": 2, "image_id": 1, "category_id": 2, "bbox": [30, 10, 8, 8, -90]}],
                 "categories": [{"id": 1, "name": "ship"}, {"id": 2, "name": "plane"}]}"#)]
            }
            "voc" => vec![s(
                "<annotation><folder>x</folder><filename>a.png</filename><size><width>64</width><height>48</height>\
                 <depth>1</depth></size><object><name>cat</name><difficult>0</difficult><bndbox><xmin>1</xmin>\
                 <ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object><object><name>dog</name>\
                 <difficult>1</difficult><bndbox><xmin>5.5</xmin><ymin>6</ymin><xmax>9</xmax><ymax>12</ymax>\
                 </bndbox></object></annotation>",
            )],
            "yolo" => vec![s("0 0.5 0.5 0.5 0.25\n1 0.25 0.25 0.1 0.2\n")],
            "yolo-obb" => vec![s("0 0.1 0.1 0.6 0.1 0.6 0.4 0.1 0.4\n1 0.5 0.2 0.7 0.4 0.5 0.6 0.3 0.4\n")],
            "dota" => vec![s(
                "imagesource:GoogleEarth\ngsd:0.146\n1 1 30 1 30 20 1 20 plane 0\n40 5 50 15 40 25 30 15 ship 1\n",
            )],
            "labelme" => vec![s(
                r#"{"version": "5.1.1", "imagePath": "a.png", "imageHeight": 48, "imageWidth": 64, "imageData": null,
                 "shapes": [{"label": "a", "points": [[1.5, 2.5], [20, 30]], "shape_type": "rectangle"},
                            {"label": "b", "points": [[0, 0], [30, 0], [30, 30], [5, 20]], "shape_type": "polygon"}]}"#,
            )],
            "sample-file" => {
                let samples = [annotated_sample(1, false), annotated_sample(2, true)];
                vec![
                    encode_samples(&samples),
                    encode_samples_with(&samples, dl_data::preprocess::SampleStorage::Compact),
                    encode_samples_with(&samples, dl_data::preprocess::SampleStorage::Float16),
                ]
            }
            "model-file-v1" => {
                let p =
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/model_v1/compact_tiny.dlm");
                vec![std::fs::read(&p).map_err(io)?]
            }
            "model-file-v2" => vec![crate::model::tiny_classifier()?.serialize()?],
            "checkpoint" => vec![checkpoint_seed(dir)?],
            "safetensors" => vec![crate::model::tiny_classifier()?.export_weights()?],
            "image" => {
                let mut out = Vec::new();
                let rgb =
                    image::RgbImage::from_fn(5, 4, |x, y| image::Rgb([(x * 50) as u8, (y * 60) as u8, 7]));
                let gray16 = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(4, 3, |x, y| {
                    image::Luma([(x * 9000 + y) as u16])
                });
                for (img, format) in [
                    (image::DynamicImage::ImageRgb8(rgb.clone()), image::ImageFormat::Png),
                    (image::DynamicImage::ImageLuma16(gray16), image::ImageFormat::Png),
                    (image::DynamicImage::ImageRgb8(rgb.clone()), image::ImageFormat::Jpeg),
                    (image::DynamicImage::ImageRgb8(rgb), image::ImageFormat::Bmp),
                ] {
                    let mut b = std::io::Cursor::new(Vec::new());
                    img.write_to(&mut b, format).map_err(io)?;
                    out.push(b.into_inner());
                }
                out
            }
            _ => unreachable!("every target has seeds"),
        };
        let target = Target { name, seeds, scratch };
        for (i, seed) in target.seeds.iter().enumerate() {
            target.run(seed).map_err(|e| io(format!("seed {i} of `{name}` does not parse: {e}")))?;
        }
        Ok(target)
    }

    /// The target's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its valid seeds.
    pub fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    /// Feeds one input to the target's parser: `Ok` when it parsed, its error otherwise. A panic is a bug.
    ///
    /// # Errors
    /// The parser's error for the input.
    pub fn run(&self, input: &[u8]) -> Result<(), String> {
        let dir = self.scratch.path();
        let images = dir.join("images");
        let write = |name: &str| -> Result<PathBuf, String> {
            let p = dir.join(name);
            std::fs::write(&p, input).map_err(|e| e.to_string())?;
            Ok(p)
        };
        let labels = || -> Result<PathBuf, String> {
            let d = dir.join("labels");
            std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
            std::fs::write(d.join("a.txt"), input).map_err(|e| e.to_string())?;
            Ok(d)
        };
        let e = |r: std::result::Result<DLDataset, dl_data::Error>| r.map(|_| ()).map_err(|e| e.to_string());
        match self.name {
            "dataset-json" => e(DLDataset::load(&write("dataset.json")?)),
            "coco" | "coco-rotated" => {
                e(read_dl_dataset_from_coco(&write("coco.json")?, &images, &CocoReadParams::default()))
            }
            "voc" => {
                let d = dir.join("voc");
                std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
                std::fs::write(d.join("a.xml"), input).map_err(|e| e.to_string())?;
                e(read_dl_dataset_voc(&d, &images, VocCoordinates::PixelEdge))
            }
            "yolo" | "yolo-obb" => {
                let params = YoloReadParams {
                    class_names: vec!["a".into(), "b".into()],
                    obb: self.name == "yolo-obb",
                };
                e(read_dl_dataset_yolo(&images, &labels()?, &params))
            }
            "dota" => e(read_dl_dataset_dota(&images, &labels()?)),
            "labelme" => {
                std::fs::write(images.join("a.json"), input).map_err(|e| e.to_string())?;
                e(read_dl_dataset_labelme(&images, &LabelmeReadParams::default()))
            }
            "sample-file" => decode_samples(input, "fuzz").map(|_| ()).map_err(|e| e.to_string()),
            "model-file-v1" | "model-file-v2" => {
                Model::deserialize(input, "fuzz").map(|_| ()).map_err(|e| e.to_string())
            }
            "checkpoint" => {
                dl_train::inspect_checkpoint(input, "fuzz").map(|_| ()).map_err(|e| e.to_string())
            }
            "safetensors" => {
                dl_nets::weights::safetensors_to_tensors(input).map(|_| ()).map_err(|e| e.to_string())
            }
            "image" => HostImage::read(&write("image.bin")?).map(|_| ()).map_err(|e| e.to_string()),
            _ => unreachable!("every target has a runner"),
        }
    }

    /// Case `case` of the seeded sequence `seed`: a mutation of one of the seeds.
    pub fn case(&self, seed: u64, case: u64) -> Vec<u8> {
        let mut rng = Rng::new(seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66);
        let base = &self.seeds[rng.below(self.seeds.len() as u64) as usize];
        mutate(&mut rng, base, container(self.name))
    }
}

/// A checkpoint of one epoch of the tiny classifier on four 16×16 images (three train, one validation).
fn checkpoint_seed(dir: &Path) -> crate::Result<Vec<u8>> {
    let data = dir.join("ckpt-data");
    std::fs::create_dir_all(&data).map_err(io)?;
    let mut samples = Vec::new();
    for i in 0..4u64 {
        let name = format!("{i}.png");
        png(&data.join(&name), 16, 16)?;
        samples.push(dl_data::SampleEntry {
            image_id: ImageId(i),
            image_file_name: name,
            image_label_id: Some(vec![ClassId::new(i64::try_from(i % 2).unwrap_or(0))?]),
            split: Some(if i < 3 { dl_core::Split::Train } else { dl_core::Split::Validation }),
            ..Default::default()
        });
    }
    let ds = DLDataset {
        image_dir: data.display().to_string(),
        class_names: vec!["a".into(), "b".into()],
        class_ids: vec![ClassId::new(0)?, ClassId::new(1)?],
        samples,
        ..Default::default()
    };
    let mut model = crate::model::tiny_classifier()?;
    model.set_param("batch_size", &serde_json::json!(2))?;
    let out = dir.join("ckpt-out");
    let param = dl_train::TrainParam {
        num_epochs: 1,
        output_dir: out.clone(),
        display: false,
        serialization_strategies: vec![],
        ..Default::default()
    };
    dl_train::train_dl_model(&ds, &mut model, &param, dl_train::StartEpoch::Fresh)?;
    std::fs::read(dl_train::TrainFiles::new(&out).checkpoint()).map_err(io)
}

/// Tokens of the text formats that parsers treat specially.
const TOKENS: &[&[u8]] = &[
    b"-1",
    b"0",
    b"1e309",
    b"-1e309",
    b"NaN",
    b"null",
    b"true",
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"18446744073709551616",
    b"4294967296",
    b"65536",
    b"-0",
    b"0.5",
    b"<",
    b">",
    b"</",
    b"&amp;",
    b"\n",
    b" ",
    b"\t",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\x00",
];

/// One mutated input: 1…4 mutations of `seed`; for a container, mostly of its payload with the length
/// and checksum recomputed.
pub fn mutate(rng: &mut Rng, seed: &[u8], container: Option<dl_io::Header>) -> Vec<u8> {
    // Inside a container: its payload, re-encoded with the seed's own format version.
    let inside = container.filter(|_| rng.below(4) != 0).and_then(|h| {
        dl_io::decode(h, seed, "seed").ok().map(|(version, p)| (dl_io::Header { version, ..h }, p.to_vec()))
    });
    let (inside, mut b) = match inside {
        Some((h, p)) => (Some(h), p),
        None => (None, seed.to_vec()),
    };
    let byte = |rng: &mut Rng| -> u8 { rng.next_u64() as u8 };
    for _ in 0..1 + rng.below(4) {
        let len = b.len() as u64;
        // Half of the positions in the first 2 KiB: headers, descriptions, lengths.
        let at = |rng: &mut Rng| -> usize {
            if len == 0 {
                0
            } else if rng.below(2) == 0 {
                rng.below(len.min(2048)) as usize
            } else {
                rng.below(len) as usize
            }
        };
        match rng.below(8) {
            0 if len > 0 => {
                let p = at(rng);
                let bit = 1u8 << rng.below(8);
                b[p] ^= bit;
            }
            1 if len > 0 => {
                let p = at(rng);
                b[p] = byte(rng);
            }
            2 => {
                let p = at(rng);
                let v = byte(rng);
                b.insert(p.min(b.len()), v);
            }
            3 if len > 0 => {
                let p = at(rng);
                let n = 1 + rng.below(16) as usize;
                b.drain(p..(p + n).min(b.len()));
            }
            4 if len > 0 => b.truncate(at(rng)),
            5 => {
                let t = TOKENS[rng.below(TOKENS.len() as u64) as usize];
                let p = at(rng).min(b.len());
                b.splice(p..p, t.iter().copied());
            }
            6 if len > 1 => {
                // Copy a range elsewhere (repeats structure: nested brackets, duplicated records).
                let (p, q) = (at(rng), at(rng));
                let n = (1 + rng.below(64) as usize).min(b.len() - p);
                let chunk: Vec<u8> = b[p..p + n].to_vec();
                b.splice(q.min(b.len())..q.min(b.len()), chunk);
            }
            7 if len > 0 => {
                // An extreme number: a run of nines inserted (into a number, it multiplies it).
                let p = at(rng);
                b.splice(p..p, std::iter::repeat_n(b'9', 1 + rng.below(24) as usize));
            }
            _ => {}
        }
    }
    match inside {
        Some(h) => dl_io::encode(h, &b),
        None => b,
    }
}

/// What [`fuzz`] found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Target name.
    pub target: &'static str,
    /// Cases run.
    pub cases: u64,
    /// Cases the parser accepted.
    pub accepted: u64,
    /// Wall seconds.
    pub seconds: f64,
    /// Panicking inputs, saved here.
    pub crashes: Vec<PathBuf>,
}

/// One fuzzing thread's outcome: accepted cases, and each panicking input with its message.
type ThreadResult = (u64, Vec<(Vec<u8>, String)>);

/// Runs `cases` seeded mutations of `target` on `threads` threads; each panicking input is saved as
/// `crash_dir/TARGET/crash-HASH.bin` (with the panic message in `.txt`).
///
/// # Errors
/// When the target cannot be set up or a crash cannot be saved.
pub fn fuzz(target: &str, cases: u64, seed: u64, threads: usize, crash_dir: &Path) -> crate::Result<Report> {
    let threads = threads.max(1);
    let targets: Vec<Target> = (0..threads).map(|_| Target::new(target)).collect::<crate::Result<_>>()?;
    let name = targets[0].name;
    // Panics of the fuzzing threads are recorded, not printed; other threads (a test harness running
    // other tests) keep the previous hook.
    let previous: std::sync::Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync> =
        std::sync::Arc::from(std::panic::take_hook());
    let chained = std::sync::Arc::clone(&previous);
    std::panic::set_hook(Box::new(move |info| {
        if FUZZING.get() {
            LAST_PANIC.with(|l| *l.borrow_mut() = info.to_string());
        } else {
            chained(info);
        }
    }));
    let start = std::time::Instant::now();
    let results: Vec<std::thread::Result<ThreadResult>> = std::thread::scope(|scope| {
        let handles: Vec<_> = targets
            .iter()
            .enumerate()
            .map(|(t, tgt)| {
                scope.spawn(move || {
                    FUZZING.set(true);
                    let (mut accepted, mut crashes) = (0u64, Vec::new());
                    let mut case = t as u64;
                    while case < cases {
                        let input = tgt.case(seed, case);
                        match std::panic::catch_unwind(AssertUnwindSafe(|| tgt.run(&input))) {
                            Ok(Ok(())) => accepted += 1,
                            Ok(Err(_)) => {}
                            Err(_) => crashes.push((input, LAST_PANIC.with(|l| l.borrow().clone()))),
                        }
                        case += threads as u64;
                    }
                    (accepted, crashes)
                })
            })
            .collect();
        handles.into_iter().map(std::thread::ScopedJoinHandle::join).collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let _ = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| previous(info)));
    let results: Vec<ThreadResult> = results
        .into_iter()
        .collect::<std::thread::Result<_>>()
        .map_err(|_| io("a fuzzing thread panicked outside a case (a harness bug)"))?;
    let mut saved = Vec::new();
    for (input, message) in results.iter().flat_map(|r| &r.1) {
        let dir = crash_dir.join(name);
        std::fs::create_dir_all(&dir).map_err(io)?;
        let hash = input
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        let path = dir.join(format!("crash-{hash:016x}.bin"));
        dl_io::write_bytes_atomic(&path, input)?;
        dl_io::write_bytes_atomic(&path.with_extension("txt"), message.as_bytes())?;
        saved.push(path);
    }
    Ok(Report { target: name, cases, accepted: results.iter().map(|r| r.0).sum(), seconds, crashes: saved })
}

thread_local! {
    static LAST_PANIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    static FUZZING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
