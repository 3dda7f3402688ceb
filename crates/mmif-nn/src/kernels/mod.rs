//! Hand-written CPU kernels for inference on burn's `flex` backend (crate-private).
//!
//! They work on the host buffers of plain (non-autodiff) `flex` tensors, without copies
//! ([`host`] / [`from_host`]); callers fall back to the composition of burn ops, which is also
//! the differentiable path training uses, whenever [`host`] returns `None`.
//!
//! | file | kernels |
//! |---|---|
//! | `mod.rs` | the burn buffer bridge ([`host`], [`on_host`], [`values`], [`from_host`]), CPU feature detection, the [`dispatch!`] macro, the one audited writer of uninitialised outputs ([`write_all`]) |
//! | `block.rs` | the register-blocked row engine (`conv_row`: `C` output channels × `N` vectors of pixels, AVX2/FMA or AVX-512VL) every convolution below runs on |
//! | `conv.rs` | [`ConvGeom`], [`conv2d`]: a direct convolution (any kernel, stride, groups) with zero or reflection padding built in, parallel over output rows |
//! | `conv_grad.rs` | [`conv2d_gemm`], [`conv2d_input_grad`], [`conv2d_weight_grad`], [`depthwise_weight_grad`]: the forward (dense) and backward passes of stride-1 zero-padded convs (training, [`crate::train_ops`]) |
//! | `pointwise.rs` | [`pointwise_conv2d`], [`pointwise_conv2d_ext`] ([`Pointwise`]): 1×1 convolutions, of a channel concatenation without forming it, with a residual and an activation in the same pass |
//! | `depthwise.rs` | [`depthwise_supported`], [`depthwise_conv2d`]: depthwise, stride-1 convolutions |
//! | `ffn.rs` | [`gelu_gate`] (`GELU(x₁)·x₂`), [`gated_ffn`] ([`GatedFfnWeights`], [`Middle`]): Restormer's gated FFN (depthwise or grouped 3×3, optional layer norm first), MobileNetV2's ReLU6 bottleneck and MDTA's `qkv → qkv_dwconv` fused row by row |
//! | `norm.rs` | [`layer_norm`]: the per-pixel layer norm over channels |
//! | `batch_norm.rs` | [`channel_stats`], [`batch_norm_relu`], [`batch_norm_relu_backward`]: train-mode BatchNorm then ReLU, both passes (training, [`crate::train_ops`]) |
//! | `attention.rs` | [`ChannelGram`] (the sums behind transposed attention, by band), [`fold_attention`], [`softmax_mean_rows`] (FILM's pooled cross-attention) |
//! | `gather.rs` | [`gather_rows_cols_add`] (`gather_rows_cols` without the residual): nearest resizes and other row/column gathers |
//! | `winograd.rs` | [`winograd_conv2d`] ([`WinogradWeights`], [`winograd_pick`]): dense 3×3 stride-1 convolutions by Winograd's F(2×2, 3×3) or F(4×4, 3×3), the transformed-domain products on `conv_row` |
//! | `math.rs` | element-wise maths: `erf`, `exp_f32` (Cephes), [`Act`] (PReLU, ReLU6), [`prelu`], [`mul_exp_add`] |
//!
//! Every kernel has a unit test against the burn composition it replaces (`tests.rs`).
//!
//! Vector code comes in two forms: `conv_row` and the depthwise plane are written with
//! intrinsics and pick their register blocks by [`Isa`]; every other hot loop is plain Rust
//! compiled twice by [`dispatch!`] (baseline and AVX2+FMA), which changes the vector width only,
//! never the results (Rust neither contracts `a * b + c` nor reorders floating-point sums).

mod attention;
mod batch_norm;
mod block;
mod conv;
mod conv_grad;
mod depthwise;
mod ffn;
mod gather;
mod math;
mod norm;
mod pointwise;
#[cfg(test)]
mod tests;
mod winograd;

