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

pub mod cli;
pub mod compare;
pub mod fuzz;
pub mod hostile;
mod rng;
mod scratch;

pub use mmif_io::fixtures;
pub use rng::Rng;
pub use scratch::Scratch;
