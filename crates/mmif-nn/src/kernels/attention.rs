//! Attention sums: Restormer's transposed ("channel") attention by band ([`ChannelGram`],
//! [`fold_attention`]) and FILM's cross-attention weights pooled over the text tokens
//! ([`softmax_mean_rows`]).

use super::block::LANES;
use super::dispatch;
use super::math::exp_f32;
use rayon::prelude::*;

/// Pixels per task of [`ChannelGram::of`].
const GRAM_PIXELS: usize = 1024;

/// The sums over pixels behind Restormer's transposed attention, per image and head:
/// `q_i·k_j` for the channels `i, j` of a head, and the squared norms of every q and k channel.
/// Sums of bands of an image add up ([`ChannelGram::add`]) to the sums of the image.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChannelGram {
    pub images: usize,
    pub heads: usize,
    /// Channels per head.
    pub d: usize,
    /// `[B, heads, d, d]`.
    pub qk: Vec<f64>,
    /// `[B, C]` each.
    pub qq: Vec<f64>,
    pub kk: Vec<f64>,
}

impl ChannelGram {
    /// The sums of `qkv` (`[B, 3C, H, W]`: q, k and v stacked on the channel axis).
    pub(crate) fn of(qkv: &[f32], shape: [usize; 4], heads: usize) -> Self {
        let [b, c3, h, w] = shape;
        let (c, hw) = (c3 / 3, h * w);
        assert!(c3 % 3 == 0 && heads > 0 && c % heads == 0 && qkv.len() == b * c3 * hw);
        let d = c / heads;
        let pieces = hw.div_ceil(GRAM_PIXELS);
        let mut out =
            Self { images: b, heads, d, qk: vec![0.0; b * heads * d * d], qq: vec![0.0; b * c], kk: vec![0.0; b * c] };
        for bi in 0..b {
            let img = &qkv[bi * c3 * hw..][..c3 * hw];
            let part = (0..pieces)
                .into_par_iter()
                .map(|k| {
                    let r = k * GRAM_PIXELS..((k + 1) * GRAM_PIXELS).min(hw);
                    let q = |i: usize| &img[i * hw..][r.clone()];
                    let kc = |j: usize| &img[(c + j) * hw..][r.clone()];
                    let mut sums = vec![0.0f64; heads * d * d + 2 * c];
                    let (qk, norms) = sums.split_at_mut(heads * d * d);
                    for hd in 0..heads {
                        for i in 0..d {
                            for j in 0..d {
                                qk[(hd * d + i) * d + j] = dot(q(hd * d + i), kc(hd * d + j)) as f64;
                            }
                        }
                    }
                    for i in 0..c {
                        norms[i] = dot(q(i), q(i)) as f64;
                        norms[c + i] = dot(kc(i), kc(i)) as f64;
                    }
                    sums
                })
                .collect::<Vec<_>>()
                .into_iter()
                // Summed in piece order, so that results do not depend on rayon's scheduling.
                .fold(vec![0.0f64; heads * d * d + 2 * c], |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                });
            let nqk = heads * d * d;
            out.qk[bi * nqk..][..nqk].copy_from_slice(&part[..nqk]);
            out.qq[bi * c..][..c].copy_from_slice(&part[nqk..nqk + c]);
            out.kk[bi * c..][..c].copy_from_slice(&part[nqk + c..]);
        }
        out
    }

    /// Adds the sums of another band of the same images.
    pub(crate) fn add(&mut self, other: &Self) {
        assert_eq!((self.images, self.heads, self.d), (other.images, other.heads, other.d));
        let sum = |a: &mut Vec<f64>, b: &Vec<f64>| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        sum(&mut self.qk, &other.qk);
        sum(&mut self.qq, &other.qq);
        sum(&mut self.kk, &other.kk);
    }

    /// The attention weights `[B, heads, d, d]`: `softmax_j(q̂_i·k̂_j · t_h)` with q̂, k̂ the
    /// channels divided by `max(‖·‖₂, 1e-12)` (`F.normalize`) and `t` the per-head temperature.
    pub(crate) fn softmax(&self, temperature: &[f32]) -> Vec<f32> {
        let (heads, d) = (self.heads, self.d);
        let c = heads * d;
        assert_eq!(temperature.len(), heads);
        let mut out = vec![0.0f32; self.images * heads * d * d];
        let mut row = vec![0.0f64; d];
        for bi in 0..self.images {
            for hd in 0..heads {
                for i in 0..d {
                    let qn = self.qq[bi * c + hd * d + i].sqrt().max(1e-12);
                    for (j, r) in row.iter_mut().enumerate() {
                        let kn = self.kk[bi * c + hd * d + j].sqrt().max(1e-12);
                        *r = self.qk[((bi * heads + hd) * d + i) * d + j] / (qn * kn) * temperature[hd] as f64;
                    }
                    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = row.iter().map(|r| (r - m).exp()).sum();
                    for (j, r) in row.iter().enumerate() {
                        out[((bi * heads + hd) * d + i) * d + j] = ((r - m).exp() / z) as f32;
                    }
                }
            }
        }
        out
    }
}

