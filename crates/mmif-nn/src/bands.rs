//! Restormer-style blocks evaluated in horizontal bands of rows, so that memory stays bounded
//! on large images.
//!
//! A block of the form `x + project(attention(qkv_b(qkv_a(LN₁ x))))`, then `x + FFN(LN₂ x)`
//! (Restormer's `TransformerBlock`, the CDDFuse/EMMA Lite-Transformer
//! `BaseFeatureExtraction`) is local everywhere — 1×1 convs, 3×3 convs with a one-row halo,
//! per-pixel layer norms and gates — except the transposed attention, whose C×C matrices are
//! sums over all pixels. [`in_bands`] therefore makes three passes over the bands: the first
//! accumulates q·kᵀ and the squared norms of q and k (keeping v), the second applies the
//! attention to each band of v, the third runs the FFN. The result equals the whole-image
//! evaluation up to float rounding; no full-resolution temporary wider than the block's own
//! channels is formed.

use burn::module::Param;
use burn::tensor::{Tensor, activation};

use crate::kernels;
use crate::layers::{
    BaseFeatureExtraction, Conv2d, Epilogue, GatedFfn, LayerNorm, TransformerBlock, count_channel_attention,
    project_attention,
};

/// Largest whole-image temporary of a block before [`auto_rows`] splits it into bands, in
/// values (256 MB of f32). Bands cost time (halo rows, one more pass over the attention's
/// sums), so images up to about 480×640 run whole.
pub const BAND_VALUES: usize = 64 << 20;

/// The layers of a block that [`in_bands`] evaluates, borrowed.
pub struct Parts<'a> {
    pub norm1: &'a LayerNorm,
    /// The 1×1 conv to q, k and v.
    pub qkv_a: &'a Conv2d,
    /// The 3×3 conv after it (depthwise in Restormer, dense in the Lite-Transformer).
    pub qkv_b: &'a Conv2d,
    pub heads: usize,
    pub temperature: &'a Param<Tensor<3>>,
    /// The 1×1 conv after the attention.
    pub project: &'a Conv2d,
    pub norm2: &'a LayerNorm,
    pub ffn: &'a GatedFfn,
}

/// A block [`in_bands`] can evaluate.
pub trait Banded {
    fn parts(&self) -> Parts<'_>;
    /// The whole-image evaluation.
    fn forward_whole(&self, x: Tensor<4>) -> Tensor<4>;
}

impl Banded for TransformerBlock {
    fn parts(&self) -> Parts<'_> {
        Parts {
            norm1: &self.norm1,
            qkv_a: &self.attn.qkv,
            qkv_b: &self.attn.qkv_dwconv,
            heads: self.attn.heads,
            temperature: &self.attn.temperature,
            project: &self.attn.project_out,
            norm2: &self.norm2,
            ffn: &self.ffn,
        }
    }

    fn forward_whole(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }
}

impl Banded for BaseFeatureExtraction {
    fn parts(&self) -> Parts<'_> {
        Parts {
            norm1: &self.norm1,
            qkv_a: &self.attn.qkv1,
            qkv_b: &self.attn.qkv2,
            heads: self.attn.heads,
            temperature: &self.attn.scale,
            project: &self.attn.proj,
            norm2: &self.norm2,
            ffn: &self.mlp,
        }
    }

    fn forward_whole(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }
}

/// Rows per band for `block` on an input of shape `dims` so that its widest temporary stays
/// under [`BAND_VALUES`] (the whole height when it fits).
pub fn auto_rows(block: &impl Banded, dims: [usize; 4]) -> usize {
    let [_, c, h, w] = dims;
    let p = block.parts();
    // q, k and v (3C channels) over (rows + 2 halo rows) × W, and the FFN's 2·hidden channels
    // unless it runs as one fused kernel.
    let ffn = if p.ffn.fuses() { 0 } else { p.ffn.project_in.weight.dims()[0] };
    let widest = ffn.max(3 * c).max(p.qkv_a.weight.dims()[0]);
    (BAND_VALUES / (widest * w).max(1)).saturating_sub(2).clamp(1, h.max(1))
}

/// `block`'s forward, in bands of [`auto_rows`] rows when the image is large enough to need
/// them, whole otherwise.
pub fn auto(block: &impl Banded, x: Tensor<4>) -> Tensor<4> {
    let rows = auto_rows(block, x.dims());
    in_bands(block, x, rows)
}

