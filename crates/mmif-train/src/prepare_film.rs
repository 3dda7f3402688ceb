//! FILM training data as the official `data_process.py` makes it, written to a version-2
//! `.mmifds` (records: image A, image B, text features).
//!
//! * Pairs: the images of folder A (infrared, MRI, over-exposed, near-focused: the network's
//!   `imageA`) and folder B (visible, CT/PET/SPECT, under-exposed, far-focused) with the same
//!   file stem, and the text-feature file `<stem>.npy` of the text folder (float32, `T×768` or
//!   `1×T×768`; stored as `T×768`). The official script takes the names from a `train.txt`
//!   list ([`FilmPrepareConfig::stems`]); by default every stem of folder A is used. A stem
//!   present in only one image folder, or without text features, is an error naming it; extra
//!   text files are ignored.
//! * Images are read as `image_read_cv2(path, 'GRAY')` does (`mmif_io::read_gray`: OpenCV's
//!   BGR→gray on float32, rounded; 0..=255).
//! * [`FilmSize::Small`] (the official `size = 'small'`, used for the IVF, MEF and MFF training
//!   sets): a landscape image (`h < w`) is resized to 384 wide × 288 high with `cv2.resize`'s
//!   default bilinear interpolation on the float32 gray image ([`resize_linear`]); any other
//!   (portrait or square) to 288 wide × 384 high and then **transposed** (not rotated), so every
//!   record is 288×384 (see [`resize_linear`] for how closely it follows OpenCV). [`FilmSize::Full`] (the official MIF path, and the other tasks'
//!   non-small mode) keeps the images as they are; as a dataset holds one record size, every
//!   pair must then have the same size.
//! * Values are divided by 255 in float32, as NumPy does for a float32 array.
//!
//! Records are written one pair at a time (nothing is held in memory beyond the current pair),
//! sorted by stem (the order in which HDF5 lists the official file's groups).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::DatasetWriter;
use crate::prepare::{PrepareError, by_stem, image_files, listing, stem};

/// Width of the text features.
pub const TEXT_DIM: usize = mmif_nn::film::TEXT_DIM;
/// Height and width of a record in [`FilmSize::Small`] mode.
pub const SMALL: [usize; 2] = [288, 384];

/// How the images are sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilmSize {
    /// 288×384 (landscape resized, portrait resized to 384×288 and transposed).
    Small,
    /// As read; every pair must have the same size.
    Full,
}

/// Settings of [`prepare_film`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FilmPrepareConfig {
    pub size: FilmSize,
    /// Only these stems, in any order (the official `train.txt`; a name is cut at its first
    /// `.`, as the official script does). `None`: every image of folder A.
    pub stems: Option<Vec<String>>,
    /// Where the text features came from, for the dataset's metadata (`text_dir`) when
    /// `text_dir` is a temporary folder (captions encoded on the fly); `None`: `text_dir` itself.
    #[serde(skip)]
    pub text_origin: Option<String>,
}

impl Default for FilmPrepareConfig {
    fn default() -> Self {
        Self { size: FilmSize::Small, stems: None, text_origin: None }
    }
}

/// What [`prepare_film`] did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FilmPrepareStats {
    pub pairs: usize,
    /// Pairs transposed (portrait or square sources in small mode).
    pub transposed: usize,
    /// Token counts `T` seen, with how many records have each.
    pub tokens: BTreeMap<usize, usize>,
    /// Text files with no image pair (ignored).
    pub unused_text: usize,
}

fn input_err(path: &Path, msg: impl Into<String>) -> PrepareError {
    PrepareError::Input { path: path.to_path_buf(), msg: msg.into() }
}

