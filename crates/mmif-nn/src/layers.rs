//! Building blocks shared by CDDFuse, EMMA and FILM, written once.
//!
//! Field names follow the official PyTorch modules so that a parameter's path in a
//! burn module is its key in the official state dict (see [`crate::weights`]).

use burn::module::{Module, Param, RunningState};
use burn::tensor::module::{batch_norm, batch_norm_train, conv_transpose2d, conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, MaxPoolOptions, PadMode};
use burn::tensor::{Device, Distribution, Tensor, activation};

use crate::kernels::{self, ConvGeom};

/// How a convolution pads its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pad {
    /// Zero padding (`padding_mode='zeros'`, PyTorch's default).
    Zeros,
    /// Reflection padding (`padding_mode='reflect'` or `nn.ReflectionPad2d`).
    Reflect,
}

/// Settings of a [`Conv2d`] other than its channel counts and kernel size.
#[derive(Clone, Copy, Debug)]
pub struct ConvCfg {
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
    pub bias: bool,
    pub pad: Pad,
}

impl ConvCfg {
    /// Stride 1, "same" padding for an odd kernel `k`, one group, no bias, zero padding.
    pub fn same(k: usize) -> Self {
        Self { stride: 1, padding: k / 2, groups: 1, bias: false, pad: Pad::Zeros }
    }
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }
    pub fn reflect(mut self) -> Self {
        self.pad = Pad::Reflect;
        self
    }
}

/// PyTorch's default initialisation of a layer with fan-in `fan`: U(-1/√fan, 1/√fan)
/// (`kaiming_uniform_(a=√5)` for weights, the same bound for biases).
fn torch_default_init<const D: usize>(shape: [usize; D], fan: usize, device: &Device) -> Param<Tensor<D>> {
    let bound = 1.0 / (fan as f64).sqrt();
    Param::from_tensor(Tensor::random(shape, Distribution::Uniform(-bound, bound), device))
}

/// `nn.Conv2d` with PyTorch semantics, including `padding_mode='reflect'`.
#[derive(Module, Debug)]
pub struct Conv2d {
    pub weight: Param<Tensor<4>>,
    pub bias: Option<Param<Tensor<1>>>,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
    pub reflect: bool,
}

