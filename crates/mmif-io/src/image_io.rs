//! Image reading and writing with the official scripts' conventions.
//!
//! **Reading.** The official test scripts read every input with
//! `np.round(cv2.cvtColor(cv2.imread(p).astype('float32'), cv2.COLOR_BGR2GRAY))`: an 8-bit BGR
//! image, converted on float32, rounded half to even, on the 0..=255 scale. [`read_image`]
//! reproduces this bit for bit on 8-bit inputs (PNG, BMP, 8-bit TIFF, JPEG). The float32 formula
//! is the one opencv-python's default x86 build executes (its IPP path):
//!
//! ```text
//! gray = fma(R, 0.299f, fma(B, 0.114f, G * 0.587f))     (f32, each fma rounded once)
//! ```
//!
//! This order was established by comparing against opencv-python 5.0.0 (IPP on) for all 2^24 8-bit
//! BGR triples: every float result is identical. OpenCV's own SIMD kernel (IPP off) computes
//! `fma(R, 0.299f, fma(G, 0.587f, B * 0.114f))`, which differs in the last bit for ~15% of the
//! triples and, after rounding, for a few hundred of the 2^24 triples (exact .5 ties).
//!
//! Deliberate differences from `cv2.imread` (documented, not parity-relevant for the fixtures):
//! * 16-bit PNG/TIFF: OpenCV's default flag would drop them to 8 bits. Here each channel is scaled
//!   `v * 255 / 65535` (in f64, then f32), converted with the same formula and **not rounded**, to
//!   keep the extra precision. A 16-bit single-channel image is returned scaled, unconverted.
//! * float TIFF: channels ×255, same formula, not rounded.
//! * JPEG is decoded with libjpeg-turbo's algorithms and OpenCV's settings (see `jpeg.rs`: mozjpeg
//!   built from C source), so the decoded BGR equals `cv2.imread`'s byte for byte. Unlike OpenCV,
//!   a truncated JPEG or one with corrupt entropy-coded data is an error. Other formats are decoded
//!   by the `image` crate.
//! * `.npy` inputs (float32 H×W, 1×H×W or 1×1×H×W, values in [0, 1]) are scaled ×255, not rounded.
//! * The alpha channel is ignored (as `cv2.IMREAD_COLOR` does); EXIF orientation is applied (as
//!   `cv2.imread` does by default) when the decoder reports one.
//!
//! **Colour.** A source whose RGB channels are not all equal also yields its chroma, in OpenCV's
//! YCrCb (BT.601) on the 0..=255 scale with delta 128 (OpenCV's float path uses delta 0.5 on the
//! [0, 1] scale; the same thing): `Cr = (R - Y)·0.713 + 128`, `Cb = (B - Y)·0.564 + 128`, `Y` the
//! unrounded gray. [`compose_color`] inverts it with OpenCV's YCrCb→RGB coefficients.
//!
//! **Writing.** All writers are atomic (temporary file + rename). 8-bit outputs are quantised the
//! way CDDFuse/EMMA's `img_save` (`skimage.io.imsave` → imageio's `image_as_uint`) does for float
//! data: `floor(v + 0.499999999)` in f64, clamped to 0..=255 ([`Quantize::ImageIo`]). imageio
//! additionally min-max stretches any float image not in [0, 1]; the official scripts min-max
//! normalise to 0..255 before saving, so that stretch is the identity there and is not applied
//! here. FILM's test script casts with `astype('uint8')` (truncation) instead: [`Quantize::Truncate`].
//! 16-bit TIFF maps 0..255 to 0..65535 by `round(v * 257)` (half up), clamped.

use crate::atomic::write_atomic;
use crate::limits::Limits;
use crate::npy::{NPY_MAGIC, check_plane, npy_f32_bytes, parse_npy_f32_limited};
use crate::{Error, Plane, Result};
use image::{DynamicImage, ImageEncoder};
use std::io::Cursor;
use std::path::Path;

