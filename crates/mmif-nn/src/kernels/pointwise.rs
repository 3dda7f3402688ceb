//! 1×1 convolutions on the register blocks of [`conv_row`](super::block), over pieces of pixels.

use super::block::{BLOCK_WIDTHS, CB, CI_TILE, block_channels, conv_row, pack_weights};
use super::math::Act;
use super::{isa, write_all};
use rayon::prelude::*;

/// Pixels per task of [`pointwise_conv2d`]: a multiple of [`BLOCK_WIDTHS`], so that the
/// register blocks never read past a piece.
const PW_PIXELS: usize = 4 * BLOCK_WIDTHS;

/// A 1×1 convolution (`weight` `[C_out, C_in]`, stride 1, no padding, one group) of `x`
/// (`[B, C_in, H, W]`): the register blocks of [`conv2d`] over pieces of `PW_PIXELS` (384)
/// pixels, without padded rows.
pub(crate) fn pointwise_conv2d(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    shape: [usize; 4],
    cout: usize,
) -> Vec<f32> {
    let [b, cin, h, w] = shape;
    pointwise_conv2d_ext(&[(x, cin)], weight, bias, [b, h, w], cout, Pointwise::default())
}

/// What [`pointwise_conv2d_ext`] does to the conv's output before writing it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pointwise<'a> {
    /// Added to the output (`[B, C_out, H, W]`).
    pub residual: Option<&'a [f32]>,
    /// The activation, applied last.
    pub act: Act,
}

/// A 1×1 convolution of the channel concatenation of `inputs` (each `(values, channels)`, of
/// shape `[B, channels, H, W]`, with `hw = [B, H, W]`) without forming the concatenation,
/// then `post` (residual, PReLU) on the output while it is in cache.
pub(crate) fn pointwise_conv2d_ext(
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
    let fill = |out: &super::Out| {
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
                        let dst: [*mut f32; CB] =
                            std::array::from_fn(|c| unsafe { out.at((bi * cout + co0 + c.min(cb - 1)) * hw + p0, n) });
                        let init: [f32; CB] = std::array::from_fn(|c| bias.map_or(0.0, |bs| bs[co0 + c.min(cb - 1)]));
                        let mut first = t0 == 0;
                        if let (true, Some(res)) = (first, residual) {
                            // Start the sums from residual + bias.
                            for c in 0..cb {
                                let r = &res[(bi * cout + co0 + c) * hw + p0..][..n];
                                // SAFETY: this task's pixels of channel co0 + c (see `dst`).
                                let o = unsafe { out.part((bi * cout + co0 + c) * hw + p0, n) };
                                for (o, &r) in o.iter_mut().zip(r) {
                                    *o = r + init[c];
                                }
                            }
                            first = false;
                        }
                        // SAFETY: `dst` rows hold `n` values; reads stay within `rows[off + PW_PIXELS]`
                        // (the padded copy).
                        unsafe {
                            conv_row(isa, cb, rows, &off[t0..t1], &wblk[t0 * cb..t1 * cb], &dst, n, first, &init)
                        };
                        if t1 == cin && post.act != Act::None {
                            for c in 0..cb {
                                // SAFETY: as above; the block's rows are complete.
                                let o = unsafe { out.part((bi * cout + co0 + c) * hw + p0, n) };
                                post.act.apply(o);
                            }
                        }
                    }
                    t0 = t1;
                }
            },
        );
    };
    // SAFETY: the tasks cover every image and piece, and write every channel (the first
    // input-channel tile of each block writes all its pixels).
    unsafe { write_all(b * cout * hw, fill) }
}
