//! What the one-step training tests share: reading the fixtures, collecting errors, and the
//! check of the parameters after Adam's first step.
#![allow(dead_code, unused_imports)]

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use mmif_io::Manifest;
use mmif_nn::weights::{self, StateDict};
use mmif_testkit::fixtures;
use serde_json::Value;

/// The device under test (`$MMIF_TEST_DEVICE`, default `cpu`), without autodiff.
pub fn device() -> Device {
    let name = mmif_testkit::device_name();
    mmif_nn::device::parse_device(&name).unwrap_or_else(|e| panic!("MMIF_TEST_DEVICE={name}: {e}"))
}

/// A `B×C×H×W` batch of the fixtures.
pub fn batch(name: &str, device: &Device) -> Tensor<4> {
    let (shape, v) = fixtures::npy(name);
    let s: [usize; 4] = shape.as_slice().try_into().unwrap_or_else(|_| panic!("{name}: expected a 4-D batch"));
    Tensor::from_data(TensorData::new(v, s), device)
}

/// The fixtures' training batch on `device`: `(infrared, visible)`, each `B×1×H×W`.
pub fn ir_vis(device: &Device) -> (Tensor<4>, Tensor<4>) {
    (batch("train_batch_ir.npy", device), batch("train_batch_vis.npy", device))
}

pub fn num(v: &Value, what: &str) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{what}: not a number in train_meta.json"))
}

/// The entry `name` of `train_meta.json`.
pub fn entry(name: &str) -> Value {
    let meta = fixtures::json("train_meta.json");
    let e = meta[name].clone();
    assert!(e.is_object(), "train_meta.json has no entry {name}");
    e
}

/// The fill of `model` of `forward_meta.json` (canonical keys), with `entry`'s `seed`/`gain`
/// when `trained` and the entry gives them.
pub fn filled(model: &str, entry: &Value, trained: bool) -> StateDict {
    let manifest = Manifest::from_forward_meta(&fixtures::path("forward_meta.json"), model)
        .unwrap_or_else(|e| panic!("{model} manifest: {e}"));
    let seed = entry.get("seed").filter(|_| trained).map_or(manifest.seed, |v| num(v, "seed") as u64);
    let gain = entry.get("gain").filter(|_| trained).map_or(manifest.gain, |v| num(v, "gain"));
    weights::canonicalize(&manifest.filled_state_dict_with(seed, gain), None)
}

/// Holds every loss term of the entry's `losses` to 1e-4 relative (each must be computed).
pub fn check_losses(worst: &mut Worst, entry: &Value, losses: &BTreeMap<String, f64>) {
    let want_losses = entry["losses"].as_object().expect("losses");
    assert!(!want_losses.is_empty());
    for (k, want) in want_losses {
        let got = *losses.get(k).unwrap_or_else(|| panic!("loss term {k} is not computed"));
        worst.rel("loss", k, got, num(want, k), 1e-4, 1e-12);
    }
}

