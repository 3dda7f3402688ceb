//! Every layer's kernel path against its burn composition.

use super::*;
use crate::test_util::{max_abs, max_diff};
use burn::module::Param;
use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Distribution, Tensor};

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
            let want =
                crate::weights::tensor_to_vec(full.clone().narrow(2, r0 + 1 - pad[0], r1 - r0 - 2 + pad[0] + pad[1]));
            for ad in [false, true] {
                let band = x.clone().narrow(2, r0, r1 - r0);
                let band = if ad { band.autodiff() } else { band };
                let got = crate::weights::tensor_to_vec(conv.forward_fused(vec![band], Some(pad), Epilogue::default()));
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
    let got = conv.forward_fused(vec![x.clone()], None, Epilogue::residual(r.clone()));
    let want = conv.forward_fused(vec![x.autodiff()], None, Epilogue::residual(r.autodiff())).inner();
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
    let act = Epilogue::act(Activation::PRelu(&prelu));
    let got = conv.forward_fused(vec![a.clone(), b.clone()], None, act.clone());
    let want = conv.forward_fused(vec![a.clone().autodiff(), b.clone().autodiff()], None, act).inner();
    assert!(max_diff(got, want) < 1e-5);
    // The PReLU kernel alone.
    let got = prelu.forward(a.clone());
    let want = prelu.forward(a.autodiff()).inner();
    assert!(max_diff(got, want) < 1e-7);
}

#[test]
fn fused_gated_ffn_equals_composition() {
    let dev = crate::cpu();
    // Wide expansions (2·128 channels, depthwise and two channels per group) on wider rows.
    for (pad, groups, w) in [(Pad::Zeros, 256, 300), (Pad::Reflect, 256, 97), (Pad::Reflect, 128, 95)] {
        let ffn = GatedFfn::new(&dev, 8, 128, 8, groups, true, pad);
        assert!(ffn.fuses());
        let x = Tensor::<4>::random([2, 8, 5, w], Distribution::Normal(0.0, 1.0), &dev);
        let r = Tensor::<4>::random([2, 8, 5, w], Distribution::Normal(0.0, 1.0), &dev);
        let got = ffn.forward_add(x.clone(), r.clone());
        let want = ffn.forward_add(x.clone().autodiff(), r.clone().autodiff()).inner();
        let d = max_diff(got, want);
        assert!(d < 1e-5, "{pad:?} groups {groups} width {w}: {d}");
    }
    // (bias, padding, groups of the 3×3 conv over 24 channels: 24 depthwise as Restormer's
    // FeedForward, 12 as the CDDFuse/EMMA Mlp, 6 with four channels per group, images, rows, columns)
    for (bias, pad, groups, b, h, w) in [
        (false, Pad::Zeros, 24, 1, 9, 37),
        (true, Pad::Reflect, 24, 2, 5, 70),
        (true, Pad::Zeros, 24, 1, 3, 2),
        (false, Pad::Zeros, 12, 1, 9, 37),
        (false, Pad::Reflect, 12, 2, 6, 300),
        (true, Pad::Zeros, 6, 1, 4, 5),
    ] {
        let ffn = GatedFfn::new(&dev, 8, 12, 8, groups, bias, pad);
        assert!(ffn.fuses());
        let x = Tensor::<4>::random([b, 8, h, w], Distribution::Normal(0.0, 1.0), &dev);
        let r = Tensor::<4>::random([b, 8, h, w], Distribution::Normal(0.0, 1.0), &dev);
        let got = ffn.forward_add(x.clone(), r.clone());
        let want = ffn.forward_add(x.clone().autodiff(), r.clone().autodiff()).inner();
        let d = max_diff(got, want);
        assert!(d < 1e-5, "bias {bias} {pad:?} groups {groups} {b}×{h}×{w}: {d}");
        // x + ffn(norm(x)) with the layer norm read inside the kernel, both norm types.
        for with_bias in [true, false] {
            let mut norm = LayerNorm::new(&dev, 8, with_bias);
            norm.body.weight = Param::from_tensor(Tensor::random([8], Distribution::Normal(1.0, 0.5), &dev));
            norm.body.bias =
                with_bias.then(|| Param::from_tensor(Tensor::random([8], Distribution::Normal(0.0, 0.5), &dev)));
            let convs = (&ffn.project_in, &ffn.dwconv, Some(&ffn.project_out));
            let fused = expand_dw_project(convs, crate::kernels::Middle::Gate, &x, [1, 1], Some(&x), Some(&norm));
            assert!(fused.is_some(), "the one-kernel path applies");
            let got = ffn.forward_norm_add(&norm, x.clone());
            let normed = norm.forward(x.clone());
            let unfused = ffn.forward_add(normed.clone(), x.clone());
            let want = ffn.forward_add(normed.autodiff(), x.clone().autodiff()).inner();
            let d = max_diff(got.clone(), want);
            assert!(d < 1e-5, "norm (bias {with_bias}), groups {groups} {b}×{h}×{w}: {d}");
            // The kernel normalises exactly as the layer norm's own kernel does.
            assert_eq!(max_diff(got, unfused), 0.0, "norm inside the kernel, groups {groups}");
        }
        // A band with halo rows: rows 1..h-1 of the image, from rows 0..h with no padding.
        if h >= 4 {
            let r_band = r.clone().narrow(2, 1, h - 2);
            let got = ffn.forward_rows_add(x.clone(), [0, 0], r_band.clone());
            let want = ffn.forward_rows_add(x.clone().autodiff(), [0, 0], r_band.autodiff()).inner();
            assert!(max_diff(got, want) < 1e-5);
        }
    }
}

