//! Sample files (`write_dl_samples` / `read_dl_samples`): a dl-io container (magic `DLSAMPLE`, format
//! version, CRC-32) holding, per sample, a bincode 2 record of its annotations followed by the image's
//! pixels. Version 2 stores the pixels as [`SampleStorage`] chooses: raw little-endian f32 (a copy on
//! reading), compact (lossless: one plane when every channel is the same, and 8-bit indices into a
//! table of the values when an image has at most 256 distinct ones, else f32), or f16 (half the size,
//! lossy: relative error ≤ 2⁻¹¹). Version 1 files (raw f32) are still read.

use crate::{AnomalyLabel, Boxes, DLSample, Domain, Error, HostImage, LabelImage, Result};
use bincode::{Decode, Encode};
use dl_core::{ClassId, ImageId, Rect1, Rect2};
use std::path::Path;

/// The sample-file format version this build writes (and the newest it reads).
pub const SAMPLE_FILE_VERSION: u32 = 2;

/// How a sample file stores the image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleStorage {
    /// Raw f32, 4 bytes a value: reading is a copy.
    Float32,
    /// Lossless and smaller where the values allow: one plane for images whose channels are equal (a
    /// gray image as 3 channels), 1 byte a value (an index into a table of the values) when an image
    /// has at most 256 distinct values (an 8-bit image at its own size, normalised); f32 otherwise.
    #[default]
    Compact,
    /// IEEE half precision, 2 bytes a value (with one plane for equal channels): lossy, relative
    /// error at most 2⁻¹¹ (values beyond ±65 504 become infinite).
    Float16,
}

/// Pixel encodings inside a version-2 sample file.
const PIXELS_F32: u8 = 0;
const PIXELS_F16: u8 = 1;
const PIXELS_U8: u8 = 2;
/// The container header of sample files this build writes.
pub const SAMPLE_FILE_HEADER: dl_io::Header =
    dl_io::Header { magic: *b"DLSAMPLE", version: SAMPLE_FILE_VERSION };

#[derive(Encode, Decode)]
struct Record {
    image_id: u64,
    width: u64,
    height: u64,
    channels: u64,
    bit_depth: u8,
    image_label_id: Option<Vec<u16>>,
    bbox_label_id: Option<Vec<u16>>,
    /// 1: rectangle1 (row1, col1, row2, col2, 0), 2: rectangle2 (row, col, phi, length1, length2).
    boxes: Option<(u8, Vec<[f64; 5]>)>,
    bbox_iscrowd: Option<Vec<bool>>,
    segmentation_image: Option<(u64, u64, Vec<u16>)>,
    weight_image: Option<(u64, u64, Vec<f32>)>,
    domain: Option<[u64; 4]>,
    anomaly_label: Option<bool>,
    anomaly_label_id: Option<u8>,
    anomaly_ground_truth: Option<(u64, u64, Vec<u16>)>,
}

fn ids(v: &Option<Vec<ClassId>>) -> Option<Vec<u16>> {
    v.as_ref().map(|v| v.iter().map(|c| c.get()).collect())
}

fn label(l: &Option<LabelImage>) -> Option<(u64, u64, Vec<u16>)> {
    l.as_ref().map(|l| (l.width as u64, l.height as u64, l.data.clone()))
}

impl Record {
    fn of(s: &DLSample) -> Self {
        Record {
            image_id: s.image_id.0,
            width: s.image.width as u64,
            height: s.image.height as u64,
            channels: s.image.channels as u64,
            bit_depth: s.image.bit_depth,
            image_label_id: ids(&s.image_label_id),
            bbox_label_id: ids(&s.bbox_label_id),
            boxes: s.boxes.as_ref().map(|b| match b {
                Boxes::Rectangle1(v) => {
                    (1, v.iter().map(|b| [b.row1(), b.col1(), b.row2(), b.col2(), 0.0]).collect())
                }
                Boxes::Rectangle2(v) => {
                    (2, v.iter().map(|b| [b.row(), b.col(), b.phi(), b.length1(), b.length2()]).collect())
                }
            }),
            bbox_iscrowd: s.bbox_iscrowd.clone(),
            segmentation_image: label(&s.segmentation_image),
            weight_image: s.weight_image.as_ref().map(|w| (w.width as u64, w.height as u64, w.data.clone())),
            domain: s.domain.map(|d| [d.row1 as u64, d.col1 as u64, d.row2 as u64, d.col2 as u64]),
            anomaly_label: s.anomaly_label.map(|l| l == AnomalyLabel::Nok),
            anomaly_label_id: s.anomaly_label_id,
            anomaly_ground_truth: label(&s.anomaly_ground_truth),
        }
    }

