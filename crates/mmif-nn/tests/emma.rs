//! EMMA parity with the official PyTorch code (fixtures §2): U-Fuser, its first encoder block,
//! the whole `test.py` procedure, the UNet5 pseudo-sensors; and the other procedures.

#![allow(non_snake_case)]

mod common;

use common::*;
use mmif_nn::emma::{EmmaError, Tiling, UNet5, Ufuser};
use mmif_nn::weights;

/// The network filled as manifest `name` prescribes.
fn filled<M: burn::module::Module>(name: &str, net: M) -> M {
    let sd = weights::canonicalize(&fixtures::filled(name), None);
    weights::load(net, &sd, &device()).unwrap_or_else(|e| panic!("loading the {name} fill: {e}"))
}

fn ufuser() -> Ufuser {
    filled("emma_ufuser", Ufuser::new(&device()))
}

/// The IR and VIS inputs with the shape of the expected fixture `name`.
fn inputs(name: &str) -> (Vec<usize>, Vec<f32>, burn::Tensor<4>, burn::Tensor<4>) {
    let (shape, want) = expected(name);
    let hw = &shape[shape.len() - 2..];
    (shape.clone(), want, input("ivf_ir", hw, 0), input("ivf_vi", hw, 0))
}

#[test]
fn emma_ivf_raw() {
    let (_, want, ir, vi) = inputs("emma_ivf_raw");
    let out = ufuser().forward(ir, vi);
    assert_close("emma_ivf_raw", &values(out), &want, 1e-4);
}

#[test]
fn emma_ivf_I_en_1() {
    let (shape, want) = expected("emma_ivf_I_en_1");
    let hw = &shape[1..];
    let out = ufuser().ir_first_block(input("ivf_ir", hw, 0));
    assert_eq!(out.dims()[1..], shape[..], "I_en_1 shape");
    assert_close_rel("emma_ivf_I_en_1", &values(out), &want, 1e-3);
}

#[test]
fn emma_ivf_test_255() {
    let (_, want, ir, vi) = inputs("emma_ivf_test_255");
    let out = ufuser().official_test(ir, vi).expect("official procedure");
    assert_close("emma_ivf_test_255", &values(out), &want, 1e-2);
}

#[test]
fn emma_ivf_odd_test_255() {
    let (_, want, ir, vi) = inputs("emma_ivf_odd_test_255");
    let out = ufuser().official_test(ir, vi).expect("official procedure");
    assert_close("emma_ivf_odd_test_255", &values(out), &want, 1e-2);
}

#[test]
fn official_tiling_then_min_max_is_the_test_procedure() {
    // What `mmif fuse` does: Tiling::Official, then min-max on the 0..1 scale.
    let (_, want, ir, vi) = inputs("emma_ivf_odd_test_255");
    let raw = ufuser().fuse(ir, vi, Tiling::Official).expect("official tiling");
    let got: Vec<f32> = values(mmif_nn::min_max(raw));
    let want: Vec<f32> = want.iter().map(|v| v / 255.0).collect();
    assert_close("emma_ivf_odd official+min-max", &got, &want, 1e-4);
}

#[test]
fn emma_unet5_ai_out() {
    let (shape, want) = expected("emma_unet5_ai_out");
    let net = filled("emma_unet5_ai", UNet5::new(&device()));
    let out = net.forward(input("ivf_vi", &shape[shape.len() - 2..], 0));
    assert_close("emma_unet5_ai_out", &values(out), &want, 1e-4);
}

#[test]
fn emma_unet5_av_out() {
    let (shape, want) = expected("emma_unet5_av_out");
    let net = filled("emma_unet5_av", UNet5::new(&device()));
    let out = net.forward(input("ivf_vi", &shape[shape.len() - 2..], 0));
    assert_close("emma_unet5_av_out", &values(out), &want, 1e-4);
}

#[test]
fn unet5_sense_pads_odd_sizes() {
    // `sense` equals the plain pass on a multiple of 16, and runs on an odd size.
    let (shape, _) = expected("emma_unet5_ai_out");
    let hw = &shape[shape.len() - 2..];
    let net = filled("emma_unet5_ai", UNet5::new(&device()));
    let x = input("ivf_vi", hw, 0);
    let plain = values(net.forward(x.clone()));
    assert_close("sense = forward", &values(net.sense(x).expect("sense")), &plain, 0.0);
    let (odd, _) = expected("emma_ivf_odd_test_255");
    let odd_hw = &odd[odd.len() - 2..];
    let out = net.sense(input("ivf_vi", odd_hw, 0)).expect("sense on an odd size");
    assert_eq!(out.dims()[2..], odd_hw[..]);
}

