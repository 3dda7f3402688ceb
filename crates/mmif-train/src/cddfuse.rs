//! CDDFuse's two-phase training, as the official `train.py` does it.
//!
//! * Phase I (epochs `0..epoch_gap`): the encoder and decoder reconstruct each source
//!   (`decoder(x, B(x), D(x))`, the source added back before the sigmoid) with
//!   `5·SSIMLoss(11) + MSE` per source, the decomposition loss `cc_D² / (1.01 + cc_B)` (×2) and
//!   `5·L1(∇vis, ∇vis_hat)` with kornia's `SpatialGradient`. Encoder and decoder are clipped
//!   to a global gradient norm of 0.01 each and stepped by their own Adam.
//! * Phase II: the fuse layers join (`BaseFuseLayer` on `B_vis + B_ir`, `DetailFuseLayer` with
//!   one INN node on `D_vis + D_ir`); the loss is the fusion loss plus 2× the decomposition loss;
//!   four modules, four clips, four Adams.
//!
//! After every epoch the encoder's and decoder's StepLR advance; the fuse layers' only from
//! the first phase-II epoch on; then every learning rate is floored at `lr_floor`.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use mmif_nn::cddfuse::CddFuse;
use mmif_nn::weights::{self, LoadError, StateDict};
use serde::{Deserialize, Serialize};

use crate::losses::{self, scalar};
use crate::trainer::{Batch, Inputs, Schedule, StepReport, Trainer};
use crate::update::{Optim, ParamGroup, update};

/// The four modules of CDDFuse, each with its own optimiser and clipping, in `train.py` order.
pub const GROUPS: [&str; 4] = ["DIDF_Encoder", "DIDF_Decoder", "BaseFuseLayer", "DetailFuseLayer"];

/// The modules trained in phase I.
pub const PHASE1_GROUPS: [&str; 2] = ["DIDF_Encoder", "DIDF_Decoder"];

/// Which phase of the official schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Reconstruction of each source by the encoder-decoder.
    One,
    /// Fusion with the fuse layers.
    Two,
}

impl Phase {
    pub fn groups(self) -> &'static [&'static str] {
        match self {
            Phase::One => &PHASE1_GROUPS,
            Phase::Two => &GROUPS,
        }
    }
}

/// The hyper-parameters of `train.py` (its values are the defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CddFuseConfig {
    pub epochs: usize,
    /// Epochs of phase I.
    pub epoch_gap: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub batch: usize,
    pub clip_grad_norm: f64,
    pub step_size: u64,
    pub gamma: f64,
    /// Learning rates at or below this are set to it after every epoch.
    pub lr_floor: f64,
    pub coeff_mse_vf: f64,
    pub coeff_mse_if: f64,
    pub coeff_decomp: f64,
    pub coeff_tv: f64,
    pub ssim_window: usize,
}

impl Default for CddFuseConfig {
    fn default() -> Self {
        Self {
            epochs: 120,
            epoch_gap: 40,
            lr: 1e-4,
            weight_decay: 0.0,
            batch: 8,
            clip_grad_norm: 0.01,
            step_size: 20,
            gamma: 0.5,
            lr_floor: 1e-6,
            coeff_mse_vf: 1.0,
            coeff_mse_if: 1.0,
            coeff_decomp: 2.0,
            coeff_tv: 5.0,
            ssim_window: 11,
        }
    }
}

impl CddFuseConfig {
    /// The phase of epoch `epoch` (0-based).
    pub fn phase(&self, epoch: usize) -> Phase {
        if epoch < self.epoch_gap { Phase::One } else { Phase::Two }
    }
}

/// What one CDDFuse step computed: the common report (losses, per-module gradients, the phase
/// as its stage) and, in phase II, the fused batch.
#[derive(Clone, Debug)]
pub struct CddFuseStepReport {
    pub report: StepReport,
    pub phase: Phase,
    /// Phase II: the fused batch (decoder output), detached.
    pub fused: Option<Tensor<4>>,
}

crate::step_report!(CddFuseStepReport);

/// The network with its four optimisers and schedulers.
pub struct CddFuseTrainer {
    pub net: CddFuse,
    pub config: CddFuseConfig,
    /// One optimiser and scheduler per module ([`GROUPS`]).
    pub optim: Optim,
    device: Device,
}