impl Conv2d {
    pub fn new(device: &Device, cin: usize, cout: usize, k: usize, cfg: ConvCfg) -> Self {
        let fan = cin / cfg.groups * k * k;
        Self {
            weight: torch_default_init([cout, cin / cfg.groups, k, k], fan, device),
            bias: cfg.bias.then(|| torch_default_init([cout], fan, device)),
            stride: cfg.stride,
            padding: cfg.padding,
            groups: cfg.groups,
            reflect: cfg.pad == Pad::Reflect,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let p = self.padding;
        self.count(x.dims(), [p, p]);
        if let Some(y) = self.forward_kernel(&x, [p, p]) {
            return y;
        }
        let (x, p) = if self.reflect && p > 0 { (x.pad((p, p, p, p), PadMode::Reflect), 0) } else { (x, p) };
        let [cout, k, _, _] = self.weight.dims();
        if self.groups > 1 && k > 1 && k <= 4 && cout == self.groups * k {
            return self.few_channel_groups(x, p);
        }
        let opts = ConvOptions::new([self.stride; 2], [p; 2], [1, 1], self.groups);
        conv2d(x, self.weight.val(), self.bias.as_ref().map(Param::val), opts)
    }

    /// `residual + self.forward(x)`; a 1×1 conv adds the residual inside the kernel.
    pub fn forward_add(&self, x: Tensor<4>, residual: Tensor<4>) -> Tensor<4> {
        if let Some(y) = self.pointwise(&[&x], Some(&residual), kernels::Act::None) {
            self.count(x.dims(), [0, 0]);
            return y;
        }
        residual + self.forward(x)
    }

    /// Adds this conv's FLOPs on an input of shape `input` to [`crate::flops`].
    fn count(&self, input: [usize; 4], pad_rows: [usize; 2]) {
        let mut g = ConvGeom::new(input, self.weight.dims(), self.stride, self.padding, self.groups, self.reflect);
        g.pad_rows = pad_rows;
        if g.supported() {
            let [_, cpg, kh, kw] = self.weight.dims();
            crate::flops::add(crate::flops::conv(g.output(), cpg, kh, kw));
        }
    }

    /// `prelu(self.forward(cat(xs, 1)))`; a 1×1 conv reads the inputs in place of their
    /// concatenation and applies the PReLU inside the kernel.
    pub fn forward_prelu(&self, xs: Vec<Tensor<4>>, prelu: &PRelu) -> Tensor<4> {
        if let Some(y) = prelu.host_slope().and_then(|a| self.forward_act_kernel(&xs, kernels::Act::PRelu(a))) {
            return y;
        }
        prelu.forward(self.forward(cat_channels(xs)))
    }

    /// `self.forward(cat(xs, 1))`; a 1×1 conv reads the inputs in place of their concatenation.
    pub fn forward_cat(&self, xs: Vec<Tensor<4>>) -> Tensor<4> {
        if let Some(y) = self.forward_act_kernel(&xs, kernels::Act::None) {
            return y;
        }
        self.forward(cat_channels(xs))
    }

    /// `relu6(self.forward(x))` (`min(max(·, 0), 6)`), the activation applied inside the kernel.
    pub fn forward_relu6(&self, x: Tensor<4>) -> Tensor<4> {
        if let Some(y) = self.forward_act_kernel(std::slice::from_ref(&x), kernels::Act::Relu6) {
            return y;
        }
        self.forward(x).clamp(0.0, 6.0)
    }

    /// `act(conv(cat(xs, 1)))` by the kernels (FLOPs counted), `None` where they do not apply.
    fn forward_act_kernel(&self, xs: &[Tensor<4>], act: kernels::Act) -> Option<Tensor<4>> {
        let [b, _, h, w] = xs.first()?.dims();
        let input = [b, xs.iter().map(|x| x.dims()[1]).sum(), h, w];
        let refs: Vec<&Tensor<4>> = xs.iter().collect();
        let y = match self.pointwise(&refs, None, act) {
            Some(y) => y,
            None if xs.len() == 1 => {
                let p = self.padding;
                let (mut out, dims) = self.forward_kernel_vec(&xs[0], [p, p])?;
                act.apply_all(&mut out);
                kernels::from_host(out, dims)
            }
            None => return None,
        };
        self.count(input, [self.padding; 2]);
        Some(y)
    }

    /// Whether this is a plain 1×1 conv (stride 1, no padding, one group).
    pub fn is_pointwise(&self) -> bool {
        let [_, _, kh, kw] = self.weight.dims();
        kh * kw == 1 && self.stride == 1 && self.padding == 0 && self.groups == 1
    }

    /// [`kernels::pointwise_conv2d_ext`] on the channel concatenation of `xs`, with an optional
    /// residual and activation. `None` unless this is a 1×1 conv and the tensors are plain
    /// `flex` ones of matching shapes.
    fn pointwise(&self, xs: &[&Tensor<4>], residual: Option<&Tensor<4>>, act: kernels::Act) -> Option<Tensor<4>> {
        if !self.is_pointwise() || xs.is_empty() {
            return None;
        }
        let [b, _, h, w] = xs[0].dims();
        let cin: usize = xs.iter().map(|x| x.dims()[1]).sum();
        let cout = self.weight.dims()[0];
        let same_grid = xs.iter().all(|x| {
            let [xb, _, xh, xw] = x.dims();
            [xb, xh, xw] == [b, h, w]
        });
        if !same_grid || self.weight.dims()[1] != cin || residual.is_some_and(|r| r.dims() != [b, cout, h, w]) {
            return None;
        }
        let hosts: Option<Vec<_>> = xs.iter().map(|x| kernels::host(x)).collect();
        let hosts = hosts?;
        let rh = match residual {
            Some(r) => Some(kernels::host(r)?),
            None => None,
        };
        let wh = kernels::host(&self.weight.val())?;
        let bh = host_opt(&self.bias)?;
        let inputs: Vec<(&[f32], usize)> =
            hosts.iter().zip(xs).map(|(hx, x)| (kernels::values(hx), x.dims()[1])).collect();
        let post = kernels::Pointwise { residual: rh.as_ref().map(kernels::values), act };
        let out = kernels::pointwise_conv2d_ext(
            &inputs,
            kernels::values(&wh),
            bh.as_ref().map(kernels::values),
            [b, h, w],
            cout,
            post,
        );
        Some(kernels::from_host(out, [b, cout, h, w]))
    }

    /// The conv of a band of rows of a larger image: `x` holds the band with its neighbours'
    /// rows above and below already in place, so only `pad_rows = [top, bottom]` rows of
    /// padding are added (the conv's `padding` where the band meets the image border, 0 where
    /// a halo row stands in). Columns are padded as in [`Self::forward`].
    pub fn forward_rows(&self, x: Tensor<4>, pad_rows: [usize; 2]) -> Tensor<4> {
        self.count(x.dims(), pad_rows);
        if let Some(y) = self.forward_kernel(&x, pad_rows) {
            return y;
        }
        let p = self.padding;
        let mode = if self.reflect { PadMode::Reflect } else { PadMode::Constant(0.0) };
        let x = x.pad((p, p, pad_rows[0], pad_rows[1]), mode);
        let opts = ConvOptions::new([self.stride; 2], [0, 0], [1, 1], self.groups);
        conv2d(x, self.weight.val(), self.bias.as_ref().map(Param::val), opts)
    }

    /// The direct kernels ([`kernels::conv2d`], [`kernels::depthwise_conv2d`]) for inference:
    /// non-autodiff `flex` tensors. `None` otherwise.
    fn forward_kernel(&self, x: &Tensor<4>, pad_rows: [usize; 2]) -> Option<Tensor<4>> {
        let (out, dims) = self.forward_kernel_vec(x, pad_rows)?;
        Some(kernels::from_host(out, dims))
    }

    /// [`Self::forward_kernel`]'s values and shape.
    fn forward_kernel_vec(&self, x: &Tensor<4>, pad_rows: [usize; 2]) -> Option<(Vec<f32>, [usize; 4])> {
        let weight = self.weight.dims();
        let mut geom = ConvGeom::new(x.dims(), weight, self.stride, self.padding, self.groups, self.reflect);
        geom.pad_rows = pad_rows;
        if !geom.supported() {
            return None;
        }
        let xh = kernels::host(x)?;
        let wh = kernels::host(&self.weight.val())?;
        let bh = host_opt(&self.bias)?;
        let (x, w, b) = (kernels::values(&xh), kernels::values(&wh), bh.as_ref().map(kernels::values));
        let out = if weight[2] * weight[3] == 1 && self.stride == 1 && self.padding == 0 && self.groups == 1 {
            kernels::pointwise_conv2d(x, w, b, geom.input, weight[0])
        } else if kernels::depthwise_supported(&geom) {
            kernels::depthwise_conv2d(x, w, b, &geom)
        } else if weight[1] == 1 && weight[0] == self.groups {
            // Strided depthwise: burn's depthwise kernel.
            return None;
        } else {
            kernels::conv2d(x, w, b, &geom)
        };
        Some((out, geom.output()))
    }

    /// A grouped conv with `k` (2..=4) input and output channels per group, as `k` depthwise
    /// convs whose outputs are rotated within each group and summed: burn's grouped conv is
    /// ~10× slower than this for the `k = 2` convs of the Restormer MLPs (`groups = hidden`).
    ///
    /// With `out[g,o] = Σ_i dw(x[g,i], W[g,o,i])`, substitute `i = (o+s) mod k`: term `s` is a
    /// depthwise conv of `x` with kernels `V_s[g,j] = W[g,(j-s) mod k,j]`, rolled by `-s`
    /// inside the group.
    fn few_channel_groups(&self, x: Tensor<4>, p: usize) -> Tensor<4> {
        let [cout, k, kh, kw] = self.weight.dims();
        let g = cout / k;
        let [b, _, _, _] = x.dims();
        let w = self.weight.val().reshape([g, k, k, kh, kw]);
        let opts = ConvOptions::new([self.stride; 2], [p; 2], [1, 1], cout);
        let mut sum: Option<Tensor<4>> = None;
        for s in 0..k {
            let kernels: Vec<Tensor<5>> =
                (0..k).map(|j| w.clone().narrow(1, (j + k - s) % k, 1).narrow(2, j, 1)).collect();
            let v = Tensor::cat(kernels, 1).reshape([cout, 1, kh, kw]);
            let y = conv2d(x.clone(), v, None, opts.clone());
            let [_, _, oh, ow] = y.dims();
            let y = if s == 0 {
                y
            } else {
                // roll by -s along the in-group axis: out[o] = y[(o+s) mod k]
                let y = y.reshape([b, g, k, oh, ow]);
                Tensor::cat(vec![y.clone().narrow(2, s, k - s), y.narrow(2, 0, s)], 2).reshape([b, cout, oh, ow])
            };
            sum = Some(match sum {
                Some(acc) => acc + y,
                None => y,
            });
        }
        let out = sum.expect("k > 1 terms");
        match &self.bias {
            Some(bias) => out + bias.val().reshape([1, cout, 1, 1]),
            None => out,
        }
    }
}

/// `cat(xs, 1)`, or the one tensor itself.
fn cat_channels(xs: Vec<Tensor<4>>) -> Tensor<4> {
    if xs.len() == 1 { xs.into_iter().next().expect("one input") } else { Tensor::cat(xs, 1) }
}

/// `nn.ConvTranspose2d(cin, cout, 4, 2, 1)`: doubles the spatial size.
#[derive(Module, Debug)]
pub struct ConvTranspose2d {
    pub weight: Param<Tensor<4>>,
    pub bias: Option<Param<Tensor<1>>>,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvTranspose2d {
    pub fn new(device: &Device, cin: usize, cout: usize, k: usize, stride: usize, padding: usize, bias: bool) -> Self {
        // PyTorch computes the fan-in of a transposed conv from weight.size(1) * k * k.
        let fan = cout * k * k;
        Self {
            weight: torch_default_init([cin, cout, k, k], fan, device),
            bias: bias.then(|| torch_default_init([cout], fan, device)),
            kernel: k,
            stride,
            padding,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, cin, h, w] = x.dims();
        let [_, cout, kh, kw] = self.weight.dims();
        crate::flops::add(crate::flops::matmul(b, cin * h * w, 1, cout * kh * kw));
        let opts = ConvTransposeOptions::new([self.stride; 2], [self.padding; 2], [0, 0], [1, 1], 1);
        conv_transpose2d(x, self.weight.val(), self.bias.as_ref().map(Param::val), opts)
    }
}

/// `nn.PReLU()` with one shared slope.
#[derive(Module, Debug)]
pub struct PRelu {
    pub weight: Param<Tensor<1>>,
}

impl PRelu {
    pub fn new(device: &Device) -> Self {
        Self { weight: Param::from_tensor(Tensor::full([1], 0.25, device)) }
    }

