//! Shared helpers of the integration tests (on `mmif_testkit`): the fixture folder, scratch
//! folders and a deterministic generator.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

pub use mmif_testkit::Rng;
pub use mmif_testkit::Scratch as TempDir;

/// The fixture folder (see `mmif_io::fixtures::dir`).
pub fn fixtures() -> PathBuf {
    mmif_testkit::fixtures::dir()
}

/// `forward_meta.json` of the fixture folder, parsed.
pub fn forward_meta() -> serde_json::Value {
    mmif_testkit::fixtures::json("forward_meta.json")
}
