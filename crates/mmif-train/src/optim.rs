//! Optimisation with PyTorch's exact arithmetic: `torch.optim.Adam`, `StepLR`, and
//! `torch.nn.utils.clip_grad_norm_` (one L2 norm over all of a module's gradients — burn's own
//! clipping is per tensor, so it is written here by hand).
//!
//! Parameters and gradients are handled as plain `f32` vectors keyed by their state-dict key
//! (see [`mmif_nn::weights`]): [`gradients`] reads them out of a burn module after a backward
//! pass, the optimiser updates the values, and [`set_params`] writes them back as fresh leaves
//! that require gradients. The state is therefore trivially serialisable for checkpoints.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor, TensorData};
use mmif_nn::weights::{tensor_to_vec, torch_key};
use serde::{Deserialize, Serialize};

/// A tensor as a shape and row-major `f32` values.
#[derive(Clone, Debug, PartialEq)]
pub struct Values {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The gradient of every parameter of `module` that has one in `grads`, by state-dict key.
pub fn gradients<M: Module>(module: &M, grads: &Gradients) -> BTreeMap<String, Values> {
    struct Collect<'a> {
        path: Vec<String>,
        grads: &'a Gradients,
        out: BTreeMap<String, Values>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = param.val().grad(self.grads) {
                let shape = g.dims().to_vec();
                self.out.insert(torch_key(&self.path), Values { shape, data: tensor_to_vec(g) });
            }
        }
    }
    let mut c = Collect { path: Vec::new(), grads, out: BTreeMap::new() };
    module.visit(&mut c);
    c.out
}

/// The values of every parameter of `module`, by state-dict key.
pub fn params<M: Module>(module: &M) -> BTreeMap<String, Values> {
    mmif_nn::weights::state_dict(module)
        .into_iter()
        .map(|(k, t)| (k, Values { shape: t.shape, data: t.data }))
        .collect()
}

/// Replaces the parameters named in `updates` by the given values, as new leaves on the same
/// device that require gradients (when the device has autodiff). Others are left alone.
///
/// # Panics
/// If a value's length does not match its parameter's shape.
pub fn set_params<M: Module>(module: M, updates: &mut BTreeMap<String, Vec<f32>>) -> M {
    struct Apply<'a> {
        path: Vec<String>,
        updates: &'a mut BTreeMap<String, Vec<f32>>,
    }
    impl ModuleMapper for Apply<'_> {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some(values) = self.updates.remove(&torch_key(&self.path)) else { return param };
            param.map(move |t| {
                let device = t.device();
                let shape: [usize; D] = t.dims();
                let t = Tensor::from_data(TensorData::new(values, shape), &device);
                if device.is_autodiff() { t.require_grad() } else { t }
            })
        }
    }
    module.map(&mut Apply { path: Vec::new(), updates })
}

/// The L2 norm of `v`, accumulated in f64.
pub fn l2_norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt()
}

/// What [`clip_grad_norm`] measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClipReport {
    /// The global L2 norm before clipping (`clip_grad_norm_`'s return value, an f32).
    pub total_norm: f32,
    /// The factor the gradients were multiplied by (1 when not clipped).
    pub coef: f32,
}

/// `torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=2)`: the norm of the vector of
/// per-tensor L2 norms; every gradient is scaled by `max_norm / (total + 1e-6)` when that is
/// below 1. Computed in f32 like PyTorch (per-tensor norms accumulated in f64, then rounded).
pub fn clip_grad_norm<'a>(grads: impl IntoIterator<Item = &'a mut Vec<f32>>, max_norm: f64) -> ClipReport {
    let mut grads: Vec<&mut Vec<f32>> = grads.into_iter().collect();
    let norms: Vec<f32> = grads.iter().map(|g| l2_norm(g) as f32).collect();
    let total = norms.iter().map(|&n| (n as f64) * (n as f64)).sum::<f64>().sqrt() as f32;
    let coef = max_norm as f32 / (total + 1e-6f32);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            g.iter_mut().for_each(|v| *v *= coef);
        }
    }
    ClipReport { total_norm: total, coef: coef.min(1.0) }
}