    /// The slope as a number, if the parameter is a plain `flex` tensor of one value (the
    /// kernels' path); `None` for autodiff parameters.
    fn host_slope(&self) -> Option<f32> {
        let w = kernels::host(&self.weight.val())?;
        match kernels::values(&w) {
            [a] => Some(*a),
            _ => None,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        if let (Some(a), Some(xh)) = (self.host_slope(), kernels::host(&x)) {
            return kernels::from_host(kernels::prelu(kernels::values(&xh), a), x.dims());
        }
        let a = self.weight.val().reshape([1; D]);
        let neg = x.clone().clamp_max(0.0);
        x.clamp_min(0.0) + neg * a
    }
}

/// Parameters of a layer norm over the channel dimension (the official `WithBias_LayerNorm`,
/// or `BiasFree_LayerNorm` when `bias` is `None`).
#[derive(Module, Debug)]
pub struct LayerNormBody {
    pub weight: Param<Tensor<1>>,
    pub bias: Option<Param<Tensor<1>>>,
}

/// Restormer's `LayerNorm(dim, type)`: normalises every pixel over its channels (eps 1e-5,
/// biased variance). Computed directly on `B×C×H×W`, no transposes.
#[derive(Module, Debug)]
pub struct LayerNorm {
    pub body: LayerNormBody,
}

impl LayerNorm {
    pub fn new(device: &Device, dim: usize, with_bias: bool) -> Self {
        Self {
            body: LayerNormBody {
                weight: Param::from_tensor(Tensor::ones([dim], device)),
                bias: with_bias.then(|| Param::from_tensor(Tensor::zeros([dim], device))),
            },
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if let Some(y) = self.forward_kernel(&x) {
            return y;
        }
        self.forward_composed(x)
    }

    /// [`kernels::layer_norm`] for non-autodiff `flex` tensors.
    fn forward_kernel(&self, x: &Tensor<4>) -> Option<Tensor<4>> {
        let xh = kernels::host(x)?;
        let wh = kernels::host(&self.body.weight.val())?;
        let bh = host_opt(&self.body.bias)?;
        let out =
            kernels::layer_norm(kernels::values(&xh), x.dims(), kernels::values(&wh), bh.as_ref().map(kernels::values));
        Some(kernels::from_host(out, x.dims()))
    }

    /// The layer norm as burn ops (differentiable).
    pub fn forward_composed(&self, x: Tensor<4>) -> Tensor<4> {
        let c = x.dims()[1];
        let mu = x.clone().mean_dim(1);
        let centred = x.clone() - mu;
        let var = centred.clone().square().mean_dim(1);
        let inv = (var + 1e-5).sqrt().recip();
        let w = self.body.weight.val().reshape([1, c, 1, 1]);
        match &self.body.bias {
            Some(b) => centred * inv * w + b.val().reshape([1, c, 1, 1]),
            None => x * inv * w,
        }
    }
}

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
/// come from one pass ([`kernels::ChannelGram`]), and the per-head attention matrices are folded
/// into `project`'s weight ([`kernels::fold_attention`]), so v goes through a single 1×1 conv
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
    project.forward_add(channel_attention(qkv, heads, temperature), residual)
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
/// per-image attention weights `attn` (`[B, heads, d, d]`, [`kernels::ChannelGram::softmax`]):
/// the attention is folded into `project`'s 1×1 weight ([`kernels::fold_attention`]) and v is
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

/// The host buffer of an optional parameter: `Some(None)` without one, `None` if it is not a
/// plain `flex` tensor.
fn host_opt<const D: usize>(p: &Option<Param<Tensor<D>>>) -> Option<Option<burn_flex::FlexTensor>> {
    match p {
        Some(t) => Some(Some(kernels::host(&t.val())?)),
        None => Some(None),
    }
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
        let qkv = self.qkv2.forward(self.qkv1.forward(x));
        self.proj.forward(channel_attention(qkv, self.heads, self.scale.val()))
    }

