//! Infrared feature extraction and visual information preservation (IFEVIP).
//!
//! Y. Zhang, L. Zhang, X. Bai and L. Zhang, "Infrared and visual image fusion through infrared
//! feature extraction and visual information preservation", Infrared Physics & Technology
//! 83:227–237, 2017. Parameters and arithmetic follow VIFB's `methods/IFEVIP` code (`BGR_Fuse.m`,
//! `QuadReconstructRefined.m`), run under GNU Octave with its image package:
//!
//! 1. infrared background: the infrared image resized to 512×512 (bicubic, 8-bit result),
//!    quadtree-decomposed (`qtdecomp`, split while max − min > 0.2·255, blocks 512 … 32),
//!    eroded by a 32×32 square (window offsets −15 … +16, outside ignored), every block rebuilt
//!    from a 4×4 grid of the eroded image by a bicubic Bézier patch (blocks share their last
//!    row/column with the next one; later blocks overwrite, largest first, column-major order),
//!    resized back, blurred by a 9×9 Gaussian (σ 4.5, zero outside) and rounded to 8 bits;
//! 2. infrared features `R = max(IR − background, 0)` (8-bit saturating);
//! 3. `A = R + (IR − VIS)·H(IR)/H(VIS)` with `H` the 256-bin entropy (all visible channels
//!    together); `ratio = min(255 / mean(top 0.1 % of max(A, 0) + VIS), 0.8)`;
//! 4. `F = VIS + uint8(A·ratio)` in 8-bit saturating arithmetic.
//!
//! A colour visible image is fused jointly (one entropy and one ratio for the three channels),
//! as VIFB does; [`ifevip_channels`] takes the channels. Inputs are 8-bit (values are rounded and
//! clamped to 0..=255 first) and so is the result. Where the reference divides by a zero entropy
//! (constant visible image) the entropy ratio is taken as 1.

use crate::grid::{Grid, correlate_separable_replicate, gaussian_kernel};
use crate::octave_resize::imresize_cubic;
use crate::params::{ParamInfo, Params, info, parse_odd, parse_positive, parse_usize, unknown_key};
use crate::{Error, Result, check_pair};
use mmif_io::Plane;

/// Parameters of [`ifevip_with`]; [`Default`] is VIFB's `run_IFEVIP.m`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IfevipParams {
    /// Side of the square the infrared image is resized to for the quadtree (512, a power of two).
    pub quad_norm_dim: usize,
    /// Smallest quadtree block and side of the erosion square (32, a power of two).
    pub quad_min_dim: usize,
    /// Side of the Gaussian that smooths the background, odd (9; σ = side / 2).
    pub gauss_scale: usize,
    /// Fraction of the brightest values whose mean sets the ratio (0.001).
    pub max_ratio: f64,
    /// Upper bound of the ratio (0.8).
    pub std_ratio: f64,
}

impl Default for IfevipParams {
    fn default() -> Self {
        Self { quad_norm_dim: 512, quad_min_dim: 32, gauss_scale: 9, max_ratio: 0.001, std_ratio: 0.8 }
    }
}

impl IfevipParams {
    fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::InvalidParameter { method: "ifevip", msg });
        let (n, m) = (self.quad_norm_dim, self.quad_min_dim);
        if !(n.is_power_of_two() && m.is_power_of_two() && m >= 4 && m <= n && n <= 4096) {
            return bad(format!(
                "quad_norm_dim and quad_min_dim must be powers of two, 4 <= min <= norm <= 4096, got {n} and {m}"
            ));
        }
        if self.gauss_scale.is_multiple_of(2) || self.gauss_scale > 255 {
            return bad(format!("gauss_scale must be odd and <= 255, got {}", self.gauss_scale));
        }
        if !(self.max_ratio.is_finite() && (0.0..=1.0).contains(&self.max_ratio)) {
            return bad(format!("max_ratio must be in [0, 1], got {}", self.max_ratio));
        }
        if !(self.std_ratio.is_finite() && self.std_ratio > 0.0) {
            return bad(format!("std_ratio must be finite and > 0, got {}", self.std_ratio));
        }
        Ok(())
    }
}

