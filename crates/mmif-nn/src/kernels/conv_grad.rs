//! Gradients of stride-1, zero-padded convolutions (dense or depthwise) for training on `flex`
//! (the backward pass of [`crate::train_ops`]):
//!
//! - the forward pass of a dense conv is im2col pieces times the weight matrix by `gemm`
//!   ([`conv2d_gemm`]), a depthwise one the inference kernel;
//! - the input gradient is a convolution of the output gradient with the kernel flipped in both
//!   spatial axes and its channel axes swapped, padded by `k − 1 − p`, computed the same way;
//! - a dense conv's weight gradient is, per sample, the product of the output gradient
//!   (`C_out × pixels`) with the im2row matrix of the padded input (`pixels × KH·KW·C_in`, from
//!   the input transposed to pixels × channels) or, with many output channels, with the
//!   transposed im2col matrix, built a few rows at a time and multiplied by `gemm` (for a 1×1
//!   conv the input itself is the im2col matrix);
//! - a depthwise conv's weight gradient is `KH·KW` dot products per plane.
//!
//! burn differentiates the same convs by a transposed conv (GEMM, then a col2im scatter) and by a
//! conv whose kernel is the output gradient (an NHWC copy and an im2col of nine output positions
//! per call, one call per group for grouped convs): on a CDDFuse training step those took more
//! than half of the time.

use super::conv::ConvGeom;
use super::{depthwise_conv2d, dispatch};
use rayon::prelude::*;

