//! `mmif figure`: the comparison figure papers print. The two sources then every method in a
//! grid, each panel with the same enlarged inset(s) in a chosen corner, coloured frames marking
//! where the insets come from (around the box on the panel, around the inset), a label under each
//! panel. PNG (with its DPI recorded), SVG or PDF from the output's extension; SVG and PDF embed
//! every image at full resolution (and the insets' crops at theirs, scaled without smoothing).
//!
//! Geometry, in pixels of the sources: panels are the images at full size, `gap` apart; an inset
//! is its box enlarged `--zoom` times (an integer, so every source pixel becomes a zoom×zoom
//! block), placed `stroke` pixels from the chosen corner, several insets side by side along the
//! bottom (or top) edge. Physical size: `--dpi` dots per inch; without `--width` one source pixel
//! is one dot, with `--width IN` the figure is `IN` inches wide (the PNG resampled to IN×DPI
//! pixels). Labels are `--font-size` points high at that scale.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use image::RgbImage;

use crate::embed;
use crate::figure_vector;
use crate::pairs::{SourceArgs, Sources, Task, list_images};
use crate::scene::{Element, Scene};

#[derive(Args, Debug)]
pub struct FigureArgs {
    #[command(flatten)]
    pub sources: SourceArgs,
    /// A fused image as NAME=FILE (with one pair of source files); repeat, in panel order
    #[arg(long, value_name = "NAME=FILE", help_heading = "Fused images")]
    pub fused: Vec<String>,
    /// A folder of fused images as NAME=DIR (with source folders and --pair); repeat
    #[arg(long = "fused-dir", value_name = "NAME=DIR", help_heading = "Fused images")]
    pub fused_dir: Vec<String>,
    /// With folders: the stem of the pair to show
    #[arg(long, value_name = "STEM")]
    pub pair: Option<String>,
    /// A region to enlarge, x,y,w,h in source pixels (origin top-left); repeat for several insets
    #[arg(long = "box", value_name = "X,Y,W,H", value_parser = parse_box)]
    pub boxes: Vec<[u32; 4]>,
    /// Enlargement of the insets (integer: every pixel becomes a ZOOM×ZOOM block)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub zoom: u32,
    /// Corner of the panels holding the insets
    #[arg(long, value_enum, default_value_t = Corner::BottomRight)]
    pub corner: Corner,
    /// Panels per row [default: all of them up to 4, else half of them rounded up]
    #[arg(long, value_name = "N")]
    pub cols: Option<usize>,
    /// Labels of the two sources, comma-separated [default: from the modality flags, e.g. IR,VIS]
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub source_labels: Vec<String>,
    /// Resolution in dots per inch (recorded in the PNG; sets the physical size of SVG and PDF)
    #[arg(long, default_value_t = 300.0)]
    pub dpi: f64,
    /// Width of the whole figure in inches [default: one source pixel per dot]
    #[arg(long, value_name = "INCHES")]
    pub width: Option<f64>,
    /// Height of the labels in points
    #[arg(long, default_value_t = 8.0, value_name = "PT")]
    pub font_size: f64,
    /// Output file: .png, .svg or .pdf (written atomically)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Replace an existing output file
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Corner {
    BottomRight,
    BottomLeft,
    TopRight,
    TopLeft,
}

/// Colours of the boxes, in order (red, green, blue, amber, violet, cyan), then again.
pub const COLORS: [[u8; 3]; 6] =
    [[230, 30, 30], [20, 170, 60], [30, 90, 235], [245, 170, 0], [160, 60, 210], [0, 180, 200]];

fn parse_box(s: &str) -> std::result::Result<[u32; 4], String> {
    let v: Vec<&str> = s.split(',').map(str::trim).collect();
    let [x, y, w, h] = v.as_slice() else { return Err(format!("`{s}`: expected x,y,w,h")) };
    let n = |t: &str| t.parse::<u32>().map_err(|_| format!("`{s}`: `{t}` is not a non-negative integer"));
    let b = [n(x)?, n(y)?, n(w)?, n(h)?];
    if b[2] == 0 || b[3] == 0 {
        return Err(format!("`{s}`: width and height must be at least 1"));
    }
    Ok(b)
}

/// Output format, from the extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Png,
    Svg,
    Pdf,
}

