//! Cross-bilateral-filter fusion (CBF).
//!
//! B. K. Shreyamsha Kumar, "Image fusion based on pixel significance using cross bilateral
//! filter", Signal, Image and Video Processing 9(5):1193–1204, 2015 (doi:10.1007/s11760-013-0556-9).
//! Parameters and arithmetic follow VIFB's `methods/CBF` code.
//!
//! 1. `A_a = CBF(a guided by b)`, `A_b = CBF(b guided by a)`: a cross bilateral filter whose range
//!    weights come from the *other* image, `Σ I(q) g_s(p−q) g_r(J(q)−J(p)) / Σ g_s g_r` over a
//!    `ksize×ksize` window with `g_s = exp(−d²/2σ_s²)`, `g_r = exp(−Δ²/2σ_r²)`;
//! 2. detail layers `D_n = I_n − A_n`;
//! 3. weights `W_n` = horizontal + vertical "edge strength" of `D_n` in a `cov_wsize` window: the
//!    sum of the eigenvalues (= the trace) of the covariance of the window's columns, plus that of
//!    its rows (unbiased, divisor `cov_wsize − 1`); a weight of exactly 0 becomes `f64::EPSILON`;
//! 4. `F = (a W_a + b W_b) / (W_a + W_b)`.
//!
//! Both windows see the image extended as the reference's `per_extn_im_fn` does: mirrored without
//! repeating the edge pixel, filled in place, so images smaller than half a window mirror zeros
//! (reproduced here, as every size works in the reference). Intensities on the 0..=255 scale
//! (σ_r depends on it).

use crate::grid::{Grid, for_each_row};
use crate::params::{ParamInfo, Params, bad, info, parse_odd, parse_positive, require_positive, unknown_key};
use crate::{Result, check_pair};
use mmif_io::Plane;

/// Parameters of [`cbf_with`]; [`Default`] is VIFB's `run_CBF.m`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CbfParams {
    /// Spatial σ of the cross bilateral filter (1.8).
    pub sigma_s: f64,
    /// Range σ of the cross bilateral filter (25, on the 0..=255 scale).
    pub sigma_r: f64,
    /// Side of the bilateral window, odd (11).
    pub ksize: usize,
    /// Side of the covariance window of the weights, odd (5).
    pub cov_wsize: usize,
}

impl Default for CbfParams {
    fn default() -> Self {
        Self { sigma_s: 1.8, sigma_r: 25.0, ksize: 11, cov_wsize: 5 }
    }
}

impl CbfParams {
    fn validate(&self) -> Result<()> {
        require_positive("cbf", &[("sigma_s", self.sigma_s), ("sigma_r", self.sigma_r)])?;
        let bad = |msg: String| Err(bad("cbf", msg));
        for (name, v) in [("ksize", self.ksize), ("cov_wsize", self.cov_wsize)] {
            if v % 2 == 0 || v > 101 {
                return bad(format!("{name} must be odd and <= 101, got {v}"));
            }
        }
        if self.cov_wsize < 3 {
            return bad(format!("cov_wsize must be >= 3, got {}", self.cov_wsize));
        }
        Ok(())
    }
}

/// `--param key=value` keys of `cbf` (checked as a whole set when one changes).
impl Params for CbfParams {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let mut next = *self;
        match key {
            "sigma_s" => next.sigma_s = parse_positive("cbf", key, value)?,
            "sigma_r" => next.sigma_r = parse_positive("cbf", key, value)?,
            "ksize" => next.ksize = parse_odd("cbf", key, value, 1, 101)?,
            "cov_wsize" => next.cov_wsize = parse_odd("cbf", key, value, 3, 101)?,
            _ => return Err(unknown_key("cbf", key, &self.list())),
        }
        next.validate()?;
        *self = next;
        Ok(())
    }

    fn list(&self) -> Vec<ParamInfo> {
        vec![
            info("sigma_s", self.sigma_s, "spatial sigma of the cross bilateral filter"),
            info("sigma_r", self.sigma_r, "range sigma of the cross bilateral filter (0..=255 scale)"),
            info("ksize", self.ksize, "side of the bilateral window (odd)"),
            info("cov_wsize", self.cov_wsize, "side of the covariance window of the weights (odd)"),
        ]
    }
}

