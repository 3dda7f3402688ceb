//! Differentiable losses and filters of the official training scripts, on burn tensors.
//!
//! Everything works on `B×C×H×W` float tensors, on any device (plain or autodiff), and
//! returns scalar losses as one-element `Tensor<1>`s so they can be combined and back-propagated.
//! The semantics are those of the official code and of kornia 0.9, as spelled out in the
//! fixtures' README (§4):
//!
//! * [`spatial_gradient`]: kornia `SpatialGradient()` — Sobel kernels divided by 8, replicate
//!   border, output `B×C×2×H×W` (x then y).
//! * [`ssim_loss`]: kornia `SSIMLoss(window)` — Gaussian window σ = 1.5, reflect border,
//!   `c1 = 0.01²`, `c2 = 0.03²`, `1e-12` added to the denominator, mean of `clamp((1-ssim)/2, 0, 1)`.
//! * [`sobel_abs`], [`fusion_loss`]: CDDFuse's `Sobelxy` (`|gx| + |gy|`, zero border) and
//!   `Fusionloss` (`L1(max(vis, ir), F) + 10·L1(max(∇vis, ∇ir), ∇F)`).
//! * [`cc`]: CDDFuse's correlation coefficient, averaged over batch and channels.
//! * [`mse`], [`l1`]: `nn.MSELoss()` / `nn.L1Loss()` with mean reduction.
//! * [`lp_ssim_weighted`]: FILM's `LpLssimLossweight` (L2 norm + weighted 5×5 SSIM, zero border).

use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Device, Tensor, TensorData};

/// The 3×3 Sobel x kernel `[[-1,0,1],[-2,0,2],[-1,0,1]]` (row-major).
const SOBEL_X: [f32; 9] = [-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0];

/// A `[2,1,3,3]` conv weight holding `kx·scale` and `ky·scale`.
fn sobel_pair(kx: [f32; 9], ky: [f32; 9], scale: f32, device: &Device) -> Tensor<4> {
    let data: Vec<f32> = kx.iter().chain(ky.iter()).map(|v| v * scale).collect();
    Tensor::from_data(TensorData::new(data, [2, 1, 3, 3]), device)
}

/// The transpose of a row-major 3×3 kernel.
fn transpose3(k: [f32; 9]) -> [f32; 9] {
    let mut t = [0.0; 9];
    for r in 0..3 {
        for c in 0..3 {
            t[c * 3 + r] = k[r * 3 + c];
        }
    }
    t
}

/// The mean of all elements, as `sum / n`: what burn's `mean()` computes on the CPU (`flex`
/// sums, then divides in f32), so CPU results are unchanged. Not `mean()`, because on burn 0.22's
/// cubecl backends (seen on wgpu) `mean()` reduces one axis at a time and goes wrong on some
/// strided layouts: on lavapipe the mean of `spatial_gradient` of a `2×1×16×16` batch (a conv
/// output reshaped to `2×1×2×16×16`) came out 1.6 % high while `sum()` was right
/// (`tests/cddfuse_step.rs`, `loss_means_equal_the_host_means`, checks it on the test device).
pub fn mean_all<const D: usize>(x: Tensor<D>) -> Tensor<1> {
    let n = x.shape().num_elements();
    x.sum() / n as f32
}

/// Mean squared error (`nn.MSELoss()`).
pub fn mse<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<1> {
    mean_all((a - b).square())
}

/// Mean absolute error (`nn.L1Loss()`).
pub fn l1<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<1> {
    mean_all((a - b).abs())
}

/// kornia `SpatialGradient()` (first order, Sobel, normalised): `B×C×H×W` → `B×C×2×H×W`,
/// channel 0 of the new axis the x derivative, 1 the y derivative; the border is replicated.
pub fn spatial_gradient(x: Tensor<4>) -> Tensor<5> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let weight = sobel_pair(SOBEL_X, transpose3(SOBEL_X), 1.0 / 8.0, &device).cast(x.dtype());
    let padded = x.reshape([b * c, 1, h, w]).pad((1, 1, 1, 1), PadMode::Edge);
    conv2d(padded, weight, None, ConvOptions::new([1, 1], [0, 0], [1, 1], 1)).reshape([b, c, 2, h, w])
}