/// The kernel of a conv's input gradient: `w'[i][o][a][b] = w[o][i][KH−1−a][KW−1−b]` for a
/// dense conv (`[C_in, C_out, KH, KW]`), the flipped kernels for a depthwise one (same shape).
pub(crate) fn flipped_kernel(w: &[f32], shape: [usize; 4], depthwise: bool) -> (Vec<f32>, [usize; 4]) {
    let [cout, cpg, kh, kw] = shape;
    assert_eq!(w.len(), cout * cpg * kh * kw);
    let k = kh * kw;
    let mut out = vec![0.0f32; w.len()];
    if depthwise {
        for (dst, src) in out.chunks_exact_mut(k).zip(w.chunks_exact(k)) {
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
        return (out, shape);
    }
    for o in 0..cout {
        for i in 0..cpg {
            let src = &w[(o * cpg + i) * k..][..k];
            let dst = &mut out[(i * cout + o) * k..][..k];
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
    }
    (out, [cpg, cout, kh, kw])
}

/// The gradient with respect to the input `[B, C_in, H, W]` of the conv `g` (stride 1, zero
/// padding `p ≤ K − 1`, square kernel, dense or depthwise) given the output gradient `dy`.
pub(crate) fn conv2d_input_grad(dy: &[f32], w: &[f32], g: &ConvGeom) -> Vec<f32> {
    let [cout, _, kh, kw] = g.weight;
    let depthwise = g.groups > 1;
    assert!(g.stride == 1 && kh == kw && g.padding < kh && g.pad_rows == [g.padding; 2] && !g.reflect);
    let (wt, wt_shape) = flipped_kernel(w, g.weight, depthwise);
    let [b, _, oh, ow] = g.output();
    let q = kh - 1 - g.padding;
    let geom = ConvGeom::new([b, cout, oh, ow], wt_shape, 1, q, g.groups, false);
    debug_assert_eq!(geom.output(), g.input);
    if depthwise { depthwise_conv2d(dy, &wt, None, &geom) } else { conv2d_gemm(dy, &wt, &geom) }
}

/// The dense conv `g` (stride 1, zero padding, one group) as im2col pieces times the weight
/// matrix by `gemm`: the forward pass and input gradient of training. burn computes these the same
/// way. Not the inference kernels: Winograd F(4×4)'s error (1e-5 of the largest output) and, less
/// so, the direct kernel's one long f32 sum per output are harmless in inference but, amplified by
/// train-mode BatchNorm over a few pixels, moved the running statistics of UNet5's 1024-channel
/// block 20× (Winograd) and 5× (direct) further from PyTorch's float64 values than PyTorch's own
/// float32 run; `gemm`'s blocked sums do not.
pub(crate) fn conv2d_gemm(x: &[f32], w: &[f32], g: &ConvGeom) -> Vec<f32> {
    let [b, _, _, _] = g.input;
    let [cout, cpg, kh, kw] = g.weight;
    let [_, _, oh, ow] = g.output();
    let kk = cpg * kh * kw;
    assert_eq!(w.len(), cout * kk);
    let mut out = vec![0.0f32; b * cout * oh * ow];
    im2col_pieces(x, g, |n, y0, np, cols| {
        let on = &mut out[n * cout * oh * ow..][..cout * oh * ow];
        // SAFETY: the destination is rows y0.. of every output channel of sample n (row stride
        // oh·ow, np values each); `w` is cout × kk; `cols` is kk × np row-major.
        unsafe { gemm_strided(&mut on[y0 * ow..], cout, np, oh * ow, w, kk, cols, np as isize, 1, kk, false) };
    });
    out
}

/// The gradient with respect to the weight `[C_out, C_in, KH, KW]` of the dense conv `g` (stride
/// 1, zero padding, one group) given its input `x` and output gradient `dy`.
///
/// The sum runs over pixels, which both operands hold contiguously, while `gemm` wants its right
/// operand contiguous along the other axis and otherwise packs it element by element, each
/// packed value then serving `C_out` multiply-adds: where `C_out` is small that packing costs as
/// much as the products (half the FMA rate, 88 against 201 GFLOP/s for UNet5's 128 → 64 conv at
/// 128×128 on two cores). There the input is transposed to pixels × channels and the right
/// operand built as im2row pieces ([`weight_grad_im2row`]); with many output channels (or very
/// few: the copies then cost more than the products) the im2col pieces are used as they are
/// ([`weight_grad_im2col`]; equal at 512, 1.4× faster at 1024 channels on 8×8). Both give the
/// same sums in the same order.
pub(crate) fn conv2d_weight_grad(x: &[f32], dy: &[f32], g: &ConvGeom) -> Vec<f32> {
    let [_, cin, _, _] = g.input;
    let cout = g.weight[0];
    if (8..=256).contains(&cout) && cin >= 8 { weight_grad_im2row(x, dy, g) } else { weight_grad_im2col(x, dy, g) }
}

/// [`conv2d_weight_grad`] as `gemm` of the output gradient (`C_out × pixels`) with the im2col
/// matrix read transposed.
fn weight_grad_im2col(x: &[f32], dy: &[f32], g: &ConvGeom) -> Vec<f32> {
    let [b, _, _, _] = g.input;
    let [cout, cpg, kh, kw] = g.weight;
    let [_, _, oh, ow] = g.output();
    assert_eq!(dy.len(), b * cout * oh * ow);
    let kk = cpg * kh * kw;
    let mut dw = vec![0.0f32; cout * kk];
    let mut accumulate = false;
    im2col_pieces(x, g, |n, y0, np, cols| {
        let dyn_ = &dy[n * cout * oh * ow..][..cout * oh * ow];
        // SAFETY: `dw` is cout × kk (row stride kk); the left operand is rows y0.. of every output channel of
        // `dyn_` (row stride oh·ow, np values each); the right one is `cols` read as np × kk
        // (element (j, r) at r·np + j).
        unsafe { gemm_strided(&mut dw, cout, kk, kk, &dyn_[y0 * ow..], oh * ow, cols, 1, np as isize, np, accumulate) };
        accumulate = true;
    });
    dw
}

/// [`conv2d_weight_grad`] as `gemm` of the output gradient with im2row pieces (`pixels ×
/// KH·KW·C_in`: each tap's `C_in` values copied at once from the input transposed to pixels ×
/// channels), which `gemm` packs by contiguous copies: the gradient comes out in `[C_out, KH, KW,
/// C_in]` order and is permuted at the end.
fn weight_grad_im2row(x: &[f32], dy: &[f32], g: &ConvGeom) -> Vec<f32> {
    let [b, cin, h, w] = g.input;
    let [cout, cpg, kh, kw] = g.weight;
    let [_, _, oh, ow] = g.output();
    assert!(g.stride == 1 && g.groups == 1 && cpg == cin && g.pad_rows == [g.padding; 2] && !g.reflect);
    assert_eq!(x.len(), b * cin * h * w);
    assert_eq!(dy.len(), b * cout * oh * ow);
    let (taps, p) = (kh * kw, g.padding);
    let kk = cin * taps;
    let mut dw_tap_major = vec![0.0f32; cout * kk];
    if kk == 0 || oh * ow == 0 {
        return dw_tap_major;
    }
    let rows = (COLS_FLOATS / (kk * ow)).clamp(1, oh);
    let mut pixels = vec![0.0f32; h * w * cin];
    let mut im2row = vec![0.0f32; rows * ow * kk];
    let mut accumulate = false;
    for n in 0..b {
        transpose_to_pixels(&x[n * cin * h * w..][..cin * h * w], cin, h * w, &mut pixels);
        let dyn_ = &dy[n * cout * oh * ow..][..cout * oh * ow];
        for y0 in (0..oh).step_by(rows) {
            let y1 = (y0 + rows).min(oh);
            let np = (y1 - y0) * ow;
            let piece = &mut im2row[..np * kk];
            piece.par_chunks_mut(ow * kk).enumerate().for_each(|(r, out_row)| {
                let y = y0 + r;
                for (xo, px) in out_row.chunks_exact_mut(kk).enumerate() {
                    for (t, dst) in px.chunks_exact_mut(cin).enumerate() {
                        let (iy, ix) = ((y + t / kw).wrapping_sub(p), (xo + t % kw).wrapping_sub(p));
                        if iy < h && ix < w {
                            dst.copy_from_slice(&pixels[(iy * w + ix) * cin..][..cin]);
                        } else {
                            dst.fill(0.0);
                        }
                    }
                }
            });
            // SAFETY: the destination is cout × kk (row stride kk); the left operand is rows
            // y0..y1 of every output channel of `dyn_` (row stride oh·ow, np values each); the
            // right one is `piece`, np × kk row-major.
            unsafe {
                gemm_strided(
                    &mut dw_tap_major,
                    cout,
                    kk,
                    kk,
                    &dyn_[y0 * ow..],
                    oh * ow,
                    piece,
                    kk as isize,
                    1,
                    np,
                    accumulate,
                )
            };
            accumulate = true;
        }
    }
    // [C_out, KH·KW, C_in] → [C_out, C_in, KH·KW]
    let mut dw = vec![0.0f32; cout * kk];
    for (src, dst) in dw_tap_major.chunks_exact(kk).zip(dw.chunks_exact_mut(kk)) {
        for t in 0..taps {
            for c in 0..cin {
                dst[c * taps + t] = src[t * cin + c];
            }
        }
    }
    dw
}

/// `out[p·C + c] = x[c·P + p]`: a `C × P` plane-major sample as `P × C` (pixels × channels), in
/// blocks of pixels written in parallel.
fn transpose_to_pixels(x: &[f32], c: usize, pixels: usize, out: &mut [f32]) {
    const BLOCK: usize = 64;
    out[..pixels * c].par_chunks_mut(BLOCK * c).enumerate().for_each(|(blk, dst)| {
        let p0 = blk * BLOCK;
        let np = dst.len() / c;
        for ch in 0..c {
            let src = &x[ch * pixels + p0..][..np];
            for (j, &v) in src.iter().enumerate() {
                dst[j * c + ch] = v;
            }
        }
    });
}

/// Floats of one im2col piece (32 MB): the rows of a dense conv are built this many values at a time.
const COLS_FLOATS: usize = 1 << 23;

/// Calls `f(n, y0, np, cols)` for every sample `n` of `x` and every piece of output rows starting
/// at `y0` (`np` output pixels) with the im2col matrix of those rows of the dense conv `g` (stride
/// 1, zero padding, one group): `C_in·KH·KW × np`, row-major. For a 1×1 conv without padding the
/// input plane itself is that matrix (one piece per sample, nothing copied).
fn im2col_pieces(x: &[f32], g: &ConvGeom, mut f: impl FnMut(usize, usize, usize, &[f32])) {
    let [b, cin, h, w] = g.input;
    let [_, cpg, kh, kw] = g.weight;
    let [_, _, oh, ow] = g.output();
    assert!(g.stride == 1 && g.groups == 1 && cpg == cin && g.pad_rows == [g.padding; 2] && !g.reflect);
    assert_eq!(x.len(), b * cin * h * w);
    let kk = cin * kh * kw;
    let pointwise = kh == 1 && kw == 1 && g.padding == 0;
    let rows = (COLS_FLOATS / (kk * ow).max(1)).clamp(1, oh.max(1));
    let mut cols = if pointwise { Vec::new() } else { vec![0.0f32; kk * rows * ow] };
    for n in 0..b {
        let xn = &x[n * cin * h * w..][..cin * h * w];
        if pointwise {
            f(n, 0, h * w, xn);
            continue;
        }
        for y0 in (0..oh).step_by(rows) {
            let y1 = (y0 + rows).min(oh);
            let np = (y1 - y0) * ow;
            let piece = &mut cols[..kk * np];
            im2col_rows(xn, [cin, h, w], [kh, kw], g.padding, [y0, y1], ow, piece);
            f(n, y0, np, piece);
        }
    }
}

/// `dst (m × n, row stride dst_rs, column stride 1) (+)= lhs (m × k, row stride lhs_rs, column
/// stride 1) · rhs (k × n, strides rhs_rs / rhs_cs)`.
///
/// # Safety
/// Every element the strides address must lie inside `lhs` / `rhs` (checked here for `dst`).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_strided(
    dst: &mut [f32],
    m: usize,
    n: usize,
    dst_rs: usize,
    lhs: &[f32],
    lhs_rs: usize,
    rhs: &[f32],
    rhs_rs: isize,
    rhs_cs: isize,
    k: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(n <= dst_rs && (m - 1) * dst_rs + n <= dst.len(), "destination out of bounds");
    assert!((m - 1) * lhs_rs + k <= lhs.len(), "left operand out of bounds");
    let last_rhs = (k as isize - 1) * rhs_rs + (n as isize - 1) * rhs_cs;
    assert!(rhs_rs >= 0 && rhs_cs >= 0 && (last_rhs as usize) < rhs.len(), "right operand out of bounds");
    // SAFETY: bounds checked above.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            1,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(rayon::current_num_threads()),
        )
    }
}

