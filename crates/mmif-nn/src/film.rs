//! FILM (Zhao et al., "Image Fusion via Vision-Language Model", ICML 2024): image fusion guided
//! by text features of the scene.
//!
//! ```text
//!  text (T×768) ── Conv1d → T×256 ────────────┬──────────────┬──────────────┐
//!                                             │              │              │
//!  A ─┐                                 ┌─────┴─────┐  ┌─────┴─────┐  ┌─────┴─────┐     ┌─ Restormer(64) ─ 1×1 ─┐
//!     ├─────────────────────────────────┤ cablock 1 ├──┤ cablock 2 ├──┤ cablock 3 ├─ ⊕ ─┤                       │
//!  B ─┘                                 └───────────┘  └───────────┘  └───────────┘     └─ Restormer ─ Restormer ─ 1×1 ─ σ
//!
//!  one side of a cablock (A and B have their own weights):
//!   x ─ conv3×3 ─ PReLU ─ Restormer ─ f ─┬─────────────────────────────────────────────────────┐
//!                                        └─ 1×1 ─ nearest to 288×384 ─ tokens of 256 ─ X      │
//!   text ─ query ┐                                                                  │          │
//!                MultiheadAttention(key = value = X) ─ mean over text tokens ─ L1 norm ─ ×X ───┤
//!                                      ─ view 32×288×384 ─ nearest to H×W ─ 1×1 ─ PReLU ─ + f  │
//!                                                       concat(f, ·) ─ 1×1 ─ PReLU ─ out ───┘
//! ```
//! Field names are the official module names (`restormerca1.convA1`, …), so parameter paths are
//! the keys of the official checkpoint's `model` state dict (after `module.` is removed).
#![allow(non_snake_case)]

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData, activation};

use crate::layers::{Conv2d, ConvCfg, PRelu, TransformerBlock};
use crate::{bands, kernels};

/// Width of the CLIP-style text features FILM reads.
pub const TEXT_DIM: usize = 768;
/// Width the text and image tokens are projected to (`hidden_dim`).
pub const HIDDEN: usize = 256;
/// Channels of the image features (`mid_channel`, `restormerdim`, `image2text_dim`).
pub const MID: usize = 32;
/// Heads of the Restormer blocks and of the cross-attention.
pub const HEADS: usize = 8;
/// FFN expansion factor of every Restormer block.
const FFN_FACTOR: f64 = 4.0;
/// The fixed grid image features are resized to before becoming tokens.
pub const GRID: [usize; 2] = [288, 384];

/// Text features `1×T×768` from `T·768` row-major values (panics if the length is not `T·768`).
pub fn text_tensor(data: Vec<f32>, tokens: usize, device: &Device) -> Tensor<3> {
    assert_eq!(data.len(), tokens * TEXT_DIM, "text features must hold T·{TEXT_DIM} values");
    Tensor::from_data(TensorData::new(data, [1, tokens, TEXT_DIM]), device)
}

/// Source indices of PyTorch's `F.interpolate(mode='nearest')` along one axis when resizing
/// `input` samples to `output`: `min(floor(dst · (input / output)), input − 1)` with the scale
/// and the product in f32, as ATen's `nearest_idx` computes them.
pub fn nearest_indices(input: usize, output: usize) -> Vec<usize> {
    if input == output {
        return (0..output).collect();
    }
    if output == 2 * input {
        return (0..output).map(|o| o >> 1).collect();
    }
    let scale = input as f32 / output as f32;
    (0..output).map(|o| ((o as f32 * scale).floor() as usize).min(input - 1)).collect()
}

fn index_tensor(idx: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i32> = idx.iter().map(|&i| i as i32).collect();
    Tensor::from_data(TensorData::new(v, [idx.len()]), device)
}

/// `F.interpolate(x, [h, w], mode='nearest')` as two index gathers.
pub fn resize_nearest(x: Tensor<4>, h: usize, w: usize) -> Tensor<4> {
    let [_, _, ih, iw] = x.dims();
    if ih == h && iw == w {
        return x;
    }
    if let Some(y) = resize_nearest_kernel(&x, h, w, None) {
        return y;
    }
    let device = x.device();
    let x = if ih == h { x } else { x.select(2, index_tensor(&nearest_indices(ih, h), &device)) };
    if iw == w { x } else { x.select(3, index_tensor(&nearest_indices(iw, w), &device)) }
}

