//! Guided-filter context enhancement (GFCE).
//!
//! Z. Zhou, M. Dong, X. Xie and Z. Gao, "Fusion of infrared and visible images for night-vision
//! context enhancement", Applied Optics 55(23):6480–6490, 2016. Parameters and arithmetic follow
//! VIFB's `methods/GFCE` code (`run_GFCE.m`, `Ehn_GF.m`, `Relative_PS.m`, `PS.m`, `WinAvgPE.m`).
//!
//! 1. the visible image is enhanced (`Ehn_GF`): stretched to 0..255, its log split by a fast
//!    guided filter (radius `r = ⌊0.04·max(h, w)⌋`, ε = 0.01, subsampling `s = max(1, r/4)` with
//!    Octave's nearest-neighbour `imresize` down and bilinear up) into base and detail, the base
//!    compressed to a contrast of `log 4`, recombined, capped at 255;
//! 2. the infrared image is stretched to 0..255;
//! 3. `λ` from the ratio of "perceptual saliency" `PS(IR)/PS(VIS)`: per 40×40 block the
//!    Mannos–Sakrison-weighted spectral energy (`R = 32`), averaged with weights `Σ|∇|²` (Sobel);
//!    `λ = 100` below 0.8, 2000 above 1.6, `2500·Rs − 1900` between;
//! 4. a 4-level hybrid decomposition of each image by guided filters (`r = 2, 4, 8, 16`; a base
//!    filter with ε = 10⁴, an edge-preserving one with ε = (0.1/2^k)²) into edge (`E`) and detail
//!    (`D`) layers, fused top-down with `C = atan(λP)/atan(λ)`, `P = max(|E_ir| − |E_vis|, 0)`
//!    normalised by its maximum, smoothed by a 7×7 Gaussian (σ 1; the base weight by a 385×385
//!    Gaussian, σ 64; symmetric borders); the finest level by choose-max;
//! 5. `F = clamp(round(275·MB), 0, 255)`.
//!
//! Where the reference divides by zero (constant image, `max P = 0`) the ratio is taken as 0.
//! The reference's box filters need at least 33 pixels per side; here smaller images use the
//! window part inside the image, so every size works.

use std::f64::consts::PI;

use crate::gff::guided_filter;
use crate::grid::{BoxBorder, Grid, box_mean, gaussian_kernel};
use crate::matlab::correlate_separable_symmetric;
use crate::params::{ParamInfo, Params, info, parse_positive, parse_usize, unknown_key};
use crate::{Error, Result, check_pair};
use mmif_io::Plane;

/// Parameters of [`gfce_with`]; [`Default`] is VIFB's `run_GFCE.m`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GfceParams {
    /// Levels of the hybrid decomposition (4).
    pub levels: usize,
    /// Output gain applied before rounding (275 for intensities on `[0, 1]`).
    pub gain: f64,
}

impl Default for GfceParams {
    fn default() -> Self {
        Self { levels: 4, gain: 275.0 }
    }
}

impl GfceParams {
    fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::InvalidParameter { method: "gfce", msg });
        if !(2..=8).contains(&self.levels) {
            return bad(format!("levels must be in 2..=8, got {}", self.levels));
        }
        if !(self.gain.is_finite() && self.gain > 0.0) {
            return bad(format!("gain must be finite and > 0, got {}", self.gain));
        }
        Ok(())
    }
}

/// `--param key=value` keys of `gfce` (checked as a whole set when one changes).
impl Params for GfceParams {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let mut next = *self;
        match key {
            "levels" => next.levels = parse_usize("gfce", key, value, 2, 8)?,
            "gain" => next.gain = parse_positive("gfce", key, value)?,
            _ => return Err(unknown_key("gfce", key, &self.list())),
        }
        next.validate()?;
        *self = next;
        Ok(())
    }

    fn list(&self) -> Vec<ParamInfo> {
        vec![
            info("levels", self.levels, "levels of the hybrid decomposition"),
            info("gain", self.gain, "output gain before rounding (on a 0..=1 result)"),
        ]
    }
}

fn min_max(g: &Grid) -> (f64, f64) {
    g.data.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)))
}

