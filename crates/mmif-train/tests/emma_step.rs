//! One EMMA training step of each official script against the PyTorch reference (fixtures §4,
//! `train_meta.json` → `emma_fusion`, `emma_pseudo_sensor`).
//!
//! Everything is read from the fixtures: the batch, the initial weights (the deterministic fills
//! of `forward_meta.json`: the U-Fuser `emma_ufuser`, the pseudo-sensors `emma_unet5_ai` and
//! `emma_unet5_av`; an entry's own `seed`/`gain` override the trained network's; the
//! pseudo-sensor trained is the entry's `model`, else the one whose target the entry names), the
//! transforms (the entry's shifts and angles; the number of flips is what is left of the blocks
//! of `emma_train_Ft.npy`), and every expected figure.
//!
//! Checked: each loss term (1e-4 relative); each parameter's gradient norm (1e-3 relative, see
//! below for `emma_fusion`); the fused and transformed batches (1e-4 absolute); each sampled
//! parameter value after the Adam step (1e-5 absolute); each parameter's sum and abs-sum after
//! the step (1e-5 absolute plus a bound for the elements whose step is uncertain, below); for the pseudo-sensor
//! the BatchNorm running statistics after the step (sum and first element, 1e-5 relative +
//! 1e-6 absolute) and the state dict's keys (the manifest's, `num_batches_tracked` = 1 included).
//!
//! # Where the reference itself is float32 noise (measured against the same PyTorch code in float64)
//!
//! * **Adam's first step** moves element `i` by `lr·gᵢ/(|gᵢ| + 1e-8)`: `±lr` whatever `|gᵢ|` once
//!   `|gᵢ| ≫ 1e-8`, and a steep function of `gᵢ` below ~1e-6. Elements whose gradient is that
//!   small (the "steep" ones, recognised by `|Δp| < 0.99·lr`; thousands in the deep layers of
//!   both nets) land wherever the last bits of their f32 gradient send them, in PyTorch as here:
//!   PyTorch's float32 parameter sums differ from its float64 ones by up to 8e-4 (U-Fuser) and
//!   0.1 (UNet5 `up_sample5`). Sampled values are therefore held to 1e-5 where the element is not
//!   steep (measured: 6e-8 and 2e-16) and to `2·lr` where it is; sums to
//!   `1e-5 + 2·lr·√(steep elements)` (a random walk of steps of at most `2·lr`). A wrong update
//!   rule, sign or learning rate moves non-steep samples by `~lr` and fails at once.
//! * **The pseudo-sensor's gradients have no determined sign well above ε** (issue 23). Train-mode
//!   BatchNorm subtracts batch means and divides by batch deviations in every block, and
//!   activations near a ReLU's kink switch sides with the last bits of the forward pass, so a
//!   float32 gradient element is off its float64 value by a fraction of its tensor's rms, not by
//!   a rounding of itself. Measured on five fixture sets made by the official code (the shared
//!   one, seed 3, and seeds 13, 21, 31, 41 with other crops: `tools/emma_onestep_fixtures.py`,
//!   compared by `tools/emma_onestep_compare.py`): the 99.9th percentile of a float32 gradient
//!   element's error is at most 0.16·rms in PyTorch and 0.043·rms here (single kink elements up
//!   to 1.8·rms in both). PyTorch float32 therefore steps 16,000–129,000 elements per set the
//!   other way than float64 does, with gradients up to 3.8e-5 = 3800·ε (full steps, not steep),
//!   and so do we (30,000–70,000 elements). In a 128-element BatchNorm weight one such element
//!   moves its sum by `2·lr = 2e-4`: the failure of issue 23 was the reference's own noise. An
//!   element is therefore *uncertain* when it is steep or `|gᵢ| ≤ 0.2·rms(g)` (our gradient,
//!   read from Adam's first moment): its sample is held to `2·lr`, and the sums to
//!   `1e-5 + 2·(2·lr·√k)`, `k` the uncertain elements (twice the random-walk spread; the worst
//!   of the five sets reaches 0.27 of that bound between PyTorch float32 and us, and 0.27
//!   between either float32 run and float64).
//!   Every other element must move exactly as PyTorch's: 1e-5. The gradient norms of the
//!   BatchNorm layers carry the same error: PyTorch's float32 norms are off float64 by up to
//!   1.9e-3 relative, ours by up to 1.0e-3, so the pseudo-sensor's tolerance is 4e-3. A learning
//!   rate 10 % off, or a reversed step, fails 49–251 checks on these sets.
//! * **Conv biases feeding a train-mode BatchNorm** (UNet5's `*.conv.0.bias`, `*.conv.3.bias`)
//!   have an exactly zero gradient (the batch mean cancels them); both sides compute rounding
//!   noise (norms 1e-10 … 3e-7), so their norms are only required to be below 1e-6 of the global
//!   norm, and their samples are all steep.
//! * **`emma_fusion` gradient norms** of the level-4 blocks (`I_en_4`, `V_en_4`, `f_4`): PyTorch's
//!   float32 values are off its own float64 values by up to 2.3e-3 relative; ours are within
//!   2.2e-4 of float64 on every parameter. The tolerance there is therefore 3e-3, not 1e-3.

