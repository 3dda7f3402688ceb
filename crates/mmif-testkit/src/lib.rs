//! Test support shared by the tests of every mmif crate (a dev-dependency only; never a
//! dependency of a library or of the binary).
//!
//! * [`fixtures`]: where the reference fixtures are (`$MMIF_FIXTURES`) and how to read them;
//!   a missing fixture fails the test with a message naming `MMIF_FIXTURES`, never skips it.
//! * [`Scratch`]: a fresh folder per test, removed on drop.
//! * [`cli`]: running a binary (`env!("CARGO_BIN_EXE_…")`) and reading its stderr.
//! * [`compare`]: the differences and closeness checks the parity tests report.
//! * [`fuzz`]: the fuzz targets' bodies, shared with the replay of their corpus.
//! * [`hostile`]: files whose header declares a size they do not hold.
//! * [`Rng`]: a small deterministic generator for test data.
//! * [`device_name`]: the device the network tests run on (`$MMIF_TEST_DEVICE`).

pub mod cli;
pub mod compare;
pub mod fuzz;
pub mod hostile;
mod rng;
mod scratch;

pub use mmif_io::fixtures;
pub use rng::Rng;
pub use scratch::Scratch;

/// The device the network and training tests run on, as `mmif --device` names it:
/// `$MMIF_TEST_DEVICE`, `cpu` when unset. `MMIF_TEST_DEVICE=wgpu` in a build with the `wgpu`
/// features reruns the parity tests and the training steps on wgpu (lavapipe works without a GPU);
/// CI does not do this yet (README, "GPUs"). A device the build lacks fails the test.
pub fn device_name() -> String {
    std::env::var("MMIF_TEST_DEVICE").unwrap_or_else(|_| "cpu".into())
}