/// `(x − min)/(max − min)·255`, zero for a constant image.
fn stretch255(g: &Grid) -> Grid {
    let (lo, hi) = min_max(g);
    if hi > lo { g.map(|v| (v - lo) / (hi - lo) * 255.0) } else { g.map(|_| 0.0) }
}

/// Octave's `imresize(x, 1/s, 'nearest')`.
fn resize_nearest_down(g: &Grid, s: f64) -> Grid {
    let scale = 1.0 / s;
    let pick = |n_in: usize| -> Vec<usize> {
        let n_out = (n_in as f64 * scale).ceil() as usize;
        let off = 1.0 / scale / 2.0;
        (0..n_out)
            .map(|k| {
                let idx = (0.5 + off + k as f64 / scale).clamp(1.0, n_in as f64);
                idx.round() as usize - 1
            })
            .collect()
    };
    let (rows, cols) = (pick(g.h), pick(g.w));
    let mut out = Grid::zeros(cols.len(), rows.len());
    for (y, &r) in rows.iter().enumerate() {
        for (x, &c) in cols.iter().enumerate() {
            out.data[y * cols.len() + x] = g.data[r * g.w + c];
        }
    }
    out
}

/// Octave's `imresize(x, [h w], 'bilinear')` for an enlargement (triangle kernel, symmetric borders).
fn resize_bilinear_up(g: &Grid, w: usize, h: usize) -> Grid {
    let taps = |n_in: usize, n_out: usize| -> Vec<[(usize, f64); 2]> {
        let scale = n_out as f64 / n_in as f64;
        let off = 1.0 / scale / 2.0;
        (0..n_out)
            .map(|k| {
                let zi = 0.5 + off + k as f64 / scale;
                let idx = zi.floor();
                let dz = zi - idx;
                let tri = |d: f64| if d.abs() <= 1.0 { 1.0 - d.abs() } else { 0.0 };
                let i = idx as i64 - 1;
                let sym = |i: i64| crate::matlab::symmetric_index(i as isize, n_in);
                [(sym(i), tri(-dz)), (sym(i + 1), tri(1.0 - dz))]
            })
            .collect()
    };
    let mut cur = g.clone();
    if w != g.w {
        let t = taps(g.w, w);
        let mut out = Grid::zeros(w, cur.h);
        for y in 0..cur.h {
            for (x, tk) in t.iter().enumerate() {
                let row = cur.row(y);
                out.data[y * w + x] = 0.0 + row[tk[0].0] * tk[0].1 + row[tk[1].0] * tk[1].1;
            }
        }
        cur = out;
    }
    if h != g.h {
        let t = taps(g.h, h);
        let mut out = Grid::zeros(cur.w, h);
        for (y, tk) in t.iter().enumerate() {
            for x in 0..cur.w {
                out.data[y * cur.w + x] =
                    0.0 + cur.data[tk[0].0 * cur.w + x] * tk[0].1 + cur.data[tk[1].0 * cur.w + x] * tk[1].1;
            }
        }
        cur = out;
    }
    cur
}

/// Box-averaged linear coefficients `(mean_a, mean_b)` of He et al.'s self-guided filter.
fn guided_coefficients(i: &Grid, r: usize, eps: f64) -> (Grid, Grid) {
    let mean_i = box_mean(i, r, BoxBorder::Clip);
    let mean_ii = box_mean(&i.map(|v| v * v), r, BoxBorder::Clip);
    let mut a = Grid::zeros(i.w, i.h);
    let mut b = Grid::zeros(i.w, i.h);
    for k in 0..a.data.len() {
        let m = mean_i.data[k];
        let var = mean_ii.data[k] - m * m;
        let ak = var / (var + eps);
        a.data[k] = ak;
        b.data[k] = m - ak * m;
    }
    (box_mean(&a, r, BoxBorder::Clip), box_mean(&b, r, BoxBorder::Clip))
}