/// `scheduler.step()` of every optimiser that has a scheduler (the end of an epoch).
pub fn step_schedulers(optimizers: &mut BTreeMap<String, Adam>, schedulers: &mut BTreeMap<String, StepLr>) {
    for (group, s) in schedulers.iter_mut() {
        let opt = optimizers.get_mut(group).expect("an optimizer per scheduler");
        opt.lr = s.step(opt.lr);
    }
}

/// Hyper-parameters of [`Adam`] (PyTorch's defaults apart from the learning rate).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamConfig {
    pub fn new(lr: f64) -> Self {
        Self { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }

    /// [`AdamConfig::new`] with L2 weight decay `weight_decay`.
    pub fn with_weight_decay(lr: f64, weight_decay: f64) -> Self {
        Self { weight_decay, ..Self::new(lr) }
    }
}

/// Adam's moments of one parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamState {
    pub step: u64,
    pub exp_avg: Vec<f32>,
    pub exp_avg_sq: Vec<f32>,
}

/// `torch.optim.Adam` (single-tensor CPU path, `amsgrad=False`, `maximize=False`):
///
/// ```text
/// g  ← g + wd·p                              (if wd ≠ 0)
/// m  ← m + (1-β₁)(g - m)                      (lerp)
/// v  ← β₂v + (1-β₂)·g·g
/// p  ← p - (lr/(1-β₁ᵗ))·m / (√v / √(1-β₂ᵗ) + ε)
/// ```
/// with the element-wise arithmetic in f32 and the bias corrections in f64, as PyTorch does.
/// `lr` is the current learning rate (a scheduler may change it).
#[derive(Clone, Debug)]
pub struct Adam {
    pub config: AdamConfig,
    pub lr: f64,
    pub state: BTreeMap<String, AdamState>,
}

impl Adam {
    pub fn new(config: AdamConfig) -> Self {
        Self { config, lr: config.lr, state: BTreeMap::new() }
    }

    /// One update of parameter `key` in place.
    ///
    /// # Panics
    /// If `param` and `grad` differ in length, or from the stored state.
    pub fn update(&mut self, key: &str, param: &mut [f32], grad: &[f32]) {
        assert_eq!(param.len(), grad.len(), "{key}: parameter and gradient differ in length");
        let c = self.config;
        let st = self.state.entry(key.to_string()).or_insert_with(|| AdamState {
            step: 0,
            exp_avg: vec![0.0; param.len()],
            exp_avg_sq: vec![0.0; param.len()],
        });
        assert_eq!(st.exp_avg.len(), param.len(), "{key}: optimizer state does not fit the parameter");
        st.step += 1;
        let t = st.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        let neg_step = (-(self.lr / bc1)) as f32;
        let (w1, b2, w2) = ((1.0 - c.beta1) as f32, c.beta2 as f32, (1.0 - c.beta2) as f32);
        let (bc2_sqrt, eps, wd) = (bc2_sqrt as f32, c.eps as f32, c.weight_decay as f32);
        for i in 0..param.len() {
            let g = if wd != 0.0 { grad[i] + param[i] * wd } else { grad[i] };
            let m = st.exp_avg[i] + w1 * (g - st.exp_avg[i]);
            let v = st.exp_avg_sq[i] * b2 + w2 * g * g;
            st.exp_avg[i] = m;
            st.exp_avg_sq[i] = v;
            let denom = v.sqrt() / bc2_sqrt + eps;
            param[i] += neg_step * m / denom;
        }
    }
}

/// `torch.optim.lr_scheduler.StepLR` in its chainable form: every `step_size`-th call of
/// [`StepLr::step`] multiplies the current learning rate by `gamma`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepLr {
    pub step_size: u64,
    pub gamma: f64,
    /// How many times [`StepLr::step`] was called (`last_epoch`).
    pub last_epoch: u64,
}

impl StepLr {
    pub fn new(step_size: u64, gamma: f64) -> Self {
        Self { step_size, gamma, last_epoch: 0 }
    }

