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
    Activation, BaseFeatureExtraction, Conv2d, Epilogue, GatedFfn, LayerNorm, TransformerBlock,
    count_channel_attention, pointwise_then, project_attention,
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
    let [b, _, h, _] = x.dims();
    let rows = rows.max(1);
    if b != 1 || rows >= h {
        return block.forward_whole(x);
    }
    let p = block.parts();
    let x_tiles: Vec<Tensor<4>> = (0..h).step_by(rows).map(|r| x.clone().narrow(2, r, rows.min(h - r))).collect();
    drop(x);
    // Pass 1: the sums of every band; pass 2: x + project(attention · v), band by band.
    let mut sums = AttentionSums::new(&p);
    let qkv_tiles: Vec<Tensor<4>> = (0..x_tiles.len())
        .map(|i| {
            let qkv = qkv_band(&p, &x_tiles, i);
            sums.add(&qkv);
            qkv
        })
        .collect();
    let weights = sums.weights();
    let x1_tiles = x_tiles.into_iter().zip(qkv_tiles).map(|(xt, qkv)| weights.apply(qkv, p.project, xt)).collect();
    ffn(&p, x1_tiles)
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

/// The bands' q, k and v: the 3×3 conv runs on the band with one halo row above (`top`) and
/// below (`bottom`) where it has a neighbour; at the image border the missing row is the
/// conv's own padding.
fn qkv_band(p: &Parts<'_>, tiles: &[Tensor<4>], i: usize) -> Tensor<4> {
    let (halo, top, bottom) = with_halo(tiles, i);
    pointwise_then(p.qkv_a, p.qkv_b, p.norm1.forward(halo), Some([usize::from(!top), usize::from(!bottom)]))
}

/// The whole-image sums behind one transposed attention, added up over bands of rows: q·kᵀ per
/// head and the squared norms of the q and k channels. On plain `flex` tensors they go into one
/// `kernels::ChannelGram` (f32 dot products over pieces of 1024 pixels, summed in f64); other
/// tensors take burn ops.
pub struct AttentionSums {
    heads: usize,
    temperature: Tensor<3>,
    acc: Sums,
}

enum Sums {
    Empty,
    Gram(kernels::ChannelGram),
    /// q·kᵀ, Σq², Σk².
    Tensors(Box<[Tensor<3>; 3]>),
}

impl AttentionSums {
    /// No rows yet, for the attention of the block `p`.
    pub fn new(p: &Parts<'_>) -> Self {
        Self { heads: p.heads, temperature: p.temperature.val(), acc: Sums::Empty }
    }

    /// Adds the sums of `qkv` (`1×3C×h×W`: q, k and v of some rows of the image). Every row of
    /// the image must be added exactly once.
    pub fn add(&mut self, qkv: &Tensor<4>) {
        let [b, c3, th, tw] = qkv.dims();
        assert_eq!(b, 1, "one image at a time");
        let (heads, c) = (self.heads, c3 / 3);
        count_channel_attention(1, c, heads, th * tw);
        if let Some(host) = kernels::host(qkv).filter(|_| !matches!(self.acc, Sums::Tensors(_))) {
            let band = kernels::ChannelGram::of(kernels::values(&host), qkv.dims(), heads);
            match &mut self.acc {
                Sums::Gram(s) => s.add(&band),
                _ => self.acc = Sums::Gram(band),
            }
            return;
        }
        let (d, n) = (c / heads, th * tw);
        let mut parts = qkv.clone().chunk(3, 1).into_iter();
        let mut next = || parts.next().expect("three chunks").reshape([heads, d, n]);
        let (q, k) = (next(), next());
        let (qq, kk) = (q.clone().square().sum_dim(2), k.clone().square().sum_dim(2));
        let gram = q.matmul(k.swap_dims(1, 2));
        self.acc = Sums::Tensors(Box::new(match std::mem::replace(&mut self.acc, Sums::Empty) {
            Sums::Empty => [gram, qq, kk],
            Sums::Tensors(sums) => {
                let [g, q2, k2] = *sums;
                [g + gram, q2 + qq, k2 + kk]
            }
            Sums::Gram(_) => unreachable!("kernel sums take every band (checked above)"),
        }));
    }

