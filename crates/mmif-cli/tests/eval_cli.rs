//! End-to-end tests of `mmif eval --preset vifb`/`mefb`, `--list-metrics` and `--rank` through the
//! binary, on the Octave-checked inputs of `crates/mmif-metrics/tests/data/{vifb,mefb}` (converted
//! to PNG here).

mod common;

use std::path::{Path, PathBuf};

use common::{Scratch, mmif, stderr};

fn toolkit_data(toolkit: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mmif-metrics/tests/data").join(toolkit)
}

fn vifb_data() -> PathBuf {
    toolkit_data("vifb")
}

/// Reads a binary PGM/PPM and writes it as PNG (gray or RGB, as the PNM is).
fn pnm_to_png(src: &Path, dst: &Path) {
    let bytes = std::fs::read(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned();
    let fields: Vec<&str> = text.split_ascii_whitespace().take(4).collect();
    let (w, h): (u32, u32) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let header_len = {
        // the four fields and their separators
        let mut pos = 0;
        let mut seen = 0;
        while seen < 4 {
            while bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            while !bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            seen += 1;
        }
        pos + 1
    };
    let data = bytes[header_len..].to_vec();
    match fields[0] {
        "P5" => image::GrayImage::from_raw(w, h, data).unwrap().save(dst).unwrap(),
        "P6" => image::RgbImage::from_raw(w, h, data).unwrap().save(dst).unwrap(),
        m => panic!("{m}"),
    }
}

/// `values.csv` rows of one case: (the toolkit's `.m` file name, value).
fn octave_values(toolkit: &str, case: &str) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(toolkit_data(toolkit).join("values.csv")).expect("values.csv");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0] == case).then(|| (f[1].to_string(), f[2].parse::<f64>().expect("a number")))
        })
        .collect()
}

/// Short name (`vifb.CE`) of a VIFB `.m` file name (`Cross_entropy`).
fn name_of(file_name: &str) -> String {
    mmif_metrics::Vifb::ALL
        .into_iter()
        .find(|v| v.file_name() == file_name)
        .map(|v| v.name().to_string())
        .unwrap_or_else(|| panic!("unknown {file_name}"))
}

/// Runs `mmif eval --preset <toolkit> --format json` on one committed case (`sources`: the
/// case's image part and the mmif flag it goes to) and checks every metric against Octave's value
/// (`name_of` maps the `.m` file name to mmif's metric name), in the preset's order. `elsewhere`:
/// the preset's metrics whose Octave values are not in the toolkit's `values.csv`.
fn preset_matches_octave(
    toolkit: &str,
    case: &str,
    sources: [(&str, &str); 2],
    name_of: impl Fn(&str) -> String,
    tol: f64,
    elsewhere: &[&str],
) {
    let dir = Scratch::new(case);
    for (part, flag) in sources.into_iter().chain([("fused", "fused")]) {
        pnm_to_png(&toolkit_data(toolkit).join(format!("{case}_{part}.pnm")), &dir.path(&format!("{flag}.png")));
    }
    let mut args = vec!["eval".to_string(), "--preset".into(), toolkit.into(), "--format".into(), "json".into()];
    for (_, flag) in sources.into_iter().chain([("fused", "fused")]) {
        args.extend([format!("--{flag}"), dir.s(&format!("{flag}.png"))]);
    }
    let o = mmif(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    let want = octave_values(toolkit, case);
    let keys: Vec<String> = j["mean"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), want.len() + elsewhere.len(), "{keys:?}");
    assert!(elsewhere.iter().all(|m| keys.iter().any(|k| k == m)), "{keys:?}");
    for (file_name, w) in want {
        let name = name_of(&file_name);
        let g = j["mean"][&name].as_f64().unwrap_or_else(|| panic!("{case}: {name} missing"));
        assert!((g - w).abs() <= tol * w.abs().max(1e-300), "{case} {name}: Octave {w}, mmif {g}");
    }
}

