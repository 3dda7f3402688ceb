//! The one update step every training procedure takes after its backward pass, and the
//! optimiser state it updates.
//!
//! [`update`] reads the gradients out of the module, and for each parameter group measures
//! them, clips them to one global norm when the group asks for it (`clip_grad_norm_`), hands
//! them to the group's [`Adam`], and writes the new values back ([`optim::set_params`]). Its
//! [`GroupReport`]s are what the step reports and what the one-step tests compare with the
//! official scripts' gradient norms.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::Gradients;

use crate::optim::{self, Adam, AdamConfig, StepLr, Values, l2_norm};

/// The optimisers and learning-rate schedulers of a procedure, by parameter group (the
/// official scripts' optimiser names: CDDFuse's four modules, `model` for EMMA and FILM).
#[derive(Clone, Debug, Default)]
pub struct Optim {
    pub optimizers: BTreeMap<String, Adam>,
    pub schedulers: BTreeMap<String, StepLr>,
}

impl Optim {
    /// One Adam (learning rate `lr`, L2 `weight_decay`, PyTorch's other defaults) and one
    /// `StepLR(step_size, gamma)` per group.
    pub fn new(groups: &[&str], lr: f64, weight_decay: f64, step_size: u64, gamma: f64) -> Self {
        let adam = AdamConfig::with_weight_decay(lr, weight_decay);
        Self {
            optimizers: groups.iter().map(|g| (g.to_string(), Adam::new(adam))).collect(),
            schedulers: groups.iter().map(|g| (g.to_string(), StepLr::new(step_size, gamma))).collect(),
        }
    }

    /// The learning rate of `group`.
    ///
    /// # Panics
    /// If there is no such group.
    pub fn lr(&self, group: &str) -> f64 {
        self.optimizers[group].lr
    }

    /// `scheduler.step()` of every optimiser that has a scheduler (the end of an epoch).
    pub fn step_schedulers(&mut self) {
        optim::step_schedulers(&mut self.optimizers, &mut self.schedulers);
    }
}

/// A parameter group of one [`update`]: the parameters whose state-dict key starts with
/// `prefix` (`""`: all), stepped by the optimiser `name`, clipped to a global L2 norm of `clip`
/// when given.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamGroup<'a> {
    pub name: &'a str,
    pub prefix: &'a str,
    pub clip: Option<f64>,
}

/// Gradient figures of one parameter group in one step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupReport {
    /// The global L2 norm before clipping.
    pub total_norm: f32,
    /// The clipping factor applied (1 when not clipped).
    pub coef: f32,
    /// Per-parameter gradient L2 norms before clipping, by key within the group (the prefix
    /// removed).
    pub grad_norms: BTreeMap<String, f64>,
    /// The same after clipping (what Adam saw).
    pub clipped_norms: BTreeMap<String, f64>,
}

/// What [`update`] returns.
pub struct Updated<M> {
    /// The module with its new parameters (fresh leaves that require gradients).
    pub net: M,
    /// By group name.
    pub groups: BTreeMap<String, GroupReport>,
    /// Every parameter's gradient as Adam was given it (after clipping), by state-dict key.
    pub gradients: BTreeMap<String, Values>,
}

/// One optimisation step of `net` from the gradients `grads` of its loss: for each group in
/// order, the per-parameter norms, the optional clipping and the Adam update of its optimiser
/// in `optim`. Parameters outside every group (frozen, or not in this phase) are left alone.
///
/// # Panics
/// If a group has no optimiser in `optim`.
pub fn update<M: Module>(net: M, grads: &Gradients, groups: &[ParamGroup<'_>], optim: &mut Optim) -> Updated<M> {
    let mut gradients = optim::gradients(&net, grads);
    let mut values = optim::params(&net);
    let mut updates = BTreeMap::new();
    let mut reports = BTreeMap::new();
    for group in groups {
        let strip = |k: &str| k[group.prefix.len()..].to_string();
        let mut mine: Vec<(&String, &mut Vec<f32>)> =
            gradients.iter_mut().filter(|(k, _)| k.starts_with(group.prefix)).map(|(k, v)| (k, &mut v.data)).collect();
        let mut report = GroupReport {
            grad_norms: mine.iter().map(|(k, g)| (strip(k), l2_norm(g))).collect(),
            coef: 1.0,
            ..GroupReport::default()
        };
        match group.clip {
            Some(max) => {
                let clip = optim::clip_grad_norm(mine.iter_mut().map(|(_, g)| &mut **g), max);
                report.total_norm = clip.total_norm;
                report.coef = clip.coef;
            }
            None => report.total_norm = report.grad_norms.values().map(|n| n * n).sum::<f64>().sqrt() as f32,
        }
        let opt = optim.optimizers.get_mut(group.name).unwrap_or_else(|| panic!("no optimiser `{}`", group.name));
        for (key, grad) in mine {
            report.clipped_norms.insert(strip(key), l2_norm(grad));
            let mut p = values.remove(key).expect("every gradient belongs to a parameter").data;
            opt.update(key, &mut p, grad);
            updates.insert(key.clone(), p);
        }
        reports.insert(group.name.to_string(), report);
    }
    Updated { net: optim::set_params(net, &mut updates), groups: reports, gradients }
}