/// OpenCV's `cv2.resize(src, (dst_w, dst_h))` with the default `INTER_LINEAR` on a float32
/// single-channel image (`src` row-major `src_h×src_w`): source coordinate
/// `(d + 0.5)·(src/dst) − 0.5` (the scale in f64, the coordinate rounded to f32), clamped at the
/// borders with weight 1 on the edge pixel; each row is interpolated horizontally
/// (`s₀·(1−f) + s₁·f` in f32), then the two rows vertically the same way. An exact 2×
/// reduction takes OpenCV's area path (the mean of each 2×2 block), as `cv2.resize` does.
///
/// Checked against opencv-python 5.0 on random 0..=255 images: bit-identical for 600×450 →
/// 384×288 (scale 1.5625) and for the 2× reduction; for other scales (640×480, 130×100,
/// 385×287 → 384×288) the values differ in the last bits, by at most 5.2e-3 on the 0..=255
/// scale (2e-5 after the division by 255), so OpenCV's float path orders or fuses these
/// products differently there; this is far below one gray level.
///
/// # Panics
/// If a size is zero or `src` does not hold `src_w·src_h` values.
pub fn resize_linear(src: &[f32], src_w: usize, src_h: usize, dst_w: usize, dst_h: usize) -> Vec<f32> {
    assert!(src_w > 0 && src_h > 0 && dst_w > 0 && dst_h > 0, "empty image");
    assert_eq!(src.len(), src_w * src_h, "source size");
    if (src_w, src_h) == (dst_w, dst_h) {
        return src.to_vec();
    }
    if src_w == 2 * dst_w && src_h == 2 * dst_h {
        let mut out = Vec::with_capacity(dst_w * dst_h);
        for y in 0..dst_h {
            let (r0, r1) = (&src[2 * y * src_w..], &src[(2 * y + 1) * src_w..]);
            for x in 0..dst_w {
                out.push((r0[2 * x] + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1]) * 0.25);
            }
        }
        return out;
    }
    // Per output coordinate: the first source index and the weight of the second.
    let taps = |src_n: usize, dst_n: usize| -> Vec<(usize, f32)> {
        let scale = 1.0 / (dst_n as f64 / src_n as f64);
        (0..dst_n)
            .map(|d| {
                let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
                let s = f.floor();
                let (mut i, mut w) = (s as i64, f - s);
                if i < 0 {
                    (i, w) = (0, 0.0);
                }
                if i >= src_n as i64 - 1 {
                    (i, w) = (src_n as i64 - 1, 0.0);
                }
                (i as usize, w)
            })
            .collect()
    };
    let (xs, ys) = (taps(src_w, dst_w), taps(src_h, dst_h));
    let row = |r: usize| -> Vec<f32> {
        let s = &src[r * src_w..(r + 1) * src_w];
        xs.iter().map(|&(i, w)| if w == 0.0 { s[i] } else { s[i] * (1.0 - w) + s[i + 1] * w }).collect()
    };
    let mut out = Vec::with_capacity(dst_w * dst_h);
    for &(i, w) in &ys {
        let r0 = row(i);
        if w == 0.0 {
            out.extend(r0);
        } else {
            let r1 = row((i + 1).min(src_h - 1));
            out.extend(r0.iter().zip(&r1).map(|(a, b)| a * (1.0 - w) + b * w));
        }
    }
    out
}

/// The transpose of a row-major `h×w` plane (`w×h`).
fn transpose(p: &[f32], w: usize, h: usize) -> Vec<f32> {
    (0..w).flat_map(|x| (0..h).map(move |y| p[y * w + x])).collect()
}

/// One image as a record plane `(height, width, values in [0,1])`, and whether it was transposed.
fn read_plane(path: &Path, size: FilmSize) -> Result<(usize, usize, Vec<f32>, bool), PrepareError> {
    let g = mmif_io::read_gray(path).map_err(|e| input_err(path, format!("cannot read: {e}")))?;
    let (w, h) = (g.width, g.height);
    let (h, w, v, t) = match size {
        FilmSize::Full => (h, w, g.data, false),
        FilmSize::Small if h < w => (SMALL[0], SMALL[1], resize_linear(&g.data, w, h, SMALL[1], SMALL[0]), false),
        FilmSize::Small => {
            let r = resize_linear(&g.data, w, h, SMALL[0], SMALL[1]);
            (SMALL[0], SMALL[1], transpose(&r, SMALL[0], SMALL[1]), true)
        }
    };
    Ok((h, w, v.into_iter().map(|x| x / 255.0).collect(), t))
}