/// `Σ a·b` in f32 with four vectors of running sums (independent chains, so that the loop is
/// not bound by the latency of one chain of FMAs).
#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    const W: usize = 4 * LANES;
    let b = &b[..a.len()];
    let mut lanes = [0.0f32; W];
    let (ca, cb) = (a.chunks_exact(W), b.chunks_exact(W));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..W {
            lanes[l] = x[l].mul_add(y[l], lanes[l]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

dispatch! {
    /// [`dot_lanes`] with the widest vectors the CPU has.
    fn dot(a: &[f32], b: &[f32]) -> f32 = dot_lanes;
}

/// `W·blockdiag(A₀ … A_{heads-1})` for a 1×1 conv weight `W` (`[C_out, C]`) and the attention
/// weights `A` of one image (`[heads, d, d]`): the single 1×1 conv that applies the attention
/// to v and then `W` (Restormer's `project_out`).
pub(crate) fn fold_attention(w: &[f32], cout: usize, attn: &[f32], heads: usize, d: usize) -> Vec<f32> {
    let c = heads * d;
    assert!(w.len() == cout * c && attn.len() == heads * d * d);
    let mut out = vec![0.0f32; cout * c];
    for o in 0..cout {
        for hd in 0..heads {
            for j in 0..d {
                let mut s = 0.0f64;
                for i in 0..d {
                    s += w[o * c + hd * d + i] as f64 * attn[(hd * d + i) * d + j] as f64;
                }
                out[o * c + hd * d + j] = s as f32;
            }
        }
    }
    out
}

/// `row ← exp(row - max)`, returning the sum.
#[inline(always)]
fn exp_shift_sum_imp(row: &mut [f32], max: f32) -> f32 {
    for v in row.iter_mut() {
        *v = exp_f32(*v - max);
    }
    // Eight running sums (a vector's lanes), so that the loop vectorises.
    let mut lanes = [0.0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// The largest value of `row` (−∞ if empty), vectorisable.
#[inline(always)]
fn max_of(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = if v > *l { v } else { *l };
        }
    }
    lanes.iter().chain(chunks.remainder()).fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

dispatch! {
    /// [`exp_shift_sum_imp`] with the widest vectors the CPU has.
    fn exp_shift_sum(row: &mut [f32], max: f32) -> f32 = exp_shift_sum_imp;
}

/// The mean over the rows of `softmax(scores, last axis)` for `scores` of shape `[B, R, S]`:
/// `[B, 1, S]` (FILM's cross-attention weights pooled over the text tokens).
pub(crate) fn softmax_mean_rows(scores: &[f32], shape: [usize; 3]) -> Vec<f32> {
    let [b, r, n] = shape;
    assert_eq!(scores.len(), b * r * n);
    let mut out = vec![0.0f32; b * n];
    for (bi, o) in out.chunks_mut(n).enumerate() {
        let rows = &scores[bi * r * n..][..r * n];
        // Fixed groups of rows, each summed in order, then the groups in order: the result does
        // not depend on rayon's scheduling.
        const GROUP: usize = 8;
        let partial = rows
            .par_chunks(GROUP * n)
            .map(|group| {
                let (mut acc, mut buf) = (vec![0.0f32; n], vec![0.0f32; n]);
                for row in group.chunks(n) {
                    buf.copy_from_slice(row);
                    let max = max_of(row);
                    let sum = exp_shift_sum(&mut buf, max);
                    let inv = 1.0 / sum;
                    for (a, e) in acc.iter_mut().zip(&buf) {
                        *a += e * inv;
                    }
                }
                acc
            })
            .collect::<Vec<_>>()
            .into_iter()
            .reduce(|mut a, b| {
                for (x, y) in a.iter_mut().zip(&b) {
                    *x += y;
                }
                a
            });
        if let Some(acc) = partial {
            let inv_r = 1.0 / r as f32;
            for (o, a) in o.iter_mut().zip(&acc) {
                *o = a * inv_r;
            }
        }
    }
    out
}