impl CddFuseTrainer {
    /// A trainer of `net`, which is moved to `device` (normally `mmif_nn::cpu().autodiff()`)
    /// with every parameter requiring gradients.
    pub fn new(net: CddFuse, config: CddFuseConfig, device: &Device) -> Self {
        let net = net.fork(device).set_require_grad(true);
        let optim = Optim::new(&GROUPS, config.lr, config.weight_decay, config.step_size, config.gamma);
        Self { net, config, optim, device: device.clone() }
    }

    /// A trainer starting from the weights `sd` (canonical keys `DIDF_Encoder.…`).
    pub fn from_state_dict(sd: &StateDict, config: CddFuseConfig, device: &Device) -> Result<Self, LoadError> {
        let net = weights::load(CddFuse::new(device), sd, device)?;
        Ok(Self::new(net, config, device))
    }

    /// The learning rate of module `group`.
    pub fn lr_of(&self, group: &str) -> f64 {
        self.optim.lr(group)
    }

    /// One optimisation step of `phase` on a batch (`B×1×H×W` each, in [0, 1]).
    pub fn step(&mut self, phase: Phase, vis: Tensor<4>, ir: Tensor<4>) -> CddFuseStepReport {
        let vis = vis.to_device(&self.device);
        let ir = ir.to_device(&self.device);
        let (loss, losses, fused) = match phase {
            Phase::One => self.phase1_loss(vis, ir),
            Phase::Two => self.phase2_loss(vis, ir),
        };
        let grads = loss.backward();
        let prefixes: Vec<String> = phase.groups().iter().map(|g| format!("{g}.")).collect();
        let clip = Some(self.config.clip_grad_norm);
        let groups: Vec<ParamGroup<'_>> =
            phase.groups().iter().zip(&prefixes).map(|(&name, prefix)| ParamGroup { name, prefix, clip }).collect();
        let updated = update(self.net.clone(), &grads, &groups, &mut self.optim);
        self.net = updated.net;
        let stage = match phase {
            Phase::One => "I",
            Phase::Two => "II",
        };
        CddFuseStepReport { report: StepReport { losses, groups: updated.groups, stage: stage.into() }, phase, fused }
    }

    /// `decomp = cc_D² / (1.01 + cc_B)`, returning `(decomp, cc_B, cc_D)`.
    fn decomposition(vb: Tensor<4>, ib: Tensor<4>, vd: Tensor<4>, id: Tensor<4>) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
        let cc_b = losses::cc(vb, ib);
        let cc_d = losses::cc(vd, id);
        (cc_d.clone().square() / (cc_b.clone() + 1.01), cc_b, cc_d)
    }

    fn ssim_mse(&self, x: Tensor<4>, y: Tensor<4>) -> Tensor<1> {
        losses::ssim_loss(x.clone(), y.clone(), self.config.ssim_window) * 5.0 + losses::mse(x, y)
    }

    fn phase1_loss(&self, vis: Tensor<4>, ir: Tensor<4>) -> (Tensor<1>, BTreeMap<String, f64>, Option<Tensor<4>>) {
        let c = &self.config;
        let enc = &self.net.DIDF_Encoder;
        let v = enc.forward(vis.clone());
        let i = enc.forward(ir.clone());
        let (vis_hat, _) = self.net.DIDF_Decoder.forward(Some(vis.clone()), v.base.clone(), v.detail.clone());
        let (ir_hat, _) = self.net.DIDF_Decoder.forward(Some(ir.clone()), i.base.clone(), i.detail.clone());
        let (decomp, cc_b, cc_d) = Self::decomposition(v.base, i.base, v.detail, i.detail);
        let mse_v = self.ssim_mse(vis.clone(), vis_hat.clone());
        let mse_i = self.ssim_mse(ir, ir_hat);
        let grad = losses::l1(losses::spatial_gradient(vis), losses::spatial_gradient(vis_hat));
        let loss = mse_v.clone() * c.coeff_mse_vf
            + mse_i.clone() * c.coeff_mse_if
            + decomp.clone() * c.coeff_decomp
            + grad.clone() * c.coeff_tv;
        let terms = [
            ("cc_base", &cc_b),
            ("cc_detail", &cc_d),
            ("mse_loss_V", &mse_v),
            ("mse_loss_I", &mse_i),
            ("gradient_loss", &grad),
            ("loss_decomp", &decomp),
            ("loss", &loss),
        ];
        let logged = terms.iter().map(|(k, t)| (k.to_string(), scalar(t) as f64)).collect();
        (loss, logged, None)
    }

    fn phase2_loss(&self, vis: Tensor<4>, ir: Tensor<4>) -> (Tensor<1>, BTreeMap<String, f64>, Option<Tensor<4>>) {
        let c = &self.config;
        let net = &self.net;
        let v = net.DIDF_Encoder.forward(vis.clone());
        let i = net.DIDF_Encoder.forward(ir.clone());
        let fb = net.BaseFuseLayer.forward(i.base.clone() + v.base.clone());
        let fd = net.DetailFuseLayer.forward(i.detail.clone() + v.detail.clone());
        let (fused, _) = net.DIDF_Decoder.forward(Some(vis.clone()), fb, fd);
        let (decomp, cc_b, cc_d) = Self::decomposition(v.base, i.base, v.detail, i.detail);
        let f = losses::fusion_loss(vis.clone(), ir.clone(), fused.clone());
        let loss = f.total.clone() + decomp.clone() * c.coeff_decomp;
        // train.py computes these in phase II without using them; they are logged only.
        let detached = fused.clone().detach();
        let mse_v = self.ssim_mse(vis.detach(), detached.clone());
        let mse_i = self.ssim_mse(ir.detach(), detached.clone());
        let terms = [
            ("cc_base", &cc_b),
            ("cc_detail", &cc_d),
            ("mse_loss_V", &mse_v),
            ("mse_loss_I", &mse_i),
            ("loss_decomp", &decomp),
            ("fusion_loss", &f.total),
            ("loss_in", &f.intensity),
            ("loss_grad", &f.gradient),
            ("loss", &loss),
        ];
        let logged = terms.iter().map(|(k, t)| (k.to_string(), scalar(t) as f64)).collect();
        (loss, logged, Some(detached))
    }

    /// The fused image of `vis` and `ir` with the current weights, without autodiff.
    pub fn fuse(&self, vis: Tensor<4>, ir: Tensor<4>) -> Tensor<4> {
        let plain = self.device.clone().without_autodiff();
        let net = self.net.valid();
        net.forward(vis.to_device(&plain), ir.to_device(&plain), mmif_nn::cddfuse::Residual::Vis)
    }
}

