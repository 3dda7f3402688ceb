//! EMMA (Zhao et al., "Equivariant Multi-Modality Image Fusion", CVPR 2024): the U-Fuser that
//! fuses an infrared (or functional medical) image with a visible (or MRI) image, the UNet5
//! pseudo-sensors `Ai` and `Av` that the training loss uses, and the inference procedures.
//!
//! ```text
//!  IR ─ I_en_1 ─ I_down1 ─ I_en_2 ─ I_down2 ─ I_en_3 ─ I_down3 ─ I_en_4
//!         │                  │                  │                  │
//!        f_1                f_2                f_3                f_4      (fuse cat(i_k, v_k))
//!         │                  │                  │                  │
//!  VIS ─ V_en_1 ─ V_down1 ─ V_en_2 ─ V_down2 ─ V_en_3 ─ V_down3 ─ V_en_4
//!
//!  f_4 ─ de_4 ─ up4 ─┐
//!              cat(·, f_3) ─ de_3 ─ up3 ─┐
//!                          cat(·, f_2) ─ de_2 ─ up2 ─┐
//!                                      cat(·, f_1) ─ de_1 ─ last (3×3, σ) ─ fused
//! ```
//! Every box is a Restormer-CNN block ([`RestormerCnnBlock`]): a 3×3 embedding, then a global
//! branch (the Lite-Transformer [`BaseFeatureExtraction`], reflect-padded Mlp) and a local
//! branch (two residual blocks) side by side, merged by a 3×3 conv. Channels per scale
//! `[8, 16, 32, 32]`; every 3×3 conv of the U-Fuser pads by reflection.
//!
//! # Inference procedures ([`Tiling`])
//!
//! The U-Fuser halves the resolution three times, so a single pass needs sides that are
//! multiples of 8; the official `test.py` works with multiples of 32:
//!
//! * [`Tiling::Official`] — exactly `test.py`: when both sides are multiples of 32 one pass;
//!   otherwise the largest multiple-of-32 crop at each of the four corners is fused and the
//!   corners are pasted (upper-left whole, the others only their part beyond it).
//!   [`Ufuser::official_test`] adds the script's min-max and ×255.
//! * [`Tiling::Pad`] — reflect-pad to a multiple of 32 (split evenly between the two sides),
//!   one pass, crop back.
//! * [`Tiling::Tile`] — overlapping tiles (sides multiples of 32) blended with a raised-cosine
//!   (Hann) ramp over each overlap, normalised by the accumulated weights; memory is bounded by
//!   the tile size, which makes 4000×3000 pairs practical.
//!
//! # Measured differences between the procedures
//!
//! `cargo run --release -p mmif-nn --example emma_tiling -- IR VIS [WEIGHTS] [--crop HxW]`,
//! here with the fixtures' deterministic fill (`emma_ufuser`, seed 2), **not trained weights**.
//! Max / mean absolute difference on the 0..=255 scale, each result min-max normalised:
//!
//! | pair | official vs pad | official vs tile 256/32 | pad vs tile 256/32 | tile 256/32 vs 128/32 |
//! |---|---|---|---|---|
//! | RoadScene `FLIR_00977` 351×505 | 87.7 / 15.1 | 95.0 / 9.5 | 82.1 / 12.9 | 68.5 / 9.5 |
//! | TNO `01` cropped to 570×750 | 96.5 / 14.4 | 82.2 / 11.0 | 70.3 / 13.8 | 68.9 / 10.9 |
//!
//! The procedures differ everywhere, not only along seams: the transposed (channel) attention
//! of every block pools statistics over the whole input, so each crop, padding or tile sees a
//! different attention matrix. The fill's weights exaggerate this (its output range is narrow,
//! so min-max stretches small differences); with trained weights the gaps should be smaller
//! but of the same kind. On sizes that are multiples of 32 and fit one tile, `pad` and `tile`
//! equal the single pass exactly (tested).
//!
//! # Speed
//!
//! `cargo run --release -p mmif-nn --example bench_emma` (one U-Fuser forward, median of 5 after a
//! warm-up, 2 cores shared with other jobs, load average ≈ 6, so ±50 %), peak RSS from
//! `/usr/bin/time -v` with one size per process:
//!
//! | H×W | burn `flex` | ONNX Runtime | ratio | peak RSS |
//! |---|---|---|---|---|
//! | 256×256 | 1.52 s | 0.37 s | 4.1× | 44 MB |
//! | 480×640 | 11.4 s | 1.16 s | 9.9× | 159 MB |
//! | 768×1024 | 31.6 s | 3.10 s | 10.2× | 388 MB |
//!
//! The cost is in the full-resolution blocks (`I_en_1`, `V_en_1`, `f_1`, `de_1`): burn `flex`'s
//! dense 3×3 convs with few channels (the 24→24 `qkv2`, 16→8 `FFN`, 8→8 residual convs) and,
//! before [`Conv2d`]'s few-channel-group path, the Mlp's grouped `dwconv` (2 channels per
//! group, 4× faster now). Splitting those convs into row bands did not help measurably.
#![allow(non_snake_case)]

