//! Decoded images in host memory: planar f32 pixels (channel-major, HALCON's layout), and label images.

use crate::{Error, Result};
use std::path::Path;

/// An image in host memory: `channels` planes of `height` × `width` f32 values, plane after plane.
/// `bit_depth` records the source (8 or 16 bits), which the `none` normalisation needs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostImage {
    /// Width in pixels (columns).
    pub width: usize,
    /// Height in pixels (rows).
    pub height: usize,
    /// Number of channels (1 gray, 3 RGB).
    pub channels: usize,
    /// Bits per channel of the source (8 or 16; 32 for float images made in memory).
    pub bit_depth: u8,
    /// Pixel values, `data[c * height * width + r * width + col]`.
    pub data: Vec<f32>,
}

/// The most memory one image's decoder may allocate (512 MiB: a 16-bit 16 384 × 16 384 gray image).
/// A file whose header claims more (a decompression bomb, a corrupt size) is an error.
pub const MAX_IMAGE_DECODE_BYTES: u64 = 512 << 20;

fn image_limits() -> image::Limits {
    let mut l = image::Limits::default();
    l.max_alloc = Some(MAX_IMAGE_DECODE_BYTES);
    l.max_image_width = Some(1 << 17);
    l.max_image_height = Some(1 << 17);
    l
}

impl HostImage {
    /// An image filled with `value`.
    pub fn filled(width: usize, height: usize, channels: usize, value: f32) -> Self {
        Self { width, height, channels, bit_depth: 32, data: vec![value; width * height * channels] }
    }

    /// The value at channel `c`, row `r`, column `col`.
    ///
    /// # Panics
    /// When out of range.
    pub fn get(&self, c: usize, r: usize, col: usize) -> f32 {
        self.data[(c * self.height + r) * self.width + col]
    }

    /// The image as 8-bit RGB for display: gray replicated, 16-bit scaled by 1/257, values clamped to
    /// 0 … 255 (images of two or more than three channels show their first channel).
    pub fn to_rgb8(&self) -> image::RgbImage {
        let n = self.width * self.height;
        let scale = if self.bit_depth == 16 { 1.0 / 257.0 } else { 1.0 };
        let pick = |c: usize| if self.channels == 3 { c } else { 0 };
        let mut out = image::RgbImage::new(self.width as u32, self.height as u32);
        for (i, px) in out.pixels_mut().enumerate() {
            *px = image::Rgb(std::array::from_fn(|c| {
                (self.data.get(pick(c) * n + i).copied().unwrap_or(0.0) * scale).clamp(0.0, 255.0).round()
                    as u8
            }));
        }
        out
    }

    /// One channel plane.
    pub fn plane(&self, c: usize) -> &[f32] {
        let n = self.width * self.height;
        &self.data[c * n..(c + 1) * n]
    }

    /// Decodes an image file (within [`MAX_IMAGE_DECODE_BYTES`](crate::MAX_IMAGE_DECODE_BYTES): a header that claims more is refused
    /// before anything is allocated). 8-bit and 16-bit gray stay one channel; RGB stays three; RGBA and gray with
    /// alpha drop the alpha channel (dlkit models take no transparency); 16-bit values are kept as
    /// 0 … 65535, 8-bit as 0 … 255.
    ///
    /// # Errors
    /// [`Error::Io`] for a missing file, [`Error::Image`] for a corrupt one, [`Error::PixelType`] for
    /// float or other pixel types — each naming the file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(Error::io("reading image", path))?;
        let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(Error::io("reading image", path))?;
        reader.limits(image_limits());
        let img = reader.decode().map_err(|source| Error::Image { path: path.to_owned(), source })?;
        Self::from_dynamic(img, path)
    }

    /// Converts a decoded `image` crate image; `path` names it in errors.
    ///
    /// # Errors
    /// [`Error::PixelType`] for float or unknown pixel types.
    pub fn from_dynamic(img: image::DynamicImage, path: &Path) -> Result<Self> {
        use image::DynamicImage as D;
        let (width, height) = (img.width() as usize, img.height() as usize);
        let planar = |channels: usize, bit_depth: u8, interleaved: Vec<f32>, keep: usize| {
            let n = width * height;
            let mut data = vec![0f32; n * keep];
            for (i, px) in interleaved.chunks_exact(channels).enumerate() {
                for c in 0..keep {
                    data[c * n + i] = px[c];
                }
            }
            Self { width, height, channels: keep, bit_depth, data }
        };
        let f = |v: Vec<u8>| v.into_iter().map(f32::from).collect::<Vec<_>>();
        let g = |v: Vec<u16>| v.into_iter().map(f32::from).collect::<Vec<_>>();
        Ok(match img {
            D::ImageLuma8(b) => planar(1, 8, f(b.into_raw()), 1),
            D::ImageLumaA8(b) => planar(2, 8, f(b.into_raw()), 1),
            D::ImageRgb8(b) => planar(3, 8, f(b.into_raw()), 3),
            D::ImageRgba8(b) => planar(4, 8, f(b.into_raw()), 3),
            D::ImageLuma16(b) => planar(1, 16, g(b.into_raw()), 1),
            D::ImageLumaA16(b) => planar(2, 16, g(b.into_raw()), 1),
            D::ImageRgb16(b) => planar(3, 16, g(b.into_raw()), 3),
            D::ImageRgba16(b) => planar(4, 16, g(b.into_raw()), 3),
            other => {
                return Err(Error::PixelType { path: path.to_owned(), kind: format!("{:?}", other.color()) });
            }
        })
    }
}

