//! The metrics of MEFB (`metrics/metrics*.m` of xingchenzhang/MEFB, multi-exposure), written
//! from their MATLAB definitions. Arguments follow MEFB's `metricsX(img1, img2, fused)`.
//!
//! Colour (MEFB's wrapper, shared by every metric but AG, EI and MEF-SSIM):
//! - both sources gray, colour fused image: only the fused image's first channel is used
//!   (`fused(:,:,1)`; AG uses `rgb2gray(double(fused))` instead);
//! - gray fused image: the metric sees the whole sources; a colour source is made gray inside the
//!   metric as the VIFB code of the same core does (CE, Qc, Qy, Qw: `rgb2gray` on `uint8`; PSNR,
//!   Qabf: on `double`); NMI, TE, QNCIE, Qcb, Qcv and VIF fail in MATLAB (an error here);
//! - colour fused image and colour sources: the mean over channels k of the metric of
//!   (img1(:,:,k), img2(:,:,k), fused(:,:,k));
//! - colour fused image with exactly one gray source: MATLAB fails indexing `img(:,:,2)`.
//!
//! Unlike VIFB's wrapper (which reads the channel count of `img2` for `img1`), MEFB's never
//! pairs a gray infrared-like source with colour channels: hence distinct `mefb.*` metrics even
//! where the per-channel core is VIFB's.

use super::ToolkitError;
use super::image::Image;
use super::matlab::{
    Plane, filter2_same3, filter2_valid, fspecial_gaussian, halve, mean2, normalize1, rgb2gray, subsample2,
};
use super::phasecong::{FilterBank, phasecong, sum_colmajor};
use super::vifb::{self, GrayRule};

/// MEFB's colour wrapper (see the module documentation).
pub(crate) fn wrap(
    img1: &Image,
    img2: &Image,
    fused: &Image,
    rule: GrayRule,
    mut metric: impl FnMut(&Plane, &Plane, &Plane) -> Result<f64, ToolkitError>,
) -> Result<f64, ToolkitError> {
    if fused.channels() == 1 || (img1.channels() == 1 && img2.channels() == 1) {
        return metric(&vifb::to_gray(img1, rule)?, &vifb::to_gray(img2, rule)?, &fused.plane(0));
    }
    if img1.channels() == 1 || img2.channels() == 1 {
        return Err(ToolkitError::GraySourceColourFused);
    }
    let mut sum = 0.0;
    for k in 0..fused.channels() {
        sum += metric(&img1.plane(k), &img2.plane(k), &fused.plane(k))?;
    }
    Ok(sum / fused.channels() as f64)
}

/// MEFB's AG: `rgb2gray(double(fused))` when both sources are gray and the fused image colour,
/// else VIFB's per-channel mean.
pub(crate) fn avg_gradient(img1: &Image, img2: &Image, fused: &Image) -> f64 {
    if fused.channels() == 3 && img1.channels() == 1 && img2.channels() == 1 {
        let p = fused.planes();
        return vifb::avg_gradient_plane(&rgb2gray(&p[0], &p[1], &p[2], false));
    }
    vifb::avg_gradient(fused)
}

/// MEFB's EI: the first channel only when both sources are gray and the fused image colour,
/// else VIFB's mean over every channel.
pub(crate) fn edge_intensity(img1: &Image, img2: &Image, fused: &Image) -> f64 {
    if fused.channels() == 3 && img1.channels() == 1 && img2.channels() == 1 {
        let p = fused.plane(0);
        return vifb::edge_magnitude_sum(&p) / p.data.len() as f64;
    }
    vifb::edge_intensity(fused)
}

/// Joint histogram of two `normalize1`d planes (levels 0..=255), normalised to sum one;
/// `h[i * 256 + j]` counts `a == i && b == j` (MATLAB's `h(a+1, b+1)`).
fn joint_hist(a: &Plane, b: &Plane) -> Result<Vec<f64>, ToolkitError> {
    let mut h = vec![0.0; 256 * 256];
    let level = |v: f64| -> Result<usize, ToolkitError> {
        if (0.0..=255.0).contains(&v) && v.fract() == 0.0 { Ok(v as usize) } else { Err(ToolkitError::NotEightBit(v)) }
    };
    for (&x, &y) in a.data.iter().zip(&b.data) {
        h[level(x)? * 256 + level(y)?] += 1.0;
    }
    let total: f64 = h.iter().sum();
    Ok(h.into_iter().map(|c| c / total).collect())
}