/// Reads a text-feature file: `(T, T×768 values)`.
pub fn read_text_features(path: &Path) -> Result<(usize, Vec<f32>), PrepareError> {
    let (shape, data) = mmif_io::read_npy_f32(path).map_err(|e| input_err(path, e.to_string()))?;
    match shape.as_slice() {
        [t, d] | [1, t, d] if *d == TEXT_DIM && *t > 0 => Ok((*t, data)),
        s => Err(input_err(
            path,
            format!("text features must be T×{TEXT_DIM} or 1×T×{TEXT_DIM} float32, got shape {s:?}"),
        )),
    }
}

/// The stem of a path (`None` when it is not valid UTF-8).
/// Builds the FILM training dataset `out` from image folders `a_dir`, `b_dir` and the text
/// features in `text_dir`. `progress(done, total)` is called after each pair.
pub fn prepare_film(
    a_dir: &Path,
    b_dir: &Path,
    text_dir: &Path,
    out: &Path,
    cfg: &FilmPrepareConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<FilmPrepareStats, PrepareError> {
    let a = by_stem(image_files(a_dir)?, a_dir)?;
    let b = by_stem(image_files(b_dir)?, b_dir)?;
    let rd = std::fs::read_dir(text_dir).map_err(|e| input_err(text_dir, format!("cannot list the folder: {e}")))?;
    let texts: BTreeMap<String, PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")))
        .filter_map(|p| stem(&p).map(|s| (s, p)))
        .collect();
    let stems: Vec<String> = match &cfg.stems {
        Some(list) => {
            let set: BTreeSet<String> = list
                .iter()
                .map(|n| n.split('.').next().unwrap_or_default().trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            set.into_iter().collect()
        }
        None => {
            let only_b: Vec<&String> = b.keys().filter(|s| !a.contains_key(*s)).collect();
            if !only_b.is_empty() {
                return Err(input_err(
                    b_dir,
                    format!("no image of the same stem in {} for {}", a_dir.display(), listing(&only_b)),
                ));
            }
            a.keys().cloned().collect()
        }
    };
    if stems.is_empty() {
        return Err(input_err(a_dir, "no images found"));
    }
    for (dir, files) in [(a_dir, &a), (b_dir, &b), (text_dir, &texts)] {
        let missing: Vec<&String> = stems.iter().filter(|s| !files.contains_key(*s)).collect();
        if !missing.is_empty() {
            let what = if dir == text_dir { "no text features (<stem>.npy)" } else { "no image" };
            return Err(input_err(dir, format!("{what} for {}", listing(&missing))));
        }
    }
    let mut stats = FilmPrepareStats {
        pairs: stems.len(),
        unused_text: texts.keys().filter(|s| stems.binary_search(s).is_err()).count(),
        ..Default::default()
    };
    let mut writer: Option<DatasetWriter> = None;
    let mut record_size = (0, 0);
    let mut files = Vec::with_capacity(stems.len());
    for (n, s) in stems.iter().enumerate() {
        let (pa, pb, pt) = (&a[s], &b[s], &texts[s]);
        let (h, w, va, ta) = read_plane(pa, cfg.size)?;
        let (hb, wb, vb, _) = read_plane(pb, cfg.size)?;
        if (h, w) != (hb, wb) {
            return Err(input_err(pb, format!("{wb}x{hb}, but its pair {} is {w}x{h}", pa.display())));
        }
        let (tokens, text) = read_text_features(pt)?;
        let writer = match &mut writer {
            Some(wr) => {
                if (h, w) != record_size {
                    return Err(input_err(
                        pa,
                        format!(
                            "{w}x{h}, but the records so far are {}x{}: full-size mode needs one image size (use the small mode to resize)",
                            record_size.1, record_size.0
                        ),
                    ));
                }
                wr
            }
            None => {
                record_size = (h, w);
                writer.insert(DatasetWriter::create_with_text(out, 2, h, w, TEXT_DIM)?)
            }
        };
        writer.push_with_text(&[&va, &vb], &text, tokens)?;
        stats.transposed += usize::from(ta);
        *stats.tokens.entry(tokens).or_default() += 1;
        let name = |p: &Path| p.file_name().map(|f| f.to_string_lossy().into_owned());
        files.push(serde_json::json!({"stem": s, "a": name(pa), "b": name(pb), "text": name(pt), "tokens": tokens, "transposed": ta}));
        progress(n + 1, stems.len());
    }
    let meta = serde_json::json!({
        "format": "mmifds",
        "for": "film",
        "sources": ["a", "b"],
        "text": {"dim": TEXT_DIM},
        "config": cfg,
        "a_dir": a_dir.display().to_string(),
        "b_dir": b_dir.display().to_string(),
        "text_dir": cfg.text_origin.clone().unwrap_or_else(|| text_dir.display().to_string()),
        "stats": stats,
        "files": files,
    });
    writer.expect("at least one pair").finish(&meta)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Dataset;

    #[test]
    fn resize_follows_opencv_bilinear() {
        // 2×2 → 4×4: coordinates (d + 0.5)/2 − 0.5 = −0.25, 0.25, 0.75, 1.25 → clamped 0, then
        // weights 0.25 and 0.75 on the pair, then the last pixel.
        let src = [0.0f32, 8.0, 16.0, 24.0];
        let out = resize_linear(&src, 2, 2, 4, 4);
        assert_eq!(&out[..4], &[0.0, 2.0, 6.0, 8.0]);
        assert_eq!(&out[4..8], &[4.0, 6.0, 10.0, 12.0]); // row 0.25 of the way to row 1 (+16·0.25)
        assert_eq!(&out[12..], &[16.0, 18.0, 22.0, 24.0]);
        // 3 → 2 columns: scale 1.5, coordinates 0.25 and 1.75.
        let out = resize_linear(&[0.0, 4.0, 8.0], 3, 1, 2, 1);
        assert_eq!(out, vec![1.0, 7.0]);
        // Exact halving is the 2×2 mean.
        let out = resize_linear(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 4, 2, 2, 1);
        assert_eq!(out, vec![(1.0 + 2.0 + 5.0 + 6.0) / 4.0, (3.0 + 4.0 + 7.0 + 8.0) / 4.0]);
        assert_eq!(resize_linear(&src, 2, 2, 2, 2), src.to_vec());
    }

    struct Dirs(PathBuf);

    impl Dirs {
        fn new(tag: &str) -> Self {
            let d = std::env::temp_dir().join(format!("mmif-prepare-film-{}-{tag}", std::process::id()));
            for sub in ["ir", "vi", "text"] {
                std::fs::create_dir_all(d.join(sub)).unwrap();
            }
            Dirs(d)
        }
        fn p(&self, s: &str) -> PathBuf {
            self.0.join(s)
        }
        fn gray(&self, sub: &str, name: &str, w: u32, h: u32, f: impl Fn(u32, u32) -> u8) {
            image::GrayImage::from_fn(w, h, |x, y| image::Luma([f(x, y)])).save(self.p(sub).join(name)).unwrap();
        }
        fn text(&self, name: &str, shape: &[usize], seed: u64) -> Vec<f32> {
            let v = mmif_io::uniform_pm1(seed, 1, shape.iter().product());
            mmif_io::write_npy_f32(&self.p("text").join(name), shape, &v).unwrap();
            v
        }
        fn run(&self, cfg: &FilmPrepareConfig) -> Result<FilmPrepareStats, PrepareError> {
            prepare_film(&self.p("ir"), &self.p("vi"), &self.p("text"), &self.p("d.mmifds"), cfg, |_, _| {})
        }
    }

    impl Drop for Dirs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn small_mode_resizes_transposes_and_stores_text() {
        let d = Dirs::new("small");
        // A landscape pair (40×30) and a portrait pair (30×40), gray ramps.
        let ramp = |x: u32, y: u32| ((x * 5 + y * 3) % 256) as u8;
        d.gray("ir", "a.png", 40, 30, ramp);
        d.gray("vi", "a.png", 40, 30, |x, y| ramp(y, x));
        d.gray("ir", "b.png", 30, 40, ramp);
        d.gray("vi", "b.png", 30, 40, ramp);
        let ta = d.text("a.npy", &[1, 3, TEXT_DIM], 1);
        let tb = d.text("b.npy", &[5, TEXT_DIM], 2);
        d.text("unused.npy", &[2, TEXT_DIM], 3);
        let stats = d.run(&FilmPrepareConfig::default()).unwrap();
        assert_eq!((stats.pairs, stats.transposed, stats.unused_text), (2, 1, 1));
        let mut ds = Dataset::open(&d.p("d.mmifds")).unwrap();
        assert_eq!((ds.version, ds.len, ds.height, ds.width, ds.text_dim), (2, 2, 288, 384, Some(TEXT_DIM)));
        // Record 0 (stem a): the landscape IR resized directly.
        let g = mmif_io::read_gray(&d.p("ir/a.png")).unwrap();
        let want: Vec<f32> = resize_linear(&g.data, 40, 30, 384, 288).iter().map(|v| v / 255.0).collect();
        assert_eq!(ds.get(0).unwrap()[0], want);
        let t = ds.text(0).unwrap().unwrap();
        assert_eq!((t.tokens, t.data.clone()), (3, ta));
        // Record 1 (stem b): the portrait IR resized to 288 wide × 384 high, then transposed.
        let g = mmif_io::read_gray(&d.p("ir/b.png")).unwrap();
        let r = resize_linear(&g.data, 30, 40, 288, 384);
        let rec = ds.get(1).unwrap();
        for (y, x) in [(0, 0), (5, 17), (287, 383), (100, 200)] {
            assert_eq!(rec[0][y * 384 + x], r[x * 288 + y] / 255.0, "({y}, {x})");
        }
        assert_eq!(ds.text(1).unwrap().unwrap().data, tb);
        assert_eq!(ds.metadata["stats"]["tokens"]["5"], 1);
    }

    #[test]
    fn full_mode_keeps_sizes_and_requires_one_size() {
        let d = Dirs::new("full");
        d.gray("ir", "x.png", 12, 10, |x, y| (x * 20 + y) as u8);
        d.gray("vi", "x.png", 12, 10, |x, _| (x * 3) as u8);
        d.text("x.npy", &[4, TEXT_DIM], 1);
        let cfg = FilmPrepareConfig { size: FilmSize::Full, ..Default::default() };
        d.run(&cfg).unwrap();
        let mut ds = Dataset::open(&d.p("d.mmifds")).unwrap();
        assert_eq!((ds.height, ds.width), (10, 12));
        assert_eq!(ds.get(0).unwrap()[0][12 + 5], (5.0 * 20.0 + 1.0) / 255.0);
        // A second pair of another size is refused in full mode.
        d.gray("ir", "y.png", 10, 10, |_, _| 1);
        d.gray("vi", "y.png", 10, 10, |_, _| 2);
        d.text("y.npy", &[4, TEXT_DIM], 2);
        let err = d.run(&cfg).unwrap_err().to_string();
        assert!(err.contains("full-size mode needs one image size"), "{err}");
    }

    #[test]
    fn unpaired_stems_and_bad_text_are_clear_errors() {
        let d = Dirs::new("errors");
        d.gray("ir", "p.png", 8, 6, |_, _| 1);
        d.gray("vi", "p.png", 8, 6, |_, _| 2);
        d.gray("ir", "q.png", 8, 6, |_, _| 1);
        let cfg = FilmPrepareConfig::default();
        let err = d.run(&cfg).unwrap_err().to_string();
        assert!(err.contains("no image for q") && err.contains("vi"), "{err}");
        d.gray("vi", "q.png", 8, 6, |_, _| 2);
        d.gray("vi", "r.png", 8, 6, |_, _| 2);
        let err = d.run(&cfg).unwrap_err().to_string();
        assert!(err.contains("for r"), "{err}");
        std::fs::remove_file(d.p("vi/r.png")).unwrap();
        d.text("p.npy", &[2, TEXT_DIM], 1);
        let err = d.run(&cfg).unwrap_err().to_string();
        assert!(err.contains("no text features") && err.contains("q"), "{err}");
        d.text("q.npy", &[2, 3, TEXT_DIM], 1);
        let err = d.run(&cfg).unwrap_err().to_string();
        assert!(err.contains("q.npy") && err.contains("[2, 3, 768]"), "{err}");
        d.text("q.npy", &[2, 512], 1);
        assert!(d.run(&cfg).unwrap_err().to_string().contains("[2, 512]"));
        // A list restricts the stems (names cut at the first '.').
        let only_p = FilmPrepareConfig { stems: Some(vec!["p.png".into()]), ..cfg.clone() };
        assert_eq!(d.run(&only_p).unwrap().pairs, 1);
        assert!(!d.p(".d.mmifds.tmp").exists());
    }
}