/// CDDFuse's `Sobelxy`: `|conv(x, kx)| + |conv(x, ky)|` with zero padding, per channel,
/// where `ky = [[1,2,1],[0,0,0],[-1,-2,-1]]`.
pub fn sobel_abs(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let ky = [1.0, 2.0, 1.0, 0.0, 0.0, 0.0, -1.0, -2.0, -1.0];
    let weight = sobel_pair(SOBEL_X, ky, 1.0, &device).cast(x.dtype());
    let g = conv2d(x.reshape([b * c, 1, h, w]), weight, None, ConvOptions::new([1, 1], [1, 1], [1, 1], 1));
    g.abs().sum_dim(1).reshape([b, c, h, w])
}

/// The terms of CDDFuse's `Fusionloss`.
#[derive(Clone, Debug)]
pub struct FusionLoss {
    /// `loss_in + 10·loss_grad`.
    pub total: Tensor<1>,
    /// `L1(max(vis_y, ir), fused)`.
    pub intensity: Tensor<1>,
    /// `L1(max(sobel(vis_y), sobel(ir)), sobel(fused))`.
    pub gradient: Tensor<1>,
}

/// CDDFuse's `Fusionloss(vis, ir, fused)`; only the first channel of `vis` is used.
pub fn fusion_loss(vis: Tensor<4>, ir: Tensor<4>, fused: Tensor<4>) -> FusionLoss {
    fusion_loss_weighted(vis, ir, fused, 10.0)
}

/// `L1(max(a_y, b), F) + grad_weight·L1(max(sobel(a_y), sobel(b)), sobel(F))`: CDDFuse's
/// fusion loss with weight 10, FILM's with 20.
pub fn fusion_loss_weighted(a: Tensor<4>, b: Tensor<4>, fused: Tensor<4>, grad_weight: f32) -> FusionLoss {
    let a_y = a.narrow(1, 0, 1);
    let intensity = l1(a_y.clone().max_pair(b.clone()), fused.clone());
    let joint = sobel_abs(a_y).max_pair(sobel_abs(b));
    let gradient = l1(joint, sobel_abs(fused));
    let total = intensity.clone() + gradient.clone() * grad_weight;
    FusionLoss { total, intensity, gradient }
}

/// CDDFuse's `cc(a, b)`: per image and channel, the correlation coefficient of the two feature
/// maps, `Σ(a-ā)(b-b̄) / (ε + ‖a-ā‖·‖b-b̄‖)` with ε the f32 machine epsilon, clamped to
/// [-1, 1], then averaged.
pub fn cc(a: Tensor<4>, b: Tensor<4>) -> Tensor<1> {
    let [_, _, h, w] = a.dims();
    let n = (h * w) as f32;
    let a = a.clone() - spatial_sum(a) / n;
    let b = b.clone() - spatial_sum(b) / n;
    let num = spatial_sum(a.clone() * b.clone());
    let den = spatial_sum(a.square()).sqrt() * spatial_sum(b.square()).sqrt() + f32::EPSILON;
    mean_all((num / den).clamp(-1.0, 1.0))
}

/// `Σ` over H and W (`B×C×1×1`), summed row by row then over rows: burn's single-axis
/// reductions accumulate sequentially, which over a whole 64×64 map loses ~1e-6 relative — enough
/// to move CDDFuse's decomposition-loss gradients by 1e-4 — while PyTorch sums pairwise.
pub fn spatial_sum(x: Tensor<4>) -> Tensor<4> {
    x.sum_dim(3).sum_dim(2)
}

/// kornia's normalised 1-D Gaussian window of odd or even `size` (computed in f32 like kornia).
pub fn gaussian_window(size: usize, sigma: f32) -> Vec<f32> {
    let half = (size / 2) as f32;
    let offset = if size.is_multiple_of(2) { 0.5 } else { 0.0 };
    let two_var = 2.0 * sigma.powi(2);
    let g: Vec<f32> = (0..size)
        .map(|i| {
            let x = i as f32 - half + offset;
            (-(x * x) / two_var).exp()
        })
        .collect();
    let sum: f32 = g.iter().sum();
    g.iter().map(|v| v / sum).collect()
}