/// The reference's `fastguidedfilter_md(I, I, r, eps, s)` (self-guided).
fn fast_guided_filter(i: &Grid, r: usize, eps: f64, s: f64) -> Grid {
    let sub = if s > 1.0 { resize_nearest_down(i, s) } else { i.clone() };
    let r_sub = (r as f64 / s).round() as usize;
    let (mean_a, mean_b) = guided_coefficients(&sub, r_sub, eps);
    let (mean_a, mean_b) = if s > 1.0 {
        (resize_bilinear_up(&mean_a, i.w, i.h), resize_bilinear_up(&mean_b, i.w, i.h))
    } else {
        (mean_a, mean_b)
    };
    let ma_i = mean_a.zip_map(i, |a, x| a * x);
    ma_i.zip_map(&mean_b, |x, b| x + b)
}

/// The reference's `Ehn_GF` (visibility enhancement) on 0..=255 intensities.
fn enhance(img: &Grid) -> Grid {
    let img1 = stretch255(img);
    let log_img = img1.map(|v| (v + 1.0).ln());
    let r = (0.04 * img.w.max(img.h) as f64).floor() as usize;
    let eps = 0.1f64;
    let s = (r as f64 / 4.0).max(1.0);
    let base = fast_guided_filter(&img1.map(|v| v / 255.0), r, eps * eps, s).map(|v| 255.0 * v);
    let log_base = base.map(|v| (v + 1.0).ln());
    let (lo, hi) = min_max(&log_base);
    let cf = if hi > lo { 4f64.ln() / (hi - lo) } else { 0.0 };
    let las = (1.0 - cf) * hi;
    let mut out = Grid::zeros(img.w, img.h);
    for (k, o) in out.data.iter_mut().enumerate() {
        let log_detail = log_img.data[k] - log_base.data[k];
        *o = (cf * log_base.data[k] + log_detail + las).exp().min(255.0);
    }
    out
}

/// `Σ |X|²·fw²` over the centred spectrum of one block, `fw` the Mannos–Sakrison weight (R = 32).
fn weighted_spectral_energy(block: &[f64], m: usize, n: usize) -> f64 {
    let tw = |len: usize| -> Vec<(f64, f64)> {
        (0..len)
            .map(|k| ((2.0 * PI * k as f64 / len as f64).cos(), -(2.0 * PI * k as f64 / len as f64).sin()))
            .collect()
    };
    let (tn, tm) = (tw(n), tw(m));
    // Row DFTs.
    let mut rows = vec![(0.0, 0.0); m * n];
    for y in 0..m {
        for kx in 0..n {
            let (mut re, mut im) = (0.0, 0.0);
            for x in 0..n {
                let (c, s) = tn[(kx * x) % n];
                let v = block[y * n + x];
                re += v * c;
                im += v * s;
            }
            rows[y * n + kx] = (re, im);
        }
    }
    let mut total = 0.0;
    const R: f64 = 32.0;
    for kx in 0..n {
        // Centred frequency of this column index, as fftshift + freqspace pair them.
        let fx = {
            let k = kx as i64;
            let kk = if k >= (n as i64 + 1) / 2 { k - n as i64 } else { k };
            kk as f64 * (2.0 / n as f64) / 2.0 * R
        };
        for ky in 0..m {
            let (mut re, mut im) = (0.0, 0.0);
            for y in 0..m {
                let (c, s) = tm[(ky * y) % m];
                let (a, b) = rows[y * n + kx];
                re += a * c - b * s;
                im += a * s + b * c;
            }
            let fy = {
                let k = ky as i64;
                let kk = if k >= (m as i64 + 1) / 2 { k - m as i64 } else { k };
                kk as f64 * (2.0 / m as f64) / 2.0 * R
            };
            let r = (fx * fx + fy * fy).sqrt();
            let fw = 2.6 * (0.0192 + 0.114 * r) * (-(0.114 * r).powf(1.1)).exp();
            total += (re * re + im * im) * fw * fw;
        }
    }
    total
}

