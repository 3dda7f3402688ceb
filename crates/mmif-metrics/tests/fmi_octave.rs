//! `mefb.FMI`, `haghighat.FMI-pixel` and `haghighat.FMI-gradient` against GNU Octave running
//! MEFB's `metrics/metricsFMI.m` as it is (feature `'edge'`, MATLAB's `edge()` through the shim
//! `tools/octave_shims/matlab_edge/edge.m`, since Octave's own `edge` differs) and with the
//! feature `'none'` / `'gradient'`: small crops of the MEFB test inputs in `tests/data/fmi/`, made
//! by `tests/octave/gen_fmi.m`. The `edge_*` cases are Octave's own `edge` maps (0/1 images), so
//! FMI-pixel on them checks the FMI part of MEFB's metric on binary edge features.

mod common;

use common::check_octave_values;
use mmif_metrics::{Extra, Image, Mefb, Metric, MetricError, Options, compute_image};

const TOL: f64 = 1e-6;

fn metric_of(file_name: &str) -> Metric {
    match file_name {
        "FMI" => Metric::Mefb(Mefb::Fmi),
        "FMI_pixel" => Metric::Extra(Extra::FmiPixel),
        "FMI_gradient" => Metric::Extra(Extra::FmiGradient),
        m => panic!("unknown metric {m}"),
    }
}

/// With a constant fused image every window's MI of FMI-pixel and FMI-gradient is 0 in exact
/// arithmetic; Octave's and mmif's values are both rounding noise (|v| ~ 1e-17, of either sign),
/// compared by size only. (FMI's edge map of a constant image is all zeros, a binary feature
/// whose windows are constant: no noise there.)
const NOISE_CASE: &str = "const_fused";

#[test]
fn fmi_equals_octave_on_the_committed_cases() {
    let noisy = |case: &str, m: Metric| case == NOISE_CASE && m != Metric::Mefb(Mefb::Fmi);
    let tol = |case: &str, m: Metric| if noisy(case, m) { f64::INFINITY } else { TOL };
    let checked = check_octave_values("fmi", "img1", "img2", metric_of, tol);
    assert!(checked >= 3 * 24, "values.csv has {checked} rows");
    let dir = common::data_dir("fmi");
    let p = |part: &str| common::read_pnm(&dir.join(format!("{NOISE_CASE}_{part}.pnm")));
    let (i1, i2, fu) = (p("img1"), p("img2"), p("fused"));
    for (case, name, want) in common::read_values("fmi") {
        if !noisy(&case, metric_of(&name)) {
            continue;
        }
        let got = compute_image(metric_of(&name), fu.image(), i2.image(), i1.image(), &Options::default()).unwrap();
        assert!(matches!(want, common::Expected::Value(w) if w.abs() < 1e-15), "{name}: Octave {want:?}");
        assert!(got.abs() < 1e-15, "{name}: mmif {got}");
    }
}

#[test]
fn every_fmi_variant_has_at_least_twenty_finite_octave_values_and_edge_maps_are_covered() {
    let values = common::read_values("fmi");
    for name in ["FMI", "FMI_pixel", "FMI_gradient"] {
        let finite = |prefix: &str| {
            values
                .iter()
                .filter(|(c, f, v)| {
                    f == name && c.starts_with(prefix) && matches!(v, common::Expected::Value(x) if x.is_finite())
                })
                .count()
        };
        assert!(finite("") >= 20, "{name}: {} finite values", finite(""));
        assert!(finite("edge_") >= 4, "{name}: {} edge-map cases", finite("edge_"));
    }
}

#[test]
fn fmi_bad_inputs() {
    let o = Options::default();
    let px = [7u8];
    let one = Image::new(1, 1, 1, &px).unwrap();
    let (a, b) = ([1u8; 6], [2u8; 4]);
    let (i6, i4) = (Image::new(3, 2, 1, &a).unwrap(), Image::new(2, 2, 1, &b).unwrap());
    let rgb: Vec<u8> = (0..4 * 4 * 3).map(|i| (i * 29 % 256) as u8).collect();
    let (c4, g4) = (Image::new(4, 4, 3, &rgb).unwrap(), Image::new(4, 4, 1, &rgb[..16]).unwrap());
    for m in [Metric::Mefb(Mefb::Fmi), Metric::Extra(Extra::FmiPixel), Metric::Extra(Extra::FmiGradient)] {
        // no 3x3 window: MATLAB's mean2 of an empty map
        assert!(compute_image(m, one, one, one, &o).unwrap().is_nan());
        assert!(matches!(compute_image(m, i6, i4, i6, &o), Err(MetricError::ShapeMismatch { .. })));
        // colour sources with a gray fused image, or one gray source with a colour fused image
        assert!(matches!(compute_image(m, g4, c4, c4, &o), Err(MetricError::Matlab { .. })));
        assert!(matches!(compute_image(m, c4, g4, c4, &o), Err(MetricError::Matlab { .. })));
        // the fused image equal to both sources: every window scores 1
        assert_eq!(compute_image(m, g4, g4, g4, &o), Ok(1.0));
    }
}