    /// The attention weights of the whole image, `softmax_j(q̂_i·k̂_j · t)` per head.
    pub fn weights(self) -> AttentionWeights {
        let heads = self.heads;
        let weights = match self.acc {
            Sums::Empty => panic!("attention weights of no rows"),
            Sums::Gram(g) => match kernels::host(&self.temperature) {
                Some(t) => Weights::Host(g.softmax(kernels::values(&t))),
                None => Weights::Tensor(Box::new(kernels::from_host(
                    g.softmax(&crate::weights::tensor_to_vec(self.temperature)),
                    [heads, g.d, g.d],
                ))),
            },
            Sums::Tensors(sums) => {
                let [gram, qq, kk] = *sums;
                // F.normalize: x / max(‖x‖, 1e-12), so q̂·k̂ᵀ = q·kᵀ / (max(‖q‖,ε) · max(‖k‖,ε)ᵀ).
                let (qn, kn) = (qq.sqrt().clamp_min(1e-12), kk.sqrt().clamp_min(1e-12));
                let scores = gram / qn / kn.swap_dims(1, 2) * self.temperature;
                Weights::Tensor(Box::new(activation::softmax(scores, 2)))
            }
        };
        AttentionWeights { heads, weights }
    }
}

/// The attention weights of a whole image ([`AttentionSums::weights`]), `[heads, d, d]`.
pub struct AttentionWeights {
    heads: usize,
    weights: Weights,
}

enum Weights {
    Host(Vec<f32>),
    Tensor(Box<Tensor<3>>),
}

impl AttentionWeights {
    /// `residual + project(attention · v)` for some rows of the image: `qkv` holds their q, k and
    /// v, `residual` the same rows of the block's input. On plain `flex` tensors the attention is
    /// folded into `project`'s 1×1 weight ([`project_attention`]).
    pub fn apply(&self, qkv: Tensor<4>, project: &Conv2d, residual: Tensor<4>) -> Tensor<4> {
        let heads = self.heads;
        let [_, c3, th, tw] = qkv.dims();
        let (c, d) = (c3 / 3, c3 / 3 / heads);
        let weights = match &self.weights {
            Weights::Host(w) => {
                if let Some(y) = kernels::host(&qkv).and_then(|host| {
                    project_attention(kernels::values(&host), qkv.dims(), w, heads, project, &residual)
                }) {
                    return y;
                }
                kernels::from_host(w.clone(), [heads, d, d])
            }
            Weights::Tensor(w) => (**w).clone(),
        };
        let v = qkv.narrow(1, 2 * c, c).reshape([heads, d, th * tw]);
        let out = weights.matmul(v).reshape([1, c, th, tw]);
        project.forward_fused(vec![out], None, Epilogue::residual(residual))
    }
}

/// Rows `top .. top + h` of a feature map of an image `image_height` rows high, as a `1×C×h×W`
/// tensor: a band of rows with whatever halo rows it still carries. A stride-1 conv with `p`
/// rows of padding computes `p` fewer rows at each side where the band does not reach the image
/// border, and pads (zeros or reflection) only at the border ([`Band::conv`]), so a chain of
/// local layers on a band gives exactly the rows the whole-image evaluation gives there.
#[derive(Clone, Debug)]
pub struct Band {
    pub x: Tensor<4>,
    pub top: usize,
    pub image_height: usize,
}

impl Band {
    /// Rows `top..bottom` of the whole-image map `x` (`1×C×H×W`).
    pub fn of(x: &Tensor<4>, top: usize, bottom: usize) -> Self {
        let h = x.dims()[2];
        assert!(top < bottom && bottom <= h, "rows {top}..{bottom} of an image {h} rows high");
        Self { x: x.clone().narrow(2, top, bottom - top), top, image_height: h }
    }

