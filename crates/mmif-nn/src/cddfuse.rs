//! CDDFuse (Zhao et al., "CDDFuse: Correlation-Driven Dual-Branch Feature Decomposition for
//! Multi-Modality Image Fusion", CVPR 2023).
//!
//! ```text
//!  VIS ─┐                      ┌─ base (Lite-Transformer) ─┐
//!       ├─ Restormer encoder ──┤                           ├─ sum ─ BaseFuseLayer ──┐
//!  IR ──┘   (shared weights)   └─ detail (INN) ────────────┘─ sum ─ DetailFuseLayer ┴─ decoder ─ σ
//! ```
//! The four parts are the four groups of the official checkpoint: `DIDF_Encoder`,
//! `DIDF_Decoder`, `BaseFuseLayer`, `DetailFuseLayer`.
#![allow(non_snake_case)]

use burn::module::Module;
use burn::tensor::{Device, Tensor, activation};

use crate::kernels;
use crate::layers::{
    Activation, BaseFeatureExtraction, Conv2d, ConvCfg, Epilogue, Pad, TransformerBlock, expand_dw_project,
};

mod banded;

const DIM: usize = 64;
const HEADS: usize = 8;

/// The smallest height and width CDDFuse takes: the 3×3 convolutions of its INN reflect-pad by one
/// pixel, which needs at least two rows and two columns (PyTorch's reflection padding refuses a
/// single row or column too).
pub const MIN_SIDE: usize = 2;

/// Why CDDFuse cannot run on its inputs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CddFuseError {
    #[error(
        "CDDFuse needs images of at least {min}×{min} pixels (its reflection padding needs two rows and columns); this one is {width}×{height} (width×height)"
    )]
    TooSmall { width: usize, height: usize, min: usize },
    #[error("the sources differ in shape: {0:?} and {1:?} (B×C×H×W)")]
    ShapeMismatch([usize; 4], [usize; 4]),
    #[error("CDDFuse takes single-channel images, got {0} channels")]
    Channels(usize),
}

/// Checks that `vis` and `ir` (`B×C×H×W`) are a pair CDDFuse can fuse.
pub fn check_pair(vis: [usize; 4], ir: [usize; 4]) -> Result<(), CddFuseError> {
    if vis != ir {
        return Err(CddFuseError::ShapeMismatch(vis, ir));
    }
    let [_, c, h, w] = vis;
    if c != 1 {
        return Err(CddFuseError::Channels(c));
    }
    if h < MIN_SIDE || w < MIN_SIDE {
        return Err(CddFuseError::TooSmall { width: w, height: h, min: MIN_SIDE });
    }
    Ok(())
}

/// `nn.Conv2d(1, 64, 3, padding=1, bias=False)`, the official `OverlapPatchEmbed`.
#[derive(Module, Debug)]
pub struct PatchEmbed {
    pub proj: Conv2d,
}

/// MobileNetV2-style bottleneck of the INN coupling functions: 1×1, ReLU6, reflect 3×3
/// depthwise, ReLU6, 1×1 (the official `nn.Sequential` indices 0, 3 and 5).
#[derive(Module, Debug)]
pub struct Bottleneck {
    pub _0: Conv2d,
    pub _3: Conv2d,
    pub _5: Conv2d,
}

/// `InvertedResidualBlock(32, 32, expand_ratio=2)`.
#[derive(Module, Debug)]
pub struct InvertedResidualBlock {
    pub bottleneckBlock: Bottleneck,
}

