//! Properties every implementation of the metrics must satisfy, on small synthetic images.

use mmif_metrics::{
    Gray, Mefb, Metric, MetricError, Options, Preset, compute, en, mutual_info, qabf, sd, ssim, ssim_pair, vif,
    vif_pair,
};

const W: usize = 64;
const H: usize = 48;

/// A deterministic 8-bit test image: a smooth pattern plus xorshift noise.
fn image(seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..W * H)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let (r, c) = ((i / W) as f64, (i % W) as f64);
            let smooth = 128.0 + 60.0 * (r / 7.0 + seed as f64).sin() * (c / 5.0).cos();
            (smooth + (s % 41) as f64 - 20.0).round().clamp(0.0, 255.0) as f32
        })
        .collect()
}

fn gray(d: &[f32]) -> Gray<'_> {
    Gray::new(W, H, d).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn constant_image_has_no_entropy_spread_or_detail() {
    let c = vec![77.0f32; W * H];
    let g = gray(&c);
    let o = Options::default();
    for m in [Metric::En, Metric::Sd, Metric::Sf, Metric::Ag] {
        assert_eq!(compute(m, g, g, g, &o).unwrap(), 0.0, "{m}");
    }
}

#[test]
fn entropy_is_bounded_by_eight_bits_and_equals_self_information() {
    let d = image(1);
    let g = gray(&d);
    let h = en(g);
    assert!(h > 0.0 && h <= 8.0);
    // I(X;X) = H(X): EN is in bits, MI in nats.
    let i = mutual_info(&d, &d);
    assert!(rel(i, h * std::f64::consts::LN_2) < 1e-12, "{i} vs {h}");
}

#[test]
fn mutual_information_is_symmetric() {
    let (x, y) = (image(2), image(3));
    let (xy, yx) = (mutual_info(&x, &y), mutual_info(&y, &x));
    assert!(xy > 0.0);
    assert!(rel(xy, yx) < 1e-12, "{xy} vs {yx}");
}

#[test]
fn ssim_of_an_image_with_itself_is_one_per_source() {
    let d = image(4);
    let g = gray(&d);
    for range in [2.0, 255.0] {
        assert!((ssim_pair(g, g, range) - 1.0).abs() < 1e-6);
        assert!((ssim(g, g, g, range) - 2.0).abs() < 2e-6);
    }
}

#[test]
fn ssim_is_symmetric_and_below_one_for_different_images() {
    let (x, y) = (image(5), image(6));
    let (gx, gy) = (gray(&x), gray(&y));
    let s = ssim_pair(gx, gy, 255.0);
    assert_eq!(s, ssim_pair(gy, gx, 255.0));
    assert!(s < 0.99);
}

#[test]
fn vif_of_an_image_with_itself_is_one() {
    let d = image(7);
    let g = gray(&d);
    assert!((vif_pair(g, g) - 1.0).abs() < 1e-6);
    assert!((vif(g, g, g) - 2.0).abs() < 2e-6);
    let blurred: Vec<f32> =
        d.iter().enumerate().map(|(i, &v)| if i % W > 0 { ((v + d[i - 1]) / 2.0).round() } else { v }).collect();
    assert!(vif_pair(g, gray(&blurred)) < 1.0);
}

#[test]
fn qabf_of_a_source_fused_with_itself_reaches_the_sigmoid_ceiling() {
    // With F = A every edge keeps its strength and angle: Q^{AF} = T_g·T_a/(1+e^{-22·0.2})
    // wherever the edge is clear, so Q^{AB/F} sits just below that ceiling.
    let a = image(8);
    // B all zero: no edges at all, even on the zero-padded border.
    let flat = vec![0.0f32; W * H];
    let ceiling = 0.9994 * 0.9879 / (1.0 + (-22.0f64 * 0.2).exp());
    let q = qabf(gray(&a), gray(&a), gray(&flat));
    assert!(q <= ceiling + 1e-6 && q > ceiling - 2e-3, "{q} vs {ceiling}");
    let b = image(9);
    let q2 = qabf(gray(&a), gray(&a), gray(&b));
    assert!(q2 < q, "a fused image ignoring B must lose B's edges");
}

#[test]
fn pair_metrics_of_identical_images() {
    let d = image(10);
    let g = gray(&d);
    let o = Options::default();
    assert_eq!(compute(Metric::Mse, g, g, g, &o).unwrap(), 0.0);
    assert!(compute(Metric::Psnr, g, g, g, &o).unwrap().is_infinite());
    assert!((compute(Metric::Cc, g, g, g, &o).unwrap() - 1.0).abs() < 1e-6);
}

#[test]
fn source_order_does_not_matter() {
    let (f, a, b) = (image(11), image(12), image(13));
    let (f, a, b) = (gray(&f), gray(&a), gray(&b));
    let o = Options::default();
    let mut asymmetric = Vec::new();
    for m in Metric::ALL {
        match (compute(m, f, a, b, &o), compute(m, f, b, a, &o)) {
            (Ok(ab), Ok(ba)) if ab == ba || rel(ab, ba) < 1e-12 => {}
            // MEFB's code itself depends on the order: Qc scores 0 where σ_AF/(σ_AF+σ_BF) < 0 but 1
            // where it is > 1, and VIF takes the second source's terms where the gains tie
            (Ok(_), Ok(_)) if matches!(m, Metric::Mefb(Mefb::Qc | Mefb::Vif)) => {}
            // MEF-SSIM refuses gray images either way
            (Err(e), Err(e2)) if e == e2 => {}
            (ab, ba) => asymmetric.push(format!("{m}: {ab:?} vs {ba:?}")),
        }
    }
    assert!(asymmetric.is_empty(), "{}", asymmetric.join("\n"));
}

#[test]
fn standard_deviation_matches_definition() {
    let d = image(14);
    let n = d.len() as f64;
    let mean = d.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = d.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    assert!(rel(sd(gray(&d)), var.sqrt()) < 1e-6);
}

#[test]
fn presets_compute_on_valid_images() {
    let (f, a, b) = (image(15), image(16), image(17));
    for p in [Preset::Cddfuse, Preset::Film] {
        let vals = mmif_metrics::compute_all(p.metrics(), gray(&f), gray(&a), gray(&b), &p.options()).unwrap();
        assert!(vals.iter().all(|v| v.is_finite()), "{p:?}: {vals:?}");
    }
}

#[test]
fn checked_entry_point_rejects_bad_input() {
    let d = image(18);
    let small = vec![0.0f32; 20 * 20];
    let s = Gray::new(20, 20, &small).unwrap();
    let o = Options::default();
    assert!(matches!(compute(Metric::Ssim, gray(&d), s, s, &o), Err(MetricError::ShapeMismatch { .. })));
    assert!(matches!(compute(Metric::Vif, s, s, s, &o), Err(MetricError::TooSmall { .. })));
    assert!(Gray::new(W, H, &small).is_err());
}
