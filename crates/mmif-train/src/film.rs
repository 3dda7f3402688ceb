//! FILM's training, as the official `train.py` does it.
//!
//! * One optimiser over the whole network: Adam, lr 1e-5, no weight decay, no gradient clipping,
//!   stepped once per batch of 2 (the loader drops the last, short batch and shuffles).
//! * The objective is `loss_in + 20·loss_grad + ssim_weight·(lplssimA + lplssimB)` with
//!   `loss_in = L1(max(A, B), F)` and `loss_grad = L1(max(S(A), S(B)), S(F))`, `S` the Sobel
//!   magnitude `|gx| + |gy|` with zero padding. `A` is the first image of the pair (infrared,
//!   MRI, over-exposed, near-focused), `B` the second; both losses are symmetric in them.
//! * The SSIM term (`LpLssimLossweight`, weight 0 by default, i.e. off — `train.py`'s
//!   `--loss_ssim`): for each source `X ∈ {A, B}`, `‖X − F‖₂ + w·(1 − SSIM₅(X, F))` where the
//!   L2 norm runs over the whole batch and `w = ⌊√(H·W)⌋`. `train.py` computes and logs it even
//!   at weight 0; so does [`FilmTrainer::step`], outside the autodiff graph then (adding `0·x` to
//!   the objective changes no gradient).
//! * StepLR(50, 0.6) advances once per epoch; 150 epochs.
//!
//! The text features (`B×T×768`, `T` the same for every sample of a batch, as PyTorch's default
//! collate requires) are an input of the network like the images.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use mmif_nn::film::Film;
use mmif_nn::weights::{self, LoadError, StateDict};
use serde::{Deserialize, Serialize};

use crate::losses::{self, scalar};
use crate::optim;
use crate::trainer::{Batch, Inputs, Schedule, StepReport, Trainer};
use crate::update::{Optim, ParamGroup, update};

/// The name of FILM's single parameter group (the whole network; saved by the official script
/// as `optimizer1` / `lr_schedule1` next to `model`).
pub const GROUP: &str = "model";

/// The hyper-parameters of `train.py` (its values are the defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilmConfig {
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub batch: usize,
    /// The loader drops the last batch of an epoch when it is short.
    pub drop_last: bool,
    pub step_size: u64,
    pub gamma: f64,
    /// Weight of `loss_grad` (`--loss_grad_weight`).
    pub grad_weight: f64,
    /// Weight of the Lp + SSIM term (`--loss_ssim`); 0 leaves it out of the objective.
    pub ssim_weight: f64,
    /// Window of that term's SSIM (Gaussian, σ = 1.5, zero padding).
    pub ssim_window: usize,
}

impl Default for FilmConfig {
    fn default() -> Self {
        Self {
            epochs: 150,
            lr: 1e-5,
            weight_decay: 0.0,
            batch: 2,
            drop_last: true,
            step_size: 50,
            gamma: 0.6,
            grad_weight: 20.0,
            ssim_weight: 0.0,
            ssim_window: 5,
        }
    }
}

/// What one training step computed: the common report — loss terms `loss` (the objective),
/// `loss_in`, `loss_grad`, and as `train.py` logs them `loss_in_grad`
/// (`loss_in + grad_weight·loss_grad`), `lplssimA`, `lplssimB`; the single group [`GROUP`]'s
/// per-parameter gradient norms (nothing is clipped, so `clipped_norms` equals `grad_norms` and
/// `coef` is 1) — and the fused batch and gradients.
#[derive(Clone, Debug)]
pub struct FilmStepReport {
    pub report: StepReport,
    /// The fused batch `F` the losses were computed on, detached.
    pub fused: Tensor<4>,
    /// Every parameter's gradient, by state-dict key (what Adam was given).
    pub gradients: BTreeMap<String, optim::Values>,
}

crate::step_report!(FilmStepReport);

impl FilmStepReport {
    /// Per-parameter gradient norms, by state-dict key.
    pub fn grad_norms(&self) -> &BTreeMap<String, f64> {
        &self.groups[GROUP].grad_norms
    }
}

/// The network with its optimiser and scheduler.
pub struct FilmTrainer {
    pub net: Film,
    pub config: FilmConfig,
    /// One group, [`GROUP`].
    pub optim: Optim,
    device: Device,
}

impl FilmTrainer {
    /// A trainer of `net`, moved to `device` (normally `mmif_nn::cpu().autodiff()`) with every
    /// parameter requiring gradients. Training evaluates the literal graph (the official order of
    /// operations); [`FilmTrainer::fuse`] uses the memory-saving evaluation.
    pub fn new(net: Film, config: FilmConfig, device: &Device) -> Self {
        let net = net.with_low_memory(false).fork(device).set_require_grad(true);
        let optim = Optim::new(&[GROUP], config.lr, config.weight_decay, config.step_size, config.gamma);
        Self { net, config, optim, device: device.clone() }
    }

    /// A trainer starting from the weights `sd` (canonical keys, `module.` removed).
    pub fn from_state_dict(sd: &StateDict, config: FilmConfig, device: &Device) -> Result<Self, LoadError> {
        let net = weights::load(Film::new(device), sd, device)?;
        Ok(Self::new(net, config, device))
    }

