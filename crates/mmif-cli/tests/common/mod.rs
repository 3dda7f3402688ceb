//! Helpers shared by the end-to-end tests of the `mmif` binary (on `mmif_testkit`).
#![allow(dead_code, unused_imports)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

pub use mmif_testkit::Scratch;
pub use mmif_testkit::cli::stderr;
pub use mmif_testkit::compare::max_abs_diff;
pub use mmif_testkit::fixtures;

/// Runs the `mmif` binary with `args`.
pub fn mmif<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    mmif_testkit::cli::run(env!("CARGO_BIN_EXE_mmif"), args)
}

/// [`mmif`] for arguments of mixed types (`&"--weights", &path_buf, …`).
pub fn mmif_dyn(args: &[&dyn AsRef<OsStr>]) -> Output {
    mmif(args.iter().map(|a| a.as_ref()))
}

/// A float32 `.npy` written by the binary: `(shape, values)`.
pub fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    mmif_io::read_npy_f32(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The manifest's deterministic fill of `model` saved as `<dir>/<model>.safetensors`.
pub fn filled_weights(dir: &Scratch, model: &str) -> PathBuf {
    let path = dir.path(&format!("{model}.safetensors"));
    mmif_io::save_safetensors(&path, &fixtures::filled(model)).expect("write the filled weights");
    path
}

/// A smooth textured gray image (high contrast, so no patch is dropped).
pub fn texture(w: u32, h: u32, phase: f32) -> image::GrayImage {
    image::GrayImage::from_fn(w, h, |x, y| {
        let v = 127.0 + 100.0 * ((x as f32 * 0.37 + phase).sin() * (y as f32 * 0.23 - phase).cos());
        image::Luma([v as u8])
    })
}

/// `n` pairs of `w×h` images in `root/{ir,vis}` named `p<i>.png`.
pub fn pairs(s: &Scratch, n: usize, w: u32, h: u32) {
    for sub in ["ir", "vis"] {
        std::fs::create_dir_all(s.path(sub)).unwrap();
    }
    for i in 0..n {
        texture(w, h, i as f32).save(s.path(&format!("ir/p{i}.png"))).unwrap();
        texture(w, h, 1.7 + i as f32 * 0.5).save(s.path(&format!("vis/p{i}.png"))).unwrap();
    }
}

pub fn ok(o: &std::process::Output, what: &str) {
    assert!(o.status.success(), "{what} failed: {}", stderr(o));
}

pub fn loss_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Three 40×24 pairs in `ir/`, `vis/` and their 16×16 patches at stride 16 in `d.mmifds` (6 patches);
/// returns `mmif prepare`'s output, checked to have succeeded.
pub fn tiny_patches(s: &Scratch) -> Output {
    pairs(s, 3, 40, 24);
    let o = mmif([
        "prepare",
        "--ir",
        &s.s("ir"),
        "--vis",
        &s.s("vis"),
        "-o",
        &s.s("d.mmifds"),
        "--patch",
        "16",
        "--stride",
        "16",
    ]);
    ok(&o, "prepare");
    o
}

/// FILM's training data: `n` pairs of `w×h` images (`pairs`), a 7×768 text-feature file per pair
/// in `text/`, and `film.mmifds` made by `mmif prepare --text-dir … --size full`; returns its path.
pub fn film_data(s: &Scratch, n: usize, w: u32, h: u32) -> String {
    pairs(s, n, w, h);
    std::fs::create_dir_all(s.path("text")).unwrap();
    for i in 0..n {
        let v: Vec<f32> = mmif_io::uniform_pm1(3, i as u64, 7 * 768).to_vec();
        mmif_io::write_npy_f32(&s.path(&format!("text/p{i}.npy")), &[7, 768], &v).unwrap();
    }
    let d = s.s("film.mmifds");
    let (ir, vis, text) = (s.s("ir"), s.s("vis"), s.s("text"));
    let o = mmif(["prepare", "--ir", &ir, "--vis", &vis, "--text-dir", &text, "--size", "full", "-o", &d]);
    ok(&o, "prepare film");
    d
}

/// EMMA's training data from two 64×32 pairs and two "fused" images in `fused/`, as 32×32 patches:
/// `(ai, av, d)` = the infrared pseudo-sensor's set (`--fused` with `--ir`), the visible one's
/// (`--fused` with `--vis`) and the U-Fuser's (`--ir` with `--vis`), four patches each.
pub fn emma_data(s: &Scratch) -> (String, String, String) {
    pairs(s, 2, 64, 32);
    std::fs::create_dir_all(s.path("fused")).unwrap();
    for i in 0..2 {
        texture(64, 32, 0.9 + i as f32).save(s.path(&format!("fused/p{i}.png"))).unwrap();
    }
    let prep = |args: &[&str], out: &str| {
        let mut a = vec!["prepare", "-o", out, "--patch", "32", "--stride", "32"];
        a.extend_from_slice(args);
        ok(&mmif(a), &format!("prepare {out}"));
    };
    let (ai, av, d) = (s.s("ai.mmifds"), s.s("av.mmifds"), s.s("d.mmifds"));
    prep(&["--fused", &s.s("fused"), "--ir", &s.s("ir")], &ai);
    prep(&["--fused", &s.s("fused"), "--vis", &s.s("vis")], &av);
    prep(&["--ir", &s.s("ir"), "--vis", &s.s("vis")], &d);
    (ai, av, d)
}
