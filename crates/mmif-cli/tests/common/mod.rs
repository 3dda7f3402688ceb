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