mod common;

use std::collections::BTreeMap;

use burn::tensor::Tensor;
use common::{StepTol, Worst, check_param, filled, num};
use mmif_io::Manifest;
use mmif_nn::weights::{self, StateDict};
use mmif_testkit::fixtures;
use mmif_train::emma::{EmmaConfig, EmmaTrainer, GROUP, PseudoSensorConfig, PseudoSensorTrainer};
use mmif_train::trainer::StepReport;
use mmif_train::transforms::Transforms;
use serde_json::Value;

/// Gradient-norm tolerance of `emma_fusion`: the reference's own float32 error reaches 2.3e-3
/// (see the module documentation).
const FUSION_GRAD_NORM_TOL: f64 = 3e-3;

/// How one entry's figures are checked (see the module documentation for why).
struct Tolerances {
    /// Relative, per parameter gradient norm.
    grad_norm: f64,
    /// The learning rate of the step (Adam's first step moves an element by at most this).
    lr: f64,
    /// An element's step is uncertain when `|g| ≤ grad_sign_rel·rms(g)` (or it is steep):
    /// `common::uncertain_mask`.
    grad_sign_rel: f64,
    /// Sums within `1e-5 + sum_sigmas·2·lr·√(uncertain elements)`.
    sum_sigmas: f64,
}

/// Gradient-norm tolerance of `emma_pseudo_sensor`: the reference's own float32 error reaches
/// 1.9e-3 and ours 1.0e-3 (see the module documentation).
const PSEUDO_SENSOR_GRAD_NORM_TOL: f64 = 4e-3;

/// The float32 error of a UNet5 gradient element in train mode, relative to its tensor's rms,
/// as measured against float64 (see the module documentation): a gradient element below this
/// has no determined sign.
const PSEUDO_SENSOR_GRAD_ERR: f64 = 0.2;

/// `MMIF_STEP_DUMP=FILE.safetensors`: writes every parameter before (`before/K`) and after
/// (`after/K`) the step and its gradient (`grad/K`), for `tools/emma_onestep_compare.py`.
fn dump_step(
    initial: &StateDict,
    params: &BTreeMap<String, mmif_train::optim::Values>,
    grads: &BTreeMap<String, Vec<f32>>,
) {
    let Ok(path) = std::env::var("MMIF_STEP_DUMP") else { return };
    let mut out = BTreeMap::new();
    for (k, g) in grads {
        let p = &params[k];
        for (tag, v) in [("before", &initial[k].data), ("after", &p.data), ("grad", g)] {
            out.insert(format!("{tag}/{k}"), mmif_io::TensorData::new(p.shape.clone(), mmif_io::DType::F32, v.clone()));
        }
    }
    mmif_io::save_safetensors(std::path::Path::new(&path), &out).unwrap_or_else(|e| panic!("{e}"));
}

