//! The `mefb.*` metrics against GNU Octave running MEFB's own `metrics/metrics*.m` on small
//! committed inputs (crops of MEFB's multi-exposure pairs in colour and gray, odd sizes, gray
//! sources with a colour fused image and the reverse, constant, zero, small and one-pixel
//! images): `tests/data/mefb/`, made by `tests/octave/gen_mefb.m` (MATLAB's `rgb2gray` shimmed,
//! since Octave's rounds its weights).

mod common;

use common::check_octave_values;
use mmif_metrics::{Image, Mefb, Metric, MetricError, Options, ToolkitError, compute_image};

/// The acceptance tolerance of issue 16.
const TOL: f64 = 1e-6;

#[test]
fn mefb_metrics_equal_octave_on_the_committed_cases() {
    let metric_of = |file_name: &str| {
        let m = Mefb::ALL.into_iter().find(|m| m.file_name() == file_name);
        Metric::Mefb(m.unwrap_or_else(|| panic!("unknown metric {file_name}")))
    };
    let checked = check_octave_values("mefb", "img1", "img2", metric_of, |_, _| TOL);
    assert!(checked >= 19 * 20, "values.csv has {checked} rows");
}

#[test]
fn every_mefb_metric_has_at_least_twenty_finite_octave_values() {
    let values = common::read_values("mefb");
    // FMI's Octave values need the edge() shim and smaller images: tests/data/fmi, fmi_octave.rs
    for m in Mefb::ALL.into_iter().filter(|&m| m != Mefb::Fmi) {
        let n = values
            .iter()
            .filter(|(_, f, v)| f == m.file_name() && matches!(v, common::Expected::Value(x) if x.is_finite()))
            .count();
        assert!(n >= 20, "{}: {n} finite values", m.name());
    }
}

#[test]
fn bad_inputs_give_errors_or_matlab_values_not_panics() {
    let o = Options::default();
    let (a, b) = (vec![10u8; 12 * 11], vec![20u8; 11 * 11]);
    let rgb: Vec<u8> = (0..12 * 11 * 3).map(|i| (i * 37 % 251) as u8).collect();
    let g12 = Image::new(12, 11, 1, &a).unwrap();
    let g11 = Image::new(11, 11, 1, &b).unwrap();
    let c12 = Image::new(12, 11, 3, &rgb).unwrap();
    let one = [0u8, 9, 200];
    let px = Image::new(1, 1, 3, &one).unwrap();
    for m in Mefb::ALL {
        let metric = Metric::Mefb(m);
        // sizes that differ
        let r = compute_image(metric, g12, g11, g12, &o);
        if m.fused_only() {
            assert!(r.is_ok(), "{metric}: {r:?}");
        } else {
            assert!(matches!(r, Err(MetricError::ShapeMismatch { .. })), "{metric}: {r:?}");
        }
        // a colour fused image with one gray source: MATLAB's img(:,:,2) fails (AG and EI read
        // only the fused image)
        let r = compute_image(metric, c12, g12, c12, &o);
        if matches!(m, Mefb::Ag | Mefb::Ei) {
            assert!(r.is_ok(), "{metric}: {r:?}");
        } else {
            assert!(matches!(r, Err(MetricError::Matlab { .. })), "{metric}: {r:?}");
        }
        // a 1x1 image: a value (possibly NaN/Inf, as MATLAB's) or MATLAB's error, never a panic
        let r = compute_image(metric, px, px, px, &o);
        assert!(r.is_ok() || matches!(r, Err(MetricError::Matlab { .. })), "{metric}: {r:?}");
    }
    // a constant non-zero image: normalize1 divides 0 by 0, and MATLAB's histogram index NaN fails
    let r = compute_image(Metric::Mefb(Mefb::Nmi), g12, g12, g12, &o);
    assert!(matches!(r, Err(MetricError::Matlab { error: ToolkitError::NotEightBit(v), .. }) if v.is_nan()), "{r:?}");
    // Qc/Qy/Qw leave their outputs unassigned below 11x11; MEF-SSIM returns -Inf below 44
    let small = Image::new(10, 11, 3, &rgb[..10 * 11 * 3]).unwrap();
    let r = compute_image(Metric::Mefb(Mefb::Qy), small, small, small, &o);
    assert!(matches!(r, Err(MetricError::Matlab { error: ToolkitError::TooSmall(11), .. })), "{r:?}");
    assert_eq!(compute_image(Metric::Mefb(Mefb::MefSsim), c12, c12, c12, &o), Ok(f64::NEG_INFINITY));
    // MEF-SSIM converts every image with rgb2gray
    let r = compute_image(Metric::Mefb(Mefb::MefSsim), g12, g12, g12, &o);
    assert!(matches!(r, Err(MetricError::Matlab { error: ToolkitError::NeedsColour, .. })), "{r:?}");
}

#[test]
fn mefb_and_vifb_differ_where_their_colour_wrappers_do() {
    // gray sources, colour fused: MEFB reads fused(:,:,1) only, VIFB fails on the gray visible
    // image's second channel
    let g: Vec<u8> = (0..20 * 20).map(|i| (i * 7 % 256) as u8).collect();
    let c: Vec<u8> = (0..20 * 20 * 3).map(|i| (i * 13 % 256) as u8).collect();
    let (gi, ci) = (Image::new(20, 20, 1, &g).unwrap(), Image::new(20, 20, 3, &c).unwrap());
    let first: Vec<u8> = c.iter().step_by(3).copied().collect();
    let fi = Image::new(20, 20, 1, &first).unwrap();
    let o = Options::default();
    let mefb = compute_image(Metric::Mefb(Mefb::Psnr), ci, gi, gi, &o).unwrap();
    assert_eq!(mefb, compute_image(Metric::Mefb(Mefb::Psnr), fi, gi, gi, &o).unwrap());
    let vifb = compute_image(Metric::Vifb(mmif_metrics::Vifb::Psnr), ci, gi, gi, &o);
    assert!(matches!(vifb, Err(MetricError::Matlab { .. })), "{vifb:?}");
}
