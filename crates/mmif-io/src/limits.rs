//! Size limits checked before anything is allocated for an input.
//!
//! A small file can declare a huge image: a PNG of under 1 MB can say it holds 30000×30000 pixels,
//! which decodes to 0.9 GB and takes a fusion method tens of gigabytes further on. Like the
//! decompression-bomb limits of image libraries meant for untrusted files (Pillow's
//! `MAX_IMAGE_PIXELS`, libvips' and ImageMagick's resource policies), every reader of this crate
//! checks the size a file *declares* (image header, `.npy` shape) against a pixel limit before it
//! decodes or allocates, and refuses the file with [`Error::TooLarge`] naming both.
//!
//! The limit is process-wide ([`set_max_pixels`], the CLI's `--max-pixels`), default
//! [`DEFAULT_MAX_PIXELS`]; `0` means no limit. The `_with` readers take an explicit [`Limits`].

use crate::{Error, Result};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The default pixel limit: 100 megapixels (e.g. 12500×8000), about eight times a 12-megapixel
/// photograph. A gray image of this size is 0.4 GB as float32.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// Largest number of bytes one pixel of any accepted format can take in a file that is not
/// compressed (RGBA float32), used to bound the size of a file worth reading at all.
const MAX_FILE_BYTES_PER_PIXEL: u64 = 16;
/// Room for headers, metadata and inefficient encodings on top of the pixels themselves.
const FILE_SLACK_BYTES: u64 = 64 << 20;

static MAX_PIXELS: AtomicU64 = AtomicU64::new(DEFAULT_MAX_PIXELS);

/// Size limits for one read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest width × height accepted; `None` for no limit.
    pub max_pixels: Option<u64>,
}

impl Limits {
    /// No limit at all.
    pub const NONE: Limits = Limits { max_pixels: None };

    /// A pixel limit, `0` meaning none (the CLI's convention).
    pub fn pixels(max_pixels: u64) -> Self {
        Limits { max_pixels: (max_pixels > 0).then_some(max_pixels) }
    }

    /// The process-wide limits ([`set_max_pixels`]).
    pub fn current() -> Self {
        Limits::pixels(MAX_PIXELS.load(Ordering::Relaxed))
    }

    /// Refuses a declared `width × height` over the pixel limit.
    pub fn check_pixels(&self, path: &Path, width: u64, height: u64) -> Result<()> {
        let pixels = width.saturating_mul(height);
        match self.max_pixels {
            Some(max) if pixels > max => Err(Error::TooLarge {
                path: path.to_owned(),
                what: format!("the image declares {width}×{height} = {pixels} pixels"),
                limit: format!("the limit of {max} pixels"),
            }),
            _ => Ok(()),
        }
    }

    /// Refuses a file too large to hold any image within the pixel limit, before it is read.
    pub fn check_file_size(&self, path: &Path, bytes: u64) -> Result<()> {
        match self.max_pixels {
            Some(max) => {
                let cap = max.saturating_mul(MAX_FILE_BYTES_PER_PIXEL).saturating_add(FILE_SLACK_BYTES);
                if bytes > cap {
                    return Err(Error::TooLarge {
                        path: path.to_owned(),
                        what: format!("the file is {bytes} bytes"),
                        limit: format!("{cap} bytes, the most an image within the limit of {max} pixels can need"),
                    });
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Reads a whole input file after checking its size with [`Limits::check_file_size`].
    pub(crate) fn read_file(&self, path: &Path) -> Result<Vec<u8>> {
        let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
        self.check_file_size(path, len)?;
        std::fs::read(path).map_err(|e| Error::io(path, e))
    }
}

/// Sets the process-wide pixel limit of every image reader; `0` removes it.
pub fn set_max_pixels(max_pixels: u64) {
    MAX_PIXELS.store(max_pixels, Ordering::Relaxed);
}

/// The process-wide pixel limit, `None` when there is none.
pub fn max_pixels() -> Option<u64> {
    Limits::current().max_pixels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_limit_refuses_only_above_it() {
        let p = Path::new("x.png");
        let l = Limits::pixels(100);
        assert!(l.check_pixels(p, 10, 10).is_ok());
        let e = l.check_pixels(p, 11, 10).unwrap_err().to_string();
        assert!(e.contains("x.png") && e.contains("11×10 = 110 pixels") && e.contains("limit of 100"), "{e}");
        assert!(Limits::pixels(0).check_pixels(p, u64::MAX, u64::MAX).is_ok());
        assert!(Limits::NONE.check_file_size(p, u64::MAX).is_ok());
        // No overflow at the extremes.
        assert!(l.check_pixels(p, u64::MAX, u64::MAX).is_err());
        assert!(l.check_file_size(p, 100 * 16 + (64 << 20)).is_ok());
        assert!(l.check_file_size(p, 100 * 16 + (64 << 20) + 1).is_err());
    }
}