/// Rows `y0..y1` of the im2col matrix of one sample `x` (`[C, H, W]`) for a `KH×KW` kernel with
/// zero padding `p` and output width `ow`: row `r = (c·KH + a)·KW + b` holds, for every output
/// pixel `(y, x)` of those rows, `x[c, y + a − p, x + b − p]` (0 outside the image).
fn im2col_rows(
    x: &[f32],
    [_, h, w]: [usize; 3],
    [kh, kw]: [usize; 2],
    p: usize,
    [y0, y1]: [usize; 2],
    ow: usize,
    out: &mut [f32],
) {
    let np = (y1 - y0) * ow;
    out.par_chunks_mut(np).enumerate().for_each(|(r, row)| {
        let (c, ab) = (r / (kh * kw), r % (kh * kw));
        let (a, b) = (ab / kw, ab % kw);
        let plane = &x[c * h * w..][..h * w];
        // output columns whose input column x + b − p lies inside 0..w
        let x0 = p.saturating_sub(b).min(ow);
        let x1 = (w + p).saturating_sub(b).min(ow).max(x0);
        for (y, dst) in (y0..y1).zip(row.chunks_exact_mut(ow)) {
            let iy = (y + a).wrapping_sub(p);
            if iy >= h {
                dst.fill(0.0);
                continue;
            }
            dst[..x0].fill(0.0);
            dst[x1..].fill(0.0);
            let src = &plane[iy * w..][..w];
            dst[x0..x1].copy_from_slice(&src[x0 + b - p..x1 + b - p]);
        }
    });
}

