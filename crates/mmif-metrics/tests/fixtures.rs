//! Parity with the official Python evaluator on the shared metric fixtures
//! (`$MMIF_FIXTURES/metrics/metrics_expected.json` and the `<case>_{ir,vi,fused}.png` triples).

use mmif_metrics::{Gray, Metric, Options, compute};
use std::path::{Path, PathBuf};

const REL_TOL: f64 = 1e-6;

/// The shared fixture folder (`$MMIF_FIXTURES`, located by the test kit), which must hold `metrics/`.
fn fixtures_dir() -> PathBuf {
    let dir = mmif_testkit::fixtures::dir();
    assert!(
        dir.join("metrics").is_dir(),
        "metric fixtures not found at {} (set MMIF_FIXTURES to the shared fixtures folder)",
        dir.join("metrics").display()
    );
    dir
}

/// An 8-bit grayscale PNG as `f32` values (the fixtures are 8-bit gray, so gray value = pixel).
fn read_png(path: &Path) -> (usize, usize, Vec<f32>) {
    let img = image::open(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())).into_luma8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    (w, h, img.into_raw().into_iter().map(f32::from).collect())
}

fn gray(img: &(usize, usize, Vec<f32>)) -> Gray<'_> {
    Gray::new(img.0, img.1, &img.2).expect("PNG buffer matches its size")
}

/// Fixture key → metric and options (`SSIM_range<R>` selects SSIM with data range R).
fn parse_key(key: &str) -> (Metric, Options) {
    if let Some(range) = key.strip_prefix("SSIM_range") {
        let ssim_data_range = range.parse().unwrap_or_else(|_| panic!("bad SSIM key {key}"));
        return (Metric::Ssim, Options { ssim_data_range });
    }
    let metric = key.parse().unwrap_or_else(|e| panic!("fixture key {key}: {e}"));
    (metric, Options::default())
}

#[test]
fn metrics_match_official_evaluator() {
    let dir = fixtures_dir().join("metrics");
    let path = dir.join("metrics_expected.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{} (MMIF_FIXTURES): {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("metrics_expected.json");
    let cases = json["cases"].as_object().expect("'cases' object in metrics_expected.json");
    assert!(!cases.is_empty(), "no cases in {}", path.display());

    let mut failures = Vec::new();
    let mut checked = 0;
    let mut worst: std::collections::BTreeMap<String, f64> = Default::default();
    for (case, expected) in cases {
        let load = |suffix: &str| read_png(&dir.join(format!("{case}_{suffix}.png")));
        let (ir, vi, fused) = (load("ir"), load("vi"), load("fused"));
        let (a, b, f) = (gray(&ir), gray(&vi), gray(&fused));
        let expected = expected.as_object().expect("case entry is an object");
        assert!(!expected.is_empty(), "case {case} lists no metric");
        for (key, want) in expected {
            let want = want.as_f64().unwrap_or_else(|| panic!("{case}.{key} is not a number"));
            let (metric, opts) = parse_key(key);
            let got = compute(metric, f, a, b, &opts).unwrap();
            let rel = (got - want).abs() / want.abs().max(f64::MIN_POSITIVE);
            checked += 1;
            let w = worst.entry(key.clone()).or_insert(0.0);
            *w = w.max(rel);
            if rel.is_nan() || rel > REL_TOL {
                failures.push(format!("{case} {key}: got {got:.17}, expected {want:.17} (rel {rel:.2e})"));
            }
        }
    }
    for (key, rel) in &worst {
        println!("{key:>14}: max relative error {rel:.2e}");
    }
    assert!(failures.is_empty(), "{} of {checked} values off:\n{}", failures.len(), failures.join("\n"));
}
