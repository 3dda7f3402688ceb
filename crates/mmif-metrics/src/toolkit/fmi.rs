//! Haghighat's feature mutual information (`FMI` in MEFB's `metrics/metricsFMI.m`, from
//! Haghighat's `fmi.m`) over given feature maps, 3×3 windows: per window, the mutual information
//! of each source's and the fused image's normalised feature distributions under Nelsen's
//! copula-bounded joint distribution, `2·MI/(H_a + H_f)`, averaged over the two sources and the
//! windows. Written from the MATLAB definition, including its quirks (the window is read
//! column-major; the fused window compared with the second source is the one normalised for the
//! first; `real()` of the entropy of a negative joint probability).
//!
//! MEFB's own FMI (`mefb.FMI`) uses MATLAB's `edge()` as the feature: Sobel with an automatic
//! threshold and a direction-dependent thinning, [`super::matlab::edge_sobel`] (GNU Octave's
//! `edge` thins differently; see docs/metrics.md).

use super::matlab::{Plane, min_max};
use super::phasecong::sum_colmajor;

const L: usize = 9;

/// A window's values normalised to 0..1 (all ones when constant), column-major.
fn normalise(sub: &[f64; L]) -> [f64; L] {
    let (lo, hi) = min_max(sub);
    if hi == lo { [1.0; L] } else { sub.map(|v| (v - lo) / (hi - lo)) }
}

/// `-p·log2(p)`, real part (MATLAB's `real()` of the complex log of a negative `p`).
fn plogp(p: f64) -> f64 {
    -p * p.abs().log2()
}

/// `fmi_af` (or `fmi_bf`) of one window pair, `s` the source's and `f` the fused image's
/// normalised windows.
fn window_fmi(s: &[f64; L], f: &[f64; L]) -> f64 {
    let total = |x: &[f64; L]| sum_colmajor(x, 3, 3);
    let (ts, tf) = (total(s), total(f));
    let sp = s.map(|v| v / ts);
    let fp = f.map(|v| v / tf);
    let cdf = |p: &[f64; L]| {
        let mut c = *p;
        for i in 1..L {
            c[i] = p[i] + c[i - 1];
        }
        c
    };
    let (sc, fc) = (cdf(&sp), cdf(&fp));
    let mean = |p: &[f64; L]| p.iter().sum::<f64>() / L as f64;
    let (ms, mf) = (mean(&sp), mean(&fp));
    let st = sp.map(|v| v - ms);
    let ft = fp.map(|v| v - mf);
    let dot = |a: &[f64; L], b: &[f64; L]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let num = dot(&st, &ft);
    let c = if num == 0.0 { 0.0 } else { num / (dot(&st, &st) * dot(&ft, &ft)).sqrt() };
    let moments = |p: &[f64; L]| {
        let (mut e, mut e2) = (0.0, 0.0);
        for (i, &v) in p.iter().enumerate() {
            let k = (i + 1) as f64;
            e += k * v;
            e2 += k * k * v;
        }
        (e2 - e * e).sqrt()
    };
    let (s_sd, f_sd) = (moments(&sp), moments(&fp));
    // Fréchet–Hoeffding bounds of the joint CDF: upper for c >= 0, lower for c < 0
    let upper = |i: usize, j: usize| 0.5 * (fc[i] + sc[j] - (fc[i] - sc[j]).abs());
    let lower = |i: usize, j: usize| 0.5 * (fc[i] + sc[j] - 1.0 + (fc[i] + sc[j] - 1.0).abs());
    let bound: &dyn Fn(usize, usize) -> f64 = if c >= 0.0 { &upper } else { &lower };
    let degenerate = if c >= 0.0 { c == 0.0 || s_sd == 0.0 || f_sd == 0.0 } else { s_sd == 0.0 || f_sd == 0.0 };
    let phi = if degenerate {
        0.0
    } else {
        let mut cov = 0.0;
        for (i, f) in fc.iter().enumerate() {
            for (j, s) in sc.iter().enumerate() {
                cov = cov + bound(i, j) - f * s;
            }
        }
        c / (cov / (f_sd * s_sd))
    };
    let mut joint = 0.0;
    let mut add = |bound_mass: f64, i: usize, j: usize| {
        let jpdf = phi * bound_mass + (1.0 - phi) * fp[i] * sp[j];
        if jpdf != 0.0 {
            joint += plogp(jpdf);
        }
    };
    add(bound(0, 0), 0, 0);
    for i in 1..L {
        add(bound(i, 0) - bound(i - 1, 0), i, 0);
    }
    for j in 1..L {
        add(bound(0, j) - bound(0, j - 1), 0, j);
    }
    for i in 1..L {
        for j in 1..L {
            add(bound(i, j) - bound(i - 1, j) - bound(i, j - 1) + bound(i - 1, j - 1), i, j);
        }
    }
    let entropy = |p: &[f64; L]| p.iter().filter(|&&v| v != 0.0).map(|&v| plogp(v)).sum::<f64>();
    let (hs, hf) = (entropy(&sp), entropy(&fp));
    let mi = hs + hf - joint;
    if mi == 0.0 { 0.0 } else { 2.0 * mi / (hs + hf) }
}

/// The 3×3 window of `x` at top-left (`r`, `c`), column-major (MATLAB's `sub(:)`).
fn window(x: &Plane, r: usize, c: usize) -> [f64; L] {
    std::array::from_fn(|k| x.at(r + k % 3, c + k / 3))
}

/// `FMI(ima, imb, imf, feature)` of `metricsFMI.m` once the feature maps `a`, `b`, `f` (same
/// size) are computed: the mean over 3×3 windows of `(fmi_af + fmi_bf)/2`. NaN (MATLAB's `mean2`
/// of an empty map) below 3×3.
pub(crate) fn fmi_of_features(a: &Plane, b: &Plane, f: &Plane) -> f64 {
    let (w, h) = (f.width, f.height);
    if w < 3 || h < 3 {
        return f64::NAN;
    }
    let (mw, mh) = (w - 2, h - 2);
    let mut map = vec![0.0; mw * mh];
    for r in 0..mh {
        for c in 0..mw {
            let (a_sub, b_sub, f_raw) = (window(a, r, c), window(b, r, c), window(f, r, c));
            let (fmi_af, f_sub) = if a_sub == f_raw {
                (1.0, f_raw)
            } else {
                (window_fmi(&normalise(&a_sub), &normalise(&f_raw)), normalise(&f_raw))
            };
            // the MATLAB code compares b with the fused window as left by the `a` branch
            let fmi_bf = if b_sub == f_sub { 1.0 } else { window_fmi(&normalise(&b_sub), &normalise(&f_sub)) };
            map[r * mw + c] = (fmi_af + fmi_bf) / 2.0;
        }
    }
    sum_colmajor(&map, mw, mh) / (mw * mh) as f64
}