impl Trainer for CddFuseTrainer {
    fn model(&self) -> &'static str {
        "cddfuse"
    }

    crate::trainer_state!(CddFuseConfig);

    fn schedule(&self) -> Schedule {
        Schedule { epochs: self.config.epochs, batch: self.config.batch, drop_last: false }
    }

    fn inputs(&self) -> Inputs {
        Inputs { sources: 2, text: false, names: "visible (or MRI), infrared (or the other modality)" }
    }

    fn step(&mut self, epoch: usize, _global_step: u64, batch: &Batch) -> StepReport {
        let phase = self.config.phase(epoch);
        CddFuseTrainer::step(self, phase, batch.planes[0].clone(), batch.planes[1].clone()).report
    }

    /// The schedulers of `train.py` (the fuse layers' only from the first phase-II epoch on)
    /// and the learning-rate floor.
    fn end_epoch(&mut self, epoch: usize) {
        let phase2 = self.config.phase(epoch) == Phase::Two;
        let optim = &mut self.optim;
        for group in GROUPS {
            if PHASE1_GROUPS.contains(&group) || phase2 {
                let s = optim.schedulers.get_mut(group).expect("a scheduler per group");
                let opt = optim.optimizers.get_mut(group).expect("an optimizer per group");
                opt.lr = s.step(opt.lr);
            }
        }
        for opt in optim.optimizers.values_mut() {
            if opt.lr <= self.config.lr_floor {
                opt.lr = self.config.lr_floor;
            }
        }
    }

    fn weights(&self) -> BTreeMap<String, mmif_io::TensorData> {
        weights::state_dict(&self.net)
    }

    fn load_weights(&mut self, sd: &StateDict) -> Result<(), LoadError> {
        self.net = weights::load(CddFuse::new(&self.device), sd, &self.device)?.set_require_grad(true);
        Ok(())
    }

    fn panel(&self, batch: &Batch) -> Vec<Tensor<4>> {
        let (vis, ir) = (batch.planes[0].clone(), batch.planes[1].clone());
        let fused = self.fuse(vis.clone(), ir.clone());
        let plain = fused.device();
        vec![vis.to_device(&plain), ir.to_device(&plain), fused]
    }
}