/// Column sums `sum(h)` (indexed by `b`'s level) and row sums `sum(h')` (by `a`'s level).
fn marginals(h: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut cols = vec![0.0; 256];
    let mut rows = vec![0.0; 256];
    for i in 0..256 {
        for j in 0..256 {
            cols[j] += h[i * 256 + j];
            rows[i] += h[i * 256 + j];
        }
    }
    (cols, rows)
}

/// `-sum(p .* log2(p + (p == 0)))`.
fn entropy2(p: &[f64]) -> f64 {
    -p.iter().map(|&v| v * (v + if v == 0.0 { 1.0 } else { 0.0 }).log2()).sum::<f64>()
}

/// Liu's `mutual_info(a, b)`: `(MI, H(a), H(b))` in bits, MI = `H_x + H_y - H_xy`.
fn mutual_info(a: &Plane, b: &Plane) -> Result<(f64, f64, f64), ToolkitError> {
    let h = joint_hist(a, b)?;
    let (cols, rows) = marginals(&h);
    let (hx, hy, hxy) = (entropy2(&cols), entropy2(&rows), entropy2(&h));
    Ok((hx + hy - hxy, hy, hx))
}

/// NMI (Hossny et al.): `2 (MI(A,F)/(H(A)+H(F)) + MI(B,F)/(H(B)+H(F)))` on `normalize1`d images.
pub(crate) fn nmi(im1: &Plane, im2: &Plane, fused: &Plane) -> Result<f64, ToolkitError> {
    let (im1, im2, fused) = (normalize1(im1), normalize1(im2), normalize1(fused));
    let (i1, ha, hf1) = mutual_info(&im1, &fused)?;
    let (i2, hb, hf2) = mutual_info(&im2, &fused)?;
    Ok(2.0 * (i1 / (hf1 + ha) + i2 / (hf2 + hb)))
}

/// Liu's `tsallis(a, b, q)`: `(1 - Σ h(i,j)^q / (m(i) n(j))^(q-1)) / (1 - q)` with the code's
/// marginals `m = sum(h)` (indexed by `b`'s level) and `n = sum(h')` (by `a`'s), over the pairs
/// where `m(i) n(j) ≠ 0`.
fn tsallis(a: &Plane, b: &Plane, q: f64) -> Result<f64, ToolkitError> {
    let h = joint_hist(a, b)?;
    let (m, n) = marginals(&h);
    let mut result = 0.0;
    for i in 0..256 {
        for j in 0..256 {
            let buff = m[i] * n[j];
            if buff != 0.0 {
                result += h[i * 256 + j].powf(q) / buff.powf(q - 1.0);
            }
        }
    }
    Ok((1.0 - result) / (1.0 - q))
}

/// TE (Cvejic et al.): `tsallis(A, F) + tsallis(B, F)` with q = 1.85 on `normalize1`d images.
pub(crate) fn te(im1: &Plane, im2: &Plane, fused: &Plane) -> Result<f64, ToolkitError> {
    let (im1, im2, fused) = (normalize1(im1), normalize1(im2), normalize1(fused));
    Ok(tsallis(&im1, &fused, 1.85)? + tsallis(&im2, &fused, 1.85)?)
}

/// Liu's `NCC`: `(H_x + H_y - H_xy) / log2(256)`, each term divided separately.
fn ncc(a: &Plane, b: &Plane) -> Result<f64, ToolkitError> {
    let h = joint_hist(a, b)?;
    let (cols, rows) = marginals(&h);
    let l = 256f64.log2();
    Ok(entropy2(&cols) / l + entropy2(&rows) / l - entropy2(&h) / l)
}