/// `resize_nearest(x, h, w) + residual`, in one pass on the CPU when the tensors allow it.
pub fn resize_nearest_add(x: Tensor<4>, h: usize, w: usize, residual: Tensor<4>) -> Tensor<4> {
    if let Some(y) = resize_nearest_kernel(&x, h, w, Some(&residual)) {
        return y;
    }
    resize_nearest(x, h, w) + residual
}

/// [`resize_nearest`] (plus `residual`) as one gather on plain `flex` tensors, else `None`.
fn resize_nearest_kernel(x: &Tensor<4>, h: usize, w: usize, residual: Option<&Tensor<4>>) -> Option<Tensor<4>> {
    let [b, c, ih, iw] = x.dims();
    if residual.is_some_and(|r| r.dims() != [b, c, h, w]) {
        return None;
    }
    let xh = kernels::host(x)?;
    let rh = match residual {
        Some(r) => Some(kernels::host(r)?),
        None => None,
    };
    let (rows, cols) = (nearest_indices(ih, h), nearest_indices(iw, w));
    let out =
        kernels::gather_rows_cols_add(kernels::values(&xh), x.dims(), &rows, &cols, rh.as_ref().map(kernels::values));
    Some(kernels::from_host(out, [b, c, h, w]))
}

/// `softmax(scores, -1).mean(1)` of `B×L×S` scores: `B×1×S`, in one pass on the CPU
/// ([`crate::kernels::softmax_mean_rows`]) when the tensor allows it.
pub fn softmax_mean_rows(scores: Tensor<3>) -> Tensor<3> {
    if let Some(h) = crate::kernels::host(&scores) {
        let [b, _, s] = scores.dims();
        return crate::kernels::from_host(
            crate::kernels::softmax_mean_rows(crate::kernels::values(&h), scores.dims()),
            [b, 1, s],
        );
    }
    activation::softmax(scores, 2).mean_dim(1)
}

/// `F.normalize(x, p=1, dim=-1)`: x / max(Σ|x|, 1e-12) along the last dimension.
pub fn l1_normalize<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let n = x.clone().abs().sum_dim(D - 1).clamp_min(1e-12);
    x / n
}

/// `nn.Conv1d(cin, cout, 1)`: a per-token linear map.
#[derive(Module, Debug)]
pub struct Conv1x1d {
    pub weight: Param<Tensor<3>>,
    pub bias: Param<Tensor<1>>,
}

impl Conv1x1d {
    pub fn new(device: &Device, cin: usize, cout: usize) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::zeros([cout, cin, 1], device)),
            bias: Param::from_tensor(Tensor::zeros([cout], device)),
        }
    }

    /// Applies the conv over the token axis of `B×T×cin` (the official permute–conv–permute).
    pub fn forward_tokens(&self, x: Tensor<3>) -> Tensor<3> {
        let [cout, cin, _] = self.weight.dims();
        let [b, t, _] = x.dims();
        crate::flops::add(crate::flops::matmul(b, t, cin, cout));
        let w = self.weight.val().reshape([1, cout, cin]).swap_dims(1, 2);
        x.matmul(w) + self.bias.val().reshape([1, 1, cout])
    }
}

/// `text_preprocess`: Conv1d 768 → hidden over the tokens.
#[derive(Module, Debug)]
pub struct TextPreprocess {
    pub conv: Conv1x1d,
}

/// `nn.Linear(e, e)`.
#[derive(Module, Debug)]
pub struct Linear {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
}

impl Linear {
    pub fn new(device: &Device, din: usize, dout: usize) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::zeros([dout, din], device)),
            bias: Param::from_tensor(Tensor::zeros([dout], device)),
        }
    }

    /// `x Wᵀ + b` over the last axis of `B×N×din`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [dout, din] = self.weight.dims();
        let [b, n, _] = x.dims();
        crate::flops::add(crate::flops::matmul(b, n, din, dout));
        x.matmul(self.weight.val().reshape([1, dout, din]).swap_dims(1, 2)) + self.bias.val().reshape([1, 1, dout])
    }
}

