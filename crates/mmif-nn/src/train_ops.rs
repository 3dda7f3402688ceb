//! Differentiable operations with their own backward pass on `flex`, for training.
//!
//! [`conv2d`] is a burn backend extension ([`TrainOps`]) implemented for `Flex` and for
//! `Autodiff<Flex>`: its forward pass runs im2col and `gemm` for dense convs (as burn does, but
//! without its NHWC copies) and the depthwise inference kernel, and its backward pass the
//! gradient kernels of `kernels/conv_grad.rs`, instead of burn's differentiation of `conv2d` (a
//! transposed conv for the input gradient and, for the weight gradient, a conv whose kernel is the
//! output gradient, once per group). It takes stride-1
//! convs with zero padding `p < K` of square kernels, dense or depthwise; the layers call it for
//! every such conv on a `flex` device and keep burn's `conv2d` for the rest and for other
//! devices (GPU backends never reach the extension). [`layer_norm`] is Restormer's `WithBias`
//! layer norm over channels as one op: the inference kernel forward, and a backward pass that
//! recomputes the per-pixel statistics and writes the three gradients in one sweep
//! (`kernels::layer_norm_backward`) instead of the dozen element-wise ops and reductions of the
//! burn composition, each with a buffer of its own. [`gelu_gate`] is the gated FFN's
//! `GELU(x₁)·x₂` as one op, its backward one pass writing both halves' gradients.
//! [`batch_norm_relu`] is UNet5's train-mode `BatchNorm2d` then `ReLU` (with the preceding conv's
//! bias, which the batch mean cancels): statistics in f64 from per-plane sums, one pass for the
//! output; the backward pass keeps only the input and recomputes the normalised values and the
//! ReLU's mask (burn's `batch_norm_train` and `relu` keep several full-size tensors).
//!
//! Adding another op: a method on [`TrainOps`], its `Flex` body (plain host buffers), its
//! `Autodiff` body (a [`Backward`] step: which inputs to checkpoint, what gradients to
//! register), a `Tensor`-level wrapper that checks the device and the shapes, and a test of its
//! gradients against the burn composition and finite differences (see the tests below and
//! DEVELOPERS.md, "Adding a training kernel").

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, DispatchDevice, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, Tensor};
use burn_flex::FlexTensor;

use crate::kernels::{self, ConvGeom};