/// Eigenvalues of a symmetric 3×3 matrix (cyclic Jacobi rotations, to full precision).
fn eig_sym3(mut a: [[f64; 3]; 3]) -> [f64; 3] {
    for _ in 0..64 {
        let off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
        if off == 0.0 {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q] == 0.0 {
                continue;
            }
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let t = if theta == 0.0 { 1.0 } else { t };
            let c = 1.0 / (t * t + 1.0).sqrt();
            let s = t * c;
            let mut b = a;
            for k in 0..3 {
                b[k][p] = c * a[k][p] - s * a[k][q];
                b[k][q] = s * a[k][p] + c * a[k][q];
            }
            let mut d = b;
            for k in 0..3 {
                d[p][k] = c * b[p][k] - s * b[q][k];
                d[q][k] = s * b[p][k] + c * b[q][k];
            }
            d[p][q] = 0.0;
            d[q][p] = 0.0;
            a = d;
        }
    }
    [a[0][0], a[1][1], a[2][2]]
}

/// QNCIE (Wang et al.): `1 + Σ r log2(r/3) / 3 / log2(256)` over the eigenvalues `r` of the
/// 3×3 matrix of nonlinear correlation coefficients. A negative eigenvalue (rounding) makes
/// MATLAB's value complex; its real part is returned, as the generator records.
pub(crate) fn qncie(im1: &Plane, im2: &Plane, fused: &Plane) -> Result<f64, ToolkitError> {
    let (im1, im2, fused) = (normalize1(im1), normalize1(im2), normalize1(fused));
    let (xy, xf, yf) = (ncc(&im1, &im2)?, ncc(&im1, &fused)?, ncc(&im2, &fused)?);
    let r = eig_sym3([[1.0, xy, xf], [xy, 1.0, yf], [xf, yf, 1.0]]);
    let hr: f64 = r.iter().map(|&v| v * (v.abs() / 3.0).log2() / 3.0).sum();
    Ok(1.0 + hr / 256f64.log2())
}

/// The local statistics of the SSIM code MEFB's Qc, Qy and Qw call: `valid` filtering by a
/// Gaussian window, `(ssim_map, σ₁², σ₂², σ₁₂)`.
pub(crate) struct LocalSsim {
    pub map: Vec<f64>,
    pub s1: Vec<f64>,
    pub s2: Vec<f64>,
    pub s12: Vec<f64>,
}

pub(crate) fn local_ssim(a: &Plane, b: &Plane, window: &[f64], n: usize, c1: f64, c2: f64) -> LocalSsim {
    let f = |p: &Plane| filter2_valid(p, window, n).data;
    let prod =
        |x: &Plane, y: &Plane| Plane::new(x.width, x.height, x.data.iter().zip(&y.data).map(|(u, v)| u * v).collect());
    let (mu1, mu2) = (f(a), f(b));
    let (aa, bb, ab) = (f(&prod(a, a)), f(&prod(b, b)), f(&prod(a, b)));
    let len = mu1.len();
    let mut out = LocalSsim { map: vec![0.0; len], s1: vec![0.0; len], s2: vec![0.0; len], s12: vec![0.0; len] };
    for i in 0..len {
        let (m1, m2) = (mu1[i], mu2[i]);
        let (s1, s2, s12) = (aa[i] - m1 * m1, bb[i] - m2 * m2, ab[i] - m1 * m2);
        out.map[i] = ((2.0 * (m1 * m2) + c1) * (2.0 * s12 + c2)) / ((m1 * m1 + m2 * m2 + c1) * (s1 + s2 + c2));
        (out.s1[i], out.s2[i], out.s12[i]) = (s1, s2, s12);
    }
    out
}

/// `window/sum(sum(window))` of `fspecial('gaussian', n, 1.5)` (the SSIM codes renormalise).
pub(crate) fn ssim_window(n: usize) -> Vec<f64> {
    let w = fspecial_gaussian(n, 1.5);
    let s: f64 = w.iter().sum();
    w.into_iter().map(|v| v / s).collect()
}

/// Yang's SSIM (`ssim_yang`: 7×7 Gaussian, C1 = C2 = 2e-16); MATLAB fails below 11×11.
fn ssim_yang(a: &Plane, b: &Plane) -> Result<LocalSsim, ToolkitError> {
    if a.width < 11 || a.height < 11 {
        return Err(ToolkitError::TooSmall(11));
    }
    Ok(local_ssim(a, b, &ssim_window(7), 7, 2e-16, 2e-16))
}