fn format_of(path: &Path) -> Result<Format> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png") => Ok(Format::Png),
        Some("svg") => Ok(Format::Svg),
        Some("pdf") => Ok(Format::Pdf),
        _ => bail!("{}: the figure is written as .png, .svg or .pdf", path.display()),
    }
}

/// The panels' images and labels, sources first.
pub struct Panels {
    pub labels: Vec<String>,
    pub images: Vec<Arc<RgbImage>>,
}

/// Where everything goes, in canvas pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub panel_w: u32,
    pub panel_h: u32,
    pub cols: u32,
    pub rows: u32,
    pub gap: u32,
    pub label_h: u32,
    /// Line width of the frames.
    pub stroke: u32,
    /// Each inset's box inside a panel (x, y, w, h).
    pub insets: Vec<[u32; 4]>,
    pub width: u32,
    pub height: u32,
}

impl Layout {
    /// Top-left corner of panel `i` (row-major).
    pub fn origin(&self, i: usize) -> (u32, u32) {
        let (c, r) = (i as u32 % self.cols, i as u32 / self.cols);
        (c * (self.panel_w + self.gap), r * (self.panel_h + self.label_h + self.gap))
    }
}

/// The geometry for `n` panels of `w`×`h` with `boxes` enlarged `zoom` times in `corner`.
#[allow(clippy::too_many_arguments)]
pub fn layout(
    w: u32,
    h: u32,
    n: usize,
    cols: usize,
    boxes: &[[u32; 4]],
    zoom: u32,
    corner: Corner,
    label_h: u32,
) -> Result<Layout> {
    for b in boxes {
        if b[0] as u64 + b[2] as u64 > w as u64 || b[1] as u64 + b[3] as u64 > h as u64 {
            bail!(
                "--box {},{},{},{} lies outside the {w}x{h} image (x+w must be at most {w}, y+h at most {h})",
                b[0],
                b[1],
                b[2],
                b[3]
            );
        }
    }
    let stroke = (w.min(h) / 160).max(1);
    let gap = (w / 40).max(4);
    let right = matches!(corner, Corner::BottomRight | Corner::TopRight);
    let bottom = matches!(corner, Corner::BottomRight | Corner::BottomLeft);
    let mut insets = Vec::new();
    let mut cursor = stroke as i64; // distance from the chosen vertical edge
    for b in boxes {
        let (iw, ih) = (b[2] as i64 * zoom as i64, b[3] as i64 * zoom as i64);
        let x = if right { w as i64 - cursor - iw } else { cursor };
        let y = if bottom { h as i64 - stroke as i64 - ih } else { stroke as i64 };
        if x < stroke as i64
            || x + iw + stroke as i64 > w as i64
            || y < stroke as i64
            || ih + 2 * stroke as i64 > h as i64
        {
            bail!(
                "the insets ({} box(es) enlarged {zoom}x) do not fit side by side in the {w}x{h} panel: use a smaller \
                 --zoom or smaller boxes",
                boxes.len()
            );
        }
        insets.push([x as u32, y as u32, iw as u32, ih as u32]);
        cursor += iw + 3 * stroke as i64;
    }
    let cols = cols.clamp(1, n.max(1)) as u32;
    let rows = (n as u32).div_ceil(cols);
    let width = cols * w + (cols - 1) * gap;
    let height = rows * (h + label_h) + (rows - 1) * gap;
    Ok(Layout { panel_w: w, panel_h: h, cols, rows, gap, label_h, stroke, insets, width, height })
}

