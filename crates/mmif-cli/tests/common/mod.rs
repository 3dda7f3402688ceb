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