/// The reference's `per_extn_im_fn`: a `(h + wsize − 1) × (w + wsize − 1)` copy with mirrored
/// borders, filled in place top, bottom, left, right (zeros where the mirror runs off the image).
pub(crate) fn mirror_extend(x: &Grid, wsize: usize) -> Grid {
    let hw = (wsize - 1) / 2;
    let (p, q) = (x.h, x.w);
    let (ph, pw) = (p + 2 * hw, q + 2 * hw);
    let mut out = Grid::zeros(pw, ph);
    for y in 0..p {
        out.data[(y + hw) * pw + hw..(y + hw) * pw + hw + q].copy_from_slice(x.row(y));
    }
    let copy_row = |out: &mut Grid, dst: usize, src: usize| {
        let (s, d) = (src * pw, dst * pw);
        out.data.copy_within(s..s + pw, d);
    };
    for i in 0..hw {
        copy_row(&mut out, i, wsize - 1 - i);
    }
    for i in 0..hw {
        copy_row(&mut out, p + hw + i, p + hw - 2 - i);
    }
    for row in out.data.chunks_mut(pw) {
        for i in 0..hw {
            row[i] = row[wsize - 1 - i];
        }
        for i in 0..hw {
            row[q + hw + i] = row[q + hw - 2 - i];
        }
    }
    out
}

/// Cross bilateral filter of `x1` with range weights from `x2` (the reference's
/// `cross_bilateral_filt2Df`).
pub(crate) fn cross_bilateral(x1: &Grid, x2: &Grid, prm: &CbfParams) -> Grid {
    let k = prm.ksize;
    let hk = k / 2;
    let (e1, e2) = (mirror_extend(x1, k), mirror_extend(x2, k));
    let pw = e1.w;
    let two_ss = 2.0 * prm.sigma_s * prm.sigma_s;
    let two_rr = 2.0 * prm.sigma_r * prm.sigma_r;
    let gk: Vec<f64> = (0..k * k)
        .map(|t| {
            let (dy, dx) = ((t / k) as f64 - hk as f64, (t % k) as f64 - hk as f64);
            (-((dx * dx + dy * dy) / two_ss)).exp()
        })
        .collect();
    let range = |d: f64| (-(d * d / two_rr)).exp();
    // 8-bit guides (the usual case) take the range weight from a table of the same values.
    let integral = e2.data.iter().all(|&v| v.fract() == 0.0 && (0.0..=255.0).contains(&v));
    let table: Vec<f64> = if integral { (0..256).map(|d| range(f64::from(d))).collect() } else { Vec::new() };
    let mut out = Grid::zeros(x1.w, x1.h);
    for_each_row(&mut out.data, x1.w, |y, o| {
        for (x, ov) in o.iter_mut().enumerate() {
            let centre = e2.data[(y + hk) * pw + x + hk];
            let (mut num, mut den) = (0.0, 0.0);
            for dy in 0..k {
                let base = (y + dy) * pw + x;
                let (r1, r2) = (&e1.data[base..base + k], &e2.data[base..base + k]);
                let g = &gk[dy * k..(dy + 1) * k];
                for j in 0..k {
                    let d = (r2[j] - centre).abs();
                    let wgt = g[j] * if integral { table[d as usize] } else { range(d) };
                    num += r1[j] * wgt;
                    den += wgt;
                }
            }
            *ov = num / den;
        }
    });
    out
}

