//! The thirteen metrics of VIFB (`metrics/metrics*.m` of xingchenzhang/VIFB), written from their
//! MATLAB definitions. Arguments follow VIFB's `metricsX(img1, img2, fused)` with `img1` the
//! visible and `img2` the infrared image.
//!
//! Colour (VIFB's wrapper, shared by CE, EN, MI, PSNR, Qabf, SD, RMSE, SSIM, Qcb, Qcv):
//! - gray fused image: the metric sees the whole sources; a colour source is made gray inside the
//!   metric, by `rgb2gray` on `uint8` (rounded: CE, MI, SSIM) or on `double` (PSNR, RMSE, Qabf);
//!   Qcb and Qcv fail in MATLAB on a colour source with a gray fused image (an error here);
//! - colour fused image, gray infrared: the mean over channels k of the metric of
//!   (visible(:,:,k), infrared, fused(:,:,k));
//! - colour fused image, colour infrared: the mean over k of (visible(:,:,k), infrared(:,:,k),
//!   fused(:,:,k)); a gray visible image with a colour fused image fails in MATLAB (an error here).
//!
//! AG and EI use every channel of the fused image (the mean of per-channel values); SF reads a
//! colour image as MATLAB's two-index `fused(i, j)` does, i.e. as its channels side by side
//! (a `height`×`3·width` image).

use super::image::Image;
use super::matlab::{
    Plane, blkproc, conv2_same3, filter2_same3, filter2_separable, freqspace, gaussian_taps, gradient,
    imfilter_replicate3, mean2, min_max, normalize1, rgb2gray, round,
};
use super::{ToolkitError, fft};

/// How a colour source becomes gray when the fused image is gray.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GrayRule {
    /// `rgb2gray` on the `uint8` image (rounded).
    U8,
    /// `rgb2gray` on `double(img)` (not rounded).
    Double,
    /// MATLAB raises an error.
    Fails,
}

pub(crate) fn to_gray(img: &Image, rule: GrayRule) -> Result<Plane, ToolkitError> {
    if img.channels() == 1 {
        return Ok(img.plane(0));
    }
    let p = img.planes();
    match rule {
        GrayRule::U8 => Ok(rgb2gray(&p[0], &p[1], &p[2], true)),
        GrayRule::Double => Ok(rgb2gray(&p[0], &p[1], &p[2], false)),
        GrayRule::Fails => Err(ToolkitError::ColourSourceGrayFused),
    }
}

/// VIFB's colour wrapper (see the module documentation) around a metric of
/// (visible, infrared, fused) planes.
pub(crate) fn wrap(
    vis: &Image,
    ir: &Image,
    fused: &Image,
    rule: GrayRule,
    mut metric: impl FnMut(&Plane, &Plane, &Plane) -> Result<f64, ToolkitError>,
) -> Result<f64, ToolkitError> {
    if fused.channels() == 1 {
        return metric(&to_gray(vis, rule)?, &to_gray(ir, rule)?, &fused.plane(0));
    }
    if vis.channels() == 1 {
        return Err(ToolkitError::GraySourceColourFused);
    }
    let ir_gray = (ir.channels() == 1).then(|| ir.plane(0));
    let mut sum = 0.0;
    for k in 0..fused.channels() {
        let irk = match &ir_gray {
            Some(p) => p.clone(),
            None => ir.plane(k),
        };
        sum += metric(&vis.plane(k), &irk, &fused.plane(k))?;
    }
    Ok(sum / fused.channels() as f64)
}

/// 256-bin histogram of integer values `v + 1` (MATLAB's `X(G(i,j)+1)`), as counts.
fn hist256(p: &Plane, floor: bool) -> Result<[f64; 256], ToolkitError> {
    let mut h = [0.0; 256];
    for &v in &p.data {
        let v = if floor { v.floor() } else { v };
        if !(0.0..=255.0).contains(&v) || v.fract() != 0.0 {
            return Err(ToolkitError::NotEightBit(v));
        }
        h[v as usize] += 1.0;
    }
    Ok(h)
}

