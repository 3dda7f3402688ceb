//! Hand-written CPU kernels for inference on burn's `flex` backend.
//!
//! They work on the host buffers of plain (non-autodiff) `flex` tensors, without copies
//! ([`host`] / [`from_host`]); callers fall back to the composition of burn ops, which is also
//! the differentiable path training uses, whenever [`host`] returns `None`.
//!
//! * [`conv2d`]: a direct 3×3-style convolution (any kernel, stride, groups) with zero or
//!   reflection padding built in, parallel over output rows, register-blocked over 4 output
//!   channels × 24 pixels with AVX2/FMA when the CPU has them. burn-flex runs dense convs with
//!   few channels through a single-threaded NHWC copy, im2col and many small GEMMs.
//! * [`gelu_gate`]: `GELU(x₁)·x₂` over the two channel halves of a tensor in one pass, with a
//!   rational erf (≤ 1e-7 absolute error).
//! * [`layer_norm`]: the per-pixel layer norm over channels in one kernel.

use burn::tensor::{Bytes, DType, Shape, Tensor};
use burn_flex::{Flex, FlexTensor, Layout};
use rayon::prelude::*;

/// The tensor's `flex` primitive, contiguous, if it is a non-autodiff `f32` flex tensor.
pub fn host<const D: usize>(x: &Tensor<D>) -> Option<FlexTensor> {
    if x.is_autodiff() {
        return None;
    }
    let t = x.clone().try_into_primitive::<Flex>().ok()?;
    if t.dtype() != DType::F32 {
        return None;
    }
    Some(if t.is_contiguous() { t } else { t.to_contiguous() })
}

/// Whether [`host`] would accept `x` (without making it contiguous).
pub fn on_host<const D: usize>(x: &Tensor<D>) -> bool {
    !x.is_autodiff() && x.clone().try_into_primitive::<Flex>().is_ok_and(|t| t.dtype() == DType::F32)
}

/// The values of a contiguous `f32` primitive from [`host`].
pub fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 tensor")
}

/// A flex tensor owning `data` (row-major, `shape`), without a copy.
pub fn from_host<const D: usize>(data: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    assert_eq!(data.len(), shape.iter().product::<usize>(), "data length and shape disagree");
    let t = FlexTensor::new(Bytes::from_elems(data), Layout::contiguous(Shape::from(shape.to_vec())), DType::F32);
    Tensor::from_primitive::<Flex>(t)
}

/// A raw pointer that may be shared between rayon tasks writing disjoint parts of a buffer.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: the pointer is only used to write disjoint ranges from different tasks (see users).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so that closures capture the `SendPtr`, not its field).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Vector instruction sets the convolution kernel is compiled for (chosen at run time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Scalar,
    /// AVX2 + FMA: 16 vector registers.
    Avx2,
    /// AVX-512F/VL on 256-bit vectors: 32 vector registers, so twice the channels per block.
    Avx512,
}

fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() && std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl") {
            return Isa::Avx512;
        }
        if has_avx2_fma() {
            return Isa::Avx2;
        }
    }
    Isa::Scalar
}

fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

// ------------------------------------------------------------------------------------------
// Convolution
// ------------------------------------------------------------------------------------------

/// Geometry of a [`conv2d`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    /// Input `[B, C_in, H, W]`.
    pub input: [usize; 4],
    /// Weight `[C_out, C_in / groups, KH, KW]`.
    pub weight: [usize; 4],
    pub stride: usize,
    /// Padding of the left and right columns.
    pub padding: usize,
    /// Padding of the top and bottom rows (`[padding; 2]` for PyTorch's symmetric padding;
    /// a band of rows with its neighbours' halo rows pads only at the image border).
    pub pad_rows: [usize; 2],
    pub groups: usize,
    /// Reflection padding (`padding_mode='reflect'`) instead of zeros.
    pub reflect: bool,
}

impl ConvGeom {
    /// A conv with the same padding on all four sides.
    pub fn new(
        input: [usize; 4],
        weight: [usize; 4],
        stride: usize,
        padding: usize,
        groups: usize,
        reflect: bool,
    ) -> Self {
        Self { input, weight, stride, padding, pad_rows: [padding; 2], groups, reflect }
    }

    /// `[B, C_out, OH, OW]`.
    pub fn output(&self) -> [usize; 4] {
        let [b, _, h, w] = self.input;
        let [cout, _, kh, kw] = self.weight;
        let oh = (h + self.pad_rows[0] + self.pad_rows[1] - kh) / self.stride + 1;
        let ow = (w + 2 * self.padding - kw) / self.stride + 1;
        [b, cout, oh, ow]
    }

    /// Whether [`conv2d`] handles this geometry.
    pub fn supported(&self) -> bool {
        let [_, cin, h, w] = self.input;
        let [cout, cpg, kh, kw] = self.weight;
        let g = self.groups;
        g > 0
            && cin == cpg * g
            && cout % g == 0
            && self.stride > 0
            && kh > 0
            && kw > 0
            && h + self.pad_rows[0] + self.pad_rows[1] >= kh
            && w + 2 * self.padding >= kw
            && (!self.reflect || (self.padding < w && self.pad_rows.iter().all(|&p| p < h)))
    }
}

/// Pixels per vector.
const LANES: usize = 8;
/// Most output channels per register block.
const CB: usize = 8;
/// Most vectors of pixels per register block (row buffers are padded for this many).
const NX: usize = 4;
/// A multiple of every register block's width in pixels (3 or 4 vectors of [`LANES`]): row
/// buffers read by [`conv_row`] hold at least the row rounded up to it.
const BLOCK_WIDTHS: usize = 96;
/// Input channels per pass (keeps a pass's input rows and weights in L2).
const CI_TILE: usize = 32;

