//! `kumar.Nabf` and `wang.MS-SSIM` against GNU Octave running their public MATLAB code
//! (`tests/octave/gen_extra.m`): N_abf on every input triple of `tests/data/mefb`, both on
//! synthetic integer images large enough for MS-SSIM's five scales, rebuilt here from the
//! parameters in the case name (`synth:h:w:A params:B params:how F is made`).

mod common;

use common::{Expected, data_dir, read_pnm, read_values, rel_diff};
use mmif_metrics::{Extra, Image, Metric, MetricError, Options, compute_image};

const TOL: f64 = 1e-6;

/// `mod(k1*r + k2*c + mod(r*c*k3 + k4, k5), 256)`, as `synth` in gen_extra.m.
fn synth(h: usize, w: usize, k: &[i64]) -> Vec<i64> {
    let mut v = Vec::with_capacity(h * w);
    for r in 0..h as i64 {
        for c in 0..w as i64 {
            v.push((k[0] * r + k[1] * c + (r * c * k[2] + k[3]).rem_euclid(k[4])).rem_euclid(256));
        }
    }
    v
}

/// The (a, b, fused) images of a `synth:` case.
fn synth_case(name: &str) -> (usize, usize, [Vec<u8>; 3]) {
    let f: Vec<&str> = name.split(':').collect();
    let (h, w): (usize, usize) = (f[1].parse().unwrap(), f[2].parse().unwrap());
    let params = |s: &str| s.split_whitespace().map(|x| x.parse().unwrap()).collect::<Vec<i64>>();
    let (a, b) = (synth(h, w, &params(f[3])), synth(h, w, &params(f[4])));
    let noise = synth(h, w, &[7, 3, 0, 0, 1]);
    let fused: Vec<i64> = (0..h * w)
        .map(|i| match f[5] {
            "mean" => (a[i] + b[i]).div_euclid(2),
            "max" => a[i].max(b[i]),
            "a" => a[i],
            "sharp" => (2 * a[i] - b[i]).clamp(0, 255),
            "noisy" => ((a[i] + b[i]).div_euclid(2) + noise[i] % 9).min(255),
            m => panic!("unknown fused rule {m}"),
        })
        .collect();
    let u8s = |v: &[i64]| v.iter().map(|&x| x as u8).collect::<Vec<u8>>();
    (h, w, [u8s(&a), u8s(&b), u8s(&fused)])
}

#[test]
fn nabf_and_ms_ssim_equal_octave() {
    let values = read_values("extra");
    let mut bad = Vec::new();
    let (mut n_nabf, mut n_ms) = (0, 0);
    for (case, metric_name, want) in &values {
        let metric = match metric_name.as_str() {
            "Nabf" => Extra::Nabf,
            "MS_SSIM" => Extra::MsSsim,
            m => panic!("unknown metric {m}"),
        };
        let got = if let Some(n) = case.strip_prefix("mefb:") {
            let dir = data_dir("mefb");
            let p = |part: &str| read_pnm(&dir.join(format!("{n}_{part}.pnm")));
            let (i1, i2, fu) = (p("img1"), p("img2"), p("fused"));
            compute_image(Metric::Extra(metric), fu.image(), i2.image(), i1.image(), &Options::default())
        } else {
            let (h, w, [a, b, f]) = synth_case(case);
            let (fi, bi, ai) = (Image::new(w, h, 1, &f), Image::new(w, h, 1, &b), Image::new(w, h, 1, &a));
            compute_image(Metric::Extra(metric), fi.unwrap(), bi.unwrap(), ai.unwrap(), &Options::default())
        };
        match (want, got) {
            (Expected::Value(w), Ok(g)) if rel_diff(g, *w) <= TOL => {}
            (w, g) => bad.push(format!("{case} {metric_name}: Octave {w:?}, mmif {g:?}")),
        }
        if metric == Extra::Nabf {
            n_nabf += 1;
        } else {
            n_ms += 1;
        }
    }
    assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
    assert!(n_nabf >= 40 && n_ms >= 12, "{n_nabf} N_abf and {n_ms} MS-SSIM cases");
}

#[test]
fn extra_metrics_on_bad_inputs() {
    let o = Options::default();
    let one = [7u8];
    let px = Image::new(1, 1, 1, &one).unwrap();
    // one pixel: N_abf has no edge anywhere (0), MS-SSIM is below its 176-pixel minimum (-Inf)
    assert_eq!(compute_image(Metric::Extra(Extra::Nabf), px, px, px, &o), Ok(0.0));
    assert_eq!(compute_image(Metric::Extra(Extra::MsSsim), px, px, px, &o), Ok(f64::NEG_INFINITY));
    let (a, b) = ([1u8; 6], [2u8; 4]);
    let (i6, i4) = (Image::new(3, 2, 1, &a).unwrap(), Image::new(2, 2, 1, &b).unwrap());
    for m in Extra::ALL {
        let r = compute_image(Metric::Extra(m), i6, i4, i6, &o);
        assert!(matches!(r, Err(MetricError::ShapeMismatch { .. })), "{r:?}");
    }
}
