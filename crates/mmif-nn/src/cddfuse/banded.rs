//! CDDFuse in bands of rows: memory bounded by the band height on any image size, the same
//! result as the whole-image evaluation up to the summation order of the attention's sums.
//!
//! Every layer of CDDFuse is local — 1×1 and 3×3 convs (the INN's with reflection padding),
//! per-pixel layer norms and gates — except its transposed attentions: four Restormer blocks
//! and the base extractor of the encoder (for each source), the `BaseFuseLayer`, four Restormer
//! blocks of the decoder. Each needs C×C sums over the whole image of its input (q·kᵀ and the
//! norms `F.normalize` divides by). Storing a full-resolution 64-channel map costs 3 GB at
//! 12 megapixels, so no feature map is kept between bands; instead the network runs in passes:
//!
//! 1. pass k streams bands of rows through the network up to the k-th attention stage (using
//!    the weights of the stages before it, known from earlier passes) and adds that stage's sums
//!    over each band's own rows (`bands::AttentionSums`; f32 dot products over pieces of 1024
//!    pixels, summed in f64);
//! 2. once every stage is known, a last pass computes each band's output rows.
//!
//! A band carries halo rows: each 3×3 conv eats one row at each side that does not reach the
//! image border, and pads (zeros, or the INN's reflection) only at the border
//! (`bands::Band::conv`), so every row is computed from exactly the values the whole-image
//! evaluation uses. The halo a pass needs is the sum over its prefix of layers
//! ([`CddFuse::band_halo`]). Passes: 10 stages + 1; the work is about 7× one whole-image pass
//! (the prefix lengths add up, the base extractors' dense 3×3 conv dominates) plus the halos.

use std::collections::HashMap;

use burn::tensor::{Tensor, activation};

use super::{CddFuse, DetailFeatureExtraction, DetailNode, Encoder, InvertedResidualBlock, Residual, mul_exp_add};
use crate::bands::{AttentionSums, AttentionWeights, Band, Banded, block_rows, qkv_rows};
use crate::layers::Activation;

/// Which attention of the network (per source in the encoder, which runs on both).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Slot {
    Encoder { source: usize, block: usize },
    EncoderBase { source: usize },
    BaseFuse,
    Decoder(usize),
}

/// The attention weights known so far, the sums of the pass under way, and the rows of the
/// band being computed.
#[derive(Default)]
struct Passes {
    known: HashMap<Slot, AttentionWeights>,
    pending: HashMap<Slot, AttentionSums>,
    rows: (usize, usize),
}

impl Passes {
    /// `block` on the rows `x` allows when its weights are known; otherwise adds the sums of
    /// its q, k and v over the band's own rows and returns `None` (the band stops there).
    fn block(&mut self, block: &impl Banded, slot: Slot, x: Band) -> Option<Band> {
        let p = block.parts();
        if let Some(w) = self.known.get(&slot) {
            return Some(block_rows(&p, w, x));
        }
        let qkv = qkv_rows(&p, &x).narrow(self.rows.0, self.rows.1);
        self.pending.entry(slot).or_insert_with(|| AttentionSums::new(&p)).add(&qkv.x);
        None
    }

    /// Ends a pass: the sums become weights. Whether there was anything to settle.
    fn settle(&mut self) -> bool {
        let done = self.pending.is_empty();
        for (slot, sums) in self.pending.drain() {
            self.known.insert(slot, sums.weights());
        }
        !done
    }
}

/// The first and second halves of the channels.
fn split(x: Band) -> (Band, Band) {
    let (top, image_height) = (x.top, x.image_height);
    let (a, b) = super::split_channels(x.x);
    (Band { x: a, top, image_height }, Band { x: b, top, image_height })
}

fn irb_rows(irb: &InvertedResidualBlock, x: Band, residual: Option<&Band>) -> Band {
    let b = &irb.bottleneckBlock;
    let h = Band::conv(&b._0, vec![x], None, Activation::Relu6);
    let h = Band::conv(&b._3, vec![h], None, Activation::Relu6);
    Band::conv(&b._5, vec![h], residual, Activation::None)
}

fn node_rows(node: &DetailNode, z1: Band, z2: Band) -> (Band, Band) {
    let (z1, z2) = split(Band::conv(&node.shffleconv, vec![z1, z2], None, Activation::None));
    let z2 = irb_rows(&node.theta_phi, z1.clone(), Some(&z2));
    let rho = irb_rows(&node.theta_rho, z2.clone(), None);
    let eta = irb_rows(&node.theta_eta, z2.clone(), None);
    let (top, bottom) = (rho.top, rho.bottom());
    let z1 = z1.narrow(top, bottom).map(|z1| mul_exp_add(z1, rho.x, eta.x));
    (z1, z2.narrow(top, bottom))
}

