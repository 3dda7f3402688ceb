//! EMMA's two training procedures, as the official scripts do them.
//!
//! * [`PseudoSensorTrainer`] — `train_AiAv.py`: a UNet5 pseudo-sensor (`Ai`: fused image →
//!   infrared-like, `Av`: fused image → visible-like) in train mode (BatchNorm on batch
//!   statistics, running statistics updated with momentum 0.1), `MSE(A(input), target)`, one
//!   Adam (lr 1e-4, no weight decay, no clipping), StepLR(10, 0.5) per epoch; batch 64, 40
//!   epochs. The data are patches of fusion results of other methods (`input`) paired with the
//!   infrared (for `Ai`) or visible (for `Av`) source patch (`target`).
//! * [`EmmaTrainer`] — `train_Fusion.py`: the U-Fuser `U` with the two pseudo-sensors frozen in
//!   eval mode. With `F = U(ir, vis)` and `Ft = T(F)` the transformed batch
//!   (`[F, shifts…, rotations…, flips…]`, see [`crate::transforms`]),
//!
//!   ```text
//!   loss = l(Av(F), vis) + l(Ai(F), ir) + α·l(Ft, U(Ai(Ft), Av(Ft)))
//!   l(p, t) = L1(p, t) + L1(SpatialGradient(p), SpatialGradient(t))
//!   ```
//!
//!   α = 0.1; nothing is detached: the equivariance term back-propagates through both `Ft`
//!   (hence `F`) and the second U-Fuser pass. The pseudo-sensors' own parameters are not trained
//!   (they are not given to the optimiser; here they do not even require gradients, which
//!   changes nothing but the work done). One Adam (lr 1e-4), no clipping, StepLR(20, 0.5) per
//!   epoch; batch 4, 120 epochs; 3 shifts, 3 rotations (10°, 130°, 250°), 3 flips.
//!
//! # Randomness and resuming
//!
//! The only random quantity of a step is the shift draw of the transforms. It comes from
//! [`crate::transforms::shift_stream`]`(config.seed, steps)`, where `steps` is the number of
//! optimisation steps already taken ([`EmmaTrainer::steps`], to be saved with a checkpoint and
//! restored on resume): the shifts of step `k` are a pure function of `(seed, k)`, so a resumed
//! run draws what the uninterrupted run would have drawn.
//!
//! # State dicts
//!
//! Parameter and buffer keys are the official ones (`V_en_1.embed.weight`,
//! `down1.conv.1.running_mean`, …). The pseudo-sensor's [`PseudoSensorTrainer::state_dict`] also
//! carries each BatchNorm's `num_batches_tracked` (int64, shape `[]`) as PyTorch saves it; every
//! BatchNorm of UNet5 sees every training forward pass, so one counter serves them all.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use mmif_io::{DType, TensorData};
use mmif_nn::emma::{EmmaError, Tiling, UNet5, Ufuser};
use mmif_nn::weights::{self, LoadError, StateDict};
use serde::{Deserialize, Serialize};

use crate::losses::{self, scalar};
use crate::trainer::{Batch, Inputs, Schedule, StepReport, Trainer};
use crate::transforms::{Transforms, shift_stream};
use crate::update::{Optim, ParamGroup, update};

/// The name of the single parameter group of both procedures (the scripts' `model`).
pub const GROUP: &str = "model";

/// EMMA's `loss_fusion`: `L1(pre, target) + L1(SpatialGradient(pre), SpatialGradient(target))`,
/// kornia's normalised Sobel with replicated borders.
pub fn loss_fusion(pre: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let int = losses::l1(pre.clone(), target.clone());
    let grad = losses::l1(losses::spatial_gradient(pre), losses::spatial_gradient(target));
    int + grad
}

/// The single parameter group of both procedures: every parameter of the trained network.
fn model_group(clip: Option<f64>) -> [ParamGroup<'static>; 1] {
    [ParamGroup { name: GROUP, prefix: "", clip }]
}

/// Which pseudo-sensor `train_AiAv.py` trains (its `stat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sensor {
    /// `Ai`: fused image → infrared; the targets are infrared patches.
    #[default]
    Ai,
    /// `Av`: fused image → visible; the targets are visible patches.
    Av,
}

/// The hyper-parameters of `train_AiAv.py` (its values are the defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PseudoSensorConfig {
    pub sensor: Sensor,
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub batch: usize,
    pub step_size: u64,
    pub gamma: f64,
    /// Global gradient-norm clipping; the script does not clip (`None`).
    pub clip_grad_norm: Option<f64>,
    /// The script's data: 128×128 patches at stride 200.
    pub patch: usize,
}

