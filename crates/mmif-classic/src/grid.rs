//! Internal f64 image buffer and the separable filters shared by the methods.
//!
//! All filters work on whole rows so that rows (or bands of rows) can be processed in parallel
//! with rayon; every filter is O(1) or O(taps) per pixel.

use mmif_io::Plane;
use rayon::prelude::*;

/// Below this many pixels a filter runs on the calling thread only.
const PAR_MIN_PIXELS: usize = 1 << 14;

/// A row-major f64 image used for all intermediate computations (the inputs are f32, but the
/// guided filter's `eps2 = 1e-6` and the wavelet's reconstruction tolerance need the headroom).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Grid {
    pub w: usize,
    pub h: usize,
    pub data: Vec<f64>,
}

impl Grid {
    pub fn zeros(w: usize, h: usize) -> Self {
        Self { w, h, data: vec![0.0; w * h] }
    }

    pub fn from_plane(p: &Plane) -> Self {
        Self { w: p.width, h: p.height, data: p.data.iter().map(|&v| f64::from(v)).collect() }
    }

    pub fn from_plane_scaled(p: &Plane, k: f64) -> Self {
        Self { w: p.width, h: p.height, data: p.data.iter().map(|&v| f64::from(v) * k).collect() }
    }

    pub fn to_plane(&self) -> Plane {
        Plane::new(self.w, self.h, self.data.iter().map(|&v| v as f32).collect())
    }

    pub fn to_plane_scaled(&self, k: f64) -> Plane {
        Plane::new(self.w, self.h, self.data.iter().map(|&v| (v * k) as f32).collect())
    }

    #[inline]
    pub fn row(&self, y: usize) -> &[f64] {
        &self.data[y * self.w..(y + 1) * self.w]
    }

    /// Element-wise combination of two grids of the same size.
    pub fn zip_map(&self, other: &Grid, f: impl Fn(f64, f64) -> f64 + Sync) -> Grid {
        debug_assert!(self.w == other.w && self.h == other.h);
        let data = if self.data.len() >= PAR_MIN_PIXELS {
            self.data.par_iter().zip(other.data.par_iter()).map(|(&a, &b)| f(a, b)).collect()
        } else {
            self.data.iter().zip(&other.data).map(|(&a, &b)| f(a, b)).collect()
        };
        Grid { w: self.w, h: self.h, data }
    }

    pub fn map(&self, f: impl Fn(f64) -> f64 + Sync) -> Grid {
        let data = if self.data.len() >= PAR_MIN_PIXELS {
            self.data.par_iter().map(|&a| f(a)).collect()
        } else {
            self.data.iter().map(|&a| f(a)).collect()
        };
        Grid { w: self.w, h: self.h, data }
    }
}

/// Runs `f(y, row)` over the rows of `out`, in parallel for large images.
pub(crate) fn for_each_row(out: &mut [f64], w: usize, f: impl Fn(usize, &mut [f64]) + Sync) {
    if w == 0 {
        return;
    }
    if out.len() >= PAR_MIN_PIXELS {
        out.par_chunks_mut(w).enumerate().for_each(|(y, row)| f(y, row));
    } else {
        out.chunks_mut(w).enumerate().for_each(|(y, row)| f(y, row));
    }
}

/// Whole-sample symmetric ("reflect-101", OpenCV `BORDER_REFLECT_101`) index: `… 2 1 | 0 1 2 … n-1 | n-2 …`.
/// Its period `2(n-1)` is even, so it never changes the parity of an index; for `n == 1` it is 0.
#[inline]
pub(crate) fn reflect101(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let p = 2 * (n as isize - 1);
    let k = i.rem_euclid(p);
    (if k >= n as isize { p - k } else { k }) as usize
}

/// Replicated-edge index (MATLAB `imfilter(.., 'replicate')`).
#[inline]
pub(crate) fn clamp_index(i: isize, n: usize) -> usize {
    i.clamp(0, n as isize - 1) as usize
}

/// How a box filter treats the image border.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BoxBorder {
    /// Mean over the part of the window inside the image (He et al.'s `boxfilter(..)/N`).
    Clip,
    /// Mean over the full `(2r+1)²` window with replicated edge pixels.
    Replicate,
}