    /// `residual + self.forward(x)`, the residual added inside the last conv.
    pub fn forward_add(&self, x: Tensor<4>, residual: Tensor<4>) -> Tensor<4> {
        let qkv = self.qkv2.forward(self.qkv1.forward(x));
        attend_project_add(qkv, self.heads, self.scale.val(), &self.proj, residual)
    }
}

/// Gated-Dconv feed-forward network: 1×1 to 2·hidden, grouped 3×3, GELU(x₁)·x₂, 1×1 back.
/// Restormer's `FeedForward` (depthwise) and the CDDFuse/EMMA `Mlp` (groups = hidden) are both this.
#[derive(Module, Debug)]
pub struct GatedFfn {
    pub project_in: Conv2d,
    pub dwconv: Conv2d,
    pub project_out: Conv2d,
}

impl GatedFfn {
    /// `groups` is the number of groups of the 3×3 conv over `2·hidden` channels.
    pub fn new(device: &Device, dim: usize, hidden: usize, out: usize, groups: usize, bias: bool, pad: Pad) -> Self {
        let mut dw = ConvCfg::same(3).bias(bias).groups(groups);
        dw.pad = pad;
        Self {
            project_in: Conv2d::new(device, dim, hidden * 2, 1, ConvCfg::same(1).bias(bias)),
            dwconv: Conv2d::new(device, hidden * 2, hidden * 2, 3, dw),
            project_out: Conv2d::new(device, hidden, out, 1, ConvCfg::same(1).bias(bias)),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.project_out.forward(gelu_gate(self.dwconv.forward(self.project_in.forward(x))))
    }

    /// `residual + self.forward(x)`: one fused kernel ([`kernels::gated_ffn`]) when the
    /// 3×3 conv is depthwise and the tensors are plain `flex` ones, else the residual is added
    /// inside the last conv.
    pub fn forward_add(&self, x: Tensor<4>, residual: Tensor<4>) -> Tensor<4> {
        if let Some(y) = self.fused(&x, [1, 1], &residual) {
            return y;
        }
        self.project_out.forward_add(gelu_gate(self.dwconv.forward(self.project_in.forward(x))), residual)
    }

    /// [`Self::forward_add`] for a band of rows of a larger image (see
    /// [`Conv2d::forward_rows`]): `x` carries the neighbours' halo rows, the 3×3 conv pads
    /// `pad_rows`, and `residual` holds the band's own rows.
    pub fn forward_rows_add(&self, x: Tensor<4>, pad_rows: [usize; 2], residual: Tensor<4>) -> Tensor<4> {
        if let Some(y) = self.fused(&x, pad_rows, &residual) {
            return y;
        }
        let y = self.dwconv.forward_rows(self.project_in.forward(x), pad_rows);
        self.project_out.forward_add(gelu_gate(y), residual)
    }

    /// Whether the layers have the shape [`kernels::gated_ffn`] fuses: 1×1 convs around a
    /// depthwise 3×3 (Restormer's `FeedForward`; not the CDDFuse/EMMA `Mlp`, whose 3×3 conv has
    /// two channels per group).
    pub fn fuses(&self) -> bool {
        let f2 = self.project_in.weight.dims()[0];
        let dw = &self.dwconv;
        let depthwise = dw.weight.dims() == [f2, 1, 3, 3] && dw.groups == f2 && dw.stride == 1 && dw.padding == 1;
        depthwise
            && self.project_in.is_pointwise()
            && self.project_out.is_pointwise()
            && self.project_out.weight.dims()[1] * 2 == f2
    }

    /// The fused kernel, when it applies.
    fn fused(&self, x: &Tensor<4>, pad_rows: [usize; 2], residual: &Tensor<4>) -> Option<Tensor<4>> {
        let [b, c, h, w] = x.dims();
        let cin = self.project_in.weight.dims()[1];
        let dw = &self.dwconv;
        let [cout, f] = {
            let d = self.project_out.weight.dims();
            [d[0], d[1]]
        };
        let oh = (h + pad_rows[0] + pad_rows[1]).checked_sub(2)?;
        if !self.fuses()
            || cin != c
            || w < 2
            || pad_rows.iter().any(|&p| p > 1)
            || oh == 0
            || residual.dims() != [b, cout, oh, w]
        {
            return None;
        }
        let xh = kernels::host(x)?;
        let rh = kernels::host(residual)?;
        let (w_in, w_dw, w_out) = (
            kernels::host(&self.project_in.weight.val())?,
            kernels::host(&dw.weight.val())?,
            kernels::host(&self.project_out.weight.val())?,
        );
        let (b_in, b_dw, b_out) =
            (host_opt(&self.project_in.bias)?, host_opt(&dw.bias)?, host_opt(&self.project_out.bias)?);
        let wts = kernels::GatedFfnWeights {
            w_in: kernels::values(&w_in),
            b_in: b_in.as_ref().map(kernels::values),
            w_dw: kernels::values(&w_dw),
            b_dw: b_dw.as_ref().map(kernels::values),
            w_out: kernels::values(&w_out),
            b_out: b_out.as_ref().map(kernels::values),
            hidden: f,
            cout,
            reflect: dw.reflect,
        };
        let out = kernels::gated_ffn(kernels::values(&xh), [b, c, h, w], &wts, pad_rows, kernels::values(&rh));
        self.project_in.count([b, c, h, w], [0, 0]);
        dw.count([b, 2 * f, h, w], pad_rows);
        self.project_out.count([b, f, oh, w], [0, 0]);
        Some(kernels::from_host(out, [b, cout, oh, w]))
    }
}

/// `GELU(x₁)·x₂` where `x₁, x₂` are the two channel halves of `x` (erf GELU): one kernel
/// ([`kernels::gelu_gate`]) for non-autodiff `flex` tensors, burn ops otherwise.
pub fn gelu_gate(x: Tensor<4>) -> Tensor<4> {
    if let Some(xh) = kernels::host(&x) {
        let [b, c, h, w] = x.dims();
        if c % 2 == 0 {
            return kernels::from_host(kernels::gelu_gate(kernels::values(&xh), x.dims()), [b, c / 2, h, w]);
        }
    }
    gelu_gate_composed(x)
}

/// [`gelu_gate`] as burn ops (differentiable).
pub fn gelu_gate_composed(x: Tensor<4>) -> Tensor<4> {
    let mut halves = x.chunk(2, 1).into_iter();
    let (x1, x2) = (halves.next().expect("two halves"), halves.next().expect("two halves"));
    activation::gelu(x1) * x2
}

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
        let x = self.attn.forward_add(self.norm1.forward(x.clone()), x);
        self.ffn.forward_add(self.norm2.forward(x.clone()), x)
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
        self.mlp.forward_add(self.norm2.forward(x.clone()), x)
    }
}

/// `nn.BatchNorm2d(c)` (eps 1e-5, momentum 0.1, affine, tracking running statistics).
///
/// The running statistics are buffers: they load from and export to the state-dict keys
/// `running_mean` / `running_var`, and never receive gradients. PyTorch's
/// `num_batches_tracked` counter is not kept (it only matters for `momentum=None`); the loader
/// ignores it, and PyTorch's `load_state_dict` accepts a state dict without it.
#[derive(Module, Debug)]
pub struct BatchNorm2d {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    pub running_mean: RunningState<Tensor<1>>,
    pub running_var: RunningState<Tensor<1>>,
    pub momentum: f64,
    pub eps: f64,
}

impl BatchNorm2d {
    pub fn new(device: &Device, c: usize) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([c], device)),
            bias: Param::from_tensor(Tensor::zeros([c], device)),
            running_mean: RunningState::new(Tensor::zeros([c], device)),
            running_var: RunningState::new(Tensor::ones([c], device)),
            momentum: 0.1,
            eps: 1e-5,
        }
    }

    /// Evaluation mode (`model.eval()`): normalises with the running statistics.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let device = x.device();
        let mean = self.running_mean.value().to_device(&device);
        let var = self.running_var.value().to_device(&device);
        batch_norm(x, self.weight.val(), self.bias.val(), mean, var, self.eps)
    }

    /// Training mode (`model.train()`): normalises with the batch statistics (biased variance)
    /// and updates the running statistics as PyTorch does, `r ← (1-m)·r + m·s`, with the
    /// *unbiased* batch variance (`n/(n-1)`, `n = B·H·W`) for `running_var`.
    pub fn forward_train(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, _, h, w] = x.dims();
        let n = (b * h * w) as f64;
        let device = x.device();
        let out = batch_norm_train(x, self.weight.val(), self.bias.val(), self.eps);
        let m = self.momentum;
        let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
        let mean = self.running_mean.value_sync().to_device(&device) * (1.0 - m) + out.mean.detach() * m;
        let var = self.running_var.value_sync().to_device(&device) * (1.0 - m) + out.variance.detach() * (m * unbiased);
        self.running_mean.update(mean.detach());
        self.running_var.update(var.detach());
        // Settle the update now so that readers (state dicts, `forward`) see it.
        self.running_mean.value_sync();
        self.running_var.value_sync();
        out.output
    }
}