/// The scene of the figure: panels, frames around the boxes, insets with their frames, labels.
pub fn scene(panels: &Panels, boxes: &[[u32; 4]], lay: &Layout, font_px: f64) -> Scene {
    let mut elements = Vec::new();
    let (w, h) = (lay.panel_w, lay.panel_h);
    for (i, (img, label)) in panels.images.iter().zip(&panels.labels).enumerate() {
        let (ox, oy) = lay.origin(i);
        let clip = [ox, oy, w, h];
        elements.push(Element::Image { x: ox, y: oy, w, h, img: img.clone() });
        for (k, b) in boxes.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let (x, y) = (ox as i64 + b[0] as i64, oy as i64 + b[1] as i64);
            elements.push(Element::Frame { x, y, w: b[2], h: b[3], stroke: lay.stroke, color, clip });
        }
        for (k, (b, ins)) in boxes.iter().zip(&lay.insets).enumerate() {
            let color = COLORS[k % COLORS.len()];
            let crop = Arc::new(image::imageops::crop_imm(img.as_ref(), b[0], b[1], b[2], b[3]).to_image());
            let (x, y) = (ox + ins[0], oy + ins[1]);
            elements.push(Element::Image { x, y, w: ins[2], h: ins[3], img: crop });
            elements.push(Element::Frame {
                x: x as i64,
                y: y as i64,
                w: ins[2],
                h: ins[3],
                stroke: lay.stroke,
                color,
                clip,
            });
        }
        let top = (oy + h) as f64 + (lay.label_h as f64 - font_px) / 2.0;
        elements.push(Element::Text { cx: ox as f64 + w as f64 / 2.0, top, size: font_px, text: label.clone() });
    }
    Scene { width: lay.width, height: lay.height, elements }
}

/// Default labels of the two sources of a task.
fn source_labels(task: Task) -> [&'static str; 2] {
    match task {
        Task::Ivf => ["IR", "VIS"],
        Task::Mif => ["MRI", "Functional"],
        Task::Mef => ["Over-exposed", "Under-exposed"],
        Task::Mff => ["Near focus", "Far focus"],
        Task::Generic => ["A", "B"],
    }
}

/// `NAME=PATH` (or `PATH`, named after its file stem).
fn named(spec: &str) -> (String, PathBuf) {
    if let Some((n, p)) = spec.split_once('=')
        && !n.is_empty()
        && !p.is_empty()
    {
        return (n.to_string(), PathBuf::from(p));
    }
    let p = PathBuf::from(spec);
    let n = p.file_stem().map_or_else(|| spec.to_string(), |s| s.to_string_lossy().into_owned());
    (n, p)
}

/// The files of the panels, with their labels: sources first, then every method.
fn files(args: &FigureArgs) -> Result<Vec<(String, PathBuf)>> {
    let (task, a, b, methods) = match args.sources.resolve()? {
        Sources::Single { task, a, b } => {
            if !args.fused_dir.is_empty() || args.pair.is_some() {
                bail!("--fused-dir and --pair go with source folders; with one pair of files give --fused NAME=FILE");
            }
            (task, a, b, args.fused.iter().map(|s| named(s)).collect::<Vec<_>>())
        }
        Sources::Folders { task, a, b } => {
            if !args.fused.is_empty() {
                bail!("--fused goes with one pair of source files; with source folders give --fused-dir NAME=DIR");
            }
            let Some(stem) = &args.pair else {
                let stems: Vec<String> = list_images(&a)?.into_keys().take(8).collect();
                bail!("with source folders, choose the pair with --pair STEM (e.g. {})", stems.join(", "));
            };
            let find = |dir: &Path| -> Result<PathBuf> {
                let all = list_images(dir)?;
                if all.is_empty() {
                    bail!("no images in {}", dir.display());
                }
                all.get(stem).cloned().with_context(|| format!("no image `{stem}` in {}", dir.display()))
            };
            let methods = args
                .fused_dir
                .iter()
                .map(|s| {
                    let (n, d) = named(s);
                    Ok((n, find(&d)?))
                })
                .collect::<Result<Vec<_>>>()?;
            (task, find(&a)?, find(&b)?, methods)
        }
    };
    if methods.is_empty() {
        bail!("no fused images: give --fused NAME=FILE (one pair) or --fused-dir NAME=DIR (folders), once per method");
    }
    let labels = match args.source_labels.as_slice() {
        [] => source_labels(task).map(String::from),
        [la, lb] => [la.clone(), lb.clone()],
        other => bail!("--source-labels takes two labels (A,B), got {}", other.len()),
    };
    let [la, lb] = labels;
    Ok([(la, a), (lb, b)].into_iter().chain(methods).collect())
}

