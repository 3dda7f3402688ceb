//! What mmif runs and how, shared by the `mmif` binary (`mmif-cli`) and the Python package
//! (`mmif-py`), so that both give the same bits for the same inputs:
//!
//! - [`registry`]: the one typed list of networks ([`Network`], [`NetworkInfo`]) and [`Model`]
//!   (a network or a weight-free method of `mmif_classic`);
//! - [`models`]: a [`Model`] built into a [`Fuser`] that maps the named sources ([`Task`]) to
//!   its own inputs as its official test script does;
//! - [`pipeline`]: one pair of decoded sources through a fuser — the size check, luma fusion,
//!   the official min-max normalisation, the chroma put back, 8-bit quantisation — and the
//!   default weight-free method of each task;
//! - [`text`]: FILM's per-pair text features;
//! - [`memory`]: the networks' peak-memory estimates, checked against the memory available.

pub mod memory;
pub mod models;
pub mod pipeline;
pub mod registry;
pub mod text;

pub use models::{Fuser, ModelOptions};
pub use pipeline::{ColorMode, Fused, TilingMode};
pub use registry::{Model, NETWORKS, Network, NetworkInfo};

/// The fusion task: which two modalities the sources are. Source `a` is infrared, MRI,
/// over-exposed, near-focused or the generic first one; `b` the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// infrared (`a`) and visible (`b`)
    Ivf,
    /// MRI (`a`) and CT, PET or SPECT (`b`)
    Mif,
    /// over-exposed (`a`) and under-exposed (`b`)
    Mef,
    /// near-focused (`a`) and far-focused (`b`)
    Mff,
    /// two sources without a modality
    Generic,
}

impl Task {
    /// The names of the two sources, first (`a`) then second (`b`), as the command line spells them.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Task::Ivf => ("ir", "vis"),
            Task::Mif => ("mri", "func"),
            Task::Mef => ("over", "under"),
            Task::Mff => ("near", "far"),
            Task::Generic => ("a", "b"),
        }
    }
}

impl std::str::FromStr for Task {
    type Err = anyhow::Error;

    /// `ivf`, `mif`, `mef`, `mff` or `generic` (case-insensitive).
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "ivf" => Task::Ivf,
            "mif" => Task::Mif,
            "mef" => Task::Mef,
            "mff" => Task::Mff,
            "generic" => Task::Generic,
            _ => anyhow::bail!("unknown task `{s}`: expected ivf, mif, mef, mff or generic"),
        })
    }
}