/// `mean2(x(~isnan(x)))`.
fn mean_not_nan(v: impl Iterator<Item = f64>) -> f64 {
    let kept: Vec<f64> = v.filter(|x| !x.is_nan()).collect();
    mean2(&kept)
}

/// Qc (Cvejic et al.): SSIM of each source with the fused image weighted by `σ_AF/(σ_AF+σ_BF)`
/// clipped to [0, 1]; `NaN` entries dropped.
pub(crate) fn qc(im1: &Plane, im2: &Plane, fused: &Plane) -> Result<f64, ToolkitError> {
    let a = ssim_yang(im1, fused)?;
    let b = ssim_yang(im2, fused)?;
    Ok(mean_not_nan((0..a.map.len()).map(|i| {
        let w = a.s12[i] / (a.s12[i] + b.s12[i]);
        if w < 0.0 {
            0.0
        } else if w > 1.0 {
            1.0
        } else {
            w * a.map[i] + (1.0 - w) * b.map[i]
        }
    })))
}

/// Qy (Yang et al.): where SSIM(A, B) ≥ 0.75 the variance-weighted SSIMs with the fused image,
/// elsewhere the larger of the two (MATLAB's `max` ignores `NaN`); `NaN` entries dropped.
pub(crate) fn qy(im1: &Plane, im2: &Plane, fused: &Plane) -> Result<f64, ToolkitError> {
    let ab = ssim_yang(im1, im2)?;
    let af = ssim_yang(im1, fused)?;
    let bf = ssim_yang(im2, fused)?;
    Ok(mean_not_nan((0..ab.map.len()).map(|i| {
        let bin = if ab.map[i] >= 0.75 { 1.0 } else { 0.0 };
        let ramda = ab.s1[i] / (ab.s1[i] + ab.s2[i]);
        let q1 = (ramda * af.map[i] + (1.0 - ramda) * bf.map[i]) * bin;
        q1 + af.map[i].max(bf.map[i]) * (1.0 - bin)
    })))
}

/// Wang–Bovik `ssim_index` with its defaults (11×11 Gaussian, K = (0.01, 0.03), L = 255);
/// MATLAB fails below 11×11.
fn ssim_index(a: &Plane, b: &Plane) -> Result<LocalSsim, ToolkitError> {
    if a.width < 11 || a.height < 11 {
        return Err(ToolkitError::TooSmall(11));
    }
    Ok(local_ssim(a, b, &ssim_window(11), 11, (0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2)))
}

/// Qw (Piella–Heijmans edge-dependent, the code's `sw = 3`): on the magnitudes of the
/// `[1 0 -1]` row and column filters (`filter2`, zero borders), SSIM with the fused edge image
/// weighted by `λ = σ_A²/(σ_A²+σ_B²)` and by `max(σ_A², σ_B²)` normalised over the image
/// (both variances raised by 0.5 where their sum is 0).
pub(crate) fn qw(im1: &Plane, im2: &Plane, fused: &Plane) -> Result<f64, ToolkitError> {
    // the code first computes (and discards) the weights of the images themselves
    ssim_index(im1, im2)?;
    let f1 = [[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]];
    let f2 = [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -1.0, -1.0]];
    let edges = |p: &Plane| {
        let x = filter2_same3(p, &f1);
        let y = filter2_same3(p, &f2);
        Plane::new(p.width, p.height, x.data.iter().zip(&y.data).map(|(a, b)| (a * a + b * b).sqrt()).collect())
    };
    let (e1, e2, ef) = (edges(im1), edges(im2), edges(fused));
    let s = ssim_index(&e1, &e2)?;
    let m1 = ssim_index(&ef, &e1)?.map;
    let m2 = ssim_index(&ef, &e2)?.map;
    let n = s.s1.len();
    let (mut v1, mut v2) = (s.s1, s.s2);
    for i in 0..n {
        if v1[i] + v2[i] == 0.0 {
            v1[i] += 0.5;
            v2[i] += 0.5;
        }
    }
    let cw: Vec<f64> = (0..n).map(|i| v1[i].max(v2[i])).collect();
    let total: f64 = cw.iter().sum();
    Ok((0..n)
        .map(|i| {
            let ramda = v1[i] / (v1[i] + v2[i]);
            (cw[i] / total) * (ramda * m1[i] + (1.0 - ramda) * m2[i])
        })
        .sum())
}