/// An image domain (region of interest): the pixels of rows `row1 ..= row2` and columns
/// `col1 ..= col2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Domain {
    /// First row.
    pub row1: usize,
    /// First column.
    pub col1: usize,
    /// Last row (inclusive).
    pub row2: usize,
    /// Last column (inclusive).
    pub col2: usize,
}

/// A label image: one integer per pixel (a class id for segmentation, 0/1 for anomaly masks).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LabelImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Values, row-major.
    pub data: Vec<u16>,
}

impl LabelImage {
    /// Reads a single-channel 8- or 16-bit label image. A palette PNG (the VOC / labelme layout:
    /// class ids as palette indices, 255 = ignore) is read by its indices, not its colours; other colour
    /// label images are refused.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Image`], or [`Error::PixelType`] for a multi-channel image — naming the file.
    pub fn read(path: &Path) -> Result<Self> {
        if let Some(indexed) = read_palette_png(path)? {
            return Ok(indexed);
        }
        let img = HostImage::read(path)?;
        if img.channels != 1 {
            return Err(Error::PixelType {
                path: path.to_owned(),
                kind: format!("{} channels (a label image needs one)", img.channels),
            });
        }
        Ok(Self { width: img.width, height: img.height, data: img.data.iter().map(|&v| v as u16).collect() })
    }

    /// The class index of every pixel through `table` (see [`class_index_table`]).
    pub fn class_indices(&self, table: &[i64]) -> Vec<i64> {
        self.data.iter().map(|&v| table[usize::from(v)]).collect()
    }

    /// The distinct values present, sorted.
    pub fn values(&self) -> Vec<u16> {
        let mut seen = vec![false; 65536];
        for &v in &self.data {
            seen[usize::from(v)] = true;
        }
        (0..65536).filter(|&v| seen[v]).map(|v| v as u16).collect()
    }
}

/// The palette indices of an indexed PNG; `None` for any other file (read as an image instead).
fn read_palette_png(path: &Path) -> Result<Option<LabelImage>> {
    let bytes = std::fs::read(path).map_err(Error::io("reading image", path))?;
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(None);
    }
    let corrupt = |e: png::DecodingError| Error::Image {
        path: path.to_owned(),
        source: image::ImageError::Decoding(image::error::DecodingError::new(
            image::error::ImageFormatHint::Exact(image::ImageFormat::Png),
            e,
        )),
    };
    let mut decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(corrupt)?;
    let info = reader.info();
    if info.color_type != png::ColorType::Indexed {
        return Ok(None);
    }
    let (width, height, depth) = (info.width as usize, info.height as usize, info.bit_depth as usize);
    let mut buf = vec![0u8; reader.output_buffer_size().unwrap_or(0)];
    let frame = reader.next_frame(&mut buf).map_err(corrupt)?;
    let line = frame.line_size;
    let per_byte = 8 / depth.clamp(1, 8);
    let mask = ((1u16 << depth.min(8)) - 1) as u8;
    let mut data = Vec::with_capacity(width * height);
    for row in buf.chunks(line).take(height) {
        for c in 0..width {
            let byte = row[c / per_byte];
            let shift = 8 - depth.min(8) * (c % per_byte + 1);
            data.push(u16::from((byte >> shift) & mask));
        }
    }
    Ok(Some(LabelImage { width, height, data }))
}

