//! Phase congruency as Liu's `myphasecong3.m` (a revision of Kovesi's `phasecong3.m`, shipped
//! with MEFB for its Qp) computes it with its default parameters: 4 log-Gabor scales (minimum
//! wavelength 3, ratio 2.1, σ/f₀ 0.55), 6 orientations (angular σ = π/6/1.2), noise threshold
//! k = 2 (rescaled by 1/1.7), frequency-spread cut-off 0.5 and gain 10. Written from the MATLAB
//! definition; the FFTs are the toolkit's (rounding differs from FFTW's by ~1e-15).

use std::f64::consts::PI;

use super::fft::{C, fft2};
use super::matlab::Plane;

const NSCALE: usize = 4;
const NORIENT: usize = 6;
const MIN_WAVELENGTH: f64 = 3.0;
const MULT: f64 = 2.1;
const SIGMA_ON_F: f64 = 0.55;
const D_THETA_ON_SIGMA: f64 = 1.2;
const K: f64 = 2.0;
const CUT_OFF: f64 = 0.5;
const G: f64 = 10.0;
const EPSILON: f64 = 0.0001;

/// The outputs of `myphasecong3` that Qp reads: phase congruency and the maximum (`M`) and
/// minimum (`m`) moments of the phase congruency covariance.
pub(crate) struct PhaseCong {
    pub(crate) pc: Plane,
    pub(crate) max_moment: Plane,
    pub(crate) min_moment: Plane,
}

/// `sum(sum(x))` of a row-major plane, in MATLAB's order (each column, then the column sums).
pub(crate) fn sum_colmajor(x: &[f64], width: usize, height: usize) -> f64 {
    let mut total = 0.0;
    for c in 0..width {
        let mut s = 0.0;
        for r in 0..height {
            s += x[r * width + c];
        }
        total += s;
    }
    total
}

/// The normalised range of `meshgrid` in `myphasecong3`: `[-(n-1)/2:(n-1)/2]/(n-1)` for odd `n`
/// (0/0, NaN, for n = 1), `[-n/2:n/2-1]/n` for even `n`.
fn frequency_range(n: usize) -> Vec<f64> {
    let nf = n as f64;
    if n % 2 == 1 {
        (0..n).map(|i| (i as f64 - (nf - 1.0) / 2.0) / (nf - 1.0)).collect()
    } else {
        (0..n).map(|i| (i as f64 - nf / 2.0) / nf).collect()
    }
}

/// `ifftshift` of a row-major `height`×`width` array: element (r, c) comes from
/// ((r + ⌊H/2⌋) mod H, (c + ⌊W/2⌋) mod W). `fftshift` uses ⌈·⌉ instead (`up`).
fn shift(x: &[f64], width: usize, height: usize, up: bool) -> Vec<f64> {
    let (dr, dc) = if up { (height.div_ceil(2), width.div_ceil(2)) } else { (height / 2, width / 2) };
    let mut out = vec![0.0; x.len()];
    for r in 0..height {
        for c in 0..width {
            out[r * width + c] = x[((r + dr) % height) * width + (c + dc) % width];
        }
    }
    out
}

/// `lowpassfilter([rows cols], 0.45, 15)`: a Butterworth filter in FFT order.
fn lowpass(width: usize, height: usize) -> Vec<f64> {
    let (wf, hf) = (width as f64, height as f64);
    let mut f = Vec::with_capacity(width * height);
    for r in 0..height {
        let y = ((r + 1) as f64 - ((height / 2) as f64 + 1.0)) / hf;
        for c in 0..width {
            let x = ((c + 1) as f64 - ((width / 2) as f64 + 1.0)) / wf;
            let radius = (x * x + y * y).sqrt();
            f.push(1.0 / (1.0 + (radius / 0.45).powf(30.0)));
        }
    }
    shift(&f, width, height, true)
}

/// Octave's `median` of all values: the middle one, or the mean of the two middle ones.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// The log-Gabor filter bank of `myphasecong3` for one image size, and what the noise estimate
/// derives from the filters alone; shared by every image of that size.
pub(crate) struct FilterBank {
    width: usize,
    height: usize,
    /// `filter{s}` of orientation `o` (`logGabor{s} .* spread{o}`), FFT order.
    filters: Vec<Vec<Vec<f64>>>,
    /// Per orientation: `EM_n` (sum of the smallest scale's squared filter), and
    /// `sum(sum(EstSumAn2))`, `sum(sum(EstSumAiAj))` of the filters' inverse FFTs.
    em_n: Vec<f64>,
    sum_an2: Vec<f64>,
    sum_ai_aj: Vec<f64>,
}

