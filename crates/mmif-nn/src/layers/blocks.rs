//! The transformer blocks of the networks: Restormer's `TransformerBlock` and the
//! Lite-Transformer `BaseFeatureExtraction`.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::{AttentionBase, GatedFfn, LayerNorm, Mdta, Pad};

/// Restormer `TransformerBlock`: x + MDTA(LN(x)), then x + GDFN(LN(x)).
#[derive(Module, Debug)]
pub struct TransformerBlock {
    pub norm1: LayerNorm,
    pub attn: Mdta,
    pub norm2: LayerNorm,
    pub ffn: GatedFfn,
}

impl TransformerBlock {
    /// `TransformerBlock(dim, heads, ffn_expansion_factor, bias, 'WithBias')`.
    pub fn new(device: &Device, dim: usize, heads: usize, ffn_factor: f64, bias: bool) -> Self {
        let hidden = (dim as f64 * ffn_factor) as usize;
        Self {
            norm1: LayerNorm::new(device, dim, true),
            attn: Mdta::new(device, dim, heads, bias),
            norm2: LayerNorm::new(device, dim, true),
            ffn: GatedFfn::new(device, dim, hidden, dim, hidden * 2, bias, Pad::Zeros),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.attn.forward_norm_add(&self.norm1, x);
        self.ffn.forward_norm_add(&self.norm2, x)
    }
}

/// The Lite-Transformer block of CDDFuse (`BaseFeatureExtraction`) and EMMA
/// (`GlobalFeatureExtraction`): x + AttentionBase(LN(x)), then x + Mlp(LN(x)), expansion 1.
#[derive(Module, Debug)]
pub struct BaseFeatureExtraction {
    pub norm1: LayerNorm,
    pub attn: AttentionBase,
    pub norm2: LayerNorm,
    pub mlp: GatedFfn,
}

impl BaseFeatureExtraction {
    /// `mlp_pad` is zero padding in CDDFuse and reflection in EMMA.
    pub fn new(device: &Device, dim: usize, heads: usize, mlp_pad: Pad) -> Self {
        Self {
            norm1: LayerNorm::new(device, dim, true),
            attn: AttentionBase::new(device, dim, heads),
            norm2: LayerNorm::new(device, dim, true),
            mlp: GatedFfn::new(device, dim, dim, dim, dim, false, mlp_pad),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.attn.forward_add(self.norm1.forward(x.clone()), x);
        self.mlp.forward_norm_add(&self.norm2, x)
    }
}
