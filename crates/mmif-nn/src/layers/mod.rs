//! Building blocks shared by CDDFuse, EMMA and FILM, written once, in the manner of burn-nn:
//! one file per kind of layer, each with its differentiable burn composition and, on plain
//! `flex` tensors, its CPU kernel path (`crate::kernels`).
//!
//! Field names follow the official PyTorch modules so that a parameter's path in a
//! burn module is its key in the official state dict (see [`crate::weights`]). Each layer
//! counts its own FLOPs ([`crate::flops`]) in its forward, whichever path evaluates it.
//!
//! | file | layers |
//! |---|---|
//! | `conv.rs` | [`Conv2d`] (one fused entry: inputs, [`Epilogue`] of residual and [`Activation`]), [`ConvTranspose2d`], [`max_pool2x2`] |
//! | `act.rs` | [`PRelu`] |
//! | `norm.rs` | [`LayerNorm`], [`BatchNorm2d`] |
//! | `attention.rs` | transposed attention: [`channel_attention`], [`attend_project_add`], [`Mdta`], [`AttentionBase`] |
//! | `ffn.rs` | [`GatedFfn`], [`gelu_gate`] |
//! | `blocks.rs` | [`TransformerBlock`], [`BaseFeatureExtraction`] |
//! | `linear.rs` | [`Linear`], [`Conv1x1d`], [`MultiheadAttention`] |

mod act;
mod attention;
mod blocks;
mod conv;
mod ffn;
mod linear;
mod norm;
#[cfg(test)]
mod tests;

pub use act::PRelu;
pub use attention::{AttentionBase, Mdta, attend_project_add, channel_attention, l2_normalize, sum_last_blocked};
pub(crate) use attention::{count_channel_attention, project_attention};
pub use blocks::{BaseFeatureExtraction, TransformerBlock};
pub use conv::{Activation, Conv2d, ConvCfg, ConvTranspose2d, Epilogue, Pad, max_pool2x2, pointwise_then};
pub(crate) use ffn::expand_dw_project;
pub use ffn::{GatedFfn, gelu_gate, gelu_gate_composed};
pub use linear::{Conv1x1d, Linear, MultiheadAttention};
pub use norm::{BatchNorm2d, LayerNorm, LayerNormBody};