use burn::module::Module;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor, TensorData, activation};

use crate::layers::{BaseFeatureExtraction, BatchNorm2d, Conv2d, ConvCfg, ConvTranspose2d, Pad, max_pool2x2};

/// Channels of the four U-Fuser scales.
pub const CHANNELS: [usize; 4] = [8, 16, 32, 32];
const HEADS: usize = 8;
/// The official procedures work on sides that are multiples of this.
pub const MULTIPLE: usize = 32;

fn reflect3() -> ConvCfg {
    ConvCfg::same(3).reflect()
}

/// The `nn.Sequential(conv 3×3, ReLU, conv 3×3)` inside a [`ResBlock`].
#[derive(Module, Debug)]
pub struct ResConvs {
    pub _0: Conv2d,
    pub _2: Conv2d,
}

/// `x + conv(ReLU(conv(x)))`, reflect-padded 3×3 convs with bias.
#[derive(Module, Debug)]
pub struct ResBlock {
    pub conv: ResConvs,
}

impl ResBlock {
    pub fn new(device: &Device, dim: usize) -> Self {
        let cfg = reflect3().bias(true);
        Self { conv: ResConvs { _0: Conv2d::new(device, dim, dim, 3, cfg), _2: Conv2d::new(device, dim, dim, 3, cfg) } }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        x.clone() + self.conv._2.forward(activation::relu(self.conv._0.forward(x)))
    }
}

/// The local branch: two [`ResBlock`]s.
#[derive(Module, Debug)]
pub struct LocalFeatureExtraction {
    pub Extraction: Vec<ResBlock>,
}

impl LocalFeatureExtraction {
    pub fn new(device: &Device, dim: usize) -> Self {
        Self { Extraction: (0..2).map(|_| ResBlock::new(device, dim)).collect() }
    }

    pub fn forward(&self, mut x: Tensor<4>) -> Tensor<4> {
        for block in &self.Extraction {
            x = block.forward(x);
        }
        x
    }
}

/// `Restormer_CNN_block`: embed, then global ‖ local, then `FFN` over their concatenation.
#[derive(Module, Debug)]
pub struct RestormerCnnBlock {
    pub embed: Conv2d,
    pub GlobalFeature: BaseFeatureExtraction,
    pub LocalFeature: LocalFeatureExtraction,
    pub FFN: Conv2d,
}

