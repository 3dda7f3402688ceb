//! Metrics recent papers add to the benchmarks' sets, each from the MATLAB code most of them use
//! (Haghighat's FMI, with the pixel and gradient features, is in `fmi.rs`):
//! - N_abf (fusion artefacts), B. K. Shreyamsha Kumar's modification of Petrovic's measure, as
//!   `objective_fusion_perform_fn.m` (its `NABF` output) with `sobel_fn.m` and `per_extn_im_fn.m`
//!   of Kumar's CBF code compute it (the copy in VIFB's `methods/CBF`);
//! - MS-SSIM, Wang et al.'s `msssim.m` with `ssim_index_new.m` (defaults: 5 scales, weights
//!   0.0448 0.2856 0.3001 0.2363 0.1333, product form), as the mean of MS-SSIM(A, F) and
//!   MS-SSIM(B, F).
//!
//! Both codes read gray `double` images; a colour image is first made gray by MATLAB's
//! `rgb2gray` on `uint8` (rounded), as the usual `rgb2gray(imread(…))` call does.

use super::ToolkitError;
use super::image::Image;
use super::matlab::{Plane, halve, rgb2gray};
use super::mefb::{local_ssim, real_power_product, ssim_window};

/// `rgb2gray` of a colour image (rounded, `uint8`), or the gray image itself.
fn gray(img: &Image) -> Plane {
    if img.channels() == 1 {
        return img.plane(0);
    }
    let p = img.planes();
    rgb2gray(&p[0], &p[1], &p[2], true)
}

/// Kumar's `per_extn_im_fn(x, 3)`: `x` inside a one-pixel border whose rows, then columns, are
/// copied from the second row/column in from each side (a mirror without the edge), following
/// the code's assignments in order (so a 1-pixel-high or -wide image gets zero borders).
fn extend(x: &Plane) -> Plane {
    let (p, q) = (x.height, x.width);
    let (h, w) = (p + 2, q + 2);
    let mut e = vec![0.0; h * w];
    for r in 0..p {
        e[(r + 1) * w + 1..(r + 1) * w + 1 + q].copy_from_slice(&x.data[r * q..(r + 1) * q]);
    }
    // xout_ext(1,:) = xout_ext(3,:); xout_ext(p+2,:) = xout_ext(p,:)  (1-based)
    let row = |e: &mut Vec<f64>, to: usize, from: usize| {
        for c in 0..w {
            e[to * w + c] = e[from * w + c];
        }
    };
    row(&mut e, 0, 2);
    row(&mut e, p + 1, p - 1);
    let col = |e: &mut Vec<f64>, to: usize, from: usize| {
        for r in 0..h {
            e[r * w + to] = e[r * w + from];
        }
    };
    col(&mut e, 0, 2);
    col(&mut e, q + 1, q - 1);
    Plane::new(w, h, e)
}

/// Kumar's `sobel_fn`: the Sobel responses divided by 8 (correlation on the extended image),
/// `(gv, gh)` with `gv` from `[-1 0 1; -2 0 2; -1 0 1]/8` and `gh` from its transpose.
fn sobel(x: &Plane) -> (Vec<f64>, Vec<f64>) {
    let e = extend(x);
    let v = [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]];
    let (mut gv, mut gh) = (Vec::with_capacity(x.data.len()), Vec::with_capacity(x.data.len()));
    for r in 0..x.height {
        for c in 0..x.width {
            let (mut sv, mut sh) = (0.0, 0.0);
            // sum(sum(block .* k)): column sums, then their sum
            for b in 0..3 {
                let (mut cv, mut ch) = (0.0, 0.0);
                for (a, vrow) in v.iter().enumerate() {
                    let val = e.at(r + a, c + b);
                    cv += val * (vrow[b] / 8.0);
                    ch += val * (v[b][a] / 8.0);
                }
                sv += cv;
                sh += ch;
            }
            gv.push(sv);
            gh.push(sh);
        }
    }
    (gv, gh)
}