/// `conv2d` with PyTorch semantics on host data: `x` is `[B, C_in, H, W]`, `weight`
/// `[C_out, C_in/groups, KH, KW]`, all row-major. Returns `[B, C_out, OH, OW]`.
pub fn conv2d(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: &ConvGeom) -> Vec<f32> {
    assert!(g.supported(), "unsupported conv geometry {g:?}");
    let [b, cin, h, w] = g.input;
    let [cout, cpg, kh, kw] = g.weight;
    let [_, _, oh, ow] = g.output();
    assert_eq!(x.len(), b * cin * h * w);
    assert_eq!(weight.len(), cout * cpg * kh * kw);
    if let Some(bias) = bias {
        assert_eq!(bias.len(), cout);
    }
    let (s, p) = (g.stride, g.padding);
    let cout_pg = cout / g.groups;
    let isa = isa();
    let cb = block_channels(isa, cout_pg);
    let blocks = cout / cb;
    let taps = cpg * kh * kw;
    let wp = pack_weights(weight, cout, taps, cb);
    // Phased, padded input rows of one output row: row `(ci, ky, phase)` holds
    // `padded[oy*s + ky][j*s + phase]` for `j < lp`, zero beyond the padded width.
    // The register blocks read whole chunks of 24 or 32 pixels past `ow`.
    let lp = ow.div_ceil(BLOCK_WIDTHS) * BLOCK_WIDTHS + (kw - 1) / s + 1;
    let row_len = kh * s * lp;
    let wp_ = w + 2 * p;
    // Tap offsets of one group's channel 0, in the rows buffer of a task.
    let tap_off: Vec<usize> = (0..cpg)
        .flat_map(|ci| (0..kh).flat_map(move |ky| (0..kw).map(move |kx| ((ci * kh + ky) * s + kx % s) * lp + kx / s)))
        .collect();
    // Not zero-filled: the first input-channel tile writes every value (through `out_ptr`).
    let n_out = b * cout * oh * ow;
    let mut out: Vec<f32> = Vec::with_capacity(n_out);
    let out_ptr = SendPtr(out.as_mut_ptr());
    (0..b * oh).into_par_iter().for_each_init(
        || vec![0.0f32; cin * row_len],
        |rows, task| {
            let (bi, oy) = (task / oh, task % oh);
            // Build the rows.
            for ci in 0..cin {
                let plane = &x[(bi * cin + ci) * h * w..][..h * w];
                for ky in 0..kh {
                    let r = (oy * s + ky) as isize - g.pad_rows[0] as isize;
                    let src = if r >= 0 && (r as usize) < h {
                        Some(r as usize)
                    } else if g.reflect {
                        Some(if r < 0 { (-r) as usize } else { 2 * (h - 1) - r as usize })
                    } else {
                        None
                    };
                    for ph in 0..s {
                        let dst = &mut rows[((ci * kh + ky) * s + ph) * lp..][..lp];
                        let Some(src) = src else {
                            dst.fill(0.0);
                            continue;
                        };
                        let line = &plane[src * w..][..w];
                        if s == 1 {
                            // Interior as one copy, then the borders.
                            dst[p..p + w].copy_from_slice(line);
                            dst[p + w..].fill(0.0);
                            for q in 1..=p {
                                let (l, r) = if g.reflect { (line[q], line[w - 1 - q]) } else { (0.0, 0.0) };
                                dst[p - q] = l;
                                dst[p + w - 1 + q] = r;
                            }
                            continue;
                        }
                        for (j, d) in dst.iter_mut().enumerate() {
                            let c = j * s + ph;
                            *d = if c >= wp_ {
                                0.0
                            } else if c >= p && c - p < w {
                                line[c - p]
                            } else if g.reflect {
                                let q = c as isize - p as isize;
                                line[if q < 0 { (-q) as usize } else { 2 * (w - 1) - q as usize }]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
            // Input-channel tiles outermost, so that a tile's rows stay in cache for every block.
            let mut t0 = 0;
            while t0 < taps {
                let t1 = (t0 + CI_TILE * kh * kw).min(taps);
                for blk in 0..blocks {
                    let co0 = blk * cb;
                    let grp = co0 / cout_pg;
                    let rbase = &rows[grp * cpg * row_len..];
                    let wblk = &wp[blk * taps * cb..][..taps * cb];
                    // SAFETY: task (bi, oy) alone writes row oy of image bi, of every channel.
                    let dst: [*mut f32; CB] = std::array::from_fn(|c| {
                        let c = c.min(cb - 1);
                        unsafe { out_ptr.get().add(((bi * cout + co0 + c) * oh + oy) * ow) }
                    });
                    let init: [f32; CB] = std::array::from_fn(|c| bias.map_or(0.0, |bs| bs[co0 + c.min(cb - 1)]));
                    // SAFETY: `dst` rows hold `ow` values; the row reads stay within `lp`
                    // (see its definition) and `tap_off` < `cpg * row_len`.
                    unsafe {
                        conv_row(isa, cb, rbase, &tap_off[t0..t1], &wblk[t0 * cb..t1 * cb], &dst, ow, t0 == 0, &init);
                    }
                }
                t0 = t1;
            }
        },
    );
    // SAFETY: every task wrote its rows of every channel (the first tile covers all blocks and
    // pixels), and the tasks cover all `(image, row)` pairs.
    unsafe { out.set_len(n_out) };
    out
}

/// Output channels per register block (a divisor of `cout_pg`, the channels of one group);
/// the pixel vectors per block follow from the register budget (see [`conv_row`]).
fn block_channels(isa: Isa, cout_pg: usize) -> usize {
    let widest = if isa == Isa::Avx512 { 8 } else { 4 };
    [8, 4, 2, 1].into_iter().find(|&c| c <= widest && cout_pg.is_multiple_of(c)).unwrap_or(1)
}

/// Weights `[C_out, taps]` packed block-major, then tap, then the `cb` channels of the block.
fn pack_weights(weight: &[f32], cout: usize, taps: usize, cb: usize) -> Vec<f32> {
    let mut wp = vec![0.0f32; cout * taps];
    for blk in 0..cout / cb {
        for t in 0..taps {
            for c in 0..cb {
                wp[(blk * taps + t) * cb + c] = weight[(blk * cb + c) * taps + t];
            }
        }
    }
    wp
}

/// Pixels per task of [`pointwise_conv2d`]: a multiple of [`BLOCK_WIDTHS`], so that the
/// register blocks never read past a piece.
const PW_PIXELS: usize = 4 * BLOCK_WIDTHS;

/// A 1×1 convolution (`weight` `[C_out, C_in]`, stride 1, no padding, one group) of `x`
/// (`[B, C_in, H, W]`): the register blocks of [`conv2d`] over pieces of `PW_PIXELS` (384)
/// pixels, without padded rows.
pub fn pointwise_conv2d(x: &[f32], weight: &[f32], bias: Option<&[f32]>, shape: [usize; 4], cout: usize) -> Vec<f32> {
    let [b, cin, h, w] = shape;
    pointwise_conv2d_ext(&[(x, cin)], weight, bias, [b, h, w], cout, Pointwise::default())
}

/// [`pointwise_conv2d`] plus `residual` (`[B, C_out, H, W]`), in the same pass.
pub fn pointwise_conv2d_add(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    shape: [usize; 4],
    cout: usize,
    residual: Option<&[f32]>,
) -> Vec<f32> {
    let [b, cin, h, w] = shape;
    pointwise_conv2d_ext(&[(x, cin)], weight, bias, [b, h, w], cout, Pointwise { residual, act: Act::None })
}

/// What [`pointwise_conv2d_ext`] does to the conv's output before writing it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pointwise<'a> {
    /// Added to the output (`[B, C_out, H, W]`).
    pub residual: Option<&'a [f32]>,
    /// The activation, applied last.
    pub act: Act,
}

/// A 1×1 convolution of the channel concatenation of `inputs` (each `(values, channels)`, of
/// shape `[B, channels, H, W]`, with `hw = [B, H, W]`) without forming the concatenation,
/// then `post` (residual, PReLU) on the output while it is in cache.
pub fn pointwise_conv2d_ext(
    inputs: &[(&[f32], usize)],
    weight: &[f32],
    bias: Option<&[f32]>,
    shape: [usize; 3],
    cout: usize,
    post: Pointwise<'_>,
) -> Vec<f32> {
    let [b, h, w] = shape;
    let hw = h * w;
    let cin: usize = inputs.iter().map(|&(_, c)| c).sum();
    for &(x, c) in inputs {
        assert_eq!(x.len(), b * c * hw);
    }
    assert_eq!(weight.len(), cout * cin);
    assert!(bias.is_none_or(|bs| bs.len() == cout));
    let residual = post.residual;
    assert!(residual.is_none_or(|r| r.len() == b * cout * hw));
    let isa = isa();
    let cb = block_channels(isa, cout);
    let wp = pack_weights(weight, cout, cin, cb);
    let pieces = hw.div_ceil(PW_PIXELS);
    let n_out = b * cout * hw;
    let mut out: Vec<f32> = Vec::with_capacity(n_out);
    let out_ptr = SendPtr(out.as_mut_ptr());
    (0..b * pieces).into_par_iter().for_each_init(
        || (Vec::<f32>::new(), (0..cin).map(|ci| ci * PW_PIXELS).collect::<Vec<usize>>()),
        |(scratch, off), task| {
            let (bi, k) = (task / pieces, task % pieces);
            let p0 = k * PW_PIXELS;
            let n = PW_PIXELS.min(hw - p0);
            // The piece's channels gathered into contiguous scratch (padded to a whole piece:
            // the register blocks read whole vectors). Reading the planes in place is slower:
            // plane strides are often multiples of 4 KiB, so the channels' rows compete for
            // the same L1 sets.
            scratch.resize(cin * PW_PIXELS, 0.0);
            let mut ci = 0;
            for &(x, c) in inputs {
                let image = &x[bi * c * hw..][..c * hw];
                for cj in 0..c {
                    scratch[ci * PW_PIXELS..][..n].copy_from_slice(&image[cj * hw + p0..][..n]);
                    ci += 1;
                }
            }
            let rows: &[f32] = scratch;
            let mut t0 = 0;
            while t0 < cin {
                let t1 = (t0 + CI_TILE).min(cin);
                for blk in 0..cout / cb {
                    let co0 = blk * cb;
                    let wblk = &wp[blk * cin * cb..][..cin * cb];
                    // SAFETY: task (bi, k) alone writes pixels p0..p0+n of image bi's planes.
                    let dst: [*mut f32; CB] = std::array::from_fn(|c| unsafe {
                        out_ptr.get().add((bi * cout + co0 + c.min(cb - 1)) * hw + p0)
                    });
                    let init: [f32; CB] = std::array::from_fn(|c| bias.map_or(0.0, |bs| bs[co0 + c.min(cb - 1)]));
                    let mut first = t0 == 0;
                    if let (true, Some(res)) = (first, residual) {
                        // Start the sums from residual + bias.
                        for (c, &d) in dst.iter().enumerate().take(cb) {
                            let r = &res[(bi * cout + co0 + c) * hw + p0..][..n];
                            // SAFETY: this task's pixels of channel co0 + c (see `dst`).
                            let o = unsafe { std::slice::from_raw_parts_mut(d, n) };
                            for (o, &r) in o.iter_mut().zip(r) {
                                *o = r + init[c];
                            }
                        }
                        first = false;
                    }
                    // SAFETY: `dst` rows hold `n` values; reads stay within `rows[off + PW_PIXELS]`
                    // (the padded copy).
                    unsafe { conv_row(isa, cb, rows, &off[t0..t1], &wblk[t0 * cb..t1 * cb], &dst, n, first, &init) };
                    if t1 == cin && post.act != Act::None {
                        for &d in dst.iter().take(cb) {
                            // SAFETY: as above; the block's rows are complete.
                            let o = unsafe { std::slice::from_raw_parts_mut(d, n) };
                            post.act.apply(o);
                        }
                    }
                }
                t0 = t1;
            }
        },
    );
    // SAFETY: the tasks cover every image and piece, and write every channel.
    unsafe { out.set_len(n_out) };
    out
}

/// An element-wise activation the kernels apply to their output while it is in cache.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Act {
    #[default]
    None,
    /// `max(x, 0) + a·min(x, 0)` with one slope `a` (`nn.PReLU()`).
    PRelu(f32),
    /// `min(max(x, 0), 6)` (`nn.ReLU6`).
    Relu6,
}

impl Act {
    /// Applies the activation to `x` in place.
    pub fn apply(self, x: &mut [f32]) {
        match self {
            Act::None => {}
            Act::PRelu(a) => {
                for v in x.iter_mut() {
                    *v = if *v < 0.0 { a * *v } else { *v };
                }
            }
            Act::Relu6 => {
                for v in x.iter_mut() {
                    // NaN stays NaN, as in `torch.clamp`.
                    *v = v.clamp(0.0, 6.0);
                }
            }
        }
    }

    /// Applies the activation to all of `x` in place, in parallel.
    pub fn apply_all(self, x: &mut [f32]) {
        if self != Act::None {
            x.par_chunks_mut(1 << 14).for_each(|c| self.apply(c));
        }
    }
}

/// `PReLU` with one slope `a` over all of `x`.
pub fn prelu(x: &[f32], a: f32) -> Vec<f32> {
    let mut out = x.to_vec();
    Act::PRelu(a).apply_all(&mut out);
    out
}

/// `a · exp(b) + c`, element by element (the affine coupling of CDDFuse's invertible blocks).
pub fn mul_exp_add(a: &[f32], b: &[f32], c: &[f32]) -> Vec<f32> {
    assert!(a.len() == b.len() && a.len() == c.len());
    let mut out = vec![0.0f32; a.len()];
    const PIECE: usize = 1 << 14;
    let avx = has_avx2_fma();
    out.par_chunks_mut(PIECE).enumerate().for_each(|(k, o)| {
        let r = k * PIECE..k * PIECE + o.len();
        #[cfg(target_arch = "x86_64")]
        if avx {
            // SAFETY: the CPU has AVX2 and FMA.
            unsafe { mul_exp_add_avx(&a[r.clone()], &b[r.clone()], &c[r], o) };
            return;
        }
        mul_exp_add_piece(&a[r.clone()], &b[r.clone()], &c[r], o);
    });
    let _ = avx;
    out
}

#[inline(always)]
fn mul_exp_add_piece(a: &[f32], b: &[f32], c: &[f32], o: &mut [f32]) {
    for (((o, &a), &b), &c) in o.iter_mut().zip(a).zip(b).zip(c) {
        *o = a.mul_add(exp_f32(b), c);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn mul_exp_add_avx(a: &[f32], b: &[f32], c: &[f32], o: &mut [f32]) {
    mul_exp_add_piece(a, b, c, o)
}

/// One output row of `cb` channels: `dst[c][x] (+)= Σ_t w[t][c] · rows[off[t] + x]`.
///
/// # Safety
/// Every `dst[c]` (`c < cb`) must be valid for `ow` writes, and `rows[off[t] + x]` in bounds
/// for `x < ow` rounded up to a multiple of [`BLOCK_WIDTHS`] (the block width, 24 or 32
/// pixels, divides it).
#[allow(clippy::too_many_arguments)]
unsafe fn conv_row(
    isa: Isa,
    cb: usize,
    rows: &[f32],
    off: &[usize],
    w: &[f32],
    dst: &[*mut f32; CB],
    ow: usize,
    first: bool,
    init: &[f32; CB],
) {
    // The vector loads read whole blocks past `ow`: every tap's row must hold them (a real
    // check, not a debug one: a short row buffer reads past its allocation).
    let span = ow.div_ceil(BLOCK_WIDTHS) * BLOCK_WIDTHS;
    assert!(
        off.iter().max().is_none_or(|&o| o + span <= rows.len()) && w.len() >= off.len() * cb,
        "conv_row: row buffer shorter than the register blocks read"
    );
    // Register blocks: accumulators C·N + N row vectors + 1 broadcast weight ≤ 16 (AVX2)
    // or 32 (AVX-512VL) registers.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        match (isa, cb) {
            (Isa::Avx512, 8) => return conv_row_avx512::<8, 3>(rows, off, w, dst, ow, first, init),
            (Isa::Avx512, 4) => return conv_row_avx512::<4, 4>(rows, off, w, dst, ow, first, init),
            (Isa::Avx512, 2) => return conv_row_avx512::<2, 4>(rows, off, w, dst, ow, first, init),
            (Isa::Avx512, _) => return conv_row_avx512::<1, 4>(rows, off, w, dst, ow, first, init),
            (Isa::Avx2, 4) => return conv_row_avx2::<4, 2>(rows, off, w, dst, ow, first, init),
            (Isa::Avx2, 2) => return conv_row_avx2::<2, 4>(rows, off, w, dst, ow, first, init),
            (Isa::Avx2, _) => return conv_row_avx2::<1, 4>(rows, off, w, dst, ow, first, init),
            (Isa::Scalar, _) => {}
        }
    }
    let _ = isa;
    let mut acc = vec![0.0f32; ow];
    for c in 0..cb {
        if first {
            acc.fill(init[c]);
        } else {
            // SAFETY: see the function's contract (written by the first tile).
            unsafe { std::ptr::copy_nonoverlapping(dst[c], acc.as_mut_ptr(), ow) };
        }
        for (t, &o) in off.iter().enumerate() {
            let wv = w[t * cb + c];
            for (a, &v) in acc.iter_mut().zip(&rows[o..o + ow]) {
                *a += wv * v;
            }
        }
        // SAFETY: see the function's contract.
        unsafe { std::ptr::copy_nonoverlapping(acc.as_ptr(), dst[c], ow) };
    }
}

/// `conv_row` for `C` channels and `N` vectors of 8 pixels per block, compiled with `$features`.
macro_rules! conv_row_simd {
    ($name:ident, $features:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<const C: usize, const N: usize>(
            rows: &[f32],
            off: &[usize],
            w: &[f32],
            dst: &[*mut f32; CB],
            ow: usize,
            first: bool,
            init: &[f32; CB],
        ) {
            use std::arch::x86_64::*;
            let chunk = LANES * N;
            let rp = rows.as_ptr();
            let wptr = w.as_ptr();
            let mut x0 = 0;
            // SAFETY: the caller guarantees the pointer ranges; the CPU has `$features`.
            unsafe {
                while x0 < ow {
                    let full = x0 + chunk <= ow;
                    let mut acc = [[_mm256_setzero_ps(); N]; C];
                    for c in 0..C {
                        for n in 0..N {
                            let start = x0 + n * LANES;
                            acc[c][n] = if first {
                                _mm256_set1_ps(init[c])
                            } else if full {
                                _mm256_loadu_ps(dst[c].add(start))
                            } else {
                                let mut tmp = [0.0f32; LANES];
                                let len = ow.saturating_sub(start).min(LANES);
                                std::ptr::copy_nonoverlapping(dst[c].add(start), tmp.as_mut_ptr(), len);
                                _mm256_loadu_ps(tmp.as_ptr())
                            };
                        }
                    }
                    for (t, &o) in off.iter().enumerate() {
                        let src = rp.add(o + x0);
                        let mut v = [_mm256_setzero_ps(); N];
                        for n in 0..N {
                            v[n] = _mm256_loadu_ps(src.add(n * LANES));
                        }
                        for c in 0..C {
                            let wv = _mm256_broadcast_ss(&*wptr.add(t * C + c));
                            for n in 0..N {
                                acc[c][n] = _mm256_fmadd_ps(wv, v[n], acc[c][n]);
                            }
                        }
                    }
                    for c in 0..C {
                        for n in 0..N {
                            let start = x0 + n * LANES;
                            if full {
                                _mm256_storeu_ps(dst[c].add(start), acc[c][n]);
                            } else {
                                let mut tmp = [0.0f32; LANES];
                                _mm256_storeu_ps(tmp.as_mut_ptr(), acc[c][n]);
                                let len = ow.saturating_sub(start).min(LANES);
                                std::ptr::copy_nonoverlapping(tmp.as_ptr(), dst[c].add(start), len);
                            }
                        }
                    }
                    x0 += chunk;
                }
            }
        }
    };
}

conv_row_simd!(conv_row_avx2, "avx2,fma");
conv_row_simd!(conv_row_avx512, "avx2,fma,avx512f,avx512vl");

// ------------------------------------------------------------------------------------------
// Depthwise convolution
// ------------------------------------------------------------------------------------------

/// Whether [`depthwise_conv2d`] handles `g` (depthwise, stride 1).
pub fn depthwise_supported(g: &ConvGeom) -> bool {
    let [_, cin, _, _] = g.input;
    let [cout, cpg, _, _] = g.weight;
    g.supported() && g.stride == 1 && cpg == 1 && cout == cin && g.groups == cin
}

/// A depthwise conv (`groups = C_in = C_out`, stride 1): each plane is copied once into a
/// padded buffer, then every output row is 8-pixel vectors × `KH·KW` taps. burn-flex's
/// depthwise kernel takes ~3× longer at 480×640.
pub fn depthwise_conv2d(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: &ConvGeom) -> Vec<f32> {
    assert!(depthwise_supported(g), "unsupported depthwise geometry {g:?}");
    let [b, c, h, w] = g.input;
    let [_, _, kh, kw] = g.weight;
    let [_, _, oh, ow] = g.output();
    assert_eq!(x.len(), b * c * h * w);
    assert_eq!(weight.len(), c * kh * kw);
    let p = g.padding;
    let chunk = LANES * NX;
    let lp = ow.div_ceil(chunk) * chunk + kw;
    let hp = h + g.pad_rows[0] + g.pad_rows[1];
    let isa = isa();
    // Not zero-filled: each task writes its whole plane through `out_ptr`.
    let n_out = b * c * oh * ow;
    let mut out: Vec<f32> = Vec::with_capacity(n_out);
    let out_ptr = SendPtr(out.as_mut_ptr());
    (0..b * c).into_par_iter().for_each_init(
        || (vec![0.0f32; hp * lp], vec![0.0f32; ow]),
        |(padded, row), plane| {
            // SAFETY: task `plane` alone writes output plane `plane`.
            let o = unsafe { out_ptr.get().add(plane * oh * ow) };
            let ci = plane % c;
            let src = &x[plane * h * w..][..h * w];
            for r in 0..hp {
                let y = r as isize - g.pad_rows[0] as isize;
                let dst = &mut padded[r * lp..][..lp];
                let sy = if y >= 0 && (y as usize) < h {
                    y as usize
                } else if g.reflect {
                    if y < 0 { (-y) as usize } else { 2 * (h - 1) - y as usize }
                } else {
                    dst.fill(0.0);
                    continue;
                };
                let line = &src[sy * w..][..w];
                dst[p..p + w].copy_from_slice(line);
                dst[p + w..].fill(0.0);
                for q in 1..=p {
                    let (l, r) = if g.reflect { (line[q], line[w - 1 - q]) } else { (0.0, 0.0) };
                    dst[p - q] = l;
                    dst[p + w - 1 + q] = r;
                }
            }
            let wk = &weight[ci * kh * kw..][..kh * kw];
            let b0 = bias.map_or(0.0, |bs| bs[ci]);
            #[cfg(target_arch = "x86_64")]
            if isa != Isa::Scalar {
                // SAFETY: the CPU has AVX2 and FMA; `padded` rows hold `lp` ≥ the widest read.
                unsafe { depthwise_plane_avx2(padded, lp, wk, kh, kw, b0, o, oh, ow) };
                return;
            }
            let _ = isa;
            for oy in 0..oh {
                row.fill(b0);
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = wk[ky * kw + kx];
                        for (d, &v) in row.iter_mut().zip(&padded[(oy + ky) * lp + kx..][..ow]) {
                            *d += wv * v;
                        }
                    }
                }
                // SAFETY: row `oy` of this task's plane.
                unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), o.add(oy * ow), ow) };
            }
        },
    );
    // SAFETY: the tasks wrote every row of every plane.
    unsafe { out.set_len(n_out) };
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn depthwise_plane_avx2(
    padded: &[f32],
    lp: usize,
    wk: &[f32],
    kh: usize,
    kw: usize,
    b0: f32,
    o: *mut f32,
    oh: usize,
    ow: usize,
) {
    use std::arch::x86_64::*;
    const N: usize = 4;
    let chunk = LANES * N;
    assert!(padded.len() >= (oh + kh - 1) * lp && lp >= ow.div_ceil(chunk) * chunk + kw - 1);
    let pp = padded.as_ptr();
    for oy in 0..oh {
        let mut x0 = 0;
        while x0 < ow {
            // SAFETY: reads end before `(oy + kh - 1) * lp + x0 + chunk + kw - 1` ≤ padded.len()
            // (asserted above); `o` holds `oh * ow` values (the caller's contract).
            unsafe {
                let mut acc = [_mm256_set1_ps(b0); N];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = _mm256_set1_ps(wk[ky * kw + kx]);
                        let src = pp.add((oy + ky) * lp + x0 + kx);
                        for (n, a) in acc.iter_mut().enumerate() {
                            *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(src.add(n * LANES)), *a);
                        }
                    }
                }
                let dst = o.add(oy * ow + x0);
                if x0 + chunk <= ow {
                    for (n, a) in acc.iter().enumerate() {
                        _mm256_storeu_ps(dst.add(n * LANES), *a);
                    }
                } else {
                    let mut tmp = [0.0f32; LANES * N];
                    for (n, a) in acc.iter().enumerate() {
                        _mm256_storeu_ps(tmp.as_mut_ptr().add(n * LANES), *a);
                    }
                    for (i, v) in tmp[..ow - x0].iter().enumerate() {
                        dst.add(i).write(*v);
                    }
                }
            }
            x0 += chunk;
        }
    }
}