impl RestormerCnnBlock {
    pub fn new(device: &Device, cin: usize, cout: usize) -> Self {
        Self {
            embed: Conv2d::new(device, cin, cout, 3, reflect3()),
            GlobalFeature: BaseFeatureExtraction::new(device, cout, HEADS, Pad::Reflect),
            LocalFeature: LocalFeatureExtraction::new(device, cout),
            FFN: Conv2d::new(device, cout * 2, cout, 3, reflect3()),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.embed.forward(x);
        let global = self.GlobalFeature.forward(x.clone());
        let local = self.LocalFeature.forward(x);
        self.FFN.forward(Tensor::cat(vec![global, local], 1))
    }
}

/// `nn.Sequential(ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), ReLU)`: doubles the size.
#[derive(Module, Debug)]
pub struct UpSample {
    pub _0: ConvTranspose2d,
}

impl UpSample {
    pub fn new(device: &Device, cin: usize, cout: usize) -> Self {
        Self { _0: ConvTranspose2d::new(device, cin, cout, 4, 2, 1, false) }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        activation::relu(self._0.forward(x))
    }
}

/// `nn.Sequential(Conv2d(c, 1, 3, padding=1, ...), Sigmoid)`: the output head.
#[derive(Module, Debug)]
pub struct Head {
    pub _0: Conv2d,
}

impl Head {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        activation::sigmoid(self._0.forward(x))
    }
}

/// The EMMA fusion network (`Ufuser`). Parameter paths are the official state-dict keys.
#[derive(Module, Debug)]
pub struct Ufuser {
    pub V_en_1: RestormerCnnBlock,
    pub V_en_2: RestormerCnnBlock,
    pub V_en_3: RestormerCnnBlock,
    pub V_en_4: RestormerCnnBlock,
    pub I_en_1: RestormerCnnBlock,
    pub I_en_2: RestormerCnnBlock,
    pub I_en_3: RestormerCnnBlock,
    pub I_en_4: RestormerCnnBlock,
    pub f_1: RestormerCnnBlock,
    pub f_2: RestormerCnnBlock,
    pub f_3: RestormerCnnBlock,
    pub f_4: RestormerCnnBlock,
    pub V_down1: Conv2d,
    pub V_down2: Conv2d,
    pub V_down3: Conv2d,
    pub I_down1: Conv2d,
    pub I_down2: Conv2d,
    pub I_down3: Conv2d,
    pub up4: UpSample,
    pub up3: UpSample,
    pub up2: UpSample,
    pub de_1: RestormerCnnBlock,
    pub de_2: RestormerCnnBlock,
    pub de_3: RestormerCnnBlock,
    pub de_4: RestormerCnnBlock,
    pub last: Head,
}

impl Ufuser {
    /// A U-Fuser with PyTorch's default initialisation (load weights with [`crate::weights`]).
    pub fn new(device: &Device) -> Self {
        let [c1, c2, c3, c4] = CHANNELS;
        let block = |cin, cout| RestormerCnnBlock::new(device, cin, cout);
        let down = |c| Conv2d::new(device, c, c, 3, reflect3().stride(2));
        Self {
            V_en_1: block(1, c1),
            V_en_2: block(c1, c2),
            V_en_3: block(c2, c3),
            V_en_4: block(c3, c4),
            I_en_1: block(1, c1),
            I_en_2: block(c1, c2),
            I_en_3: block(c2, c3),
            I_en_4: block(c3, c4),
            f_1: block(2 * c1, c1),
            f_2: block(2 * c2, c2),
            f_3: block(2 * c3, c3),
            f_4: block(2 * c4, c4),
            V_down1: down(c1),
            V_down2: down(c2),
            V_down3: down(c3),
            I_down1: down(c1),
            I_down2: down(c2),
            I_down3: down(c3),
            up4: UpSample::new(device, c4, c3),
            up3: UpSample::new(device, c3, c2),
            up2: UpSample::new(device, c2, c1),
            de_1: block(2 * c1, c1),
            de_2: block(2 * c2, c2),
            de_3: block(2 * c3, c3),
            de_4: block(c4, c4),
            last: Head { _0: Conv2d::new(device, c1, 1, 3, reflect3().bias(true)) },
        }
    }

