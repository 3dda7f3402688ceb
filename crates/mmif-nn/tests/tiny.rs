//! Every network on tiny inputs, from 1×1 upward: a result of the right shape with finite values,
//! or (below the network's minimum) an error naming that minimum — never a panic. The weights are
//! the networks' random initialisation: shapes and control flow do not depend on them.

mod common;

use burn::tensor::Distribution;
use common::device;
use mmif_nn::Tensor;
use mmif_nn::cddfuse::{CddFuse, CddFuseError, MIN_SIDE, Residual};
use mmif_nn::emma::{EmmaError, MULTIPLE, Tiling, UNET5_MULTIPLE, UNet5, Ufuser};
use mmif_nn::film::{Film, TEXT_DIM, text_tensor};

fn image(h: usize, w: usize) -> Tensor<4> {
    Tensor::random([1, 1, h, w], Distribution::Uniform(0.0, 1.0), &device())
}

fn check_output(what: &str, out: Tensor<4>, h: usize, w: usize) {
    assert_eq!(out.dims(), [1, 1, h, w], "{what} on {w}×{h}");
    let v = common::values(out);
    assert!(v.iter().all(|x| x.is_finite()), "{what} on {w}×{h}: non-finite output");
}

/// (height, width) pairs from 1×1 upward, around `min`.
fn sizes(min: usize) -> Vec<(usize, usize)> {
    let mut v = vec![(1, 1), (1, 7), (7, 1), (2, 1), (1, 2)];
    for s in [min.saturating_sub(1).max(1), min, min + 1] {
        v.extend([(s, s), (s, min + 3), (min + 3, s)]);
    }
    v.sort();
    v.dedup();
    v
}

#[test]
fn cddfuse_refuses_below_its_minimum_and_fuses_from_it() {
    let net = CddFuse::new(&device());
    for (h, w) in sizes(MIN_SIDE) {
        let r = net.fuse(image(h, w), image(h, w), Residual::Vis);
        if h < MIN_SIDE || w < MIN_SIDE {
            let e = r.expect_err("under the minimum size");
            assert_eq!(e, CddFuseError::TooSmall { width: w, height: h, min: MIN_SIDE });
            assert!(e.to_string().contains(&format!("at least {MIN_SIDE}×{MIN_SIDE}")), "{e}");
        } else {
            check_output("cddfuse", r.unwrap_or_else(|e| panic!("{w}×{h}: {e}")), h, w);
        }
    }
    let e = net.fuse(image(4, 4), image(4, 5), Residual::None).expect_err("shape mismatch");
    assert!(matches!(e, CddFuseError::ShapeMismatch(..)), "{e}");
}

#[test]
fn emma_refuses_below_its_minimum_in_every_tiling_and_fuses_from_it() {
    let net = Ufuser::new(&device());
    for (h, w) in sizes(MULTIPLE) {
        for tiling in [Tiling::Official, Tiling::Pad, Tiling::Tile { size: 64, overlap: 16 }] {
            let r = net.fuse(image(h, w), image(h, w), tiling);
            if h < MULTIPLE || w < MULTIPLE {
                let e = r.expect_err("under the minimum size");
                assert_eq!(e, EmmaError::TooSmall { width: w, height: h, min: MULTIPLE }, "{tiling:?}");
            } else {
                check_output("emma", r.unwrap_or_else(|e| panic!("{w}×{h} {tiling:?}: {e}")), h, w);
            }
        }
    }
}

#[test]
fn unet5_refuses_below_its_minimum_and_senses_from_it() {
    let net = UNet5::new(&device());
    for (h, w) in sizes(UNET5_MULTIPLE) {
        let r = net.sense(image(h, w));
        if h < UNET5_MULTIPLE || w < UNET5_MULTIPLE {
            assert_eq!(r.expect_err("too small"), EmmaError::TooSmall { width: w, height: h, min: UNET5_MULTIPLE });
        } else {
            check_output("unet5", r.unwrap_or_else(|e| panic!("{w}×{h}: {e}")), h, w);
        }
    }
}

#[test]
fn film_fuses_every_size_from_1x1() {
    let net = Film::new(&device());
    let tokens = 3;
    let text =
        || text_tensor((0..tokens * TEXT_DIM).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect(), tokens, &device());
    for (h, w) in sizes(2) {
        check_output("film", net.forward(image(h, w), image(h, w), text()), h, w);
    }
}