impl Default for PseudoSensorConfig {
    fn default() -> Self {
        Self {
            sensor: Sensor::Ai,
            epochs: 40,
            lr: 1e-4,
            weight_decay: 0.0,
            batch: 64,
            step_size: 10,
            gamma: 0.5,
            clip_grad_norm: None,
            patch: 128,
        }
    }
}

/// What one pseudo-sensor step computed: the common report (`loss`, the MSE; the gradients of
/// [`GROUP`]) and the sensor's output.
#[derive(Clone, Debug)]
pub struct PseudoSensorReport {
    pub report: StepReport,
    /// `A(input)` of the step (train-mode BatchNorm), detached.
    pub output: Tensor<4>,
}

crate::step_report!(PseudoSensorReport);

/// A UNet5 pseudo-sensor with its optimiser and scheduler.
pub struct PseudoSensorTrainer {
    pub net: UNet5,
    pub config: PseudoSensorConfig,
    /// One group, [`GROUP`].
    pub optim: Optim,
    /// BatchNorm's `num_batches_tracked`: training forward passes so far (every BatchNorm of
    /// UNet5 sees each one).
    pub num_batches_tracked: u64,
    device: Device,
}

impl PseudoSensorTrainer {
    /// A trainer of `net`, moved to `device` (normally `mmif_nn::cpu().autodiff()`).
    pub fn new(net: UNet5, config: PseudoSensorConfig, device: &Device) -> Self {
        let net = net.fork(device).set_require_grad(true);
        Self {
            net,
            optim: Optim::new(&[GROUP], config.lr, config.weight_decay, config.step_size, config.gamma),
            config,
            num_batches_tracked: 0,
            device: device.clone(),
        }
    }

    /// A trainer starting from `sd` (official UNet5 keys; `num_batches_tracked`, when present,
    /// restores the counter: the largest value found).
    pub fn from_state_dict(sd: &StateDict, config: PseudoSensorConfig, device: &Device) -> Result<Self, LoadError> {
        let net = weights::load(UNet5::new(device), sd, device)?;
        let mut t = Self::new(net, config, device);
        t.num_batches_tracked = sd
            .iter()
            .filter(|(k, _)| k.ends_with("num_batches_tracked"))
            .filter_map(|(_, v)| v.data.first().map(|&n| n as u64))
            .max()
            .unwrap_or(0);
        Ok(t)
    }

    /// One step on a batch (`B×1×H×W` each, sides multiples of 16): train-mode forward
    /// (updating the BatchNorm running statistics), `MSE(A(input), target)`, Adam.
    pub fn step(&mut self, input: Tensor<4>, target: Tensor<4>) -> PseudoSensorReport {
        let input = input.to_device(&self.device);
        let target = target.to_device(&self.device);
        let out = self.net.forward_train(input);
        self.num_batches_tracked += 1;
        let loss = losses::mse(out.clone(), target);
        let losses = BTreeMap::from([("loss".to_string(), scalar(&loss) as f64)]);
        let grads = loss.backward();
        let updated = update(self.net.clone(), &grads, &model_group(self.config.clip_grad_norm), &mut self.optim);
        self.net = updated.net;
        let report = StepReport { losses, groups: updated.groups, stage: String::new() };
        PseudoSensorReport { report, output: out.detach() }
    }

    /// The full state dict as PyTorch saves it: parameters, running statistics, and each
    /// BatchNorm's `num_batches_tracked` (int64 scalar).
    pub fn state_dict(&self) -> StateDict {
        let mut sd = weights::state_dict(&self.net);
        let counters: Vec<String> = sd
            .keys()
            .filter_map(|k| k.strip_suffix("running_mean").map(|p| format!("{p}num_batches_tracked")))
            .collect();
        for k in counters {
            sd.insert(k, TensorData::new(Vec::new(), DType::I64, vec![self.num_batches_tracked as f32]));
        }
        sd
    }

    /// The pseudo-sensor's output (eval mode, running statistics) without autodiff; any size of
    /// at least 16×16 (reflect-padded to a multiple of 16 and cropped back).
    pub fn sense(&self, x: Tensor<4>) -> Result<Tensor<4>, EmmaError> {
        let plain = self.device.clone().without_autodiff();
        self.net.valid().sense(x.to_device(&plain))
    }
}