/// `block`'s forward evaluated in bands of `rows` rows (see the module documentation). One
/// image at a time: a batch, or `rows` ≥ the height, runs whole.
pub fn in_bands(block: &impl Banded, x: Tensor<4>, rows: usize) -> Tensor<4> {
    let [b, _, h, w] = x.dims();
    let rows = rows.max(1);
    if b != 1 || rows >= h {
        return block.forward_whole(x);
    }
    let p = block.parts();
    let x_tiles: Vec<Tensor<4>> = (0..h).step_by(rows).map(|r| x.clone().narrow(2, r, rows.min(h - r))).collect();
    let x1_tiles = if kernels::on_host(&x) && p.project.is_pointwise() {
        drop(x);
        attention_kernels(&p, x_tiles)
    } else {
        drop(x);
        attention_composed(&p, x_tiles, w)
    };
    ffn(&p, x1_tiles)
}

/// A 3×3 conv applied to `y`, which holds the rows of a band plus one halo row above (`top`)
/// and below (`bottom`) where the band has a neighbour; at the image border the missing row
/// is the conv's own padding.
fn conv3x3_rows(conv: &Conv2d, y: Tensor<4>, top: bool, bottom: bool) -> Tensor<4> {
    conv.forward_fused(vec![y], Some([usize::from(!top), usize::from(!bottom)]), Epilogue::default())
}

/// Rows `[r0 - 1, r1 + 1)` of the image held as `tiles` (clipped to the image), and whether
/// the halo rows above and below exist.
fn with_halo(tiles: &[Tensor<4>], i: usize) -> (Tensor<4>, bool, bool) {
    let mut parts = Vec::with_capacity(3);
    let top = i > 0;
    let bottom = i + 1 < tiles.len();
    if top {
        let prev = &tiles[i - 1];
        let h = prev.dims()[2];
        parts.push(prev.clone().narrow(2, h - 1, 1));
    }
    parts.push(tiles[i].clone());
    if bottom {
        parts.push(tiles[i + 1].clone().narrow(2, 0, 1));
    }
    (Tensor::cat(parts, 2), top, bottom)
}

/// The bands' q, k and v.
fn qkv_band(p: &Parts<'_>, tiles: &[Tensor<4>], i: usize) -> Tensor<4> {
    let (halo, top, bottom) = with_halo(tiles, i);
    conv3x3_rows(p.qkv_b, p.qkv_a.forward(p.norm1.forward(halo)), top, bottom)
}

/// Passes 1 and 2 on plain `flex` tensors: the sums of every band go into one
/// `kernels::ChannelGram`, and each band of v goes through `project` with the attention
/// folded into its weight and the residual added ([`project_attention`]).
fn attention_kernels(p: &Parts<'_>, x_tiles: Vec<Tensor<4>>) -> Vec<Tensor<4>> {
    let heads = p.heads;
    let mut stats: Option<kernels::ChannelGram> = None;
    let mut qkv_tiles = Vec::with_capacity(x_tiles.len());
    for i in 0..x_tiles.len() {
        let qkv = qkv_band(p, &x_tiles, i);
        let [_, c3, th, tw] = qkv.dims();
        count_channel_attention(1, c3 / 3, heads, th * tw);
        let host = kernels::host(&qkv).expect("a flex tensor (checked by the caller)");
        let band = kernels::ChannelGram::of(kernels::values(&host), qkv.dims(), heads);
        match &mut stats {
            Some(s) => s.add(&band),
            None => stats = Some(band),
        }
        qkv_tiles.push((host, qkv.dims()));
    }
    let stats = stats.expect("a band");
    let temperature = kernels::host(&p.temperature.val()).expect("a flex tensor");
    let weights = stats.softmax(kernels::values(&temperature));
    x_tiles
        .into_iter()
        .zip(qkv_tiles)
        .map(|(xt, (qkv, dims))| {
            project_attention(kernels::values(&qkv), dims, &weights, heads, p.project, &xt)
                .expect("a 1×1 project on flex tensors (checked by the caller)")
        })
        .collect()
}