impl InvertedResidualBlock {
    fn new(device: &Device, inp: usize, oup: usize, expand: usize) -> Self {
        let hidden = inp * expand;
        let dw = ConvCfg::same(3).groups(hidden).reflect();
        Self {
            bottleneckBlock: Bottleneck {
                _0: Conv2d::new(device, inp, hidden, 1, ConvCfg::same(1)),
                _3: Conv2d::new(device, hidden, hidden, 3, dw),
                _5: Conv2d::new(device, hidden, oup, 1, ConvCfg::same(1)),
            },
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_opt(x, None)
    }

    /// `residual + self.forward(x)`, the residual added inside the last conv.
    fn forward_add(&self, x: Tensor<4>, residual: Tensor<4>) -> Tensor<4> {
        self.forward_opt(x, Some(residual))
    }

    /// `[residual +] block(x)`: the fused kernel, or the convs with ReLU6 (and the residual)
    /// inside them.
    fn forward_opt(&self, x: Tensor<4>, residual: Option<Tensor<4>>) -> Tensor<4> {
        if let Some(y) = self.fused(&x, residual.as_ref()) {
            return y;
        }
        let b = &self.bottleneckBlock;
        let relu6 = || Epilogue::act(Activation::Relu6);
        let h = b._3.forward_fused(vec![b._0.forward_fused(vec![x], None, relu6())], None, relu6());
        b._5.forward_fused(vec![h], None, residual.map_or_else(Epilogue::default, Epilogue::residual))
    }

    /// The whole bottleneck as one kernel over rings of rows (`kernels::gated_ffn` with
    /// `Middle::Relu6`): its 64-channel intermediates never reach memory. Plain `flex` tensors.
    fn fused(&self, x: &Tensor<4>, residual: Option<&Tensor<4>>) -> Option<Tensor<4>> {
        let b = &self.bottleneckBlock;
        expand_dw_project((&b._0, &b._3, Some(&b._5)), kernels::Middle::Relu6, x, [1, 1], residual, None)
    }
}

/// One affine coupling layer of the detail branch.
#[derive(Module, Debug)]
pub struct DetailNode {
    pub theta_phi: InvertedResidualBlock,
    pub theta_rho: InvertedResidualBlock,
    pub theta_eta: InvertedResidualBlock,
    pub shffleconv: Conv2d,
}

impl DetailNode {
    fn new(device: &Device) -> Self {
        Self {
            theta_phi: InvertedResidualBlock::new(device, 32, 32, 2),
            theta_rho: InvertedResidualBlock::new(device, 32, 32, 2),
            theta_eta: InvertedResidualBlock::new(device, 32, 32, 2),
            shffleconv: Conv2d::new(device, 64, 64, 1, ConvCfg::same(1).bias(true)),
        }
    }

    fn forward(&self, z1: Tensor<4>, z2: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let mixed = self.shffleconv.forward_fused(vec![z1, z2], None, Epilogue::default());
        let (z1, z2) = split_channels(mixed);
        let z2 = self.theta_phi.forward_add(z1.clone(), z2);
        let z1 = mul_exp_add(z1, self.theta_rho.forward(z2.clone()), self.theta_eta.forward(z2.clone()));
        (z1, z2)
    }
}

/// `a · exp(b) + c`: one pass on the CPU for plain `flex` tensors, burn ops otherwise.
fn mul_exp_add(a: Tensor<4>, b: Tensor<4>, c: Tensor<4>) -> Tensor<4> {
    if a.dims() == b.dims()
        && a.dims() == c.dims()
        && let (Some(ah), Some(bh), Some(ch)) = (kernels::host(&a), kernels::host(&b), kernels::host(&c))
    {
        let out = kernels::mul_exp_add(kernels::values(&ah), kernels::values(&bh), kernels::values(&ch));
        return kernels::from_host(out, a.dims());
    }
    a * b.exp() + c
}

fn split_channels(x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
    let c = x.dims()[1];
    (x.clone().narrow(1, 0, c / 2), x.narrow(1, c / 2, c - c / 2))
}

/// The invertible-network detail branch (`DetailFeatureExtraction(num_layers)`).
#[derive(Module, Debug)]
pub struct DetailFeatureExtraction {
    pub net: Vec<DetailNode>,
}

impl DetailFeatureExtraction {
    pub fn new(device: &Device, layers: usize) -> Self {
        Self { net: (0..layers).map(|_| DetailNode::new(device)).collect() }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let (mut z1, mut z2) = split_channels(x);
        for node in &self.net {
            (z1, z2) = node.forward(z1, z2);
        }
        Tensor::cat(vec![z1, z2], 1)
    }
}

/// What the encoder gives for one source image.
#[derive(Clone, Debug)]
pub struct EncoderOutput {
    pub base: Tensor<4>,
    pub detail: Tensor<4>,
    pub shallow: Tensor<4>,
}

/// `Restormer_Encoder`: patch embedding, four Restormer blocks, then the base and detail branches.
#[derive(Module, Debug)]
pub struct Encoder {
    pub patch_embed: PatchEmbed,
    pub encoder_level1: Vec<TransformerBlock>,
    pub baseFeature: BaseFeatureExtraction,
    pub detailFeature: DetailFeatureExtraction,
}

impl Encoder {
    pub fn new(device: &Device) -> Self {
        Self {
            patch_embed: PatchEmbed { proj: Conv2d::new(device, 1, DIM, 3, ConvCfg::same(3)) },
            encoder_level1: (0..4).map(|_| TransformerBlock::new(device, DIM, HEADS, 2.0, false)).collect(),
            baseFeature: BaseFeatureExtraction::new(device, DIM, HEADS, Pad::Zeros),
            detailFeature: DetailFeatureExtraction::new(device, 3),
        }
    }