/// Per-scale maps of MEFB's `ComVidVindG` (VIFF of Han et al.): `(VID, VIND, g)` for 4 scales.
type Scales = Vec<(Vec<f64>, Vec<f64>, Vec<f64>)>;

fn com_vid_vind_g(reference: &Plane, distorted: &Plane, sigma_nsq: f64) -> Scales {
    let (mut r, mut d) = (reference.clone(), distorted.clone());
    let mut out = Vec::with_capacity(4);
    for scale in 1..=4 {
        let n = (1usize << (5 - scale)) + 1;
        let win = fspecial_gaussian(n, n as f64 / 5.0);
        if scale > 1 {
            r = subsample2(&filter2_valid(&r, &win, n));
            d = subsample2(&filter2_valid(&d, &win, n));
        }
        let f = |p: &Plane| filter2_valid(p, &win, n).data;
        let prod = |x: &Plane, y: &Plane| {
            Plane::new(x.width, x.height, x.data.iter().zip(&y.data).map(|(u, v)| u * v).collect())
        };
        let (mu1, mu2) = (f(&r), f(&d));
        let (rr, dd, rd) = (f(&prod(&r, &r)), f(&prod(&d, &d)), f(&prod(&r, &d)));
        let len = mu1.len();
        let (mut vid, mut vind, mut gs) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
        for i in 0..len {
            let (m1, m2) = (mu1[i], mu2[i]);
            let mut s1 = rr[i] - m1 * m1;
            let mut s2 = dd[i] - m2 * m2;
            let s12 = rd[i] - m1 * m2;
            if s1 < 0.0 {
                s1 = 0.0;
            }
            if s2 < 0.0 {
                s2 = 0.0;
            }
            let mut g = s12 / (s1 + 1e-10);
            let mut sv = s2 - g * s12;
            if s1 < 1e-10 {
                g = 0.0;
                sv = s2;
                s1 = 0.0;
            }
            if s2 < 1e-10 {
                g = 0.0;
                sv = 0.0;
            }
            if g < 0.0 {
                sv = s2;
                g = 0.0;
            }
            if sv <= 1e-10 {
                sv = 1e-10;
            }
            vid[i] = (1.0 + g * g * s1 / (sv + sigma_nsq)).log10();
            vind[i] = (1.0 + s1 / sigma_nsq).log10();
            gs[i] = g;
        }
        out.push((vid, vind, gs));
    }
    out
}

/// MEFB's VIF (VIFF, Han et al. 2013): per scale the VID/VIND ratio taking, pixel by pixel, the
/// source with the smaller gain `g`; scales weighted `[1, 0, 0.15, 1]/2.15`. `NaN` when a scale
/// is empty (images below about 50×50).
pub(crate) fn vif(im1: &Plane, im2: &Plane, fused: &Plane) -> f64 {
    let sq = 0.005 * 255.0 * 255.0;
    let c = 1e-7;
    let t1 = com_vid_vind_g(im1, fused, sq);
    let t2 = com_vid_vind_g(im2, fused, sq);
    let p = [1.0 / 2.15, 0.0, 0.15 / 2.15, 1.0 / 2.15];
    let mut total = 0.0;
    for s in 0..4 {
        let ((z1, m1, g1), (z2, m2, g2)) = (&t1[s], &t2[s]);
        let (mut vid, mut vind) = (0.0, 0.0);
        for i in 0..z1.len() {
            let take1 = g1[i] < g2[i];
            vid += if take1 { z1[i] } else { z2[i] } + c;
            vind += if take1 { m1[i] } else { m2[i] } + c;
        }
        total += vid / vind * p[s];
    }
    total
}

/// MEFB's Qcb: VIFB's core, but on `im2double` of the `uint8` images (values / 255, which
/// `normalize1` then rescales; the rounding of its exact halves can differ from VIFB's).
pub(crate) fn qcb(im1: &Plane, im2: &Plane, fused: &Plane) -> f64 {
    let scale = |p: &Plane| p.map(|v| v / 255.0);
    vifb::qcb(&scale(im1), &scale(im2), &scale(fused))
}