/// `nn.MultiheadAttention(embed_dim, num_heads)` (batch second in PyTorch; here batch first).
#[derive(Module, Debug)]
pub struct MultiheadAttention {
    /// q, k and v projections stacked: `3E×E`.
    pub in_proj_weight: Param<Tensor<2>>,
    pub in_proj_bias: Param<Tensor<1>>,
    pub out_proj: Linear,
    pub heads: usize,
}

impl MultiheadAttention {
    pub fn new(device: &Device, embed: usize, heads: usize) -> Self {
        Self {
            in_proj_weight: Param::from_tensor(Tensor::zeros([3 * embed, embed], device)),
            in_proj_bias: Param::from_tensor(Tensor::zeros([3 * embed], device)),
            out_proj: Linear::new(device, embed, embed),
            heads,
        }
    }

    /// The `i`-th (0 = q, 1 = k, 2 = v) input projection applied to `B×N×E`.
    fn project(&self, x: Tensor<3>, i: usize) -> Tensor<3> {
        let [_, e] = self.in_proj_weight.dims();
        let [b, n, _] = x.dims();
        crate::flops::add(crate::flops::matmul(b, n, e, e));
        let w = self.in_proj_weight.val().narrow(0, i * e, e).reshape([1, e, e]).swap_dims(1, 2);
        x.matmul(w) + self.in_proj_bias.val().narrow(0, i * e, e).reshape([1, 1, e])
    }

    /// Adds the FLOPs of the attention products (scores and attention · v) of `l` queries
    /// over `s` keys.
    fn count_attention(&self, b: usize, l: usize, s: usize, e: usize) {
        let d = e / self.heads;
        crate::flops::add(
            crate::flops::matmul(b * self.heads, l, d, s) + crate::flops::matmul(b * self.heads, l, s, d),
        );
    }

    /// `B×N×E` → `B×heads×N×(E/heads)`.
    fn split_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, n, e] = x.dims();
        x.reshape([b, n, self.heads, e / self.heads]).swap_dims(1, 2)
    }

    /// Softmax attention weights `B×heads×L×S` of `query` (`B×L×E`) over `key` (`B×S×E`).
    fn weights(&self, query: Tensor<3>, key: Tensor<3>) -> Tensor<4> {
        let e = query.dims()[2];
        let scale = (1.0 / (e / self.heads) as f64).sqrt();
        let q = self.split_heads(self.project(query, 0)) * scale;
        let k = self.split_heads(self.project(key, 1));
        activation::softmax(q.matmul(k.swap_dims(2, 3)), 3)
    }

    /// The attention output `B×L×E`, exactly as the module computes it.
    pub fn forward(&self, query: Tensor<3>, key: Tensor<3>, value: Tensor<3>) -> Tensor<3> {
        let [b, l, e] = query.dims();
        self.count_attention(b, l, key.dims()[1], e);
        let attn = self.weights(query, key);
        let v = self.split_heads(self.project(value, 2));
        self.out_proj.forward(attn.matmul(v).swap_dims(1, 2).reshape([b, l, e]))
    }

    /// The mean over the `L` queries of [`Self::forward`], `B×1×E`, without forming the
    /// attention output: out_proj is affine and every attention row sums to one, so
    /// `mean_l(out) = out_proj(concat_h(mean_l(Aₕ) · value · W_vₕᵀ + b_vₕ))`.
    pub fn forward_mean_query(&self, query: Tensor<3>, key: Tensor<3>, value: Tensor<3>) -> Tensor<3> {
        let [b, l, e] = query.dims();
        // The FLOPs of the module's own graph: this evaluation skips the value projection and
        // the attention products, and runs out_proj on one row instead of L.
        let s = key.dims()[1];
        self.count_attention(b, l, s, e);
        crate::flops::add(crate::flops::matmul(b, s, e, e) + crate::flops::matmul(b, l.saturating_sub(1), e, e));
        let d = e / self.heads;
        let q = self.project(query, 0) * (1.0 / d as f64).sqrt();
        let k = self.project(key, 1);
        let hd = self.heads;
        // All heads in one batched product: scores B·heads×L×S.
        let qh = q.reshape([b, l, hd, d]).swap_dims(1, 2);
        let kh = k.reshape([b, s, hd, d]).swap_dims(1, 2);
        let scores = qh.matmul(kh.swap_dims(2, 3)).reshape([b * hd, l, s]);
        let mean_attn = softmax_mean_rows(scores).reshape([b, hd, s]); // B×heads×S
        let pooled = mean_attn.matmul(value).reshape([b, hd, 1, e]); // B×heads×1×E
        let wv = self.in_proj_weight.val().narrow(0, 2 * e, e).reshape([1, hd, d, e]).swap_dims(2, 3);
        let heads = pooled.matmul(wv).reshape([b, 1, e]); // B×1×E, head-major
        let bv = self.in_proj_bias.val().narrow(0, 2 * e, e).reshape([1, 1, e]);
        self.out_proj.forward(heads + bv)
    }
}