/// A copy of `conv` whose weight and bias are autodiff leaves (gradients tracked).
fn tracked(conv: &Conv2d) -> Conv2d {
    let leaf = |t: Tensor<4>| Param::from_tensor(t.autodiff().require_grad());
    Conv2d {
        weight: leaf(conv.weight.val()),
        bias: conv.bias.as_ref().map(|b| Param::from_tensor(b.val().autodiff().require_grad())),
        ..conv.clone()
    }
}

#[test]
fn a_pointwise_conv_then_a_conv_run_as_one_where_that_is_exact() {
    let dev = crate::cpu();
    // (inner bias, outer conv, merged): CDDFuse's qkv1 → qkv2; an inner bias under reflection
    // (exact); an inner bias under zero padding and a grouped outer conv (two convs).
    let cases = [
        (false, ConvCfg::same(3), true),
        (true, ConvCfg::same(3).bias(true).reflect(), true),
        (true, ConvCfg::same(3).bias(true), false),
        (false, ConvCfg::same(3).groups(4), false),
    ];
    for (inner_bias, cfg, merges) in cases {
        let inner = Conv2d::new(&dev, 4, 12, 1, ConvCfg::same(1).bias(inner_bias));
        let outer = Conv2d::new(&dev, 12, 12, 3, cfg);
        assert_eq!(super::conv::merged_weights(&inner, &outer).is_some(), merges, "{cfg:?}");
        let x = Tensor::<4>::random([2, 4, 9, 11], Distribution::Uniform(-1.0, 1.0), &dev);
        let r = Tensor::<4>::random([2, 12, 9, 11], Distribution::Uniform(-1.0, 1.0), &dev);
        let (got, f_got) = crate::flops::count(|| pointwise_then(&inner, &outer, x.clone(), None));
        let (want, f_want) = crate::flops::count(|| outer.forward(inner.forward(x.clone())));
        assert_eq!(f_got, f_want, "the two convs' FLOPs are counted");
        let (got, want) = (crate::weights::tensor_to_vec(got), crate::weights::tensor_to_vec(want));
        let d = max_abs(&got, &want);
        assert!(d < 1e-5, "{cfg:?}: forward {d}");
        // Gradients of Σ y·r reach the input and both layers' weights and biases as through the
        // two convs.
        let grads = |merged: bool| {
            let (inner, outer) = (tracked(&inner), tracked(&outer));
            let x = x.clone().autodiff().require_grad();
            let y = if merged {
                pointwise_then(&inner, &outer, x.clone(), None)
            } else {
                outer.forward(inner.forward(x.clone()))
            };
            let g = (y * r.clone().autodiff()).sum().backward();
            let mut out = vec![crate::weights::tensor_to_vec(x.grad(&g).expect("input gradient"))];
            for c in [&inner, &outer] {
                out.push(crate::weights::tensor_to_vec(c.weight.val().grad(&g).expect("weight gradient")));
                if let Some(b) = &c.bias {
                    out.push(crate::weights::tensor_to_vec(b.val().grad(&g).expect("bias gradient")));
                }
            }
            out
        };
        for (i, (a, b)) in grads(true).iter().zip(grads(false)).enumerate() {
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = max_abs(a, &b);
            assert!(d <= 2e-5 * scale.max(1.0), "{cfg:?}: gradient {i}: {d} (scale {scale})");
        }
    }
}

#[test]
fn mdta_with_its_layer_norm_in_one_kernel_equals_composition() {
    let dev = crate::cpu();
    // (qkv biases, heads, images, rows, columns, channels): CDDFuse's bias-free MDTA (64
    // channels, eight heads) and smaller ones.
    for (bias, heads, b, h, w, c) in
        [(false, 2, 1, 7, 33, 8), (true, 4, 2, 3, 2, 8), (false, 1, 1, 2, 130, 8), (false, 8, 1, 4, 300, 64)]
    {
        let mut attn = Mdta::new(&dev, c, heads, bias);
        let rand = |shape: [usize; 1], mean: f64| Tensor::random(shape, Distribution::Normal(mean, 0.5), &dev);
        attn.temperature = Param::from_tensor(Tensor::random([heads, 1, 1], Distribution::Uniform(0.5, 2.0), &dev));
        for with_bias in [true, false] {
            let mut norm = LayerNorm::new(&dev, c, with_bias);
            norm.body.weight = Param::from_tensor(rand([c], 1.0));
            norm.body.bias = with_bias.then(|| Param::from_tensor(rand([c], 0.0)));
            let x = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &dev);
            let convs = (&attn.qkv, &attn.qkv_dwconv, None);
            let fused = expand_dw_project(convs, crate::kernels::Middle::Plain, &x, [1, 1], None, Some(&norm));
            assert!(fused.is_some(), "the one-kernel path applies");
            let got = attn.forward_norm_add(&norm, x.clone());
            let xa = x.clone().autodiff();
            let want = attn.forward_add(norm.forward(xa.clone()), xa).inner();
            let d = max_diff(got.clone(), want);
            assert!(d < 1e-5, "bias {bias} heads {heads} norm bias {with_bias} {b}×{h}×{w}: {d}");
            // Bit for bit what the separate layer norm, 1×1 and depthwise kernels give.
            let separate = attn.forward_add(norm.forward(x.clone()), x);
            assert_eq!(max_diff(got, separate), 0.0);
        }
    }
}
