//! Element-wise maths: the f32 `erf` and `exp` approximations the kernels share, the
//! activations applied to outputs while they are in cache, and CDDFuse's affine coupling.

use super::dispatch;
use rayon::prelude::*;

/// `erf(x)` in f32 as a rational function of `x` on [-4, 4] (Eigen's / XLA's float erf),
/// ±1 beyond: absolute error ≈ 1e-7.
#[inline(always)]
pub(super) fn erf(x: f32) -> f32 {
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

/// `exp(x)` in f32 (Cephes' `expf`: range reduction by ln 2 in two parts, degree-5
/// polynomial; ≤ 2 ulp on [-87, 88]); 0 below -87.3.
#[inline(always)]
pub(super) fn exp_f32(x0: f32) -> f32 {
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

/// An element-wise activation the kernels apply to their output while it is in cache.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) enum Act {
    #[default]
    None,
    /// `max(x, 0) + a·min(x, 0)` with one slope `a` (`nn.PReLU()`).
    PRelu(f32),
    /// `min(max(x, 0), 6)` (`nn.ReLU6`).
    Relu6,
}

impl Act {
    /// Applies the activation to `x` in place.
    pub(crate) fn apply(self, x: &mut [f32]) {
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
    pub(crate) fn apply_all(self, x: &mut [f32]) {
        if self != Act::None {
            x.par_chunks_mut(1 << 14).for_each(|c| self.apply(c));
        }
    }
}

/// `PReLU` with one slope `a` over all of `x`.
pub(crate) fn prelu(x: &[f32], a: f32) -> Vec<f32> {
    let mut out = x.to_vec();
    Act::PRelu(a).apply_all(&mut out);
    out
}

/// `a · exp(b) + c`, element by element (the affine coupling of CDDFuse's invertible blocks).
pub(crate) fn mul_exp_add(a: &[f32], b: &[f32], c: &[f32]) -> Vec<f32> {
    assert!(a.len() == b.len() && a.len() == c.len());
    let mut out = vec![0.0f32; a.len()];
    const PIECE: usize = 1 << 14;
    out.par_chunks_mut(PIECE).enumerate().for_each(|(k, o)| {
        let r = k * PIECE..k * PIECE + o.len();
        mul_exp_add_piece(&a[r.clone()], &b[r.clone()], &c[r], o);
    });
    out
}

#[inline(always)]
fn mul_exp_add_imp(a: &[f32], b: &[f32], c: &[f32], o: &mut [f32]) {
    for (((o, &a), &b), &c) in o.iter_mut().zip(a).zip(b).zip(c) {
        *o = a.mul_add(exp_f32(b), c);
    }
}

dispatch! {
    /// [`mul_exp_add_imp`] with the widest vectors the CPU has.
    fn mul_exp_add_piece(a: &[f32], b: &[f32], c: &[f32], o: &mut [f32]) = mul_exp_add_imp;
}