/// One scale of Ma et al.'s `mef_ssim` (K = 0.03, 11×11 Gaussian window, 11×11 square patches).
fn mef_ssim_scale(seq: &[Plane], fused: &Plane) -> f64 {
    const W: usize = 11;
    const BD: usize = W / 2;
    let window = fspecial_gaussian(W, 1.5);
    let square = vec![1.0 / (W * W) as f64; W * W];
    let (w, h) = (fused.width, fused.height);
    let (ow, oh) = (w - 2 * BD, h - 2 * BD);
    let k = seq.len();
    let mu: Vec<Vec<f64>> = seq.iter().map(|p| filter2_valid(p, &square, W).data).collect();
    let ed: Vec<Vec<f64>> = seq
        .iter()
        .zip(&mu)
        .map(|(p, m)| {
            let sq = filter2_valid(&p.map(|v| v * v), &square, W).data;
            sq.iter().zip(m).map(|(s, m)| ((W * W) as f64 * (s - m * m)).max(0.0).sqrt() + 0.001).collect()
        })
        .collect();
    let c = (0.03f64 * 255.0).powi(2);
    let eps = f64::EPSILON;
    let mut q = Vec::with_capacity(ow * oh);
    let mut sum_vec = vec![0.0; W * W];
    let mut r_block = vec![0.0; W * W];
    for i in 0..oh {
        for j in 0..ow {
            let o = i * ow + j;
            // patch values in MATLAB's column-major order
            let patch = |p: &Plane, t: usize| p.at(i + t % W, j + t / W);
            let mut denominator = 0.0;
            for (p, m) in seq.iter().zip(&mu) {
                denominator += (0..W * W).map(|t| (patch(p, t) - m[o]).powi(2)).sum::<f64>().sqrt();
            }
            for (t, s) in sum_vec.iter_mut().enumerate() {
                *s = seq.iter().map(|p| patch(p, t)).sum();
            }
            let mean = sum_vec.iter().sum::<f64>() / (W * W) as f64;
            let numerator = sum_vec.iter().map(|s| (s - mean).powi(2)).sum::<f64>().sqrt();
            let mut r = (numerator + eps) / (denominator + eps);
            if r > 1.0 {
                r = 1.0 - eps;
            }
            if r < 0.0 {
                r = eps;
            }
            let p = (std::f64::consts::FRAC_PI_2 * r).tan().min(10.0);
            let weights: Vec<f64> = ed.iter().map(|e| (e[o] / W as f64).powf(p) + eps).collect();
            let normalizer: f64 = weights.iter().sum();
            let max_ed = ed.iter().map(|e| e[o]).fold(f64::NEG_INFINITY, f64::max);
            r_block.iter_mut().for_each(|v| *v = 0.0);
            for s in 0..k {
                let wk = weights[s] / normalizer;
                for (t, v) in r_block.iter_mut().enumerate() {
                    *v += wk * (patch(&seq[s], t) - mu[s][o]) / ed[s][o];
                }
            }
            let norm = r_block.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm > 0.0 {
                r_block.iter_mut().for_each(|v| *v = *v / norm * max_ed);
            }
            // window(:) is column-major; the Gaussian is symmetric, so window[t] in either order
            let wv = |t: usize| window[(t % W) * W + t / W];
            let mu1: f64 = (0..W * W).map(|t| wv(t) * r_block[t]).sum();
            let mu2: f64 = (0..W * W).map(|t| wv(t) * patch(fused, t)).sum();
            let s1: f64 = (0..W * W).map(|t| wv(t) * (r_block[t] - mu1).powi(2)).sum();
            let s2: f64 = (0..W * W).map(|t| wv(t) * (patch(fused, t) - mu2).powi(2)).sum();
            let s12: f64 = (0..W * W).map(|t| wv(t) * (r_block[t] - mu1) * (patch(fused, t) - mu2)).sum();
            q.push((2.0 * s12 + c) / (s1 + s2 + c));
        }
    }
    mean2(&q)
}