/// The training ops of mmif with their own backward pass (see the module documentation).
#[backend_extension(Flex, Autodiff)]
pub trait TrainOps: Backend {
    /// `conv2d(x, weight)` without bias: stride 1, zero padding `padding` on all sides, `groups`
    /// 1 (dense) or `C_in` (depthwise, one channel per group).
    fn mmif_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, padding: usize, groups: usize)
    -> FloatTensor<Self>;

    /// Restormer's `WithBias` layer norm over the channels of every pixel of `x` (`[B, C, H, W]`;
    /// `weight` and `bias` `[C]`): `(x-μ)/σ·w + b`, biased variance, eps 1e-5.
    fn mmif_layer_norm(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `GELU(x₁)·x₂` for the two channel halves of `x` (`[B, 2C, H, W]` → `[B, C, H, W]`, erf
    /// GELU).
    fn mmif_gelu_gate(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Train-mode `nn.BatchNorm2d` of `x + bias` then ReLU, per channel of `x` (`[B, C, H, W]`;
    /// `bias`, `weight`, `shift` `[C]`): `max(0, (x − μ)·s·weight + shift)`, where `stats`
    /// (`[2, C]`, not differentiated) holds the batch mean `μ` of `x` and `s = 1/√(σ² + ε)` of its
    /// biased variance. `bias` (a conv's, before the norm) cancels in the output; it only gets
    /// its gradient, `Σ dx` (zero but for rounding).
    fn mmif_batch_norm_relu(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        stats: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// The geometry of [`TrainOps::mmif_conv2d`] on these shapes.
fn geometry(x: [usize; 4], weight: [usize; 4], padding: usize, groups: usize) -> ConvGeom {
    ConvGeom::new(x, weight, 1, padding, groups, false)
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    t.shape().dims()
}

impl TrainOps for Flex {
    fn mmif_conv2d(x: FlexTensor, weight: FlexTensor, padding: usize, groups: usize) -> FlexTensor {
        let (x, weight) = (kernels::contiguous(x), kernels::contiguous(weight));
        let g = geometry(dims4(&x), dims4(&weight), padding, groups);
        let (xv, wv) = (kernels::values(&x), kernels::values(&weight));
        let out =
            if groups == 1 { kernels::conv2d_gemm(xv, wv, &g) } else { kernels::depthwise_conv2d(xv, wv, None, &g) };
        kernels::flex_from_host(out, g.output())
    }

    fn mmif_layer_norm(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        let (x, weight, bias) = (kernels::contiguous(x), kernels::contiguous(weight), kernels::contiguous(bias));
        let shape = dims4(&x);
        let out =
            kernels::layer_norm(kernels::values(&x), shape, kernels::values(&weight), Some(kernels::values(&bias)));
        kernels::flex_from_host(out, shape)
    }

    fn mmif_gelu_gate(x: FlexTensor) -> FlexTensor {
        let x = kernels::contiguous(x);
        let [b, c2, h, w] = dims4(&x);
        kernels::flex_from_host(kernels::gelu_gate(kernels::values(&x), [b, c2, h, w]), [b, c2 / 2, h, w])
    }

    fn mmif_batch_norm_relu(
        x: FlexTensor,
        _bias: FlexTensor,
        weight: FlexTensor,
        shift: FlexTensor,
        stats: FlexTensor,
    ) -> FlexTensor {
        let [x, weight, shift, stats] = [x, weight, shift, stats].map(kernels::contiguous);
        let shape = dims4(&x);
        let (mean, invstd) = kernels::values(&stats).split_at(shape[1]);
        let (w, s) = (kernels::values(&weight), kernels::values(&shift));
        kernels::flex_from_host(kernels::batch_norm_relu(kernels::values(&x), shape, mean, invstd, w, s), shape)
    }
}

/// The backward step of [`TrainOps::mmif_conv2d`]: the checkpointed input and weight, padding
/// and groups.
#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    type State = (NodeId, NodeId, usize, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let grad = kernels::contiguous(grads.consume::<Flex>(&ops.node));
        let (x_state, w_state, padding, groups) = ops.state;
        let x = kernels::contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
        let w = kernels::contiguous(checkpointer.retrieve_node_output::<FlexTensor>(w_state));
        let g = geometry(dims4(&x), dims4(&w), padding, groups);
        let dy = kernels::values(&grad);
        if let Some(node) = node_x {
            let dx = kernels::conv2d_input_grad(dy, kernels::values(&w), &g);
            grads.register::<Flex>(node.id, kernels::flex_from_host(dx, g.input));
        }
        if let Some(node) = node_w {
            let dw = if groups == 1 {
                kernels::conv2d_weight_grad(kernels::values(&x), dy, &g)
            } else {
                kernels::depthwise_weight_grad(kernels::values(&x), dy, &g)
            };
            grads.register::<Flex>(node.id, kernels::flex_from_host(dw, g.weight));
        }
    }
}

impl<C: CheckpointStrategy> TrainOps for Autodiff<Flex, C> {
    fn mmif_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        padding: usize,
        groups: usize,
    ) -> FloatTensor<Self> {
        match ConvBackward.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let w_state = prep.checkpoint(&weight);
                let out = Flex::mmif_conv2d(x.into_primitive(), weight.into_primitive(), padding, groups);
                prep.finish((x_state, w_state, padding, groups), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::mmif_conv2d(x.into_primitive(), weight.into_primitive(), padding, groups))
            }
        }
    }

    fn mmif_layer_norm(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        match LayerNormBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let w_state = prep.checkpoint(&weight);
                let out = Flex::mmif_layer_norm(x.into_primitive(), weight.into_primitive(), bias.into_primitive());
                prep.finish((x_state, w_state), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::mmif_layer_norm(x.into_primitive(), weight.into_primitive(), bias.into_primitive()))
            }
        }
    }

    fn mmif_gelu_gate(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match GeluGateBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                prep.finish(x_state, Flex::mmif_gelu_gate(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::mmif_gelu_gate(x.into_primitive())),
        }
    }

    fn mmif_batch_norm_relu(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        stats: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let stats = kernels::contiguous(stats.into_primitive());
        let parents = [x.node(), bias.node(), weight.node(), shift.node()];
        match BatchNormReluBackward.prepare::<C>(parents).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), prep.checkpoint(&shift));
                let kept = kernels::values(&stats).to_vec();
                let out = Flex::mmif_batch_norm_relu(
                    x.into_primitive(),
                    bias.into_primitive(),
                    weight.into_primitive(),
                    shift.into_primitive(),
                    stats,
                );
                prep.finish((state, kept), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::mmif_batch_norm_relu(
                x.into_primitive(),
                bias.into_primitive(),
                weight.into_primitive(),
                shift.into_primitive(),
                stats,
            )),
        }
    }
}

/// The backward step of [`TrainOps::mmif_batch_norm_relu`]: the checkpointed input, weight and
/// shift, and the batch statistics (`[mean; C]` then `[1/σ; C]`). The normalised values and the
/// ReLU's mask are recomputed from the input.
#[derive(Debug)]
struct BatchNormReluBackward;

impl Backward<Flex, 4> for BatchNormReluBackward {
    type State = ((NodeId, NodeId, NodeId), Vec<f32>);

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_bias, node_w, node_s] = ops.parents;
        let grad = kernels::contiguous(grads.consume::<Flex>(&ops.node));
        let ((x_state, w_state, s_state), stats) = ops.state;
        let mut get = |id| kernels::contiguous(checkpointer.retrieve_node_output::<FlexTensor>(id));
        let (x, w, s) = (get(x_state), get(w_state), get(s_state));
        let shape = dims4(&x);
        let (mean, invstd) = stats.split_at(shape[1]);
        let (dx, dw, ds, dbias) = kernels::batch_norm_relu_backward(
            kernels::values(&x),
            shape,
            kernels::values(&grad),
            mean,
            invstd,
            kernels::values(&w),
            kernels::values(&s),
        );
        let c = [shape[1]];
        for (node, g) in [(node_bias, dbias), (node_w, dw), (node_s, ds)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, kernels::flex_from_host(g, c));
            }
        }
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, kernels::flex_from_host(dx, shape));
        }
    }
}

