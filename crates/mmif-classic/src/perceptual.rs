//! Zhou et al.'s perceptual saliency (PS) of an image, which HMSD-GF uses to pick its
//! infrared-injection strength.
//!
//! Z. Zhou, M. Dong, X. Xie and Z. Gao, "Fusion of infrared and visible images for night-vision
//! context enhancement", Applied Optics 55(23):6480–6490, 2016, as computed by `PS.m` of VIFB's
//! `methods/HMSD_GF`:
//! 1. Sobel gradient magnitude `g` on the interior (MATLAB `conv2(.., 'valid')`), and the image
//!    cropped to that interior;
//! 2. the interior cut into 40×40 blocks from the top left (partial blocks at the right and
//!    bottom edges, as MATLAB's `blockproc`);
//! 3. per block of size `m×n` with 2-D DFT `X`: the perceptual energy
//!    `e = sqrt(Σ |X(u,v)|² c(ρ)²) / (m n)`, with Mannos and Sakrison's contrast sensitivity
//!    `c(ρ) = 2.6 (0.0192 + 0.114 ρ) exp(−(0.114 ρ)^1.1)` at `ρ = 16 |f|`, `f` the centred
//!    normalised frequency (MATLAB `freqspace`, −1 ≤ f < 1);
//! 4. `PS = Σ e_b λ_b / Σ λ_b` with block weights `λ_b = Σ g²` over the block.

use crate::grid::Grid;
use std::f64::consts::PI;

const BLOCK: usize = 40;
/// `R` of `PS.m`: frequencies are scaled by `R / 2`.
const R: f64 = 32.0;

fn mannos_sakrison(rho: f64) -> f64 {
    2.6 * (0.0192 + 0.114 * rho) * (-(0.114 * rho).powf(1.1)).exp()
}

/// Centred normalised frequency of DFT bin `k` of `n` (`freqspace` after `fftshift`).
fn centred_freq(k: usize, n: usize) -> f64 {
    let half = n / 2;
    let shifted = (k + half) % n;
    (shifted as f64 - half as f64) * 2.0 / n as f64
}

/// `WinAvgPE` of one block (`m` rows × `n` columns, row-major).
fn block_energy(block: &[f64], m: usize, n: usize) -> f64 {
    // DFT along rows, then along columns (naive, blocks are at most 40×40).
    let twiddles = |len: usize| -> Vec<(f64, f64)> {
        (0..len).map(|t| (-2.0 * PI * t as f64 / len as f64).sin_cos()).map(|(s, c)| (c, s)).collect()
    };
    let (tw_n, tw_m) = (twiddles(n), twiddles(m));
    let mut rows = vec![(0.0, 0.0); m * n];
    for y in 0..m {
        for v in 0..n {
            let (mut re, mut im) = (0.0, 0.0);
            for x in 0..n {
                let (c, s) = tw_n[(v * x) % n];
                let a = block[y * n + x];
                re += a * c;
                im += a * s;
            }
            rows[y * n + v] = (re, im);
        }
    }
    let mut sum = 0.0;
    for u in 0..m {
        let fu = centred_freq(u, m) / 2.0 * R;
        for v in 0..n {
            let (mut re, mut im) = (0.0, 0.0);
            for y in 0..m {
                let (c, s) = tw_m[(u * y) % m];
                let (a, b) = rows[y * n + v];
                re += a * c - b * s;
                im += a * s + b * c;
            }
            let fv = centred_freq(v, n) / 2.0 * R;
            let w = mannos_sakrison((fu * fu + fv * fv).sqrt());
            sum += (re * re + im * im) * w * w;
        }
    }
    sum.sqrt() / (m * n) as f64
}

/// Perceptual saliency of `img` (any intensity scale); `None` where it is undefined (images
/// smaller than 3×3, or without any gradient).
pub(crate) fn perceptual_saliency(img: &Grid) -> Option<f64> {
    let (w, h) = (img.w, img.h);
    if w < 3 || h < 3 {
        return None;
    }
    let (iw, ih) = (w - 2, h - 2);
    let at = |x: usize, y: usize| img.data[y * w + x];
    let mut interior = vec![0.0; iw * ih];
    let mut g2 = vec![0.0; iw * ih];
    for y in 0..ih {
        for x in 0..iw {
            let (cx, cy) = (x + 1, y + 1);
            let gx = (at(cx + 1, cy - 1) + 2.0 * at(cx + 1, cy) + at(cx + 1, cy + 1))
                - (at(cx - 1, cy - 1) + 2.0 * at(cx - 1, cy) + at(cx - 1, cy + 1));
            let gy = (at(cx - 1, cy + 1) + 2.0 * at(cx, cy + 1) + at(cx + 1, cy + 1))
                - (at(cx - 1, cy - 1) + 2.0 * at(cx, cy - 1) + at(cx + 1, cy - 1));
            g2[y * iw + x] = gx * gx + gy * gy;
            interior[y * iw + x] = at(cx, cy);
        }
    }
    let (mut num, mut den) = (0.0, 0.0);
    for by in (0..ih).step_by(BLOCK) {
        for bx in (0..iw).step_by(BLOCK) {
            let (m, n) = ((ih - by).min(BLOCK), (iw - bx).min(BLOCK));
            let mut block = Vec::with_capacity(m * n);
            let mut lambda = 0.0;
            for y in by..by + m {
                block.extend_from_slice(&interior[y * iw + bx..y * iw + bx + n]);
                lambda += g2[y * iw + bx..y * iw + bx + n].iter().sum::<f64>();
            }
            num += block_energy(&block, m, n) * lambda;
            den += lambda;
        }
    }
    let ps = num / den;
    ps.is_finite().then_some(ps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_of_a_constant_block_is_its_dc_term() {
        // X(0,0) = m n c, other bins 0; the DC bin has f = 0, weight c(0) = 2.6 * 0.0192.
        let (m, n) = (5, 8);
        let e = block_energy(&vec![3.0; m * n], m, n);
        assert!((e - 3.0 * 2.6 * 0.0192).abs() < 1e-12, "{e}");
    }

    #[test]
    fn centred_frequencies_follow_freqspace() {
        let f: Vec<f64> = (0..4).map(|k| centred_freq(k, 4)).collect();
        assert_eq!(f, vec![0.0, 0.5, -1.0, -0.5]);
        let f: Vec<f64> = (0..3).map(|k| centred_freq(k, 3)).collect();
        assert!((f[1] - 2.0 / 3.0).abs() < 1e-15 && (f[2] + 2.0 / 3.0).abs() < 1e-15 && f[0] == 0.0);
    }

    #[test]
    fn flat_and_tiny_images_have_no_saliency() {
        assert_eq!(perceptual_saliency(&Grid { w: 2, h: 9, data: vec![1.0; 18] }), None);
        assert_eq!(perceptual_saliency(&Grid { w: 9, h: 9, data: vec![1.0; 81] }), None);
    }
}
