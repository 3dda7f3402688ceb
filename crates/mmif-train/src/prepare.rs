//! Training patches as the official `dataprocessing.py` makes them: every pair of a visible and
//! an infrared image (paired by file stem; the official script pairs sorted names in order, the
//! same pairs when the names match) → gray in [0, 1] (RGB → Y with
//! 0.299/0.587/0.114 on the /255 values; gray images /255) → `patch×patch` windows whose top-left
//! corners run over `0, stride, 2·stride, …` while the window fits, row by row → a window pair is
//! dropped when either window is low-contrast (`(p90 - p10) / p90 < 0.1`, NumPy's linear
//! percentiles; a window whose p90 is 0 gives NaN and is kept, as in the official code).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::{DatasetError, DatasetWriter};

/// Patch-extraction settings (defaults: the official 128 / 200 / 0.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrepareConfig {
    pub patch: usize,
    pub stride: usize,
    /// Fraction threshold of `is_low_contrast`.
    pub low_contrast: f64,
    pub lower_percentile: f64,
    pub upper_percentile: f64,
}

impl Default for PrepareConfig {
    fn default() -> Self {
        Self { patch: 128, stride: 200, low_contrast: 0.1, lower_percentile: 10.0, upper_percentile: 90.0 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("{path}: {msg}")]
    Input { path: PathBuf, msg: String },
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

fn input_err(path: &Path, msg: impl Into<String>) -> PrepareError {
    PrepareError::Input { path: path.to_path_buf(), msg: msg.into() }
}

/// What [`prepare`] did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PrepareStats {
    pub pairs: usize,
    pub windows: usize,
    pub kept: usize,
    pub dropped_low_contrast: usize,
}

const IMAGE_EXTS: [&str; 10] = ["bmp", "dib", "png", "jpg", "jpeg", "pbm", "pgm", "ppm", "tif", "tiff"];

/// The image files directly in `dir`, sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>, PrepareError> {
    let rd = std::fs::read_dir(dir).map_err(|e| input_err(dir, format!("cannot list the folder: {e}")))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// An 8-bit image as `(width, height, values in [0, 1])`: RGB → Y (`R·0.299 + G·0.587 + B·0.114`
/// on the /255 values, in f32 and that order), gray → /255.
pub fn read_y(path: &Path) -> Result<(usize, usize, Vec<f32>), PrepareError> {
    use image::DynamicImage as D;
    let img = mmif_io::image_io::decode_image(path).map_err(|e| input_err(path, format!("cannot decode: {e}")))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let y = match img {
        D::ImageLuma8(g) => g.into_raw().into_iter().map(|v| v as f32 / 255.0).collect(),
        D::ImageLumaA8(g) => g.pixels().map(|p| p.0[0] as f32 / 255.0).collect(),
        D::ImageRgb8(_) | D::ImageRgba8(_) => img
            .to_rgb8()
            .pixels()
            .map(|p| {
                let [r, g, b] = p.0.map(|c| c as f32 / 255.0);
                r * 0.299 + g * 0.587 + b * 0.114
            })
            .collect(),
        other => {
            return Err(input_err(
                path,
                format!("{:?} images are not supported (8-bit gray or RGB expected)", other.color()),
            ));
        }
    };
    Ok((w, h, y))
}

/// NumPy's `np.percentile(values, q)` (method "linear").
pub fn percentile(sorted: &[f32], q: f64) -> f64 {
    let n = sorted.len();
    let pos = q / 100.0 * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let t = pos - lo as f64;
    let (a, b) = (sorted[lo] as f64, sorted[hi] as f64);
    if t >= 0.5 { b - (b - a) * (1.0 - t) } else { a + (b - a) * t }
}

/// The official `is_low_contrast` (NaN ratios are not low-contrast).
pub fn is_low_contrast(window: &[f32], cfg: &PrepareConfig) -> bool {
    let mut s = window.to_vec();
    s.sort_by(f32::total_cmp);
    let (lo, hi) = (percentile(&s, cfg.lower_percentile), percentile(&s, cfg.upper_percentile));
    (hi - lo) / hi < cfg.low_contrast
}

/// The `patch×patch` window of a `w`-wide plane at `(top, left)`.
fn window(plane: &[f32], w: usize, top: usize, left: usize, patch: usize) -> Vec<f32> {
    (top..top + patch).flat_map(|r| plane[r * w + left..r * w + left + patch].iter().copied()).collect()
}

pub(crate) fn stem(p: &Path) -> Option<String> {
    p.file_stem().and_then(|s| s.to_str()).map(str::to_string)
}

/// Files of `files` by stem; two files with one stem are an error.
pub(crate) fn by_stem(files: Vec<PathBuf>, dir: &Path) -> Result<BTreeMap<String, PathBuf>, PrepareError> {
    let mut m = BTreeMap::new();
    for f in files {
        let s = stem(&f).ok_or_else(|| input_err(&f, "file name is not valid UTF-8"))?;
        if let Some(prev) = m.insert(s.clone(), f.clone()) {
            return Err(input_err(
                dir,
                format!("two images with the stem {s:?}: {} and {}", prev.display(), f.display()),
            ));
        }
    }
    Ok(m)
}

/// Up to five names, then how many more.
pub(crate) fn listing(names: &[&String]) -> String {
    let shown: Vec<&str> = names.iter().take(5).map(|s| s.as_str()).collect();
    let more = if names.len() > 5 { format!(" and {} more", names.len() - 5) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

/// The images of `a_dir` and `b_dir` paired by file stem (`x.png` with `x.jpg`), sorted by
/// stem; an image without a partner is an error naming it.
pub fn pair_by_stem(a_dir: &Path, b_dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, PrepareError> {
    let a = by_stem(image_files(a_dir)?, a_dir)?;
    let mut b = by_stem(image_files(b_dir)?, b_dir)?;
    if a.is_empty() {
        return Err(input_err(a_dir, "no images found"));
    }
    let only_a: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    if !only_a.is_empty() {
        return Err(input_err(b_dir, format!("no image of the same stem here for {}", listing(&only_a))));
    }
    let only_b: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    if !only_b.is_empty() {
        return Err(input_err(a_dir, format!("no image of the same stem here for {}", listing(&only_b))));
    }
    Ok(a.into_iter().map(|(k, pa)| (pa, b.remove(&k).expect("checked above"))).collect())
}

/// How a source image becomes a [0, 1] plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Reader {
    /// RGB → Y in float, not rounded (the CDDFuse/EMMA fusion data scripts): [`read_y`].
    Luma,
    /// OpenCV's BGR → gray, rounded, /255 (EMMA's pseudo-sensor data script).
    OpenCvGray,
}

fn read_plane(path: &Path, reader: Reader) -> Result<(usize, usize, Vec<f32>), PrepareError> {
    match reader {
        Reader::Luma => read_y(path),
        Reader::OpenCvGray => {
            let g = mmif_io::read_gray(path).map_err(|e| input_err(path, format!("cannot read: {e}")))?;
            Ok((g.width, g.height, g.data.iter().map(|v| v / 255.0).collect()))
        }
    }
}

/// Extracts the patches of every pair of `vis_dir` / `ir_dir` (paired by file stem) into the
/// dataset `out` with the planes `[vis, ir]`. `progress(done, total)` is called after each pair.
pub fn prepare(
    vis_dir: &Path,
    ir_dir: &Path,
    out: &Path,
    cfg: &PrepareConfig,
    progress: impl FnMut(usize, usize),
) -> Result<PrepareStats, PrepareError> {
    let pairs = pair_by_stem(vis_dir, ir_dir)?;
    let meta = serde_json::json!({ "vis_dir": vis_dir.display().to_string(), "ir_dir": ir_dir.display().to_string() });
    prepare_pairs(&pairs, ["vis", "ir"], Reader::Luma, out, cfg, meta, progress)
}

/// EMMA's pseudo-sensor data (`MSRS_AiAv.py`): every image of each folder of fusion results in
/// `fused_dirs` with the source image of the same stem in `target_dir` (`target` names it:
/// `ir` for `A_i`, `vis` for `A_v`), read as OpenCV gray; planes `[fused, target]`. The
/// official script cuts its windows from a fixed 480×640 grid (MSRS); here they run over each
/// image's own size, which is the same on 480×640 images.
pub fn prepare_pseudo_sensor(
    fused_dirs: &[PathBuf],
    target_dir: &Path,
    target: &str,
    out: &Path,
    cfg: &PrepareConfig,
    progress: impl FnMut(usize, usize),
) -> Result<PrepareStats, PrepareError> {
    let mut pairs = Vec::new();
    for d in fused_dirs {
        pairs.extend(pair_by_stem(d, target_dir)?);
    }
    let meta = serde_json::json!({
        "fused_dirs": fused_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
        "target_dir": target_dir.display().to_string(),
    });
    prepare_pairs(&pairs, ["fused", target], Reader::OpenCvGray, out, cfg, meta, progress)
}

/// Extracts the patches of `pairs` (first, second image) into the dataset `out`, the planes
/// named `names` in its metadata.
pub fn prepare_pairs(
    pairs: &[(PathBuf, PathBuf)],
    names: [&str; 2],
    reader: Reader,
    out: &Path,
    cfg: &PrepareConfig,
    extra_meta: serde_json::Value,
    mut progress: impl FnMut(usize, usize),
) -> Result<PrepareStats, PrepareError> {
    if cfg.patch == 0 || cfg.stride == 0 {
        return Err(input_err(out, "patch size and stride must be positive"));
    }
    let mut writer = DatasetWriter::create(out, 2, cfg.patch, cfg.patch)?;
    let mut stats = PrepareStats { pairs: pairs.len(), ..Default::default() };
    let mut files = Vec::new();
    for (n, (pa, pb)) in pairs.iter().enumerate() {
        let (w, h, a) = read_plane(pa, reader)?;
        let (wb, hb, b) = read_plane(pb, reader)?;
        if (w, h) != (wb, hb) {
            return Err(input_err(pb, format!("{wb}x{hb}, but its pair {} is {w}x{h}", pa.display())));
        }
        let mut kept = 0;
        if w >= cfg.patch && h >= cfg.patch {
            for top in (0..=h - cfg.patch).step_by(cfg.stride) {
                for left in (0..=w - cfg.patch).step_by(cfg.stride) {
                    stats.windows += 1;
                    let (wa, wb) = (window(&a, w, top, left, cfg.patch), window(&b, w, top, left, cfg.patch));
                    if is_low_contrast(&wb, cfg) || is_low_contrast(&wa, cfg) {
                        stats.dropped_low_contrast += 1;
                        continue;
                    }
                    writer.push(&[&wa, &wb])?;
                    kept += 1;
                }
            }
        }
        stats.kept += kept;
        let name = |p: &PathBuf| p.file_name().map(|s| s.to_string_lossy().into_owned());
        files.push(serde_json::json!({ names[0]: name(pa), names[1]: name(pb), "patches": kept }));
        progress(n + 1, pairs.len());
    }
    let mut meta = serde_json::json!({
        "format": "mmifds",
        "sources": names,
        "reader": reader,
        "config": cfg,
        "stats": stats,
        "files": files,
    });
    if let (Some(m), serde_json::Value::Object(extra)) = (meta.as_object_mut(), extra_meta) {
        m.extend(extra);
    }
    writer.finish(&meta)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {

    #[test]
    fn jpeg_inputs_are_read_with_the_libjpeg_decoder() {
        // A colour JPEG of mmif-io's test data (decoded there exactly as OpenCV/libjpeg do).
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mmif-io/tests/data/color420_odd.jpg");
        let (w, h, y) = read_y(&p).expect("a JPEG input must be readable");
        let gray = mmif_io::read_gray(&p).expect("mmif-io reads it");
        assert_eq!((w, h), (gray.width, gray.height));
        // Y on the /255 scale agrees with the unrounded official gray to within rounding.
        for (a, g) in y.iter().zip(&gray.data) {
            assert!((a * 255.0 - g).abs() <= 0.51, "{a} vs {g}");
        }
    }

    use super::*;

    #[test]
    fn numpy_percentiles_and_low_contrast() {
        let s: Vec<f32> = (0..11).map(|v| v as f32).collect();
        assert_eq!(percentile(&s, 10.0), 1.0);
        assert_eq!(percentile(&s, 90.0), 9.0);
        assert!((percentile(&[0.0, 1.0], 10.0) - 0.1).abs() < 1e-12);
        let cfg = PrepareConfig::default();
        assert!(is_low_contrast(&[0.5; 16], &cfg));
        assert!(!is_low_contrast(&s, &cfg));
        assert!(!is_low_contrast(&[0.0; 16], &cfg), "0/0 is NaN, which the official test keeps");
    }

    #[test]
    fn windows_follow_the_official_grid() {
        let dir = std::env::temp_dir().join(format!("mmif-prepare-{}", std::process::id()));
        for sub in ["vi", "ir"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let (w, h) = (50u32, 30u32);
        let rgb =
            image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 5) as u8, (y * 7) as u8, ((x + y) * 3) as u8]));
        rgb.save(dir.join("vi/a.png")).unwrap();
        let gray = image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 3 + y * 2) % 256) as u8]));
        gray.save(dir.join("ir/a.png")).unwrap();
        let cfg = PrepareConfig { patch: 16, stride: 20, ..Default::default() };
        let out = dir.join("d.mmifds");
        let stats = prepare(&dir.join("vi"), &dir.join("ir"), &out, &cfg, |_, _| {}).unwrap();
        // Corners at x ∈ {0, 20} (40 + 16 > 50), y ∈ {0} (20 + 16 > 30).
        assert_eq!((stats.windows, stats.kept), (2, 2));
        let mut d = crate::dataset::Dataset::open(&out).unwrap();
        let rec = d.get(1).unwrap();
        // Visible window 1 starts at x = 20: pixel (row 3, col 2) is image (23, 3)… as Y.
        let (r, g, b) = ((22 * 5) as f32 / 255.0, (3 * 7) as f32 / 255.0, ((22 + 3) * 3) as f32 / 255.0);
        assert_eq!(rec[0][3 * 16 + 2], r * 0.299 + g * 0.587 + b * 0.114);
        assert_eq!(rec[1][3 * 16 + 2], (22 * 3 + 3 * 2) as f32 / 255.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
