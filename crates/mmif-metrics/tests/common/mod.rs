//! Shared helpers of the toolkit tests: PNM inputs and the Octave-generated value tables in
//! `tests/data/<toolkit>/values.csv` (`case,metric,value` with `value` a number, `NaN`, `Inf` or
//! `error`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// An 8-bit image read from a binary PGM (P5) or PPM (P6) file.
pub struct Pnm {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl Pnm {
    pub fn image(&self) -> mmif_metrics::Image<'_> {
        mmif_metrics::Image::new(self.width, self.height, self.channels, &self.data).unwrap()
    }
}

pub fn data_dir(toolkit: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(toolkit)
}

pub fn read_pnm(path: &Path) -> Pnm {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // header: magic, width, height, maxval, each followed by one whitespace byte
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..pos]).into_owned());
    }
    pos += 1;
    let channels = match fields[0].as_str() {
        "P5" => 1,
        "P6" => 3,
        m => panic!("{}: not a binary PGM/PPM ({m})", path.display()),
    };
    let (width, height): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    assert_eq!(fields[3], "255");
    let data = bytes[pos..].to_vec();
    assert_eq!(data.len(), width * height * channels, "{}", path.display());
    Pnm { width, height, channels, data }
}

/// The expected value of one (case, metric): a number (possibly NaN/±Inf) or MATLAB's error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Expected {
    Value(f64),
    Error,
}

pub fn read_values(toolkit: &str) -> Vec<(String, String, Expected)> {
    let path = data_dir(toolkit).join("values.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let v = match f[2] {
                "error" => Expected::Error,
                "NaN" => Expected::Value(f64::NAN),
                "Inf" => Expected::Value(f64::INFINITY),
                "-Inf" => Expected::Value(f64::NEG_INFINITY),
                s => Expected::Value(s.parse().unwrap_or_else(|e| panic!("{l}: {e}"))),
            };
            (f[0].to_string(), f[1].to_string(), v)
        })
        .collect()
}

/// Relative difference, with NaN == NaN and equal infinities counting as equal (0).
pub fn rel_diff(got: f64, want: f64) -> f64 {
    if (got.is_nan() && want.is_nan()) || got == want {
        return 0.0;
    }
    (got - want).abs() / got.abs().max(want.abs())
}

/// Checks every row of `tests/data/<toolkit>/values.csv` against mmif: the case's images are
/// `<case>_<img1>.pnm`, `<case>_<img2>.pnm` (MATLAB's `img1`, `img2`) and `<case>_fused.pnm`;
/// `metric_of` maps the `.m` file's metric name to the metric, `tolerance` gives the relative
/// tolerance of a (case, metric). An `error` row must be a [`MetricError::Matlab`]. Returns the
/// number of rows checked; panics listing every row that differs.
pub fn check_octave_values(
    toolkit: &str,
    img1: &str,
    img2: &str,
    metric_of: impl Fn(&str) -> mmif_metrics::Metric,
    tolerance: impl Fn(&str, mmif_metrics::Metric) -> f64,
) -> usize {
    use mmif_metrics::{MetricError, Options, compute_image};
    let dir = data_dir(toolkit);
    let mut checked = 0;
    let mut bad = Vec::new();
    for (case, file_name, want) in &read_values(toolkit) {
        let metric = metric_of(file_name);
        let i1 = read_pnm(&dir.join(format!("{case}_{img1}.pnm")));
        let i2 = read_pnm(&dir.join(format!("{case}_{img2}.pnm")));
        let fu = read_pnm(&dir.join(format!("{case}_fused.pnm")));
        // compute_image's `a` is MATLAB's img2, its `b` MATLAB's img1
        let got = compute_image(metric, fu.image(), i2.image(), i1.image(), &Options::default());
        match (want, got) {
            (Expected::Value(w), Ok(g)) => {
                let d = rel_diff(g, *w);
                if d > tolerance(case, metric) {
                    bad.push(format!("{case} {metric}: Octave {w}, mmif {g} (rel {d:.2e})"));
                }
            }
            (Expected::Error, Err(MetricError::Matlab { .. })) => {}
            (w, g) => bad.push(format!("{case} {metric}: Octave {w:?}, mmif {g:?}")),
        }
        checked += 1;
    }
    assert!(bad.is_empty(), "{} of {checked} differ:\n{}", bad.len(), bad.join("\n"));
    checked
}