/// `CrossAttention`: a wrapper around `nn.MultiheadAttention`.
#[derive(Module, Debug)]
pub struct CrossAttention {
    pub multihead_attn: MultiheadAttention,
}

/// `imagefeature2textfeature`: 1×1 conv, nearest resize to [`GRID`], view as tokens.
#[derive(Module, Debug)]
pub struct ImageToText {
    pub conv: Conv2d,
}

impl ImageToText {
    /// The 1×1 conv on the resized grid, `B×C×288×384`. A 1×1 conv commutes with a nearest
    /// resize, so it runs on whichever of the two grids is smaller.
    fn grid(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        if h * w <= GRID[0] * GRID[1] {
            resize_nearest(self.conv.forward(x), GRID[0], GRID[1])
        } else {
            count_on_larger_grid(&self.conv, x.dims(), GRID);
            self.conv.forward(resize_nearest(x, GRID[0], GRID[1]))
        }
    }
}

/// Adds the FLOPs a 1×1 `conv` run on a `grid`-sized resize of an input of shape `full` skips:
/// the official graph runs it at the larger size (see [`crate::flops`]).
fn count_on_larger_grid(conv: &Conv2d, full: [usize; 4], grid: [usize; 2]) {
    let [b, cin, h, w] = full;
    let cout = conv.weight.dims()[0];
    let at = |oh, ow| crate::flops::conv([b, cout, oh, ow], cin, 1, 1);
    crate::flops::add(at(h, w).saturating_sub(at(grid[0], grid[1])));
}

/// `B×C×288×384` as `B×(C·288·384/hidden)×hidden` tokens (a plain view).
fn as_tokens(x: Tensor<4>, hidden: usize) -> Tensor<3> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c * h * w / hidden, hidden])
}

/// The layers of one side (A or B) of a [`RestormerCaBlock`], borrowed.
struct Side<'a> {
    conv1: &'a Conv2d,
    prelu1: &'a PRelu,
    restormer: &'a TransformerBlock,
    to_text: &'a ImageToText,
    attention: &'a CrossAttention,
    conv2: &'a Conv2d,
    prelu2: &'a PRelu,
    conv3: &'a Conv2d,
    prelu3: &'a PRelu,
}

impl Side<'_> {
    fn forward(&self, x: Tensor<4>, text: Tensor<3>, eval: Eval) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let x = self.prelu1.forward(self.conv1.forward(x));
        let feat = eval.block(self.restormer, x);
        let grid = self.to_text.grid(feat.clone());
        let [b, c, gh, gw] = grid.dims();
        let hidden = text.dims()[2];
        let tokens = as_tokens(grid, hidden);
        let mha = &self.attention.multihead_attn;
        let pooled = if eval.low_memory {
            mha.forward_mean_query(text, tokens.clone(), tokens.clone())
        } else {
            mha.forward(text, tokens.clone(), tokens.clone()).mean_dim(1)
        };
        let weighted = (tokens * l1_normalize(pooled)).reshape([b, c, gh, gw]);
        let guided = if gh * gw < h * w && kernels::on_host(&weighted) {
            // conv2 (1×1) and the PReLU act on each pixel alone, so they commute with the
            // nearest resize (a gather): run them on the smaller grid.
            count_on_larger_grid(self.conv2, [b, c, h, w], [gh, gw]);
            let g = self.conv2.forward_prelu(vec![weighted], self.prelu2);
            resize_nearest_add(g, h, w, feat.clone())
        } else {
            self.prelu2.forward(self.conv2.forward(resize_nearest(weighted, h, w))) + feat.clone()
        };
        self.conv3.forward_prelu(vec![feat, guided], self.prelu3)
    }
}