    pub fn forward(&self, img: Tensor<4>) -> EncoderOutput {
        let mut x = self.patch_embed.proj.forward(img);
        for block in &self.encoder_level1 {
            x = block.forward(x);
        }
        EncoderOutput {
            base: self.baseFeature.forward(x.clone()),
            detail: self.detailFeature.forward(x.clone()),
            shallow: x,
        }
    }
}

/// The decoder's output head: 3×3 conv 64→32, LeakyReLU(0.01), 3×3 conv 32→1.
#[derive(Module, Debug)]
pub struct OutputHead {
    pub _0: Conv2d,
    pub _2: Conv2d,
}

/// `Restormer_Decoder`.
#[derive(Module, Debug)]
pub struct Decoder {
    pub reduce_channel: Conv2d,
    pub encoder_level2: Vec<TransformerBlock>,
    pub output: OutputHead,
}

impl Decoder {
    pub fn new(device: &Device) -> Self {
        Self {
            reduce_channel: Conv2d::new(device, DIM * 2, DIM, 1, ConvCfg::same(1)),
            encoder_level2: (0..4).map(|_| TransformerBlock::new(device, DIM, HEADS, 2.0, false)).collect(),
            output: OutputHead {
                _0: Conv2d::new(device, DIM, DIM / 2, 3, ConvCfg::same(3)),
                _2: Conv2d::new(device, DIM / 2, 1, 3, ConvCfg::same(3)),
            },
        }
    }

    /// Returns `(sigmoid(head(features) [+ residual]), features after reduce_channel)`.
    pub fn forward(&self, residual: Option<Tensor<4>>, base: Tensor<4>, detail: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let level0 = self.reduce_channel.forward_fused(vec![base, detail], None, Epilogue::default());
        let mut x = level0.clone();
        for block in &self.encoder_level2 {
            x = block.forward(x);
        }
        let mut out = self.output._2.forward(activation::leaky_relu(self.output._0.forward(x), 0.01));
        if let Some(r) = residual {
            out = out + r;
        }
        (activation::sigmoid(out), level0)
    }
}

/// Which image the decoder adds back before its sigmoid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Residual {
    /// The visible (or MRI) image — the official IVF test script with the IVF checkpoint.
    #[default]
    Vis,
    /// VIS + IR — the IVF checkpoint applied to medical images.
    Sum,
    /// Nothing — the official MIF checkpoint.
    None,
}

impl std::str::FromStr for Residual {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "vis" => Ok(Self::Vis),
            "sum" => Ok(Self::Sum),
            "none" => Ok(Self::None),
            _ => Err(format!("unknown residual mode `{s}` (expected vis, sum or none)")),
        }
    }
}

/// The whole CDDFuse network, one field per checkpoint group.
#[derive(Module, Debug)]
pub struct CddFuse {
    pub DIDF_Encoder: Encoder,
    pub DIDF_Decoder: Decoder,
    pub BaseFuseLayer: BaseFeatureExtraction,
    pub DetailFuseLayer: DetailFeatureExtraction,
}

/// Intermediate results of a forward pass, for inspection and tests.
#[derive(Clone, Debug)]
pub struct CddFuseTrace {
    pub vis: EncoderOutput,
    pub ir: EncoderOutput,
    pub fused_base: Tensor<4>,
    pub fused_detail: Tensor<4>,
    /// Decoder output before any normalisation, in (0, 1).
    pub raw: Tensor<4>,
}

impl CddFuse {
    /// The inference configuration of the official test scripts (detail fuse layer with one node).
    pub fn new(device: &Device) -> Self {
        Self {
            DIDF_Encoder: Encoder::new(device),
            DIDF_Decoder: Decoder::new(device),
            BaseFuseLayer: BaseFeatureExtraction::new(device, DIM, HEADS, Pad::Zeros),
            DetailFuseLayer: DetailFeatureExtraction::new(device, 1),
        }
    }

    /// Fuses `vis` (visible or MRI) with `ir` (infrared, CT, PET or SPECT), both `B×1×H×W` in [0, 1].
    pub fn trace(&self, vis: Tensor<4>, ir: Tensor<4>, residual: Residual) -> CddFuseTrace {
        let v = self.DIDF_Encoder.forward(vis.clone());
        let i = self.DIDF_Encoder.forward(ir.clone());
        let fused_base = self.BaseFuseLayer.forward(v.base.clone() + i.base.clone());
        let fused_detail = self.DetailFuseLayer.forward(v.detail.clone() + i.detail.clone());
        let residual = match residual {
            Residual::Vis => Some(vis),
            Residual::Sum => Some(vis + ir),
            Residual::None => None,
        };
        let (raw, _) = self.DIDF_Decoder.forward(residual, fused_base.clone(), fused_detail.clone());
        CddFuseTrace { vis: v, ir: i, fused_base, fused_detail, raw }
    }