/// Kumar's N_abf (`NABF` of `objective_fusion_perform_fn(fused, {a, b})`): the loss
/// `(1 - Q^{AF}) w_A + (1 - Q^{BF}) w_B` summed where the fused edge is stronger than both
/// sources', over the sum of the weights (`w = g^1.5` where `g ≥ 2`, else 0.001). Lower is better.
pub(crate) fn nabf(a: &Image, b: &Image, fused: &Image) -> f64 {
    let (a, b, f) = (gray(a), gray(b), gray(fused));
    let (td, wt_min, lg) = (2.0, 0.001, 1.5);
    let (nrg, kg, sg, nra, ka, sa) = (0.9999, 19.0, 0.5, 0.9995, 22.0, 0.5);
    let edges = |p: &Plane| {
        let (gv, gh) = sobel(p);
        let g: Vec<f64> = gv.iter().zip(&gh).map(|(v, h)| (h * h + v * v).sqrt()).collect();
        let ang: Vec<f64> =
            gv.iter().zip(&gh).map(|(&v, &h)| if v == 0.0 && h == 0.0 { 0.0 } else { (v / h).atan() }).collect();
        (g, ang)
    };
    let ((ga, aa), (gb, ab), (gf, af)) = (edges(&a), edges(&b), edges(&f));
    let half_pi = std::f64::consts::FRAC_PI_2;
    let preservation = |gs: f64, g_f: f64, an: f64, a_f: f64| {
        let rel = if gs == 0.0 || g_f == 0.0 {
            0.0
        } else if gs > g_f {
            g_f / gs
        } else {
            gs / g_f
        };
        let ang = ((an - a_f).abs() - half_pi).abs() * 2.0 / std::f64::consts::PI;
        let qg = nrg / (1.0 + (-kg * (rel - sg)).exp());
        let qa = nra / (1.0 + (-ka * (ang - sa)).exp());
        (qg * qa).sqrt()
    };
    let weight = |g: f64| if g >= td { g.powf(lg) } else { wt_min };
    let (mut wt_sum, mut na) = (0.0, 0.0);
    for i in 0..gf.len() {
        let (wa, wb) = (weight(ga[i]), weight(gb[i]));
        wt_sum += wa + wb;
        if gf[i] > ga[i] && gf[i] > gb[i] {
            let qaf = preservation(ga[i], gf[i], aa[i], af[i]);
            let qbf = preservation(gb[i], gf[i], ab[i], af[i]);
            na += (1.0 - qaf) * wa + (1.0 - qbf) * wb;
        }
    }
    na / wt_sum
}

/// Wang et al.'s `msssim(x, y)` with its defaults; `-Inf` (the code's value) when the smaller
/// side is below 176 (11 · 2⁴). A negative factor makes MATLAB's product complex; its real part
/// is returned.
fn msssim(x: &Plane, y: &Plane) -> f64 {
    const WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];
    if (x.width.min(x.height) as f64) / 16.0 < 11.0 {
        return f64::NEG_INFINITY;
    }
    let window = ssim_window(11);
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (mut x, mut y) = (x.clone(), y.clone());
    let (mut magnitude, mut angle) = (1.0, 0.0);
    for (l, &w) in WEIGHTS.iter().enumerate() {
        let s = local_ssim(&x, &y, &window, 11, c1, c2);
        let value = if l + 1 < WEIGHTS.len() {
            // mean of the contrast-structure map
            let cs: Vec<f64> = (0..s.s1.len()).map(|i| (2.0 * s.s12[i] + c2) / (s.s1[i] + s.s2[i] + c2)).collect();
            super::matlab::mean2(&cs)
        } else {
            super::matlab::mean2(&s.map)
        };
        (magnitude, angle) = real_power_product(magnitude, angle, value, w);
        x = halve(&x);
        y = halve(&y);
    }
    magnitude * angle.cos()
}

/// MS-SSIM of a fusion: `(msssim(A, F) + msssim(B, F)) / 2` on gray images.
pub(crate) fn ms_ssim(a: &Image, b: &Image, fused: &Image) -> Result<f64, ToolkitError> {
    let (a, b, f) = (gray(a), gray(b), gray(fused));
    Ok((msssim(&a, &f) + msssim(&b, &f)) / 2.0)
}