/// Passes 1 and 2 as burn ops.
fn attention_composed(p: &Parts<'_>, x_tiles: Vec<Tensor<4>>, w: usize) -> Vec<Tensor<4>> {
    let heads = p.heads;
    let c = x_tiles[0].dims()[1];
    let d = c / heads;
    // Pass 1: q·kᵀ per head, Σq², Σk², and v, band by band.
    let mut gram: Option<Tensor<3>> = None;
    let (mut qq, mut kk): (Option<Tensor<3>>, Option<Tensor<3>>) = (None, None);
    let mut v_tiles = Vec::with_capacity(x_tiles.len());
    let add = |acc: Option<Tensor<3>>, t: Tensor<3>| Some(acc.map_or(t.clone(), |a| a + t));
    for i in 0..x_tiles.len() {
        let qkv = qkv_band(p, &x_tiles, i);
        let n = qkv.dims()[2] * w;
        count_channel_attention(1, c, heads, n);
        let mut parts = qkv.chunk(3, 1).into_iter();
        let mut next = || parts.next().expect("three chunks").reshape([heads, d, n]);
        let (q, k, v) = (next(), next(), next());
        qq = add(qq, q.clone().square().sum_dim(2));
        kk = add(kk, k.clone().square().sum_dim(2));
        gram = add(gram, q.matmul(k.swap_dims(1, 2)));
        v_tiles.push(v);
    }
    let (gram, qq, kk) = (gram.expect("a band"), qq.expect("a band"), kk.expect("a band"));
    // F.normalize: x / max(‖x‖, 1e-12), so q̂·k̂ᵀ = q·kᵀ / (max(‖q‖,ε) · max(‖k‖,ε)ᵀ).
    let (qn, kn) = (qq.sqrt().clamp_min(1e-12), kk.sqrt().clamp_min(1e-12));
    let scores = gram / qn / kn.swap_dims(1, 2) * p.temperature.val();
    let weights = activation::softmax(scores, 2);

    // Pass 2: x + project(attention · v), band by band.
    x_tiles
        .into_iter()
        .zip(v_tiles)
        .map(|(xt, v)| {
            let th = xt.dims()[2];
            let out = weights.clone().matmul(v).reshape([1, c, th, w]);
            p.project.forward_fused(vec![out], None, Epilogue::residual(xt))
        })
        .collect()
}

/// Pass 3: x1 + FFN(LN(x1)), band by band with a one-row halo for the FFN's 3×3 conv.
fn ffn(p: &Parts<'_>, x1_tiles: Vec<Tensor<4>>) -> Tensor<4> {
    let out: Vec<Tensor<4>> = (0..x1_tiles.len())
        .map(|i| {
            let (halo, top, bottom) = with_halo(&x1_tiles, i);
            let pad = [usize::from(!top), usize::from(!bottom)];
            p.ffn.forward_rows_add(p.norm2.forward(halo), pad, x1_tiles[i].clone())
        })
        .collect();
    drop(x1_tiles);
    Tensor::cat(out, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Pad;
    use crate::test_util::max_diff;
    use burn::tensor::Distribution;

    fn rand(shape: [usize; 4]) -> Tensor<4> {
        Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), &crate::cpu())
    }

    #[test]
    fn restormer_in_bands_equals_whole() {
        let dev = crate::cpu();
        for bias in [false, true] {
            let block = TransformerBlock::new(&dev, 16, 4, 4.0, bias);
            let x = rand([1, 16, 11, 7]);
            for rows in [1, 2, 3, 5, 10] {
                // Kernels (plain tensors) and burn ops (autodiff tensors) alike.
                let d = max_diff(in_bands(&block, x.clone(), rows), block.forward(x.clone()));
                assert!(d < 1e-5, "bias {bias}, {rows} rows: differs by {d}");
                let d = max_diff(in_bands(&block, x.clone().autodiff(), rows).inner(), block.forward(x.clone()));
                assert!(d < 1e-5, "bias {bias}, {rows} rows, burn ops: differs by {d}");
            }
        }
    }

    #[test]
    fn lite_transformer_in_bands_equals_whole() {
        let dev = crate::cpu();
        for pad in [Pad::Zeros, Pad::Reflect] {
            let block = BaseFeatureExtraction::new(&dev, 16, 8, pad);
            let x = rand([1, 16, 12, 9]);
            for rows in [2, 3, 5, 11] {
                let d = max_diff(in_bands(&block, x.clone(), rows), block.forward(x.clone()));
                assert!(d < 1e-5, "{pad:?}, {rows} rows: differs by {d}");
            }
        }
    }

    #[test]
    fn auto_rows_keeps_small_images_whole_and_splits_large_ones() {
        let dev = crate::cpu();
        let block = TransformerBlock::new(&dev, 32, 8, 4.0, false);
        assert_eq!(auto_rows(&block, [1, 32, 480, 640]), 480);
        let rows = auto_rows(&block, [1, 32, 4000, 6000]);
        assert!(rows < 4000 && (rows + 2) * 96 * 6000 <= BAND_VALUES, "{rows}");
    }
}
