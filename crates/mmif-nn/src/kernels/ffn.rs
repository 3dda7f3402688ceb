//! Restormer's gated feed-forward network: the GELU gate alone ([`gelu_gate`]) and the whole
//! `project_in → depthwise 3×3 → gate → project_out` fused row by row ([`gated_ffn`]), which
//! also runs MobileNetV2's inverted residual bottleneck (`1×1 → ReLU6 → depthwise 3×3 → ReLU6 →
//! 1×1`, CDDFuse's INN) with [`Middle::Relu6`].

use super::block::{BLOCK_WIDTHS, CB, CI_TILE, LANES, block_channels, conv_row, pack_weights};
use super::math::{Act, erf, exp_f32};
use super::norm::{LN_PIXELS, layer_norm_piece};
use super::{dispatch, isa, write_all};
use rayon::prelude::*;

/// `out[i] = GELU(a[i]) · b[i]` for `i < out.len()` (`a`, `b` at least as long).
#[inline(always)]
fn gelu_mul_imp(a: &[f32], b: &[f32], out: &mut [f32]) {
    let n = out.len();
    for ((o, &x), &y) in out.iter_mut().zip(&a[..n]).zip(&b[..n]) {
        *o = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2)) * y;
    }
}

dispatch! {
    /// [`gelu_mul_imp`] with the widest vectors the CPU has.
    fn gelu_mul(a: &[f32], b: &[f32], out: &mut [f32]) = gelu_mul_imp;
}

/// Splits `[B, 2C, H, W]` into the pieces both gate passes work on, in parallel: `f(o, a, b, n)`
/// for the `n` values at offset `o` of the `[B, C, H, W]` output and at offsets `a` (gate half) and
/// `b` (gated half) of the input.
fn for_each_gate_piece(shape: [usize; 4], f: impl Fn(usize, usize, usize, usize) + Sync) {
    let [b, c2, h, w] = shape;
    let (c, hw) = (c2 / 2, h * w);
    const PIECE: usize = 4096;
    let pieces = hw.div_ceil(PIECE);
    (0..b * c * pieces).into_par_iter().for_each(|task| {
        let (plane, k) = (task / pieces, task % pieces);
        let (bi, ci) = (plane / c, plane % c);
        let start = k * PIECE;
        f(plane * hw + start, (bi * c2 + ci) * hw + start, (bi * c2 + c + ci) * hw + start, PIECE.min(hw - start));
    });
}

/// `GELU(x[:, :C]) · x[:, C:]` for `x` of shape `[B, 2C, H, W]` (erf GELU, as `F.gelu`).
pub(crate) fn gelu_gate(x: &[f32], shape: [usize; 4]) -> Vec<f32> {
    let [b, c2, h, w] = shape;
    assert!(c2 % 2 == 0 && x.len() == b * c2 * h * w);
    let fill = |out: &super::Out| {
        for_each_gate_piece(shape, |o, ia, ib, n| {
            // SAFETY: each piece alone writes this range of the output.
            gelu_mul(&x[ia..][..n], &x[ib..][..n], unsafe { out.part(o, n) });
        });
    };
    // SAFETY: the pieces cover every plane of the output, and write all of each.
    unsafe { write_all(x.len() / 2, fill) }
}

/// The backward pass of [`gelu_mul_imp`] for `i < dy.len()`: `da = dy·b·GELU'(a)` and
/// `db = dy·GELU(a)`, with `GELU'(a) = Φ(a) + a·φ(a)`.
#[inline(always)]
fn gelu_mul_grad_imp(a: &[f32], b: &[f32], dy: &[f32], da: &mut [f32], db: &mut [f32]) {
    let n = dy.len();
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    for ((((da, db), &x), &y), &g) in da.iter_mut().zip(db.iter_mut()).zip(&a[..n]).zip(&b[..n]).zip(dy) {
        let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
        let pdf = INV_SQRT_2PI * exp_f32(-0.5 * x * x);
        *da = g * y * (cdf + x * pdf);
        *db = g * x * cdf;
    }
}

