//! Every kernel against the burn composition it replaces.

use super::math::exp_f32;
use super::winograd;
use super::*;
use crate::layers::{Conv2d, ConvCfg, LayerNorm, gelu_gate_composed};
use crate::test_util::max_rel;
use crate::weights::tensor_to_vec;
use burn::module::Param;
use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Distribution, Tensor};

#[test]
fn host_refuses_autodiff_tensors() {
    let dev = crate::cpu();
    let x = Tensor::<2>::ones([2, 3], &dev);
    assert!(host(&x).is_some());
    assert!(host(&x.autodiff()).is_none());
}

#[test]
fn conv2d_equals_burns_conv() {
    let dev = crate::cpu();
    // (cin, cout, k, stride, groups, reflect, bias, h, w)
    let cases = [
        (1, 8, 3, 1, 1, true, false, 9, 31),
        (8, 8, 3, 1, 1, true, true, 13, 50),
        (16, 8, 3, 1, 1, false, false, 7, 24),
        (24, 24, 3, 1, 1, false, false, 5, 49),
        (70, 12, 3, 1, 1, true, false, 6, 17),
        (8, 8, 3, 2, 1, true, false, 12, 33),
        (16, 16, 3, 2, 1, false, true, 11, 20),
        (8, 1, 3, 1, 1, true, true, 10, 26),
        (12, 12, 3, 1, 6, true, false, 9, 29),
        (6, 6, 3, 1, 6, false, true, 8, 30),
        (7, 7, 3, 1, 7, true, false, 9, 70),
        (5, 5, 5, 1, 5, false, true, 6, 33),
        (4, 4, 3, 2, 4, true, false, 9, 21),
        (4, 6, 5, 1, 2, false, true, 9, 27),
        (3, 5, 4, 3, 1, false, true, 14, 23),
        // 1×1 (the pointwise kernel): a partial last piece, several pieces, odd channels.
        (32, 96, 1, 1, 1, false, true, 9, 31),
        (40, 8, 1, 1, 1, false, false, 20, 41),
        (3, 5, 1, 1, 1, false, true, 29, 30),
    ];
    for (cin, cout, k, stride, groups, reflect, bias, h, w) in cases {
        let mut cfg = ConvCfg::same(k).bias(bias).groups(groups).stride(stride);
        if reflect {
            cfg = cfg.reflect();
        }
        let conv = Conv2d::new(&dev, cin, cout, k, cfg);
        let x = Tensor::<4>::random([2, cin, h, w], Distribution::Uniform(-1.0, 1.0), &dev);
        let got = conv.forward(x.clone());
        let p = k / 2;
        let (xp, pz) = if reflect { (x.pad((p, p, p, p), PadMode::Reflect), 0) } else { (x, p) };
        let opts = ConvOptions::new([stride; 2], [pz; 2], [1, 1], groups);
        let want = burn_conv2d(xp, conv.weight.val(), conv.bias.as_ref().map(Param::val), opts);
        assert_eq!(got.dims(), want.dims(), "{cin}->{cout} k{k} s{stride} g{groups}");
        let d = max_rel(&tensor_to_vec(got), &tensor_to_vec(want));
        assert!(d < 1e-5, "{cin}->{cout} k{k} s{stride} g{groups} reflect {reflect}: {d}");
    }
}

#[test]
fn conv2d_kernel_is_used_and_differs_from_nothing() {
    // The kernel really runs (and is not the composition): a 3×3 conv of an impulse.
    let x: Vec<f32> = (0..25).map(|i| if i == 12 { 1.0 } else { 0.0 }).collect();
    let wt: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let g = ConvGeom::new([1, 1, 5, 5], [1, 1, 3, 3], 1, 1, 1, false);
    let y = conv2d(&x, &wt, Some(&[0.5]), &g);
    // Correlation: out[2+dy][2+dx] = w[1-dy][1-dx] + bias.
    assert_eq!(y[2 * 5 + 2], 5.5);
    assert_eq!(y[5 + 1], 9.5);
    assert_eq!(y[3 * 5 + 3], 1.5);
    assert_eq!(y[0], 0.5);
}