/// The hyper-parameters of `train_Fusion.py` (its values are the defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmmaConfig {
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub batch: usize,
    pub step_size: u64,
    pub gamma: f64,
    /// Weight of the equivariance term.
    pub alpha: f64,
    /// `Transformer(shift_num, rotate_num, flip_num)`.
    pub shift_num: usize,
    pub rotate_num: usize,
    pub flip_num: usize,
    /// Global gradient-norm clipping; the script does not clip (`None`).
    pub clip_grad_norm: Option<f64>,
    /// Seed of the shift draws (see the module documentation).
    pub seed: u64,
    /// The script's data: 128×128 patches at stride 200.
    pub patch: usize,
}

impl Default for EmmaConfig {
    fn default() -> Self {
        Self {
            epochs: 120,
            lr: 1e-4,
            weight_decay: 0.0,
            batch: 4,
            step_size: 20,
            gamma: 0.5,
            alpha: 0.1,
            shift_num: 3,
            rotate_num: 3,
            flip_num: 3,
            clip_grad_norm: None,
            seed: 0,
            patch: 128,
        }
    }
}

/// What one U-Fuser step computed: the common report — `loss_v = l(Av(F), vis)`,
/// `loss_i = l(Ai(F), ir)`, `loss_equivariant = l(Ft, U(Ai(Ft), Av(Ft)))`,
/// `loss = loss_v + loss_i + α·loss_equivariant`; the gradients of [`GROUP`] — and the images.
#[derive(Clone, Debug)]
pub struct EmmaStepReport {
    pub report: StepReport,
    /// The transforms applied.
    pub transforms: Transforms,
    /// `F = U(ir, vis)`, detached.
    pub fused: Tensor<4>,
    /// `Ft`, the transformed batch, detached.
    pub transformed: Tensor<4>,
}

crate::step_report!(EmmaStepReport);

/// The U-Fuser with the frozen pseudo-sensors, its optimiser and scheduler.
pub struct EmmaTrainer {
    pub net: Ufuser,
    /// Frozen `Ai` (eval mode).
    pub ai: UNet5,
    /// Frozen `Av` (eval mode).
    pub av: UNet5,
    pub config: EmmaConfig,
    /// One group, [`GROUP`].
    pub optim: Optim,
    /// Optimisation steps taken (the shift draws' counter; save and restore it on resume).
    pub steps: u64,
    device: Device,
}

impl EmmaTrainer {
    /// A trainer of `net` with the pseudo-sensors `ai`, `av`, all moved to `device` (normally
    /// `mmif_nn::cpu().autodiff()`); only `net`'s parameters require gradients.
    pub fn new(net: Ufuser, ai: UNet5, av: UNet5, config: EmmaConfig, device: &Device) -> Self {
        let net = net.fork(device).set_require_grad(true);
        let ai = ai.fork(device).set_require_grad(false);
        let av = av.fork(device).set_require_grad(false);
        Self {
            net,
            ai,
            av,
            optim: Optim::new(&[GROUP], config.lr, config.weight_decay, config.step_size, config.gamma),
            config,
            steps: 0,
            device: device.clone(),
        }
    }

    /// A trainer from state dicts with the official keys: the U-Fuser (`EMMA.pth`) and the two
    /// pseudo-sensors (`Ai.pth`, `Av.pth`).
    pub fn from_state_dict(
        ufuser: &StateDict,
        ai: &StateDict,
        av: &StateDict,
        config: EmmaConfig,
        device: &Device,
    ) -> Result<Self, LoadError> {
        let net = weights::load(Ufuser::new(device), ufuser, device)?;
        let ai = weights::load(UNet5::new(device), ai, device)?;
        let av = weights::load(UNet5::new(device), av, device)?;
        Ok(Self::new(net, ai, av, config, device))
    }

    /// The transforms of the next step for `h×w` patches: shifts drawn from
    /// `shift_stream(config.seed, steps)`, the official angles and flips.
    pub fn next_transforms(&self, h: usize, w: usize) -> Transforms {
        let c = &self.config;
        let mut rng = shift_stream(c.seed, self.steps);
        Transforms::official(c.shift_num, c.rotate_num, c.flip_num, h, w, &mut rng)
    }

    /// One step on a batch (`B×1×H×W` each, sides multiples of 16) with the transforms of
    /// [`EmmaTrainer::next_transforms`].
    pub fn step(&mut self, ir: Tensor<4>, vis: Tensor<4>) -> EmmaStepReport {
        let [_, _, h, w] = ir.dims();
        let t = self.next_transforms(h, w);
        self.step_with(ir, vis, &t)
    }