dispatch! {
    /// [`gelu_mul_grad_imp`] with the widest vectors the CPU has.
    fn gelu_mul_grad(a: &[f32], b: &[f32], dy: &[f32], da: &mut [f32], db: &mut [f32]) = gelu_mul_grad_imp;
}

/// The input gradient of [`gelu_gate`] (`[B, 2C, H, W]`) for the output gradient `dy`
/// (`[B, C, H, W]`): the gate's half first, the gated half second, as `x` is laid out.
pub(crate) fn gelu_gate_backward(x: &[f32], shape: [usize; 4], dy: &[f32]) -> Vec<f32> {
    let [b, c2, h, w] = shape;
    assert!(c2 % 2 == 0 && x.len() == b * c2 * h * w && dy.len() * 2 == x.len());
    let fill = |out: &super::Out| {
        for_each_gate_piece(shape, |o, ia, ib, n| {
            // SAFETY: each piece alone writes these ranges of both halves of the output.
            let (da, db) = unsafe { (out.part(ia, n), out.part(ib, n)) };
            gelu_mul_grad(&x[ia..][..n], &x[ib..][..n], &dy[o..][..n], da, db);
        });
    };
    // SAFETY: the pieces cover every plane of both halves, and write all of each.
    unsafe { write_all(x.len(), fill) }
}

/// The most input channels per group of the 3×3 conv [`gated_ffn`] runs.
pub(crate) const MAX_GROUP: usize = 4;

/// What [`gated_ffn`] does between `project_in` and `project_out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Middle {
    /// Restormer: depthwise 3×3 over `2F` channels, then `GELU(d₁) ⊙ d₂` down to `F`.
    Gate,
    /// MobileNetV2's bottleneck: ReLU6, depthwise 3×3 over `F` channels, ReLU6.
    Relu6,
    /// Nothing, and no `project_out` either: the depthwise conv's `F` channels are the output
    /// (Restormer's MDTA: `qkv` 1×1, then `qkv_dwconv`).
    Plain,
}

impl Middle {
    /// Channels of `project_in`'s output (and of the depthwise conv) for `F` gated ones.
    pub(crate) fn expanded(self, f: usize) -> usize {
        match self {
            Middle::Gate => 2 * f,
            Middle::Relu6 | Middle::Plain => f,
        }
    }
}

/// The weights of a block of 1×1 convs around a depthwise 3×3 conv: `project_in` `[E, C]`,
/// `dwconv` `[E, 1, 3, 3]`, `project_out` `[C_out, F]`, each with an optional bias, where
/// `E = 2F` for Restormer's gated FFN and `E = F` for the ReLU6 bottleneck (see [`Middle`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct GatedFfnWeights<'a> {
    pub w_in: &'a [f32],
    pub b_in: Option<&'a [f32]>,
    pub w_dw: &'a [f32],
    pub b_dw: Option<&'a [f32]>,
    pub w_out: &'a [f32],
    pub b_out: Option<&'a [f32]>,
    /// `F`, `project_out`'s input channels (with [`Middle::Plain`], the output channels).
    pub hidden: usize,
    pub cout: usize,
    /// Reflection padding of the depthwise conv instead of zeros.
    pub reflect: bool,
    pub middle: Middle,
    /// Input (and output) channels per group of the 3×3 conv: 1 for a depthwise conv (Restormer's
    /// `FeedForward`), 2 for the CDDFuse/EMMA `Mlp` (`groups = hidden` over `2·hidden`).
    pub dw_group: usize,
    /// A layer norm over the input's channels applied first (Restormer's `norm2`): its weight
    /// and, for `WithBias`, its bias (see [`super::layer_norm`]).
    pub norm: Option<(&'a [f32], Option<&'a [f32]>)>,
}

