//! Train-mode `nn.BatchNorm2d` followed by `nn.ReLU`, forward and backward (UNet5's conv
//! blocks, through [`crate::train_ops::batch_norm_relu`]).
//!
//! Per channel `c` over the `N = B·H·W` values of `x`: `x̂ = (x − μ_c)·s_c` with the batch mean
//! `μ_c` and `s_c = 1/√(σ²_c + ε)` (biased variance), `out = max(0, x̂·γ_c + β_c)`, computed as
//! `(x − μ_c)·a_c + β_c` with `a_c = s_c·γ_c`. The statistics are sums per plane in f32 lanes,
//! folded into f64 every [`CHUNK`] values and added plane by plane in a fixed order: the
//! results do not depend on the thread count. The backward pass recomputes `x̂` and the ReLU's
//! mask from `x` (nothing else is kept between the passes): with `dz = dout·[out > 0]`,
//! `dβ = Σ dz`, `dγ = Σ dz·x̂` and `dx = γ·s·(dz − dβ/N − x̂·dγ/N)`.

use rayon::prelude::*;

/// Values summed in f32 lanes before they are added to an f64 total.
const CHUNK: usize = 512;

/// f32 lanes of the partial sums (one AVX-512 vector, two AVX2 ones).
const LANES: usize = 16;

/// Σ v and Σ (v − m)² of one plane.
#[inline(always)]
fn plane_moments_imp(v: &[f32], m: f32) -> [f64; 2] {
    let mut total = [0f64; 2];
    for piece in v.chunks(CHUNK) {
        let (mut s, mut q) = ([0f32; LANES], [0f32; LANES]);
        let mut it = piece.chunks_exact(LANES);
        for ch in &mut it {
            for l in 0..LANES {
                let d = ch[l] - m;
                s[l] += ch[l];
                q[l] += d * d;
            }
        }
        for (l, &x) in it.remainder().iter().enumerate() {
            let d = x - m;
            s[l] += x;
            q[l] += d * d;
        }
        total[0] += fold(&s);
        total[1] += fold(&q);
    }
    total
}

/// The f64 sum of f32 lanes.
#[inline(always)]
fn fold(lanes: &[f32; LANES]) -> f64 {
    lanes.iter().map(|&v| f64::from(v)).sum()
}

super::dispatch! { fn plane_moments(v: &[f32], m: f32) -> [f64; 2] = plane_moments_imp; }

/// Per-channel batch mean and biased variance of `x` (`[B, C, H, W]`), in f64: a pass for the
/// means, one for the squared deviations from them.
pub(crate) fn channel_stats(x: &[f32], shape: [usize; 4]) -> (Vec<f64>, Vec<f64>) {
    let [b, c, h, w] = shape;
    let hw = h * w;
    assert_eq!(x.len(), b * c * hw);
    let n = (b * hw).max(1) as f64;
    let per_channel = |shift: &[f32], k: usize| -> Vec<f64> {
        let planes: Vec<f64> =
            x.par_chunks(hw.max(1)).enumerate().map(|(i, p)| plane_moments(p, shift[i % c])[k]).collect();
        let mut sums = vec![0f64; c];
        for (i, s) in planes.iter().enumerate() {
            sums[i % c] += s;
        }
        sums.iter().map(|s| s / n).collect()
    };
    let mean = per_channel(&vec![0.0; c], 0);
    let mean_f32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    // Σ (x − m₃₂)² / N, corrected for the rounding of the mean to f32: σ² = that − (μ − m₃₂)².
    let var = per_channel(&mean_f32, 1)
        .iter()
        .zip(mean.iter().zip(&mean_f32))
        .map(|(q, (&m, &m32))| (q - (m - f64::from(m32)).powi(2)).max(0.0))
        .collect();
    (mean, var)
}

/// `(x − m)·a + β`, the normalised and scaled value (before the ReLU), the same expression in
/// both passes so that the backward pass sees the forward pass's mask.
#[inline(always)]
fn affine(x: f32, m: f32, a: f32, beta: f32) -> f32 {
    (x - m) * a + beta
}

