//! Direct convolutions: any kernel size, stride and groups, zero or reflection padding built in.

use super::block::{BLOCK_WIDTHS, CB, CI_TILE, block_channels, conv_row, pack_weights, pad_row};
use super::{isa, write_all};
use rayon::prelude::*;

/// Geometry of a [`conv2d`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeom {
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
    pub(crate) fn new(
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
    pub(crate) fn output(&self) -> [usize; 4] {
        let [b, _, h, w] = self.input;
        let [cout, _, kh, kw] = self.weight;
        let oh = (h + self.pad_rows[0] + self.pad_rows[1] - kh) / self.stride + 1;
        let ow = (w + 2 * self.padding - kw) / self.stride + 1;
        [b, cout, oh, ow]
    }

    /// Whether [`conv2d`] handles this geometry.
    pub(crate) fn supported(&self) -> bool {
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

/// `conv2d` with PyTorch semantics on host data: `x` is `[B, C_in, H, W]`, `weight`
/// `[C_out, C_in/groups, KH, KW]`, all row-major. Returns `[B, C_out, OH, OW]`.
pub(crate) fn conv2d(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: &ConvGeom) -> Vec<f32> {
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
    // A 1×1 conv without stride or padding reads its input rows where they are, whenever the
    // whole vectors past a row's end stay inside `x` (they read the next row; those lanes are
    // never stored): no copy into `rows`.
    let pointwise = kh == 1 && kw == 1 && s == 1 && p == 0 && g.pad_rows == [0, 0];
    let direct_off: Vec<usize> = (0..cpg).map(|ci| ci * h * w).collect();
    let read_len = ow.div_ceil(BLOCK_WIDTHS) * BLOCK_WIDTHS;
    let fill = |out: &super::Out| {
        (0..b * oh).into_par_iter().for_each_init(
            || vec![0.0f32; cin * row_len],
            |rows, task| {
                let (bi, oy) = (task / oh, task % oh);
                let direct = pointwise && ((bi + 1) * cin - 1) * h * w + oy * w + read_len <= x.len();
                // Build the rows.
                for ci in (0..cin).filter(|_| !direct) {
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
                                pad_row(dst, line, p, g.reflect);
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
                        let (rbase, tap_off) = if direct {
                            (&x[(bi * cin + grp * cpg) * h * w + oy * w..], &direct_off)
                        } else {
                            (&rows[grp * cpg * row_len..], &tap_off)
                        };
                        let wblk = &wp[blk * taps * cb..][..taps * cb];
                        // SAFETY: task (bi, oy) alone writes row oy of image bi, of every channel.
                        let dst: [*mut f32; CB] = std::array::from_fn(|c| {
                            let c = c.min(cb - 1);
                            unsafe { out.at(((bi * cout + co0 + c) * oh + oy) * ow, ow) }
                        });
                        let init: [f32; CB] = std::array::from_fn(|c| bias.map_or(0.0, |bs| bs[co0 + c.min(cb - 1)]));
                        // SAFETY: `dst` rows hold `ow` values; the row reads stay within `lp`
                        // (see its definition) and `tap_off` < `cpg * row_len`, or, reading `x`
                        // directly, end at most `read_len` past the start of row `oy` of the
                        // image's last channel, inside `x` (checked for `direct`).
                        unsafe {
                            conv_row(
                                isa,
                                cb,
                                rbase,
                                &tap_off[t0..t1],
                                &wblk[t0 * cb..t1 * cb],
                                &dst,
                                ow,
                                t0 == 0,
                                &init,
                            );
                        }
                    }
                    t0 = t1;
                }
            },
        );
    };
    // SAFETY: the first input-channel tile writes every value: task (bi, oy) writes row oy of
    // image bi of every channel, and the tasks cover all `(image, row)` pairs.
    unsafe { write_all(b * cout * oh * ow, fill) }
}