impl FilterBank {
    pub(crate) fn new(w: usize, h: usize) -> Self {
        let n = w * h;
        let theta_sigma = PI / NORIENT as f64 / D_THETA_ON_SIGMA;
        let (xr, yr) = (frequency_range(w), frequency_range(h));
        let mut radius = Vec::with_capacity(n);
        let mut theta = Vec::with_capacity(n);
        for &y in &yr {
            for &x in &xr {
                radius.push((x * x + y * y).sqrt());
                theta.push((-y).atan2(x));
            }
        }
        radius[(h / 2) * w + w / 2] = 1.0;
        let radius = shift(&radius, w, h, false);
        let theta = shift(&theta, w, h, false);
        let sintheta: Vec<f64> = theta.iter().map(|t| t.sin()).collect();
        let costheta: Vec<f64> = theta.iter().map(|t| t.cos()).collect();

        let lp = lowpass(w, h);
        let log_sigma = SIGMA_ON_F.ln();
        let log_gabor: Vec<Vec<f64>> = (0..NSCALE)
            .map(|s| {
                let wavelength = MIN_WAVELENGTH * MULT.powf(s as f64);
                let fo = 1.0 / wavelength;
                let mut g: Vec<f64> = radius
                    .iter()
                    .zip(&lp)
                    .map(|(&r, &l)| {
                        let lg = (r / fo).ln();
                        ((-(lg * lg)) / (2.0 * (log_sigma * log_sigma))).exp() * l
                    })
                    .collect();
                g[0] = 0.0;
                g
            })
            .collect();
        let sqrt_n = (n as f64).sqrt();
        let mut bank = FilterBank {
            width: w,
            height: h,
            filters: Vec::new(),
            em_n: Vec::new(),
            sum_an2: Vec::new(),
            sum_ai_aj: Vec::new(),
        };
        for o in 0..NORIENT {
            let angl = o as f64 * PI / NORIENT as f64;
            let (ca, sa) = (angl.cos(), angl.sin());
            let spread: Vec<f64> = (0..n)
                .map(|i| {
                    let ds = sintheta[i] * ca - costheta[i] * sa;
                    let dc = costheta[i] * ca + sintheta[i] * sa;
                    let dtheta = ds.atan2(dc).abs();
                    ((-(dtheta * dtheta)) / (2.0 * (theta_sigma * theta_sigma))).exp()
                })
                .collect();
            let filters: Vec<Vec<f64>> =
                log_gabor.iter().map(|lg| lg.iter().zip(&spread).map(|(a, b)| a * b).collect()).collect();
            let ifft_filters: Vec<Vec<f64>> = filters
                .iter()
                .map(|filter| {
                    let mut f: Vec<C> = filter.iter().map(|&v| C::new(v, 0.0)).collect();
                    fft2(&mut f, w, h, true);
                    f.iter().map(|v| v.re * sqrt_n).collect()
                })
                .collect();
            let sq: Vec<f64> = filters[0].iter().map(|v| v * v).collect();
            bank.em_n.push(sum_colmajor(&sq, w, h));
            let mut est_sum_an2 = vec![0.0; n];
            for f in &ifft_filters {
                for (a, v) in est_sum_an2.iter_mut().zip(f) {
                    *a += v * v;
                }
            }
            let mut est_sum_ai_aj = vec![0.0; n];
            for si in 0..NSCALE - 1 {
                for sj in si + 1..NSCALE {
                    for i in 0..n {
                        est_sum_ai_aj[i] += ifft_filters[si][i] * ifft_filters[sj][i];
                    }
                }
            }
            bank.sum_an2.push(sum_colmajor(&est_sum_an2, w, h));
            bank.sum_ai_aj.push(sum_colmajor(&est_sum_ai_aj, w, h));
            bank.filters.push(filters);
        }
        bank
    }
}