    /// One pass: `Ufuser(i, v)` with `ir` (infrared or functional) and `vis` (visible or MRI),
    /// both `B×1×H×W` in [0, 1]; returns `B×1×H×W` in (0,1), not normalised.
    ///
    /// # Panics
    /// When `H` or `W` is not a multiple of 8 (the skip connections would not line up) or the
    /// shapes differ. The procedures ([`Ufuser::fuse`]) check sizes and return errors instead.
    pub fn forward(&self, ir: Tensor<4>, vis: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = ir.dims();
        assert!(
            h.is_multiple_of(8) && w.is_multiple_of(8),
            "Ufuser::forward needs sides that are multiples of 8, got {h}×{w}"
        );
        assert_eq!(ir.dims(), vis.dims(), "Ufuser::forward: the sources differ in shape");
        let i1 = self.I_en_1.forward(ir);
        let i2 = self.I_en_2.forward(self.I_down1.forward(i1.clone()));
        let i3 = self.I_en_3.forward(self.I_down2.forward(i2.clone()));
        let i4 = self.I_en_4.forward(self.I_down3.forward(i3.clone()));

        let v1 = self.V_en_1.forward(vis);
        let v2 = self.V_en_2.forward(self.V_down1.forward(v1.clone()));
        let v3 = self.V_en_3.forward(self.V_down2.forward(v2.clone()));
        let v4 = self.V_en_4.forward(self.V_down3.forward(v3.clone()));

        let f1 = self.f_1.forward(Tensor::cat(vec![i1, v1], 1));
        let f2 = self.f_2.forward(Tensor::cat(vec![i2, v2], 1));
        let f3 = self.f_3.forward(Tensor::cat(vec![i3, v3], 1));
        let f4 = self.f_4.forward(Tensor::cat(vec![i4, v4], 1));

        let out = self.up4.forward(self.de_4.forward(f4));
        let out = self.up3.forward(self.de_3.forward(Tensor::cat(vec![out, f3], 1)));
        let out = self.up2.forward(self.de_2.forward(Tensor::cat(vec![out, f2], 1)));
        let out = self.de_1.forward(Tensor::cat(vec![out, f1], 1));
        self.last.forward(out)
    }

    /// The output of the first infrared encoder block (`I_en_1(ir)`), `B×8×H×W`.
    pub fn ir_first_block(&self, ir: Tensor<4>) -> Tensor<4> {
        self.I_en_1.forward(ir)
    }

    /// Fuses `ir` and `vis` (`B×1×H×W` in [0, 1], H and W at least 32) with the chosen
    /// procedure. Returns the network output on the (0,1) scale, *not* min-max normalised
    /// (the official script normalises afterwards; see [`Ufuser::official_test`]).
    pub fn fuse(&self, ir: Tensor<4>, vis: Tensor<4>, tiling: Tiling) -> Result<Tensor<4>, EmmaError> {
        check_pair(&ir, &vis)?;
        match tiling {
            Tiling::Official => Ok(self.official_raw(ir, vis)),
            Tiling::Pad => Ok(self.padded(ir, vis)),
            Tiling::Tile { size, overlap } => {
                check_tile(size, overlap)?;
                Ok(self.tiled(ir, vis, size, overlap))
            }
        }
    }

    /// The whole official `test.py` procedure: four-corner multiple-of-32 tiling, min-max over
    /// the result, ×255. Returns `B×1×H×W` on the 0..=255 scale.
    pub fn official_test(&self, ir: Tensor<4>, vis: Tensor<4>) -> Result<Tensor<4>, EmmaError> {
        check_pair(&ir, &vis)?;
        let [_, _, h, w] = ir.dims();
        if h.is_multiple_of(MULTIPLE) && w.is_multiple_of(MULTIPLE) {
            // The script normalises the network output, then scales.
            Ok(crate::min_max(self.forward(ir, vis)) * 255.0)
        } else {
            // The script scales each corner to 0..255 while pasting, normalises, scales again.
            Ok(crate::min_max(self.official_raw(ir, vis) * 255.0) * 255.0)
        }
    }