/// Cross entropy (bits) of the fused image's histogram against each source's, averaged:
/// `Σ p_s log2(p_s / p_f)` over the bins where both are non-zero.
pub(crate) fn cross_entropy(vis: &Plane, ir: &Plane, fused: &Plane) -> Result<f64, ToolkitError> {
    let hf = hist256(fused, false)?;
    let one = |s: &Plane| -> Result<f64, ToolkitError> {
        let hs = hist256(s, false)?;
        let n = (s.width * s.height) as f64;
        let mut r = 0.0;
        for k in 0..256 {
            let (p1, p2) = (hs[k] / n, hf[k] / n);
            if p1 != 0.0 && p2 != 0.0 {
                r += p1 * (p1 / p2).log2();
            }
        }
        Ok(r)
    };
    Ok((one(vis)? + one(ir)?) / 2.0)
}

/// Entropy (bits) of the 256-bin histogram of `floor(fused)`.
pub(crate) fn entropy(fused: &Plane) -> Result<f64, ToolkitError> {
    let h = hist256(fused, true)?;
    let n = (fused.width * fused.height) as f64;
    let mut r = 0.0;
    for c in h {
        let p = c / n;
        if p != 0.0 {
            r += p * p.log2();
        }
    }
    Ok(-r)
}

/// VIFB's `mutinf`: both images min-max scaled to 0..=255 and rounded (`int16`), a 256×256 joint
/// histogram, `H(a) + H(b) - H(a, b)` in nats. A constant image scales to all zeros.
pub(crate) fn mutinf(a: &Plane, b: &Plane) -> f64 {
    let levels = |p: &Plane| -> Vec<usize> {
        let (lo, hi) = min_max(&p.data);
        if hi != lo {
            p.data.iter().map(|&v| round((v - lo) / (hi - lo) * 255.0) as usize).collect()
        } else {
            vec![0; p.data.len()]
        }
    };
    let (la, lb) = (levels(a), levels(b));
    let mut hab = vec![0.0f64; 256 * 256];
    let mut ha = [0.0f64; 256];
    let mut hb = [0.0f64; 256];
    for (&x, &y) in la.iter().zip(&lb) {
        hab[x * 256 + y] += 1.0;
        ha[x] += 1.0;
        hb[y] += 1.0;
    }
    let ent = |h: &[f64]| -> f64 {
        let total: f64 = h.iter().sum();
        h.iter().filter(|&&c| c != 0.0).map(|&c| -(c / total) * (c / total).ln()).sum()
    };
    ent(&ha) + ent(&hb) - ent(&hab)
}

/// VIFB's `mse`: `sqrt(Σ (a - b)²) / (m·n)` (not a mean squared error, but what VIFB computes).
fn vifb_mse(a: &Plane, b: &Plane) -> f64 {
    let s: f64 = a.data.iter().zip(&b.data).map(|(x, y)| (x - y) * (x - y)).sum();
    s.sqrt() / (a.width * a.height) as f64
}

/// PSNR (dB) as VIFB computes it: `20 log10(255 / sqrt((mse(vis, f) + mse(ir, f)) / 2))` with
/// VIFB's `mse`.
pub(crate) fn psnr(vis: &Plane, ir: &Plane, fused: &Plane) -> f64 {
    let m = (vifb_mse(vis, fused) + vifb_mse(ir, fused)) / 2.0;
    20.0 * (255.0 / m.sqrt()).log10()
}

/// RMSE as VIFB computes it: `(mse(vis, f) + mse(ir, f)) / 2` with VIFB's `mse`.
pub(crate) fn rmse(vis: &Plane, ir: &Plane, fused: &Plane) -> f64 {
    (vifb_mse(vis, fused) + vifb_mse(ir, fused)) / 2.0
}