pub(crate) use attention::{ChannelGram, fold_attention, softmax_mean_rows};
pub(crate) use batch_norm::{batch_norm_relu, batch_norm_relu_backward, channel_stats};
pub(crate) use conv::{ConvGeom, conv2d};
pub(crate) use conv_grad::{conv2d_gemm, conv2d_input_grad, conv2d_weight_grad, depthwise_weight_grad};
pub(crate) use depthwise::{depthwise_conv2d, depthwise_supported};
pub(crate) use ffn::{GatedFfnWeights, MAX_GROUP, Middle, gated_ffn, gelu_gate, gelu_gate_backward};
#[cfg(test)]
use gather::gather_rows_cols;
pub(crate) use gather::gather_rows_cols_add;
pub(crate) use math::{Act, mul_exp_add, prelu};
pub(crate) use norm::{layer_norm, layer_norm_backward};
pub(crate) use pointwise::{Pointwise, pointwise_conv2d, pointwise_conv2d_ext};
pub(crate) use winograd::{WinogradWeights, winograd_conv2d, winograd_pick};

use burn::tensor::{Bytes, DType, Shape, Tensor};
use burn_flex::{Flex, FlexTensor, Layout};

// ------------------------------------------------------------------------------------------
// The burn buffer bridge
// ------------------------------------------------------------------------------------------

/// The tensor's `flex` primitive, contiguous, if it is a non-autodiff `f32` flex tensor.
pub(crate) fn host<const D: usize>(x: &Tensor<D>) -> Option<FlexTensor> {
    if x.is_autodiff() {
        return None;
    }
    let t = x.clone().try_into_primitive::<Flex>().ok()?;
    if t.dtype() != DType::F32 {
        return None;
    }
    Some(contiguous(t))
}

/// [`host`] of an optional tensor: `Some(None)` without one, `None` if it is not a plain `flex`
/// f32 tensor.
pub(crate) fn host_maybe<const D: usize>(x: Option<&Tensor<D>>) -> Option<Option<FlexTensor>> {
    match x {
        Some(t) => host(t).map(Some),
        None => Some(None),
    }
}

/// `t` itself if it is contiguous, else a contiguous copy.
pub(crate) fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.is_contiguous() { t } else { t.to_contiguous() }
}

/// Whether [`host`] would accept `x` (without making it contiguous).
pub(crate) fn on_host<const D: usize>(x: &Tensor<D>) -> bool {
    !x.is_autodiff() && x.clone().try_into_primitive::<Flex>().is_ok_and(|t| t.dtype() == DType::F32)
}

/// The values of a contiguous `f32` primitive from [`host`].
pub(crate) fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 tensor")
}

/// A flex tensor owning `data` (row-major, `shape`), without a copy.
pub(crate) fn from_host<const D: usize>(data: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(flex_from_host(data, shape))
}

/// The `flex` primitive owning `data` (row-major, `shape`), without a copy.
pub(crate) fn flex_from_host<const D: usize>(data: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    assert_eq!(data.len(), shape.iter().product::<usize>(), "data length and shape disagree");
    FlexTensor::new(Bytes::from_elems(data), Layout::contiguous(Shape::from(shape.to_vec())), DType::F32)
}

/// The conv `g` of `x` by the fastest kernel that takes it: 1×1 stride-1 convs by
/// [`pointwise_conv2d`], depthwise stride-1 ones by [`depthwise_conv2d`], dense 3×3 ones by
/// [`winograd_conv2d`] where [`winograd_pick`] chooses it, the rest by [`conv2d`]. `None` for
/// geometries [`ConvGeom::supported`] refuses and for strided depthwise convs (burn's kernel is
/// faster there). Inference only: training's dense convs take [`conv2d_gemm`] (its doc says why).
pub(crate) fn conv_auto(x: &[f32], w: &[f32], b: Option<&[f32]>, g: &ConvGeom) -> Option<Vec<f32>> {
    if !g.supported() {
        return None;
    }
    let [cout, cpg, kh, kw] = g.weight;
    Some(if kh * kw == 1 && g.stride == 1 && g.padding == 0 && g.pad_rows == [0, 0] && g.groups == 1 {
        pointwise_conv2d(x, w, b, g.input, cout)
    } else if depthwise_supported(g) {
        depthwise_conv2d(x, w, b, g)
    } else if cpg == 1 && cout == g.groups {
        return None;
    } else if let Some(tile) = winograd_pick(g) {
        winograd_conv2d(x, &WinogradWeights::new(w, cout, cpg, tile), b, g)
    } else {
        conv2d(x, w, b, g)
    })
}