/// OpenCV's BGR→gray weights as f32 (`R2YF`, `G2YF`, `B2YF`).
pub const GRAY_R: f32 = 0.299;
pub const GRAY_G: f32 = 0.587;
pub const GRAY_B: f32 = 0.114;
/// OpenCV's RGB→YCrCb chroma weights and the inverse coefficients.
const CR_K: f32 = 0.713;
const CB_K: f32 = 0.564;
const YCC_R_CR: f32 = 1.403;
const YCC_G_CR: f32 = -0.714;
const YCC_G_CB: f32 = -0.344;
const YCC_B_CB: f32 = 1.773;
const CHROMA_DELTA: f32 = 128.0;

/// Unrounded gray value of one RGB pixel (0..=255 scale), exactly as opencv-python computes
/// `COLOR_BGR2GRAY` on float32: `fma(R, 0.299, fma(B, 0.114, G * 0.587))`.
#[inline]
pub fn gray_from_rgb(r: f32, g: f32, b: f32) -> f32 {
    r.mul_add(GRAY_R, b.mul_add(GRAY_B, g * GRAY_G))
}

/// The official reading of an 8-bit pixel: [`gray_from_rgb`] rounded half to even (`np.round`).
#[inline]
pub fn gray_u8(r: u8, g: u8, b: u8) -> f32 {
    gray_from_rgb(r as f32, g as f32, b as f32).round_ties_even()
}

/// Chroma planes of a colour source: OpenCV YCrCb Cr and Cb, 0..=255 scale, delta 128.
#[derive(Clone, Debug, PartialEq)]
pub struct Chroma {
    pub cr: Plane,
    pub cb: Plane,
}

/// A decoded input image.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// Gray on the 0..=255 scale (official rounding for 8-bit sources, unrounded otherwise).
    pub gray: Plane,
    /// Chroma of an RGB source whose channels are not all equal; `None` for gray sources.
    pub color: Option<Chroma>,
    /// Bits per channel of the source: 8, 16, or 32 (float TIFF and `.npy`).
    pub bit_depth: u8,
}

/// Reads an image as the official scripts do with `image_read_cv2(path, 'GRAY')`; see the module
/// documentation for the exact formula and the handling of 16-bit, float and `.npy` inputs.
pub fn read_gray(path: &Path) -> Result<Plane> {
    Ok(read_image(path)?.gray)
}

/// Reads PNG, JPEG, BMP, TIFF (8/16-bit, float; gray, gray+alpha, RGB, RGBA) or a float32 `.npy`
/// (H×W, 1×H×W, 1×1×H×W, values in [0, 1]). Returns the gray plane (0..=255) and, for a colour
/// source, its chroma. Corrupt or truncated files give an error, never a panic.
///
/// Files that declare more pixels than the process-wide limit ([`crate::limits`]) are refused
/// before anything is decoded.
pub fn read_image(path: &Path) -> Result<Loaded> {
    read_image_with(path, Limits::current())
}

/// [`read_image`] with explicit size limits.
pub fn read_image_with(path: &Path, limits: Limits) -> Result<Loaded> {
    read_image_bytes(path, &limits.read_file(path)?, limits)
}

/// [`read_image_with`] on a file's bytes (`path` names it in errors).
pub fn read_image_bytes(path: &Path, bytes: &[u8], limits: Limits) -> Result<Loaded> {
    if bytes.starts_with(NPY_MAGIC) {
        return read_npy_image(path, bytes, limits);
    }
    Ok(from_pixels(decode_bytes(path, bytes, limits)?))
}

/// Decodes the bytes of an image file (not `.npy`) with the decoder its signature selects,
/// refusing a declared size over `limits` before decoding.
pub fn decode_bytes(path: &Path, bytes: &[u8], limits: Limits) -> Result<DynamicImage> {
    if crate::jpeg::is_jpeg(bytes) { crate::jpeg::decode(path, bytes, limits) } else { decode(path, bytes, limits) }
}

