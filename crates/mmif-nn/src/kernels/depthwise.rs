//! Depthwise convolutions (`groups = C_in = C_out`, stride 1).

use super::block::{LANES, NX, pad_row};
use super::conv::ConvGeom;
use super::{Isa, isa, write_all};
use rayon::prelude::*;

/// Whether [`depthwise_conv2d`] handles `g` (depthwise, stride 1).
pub(crate) fn depthwise_supported(g: &ConvGeom) -> bool {
    let [_, cin, _, _] = g.input;
    let [cout, cpg, _, _] = g.weight;
    g.supported() && g.stride == 1 && cpg == 1 && cout == cin && g.groups == cin
}

/// A depthwise conv (`groups = C_in = C_out`, stride 1): each plane is copied once into a
/// padded buffer, then every output row is 8-pixel vectors × `KH·KW` taps. burn-flex's
/// depthwise kernel takes ~3× longer at 480×640.
pub(crate) fn depthwise_conv2d(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: &ConvGeom) -> Vec<f32> {
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
    let fill = |out: &super::Out| {
        (0..b * c).into_par_iter().for_each_init(
            || (vec![0.0f32; hp * lp], vec![0.0f32; ow]),
            |(padded, row), plane| {
                // SAFETY: task `plane` alone writes output plane `plane`.
                let o = unsafe { out.part(plane * oh * ow, oh * ow) };
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
                    pad_row(dst, &src[sy * w..][..w], p, g.reflect);
                }
                let wk = &weight[ci * kh * kw..][..kh * kw];
                let b0 = bias.map_or(0.0, |bs| bs[ci]);
                #[cfg(target_arch = "x86_64")]
                if isa != Isa::Scalar {
                    // SAFETY: the CPU has AVX2 and FMA.
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
                    o[oy * ow..][..ow].copy_from_slice(row);
                }
            },
        );
    };
    // SAFETY: task `plane` writes every row of output plane `plane`; the tasks cover all planes.
    unsafe { write_all(b * c * oh * ow, fill) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn depthwise_plane_avx2(
    padded: &[f32],
    lp: usize,
    wk: &[f32],
    kh: usize,
    kw: usize,
    b0: f32,
    o: &mut [f32],
    oh: usize,
    ow: usize,
) {
    use std::arch::x86_64::*;
    const N: usize = 4;
    let chunk = LANES * N;
    assert!(padded.len() >= (oh + kh - 1) * lp && lp >= ow.div_ceil(chunk) * chunk + kw - 1);
    assert!(o.len() >= oh * ow);
    let pp = padded.as_ptr();
    let o = o.as_mut_ptr();
    for oy in 0..oh {
        let mut x0 = 0;
        while x0 < ow {
            // SAFETY: reads end before `(oy + kh - 1) * lp + x0 + chunk + kw - 1` ≤ padded.len()
            // (asserted above); `o` holds `oh * ow` values (asserted above).
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
