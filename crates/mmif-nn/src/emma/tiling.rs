//! The inference procedures of the U-Fuser for any image size ([`Tiling`]; see [`super`]).

use burn::tensor::ops::PadMode;
use burn::tensor::{Tensor, TensorData};

use super::{EmmaError, MULTIPLE, Ufuser, check_pair, check_tile};

/// How [`Ufuser::fuse`] handles image sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tiling {
    /// The official `test.py`: four multiple-of-32 corner crops, pasted.
    #[default]
    Official,
    /// Reflect-pad to a multiple of 32, one pass, crop.
    Pad,
    /// Overlapping tiles of `size`×`size` (a multiple of 32; smaller when the image is) that
    /// overlap by at least `overlap` pixels, blended with a raised-cosine window.
    Tile { size: usize, overlap: usize },
}

impl Tiling {
    /// Checks the tile size (a positive multiple of 32) and overlap (smaller than the tile).
    pub fn validate(&self) -> Result<(), EmmaError> {
        match *self {
            Tiling::Tile { size, overlap } => check_tile(size, overlap),
            _ => Ok(()),
        }
    }
}

impl Ufuser {
    /// Fuses `ir` and `vis` (`B×1×H×W` in [0, 1], H and W at least 32) with the chosen
    /// procedure. Returns the network output on the (0,1) scale, *not* min-max normalised
    /// (the official script normalises afterwards; see [`Ufuser::official_test`]).
    pub fn fuse(&self, ir: Tensor<4>, vis: Tensor<4>, tiling: Tiling) -> Result<Tensor<4>, EmmaError> {
        check_pair(&ir, &vis)?;
        match tiling {
            Tiling::Official => Ok(self.official_raw(ir, vis)),
            Tiling::Pad => Ok(self.padded(ir, vis)),
            Tiling::Tile { size, overlap } => {
                check_tile(size, overlap)?;
                Ok(self.tiled(ir, vis, size, overlap))
            }
        }
    }

    /// The whole official `test.py` procedure: four-corner multiple-of-32 tiling, min-max over
    /// the result, ×255. Returns `B×1×H×W` on the 0..=255 scale.
    pub fn official_test(&self, ir: Tensor<4>, vis: Tensor<4>) -> Result<Tensor<4>, EmmaError> {
        check_pair(&ir, &vis)?;
        let [_, _, h, w] = ir.dims();
        if h.is_multiple_of(MULTIPLE) && w.is_multiple_of(MULTIPLE) {
            // The script normalises the network output, then scales.
            Ok(crate::min_max(self.forward(ir, vis)) * 255.0)
        } else {
            // The script scales each corner to 0..255 while pasting, normalises, scales again.
            Ok(crate::min_max(self.official_raw(ir, vis) * 255.0) * 255.0)
        }
    }

    /// `test.py`'s four-corner tiling without the final normalisation (0..1 scale).
    fn official_raw(&self, ir: Tensor<4>, vis: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = ir.dims();
        let (h1, w1) = (h - h % MULTIPLE, w - w % MULTIPLE);
        let (h2, w2) = (h % MULTIPLE, w % MULTIPLE);
        let run = |top: usize, left: usize| {
            let crop = |x: &Tensor<4>| x.clone().narrow(2, top, h1).narrow(3, left, w1);
            self.forward(crop(&ir), crop(&vis))
        };
        if h2 == 0 && w2 == 0 {
            return run(0, 0);
        }
        // Upper left: the whole crop; the other corners give only their rows/columns beyond it.
        let mut top_row = vec![run(0, 0)];
        if w2 > 0 {
            top_row.push(run(0, w - w1).narrow(3, w1 - w2, w2));
        }
        let mut rows = vec![Tensor::cat(top_row, 3)];
        if h2 > 0 {
            let mut bottom = vec![run(h - h1, 0).narrow(2, h1 - h2, h2)];
            if w2 > 0 {
                bottom.push(run(h - h1, w - w1).narrow(2, h1 - h2, h2).narrow(3, w1 - w2, w2));
            }
            rows.push(Tensor::cat(bottom, 3));
        }
        Tensor::cat(rows, 2)
    }

    /// Reflect-pad to a multiple of 32, one pass, crop.
    fn padded(&self, ir: Tensor<4>, vis: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = ir.dims();
        let (ph, pw) = (h.next_multiple_of(MULTIPLE) - h, w.next_multiple_of(MULTIPLE) - w);
        if ph == 0 && pw == 0 {
            return self.forward(ir, vis);
        }
        let (top, left) = (ph / 2, pw / 2);
        let pad = |x: Tensor<4>| x.pad((left, pw - left, top, ph - top), PadMode::Reflect);
        self.forward(pad(ir), pad(vis)).narrow(2, top, h).narrow(3, left, w)
    }

