//! [`Image`]: an 8-bit gray or colour image as MATLAB's `imread` returns it, the input of the
//! toolkit (VIFB/MEFB) metrics.

use super::matlab::Plane;
use crate::MetricError;

/// A borrowed 8-bit image: `height` rows of `width` pixels of `channels` interleaved values
/// (1 = gray, 3 = RGB), row-major — MATLAB's `uint8` `imread` result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Image<'a> {
    width: usize,
    height: usize,
    channels: usize,
    data: &'a [u8],
}

impl<'a> Image<'a> {
    /// Wraps `data`. Fails if the image is empty, `channels` is not 1 or 3, or the buffer does
    /// not hold `width * height * channels` values.
    pub fn new(width: usize, height: usize, channels: usize, data: &'a [u8]) -> Result<Self, MetricError> {
        if width == 0 || height == 0 {
            return Err(MetricError::Empty);
        }
        if channels != 1 && channels != 3 {
            return Err(MetricError::BadChannels(channels));
        }
        if width.checked_mul(height).and_then(|n| n.checked_mul(channels)) != Some(data.len()) {
            return Err(MetricError::BadBuffer { width, height, len: data.len() });
        }
        Ok(Self { width, height, channels, data })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// 1 (gray) or 3 (RGB).
    pub fn channels(&self) -> usize {
        self.channels
    }

    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    pub(crate) fn dims(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Channel `k` as `double` (MATLAB's `double(img(:,:,k))`).
    pub(crate) fn plane(&self, k: usize) -> Plane {
        let data = self.data.iter().skip(k).step_by(self.channels).map(|&v| f64::from(v)).collect();
        Plane::new(self.width, self.height, data)
    }

    /// Every channel as `double`.
    pub(crate) fn planes(&self) -> Vec<Plane> {
        (0..self.channels).map(|k| self.plane(k)).collect()
    }
}
