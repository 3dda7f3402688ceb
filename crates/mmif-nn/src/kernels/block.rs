//! The register-blocked row engine every convolution kernel runs on: one output row of `C`
//! channels as `C × N` vector accumulators ([`conv_row`]), with the weight packing and the block
//! shapes it needs.

use super::Isa;

/// Pixels per vector.
pub(super) const LANES: usize = 8;
/// Most output channels per register block.
pub(super) const CB: usize = 8;
/// Most vectors of pixels per register block (row buffers are padded for this many).
pub(super) const NX: usize = 4;
/// A multiple of every register block's width in pixels (3 or 4 vectors of [`LANES`]): row
/// buffers read by [`conv_row`] hold at least the row rounded up to it.
pub(super) const BLOCK_WIDTHS: usize = 96;
/// Input channels per pass (keeps a pass's input rows and weights in L2).
pub(super) const CI_TILE: usize = 32;

/// `line` into `dst` with `p` columns of padding on each side (reflected, or zeros) and zeros
/// beyond: the interior as one copy, then the borders.
pub(super) fn pad_row(dst: &mut [f32], line: &[f32], p: usize, reflect: bool) {
    let w = line.len();
    dst[p..p + w].copy_from_slice(line);
    dst[p + w..].fill(0.0);
    for q in 1..=p {
        let (l, r) = if reflect { (line[q], line[w - 1 - q]) } else { (0.0, 0.0) };
        dst[p - q] = l;
        dst[p + w - 1 + q] = r;
    }
}

/// Output channels per register block (a divisor of `cout_pg`, the channels of one group);
/// the pixel vectors per block follow from the register budget (see [`conv_row`]).
pub(super) fn block_channels(isa: Isa, cout_pg: usize) -> usize {
    let widest = if isa == Isa::Avx512 { 8 } else { 4 };
    [8, 4, 2, 1].into_iter().find(|&c| c <= widest && cout_pg.is_multiple_of(c)).unwrap_or(1)
}

/// Weights `[C_out, taps]` packed block-major, then tap, then the `cb` channels of the block.
pub(super) fn pack_weights(weight: &[f32], cout: usize, taps: usize, cb: usize) -> Vec<f32> {
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

/// One output row of `cb` channels: `dst[c][x] (+)= Σ_t w[t][c] · rows[off[t] + x]`.
///
/// # Safety
/// Every `dst[c]` (`c < cb`) must be valid for `ow` writes, and `rows[off[t] + x]` in bounds
/// for `x < ow` rounded up to a multiple of [`BLOCK_WIDTHS`] (the block width, 24 or 32
/// pixels, divides it).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn conv_row(
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