// ------------------------------------------------------------------------------------------
// GELU gate
// ------------------------------------------------------------------------------------------

/// `erf(x)` in f32 as a rational function of `x` on [-4, 4] (Eigen's / XLA's float erf),
/// ±1 beyond: absolute error ≈ 1e-7.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2.mul_add(-2.726_142_3e-10, 2.770_681_4e-8);
    p = x2.mul_add(p, -2.101_024e-6);
    p = x2.mul_add(p, -5.692_506_4e-5);
    p = x2.mul_add(p, -7.349_906_3e-4);
    p = x2.mul_add(p, -2.954_6e-3);
    p = x2.mul_add(p, -1.609_603_3e-2);
    let mut q = x2.mul_add(-1.456_607_2e-5, -2.133_740_6e-4);
    q = x2.mul_add(q, -1.682_827e-3);
    q = x2.mul_add(q, -7.373_329e-3);
    q = x2.mul_add(q, -1.426_473_9e-2);
    x * p / q
}

/// `out[i] = GELU(a[i]) · b[i]`.
///
/// # Safety
/// `out` must be valid for `a.len()` writes; `b` at least as long as `a`.
#[inline(always)]
unsafe fn gelu_mul(a: &[f32], b: &[f32], out: *mut f32) {
    let b = &b[..a.len()];
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        // SAFETY: i < a.len() (the caller's contract).
        unsafe { out.add(i).write(0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2)) * y) };
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_mul_avx(a: &[f32], b: &[f32], out: *mut f32) {
    // SAFETY: the caller's contract.
    unsafe { gelu_mul(a, b, out) }
}