/// `residual + project_out(GELU(d₁) ⊙ d₂)` with `[d₁; d₂] = dwconv(project_in(y))` (or, with
/// [`Middle::Relu6`], `residual + project_out(ReLU6(dwconv(ReLU6(project_in(y)))))`; with
/// [`Middle::Plain`], `dwconv(project_in(y))`, `w_out` empty), one output row at a time: the
/// expanded intermediates only ever exist as a ring of three rows (plus the gate's row), which stay
/// in cache, instead of as full-resolution tensors.
///
/// With `wts.norm` the input rows are layer-normalised as they are read (the same arithmetic as
/// [`super::layer_norm`], so the results equal normalising first).
///
/// `y` is `[B, C, H, W]`; the depthwise conv pads `pad_rows = [top, bottom]` rows (1 each for
/// a whole image, 0 on a side where `y` carries a neighbouring band's halo row) and one column
/// on each side. `residual`, if any, is `[B, C_out, OH, W]` with `OH = H + top + bottom − 2`.
pub(crate) fn gated_ffn(
    y: &[f32],
    shape: [usize; 4],
    wts: &GatedFfnWeights<'_>,
    pad_rows: [usize; 2],
    residual: Option<&[f32]>,
) -> Vec<f32> {
    let [b, c, h, w] = shape;
    let (f, cout) = (wts.hidden, wts.cout);
    let f2 = wts.middle.expanded(f);
    let [pt, pb] = pad_rows;
    assert!(pt <= 1 && pb <= 1 && h + pt + pb >= 3 && w >= 2, "unsupported gated FFN geometry");
    let oh = h + pt + pb - 2;
    assert_eq!(y.len(), b * c * h * w);
    assert!(residual.is_none_or(|r| r.len() == b * cout * oh * w));
    let plain = wts.middle == Middle::Plain;
    assert!(!plain || (cout == f && residual.is_none() && wts.w_out.is_empty() && wts.b_out.is_none()));
    let g = wts.dw_group;
    assert!((1..=MAX_GROUP).contains(&g) && f2.is_multiple_of(g), "unsupported grouping of the 3×3 conv");
    assert!(wts.w_in.len() == f2 * c && wts.w_dw.len() == f2 * g * 9 && (plain || wts.w_out.len() == cout * f));
    assert!(wts.norm.is_none_or(|(nw, nb)| nw.len() == c && nb.is_none_or(|nb| nb.len() == c)));
    let isa = isa();
    let (cb_in, cb_out) = (block_channels(isa, f2), block_channels(isa, cout));
    let wp_in = pack_weights(wts.w_in, f2, c, cb_in);
    let wp_out = if plain { Vec::new() } else { pack_weights(wts.w_out, cout, f, cb_out) };
    // Row buffers read by the register blocks: whole vectors past the row end.
    let wr = w.div_ceil(BLOCK_WIDTHS) * BLOCK_WIDTHS;
    // Ring rows: one padding column on each side, then room for whole vectors.
    let lr = wr + 2 + LANES;
    let hw = h * w;
    let threads = rayon::current_num_threads().max(1);
    // At least two tasks per thread; each task computes two halo rows of project_in more.
    let rows_per_task = oh.div_ceil(4 * threads).max(4);
    let tasks_per_image = oh.div_ceil(rows_per_task);
    let off_in: Vec<usize> = (0..c).map(|ci| ci * wr).collect();
    let off_out: Vec<usize> = (0..f).map(|i| i * wr).collect();
    let run = |out: &super::Out| {
        (0..b * tasks_per_image).into_par_iter().for_each_init(
            || {
                let normed = if wts.norm.is_some() { c * LN_PIXELS } else { 0 };
                let bufs = [c * wr, 3 * f2 * lr, if plain { 0 } else { f * wr }, 2 * wr, normed];
                bufs.map(|n| vec![0.0f32; n])
            },
            |[inrow, ring, gated, dwrow, normed], task| {
                let (bi, k) = (task / tasks_per_image, task % tasks_per_image);
                let o0 = k * rows_per_task;
                let o1 = (o0 + rows_per_task).min(oh);
                let img = &y[bi * c * hw..][..c * hw];
                // Padded row r (output row o reads padded rows o, o+1, o+2) → its ring slot.
                let fill = |r: usize, ring: &mut [f32], inrow: &mut [f32], normed: &mut [f32]| {
                    let slot = &mut ring[(r % 3) * f2 * lr..][..f2 * lr];
                    let src = r as isize - pt as isize;
                    let src = if src >= 0 && (src as usize) < h {
                        Some(src as usize)
                    } else if wts.reflect {
                        Some(if src < 0 { (-src) as usize } else { 2 * (h - 1) - src as usize })
                    } else {
                        None
                    };
                    let Some(sy) = src else {
                        slot.fill(0.0);
                        return;
                    };
                    match wts.norm {
                        None => {
                            for ci in 0..c {
                                inrow[ci * wr..][..w].copy_from_slice(&img[ci * hw + sy * w..][..w]);
                            }
                        }
                        Some((nw, nb)) => {
                            for x0 in (0..w).step_by(LN_PIXELS) {
                                let n = LN_PIXELS.min(w - x0);
                                let piece = &mut normed[..c * n];
                                layer_norm_piece(img, hw, c, nw, nb, piece, sy * w + x0);
                                for ci in 0..c {
                                    inrow[ci * wr + x0..][..n].copy_from_slice(&piece[ci * n..][..n]);
                                }
                            }
                        }
                    }
                    for blk in 0..f2 / cb_in {
                        let co0 = blk * cb_in;
                        let sp = slot.as_mut_ptr();
                        // SAFETY: ring row co0 + c of this slot holds `lr` ≥ 1 + w values.
                        let dst: [*mut f32; CB] =
                            std::array::from_fn(|cc| unsafe { sp.add((co0 + cc.min(cb_in - 1)) * lr + 1) });
                        let init: [f32; CB] =
                            std::array::from_fn(|cc| wts.b_in.map_or(0.0, |bs| bs[co0 + cc.min(cb_in - 1)]));
                        let wblk = &wp_in[blk * c * cb_in..][..c * cb_in];
                        // SAFETY: `inrow` rows hold `wr` values (whole vectors past `w`).
                        unsafe { conv_row(isa, cb_in, inrow, &off_in, wblk, &dst, w, true, &init) };
                    }
                    for ch in 0..f2 {
                        let row = &mut slot[ch * lr..][..w + 2];
                        if wts.middle == Middle::Relu6 {
                            Act::Relu6.apply(&mut row[1..w + 1]);
                        }
                        let (l, r) = if wts.reflect { (row[2], row[w - 1]) } else { (0.0, 0.0) };
                        row[0] = l;
                        row[w + 1] = r;
                    }
                };
                fill(o0, ring, inrow, normed);
                fill(o0 + 1, ring, inrow, normed);
                for o in o0..o1 {
                    fill(o + 2, ring, inrow, normed);
                    // The 3×3 conv of channels i and F+i, then the gate, into `gated` (ReLU6: of
                    // channel i, then ReLU6; Plain: of channel i, straight into the output).
                    // The three ring rows of each input channel of `ch`'s group.
                    let ring_rows = |ch: usize| -> [[&[f32]; 3]; MAX_GROUP] {
                        std::array::from_fn(|k| {
                            let src = ch / g * g + k.min(g - 1);
                            std::array::from_fn(|ky| &ring[((o + ky) % 3) * f2 * lr + src * lr..][..w + 2])
                        })
                    };
                    let dw_bias = |ch: usize| wts.b_dw.map_or(0.0, |bs| bs[ch]);
                    for i in 0..f {
                        match wts.middle {
                            Middle::Plain => {
                                // SAFETY: task k alone writes rows o0..o1 of image bi.
                                let d = unsafe { out.part(((bi * cout + i) * oh + o) * w, w) };
                                dw3_row(d, &ring_rows(i)[..g], &wts.w_dw[i * g * 9..][..g * 9], dw_bias(i));
                            }
                            Middle::Relu6 => {
                                let d = &mut gated[i * wr..][..w];
                                dw3_row(d, &ring_rows(i)[..g], &wts.w_dw[i * g * 9..][..g * 9], dw_bias(i));
                                Act::Relu6.apply(d);
                            }
                            Middle::Gate => {
                                for (half, ch) in [i, f + i].into_iter().enumerate() {
                                    let d = &mut dwrow[half * wr..][..w];
                                    dw3_row(d, &ring_rows(ch)[..g], &wts.w_dw[ch * g * 9..][..g * 9], dw_bias(ch));
                                }
                                let (a, g) = dwrow.split_at(wr);
                                gelu_mul(&a[..w], g, &mut gated[i * wr..][..w]);
                            }
                        }
                    }
                    // project_out + residual into output row o.
                    for blk in (0..cout / cb_out).filter(|_| !plain) {
                        let co0 = blk * cb_out;
                        let dst: [*mut f32; CB] = std::array::from_fn(|cc| {
                            // SAFETY: task k alone writes rows o0..o1 of image bi.
                            unsafe { out.at(((bi * cout + co0 + cc.min(cb_out - 1)) * oh + o) * w, w) }
                        });
                        for cc in 0..cb_out {
                            let at = ((bi * cout + co0 + cc) * oh + o) * w;
                            let bo = wts.b_out.map_or(0.0, |bs| bs[co0 + cc]);
                            // SAFETY: as above.
                            let d = unsafe { out.part(at, w) };
                            match residual {
                                Some(res) => {
                                    for (d, &r) in d.iter_mut().zip(&res[at..][..w]) {
                                        *d = r + bo;
                                    }
                                }
                                None => d.fill(bo),
                            }
                        }
                        let wblk = &wp_out[blk * f * cb_out..][..f * cb_out];
                        let mut t0 = 0;
                        while t0 < f {
                            let t1 = (t0 + CI_TILE).min(f);
                            // SAFETY: `gated` rows hold `wr` values; `dst` rows `w`.
                            unsafe {
                                conv_row(
                                    isa,
                                    cb_out,
                                    gated,
                                    &off_out[t0..t1],
                                    &wblk[t0 * cb_out..t1 * cb_out],
                                    &dst,
                                    w,
                                    false,
                                    &[0.0; CB],
                                )
                            };
                            t0 = t1;
                        }
                    }
                }
            },
        );
    };
    // SAFETY: the tasks cover every image and output row, and write every channel (each block's
    // rows start from residual + bias, or the bias).
    unsafe { write_all(b * cout * oh * w, run) }
}