    /// `test.py`'s four-corner tiling without the final normalisation (0..1 scale).
    fn official_raw(&self, ir: Tensor<4>, vis: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = ir.dims();
        let (h1, w1) = (h - h % MULTIPLE, w - w % MULTIPLE);
        let (h2, w2) = (h % MULTIPLE, w % MULTIPLE);
        let run = |top: usize, left: usize| {
            let crop = |x: &Tensor<4>| x.clone().narrow(2, top, h1).narrow(3, left, w1);
            self.forward(crop(&ir), crop(&vis))
        };
        if h2 == 0 && w2 == 0 {
            return run(0, 0);
        }
        // Upper left: the whole crop; the other corners give only their rows/columns beyond it.
        let mut top_row = vec![run(0, 0)];
        if w2 > 0 {
            top_row.push(run(0, w - w1).narrow(3, w1 - w2, w2));
        }
        let mut rows = vec![Tensor::cat(top_row, 3)];
        if h2 > 0 {
            let mut bottom = vec![run(h - h1, 0).narrow(2, h1 - h2, h2)];
            if w2 > 0 {
                bottom.push(run(h - h1, w - w1).narrow(2, h1 - h2, h2).narrow(3, w1 - w2, w2));
            }
            rows.push(Tensor::cat(bottom, 3));
        }
        Tensor::cat(rows, 2)
    }

    /// Reflect-pad to a multiple of 32, one pass, crop.
    fn padded(&self, ir: Tensor<4>, vis: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = ir.dims();
        let (ph, pw) = (h.next_multiple_of(MULTIPLE) - h, w.next_multiple_of(MULTIPLE) - w);
        if ph == 0 && pw == 0 {
            return self.forward(ir, vis);
        }
        let (top, left) = (ph / 2, pw / 2);
        let pad = |x: Tensor<4>| x.pad((left, pw - left, top, ph - top), PadMode::Reflect);
        self.forward(pad(ir), pad(vis)).narrow(2, top, h).narrow(3, left, w)
    }

    /// Overlapping tiles blended with a raised-cosine window (see [`tile_starts`], [`ramp`]).
    fn tiled(&self, ir: Tensor<4>, vis: Tensor<4>, size: usize, overlap: usize) -> Tensor<4> {
        let [b, _, h, w] = ir.dims();
        let device = ir.device();
        let (th, tw) = (size.min(h - h % MULTIPLE), size.min(w - w % MULTIPLE));
        let (ys, xs) = (tile_starts(h, th, overlap), tile_starts(w, tw, overlap));
        let mut acc = vec![0.0f32; b * h * w];
        let mut wsum = vec![0.0f32; h * w];
        for (iy, &y0) in ys.iter().enumerate() {
            let wy = window(&ys, iy, th);
            for (ix, &x0) in xs.iter().enumerate() {
                let wx = window(&xs, ix, tw);
                let crop = |x: &Tensor<4>| x.clone().narrow(2, y0, th).narrow(3, x0, tw);
                let out = crate::weights::tensor_to_vec(self.forward(crop(&ir), crop(&vis)));
                for (y, &wyv) in wy.iter().enumerate() {
                    let row = (y0 + y) * w + x0;
                    for (x, &wxv) in wx.iter().enumerate() {
                        let k = wyv * wxv;
                        wsum[row + x] += k;
                        for n in 0..b {
                            acc[n * h * w + row + x] += k * out[(n * th + y) * tw + x];
                        }
                    }
                }
            }
        }
        for (i, v) in acc.iter_mut().enumerate() {
            *v /= wsum[i % (h * w)];
        }
        Tensor::from_data(TensorData::new(acc, [b, 1, h, w]), &device)
    }
}