    fn into_sample(self, data: Vec<f32>, what: &str) -> Result<DLSample> {
        let corrupt = |m: String| Error::Annotation { path: what.into(), message: m };
        let to_ids = |v: Option<Vec<u16>>| -> Result<Option<Vec<ClassId>>> {
            v.map(|v| {
                v.into_iter()
                    .map(|c| ClassId::new(i64::from(c)).map_err(|e| corrupt(e.to_string())))
                    .collect()
            })
            .transpose()
        };
        let to_label = |l: Option<(u64, u64, Vec<u16>)>| -> Result<Option<LabelImage>> {
            l.map(|(w, h, data)| {
                if w.checked_mul(h) != Some(data.len() as u64) {
                    return Err(corrupt(format!("label image {w}×{h} has {} values", data.len())));
                }
                Ok(LabelImage { width: w as usize, height: h as usize, data })
            })
            .transpose()
        };
        let image_id = ImageId(self.image_id);
        let boxes = match self.boxes {
            None => None,
            Some((1, v)) => Some(Boxes::Rectangle1(
                v.iter()
                    .map(|b| Rect1::new(b[0], b[1], b[2], b[3]))
                    .collect::<dl_core::Result<_>>()
                    .map_err(|e| corrupt(e.to_string()))?,
            )),
            Some((2, v)) => Some(Boxes::Rectangle2(
                v.iter()
                    .map(|b| Rect2::new(b[0], b[1], b[2], b[3], b[4]))
                    .collect::<dl_core::Result<_>>()
                    .map_err(|e| corrupt(e.to_string()))?,
            )),
            Some((k, _)) => return Err(corrupt(format!("unknown box kind {k}"))),
        };
        let weight_image = match self.weight_image {
            None => None,
            Some((w, h, data)) if w.checked_mul(h) == Some(data.len() as u64) => {
                Some(HostImage { width: w as usize, height: h as usize, channels: 1, bit_depth: 32, data })
            }
            Some((w, h, data)) => {
                return Err(corrupt(format!("weight image {w}×{h} has {} values", data.len())));
            }
        };
        Ok(DLSample {
            image_id,
            image: HostImage {
                width: self.width as usize,
                height: self.height as usize,
                channels: self.channels as usize,
                bit_depth: self.bit_depth,
                data,
            },
            image_label_id: to_ids(self.image_label_id)?,
            bbox_label_id: to_ids(self.bbox_label_id)?,
            boxes,
            bbox_iscrowd: self.bbox_iscrowd,
            segmentation_image: to_label(self.segmentation_image)?,
            weight_image,
            domain: self.domain.map(|d| Domain {
                row1: d[0] as usize,
                col1: d[1] as usize,
                row2: d[2] as usize,
                col2: d[3] as usize,
            }),
            anomaly_label: self
                .anomaly_label
                .map(|nok| if nok { AnomalyLabel::Nok } else { AnomalyLabel::Ok }),
            anomaly_label_id: self.anomaly_label_id,
            anomaly_ground_truth: to_label(self.anomaly_ground_truth)?,
        })
    }
}

/// The decoding configuration of records: bincode's standard encoding with a limit on what a record's
/// declared lengths may claim (1 GiB), so that a corrupt length fails instead of allocating without bound.
const RECORD_LIMIT: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<{ 1 << 30 }>,
> = bincode::config::standard().with_limit::<{ 1 << 30 }>();

/// Encodes samples into sample-file bytes with f32 pixels (the same bytes [`write_dl_samples`] writes).
pub fn encode_samples(samples: &[DLSample]) -> Vec<u8> {
    encode_samples_with(samples, SampleStorage::Float32)
}

