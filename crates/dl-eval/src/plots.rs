//! Plots as PNG (plotters): confusion matrices, PR curves per class, ROC curves, score histograms,
//! result overlays (labelled images, detections, segmentation classes with a legend).
//!
//! Text is drawn with DejaVu Sans (or the TrueType font named by `DLKIT_FONT`), loaded once from the
//! system's font folders. Every plot is written to a temporary file and renamed into place.

use crate::{Error, Result};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

fn ensure_font() -> Result<()> {
    static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os("DLKIT_FONT")
            .map(PathBuf::from)
            .into_iter()
            .chain(FONT_PATHS.iter().map(PathBuf::from))
            .collect();
        let path = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
            format!("no TrueType font found for plot text (looked at {FONT_PATHS:?}); set DLKIT_FONT to a .ttf file")
        })?;
        let bytes: &'static [u8] = Box::leak(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?.into_boxed_slice());
        register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| format!("{}: not a usable TrueType font", path.display()))
    })
    .clone()
    .map_err(Error::Plot)
}

/// Draws into memory, then writes the PNG at `path` atomically (old file or new, never torn).
fn draw_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<BitMapBackend, plotters::coord::Shift>) -> std::result::Result<(), String>,
) -> Result<()> {
    ensure_font()?;
    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    (|| {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(root.clone())?;
        root.present().map_err(|e| e.to_string())
    })()
    .map_err(|e| Error::Plot(format!("{}: {e}", path.display())))?;
    let image =
        image::RgbImage::from_raw(size.0, size.1, rgb).expect("the buffer holds width × height RGB pixels");
    dl_data::write_png_atomic(path, &image::DynamicImage::ImageRgb8(image))
        .map_err(|e| Error::Plot(e.to_string()))
}