#[test]
fn gelu_gate_equals_gelu_times_gate() {
    let dev = crate::cpu();
    let x = Tensor::<4>::random([2, 6, 19, 45], Distribution::Normal(0.0, 2.5), &dev);
    let got = crate::layers::gelu_gate(x.clone());
    let want = gelu_gate_composed(x);
    let d = max_rel(&tensor_to_vec(got), &tensor_to_vec(want));
    assert!(d < 1e-5, "{d}");
    // Large arguments saturate like erf = ±1.
    let xs: Vec<f32> = vec![-30.0, -9.0, -7.0, 7.0, 9.0, 30.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
    let y = gelu_gate(&xs, [1, 2, 1, 6]);
    for (v, x) in y.iter().zip(&xs) {
        let want = if *x > 0.0 { *x } else { 0.0 };
        assert!((v - want).abs() < 1e-5, "gelu({x}) = {v}");
    }
}

#[test]
fn layer_norm_equals_composition() {
    let dev = crate::cpu();
    for (bias, c, h, w) in [(true, 8, 23, 31), (false, 32, 5, 60), (true, 3, 1, 300)] {
        let mut ln = LayerNorm::new(&dev, c, bias);
        ln.body.weight = Param::from_tensor(Tensor::random([c], Distribution::Uniform(0.5, 1.5), &dev));
        if bias {
            ln.body.bias = Some(Param::from_tensor(Tensor::random([c], Distribution::Uniform(-1.0, 1.0), &dev)));
        }
        let x = Tensor::<4>::random([2, c, h, w], Distribution::Normal(0.3, 2.0), &dev);
        let got = ln.forward(x.clone());
        let want = ln.forward_composed(x);
        let d = max_rel(&tensor_to_vec(got), &tensor_to_vec(want));
        // A pixel whose few channels are nearly equal has a tiny variance, and 1/sqrt(var + 1e-5)
        // (up to 316) magnifies the float32 rounding of the two evaluations' different summation
        // orders: with 3 random channels a draw reached 1.3e-5 (seen once, MMIF_ISA=scalar).
        assert!(d < 1e-4, "bias {bias} c {c}: {d}");
    }
}

#[test]
fn gather_rows_cols_picks_rows_and_columns() {
    let x: Vec<f32> = (0..2 * 3 * 4).map(|v| v as f32).collect();
    let y = gather_rows_cols(&x, [1, 2, 3, 4], &[2, 0], &[3, 3, 1]);
    assert_eq!(y, vec![11., 11., 9., 3., 3., 1., 23., 23., 21., 15., 15., 13.]);
}

#[test]
fn exp_is_within_two_ulp_of_std() {
    let mut worst = 0.0f64;
    let mut x = -87.0f32;
    while x < 88.0 {
        let (got, want) = (exp_f32(x) as f64, (x as f64).exp());
        worst = worst.max((got - want).abs() / want);
        x += 0.0137;
    }
    assert!(worst < 3.0 * f32::EPSILON as f64, "worst relative error {worst}");
    assert_eq!(exp_f32(-100.0), 0.0);
    assert_eq!(exp_f32(0.0), 1.0);
}

#[test]
fn softmax_mean_rows_equals_composition() {
    let dev = crate::cpu();
    let x = Tensor::<3>::random([2, 37, 301], Distribution::Normal(0.0, 6.0), &dev);
    let want = tensor_to_vec(burn::tensor::activation::softmax(x.clone(), 2).mean_dim(1));
    let got = softmax_mean_rows(&tensor_to_vec(x), [2, 37, 301]);
    let d = max_rel(&got, &want);
    assert!(d < 1e-6, "{d}");
}

#[test]
fn reductions_do_not_depend_on_scheduling() {
    // Sums across rayon tasks are combined in a fixed order: repeated runs give the same bits
    // (the CLI writes the same image twice in a row).
    let dev = crate::cpu();
    let scores = tensor_to_vec(Tensor::<3>::random([2, 149, 3000], Distribution::Normal(0.0, 3.0), &dev));
    let qkv = tensor_to_vec(Tensor::<4>::random([1, 48, 61, 97], Distribution::Normal(0.0, 1.0), &dev));
    let first = (softmax_mean_rows(&scores, [2, 149, 3000]), ChannelGram::of(&qkv, [1, 48, 61, 97], 4));
    for _ in 0..8 {
        assert_eq!(softmax_mean_rows(&scores, [2, 149, 3000]), first.0);
        assert_eq!(ChannelGram::of(&qkv, [1, 48, 61, 97], 4), first.1);
    }
}

/// The ISA the kernels use honours `MMIF_ISA` (checked in the runs of
/// `every_isa_path_passes_the_kernel_tests`, which set it).
#[test]
fn forced_isa_is_the_one_used() {
    let cpu = if cfg!(target_arch = "x86_64")
        && std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl") {
            Isa::Avx512
        } else {
            Isa::Avx2
        }
    } else {
        Isa::Scalar
    };
    let want = match std::env::var("MMIF_ISA").as_deref() {
        Ok("scalar") => Isa::Scalar,
        Ok("avx2") => Isa::Avx2.min(cpu),
        _ => cpu,
    };
    assert_eq!(isa(), want);
    assert_eq!(has_avx2_fma(), want >= Isa::Avx2);
}