    /// Overlapping tiles blended with a raised-cosine window (see [`tile_starts`], [`ramp`]).
    fn tiled(&self, ir: Tensor<4>, vis: Tensor<4>, size: usize, overlap: usize) -> Tensor<4> {
        let [b, _, h, w] = ir.dims();
        let device = ir.device();
        let (th, tw) = (size.min(h - h % MULTIPLE), size.min(w - w % MULTIPLE));
        let (ys, xs) = (tile_starts(h, th, overlap), tile_starts(w, tw, overlap));
        let mut acc = vec![0.0f32; b * h * w];
        let mut wsum = vec![0.0f32; h * w];
        for (iy, &y0) in ys.iter().enumerate() {
            let wy = window(&ys, iy, th);
            for (ix, &x0) in xs.iter().enumerate() {
                let wx = window(&xs, ix, tw);
                let crop = |x: &Tensor<4>| x.clone().narrow(2, y0, th).narrow(3, x0, tw);
                let out = crate::weights::tensor_to_vec(self.forward(crop(&ir), crop(&vis)));
                for (y, &wyv) in wy.iter().enumerate() {
                    let row = (y0 + y) * w + x0;
                    for (x, &wxv) in wx.iter().enumerate() {
                        let k = wyv * wxv;
                        wsum[row + x] += k;
                        for n in 0..b {
                            acc[n * h * w + row + x] += k * out[(n * th + y) * tw + x];
                        }
                    }
                }
            }
        }
        for (i, v) in acc.iter_mut().enumerate() {
            *v /= wsum[i % (h * w)];
        }
        Tensor::from_data(TensorData::new(acc, [b, 1, h, w]), &device)
    }
}

/// Start offsets of tiles of length `t` covering `0..len` with consecutive tiles overlapping by
/// at least `overlap` (spread evenly; the first starts at 0, the last ends at `len`).
pub fn tile_starts(len: usize, t: usize, overlap: usize) -> Vec<usize> {
    if len <= t {
        return vec![0];
    }
    let step = t - overlap;
    let n = (len - t).div_ceil(step) + 1;
    (0..n).map(|i| i * (len - t) / (n - 1)).collect()
}

/// The raised-cosine ramp `sin²(π(j+½)/(2n))`, `j = 0..n`: strictly inside (0,1), and a ramp
/// plus its mirror image sum to exactly 1 at every position.
pub fn ramp(n: usize) -> Vec<f32> {
    (0..n)
        .map(|j| {
            let s = (std::f64::consts::PI * (j as f64 + 0.5) / (2.0 * n as f64)).sin();
            (s * s) as f32
        })
        .collect()
}

/// The 1-D blending weights of tile `i` (length `t`) among tiles starting at `starts`: 1, with a
/// rising ramp over the overlap with the previous tile and a falling one over the next.
fn window(starts: &[usize], i: usize, t: usize) -> Vec<f32> {
    let mut wgt = vec![1.0f32; t];
    if i > 0 {
        let n = starts[i - 1] + t - starts[i];
        for (v, r) in wgt.iter_mut().zip(ramp(n)) {
            *v *= r;
        }
    }
    if i + 1 < starts.len() {
        let n = starts[i] + t - starts[i + 1];
        for (v, r) in wgt.iter_mut().rev().zip(ramp(n)) {
            *v *= r;
        }
    }
    wgt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_and_overlap() {
        for (len, t, k) in [(70, 64, 16), (1000, 256, 32), (256, 256, 32), (300, 64, 0), (3000, 512, 64)] {
            let s = tile_starts(len, t, k);
            assert_eq!(s[0], 0);
            assert_eq!(s.last().copied().unwrap() + t, len.max(t));
            for p in s.windows(2) {
                assert!(p[1] > p[0] && p[0] + t >= p[1] + k, "{len} {t} {k}: {s:?}");
            }
        }
    }

    #[test]
    fn ramp_and_mirror_sum_to_one() {
        for n in [1, 2, 7, 64] {
            let r = ramp(n);
            assert!(r.iter().all(|&v| v > 0.0 && v < 1.0 + 1e-7));
            for j in 0..n {
                assert!((r[j] + r[n - 1 - j] - 1.0).abs() < 1e-6);
            }
        }
    }
}