/// `restormer_cablock`: the text-guided feature block applied to both sources.
#[derive(Module, Debug)]
pub struct RestormerCaBlock {
    pub convA1: Conv2d,
    pub preluA1: PRelu,
    pub convA2: Conv2d,
    pub preluA2: PRelu,
    pub convA3: Conv2d,
    pub preluA3: PRelu,
    pub convB1: Conv2d,
    pub preluB1: PRelu,
    pub convB2: Conv2d,
    pub preluB2: PRelu,
    pub convB3: Conv2d,
    pub preluB3: PRelu,
    pub restormerA1: TransformerBlock,
    pub restormerB1: TransformerBlock,
    pub cross_attentionA1: CrossAttention,
    pub cross_attentionA2: CrossAttention,
    pub imagef2textfA1: ImageToText,
    pub imagef2textfB1: ImageToText,
}

impl RestormerCaBlock {
    /// `restormer_cablock(input_channel, hidden_dim=256, image2text_dim=32)` with the defaults
    /// FILM uses (32 channels, 8 heads, FFN factor 4, no bias in the stems and Restormers).
    pub fn new(device: &Device, input_channel: usize) -> Self {
        let stem = || Conv2d::new(device, input_channel, MID, 3, ConvCfg::same(3));
        let guide = || Conv2d::new(device, MID, MID, 1, ConvCfg::same(1).bias(true));
        let merge = || Conv2d::new(device, 2 * MID, MID, 1, ConvCfg::same(1).bias(true));
        let block = || TransformerBlock::new(device, MID, HEADS, FFN_FACTOR, false);
        let attention = || CrossAttention { multihead_attn: MultiheadAttention::new(device, HIDDEN, HEADS) };
        let to_text = || ImageToText { conv: Conv2d::new(device, MID, MID, 1, ConvCfg::same(1).bias(true)) };
        Self {
            convA1: stem(),
            preluA1: PRelu::new(device),
            convA2: guide(),
            preluA2: PRelu::new(device),
            convA3: merge(),
            preluA3: PRelu::new(device),
            convB1: stem(),
            preluB1: PRelu::new(device),
            convB2: guide(),
            preluB2: PRelu::new(device),
            convB3: merge(),
            preluB3: PRelu::new(device),
            restormerA1: block(),
            restormerB1: block(),
            cross_attentionA1: attention(),
            cross_attentionA2: attention(),
            imagef2textfA1: to_text(),
            imagef2textfB1: to_text(),
        }
    }

    fn side_a(&self) -> Side<'_> {
        Side {
            conv1: &self.convA1,
            prelu1: &self.preluA1,
            restormer: &self.restormerA1,
            to_text: &self.imagef2textfA1,
            attention: &self.cross_attentionA1,
            conv2: &self.convA2,
            prelu2: &self.preluA2,
            conv3: &self.convA3,
            prelu3: &self.preluA3,
        }
    }

    fn side_b(&self) -> Side<'_> {
        Side {
            conv1: &self.convB1,
            prelu1: &self.preluB1,
            restormer: &self.restormerB1,
            to_text: &self.imagef2textfB1,
            attention: &self.cross_attentionA2,
            conv2: &self.convB2,
            prelu2: &self.preluB2,
            conv3: &self.convB3,
            prelu3: &self.preluB3,
        }
    }

    fn forward(&self, a: Tensor<4>, b: Tensor<4>, text: Tensor<3>, eval: Eval) -> (Tensor<4>, Tensor<4>) {
        let a = self.side_a().forward(a, text.clone(), eval);
        let b = self.side_b().forward(b, text, eval);
        (a, b)
    }
}

/// How a [`Film`] evaluates its graph.
#[derive(Clone, Copy, Debug)]
struct Eval {
    low_memory: bool,
    /// Rows per band of the Restormer blocks; 0 = chosen by [`bands::auto_rows`].
    tile_rows: usize,
}

impl Eval {
    fn block(self, block: &TransformerBlock, x: Tensor<4>) -> Tensor<4> {
        if !self.low_memory {
            return block.forward(x);
        }
        let rows = match self.tile_rows {
            0 => bands::auto_rows(block, x.dims()),
            r => r,
        };
        bands::in_bands(block, x, rows)
    }
}