/// Whether `key` is a conv bias feeding a BatchNorm in train mode (`X.conv.{i}.bias` followed by
/// `X.conv.{i+1}`'s running statistics): its exact gradient is zero, the batch mean cancels it.
fn feeds_batch_norm(key: &str, state: &StateDict) -> bool {
    let Some(prefix) = key.strip_suffix(".bias") else { return false };
    let Some((module, idx)) = prefix.rsplit_once('.') else { return false };
    let Ok(i) = idx.parse::<usize>() else { return false };
    state.contains_key(&format!("{module}.{}.running_mean", i + 1))
}

/// Losses, gradient norms and the parameters after the step; `initial` holds the parameters
/// before it, `after` the parameters after it and the gradients Adam used.
fn check_step(
    worst: &mut Worst,
    entry: &Value,
    tol: &Tolerances,
    step: &StepReport,
    initial: &StateDict,
    (params, grads): (&BTreeMap<String, mmif_train::optim::Values>, &BTreeMap<String, Vec<f32>>),
    train_mode_bn: bool,
) {
    let (losses, report) = (&step.losses, &step.groups[GROUP]);
    let want_losses = entry["losses"].as_object().expect("losses");
    assert!(!want_losses.is_empty(), "the entry lists no loss");
    for (k, want) in want_losses {
        let got = *losses.get(k).unwrap_or_else(|| panic!("loss term {k} is not computed"));
        worst.rel("loss", k, got, num(want, k), 1e-4, 1e-12);
    }

    let norms = entry["grad_norms"].as_object().expect("grad_norms");
    assert_eq!(norms.len(), report.grad_norms.len(), "number of parameters with a gradient");
    let total = norms.values().map(|v| num(v, "grad norm").powi(2)).sum::<f64>().sqrt();
    let zero_grad = |k: &str| train_mode_bn && feeds_batch_norm(k, initial);
    for (k, want) in norms {
        let got = *report.grad_norms.get(k).unwrap_or_else(|| panic!("{k}: no gradient"));
        if zero_grad(k) {
            // Both are rounding noise: require that they are, i.e. negligible.
            worst.abs("zero-gradient norm / global norm", k, got / total, 0.0, 1e-6);
            worst.abs("zero-gradient norm / global norm (reference)", k, num(want, k) / total, 0.0, 1e-6);
        } else {
            // Relative to the parameter's own norm, floored at 1e-6 of the global norm.
            worst.rel("grad norm", k, got, num(want, k), tol.grad_norm, 1e-6 * total);
        }
    }

    let after = entry["params_after_step"].as_array().expect("params_after_step");
    assert_eq!(after.len(), report.clipped_norms.len(), "number of parameters stepped");
    let mut loose = Vec::new();
    for p in after {
        let key = p["name"].as_str().expect("name");
        let v = &params.get(key).unwrap_or_else(|| panic!("no parameter {key}")).data;
        let v0 = &initial.get(key).unwrap_or_else(|| panic!("no initial value of {key}")).data;
        let g = grads.get(key).unwrap_or_else(|| panic!("{key}: no gradient in the optimiser"));
        let uncertain = common::uncertain_mask(v0, v, g, tol.lr, tol.grad_sign_rel);
        let step_tol = StepTol { lr: tol.lr, sigmas: tol.sum_sigmas };
        if check_param(worst, key, (v0, v), &uncertain, step_tol, p) {
            let k = uncertain.iter().filter(|&&u| u).count();
            loose.push(format!("{key} ({k} of {} elements with an uncertain step)", v.len()));
        }
        if let Some(want) = p.get("grad_norm") {
            let got = *report.clipped_norms.get(key).unwrap_or_else(|| panic!("{key}: not stepped"));
            if !zero_grad(key) {
                worst.rel("grad norm (stepped)", key, got, num(want, "grad_norm"), tol.grad_norm, 1e-6 * total);
            }
        }
    }
    eprintln!("{} parameter(s) beyond 1e-5 in sum or abs-sum: {}", loose.len(), loose.join(", "));
}