/// The gradient with respect to the weight `[C, 1, KH, KW]` of the depthwise conv `g` (stride 1,
/// zero padding) given its input `x` and output gradient `dy`: per plane and tap, the dot product
/// of the output gradient with the shifted input, in f32 lanes summed per row in f64.
pub(crate) fn depthwise_weight_grad(x: &[f32], dy: &[f32], g: &ConvGeom) -> Vec<f32> {
    let [b, c, h, w] = g.input;
    let [cout, cpg, kh, kw] = g.weight;
    let [_, _, oh, ow] = g.output();
    assert!(g.stride == 1 && cpg == 1 && cout == c && g.groups == c && g.pad_rows == [g.padding; 2] && !g.reflect);
    assert_eq!(x.len(), b * c * h * w);
    assert_eq!(dy.len(), b * c * oh * ow);
    let p = g.padding;
    let mut dw = vec![0.0f32; c * kh * kw];
    dw.par_chunks_mut(kh * kw).enumerate().for_each(|(ch, out)| {
        let mut acc = vec![0.0f64; kh * kw];
        for n in 0..b {
            let plane = &x[(n * c + ch) * h * w..][..h * w];
            let grad = &dy[(n * c + ch) * oh * ow..][..oh * ow];
            for a in 0..kh {
                for bb in 0..kw {
                    let x0 = p.saturating_sub(bb).min(ow);
                    let x1 = (w + p).saturating_sub(bb).min(ow).max(x0);
                    if x0 == x1 {
                        continue;
                    }
                    let mut s = 0.0f64;
                    for y in 0..oh {
                        let iy = (y + a).wrapping_sub(p);
                        if iy >= h {
                            continue;
                        }
                        let src = &plane[iy * w + x0 + bb - p..][..x1 - x0];
                        s += f64::from(dot(&grad[y * ow + x0..y * ow + x1], src));
                    }
                    acc[a * kw + bb] += s;
                }
            }
        }
        for (o, a) in out.iter_mut().zip(&acc) {
            *o = *a as f32;
        }
    });
    dw
}

dispatch! {
    /// `Σ a[i]·b[i]` over eight f32 lanes.
    fn dot(a: &[f32], b: &[f32]) -> f32 = dot_impl;
}

#[inline(always)]
fn dot_impl(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for ((l, a), b) in lanes.iter_mut().zip(x).zip(y) {
            *l += a * b;
        }
    }
    let mut s: f32 = lanes.iter().sum();
    for (x, y) in ar.iter().zip(br) {
        s += x * y;
    }
    s
}