/// Population standard deviation of one channel.
pub(crate) fn sd(fused: &Plane) -> f64 {
    let n = (fused.width * fused.height) as f64;
    let mean = fused.data.iter().sum::<f64>() / n;
    (fused.data.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt()
}

/// Average gradient: per channel `Σ sqrt((gx² + gy²)/2) / ((r-1)(c-1))` with MATLAB's `gradient`,
/// then the mean over channels. `Inf`/`NaN` for an image one pixel high or wide (MATLAB's value).
pub(crate) fn avg_gradient(fused: &Image) -> f64 {
    let g: Vec<f64> = fused.planes().iter().map(avg_gradient_plane).collect();
    g.iter().sum::<f64>() / g.len() as f64
}

/// The average gradient of one channel (see [`avg_gradient`]).
pub(crate) fn avg_gradient_plane(p: &Plane) -> f64 {
    let (r, c) = (p.height as f64, p.width as f64);
    let (gx, gy) = gradient(p);
    let s: f64 = gx.data.iter().zip(&gy.data).map(|(x, y)| ((x * x + y * y) / 2.0).sqrt()).sum();
    s / ((r - 1.0) * (c - 1.0))
}

/// Edge intensity: the mean Sobel magnitude (`imfilter(…, fspecial('sobel'), 'replicate')`)
/// over every pixel and channel.
pub(crate) fn edge_intensity(fused: &Image) -> f64 {
    let planes = fused.planes();
    let s: f64 = planes.iter().map(edge_magnitude_sum).sum();
    s / planes.iter().map(|p| p.data.len()).sum::<usize>() as f64
}

/// The sum over one channel of the Sobel magnitude of [`edge_intensity`].
pub(crate) fn edge_magnitude_sum(p: &Plane) -> f64 {
    let w = [[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]];
    let wt = [[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]];
    let gx = imfilter_replicate3(p, &w);
    let gy = imfilter_replicate3(p, &wt);
    gx.data.iter().zip(&gy.data).map(|(x, y)| (x * x + y * y).sqrt()).sum::<f64>()
}

/// Spatial frequency of a plane: `sqrt(RF + CF)`, the sums of squared horizontal and vertical
/// neighbour differences each divided by the pixel count.
pub(crate) fn spatial_frequency_plane(p: &Plane) -> f64 {
    let (w, h) = (p.width, p.height);
    let n = (w * h) as f64;
    let mut rf = 0.0;
    let mut cf = 0.0;
    for r in 0..h {
        for c in 0..w {
            if c > 0 {
                let d = p.at(r, c) - p.at(r, c - 1);
                rf += d * d;
            }
            if r > 0 {
                let d = p.at(r, c) - p.at(r - 1, c);
                cf += d * d;
            }
        }
    }
    (rf / n + cf / n).sqrt()
}

/// VIFB's SF: a colour image is read by `fused(i, j)` with `j` up to `3·width`, i.e. its
/// channels side by side.
pub(crate) fn spatial_frequency_vifb(fused: &Image) -> f64 {
    let planes = fused.planes();
    let (w, h, ch) = (fused.width(), fused.height(), planes.len());
    let mut data = Vec::with_capacity(w * h * ch);
    for r in 0..h {
        for p in &planes {
            data.extend_from_slice(&p.data[r * w..(r + 1) * w]);
        }
    }
    spatial_frequency_plane(&Plane::new(w * ch, h, data))
}

/// Gradient-based fusion performance Q^{AB/F} as VIFB's `metricsQabf.m` writes it: Sobel by
/// `conv2(…, 'same')`, angle `atan(Sy/Sx)` (π/2 where `Sx = 0`), and the code's ratio
/// `G = gF` where `gA == gF` (not 1).
pub(crate) fn qabf(a: &Plane, b: &Plane, f: &Plane) -> f64 {
    let h1 = [[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]];
    let h3 = [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]];
    let sobel = |p: &Plane| -> (Vec<f64>, Vec<f64>) {
        let sx = conv2_same3(p, &h3);
        let sy = conv2_same3(p, &h1);
        let g = sx.data.iter().zip(&sy.data).map(|(x, y)| (x * x + y * y).sqrt()).collect();
        let a = sx
            .data
            .iter()
            .zip(&sy.data)
            .map(|(&x, &y)| if x == 0.0 { std::f64::consts::FRAC_PI_2 } else { (y / x).atan() })
            .collect();
        (g, a)
    };
    let (ga, aa) = sobel(a);
    let (gb, ab) = sobel(b);
    let (gf, af) = sobel(f);
    let q = |gs: &[f64], as_: &[f64]| -> Vec<f64> {
        let (tg, kg, dg, ta, ka, da) = (0.9994, -15.0, 0.5, 0.9879, -22.0, 0.8);
        gs.iter()
            .zip(as_)
            .zip(gf.iter().zip(&af))
            .map(|((&g, &an), (&g_f, &a_f))| {
                let gr = if g > g_f {
                    g_f / g
                } else if g == g_f {
                    g_f
                } else {
                    g / g_f
                };
                let ar = 1.0 - (an - a_f).abs() / std::f64::consts::FRAC_PI_2;
                let qg = tg / (1.0 + (kg * (gr - dg)).exp());
                let qa = ta / (1.0 + (ka * (ar - da)).exp());
                qg * qa
            })
            .collect()
    };
    let (qa, qb) = (q(&ga, &aa), q(&gb, &ab));
    let deno: f64 = ga.iter().zip(&gb).map(|(x, y)| x + y).sum();
    let nume: f64 = (0..qa.len()).map(|i| qa[i] * ga[i] + qb[i] * gb[i]).sum();
    nume / deno
}

