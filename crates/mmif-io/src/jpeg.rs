//! JPEG decoding with libjpeg-turbo's algorithms, as `cv2.imread` does.
//!
//! opencv-python decodes JPEG with its bundled libjpeg-turbo (3.1 in opencv-python 5.0). The
//! decoder here is mozjpeg (a libjpeg-turbo fork with the same decompressor), built from C source
//! by the `mozjpeg-sys` crate with neither SIMD (no nasm) nor a system library. Its output equals
//! `cv2.imread`'s byte for byte: checked against opencv-python 5.0.0 on the 100 RoadScene JPEGs
//! (4:2:0 colour and gray) and on generated files covering 4:1:1/4:2:0/4:2:2/4:4:0/4:4:4, odd and
//! 1-pixel sizes, progressive, arithmetic coding, restart intervals, CMYK and EXIF orientations
//! 1–8 (`tests/data/make_jpeg_refs.py` makes the small files `tests/images.rs` checks in CI).
//! OpenCV's settings are reproduced:
//! * libjpeg's defaults: accurate integer IDCT (`JDCT_ISLOW`), fancy (triangular) chroma
//!   upsampling, block smoothing for progressive files;
//! * 1 or 3 components: libjpeg converts to RGB (YCbCr→RGB by its integer tables; a gray JPEG gives
//!   three equal channels, returned here as one gray channel, which reads identically);
//! * 4 components (CMYK/YCCK): libjpeg outputs CMYK, converted as OpenCV does:
//!   `R = K - ((255 - C)·K >> 8)`, `G` from M, `B` from Y likewise;
//! * the EXIF orientation (the first APP1 `Exif` segment that has one) is applied.
//!
//! Deliberate difference: where OpenCV returns an image with lost data (only a warning on stderr),
//! this is an error: a truncated file (OpenCV pads the rest with gray, or shows only the first
//! scans of a progressive file) and corrupt entropy-coded data (a bad Huffman or arithmetic code, a
//! marker in the middle of the data, a lost restart marker). "Truncated" means libjpeg reached the
//! end of the file ("premature end of JPEG file") and either still needed entropy-coded data or the
//! file has several scans (progressive or non-interleaved), where a missing tail cannot be told
//! from a missing EOI marker. A single-scan file that only lacks its final EOI marker, or a file
//! with harmless defects (extraneous bytes before a marker, data after EOI, an unusual JFIF
//! version, …), is decoded exactly as libjpeg (and so OpenCV) decodes it.

use crate::limits::Limits;
use crate::{Error, Result};
use image::DynamicImage;
use image::metadata::Orientation;
use mozjpeg::{ColorSpace, DctMethod, Decompress, Marker};
use mozjpeg_sys::{
    JWRN_HIT_MARKER, JWRN_HUFF_BAD_CODE, JWRN_JPEG_EOF, JWRN_MUST_RESYNC, jpeg_common_struct, jpeg_error_mgr,
    jpeg_std_error,
};
use std::cell::{Cell, RefCell};
use std::os::raw::c_int;
use std::path::Path;

/// The JPEG signature (`cv2`'s and `image`'s).
pub(crate) fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

