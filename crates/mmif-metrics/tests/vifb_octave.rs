//! The `vifb.*` metrics against GNU Octave running VIFB's own `metrics/metrics*.m` on small
//! committed inputs (crops of VIFB images in colour and gray, odd sizes, constant, zero and
//! one-pixel images): `tests/data/vifb/`, made by `tests/octave/gen_vifb.m` (MATLAB's `rgb2gray`
//! shimmed, since Octave's rounds its weights).

mod common;

use common::check_octave_values;
use mmif_metrics::{Metric, MetricError, Options, Vifb, compute_image};

/// FFT-based Qcb/Qcv differ from FFTW in the last bits; everything else agrees to ~1e-15.
const TOL: f64 = 1e-9;

/// Qabf of a gray fused image with a colour source runs on `rgb2gray(double)` values, where
/// whether a Sobel response cancels to exactly 0 (the `Sx == 0` angle branch) depends on the
/// summation order inside `conv2`; Octave's order is not reproduced, so this one value is
/// checked to 5e-3 (measured 2.7e-3). See `toolkit::matlab::conv2_same3`.
fn tolerance(case: &str, metric: Vifb) -> f64 {
    if case == "gray_fused" && metric == Vifb::Qabf { 5e-3 } else { TOL }
}

#[test]
fn vifb_metrics_equal_octave_on_the_committed_cases() {
    let metric_of = |file_name: &str| {
        let v = Vifb::ALL.into_iter().find(|v| v.file_name() == file_name);
        Metric::Vifb(v.unwrap_or_else(|| panic!("unknown metric {file_name}")))
    };
    let tolerance = |case: &str, m: Metric| match m {
        Metric::Vifb(v) => tolerance(case, v),
        _ => unreachable!(),
    };
    let checked = check_octave_values("vifb", "vi", "ir", metric_of, tolerance);
    assert!(checked >= 13 * 9, "values.csv has {checked} rows");
}

#[test]
fn bad_inputs_give_errors_not_panics() {
    let o = Options::default();
    let a = vec![10u8; 12 * 10];
    let b = vec![20u8; 11 * 10];
    let rgb = vec![30u8; 12 * 10 * 3];
    let g12 = mmif_metrics::Image::new(12, 10, 1, &a).unwrap();
    let g11 = mmif_metrics::Image::new(11, 10, 1, &b).unwrap();
    let c12 = mmif_metrics::Image::new(12, 10, 3, &rgb).unwrap();
    for v in Vifb::ALL {
        let m = Metric::Vifb(v);
        // sizes that differ
        let r = compute_image(m, g12, g11, g12, &o);
        if v.fused_only() {
            assert!(r.is_ok(), "{m}: {r:?}");
        } else {
            assert!(matches!(r, Err(MetricError::ShapeMismatch { .. })), "{m}: {r:?}");
        }
        // a colour fused image with a gray visible image: MATLAB's img1(:,:,2) fails
        let r = compute_image(m, c12, g12, g12, &o);
        if matches!(v, Vifb::Ag | Vifb::Ei | Vifb::Sf) {
            assert!(r.is_ok(), "{m}: {r:?}");
        } else {
            assert!(matches!(r, Err(MetricError::Matlab { .. })), "{m}: {r:?}");
        }
    }
    assert_eq!(mmif_metrics::Image::new(2, 2, 4, &[0; 16]), Err(MetricError::BadChannels(4)));
    assert!(matches!(mmif_metrics::Image::new(2, 2, 3, &[0; 11]), Err(MetricError::BadBuffer { .. })));
    // through the gray entry point: values must be 8-bit levels
    let f = [0.5f32; 4];
    let g = mmif_metrics::Gray::new(2, 2, &f).unwrap();
    let r = mmif_metrics::compute(Metric::Vifb(Vifb::En), g, g, g, &o);
    assert!(matches!(r, Err(MetricError::Matlab { .. })), "{r:?}");
    // identical images: VIFB's mse is 0, so PSNR is 20·log10(255/0) = Inf, as in MATLAB
    let p = compute_image(Metric::Vifb(Vifb::Psnr), c12, c12, c12, &o).unwrap();
    assert_eq!(p, f64::INFINITY);
    // the evaluator's metrics refuse colour images instead of guessing a conversion
    assert_eq!(compute_image(Metric::En, c12, c12, c12, &o), Err(MetricError::NeedsGray(Metric::En)));
}