/// `[phaseCongruency, or, M, m] = myphasecong3(im)` for a `double` image (`or` is not computed),
/// with the filter bank of its size.
pub(crate) fn phasecong(im: &Plane, bank: &FilterBank) -> PhaseCong {
    let (w, h) = (im.width, im.height);
    debug_assert_eq!((w, h), (bank.width, bank.height));
    let n = w * h;
    let mut imagefft: Vec<C> = im.data.iter().map(|&v| C::new(v, 0.0)).collect();
    fft2(&mut imagefft, w, h, false);

    let zero = vec![0.0; n];
    let mut total_energy = zero.clone();
    let mut total_sum_an = zero.clone();
    let (mut covx2, mut covy2, mut covxy) = (zero.clone(), zero.clone(), zero.clone());
    for o in 0..NORIENT {
        let angl = o as f64 * PI / NORIENT as f64;
        let (ca, sa) = (angl.cos(), angl.sin());
        let mut sum_e = zero.clone();
        let mut sum_o = zero.clone();
        let mut sum_an = zero.clone();
        let mut max_an = zero.clone();
        let mut eo: Vec<Vec<C>> = Vec::with_capacity(NSCALE);
        for (s, filter) in bank.filters[o].iter().enumerate() {
            let mut e: Vec<C> = imagefft.iter().zip(filter).map(|(v, &g)| C::new(v.re * g, v.im * g)).collect();
            fft2(&mut e, w, h, true);
            for i in 0..n {
                let an = e[i].re.hypot(e[i].im);
                sum_an[i] += an;
                sum_e[i] += e[i].re;
                sum_o[i] += e[i].im;
                max_an[i] = if s == 0 { an } else { max_an[i].max(an) };
            }
            eo.push(e);
        }
        let mut energy = zero.clone();
        for i in 0..n {
            let x_energy = (sum_e[i] * sum_e[i] + sum_o[i] * sum_o[i]).sqrt() + EPSILON;
            let (mean_e, mean_o) = (sum_e[i] / x_energy, sum_o[i] / x_energy);
            for e in &eo {
                let (ev, ov) = (e[i].re, e[i].im);
                energy[i] = energy[i] + ev * mean_e + ov * mean_o - (ev * mean_o - ov * mean_e).abs();
            }
        }
        let median_e2n = median(
            eo[0]
                .iter()
                .map(|v| {
                    let a = v.re.hypot(v.im);
                    a * a
                })
                .collect(),
        );
        let mean_e2n = -median_e2n / 0.5f64.ln();
        let noise_power = mean_e2n / bank.em_n[o];
        let est_noise_energy2 = 2.0 * noise_power * bank.sum_an2[o] + 4.0 * noise_power * bank.sum_ai_aj[o];
        let tau = (est_noise_energy2 / 2.0).sqrt();
        let est_noise_energy = tau * (PI / 2.0).sqrt();
        let est_noise_energy_sigma = ((2.0 - PI / 2.0) * (tau * tau)).sqrt();
        let t = (est_noise_energy + K * est_noise_energy_sigma) / 1.7;
        for i in 0..n {
            let e = (energy[i] - t).max(0.0);
            let width = sum_an[i] / (max_an[i] + EPSILON) / NSCALE as f64;
            let weight = 1.0 / (1.0 + ((CUT_OFF - width) * G).exp());
            total_sum_an[i] += sum_an[i];
            total_energy[i] += weight * e;
            let pc = weight * e / sum_an[i];
            let (covx, covy) = (pc * ca, pc * sa);
            covx2[i] += covx * covx;
            covy2[i] += covy * covy;
            covxy[i] += covx * covy;
        }
    }
    let half = NORIENT as f64 / 2.0;
    let mut pc = Vec::with_capacity(n);
    let mut max_moment = Vec::with_capacity(n);
    let mut min_moment = Vec::with_capacity(n);
    for i in 0..n {
        pc.push(total_energy[i] / (total_sum_an[i] + EPSILON));
        let (cx2, cy2, cxy) = (covx2[i] / half, covy2[i] / half, covxy[i] / NORIENT as f64);
        let denom = (cxy * cxy + (cx2 - cy2) * (cx2 - cy2)).sqrt() + EPSILON;
        max_moment.push((cy2 + cx2 + denom) / 2.0);
        min_moment.push((cy2 + cx2 - denom) / 2.0);
    }
    PhaseCong {
        pc: Plane::new(w, h, pc),
        max_moment: Plane::new(w, h, max_moment),
        min_moment: Plane::new(w, h, min_moment),
    }
}