thread_local! {
    /// Set by [`emit_message`] when libjpeg reports that the file ended before its EOI marker.
    static HIT_EOF: Cell<bool> = const { Cell::new(false) };
    /// The first warning by which libjpeg reports lost image data, formatted.
    static DATA_LOST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The payload of the unwind started by a fatal libjpeg error.
struct Fatal(String);

/// libjpeg's message for its current `msg_code`.
///
/// # Safety
/// `cinfo.err` must point at the live error manager (libjpeg guarantees it in its callbacks).
unsafe fn message(cinfo: &mut jpeg_common_struct) -> String {
    let mut buf = [0u8; 80]; // JMSG_LENGTH_MAX
    // SAFETY: per the contract; `format_message` writes at most JMSG_LENGTH_MAX bytes (NUL
    // included). The binding declares the buffer as `&[u8; 80]` although libjpeg writes it, so it
    // is passed as a mutable pointer (same ABI).
    unsafe {
        match (*cinfo.err).format_message {
            Some(f) => {
                let f: unsafe extern "C-unwind" fn(&mut jpeg_common_struct, *mut u8) = std::mem::transmute(f);
                f(cinfo, buf.as_mut_ptr());
                let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
                String::from_utf8_lossy(&buf[..end]).into_owned()
            }
            None => format!("libjpeg message {}", (*cinfo.err).msg_code),
        }
    }
}

/// libjpeg's `emit_message`. Nothing is printed; warnings (`level < 0`) that mean a premature end
/// of file or lost data are remembered for [`decode`].
extern "C-unwind" fn emit_message(cinfo: &mut jpeg_common_struct, level: c_int) {
    if level >= 0 {
        return; // trace messages
    }
    // SAFETY: libjpeg calls this with `err` pointing at the live error manager.
    let code = unsafe { (*cinfo.err).msg_code };
    if code == JWRN_JPEG_EOF as c_int {
        HIT_EOF.with(|f| f.set(true));
    } else if DATA_LOST.with(|l| l.borrow().is_none()) {
        // SAFETY: as above.
        let msg = unsafe { message(cinfo) };
        // JWRN_ARITH_BAD_CODE has no constant in the bindings (its number depends on the ABI).
        let lost = [JWRN_HIT_MARKER, JWRN_HUFF_BAD_CODE, JWRN_MUST_RESYNC].contains(&(code as _))
            || msg == "Corrupt JPEG data: bad arithmetic code";
        if lost {
            DATA_LOST.with(|l| *l.borrow_mut() = Some(msg));
        }
    }
}

/// libjpeg's `error_exit`: unwinds (through the C frames, which `mozjpeg-sys` compiles with
/// `-fexceptions`) to the `catch_unwind` in [`decode`], carrying libjpeg's message.
extern "C-unwind" fn error_exit(cinfo: &mut jpeg_common_struct) {
    // SAFETY: libjpeg calls this with `err` pointing at the live error manager.
    let msg = unsafe { message(cinfo) };
    std::panic::resume_unwind(Box::new(Fatal(msg)));
}

fn error_mgr() -> jpeg_error_mgr {
    // SAFETY: `jpeg_error_mgr` is a plain C struct (integers, pointers, optional function
    // pointers) for which all-zero is valid; `jpeg_std_error` then fills in libjpeg's defaults.
    let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { jpeg_std_error(&mut err) };
    err.error_exit = Some(error_exit);
    err.emit_message = Some(emit_message);
    err
}

/// Decodes a JPEG as `cv2.imread(p, IMREAD_COLOR)` does, returning 8-bit gray (one-component
/// files) or RGB, with the EXIF orientation applied.
/// A declared size over `limits` is refused after reading the header, before any pixel is decoded.
pub(crate) fn decode(path: &Path, bytes: &[u8], limits: Limits) -> Result<DynamicImage> {
    HIT_EOF.with(|f| f.set(false));
    DATA_LOST.with(|l| l.take());
    let out = std::panic::catch_unwind(|| decode_unwinding(path, bytes, limits));
    let eof = HIT_EOF.with(|f| f.replace(false));
    let lost = DATA_LOST.with(|l| l.take());
    match (out, lost) {
        (Ok(Ok(_)), lost) if eof && (lost.is_some() || multi_scan(bytes)) => {
            Err(Error::image(path, "truncated JPEG (the data ends before the image does)"))
        }
        (Ok(Ok(_)), Some(msg)) => Err(Error::image(path, msg)),
        (Ok(Ok(img)), None) => Ok(img),
        (Ok(Err(e)), _) => Err(e),
        (Err(payload), _) => Err(Error::image(
            path,
            match payload.downcast::<Fatal>() {
                Ok(f) => f.0,
                Err(_) => "the JPEG decoder failed on corrupt data".to_string(),
            },
        )),
    }
}

/// Whether the JPEG has (or may have) more than one scan: a progressive frame, or a first scan that
/// does not hold all the frame's components. Walks the marker segments up to the first SOS; a
/// stream it cannot follow counts as multi-scan.
fn multi_scan(bytes: &[u8]) -> bool {
    let mut i = 2; // after SOI
    let mut frame: Option<(bool, u8)> = None; // (progressive, number of components)
    loop {
        while bytes.get(i) == Some(&0xFF) && bytes.get(i + 1) == Some(&0xFF) {
            i += 1; // fill bytes
        }
        let (Some(0xFF), Some(&m)) = (bytes.get(i), bytes.get(i + 1)) else { return true };
        if m == 0x01 || (0xD0..=0xD7).contains(&m) {
            i += 2; // stand-alone markers
            continue;
        }
        let Some(len) = bytes.get(i + 2..i + 4).map(|l| u16::from_be_bytes([l[0], l[1]]) as usize) else {
            return true;
        };
        let body = bytes.get(i + 4..i + 2 + len.max(2)).unwrap_or_default();
        match m {
            0xC0..=0xCF if m != 0xC4 && m != 0xC8 && m != 0xCC => {
                let Some(&nf) = body.get(5) else { return true };
                frame = Some((matches!(m, 0xC2 | 0xC6 | 0xCA | 0xCE), nf));
            }
            0xDA => {
                return match (frame, body.first()) {
                    (Some((progressive, nf)), Some(&ns)) => progressive || ns < nf,
                    _ => true,
                };
            }
            _ => {}
        }
        i += 2 + len;
    }
}

fn decode_unwinding(path: &Path, bytes: &[u8], limits: Limits) -> Result<DynamicImage> {
    let img_err = |e: std::io::Error| Error::image(path, e);
    let mut d = Decompress::with_err(error_mgr()).with_markers(&[Marker::APP(1)]).from_mem(bytes).map_err(img_err)?;
    let orientation = d
        .markers()
        .filter(|m| m.marker == Marker::APP(1))
        .filter_map(|m| m.data.strip_prefix(b"Exif\0\0"))
        .find_map(Orientation::from_exif_chunk);
    // libjpeg's defaults, which OpenCV keeps; set explicitly so that they cannot drift.
    d.dct_method(DctMethod::IntegerSlow);
    d.do_fancy_upsampling(true);
    d.do_block_smoothing(true);
    let (w, h, n) = (d.width(), d.height(), d.components().len());
    limits.check_pixels(path, w as u64, h as u64)?;
    // JPEG dimensions are at most 65535, so they fit u32; `read_scanlines` returns exactly h rows.
    let (w32, h32) = (w as u32, h as u32);
    let size_err = || Error::image(path, "the decoder returned a buffer of the wrong size");
    let mut img = match n {
        1 => {
            let px: Vec<u8> = d.grayscale().map_err(img_err)?.read_scanlines().map_err(img_err)?;
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(w32, h32, px).ok_or_else(size_err)?)
        }
        4 => {
            let cmyk: Vec<[u8; 4]> =
                d.to_colorspace(ColorSpace::JCS_CMYK).map_err(img_err)?.read_scanlines().map_err(img_err)?;
            let inv = |v: u8, k: u8| (k as u32 - (((255 - v as u32) * k as u32) >> 8)) as u8;
            let px = cmyk.iter().flat_map(|&[c, m, y, k]| [inv(c, k), inv(m, k), inv(y, k)]).collect();
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(w32, h32, px).ok_or_else(size_err)?)
        }
        _ => {
            let px: Vec<u8> =
                d.to_colorspace(ColorSpace::JCS_RGB).map_err(img_err)?.read_scanlines().map_err(img_err)?;
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(w32, h32, px).ok_or_else(size_err)?)
        }
    };
    // `jpeg_finish_decompress` is not called: all rows are read, and OpenCV ignores its outcome
    // (trailing data after the image is not an error).
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(img)
}
