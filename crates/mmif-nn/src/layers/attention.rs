//! Restormer's transposed ("channel") attention: the composition, its kernel path (sums by
//! `kernels::ChannelGram`, the attention folded into the output projection), and the two
//! attention layers built on it (`Mdta`, `AttentionBase`).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, activation};

use super::conv::host_opt;
use super::{Conv2d, ConvCfg, Epilogue, LayerNorm, expand_dw_project, pointwise_then};
use crate::kernels;

/// `F.normalize(x, dim=-1)`: x / max(‖x‖₂, 1e-12) along the last dimension.
pub fn l2_normalize(x: Tensor<4>) -> Tensor<4> {
    let n = sum_last_blocked(x.clone().square()).sqrt().clamp_min(1e-12);
    x / n
}

/// `x.sum_dim(D - 1)`, summed in blocks of about √L: burn's single-axis sums accumulate
/// sequentially (≈1e-6 relative error over a 64×64 map, against ≈1e-7 for PyTorch's pairwise
/// sums), which is enough to flip ReLU6 masks downstream and move training gradients by 1e-3.
pub fn sum_last_blocked(x: Tensor<4>) -> Tensor<4> {
    let [a, b, c, len] = x.dims();
    let block = (1..=len.isqrt()).rev().find(|k| len % k == 0).unwrap_or(1);
    if block < 8 {
        return x.sum_dim(3);
    }
    x.reshape([a, b, c, len / block, block]).sum_dim(4).sum_dim(3).reshape([a, b, c, 1])
}

/// The transposed ("channel") self-attention of Restormer: `qkv` holds q, k and v stacked on
/// the channel axis; attention is C/heads × C/heads per head, scaled by a learnt temperature.
pub fn channel_attention(qkv: Tensor<4>, heads: usize, temperature: Tensor<3>) -> Tensor<4> {
    let [b, c3, h, w] = qkv.dims();
    let c = c3 / 3;
    count_channel_attention(b, c, heads, h * w);
    let mut parts = qkv.chunk(3, 1).into_iter();
    let mut next = || parts.next().expect("three chunks").reshape([b, heads, c / heads, h * w]);
    let (q, k, v) = (l2_normalize(next()), l2_normalize(next()), next());
    let attn = q.matmul(k.swap_dims(2, 3)) * temperature.unsqueeze_dim::<4>(0);
    activation::softmax(attn, 3).matmul(v).reshape([b, c, h, w])
}

/// Adds the FLOPs of a transposed attention over `n` pixels (q·kᵀ and attention·v per head).
pub(crate) fn count_channel_attention(b: usize, c: usize, heads: usize, n: usize) {
    let d = c / heads.max(1);
    crate::flops::add(crate::flops::matmul(b * heads, d, n, d) + crate::flops::matmul(b * heads, d, d, n));
}

/// `residual + project(channel_attention(qkv, heads, temperature))` for a 1×1 `project`.
///
/// On plain `flex` tensors the attention never forms `attention · v`: the C×C sums over pixels
/// come from one pass (`kernels::ChannelGram`), and the per-head attention matrices are folded
/// into `project`'s weight (`kernels::fold_attention`), so v goes through a single 1×1 conv
/// that also adds the residual.
pub fn attend_project_add(
    qkv: Tensor<4>,
    heads: usize,
    temperature: Tensor<3>,
    project: &Conv2d,
    residual: Tensor<4>,
) -> Tensor<4> {
    if let Some(y) = attend_project_add_kernel(&qkv, heads, &temperature, project, &residual) {
        return y;
    }
    project.forward_fused(vec![channel_attention(qkv, heads, temperature)], None, Epilogue::residual(residual))
}

fn attend_project_add_kernel(
    qkv: &Tensor<4>,
    heads: usize,
    temperature: &Tensor<3>,
    project: &Conv2d,
    residual: &Tensor<4>,
) -> Option<Tensor<4>> {
    let [b, c3, h, w] = qkv.dims();
    let c = c3 / 3;
    if !project.is_pointwise() || project.weight.dims()[1] != c || c3 % 3 != 0 || c % heads != 0 {
        return None;
    }
    let qh = kernels::host(qkv)?;
    let th = kernels::host(temperature)?;
    let gram = kernels::ChannelGram::of(kernels::values(&qh), [b, c3, h, w], heads);
    let attn = gram.softmax(kernels::values(&th));
    let y = project_attention(kernels::values(&qh), [b, c3, h, w], &attn, heads, project, residual)?;
    count_channel_attention(b, c, heads, h * w);
    Some(y)
}