/// `nn.MaxPool2d(2)`: 2×2 windows, stride 2, floor.
pub fn max_pool2x2(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([2, 2]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{max_abs, max_diff};

    #[test]
    fn few_channel_groups_equal_burns_grouped_conv() {
        let dev = crate::cpu();
        for (k, groups, stride, reflect) in [(2, 8, 1, true), (3, 4, 2, false), (4, 2, 1, false), (2, 1, 1, false)] {
            let c = k * groups;
            let mut cfg = ConvCfg::same(3).bias(true).groups(groups).stride(stride);
            if reflect {
                cfg = cfg.reflect();
            }
            let conv = Conv2d::new(&dev, c, c, 3, cfg);
            let x = Tensor::<4>::random([2, c, 13, 10], Distribution::Uniform(-1.0, 1.0), &dev);
            let got = crate::weights::tensor_to_vec(conv.forward(x.clone()));
            let x = if reflect { x.pad((1, 1, 1, 1), PadMode::Reflect) } else { x };
            let p = if reflect { 0 } else { 1 };
            let opts = ConvOptions::new([stride; 2], [p; 2], [1, 1], groups);
            let want = conv2d(x, conv.weight.val(), conv.bias.as_ref().map(Param::val), opts);
            let want = crate::weights::tensor_to_vec(want);
            let d = max_abs(&got, &want);
            assert!(d < 1e-5, "k={k} groups={groups}: {d}");
        }
    }

    #[test]
    fn forward_rows_equals_rows_of_the_full_conv() {
        let dev = crate::cpu();
        for (groups, reflect) in [(1, false), (1, true), (6, false), (6, true)] {
            let mut cfg = ConvCfg::same(3).bias(true).groups(groups);
            if reflect {
                cfg = cfg.reflect();
            }
            let conv = Conv2d::new(&dev, 6, 6, 3, cfg);
            let x = Tensor::<4>::random([1, 6, 12, 9], Distribution::Uniform(-1.0, 1.0), &dev);
            let full = conv.forward(x.clone());
            // Rows 0..5 with a halo row below; rows 4..8 with halos on both sides; 8..12 with one above.
            for (r0, r1, pad) in [(0, 6, [1, 0]), (3, 9, [0, 0]), (7, 12, [0, 1])] {
                let want = crate::weights::tensor_to_vec(full.clone().narrow(
                    2,
                    r0 + 1 - pad[0],
                    r1 - r0 - 2 + pad[0] + pad[1],
                ));
                for ad in [false, true] {
                    let band = x.clone().narrow(2, r0, r1 - r0);
                    let band = if ad { band.autodiff() } else { band };
                    let got = crate::weights::tensor_to_vec(conv.forward_rows(band, pad));
                    let d = max_abs(&got, &want);
                    assert_eq!(got.len(), want.len());
                    assert!(d < 1e-5, "groups {groups} reflect {reflect} rows {r0}..{r1} autodiff {ad}: {d}");
                }
            }
        }
    }

    #[test]
    fn folded_attention_equals_attention_then_projection() {
        let dev = crate::cpu();
        for (b, c, heads, bias) in [(1, 16, 4, false), (2, 24, 3, true), (1, 8, 8, true)] {
            let project = Conv2d::new(&dev, c, c, 1, ConvCfg::same(1).bias(bias));
            let qkv = Tensor::<4>::random([b, 3 * c, 9, 13], Distribution::Normal(0.0, 1.0), &dev);
            let residual = Tensor::<4>::random([b, c, 9, 13], Distribution::Normal(0.0, 1.0), &dev);
            let temperature = Tensor::<3>::random([heads, 1, 1], Distribution::Uniform(0.5, 2.0), &dev);
            let got = attend_project_add(qkv.clone(), heads, temperature.clone(), &project, residual.clone());
            // The burn composition (autodiff tensors never take the kernels).
            let want = attend_project_add(qkv.autodiff(), heads, temperature.autodiff(), &project, residual.autodiff());
            let d = max_diff(got, want.inner());
            assert!(d < 2e-5, "b {b} c {c} heads {heads}: {d}");
        }
    }

    #[test]
    fn pointwise_add_equals_conv_plus_residual() {
        let dev = crate::cpu();
        let conv = Conv2d::new(&dev, 12, 20, 1, ConvCfg::same(1).bias(true));
        let x = Tensor::<4>::random([2, 12, 7, 61], Distribution::Normal(0.0, 1.0), &dev);
        let r = Tensor::<4>::random([2, 20, 7, 61], Distribution::Normal(0.0, 1.0), &dev);
        let got = conv.forward_add(x.clone(), r.clone());
        let want = conv.forward_add(x.autodiff(), r.autodiff()).inner();
        assert!(max_diff(got, want) < 1e-5);
    }

    #[test]
    fn conv_of_concatenation_with_prelu_equals_composition() {
        let dev = crate::cpu();
        let conv = Conv2d::new(&dev, 20, 16, 1, ConvCfg::same(1).bias(true));
        let mut prelu = PRelu::new(&dev);
        prelu.weight = Param::from_tensor(Tensor::full([1], -0.3, &dev));
        let a = Tensor::<4>::random([2, 12, 5, 77], Distribution::Normal(0.0, 1.0), &dev);
        let b = Tensor::<4>::random([2, 8, 5, 77], Distribution::Normal(0.0, 1.0), &dev);
        let got = conv.forward_prelu(vec![a.clone(), b.clone()], &prelu);
        let want = conv.forward_prelu(vec![a.clone().autodiff(), b.clone().autodiff()], &prelu).inner();
        assert!(max_diff(got, want) < 1e-5);
        // The PReLU kernel alone.
        let got = prelu.forward(a.clone());
        let want = prelu.forward(a.autodiff()).inner();
        assert!(max_diff(got, want) < 1e-7);
    }

    #[test]
    fn fused_gated_ffn_equals_composition() {
        let dev = crate::cpu();
        for (bias, pad, b, h, w) in
            [(false, Pad::Zeros, 1, 9, 37), (true, Pad::Reflect, 2, 5, 70), (true, Pad::Zeros, 1, 3, 2)]
        {
            let ffn = GatedFfn::new(&dev, 8, 12, 8, 24, bias, pad);
            let x = Tensor::<4>::random([b, 8, h, w], Distribution::Normal(0.0, 1.0), &dev);
            let r = Tensor::<4>::random([b, 8, h, w], Distribution::Normal(0.0, 1.0), &dev);
            let got = ffn.forward_add(x.clone(), r.clone());
            let want = ffn.forward_add(x.clone().autodiff(), r.clone().autodiff()).inner();
            let d = max_diff(got, want);
            assert!(d < 1e-5, "bias {bias} {pad:?} {b}×{h}×{w}: {d}");
            // A band with halo rows: rows 1..h-1 of the image, from rows 0..h with no padding.
            if h >= 4 {
                let r_band = r.clone().narrow(2, 1, h - 2);
                let got = ffn.forward_rows_add(x.clone(), [0, 0], r_band.clone());
                let want = ffn.forward_rows_add(x.clone().autodiff(), [0, 0], r_band.autodiff()).inner();
                assert!(max_diff(got, want) < 1e-5);
            }
        }
    }
}