// ------------------------------------------------------------------------------------------
// Outputs written in parallel
// ------------------------------------------------------------------------------------------

/// An output buffer of [`write_all`], shared by the rayon tasks that write disjoint parts of it.
/// Every access is bounds-checked against the buffer's length.
pub(super) struct Out {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: tasks only write disjoint ranges (the contract of `Out::part` / `Out::at`).
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// Values `off..off + len` of the output.
    ///
    /// # Safety
    /// No other task may access these values while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn part(&self, off: usize, len: usize) -> &mut [f32] {
        assert!(off.checked_add(len).is_some_and(|end| end <= self.len), "output range out of bounds");
        // SAFETY: in bounds (asserted); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(off), len) }
    }

    /// A pointer to values `off..off + len` of the output (for the intrinsics kernels).
    ///
    /// # Safety
    /// No other task may access these values while the pointer is used.
    pub(super) unsafe fn at(&self, off: usize, len: usize) -> *mut f32 {
        // SAFETY: the caller's contract.
        unsafe { self.part(off, len) }.as_mut_ptr()
    }
}

/// The one place where kernels create outputs without zero-filling them first: allocates `n`
/// values, lets `fill` write them (in parallel, through [`Out`]) and returns them.
///
/// # Safety
/// `fill` must have written every one of the `n` values when it returns, each by exactly one
/// task (outputs are not zero-filled because every kernel writes all of them; a memset would be
/// one more pass over memory).
pub(super) unsafe fn write_all(n: usize, fill: impl FnOnce(&Out)) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(n);
    fill(&Out { ptr: out.as_mut_ptr(), len: n });
    // SAFETY: `fill` wrote all `n` values (the caller's contract); the capacity is `n`.
    unsafe { out.set_len(n) };
    out
}

// ------------------------------------------------------------------------------------------
// CPU features
// ------------------------------------------------------------------------------------------

/// Vector instruction sets the intrinsics kernels are compiled for (chosen at run time), in
/// order of width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Isa {
    Scalar,
    /// AVX2 + FMA: 16 vector registers.
    Avx2,
    /// AVX-512F/VL on 256-bit vectors: 32 vector registers, so twice the channels per block.
    Avx512,
}

/// The widest [`Isa`] the kernels may use: `MMIF_ISA=scalar|avx2|avx512` caps it (read once per
/// process), so that every path can be tested (and sanitised) on a CPU that has the widest one;
/// unset or any other value leaves the CPU's widest.
pub(super) fn isa_cap() -> Isa {
    static CAP: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *CAP.get_or_init(|| match std::env::var("MMIF_ISA").as_deref() {
        Ok("scalar") => Isa::Scalar,
        Ok("avx2") => Isa::Avx2,
        _ => Isa::Avx512,
    })
}

/// The widest [`Isa`] this CPU supports, within [`isa_cap`].
pub(super) fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() && std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl") {
            return Isa::Avx512.min(isa_cap());
        }
        if has_avx2_fma() {
            return Isa::Avx2;
        }
    }
    Isa::Scalar
}

/// Whether the CPU has AVX2 and FMA (cached by the standard library after the first call) and
/// [`isa_cap`] allows them.
pub(super) fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") && isa_cap() >= Isa::Avx2
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `dispatch!(fn name(args) -> R = imp;)` defines `name`, which runs the `#[inline(always)]`
/// function `imp` compiled with AVX2+FMA when the CPU has them and as compiled for the baseline
/// otherwise. Only the vector width changes, not the results: Rust never contracts `a * b + c`
/// into an FMA nor reorders floating-point operations, and `mul_add` is a fused multiply-add in
/// both copies.
macro_rules! dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $imp:path;) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $imp($($arg),*)
                }
                if $crate::kernels::has_avx2_fma() {
                    // SAFETY: the CPU supports AVX2 and FMA, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $imp($($arg),*)
        }
    };
}

pub(super) use dispatch;