/// Decodes an image file to its pixels (orientation applied) with the same decoders as
/// [`read_image`]: JPEG through libjpeg(-turbo) semantics, other formats through `image`. For
/// callers that need the raw channels rather than the official gray reading.
/// Checks the size limits of [`read_image`] likewise.
pub fn decode_image(path: &Path) -> Result<DynamicImage> {
    let limits = Limits::current();
    decode_bytes(path, &limits.read_file(path)?, limits)
}

fn read_npy_image(path: &Path, bytes: &[u8], limits: Limits) -> Result<Loaded> {
    let mut too_large = None;
    let parsed = parse_npy_f32_limited(bytes, |shape| match shape {
        [h, w] | [1, h, w] | [1, 1, h, w] => limits.check_pixels(path, *w as u64, *h as u64).map_err(|e| {
            too_large = Some(e);
            String::new()
        }),
        _ => Ok(()),
    });
    if let Some(e) = too_large {
        return Err(e);
    }
    let (shape, data) = parsed.map_err(|m| Error::format(path, format!("not a float32 .npy image: {m}")))?;
    let (h, w) = match shape.as_slice() {
        [h, w] | [1, h, w] | [1, 1, h, w] => (*h, *w),
        s => {
            return Err(Error::unsupported(
                path,
                format!("a .npy image must be H×W, 1×H×W or 1×1×H×W single-channel float32, got shape {s:?}"),
            ));
        }
    };
    Ok(from_unit_gray(Plane::new(w, h, data)))
}

/// A float gray image on the 0..=1 scale as the sources read from a `.npy` are: ×255, not rounded.
pub fn from_unit_gray(plane: Plane) -> Loaded {
    Loaded { gray: plane.scale(255.0), color: None, bit_depth: 32 }
}

fn decode(path: &Path, bytes: &[u8], limits: Limits) -> Result<DynamicImage> {
    let run = || -> Result<DynamicImage> {
        let mut reader =
            image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| Error::io(path, e))?;
        // The decoders' own allocation cap follows the pixel limit (at most 16 bytes a pixel, RGBA
        // float32) instead of the `image` crate's fixed 512 MiB, which the check below supersedes.
        let mut image_limits = image::Limits::default();
        image_limits.max_alloc = limits.max_pixels.map(|m| m.saturating_mul(16).max(512 << 20));
        reader.limits(image_limits);
        if reader.format().is_none() {
            return Err(Error::unsupported(
                path,
                "unrecognised image format (expected PNG, JPEG, BMP, TIFF or a float32 .npy)",
            ));
        }
        let mut decoder = reader.into_decoder().map_err(|e| Error::image(path, e))?;
        use image::ImageDecoder;
        let (w, h) = decoder.dimensions();
        limits.check_pixels(path, w as u64, h as u64)?;
        let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
        let mut img = DynamicImage::from_decoder(decoder).map_err(|e| Error::image(path, e))?;
        img.apply_orientation(orientation);
        Ok(img)
    };
    // Decoders are expected not to panic on corrupt data; this is a second line of defence.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
        .unwrap_or_else(|_| Err(Error::image(path, "the decoder failed on corrupt data")))
}

/// Builds gray + optional chroma from per-pixel RGB on the 0..=255 scale.
struct Acc {
    gray: Vec<f32>,
    cr: Vec<f32>,
    cb: Vec<f32>,
    colour: bool,
}

impl Acc {
    fn new(n: usize) -> Self {
        Acc { gray: Vec::with_capacity(n), cr: Vec::with_capacity(n), cb: Vec::with_capacity(n), colour: false }
    }

    #[inline]
    fn push(&mut self, r: f32, g: f32, b: f32, round: bool) {
        let y = gray_from_rgb(r, g, b);
        self.gray.push(if round { y.round_ties_even() } else { y });
        if r != g || g != b {
            self.colour = true;
        }
        self.cr.push((r - y) * CR_K + CHROMA_DELTA);
        self.cb.push((b - y) * CB_K + CHROMA_DELTA);
    }