/// How [`Ufuser::fuse`] handles image sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tiling {
    /// The official `test.py`: four multiple-of-32 corner crops, pasted.
    #[default]
    Official,
    /// Reflect-pad to a multiple of 32, one pass, crop.
    Pad,
    /// Overlapping tiles of `size`×`size` (a multiple of 32; smaller when the image is) that
    /// overlap by at least `overlap` pixels, blended with a raised-cosine window.
    Tile { size: usize, overlap: usize },
}

impl Tiling {
    /// Checks the tile size (a positive multiple of 32) and overlap (smaller than the tile).
    pub fn validate(&self) -> Result<(), EmmaError> {
        match *self {
            Tiling::Tile { size, overlap } => check_tile(size, overlap),
            _ => Ok(()),
        }
    }
}

/// Why an EMMA procedure cannot run on its input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmmaError {
    #[error("EMMA needs images of at least {min}×{min} pixels; this one is {width}×{height} (width×height)")]
    TooSmall { width: usize, height: usize, min: usize },
    #[error("the sources differ in shape: {0:?} and {1:?} (B×C×H×W)")]
    ShapeMismatch([usize; 4], [usize; 4]),
    #[error("EMMA takes single-channel images, got {0} channels")]
    Channels(usize),
    #[error("invalid tiling: {0}")]
    Tiling(String),
}

fn check_size(dims: [usize; 4], min: usize) -> Result<(), EmmaError> {
    let [_, c, h, w] = dims;
    if c != 1 {
        return Err(EmmaError::Channels(c));
    }
    if h < min || w < min {
        return Err(EmmaError::TooSmall { width: w, height: h, min });
    }
    Ok(())
}

fn check_pair(ir: &Tensor<4>, vis: &Tensor<4>) -> Result<(), EmmaError> {
    if ir.dims() != vis.dims() {
        return Err(EmmaError::ShapeMismatch(ir.dims(), vis.dims()));
    }
    check_size(ir.dims(), MULTIPLE)
}

fn check_tile(size: usize, overlap: usize) -> Result<(), EmmaError> {
    if size < MULTIPLE || !size.is_multiple_of(MULTIPLE) {
        return Err(EmmaError::Tiling(format!("the tile size must be a positive multiple of {MULTIPLE}, got {size}")));
    }
    if overlap >= size {
        return Err(EmmaError::Tiling(format!("the overlap ({overlap}) must be smaller than the tile size ({size})")));
    }
    Ok(())
}

/// Start offsets of tiles of length `t` covering `0..len` with consecutive tiles overlapping by
/// at least `overlap` (spread evenly; the first starts at 0, the last ends at `len`).
pub fn tile_starts(len: usize, t: usize, overlap: usize) -> Vec<usize> {
    if len <= t {
        return vec![0];
    }
    let step = t - overlap;
    let n = (len - t).div_ceil(step) + 1;
    (0..n).map(|i| i * (len - t) / (n - 1)).collect()
}

/// The raised-cosine ramp `sin²(π(j+½)/(2n))`, `j = 0..n`: strictly inside (0,1), and a ramp
/// plus its mirror image sum to exactly 1 at every position.
pub fn ramp(n: usize) -> Vec<f32> {
    (0..n)
        .map(|j| {
            let s = (std::f64::consts::PI * (j as f64 + 0.5) / (2.0 * n as f64)).sin();
            (s * s) as f32
        })
        .collect()
}

/// The 1-D blending weights of tile `i` (length `t`) among tiles starting at `starts`: 1, with a
/// rising ramp over the overlap with the previous tile and a falling one over the next.
fn window(starts: &[usize], i: usize, t: usize) -> Vec<f32> {
    let mut wgt = vec![1.0f32; t];
    if i > 0 {
        let n = starts[i - 1] + t - starts[i];
        for (v, r) in wgt.iter_mut().zip(ramp(n)) {
            *v *= r;
        }
    }
    if i + 1 < starts.len() {
        let n = starts[i] + t - starts[i + 1];
        for (v, r) in wgt.iter_mut().rev().zip(ramp(n)) {
            *v *= r;
        }
    }
    wgt
}