#[test]
fn preset_vifb_reproduces_octave_on_colour_images() {
    for case in ["colour_gray_ir", "colour_colour_ir"] {
        assert_eq!(octave_values("vifb", case).len(), 13);
        preset_matches_octave("vifb", case, [("ir", "ir"), ("vi", "vis")], name_of, 1e-9, &[]);
    }
}

#[test]
fn table_rank_and_metric_list() {
    let case = "colour_gray_ir";
    let dir = Scratch::new("rank");
    for sub in ["ir", "vi", "a", "b"] {
        std::fs::create_dir_all(dir.path(sub)).unwrap();
    }
    pnm_to_png(&vifb_data().join(format!("{case}_ir.pnm")), &dir.path("ir/x.png"));
    pnm_to_png(&vifb_data().join(format!("{case}_vi.pnm")), &dir.path("vi/x.png"));
    pnm_to_png(&vifb_data().join(format!("{case}_fused.pnm")), &dir.path("a/x.png"));
    // method b: the visible image itself as "fused" image
    pnm_to_png(&vifb_data().join(format!("{case}_vi.pnm")), &dir.path("b/x.png"));
    let o = mmif([
        "eval",
        "--preset",
        "vifb",
        "--ir-dir",
        &dir.s("ir"),
        "--vis-dir",
        &dir.s("vi"),
        "--fused-dir",
        &format!("A={}", dir.s("a")),
        "--fused-dir",
        &format!("B={}", dir.s("b")),
        "--rank",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let head = out.lines().next().unwrap();
    assert!(head.starts_with("Method") && head.contains("vifb.CE") && head.ends_with("Rank"), "{out}");
    let ranks: Vec<f64> = out.lines().skip(1).map(|l| l.split_whitespace().last().unwrap().parse().unwrap()).collect();
    assert_eq!(ranks.len(), 2);
    // two methods: each metric gives ranks 1 and 2 (or 1 and 1 on a tie), so the means sum to ≤ 3
    assert!(ranks.iter().all(|r| (1.0..=2.0).contains(r)) && ranks[0] + ranks[1] <= 3.0 + 1e-12, "{out}");

    let l = mmif(["eval", "--list-metrics"]);
    assert!(l.status.success(), "{}", stderr(&l));
    let text = String::from_utf8_lossy(&l.stdout);
    assert!(text.lines().any(|x| x.starts_with("vifb.MI") && x.contains("metricsMutinf.m")), "{text}");
    assert!(text.lines().any(|x| x.starts_with("MI ") && x.contains("Evaluator.py")), "{text}");
}

#[test]
fn vifb_preset_reports_mismatched_sizes() {
    let dir = Scratch::new("sizes");
    pnm_to_png(&vifb_data().join("colour_gray_ir_ir.pnm"), &dir.path("ir.png"));
    pnm_to_png(&vifb_data().join("colour_gray_ir_vi.pnm"), &dir.path("vis.png"));
    pnm_to_png(&vifb_data().join("tiny_fused.pnm"), &dir.path("fused.png"));
    let o = mmif([
        "eval",
        "--preset",
        "vifb",
        "--ir",
        &dir.s("ir.png"),
        "--vis",
        &dir.s("vis.png"),
        "--fused",
        &dir.s("fused.png"),
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("fused image is 9x8"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn preset_mefb_reproduces_octave_on_a_multi_exposure_pair() {
    let case = "colour_knossos6";
    // FMI's Octave values (through the edge() shim, on smaller crops) are in tests/data/fmi
    assert_eq!(octave_values("mefb", case).len(), mmif_metrics::Mefb::ALL.len() - 1);
    let name_of = |file_name: &str| {
        let m = mmif_metrics::Mefb::ALL.into_iter().find(|m| m.file_name() == file_name);
        m.expect("a MEFB metric").name().to_string()
    };
    // MATLAB's img1 is mmif's second source (--under), img2 its first (--over)
    preset_matches_octave("mefb", case, [("img2", "over"), ("img1", "under")], name_of, 1e-6, &["mefb.FMI"]);
}