/// Runs this module's tests again in child processes of this test binary, once per ISA the CPU
/// has, with `MMIF_ISA` forcing it: every intrinsics path (scalar, AVX2, AVX-512) is tested
/// against the burn composition, whatever the machine's widest one is.
#[test]
fn every_isa_path_passes_the_kernel_tests() {
    if std::env::var_os("MMIF_ISA").is_some() {
        return; // a child run: the parent covers every ISA
    }
    let exe = std::env::current_exe().expect("test binary");
    let widest = isa();
    let mut ran = Vec::new();
    for (name, level) in [("scalar", Isa::Scalar), ("avx2", Isa::Avx2), ("avx512", Isa::Avx512)] {
        if level > widest {
            eprintln!("kernels: this CPU has no {name}; its path is not run here");
            continue;
        }
        let out = std::process::Command::new(&exe)
            .args(["kernels::tests::", "--test-threads", "1"])
            .env("MMIF_ISA", name)
            .output()
            .expect("run the test binary");
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "kernel tests with MMIF_ISA={name} failed:\n{log}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(log.contains("forced_isa_is_the_one_used ... ok"), "MMIF_ISA={name}: {log}");
        ran.push(name);
    }
    assert!(ran.contains(&"scalar"), "{ran:?}");
}

/// The Winograd kernel against the direct one, for both tiles: odd sizes down to a 1×1 output,
/// bands of rows (`pad_rows`), reflection, several pieces of tiles per row, odd channel counts
/// (every register block width), bias. The error is relative to the output's largest magnitude;
/// inputs are uniform in [-1, 1) and weights PyTorch's default initialisation (outputs of
/// order 1, as the activations of the networks' 3×3 convs).
#[test]
fn winograd_equals_direct_conv() {
    use winograd::WinoTile;
    let dev = crate::cpu();
    // (batch, cin, cout, h, w, pad_rows, reflect, bias)
    let cases = [
        (1, 1, 1, 3, 3, [1, 1], false, false),
        (2, 5, 7, 1, 1, [1, 1], false, true),
        (1, 3, 4, 2, 5, [1, 1], true, true),
        (2, 17, 9, 13, 29, [1, 1], false, true),
        (1, 16, 24, 11, 21, [1, 1], true, false),
        (1, 8, 8, 9, 20, [0, 1], false, false),
        (1, 8, 8, 9, 20, [1, 0], true, true),
        (1, 8, 6, 9, 20, [0, 0], false, true),
        (1, 4, 3, 6, 805, [1, 1], true, true),
        (1, 96, 104, 7, 45, [1, 1], false, true),
        (1, 192, 192, 5, 30, [1, 1], false, false),
    ];
    for tile in [WinoTile::F2, WinoTile::F4] {
        let mut worst = 0.0f32;
        for (b, cin, cout, h, w, pad_rows, reflect, bias) in cases {
            let what = format!("{tile:?} b{b} {cin}->{cout} {h}x{w} rows {pad_rows:?} reflect {reflect}");
            let mut g = ConvGeom::new([b, cin, h, w], [cout, cin, 3, 3], 1, 1, 1, reflect);
            g.pad_rows = pad_rows;
            assert!(winograd::winograd_supported(&g), "{what}");
            let bound = 1.0 / ((9 * cin) as f64).sqrt();
            let wt = tensor_to_vec(Tensor::<4>::random([cout, cin, 3, 3], Distribution::Uniform(-bound, bound), &dev));
            let bs = tensor_to_vec(Tensor::<1>::random([cout], Distribution::Uniform(-bound, bound), &dev));
            let x = tensor_to_vec(Tensor::<4>::random([b, cin, h, w], Distribution::Uniform(-1.0, 1.0), &dev));
            let bias = bias.then_some(&bs[..]);
            let want = conv2d(&x, &wt, bias, &g);
            let got = winograd_conv2d(&x, &WinogradWeights::new(&wt, cout, cin, tile), bias, &g);
            assert_eq!(got.len(), want.len(), "{what}");
            let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let d = crate::test_util::max_abs(&got, &want) / scale;
            worst = worst.max(d);
            // F(4×4)'s transforms scale values by up to 8 before the products: a few more bits lost.
            let tol = if tile == WinoTile::F2 { 5e-6 } else { 4e-5 };
            assert!(d < tol, "{what}: {d:e} of the output's largest magnitude");
        }
        eprintln!("winograd {tile:?}: largest error {worst:e} of the output's largest magnitude");
    }
}