/// Encodes samples into sample-file bytes, the pixels stored as `storage` says.
pub fn encode_samples_with(samples: &[DLSample], storage: SampleStorage) -> Vec<u8> {
    let config = bincode::config::standard();
    let mut payload = Vec::with_capacity(samples.iter().map(|s| s.image.data.len() * 4 + 256).sum());
    payload.extend_from_slice(&(samples.len() as u64).to_le_bytes());
    for s in samples {
        let meta = bincode::encode_to_vec(Record::of(s), config).expect("encoding into memory cannot fail");
        payload.extend_from_slice(&(meta.len() as u64).to_le_bytes());
        payload.extend_from_slice(&meta);
        encode_pixels(&s.image, storage, &mut payload);
    }
    dl_io::encode(SAMPLE_FILE_HEADER, &payload)
}

/// The pixels of `image`: encoding byte, shared-plane flag, value count, values.
fn encode_pixels(image: &HostImage, storage: SampleStorage, out: &mut Vec<u8>) {
    let plane = image.width * image.height;
    let shared = storage != SampleStorage::Float32
        && image.channels > 1
        && plane > 0
        && (1..image.channels).all(|c| {
            image.data[c * plane..(c + 1) * plane]
                .iter()
                .zip(&image.data[..plane])
                .all(|(a, b)| a.to_bits() == b.to_bits())
        });
    let values = if shared { &image.data[..plane] } else { &image.data[..] };
    let table = if storage == SampleStorage::Compact { value_table(values) } else { None };
    let encoding = match (storage, &table) {
        (SampleStorage::Float16, _) => PIXELS_F16,
        (_, Some(_)) => PIXELS_U8,
        _ => PIXELS_F32,
    };
    out.push(encoding);
    out.push(u8::from(shared));
    out.extend_from_slice(&(values.len() as u64).to_le_bytes());
    match (encoding, table) {
        (PIXELS_U8, Some(table)) => {
            out.extend_from_slice(&(table.len() as u16).to_le_bytes());
            for &bits in &table {
                out.extend_from_slice(&bits.to_le_bytes());
            }
            out.extend(values.iter().map(|v| table.binary_search(&v.to_bits()).map_or(0, |i| i as u8)));
        }
        (PIXELS_F16, _) => {
            for &v in values {
                out.extend_from_slice(&half::f16::from_f32(v).to_le_bytes());
            }
        }
        _ => {
            for &v in values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
}

/// The distinct values (as f32 bit patterns, sorted) when there are at most 256 and the table with
/// one byte a value is smaller than f32 (a table of k values costs 4k + 2 bytes).
fn value_table(values: &[f32]) -> Option<Vec<u32>> {
    let mut table: Vec<u32> = Vec::with_capacity(256);
    for v in values {
        let bits = v.to_bits();
        if let Err(at) = table.binary_search(&bits) {
            if table.len() == 256 {
                return None;
            }
            table.insert(at, bits);
        }
    }
    (4 * table.len() + 2 + values.len() < 4 * values.len()).then_some(table)
}

/// Decodes sample-file bytes; `what` names the file in errors.
///
/// # Errors
/// dl-io errors for a wrong magic, newer version, truncation or corruption; [`Error::Annotation`] for a
/// payload that does not decode.
pub fn decode_samples(bytes: &[u8], what: &str) -> Result<Vec<DLSample>> {
    let (version, payload) = dl_io::decode(SAMPLE_FILE_HEADER, bytes, what)?;
    let corrupt =
        |m: &str| Error::Annotation { path: what.into(), message: format!("corrupt sample file: {m}") };
    let mut pos = 0usize;
    let mut take = |n: usize| -> Result<&[u8]> {
        let end =
            pos.checked_add(n).filter(|&e| e <= payload.len()).ok_or_else(|| corrupt("truncated record"))?;
        let out = &payload[pos..end];
        pos = end;
        Ok(out)
    };
    let read_u64 = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    let read_f32 = |b: &[u8]| f32::from_le_bytes(b.try_into().expect("4 bytes"));
    let count = read_u64(take(8)?);
    let mut out = Vec::new();
    for _ in 0..count {
        let meta_len = usize::try_from(read_u64(take(8)?)).map_err(|_| corrupt("record length"))?;
        let meta = take(meta_len)?;
        let (record, used): (Record, usize) =
            bincode::decode_from_slice(meta, RECORD_LIMIT).map_err(|e| corrupt(&e.to_string()))?;
        if used != meta.len() {
            return Err(corrupt("record has trailing bytes"));
        }
        let (encoding, shared) = if version >= 2 {
            let b = take(2)?;
            match (b[0], b[1]) {
                (e @ (PIXELS_F32 | PIXELS_F16 | PIXELS_U8), s @ (0 | 1)) => (e, s == 1),
                _ => return Err(corrupt("unknown pixel encoding")),
            }
        } else {
            (PIXELS_F32, false)
        };
        let n = usize::try_from(read_u64(take(8)?)).map_err(|_| corrupt("pixel count"))?;
        let plane = (record.width as usize).saturating_mul(record.height as usize);
        let channels = record.channels as usize;
        let expected = if shared { plane } else { plane.saturating_mul(channels) };
        if n != expected || (shared && channels < 2) {
            return Err(corrupt("pixel count does not match the image size"));
        }
        let mut data: Vec<f32> = match encoding {
            PIXELS_U8 => {
                let k = usize::from(u16::from_le_bytes(take(2)?.try_into().expect("2 bytes")));
                if !(1..=256).contains(&k) {
                    return Err(corrupt("value table size"));
                }
                let table: Vec<f32> = take(4 * k)?.chunks_exact(4).map(read_f32).collect();
                let codes = take(n)?;
                if codes.iter().any(|&q| usize::from(q) >= k) {
                    return Err(corrupt("value index beyond the table"));
                }
                codes.iter().map(|&q| table[usize::from(q)]).collect()
            }
            PIXELS_F16 => {
                let raw = take(n.checked_mul(2).ok_or_else(|| corrupt("pixel count"))?)?;
                raw.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            _ => {
                let raw = take(n.checked_mul(4).ok_or_else(|| corrupt("pixel count"))?)?;
                raw.chunks_exact(4).map(read_f32).collect()
            }
        };
        if shared {
            data.reserve(plane * (channels - 1));
            for _ in 1..channels {
                data.extend_from_within(..plane);
            }
        }
        out.push(record.into_sample(data, what)?);
    }
    if pos != payload.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(out)
}

/// Writes samples to a sample file (f32 pixels), atomically.
///
/// # Errors
/// [`Error::File`] naming the file.
pub fn write_dl_samples(path: &Path, samples: &[DLSample]) -> Result<()> {
    write_dl_samples_with(path, samples, SampleStorage::Float32)
}

/// Writes samples to a sample file, the pixels stored as `storage` says, atomically.
///
/// # Errors
/// [`Error::File`] naming the file.
pub fn write_dl_samples_with(path: &Path, samples: &[DLSample], storage: SampleStorage) -> Result<()> {
    dl_io::write_bytes_atomic(path, &encode_samples_with(samples, storage))?;
    Ok(())
}

/// Reads the samples of a sample file.
///
/// # Errors
/// [`Error::Io`] naming a missing file; format errors as [`decode_samples`].
pub fn read_dl_samples(path: &Path) -> Result<Vec<DLSample>> {
    let bytes = std::fs::read(path).map_err(Error::io("reading sample file", path))?;
    decode_samples(&bytes, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(seed: u64) -> DLSample {
        let mut rng = dl_core::Rng::new(seed);
        let (w, h) = (1 + rng.below(9) as usize, 1 + rng.below(9) as usize);
        let data = (0..w * h * 3).map(|_| f32::from_bits(rng.next_u64() as u32 & 0x7f7f_ffff)).collect();
        let mut s = DLSample::from_image(
            ImageId(rng.next_u64()),
            HostImage { width: w, height: h, channels: 3, bit_depth: 32, data },
        );
        s.bbox_label_id = Some(vec![ClassId::new(3).unwrap()]);
        s.boxes = Some(Boxes::Rectangle2(vec![Rect2::new(1.0, 2.0, 0.3, 4.0, 1.5).unwrap()]));
        s.bbox_iscrowd = Some(vec![true]);
        s.segmentation_image =
            Some(LabelImage { width: w, height: h, data: (0..w * h).map(|i| i as u16).collect() });
        s.weight_image =
            Some(HostImage { width: w, height: h, channels: 1, bit_depth: 32, data: vec![0.25; w * h] });
        s.anomaly_label = Some(AnomalyLabel::Nok);
        s.anomaly_label_id = Some(1);
        s.domain = Some(Domain { row1: 0, col1: 0, row2: h - 1, col2: w - 1 });
        s
    }

    proptest! {
        #[test]
        fn round_trip_is_bit_exact(seeds in proptest::collection::vec(any::<u64>(), 0..4)) {
            let samples: Vec<DLSample> = seeds.into_iter().map(sample).collect();
            let back = decode_samples(&encode_samples(&samples), "mem").unwrap();
            prop_assert_eq!(back.len(), samples.len());
            for (a, b) in back.iter().zip(&samples) {
                prop_assert!(a.image.data.iter().zip(&b.image.data).all(|(x, y)| x.to_bits() == y.to_bits()));
                prop_assert_eq!(a, b);
            }
        }

        #[test]
        fn arbitrary_bytes_are_errors(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode_samples(&bytes, "mem");
        }
    }

    /// The model file's mutation test for sample files: 10 000 seeded mutations of a file of three
    /// fully annotated samples — truncated, bytes overwritten (the checksum catches them), or bytes
    /// overwritten, inserted or deleted inside the payload with the checksum recomputed, so that the
    /// record parser behind it sees them. Each is an error or samples that are consistent and round-trip;
    /// never a panic. The tally shows that the record parser was reached.
    #[test]
    fn mutated_sample_files_are_errors_or_valid() {
        let original = [sample(1), sample(2), sample(3)];
        let bytes = encode_samples(&original);
        let (_, payload) = dl_io::decode(SAMPLE_FILE_HEADER, &bytes, "x").unwrap();
        let payload = payload.to_vec();
        let mut rng = dl_core::Rng::new(7);
        let (mut container_errors, mut record_errors, mut valid) = (0, 0, 0);
        for case in 0..10_000 {
            let mode = case % 5;
            let b = if mode == 0 {
                bytes[..rng.below(bytes.len() as u64) as usize].to_vec()
            } else if mode == 1 {
                let mut b = bytes.clone();
                let p = rng.below(b.len() as u64) as usize;
                b[p] = rng.next_u64() as u8;
                b
            } else {
                let mut p = payload.clone();
                // Mostly the first bytes of each record (lengths, sizes, tags); anywhere otherwise.
                let at = if rng.below(2) == 0 {
                    rng.below(96) as usize
                } else {
                    rng.below(p.len() as u64) as usize
                };
                let at = at.min(p.len() - 1);
                match mode {
                    2 => {
                        for v in &mut p[at..(at + 1 + rng.below(4) as usize).min(payload.len())] {
                            *v = rng.next_u64() as u8;
                        }
                    }
                    3 => p.insert(at, rng.next_u64() as u8),
                    _ => {
                        p.remove(at);
                    }
                }
                dl_io::encode(SAMPLE_FILE_HEADER, &p)
            };
            match decode_samples(&b, "mutated") {
                Err(Error::Annotation { .. }) => record_errors += 1,
                Err(_) => container_errors += 1,
                Ok(samples) => {
                    valid += 1;
                    for s in &samples {
                        let i = &s.image;
                        assert_eq!(i.data.len(), i.width * i.height * i.channels, "case {case}");
                        for l in [&s.segmentation_image, &s.anomaly_ground_truth].into_iter().flatten() {
                            assert_eq!(l.data.len(), l.width * l.height, "case {case}");
                        }
                    }
                    let again = decode_samples(&encode_samples(&samples), "again").unwrap();
                    assert_eq!(again, samples, "case {case}");
                }
            }
        }
        eprintln!("container errors {container_errors}, record errors {record_errors}, valid {valid}");
        // Truncations and unchecked overwrites stop at the container; the recomputed-checksum
        // mutations reach the records, and most of those are errors there.
        assert!(container_errors >= 3_900, "{container_errors}");
        assert!(record_errors >= 3_000, "{record_errors}");
        assert_eq!(container_errors + record_errors + valid, 10_000);
    }

    #[test]
    fn a_huge_declared_length_is_an_error_not_an_allocation() {
        // A record claiming 2^62 label values: the limit refuses it before anything is allocated.
        let mut record = Record::of(&sample(1));
        record.segmentation_image = Some((1, 1, vec![0]));
        let mut meta = bincode::encode_to_vec(&record, bincode::config::standard()).unwrap();
        let needle = bincode::encode_to_vec((1u64, 1u64, vec![0u16]), bincode::config::standard()).unwrap();
        let at = meta.windows(needle.len()).position(|w| w == needle).unwrap();
        // (1, 1, len 1, 0) → (1, 1, len 2^62 as varint u64, …)
        let huge = bincode::encode_to_vec(1u64 << 62, bincode::config::standard()).unwrap();
        meta.splice(at + 2..at + 3, huge);
        let r: std::result::Result<(Record, usize), _> = bincode::decode_from_slice(&meta, RECORD_LIMIT);
        assert!(r.is_err());
    }

    /// Compact storage is lossless: bit-exact round trips of arbitrary values (stored as f32), of
    /// 256-level images (stored as bytes) and of gray images as 3 channels (one plane); f16 stays
    /// within 2⁻¹¹ relative error. The sizes shrink as documented.
    #[test]
    fn compact_storage_is_lossless_and_f16_is_close() {
        let (w, h) = (40usize, 30usize);
        let mut rng = dl_core::Rng::new(3);
        let gray: Vec<f32> = (0..w * h).map(|_| -127.0 + rng.below(256) as f32).collect();
        let image =
            |data: Vec<f32>, channels| HostImage { width: w, height: h, channels, bit_depth: 32, data };
        let levels = DLSample::from_image(ImageId(1), image(gray.repeat(3), 3));
        let scaled: Vec<f32> = gray.iter().map(|v| (v + 127.0) / 255.0).collect();
        let unit = DLSample::from_image(ImageId(2), image(scaled, 1));
        let arbitrary = sample(9);
        let size = |s: &DLSample, st| encode_samples_with(std::slice::from_ref(s), st).len();
        for s in [&levels, &unit, &arbitrary] {
            let back =
                decode_samples(&encode_samples_with(std::slice::from_ref(s), SampleStorage::Compact), "m")
                    .unwrap();
            assert!(back[0].image.data.iter().zip(&s.image.data).all(|(a, b)| a.to_bits() == b.to_bits()));
            assert_eq!(&back[0], s);
            let half =
                decode_samples(&encode_samples_with(std::slice::from_ref(s), SampleStorage::Float16), "m")
                    .unwrap();
            for (a, b) in half[0].image.data.iter().zip(&s.image.data) {
                let tolerance = b.abs() * 2f32.powi(-11) + 6e-8;
                assert!((a - b).abs() <= tolerance || b.abs() > 65_504.0, "{a} vs {b}");
            }
        }
        // 3 600 values (one plane of 1 200), at most 256 distinct: f32 14 400 bytes; compact, one plane
        // of bytes and a table of ≤ 256 values: ≤ 2 226; f16, one plane: 2 400.
        let (f32_size, compact, f16) = (
            size(&levels, SampleStorage::Float32),
            size(&levels, SampleStorage::Compact),
            size(&levels, SampleStorage::Float16),
        );
        assert!(f32_size - compact >= 14_400 - 2_226, "{f32_size} {compact}");
        assert!(f32_size - f16 >= 14_400 - 2_400, "{f32_size} {f16}");
        // One channel scaled into 0 … 1 (no exact affine grid in f32): a table all the same.
        assert!(size(&unit, SampleStorage::Compact) + 2_000 <= size(&unit, SampleStorage::Float32));
        // Arbitrary values: f32 under compact, no larger than f32 storage.
        assert!(size(&arbitrary, SampleStorage::Compact) <= size(&arbitrary, SampleStorage::Float32) + 2);
    }

    /// Version-1 files (raw f32 after each record, no encoding bytes) are still read.
    #[test]
    fn version_1_files_still_read() {
        let s = sample(4);
        let mut payload = 1u64.to_le_bytes().to_vec();
        let meta = bincode::encode_to_vec(Record::of(&s), bincode::config::standard()).unwrap();
        payload.extend_from_slice(&(meta.len() as u64).to_le_bytes());
        payload.extend_from_slice(&meta);
        payload.extend_from_slice(&(s.image.data.len() as u64).to_le_bytes());
        for v in &s.image.data {
            payload.extend_from_slice(&v.to_le_bytes());
        }
        let v1 = dl_io::encode(dl_io::Header { version: 1, ..SAMPLE_FILE_HEADER }, &payload);
        assert_eq!(decode_samples(&v1, "v1").unwrap(), vec![s]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode_samples(&[sample(1)]);
        for n in 0..bytes.len() {
            assert!(decode_samples(&bytes[..n], "x").is_err(), "{n}");
        }
    }
}