    fn finish(self, w: usize, h: usize, bit_depth: u8) -> Loaded {
        let color = self.colour.then(|| Chroma { cr: Plane::new(w, h, self.cr), cb: Plane::new(w, h, self.cb) });
        Loaded { gray: Plane::new(w, h, self.gray), color, bit_depth }
    }
}

#[inline]
fn scale16(v: u16) -> f32 {
    (v as f64 * 255.0 / 65535.0) as f32
}

/// Decoded pixels as [`read_image`] reads them: 8-bit gray rounded as the official reading,
/// 16-bit and float channels scaled to 0..=255 and not rounded, and the chroma of a colour image.
pub fn from_pixels(img: DynamicImage) -> Loaded {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let n = w * h;
    match img {
        DynamicImage::ImageLuma8(b) => {
            let gray = b.as_raw().iter().map(|&v| gray_u8(v, v, v)).collect();
            Loaded { gray: Plane::new(w, h, gray), color: None, bit_depth: 8 }
        }
        DynamicImage::ImageLumaA8(b) => {
            let gray = b.as_raw().chunks_exact(2).map(|p| gray_u8(p[0], p[0], p[0])).collect();
            Loaded { gray: Plane::new(w, h, gray), color: None, bit_depth: 8 }
        }
        DynamicImage::ImageLuma16(b) => {
            let gray = b.as_raw().iter().map(|&v| scale16(v)).collect();
            Loaded { gray: Plane::new(w, h, gray), color: None, bit_depth: 16 }
        }
        DynamicImage::ImageLumaA16(b) => {
            let gray = b.as_raw().chunks_exact(2).map(|p| scale16(p[0])).collect();
            Loaded { gray: Plane::new(w, h, gray), color: None, bit_depth: 16 }
        }
        DynamicImage::ImageRgb8(b) => rgb_u8(b.as_raw(), 3, w, h),
        DynamicImage::ImageRgba8(b) => rgb_u8(b.as_raw(), 4, w, h),
        DynamicImage::ImageRgb16(b) => rgb_u16(b.as_raw(), 3, w, h),
        DynamicImage::ImageRgba16(b) => rgb_u16(b.as_raw(), 4, w, h),
        other => {
            let f = other.to_rgb32f();
            let mut acc = Acc::new(n);
            for p in f.as_raw().chunks_exact(3) {
                acc.push(p[0] * 255.0, p[1] * 255.0, p[2] * 255.0, false);
            }
            acc.finish(w, h, 32)
        }
    }
}

fn rgb_u8(raw: &[u8], ch: usize, w: usize, h: usize) -> Loaded {
    let mut acc = Acc::new(w * h);
    for p in raw.chunks_exact(ch) {
        acc.push(p[0] as f32, p[1] as f32, p[2] as f32, true);
    }
    acc.finish(w, h, 8)
}

fn rgb_u16(raw: &[u16], ch: usize, w: usize, h: usize) -> Loaded {
    let mut acc = Acc::new(w * h);
    for p in raw.chunks_exact(ch) {
        acc.push(scale16(p[0]), scale16(p[1]), scale16(p[2]), false);
    }
    acc.finish(w, h, 16)
}

/// YCrCb → RGB with OpenCV's coefficients (`R = Y + 1.403·(Cr-128)`,
/// `G = Y - 0.714·(Cr-128) - 0.344·(Cb-128)`, `B = Y + 1.773·(Cb-128)`), 0..=255 scale, unclamped
/// (the writers clamp). Returns `[R, G, B]`.
///
/// # Panics
/// If `y` and the chroma planes differ in size (a programming error: the fused Y of an image is
/// always computed at the size of its source).
pub fn compose_color(y: &Plane, chroma: &Chroma) -> [Plane; 3] {
    assert!(
        y.same_size(&chroma.cr) && y.same_size(&chroma.cb),
        "compose_color: Y is {}x{} but the chroma is {}x{}",
        y.width,
        y.height,
        chroma.cr.width,
        chroma.cr.height
    );
    let n = y.data.len();
    let (mut r, mut g, mut b) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for ((&yy, &cr), &cb) in y.data.iter().zip(&chroma.cr.data).zip(&chroma.cb.data) {
        let (dr, db) = (cr - CHROMA_DELTA, cb - CHROMA_DELTA);
        r.push(yy + YCC_R_CR * dr);
        g.push(yy + YCC_G_CR * dr + YCC_G_CB * db);
        b.push(yy + YCC_B_CB * db);
    }
    let (w, h) = (y.width, y.height);
    [Plane::new(w, h, r), Plane::new(w, h, g), Plane::new(w, h, b)]
}

