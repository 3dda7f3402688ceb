//! What the run loop ([`crate::run`]) needs from a training procedure.
//!
//! Each network's procedure (CDDFuse's two phases, EMMA's pseudo-sensors and U-Fuser, FILM)
//! implements [`Trainer`]; the loop around it — shuffling, batching, logging, checkpoints,
//! resume, sample panels — is written once.

use std::collections::BTreeMap;

use burn::tensor::Tensor;
use mmif_io::TensorData;
use mmif_nn::weights::{LoadError, StateDict};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::update::{GroupReport, Optim};

/// One batch as the run loop hands it to a trainer.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The dataset's planes, one `B×1×H×W` tensor per source, in the dataset's order.
    pub planes: Vec<Tensor<4>>,
    /// Per-record text features `B×T×768`, when the dataset carries them.
    pub text: Option<Tensor<3>>,
}

/// What one optimisation step reports, for every procedure: logged to `loss.jsonl`, shown in
/// the progress bar, and compared with the official scripts by the one-step tests.
/// Procedure-specific reports (`CddFuseStepReport`, …) add their images and dereference to it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepReport {
    /// Loss terms named as in the official script; `loss` is the total.
    pub losses: BTreeMap<String, f64>,
    /// Gradient figures of each parameter group stepped (see [`GroupReport`]).
    pub groups: BTreeMap<String, GroupReport>,
    /// A short label of the stage (`"I"`/`"II"` for CDDFuse's phases), empty when there is one.
    pub stage: String,
}

impl StepReport {
    /// The total loss (`losses["loss"]`; NaN when absent).
    pub fn loss(&self) -> f64 {
        self.losses.get("loss").copied().unwrap_or(f64::NAN)
    }

    /// The global gradient norm of each group, before clipping.
    pub fn group_norms(&self) -> BTreeMap<String, f64> {
        self.groups.iter().map(|(g, r)| (g.clone(), r.total_norm as f64)).collect()
    }
}

/// The data a trainer reads from each record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inputs {
    /// Planes per record.
    pub sources: usize,
    /// Whether each record must carry text features.
    pub text: bool,
    /// What the planes are, for messages (`"visible, infrared"`).
    pub names: &'static str,
}

/// How the run loop iterates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub epochs: usize,
    pub batch: usize,
    /// Drop the last short batch of an epoch (PyTorch `drop_last=True`).
    pub drop_last: bool,
}

/// A training procedure of one network: what differs between procedures — the data it reads,
/// its loss and update ([`Trainer::step`]), its schedules, its weights — over the state every
/// procedure has (a serde config, an [`Optim`]). Everything else (shuffling, batching, logs,
/// checkpoints, resume, sample panels) is the run loop's ([`crate::run`]).
pub trait Trainer {
    /// The hyper-parameters; `Default` is the official script's values.
    type Config: Serialize + DeserializeOwned;
    /// The name used for the run's weight file and in `params.json` (`cddfuse`, `emma`, …).
    fn model(&self) -> &'static str;
    fn config(&self) -> &Self::Config;
    fn config_mut(&mut self) -> &mut Self::Config;
    /// The optimisers and schedulers (saved with every checkpoint).
    fn optim(&self) -> &Optim;
    fn optim_mut(&mut self) -> &mut Optim;
    fn schedule(&self) -> Schedule;
    fn inputs(&self) -> Inputs;
    /// One optimisation step; `epoch` is 0-based. Any randomness must derive from the run's
    /// seed and `global_step`, so that a resumed run draws what the uninterrupted one would.
    fn step(&mut self, epoch: usize, global_step: u64, batch: &Batch) -> StepReport;
    /// The end of epoch `epoch` (0-based): by default `scheduler.step()` of every group.
    fn end_epoch(&mut self, _epoch: usize) {
        self.optim_mut().step_schedulers();
    }
    /// The trained weights under their official state-dict keys (loadable by `mmif fuse`).
    fn weights(&self) -> BTreeMap<String, TensorData>;
    /// Replaces the trained weights (canonical keys), all or nothing.
    fn load_weights(&mut self, sd: &StateDict) -> Result<(), LoadError>;
    /// The columns of a sample panel for `batch` without autodiff: normally the sources and
    /// the network's output, each `B×1×H×W` in [0, 1].
    fn panel(&self, batch: &Batch) -> Vec<Tensor<4>>;

    /// The learning rate shown and logged (of the first group).
    fn lr(&self) -> f64 {
        self.optim().optimizers.values().next().map_or(f64::NAN, |o| o.lr)
    }

    /// The hyper-parameters as JSON (saved with every checkpoint).
    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(self.config()).expect("a serialisable config")
    }

    /// Replaces the hyper-parameters by saved ones (resuming a run).
    fn set_config_json(&mut self, config: &serde_json::Value) -> Result<(), String> {
        *self.config_mut() = serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// A procedure-specific step report: the common [`StepReport`] plus what the procedure alone
/// computes (`fused`, …), readable as either.
#[macro_export]
macro_rules! step_report {
    ($name:ident) => {
        impl std::ops::Deref for $name {
            type Target = $crate::trainer::StepReport;

            fn deref(&self) -> &$crate::trainer::StepReport {
                &self.report
            }
        }
    };
}

/// The associated `Config` and the four accessors of the state every procedure keeps in the same
/// two fields, `config` and `optim`: expands inside `impl Trainer for …`.
#[macro_export]
macro_rules! trainer_state {
    ($config:ty) => {
        type Config = $config;

        fn config(&self) -> &$config {
            &self.config
        }

        fn config_mut(&mut self) -> &mut $config {
            &mut self.config
        }

        fn optim(&self) -> &$crate::update::Optim {
            &self.optim
        }

        fn optim_mut(&mut self) -> &mut $crate::update::Optim {
            &mut self.optim
        }
    };
}
