//! Parity of `lp_sr` and `rp_sr` with VIFB's MATLAB code (`methods/LP_SR`, `methods/RP_SR`) run
//! under GNU Octave with mmif's dictionary in place of VIFB's (see tests/data/vifb/README.md and
//! `gen/make_sr_refs.m`).
//!
//! `tests/data/vifb/{lp_sr,rp_sr}/<pair>.png` are the `uint8` results of VIFB's `run_LP_SR.m` /
//! `run_RP_SR.m` for the crops in `inputs/` (a colour visible image channel by channel against
//! the gray infrared one, as VIFB does); `sr/<pair>.f64` is VIFB's `sparse_fusion.m` (the OMP step)
//! alone on full-resolution gray crops, as doubles.
//!
//! Print the table with `cargo test --release -p mmif-classic --test vifb_octave_sr -- --nocapture`.

use image::DynamicImage;
use mmif_classic::sr::{Dictionary, sparse_fusion};
use mmif_classic::{Method, MstSrParams, Plane};
use std::path::{Path, PathBuf};

const PAIRS: [&str; 7] =
    ["tno_48x64", "tno_77x101", "road_60x90c", "tno_150x111", "road_160x120", "tno_256x200", "road_224x176c"];

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vifb")
}

/// The channels of an 8-bit PNG as planes on the 0..=255 scale (one for gray, three for RGB).
fn channels(path: &Path) -> Vec<Plane> {
    let img = image::open(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let (w, h) = (img.width() as usize, img.height() as usize);
    match img {
        DynamicImage::ImageLuma8(g) => vec![Plane::new(w, h, g.pixels().map(|p| f32::from(p.0[0])).collect())],
        other => {
            let rgb = other.to_rgb8();
            (0..3).map(|c| Plane::new(w, h, rgb.pixels().map(|p| f32::from(p.0[c])).collect())).collect()
        }
    }
}

/// MATLAB's `uint8(x)`.
fn to_u8(v: f32) -> f32 {
    v.round().clamp(0.0, 255.0)
}

/// Mean and max absolute difference (0..=255) of `method` against its references, printing one
/// line per pair.
fn compare(method: Method, dir: &str) -> (f64, f64) {
    let (mut sum, mut n, mut worst) = (0.0f64, 0usize, 0.0f64);
    for pair in PAIRS {
        let ir = channels(&data().join(format!("inputs/{pair}_ir.png")));
        let vi = channels(&data().join(format!("inputs/{pair}_vi.png")));
        let reference = channels(&data().join(format!("{dir}/{pair}.png")));
        assert_eq!(ir.len(), 1, "{pair}: the infrared crop is gray");
        assert_eq!(reference.len(), vi.len(), "{pair}: channels");
        let got = method.fuse_channels(&ir[0], &vi).unwrap_or_else(|e| panic!("{method} on {pair}: {e}"));
        let (mut ps, mut pn, mut pw, mut differing) = (0.0f64, 0usize, 0.0f64, 0usize);
        for (g, want) in got.iter().zip(&reference) {
            assert_eq!((g.width, g.height), (want.width, want.height), "{method} on {pair}");
            for (&x, &r) in g.data.iter().zip(&want.data) {
                let d = f64::from((to_u8(x) - r).abs());
                ps += d;
                pn += 1;
                differing += usize::from(d > 0.0);
                pw = pw.max(d);
            }
        }
        println!(
            "{:<6} {pair:<14} {} ch  mean |diff| {:.6}  max {}  ({differing} of {pn} values differ)",
            method.name(),
            reference.len(),
            ps / pn as f64,
            pw
        );
        sum += ps;
        n += pn;
        worst = worst.max(pw);
    }
    (sum / n as f64, worst)
}

#[test]
fn lp_sr_matches_vifb_under_octave() {
    let (mean, max) = compare(Method::LpSr(MstSrParams::default()), "lp_sr");
    println!("lp_sr: mean {mean:.6}, max {max}");
    assert!(mean <= 0.01 && max <= 1.0, "lp_sr: mean {mean}, max {max}");
}

#[test]
fn rp_sr_matches_vifb_under_octave() {
    let (mean, max) = compare(Method::RpSr(MstSrParams::default()), "rp_sr");
    println!("rp_sr: mean {mean:.6}, max {max}");
    assert!(mean <= 0.01 && max <= 1.0, "rp_sr: mean {mean}, max {max}");
}

/// The sparse step alone on full-resolution crops (hundreds of patches, up to 64 atoms each):
/// VIFB's doubles against mmif's.
#[test]
fn sparse_fusion_matches_vifb_under_octave() {
    let dict = Dictionary::default_8x256();
    for pair in ["tno_48x64", "tno_77x101"] {
        let ir = channels(&data().join(format!("inputs/{pair}_ir.png")));
        let vi = channels(&data().join(format!("inputs/{pair}_vi.png")));
        let bytes = std::fs::read(data().join(format!("sr/{pair}.f64"))).expect("reference");
        let want: Vec<f64> = bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect();
        let got = sparse_fusion(&ir[0], &vi[0], &dict, 6, 0.1).unwrap();
        assert_eq!(got.len(), want.len());
        let (mut sum, mut worst) = (0.0f64, 0.0f64);
        for (g, w) in got.iter().zip(&want) {
            let d = (g - w).abs();
            sum += d;
            worst = worst.max(d);
        }
        println!("sparse_fusion {pair}: mean |diff| {:.3e}, max {worst:.3e}", sum / want.len() as f64);
        assert!(worst < 1e-6, "{pair}: max {worst}");
    }
}