/// Horizontal plus vertical edge strength of each `n×n` window of `d` (the reference's
/// `sum(eig(covarf(..)))` of the window and of its transpose, computed as traces).
pub(crate) fn edge_strength(d: &Grid, n: usize) -> Grid {
    let e = mirror_extend(d, n);
    let pw = e.w;
    let norm = 1.0 / (n - 1) as f64;
    let inv_n = 1.0 / n as f64;
    let mut out = Grid::zeros(d.w, d.h);
    for_each_row(&mut out.data, d.w, |y, o| {
        let mut win = vec![0.0; n * n];
        for (x, ov) in o.iter_mut().enumerate() {
            for r in 0..n {
                let s = (y + r) * pw + x;
                win[r * n..(r + 1) * n].copy_from_slice(&e.data[s..s + n]);
            }
            let mut total = 0.0;
            // Columns (variables of covarf(tt)): variance over the rows of each column.
            for c in 0..n {
                let m = (0..n).map(|r| win[r * n + c]).sum::<f64>() * inv_n;
                total += (0..n).map(|r| (win[r * n + c] - m).powi(2)).sum::<f64>() * norm;
            }
            // Rows (variables of covarf(tt')).
            for r in 0..n {
                let row = &win[r * n..(r + 1) * n];
                let m = row.iter().sum::<f64>() * inv_n;
                total += row.iter().map(|v| (v - m).powi(2)).sum::<f64>() * norm;
            }
            *ov = total;
        }
    });
    out
}

/// CBF with VIFB's parameters; `a` is the infrared image, `b` the visible one (symmetric).
pub fn cbf(a: &Plane, b: &Plane) -> Result<Plane> {
    cbf_with(a, b, &CbfParams::default())
}

/// CBF with explicit parameters.
pub fn cbf_with(a: &Plane, b: &Plane, prm: &CbfParams) -> Result<Plane> {
    check_pair(a, b)?;
    prm.validate()?;
    let (ia, ib) = (Grid::from_plane(a), Grid::from_plane(b));
    let (fa, fb) = rayon::join(|| cross_bilateral(&ia, &ib, prm), || cross_bilateral(&ib, &ia, prm));
    let da = ia.zip_map(&fa, |i, f| i - f);
    let db = ib.zip_map(&fb, |i, f| i - f);
    let (wa, wb) = rayon::join(|| edge_strength(&da, prm.cov_wsize), || edge_strength(&db, prm.cov_wsize));
    let nz = |w: f64| if w == 0.0 { f64::EPSILON } else { w };
    let mut out = Grid::zeros(a.width, a.height);
    for (k, o) in out.data.iter_mut().enumerate() {
        let (wa, wb) = (nz(wa.data[k]), nz(wb.data[k]));
        *o = (ia.data[k] * wa + ib.data[k] * wb) / (wa + wb);
    }
    Ok(out.to_plane())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_extension_matches_the_reference_procedure() {
        // 3×2 image, window 5 (hw = 2): rows mirror as [r2 r1 | r0 r1 r2 | r1 r0] for 3 rows.
        let x = Grid { w: 2, h: 3, data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] };
        let e = mirror_extend(&x, 5);
        assert_eq!((e.w, e.h), (6, 7));
        // On a 2-wide image the left mirror reads a still-zero column and the right one reads the
        // already-filled left border.
        let row = |y: usize| e.data[y * 6..(y + 1) * 6].to_vec();
        assert_eq!(row(2), vec![0.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
        assert_eq!(row(0), row(4));
        assert_eq!(row(1), row(3));
        assert_eq!(row(5), row(3));
        assert_eq!(row(6), row(2));
    }

    #[test]
    fn edge_strength_of_a_constant_window_is_zero() {
        let g = Grid { w: 7, h: 6, data: vec![3.0; 42] };
        assert!(edge_strength(&g, 5).data.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn rejects_bad_parameters() {
        let a = Plane::new(2, 2, vec![0.0; 4]);
        let prm = CbfParams { ksize: 4, ..CbfParams::default() };
        assert!(matches!(cbf_with(&a, &a, &prm), Err(crate::Error::InvalidParameter { method: "cbf", .. })));
    }
}