fn detail_rows(net: &DetailFeatureExtraction, x: Band) -> Band {
    let (mut z1, mut z2) = split(x);
    for node in &net.net {
        (z1, z2) = node_rows(node, z1, z2);
    }
    z1.map(|a| Tensor::cat(vec![a, z2.x], 1))
}

/// The encoder's shallow features (patch embedding and its Restormer blocks) of one source.
fn shallow_rows(enc: &Encoder, img: Band, source: usize, passes: &mut Passes) -> Option<Band> {
    let mut x = Band::conv(&enc.patch_embed.proj, vec![img], None, Activation::None);
    for (block, b) in enc.encoder_level1.iter().enumerate() {
        x = passes.block(b, Slot::Encoder { source, block }, x)?;
    }
    Some(x)
}

impl CddFuse {
    /// Rows of halo pass `pass` of [`Self::forward_bands`] needs on each side of a band's own
    /// rows: the rows its prefix of 3×3 convs eats (patch embedding 1; a Restormer or
    /// Lite-Transformer block 2, its q/k/v conv alone 1; an INN node 2, θφ then θρ/θη; the
    /// output head 2). The last pass (the output) needs the most, 27 with the official sizes.
    pub fn band_halo(&self, pass: usize) -> usize {
        let enc = self.DIDF_Encoder.encoder_level1.len();
        let dec = self.DIDF_Decoder.encoder_level2.len();
        let nodes = self.DIDF_Encoder.detailFeature.net.len() + self.DetailFuseLayer.net.len();
        let shallow = 1 + 2 * enc;
        let fused = shallow + 4usize.max(2 * nodes);
        match pass {
            k if k < enc => 1 + 2 * k + 1,
            k if k == enc => shallow + 1,
            k if k == enc + 1 => shallow + 2 + 1,
            k if k < enc + 2 + dec => fused + 2 * (k - enc - 2) + 1,
            _ => fused + 2 * dec + 2,
        }
    }

    /// [`Self::forward`] in bands of `rows` rows (see the module documentation): the same
    /// output up to the summation order of the attention's sums, with memory bounded by the
    /// band height. A batch runs image by image; `rows` ≥ the height runs whole.
    pub fn forward_bands(&self, vis: Tensor<4>, ir: Tensor<4>, residual: Residual, rows: usize) -> Tensor<4> {
        let [b, _, h, _] = vis.dims();
        let rows = rows.max(1);
        if rows >= h {
            return self.forward(vis, ir, residual);
        }
        if b > 1 {
            let one = |t: &Tensor<4>, i| t.clone().narrow(0, i, 1);
            let out = (0..b).map(|i| self.forward_bands(one(&vis, i), one(&ir, i), residual, rows)).collect();
            return Tensor::cat(out, 0);
        }
        let residual = match residual {
            Residual::Vis => Some(vis.clone()),
            Residual::Sum => Some(vis.clone() + ir.clone()),
            Residual::None => None,
        };
        let bands: Vec<(usize, usize)> = (0..h).step_by(rows).map(|r| (r, (r + rows).min(h))).collect();
        let mut passes = Passes::default();
        for pass in 0.. {
            let halo = self.band_halo(pass);
            let mut out = Vec::with_capacity(bands.len());
            for &(r0, r1) in &bands {
                passes.rows = (r0, r1);
                let (top, bottom) = (r0.saturating_sub(halo), (r1 + halo).min(h));
                let (v, i) = (Band::of(&vis, top, bottom), Band::of(&ir, top, bottom));
                if let Some(y) = self.band_rows(v, i, residual.as_ref(), &mut passes) {
                    out.push(y.narrow(r0, r1).x);
                }
            }
            if !passes.settle() {
                assert_eq!(out.len(), bands.len(), "every band reaches the output in the last pass");
                return Tensor::cat(out, 2);
            }
            assert!(out.is_empty(), "pass {pass}: some bands reached the output before the last pass");
        }
        unreachable!("the passes end with the output")
    }