/// Mean over a `(2r+1)×(2r+1)` window, O(1) per pixel (prefix sums along rows, then along columns).
pub(crate) fn box_mean(src: &Grid, r: usize, border: BoxBorder) -> Grid {
    let (w, h) = (src.w, src.h);
    let full = (2 * r + 1) as f64;
    // Horizontal pass: prefix sum of each row.
    let mut tmp = Grid::zeros(w, h);
    let horiz = |y: usize, out: &mut [f64], pre: &mut Vec<f64>| {
        let s = src.row(y);
        pre.clear();
        pre.push(0.0);
        let mut acc = 0.0;
        for &v in s {
            acc += v;
            pre.push(acc);
        }
        for (x, o) in out.iter_mut().enumerate() {
            let lo = x.saturating_sub(r);
            let hi = (x + r).min(w - 1);
            let mid = pre[hi + 1] - pre[lo];
            *o = match border {
                BoxBorder::Clip => mid / (hi + 1 - lo) as f64,
                BoxBorder::Replicate => {
                    let nl = r.saturating_sub(x) as f64;
                    let nr = (x + r).saturating_sub(w - 1) as f64;
                    (mid + nl * s[0] + nr * s[w - 1]) / full
                }
            };
        }
    };
    if tmp.data.len() >= PAR_MIN_PIXELS {
        tmp.data
            .par_chunks_mut(w)
            .enumerate()
            .for_each_init(|| Vec::with_capacity(w + 1), |pre, (y, out)| horiz(y, out, pre));
    } else {
        let mut pre = Vec::with_capacity(w + 1);
        tmp.data.chunks_mut(w).enumerate().for_each(|(y, out)| horiz(y, out, &mut pre));
    }
    // Vertical pass: prefix sums down the columns, one row of `w` at a time (vectorisable).
    let mut pre = vec![0.0; (h + 1) * w];
    for y in 0..h {
        let (done, rest) = pre.split_at_mut((y + 1) * w);
        let prev = &done[y * w..];
        for ((p, &q), &v) in rest[..w].iter_mut().zip(prev).zip(tmp.row(y)) {
            *p = q + v;
        }
    }
    let mut out = Grid::zeros(w, h);
    for_each_row(&mut out.data, w, |y, o| {
        let lo = y.saturating_sub(r);
        let hi = (y + r).min(h - 1);
        let top = &pre[lo * w..(lo + 1) * w];
        let bot = &pre[(hi + 1) * w..(hi + 2) * w];
        match border {
            BoxBorder::Clip => {
                let inv = 1.0 / (hi + 1 - lo) as f64;
                for ((o, &b), &t) in o.iter_mut().zip(bot).zip(top) {
                    *o = (b - t) * inv;
                }
            }
            BoxBorder::Replicate => {
                let nl = r.saturating_sub(y) as f64;
                let nr = (y + r).saturating_sub(h - 1) as f64;
                let (first, last) = (tmp.row(0), tmp.row(h - 1));
                for x in 0..w {
                    o[x] = (bot[x] - top[x] + nl * first[x] + nr * last[x]) / full;
                }
            }
        }
    });
    out
}

/// Separable correlation with an odd-length kernel `k` (along x, then y); `index(i, n)` maps an
/// index outside `0..n` to the border pixel it reads (the border rule).
pub(crate) fn correlate_separable(src: &Grid, k: &[f64], index: fn(isize, usize) -> usize) -> Grid {
    debug_assert!(k.len() % 2 == 1);
    let (w, h) = (src.w, src.h);
    let r = k.len() / 2;
    let mut tmp = Grid::zeros(w, h);
    for_each_row(&mut tmp.data, w, |y, o| {
        let s = src.row(y);
        // the row with its border extension, then plain dot products
        let padded: Vec<f64> = (0..w + 2 * r).map(|i| s[index(i as isize - r as isize, w)]).collect();
        for (x, ov) in o.iter_mut().enumerate() {
            let mut acc = 0.0;
            for (kv, pv) in k.iter().zip(&padded[x..x + k.len()]) {
                acc += kv * pv;
            }
            *ov = acc;
        }
    });
    let mut out = Grid::zeros(w, h);
    for_each_row(&mut out.data, w, |y, o| {
        for (j, &kv) in k.iter().enumerate() {
            let s = tmp.row(index(y as isize + j as isize - r as isize, h));
            for (ov, &sv) in o.iter_mut().zip(s) {
                *ov += kv * sv;
            }
        }
    });
    out
}