/// A confusion matrix (rows = predicted, columns = ground truth) as a heat map with the values written
/// in each cell. `values` is row-major `n × n`; relative matrices are shown as percentages.
///
/// # Errors
/// [`Error::Plot`] naming the file.
pub fn confusion_matrix_png(
    path: &Path,
    values: &[f64],
    class_names: &[String],
    relative: bool,
    title: &str,
) -> Result<()> {
    let n = class_names.len();
    if values.len() != n * n || n == 0 {
        return Err(Error::InvalidInput(format!("{} values for {n} classes", values.len())));
    }
    let side = (120 + 60 * n as u32).clamp(400, 1600);
    let max = values.iter().copied().fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    draw_png(path, (side + 120, side + 80), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(10)
            .x_label_area_size(60)
            .y_label_area_size(110)
            .build_cartesian_2d((0..n - 1).into_segmented(), (0..n - 1).into_segmented())
            .map_err(|e| e.to_string())?;
        // Row 0 (the first predicted class) at the top: y = n − 1 − p.
        let x_name = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => class_names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        let y_name = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) if *i < n => class_names[n - 1 - *i].clone(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(n)
            .y_labels(n)
            .x_label_formatter(&x_name)
            .y_label_formatter(&y_name)
            .x_desc("ground truth")
            .y_desc("predicted")
            .draw()
            .map_err(|e| e.to_string())?;
        let cell = (side as i32 - 60) / n as i32;
        for p in 0..n {
            for g in 0..n {
                let v = values[p * n + g];
                let shade = (v / max).clamp(0.0, 1.0);
                let color = RGBColor((255.0 - 200.0 * shade) as u8, (255.0 - 120.0 * shade) as u8, 255);
                let y = n - 1 - p;
                let (x0, y0, x1, y1) = (
                    SegmentValue::Exact(g),
                    SegmentValue::Exact(y),
                    SegmentValue::Exact(g + 1),
                    SegmentValue::Exact(y + 1),
                );
                chart
                    .draw_series([Rectangle::new([(x0, y0), (x1, y1.clone())], color.filled())])
                    .map_err(|e| e.to_string())?;
                let text = if relative { format!("{:.1}%", 100.0 * v) } else { format!("{v:.0}") };
                let style = ("sans-serif", 15).into_font().color(if shade > 0.6 { &WHITE } else { &BLACK });
                chart
                    .draw_series([EmptyElement::at((SegmentValue::Exact(g), y1))
                        + Text::new(text, (cell / 3, cell / 2 - 8), style)])
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    })
}

/// Ten well-separated colours (matplotlib's tab10) for curves.
const CURVE_COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Curves `(name, points)` in the unit square, e.g. PR curves per class (x = recall, y = precision) or
/// a ROC curve (x = false-positive rate, y = true-positive rate).
///
/// # Errors
/// [`Error::Plot`] naming the file.
pub fn curves_png(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    curves: &[(String, Vec<(f64, f64)>)],
) -> Result<()> {
    draw_png(path, (800, 600), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..1.0, 0.0..1.02)
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).draw().map_err(|e| e.to_string())?;
        // Curves that overlap (several classes at precision 1) stay apart: ten distinct colours, then
        // solid, dashed and dotted lines, and a line width that shrinks with the index so that a later
        // curve drawn over an earlier one leaves it visible at both sides.
        for (i, (name, pts)) in curves.iter().enumerate() {
            let color = CURVE_COLORS[i % CURVE_COLORS.len()];
            let style =
                color.stroke_width(if curves.len() > 1 { 4 - (i * 3 / curves.len()) as u32 } else { 2 });
            let points = pts.iter().copied();
            let dash = (i / CURVE_COLORS.len()) % 3;
            let series = match dash {
                0 => chart.draw_series(LineSeries::new(points, style)),
                1 => chart.draw_series(DashedLineSeries::new(points, 10, 6, style)),
                _ => chart.draw_series(DashedLineSeries::new(points, 3, 5, style)),
            };
            // The legend's sample line in the curve's dash pattern.
            let (size, gap) = [(24, 1), (10, 4), (3, 4)][dash];
            series.map_err(|e| e.to_string())?.label(name.clone()).legend(move |(x, y)| {
                DashedPathElement::new(vec![(x, y), (x + 24, y)], size, gap, color.stroke_width(2))
            });
        }
        if !curves.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// Histograms of ok and nok anomaly scores on common bins, with the named thresholds as vertical lines
/// (one colour each, named with their value in the legend).
///
/// # Errors
/// [`Error::Plot`] naming the file.
pub fn score_histogram_png(
    path: &Path,
    ok: &[f64],
    nok: &[f64],
    bins: usize,
    thresholds: &[(String, f64)],
) -> Result<()> {
    let all: Vec<f64> = ok.iter().chain(nok).copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if all.is_empty() {
        (0.0, 1.0)
    } else if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    };
    let bins = bins.max(1);
    let count = |v: &[f64]| {
        let mut c = vec![0u32; bins];
        for &x in v.iter().filter(|x| x.is_finite()) {
            c[(((x - lo) / (hi - lo) * bins as f64) as usize).min(bins - 1)] += 1;
        }
        c
    };
    let (co, cn) = (count(ok), count(nok));
    let top = co.iter().chain(&cn).copied().max().unwrap_or(1).max(1);
    draw_png(path, (800, 500), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption("anomaly scores", ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(lo..hi, 0u32..top + top / 10 + 1)
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc("anomaly score").y_desc("images").draw().map_err(|e| e.to_string())?;
        let w = (hi - lo) / bins as f64;
        for (counts, color, name) in [(&co, GREEN.mix(0.5), "ok"), (&cn, RED.mix(0.5), "nok")] {
            chart
                .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                    Rectangle::new([(lo + i as f64 * w, 0), (lo + (i + 1) as f64 * w, c)], color.filled())
                }))
                .map_err(|e| e.to_string())?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled()));
        }
        for (k, (name, t)) in thresholds.iter().enumerate() {
            let color = [BLACK, BLUE, MAGENTA][k % 3];
            chart
                .draw_series(LineSeries::new([(*t, 0), (*t, top)], color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(format!("{name} {t:.4}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// An 8-bit RGB image (row-major, interleaved) shown at least `min_width` pixels wide (nearest-neighbour
/// enlargement), with `lines` of text in a strip below it — e.g. a classification result.
///
/// # Errors
/// [`Error::InvalidInput`] when `rgb` does not hold `width × height × 3` bytes; [`Error::Plot`] naming
/// the file.
pub fn labelled_image_png(
    path: &Path,
    rgb: &[u8],
    (width, height): (u32, u32),
    lines: &[String],
    min_width: u32,
) -> Result<()> {
    if width == 0 || height == 0 || rgb.len() != (width * height * 3) as usize {
        return Err(Error::InvalidInput(format!("{} bytes for a {width}×{height} RGB image", rgb.len())));
    }
    let scale = min_width.div_ceil(width).max(1);
    let (w, h) = (width * scale, height * scale);
    let strip = 12 + 24 * lines.len() as u32;
    draw_png(path, (w.max(200), h + strip), |root| {
        draw_enlarged(&root, rgb, width, (w, h), scale)?;
        for (i, line) in lines.iter().enumerate() {
            root.draw_text(
                line,
                &("sans-serif", 18).into_font().color(&BLACK),
                (8, (h + 8 + 24 * i as u32) as i32),
            )
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// Draws an RGB image enlarged `scale` times (nearest neighbour) into the top-left `w` × `h` pixels.
fn draw_enlarged(
    root: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    rgb: &[u8],
    width: u32,
    (w, h): (u32, u32),
    scale: u32,
) -> std::result::Result<(), String> {
    for y in 0..h {
        for x in 0..w {
            let i = (((y / scale) * width + x / scale) * 3) as usize;
            root.draw_pixel((x as i32, y as i32), &RGBColor(rgb[i], rgb[i + 1], rgb[i + 2]))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// One box to draw on an image by [`detections_png`]: its corners (row, column; pixel-centre
/// coordinates of the image), a colour index and a label.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawnBox {
    /// Corners in drawing order.
    pub corners: Vec<(f64, f64)>,
    /// Index into the colour palette (e.g. the class index).
    pub color: usize,
    /// Text written at the first corner (class and confidence).
    pub label: String,
}

/// Writes `rgb` (row-major RGB bytes) with `boxes` drawn at their true angle and labelled, enlarged so
/// the image is at least `min_width` pixels wide, as a PNG; boxes are closed polygons in one colour per
/// class.
///
/// # Errors
/// [`Error::InvalidInput`] for a buffer that does not fit the size; [`Error::Plot`] when drawing or
/// writing fails.
pub fn detections_png(
    path: &Path,
    rgb: &[u8],
    (width, height): (u32, u32),
    boxes: &[DrawnBox],
    min_width: u32,
) -> Result<()> {
    if width == 0 || height == 0 || rgb.len() != (width * height * 3) as usize {
        return Err(Error::InvalidInput(format!("{} bytes for a {width}×{height} RGB image", rgb.len())));
    }
    let scale = min_width.div_ceil(width).max(1);
    let (w, h) = (width * scale, height * scale);
    draw_png(path, (w, h), |root| {
        draw_enlarged(&root, rgb, width, (w, h), scale)?;
        let f = scale as f64;
        // Pixel-centre (r, c) → drawing coordinates: the pixel's square spans [c − 0.5, c + 0.5].
        let at = |(r, c): (f64, f64)| (((c + 0.5) * f).round() as i32, ((r + 0.5) * f).round() as i32);
        for b in boxes {
            let color = Palette99::pick(b.color).to_rgba();
            let mut pts: Vec<(i32, i32)> = b.corners.iter().map(|&p| at(p)).collect();
            if let Some(&first) = pts.first() {
                pts.push(first);
                root.draw(&PathElement::new(pts, color.stroke_width(2))).map_err(|e| e.to_string())?;
                root.draw(&Text::new(
                    b.label.clone(),
                    (first.0 + 2, first.1 + 2),
                    ("sans-serif", 14).into_font().color(&color),
                ))
                .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    })
}

/// The colour of class index `i` in segmentation overlays and their legends.
pub fn class_color(i: usize) -> (u8, u8, u8) {
    let c = Palette99::pick(i).to_rgba();
    (c.0, c.1, c.2)
}

/// Writes `rgb` (row-major RGB bytes) with each pixel's class (`classes`: class index per pixel, −1 or
/// an index in `skip` for none) blended in its colour (half opacity), enlarged so the image is at least
/// `min_width` pixels wide, with a legend of the class names and colours below, as a PNG.
///
/// # Errors
/// [`Error::InvalidInput`] for buffers that do not fit the size; [`Error::Plot`] when drawing or
/// writing fails.
pub fn segmentation_png(
    path: &Path,
    rgb: &[u8],
    (width, height): (u32, u32),
    classes: &[i64],
    class_names: &[String],
    skip: &[usize],
    min_width: u32,
) -> Result<()> {
    let n = (width * height) as usize;
    if width == 0 || height == 0 || rgb.len() != n * 3 || classes.len() != n {
        return Err(Error::InvalidInput(format!(
            "{} bytes and {} classes for a {width}×{height} RGB image",
            rgb.len(),
            classes.len()
        )));
    }
    let mut blended = rgb.to_vec();
    for (i, &c) in classes.iter().enumerate() {
        if c < 0 || skip.contains(&(c as usize)) {
            continue;
        }
        let (r, g, b) = class_color(c as usize);
        for (k, v) in [r, g, b].into_iter().enumerate() {
            let p = &mut blended[i * 3 + k];
            *p = ((u16::from(*p) + u16::from(v)) / 2) as u8;
        }
    }
    let scale = min_width.div_ceil(width).max(1);
    let (w, h) = (width * scale, height * scale);
    let shown: Vec<usize> = (0..class_names.len()).filter(|i| !skip.contains(i)).collect();
    let strip = 12 + 24 * shown.len() as u32;
    draw_png(path, (w.max(200), h + strip), |root| {
        draw_enlarged(&root, &blended, width, (w, h), scale)?;
        for (row, &i) in shown.iter().enumerate() {
            let y = (h + 8 + 24 * row as u32) as i32;
            let (r, g, b) = class_color(i);
            root.draw(&Rectangle::new([(8, y + 2), (24, y + 18)], RGBColor(r, g, b).filled()))
                .map_err(|e| e.to_string())?;
            root.draw_text(&class_names[i], &("sans-serif", 18).into_font().color(&BLACK), (32, y))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// One panel of [`training_curves_png`]: a title, the y-axis name, and named series of (epoch, value).
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePanel {
    /// Panel title.
    pub title: String,
    /// Name of the y axis.
    pub y_desc: String,
    /// Series `(name, points)` with x in epochs.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// Logarithmic y axis (learning rates).
    pub log_y: bool,
}

/// Training curves: panels stacked vertically over a shared epoch axis (loss, learning rate,
/// validation measure). Empty panels are drawn with a note; non-finite points are skipped.
///
/// # Errors
/// [`Error::Plot`] naming the file.
pub fn training_curves_png(path: &Path, panels: &[CurvePanel]) -> Result<()> {
    let n = panels.len().max(1) as u32;
    let x_max = panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|s| s.1.iter().map(|q| q.0)))
        .filter(|x| x.is_finite())
        .fold(1e-9f64, f64::max);
    draw_png(path, (900, 280 * n), |root| {
        for (panel, area) in panels.iter().zip(root.split_evenly((n as usize, 1))) {
            let points: Vec<f64> = panel
                .series
                .iter()
                .flat_map(|s| s.1.iter().map(|q| q.1))
                .filter(|v| v.is_finite() && (!panel.log_y || *v > 0.0))
                .collect();
            let (lo, hi) =
                points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            let (lo, hi) = if points.is_empty() {
                (if panel.log_y { 1e-3 } else { 0.0 }, 1.0)
            } else if hi > lo {
                if panel.log_y {
                    (lo / 1.5, hi * 1.5)
                } else {
                    (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
                }
            } else if panel.log_y {
                (lo / 2.0, hi * 2.0)
            } else {
                (lo - 0.5, hi + 0.5)
            };
            let mut builder = ChartBuilder::on(&area);
            builder
                .caption(&panel.title, ("sans-serif", 20))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(70);
            let finite = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
                pts.iter()
                    .copied()
                    .filter(|q| q.0.is_finite() && q.1.is_finite() && (!panel.log_y || q.1 > 0.0))
                    .collect()
            };
            macro_rules! draw_series {
                ($chart:expr) => {{
                    let chart = &mut $chart;
                    // Few, short labels: log axes (learning rates) in scientific notation.
                    let y_label = |v: &f64| if panel.log_y { format!("{v:.1e}") } else { format!("{v:.3}") };
                    chart
                        .configure_mesh()
                        .x_desc("epoch")
                        .y_desc(&panel.y_desc)
                        .y_labels(6)
                        .y_label_formatter(&y_label)
                        .draw()
                        .map_err(|e| e.to_string())?;
                    for (i, (name, pts)) in panel.series.iter().enumerate() {
                        let color = Palette99::pick(i).to_rgba();
                        let pts = finite(pts);
                        let single = pts.len() == 1;
                        chart
                            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                            .map_err(|e| e.to_string())?
                            .label(name.clone())
                            .legend(move |(x, y)| {
                                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                            });
                        if single || name.contains("validation") {
                            chart
                                .draw_series(pts.iter().map(|&q| Circle::new(q, 4, color.filled())))
                                .map_err(|e| e.to_string())?;
                        }
                    }
                    if !panel.series.is_empty() {
                        chart
                            .configure_series_labels()
                            .background_style(WHITE.mix(0.8))
                            .border_style(BLACK)
                            .draw()
                            .map_err(|e| e.to_string())?;
                    }
                }};
            }
            // A log axis labels only powers of ten: within two decades (3e-3 … 6e-4), a linear axis with
            // six labels is readable.
            if panel.log_y && hi / lo >= 100.0 {
                let mut chart = builder
                    .build_cartesian_2d(0.0..x_max, (lo..hi).log_scale())
                    .map_err(|e| e.to_string())?;
                draw_series!(chart);
            } else {
                let mut chart = builder.build_cartesian_2d(0.0..x_max, lo..hi).map_err(|e| e.to_string())?;
                draw_series!(chart);
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_written_as_png() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = ["ok", "scratch", "dent"].iter().map(|s| s.to_string()).collect();
        let cm = dir.path().join("cm.png");
        confusion_matrix_png(&cm, &[0.9, 0.1, 0.0, 0.1, 0.8, 0.2, 0.0, 0.1, 0.8], &names, true, "confusion")
            .unwrap();
        let pr = dir.path().join("pr.png");
        curves_png(
            &pr,
            "PR",
            "recall",
            "precision",
            &[("a".into(), vec![(0.0, 1.0), (0.5, 0.8), (1.0, 0.3)])],
        )
        .unwrap();
        let h = dir.path().join("h.png");
        score_histogram_png(&h, &[0.1, 0.2, 0.25], &[0.6, 0.9], 10, &[("t".into(), 0.4)]).unwrap();
        let t = dir.path().join("t.png");
        let panel = |title: &str, log_y, series| CurvePanel {
            title: title.into(),
            y_desc: "v".into(),
            series,
            log_y,
        };
        training_curves_png(
            &t,
            &[
                panel("loss", false, vec![("train".into(), vec![(0.1, 2.0), (0.5, 1.0), (1.0, 0.5)])]),
                panel("learning rate", true, vec![("lr".into(), vec![(0.0, 0.1), (1.0, 0.01)])]),
                panel("validation", false, vec![("validation top1_error".into(), vec![(1.0, 0.2)])]),
                panel("empty", false, vec![]),
            ],
        )
        .unwrap();
        let l = dir.path().join("l.png");
        labelled_image_png(
            &l,
            &[200u8; 4 * 3 * 3],
            (4, 3),
            &["Sneaker 97.1%".into(), "Sandal 2.0%".into()],
            256,
        )
        .unwrap();
        assert!(labelled_image_png(&l, &[0u8; 5], (4, 3), &[], 256).is_err());
        for p in [cm, pr, h, t, l] {
            let img = image_header(&p);
            assert_eq!(&img[..8], b"\x89PNG\r\n\x1a\n", "{}", p.display());
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 5, "no temporary file is left");
    }

    fn image_header(p: &Path) -> Vec<u8> {
        std::fs::read(p).unwrap()[..8].to_vec()
    }
}
