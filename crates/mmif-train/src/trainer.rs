//! What the run loop ([`crate::run`]) needs from a training procedure.
//!
//! Each network's procedure (CDDFuse's two phases, EMMA's pseudo-sensors and U-Fuser, FILM)
//! implements [`Trainer`]; the loop around it — shuffling, batching, logging, checkpoints,
//! resume, sample panels — is written once.

use std::collections::BTreeMap;

use burn::tensor::Tensor;
use mmif_io::TensorData;
use mmif_nn::weights::{LoadError, StateDict};

use crate::optim::{Adam, StepLr};

/// One batch as the run loop hands it to a trainer.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The dataset's planes, one `B×1×H×W` tensor per source, in the dataset's order.
    pub planes: Vec<Tensor<4>>,
    /// Per-record text features `B×T×768`, when the dataset carries them.
    pub text: Option<Tensor<3>>,
}

/// What a trainer reports of one step (logged to `loss.jsonl` and shown in the progress bar).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepLog {
    /// Loss terms named as in the official script; `loss` is the total.
    pub losses: BTreeMap<String, f64>,
    /// The global gradient norm of each optimised module, before clipping.
    pub grad_norms: BTreeMap<String, f64>,
    /// A short label of the stage (`"I"`/`"II"` for CDDFuse's phases), empty when there is one.
    pub stage: String,
}

impl StepLog {
    pub fn loss(&self) -> f64 {
        self.losses.get("loss").copied().unwrap_or(f64::NAN)
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

/// A training procedure of one network.
pub trait Trainer {
    /// The name used for the run's weight file and in `params.json` (`cddfuse`, `emma`, …).
    fn model(&self) -> &'static str;
    /// The procedure's hyper-parameters as JSON (saved with every checkpoint).
    fn config(&self) -> serde_json::Value;
    /// Replaces the hyper-parameters by saved ones (resuming a run).
    fn set_config(&mut self, config: &serde_json::Value) -> Result<(), String>;
    fn schedule(&self) -> Schedule;
    fn inputs(&self) -> Inputs;
    /// One optimisation step; `epoch` is 0-based.
    fn step(&mut self, epoch: usize, global_step: u64, batch: &Batch) -> StepLog;
    /// The schedulers at the end of epoch `epoch` (0-based).
    fn end_epoch(&mut self, epoch: usize);
    /// The learning rate shown and logged (of the first optimiser).
    fn lr(&self) -> f64 {
        self.optimizers().values().next().map_or(f64::NAN, |o| o.lr)
    }
    /// The trained weights under their official state-dict keys (loadable by `mmif fuse`).
    fn weights(&self) -> BTreeMap<String, TensorData>;
    /// Replaces the trained weights (canonical keys), all or nothing.
    fn load_weights(&mut self, sd: &StateDict) -> Result<(), LoadError>;
    fn optimizers(&self) -> &BTreeMap<String, Adam>;
    fn optimizers_mut(&mut self) -> &mut BTreeMap<String, Adam>;
    fn schedulers(&self) -> &BTreeMap<String, StepLr>;
    fn schedulers_mut(&mut self) -> &mut BTreeMap<String, StepLr>;
    /// The columns of a sample panel for `batch` without autodiff: normally the sources and
    /// the network's output, each `B×1×H×W` in [0, 1].
    fn panel(&self, batch: &Batch) -> Vec<Tensor<4>>;
}

impl StepLog {
    /// The log of a step: its loss terms and each module's global gradient norm before clipping.
    pub fn from_groups(
        losses: BTreeMap<String, f64>,
        groups: &BTreeMap<String, crate::cddfuse::GroupReport>,
        stage: &str,
    ) -> Self {
        let grad_norms = groups.iter().map(|(g, r)| (g.clone(), r.total_norm as f64)).collect();
        Self { losses, grad_norms, stage: stage.to_string() }
    }
}

/// The [`Trainer`] methods every procedure implements alike, for a trainer with the fields
/// `config` (serde), `optimizers` and `schedulers`: expands inside `impl Trainer for …`.
#[macro_export]
macro_rules! trainer_state {
    () => {
        fn config(&self) -> serde_json::Value {
            serde_json::to_value(&self.config).expect("a serialisable config")
        }

        fn set_config(&mut self, config: &serde_json::Value) -> Result<(), String> {
            self.config = serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
            Ok(())
        }

        fn optimizers(&self) -> &std::collections::BTreeMap<String, $crate::optim::Adam> {
            &self.optimizers
        }

        fn optimizers_mut(&mut self) -> &mut std::collections::BTreeMap<String, $crate::optim::Adam> {
            &mut self.optimizers
        }

        fn schedulers(&self) -> &std::collections::BTreeMap<String, $crate::optim::StepLr> {
            &self.schedulers
        }

        fn schedulers_mut(&mut self) -> &mut std::collections::BTreeMap<String, $crate::optim::StepLr> {
            &mut self.schedulers
        }
    };
}