/// VIFB's SSIM of one pair: 11×11 Gaussian (σ = 1.5) window, `valid` filtering, L = 255,
/// K = (0.01, 0.03), the mean of the map (`NaN` below 11×11: the mean of nothing).
pub(crate) fn ssim_one(a: &Plane, b: &Plane) -> f64 {
    let g = gaussian_taps(11, 1.5);
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let ua = filter2_separable(a, &g, false);
    let ub = filter2_separable(b, &g, false);
    let aa = filter2_separable(&a.map(|v| v * v), &g, false);
    let bb = filter2_separable(&b.map(|v| v * v), &g, false);
    let ab_prod = Plane::new(a.width, a.height, a.data.iter().zip(&b.data).map(|(x, y)| x * y).collect());
    let ab = filter2_separable(&ab_prod, &g, false);
    let map: Vec<f64> = (0..ua.data.len())
        .map(|i| {
            let (x, y) = (ua.data[i], ub.data[i]);
            let (sa, sb, sab) = (aa.data[i] - x * x, bb.data[i] - y * y, ab.data[i] - x * y);
            ((2.0 * x * y + c1) * (2.0 * sab + c2)) / ((x * x + y * y + c1) * (sa + sb + c2))
        })
        .collect();
    mean2(&map)
}

/// Radial frequency grid `r = sqrt((su·u)² + (sv·v)²)` over `freqspace`, row-major, centred.
fn radial(width: usize, height: usize, su: f64, sv: f64) -> Vec<f64> {
    let (u, v) = (freqspace(width), freqspace(height));
    let mut r = Vec::with_capacity(width * height);
    for &vv in &v {
        for &uu in &u {
            let (x, y) = (su * uu, sv * vv);
            r.push((x * x + y * y).sqrt());
        }
    }
    r
}