/// How 0..=255 floats become 8-bit values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Quantize {
    /// `floor(v + 0.499999999)` in f64, clamped: imageio's `image_as_uint` as used by CDDFuse and
    /// EMMA's `img_save` (round half up, except values within 1e-9 below .5).
    #[default]
    ImageIo,
    /// `floor(v)`, clamped: FILM's `astype('uint8')`.
    Truncate,
}

/// Quantises one 0..=255 value to 8 bits (NaN → 0).
#[inline]
pub fn quantize_u8(v: f32, mode: Quantize) -> u8 {
    let x = match mode {
        Quantize::ImageIo => (v as f64 + 0.499_999_999).floor(),
        Quantize::Truncate => (v as f64).floor(),
    };
    if x.is_nan() { 0 } else { x.clamp(0.0, 255.0) as u8 }
}

#[inline]
fn quantize_u16(v: f32) -> u16 {
    let x = (v as f64 * 257.0 + 0.5).floor();
    if x.is_nan() { 0 } else { x.clamp(0.0, 65535.0) as u16 }
}

fn check_rgb(path: &Path, rgb: &[Plane; 3]) -> Result<()> {
    for p in rgb {
        check_plane(path, p)?;
        if !p.same_size(&rgb[0]) {
            return Err(Error::format(path, "the R, G and B planes differ in size"));
        }
    }
    Ok(())
}

fn dims(path: &Path, p: &Plane) -> Result<(u32, u32)> {
    match (u32::try_from(p.width), u32::try_from(p.height)) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err(Error::format(path, format!("cannot write a {}x{} image", p.width, p.height))),
    }
}

fn png_bytes(path: &Path, buf: &[u8], w: u32, h: u32, ct: image::ExtendedColorType) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(buf, w, h, ct)
        .map_err(|e| Error::image(path, format!("cannot encode PNG: {e}")))?;
    Ok(out)
}

fn tiff_bytes(path: &Path, buf: &[u16], w: u32, h: u32, ct: image::ExtendedColorType) -> Result<Vec<u8>> {
    let raw: Vec<u8> = buf.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let mut out = Cursor::new(Vec::new());
    image::codecs::tiff::TiffEncoder::new(&mut out)
        .write_image(&raw, w, h, ct)
        .map_err(|e| Error::image(path, format!("cannot encode TIFF: {e}")))?;
    Ok(out.into_inner())
}

/// Writes an 8-bit gray PNG, quantised with [`Quantize::ImageIo`], atomically.
pub fn write_png8(path: &Path, plane: &Plane) -> Result<()> {
    write_png8_with(path, plane, Quantize::ImageIo)
}

/// Writes an 8-bit gray PNG with the given quantisation, atomically.
pub fn write_png8_with(path: &Path, plane: &Plane, mode: Quantize) -> Result<()> {
    check_plane(path, plane)?;
    let (w, h) = dims(path, plane)?;
    let buf: Vec<u8> = plane.data.iter().map(|&v| quantize_u8(v, mode)).collect();
    write_atomic(path, &png_bytes(path, &buf, w, h, image::ExtendedColorType::L8)?)
}

/// Writes an 8-bit RGB PNG from `[R, G, B]` planes on the 0..=255 scale ([`Quantize::ImageIo`]).
pub fn write_png_rgb8(path: &Path, rgb: &[Plane; 3]) -> Result<()> {
    write_png_rgb8_with(path, rgb, Quantize::ImageIo)
}