/// The backward step of [`TrainOps::mmif_layer_norm`]: the checkpointed input and weight (the
/// statistics are recomputed from the input, one pass over it).
#[derive(Debug)]
struct LayerNormBackward;

impl Backward<Flex, 3> for LayerNormBackward {
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = kernels::contiguous(grads.consume::<Flex>(&ops.node));
        let (x_state, w_state) = ops.state;
        let x = kernels::contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
        let w = kernels::contiguous(checkpointer.retrieve_node_output::<FlexTensor>(w_state));
        let shape = dims4(&x);
        let (dx, dw, db) =
            kernels::layer_norm_backward(kernels::values(&x), shape, kernels::values(&w), kernels::values(&grad));
        let c = [shape[1]];
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, kernels::flex_from_host(dx, shape));
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, kernels::flex_from_host(dw, c));
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, kernels::flex_from_host(db, c));
        }
    }
}

/// The backward step of [`TrainOps::mmif_gelu_gate`]: the checkpointed input.
#[derive(Debug)]
struct GeluGateBackward;

impl Backward<Flex, 1> for GeluGateBackward {
    type State = NodeId;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = kernels::contiguous(grads.consume::<Flex>(&ops.node));
        let x = kernels::contiguous(checkpointer.retrieve_node_output::<FlexTensor>(ops.state));
        if let Some(node) = node_x {
            let shape = dims4(&x);
            let dx = kernels::gelu_gate_backward(kernels::values(&x), shape, kernels::values(&grad));
            grads.register::<Flex>(node.id, kernels::flex_from_host(dx, shape));
        }
    }
}

/// `t` without autodiff (its value; no graph is recorded through it).
fn plain<const D: usize>(t: &Tensor<D>) -> Tensor<D> {
    if t.is_autodiff() { t.clone().inner() } else { t.clone() }
}