/// `residual + project(attention · v)` from the host values of `qkv` (`[B, 3C, H, W]`) and the
/// per-image attention weights `attn` (`[B, heads, d, d]`, `kernels::ChannelGram::softmax`):
/// the attention is folded into `project`'s 1×1 weight (`kernels::fold_attention`) and v is
/// read in place from `qkv`. Counts `project`'s FLOPs. `None` unless `project` is a 1×1 conv
/// on plain `flex` tensors of matching shapes.
pub(crate) fn project_attention(
    qkv: &[f32],
    dims: [usize; 4],
    attn: &[f32],
    heads: usize,
    project: &Conv2d,
    residual: &Tensor<4>,
) -> Option<Tensor<4>> {
    let [b, c3, h, w] = dims;
    let (c, hw) = (c3 / 3, h * w);
    let [cout, cin, _, _] = project.weight.dims();
    if !project.is_pointwise() || cin != c || residual.dims() != [b, cout, h, w] {
        return None;
    }
    let wh = kernels::host(&project.weight.val())?;
    let bh = host_opt(&project.bias)?;
    let rh = kernels::host(residual)?;
    let (res, d) = (kernels::values(&rh), c / heads);
    let mut out: Vec<f32> = Vec::new();
    for bi in 0..b {
        let folded =
            kernels::fold_attention(kernels::values(&wh), cout, &attn[bi * heads * d * d..][..heads * d * d], heads, d);
        let v = &qkv[(bi * c3 + 2 * c) * hw..][..c * hw];
        let post = kernels::Pointwise { residual: Some(&res[bi * cout * hw..][..cout * hw]), act: kernels::Act::None };
        let y =
            kernels::pointwise_conv2d_ext(&[(v, c)], &folded, bh.as_ref().map(kernels::values), [1, h, w], cout, post);
        if b == 1 {
            out = y;
        } else {
            out.extend_from_slice(&y);
        }
    }
    project.count([b, c, h, w], [0, 0]);
    Some(kernels::from_host(out, [b, cout, h, w]))
}

/// Multi-Dconv head transposed attention (Restormer `Attention`): 1×1 qkv, depthwise 3×3.
#[derive(Module, Debug)]
pub struct Mdta {
    pub temperature: Param<Tensor<3>>,
    pub qkv: Conv2d,
    pub qkv_dwconv: Conv2d,
    pub project_out: Conv2d,
    pub heads: usize,
}

impl Mdta {
    pub fn new(device: &Device, dim: usize, heads: usize, bias: bool) -> Self {
        Self {
            temperature: Param::from_tensor(Tensor::ones([heads, 1, 1], device)),
            qkv: Conv2d::new(device, dim, dim * 3, 1, ConvCfg::same(1).bias(bias)),
            qkv_dwconv: Conv2d::new(device, dim * 3, dim * 3, 3, ConvCfg::same(3).bias(bias).groups(dim * 3)),
            project_out: Conv2d::new(device, dim, dim, 1, ConvCfg::same(1).bias(bias)),
            heads,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let qkv = self.qkv_dwconv.forward(self.qkv.forward(x));
        self.project_out.forward(channel_attention(qkv, self.heads, self.temperature.val()))
    }

    /// `residual + self.forward(x)`, the residual added inside the last conv.
    pub fn forward_add(&self, x: Tensor<4>, residual: Tensor<4>) -> Tensor<4> {
        let qkv = self.qkv_dwconv.forward(self.qkv.forward(x));
        attend_project_add(qkv, self.heads, self.temperature.val(), &self.project_out, residual)
    }

    /// `x + self.forward(norm(x))` (Restormer's `x + attn(norm1(x))`): the layer norm, the
    /// `qkv` 1×1 conv and the depthwise `qkv_dwconv` run as one kernel over rings of rows
    /// (`kernels::gated_ffn` with `Middle::Plain`) where it applies — neither the normalised
    /// input nor `qkv`'s output exists whole.
    pub fn forward_norm_add(&self, norm: &LayerNorm, x: Tensor<4>) -> Tensor<4> {
        let convs = (&self.qkv, &self.qkv_dwconv, None);
        match expand_dw_project(convs, kernels::Middle::Plain, &x, [1, 1], None, Some(norm)) {
            Some(qkv) => attend_project_add(qkv, self.heads, self.temperature.val(), &self.project_out, x),
            None => self.forward_add(norm.forward(x.clone()), x),
        }
    }
}

/// The CDDFuse/EMMA `AttentionBase`: the same transposed attention with a dense 3×3 qkv conv.
#[derive(Module, Debug)]
pub struct AttentionBase {
    pub scale: Param<Tensor<3>>,
    pub qkv1: Conv2d,
    pub qkv2: Conv2d,
    pub proj: Conv2d,
    pub heads: usize,
}

impl AttentionBase {
    pub fn new(device: &Device, dim: usize, heads: usize) -> Self {
        Self {
            scale: Param::from_tensor(Tensor::ones([heads, 1, 1], device)),
            qkv1: Conv2d::new(device, dim, dim * 3, 1, ConvCfg::same(1)),
            qkv2: Conv2d::new(device, dim * 3, dim * 3, 3, ConvCfg::same(3)),
            proj: Conv2d::new(device, dim, dim, 1, ConvCfg::same(1)),
            heads,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.proj.forward(channel_attention(self.qkv(x), self.heads, self.scale.val()))
    }

    /// `residual + self.forward(x)`, the residual added inside the last conv.
    pub fn forward_add(&self, x: Tensor<4>, residual: Tensor<4>) -> Tensor<4> {
        attend_project_add(self.qkv(x), self.heads, self.scale.val(), &self.proj, residual)
    }

    /// `qkv2(qkv1(x))`, as one conv with the two weights multiplied ([`pointwise_then`]).
    pub fn qkv(&self, x: Tensor<4>) -> Tensor<4> {
        pointwise_then(&self.qkv1, &self.qkv2, x, None)
    }
}