    /// One step with the given transforms (a fixture's, or a caller's own draw).
    pub fn step_with(&mut self, ir: Tensor<4>, vis: Tensor<4>, transforms: &Transforms) -> EmmaStepReport {
        let ir = ir.to_device(&self.device);
        let vis = vis.to_device(&self.device);
        let fused = self.net.forward(ir.clone(), vis.clone());
        let ft = transforms.apply(fused.clone());
        let ft_caret = self.net.forward(self.ai.forward(ft.clone()), self.av.forward(ft.clone()));
        let loss_v = loss_fusion(self.av.forward(fused.clone()), vis);
        let loss_i = loss_fusion(self.ai.forward(fused.clone()), ir);
        let loss_eq = loss_fusion(ft.clone(), ft_caret);
        let loss = loss_v.clone() + loss_i.clone() + loss_eq.clone() * self.config.alpha;
        let terms = [("loss_v", &loss_v), ("loss_i", &loss_i), ("loss_equivariant", &loss_eq), ("loss", &loss)];
        let losses = terms.iter().map(|(k, t)| (k.to_string(), scalar(t) as f64)).collect();
        let grads = loss.backward();
        let updated = update(self.net.clone(), &grads, &model_group(self.config.clip_grad_norm), &mut self.optim);
        self.net = updated.net;
        self.steps += 1;
        EmmaStepReport {
            report: StepReport { losses, groups: updated.groups, stage: String::new() },
            transforms: transforms.clone(),
            fused: fused.detach(),
            transformed: ft.detach(),
        }
    }

    /// The U-Fuser's state dict (official keys, as `EMMA.pth`).
    pub fn state_dict(&self) -> StateDict {
        weights::state_dict(&self.net)
    }

    /// The fused image of `ir` and `vis` with the current weights, without autodiff, by the
    /// official test procedure's tiling (one pass when both sides are multiples of 32).
    pub fn fuse(&self, ir: Tensor<4>, vis: Tensor<4>) -> Result<Tensor<4>, EmmaError> {
        let plain = self.device.clone().without_autodiff();
        self.net.valid().fuse(ir.to_device(&plain), vis.to_device(&plain), Tiling::Official)
    }
}

/// `(input, target)` planes of a pseudo-sensor dataset (`mmif prepare --fused … --ir|--vis …`).
impl Trainer for PseudoSensorTrainer {
    crate::trainer_state!(PseudoSensorConfig);

    fn model(&self) -> &'static str {
        match self.config.sensor {
            Sensor::Ai => "emma-ai",
            Sensor::Av => "emma-av",
        }
    }

    fn schedule(&self) -> Schedule {
        Schedule { epochs: self.config.epochs, batch: self.config.batch, drop_last: false }
    }

    fn inputs(&self) -> Inputs {
        let names = match self.config.sensor {
            Sensor::Ai => "fused image, infrared target",
            Sensor::Av => "fused image, visible target",
        };
        Inputs { sources: 2, text: false, names }
    }

    fn step(&mut self, _epoch: usize, _global_step: u64, batch: &Batch) -> StepReport {
        PseudoSensorTrainer::step(self, batch.planes[0].clone(), batch.planes[1].clone()).report
    }

    fn weights(&self) -> BTreeMap<String, mmif_io::TensorData> {
        self.state_dict()
    }

    fn load_weights(&mut self, sd: &StateDict) -> Result<(), LoadError> {
        *self = Self::from_state_dict(sd, self.config.clone(), &self.device.clone())?.with_optim_of(self);
        Ok(())
    }

    fn panel(&self, batch: &Batch) -> Vec<Tensor<4>> {
        let (input, target) = (batch.planes[0].clone(), batch.planes[1].clone());
        let plain = self.device.clone().without_autodiff();
        let out = self.net.valid().forward(input.clone().to_device(&plain));
        vec![input.to_device(&plain), target.to_device(&plain), out]
    }
}

impl PseudoSensorTrainer {
    /// `self` with the optimisers and schedulers of `other`.
    fn with_optim_of(mut self, other: &Self) -> Self {
        self.optim = other.optim.clone();
        self
    }
}

/// `(visible, infrared)` planes, as `mmif prepare` writes them. The step counter that seeds
/// the shifts is the run's global step, so a resumed run draws the same transforms.
impl Trainer for EmmaTrainer {
    crate::trainer_state!(EmmaConfig);