    /// Advances one epoch and returns the new learning rate given the current one.
    pub fn step(&mut self, lr: f64) -> f64 {
        self.last_epoch += 1;
        if self.step_size > 0 && self.last_epoch.is_multiple_of(self.step_size) { lr * self.gamma } else { lr }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_first_steps_follow_the_pytorch_formula() {
        let mut opt = Adam::new(AdamConfig::new(1e-3));
        let mut p = vec![1.0f32, -2.0, 0.5];
        let g1 = [0.1f32, -3.0, 1e-9];
        opt.update("w", &mut p, &g1);
        // Step 1: m̂ = g, v̂ = g², so p moves by lr·g/(|g| + ε).
        for (i, g) in g1.iter().enumerate() {
            let want = [1.0f64, -2.0, 0.5][i] - 1e-3 * *g as f64 / ((*g as f64).abs() + 1e-8);
            assert!((p[i] as f64 - want).abs() < 1e-7, "{i}: {} vs {want}", p[i]);
        }
        // Step 2 from the closed form in f64.
        let g2 = [0.2f32, 1.0, -1e-9];
        let before = p.clone();
        opt.update("w", &mut p, &g2);
        for i in 0..3 {
            let (a, b) = (g1[i] as f64, g2[i] as f64);
            let m = 0.9 * 0.1 * a + 0.1 * b;
            let v = 0.999 * 0.001 * a * a + 0.001 * b * b;
            let upd = 1e-3 / (1.0 - 0.81) * m / (v.sqrt() / (1.0 - 0.999f64.powi(2)).sqrt() + 1e-8);
            let want = before[i] as f64 - upd;
            assert!((p[i] as f64 - want).abs() < 2e-7, "{i}: {} vs {want}", p[i]);
        }
        assert_eq!(opt.state["w"].step, 2);
    }

    #[test]
    fn adam_weight_decay_adds_to_the_gradient() {
        let mut cfg = AdamConfig::new(1e-2);
        cfg.weight_decay = 0.5;
        let mut opt = Adam::new(cfg);
        let mut p = vec![2.0f32];
        opt.update("w", &mut p, &[-1.0]);
        // g = -1 + 0.5·2 = 0: no move on the first step beyond ε effects.
        assert!((p[0] - 2.0).abs() < 1e-6);
    }

    #[test]
    fn clip_uses_one_global_norm() {
        let mut a = vec![3.0f32, 0.0];
        let mut b = vec![0.0f32, 4.0];
        let r = clip_grad_norm([&mut a, &mut b], 1.0);
        assert_eq!(r.total_norm, 5.0);
        let coef = 1.0f32 / (5.0 + 1e-6);
        assert_eq!(a, vec![3.0 * coef, 0.0]);
        assert_eq!(b, vec![0.0, 4.0 * coef]);
        let mut c = vec![0.3f32, 0.4];
        let r = clip_grad_norm([&mut c], 1.0);
        assert_eq!((r.coef, c.clone()), (1.0, vec![0.3, 0.4]), "below the threshold nothing changes");
    }

    #[test]
    fn step_lr_is_chainable() {
        let mut s = StepLr::new(3, 0.5);
        let mut lr = 1.0;
        let mut seen = Vec::new();
        for _ in 0..7 {
            lr = s.step(lr);
            seen.push(lr);
        }
        assert_eq!(seen, vec![1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]);
    }

    #[test]
    fn gradients_and_set_params_round_trip() {
        use mmif_nn::layers::{Conv2d, ConvCfg};
        let dev = mmif_nn::cpu().autodiff();
        let conv = Conv2d::new(&dev, 1, 2, 3, ConvCfg::same(3).bias(true)).set_require_grad(true);
        let x = Tensor::<4>::ones([1, 1, 4, 4], &dev);
        let grads = conv.forward(x).sum().backward();
        let g = gradients(&conv, &grads);
        assert_eq!(g.keys().collect::<Vec<_>>(), vec!["bias", "weight"]);
        // d(sum)/d(bias) = number of output pixels.
        assert_eq!(g["bias"].data, vec![16.0, 16.0]);
        let mut upd = BTreeMap::from([("bias".to_string(), vec![0.25f32, -0.5])]);
        let conv = set_params(conv, &mut upd);
        assert!(upd.is_empty());
        assert_eq!(params(&conv)["bias"].data, vec![0.25, -0.5]);
        // The new leaves train: a second backward reaches them.
        let grads = conv.forward(Tensor::<4>::ones([1, 1, 4, 4], &dev)).sum().backward();
        assert_eq!(gradients(&conv, &grads)["bias"].data, vec![16.0, 16.0]);
    }
}