    /// The objective on a batch, with the logged terms and the fused batch.
    fn objective(&self, a: Tensor<4>, b: Tensor<4>, text: Tensor<3>) -> (Tensor<1>, BTreeMap<String, f64>, Tensor<4>) {
        let c = &self.config;
        let fused = self.net.forward(a.clone(), b.clone(), text);
        let f = losses::fusion_loss_weighted(a.clone(), b.clone(), fused.clone(), c.grad_weight as f32);
        let [_, _, h, w] = fused.dims();
        let weight = ((h * w) as f64).sqrt().floor() as f32;
        let ssim = |x: Tensor<4>, fused: Tensor<4>| losses::lp_ssim_weighted(x, fused, weight, c.ssim_window);
        let (loss, ssim_a, ssim_b) = if c.ssim_weight != 0.0 {
            let (sa, sb) = (ssim(a, fused.clone()), ssim(b, fused.clone()));
            let loss = f.total.clone() + (sa.total.clone() + sb.total.clone()) * c.ssim_weight as f32;
            (loss, sa, sb)
        } else {
            let detached = fused.clone().detach();
            (f.total.clone(), ssim(a.detach(), detached.clone()), ssim(b.detach(), detached))
        };
        let terms = [
            ("loss_in", &f.intensity),
            ("loss_grad", &f.gradient),
            ("loss_in_grad", &f.total),
            ("lplssimA", &ssim_a.total),
            ("lplssimB", &ssim_b.total),
            ("loss", &loss),
        ];
        let logged = terms.iter().map(|(k, t)| (k.to_string(), scalar(t) as f64)).collect();
        (loss, logged, fused.detach())
    }

    /// One optimisation step on a batch: `a`, `b` `B×1×H×W` in [0, 1], `text` `B×T×768` (or
    /// `1×T×768`, shared by the whole batch).
    pub fn step(&mut self, a: Tensor<4>, b: Tensor<4>, text: Tensor<3>) -> FilmStepReport {
        let a = a.to_device(&self.device);
        let b = b.to_device(&self.device);
        let text = batch_text(text.to_device(&self.device), a.dims()[0]);
        let (loss, losses, fused) = self.objective(a, b, text);
        let grads = loss.backward();
        let group = [ParamGroup { name: GROUP, prefix: "", clip: None }];
        let updated = update(self.net.clone(), &grads, &group, &mut self.optim);
        self.net = updated.net;
        let report = StepReport { losses, groups: updated.groups, stage: String::new() };
        FilmStepReport { report, fused, gradients: updated.gradients }
    }

    /// The fused image (sigmoid output, before any min-max) of `a` and `b` with the current
    /// weights, without autodiff, in the memory-saving evaluation.
    pub fn fuse(&self, a: Tensor<4>, b: Tensor<4>, text: Tensor<3>) -> Tensor<4> {
        let plain = self.device.clone().without_autodiff();
        let net = self.net.valid().with_low_memory(true);
        let text = batch_text(text.to_device(&plain), a.dims()[0]);
        net.forward(a.to_device(&plain), b.to_device(&plain), text)
    }
}

/// `text` for a batch of `n`: as is, or a `1×T×768` repeated `n` times.
///
/// # Panics
/// If `text` holds neither 1 nor `n` samples.
fn batch_text(text: Tensor<3>, n: usize) -> Tensor<3> {
    let tb = text.dims()[0];
    if tb == n {
        text
    } else {
        assert_eq!(tb, 1, "text features for {tb} samples, images for {n}");
        text.repeat_dim(0, n)
    }
}

/// `(a, b)` planes (a = infrared/MRI/over-exposed/near focus) with text, as
/// [`crate::prepare_film::prepare_film`] writes them.
impl Trainer for FilmTrainer {
    fn model(&self) -> &'static str {
        "film"
    }

    crate::trainer_state!(FilmConfig);

    fn schedule(&self) -> Schedule {
        Schedule { epochs: self.config.epochs, batch: self.config.batch, drop_last: self.config.drop_last }
    }

    fn inputs(&self) -> Inputs {
        Inputs { sources: 2, text: true, names: "image A (infrared/MRI/…), image B (visible/…)" }
    }

    fn step(&mut self, _epoch: usize, _global_step: u64, batch: &Batch) -> StepReport {
        let text = batch.text.clone().expect("the run loop checks that FILM batches carry text");
        FilmTrainer::step(self, batch.planes[0].clone(), batch.planes[1].clone(), text).report
    }

    fn weights(&self) -> BTreeMap<String, mmif_io::TensorData> {
        weights::state_dict(&self.net)
    }

    fn load_weights(&mut self, sd: &StateDict) -> Result<(), LoadError> {
        self.net =
            weights::load(Film::new(&self.device), sd, &self.device)?.with_low_memory(false).set_require_grad(true);
        Ok(())
    }

    fn panel(&self, batch: &Batch) -> Vec<Tensor<4>> {
        let (a, b) = (batch.planes[0].clone(), batch.planes[1].clone());
        let text = batch.text.clone().expect("the run loop checks that FILM batches carry text");
        let fused = self.fuse(a.clone(), b.clone(), text);
        let plain = fused.device();
        vec![a.to_device(&plain), b.to_device(&plain), fused]
    }
}