/// Writes an 8-bit RGB PNG with the given quantisation, atomically.
pub fn write_png_rgb8_with(path: &Path, rgb: &[Plane; 3], mode: Quantize) -> Result<()> {
    check_rgb(path, rgb)?;
    let (w, h) = dims(path, &rgb[0])?;
    let buf: Vec<u8> =
        (0..rgb[0].data.len()).flat_map(|i| rgb.iter().map(move |p| quantize_u8(p.data[i], mode))).collect();
    write_atomic(path, &png_bytes(path, &buf, w, h, image::ExtendedColorType::Rgb8)?)
}

/// Writes a 16-bit gray TIFF: 0..=255 → 0..=65535 (`round(v·257)`, clamped), atomically.
pub fn write_tiff16(path: &Path, plane: &Plane) -> Result<()> {
    check_plane(path, plane)?;
    let (w, h) = dims(path, plane)?;
    let buf: Vec<u16> = plane.data.iter().map(|&v| quantize_u16(v)).collect();
    write_atomic(path, &tiff_bytes(path, &buf, w, h, image::ExtendedColorType::L16)?)
}

/// Writes a 16-bit RGB TIFF from `[R, G, B]` planes on the 0..=255 scale, atomically.
pub fn write_tiff16_rgb(path: &Path, rgb: &[Plane; 3]) -> Result<()> {
    check_rgb(path, rgb)?;
    let (w, h) = dims(path, &rgb[0])?;
    let buf: Vec<u16> = (0..rgb[0].data.len()).flat_map(|i| rgb.iter().map(move |p| quantize_u16(p.data[i]))).collect();
    write_atomic(path, &tiff_bytes(path, &buf, w, h, image::ExtendedColorType::Rgb16)?)
}

/// An image to write with [`write_output`].
#[derive(Clone, Copy, Debug)]
pub enum OutputImage<'a> {
    Gray(&'a Plane),
    /// `[R, G, B]`, 0..=255 scale.
    Rgb(&'a [Plane; 3]),
}

impl<'a> From<&'a Plane> for OutputImage<'a> {
    fn from(p: &'a Plane) -> Self {
        OutputImage::Gray(p)
    }
}

impl<'a> From<&'a [Plane; 3]> for OutputImage<'a> {
    fn from(p: &'a [Plane; 3]) -> Self {
        OutputImage::Rgb(p)
    }
}

/// Writes an image choosing the format from the extension (case-insensitive):
/// `.png` 8-bit ([`Quantize::ImageIo`]), `.tif`/`.tiff` 16-bit, `.npy` float32 with values as
/// given (H×W for gray, H×W×3 for RGB). Any other extension is an error; nothing is written.
pub fn write_output<'a>(path: &Path, image: impl Into<OutputImage<'a>>) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
    match (ext.as_deref(), image.into()) {
        (Some("png"), OutputImage::Gray(p)) => write_png8(path, p),
        (Some("png"), OutputImage::Rgb(p)) => write_png_rgb8(path, p),
        (Some("tif" | "tiff"), OutputImage::Gray(p)) => write_tiff16(path, p),
        (Some("tif" | "tiff"), OutputImage::Rgb(p)) => write_tiff16_rgb(path, p),
        (Some("npy"), OutputImage::Gray(p)) => crate::npy::write_npy(path, p),
        (Some("npy"), OutputImage::Rgb(p)) => {
            check_rgb(path, p)?;
            let data: Vec<f32> = (0..p[0].data.len()).flat_map(|i| p.iter().map(move |c| c.data[i])).collect();
            let bytes = npy_f32_bytes(&[p[0].height, p[0].width, 3], &data).map_err(|m| Error::format(path, m))?;
            write_atomic(path, &bytes)
        }
        (e, _) => Err(Error::unsupported(
            path,
            format!(
                "unknown output extension {}: use .png (8-bit), .tif/.tiff (16-bit) or .npy (float32)",
                e.map(|e| format!("'.{e}'")).unwrap_or_else(|| "(none)".into())
            ),
        )),
    }
}
