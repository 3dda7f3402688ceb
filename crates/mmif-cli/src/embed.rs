//! Images for the pages and figures mmif writes: decoding for display (colour kept), thumbnails,
//! PNG/JPEG encoding and `data:` URLs.
//!
//! Display images are 8-bit RGB (`Rgb`), decoded with the same decoders as every other reading
//! (`mmif_io::decode_image`: JPEG with libjpeg semantics, EXIF orientation applied); 16-bit and
//! float inputs are scaled to 8 bits by `image`'s conversion. Gray images stay RGB with equal
//! channels and are encoded as gray.

use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use image::{ImageEncoder, RgbImage};

/// Decodes an image file for display as 8-bit RGB.
pub fn read_rgb(path: &Path) -> Result<RgbImage> {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        let plane = mmif_io::read_gray(path)?;
        let px: Vec<u8> = plane.data.iter().flat_map(|&v| [v.round().clamp(0.0, 255.0) as u8; 3]).collect();
        return RgbImage::from_raw(plane.width as u32, plane.height as u32, px)
            .with_context(|| format!("{}: bad image size", path.display()));
    }
    let img = mmif_io::image_io::decode_image(path)?;
    if img.width() == 0 || img.height() == 0 {
        bail!("{}: empty image", path.display());
    }
    Ok(img.to_rgb8())
}

/// True if every pixel has equal R, G and B.
pub fn is_gray(img: &RgbImage) -> bool {
    img.pixels().all(|p| p[0] == p[1] && p[1] == p[2])
}

/// `img` scaled (Lanczos) so that its longer side is at most `max_side`; unchanged if it already is.
pub fn thumbnail(img: &RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let long = w.max(h);
    if long <= max_side || max_side == 0 {
        return img.clone();
    }
    let s = max_side as f64 / long as f64;
    let (tw, th) = (((w as f64 * s).round() as u32).max(1), ((h as f64 * s).round() as u32).max(1));
    image::imageops::resize(img, tw, th, image::imageops::FilterType::Lanczos3)
}

/// PNG bytes of `img` (gray if all channels are equal), best compression.
pub fn png_bytes(img: &RgbImage) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let enc = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::Adaptive,
    );
    if is_gray(img) {
        let g: Vec<u8> = img.pixels().map(|p| p[0]).collect();
        enc.write_image(&g, img.width(), img.height(), image::ExtendedColorType::L8)?;
    } else {
        enc.write_image(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgb8)?;
    }
    Ok(out)
}

/// Baseline JPEG bytes of `img` at `quality` (1..=100), gray if all channels are equal, with
/// optimised Huffman tables and 4:2:0 chroma.
pub fn jpeg_bytes(img: &RgbImage, quality: u8) -> Result<Vec<u8>> {
    let gray = is_gray(img);
    let (w, h) = (img.width() as usize, img.height() as usize);
    let pixels: Vec<u8> = if gray { img.pixels().map(|p| p[0]).collect() } else { img.as_raw().clone() };
    // libjpeg reports errors by unwinding (mozjpeg's `unwinding` feature): catch them.
    let r = std::panic::catch_unwind(move || -> std::io::Result<Vec<u8>> {
        let space = if gray { mozjpeg::ColorSpace::JCS_GRAYSCALE } else { mozjpeg::ColorSpace::JCS_RGB };
        let mut c = mozjpeg::Compress::new(space);
        c.set_size(w, h);
        c.set_quality(quality.clamp(1, 100) as f32);
        c.set_optimize_coding(true);
        let mut c = c.start_compress(Vec::new())?;
        c.write_scanlines(&pixels)?;
        c.finish()
    });
    match r {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => bail!("JPEG encoding failed: {e}"),
        Err(_) => bail!("JPEG encoding failed"),
    }
}

/// A `data:` URL of `bytes` with MIME type `mime`.
pub fn data_url(mime: &str, bytes: &[u8]) -> String {
    format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32, color: bool) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = ((x * 7 + y * 3) % 256) as u8;
            if color { image::Rgb([v, 255 - v, (x % 256) as u8]) } else { image::Rgb([v; 3]) }
        })
    }

    #[test]
    fn png_round_trip_gray_and_colour() {
        for color in [false, true] {
            let img = ramp(37, 21, color);
            let back = image::load_from_memory(&png_bytes(&img).unwrap()).unwrap();
            assert_eq!(back.color().has_color(), color);
            assert_eq!(back.to_rgb8(), img);
        }
    }

    #[test]
    fn jpeg_is_close_and_sized() {
        let img = ramp(64, 48, true);
        let bytes = jpeg_bytes(&img, 95).unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
        let path = std::env::temp_dir().join(format!("mmif-embed-{}.jpg", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let back = read_rgb(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back.dimensions(), (64, 48));
        let err: f64 = back.as_raw().iter().zip(img.as_raw()).map(|(&a, &b)| (a as f64 - b as f64).abs()).sum();
        assert!(err / (64.0 * 48.0 * 3.0) < 6.0, "mean abs error {}", err / (64.0 * 48.0 * 3.0));
    }

    #[test]
    fn thumbnails_keep_aspect() {
        let t = thumbnail(&ramp(400, 100, false), 200);
        assert_eq!(t.dimensions(), (200, 50));
        assert_eq!(thumbnail(&ramp(40, 10, false), 200).dimensions(), (40, 10));
        assert!(data_url("image/png", b"ab").starts_with("data:image/png;base64,YWI="));
    }
}