/// Chen–Blum metric Q_CB as VIFB's `metricsQcb.m` computes it (contrast sensitivity filter in the
/// frequency domain, Gaussian contrast ratios, `|C|`, local saliency weights).
pub(crate) fn qcb(im1: &Plane, im2: &Plane, fused: &Plane) -> f64 {
    let (im1, im2, fused) = (normalize1(im1), normalize1(im2), normalize1(fused));
    let (w, h) = (im1.width, im1.height);
    let (f0, f1, a) = (15.3870, 1.3456, 0.7622);
    let (k, hh, p, q, z) = (1.0, 1.0, 3, 2, 0.0001);
    let r = radial(w, h, w as f64 / 30.0, h as f64 / 30.0);
    let sd: Vec<f64> = r.iter().map(|&r| (-(r / f0).powi(2)).exp() - a * (-(r / f1).powi(2)).exp()).collect();
    let g1 = unnormalised_gaussian_taps(2.0);
    let g2 = unnormalised_gaussian_taps(4.0);
    let contrast_p = |img: &Plane| -> Vec<f64> {
        let filtered = Plane::new(w, h, fft::filter_centred(&img.data, &sd, w, h));
        let b1 = filter2_separable(&filtered, &g1, true);
        let b2 = filter2_separable(&filtered, &g2, true);
        b1.data
            .iter()
            .zip(&b2.data)
            .map(|(x, y)| {
                let c = (x / y - 1.0).abs();
                (k * c.powi(p)) / (hh * c.powi(q) + z)
            })
            .collect()
    };
    let (c1p, c2p, cfp) = (contrast_p(&im1), contrast_p(&im2), contrast_p(&fused));
    let ratio = |c: f64, cf: f64| {
        let mask = if c < cf { 1.0 } else { 0.0 };
        (c / cf) * mask + (cf / c) * (1.0 - mask)
    };
    let qmap: Vec<f64> = (0..c1p.len())
        .map(|i| {
            let (x, y, f) = (c1p[i], c2p[i], cfp[i]);
            let l1 = (x * x) / (x * x + y * y);
            let l2 = (y * y) / (x * x + y * y);
            l1 * ratio(x, f) + l2 * ratio(y, f)
        })
        .collect();
    mean2(&qmap)
}

/// The 1-D factor of VIFB's `gaussian2d`: 31 taps `exp(-x²/2σ²)/sqrt(2πσ²)` over -15..=15, so that
/// the outer product is the code's unnormalised `exp(-(x²+y²)/2σ²)/(2πσ²)`.
fn unnormalised_gaussian_taps(sigma: f64) -> Vec<f64> {
    let s = (2.0 * std::f64::consts::PI * sigma * sigma).sqrt();
    (-15..=15).map(|x| (-(f64::from(x * x)) / (2.0 * sigma * sigma)).exp() / s).collect()
}

/// Chen–Varshney metric Q_CV as VIFB's `metricsQcv.m` computes it: 16×16 blocks, saliency
/// `Σ G⁵` of the Sobel magnitude, the CSF-filtered difference's mean square per block
/// (blocks zero-padded, so a partial block's mean is over 256 values).
pub(crate) fn qcv(im1: &Plane, im2: &Plane, fused: &Plane) -> f64 {
    const WIN: usize = 16;
    let (im1, im2, fused) = (normalize1(im1), normalize1(im2), normalize1(fused));
    let (w, h) = (im1.width, im1.height);
    let fx = [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]];
    let fy = [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]];
    let saliency = |p: &Plane| -> Plane {
        let x = filter2_same3(p, &fx);
        let y = filter2_same3(p, &fy);
        let g = Plane::new(w, h, x.data.iter().zip(&y.data).map(|(a, b)| (a * a + b * b).sqrt()).collect());
        blkproc(&g, WIN, |v| v.iter().map(|x| x.powi(5)).sum())
    };
    let (l1, l2) = (saliency(&im1), saliency(&im2));
    let r = radial(w, h, w as f64 / 8.0, h as f64 / 8.0);
    let theta: Vec<f64> = r.iter().map(|&r| 2.6 * (0.0192 + 0.144 * r) * (-(0.144 * r).powf(1.1)).exp()).collect();
    let distortion = |s: &Plane| -> Plane {
        let d: Vec<f64> = s.data.iter().zip(&fused.data).map(|(a, b)| a - b).collect();
        let df = Plane::new(w, h, fft::filter_centred(&d, &theta, w, h));
        blkproc(&df, WIN, |v| mean2(&v.iter().map(|x| x * x).collect::<Vec<_>>()))
    };
    let (d1, d2) = (distortion(&im1), distortion(&im2));
    let num: f64 = (0..l1.data.len()).map(|i| l1.data[i] * d1.data[i] + l2.data[i] * d2.data[i]).sum();
    let den: f64 = (0..l1.data.len()).map(|i| l1.data[i] + l2.data[i]).sum();
    num / den
}
