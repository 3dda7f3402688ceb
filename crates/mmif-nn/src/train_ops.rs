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
//! devices (GPU backends never reach the extension).
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

    /// Dense and depthwise convs of several sizes, paddings and kernels, against burn's
    /// `conv2d` and its derivative (output, input gradient, weight gradient).
    #[test]
    fn conv_gradients_equal_burns() {
        // (batch, cin, cout, h, w, k, padding, depthwise)
        let cases = [
            (2, 3, 5, 7, 9, 3, 1, false),
            (1, 4, 6, 5, 4, 3, 0, false),
            (2, 8, 8, 6, 7, 1, 0, false),
            (1, 2, 3, 4, 5, 5, 2, false),
            (2, 96, 96, 9, 10, 3, 1, false),
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
            for (what, (a, e)) in ["output", "input gradient", "weight gradient"].iter().zip(ours.iter().zip(&burn)) {
                let err = max_rel(a, e);
                let tol = 2e-6;
                assert!(err <= tol, "case {i} {cases:?}: {what} differs by {err:e} relative", cases = cases[i]);
            }
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
            let eps = 1e-2f32;
            for (which, base, grad) in [(0, &x, &gx), (1, &wv, &gw)] {
                for idx in (0..base.len()).step_by(7) {
                    let (mut plus, mut minus) = (base.clone(), base.clone());
                    plus[idx] += eps;
                    minus[idx] -= eps;
                    let step = f64::from(plus[idx]) - f64::from(minus[idx]);
                    let num = if which == 0 {
                        (loss(&plus, &wv) - loss(&minus, &wv)) / step
                    } else {
                        (loss(&x, &plus) - loss(&x, &minus)) / step
                    };
                    let got = f64::from(grad[idx]);
                    assert!(
                        (got - num).abs() <= 1e-4 * (1.0 + num.abs()),
                        "d/d{} [{idx}]: {got} vs {num}",
                        ["x", "w"][which]
                    );
                }
            }
        }
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