/// The whole FILM network (`Net(hidden_dim=256, image2text_dim=32)`).
#[derive(Module, Debug)]
pub struct Film {
    pub text_process: TextPreprocess,
    pub restormerca1: RestormerCaBlock,
    pub restormerca2: RestormerCaBlock,
    pub restormerca3: RestormerCaBlock,
    pub restormer1: TransformerBlock,
    pub restormer2: TransformerBlock,
    pub restormer3: TransformerBlock,
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    /// Use the memory-saving evaluation (pooled attention algebra, Restormer blocks in bands of
    /// rows). Same results up to float rounding; on by default.
    pub low_memory: bool,
    /// Rows per band of the Restormer blocks in the memory-saving evaluation; 0 (the default)
    /// picks them from the image width.
    pub tile_rows: usize,
}

impl Film {
    pub fn new(device: &Device) -> Self {
        Self {
            text_process: TextPreprocess { conv: Conv1x1d::new(device, TEXT_DIM, HIDDEN) },
            restormerca1: RestormerCaBlock::new(device, 1),
            restormerca2: RestormerCaBlock::new(device, MID),
            restormerca3: RestormerCaBlock::new(device, MID),
            restormer1: TransformerBlock::new(device, 2 * MID, HEADS, FFN_FACTOR, false),
            restormer2: TransformerBlock::new(device, MID, HEADS, FFN_FACTOR, false),
            restormer3: TransformerBlock::new(device, MID, HEADS, FFN_FACTOR, false),
            conv1: Conv2d::new(device, 2 * MID, MID, 1, ConvCfg::same(1).bias(true)),
            conv2: Conv2d::new(device, MID, 1, 1, ConvCfg::same(1).bias(true)),
            low_memory: true,
            tile_rows: 0,
        }
    }

    /// Switches between the memory-saving and the literal evaluation order.
    pub fn with_low_memory(mut self, on: bool) -> Self {
        self.low_memory = on;
        self
    }

    /// Forces the band height of the memory-saving evaluation (0 = automatic).
    pub fn with_tile_rows(mut self, rows: usize) -> Self {
        self.tile_rows = rows;
        self
    }