    fn model(&self) -> &'static str {
        "emma"
    }

    fn schedule(&self) -> Schedule {
        Schedule { epochs: self.config.epochs, batch: self.config.batch, drop_last: false }
    }

    fn inputs(&self) -> Inputs {
        Inputs { sources: 2, text: false, names: "visible, infrared" }
    }

    fn step(&mut self, _epoch: usize, global_step: u64, batch: &Batch) -> StepReport {
        self.steps = global_step;
        EmmaTrainer::step(self, batch.planes[1].clone(), batch.planes[0].clone()).report
    }

    fn weights(&self) -> BTreeMap<String, mmif_io::TensorData> {
        self.state_dict()
    }

    fn load_weights(&mut self, sd: &StateDict) -> Result<(), LoadError> {
        self.net = weights::load(Ufuser::new(&self.device), sd, &self.device)?.set_require_grad(true);
        Ok(())
    }

    fn panel(&self, batch: &Batch) -> Vec<Tensor<4>> {
        let (vis, ir) = (batch.planes[0].clone(), batch.planes[1].clone());
        let plain = self.device.clone().without_autodiff();
        let net = self.net.valid();
        let fused = net.forward(ir.clone().to_device(&plain), vis.clone().to_device(&plain));
        vec![ir.to_device(&plain), vis.to_device(&plain), fused]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    #[test]
    fn pseudo_sensor_state_round_trips_and_schedules() {
        let dev = mmif_nn::cpu().autodiff();
        let mut t = PseudoSensorTrainer::new(UNet5::new(&dev), PseudoSensorConfig::default(), &dev);
        let before = t.state_dict();
        assert_eq!(before["down1.conv.1.num_batches_tracked"].data, vec![0.0]);
        let x = Tensor::<4>::random([2, 1, 16, 16], Distribution::Uniform(0.0, 1.0), &dev);
        let report = t.step(x.clone(), x);
        assert!(report.loss().is_finite());
        let sd = t.state_dict();
        assert_eq!(sd["up1.conv.4.num_batches_tracked"].dtype, DType::I64);
        assert_eq!(sd["up1.conv.4.num_batches_tracked"].data, vec![1.0]);
        assert_ne!(sd["down1.conv.1.running_mean"].data, before["down1.conv.1.running_mean"].data);
        assert_ne!(sd["down1.conv.0.weight"].data, before["down1.conv.0.weight"].data);
        let again = PseudoSensorTrainer::from_state_dict(&sd, t.config.clone(), &dev).expect("reload");
        assert_eq!(again.num_batches_tracked, 1);
        assert_eq!(again.state_dict()["down1.conv.1.running_var"].data, sd["down1.conv.1.running_var"].data);
        for epoch in 0..10 {
            assert_eq!(t.lr(), 1e-4, "epoch {epoch}");
            t.end_epoch(epoch);
        }
        assert_eq!(t.lr(), 5e-5);
    }

    #[test]
    fn emma_shifts_follow_the_step_counter() {
        let dev = mmif_nn::cpu().autodiff();
        let config = EmmaConfig { seed: 11, ..EmmaConfig::default() };
        let mut t = EmmaTrainer::new(Ufuser::new(&dev), UNet5::new(&dev), UNet5::new(&dev), config, &dev);
        let first = t.next_transforms(32, 32);
        assert_eq!((first.shifts.len(), first.angles.clone(), first.flips), (3, vec![10.0, 130.0, 250.0], 3));
        assert_eq!(first, t.next_transforms(32, 32), "no step, same draw");
        let v: Vec<f32> = (0..32 * 32).map(|i| (i % 17) as f32 / 17.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(v, [1, 1, 32, 32]), &dev);
        let report = t.step(x.clone(), x);
        assert_eq!(report.transforms, first);
        assert_eq!(report.transformed.dims(), [10, 1, 32, 32]);
        assert_eq!(t.steps, 1);
        // A resumed trainer with the same counter draws what this one draws next.
        let mut resumed =
            EmmaTrainer::new(Ufuser::new(&dev), UNet5::new(&dev), UNet5::new(&dev), t.config.clone(), &dev);
        resumed.steps = t.steps;
        assert_eq!(resumed.next_transforms(32, 32), t.next_transforms(32, 32));
        assert_ne!(t.next_transforms(32, 32), first);
        for epoch in 0..20 {
            t.end_epoch(epoch);
        }
        assert_eq!(t.lr(), 5e-5);
    }
}
