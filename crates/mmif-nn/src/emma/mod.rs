//! EMMA (Zhao et al., "Equivariant Multi-Modality Image Fusion", CVPR 2024): the U-Fuser that
//! fuses an infrared (or functional medical) image with a visible (or MRI) image
//! (`ufuser.rs`), the inference procedures for any image size (`tiling.rs`), and the UNet5
//! pseudo-sensors `Ai` and `Av` that the training loss uses (`unet5.rs`).
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
//! branch (the Lite-Transformer [`crate::layers::BaseFeatureExtraction`], reflect-padded Mlp) and a local
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
//! Measured with `mmif --threads 2 bench -m emma --size 480x640` (random weights cost the
//! same); the figures, the commands and the comparison with ONNX Runtime are in
//! `docs/benchmarks.md` (at its last update: 0.75–0.82 s at 480×640 on this project's 2-core
//! machine, 0.65–0.71× ONNX Runtime's time). Inference runs through the CPU kernels of
//! `crate::kernels` via the shared layers; training keeps burn's differentiable ops.
#![allow(non_snake_case)]

mod tiling;
mod ufuser;
mod unet5;

pub use tiling::{Tiling, ramp, tile_starts};
pub use ufuser::{Head, LocalFeatureExtraction, ResBlock, ResConvs, RestormerCnnBlock, Ufuser, UpSample};
pub use unet5::{BnMode, ConvBlock, ConvBlockLayers, UNET5_MULTIPLE, UNet5};

use burn::tensor::Tensor;

/// Channels of the four U-Fuser scales.
pub const CHANNELS: [usize; 4] = [8, 16, 32, 32];
/// The official procedures work on sides that are multiples of this.
pub const MULTIPLE: usize = 32;

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