#[test]
fn pad_and_tile_equal_one_pass_on_multiples_of_32() {
    // The 64×96 fixture pair is a multiple of 32: padding adds nothing and a tile at least as
    // large as the image is one tile with weight 1, so both must equal the single pass exactly
    // (tolerance 1e-6 for the weighted accumulation, which divides by a weight of exactly 1).
    let (shape, _, ir, vi) = inputs("emma_ivf_raw");
    let net = ufuser();
    let one = values(net.forward(ir.clone(), vi.clone()));
    let pad = values(net.fuse(ir.clone(), vi.clone(), Tiling::Pad).expect("pad"));
    assert_close("pad vs one pass", &pad, &one, 1e-6);
    let size = shape[shape.len() - 2..].iter().max().unwrap().next_multiple_of(32);
    let tile = values(net.fuse(ir, vi, Tiling::Tile { size, overlap: 16 }).expect("tile"));
    assert_close("tile vs one pass", &tile, &one, 1e-6);
}

#[test]
fn tile_mode_blends_several_tiles() {
    // Several overlapping tiles on the odd-size pair: the output is finite, in (0,1), and
    // close to the padded single pass (different context near tile borders, so not equal).
    let (_, _, ir, vi) = inputs("emma_ivf_odd_test_255");
    let net = ufuser();
    let tile = values(net.fuse(ir.clone(), vi.clone(), Tiling::Tile { size: 32, overlap: 8 }).expect("tile"));
    assert!(tile.iter().all(|v| v.is_finite() && *v > 0.0 && *v < 1.0));
    let pad = values(net.fuse(ir, vi, Tiling::Pad).expect("pad"));
    let d = max_abs_diff(&tile, &pad);
    eprintln!("tile 32/8 vs pad on the odd pair: max abs difference {d:e}");
    assert!(d < 0.5, "tiles far from the single pass: {d}");
}

#[test]
fn tiny_inputs_are_errors() {
    let net = ufuser();
    for side in [1usize, 10] {
        let x = burn::Tensor::<4>::zeros([1, 1, side, side], &device());
        for tiling in [Tiling::Official, Tiling::Pad, Tiling::Tile { size: 64, overlap: 16 }] {
            let err = net.fuse(x.clone(), x.clone(), tiling).expect_err("a tiny input must be refused");
            assert!(matches!(err, EmmaError::TooSmall { .. }), "{err}");
            assert!(err.to_string().contains("at least 32×32"), "{err}");
        }
        assert!(net.official_test(x.clone(), x.clone()).is_err());
        let unet = UNet5::new(&device());
        assert!(matches!(unet.sense(x).expect_err("tiny"), EmmaError::TooSmall { .. }));
    }
}

#[test]
fn bad_tiling_is_an_error() {
    let net = ufuser();
    let x = burn::Tensor::<4>::zeros([1, 1, 64, 64], &device());
    for (size, overlap) in [(48, 8), (0, 0), (64, 64)] {
        let err = net.fuse(x.clone(), x.clone(), Tiling::Tile { size, overlap }).expect_err("bad tiling");
        assert!(matches!(err, EmmaError::Tiling(_)), "{err}");
    }
}

#[test]
fn num_batches_tracked_is_ignored_and_running_stats_load() {
    // The fill leaves num_batches_tracked at 0 and the loader skips it; the running statistics
    // are loaded as the manifest gives them and come back out of the state dict.
    let raw = weights::canonicalize(&fixtures::filled("emma_unet5_ai"), None);
    assert!(raw.keys().any(|k| k.ends_with("num_batches_tracked")));
    let net = filled("emma_unet5_ai", UNet5::new(&device()));
    let sd = weights::state_dict(&net);
    for (k, t) in &raw {
        if k.ends_with("num_batches_tracked") {
            assert!(!sd.contains_key(k));
        } else {
            assert_eq!(sd[k].data, t.data, "{k}");
        }
    }
}