#[inline(always)]
fn bn_relu_plane_imp(x: &[f32], out: &mut [f32], m: f32, a: f32, beta: f32) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = affine(v, m, a, beta).max(0.0);
    }
}

super::dispatch! { fn bn_relu_plane(x: &[f32], out: &mut [f32], m: f32, a: f32, beta: f32) = bn_relu_plane_imp; }

/// The per-channel constants of both passes: the mean `m`, `s = 1/√(σ²+ε)` and `a = s·γ` in f32.
fn constants(mean: &[f32], invstd: &[f32], gamma: &[f32]) -> Vec<[f32; 3]> {
    mean.iter().zip(invstd).zip(gamma).map(|((&m, &s), &g)| [m, s, s * g]).collect()
}

/// `max(0, (x − mean)·invstd·γ + β)` per channel of `x` (`[B, C, H, W]`; `mean`, `invstd`,
/// `gamma`, `beta` `[C]`).
pub(crate) fn batch_norm_relu(
    x: &[f32],
    shape: [usize; 4],
    mean: &[f32],
    invstd: &[f32],
    gamma: &[f32],
    beta: &[f32],
) -> Vec<f32> {
    let [b, c, h, w] = shape;
    let hw = (h * w).max(1);
    assert!(x.len() == b * c * h * w && [mean.len(), invstd.len(), gamma.len(), beta.len()] == [c; 4]);
    let k = constants(mean, invstd, gamma);
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(hw).zip(x.par_chunks(hw)).enumerate().for_each(|(i, (o, p))| {
        let [m, _, a] = k[i % c];
        bn_relu_plane(p, o, m, a, beta[i % c]);
    });
    out
}

/// `Σ dz` and `Σ dz·x̂` of one plane, `dz = dout·[(x − m)·a + β > 0]`, `x̂ = (x − m)·s`.
#[inline(always)]
fn grad_sums_imp(x: &[f32], dout: &[f32], [m, s, a]: [f32; 3], beta: f32) -> [f64; 2] {
    let mut total = [0f64; 2];
    for (xp, gp) in x.chunks(CHUNK).zip(dout.chunks(CHUNK)) {
        let (mut s0, mut s1) = ([0f32; LANES], [0f32; LANES]);
        let (mut xi, mut gi) = (xp.chunks_exact(LANES), gp.chunks_exact(LANES));
        for (xc, gc) in (&mut xi).zip(&mut gi) {
            for l in 0..LANES {
                let dz = if affine(xc[l], m, a, beta) > 0.0 { gc[l] } else { 0.0 };
                s0[l] += dz;
                s1[l] += dz * ((xc[l] - m) * s);
            }
        }
        for (l, (&xv, &gv)) in xi.remainder().iter().zip(gi.remainder()).enumerate() {
            let dz = if affine(xv, m, a, beta) > 0.0 { gv } else { 0.0 };
            s0[l] += dz;
            s1[l] += dz * ((xv - m) * s);
        }
        total[0] += fold(&s0);
        total[1] += fold(&s1);
    }
    total
}

super::dispatch! { fn grad_sums(x: &[f32], dout: &[f32], k: [f32; 3], beta: f32) -> [f64; 2] = grad_sums_imp; }

/// `dx = g·(dz − c₁ − x̂·c₂)` of one value (see [`input_grad_plane`]).
#[inline(always)]
fn input_grad(xv: f32, gv: f32, [m, s, a]: [f32; 3], beta: f32, [g, c1, c2]: [f32; 3]) -> f32 {
    let dz = if affine(xv, m, a, beta) > 0.0 { gv } else { 0.0 };
    g * (dz - c1 - (xv - m) * s * c2)
}

