//! Token layers: `nn.Linear`, `nn.Conv1d(·, ·, 1)` over tokens and `nn.MultiheadAttention`
//! (with its pooled evaluation).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, activation};

use crate::ops::softmax_mean_rows;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::rand;

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
}