/// Correlates every channel with the separable window `g ⊗ g` (`size` taps), reflect border
/// ("same"): first along x, then along y, as kornia's `filter2d_separable`.
fn gaussian_filter(x: Tensor<4>, kx: &Tensor<4>, ky: &Tensor<4>, size: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let p = size / 2;
    let opts = || ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    let x = x.reshape([b * c, 1, h, w]).pad((p, p, 0, 0), PadMode::Reflect);
    let x = conv2d(x, kx.clone(), None, opts()).pad((0, 0, p, p), PadMode::Reflect);
    conv2d(x, ky.clone(), None, opts()).reshape([b, c, h, w])
}

/// kornia `ssim(a, b, window)` map (`max_val = 1`, eps `1e-12`, "same" padding).
pub fn ssim_map(a: Tensor<4>, b: Tensor<4>, window: usize) -> Tensor<4> {
    let device = a.device();
    let [_, _, h, w] = a.dims();
    assert!(
        h > window / 2 && w > window / 2,
        "SSIM with an {window}×{window} window needs images larger than {}×{} (got {h}×{w})",
        window / 2,
        window / 2
    );
    let g = gaussian_window(window, 1.5);
    let kx = Tensor::<4>::from_data(TensorData::new(g.clone(), [1, 1, 1, window]), &device).cast(a.dtype());
    let ky = Tensor::<4>::from_data(TensorData::new(g, [1, 1, window, 1]), &device).cast(a.dtype());
    let (c1, c2) = (0.01f64.powi(2) as f32, 0.03f64.powi(2) as f32);
    let mu1 = gaussian_filter(a.clone(), &kx, &ky, window);
    let mu2 = gaussian_filter(b.clone(), &kx, &ky, window);
    let mu1_sq = mu1.clone().square();
    let mu2_sq = mu2.clone().square();
    let mu12 = mu1 * mu2;
    let s1 = gaussian_filter(a.clone().square(), &kx, &ky, window) - mu1_sq.clone();
    let s2 = gaussian_filter(b.clone().square(), &kx, &ky, window) - mu2_sq.clone();
    let s12 = gaussian_filter(a * b, &kx, &ky, window) - mu12.clone();
    let num = (mu12 * 2.0 + c1) * (s12 * 2.0 + c2);
    let den = (mu1_sq + mu2_sq + c1) * (s1 + s2 + c2);
    num / (den + 1e-12)
}

/// kornia `SSIMLoss(window)` with mean reduction: mean of `clamp((1 - ssim)/2, 0, 1)`.
pub fn ssim_loss(a: Tensor<4>, b: Tensor<4>, window: usize) -> Tensor<1> {
    let map = ssim_map(a, b, window);
    mean_all(((map.neg() + 1.0) / 2.0).clamp(0.0, 1.0))
}

/// The terms of FILM's `LpLssimLossweight`.
#[derive(Clone, Debug)]
pub struct LpSsim {
    /// `lp + lssim`.
    pub total: Tensor<1>,
    /// `‖x − y‖₂` over the whole batch.
    pub lp: Tensor<1>,
    /// `weight · (1 − mean SSIM)`.
    pub lssim: Tensor<1>,
}

/// The normalised 1-D Gaussian of FILM's `LpLssimLossweight` (σ = 1.5): the taps computed in
/// f64 and stored as f32, then divided by their f32 sum.
pub fn film_gaussian(size: usize) -> Vec<f32> {
    let half = (size / 2) as f64;
    let g: Vec<f32> = (0..size).map(|i| (-(i as f64 - half).powi(2) / (2.0 * 1.5f64 * 1.5)).exp() as f32).collect();
    let sum: f32 = g.iter().sum();
    g.iter().map(|v| v / sum).collect()
}