/// The reference's `PS` (perceptual saliency) of a 0..=255 image.
fn perceptual_saliency(img: &Grid) -> f64 {
    let (w, h) = (img.w, img.h);
    if w < 3 || h < 3 {
        return 0.0;
    }
    let (vw, vh) = (w - 2, h - 2);
    let at = |y: usize, x: usize| img.data[y * w + x];
    let mut grad2 = vec![0.0; vw * vh];
    let mut inner = vec![0.0; vw * vh];
    for y in 0..vh {
        for x in 0..vw {
            let gx = (at(y, x + 2) + 2.0 * at(y + 1, x + 2) + at(y + 2, x + 2))
                - (at(y, x) + 2.0 * at(y + 1, x) + at(y + 2, x));
            let gy = (at(y + 2, x) + 2.0 * at(y + 2, x + 1) + at(y + 2, x + 2))
                - (at(y, x) + 2.0 * at(y, x + 1) + at(y, x + 2));
            grad2[y * vw + x] = gx * gx + gy * gy;
            inner[y * vw + x] = at(y + 1, x + 1);
        }
    }
    const BLK: usize = 40;
    let (mut num, mut den) = (0.0, 0.0);
    for by in (0..vh).step_by(BLK) {
        for bx in (0..vw).step_by(BLK) {
            let (m, n) = ((vh - by).min(BLK), (vw - bx).min(BLK));
            let mut block = Vec::with_capacity(m * n);
            let mut lambda = 0.0;
            for y in by..by + m {
                block.extend_from_slice(&inner[y * vw + bx..y * vw + bx + n]);
                // sum(|g|^2) with g = sqrt(gx² + gy²): squaring the square root, as the reference does.
                lambda += grad2[y * vw + bx..y * vw + bx + n].iter().map(|&g2| g2.sqrt().powi(2)).sum::<f64>();
            }
            let inf = weighted_spectral_energy(&block, m, n).sqrt() / (m * n) as f64;
            num += inf * lambda;
            den += lambda;
        }
    }
    if den > 0.0 { num / den } else { 0.0 }
}

/// Hybrid multi-scale decomposition: base layers `M`, edge layers `E` and detail layers `D`.
struct Hybrid {
    m: Vec<Grid>,
    e: Vec<Grid>,
    d: Vec<Grid>,
}

fn decompose(img01: &Grid, levels: usize) -> Hybrid {
    let (mut m, mut ml) = (vec![img01.clone()], img01.clone());
    let (mut e, mut d) = (vec![Grid::zeros(0, 0)], vec![Grid::zeros(0, 0)]);
    let (mut r, mut eps) = (2usize, 0.1f64);
    for _ in 0..levels {
        let prev = m.last().expect("non-empty").clone();
        let next = guided_filter(&prev, &prev, r, 100.0 * 100.0);
        let next_l = guided_filter(&ml, &ml, r, eps * eps);
        d.push(prev.zip_map(&next_l, |a, b| a - b));
        e.push(next_l.zip_map(&next, |a, b| a - b));
        m.push(next);
        ml = next_l;
        r *= 2;
        eps /= 2.0;
    }
    Hybrid { m, e, d }
}