/// `GELU(x[:, :C]) · x[:, C:]` for `x` of shape `[B, 2C, H, W]` (erf GELU, as `F.gelu`).
pub fn gelu_gate(x: &[f32], shape: [usize; 4]) -> Vec<f32> {
    let [b, c2, h, w] = shape;
    assert!(c2 % 2 == 0 && x.len() == b * c2 * h * w);
    let (c, hw) = (c2 / 2, h * w);
    let avx = has_avx2_fma();
    // Not zero-filled: every value is written through `out_ptr`.
    let n_out = b * c * hw;
    let mut out: Vec<f32> = Vec::with_capacity(n_out);
    let out_ptr = SendPtr(out.as_mut_ptr());
    const PIECE: usize = 4096;
    let pieces = hw.div_ceil(PIECE);
    (0..b * c * pieces).into_par_iter().for_each(|task| {
        let (plane, k) = (task / pieces, task % pieces);
        let (bi, ci) = (plane / c, plane % c);
        let r = k * PIECE..((k + 1) * PIECE).min(hw);
        let a = &x[(bi * c2 + ci) * hw..][r.clone()];
        let g = &x[(bi * c2 + c + ci) * hw..][r.clone()];
        // SAFETY: task (plane, k) alone writes this range of the output.
        let o = unsafe { out_ptr.get().add(plane * hw + r.start) };
        #[cfg(target_arch = "x86_64")]
        if avx {
            // SAFETY: the CPU has AVX2 and FMA (checked at run time); `o` holds `a.len()` values.
            unsafe { gelu_mul_avx(a, g, o) };
            return;
        }
        let _ = avx;
        // SAFETY: `o` holds `a.len()` values.
        unsafe { gelu_mul(a, g, o) };
    });
    // SAFETY: the tasks cover every plane and piece.
    unsafe { out.set_len(n_out) };
    out
}