/// FILM's `LpLssimLossweight(window)(image_in = x, image_out = y, weight)`: the L2 norm of
/// `x − y` over the whole batch plus `weight · (1 − SSIM)`, SSIM with the 2-D window `g·gᵀ`
/// ([`film_gaussian`]) applied with zero padding, `c1 = 0.01²`, `c2 = 0.03²`, no epsilon, the
/// map averaged over everything.
pub fn lp_ssim_weighted(x: Tensor<4>, y: Tensor<4>, weight: f32, window: usize) -> LpSsim {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let g = film_gaussian(window);
    let k: Vec<f32> = g.iter().flat_map(|a| g.iter().map(move |b| a * b)).collect();
    let k = Tensor::<4>::from_data(TensorData::new(k, [1, 1, window, window]), &device).cast(x.dtype());
    let p = window / 2;
    let filt = |t: Tensor<4>| {
        conv2d(t.reshape([b * c, 1, h, w]), k.clone(), None, ConvOptions::new([1, 1], [p, p], [1, 1], 1))
    };
    let lp = (x.clone() - y.clone()).square().sum().sqrt();
    let (c1, c2) = (0.01f64.powi(2) as f32, 0.03f64.powi(2) as f32);
    let mu1 = filt(x.clone());
    let mu2 = filt(y.clone());
    let mu1_sq = mu1.clone().square();
    let mu2_sq = mu2.clone().square();
    let mu12 = mu1 * mu2;
    let s1 = filt(x.clone().square()) - mu1_sq.clone();
    let s2 = filt(y.clone().square()) - mu2_sq.clone();
    let s12 = filt(x * y) - mu12.clone();
    let map = ((mu12 * 2.0 + c1) * (s12 * 2.0 + c2)) / ((mu1_sq + mu2_sq + c1) * (s1 + s2 + c2));
    let lssim = (mean_all(map).neg() + 1.0) * weight;
    LpSsim { total: lp.clone() + lssim.clone(), lp, lssim }
}

/// A scalar loss tensor's value.
pub fn scalar(t: &Tensor<1>) -> f32 {
    t.clone().into_scalar::<f32>()
}

#[cfg(test)]
mod tests {
    //! Each loss against a direct f64 implementation written from the definitions, plus a
    //! finite-difference check of the gradients burn computes through it.
    use super::*;

    fn dev() -> Device {
        mmif_nn::cpu()
    }