/// `--param key=value` keys of `ifevip` (checked as a whole set when one changes).
impl Params for IfevipParams {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let mut next = *self;
        match key {
            "quad_norm_dim" => next.quad_norm_dim = parse_usize("ifevip", key, value, 4, 4096)?,
            "quad_min_dim" => next.quad_min_dim = parse_usize("ifevip", key, value, 4, 4096)?,
            "gauss_scale" => next.gauss_scale = parse_odd("ifevip", key, value, 1, 999)?,
            "max_ratio" => next.max_ratio = parse_positive("ifevip", key, value)?,
            "std_ratio" => next.std_ratio = parse_positive("ifevip", key, value)?,
            _ => return Err(unknown_key("ifevip", key, &self.list())),
        }
        next.validate()?;
        *self = next;
        Ok(())
    }

    fn list(&self) -> Vec<ParamInfo> {
        vec![
            info(
                "quad_norm_dim",
                self.quad_norm_dim,
                "side the infrared image is resized to for the quadtree (power of two)",
            ),
            info("quad_min_dim", self.quad_min_dim, "smallest quadtree block and erosion side (power of two)"),
            info("gauss_scale", self.gauss_scale, "side of the Gaussian that smooths the background (odd)"),
            info("max_ratio", self.max_ratio, "fraction of the brightest values whose mean sets the ratio"),
            info("std_ratio", self.std_ratio, "upper bound of the ratio"),
        ]
    }
}

fn u8_of(v: f64) -> f64 {
    crate::fpde::matlab_u8(v)
}

/// Octave's `qtdecomp(I, threshold, mindim)` for a square power-of-two image: `(row, col, size)`
/// of every leaf block, in the order Octave lists them (irrelevant: the result is a sparse map).
fn qtdecomp(img: &[f64], n: usize, threshold: f64, mindim: usize) -> Vec<(usize, usize, usize)> {
    let mut res = Vec::new();
    let mut offsets = vec![(0usize, 0usize)];
    let mut size = n;
    while !offsets.is_empty() {
        if !size.is_multiple_of(2) || size / 2 < mindim {
            res.extend(offsets.iter().map(|&(r, c)| (r, c, size)));
            break;
        }
        let mut split = Vec::new();
        for &(r, c) in &offsets {
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for y in r..r + size {
                for &v in &img[y * n + c..y * n + c + size] {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
            if hi - lo <= threshold {
                res.push((r, c, size));
            } else {
                split.push((r, c));
            }
        }
        size /= 2;
        offsets = [(0, 0), (size, 0), (0, size), (size, size)]
            .iter()
            .flat_map(|&(dr, dc)| split.iter().map(move |&(r, c)| (r + dr, c + dc)))
            .collect();
    }
    res
}

/// Grey erosion by a `k×k` square (offsets `−(k/2 − 1) … k/2` for even `k`), outside ignored.
fn erode_square(img: &[f64], w: usize, h: usize, k: usize) -> Vec<f64> {
    let lo = (k - 1) / 2; // offsets -lo ..= k-1-lo
    let hi = k - 1 - lo;
    let run = |get: &dyn Fn(usize) -> f64, n: usize, i: usize| {
        let a = i.saturating_sub(lo);
        let b = (i + hi).min(n - 1);
        (a..=b).map(get).fold(f64::INFINITY, f64::min)
    };
    let mut tmp = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            tmp[y * w + x] = run(&|i| img[y * w + i], w, x);
        }
    }
    let mut out = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = run(&|i| tmp[i * w + x], h, y);
        }
    }
    out
}

