//! Restormer's layer norm over the channels of every pixel.

use super::{dispatch, write_all};
use rayon::prelude::*;

/// Pixels normalised together (their channel values stay in L1/L2 between the passes).
const LN_PIXELS: usize = 256;

/// Normalises pixels `px..px + n` of one image `x` (`[C, hw]`) into `out` (`[C, n]`).
#[inline(always)]
fn layer_norm_piece_imp(x: &[f32], hw: usize, c: usize, w: &[f32], b: Option<&[f32]>, out: &mut [f32], px: usize) {
    let n = out.len() / c;
    let mut mean = [0.0f32; LN_PIXELS];
    let mut var = [0.0f32; LN_PIXELS];
    let (mean, var) = (&mut mean[..n], &mut var[..n]);
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
        for ((s, &v), &m) in var.iter_mut().zip(&x[ch * hw + px..][..n]).zip(mean.iter()) {
            let d = v - m;
            *s += d * d;
        }
    }
    for s in var.iter_mut() {
        *s = 1.0 / (*s * inv_c + 1e-5).sqrt();
    }
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
    fn layer_norm_piece(x: &[f32], hw: usize, c: usize, w: &[f32], b: Option<&[f32]>, out: &mut [f32], px: usize)
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