/// Writes `dx = g·(dz − c₁ − x̂·c₂)` for one plane (`g = γ·s`, `c₁ = dβ/N`, `c₂ = dγ/N`) and
/// returns `Σ dx` (the gradient of a bias added before the batch norm: zero but for rounding).
#[inline(always)]
fn input_grad_plane_imp(
    x: &[f32],
    dout: &[f32],
    dx: &mut [f32],
    [m, s, a]: [f32; 3],
    beta: f32,
    [g, c1, c2]: [f32; 3],
) -> f64 {
    let mut total = 0f64;
    for ((xc, gc), dc) in x.chunks(CHUNK).zip(dout.chunks(CHUNK)).zip(dx.chunks_mut(CHUNK)) {
        let mut lanes = [0f32; LANES];
        let (mut xi, mut gi, mut di) = (xc.chunks_exact(LANES), gc.chunks_exact(LANES), dc.chunks_exact_mut(LANES));
        for ((xv, gv), dv) in (&mut xi).zip(&mut gi).zip(&mut di) {
            for l in 0..LANES {
                dv[l] = input_grad(xv[l], gv[l], [m, s, a], beta, [g, c1, c2]);
                lanes[l] += dv[l];
            }
        }
        for (l, ((&xv, &gv), d)) in xi.remainder().iter().zip(gi.remainder()).zip(di.into_remainder()).enumerate() {
            *d = input_grad(xv, gv, [m, s, a], beta, [g, c1, c2]);
            lanes[l] += *d;
        }
        total += fold(&lanes);
    }
    total
}

super::dispatch! {
    fn input_grad_plane(x: &[f32], dout: &[f32], dx: &mut [f32], k: [f32; 3], beta: f32, cg: [f32; 3]) -> f64 = input_grad_plane_imp;
}

/// The gradients of `out = batch_norm_relu(x, …)` (train mode: the statistics are those of `x`)
/// given `dout`: `(dx, dγ, dβ, Σ dx)` — the last is the gradient of a bias added to `x` before
/// the batch norm (which cancels it: zero but for rounding).
pub(crate) fn batch_norm_relu_backward(
    x: &[f32],
    shape: [usize; 4],
    dout: &[f32],
    mean: &[f32],
    invstd: &[f32],
    gamma: &[f32],
    beta: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let [b, c, h, w] = shape;
    let hw = (h * w).max(1);
    assert!(x.len() == b * c * h * w && dout.len() == x.len());
    assert!([mean.len(), invstd.len(), gamma.len(), beta.len()] == [c; 4]);
    let n = (b * h * w).max(1) as f64;
    let k = constants(mean, invstd, gamma);
    let planes: Vec<[f64; 2]> = x
        .par_chunks(hw)
        .zip(dout.par_chunks(hw))
        .enumerate()
        .map(|(i, (p, g))| grad_sums(p, g, k[i % c], beta[i % c]))
        .collect();
    let (mut dbeta, mut dgamma) = (vec![0f64; c], vec![0f64; c]);
    for (i, [s0, s1]) in planes.iter().enumerate() {
        dbeta[i % c] += s0;
        dgamma[i % c] += s1;
    }
    let cg: Vec<[f32; 3]> =
        (0..c).map(|ch| [gamma[ch] * invstd[ch], (dbeta[ch] / n) as f32, (dgamma[ch] / n) as f32]).collect();
    let mut dx = vec![0.0f32; x.len()];
    let bias_planes: Vec<f64> = dx
        .par_chunks_mut(hw)
        .zip(x.par_chunks(hw).zip(dout.par_chunks(hw)))
        .enumerate()
        .map(|(i, (d, (p, g)))| input_grad_plane(p, g, d, k[i % c], beta[i % c], cg[i % c]))
        .collect();
    let mut dbias = vec![0f64; c];
    for (i, s) in bias_planes.iter().enumerate() {
        dbias[i % c] += s;
    }
    let f32s = |v: Vec<f64>| v.into_iter().map(|s| s as f32).collect::<Vec<f32>>();
    (dx, f32s(dgamma), f32s(dbeta), f32s(dbias))
}