/// The reference's `QuadReconstructRefined`: bicubic Bézier patches over the quadtree blocks.
fn quad_reconstruct(blocks: &[(usize, usize, usize)], img: &[f64], n: usize, min_dim: usize) -> Vec<f64> {
    // Image and block map padded by one replicated row and column ("post").
    let np = n + 1;
    let padded = |y: usize, x: usize| img[y.min(n - 1) * n + x.min(n - 1)];
    let mut out = vec![0.0; np * np];
    const M: [[f64; 4]; 4] =
        [[-1.0, 3.0, -3.0, 1.0], [3.0, -6.0, 3.0, 0.0], [-3.0, 3.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]];
    let max_dim = blocks.iter().map(|b| b.2 + 1).max().unwrap_or(0);
    let mut dim = max_dim;
    while dim > min_dim {
        // Blocks of this size in column-major order of their corners (Octave's find on a sparse map).
        let mut these: Vec<(usize, usize)> = blocks.iter().filter(|b| b.2 + 1 == dim).map(|b| (b.0, b.1)).collect();
        these.sort_by_key(|&(r, c)| (c, r));
        if !these.is_empty() {
            let sub = (dim - 1) / 4;
            let pts = [0, 2 * sub - 1, 3 * sub - 1, 4 * sub];
            // LM = U·M (dim×4), RM = M·Uᵀ = LMᵀ (M is symmetric).
            let lm: Vec<[f64; 4]> = (0..dim)
                .map(|i| {
                    let u = i as f64 / (dim - 1) as f64;
                    let uu = [u * u * u, u * u, u, 1.0];
                    let mut row = [0.0; 4];
                    for (c, r) in row.iter_mut().enumerate() {
                        *r = (0..4).map(|k| uu[k] * M[k][c]).sum();
                    }
                    row
                })
                .collect();
            for (r0, c0) in these {
                let mut v = [[0.0; 4]; 4];
                for (a, &pa) in pts.iter().enumerate() {
                    for (b, &pb) in pts.iter().enumerate() {
                        v[a][b] = padded(r0 + pa, c0 + pb);
                    }
                }
                // T = LM·V (dim×4), then block = T·RM.
                let t: Vec<[f64; 4]> = lm
                    .iter()
                    .map(|l| {
                        let mut row = [0.0; 4];
                        for (b, rb) in row.iter_mut().enumerate() {
                            *rb = (0..4).map(|a| l[a] * v[a][b]).sum();
                        }
                        row
                    })
                    .collect();
                for (i, ti) in t.iter().enumerate() {
                    for (j, lj) in lm.iter().enumerate() {
                        out[(r0 + i) * np + c0 + j] = (0..4).map(|b| ti[b] * lj[b]).sum();
                    }
                }
            }
        }
        dim = (dim - 1) / 2 + 1;
    }
    let mut crop = Vec::with_capacity(n * n);
    for y in 0..n {
        crop.extend_from_slice(&out[y * np..y * np + n]);
    }
    crop
}

/// Shannon entropy (bits) of the 256-bin histogram of 8-bit values.
fn entropy(values: impl Iterator<Item = f64>) -> f64 {
    let mut hist = [0f64; 256];
    let mut n = 0.0;
    for v in values {
        hist[v as usize] += 1.0;
        n += 1.0;
    }
    -hist.iter().filter(|&&c| c > 0.0).map(|&c| (c / n) * (c / n).log2()).sum::<f64>()
}

/// The infrared background of step 1 (8-bit values).
fn background(ir: &[f64], w: usize, h: usize, prm: &IfevipParams) -> Vec<f64> {
    let n = prm.quad_norm_dim;
    let small: Vec<f32> = ir.iter().map(|&v| v as f32).collect();
    let resized: Vec<f64> =
        imresize_cubic::<f32>(&small, w, h, n, n).into_iter().map(|v| u8_of(f64::from(v))).collect();
    let blocks = qtdecomp(&resized, n, 0.2 * 255.0, prm.quad_min_dim);
    let eroded = erode_square(&resized, n, n, prm.quad_min_dim);
    let bg = quad_reconstruct(&blocks, &eroded, n, prm.quad_min_dim);
    let bg = imresize_cubic::<f64>(&bg, n, n, w, h);
    // fspecial('gaussian', g, g/2) with zero padding: pad by the radius with zeros, filter, crop.
    let g = prm.gauss_scale;
    let sigma = g as f64 / 2.0;
    let k = fspecial_gaussian_1d(g, sigma);
    let r = (g - 1) / 2;
    let (pw, ph) = (w + g - 1, h + g - 1);
    let mut pad = Grid::zeros(pw, ph);
    for y in 0..h {
        pad.data[(y + r) * pw + r..(y + r) * pw + r + w].copy_from_slice(&bg[y * w..(y + 1) * w]);
    }
    // Over the zero-padded image the window of every kept pixel stays inside the padding.
    let f = correlate_separable_replicate(&pad, &k);
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            out.push(u8_of(f.data[(y + r) * pw + x + r]));
        }
    }
    out
}

/// 1-D factor of `fspecial('gaussian', g, sigma)` for odd `g`.
fn fspecial_gaussian_1d(g: usize, sigma: f64) -> Vec<f64> {
    gaussian_kernel((g - 1) / 2, sigma)
}