/// MEFB's MEF-SSIM (Ma et al., `mef_ms_ssim` with its defaults: 3 scales weighted
/// `[0.0448 0.2856 0.3001]` normalised) on `rgb2gray` (`uint8`, rounded) of both sources and the
/// fused image. `-Inf` (the code's value) when the smaller side is below 44; gray images fail
/// (MEFB calls `rgb2gray` on them). A negative scale score makes MATLAB's product complex; its
/// real part is returned.
pub(crate) fn mef_ssim(img1: &Image, img2: &Image, fused: &Image) -> Result<f64, ToolkitError> {
    let gray = |img: &Image| -> Result<Plane, ToolkitError> {
        if img.channels() != 3 {
            return Err(ToolkitError::NeedsColour);
        }
        let p = img.planes();
        Ok(rgb2gray(&p[0], &p[1], &p[2], true))
    };
    // a 1-pixel-high or -wide image reaches rgb2gray as a vector after squeeze (an error)
    if fused.width() == 1 || fused.height() == 1 {
        return Err(ToolkitError::TooSmall(2));
    }
    let (mut seq, mut f) = (vec![gray(img1)?, gray(img2)?], gray(fused)?);
    if (f.width.min(f.height) as f64) / 4.0 < 11.0 {
        return Ok(f64::NEG_INFINITY);
    }
    let weights = [0.0448, 0.2856, 0.3001];
    let wsum: f64 = weights.iter().sum();
    let (mut magnitude, mut angle) = (1.0, 0.0);
    for (l, w) in weights.iter().enumerate() {
        if l > 0 {
            seq = seq.iter().map(halve).collect();
            f = halve(&f);
        }
        let q = mef_ssim_scale(&seq, &f);
        let e = w / wsum;
        (magnitude, angle) = real_power_product(magnitude, angle, q, e);
    }
    Ok(magnitude * angle.cos())
}

/// One factor of MATLAB's `prod(q.^w)` in polar form: a negative `q` to a fractional power is
/// complex (`|q|^w · e^{iπw}`); the caller keeps the real part of the product.
pub(crate) fn real_power_product(magnitude: f64, angle: f64, q: f64, w: f64) -> (f64, f64) {
    let angle = if q < 0.0 { angle + std::f64::consts::PI * w } else { angle };
    (magnitude * q.abs().powf(w), angle)
}

/// `filter2(window, x, 'same')` for an `n`×`n` kernel (n odd): zero padding, then
/// [`filter2_valid`]'s sum.
fn filter2_same(x: &Plane, k: &[f64], n: usize) -> Plane {
    let half = n / 2;
    let (w, h) = (x.width + 2 * half, x.height + 2 * half);
    let mut padded = vec![0.0; w * h];
    for r in 0..x.height {
        padded[(r + half) * w + half..(r + half) * w + half + x.width]
            .copy_from_slice(&x.data[r * x.width..(r + 1) * x.width]);
    }
    filter2_valid(&Plane::new(w, h, padded), k, n)
}

/// Zhao's `correlation_coeffcient` (Liu's `metricZhao.m`): the masked feature maps of the two
/// sources and of their maximum, each correlated with the fused image's in an 11×11 Gaussian
/// window (σ 1.5); the pixelwise maximum of the three, summed and divided by the `mask3` area.
fn zhao_correlation(maps: [&[f64]; 4], masks: [&[bool]; 3], width: usize, height: usize) -> f64 {
    const C: f64 = 0.0001;
    let window = fspecial_gaussian(11, 1.5);
    let total = sum_colmajor(&window, 11, 11);
    let window: Vec<f64> = window.iter().map(|v| v / total).collect();
    let plane = |v: Vec<f64>| Plane::new(width, height, v);
    let blur = |v: Vec<f64>| filter2_same(&plane(v), &window, 11).data;
    let mul = |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(x, y)| x * y).collect() };
    let fused = maps[3];
    let muf = blur(fused.to_vec());
    let sigmaf_sq: Vec<f64> = blur(mul(fused, fused)).iter().zip(&muf).map(|(s, m)| s - m * m).collect();
    let mut result = vec![f64::NAN; width * height]; // max ignores NaN
    for (map, mask) in maps[..3].iter().zip(masks) {
        let masked: Vec<f64> = map.iter().zip(mask).map(|(&v, &m)| if m { v } else { 0.0 * v }).collect();
        let mu = blur(masked.clone());
        let sigma_sq = blur(mul(&masked, &masked));
        let sigma_f = blur(mul(&masked, fused));
        for i in 0..width * height {
            let v = if mask[i] {
                let s_sq = sigma_sq[i] - mu[i] * mu[i];
                let s_f = sigma_f[i] - mu[i] * muf[i];
                (s_f + C) / ((s_sq * sigmaf_sq[i]).abs().sqrt() + C)
            } else {
                0.0
            };
            result[i] = result[i].max(v);
        }
    }
    let area = masks[2].iter().filter(|&&m| m).count() as f64;
    sum_colmajor(&result, width, height) / area
}