fn compare_batch(worst: &mut Worst, what: &'static str, file: &str, got: Tensor<4>) {
    let (shape, want) = fixtures::npy(file);
    assert_eq!(got.dims().to_vec(), shape, "{what}: shape");
    let got = weights::tensor_to_vec(got);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        worst.abs(what, &format!("[{i}]"), *g as f64, *w as f64, 1e-4);
    }
}

#[test]
fn fusion_step_matches_official() {
    let (name, entry) = ("emma_fusion", &common::entry("emma_fusion"));
    let device = common::device().autodiff();
    let (ir, vis) = common::ir_vis(&device);
    let b = ir.dims()[0];

    let shifts: Vec<(i64, i64)> = entry["shifts"]
        .as_array()
        .expect("shifts")
        .iter()
        .map(|p| (p[0].as_i64().expect("row shift"), p[1].as_i64().expect("column shift")))
        .collect();
    let angles: Vec<f64> =
        entry["angles_deg"].as_array().expect("angles_deg").iter().map(|a| num(a, "angle")).collect();
    let (ft_shape, _) = fixtures::npy("emma_train_Ft.npy");
    assert_eq!(ft_shape[0] % b, 0, "emma_train_Ft.npy: not whole blocks of the batch");
    let blocks = ft_shape[0] / b;
    let flips = blocks.checked_sub(1 + shifts.len() + angles.len()).expect("emma_train_Ft.npy: too few blocks");
    let transforms = Transforms { shifts, angles, flips };

    let mut config = EmmaConfig::default();
    if let Some(a) = entry.get("alpha") {
        config.alpha = num(a, "alpha");
    }
    if let Some(lr) = entry.get("lr") {
        config.lr = num(lr, "lr");
    }
    let initial = filled("emma_ufuser", entry, true);
    let lr = config.lr;
    let mut trainer = EmmaTrainer::from_state_dict(
        &initial,
        &filled("emma_unet5_ai", entry, false),
        &filled("emma_unet5_av", entry, false),
        config,
        &device,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let report = trainer.step_with(ir, vis, &transforms);
    assert_eq!(trainer.steps, 1);

    let mut worst = Worst::default();
    let params = mmif_train::optim::params(&trainer.net);
    let grads = common::adam_gradients(&trainer.optim);
    let tol = Tolerances { grad_norm: FUSION_GRAD_NORM_TOL, lr, grad_sign_rel: 0.0, sum_sigmas: 1.0 };
    check_step(&mut worst, entry, &tol, &report, &initial, (&params, &grads), false);
    compare_batch(&mut worst, "Ft", "emma_train_Ft.npy", report.transformed.clone());
    compare_batch(&mut worst, "fused", "emma_train_fused.npy", report.fused.clone());
    worst.finish(name);
}

/// `train_meta.json` names the pseudo-sensor's input and target as expressions of the batch.
fn operand(expr: &str, ir: &Tensor<4>, vis: &Tensor<4>) -> Tensor<4> {
    match expr.replace(' ', "").as_str() {
        "ir" => ir.clone(),
        "vis" | "vi" => vis.clone(),
        "0.5*(ir+vis)" | "0.5*(vis+ir)" => (ir.clone() + vis.clone()) * 0.5,
        other => panic!("train_meta.json: unknown pseudo-sensor operand {other:?}"),
    }
}

#[test]
fn pseudo_sensor_step_matches_official() {
    let (name, entry) = ("emma_pseudo_sensor", &common::entry("emma_pseudo_sensor"));
    let device = common::device().autodiff();
    let (ir, vis) = common::ir_vis(&device);
    let input_expr = entry["input"].as_str().expect("input");
    let target_expr = entry["target"].as_str().expect("target");
    // The sensor trained: the entry's `model`, else the one whose target it is (Ai → infrared).
    let model = match entry.get("model").and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None => match target_expr {
            "ir" => "emma_unet5_ai".to_string(),
            "vis" | "vi" => "emma_unet5_av".to_string(),
            other => panic!("{name}: cannot tell the pseudo-sensor from the target {other:?}"),
        },
    };
    let mut config = PseudoSensorConfig::default();
    if let Some(lr) = entry.get("lr") {
        config.lr = num(lr, "lr");
    }
    let initial = filled(&model, entry, true);
    let lr = config.lr;
    let mut trainer = PseudoSensorTrainer::from_state_dict(&initial, config, &device).unwrap_or_else(|e| panic!("{e}"));
    let report = trainer.step(operand(input_expr, &ir, &vis), operand(target_expr, &ir, &vis));

    let mut worst = Worst::default();
    let params = mmif_train::optim::params(&trainer.net);
    let grads = common::adam_gradients(&trainer.optim);
    dump_step(&initial, &params, &grads);
    let tol = Tolerances {
        grad_norm: PSEUDO_SENSOR_GRAD_NORM_TOL,
        lr,
        grad_sign_rel: PSEUDO_SENSOR_GRAD_ERR,
        sum_sigmas: 2.0,
    };
    check_step(&mut worst, entry, &tol, &report, &initial, (&params, &grads), true);

    let sd = trainer.state_dict();
    let stats =
        entry["bn_running_stats_after_step_sum_first"].as_object().expect("bn_running_stats_after_step_sum_first");
    assert!(!stats.is_empty());
    for (k, want) in stats {
        let v = &sd.get(k).unwrap_or_else(|| panic!("no buffer {k} in the state dict")).data;
        let sum: f64 = v.iter().map(|&x| x as f64).sum();
        let (want_sum, want_first) = (num(&want[0], "sum"), num(&want[1], "first"));
        worst.abs("running stat sum", k, sum, want_sum, 1e-6 + 1e-5 * want_sum.abs());
        worst.abs("running stat first", k, v[0] as f64, want_first, 1e-6 + 1e-5 * want_first.abs());
    }

    // The state dict has exactly the official keys, and counts the one batch.
    let manifest = Manifest::from_forward_meta(&fixtures::path("forward_meta.json"), &model).expect("manifest");
    let mut want_keys: Vec<String> = manifest.entries().map(|(_, k, _)| k).collect();
    want_keys.sort();
    let got_keys: Vec<String> = sd.keys().cloned().collect();
    assert_eq!(got_keys, want_keys, "state-dict keys");
    for (k, t) in sd.iter().filter(|(k, _)| k.ends_with("num_batches_tracked")) {
        assert_eq!((t.dtype, t.data.as_slice()), (mmif_io::DType::I64, &[1.0f32][..]), "{k}");
    }
    worst.finish(name);
}