/// Separable correlation with an odd-length kernel `k` (applied along x, then y), replicated borders.
pub(crate) fn correlate_separable_replicate(src: &Grid, k: &[f64]) -> Grid {
    correlate_separable(src, k, clamp_index)
}

/// The normalised sampled Gaussian of radius `r` (MATLAB `fspecial('gaussian', 2r+1, sigma)` is its
/// outer product with itself).
pub(crate) fn gaussian_kernel(r: usize, sigma: f64) -> Vec<f64> {
    let mut k: Vec<f64> =
        (-(r as isize)..=r as isize).map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp()).collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    k
}

/// 3×3 Laplacian `[0 1 0; 1 -4 1; 0 1 0]` with replicated borders.
pub(crate) fn laplacian3(src: &Grid) -> Grid {
    let (w, h) = (src.w, src.h);
    let mut out = Grid::zeros(w, h);
    for_each_row(&mut out.data, w, |y, o| {
        let c = src.row(y);
        let up = src.row(y.saturating_sub(1));
        let dn = src.row((y + 1).min(h - 1));
        for x in 0..w {
            let l = c[x.saturating_sub(1)];
            let r = c[(x + 1).min(w - 1)];
            o[x] = up[x] + dn[x] + l + r - 4.0 * c[x];
        }
    });
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn brute_box(src: &Grid, r: usize, border: BoxBorder) -> Grid {
        let mut out = Grid::zeros(src.w, src.h);
        let r = r as isize;
        for y in 0..src.h as isize {
            for x in 0..src.w as isize {
                let (mut s, mut n) = (0.0, 0.0);
                for dy in -r..=r {
                    for dx in -r..=r {
                        let (xx, yy) = (x + dx, y + dy);
                        let inside = xx >= 0 && yy >= 0 && xx < src.w as isize && yy < src.h as isize;
                        match border {
                            BoxBorder::Clip if inside => {
                                s += src.data[yy as usize * src.w + xx as usize];
                                n += 1.0;
                            }
                            BoxBorder::Clip => {}
                            BoxBorder::Replicate => {
                                s += src.data[clamp_index(yy, src.h) * src.w + clamp_index(xx, src.w)];
                                n += 1.0;
                            }
                        }
                    }
                }
                out.data[y as usize * src.w + x as usize] = s / n;
            }
        }
        out
    }

    pub(crate) fn pseudo_random(w: usize, h: usize, seed: u64) -> Grid {
        let mut s = seed;
        let data = (0..w * h)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 33) % 256) as f64
            })
            .collect();
        Grid { w, h, data }
    }

    #[test]
    fn box_mean_matches_brute_force() {
        for &(w, h) in &[(1, 1), (2, 3), (7, 5), (13, 9), (150, 130)] {
            let g = pseudo_random(w, h, (w * 31 + h) as u64);
            for &r in &[0, 1, 2, 4, 11] {
                for border in [BoxBorder::Clip, BoxBorder::Replicate] {
                    let fast = box_mean(&g, r, border);
                    let slow = brute_box(&g, r, border);
                    for (a, b) in fast.data.iter().zip(&slow.data) {
                        assert!((a - b).abs() < 1e-9, "{w}x{h} r={r} {border:?}: {a} vs {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn reflect101_indices() {
        let got: Vec<usize> = (-4..8).map(|i| reflect101(i, 4)).collect();
        assert_eq!(got, vec![2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1]);
        assert_eq!(reflect101(-3, 1), 0);
        assert_eq!(reflect101(5, 2), 1);
    }

    #[test]
    fn gaussian_kernel_is_normalised_and_symmetric() {
        let k = gaussian_kernel(5, 5.0);
        assert_eq!(k.len(), 11);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for i in 0..5 {
            assert_eq!(k[i], k[10 - i]);
        }
        // exp(-25/50) relative to the centre tap
        assert!((k[0] / k[5] - (-0.5f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn laplacian_of_a_ramp_is_zero_inside() {
        let g = Grid { w: 5, h: 4, data: (0..20).map(|i| (i % 5) as f64 * 3.0 + (i / 5) as f64).collect() };
        let l = laplacian3(&g);
        for y in 1..3 {
            for x in 1..4 {
                assert_eq!(l.data[y * 5 + x], 0.0);
            }
        }
        // left border: replicate makes the left neighbour equal to the pixel itself -> +3
        assert_eq!(l.data[5], 3.0);
    }
}