    /// Fuses `image_a` (infrared, MRI, over-exposed or near-focused) with `image_b` (visible,
    /// CT/PET/SPECT, under-exposed or far-focused), both `B×1×H×W` in [0, 1], guided by `text`
    /// (`B×T×768`). Returns the sigmoid output `B×1×H×W`, before the test script's min-max.
    pub fn forward(&self, image_a: Tensor<4>, image_b: Tensor<4>, text: Tensor<3>) -> Tensor<4> {
        let eval = Eval { low_memory: self.low_memory, tile_rows: self.tile_rows };
        let block = |b: &TransformerBlock, x| eval.block(b, x);
        let text = self.text_process.conv.forward_tokens(text);
        let (a, b) = self.restormerca1.forward(image_a, image_b, text.clone(), eval);
        let (a, b) = self.restormerca2.forward(a, b, text.clone(), eval);
        let (a, b) = self.restormerca3.forward(a, b, text, eval);
        let x = block(&self.restormer1, Tensor::cat(vec![a, b], 1));
        let x = block(&self.restormer3, block(&self.restormer2, self.conv1.forward(x)));
        activation::sigmoid(self.conv2.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_indices_follow_aten() {
        // Hand-computed floor(dst · in/out) with the scale in f32.
        assert_eq!(nearest_indices(5, 3), vec![0, 1, 3]); // scale 5/3: 0, 1.67, 3.33
        assert_eq!(nearest_indices(3, 5), vec![0, 0, 1, 1, 2]); // scale 0.6: 0, .6, 1.2, 1.8, 2.4
        assert_eq!(nearest_indices(4, 4), vec![0, 1, 2, 3]);
        assert_eq!(nearest_indices(3, 6), vec![0, 0, 1, 1, 2, 2]);
        assert_eq!(nearest_indices(7, 3), vec![0, 2, 4]); // scale 2.33: 0, 2.33, 4.67
        assert_eq!(nearest_indices(70, 288)[287], 69);
        assert_eq!(nearest_indices(3, 7), vec![0, 0, 0, 1, 1, 2, 2]); // scale 0.42857143
        // f32 rounding matters: 14 → 46 has scale 0.30434781 (just below 14/46), so dst 23
        // gives 6.9999995 and source 6, where exact arithmetic (23·14/46 = 7) would give 7.
        let idx = nearest_indices(14, 46);
        assert_eq!((idx[22], idx[23], idx[24]), (6, 6, 7));
        // And when shrinking: 26 → 22 at dst 11 gives 12.999999 → 12 (exact: 13).
        assert_eq!(nearest_indices(26, 22)[11], 12);
    }

    #[test]
    fn resize_nearest_gathers_rows_and_columns() {
        let dev = crate::cpu();
        let data: Vec<f32> = (0..15).map(|v| v as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(data, [1, 1, 3, 5]), &dev);
        let y = crate::weights::tensor_to_vec(resize_nearest(x, 5, 3));
        // rows [0,0,1,1,2] of a 3×5 grid, columns [0,1,3]
        let want = [0., 1., 3., 0., 1., 3., 5., 6., 8., 5., 6., 8., 10., 11., 13.];
        assert_eq!(y, want);
        // The differentiable path (index selects) gathers the same values.
        let x = Tensor::<4>::from_data(TensorData::new((0..15).map(|v| v as f32).collect(), [1, 1, 3, 5]), &dev);
        assert_eq!(crate::weights::tensor_to_vec(resize_nearest(x.clone().autodiff(), 5, 3)), want);
        // With a residual added in the same pass.
        let r = Tensor::<4>::from_data(TensorData::new(vec![0.5f32; 15], [1, 1, 5, 3]), &dev);
        let got = crate::weights::tensor_to_vec(resize_nearest_add(x, 5, 3, r));
        assert_eq!(got, want.iter().map(|v| v + 0.5).collect::<Vec<f32>>());
    }

    fn rand<const D: usize>(shape: [usize; D], dev: &Device) -> Tensor<D> {
        Tensor::random(shape, burn::tensor::Distribution::Uniform(-1.0, 1.0), dev)
    }

    #[test]
    fn pooled_attention_equals_mean_of_attention() {
        let dev = crate::cpu();
        let mut mha = MultiheadAttention::new(&dev, 16, 4);
        mha.in_proj_weight = Param::from_tensor(rand([48, 16], &dev));
        mha.in_proj_bias = Param::from_tensor(rand([48], &dev));
        mha.out_proj.weight = Param::from_tensor(rand([16, 16], &dev));
        mha.out_proj.bias = Param::from_tensor(rand([16], &dev));
        let (q, kv) = (rand([2, 5, 16], &dev), rand([2, 40, 16], &dev));
        let full = crate::weights::tensor_to_vec(mha.forward(q.clone(), kv.clone(), kv.clone()).mean_dim(1));
        let pooled = crate::weights::tensor_to_vec(mha.forward_mean_query(q, kv.clone(), kv));
        let d = crate::test_util::max_abs(&full, &pooled);
        assert!(d < 1e-5, "pooled attention differs by {d}");
    }

    #[test]
    fn text_guided_block_above_the_grid_size_equals_composition() {
        // Images larger than the 288×384 grid take the reordered path (1×1 conv and PReLU on
        // the grid, then the resize); the autodiff inputs take the literal burn composition.
        let dev = crate::cpu();
        let mut blk = RestormerCaBlock::new(&dev, 1);
        for ca in [&mut blk.cross_attentionA1, &mut blk.cross_attentionA2] {
            let m = &mut ca.multihead_attn;
            m.in_proj_weight = Param::from_tensor(rand([3 * HIDDEN, HIDDEN], &dev) * 0.1);
            m.in_proj_bias = Param::from_tensor(rand([3 * HIDDEN], &dev) * 0.1);
            m.out_proj.weight = Param::from_tensor(rand([HIDDEN, HIDDEN], &dev) * 0.1);
        }
        let (a, b) = (rand([1, 1, 290, 390], &dev), rand([1, 1, 290, 390], &dev));
        let text = rand([1, 5, HIDDEN], &dev);
        let eval = Eval { low_memory: true, tile_rows: 0 };
        let (ga, gb) = blk.forward(a.clone(), b.clone(), text.clone(), eval);
        let (wa, wb) = blk.forward(a.autodiff(), b.autodiff(), text.autodiff(), eval);
        for (g, w) in [(ga, wa.inner()), (gb, wb.inner())] {
            let d = crate::test_util::max_diff(g, w);
            assert!(d < 1e-4, "differs by {d}");
        }
    }
}