/// IFEVIP of a gray infrared image `ir` and the channels of the visible image (1 or 3), jointly.
pub fn ifevip_channels(ir: &Plane, vis: &[Plane], prm: &IfevipParams) -> Result<Vec<Plane>> {
    prm.validate()?;
    if vis.is_empty() {
        return Err(Error::InvalidParameter { method: "ifevip", msg: "no visible channel given".into() });
    }
    for v in vis {
        check_pair(ir, v)?;
    }
    let (w, h) = (ir.width, ir.height);
    let irv: Vec<f64> = ir.data.iter().map(|&v| u8_of(f64::from(v))).collect();
    let visv: Vec<Vec<f64>> = vis.iter().map(|p| p.data.iter().map(|&v| u8_of(f64::from(v))).collect()).collect();
    let bg = background(&irv, w, h, prm);
    let inf: Vec<f64> = irv.iter().zip(&bg).map(|(&i, &b)| (i - b).max(0.0)).collect();
    let e_ir = entropy(irv.iter().copied());
    let e_vis = entropy(visv.iter().flatten().copied());
    let factor = if e_vis == 0.0 { 1.0 } else { e_ir / e_vis };
    let add: Vec<Vec<f64>> =
        visv.iter().map(|vc| (0..w * h).map(|i| inf[i] + (irv[i] - vc[i]) * factor).collect()).collect();
    let mut added: Vec<f64> = add
        .iter()
        .zip(&visv)
        .flat_map(|(a, v)| a.iter().zip(v).map(|(&a, &v)| if a > 0.0 { a } else { 0.0 } + v))
        .collect();
    let top = (prm.max_ratio * added.len() as f64).round() as usize;
    let ratio = if top == 0 {
        prm.std_ratio // mean of nothing is NaN, and min(NaN, x) = x
    } else {
        added.select_nth_unstable_by(top - 1, |a, b| b.total_cmp(a));
        let mut best = added[..top].to_vec();
        best.sort_by(|a, b| b.total_cmp(a));
        let mean = best.iter().sum::<f64>() / top as f64;
        (255.0 / mean).min(prm.std_ratio)
    };
    Ok(add
        .iter()
        .zip(&visv)
        .map(|(a, v)| {
            Plane::new(w, h, a.iter().zip(v).map(|(&a, &v)| (v + u8_of(a * ratio)).min(255.0) as f32).collect())
        })
        .collect())
}

/// IFEVIP with VIFB's parameters; `a` is the infrared image, `b` the (gray) visible one.
pub fn ifevip(a: &Plane, b: &Plane) -> Result<Plane> {
    ifevip_with(a, b, &IfevipParams::default())
}

/// IFEVIP of a gray pair with explicit parameters.
pub fn ifevip_with(a: &Plane, b: &Plane, prm: &IfevipParams) -> Result<Plane> {
    check_pair(a, b)?;
    Ok(ifevip_channels(a, std::slice::from_ref(b), prm)?.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erosion_offsets_follow_octave_for_even_squares() {
        // A dark pixel at (row 4, col 5) of 10×12 darkens rows 2..=5, cols 3..=6 with a 4×4 square.
        let (w, h) = (12, 10);
        let mut img = vec![200.0; w * h];
        img[4 * w + 5] = 10.0;
        let e = erode_square(&img, w, h, 4);
        for y in 0..h {
            for x in 0..w {
                let dark = (2..=5).contains(&y) && (3..=6).contains(&x);
                assert_eq!(e[y * w + x], if dark { 10.0 } else { 200.0 }, "({y}, {x})");
            }
        }
    }

    #[test]
    fn quadtree_splits_only_where_the_range_exceeds_the_threshold() {
        let n = 8;
        let mut img = vec![0.0; n * n];
        img[0] = 100.0; // top-left 4×4 quadrant is split down to the 2×2 minimum
        let blocks = qtdecomp(&img, n, 51.0, 2);
        let area: usize = blocks.iter().map(|b| b.2 * b.2).sum();
        assert_eq!(area, 64);
        assert!(blocks.contains(&(0, 0, 2)) && blocks.contains(&(4, 4, 4)));
        assert!(!blocks.iter().any(|b| b.2 == 8));
    }

    #[test]
    fn entropy_of_two_equal_bins_is_one_bit() {
        assert_eq!(entropy([0.0, 255.0, 0.0, 255.0].into_iter()), 1.0);
        assert_eq!(entropy([3.0, 3.0].into_iter()), 0.0);
    }
}
