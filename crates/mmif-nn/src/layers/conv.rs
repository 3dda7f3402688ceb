//! Convolutions: `nn.Conv2d` with its one fused entry ([`Conv2d::forward_fused`]: several
//! inputs read as their concatenation, a residual and an activation in the same pass, bands of
//! rows), `nn.ConvTranspose2d`, `nn.MaxPool2d(2)`, and PyTorch's default initialisation.

use burn::module::{Module, Param};
use burn::tensor::module::{conv_transpose2d, conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, MaxPoolOptions, PadMode};
use burn::tensor::{Device, Distribution, Tensor};

use super::PRelu;
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
pub(super) fn torch_default_init<const D: usize>(shape: [usize; D], fan: usize, device: &Device) -> Param<Tensor<D>> {
    let bound = 1.0 / (fan as f64).sqrt();
    Param::from_tensor(Tensor::random(shape, Distribution::Uniform(-bound, bound), device))
}

/// What [`Conv2d::forward_fused`] does to the conv's output: adds `residual`, then applies `act`.
#[derive(Clone, Debug, Default)]
pub struct Epilogue<'a> {
    pub residual: Option<Tensor<4>>,
    pub act: Activation<'a>,
}

impl<'a> Epilogue<'a> {
    /// `residual + conv`.
    pub fn residual(residual: Tensor<4>) -> Self {
        Self { residual: Some(residual), act: Activation::None }
    }

    /// `act(conv)`.
    pub fn act(act: Activation<'a>) -> Self {
        Self { residual: None, act }
    }
}

/// The activation of an [`Epilogue`].
#[derive(Clone, Copy, Debug, Default)]
pub enum Activation<'a> {
    #[default]
    None,
    /// `nn.PReLU()` with its learnt slope.
    PRelu(&'a PRelu),
    /// `nn.ReLU6`: `min(max(x, 0), 6)`.
    Relu6,
}