/// Worst error seen per quantity, for the log, and every mismatch.
#[derive(Default)]
pub struct Worst(BTreeMap<&'static str, (f64, String)>, Vec<String>);

impl Worst {
    pub fn rel(&mut self, what: &'static str, name: &str, got: f64, want: f64, tol: f64, floor: f64) {
        let e = (got - want).abs() / want.abs().max(floor);
        if e > tol || e.is_nan() {
            self.1.push(format!("{what} {name}: got {got}, want {want} (relative error {e:e} > {tol:e})"));
        }
        self.note(what, name, e);
    }

    pub fn abs(&mut self, what: &'static str, name: &str, got: f64, want: f64, tol: f64) {
        let e = (got - want).abs();
        if e > tol || e.is_nan() {
            self.1.push(format!("{what} {name}: got {got}, want {want} (absolute error {e:e} > {tol:e})"));
        }
        self.note(what, name, e);
    }

    pub fn note(&mut self, what: &'static str, name: &str, e: f64) {
        let slot = self.0.entry(what).or_insert((0.0, String::new()));
        if e >= slot.0 || e.is_nan() {
            *slot = (e, name.to_string());
        }
    }

    pub fn finish(self, entry: &str) {
        for (what, (e, name)) in &self.0 {
            eprintln!("{entry}: worst {what}: {e:.3e} ({name})");
        }
        assert!(self.1.is_empty(), "{entry}: {} mismatch(es):\n{}", self.1.len(), self.1.join("\n"));
    }
}

/// Adam's first step moves element `i` by `lr·gᵢ/(|gᵢ| + ε)`: `uᵢ = (before - after)/lr` is
/// `±1` to within 1 % once `|gᵢ| ≥ 100ε = 1e-6`, and a steep function of `gᵢ` below that.
/// Whether an element with these values is in that steep region.
pub fn steep(before: f64, after: f64, lr: f64) -> bool {
    ((before - after) / lr).abs() < 0.99
}

/// The elements of a tensor in the steep region of Adam's first step (see [`steep`]).
pub fn steep_mask(before: &[f32], after: &[f32], lr: f64) -> Vec<bool> {
    before.iter().zip(after).map(|(&b, &a)| steep(b as f64, a as f64, lr)).collect()
}

/// The elements whose first Adam step is *uncertain*: steep (see [`steep`]), or with a gradient
/// so small against the float32 error of the gradient that its sign is not determined:
/// `|gᵢ| ≤ rel·rms(g)`. Such an element moves by `+lr` in one float32 implementation and by
/// `-lr` in another (or in float64) whatever its exact gradient; every other element moves by
/// the same `±lr` in all of them.
///
/// `rel` is the float32 error of a gradient element relative to the tensor's rms, measured
/// against float64 (`0` for the steep region alone).
pub fn uncertain_mask(before: &[f32], after: &[f32], grad: &[f32], lr: f64, rel: f64) -> Vec<bool> {
    assert_eq!(grad.len(), after.len(), "gradient and parameter differ in length");
    let rms = (grad.iter().map(|&g| (g as f64).powi(2)).sum::<f64>() / grad.len().max(1) as f64).sqrt();
    let mut mask = steep_mask(before, after, lr);
    for (m, &g) in mask.iter_mut().zip(grad) {
        *m |= (g as f64).abs() <= rel * rms;
    }
    mask
}

/// The gradients Adam's first step used, per parameter: its first moment divided by
/// `1 - β₁` (after clipping where the procedure clips). Only meaningful after exactly one step.
pub fn adam_gradients(optim: &mmif_train::update::Optim) -> BTreeMap<String, Vec<f32>> {
    let mut out = BTreeMap::new();
    for adam in optim.optimizers.values() {
        let w1 = (1.0 - adam.config.beta1) as f32;
        for (k, st) in &adam.state {
            assert_eq!(st.step, 1, "{k}: the gradient is known from the first step only");
            out.insert(k.clone(), st.exp_avg.iter().map(|&m| m / w1).collect());
        }
    }
    out
}

/// The bound on the parameters after Adam's first step.
#[derive(Clone, Copy, Debug)]
pub struct StepTol {
    /// The learning rate (an uncertain element's two outcomes differ by at most `2·lr`).
    pub lr: f64,
    /// The sums are held to `1e-5 + sigmas·2·lr·√k`, `k` the uncertain elements.
    pub sigmas: f64,
}

/// Checks a parameter after Adam's first step against its `params_after_step` record `want`
/// (`sum`, `abs_sum`, `samples`); `before`/`after` are our values, `uncertain` our elements
/// whose step is uncertain ([`uncertain_mask`], or [`steep_mask`]). Returns whether the sums
/// are beyond 1e-5 (for the log).
///
/// * A sample is held to 1e-5 where its step is certain, and to `2·lr` where it is uncertain in
///   our run or the **reference's** own step was partial: there the update is a steep function,
///   or the sign, of a gradient within f32 rounding noise, in PyTorch as here. A wrong update
///   rule, sign or learning rate moves the certain samples by `~lr` and fails at once.
/// * The sums are held to `1e-5 + sigmas·2·lr·√k`, `k` the uncertain elements: each differs by
///   `0` or `±2·lr` with either sign, a random walk whose spread is at most `2·lr·√k`.
pub fn check_param(
    worst: &mut Worst,
    key: &str,
    (before, after): (&[f32], &[f32]),
    uncertain: &[bool],
    tol: StepTol,
    want: &Value,
) -> bool {
    let lr = tol.lr;
    let k = uncertain.iter().filter(|&&u| u).count();
    let sum_tol = 1e-5 + tol.sigmas * 2.0 * lr * (k as f64).sqrt();
    let sum: f64 = after.iter().map(|&x| x as f64).sum();
    let abs_sum: f64 = after.iter().map(|&x| (x as f64).abs()).sum();
    let (want_sum, want_abs) = (num(&want["sum"], "sum"), num(&want["abs_sum"], "abs_sum"));
    worst.abs("param sum", key, sum, want_sum, sum_tol);
    worst.abs("param abs_sum", key, abs_sum, want_abs, sum_tol);
    for s in want["samples"].as_array().expect("samples") {
        let idx = s[0].as_u64().expect("sample index") as usize;
        assert!(idx < after.len(), "{key}: sample index {idx} out of range");
        let name = format!("{key}[{idx}]");
        let w = num(&s[1], "sample");
        if uncertain[idx] || steep(before[idx] as f64, w, lr) {
            worst.abs("param sample (uncertain step)", &name, after[idx] as f64, w, 2.0 * lr + 1e-5);
        } else {
            worst.abs("param sample", &name, after[idx] as f64, w, 1e-5);
        }
    }
    (sum - want_sum).abs().max((abs_sum - want_abs).abs()) > 1e-5
}