/// The layers pick the Winograd kernel for wide dense 3×3 stride-1 convs only (unless
/// `MMIF_WINOGRAD` says otherwise), and the layer's result still matches burn's conv.
#[test]
fn winograd_is_picked_for_wide_dense_3x3_convs() {
    use winograd::WinoTile;
    let geom = |cin, cout, stride, groups| {
        ConvGeom::new([1, cin, 20, 20], [cout, cin / groups, 3, 3], stride, 1, groups, false)
    };
    let wide = geom(192, 192, 1, 1);
    let forced = match std::env::var("MMIF_WINOGRAD").as_deref() {
        Ok("off") => None,
        Ok("f2") => Some(Some(WinoTile::F2)),
        Ok("f4") => Some(Some(WinoTile::F4)),
        _ => Some(None),
    };
    match forced {
        None => assert_eq!(winograd_pick(&wide), None),
        Some(Some(t)) => assert_eq!(winograd_pick(&wide), Some(t)),
        Some(None) => {
            assert_eq!(winograd_pick(&wide), Some(WinoTile::F4));
            assert_eq!(winograd_pick(&geom(32, 32, 1, 1)), None);
        }
    }
    for g in [geom(192, 192, 2, 1), geom(192, 192, 1, 2), geom(192, 192, 1, 192)] {
        assert_eq!(winograd_pick(&g), None, "{g:?}");
    }
    // Through the layer, against burn's conv: zero and reflection padding, with a bias.
    let dev = crate::cpu();
    for reflect in [false, true] {
        let mut cfg = ConvCfg::same(3).bias(true);
        if reflect {
            cfg = cfg.reflect();
        }
        let conv = Conv2d::new(&dev, 96, 128, 3, cfg);
        let x = Tensor::<4>::random([1, 96, 11, 37], Distribution::Uniform(-1.0, 1.0), &dev);
        let got = conv.forward(x.clone());
        let (xp, pz) = if reflect { (x.pad((1, 1, 1, 1), PadMode::Reflect), 0) } else { (x, 1) };
        let opts = ConvOptions::new([1, 1], [pz; 2], [1, 1], 1);
        let want = burn_conv2d(xp, conv.weight.val(), conv.bias.as_ref().map(Param::val), opts);
        let d = max_rel(&tensor_to_vec(got), &tensor_to_vec(want));
        assert!(d < 2e-5, "reflect {reflect}: {d}");
    }
}