/// Qp (Zhao et al.): the product of Zhao's correlations of the phase congruency, maximum moment
/// and minimum moment maps of `myphasecong3`, features masked where the source's (or the larger
/// source's) phase congruency exceeds 0.1.
/// `bank` holds the filters for the images' size (built once for every channel).
pub(crate) fn qp(im1: &Plane, im2: &Plane, fused: &Plane, bank: &mut Option<FilterBank>) -> Result<f64, ToolkitError> {
    let bank = bank.get_or_insert_with(|| FilterBank::new(fused.width, fused.height));
    let (p1, p2, pf) = (phasecong(im1, bank), phasecong(im2, bank), phasecong(fused, bank));
    let (w, h) = (fused.width, fused.height);
    let first: Vec<bool> = p1.pc.data.iter().zip(&p2.pc.data).map(|(a, b)| a > b).collect();
    // MATLAB's mask.*a + (~mask).*b: the other term is 0·value (NaN where that value is)
    let blend = |a: &Plane, b: &Plane| -> Vec<f64> {
        a.data.iter().zip(&b.data).zip(&first).map(|((&x, &y), &m)| if m { x + 0.0 * y } else { 0.0 * x + y }).collect()
    };
    let pc_max = blend(&p1.pc, &p2.pc);
    let above = |v: &[f64]| -> Vec<bool> { v.iter().map(|&x| x > 0.1).collect() };
    let masks = [above(&p1.pc.data), above(&p2.pc.data), above(&pc_max)];
    let masks = [&masks[0][..], &masks[1][..], &masks[2][..]];
    let r_pc = zhao_correlation([&p1.pc.data, &p2.pc.data, &pc_max, &pf.pc.data], masks, w, h);
    let m_max = blend(&p1.max_moment, &p2.max_moment);
    let r_big = zhao_correlation([&p1.max_moment.data, &p2.max_moment.data, &m_max, &pf.max_moment.data], masks, w, h);
    let n_max = blend(&p1.min_moment, &p2.min_moment);
    let r_small =
        zhao_correlation([&p1.min_moment.data, &p2.min_moment.data, &n_max, &pf.min_moment.data], masks, w, h);
    Ok(r_pc * r_big * r_small)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_eigenvalues() {
        // [[2,1,0],[1,2,0],[0,0,5]]: eigenvalues 1, 3, 5
        let mut r = eig_sym3([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 5.0]]);
        r.sort_by(f64::total_cmp);
        for (got, want) in r.iter().zip([1.0, 3.0, 5.0]) {
            assert!((got - want).abs() < 1e-14, "{r:?}");
        }
        // a correlation matrix: the eigenvalues sum to its trace, 3
        let r = eig_sym3([[1.0, 0.3, 0.7], [0.3, 1.0, 0.2], [0.7, 0.2, 1.0]]);
        assert!((r.iter().sum::<f64>() - 3.0).abs() < 1e-14);
    }

    #[test]
    fn negative_factors_make_the_product_complex() {
        // (-1)^0.5 = i: real part 0; (-1)^1 = -1
        let (m, a) = real_power_product(1.0, 0.0, -1.0, 0.5);
        assert!((m * a.cos()).abs() < 1e-15);
        let (m, a) = real_power_product(1.0, 0.0, -1.0, 1.0);
        assert!((m * a.cos() + 1.0).abs() < 1e-15);
        assert_eq!(real_power_product(2.0, 0.0, 4.0, 0.5), (4.0, 0.0));
    }
}
