//! One FILM training step against the official train.py (fixtures §4, `train_meta.json` →
//! `film`).
//!
//! Everything is read from the fixtures: the batch, the initial weights (the deterministic fill
//! of the `film` manifest unless the entry names another seed/gain), the text features
//! (`uniform_pm1(seed of the film manifest, t = 65535)` shaped `1×T×768`, README §1, `T` read
//! from the entry's description when it gives one), and every expected figure.
//!
//! Checked: each loss term (1e-4 relative); each parameter's gradient norm (1e-3 relative, or
//! within 1e-6 of the global gradient norm absolute); each parameter after the Adam step —
//! sampled values to 1e-5 absolute, and the step itself, `after − before`, against the official
//! one; `sum` and `abs_sum` to 1e-5 absolute plus the allowance for fragile elements below.
//!
//! Why allowances. With lr = 1e-5 an element moves by at most ~lr in Adam's first step
//! (`lr·g/(|g| + 1e-8)`), so a 1e-5 bound on a sampled value alone would pass with no step at
//! all; the step is therefore compared to [`STEP_TOL`]·lr, widened by Adam's sensitivity
//! `lr·1e-8·δ/(|g| + 1e-8)²` to a gradient error `δ` (capped at 2·lr, a flipped sign). `δ` is
//! [`GRAD_ERR`] times the parameter's RMS gradient. Measured against the official step in
//! float64, the backward pass is as accurate as PyTorch's (per element within ~1e-4 of the RMS)
//! *given the same forward decisions*; what differs is the forward pass's PReLU branch at inputs
//! closer to zero than float32 rounding (~1e-6 of the input's RMS after a few blocks). On this
//! fixture two such inputs (in `restormerca2.preluA1` and `restormerca3.preluA3`) take the other
//! branch than in float64; each changes that element's gradient by `(1 − slope)·g`, and through
//! the global attentions the error reaches every gradient upstream, up to 4e-2 of the RMS per
//! element (a float64 rerun with our branch choices agrees with us to 1.1e-4). PyTorch's float32
//! is exposed the same way: the official step on 1 thread instead of 2 is 3.9e-2 of the RMS off
//! float64; the fixture's 2-thread run happened to decide both inputs as float64 does. An
//! element whose gradient is below `δ` may step the other way than in PyTorch (±lr each), so the
//! sums get, on top of 1e-5,
//! `2·lr·3·√k` for the `k` such elements (a 3σ random walk of independent flips).

mod common;

use common::{Worst, check_losses, num};
use mmif_io::Manifest;
use mmif_nn::weights;
use mmif_testkit::fixtures;
use mmif_train::film::{FilmConfig, FilmTrainer, GROUP};

/// The tensor index `t` of the text features in the fill (README §1).
const TEXT_T: u64 = 65535;
/// Tokens of the text features when the entry does not say (README §1).
const TEXT_TOKENS: usize = 149;
/// Tolerance of a sampled element's step, as a fraction of the learning rate.
const STEP_TOL: f64 = 0.01;
/// Per-element gradient error assumed, as a fraction of the parameter's RMS gradient.
const GRAD_ERR: f64 = 0.05;
/// Adam's epsilon.
const EPS: f64 = 1e-8;

/// `T` of a description like "… reshaped (1,T,768) …".
fn tokens_from(desc: Option<&str>) -> usize {
    let Some(d) = desc else { return TEXT_TOKENS };
    let Some(i) = d.find("(1,") else { return TEXT_TOKENS };
    let rest = &d[i + 3..];
    let end = rest.find(',').unwrap_or_else(|| panic!("text description {d:?}: cannot read the shape"));
    rest[..end].trim().parse().unwrap_or_else(|e| panic!("text description {d:?}: token count: {e}"))
}