/// `nn.Sequential(conv 3×3, BN, ReLU, conv 3×3, BN, ReLU)` of a UNet5 [`ConvBlock`].
#[derive(Module, Debug)]
pub struct ConvBlockLayers {
    pub _0: Conv2d,
    pub _1: BatchNorm2d,
    pub _3: Conv2d,
    pub _4: BatchNorm2d,
}

/// Two (3×3 conv with bias, zero padding → BatchNorm → ReLU) stages.
#[derive(Module, Debug)]
pub struct ConvBlock {
    pub conv: ConvBlockLayers,
}

impl ConvBlock {
    pub fn new(device: &Device, cin: usize, cout: usize) -> Self {
        let cfg = ConvCfg::same(3).bias(true);
        Self {
            conv: ConvBlockLayers {
                _0: Conv2d::new(device, cin, cout, 3, cfg),
                _1: BatchNorm2d::new(device, cout),
                _3: Conv2d::new(device, cout, cout, 3, cfg),
                _4: BatchNorm2d::new(device, cout),
            },
        }
    }

    pub fn forward(&self, x: Tensor<4>, mode: BnMode) -> Tensor<4> {
        let bn = |layer: &BatchNorm2d, x| match mode {
            BnMode::Eval => layer.forward(x),
            BnMode::Train => layer.forward_train(x),
        };
        let c = &self.conv;
        let x = activation::relu(bn(&c._1, c._0.forward(x)));
        activation::relu(bn(&c._4, c._3.forward(x)))
    }
}

/// Which statistics BatchNorm uses (`model.eval()` / `model.train()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BnMode {
    /// Running statistics; nothing changes.
    #[default]
    Eval,
    /// Batch statistics; the running statistics are updated (momentum 0.1).
    Train,
}

/// The UNet5 pseudo-sensor (`Ai`: fused → infrared-like, `Av`: fused → visible-like): five
/// [`ConvBlock`] levels with 2×2 max-pooling (64 … 1024 channels), transposed-conv upsampling
/// with skip concatenations, 3×3 conv + sigmoid head.
#[derive(Module, Debug)]
pub struct UNet5 {
    pub down1: ConvBlock,
    pub down2: ConvBlock,
    pub down3: ConvBlock,
    pub down4: ConvBlock,
    pub down5: ConvBlock,
    pub up_sample5: UpSample,
    pub up4: ConvBlock,
    pub up_sample4: UpSample,
    pub up3: ConvBlock,
    pub up_sample3: UpSample,
    pub up2: ConvBlock,
    pub up_sample2: UpSample,
    pub up1: ConvBlock,
    pub last: Head,
}

/// UNet5 pools four times: a single pass needs sides that are multiples of this.
pub const UNET5_MULTIPLE: usize = 16;

impl UNet5 {
    pub fn new(device: &Device) -> Self {
        let block = |cin, cout| ConvBlock::new(device, cin, cout);
        let up = |cin, cout| UpSample::new(device, cin, cout);
        Self {
            down1: block(1, 64),
            down2: block(64, 128),
            down3: block(128, 256),
            down4: block(256, 512),
            down5: block(512, 1024),
            up_sample5: up(1024, 512),
            up4: block(1024, 512),
            up_sample4: up(512, 256),
            up3: block(512, 256),
            up_sample3: up(256, 128),
            up2: block(256, 128),
            up_sample2: up(128, 64),
            up1: block(128, 64),
            last: Head { _0: Conv2d::new(device, 64, 1, 3, ConvCfg::same(3).bias(true)) },
        }
    }