// ------------------------------------------------------------------------------------------
// Gated feed-forward network, fused
// ------------------------------------------------------------------------------------------

/// The weights of a Restormer gated FFN with a depthwise 3×3 conv: `project_in` `[2F, C]`,
/// `dwconv` `[2F, 1, 3, 3]`, `project_out` `[C_out, F]`, each with an optional bias.
#[derive(Clone, Copy, Debug)]
pub struct GatedFfnWeights<'a> {
    pub w_in: &'a [f32],
    pub b_in: Option<&'a [f32]>,
    pub w_dw: &'a [f32],
    pub b_dw: Option<&'a [f32]>,
    pub w_out: &'a [f32],
    pub b_out: Option<&'a [f32]>,
    /// `F`, the width of the gate.
    pub hidden: usize,
    pub cout: usize,
    /// Reflection padding of the depthwise conv instead of zeros.
    pub reflect: bool,
}

/// `residual + project_out(GELU(d₁) ⊙ d₂)` with `[d₁; d₂] = dwconv(project_in(y))`, one output
/// row at a time: the `2F`-channel intermediates only ever exist as a ring of three rows (plus
/// the gate's row), which stay in cache, instead of as full-resolution tensors.
///
/// `y` is `[B, C, H, W]`; the depthwise conv pads `pad_rows = [top, bottom]` rows (1 each for
/// a whole image, 0 on a side where `y` carries a neighbouring band's halo row) and one column
/// on each side. `residual` is `[B, C_out, OH, W]` with `OH = H + top + bottom − 2`.
pub fn gated_ffn(
    y: &[f32],
    shape: [usize; 4],
    wts: &GatedFfnWeights<'_>,
    pad_rows: [usize; 2],
    residual: &[f32],
) -> Vec<f32> {
    let [b, c, h, w] = shape;
    let (f, cout) = (wts.hidden, wts.cout);
    let f2 = 2 * f;
    let [pt, pb] = pad_rows;
    assert!(pt <= 1 && pb <= 1 && h + pt + pb >= 3 && w >= 2, "unsupported gated FFN geometry");
    let oh = h + pt + pb - 2;
    assert_eq!(y.len(), b * c * h * w);
    assert_eq!(residual.len(), b * cout * oh * w);
    assert!(wts.w_in.len() == f2 * c && wts.w_dw.len() == f2 * 9 && wts.w_out.len() == cout * f);
    let isa = isa();
    let (cb_in, cb_out) = (block_channels(isa, f2), block_channels(isa, cout));
    let wp_in = pack_weights(wts.w_in, f2, c, cb_in);
    let wp_out = pack_weights(wts.w_out, cout, f, cb_out);
    // Row buffers read by the register blocks: whole vectors past the row end.
    let wr = w.div_ceil(BLOCK_WIDTHS) * BLOCK_WIDTHS;
    // Ring rows: one padding column on each side, then room for whole vectors.
    let lr = wr + 2 + LANES;
    let hw = h * w;
    let threads = rayon::current_num_threads().max(1);
    // At least two tasks per thread; each task computes two halo rows of project_in more.
    let rows_per_task = oh.div_ceil(4 * threads).max(4);
    let tasks_per_image = oh.div_ceil(rows_per_task);
    let n_out = b * cout * oh * w;
    let mut out: Vec<f32> = Vec::with_capacity(n_out);
    let out_ptr = SendPtr(out.as_mut_ptr());
    let avx = has_avx2_fma();
    let off_in: Vec<usize> = (0..c).map(|ci| ci * wr).collect();
    let off_out: Vec<usize> = (0..f).map(|i| i * wr).collect();
    (0..b * tasks_per_image).into_par_iter().for_each_init(
        || (vec![0.0f32; c * wr], vec![0.0f32; 3 * f2 * lr], vec![0.0f32; f * wr], vec![0.0f32; 2 * wr]),
        |(inrow, ring, gated, dwrow), task| {
            let (bi, k) = (task / tasks_per_image, task % tasks_per_image);
            let o0 = k * rows_per_task;
            let o1 = (o0 + rows_per_task).min(oh);
            let img = &y[bi * c * hw..][..c * hw];
            // Padded row r (output row o reads padded rows o, o+1, o+2) → its ring slot.
            let fill = |r: usize, ring: &mut [f32], inrow: &mut [f32]| {
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
                for ci in 0..c {
                    inrow[ci * wr..][..w].copy_from_slice(&img[ci * hw + sy * w..][..w]);
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
                    let (l, r) = if wts.reflect { (row[2], row[w - 1]) } else { (0.0, 0.0) };
                    row[0] = l;
                    row[w + 1] = r;
                }
            };
            fill(o0, ring, inrow);
            fill(o0 + 1, ring, inrow);
            for o in o0..o1 {
                fill(o + 2, ring, inrow);
                // Depthwise 3×3 of channels i and F+i, then the gate, into `gated`.
                for i in 0..f {
                    for (half, ch) in [i, f + i].into_iter().enumerate() {
                        let d = &mut dwrow[half * wr..][..w];
                        let wk = &wts.w_dw[ch * 9..][..9];
                        let rows: [&[f32]; 3] =
                            std::array::from_fn(|ky| &ring[((o + ky) % 3) * f2 * lr + ch * lr..][..w + 2]);
                        let b0 = wts.b_dw.map_or(0.0, |bs| bs[ch]);
                        #[cfg(target_arch = "x86_64")]
                        if avx {
                            // SAFETY: the CPU has AVX2 and FMA.
                            unsafe { dw3_row_avx(d, &rows, wk, b0) };
                            continue;
                        }
                        dw3_row(d, &rows, wk, b0);
                    }
                    let (a, g) = dwrow.split_at(wr);
                    // SAFETY: `gated` row i holds `wr` ≥ w values.
                    unsafe {
                        let gp = gated.as_mut_ptr().add(i * wr);
                        #[cfg(target_arch = "x86_64")]
                        if avx {
                            gelu_mul_avx(&a[..w], g, gp);
                            continue;
                        }
                        gelu_mul(&a[..w], g, gp);
                    }
                }
                // project_out + residual into output row o.
                for blk in 0..cout / cb_out {
                    let co0 = blk * cb_out;
                    let dst: [*mut f32; CB] = std::array::from_fn(|cc| {
                        // SAFETY: task k alone writes rows o0..o1 of image bi.
                        unsafe { out_ptr.get().add(((bi * cout + co0 + cc.min(cb_out - 1)) * oh + o) * w) }
                    });
                    for (cc, &dp) in dst.iter().enumerate().take(cb_out) {
                        let r = &residual[((bi * cout + co0 + cc) * oh + o) * w..][..w];
                        let bo = wts.b_out.map_or(0.0, |bs| bs[co0 + cc]);
                        // SAFETY: as above.
                        let d = unsafe { std::slice::from_raw_parts_mut(dp, w) };
                        for (d, &r) in d.iter_mut().zip(r) {
                            *d = r + bo;
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
    let _ = avx;
    // SAFETY: the tasks cover every image and output row, and write every channel.
    unsafe { out.set_len(n_out) };
    out
}

/// One row of a 3×3 depthwise conv: `d[x] = b + Σ w[ky][kx] · rows[ky][x + kx]`.
#[inline(always)]
fn dw3_row(d: &mut [f32], rows: &[&[f32]; 3], wk: &[f32], b0: f32) {
    let n = d.len();
    d.fill(b0);
    for (ky, row) in rows.iter().enumerate() {
        for kx in 0..3 {
            let wv = wk[ky * 3 + kx];
            for (o, &v) in d.iter_mut().zip(&row[kx..kx + n]) {
                *o = wv.mul_add(v, *o);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dw3_row_avx(d: &mut [f32], rows: &[&[f32]; 3], wk: &[f32], b0: f32) {
    dw3_row(d, rows, wk, b0)
}

// ------------------------------------------------------------------------------------------
// Layer norm over channels
// ------------------------------------------------------------------------------------------

/// Pixels normalised together (their channel values stay in L1/L2 between the passes).
const LN_PIXELS: usize = 256;

#[inline(always)]
fn layer_norm_piece(x: &[f32], hw: usize, c: usize, w: &[f32], b: Option<&[f32]>, out: &mut [f32], px: usize) {
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn layer_norm_piece_avx(x: &[f32], hw: usize, c: usize, w: &[f32], b: Option<&[f32]>, out: &mut [f32], px: usize) {
    layer_norm_piece(x, hw, c, w, b, out, px)
}

/// Restormer's layer norm over the channels of every pixel of `x` (`[B, C, H, W]`): biased
/// variance, eps 1e-5; with `bias` `(x-μ)/σ·w + b` (`WithBias`), without `x/σ·w` (`BiasFree`).
pub fn layer_norm(x: &[f32], shape: [usize; 4], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let [b, c, h, w] = shape;
    let hw = h * w;
    assert!(x.len() == b * c * hw && weight.len() == c && bias.is_none_or(|bs| bs.len() == c));
    let avx = has_avx2_fma();
    let pieces = hw.div_ceil(LN_PIXELS);
    // Computed piece by piece into channel-major scratch, then scattered to the planes.
    // Not zero-filled: every value is copied in from a piece's scratch.
    let n_out = b * c * hw;
    let mut out: Vec<f32> = Vec::with_capacity(n_out);
    let out_ptr = SendPtr(out.as_mut_ptr());
    (0..b * pieces).into_par_iter().for_each_init(
        || vec![0.0f32; c * LN_PIXELS],
        |scratch, task| {
            let (bi, k) = (task / pieces, task % pieces);
            let px = k * LN_PIXELS;
            let n = LN_PIXELS.min(hw - px);
            let xs = &x[bi * c * hw..][..c * hw];
            let piece = &mut scratch[..c * n];
            #[cfg(target_arch = "x86_64")]
            if avx {
                // SAFETY: the CPU has AVX2 and FMA (checked at run time).
                unsafe { layer_norm_piece_avx(xs, hw, c, weight, bias, piece, px) };
            } else {
                layer_norm_piece(xs, hw, c, weight, bias, piece, px);
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = avx;
                layer_norm_piece(xs, hw, c, weight, bias, piece, px);
            }
            for ch in 0..c {
                // SAFETY: task (bi, k) alone writes pixels px..px+n of image bi's planes.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        piece[ch * n..].as_ptr(),
                        out_ptr.get().add((bi * c + ch) * hw + px),
                        n,
                    );
                }
            }
        },
    );
    // SAFETY: the tasks cover every image and pixel, and write all channels.
    unsafe { out.set_len(n_out) };
    out
}

// ------------------------------------------------------------------------------------------
// Resampling by index
// ------------------------------------------------------------------------------------------

/// `out[b, c, y, x] = x[b, c, rows[y], cols[x]]` for `x` of shape `[B, C, H, W]`: a nearest
/// resize (or any row/column gather) in one pass. Panics if an index is out of range.
pub fn gather_rows_cols(x: &[f32], shape: [usize; 4], rows: &[usize], cols: &[usize]) -> Vec<f32> {
    gather_rows_cols_add(x, shape, rows, cols, None)
}

/// [`gather_rows_cols`] plus `residual` (`[B, C, rows, cols]`) in the same pass.
pub fn gather_rows_cols_add(
    x: &[f32],
    shape: [usize; 4],
    rows: &[usize],
    cols: &[usize],
    residual: Option<&[f32]>,
) -> Vec<f32> {
    let [b, c, h, w] = shape;
    assert_eq!(x.len(), b * c * h * w);
    assert!(rows.iter().all(|&r| r < h) && cols.iter().all(|&q| q < w), "gather index out of range");
    let (oh, ow) = (rows.len(), cols.len());
    let n_out = b * c * oh * ow;
    assert!(residual.is_none_or(|r| r.len() == n_out));
    let mut out: Vec<f32> = Vec::with_capacity(n_out);
    let out_ptr = SendPtr(out.as_mut_ptr());
    (0..b * c * oh).into_par_iter().with_min_len(64).for_each(|task| {
        let (plane, y) = (task / oh, task % oh);
        let line = &x[(plane * h + rows[y]) * w..][..w];
        // SAFETY: task (plane, y) alone writes output row y of this plane, `ow` values.
        let o = unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(task * ow), ow) };
        match residual {
            Some(r) => {
                for ((d, &q), &r) in o.iter_mut().zip(cols).zip(&r[task * ow..][..ow]) {
                    *d = line[q] + r;
                }
            }
            None => {
                for (d, &q) in o.iter_mut().zip(cols) {
                    *d = line[q];
                }
            }
        }
    });
    // SAFETY: the tasks cover every output row.
    unsafe { out.set_len(n_out) };
    out
}

// ------------------------------------------------------------------------------------------
// Transposed ("channel") attention
// ------------------------------------------------------------------------------------------

/// Pixels per task of [`ChannelGram::of`].
const GRAM_PIXELS: usize = 1024;

/// The sums over pixels behind Restormer's transposed attention, per image and head:
/// `q_i·k_j` for the channels `i, j` of a head, and the squared norms of every q and k channel.
/// Sums of bands of an image add up ([`ChannelGram::add`]) to the sums of the image.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelGram {
    pub images: usize,
    pub heads: usize,
    /// Channels per head.
    pub d: usize,
    /// `[B, heads, d, d]`.
    pub qk: Vec<f64>,
    /// `[B, C]` each.
    pub qq: Vec<f64>,
    pub kk: Vec<f64>,
}

impl ChannelGram {
    /// The sums of `qkv` (`[B, 3C, H, W]`: q, k and v stacked on the channel axis).
    pub fn of(qkv: &[f32], shape: [usize; 4], heads: usize) -> Self {
        let [b, c3, h, w] = shape;
        let (c, hw) = (c3 / 3, h * w);
        assert!(c3 % 3 == 0 && heads > 0 && c % heads == 0 && qkv.len() == b * c3 * hw);
        let d = c / heads;
        let pieces = hw.div_ceil(GRAM_PIXELS);
        let avx = has_avx2_fma();
        let mut out =
            Self { images: b, heads, d, qk: vec![0.0; b * heads * d * d], qq: vec![0.0; b * c], kk: vec![0.0; b * c] };
        for bi in 0..b {
            let img = &qkv[bi * c3 * hw..][..c3 * hw];
            let part = (0..pieces)
                .into_par_iter()
                .map(|k| {
                    let r = k * GRAM_PIXELS..((k + 1) * GRAM_PIXELS).min(hw);
                    let q = |i: usize| &img[i * hw..][r.clone()];
                    let kc = |j: usize| &img[(c + j) * hw..][r.clone()];
                    let mut sums = vec![0.0f64; heads * d * d + 2 * c];
                    let (qk, norms) = sums.split_at_mut(heads * d * d);
                    for hd in 0..heads {
                        for i in 0..d {
                            for j in 0..d {
                                qk[(hd * d + i) * d + j] = dot(q(hd * d + i), kc(hd * d + j), avx) as f64;
                            }
                        }
                    }
                    for i in 0..c {
                        norms[i] = dot(q(i), q(i), avx) as f64;
                        norms[c + i] = dot(kc(i), kc(i), avx) as f64;
                    }
                    sums
                })
                .collect::<Vec<_>>()
                .into_iter()
                // Summed in piece order, so that results do not depend on rayon's scheduling.
                .fold(vec![0.0f64; heads * d * d + 2 * c], |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                });
            let nqk = heads * d * d;
            out.qk[bi * nqk..][..nqk].copy_from_slice(&part[..nqk]);
            out.qq[bi * c..][..c].copy_from_slice(&part[nqk..nqk + c]);
            out.kk[bi * c..][..c].copy_from_slice(&part[nqk + c..]);
        }
        out
    }

    /// Adds the sums of another band of the same images.
    pub fn add(&mut self, other: &Self) {
        assert_eq!((self.images, self.heads, self.d), (other.images, other.heads, other.d));
        let sum = |a: &mut Vec<f64>, b: &Vec<f64>| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        sum(&mut self.qk, &other.qk);
        sum(&mut self.qq, &other.qq);
        sum(&mut self.kk, &other.kk);
    }

    /// The attention weights `[B, heads, d, d]`: `softmax_j(q̂_i·k̂_j · t_h)` with q̂, k̂ the
    /// channels divided by `max(‖·‖₂, 1e-12)` (`F.normalize`) and `t` the per-head temperature.
    pub fn softmax(&self, temperature: &[f32]) -> Vec<f32> {
        let (heads, d) = (self.heads, self.d);
        let c = heads * d;
        assert_eq!(temperature.len(), heads);
        let mut out = vec![0.0f32; self.images * heads * d * d];
        let mut row = vec![0.0f64; d];
        for bi in 0..self.images {
            for hd in 0..heads {
                for i in 0..d {
                    let qn = self.qq[bi * c + hd * d + i].sqrt().max(1e-12);
                    for (j, r) in row.iter_mut().enumerate() {
                        let kn = self.kk[bi * c + hd * d + j].sqrt().max(1e-12);
                        *r = self.qk[((bi * heads + hd) * d + i) * d + j] / (qn * kn) * temperature[hd] as f64;
                    }
                    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = row.iter().map(|r| (r - m).exp()).sum();
                    for (j, r) in row.iter().enumerate() {
                        out[((bi * heads + hd) * d + i) * d + j] = ((r - m).exp() / z) as f32;
                    }
                }
            }
        }
        out
    }
}

/// `Σ a·b` in f32 with eight running sums.
#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let b = &b[..a.len()];
    let mut lanes = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            lanes[l] = x[l].mul_add(y[l], lanes[l]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b)
}

fn dot(a: &[f32], b: &[f32], avx: bool) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if avx {
        // SAFETY: the CPU has AVX2 and FMA (the caller checked).
        return unsafe { dot_avx(a, b) };
    }
    let _ = avx;
    dot_lanes(a, b)
}

/// `W·blockdiag(A₀ … A_{heads-1})` for a 1×1 conv weight `W` (`[C_out, C]`) and the attention
/// weights `A` of one image (`[heads, d, d]`): the single 1×1 conv that applies the attention
/// to v and then `W` (Restormer's `project_out`).
pub fn fold_attention(w: &[f32], cout: usize, attn: &[f32], heads: usize, d: usize) -> Vec<f32> {
    let c = heads * d;
    assert!(w.len() == cout * c && attn.len() == heads * d * d);
    let mut out = vec![0.0f32; cout * c];
    for o in 0..cout {
        for hd in 0..heads {
            for j in 0..d {
                let mut s = 0.0f64;
                for i in 0..d {
                    s += w[o * c + hd * d + i] as f64 * attn[(hd * d + i) * d + j] as f64;
                }
                out[o * c + hd * d + j] = s as f32;
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// Softmax
// ------------------------------------------------------------------------------------------

/// `exp(x)` in f32 (Cephes' `expf`: range reduction by ln 2 in two parts, degree-5
/// polynomial; ≤ 2 ulp on [-87, 88]); 0 below -87.3.
#[inline(always)]
fn exp_f32(x0: f32) -> f32 {
    // Branch-free (selects), so that loops over it vectorise.
    let x = x0.clamp(-87.336_54, 88.376_26);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = n.mul_add(-0.693_359_4, x);
    let r = n.mul_add(2.121_944_4e-4, r);
    let mut p = r.mul_add(1.987_569_1e-4, 1.398_199_9e-3);
    p = r.mul_add(p, 8.333_452e-3);
    p = r.mul_add(p, 4.166_579_6e-2);
    p = r.mul_add(p, 1.666_666_5e-1);
    p = r.mul_add(p, 0.5);
    let e = (r * r).mul_add(p, r + 1.0);
    let y = e * f32::from_bits(((n as i32 + 127) as u32) << 23);
    if x0 < -87.336_54 { 0.0 } else { y }
}

/// `row ← exp(row - max)`, returning the sum.
#[inline(always)]
fn exp_shift_sum(row: &mut [f32], max: f32) -> f32 {
    for v in row.iter_mut() {
        *v = exp_f32(*v - max);
    }
    // Eight running sums (a vector's lanes), so that the loop vectorises.
    let mut lanes = [0.0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// The largest value of `row` (−∞ if empty), vectorisable.
#[inline(always)]
fn max_of(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = if v > *l { v } else { *l };
        }
    }
    lanes.iter().chain(chunks.remainder()).fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn exp_shift_sum_avx(row: &mut [f32], max: f32) -> f32 {
    exp_shift_sum(row, max)
}

/// The mean over the rows of `softmax(scores, last axis)` for `scores` of shape `[B, R, S]`:
/// `[B, 1, S]` (FILM's cross-attention weights pooled over the text tokens).
pub fn softmax_mean_rows(scores: &[f32], shape: [usize; 3]) -> Vec<f32> {
    let [b, r, n] = shape;
    assert_eq!(scores.len(), b * r * n);
    let avx = has_avx2_fma();
    let mut out = vec![0.0f32; b * n];
    for (bi, o) in out.chunks_mut(n).enumerate() {
        let rows = &scores[bi * r * n..][..r * n];
        // Fixed groups of rows, each summed in order, then the groups in order: the result does
        // not depend on rayon's scheduling.
        const GROUP: usize = 8;
        let partial = rows
            .par_chunks(GROUP * n)
            .map(|group| {
                let (mut acc, mut buf) = (vec![0.0f32; n], vec![0.0f32; n]);
                for row in group.chunks(n) {
                    buf.copy_from_slice(row);
                    let max = max_of(row);
                    #[cfg(target_arch = "x86_64")]
                    let sum =
                        if avx { unsafe { exp_shift_sum_avx(&mut buf, max) } } else { exp_shift_sum(&mut buf, max) };
                    #[cfg(not(target_arch = "x86_64"))]
                    let sum = exp_shift_sum(&mut buf, max);
                    let inv = 1.0 / sum;
                    for (a, e) in acc.iter_mut().zip(&buf) {
                        *a += e * inv;
                    }
                }
                acc
            })
            .collect::<Vec<_>>()
            .into_iter()
            .reduce(|mut a, b| {
                for (x, y) in a.iter_mut().zip(&b) {
                    *x += y;
                }
                a
            });
        if let Some(acc) = partial {
            let inv_r = 1.0 / r as f32;
            for (o, a) in o.iter_mut().zip(&acc) {
                *o = a * inv_r;
            }
        }
    }
    let _ = avx;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Conv2d, ConvCfg, LayerNorm, gelu_gate_composed};
    use crate::weights::tensor_to_vec;
    use burn::module::Param;
    use burn::tensor::module::conv2d as burn_conv2d;
    use burn::tensor::ops::{ConvOptions, PadMode};
    use burn::tensor::{Distribution, Tensor};

    /// Largest `|a - b| / max(1, |b|)`.
    fn max_rel(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs() / y.abs().max(1.0)).fold(0.0, f32::max)
    }

    #[test]
    fn host_refuses_autodiff_tensors() {
        let dev = crate::cpu();
        let x = Tensor::<2>::ones([2, 3], &dev);
        assert!(host(&x).is_some());
        assert!(host(&x.autodiff()).is_none());
    }

    #[test]
    fn conv2d_equals_burns_conv() {
        let dev = crate::cpu();
        // (cin, cout, k, stride, groups, reflect, bias, h, w)
        let cases = [
            (1, 8, 3, 1, 1, true, false, 9, 31),
            (8, 8, 3, 1, 1, true, true, 13, 50),
            (16, 8, 3, 1, 1, false, false, 7, 24),
            (24, 24, 3, 1, 1, false, false, 5, 49),
            (70, 12, 3, 1, 1, true, false, 6, 17),
            (8, 8, 3, 2, 1, true, false, 12, 33),
            (16, 16, 3, 2, 1, false, true, 11, 20),
            (8, 1, 3, 1, 1, true, true, 10, 26),
            (12, 12, 3, 1, 6, true, false, 9, 29),
            (6, 6, 3, 1, 6, false, true, 8, 30),
            (7, 7, 3, 1, 7, true, false, 9, 70),
            (5, 5, 5, 1, 5, false, true, 6, 33),
            (4, 4, 3, 2, 4, true, false, 9, 21),
            (4, 6, 5, 1, 2, false, true, 9, 27),
            (3, 5, 4, 3, 1, false, true, 14, 23),
            // 1×1 (the pointwise kernel): a partial last piece, several pieces, odd channels.
            (32, 96, 1, 1, 1, false, true, 9, 31),
            (40, 8, 1, 1, 1, false, false, 20, 41),
            (3, 5, 1, 1, 1, false, true, 29, 30),
        ];
        for (cin, cout, k, stride, groups, reflect, bias, h, w) in cases {
            let mut cfg = ConvCfg::same(k).bias(bias).groups(groups).stride(stride);
            if reflect {
                cfg = cfg.reflect();
            }
            let conv = Conv2d::new(&dev, cin, cout, k, cfg);
            let x = Tensor::<4>::random([2, cin, h, w], Distribution::Uniform(-1.0, 1.0), &dev);
            let got = conv.forward(x.clone());
            let p = k / 2;
            let (xp, pz) = if reflect { (x.pad((p, p, p, p), PadMode::Reflect), 0) } else { (x, p) };
            let opts = ConvOptions::new([stride; 2], [pz; 2], [1, 1], groups);
            let want = burn_conv2d(xp, conv.weight.val(), conv.bias.as_ref().map(Param::val), opts);
            assert_eq!(got.dims(), want.dims(), "{cin}->{cout} k{k} s{stride} g{groups}");
            let d = max_rel(&tensor_to_vec(got), &tensor_to_vec(want));
            assert!(d < 1e-5, "{cin}->{cout} k{k} s{stride} g{groups} reflect {reflect}: {d}");
        }
    }

    #[test]
    fn conv2d_kernel_is_used_and_differs_from_nothing() {
        // The kernel really runs (and is not the composition): a 3×3 conv of an impulse.
        let x: Vec<f32> = (0..25).map(|i| if i == 12 { 1.0 } else { 0.0 }).collect();
        let wt: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let g = ConvGeom::new([1, 1, 5, 5], [1, 1, 3, 3], 1, 1, 1, false);
        let y = conv2d(&x, &wt, Some(&[0.5]), &g);
        // Correlation: out[2+dy][2+dx] = w[1-dy][1-dx] + bias.
        assert_eq!(y[2 * 5 + 2], 5.5);
        assert_eq!(y[5 + 1], 9.5);
        assert_eq!(y[3 * 5 + 3], 1.5);
        assert_eq!(y[0], 0.5);
    }

    #[test]
    fn gelu_gate_equals_gelu_times_gate() {
        let dev = crate::cpu();
        let x = Tensor::<4>::random([2, 6, 19, 45], Distribution::Normal(0.0, 2.5), &dev);
        let got = crate::layers::gelu_gate(x.clone());
        let want = gelu_gate_composed(x);
        let d = max_rel(&tensor_to_vec(got), &tensor_to_vec(want));
        assert!(d < 1e-5, "{d}");
        // Large arguments saturate like erf = ±1.
        let xs: Vec<f32> = vec![-30.0, -9.0, -7.0, 7.0, 9.0, 30.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let y = gelu_gate(&xs, [1, 2, 1, 6]);
        for (v, x) in y.iter().zip(&xs) {
            let want = if *x > 0.0 { *x } else { 0.0 };
            assert!((v - want).abs() < 1e-5, "gelu({x}) = {v}");
        }
    }

    #[test]
    fn layer_norm_equals_composition() {
        let dev = crate::cpu();
        for (bias, c, h, w) in [(true, 8, 23, 31), (false, 32, 5, 60), (true, 3, 1, 300)] {
            let mut ln = LayerNorm::new(&dev, c, bias);
            ln.body.weight = Param::from_tensor(Tensor::random([c], Distribution::Uniform(0.5, 1.5), &dev));
            if bias {
                ln.body.bias = Some(Param::from_tensor(Tensor::random([c], Distribution::Uniform(-1.0, 1.0), &dev)));
            }
            let x = Tensor::<4>::random([2, c, h, w], Distribution::Normal(0.3, 2.0), &dev);
            let got = ln.forward(x.clone());
            let want = ln.forward_composed(x);
            let d = max_rel(&tensor_to_vec(got), &tensor_to_vec(want));
            assert!(d < 1e-5, "bias {bias} c {c}: {d}");
        }
    }

    #[test]
    fn gather_rows_cols_picks_rows_and_columns() {
        let x: Vec<f32> = (0..2 * 3 * 4).map(|v| v as f32).collect();
        let y = gather_rows_cols(&x, [1, 2, 3, 4], &[2, 0], &[3, 3, 1]);
        assert_eq!(y, vec![11., 11., 9., 3., 3., 1., 23., 23., 21., 15., 15., 13.]);
    }

    #[test]
    fn exp_is_within_two_ulp_of_std() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (exp_f32(x) as f64, (x as f64).exp());
            worst = worst.max((got - want).abs() / want);
            x += 0.0137;
        }
        assert!(worst < 3.0 * f32::EPSILON as f64, "worst relative error {worst}");
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
    }

    #[test]
    fn softmax_mean_rows_equals_composition() {
        let dev = crate::cpu();
        let x = Tensor::<3>::random([2, 37, 301], Distribution::Normal(0.0, 6.0), &dev);
        let want = tensor_to_vec(burn::tensor::activation::softmax(x.clone(), 2).mean_dim(1));
        let got = softmax_mean_rows(&tensor_to_vec(x), [2, 37, 301]);
        let d = max_rel(&got, &want);
        assert!(d < 1e-6, "{d}");
    }

    #[test]
    fn reductions_do_not_depend_on_scheduling() {
        // Sums across rayon tasks are combined in a fixed order: repeated runs give the same bits
        // (the CLI writes the same image twice in a row).
        let dev = crate::cpu();
        let scores = tensor_to_vec(Tensor::<3>::random([2, 149, 3000], Distribution::Normal(0.0, 3.0), &dev));
        let qkv = tensor_to_vec(Tensor::<4>::random([1, 48, 61, 97], Distribution::Normal(0.0, 1.0), &dev));
        let first = (softmax_mean_rows(&scores, [2, 149, 3000]), ChannelGram::of(&qkv, [1, 48, 61, 97], 4));
        for _ in 0..8 {
            assert_eq!(softmax_mean_rows(&scores, [2, 149, 3000]), first.0);
            assert_eq!(ChannelGram::of(&qkv, [1, 48, 61, 97], 4), first.1);
        }
    }
}