    /// One past the last row.
    pub fn bottom(&self) -> usize {
        self.top + self.x.dims()[2]
    }

    /// Rows `top..bottom`, which this band must hold.
    pub fn narrow(self, top: usize, bottom: usize) -> Self {
        let (t0, b0) = (self.top, self.bottom());
        assert!(t0 <= top && top < bottom && bottom <= b0, "rows {top}..{bottom} of a band of rows {t0}..{b0}");
        if (top, bottom) == (t0, b0) {
            return self;
        }
        Self { x: self.x.narrow(2, top - t0, bottom - top), top, image_height: self.image_height }
    }

    /// The same rows after a per-pixel map of the tensor.
    pub fn map(self, f: impl FnOnce(Tensor<4>) -> Tensor<4>) -> Self {
        let x = f(self.x);
        Self { x, ..self }
    }

    /// The row padding a stride-1 conv with `p` rows of padding takes on this band (only at the
    /// image border) and the rows `top..bottom` it computes.
    fn conv_rows(&self, p: usize) -> ([usize; 2], usize, usize) {
        let (top, bottom) = (self.top, self.bottom());
        let pad = [if top == 0 { p } else { 0 }, if bottom == self.image_height { p } else { 0 }];
        let (out_top, out_bottom) = (top + p - pad[0], (bottom + pad[1]).saturating_sub(p));
        assert!(out_top < out_bottom, "a band of rows {top}..{bottom} is too thin for a conv padding {p} rows");
        (pad, out_top, out_bottom)
    }

    /// `act(residual + conv(cat(inputs, 1)))` on the rows a stride-1 `conv` with odd kernel can
    /// compute from `inputs` (all on the same rows); `residual` must hold those rows.
    pub fn conv(conv: &Conv2d, inputs: Vec<Band>, residual: Option<&Band>, act: Activation<'_>) -> Band {
        let first = inputs.first().expect("a conv needs an input");
        let (top, bottom, image_height) = (first.top, first.bottom(), first.image_height);
        assert!(inputs.iter().all(|b| (b.top, b.bottom()) == (top, bottom)), "inputs on different rows");
        assert_eq!(conv.stride, 1, "a banded conv has stride 1");
        let (pad, out_top, out_bottom) = first.conv_rows(conv.padding);
        let residual = residual.map(|r| r.clone().narrow(out_top, out_bottom).x);
        let xs = inputs.into_iter().map(|b| b.x).collect();
        let x = conv.forward_fused(xs, Some(pad), Epilogue { residual, act });
        Band { x, top: out_top, image_height }
    }
}

impl std::ops::Add for Band {
    type Output = Band;

    /// The element-wise sum of two bands of the same rows.
    fn add(self, other: Band) -> Band {
        assert_eq!((self.top, self.bottom()), (other.top, other.bottom()), "bands on different rows");
        self.map(|x| x + other.x)
    }
}

/// The q, k and v of the block `p` on the rows its 3×3 conv can compute from `x`.
pub fn qkv_rows(p: &Parts<'_>, x: &Band) -> Band {
    let normed = x.clone().map(|t| p.qkv_a.forward(p.norm1.forward(t)));
    Band::conv(p.qkv_b, vec![normed], None, Activation::None)
}

/// The block `p` on the rows it can compute from `x`, with the attention weights of the whole
/// image computed beforehand.
pub fn block_rows(p: &Parts<'_>, attention: &AttentionWeights, x: Band) -> Band {
    let qkv = qkv_rows(p, &x);
    let (top, image_height) = (qkv.top, x.image_height);
    let residual = x.narrow(top, qkv.bottom()).x;
    let x1 = Band { x: attention.apply(qkv.x, p.project, residual), top, image_height };
    let (pad, out_top, out_bottom) = x1.conv_rows(p.ffn.dwconv.padding);
    let normed = p.norm2.forward(x1.x.clone());
    let y = p.ffn.forward_rows_add(normed, pad, x1.narrow(out_top, out_bottom).x);
    Band { x: y, top: out_top, image_height }
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
