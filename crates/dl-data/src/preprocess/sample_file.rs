//! Sample files (`write_dl_samples` / `read_dl_samples`): a dl-io container (magic `DLSAMPLE`, format
//! version, CRC-32) holding, per sample, a bincode 2 record of its annotations followed by the image's
//! f32 pixels as raw little-endian bytes, so reading is a copy, not a per-value decode. Lossless.

use crate::{AnomalyLabel, Boxes, DLSample, Domain, Error, HostImage, LabelImage, Result};
use bincode::{Decode, Encode};
use dl_core::{ClassId, ImageId, Rect1, Rect2};
use std::path::Path;

/// The sample-file format version this build writes (and the newest it reads).
pub const SAMPLE_FILE_VERSION: u32 = 1;
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

/// Encodes samples into sample-file bytes (the same bytes [`write_dl_samples`] writes).
pub fn encode_samples(samples: &[DLSample]) -> Vec<u8> {
    let config = bincode::config::standard();
    let mut payload = Vec::with_capacity(samples.iter().map(|s| s.image.data.len() * 4 + 256).sum());
    payload.extend_from_slice(&(samples.len() as u64).to_le_bytes());
    for s in samples {
        let meta = bincode::encode_to_vec(Record::of(s), config).expect("encoding into memory cannot fail");
        payload.extend_from_slice(&(meta.len() as u64).to_le_bytes());
        payload.extend_from_slice(&meta);
        payload.extend_from_slice(&(s.image.data.len() as u64).to_le_bytes());
        for v in &s.image.data {
            payload.extend_from_slice(&v.to_le_bytes());
        }
    }
    dl_io::encode(SAMPLE_FILE_HEADER, &payload)
}

/// Decodes sample-file bytes; `what` names the file in errors.
///
/// # Errors
/// dl-io errors for a wrong magic, newer version, truncation or corruption; [`Error::Annotation`] for a
/// payload that does not decode.
pub fn decode_samples(bytes: &[u8], what: &str) -> Result<Vec<DLSample>> {
    let (_, payload) = dl_io::decode(SAMPLE_FILE_HEADER, bytes, what)?;
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
        let n = usize::try_from(read_u64(take(8)?)).map_err(|_| corrupt("pixel count"))?;
        let expected = (record.width as usize)
            .saturating_mul(record.height as usize)
            .saturating_mul(record.channels as usize);
        if n != expected {
            return Err(corrupt("pixel count does not match the image size"));
        }
        let raw = take(n.checked_mul(4).ok_or_else(|| corrupt("pixel count"))?)?;
        let data: Vec<f32> =
            raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
        out.push(record.into_sample(data, what)?);
    }
    if pos != payload.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(out)
}

/// Writes samples to a sample file, atomically.
///
/// # Errors
/// [`Error::File`] naming the file.
pub fn write_dl_samples(path: &Path, samples: &[DLSample]) -> Result<()> {
    dl_io::write_bytes_atomic(path, &encode_samples(samples))?;
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

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode_samples(&[sample(1)]);
        for n in 0..bytes.len() {
            assert!(decode_samples(&bytes[..n], "x").is_err(), "{n}");
        }
    }
}