/// GFCE of one visible channel `vis` with the infrared image `ir` (both 0..=255).
fn gfce_plane(vis: &Grid, ir: &Grid, prm: &GfceParams) -> Grid {
    let n = prm.levels;
    let vis_e = enhance(vis);
    let ir_n = stretch255(ir);
    let (ps_ir, ps_vis) = rayon::join(|| perceptual_saliency(&ir_n), || perceptual_saliency(&vis_e));
    let rs = if ps_vis > 0.0 { ps_ir / ps_vis } else { 0.0 };
    let lambda = if rs < 0.8 {
        100.0
    } else if rs > 1.6 {
        2000.0
    } else {
        2500.0 * rs - 1900.0
    };
    let (h1, h2) = rayon::join(|| decompose(&vis_e.map(|v| v / 255.0), n), || decompose(&ir_n.map(|v| v / 255.0), n));
    let sigma0 = 2.0 * 2f64.powi(n as i32);
    let g1 = gaussian_kernel(3, 1.0);
    let atan_l = lambda.atan();
    let mut mb = Grid::zeros(vis.w, vis.h);
    for j in (2..=n).rev() {
        let r = h2.e[j].zip_map(&h1.e[j], |a, b| (a.abs() - b.abs()).max(0.0));
        let rmax = r.data.iter().copied().fold(0.0, f64::max);
        let c = r.map(|v| if rmax > 0.0 { (lambda * (v / rmax)).atan() / atan_l } else { 0.0 });
        if j == n {
            let sigma_b = 2.0 * sigma0;
            let w = (3.0 * sigma_b).floor() as usize;
            let cb = correlate_separable_symmetric(&c, &gaussian_kernel(w, sigma_b));
            for k in 0..mb.data.len() {
                mb.data[k] = cb.data[k] * h2.m[n].data[k] + (1.0 - cb.data[k]) * h1.m[n].data[k];
            }
        }
        let c = correlate_separable_symmetric(&c, &g1);
        for k in 0..mb.data.len() {
            let ck = c.data[k];
            mb.data[k] += ck * h2.e[j].data[k] + (1.0 - ck) * h1.e[j].data[k];
            mb.data[k] += ck * h2.d[j].data[k] + (1.0 - ck) * h1.d[j].data[k];
        }
    }
    let c11 = h1.e[1].zip_map(&h2.e[1], |a, b| if a.abs() < b.abs() { 1.0 } else { 0.0 });
    let c11 = correlate_separable_symmetric(&c11, &g1);
    for k in 0..mb.data.len() {
        mb.data[k] += c11.data[k] * h2.e[1].data[k] + (1.0 - c11.data[k]) * h1.e[1].data[k];
        let (d1, d2) = (h1.d[1].data[k], h2.d[1].data[k]);
        let c10 = if d1.abs() < d2.abs() { 1.0 } else { 0.0 };
        mb.data[k] += c10 * d2 + (1.0 - c10) * d1;
    }
    // MATLAB's min/max skip NaN: min(round(NaN), 255) is 255.
    mb.map(|v| {
        let r = (v * prm.gain).round();
        if r.is_nan() { 255.0 } else { r.clamp(0.0, 255.0) }
    })
}

/// GFCE with VIFB's parameters; `a` is the infrared image, `b` the visible one (0..=255).
pub fn gfce(a: &Plane, b: &Plane) -> Result<Plane> {
    gfce_with(a, b, &GfceParams::default())
}

/// GFCE with explicit parameters.
pub fn gfce_with(a: &Plane, b: &Plane, prm: &GfceParams) -> Result<Plane> {
    check_pair(a, b)?;
    prm.validate()?;
    Ok(gfce_plane(&Grid::from_plane(b), &Grid::from_plane(a), prm).to_plane())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectral_energy_of_a_constant_block_is_its_dc_term() {
        // Only the DC coefficient (m·n·v) is non-zero; fw(0) = 2.6·0.0192.
        let (m, n, v) = (5, 4, 3.0);
        let e = weighted_spectral_energy(&vec![v; m * n], m, n);
        let dc = (m * n) as f64 * v;
        let fw0 = 2.6 * 0.0192;
        assert!((e - dc * dc * fw0 * fw0).abs() < 1e-9 * e, "{e}");
    }

    #[test]
    fn nearest_and_bilinear_resizes_follow_octave() {
        let g = Grid { w: 8, h: 1, data: (0..8).map(f64::from).collect() };
        // scale 1/2: positions 0.5 + 1 + 2k = 1.5, 3.5, ... round half away → 2, 4, 6, 8 (1-based)
        assert_eq!(resize_nearest_down(&g, 2.0).data, vec![1.0, 3.0, 5.0, 7.0]);
        let up = resize_bilinear_up(&Grid { w: 2, h: 1, data: vec![0.0, 4.0] }, 4, 1);
        // positions 0.75, 1.25, 1.75, 2.25 with symmetric borders
        assert_eq!(up.data, vec![0.0, 1.0, 3.0, 4.0]);
    }

    #[test]
    fn rejects_bad_parameters() {
        let a = Plane::new(2, 2, vec![0.0; 4]);
        let prm = GfceParams { levels: 1, ..GfceParams::default() };
        assert!(matches!(gfce_with(&a, &a, &prm), Err(Error::InvalidParameter { method: "gfce", .. })));
    }
}