    /// Deterministic pseudo-random values in [0, 1).
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        mmif_io::uniform_pm1(seed, 7, n).into_iter().map(|v| 0.5 * (v + 1.0)).collect()
    }

    fn t4(v: &[f32], s: [usize; 4], device: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(v.to_vec(), s), device)
    }

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        mmif_nn::weights::tensor_to_vec(t)
    }

    fn close(what: &str, got: f64, want: f64, rel: f64) {
        let d = (got - want).abs();
        assert!(d <= rel * want.abs().max(1e-12), "{what}: got {got}, want {want} (rel {})", d / want.abs());
    }

    /// Pixel (y, x) of plane `p` (H×W) with border handling `mode`.
    fn at(p: &[f32], h: usize, w: usize, y: isize, x: isize, mode: &str) -> f64 {
        let fix = |i: isize, n: usize| -> Option<usize> {
            let n = n as isize;
            match mode {
                "zero" => (0..n).contains(&i).then_some(i as usize),
                "edge" => Some(i.clamp(0, n - 1) as usize),
                _ => Some(if i < 0 {
                    -i
                } else if i >= n {
                    2 * (n - 1) - i
                } else {
                    i
                } as usize),
            }
        };
        match (fix(y, h), fix(x, w)) {
            (Some(y), Some(x)) => p[y * w + x] as f64,
            _ => 0.0,
        }
    }

    fn corr3(p: &[f32], h: usize, w: usize, k: &[f32; 9], mode: &str) -> Vec<f64> {
        let mut out = vec![0.0; h * w];
        for y in 0..h {
            for x in 0..w {
                let mut s = 0.0;
                for dy in 0..3 {
                    for dx in 0..3 {
                        s += k[dy * 3 + dx] as f64
                            * at(p, h, w, y as isize + dy as isize - 1, x as isize + dx as isize - 1, mode);
                    }
                }
                out[y * w + x] = s;
            }
        }
        out
    }

    #[test]
    fn spatial_gradient_matches_direct_sobel() {
        let (h, w) = (7, 9);
        let v = noise(2 * 2 * h * w, 1);
        let g = vals(spatial_gradient(t4(&v, [2, 2, h, w], &dev())));
        let kx: [f32; 9] = SOBEL_X.map(|k| k / 8.0);
        let ky = transpose3(kx);
        for plane in 0..4 {
            let p = &v[plane * h * w..(plane + 1) * h * w];
            let (gx, gy) = (corr3(p, h, w, &kx, "edge"), corr3(p, h, w, &ky, "edge"));
            for i in 0..h * w {
                assert!((g[plane * 2 * h * w + i] as f64 - gx[i]).abs() < 1e-6, "dx plane {plane} px {i}");
                assert!((g[(plane * 2 + 1) * h * w + i] as f64 - gy[i]).abs() < 1e-6, "dy plane {plane} px {i}");
            }
        }
        // A horizontal ramp of slope 1 has dx = 1 inside, dy = 0 everywhere.
        let ramp: Vec<f32> = (0..h * w).map(|i| (i % w) as f32).collect();
        let g = vals(spatial_gradient(t4(&ramp, [1, 1, h, w], &dev())));
        assert!((g[w + 3] - 1.0).abs() < 1e-6 && g[h * w..].iter().all(|v| v.abs() < 1e-6));
    }

    #[test]
    fn sobel_abs_matches_direct_sobel_with_zero_border() {
        let (h, w) = (6, 5);
        let v = noise(2 * h * w, 2);
        let g = vals(sobel_abs(t4(&v, [2, 1, h, w], &dev())));
        let ky = [1.0, 2.0, 1.0, 0.0, 0.0, 0.0, -1.0, -2.0, -1.0];
        for plane in 0..2 {
            let p = &v[plane * h * w..(plane + 1) * h * w];
            let (gx, gy) = (corr3(p, h, w, &SOBEL_X, "zero"), corr3(p, h, w, &ky, "zero"));
            for i in 0..h * w {
                assert!((g[plane * h * w + i] as f64 - (gx[i].abs() + gy[i].abs())).abs() < 1e-5);
            }
        }
    }

    fn ssim_direct(a: &[f32], b: &[f32], h: usize, w: usize, win: usize) -> f64 {
        let g: Vec<f64> = gaussian_window(win, 1.5).iter().map(|&v| v as f64).collect();
        let r = (win / 2) as isize;
        let filt = |f: &dyn Fn(isize, isize) -> f64, y: usize, x: usize| -> f64 {
            let mut s = 0.0;
            for dy in -r..=r {
                for dx in -r..=r {
                    s += g[(dy + r) as usize] * g[(dx + r) as usize] * f(y as isize + dy, x as isize + dx);
                }
            }
            s
        };
        let pa = |y, x| at(a, h, w, y, x, "reflect");
        let pb = |y, x| at(b, h, w, y, x, "reflect");
        let mut total = 0.0;
        for y in 0..h {
            for x in 0..w {
                let m1 = filt(&pa, y, x);
                let m2 = filt(&pb, y, x);
                let s1 = filt(&|y, x| pa(y, x).powi(2), y, x) - m1 * m1;
                let s2 = filt(&|y, x| pb(y, x).powi(2), y, x) - m2 * m2;
                let s12 = filt(&|y, x| pa(y, x) * pb(y, x), y, x) - m1 * m2;
                let (c1, c2) = (1e-4, 9e-4);
                let ssim =
                    (2.0 * m1 * m2 + c1) * (2.0 * s12 + c2) / ((m1 * m1 + m2 * m2 + c1) * (s1 + s2 + c2) + 1e-12);
                total += ((1.0 - ssim) / 2.0).clamp(0.0, 1.0);
            }
        }
        total / (h * w) as f64
    }

    #[test]
    fn gaussian_window_is_kornias() {
        let g = gaussian_window(11, 1.5);
        assert!((g.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(g[5], g.iter().cloned().fold(0.0, f32::max));
        assert!((g[0] - g[10]).abs() < 1e-9);
        let ratio = (g[4] / g[5]) as f64;
        assert!((ratio - (-1.0f64 / 4.5).exp()).abs() < 1e-6);
    }

    #[test]
    fn ssim_loss_matches_direct_formula() {
        let (h, w) = (16, 13);
        let a = noise(h * w, 3);
        let b: Vec<f32> = a.iter().zip(noise(h * w, 4)).map(|(x, n)| 0.7 * x + 0.3 * n).collect();
        let got = scalar(&ssim_loss(t4(&a, [1, 1, h, w], &dev()), t4(&b, [1, 1, h, w], &dev()), 11)) as f64;
        close("ssim_loss", got, ssim_direct(&a, &b, h, w, 11), 1e-4);
        let same = scalar(&ssim_loss(t4(&a, [1, 1, h, w], &dev()), t4(&a, [1, 1, h, w], &dev()), 11));
        assert!(same.abs() < 1e-6, "SSIM loss of an image with itself: {same}");
    }

    #[test]
    fn cc_matches_direct_formula() {
        let (n, c, h, w) = (2, 3, 4, 5);
        let a = noise(n * c * h * w, 5);
        let b: Vec<f32> = a.iter().zip(noise(n * c * h * w, 6)).map(|(x, y)| x - 0.8 * y).collect();
        let got = scalar(&cc(t4(&a, [n, c, h, w], &dev()), t4(&b, [n, c, h, w], &dev()))) as f64;
        let m = h * w;
        let mut want = 0.0;
        for k in 0..n * c {
            let (pa, pb) = (&a[k * m..(k + 1) * m], &b[k * m..(k + 1) * m]);
            let ma = pa.iter().map(|&v| v as f64).sum::<f64>() / m as f64;
            let mb = pb.iter().map(|&v| v as f64).sum::<f64>() / m as f64;
            let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
            for i in 0..m {
                let (x, y) = (pa[i] as f64 - ma, pb[i] as f64 - mb);
                sab += x * y;
                saa += x * x;
                sbb += y * y;
            }
            want += (sab / (f32::EPSILON as f64 + saa.sqrt() * sbb.sqrt())).clamp(-1.0, 1.0);
        }
        close("cc", got, want / (n * c) as f64, 1e-5);
        let neg: Vec<f32> = a.iter().map(|v| -v).collect();
        let anti = scalar(&cc(t4(&a, [n, c, h, w], &dev()), t4(&neg, [n, c, h, w], &dev())));
        assert!((anti + 1.0).abs() < 1e-5, "cc(x, -x) = {anti}");
    }

    #[test]
    fn fusion_loss_matches_direct_formula() {
        let (h, w) = (8, 7);
        let (v, i, f) = (noise(h * w, 7), noise(h * w, 8), noise(h * w, 9));
        let s = [1, 1, h, w];
        let d = dev();
        let got = fusion_loss(t4(&v, s, &d), t4(&i, s, &d), t4(&f, s, &d));
        let ky = [1.0, 2.0, 1.0, 0.0, 0.0, 0.0, -1.0, -2.0, -1.0];
        let sob = |p: &[f32]| -> Vec<f64> {
            let (gx, gy) = (corr3(p, h, w, &SOBEL_X, "zero"), corr3(p, h, w, &ky, "zero"));
            gx.iter().zip(gy).map(|(x, y)| x.abs() + y.abs()).collect()
        };
        let (sv, si, sf) = (sob(&v), sob(&i), sob(&f));
        let n = (h * w) as f64;
        let lin: f64 = (0..h * w).map(|k| (v[k].max(i[k]) as f64 - f[k] as f64).abs()).sum::<f64>() / n;
        let lgr: f64 = (0..h * w).map(|k| (sv[k].max(si[k]) - sf[k]).abs()).sum::<f64>() / n;
        close("loss_in", scalar(&got.intensity) as f64, lin, 1e-5);
        close("loss_grad", scalar(&got.gradient) as f64, lgr, 1e-5);
        close("total", scalar(&got.total) as f64, lin + 10.0 * lgr, 1e-5);
    }

    #[test]
    fn lp_ssim_matches_direct_formula() {
        let (b, h, w) = (2, 9, 11);
        let x = noise(b * h * w, 21);
        let y: Vec<f32> = x.iter().zip(noise(b * h * w, 22)).map(|(a, n)| 0.6 * a + 0.4 * n).collect();
        let d = dev();
        let got = lp_ssim_weighted(t4(&x, [b, 1, h, w], &d), t4(&y, [b, 1, h, w], &d), 9.0, 5);
        let g: Vec<f64> = (0..5).map(|i| (-((i as f64 - 2.0).powi(2)) / 4.5).exp()).collect();
        let gs: f64 = g.iter().sum();
        let n = h * w;
        let mut ssim = 0.0;
        for k in 0..b {
            let (pa, pb) = (&x[k * n..(k + 1) * n], &y[k * n..(k + 1) * n]);
            let filt = |f: &dyn Fn(isize, isize) -> f64, r: usize, c: usize| -> f64 {
                let mut s = 0.0;
                for dy in 0..5 {
                    for dx in 0..5 {
                        s += g[dy] * g[dx] / (gs * gs) * f(r as isize + dy as isize - 2, c as isize + dx as isize - 2);
                    }
                }
                s
            };
            let a = |r, c| at(pa, h, w, r, c, "zero");
            let bb = |r, c| at(pb, h, w, r, c, "zero");
            for r in 0..h {
                for c in 0..w {
                    let (m1, m2) = (filt(&a, r, c), filt(&bb, r, c));
                    let s1 = filt(&|r, c| a(r, c).powi(2), r, c) - m1 * m1;
                    let s2 = filt(&|r, c| bb(r, c).powi(2), r, c) - m2 * m2;
                    let s12 = filt(&|r, c| a(r, c) * bb(r, c), r, c) - m1 * m2;
                    ssim +=
                        (2.0 * m1 * m2 + 1e-4) * (2.0 * s12 + 9e-4) / ((m1 * m1 + m2 * m2 + 1e-4) * (s1 + s2 + 9e-4));
                }
            }
        }
        let lssim = 9.0 * (1.0 - ssim / (b * n) as f64);
        let lp = x.iter().zip(&y).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum::<f64>().sqrt();
        close("lp", scalar(&got.lp) as f64, lp, 1e-5);
        close("lssim", scalar(&got.lssim) as f64, lssim, 1e-4);
        close("total", scalar(&got.total) as f64, lp + lssim, 1e-5);
        // Separately: the norm is large, so an f32 finite difference of the sum is too noisy.
        check_gradient("lssim", |x, y| lp_ssim_weighted(x, y, 1.0, 5).lssim);
        check_gradient("lp", |x, y| lp_ssim_weighted(x, y, 1.0, 5).lp);
    }

    #[test]
    fn mse_and_l1() {
        let d = dev();
        let a = t4(&[0.0, 1.0, 2.0, 3.0], [1, 1, 2, 2], &d);
        let b = t4(&[1.0, 1.0, 0.0, 3.5], [1, 1, 2, 2], &d);
        assert!((scalar(&mse(a.clone(), b.clone())) - (1.0 + 4.0 + 0.25) / 4.0).abs() < 1e-7);
        assert!((scalar(&l1(a, b)) - (1.0 + 2.0 + 0.5) / 4.0).abs() < 1e-7);
    }

    /// Central finite differences (f64 via a plain device in f32, so a loose tolerance) of
    /// `loss(x, y)` in `x` against burn's autodiff gradient, at a few pixels.
    fn check_gradient(name: &str, loss: impl Fn(Tensor<4>, Tensor<4>) -> Tensor<1>) {
        let (h, w) = (12, 12);
        let ad = dev().autodiff();
        let xv = noise(h * w, 11);
        let yv = noise(h * w, 12);
        let x = t4(&xv, [1, 1, h, w], &ad).require_grad();
        let y = t4(&yv, [1, 1, h, w], &ad);
        let grads = loss(x.clone(), y.clone()).backward();
        let g = vals(x.grad(&grads).expect("a gradient"));
        let plain = dev();
        let eps = 1e-2f32;
        for &k in &[0usize, 13, 40, 77, 143] {
            let f = |delta: f32| {
                let mut v = xv.clone();
                v[k] += delta;
                scalar(&loss(t4(&v, [1, 1, h, w], &plain), t4(&yv, [1, 1, h, w], &plain))) as f64
            };
            let fd = (f(eps) - f(-eps)) / (2.0 * eps as f64);
            let d = (fd - g[k] as f64).abs();
            assert!(d <= 2e-3 * fd.abs().max(1e-2), "{name}: d/dx[{k}] autodiff {} vs finite difference {fd}", g[k]);
        }
    }

    #[test]
    fn gradients_agree_with_finite_differences() {
        check_gradient("ssim", |x, y| ssim_loss(x, y, 11));
        check_gradient("spatial_gradient", |x, y| mse(spatial_gradient(x), spatial_gradient(y)));
        check_gradient("cc", |x, y| cc(x.clone() * x, y));
        check_gradient("mse", mse);
        check_gradient("fusion", |x, y| fusion_loss(y.clone(), y * 0.5, x.square()).intensity);
    }
}