    /// Evaluation mode (BatchNorm running statistics). `x` is `B×1×H×W`, sides multiples of 16.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_mode(x, BnMode::Eval)
    }

    /// Training mode: BatchNorm on batch statistics, running statistics updated.
    pub fn forward_train(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_mode(x, BnMode::Train)
    }

    pub fn forward_mode(&self, x: Tensor<4>, mode: BnMode) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        assert!(
            h.is_multiple_of(UNET5_MULTIPLE) && w.is_multiple_of(UNET5_MULTIPLE),
            "UNet5::forward needs sides that are multiples of 16, got {h}×{w}"
        );
        let d1 = self.down1.forward(x, mode);
        let d2 = self.down2.forward(max_pool2x2(d1.clone()), mode);
        let d3 = self.down3.forward(max_pool2x2(d2.clone()), mode);
        let d4 = self.down4.forward(max_pool2x2(d3.clone()), mode);
        let out = self.down5.forward(max_pool2x2(d4.clone()), mode);

        let out = self.up4.forward(Tensor::cat(vec![self.up_sample5.forward(out), d4], 1), mode);
        let out = self.up3.forward(Tensor::cat(vec![self.up_sample4.forward(out), d3], 1), mode);
        let out = self.up2.forward(Tensor::cat(vec![self.up_sample3.forward(out), d2], 1), mode);
        let out = self.up1.forward(Tensor::cat(vec![self.up_sample2.forward(out), d1], 1), mode);
        self.last.forward(out)
    }

    /// Evaluation on any size of at least 16×16: reflect-pads to a multiple of 16 when needed
    /// (evenly on both sides), then crops back. `x` is `B×1×H×W` in [0, 1].
    pub fn sense(&self, x: Tensor<4>) -> Result<Tensor<4>, EmmaError> {
        check_size(x.dims(), UNET5_MULTIPLE)?;
        let [_, _, h, w] = x.dims();
        let (ph, pw) = (h.next_multiple_of(UNET5_MULTIPLE) - h, w.next_multiple_of(UNET5_MULTIPLE) - w);
        if ph == 0 && pw == 0 {
            return Ok(self.forward(x));
        }
        let (top, left) = (ph / 2, pw / 2);
        let x = x.pad((left, pw - left, top, ph - top), PadMode::Reflect);
        Ok(self.forward(x).narrow(2, top, h).narrow(3, left, w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_and_overlap() {
        for (len, t, k) in [(70, 64, 16), (1000, 256, 32), (256, 256, 32), (300, 64, 0), (3000, 512, 64)] {
            let s = tile_starts(len, t, k);
            assert_eq!(s[0], 0);
            assert_eq!(s.last().copied().unwrap() + t, len.max(t));
            for p in s.windows(2) {
                assert!(p[1] > p[0] && p[0] + t >= p[1] + k, "{len} {t} {k}: {s:?}");
            }
        }
    }

    #[test]
    fn ramp_and_mirror_sum_to_one() {
        for n in [1, 2, 7, 64] {
            let r = ramp(n);
            assert!(r.iter().all(|&v| v > 0.0 && v < 1.0 + 1e-7));
            for j in 0..n {
                assert!((r[j] + r[n - 1 - j] - 1.0).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn batch_norm_train_updates_running_stats_like_pytorch() {
        let dev = crate::cpu();
        let bn = BatchNorm2d::new(&dev, 1);
        // One channel, values 0..8: mean 3.5, biased var 5.25, unbiased 6.
        let v: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(v, [2, 1, 2, 2]), &dev);
        let y = crate::weights::tensor_to_vec(bn.forward_train(x));
        let expect0 = -3.5 / (5.25f32 + 1e-5).sqrt();
        assert!((y[0] - expect0).abs() < 1e-5, "{y:?}");
        let mean = crate::weights::tensor_to_vec(bn.running_mean.value());
        let var = crate::weights::tensor_to_vec(bn.running_var.value());
        assert!((mean[0] - 0.35).abs() < 1e-6, "{mean:?}");
        assert!((var[0] - (0.9 + 0.6)).abs() < 1e-6, "{var:?}");
        let sd = crate::weights::state_dict(&bn);
        assert_eq!(sd["running_mean"].data, mean);
        assert_eq!(sd["running_var"].data, var);
    }
}