/// The pseudo-sensor step on the second fixture sets of issue 23 (`tests/data/emma_pseudo_sensor_seed*`,
/// made by the official code with other seeds, see their README.md), on which the former bounds
/// failed: `pseudo_sensor_step_matches_official` runs again in a child process of this test
/// binary with `MMIF_FIXTURES` pointing at each.
#[test]
fn pseudo_sensor_step_passes_on_the_second_fixture_sets() {
    if std::env::var_os("MMIF_STEP_CHILD").is_some() {
        return; // a child run
    }
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut sets: Vec<_> = std::fs::read_dir(&data)
        .expect("tests/data")
        .map(|e| e.expect("tests/data entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("emma_pseudo_sensor_seed")))
        .collect();
    sets.sort();
    assert!(!sets.is_empty(), "no second fixture set under {}", data.display());
    let exe = std::env::current_exe().expect("test binary");
    for set in sets {
        let test = "pseudo_sensor_step_matches_official";
        let out = std::process::Command::new(&exe)
            .args([test, "--exact", "--test-threads", "1"])
            .env("MMIF_FIXTURES", &set)
            .env("MMIF_STEP_CHILD", "1")
            .output()
            .expect("run the test binary");
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && log.contains(&format!("{test} ... ok")),
            "{test} with MMIF_FIXTURES={}:\n{log}{}",
            set.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