/// Reads the panels; every image must have the sources' size.
fn read_panels(files: &[(String, PathBuf)]) -> Result<Panels> {
    let mut images: Vec<Arc<RgbImage>> = Vec::new();
    for (_, p) in files {
        let img = embed::read_rgb(p)?;
        if let Some(first) = images.first()
            && first.dimensions() != img.dimensions()
        {
            bail!(
                "{} is {}x{}, {} is {}x{}: every panel must have the size of the sources",
                p.display(),
                img.width(),
                img.height(),
                files[0].1.display(),
                first.width(),
                first.height()
            );
        }
        images.push(Arc::new(img));
    }
    Ok(Panels { labels: files.iter().map(|(l, _)| l.clone()).collect(), images })
}

/// Runs `mmif figure`.
pub fn run(args: &FigureArgs) -> Result<ExitCode> {
    let format = format_of(&args.output)?;
    if args.output.exists() && !args.force {
        bail!("{} exists: add --force to replace it", args.output.display());
    }
    if !(args.dpi.is_finite() && args.dpi >= 1.0 && args.dpi <= 10_000.0) {
        bail!("--dpi must be between 1 and 10000, got {}", args.dpi);
    }
    if let Some(w) = args.width
        && !(w.is_finite() && w > 0.0 && w * args.dpi <= 100_000.0)
    {
        bail!("--width must be positive and at most 100000 dots at --dpi {}, got {w}", args.dpi);
    }
    if !(args.font_size.is_finite() && args.font_size >= 0.0 && args.font_size <= 200.0) {
        bail!("--font-size must be between 0 and 200 points, got {}", args.font_size);
    }
    let files = files(args)?;
    let panels = read_panels(&files)?;
    let (w, h) = panels.images[0].dimensions();
    let n = panels.images.len();
    let cols = args.cols.unwrap_or(if n <= 4 { n } else { n.div_ceil(2) });
    if cols == 0 {
        bail!("--cols must be at least 1");
    }
    // canvas pixels per inch: the width does not depend on the labels' height
    let probe = layout(w, h, n, cols, &args.boxes, args.zoom, args.corner, 0)?;
    let ppi = args.width.map_or(args.dpi, |inches| probe.width as f64 / inches);
    let font_px = args.font_size / 72.0 * ppi;
    let label_h = if args.font_size > 0.0 { (font_px * 1.6).ceil() as u32 } else { 0 };
    let lay = layout(w, h, n, cols, &args.boxes, args.zoom, args.corner, label_h)?;
    let scene = scene(&panels, &args.boxes, &lay, font_px);
    let bytes = match format {
        Format::Png => {
            let mut img = scene.raster();
            if let Some(inches) = args.width {
                let tw = (inches * args.dpi).round().max(1.0) as u32;
                let th = ((tw as f64 * img.height() as f64 / img.width() as f64).round() as u32).max(1);
                img = image::imageops::resize(&img, tw, th, image::imageops::FilterType::Lanczos3);
            }
            png_with_dpi(&img, args.dpi)?
        }
        Format::Svg => figure_vector::svg(&scene, ppi)?.into_bytes(),
        Format::Pdf => figure_vector::pdf(&scene, ppi)?,
    };
    mmif_io::write_atomic(&args.output, &bytes)?;
    eprintln!(
        "{}: {} panels in {}x{}, {:.2}x{:.2} in at {} dpi",
        args.output.display(),
        n,
        lay.cols,
        lay.rows,
        lay.width as f64 / ppi,
        lay.height as f64 / ppi,
        args.dpi
    );
    Ok(ExitCode::SUCCESS)
}