#[test]
fn film_step_matches_official() {
    let meta = fixtures::json("train_meta.json");
    let entry = &meta["film"];
    assert!(entry.is_object(), "train_meta.json has no entry film");

    let manifest = Manifest::from_forward_meta(&fixtures::path("forward_meta.json"), "film")
        .unwrap_or_else(|e| panic!("film manifest: {e}"));
    let raw = match (entry.get("seed"), entry.get("gain")) {
        (None, None) => fixtures::filled("film"),
        (s, g) => manifest.filled_state_dict_with(
            s.map_or(manifest.seed, |v| num(v, "seed") as u64),
            g.map_or(manifest.gain, |v| num(v, "gain")),
        ),
    };
    let sd = weights::canonicalize(&raw, Some("model"));
    let mut config = FilmConfig::default();
    if let Some(lr) = entry.get("lr") {
        config.lr = num(lr, "lr");
    }
    let device = common::device().autodiff();
    let mut trainer = FilmTrainer::from_state_dict(&sd, config, &device).unwrap_or_else(|e| panic!("{e}"));
    let (ir, vis) = common::ir_vis(&device);
    let tokens = tokens_from(entry["text"].as_str());
    let width = mmif_nn::film::TEXT_DIM;
    let text = mmif_nn::film::text_tensor(mmif_io::uniform_pm1(manifest.seed, TEXT_T, tokens * width), tokens, &device);
    let before = mmif_train::optim::params(&trainer.net);
    let t0 = std::time::Instant::now();
    let report = trainer.step(ir, vis, text);
    eprintln!("film: one step of batch {:?} in {:.2?}", report.fused.dims(), t0.elapsed());
    eprintln!("film: losses {:?}", report.losses);
    let mut worst = Worst::default();

    check_losses(&mut worst, entry, &report.losses);

    let want_norms = entry["grad_norms"].as_object().expect("grad_norms");
    let got_norms = report.grad_norms();
    assert_eq!(
        want_norms.keys().collect::<Vec<_>>(),
        got_norms.keys().collect::<Vec<_>>(),
        "parameters with a gradient differ"
    );
    let total = report.groups[GROUP].total_norm as f64;
    for (k, want) in want_norms {
        // 1e-3 relative, or 1e-6 of the global norm absolute (= 1e-3 relative to a floor of 1e-3·total).
        worst.rel("grad norm", k, got_norms[k], num(want, k), 1e-3, 1e-3 * total);
    }

    let lr = trainer.config.lr;
    let params = mmif_train::optim::params(&trainer.net);
    let after = entry["params_after_step"].as_array().expect("params_after_step");
    assert_eq!(after.len(), params.len(), "number of parameters");
    for p in after {
        let key = p["name"].as_str().expect("name");
        let v = &params.get(key).unwrap_or_else(|| panic!("no parameter {key}")).data;
        let init = &before[key].data;
        let g = &report.gradients.get(key).unwrap_or_else(|| panic!("{key}: no gradient")).data;
        let delta = GRAD_ERR * got_norms[key] / (g.len() as f64).sqrt();
        let fragile = g.iter().filter(|&&x| (x as f64).abs() < delta).count();
        let sum_tol = 1e-5 + 2.0 * lr * 3.0 * (fragile as f64).sqrt();
        let sum: f64 = v.iter().map(|&x| x as f64).sum();
        let abs_sum: f64 = v.iter().map(|&x| (x as f64).abs()).sum();
        let (want_sum, want_abs) = (num(&p["sum"], "sum"), num(&p["abs_sum"], "abs_sum"));
        worst.abs("param sum", key, sum, want_sum, sum_tol);
        worst.abs("param abs_sum", key, abs_sum, want_abs, sum_tol);
        worst.note("param sum / allowance", key, (sum - want_sum).abs() / sum_tol);
        if (sum - want_sum).abs() > 1e-5 || (abs_sum - want_abs).abs() > 1e-5 {
            eprintln!(
                "film: {key}: sum off by {:.2} lr, abs_sum by {:.2} lr ({fragile} of {} elements with |g| < {delta:.1e})",
                (sum - want_sum).abs() / lr,
                (abs_sum - want_abs).abs() / lr,
                g.len()
            );
        }
        for s in p["samples"].as_array().expect("samples") {
            let idx = s[0].as_u64().expect("sample index") as usize;
            assert!(idx < v.len(), "{key}: sample index {idx} out of range");
            let want = num(&s[1], "sample");
            let name = format!("{key}[{idx}]");
            worst.abs("param sample", &name, v[idx] as f64, want, 1e-5);
            let (step, want_step) = (v[idx] as f64 - init[idx] as f64, want - init[idx] as f64);
            let gi = (g[idx] as f64).abs();
            let sensitivity = (EPS * delta / (gi + EPS).powi(2)).min(2.0);
            worst.abs("param step / lr", &name, step / lr, want_step / lr, STEP_TOL + sensitivity);
        }
        if let Some(want) = p.get("grad_norm") {
            worst.rel("grad norm (params entry)", key, got_norms[key], num(want, "grad_norm"), 1e-3, 1e-3 * total);
        }
    }

    worst.finish("film");
}
