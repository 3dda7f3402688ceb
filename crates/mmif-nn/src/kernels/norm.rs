//! Restormer's layer norm over the channels of every pixel.

use super::{dispatch, write_all};
use rayon::prelude::*;

/// Pixels normalised together (their channel values stay in L1/L2 between the passes).
pub(super) const LN_PIXELS: usize = 256;

/// The mean and inverse standard deviation (biased variance, eps 1e-5) over the `c` channels of
/// pixels `px..px + n` of one image `x` (`[C, hw]`), into `mean` and `inv` (`n` each, zeroed).
#[inline(always)]
fn piece_stats(x: &[f32], hw: usize, c: usize, px: usize, mean: &mut [f32], inv: &mut [f32]) {
    let n = mean.len();
    for ch in 0..c {
        for (m, &v) in mean.iter_mut().zip(&x[ch * hw + px..][..n]) {
            *m += v;
        }
    }
    let inv_c = 1.0 / c as f32;
    for m in mean.iter_mut() {
        *m *= inv_c;
    }
    for ch in 0..c {
        for ((s, &v), &m) in inv.iter_mut().zip(&x[ch * hw + px..][..n]).zip(mean.iter()) {
            let d = v - m;
            *s += d * d;
        }
    }
    for s in inv.iter_mut() {
        *s = 1.0 / (*s * inv_c + 1e-5).sqrt();
    }
}

/// Normalises pixels `px..px + n` of one image `x` (`[C, hw]`) into `out` (`[C, n]`).
#[inline(always)]
fn layer_norm_piece_imp(x: &[f32], hw: usize, c: usize, w: &[f32], b: Option<&[f32]>, out: &mut [f32], px: usize) {
    let n = out.len() / c;
    let mut mean = [0.0f32; LN_PIXELS];
    let mut var = [0.0f32; LN_PIXELS];
    let (mean, var) = (&mut mean[..n], &mut var[..n]);
    piece_stats(x, hw, c, px, mean, var);
    for ch in 0..c {
        let o = &mut out[ch * n..][..n];
        let xs = &x[ch * hw + px..][..n];
        let wc = w[ch];
        match b {
            Some(b) => {
                let bc = b[ch];
                for (((o, &v), &m), &s) in o.iter_mut().zip(xs).zip(mean.iter()).zip(var.iter()) {
                    *o = (v - m) * s * wc + bc;
                }
            }
            None => {
                for ((o, &v), &s) in o.iter_mut().zip(xs).zip(var.iter()) {
                    *o = v * s * wc;
                }
            }
        }
    }
}

dispatch! {
    /// [`layer_norm_piece_imp`] with the widest vectors the CPU has.
    pub(super) fn layer_norm_piece(x: &[f32], hw: usize, c: usize, w: &[f32], b: Option<&[f32]>, out: &mut [f32], px: usize)
        = layer_norm_piece_imp;
}

/// Restormer's layer norm over the channels of every pixel of `x` (`[B, C, H, W]`): biased
/// variance, eps 1e-5; with `bias` `(x-μ)/σ·w + b` (`WithBias`), without `x/σ·w` (`BiasFree`).
pub(crate) fn layer_norm(x: &[f32], shape: [usize; 4], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let [b, c, h, w] = shape;
    let hw = h * w;
    assert!(x.len() == b * c * hw && weight.len() == c && bias.is_none_or(|bs| bs.len() == c));
    let pieces = hw.div_ceil(LN_PIXELS);
    // Computed piece by piece into channel-major scratch, then scattered to the planes.
    let fill = |out: &super::Out| {
        (0..b * pieces).into_par_iter().for_each_init(
            || vec![0.0f32; c * LN_PIXELS],
            |scratch, task| {
                let (bi, k) = (task / pieces, task % pieces);
                let px = k * LN_PIXELS;
                let n = LN_PIXELS.min(hw - px);
                let xs = &x[bi * c * hw..][..c * hw];
                let piece = &mut scratch[..c * n];
                layer_norm_piece(xs, hw, c, weight, bias, piece, px);
                for ch in 0..c {
                    // SAFETY: task (bi, k) alone writes pixels px..px+n of image bi's planes.
                    unsafe { out.part((bi * c + ch) * hw + px, n) }.copy_from_slice(&piece[ch * n..][..n]);
                }
            },
        );
    };
    // SAFETY: the tasks cover every image and pixel, and write all channels (every value is
    // copied in from a piece's scratch).
    unsafe { write_all(b * c * hw, fill) }
}