/// One output row of a grouped 3×3 conv: `d[x] = b + Σ_k Σ w[k][ky][kx] · rows[k][ky][x + kx]`
/// over the group's input channels `k` (one for a depthwise conv), the products of a channel added
/// in tap order in one register per pixel (one pass over `d` per input channel).
#[inline(always)]
fn dw3_row_imp(d: &mut [f32], rows: &[[&[f32]; 3]], wk: &[f32], b0: f32) {
    let n = d.len();
    for (k, rows) in rows.iter().enumerate() {
        let wk: &[f32; 9] = wk[k * 9..][..9].try_into().expect("nine taps");
        // The nine shifted inputs, each exactly `n` long, so that the loop has no bounds checks.
        let tap: [&[f32]; 9] = std::array::from_fn(|t| &rows[t / 3][t % 3..t % 3 + n]);
        for (x, o) in d.iter_mut().enumerate() {
            let mut s = if k == 0 { b0 } else { *o };
            for t in 0..9 {
                s = wk[t].mul_add(tap[t][x], s);
            }
            *o = s;
        }
    }
}

dispatch! {
    /// [`dw3_row_imp`] with the widest vectors the CPU has.
    fn dw3_row(d: &mut [f32], rows: &[[&[f32]; 3]], wk: &[f32], b0: f32) = dw3_row_imp;
}