    /// One band through the network as far as the known attention weights allow: the output
    /// rows, or `None` once the band has added the sums of the first unknown stage.
    fn band_rows(&self, vis: Band, ir: Band, residual: Option<&Tensor<4>>, passes: &mut Passes) -> Option<Band> {
        let enc = &self.DIDF_Encoder;
        // Both sources run up to their first unknown stage before the band stops.
        let (v, i) = (shallow_rows(enc, vis, 0, passes), shallow_rows(enc, ir, 1, passes));
        let (v, i) = (v?, i?);
        let vb = passes.block(&enc.baseFeature, Slot::EncoderBase { source: 0 }, v.clone());
        let ib = passes.block(&enc.baseFeature, Slot::EncoderBase { source: 1 }, i.clone());
        let base = passes.block(&self.BaseFuseLayer, Slot::BaseFuse, vb? + ib?)?;
        let detail = detail_rows(&enc.detailFeature, v) + detail_rows(&enc.detailFeature, i);
        let detail = detail_rows(&self.DetailFuseLayer, detail);

        let dec = &self.DIDF_Decoder;
        let (top, bottom) = (base.top.max(detail.top), base.bottom().min(detail.bottom()));
        let inputs = vec![base.narrow(top, bottom), detail.narrow(top, bottom)];
        let mut x = Band::conv(&dec.reduce_channel, inputs, None, Activation::None);
        for (j, block) in dec.encoder_level2.iter().enumerate() {
            x = passes.block(block, Slot::Decoder(j), x)?;
        }
        let x = Band::conv(&dec.output._0, vec![x], None, Activation::None).map(|t| activation::leaky_relu(t, 0.01));
        let residual = residual.map(|r| Band::of(r, x.top, x.bottom()));
        Some(Band::conv(&dec.output._2, vec![x], residual.as_ref(), Activation::None).map(activation::sigmoid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::max_diff;
    use burn::tensor::Distribution;

    fn image(h: usize, w: usize) -> Tensor<4> {
        Tensor::random([1, 1, h, w], Distribution::Uniform(0.0, 1.0), &crate::cpu())
    }

    #[test]
    fn bands_equal_the_whole_image_on_odd_sizes() {
        // Random weights (PyTorch's initialisation); bands of 1 row upward, partial last bands,
        // images thinner than the halo, the 2-row minimum.
        let net = CddFuse::new(&crate::cpu());
        for (h, w, rows, residual) in [
            (13, 9, 1, Residual::Vis),
            (13, 9, 4, Residual::Sum),
            (29, 6, 5, Residual::None),
            (40, 3, 16, Residual::Vis),
            (2, 5, 1, Residual::Vis),
            (3, 2, 2, Residual::Sum),
        ] {
            let (vis, ir) = (image(h, w), image(h, w));
            let whole = net.forward(vis.clone(), ir.clone(), residual);
            let banded = net.forward_bands(vis, ir, residual, rows);
            let d = max_diff(banded, whole);
            assert!(d < 1e-5, "{h}×{w} in bands of {rows} ({residual:?}): differs by {d}");
        }
    }

    #[test]
    fn bands_by_burn_ops_equal_the_whole_image() {
        // Autodiff tensors take the burn compositions (sums by burn ops, no kernels).
        let net = CddFuse::new(&crate::cpu());
        let (vis, ir) = (image(7, 5), image(7, 5));
        let whole = net.forward(vis.clone(), ir.clone(), Residual::Vis);
        let banded = net.forward_bands(vis.autodiff(), ir.autodiff(), Residual::Vis, 3).inner();
        let d = max_diff(banded, whole);
        assert!(d < 1e-5, "differs by {d}");
    }

    #[test]
    fn a_batch_runs_image_by_image() {
        let net = CddFuse::new(&crate::cpu());
        let img = || Tensor::<4>::random([2, 1, 6, 4], Distribution::Uniform(0.0, 1.0), &crate::cpu());
        let (vis, ir) = (img(), img());
        let d =
            max_diff(net.forward_bands(vis.clone(), ir.clone(), Residual::Sum, 2), net.forward(vis, ir, Residual::Sum));
        assert!(d < 1e-5, "differs by {d}");
    }

    #[test]
    fn the_halo_grows_through_the_stages() {
        // 4 encoder blocks, base, base fuse, 4 decoder blocks, then the output: 11 passes.
        let net = CddFuse::new(&crate::cpu());
        let halos: Vec<usize> = (0..12).map(|k| net.band_halo(k)).collect();
        assert_eq!(halos, [2, 4, 6, 8, 10, 12, 18, 20, 22, 24, 27, 27]);
    }
}