/// The backward pass of [`layer_norm`] with bias over pixels `px..px + n` of one image: `planes`
/// are the image's input `x` and output gradient `dy` (`[C, hw]` each), `dx` receives the input
/// gradient channel-major (`[C, n]`), and `sums` (`[2C]`, added to) the weight gradient `Σ dy·x̂`
/// then the bias gradient `Σ dy`. With `x̂ = (x-μ)·s` and `g = dy·w`:
/// `dx = s·(g - mean_c g - x̂·mean_c(g·x̂))`.
#[inline(always)]
fn layer_norm_grad_piece_imp(
    planes: [&[f32]; 2],
    hw: usize,
    c: usize,
    w: &[f32],
    px: usize,
    dx: &mut [f32],
    sums: &mut [f32],
) {
    let [x, dy] = planes;
    let n = dx.len() / c;
    let mut mean = [0.0f32; LN_PIXELS];
    let mut inv = [0.0f32; LN_PIXELS];
    let mut g_mean = [0.0f32; LN_PIXELS];
    let mut gx_mean = [0.0f32; LN_PIXELS];
    let (mean, inv, g_mean, gx_mean) = (&mut mean[..n], &mut inv[..n], &mut g_mean[..n], &mut gx_mean[..n]);
    piece_stats(x, hw, c, px, mean, inv);
    let inv_c = 1.0 / c as f32;
    let (dw, db) = sums.split_at_mut(c);
    for ch in 0..c {
        let (xs, gs) = (&x[ch * hw + px..][..n], &dy[ch * hw + px..][..n]);
        let wc = w[ch];
        let (mut sw, mut sb) = (0.0f32, 0.0f32);
        for ((((&v, &g), &m), &s), (gm, gxm)) in
            xs.iter().zip(gs).zip(mean.iter()).zip(inv.iter()).zip(g_mean.iter_mut().zip(gx_mean.iter_mut()))
        {
            let xh = (v - m) * s;
            let gw = g * wc;
            *gm += gw;
            *gxm += gw * xh;
            sw += g * xh;
            sb += g;
        }
        dw[ch] += sw;
        db[ch] += sb;
    }
    for (gm, gxm) in g_mean.iter_mut().zip(gx_mean.iter_mut()) {
        *gm *= inv_c;
        *gxm *= inv_c;
    }
    for ch in 0..c {
        let (xs, gs) = (&x[ch * hw + px..][..n], &dy[ch * hw + px..][..n]);
        let wc = w[ch];
        let o = &mut dx[ch * n..][..n];
        for (((((o, &v), &g), &m), &s), (&gm, &gxm)) in
            o.iter_mut().zip(xs).zip(gs).zip(mean.iter()).zip(inv.iter()).zip(g_mean.iter().zip(gx_mean.iter()))
        {
            let xh = (v - m) * s;
            *o = s * (g * wc - gm - xh * gxm);
        }
    }
}

dispatch! {
    /// [`layer_norm_grad_piece_imp`] with the widest vectors the CPU has.
    fn layer_norm_grad_piece(planes: [&[f32]; 2], hw: usize, c: usize, w: &[f32], px: usize, dx: &mut [f32],
        sums: &mut [f32]) = layer_norm_grad_piece_imp;
}

/// Gradients of [`layer_norm`] with bias (`WithBias`) for the output gradient `dy`: the input
/// gradient (`[B, C, H, W]`), the weight gradient and the bias gradient (`[C]` each). The weight
/// and bias sums are taken per piece of pixels and added in a fixed order, so the result does not
/// depend on the thread count.
pub(crate) fn layer_norm_backward(
    x: &[f32],
    shape: [usize; 4],
    weight: &[f32],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let [b, c, h, w] = shape;
    let hw = h * w;
    assert!(x.len() == b * c * hw && dy.len() == x.len() && weight.len() == c);
    let pieces = hw.div_ceil(LN_PIXELS);
    let mut partial = vec![0.0f32; b * pieces * 2 * c];
    let fill = |out: &super::Out| {
        partial.par_chunks_mut(2 * c).enumerate().for_each_init(
            || vec![0.0f32; c * LN_PIXELS],
            |scratch, (task, sums)| {
                let (bi, k) = (task / pieces, task % pieces);
                let px = k * LN_PIXELS;
                let n = LN_PIXELS.min(hw - px);
                let (xs, gs) = (&x[bi * c * hw..][..c * hw], &dy[bi * c * hw..][..c * hw]);
                let piece = &mut scratch[..c * n];
                layer_norm_grad_piece([xs, gs], hw, c, weight, px, piece, sums);
                for ch in 0..c {
                    // SAFETY: task (bi, k) alone writes pixels px..px+n of image bi's planes.
                    unsafe { out.part((bi * c + ch) * hw + px, n) }.copy_from_slice(&piece[ch * n..][..n]);
                }
            },
        );
    };
    // SAFETY: the tasks cover every image and pixel, and write all channels.
    let dx = unsafe { write_all(b * c * hw, fill) };
    let (mut dw, mut db) = (vec![0.0f32; c], vec![0.0f32; c]);
    for sums in partial.chunks_exact(2 * c) {
        for ch in 0..c {
            dw[ch] += sums[ch];
            db[ch] += sums[c + ch];
        }
    }
    (dx, dw, db)
}