    /// [`Self::forward`] after checking the inputs with [`check_pair`]: an error, not a panic,
    /// for images under [`MIN_SIDE`] or mismatched shapes.
    pub fn fuse(&self, vis: Tensor<4>, ir: Tensor<4>, residual: Residual) -> Result<Tensor<4>, CddFuseError> {
        check_pair(vis.dims(), ir.dims())?;
        Ok(self.forward(vis, ir, residual))
    }

    /// [`Self::forward_bands`] after checking the inputs with [`check_pair`].
    pub fn fuse_bands(
        &self,
        vis: Tensor<4>,
        ir: Tensor<4>,
        residual: Residual,
        rows: usize,
    ) -> Result<Tensor<4>, CddFuseError> {
        check_pair(vis.dims(), ir.dims())?;
        Ok(self.forward_bands(vis, ir, residual, rows))
    }

    /// The decoder output, `B×1×H×W` in (0,1), before the test script's min-max normalisation.
    /// Inputs must pass [`check_pair`] (at least [`MIN_SIDE`] on each side); [`Self::fuse`] checks.
    ///
    /// The same computation as [`Self::trace`], keeping only what is still needed: each
    /// encoder's shallow features are dropped as soon as its branches have run, and its base
    /// and detail features once they are summed.
    pub fn forward(&self, vis: Tensor<4>, ir: Tensor<4>, residual: Residual) -> Tensor<4> {
        let residual = match residual {
            Residual::Vis => Some(vis.clone()),
            Residual::Sum => Some(vis.clone() + ir.clone()),
            Residual::None => None,
        };
        let branches = |img: Tensor<4>| {
            let out = self.DIDF_Encoder.forward(img);
            (out.base, out.detail)
        };
        let (vb, vd) = branches(vis);
        let (ib, id) = branches(ir);
        let fused_base = self.BaseFuseLayer.forward(vb + ib);
        let fused_detail = self.DetailFuseLayer.forward(vd + id);
        self.DIDF_Decoder.forward(residual, fused_base, fused_detail).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn lean_forward_equals_the_trace() {
        let dev = crate::cpu();
        let net = CddFuse::new(&dev);
        let img = || Tensor::<4>::random([1, 1, 12, 20], Distribution::Uniform(0.0, 1.0), &dev);
        let (vis, ir) = (img(), img());
        for residual in [Residual::Vis, Residual::Sum, Residual::None] {
            let lean = net.forward(vis.clone(), ir.clone(), residual);
            let traced = net.trace(vis.clone(), ir.clone(), residual).raw;
            assert_eq!(crate::test_util::max_diff(lean, traced), 0.0, "{residual:?}");
        }
    }

    #[test]
    fn fused_bottleneck_equals_composition() {
        // The whole ReLU6 bottleneck as one kernel (reflection padding, both ReLU6 bounds
        // reached) against the burn ops autodiff inputs take, from the smallest image up.
        let dev = crate::cpu();
        let irb = InvertedResidualBlock::new(&dev, 32, 32, 2);
        for (b, h, w) in [(1, 2, 2), (2, 5, 70), (1, 13, 37)] {
            let rnd = || Tensor::<4>::random([b, 32, h, w], Distribution::Normal(0.0, 4.0), &dev);
            let (x, r) = (rnd(), rnd());
            assert!(irb.fused(&x, Some(&r)).is_some(), "{b}×{h}×{w} takes the kernel");
            let pairs = [
                (irb.forward(x.clone()), irb.forward(x.clone().autodiff()).inner()),
                (
                    irb.forward_add(x.clone(), r.clone()),
                    irb.forward_add(x.clone().autodiff(), r.clone().autodiff()).inner(),
                ),
            ];
            for (got, want) in pairs {
                let (g, w_) = (crate::weights::tensor_to_vec(got), crate::weights::tensor_to_vec(want));
                let d = crate::test_util::max_rel(&g, &w_);
                assert!(d < 1e-5, "{b}×{h}×{w}: {d}");
            }
        }
    }

    #[test]
    fn detail_node_kernels_equal_composition() {
        // The invertible block's kernels (ReLU6 inside the convs, a·exp(b)+c in one pass,
        // the 1×1 conv of a concatenation) against the burn ops autodiff inputs take.
        let dev = crate::cpu();
        let node = DetailNode::new(&dev);
        let rnd = || Tensor::<4>::random([1, 32, 13, 37], Distribution::Normal(0.0, 2.0), &dev);
        let (z1, z2) = (rnd(), rnd());
        let (g1, g2) = node.forward(z1.clone(), z2.clone());
        let (w1, w2) = node.forward(z1.autodiff(), z2.autodiff());
        for (g, w) in [(g1, w1.inner()), (g2, w2.inner())] {
            let (g, w) = (crate::weights::tensor_to_vec(g), crate::weights::tensor_to_vec(w));
            let d = crate::test_util::max_rel(&g, &w);
            assert!(d < 1e-5, "{d}");
        }
    }
}