/// A lookup table from label value (0 … 65535) to class index (position in `class_ids`), −1 for values
/// that are not class ids: one indexed load per pixel instead of a search.
pub fn class_index_table(class_ids: &[dl_core::ClassId]) -> Vec<i64> {
    let mut table = vec![-1i64; 65536];
    for (i, c) in class_ids.iter().enumerate() {
        table[usize::from(c.get())] = i as i64;
    }
    table
}

/// Writes `image` as PNG at `path` atomically: encoded in memory, written to a temporary file beside
/// `path` (named as [`dl_io::is_temporary_name`] knows), synced and renamed onto it. A process killed
/// meanwhile leaves the old file or none, never a torn PNG under the final name.
///
/// # Errors
/// [`Error::Image`] when the image cannot be encoded; [`Error::Io`] naming the file.
pub fn write_png_atomic(path: &Path, image: &::image::DynamicImage) -> Result<()> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut bytes), ::image::ImageFormat::Png)
        .map_err(|source| Error::Image { path: path.to_owned(), source })?;
    dl_io::write_bytes_atomic(path, &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn png_writes_replace_the_file_whole_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        for v in [10u8, 200] {
            let img = ::image::GrayImage::from_raw(3, 2, vec![v; 6]).unwrap();
            write_png_atomic(&path, &::image::DynamicImage::ImageLuma8(img)).unwrap();
            let back = HostImage::read(&path).unwrap();
            assert_eq!((back.width, back.height, back.data[5]), (3, 2, f32::from(v)));
        }
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.png")]);
        let err = write_png_atomic(&dir.path().join("no/a.png"), &::image::DynamicImage::new_luma8(1, 1));
        assert!(err.unwrap_err().to_string().contains("no/a.png"));
    }

    /// A 4-bit palette PNG (VOC's layout: the palette maps ids to colours) is read by its indices, not
    /// its colours; 8-bit palette indices keep 255.
    #[test]
    fn palette_label_images_are_read_by_index() {
        let tmp = tempfile::tempdir().unwrap();
        for (depth, values) in [
            (png::BitDepth::Four, vec![0u8, 1, 15, 2, 3, 0]),
            (png::BitDepth::Eight, vec![0, 1, 255, 2, 3, 0]),
        ] {
            let path = tmp.path().join(format!("p{depth:?}.png"));
            let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            let mut enc = png::Encoder::new(file, 3, 2);
            enc.set_color(png::ColorType::Indexed);
            enc.set_depth(depth);
            let n = 1usize << (depth as u8).min(8);
            enc.set_palette((0..n).flat_map(|i| [(i * 7) as u8, 255 - i as u8, 9]).collect::<Vec<u8>>());
            let mut w = enc.write_header().unwrap();
            let packed: Vec<u8> = if depth == png::BitDepth::Four {
                values.chunks(3).flat_map(|row| [row[0] << 4 | row[1], row[2] << 4]).collect()
            } else {
                values.clone()
            };
            w.write_image_data(&packed).unwrap();
            w.finish().unwrap();
            let l = LabelImage::read(&path).unwrap();
            assert_eq!((l.width, l.height), (3, 2));
            assert_eq!(l.data, values.iter().map(|&v| u16::from(v)).collect::<Vec<_>>(), "{depth:?}");
        }
    }

    use super::*;

    #[test]
    fn rgba_drops_alpha_and_16bit_keeps_range() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        image::RgbaImage::from_raw(2, 1, vec![1, 2, 3, 255, 4, 5, 6, 0]).unwrap().save(&p).unwrap();
        let img = HostImage::read(&p).unwrap();
        assert_eq!((img.channels, img.bit_depth), (3, 8));
        assert_eq!(img.data, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let p16 = dir.path().join("b.png");
        image::ImageBuffer::<image::Luma<u16>, _>::from_raw(1, 1, vec![60000u16])
            .unwrap()
            .save(&p16)
            .unwrap();
        let img = HostImage::read(&p16).unwrap();
        assert_eq!((img.channels, img.bit_depth, img.data[0]), (1, 16, 60000.0));
    }

    #[test]
    fn corrupt_and_missing_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("broken.png");
        std::fs::write(&p, b"\x89PNG\r\n\x1a\nnot really").unwrap();
        assert!(HostImage::read(&p).unwrap_err().to_string().contains("broken.png"));
        assert!(HostImage::read(&dir.path().join("gone.png")).unwrap_err().to_string().contains("gone.png"));
    }
}
