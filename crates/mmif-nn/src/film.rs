//! FILM (Zhao et al., "Image Fusion via Vision-Language Model", ICML 2024): image fusion guided
//! by text features of the scene.
//!
//! ```text
//!  text (T×768) ── Conv1d → T×256 ──┬──────────────┬──────────────┐
//!                                   │              │              │
//!  A ─┐                       ┌─────┴─────┐  ┌─────┴─────┐  ┌─────┴─────┐
//!     ├───────────────────────┤ cablock 1 ├──┤ cablock 2 ├──┤ cablock 3 ├─ cat(A, B) ─┐
//!  B ─┘                       └───────────┘  └───────────┘  └───────────┘             │
//!   ┌─────────────────────────────────────────────────────────────────────────────────┘
//!   └─ Restormer(64) ─ 1×1 (64 → 32) ─ Restormer ─ Restormer ─ 1×1 (32 → 1) ─ σ ─ fused
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

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData, activation};

use crate::layers::{Activation, Conv1x1d, Conv2d, ConvCfg, Epilogue, MultiheadAttention, PRelu, TransformerBlock};
use crate::ops::{l1_normalize, resize_nearest, resize_nearest_add};
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

/// `text_preprocess`: Conv1d 768 → hidden over the tokens.
#[derive(Module, Debug)]
pub struct TextPreprocess {
    pub conv: Conv1x1d,
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
            let g = self.conv2.forward_fused(vec![weighted], None, Epilogue::act(Activation::PRelu(self.prelu2)));
            resize_nearest_add(g, h, w, feat.clone())
        } else {
            self.prelu2.forward(self.conv2.forward(resize_nearest(weighted, h, w))) + feat.clone()
        };
        self.conv3.forward_fused(vec![feat, guided], None, Epilogue::act(Activation::PRelu(self.prelu3)))
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
    use crate::test_util::rand;
    use burn::module::Param;

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