/// Whether `device` is `flex`, with or without autodiff.
fn on_flex(device: &burn::tensor::Device) -> bool {
    match device.as_dispatch() {
        DispatchDevice::Flex(_) => true,
        DispatchDevice::Autodiff(inner) => matches!(inner.clone().inner(), DispatchDevice::Flex(_)),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// `conv2d(x, weight)` (no bias, stride 1, zero padding `padding`, `groups` groups) through
/// [`TrainOps`] when `x` is an f32 tensor on `flex` (with or without autodiff) and the conv is
/// dense or depthwise with a square kernel and `padding < K`; `None` otherwise (the caller uses
/// burn's `conv2d`).
pub fn conv2d(x: &Tensor<4>, weight: &Tensor<4>, padding: usize, groups: usize) -> Option<Tensor<4>> {
    let [_, cin, _, _] = x.dims();
    let [cout, cpg, kh, kw] = weight.dims();
    let dense = groups == 1 && cpg == cin;
    let depthwise = groups == cin && cpg == 1 && cout == cin;
    if !(dense || depthwise) || kh != kw || padding >= kh || x.dtype() != DType::F32 || weight.dtype() != DType::F32 {
        return None;
    }
    if !geometry(x.dims(), weight.dims(), padding, groups).supported() || !on_flex(&x.device()) {
        return None;
    }
    let out =
        <Dispatch as TrainOps>::mmif_conv2d(x.clone().into_dispatch(), weight.clone().into_dispatch(), padding, groups);
    Some(Tensor::from_dispatch(out))
}

/// Restormer's `WithBias` layer norm over channels (`x` `[B, C, H, W]`, `weight` and `bias` `[C]`)
/// through [`TrainOps`] when the tensors are f32 on `flex` (with or without autodiff) and `C ≥ 1`;
/// `None` otherwise (the caller composes it from burn ops).
pub fn layer_norm(x: &Tensor<4>, weight: &Tensor<1>, bias: &Tensor<1>) -> Option<Tensor<4>> {
    let c = x.dims()[1];
    if c == 0 || weight.dims() != [c] || bias.dims() != [c] || !on_flex(&x.device()) {
        return None;
    }
    if [x.dtype(), weight.dtype(), bias.dtype()].iter().any(|d| *d != DType::F32) {
        return None;
    }
    let out = <Dispatch as TrainOps>::mmif_layer_norm(
        x.clone().into_dispatch(),
        weight.clone().into_dispatch(),
        bias.clone().into_dispatch(),
    );
    Some(Tensor::from_dispatch(out))
}

/// What [`batch_norm_relu`] returns: the output and the batch statistics of `x + bias` (for the
/// running statistics).
pub struct BatchNormReluOut {
    pub output: Tensor<4>,
    /// Per-channel batch mean of `x + bias`.
    pub mean: Vec<f64>,
    /// Per-channel biased batch variance.
    pub variance: Vec<f64>,
}

/// Train-mode `relu(batch_norm(x + bias))` (`x` `[B, C, H, W]`, `bias` (optional), `weight`,
/// `shift` `[C]`, epsilon `eps`, statistics over `B·H·W`) through [`TrainOps`] when the tensors
/// are f32 on `flex` (with or without autodiff); `None` otherwise (the caller composes it from
/// burn ops). One pass for the mean, one for the variance, one for the output; the backward pass
/// keeps only `x` (PyTorch keeps the batch norm's input and the ReLU's output, as here where the
/// next layer keeps the output).
pub fn batch_norm_relu(
    x: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    weight: &Tensor<1>,
    shift: &Tensor<1>,
    eps: f64,
) -> Option<BatchNormReluOut> {
    let [_, c, _, _] = x.dims();
    let vectors = [Some(weight), Some(shift), bias];
    if c == 0 || vectors.iter().flatten().any(|t| t.dims() != [c] || t.dtype() != DType::F32) {
        return None;
    }
    if x.dtype() != DType::F32 || !on_flex(&x.device()) {
        return None;
    }
    let (mean, variance) = {
        let host = kernels::host(&plain(x))?;
        kernels::channel_stats(kernels::values(&host), x.dims())
    };
    let device = x.device();
    let mut stats: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    stats.extend(variance.iter().map(|&v| (1.0 / (v + eps).sqrt()) as f32));
    let stats = Tensor::<2>::from_data(burn::tensor::TensorData::new(stats, [2, c]), &device);
    let (bias, mean) = match bias {
        Some(b) => {
            let host = kernels::host(&plain(b))?;
            let shifted = mean.iter().zip(kernels::values(&host)).map(|(&m, &b)| m + f64::from(b)).collect();
            (b.clone(), shifted)
        }
        None => (Tensor::zeros([c], &device), mean),
    };
    let output = <Dispatch as TrainOps>::mmif_batch_norm_relu(
        x.clone().into_dispatch(),
        bias.into_dispatch(),
        weight.clone().into_dispatch(),
        shift.clone().into_dispatch(),
        stats.into_dispatch(),
    );
    Some(BatchNormReluOut { output: Tensor::from_dispatch(output), mean, variance })
}

/// `GELU(x₁)·x₂` for the two channel halves of `x` (`[B, 2C, H, W]`) through [`TrainOps`]
/// when `x` is an f32 tensor on `flex` (with or without autodiff) with an even channel count;
/// `None` otherwise (the caller composes it from burn ops).
pub fn gelu_gate(x: &Tensor<4>) -> Option<Tensor<4>> {
    if !x.dims()[1].is_multiple_of(2) || x.dtype() != DType::F32 || !on_flex(&x.device()) {
        return None;
    }
    Some(Tensor::from_dispatch(<Dispatch as TrainOps>::mmif_gelu_gate(x.clone().into_dispatch())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::module::conv2d as burn_conv2d;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{Device, TensorData};

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = mmif_testkit::Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        (0..n).map(|_| rng.f32() * 2.0 - 1.0).collect()
    }

    fn t4(v: Vec<f32>, s: [usize; 4], device: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(v, s), device)
    }

    fn vals(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().expect("f32")
    }

    /// Output, input gradient and weight gradient of `loss = Σ conv(x, w) · r` with the
    /// extension (`ours = true`) or burn's `conv2d`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        x: &[f32],
        w: &[f32],
        r: &[f32],
        xs: [usize; 4],
        ws: [usize; 4],
        p: usize,
        groups: usize,
        ours: bool,
    ) -> [Vec<f32>; 3] {
        let device = Device::flex().autodiff();
        let xt = t4(x.to_vec(), xs, &device).require_grad();
        let wt = t4(w.to_vec(), ws, &device).require_grad();
        let y = if ours {
            conv2d(&xt, &wt, p, groups).expect("geometry taken by the extension")
        } else {
            burn_conv2d(xt.clone(), wt.clone(), None, ConvOptions::new([1, 1], [p, p], [1, 1], groups))
        };
        let rt = t4(r.to_vec(), y.dims(), &device);
        let grads = (y.clone() * rt).sum().backward();
        let gx = xt.grad(&grads).expect("input gradient");
        let gw = wt.grad(&grads).expect("weight gradient");
        [vals(y), vals(gx), vals(gw)]
    }

    fn max_rel(a: &[f32], b: &[f32]) -> f64 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0f64, |m, v| m.max(f64::from(v.abs()))).max(1e-12);
        a.iter().zip(b).fold(0f64, |m, (x, y)| m.max(f64::from((x - y).abs()))) / scale
    }

    /// Asserts `max_rel(ours[k], theirs[k]) ≤ tol` for every named pair (`""` skips one).
    fn assert_all_close(names: &[&str], ours: &[Vec<f32>], theirs: &[Vec<f32>], tol: f64, case: &str) {
        for ((what, a), e) in names.iter().zip(ours).zip(theirs) {
            if what.is_empty() {
                continue;
            }
            let err = max_rel(a, e);
            assert!(err <= tol, "{case}: {what} differs by {err:e} relative");
        }
    }

    /// Asserts that each of `grads` matches the central differences (step `eps`, taken on the
    /// f32-rounded points) of `loss` with respect to the input of the same index, within
    /// `tol·(1 + |difference|)`, at every `strides[k]`-th element of input `k`. `loss(k, v)` is
    /// the loss in f64 with input `k` replaced by `v`.
    fn assert_central_differences(
        what: &[(&str, &[f32], &[f32], usize)],
        loss: impl Fn(usize, &[f32]) -> f64,
        eps: f32,
        tol: f64,
    ) {
        for (k, &(name, base, grad, stride)) in what.iter().enumerate() {
            for idx in (0..base.len()).step_by(stride) {
                let (mut plus, mut minus) = (base.to_vec(), base.to_vec());
                plus[idx] += eps;
                minus[idx] -= eps;
                let num = (loss(k, &plus) - loss(k, &minus)) / (f64::from(plus[idx]) - f64::from(minus[idx]));
                let got = f64::from(grad[idx]);
                assert!((got - num).abs() <= tol * (1.0 + num.abs()), "d/d{name} [{idx}]: {got} vs {num}");
            }
        }
    }

    /// Dense and depthwise convs of several sizes, paddings and kernels, against burn's
    /// `conv2d` and its derivative (output, input gradient, weight gradient); the dense weight
    /// gradient by both of its paths (im2row for 8–256 output and ≥ 8 input channels, im2col
    /// otherwise).
    #[test]
    fn conv_gradients_equal_burns() {
        // (batch, cin, cout, h, w, k, padding, depthwise)
        let cases = [
            (2, 3, 5, 7, 9, 3, 1, false),
            (1, 4, 6, 5, 4, 3, 0, false),
            (2, 8, 8, 6, 7, 1, 0, false),
            (1, 2, 3, 4, 5, 5, 2, false),
            (2, 96, 96, 9, 10, 3, 1, false),
            (2, 16, 12, 7, 9, 5, 2, false),
            (1, 10, 9, 6, 5, 3, 0, false),
            (2, 6, 6, 7, 5, 3, 1, true),
            (1, 5, 5, 6, 6, 3, 0, true),
            (2, 4, 4, 9, 8, 5, 2, true),
            (1, 3, 3, 1, 1, 3, 1, true),
            (1, 2, 2, 1, 1, 3, 1, false),
        ];
        for (i, &(b, cin, cout, h, w, k, p, dw)) in cases.iter().enumerate() {
            let groups = if dw { cin } else { 1 };
            let xs = [b, cin, h, w];
            let ws = [cout, cin / groups, k, k];
            let x = noise(xs.iter().product(), 10 + i as u64);
            let wv = noise(ws.iter().product(), 20 + i as u64);
            let [oh, ow] = [h + 2 * p + 1 - k, w + 2 * p + 1 - k];
            let r = noise(b * cout * oh * ow, 30 + i as u64);
            let ours = run(&x, &wv, &r, xs, ws, p, groups, true);
            let burn = run(&x, &wv, &r, xs, ws, p, groups, false);
            let names = ["output", "input gradient", "weight gradient"];
            assert_all_close(&names, &ours, &burn, 2e-6, &format!("case {i} {:?}", cases[i]));
        }
    }

    /// The extension's gradients against central differences of the loss in f64.
    #[test]
    fn conv_gradients_match_finite_differences() {
        for (b, cin, cout, h, w, k, p, groups) in
            [(1, 3, 4, 5, 6, 3, 1, 1), (2, 4, 4, 5, 5, 3, 1, 4), (1, 2, 3, 4, 4, 1, 0, 1)]
        {
            let xs = [b, cin, h, w];
            let ws = [cout, cin / groups, k, k];
            let x = noise(xs.iter().product(), 1);
            let wv = noise(ws.iter().product(), 2);
            let [oh, ow] = [h + 2 * p + 1 - k, w + 2 * p + 1 - k];
            let r = noise(b * cout * oh * ow, 3);
            let [_, gx, gw] = run(&x, &wv, &r, xs, ws, p, groups, true);
            // loss(x, w) in f64, directly from the definition
            let loss = |x: &[f32], wv: &[f32]| -> f64 {
                let mut s = 0f64;
                let cpg_out = cout / groups;
                for n in 0..b {
                    for o in 0..cout {
                        let gi = o / cpg_out;
                        for y in 0..oh {
                            for xo in 0..ow {
                                let mut acc = 0f64;
                                for ci in 0..cin / groups {
                                    let c = gi * (cin / groups) + ci;
                                    for a in 0..k {
                                        for bb in 0..k {
                                            let (iy, ix) =
                                                ((y + a) as isize - p as isize, (xo + bb) as isize - p as isize);
                                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                                continue;
                                            }
                                            let xv = x[((n * cin + c) * h + iy as usize) * w + ix as usize];
                                            acc += f64::from(xv)
                                                * f64::from(wv[((o * (cin / groups) + ci) * k + a) * k + bb]);
                                        }
                                    }
                                }
                                s += acc * f64::from(r[((n * cout + o) * oh + y) * ow + xo]);
                            }
                        }
                    }
                }
                s
            };
            assert_central_differences(
                &[("x", &x, &gx, 7), ("w", &wv, &gw, 7)],
                |k, v| if k == 0 { loss(v, &wv) } else { loss(&x, v) },
                1e-2,
                1e-4,
            );
        }
    }

    /// Output and gradients (x, weight, bias) of `loss = Σ LayerNorm(x) · r` through the layer's
    /// `forward` (the extension under autodiff, `ours = true`) or its burn composition
    /// (`LayerNorm::forward_composed`).
    fn run_ln(x: &[f32], wv: &[f32], bv: &[f32], r: &[f32], xs: [usize; 4], ours: bool) -> [Vec<f32>; 4] {
        use crate::layers::{LayerNorm, LayerNormBody};
        use burn::module::Param;
        let device = Device::flex().autodiff();
        let c = xs[1];
        let xt = t4(x.to_vec(), xs, &device).require_grad();
        let t1 = |v: &[f32]| Param::from_tensor(Tensor::<1>::from_data(TensorData::new(v.to_vec(), [c]), &device));
        let ln = LayerNorm { body: LayerNormBody { weight: t1(wv), bias: Some(t1(bv)) } };
        let y = if ours { ln.forward(xt.clone()) } else { ln.forward_composed(xt.clone()) };
        let grads = (y.clone() * t4(r.to_vec(), xs, &device)).sum().backward();
        let g1 =
            |t: Tensor<1>| t.grad(&grads).expect("parameter gradient").into_data().try_to_vec::<f32>().expect("f32");
        let gx = vals(xt.grad(&grads).expect("input gradient"));
        let bias = ln.body.bias.as_ref().expect("WithBias");
        [vals(y), gx, g1(ln.body.weight.val()), g1(bias.val())]
    }

    /// The layer norm's output and gradients against burn's composition, for channel counts
    /// below, at and above a vector's width and pixel counts across the piece size (256).
    #[test]
    fn layer_norm_gradients_equal_burns() {
        for (i, xs) in
            [[2, 3, 5, 7], [1, 64, 17, 19], [2, 8, 1, 1], [3, 48, 16, 33], [1, 1, 4, 4]].into_iter().enumerate()
        {
            let n: usize = xs.iter().product();
            let (x, r) = (noise(n, 40 + i as u64), noise(n, 50 + i as u64));
            let (wv, bv) = (noise(xs[1], 60 + i as u64), noise(xs[1], 70 + i as u64));
            let ours = run_ln(&x, &wv, &bv, &r, xs, true);
            let burn = run_ln(&x, &wv, &bv, &r, xs, false);
            let names = ["output", "input gradient", "weight gradient", "bias gradient"];
            assert_all_close(&names, &ours, &burn, 2e-5, &format!("shape {xs:?}"));
        }
    }

    /// The layer norm's gradients against central differences of the loss in f64.
    #[test]
    fn layer_norm_gradients_match_finite_differences() {
        let xs = [2, 5, 3, 4];
        let [b, c, h, w] = xs;
        let n: usize = xs.iter().product();
        let (x, r) = (noise(n, 81), noise(n, 82));
        let (wv, bv) = (noise(c, 83), noise(c, 84));
        let [_, gx, gw, gb] = run_ln(&x, &wv, &bv, &r, xs, true);
        let loss = |x: &[f32], wv: &[f32], bv: &[f32]| -> f64 {
            let mut s = 0f64;
            for bi in 0..b {
                for p in 0..h * w {
                    let at = |ch: usize| (bi * c + ch) * h * w + p;
                    let mu = (0..c).map(|ch| f64::from(x[at(ch)])).sum::<f64>() / c as f64;
                    let var = (0..c).map(|ch| (f64::from(x[at(ch)]) - mu).powi(2)).sum::<f64>() / c as f64;
                    for ch in 0..c {
                        let y =
                            (f64::from(x[at(ch)]) - mu) / (var + 1e-5).sqrt() * f64::from(wv[ch]) + f64::from(bv[ch]);
                        s += y * f64::from(r[at(ch)]);
                    }
                }
            }
            s
        };
        assert_central_differences(
            &[("x", &x, &gx, 5), ("w", &wv, &gw, 1), ("b", &bv, &gb, 1)],
            |k, v| match k {
                0 => loss(v, &wv, &bv),
                1 => loss(&x, v, &bv),
                _ => loss(&x, &wv, v),
            },
            1e-3,
            1e-3,
        );
    }

    /// Output and input gradient of `loss = Σ gelu_gate(x) · r`, by the extension (`ours`) or
    /// by `layers::gelu_gate_composed` (burn's `gelu` times the other half).
    fn run_gate(x: &[f32], r: &[f32], xs: [usize; 4], ours: bool) -> [Vec<f32>; 2] {
        let device = Device::flex().autodiff();
        let xt = t4(x.to_vec(), xs, &device).require_grad();
        let y = if ours { gelu_gate(&xt).expect("f32 on flex") } else { crate::layers::gelu_gate_composed(xt.clone()) };
        let grads = (y.clone() * t4(r.to_vec(), y.dims(), &device)).sum().backward();
        [vals(y), vals(xt.grad(&grads).expect("input gradient"))]
    }

    /// The gate's output and gradient against burn's composition, across the piece size (4096
    /// pixels) and with inputs out to ±6 (beyond the erf approximation's clamp at ±4·√2).
    #[test]
    fn gelu_gate_gradients_equal_burns() {
        for (i, xs) in [[2, 6, 5, 7], [1, 4, 70, 61], [1, 2, 1, 1]].into_iter().enumerate() {
            let n: usize = xs.iter().product();
            let x: Vec<f32> = noise(n, 90 + i as u64).iter().map(|v| v * 6.0).collect();
            let r = noise(n / 2, 95 + i as u64);
            let ours = run_gate(&x, &r, xs, true);
            let burn = run_gate(&x, &r, xs, false);
            assert_all_close(&["output", "input gradient"], &ours, &burn, 2e-6, &format!("shape {xs:?}"));
        }
        let device = Device::flex().autodiff();
        assert!(gelu_gate(&t4(vec![0.0; 3], [1, 3, 1, 1], &device)).is_none(), "odd channel count");
    }

    /// The gate's gradient against central differences of the loss in f64.
    #[test]
    fn gelu_gate_gradient_matches_finite_differences() {
        let xs = [2, 4, 3, 5];
        let n: usize = xs.iter().product();
        let x: Vec<f32> = noise(n, 101).iter().map(|v| v * 3.0).collect();
        let r = noise(n / 2, 102);
        let [_, gx] = run_gate(&x, &r, xs, true);
        let (c, hw) = (xs[1] / 2, xs[2] * xs[3]);
        let loss = |x: &[f32]| -> f64 {
            let erf = |v: f64| {
                // erf by its Taylor series in f64 (|v| < 2.2 here)
                let (mut term, mut sum, mut k) = (v, v, 0.0f64);
                while term.abs() > 1e-17 {
                    k += 1.0;
                    term *= -v * v / k;
                    sum += term / (2.0 * k + 1.0);
                }
                sum * 2.0 / std::f64::consts::PI.sqrt()
            };
            let mut s = 0f64;
            for bi in 0..xs[0] {
                for ci in 0..c {
                    for p in 0..hw {
                        let a = f64::from(x[(bi * 2 * c + ci) * hw + p]);
                        let g = f64::from(x[(bi * 2 * c + c + ci) * hw + p]);
                        s += 0.5 * a * (1.0 + erf(a / 2f64.sqrt())) * g * f64::from(r[(bi * c + ci) * hw + p]);
                    }
                }
            }
            s
        };
        assert_central_differences(&[("x", &x, &gx, 1)], |_, v| loss(v), 1e-3, 1e-4);
    }

    /// Output, gradients (x, conv bias, weight, shift) and batch statistics of `loss = Σ
    /// relu(BatchNorm_train(x + bias)) · r` through the fused op (`ours`) or burn's
    /// `batch_norm_train` and `relu` (`BatchNorm2d::forward_train` on `x + bias`).
    fn run_bn(x: &[f32], p: [&[f32]; 3], r: &[f32], xs: [usize; 4], ours: bool) -> ([Vec<f32>; 5], [Vec<f32>; 2]) {
        use crate::layers::BatchNorm2d;
        use burn::module::Param;
        let device = Device::flex().autodiff();
        let c = xs[1];
        let xt = t4(x.to_vec(), xs, &device).require_grad();
        let t1 = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [c]), &device);
        let bias = t1(p[0]).require_grad();
        let mut bn = BatchNorm2d::new(&device, c);
        bn.weight = Param::from_tensor(t1(p[1]));
        bn.bias = Param::from_tensor(t1(p[2]));
        let y = if ours {
            let fused = batch_norm_relu(&xt, Some(&bias), &bn.weight.val(), &bn.bias.val(), bn.eps);
            assert!(fused.is_some(), "the fused op takes f32 on flex");
            bn.forward_train_relu(xt.clone(), Some(bias.clone()))
        } else {
            burn::tensor::activation::relu(bn.forward_train(xt.clone() + bias.clone().reshape([1, c, 1, 1])))
        };
        let grads = (y.clone() * t4(r.to_vec(), xs, &device)).sum().backward();
        let g1 = |t: Tensor<1>| t.grad(&grads).expect("gradient").into_data().try_to_vec::<f32>().expect("f32");
        let gx = vals(xt.grad(&grads).expect("input gradient"));
        let running = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().expect("f32");
        (
            [vals(y), gx, g1(bias), g1(bn.weight.val()), g1(bn.bias.val())],
            [running(bn.running_mean.value()), running(bn.running_var.value())],
        )
    }

    /// The fused train-mode BatchNorm + ReLU against burn's ops: output, the gradients of the
    /// input, the weight and the shift, the running statistics; the conv bias's gradient (zero
    /// but for rounding on both sides) within rounding of the input gradient's scale. Shapes with
    /// one pixel per plane, odd plane sizes across the lane and chunk widths, many channels.
    #[test]
    fn batch_norm_relu_equals_burns() {
        for (i, xs) in
            [[2, 3, 5, 7], [4, 16, 1, 1], [3, 5, 23, 29], [1, 40, 8, 8], [2, 2, 40, 33]].into_iter().enumerate()
        {
            let n: usize = xs.iter().product();
            let c = xs[1];
            // an offset mean per channel, as conv outputs have
            let x: Vec<f32> = noise(n, 110 + i as u64)
                .iter()
                .enumerate()
                .map(|(k, v)| v * 2.0 + ((k / (xs[2] * xs[3])) % c) as f32 * 0.3)
                .collect();
            let r = noise(n, 120 + i as u64);
            let (bias, w, sh) = (noise(c, 130 + i as u64), noise(c, 140 + i as u64), noise(c, 150 + i as u64));
            let (ours, ours_run) = run_bn(&x, [&bias, &w, &sh], &r, xs, true);
            let (burn, burn_run) = run_bn(&x, [&bias, &w, &sh], &r, xs, false);
            let names = ["output", "input gradient", "", "weight gradient", "shift gradient"];
            assert_all_close(&names, &ours, &burn, 2e-5, &format!("shape {xs:?}"));
            let scale = burn[1].iter().fold(0f32, |m, v| m.max(v.abs())) * n as f32;
            for (a, b) in ours[2].iter().zip(&burn[2]) {
                assert!(a.abs() <= 1e-5 * scale && b.abs() <= 1e-5 * scale, "shape {xs:?}: bias gradients {a} {b}");
            }
            assert_all_close(&["running mean", "running var"], &ours_run, &burn_run, 1e-6, &format!("shape {xs:?}"));
        }
    }

    /// The fused BatchNorm + ReLU's gradients against central differences of the loss in f64.
    #[test]
    fn batch_norm_relu_gradients_match_finite_differences() {
        let xs = [3, 4, 3, 5];
        let [b, c, h, w] = xs;
        let n: usize = xs.iter().product();
        let x = noise(n, 161);
        let r = noise(n, 162);
        let (bias, wv, sv) = (noise(c, 163), noise(c, 164), noise(c, 165));
        let ([_, gx, gbias, gw, gs], _) = run_bn(&x, [&bias, &wv, &sv], &r, xs, true);
        let loss = |x: &[f32], bias: &[f32], wv: &[f32], sv: &[f32]| -> f64 {
            let mut total = 0f64;
            for ch in 0..c {
                let at = |bi: usize, p: usize| (bi * c + ch) * h * w + p;
                let vals: Vec<(usize, f64)> = (0..b)
                    .flat_map(|bi| (0..h * w).map(move |p| at(bi, p)))
                    .map(|k| (k, f64::from(x[k]) + f64::from(bias[ch])))
                    .collect();
                let cnt = vals.len() as f64;
                let mu = vals.iter().map(|v| v.1).sum::<f64>() / cnt;
                let var = vals.iter().map(|v| (v.1 - mu).powi(2)).sum::<f64>() / cnt;
                for (k, v) in vals {
                    let y = ((v - mu) / (var + 1e-5).sqrt() * f64::from(wv[ch]) + f64::from(sv[ch])).max(0.0);
                    total += y * f64::from(r[k]);
                }
            }
            total
        };
        assert_central_differences(
            &[("x", &x, &gx, 1), ("w", &wv, &gw, 1), ("shift", &sv, &gs, 1)],
            |k, v| match k {
                0 => loss(v, &bias, &wv, &sv),
                1 => loss(&x, &bias, v, &sv),
                _ => loss(&x, &bias, &wv, v),
            },
            1e-3,
            2e-3,
        );
        // the bias cancels: its gradient is zero but for rounding
        assert!(gbias.iter().all(|g| g.abs() < 1e-5), "{gbias:?}");
    }

    /// Off `flex` or for geometries it does not take, the wrapper declines.
    #[test]
    fn declines_what_it_does_not_take() {
        let device = Device::flex();
        let x = t4(noise(2 * 4 * 5 * 5, 1), [2, 4, 5, 5], &device);
        let grouped = t4(noise(4 * 2 * 9, 2), [4, 2, 3, 3], &device);
        assert!(conv2d(&x, &grouped, 1, 2).is_none(), "two channels per group");
        let dense = t4(noise(3 * 4 * 9, 3), [3, 4, 3, 3], &device);
        assert!(conv2d(&x, &dense, 3, 1).is_none(), "padding ≥ kernel");
        assert!(conv2d(&x, &dense, 1, 1).is_some());
    }
}