/// RGB PNG with a `pHYs` chunk recording `dpi`.
fn png_with_dpi(img: &RgbImage, dpi: f64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, img.width(), img.height());
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::High);
        let ppm = (dpi / 0.0254).round() as u32;
        enc.set_pixel_dims(Some(png::PixelDimensions { xppu: ppm, yppu: ppm, unit: png::Unit::Meter }));
        let mut w = enc.write_header().context("PNG header")?;
        w.write_image_data(img.as_raw()).context("PNG data")?;
        w.finish().context("PNG end")?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn pattern(w: u32, h: u32, seed: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = x.wrapping_mul(2654435761).wrapping_add(y.wrapping_mul(40503)).wrapping_add(seed * 977);
            Rgb([(v >> 3) as u8, (v >> 11) as u8, (v >> 19) as u8])
        })
    }

    /// Inset content equals the crop enlarged, frames sit around the boxes and the insets, the
    /// panel outside them is the image itself.
    #[test]
    fn insets_are_the_crops_enlarged_and_frames_are_where_asked() {
        let (w, h, zoom) = (90u32, 60u32, 3u32);
        let boxes = [[30u32, 30, 7, 6], [45, 20, 5, 4]];
        let images: Vec<Arc<RgbImage>> = (0..8).map(|s| Arc::new(pattern(w, h, s))).collect();
        let panels = Panels { labels: (0..8).map(|i| format!("P{i}")).collect(), images: images.clone() };
        for corner in [Corner::BottomRight, Corner::TopLeft] {
            let lay = layout(w, h, 8, 4, &boxes, zoom, corner, 12).unwrap();
            assert_eq!((lay.cols, lay.rows), (4, 2));
            let r = scene(&panels, &boxes, &lay, 9.0).raster();
            assert_eq!(r.dimensions(), (lay.width, lay.height));
            let s = lay.stroke;
            for (i, img) in images.iter().enumerate() {
                let (ox, oy) = lay.origin(i);
                for (k, (b, ins)) in boxes.iter().zip(&lay.insets).enumerate() {
                    assert_eq!((ins[2], ins[3]), (b[2] * zoom, b[3] * zoom));
                    for v in 0..ins[3] {
                        for u in 0..ins[2] {
                            let got = r.get_pixel(ox + ins[0] + u, oy + ins[1] + v);
                            assert_eq!(got, img.get_pixel(b[0] + u / zoom, b[1] + v / zoom), "panel {i} inset {k}");
                        }
                    }
                    let color = Rgb(COLORS[k]);
                    // frame around the inset, and around the box where no inset covers it
                    assert_eq!(r.get_pixel(ox + ins[0] - 1, oy + ins[1] + 1), &color);
                    assert_eq!(r.get_pixel(ox + ins[0] + ins[2], oy + ins[1] + ins[3] - 1), &color);
                    if b[0] >= s && b[1] >= s {
                        assert_eq!(r.get_pixel(ox + b[0] - s, oy + b[1] - s), &color, "box frame top-left");
                    }
                    assert_eq!(r.get_pixel(ox + b[0] + b[2], oy + b[1] + b[3] - 1), &color, "box frame right");
                    assert_eq!(r.get_pixel(ox + b[0], oy + b[1]), img.get_pixel(b[0], b[1]), "box itself visible");
                }
                // corner placement
                let first = lay.insets[0];
                match corner {
                    Corner::BottomRight => assert_eq!((first[0] + first[2] + s, first[1] + first[3] + s), (w, h)),
                    Corner::TopLeft => assert_eq!((first[0], first[1]), (s, s)),
                    _ => unreachable!(),
                }
                // a pixel away from boxes and insets is the image itself
                let (px, py) = if corner == Corner::BottomRight { (1, 1) } else { (w - 2, h - 2) };
                assert_eq!(r.get_pixel(ox + px, oy + py), img.get_pixel(px, py));
            }
        }
    }

    #[test]
    fn boxes_outside_or_too_large_are_refused() {
        let e = layout(50, 40, 8, 4, &[[45, 0, 6, 4]], 2, Corner::BottomRight, 10).unwrap_err();
        assert!(e.to_string().contains("outside the 50x40 image"), "{e}");
        let e = layout(50, 40, 8, 4, &[[0, 0, 20, 10], [0, 0, 10, 10]], 2, Corner::BottomRight, 10).unwrap_err();
        assert!(e.to_string().contains("do not fit"), "{e}");
        assert_eq!(parse_box("1,2,3,4"), Ok([1, 2, 3, 4]));
        assert!(parse_box("1,2,0,4").is_err() && parse_box("1,2,3").is_err() && parse_box("a,2,3,4").is_err());
    }
}