impl Activation<'_> {
    /// The kernels' form, when the activation's parameters are plain `flex` values.
    fn on_host(self) -> Option<kernels::Act> {
        match self {
            Activation::None => Some(kernels::Act::None),
            Activation::PRelu(p) => p.host_slope().map(kernels::Act::PRelu),
            Activation::Relu6 => Some(kernels::Act::Relu6),
        }
    }

    /// The activation by burn's ops.
    fn forward(self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Activation::None => x,
            Activation::PRelu(p) => p.forward(x),
            Activation::Relu6 => x.clamp(0.0, 6.0),
        }
    }
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

    /// `conv(x)`, as `nn.Conv2d`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_fused(vec![x], None, Epilogue::default())
    }

    /// The one fused entry: `act(residual + conv(cat(xs, 1)))`, with `pad_rows = Some([top,
    /// bottom])` for a band of rows of a larger image (`x` holds the band with its neighbours'
    /// rows above and below already in place, so only that many rows of padding are added: the
    /// conv's `padding` where the band meets the image border, 0 where a halo row stands in;
    /// columns are padded as usual).
    ///
    /// On plain `flex` tensors a 1×1 conv reads the inputs in place of their concatenation and
    /// adds the residual and applies the activation inside the kernel; other convs run the
    /// direct kernels with the epilogue after them. Autodiff tensors take burn's ops. The FLOPs
    /// are counted once, whichever way.
    pub fn forward_fused(&self, xs: Vec<Tensor<4>>, pad_rows: Option<[usize; 2]>, epilogue: Epilogue<'_>) -> Tensor<4> {
        assert!(!xs.is_empty(), "a conv needs an input");
        let Epilogue { residual, act } = epilogue;
        let rows = pad_rows.unwrap_or([self.padding; 2]);
        let [b, _, h, w] = xs[0].dims();
        self.count([b, xs.iter().map(|x| x.dims()[1]).sum(), h, w], rows);
        let host_act = act.on_host();
        if let Some(kact) = host_act
            && rows == [0, 0]
        {
            let refs: Vec<&Tensor<4>> = xs.iter().collect();
            if let Some(y) = self.pointwise(&refs, residual.as_ref(), kact) {
                return y;
            }
        }
        let x = cat_channels(xs);
        let bias = self.bias.as_ref().map(Param::val);
        let y = match (self.kernel_vec(&x, &self.weight.val(), bias.as_ref(), rows), host_act, &residual) {
            (Some((mut out, dims)), Some(kact), None) => {
                kact.apply_all(&mut out);
                return kernels::from_host(out, dims);
            }
            (Some((out, dims)), _, _) => kernels::from_host(out, dims),
            (None, _, _) => self.forward_composed(x, pad_rows),
        };
        let y = match residual {
            Some(r) => r + y,
            None => y,
        };
        act.forward(y)
    }

    /// `conv(x)` without the bias, by the differentiable path (for a layer that takes the bias
    /// itself, as [`super::BatchNorm2d::forward_train_relu`] does).
    pub fn forward_unbiased(&self, x: Tensor<4>) -> Tensor<4> {
        self.count(x.dims(), [self.padding; 2]);
        self.by_burn(x, self.weight.val(), None, None)
    }

    /// Adds this conv's FLOPs on an input of shape `input` to [`crate::flops`].
    pub(super) fn count(&self, input: [usize; 4], pad_rows: [usize; 2]) {
        let mut g = ConvGeom::new(input, self.weight.dims(), self.stride, self.padding, self.groups, self.reflect);
        g.pad_rows = pad_rows;
        if g.supported() {
            let [_, cpg, kh, kw] = self.weight.dims();
            crate::flops::add(crate::flops::conv(g.output(), cpg, kh, kw));
        }
    }

    /// The conv by burn's ops (the differentiable path): PyTorch's padding, or `pad_rows` rows
    /// for a band (see [`Self::forward_fused`]).
    fn forward_composed(&self, x: Tensor<4>, pad_rows: Option<[usize; 2]>) -> Tensor<4> {
        let [cout, k, _, _] = self.weight.dims();
        if pad_rows.is_none() && self.groups > 1 && k > 1 && k <= 4 && cout == self.groups * k {
            let p = self.padding;
            let (x, p) = if self.reflect && p > 0 { (x.pad((p, p, p, p), PadMode::Reflect), 0) } else { (x, p) };
            return self.few_channel_groups(x, p);
        }
        self.by_burn(x, self.weight.val(), self.bias.as_ref().map(Param::val), pad_rows)
    }

    /// This conv's geometry with `weight` and `bias`, by burn's ops (see [`Self::forward_composed`]).
    fn by_burn(
        &self,
        x: Tensor<4>,
        weight: Tensor<4>,
        bias: Option<Tensor<1>>,
        pad_rows: Option<[usize; 2]>,
    ) -> Tensor<4> {
        let p = self.padding;
        if let Some(rows) = pad_rows {
            let mode = if self.reflect { PadMode::Reflect } else { PadMode::Constant(0.0) };
            let x = x.pad((p, p, rows[0], rows[1]), mode);
            return conv2d_any(x, weight, bias, self.stride, 0, self.groups);
        }
        let (x, p) = if self.reflect && p > 0 { (x.pad((p, p, p, p), PadMode::Reflect), 0) } else { (x, p) };
        conv2d_any(x, weight, bias, self.stride, p, self.groups)
    }

    /// Whether this is a plain 1×1 conv (stride 1, no padding, one group).
    pub fn is_pointwise(&self) -> bool {
        let [_, _, kh, kw] = self.weight.dims();
        kh * kw == 1 && self.stride == 1 && self.padding == 0 && self.groups == 1
    }

    /// `kernels::pointwise_conv2d_ext` on the channel concatenation of `xs`, with an optional
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
        let rh = kernels::host_maybe(residual)?;
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

    /// The direct kernels (`kernels::conv2d`, `kernels::pointwise_conv2d`,
    /// `kernels::depthwise_conv2d`, or `kernels::winograd_conv2d` where `kernels::winograd_pick`
    /// chooses it) for inference on non-autodiff `flex` tensors, with this conv's stride,
    /// padding, groups and padding mode and the given `weight` and `bias`: the output's values
    /// and shape. `None` otherwise.
    fn kernel_vec(
        &self,
        x: &Tensor<4>,
        weight: &Tensor<4>,
        bias: Option<&Tensor<1>>,
        pad_rows: [usize; 2],
    ) -> Option<(Vec<f32>, [usize; 4])> {
        let mut geom = ConvGeom::new(x.dims(), weight.dims(), self.stride, self.padding, self.groups, self.reflect);
        geom.pad_rows = pad_rows;
        if !geom.supported() {
            return None;
        }
        let xh = kernels::host(x)?;
        let wh = kernels::host(weight)?;
        let bh = kernels::host_maybe(bias)?;
        let (x, w, b) = (kernels::values(&xh), kernels::values(&wh), bh.as_ref().map(kernels::values));
        let out = kernels::conv_auto(x, w, b, &geom)?;
        Some((out, geom.output()))
    }

    /// `conv(x)` with this conv's stride, padding, groups and padding mode but `weight` and
    /// `bias` in place of its own (differentiable: autodiff tensors take burn's ops); `pad_rows`
    /// as in [`Self::forward_fused`]. Counts no FLOPs.
    pub(crate) fn forward_weights(
        &self,
        x: Tensor<4>,
        weight: Tensor<4>,
        bias: Option<Tensor<1>>,
        pad_rows: Option<[usize; 2]>,
    ) -> Tensor<4> {
        if let Some((out, dims)) = self.kernel_vec(&x, &weight, bias.as_ref(), pad_rows.unwrap_or([self.padding; 2])) {
            return kernels::from_host(out, dims);
        }
        self.by_burn(x, weight, bias, pad_rows)
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
        let mut sum: Option<Tensor<4>> = None;
        for s in 0..k {
            let kernels: Vec<Tensor<5>> =
                (0..k).map(|j| w.clone().narrow(1, (j + k - s) % k, 1).narrow(2, j, 1)).collect();
            let v = Tensor::cat(kernels, 1).reshape([cout, 1, kh, kw]);
            let y = conv2d_any(x.clone(), v, None, self.stride, p, cout);
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

/// burn's `conv2d` (zero padding `padding`, no dilation), or [`crate::train_ops::conv2d`] with the
/// bias added after it where that takes the conv (stride 1, dense or depthwise, on `flex`): its
/// backward pass is several times faster than burn's.
pub(crate) fn conv2d_any(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: usize,
    padding: usize,
    groups: usize,
) -> Tensor<4> {
    if stride == 1
        && let Some(y) = crate::train_ops::conv2d(&x, &weight, padding, groups)
    {
        return match bias {
            Some(b) => {
                let c = b.dims()[0];
                y + b.reshape([1, c, 1, 1])
            }
            None => y,
        };
    }
    let opts = ConvOptions::new([stride; 2], [padding; 2], [1, 1], groups);
    conv2d(x, weight, bias, opts)
}

/// `outer(inner(x))` for a 1×1 `inner` with nothing between the two convs (`pad_rows` is
/// `outer`'s, as in [`Conv2d::forward_fused`]).
///
/// Where that is exact and takes fewer multiply-adds, the two run as one conv on `inner`'s
/// input: weight `W[o,i,y,x] = Σ_m W_outer[o,m,y,x] · W_inner[m,i]`, bias `b_outer[o] +
/// Σ_{m,y,x} W_outer[o,m,y,x] · b_inner[m]`. A 1×1 conv commutes with reflection padding, and
/// with zero padding when it has no bias (it maps zeros to zeros), so the merge needs `outer`
/// ungrouped and `inner` bias-free unless `outer` pads by reflection. The
/// weights are multiplied by burn's ops, so training gradients reach both layers as through
/// the two convs. CDDFuse's Lite-Transformer `qkv1`, `qkv2` (64 → 192 1×1, then 192 → 192
/// 3×3) become one 64 → 192 3×3 conv, 3.1× fewer multiply-adds. The FLOPs counted are the
/// two convs' (see [`crate::flops`]).
pub fn pointwise_then(inner: &Conv2d, outer: &Conv2d, x: Tensor<4>, pad_rows: Option<[usize; 2]>) -> Tensor<4> {
    let Some((weight, bias)) = merged_weights(inner, outer) else {
        let y = inner.forward(x);
        return outer.forward_fused(vec![y], pad_rows, Epilogue::default());
    };
    let [b, _, h, w] = x.dims();
    inner.count(x.dims(), [0, 0]);
    outer.count([b, inner.weight.dims()[0], h, w], pad_rows.unwrap_or([outer.padding; 2]));
    outer.forward_weights(x, weight, bias, pad_rows)
}

/// The weight and bias of `outer ∘ inner` as one conv (see [`pointwise_then`]), or `None` where
/// the merge is not exact or not cheaper.
pub(super) fn merged_weights(inner: &Conv2d, outer: &Conv2d) -> Option<(Tensor<4>, Option<Tensor<1>>)> {
    let [mid, cin, _, _] = inner.weight.dims();
    let [cout, mid_outer, kh, kw] = outer.weight.dims();
    let taps = kh * kw;
    let exact =
        inner.is_pointwise() && outer.groups == 1 && mid_outer == mid && (inner.bias.is_none() || outer.reflect);
    // Multiply-adds per output pixel and channel: cin·taps merged, against mid + mid·taps.
    if !exact || cin * taps >= mid * (1 + taps) {
        return None;
    }
    // W_outer as [cout·taps, mid] rows, times W_inner [mid, cin].
    let outer_w = outer.weight.val().permute([0, 2, 3, 1]).reshape([cout * taps, mid]);
    let weight = outer_w.clone().matmul(inner.weight.val().reshape([mid, cin]));
    let weight = weight.reshape([cout, kh, kw, cin]).permute([0, 3, 1, 2]);
    let outer_b = outer.bias.as_ref().map(Param::val);
    let bias = match &inner.bias {
        None => outer_b,
        Some(b_inner) => {
            let tap_sums = outer_w.reshape([cout, taps, mid]).sum_dim(1).reshape([cout, mid]);
            let through = tap_sums.matmul(b_inner.val().reshape([mid, 1])).reshape([cout]);
            Some(match outer_b {
                Some(b) => b + through,
                None => through,
            })
        }
    };
    Some((weight, bias))
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

/// The host buffer of an optional parameter: `Some(None)` without one, `None` if it is not a
/// plain `flex` tensor.
pub(super) fn host_opt<const D: usize>(p: &Option<Param<Tensor<D>>>) -> Option<Option<burn_flex::FlexTensor>> {
    kernels::host_maybe(p.as_ref().map(Param::val).as_ref())
}

/// `nn.MaxPool2d(2)`: 2×2 windows, stride 2, floor.
pub fn max_pool2x2(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([2, 2]))
}
