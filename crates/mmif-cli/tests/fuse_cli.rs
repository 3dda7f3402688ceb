//! End-to-end tests of `mmif fuse`, `convert` and `inspect` through the binary.

mod common;

use std::path::{Path, PathBuf};

use common::{Scratch, max_abs_diff, mmif, stderr};

use mmif_io::fixtures;

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn cddfuse_weights() -> PathBuf {
    let meta = fixtures::json("forward_meta.json");
    fixtures::path(meta["models"]["cddfuse"]["pth"]["file"].as_str().expect("models.cddfuse.pth.file"))
}

#[test]
fn cddfuse_npy_output_reproduces_official_fused_image() {
    for (name, nth) in [("cddfuse_ivf_fused", 0), ("cddfuse_ivf_odd_fused", 1)] {
        let (shape, want) = fixtures::npy(&format!("{name}.npy"));
        let (ir, _) = fixtures::input("ivf_ir", &shape, nth);
        let (vis, _) = fixtures::input("ivf_vi", &shape, nth);
        let dir = Scratch::new(name);
        let out = dir.s("out.npy");
        let o = mmif([
            "fuse",
            "-m",
            "cddfuse",
            "-w",
            &s(&cddfuse_weights()),
            "--ir",
            &s(&ir),
            "--vis",
            &s(&vis),
            "-o",
            &out,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let (got_shape, got) = mmif_io::read_npy_f32(Path::new(&out)).expect("output");
        assert_eq!(got_shape, shape);
        let d = max_abs_diff(&got, &want);
        assert!(d <= 1e-4, "{name}: max abs difference {d}");
    }
}

#[test]
fn medical_pair_defaults_to_the_ivf_checkpoint_residual() {
    // Without --residual, a medical pair with a checkpoint whose name lacks "MIF" adds VIS+IR back,
    // as test_MIF.py does with the IVF checkpoint.
    let (shape, want) = fixtures::npy("cddfuse_mif_ivfckpt_fused.npy");
    let (mri, _) = fixtures::input("mif_mri", &shape, 0);
    let (pet, _) = fixtures::input("mif_pet", &shape, 0);
    let dir = Scratch::new("mif");
    let out = dir.s("out.npy");
    let o = mmif([
        "fuse",
        "-m",
        "cddfuse",
        "-w",
        &s(&cddfuse_weights()),
        "--mri",
        &s(&mri),
        "--func",
        &s(&pet),
        "-o",
        &out,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, got) = mmif_io::read_npy_f32(Path::new(&out)).expect("output");
    assert!(max_abs_diff(&got, &want) <= 1e-4);
}

#[test]
fn colour_visible_gives_colour_output_of_the_same_size() {
    let dir = Scratch::new("colour");
    let (w, h) = (37u32, 23u32);
    let vis = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 11) as u8, 200]));
    let ir = image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x + y) * 5) as u8]));
    vis.save(dir.path("vis.png")).expect("write vis");
    ir.save(dir.path("ir.png")).expect("write ir");
    let out = dir.s("fused.png");
    let o = mmif(["fuse", "-m", "mean", "--ir", &dir.s("ir.png"), "--vis", &dir.s("vis.png"), "-o", &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = image::open(&out).expect("fused image");
    assert_eq!((img.width(), img.height()), (w, h));
    assert!(matches!(img.color(), image::ColorType::Rgb8), "got {:?}", img.color());
    let gray_out = dir.s("gray.png");
    let o =
        mmif(["fuse", "-m", "mean", "--gray", "--ir", &dir.s("ir.png"), "--vis", &dir.s("vis.png"), "-o", &gray_out]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(matches!(image::open(&gray_out).expect("gray image").color(), image::ColorType::L8));
}

#[test]
fn default_model_is_weight_free_and_says_so() {
    let dir = Scratch::new("default");
    let a = image::GrayImage::from_fn(20, 16, |x, _| image::Luma([(x * 10) as u8]));
    let b = image::GrayImage::from_fn(20, 16, |_, y| image::Luma([(y * 12) as u8]));
    a.save(dir.path("a.png")).expect("a");
    b.save(dir.path("b.png")).expect("b");
    let o = mmif(["fuse", "--a", &dir.s("a.png"), "--b", &dir.s("b.png"), "-o", &dir.s("f.png")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("gff"), "{}", stderr(&o));
}

#[test]
fn bad_inputs_are_clear_errors_not_panics() {
    let dir = Scratch::new("bad");
    let a = image::GrayImage::from_fn(20, 16, |x, _| image::Luma([(x * 10) as u8]));
    let b = image::GrayImage::from_fn(21, 16, |_, y| image::Luma([(y * 12) as u8]));
    a.save(dir.path("a.png")).expect("a");
    b.save(dir.path("b.png")).expect("b");
    let check = |args: &[&str], needle: &str| {
        let o = mmif(args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(err.contains(needle), "{args:?}: expected `{needle}` in: {err}");
    };
    let out = dir.s("o.png");
    check(&["fuse", "-m", "mean", "--ir", &dir.s("a.png"), "--vis", &dir.s("b.png"), "-o", &out], "differ in size");
    assert!(!dir.path("o.png").exists(), "no output may be written for a failed pair");
    // A truncated PNG.
    let bytes = std::fs::read(dir.path("a.png")).expect("a");
    std::fs::write(dir.path("cut.png"), &bytes[..bytes.len() / 2]).expect("cut");
    check(&["fuse", "-m", "mean", "--ir", &dir.s("cut.png"), "--vis", &dir.s("a.png"), "-o", &out], "cut.png");
    // A checkpoint that is not a zip.
    std::fs::write(dir.path("fake.pth"), b"not a checkpoint at all").expect("fake");
    check(
        &[
            "fuse",
            "-m",
            "cddfuse",
            "-w",
            &dir.s("fake.pth"),
            "--ir",
            &dir.s("a.png"),
            "--vis",
            &dir.s("a.png"),
            "-o",
            &out,
        ],
        "fake.pth",
    );
    // A network without weights, an unknown model, a lone source.
    check(&["fuse", "-m", "cddfuse", "--ir", &dir.s("a.png"), "--vis", &dir.s("a.png"), "-o", &out], "--weights");
    check(&["fuse", "-m", "nosuch", "--ir", &dir.s("a.png"), "--vis", &dir.s("a.png"), "-o", &out], "nosuch");
    check(&["fuse", "--ir", &dir.s("a.png"), "-o", &out], "--vis");
    // Never overwrite an input.
    check(
        &["fuse", "-m", "mean", "--ir", &dir.s("a.png"), "--vis", &dir.s("a.png"), "-o", &dir.s("a.png"), "--force"],
        "input",
    );
}

#[test]
fn folder_mode_pairs_by_stem_and_reports_failures() {
    let dir = Scratch::new("folders");
    for d in ["ir", "vi", "out"] {
        std::fs::create_dir_all(dir.path(d)).expect("dir");
    }
    let img = |w: u32| image::GrayImage::from_fn(w, 12, |x, y| image::Luma([(x * 9 + y * 3) as u8]));
    img(16).save(dir.path("ir/one.png")).expect("w");
    img(16).save(dir.path("vi/one.png")).expect("w");
    img(16).save(dir.path("ir/two.png")).expect("w");
    img(17).save(dir.path("vi/two.png")).expect("w");
    img(16).save(dir.path("ir/lonely.png")).expect("w");
    let o =
        mmif(["fuse", "-m", "max", "--ir-dir", &dir.s("ir"), "--vis-dir", &dir.s("vi"), "--out-dir", &dir.s("out")]);
    let err = stderr(&o);
    assert!(!o.status.success(), "a failed pair must make the exit code non-zero");
    assert!(err.contains("lonely"), "unpaired file not reported: {err}");
    assert!(err.contains("two"), "failed pair not reported: {err}");
    assert!(dir.path("out/one.png").is_file());
    assert!(!dir.path("out/two.png").exists());
}

#[test]
fn convert_and_inspect_round_trip() {
    let dir = Scratch::new("convert");
    let out = dir.s("w.safetensors");
    let o = mmif(["convert", &s(&cddfuse_weights()), &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = mmif(["inspect", &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(listing.contains("DIDF_Encoder.patch_embed.proj.weight"), "{listing}");
    // The converted file fuses exactly like the original.
    let (shape, want) = fixtures::npy("cddfuse_ivf_fused.npy");
    let (ir, _) = fixtures::input("ivf_ir", &shape, 0);
    let (vis, _) = fixtures::input("ivf_vi", &shape, 0);
    let f = dir.s("f.npy");
    let o = mmif(["fuse", "-m", "cddfuse", "-w", &out, "--ir", &s(&ir), "--vis", &s(&vis), "-o", &f]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, got) = mmif_io::read_npy_f32(Path::new(&f)).expect("output");
    assert!(max_abs_diff(&got, &want) <= 1e-4);
}

/// Runs `mmif ARGS` (a `bench --json`), which must succeed, and returns its rows.
fn bench_rows<const N: usize>(args: [&str; N]) -> Vec<serde_json::Value> {
    let out = mmif(args);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    rows.as_array().expect("an array of rows").clone()
}

/// A number of a bench row.
fn num(r: &serde_json::Value, k: &str) -> f64 {
    r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"))
}

#[test]
fn bench_reports_time_memory_and_the_graphs_flops_as_json() {
    let rows = bench_rows([
        "--threads",
        "1",
        "bench",
        "-m",
        "emma",
        "--size",
        "128x64",
        "--size",
        "64x64",
        "--runs",
        "2",
        "--json",
    ]);
    assert_eq!(rows.len(), 2, "one row per size");
    for r in &rows {
        assert_eq!(r["model"], "emma");
        assert_eq!(r["runs"], 2);
        assert!(
            num(r, "min_s") > 0.0 && num(r, "min_s") <= num(r, "median_s") && num(r, "median_s") <= num(r, "max_s")
        );
        assert!(num(r, "gflop") > 0.0);
        let rate = num(r, "gflop") / num(r, "median_s");
        assert!((num(r, "gflop_per_s") - rate).abs() <= 1e-9 * rate);
    }
    // The U-Fuser's work grows with the pixels (both sizes are whole multiples of its padding).
    let ratio = num(&rows[0], "gflop") / num(&rows[1], "gflop");
    assert!((ratio - 2.0).abs() < 1e-9, "{ratio}");
    // A malformed size is an error, not a panic.
    let bad = mmif(["bench", "-m", "emma", "--size", "64by64"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("64by64"), "{}", stderr(&bad));
}

#[test]
fn bench_alternates_thread_counts_in_rounds() {
    let rows = bench_rows([
        "--threads",
        "1,2",
        "bench",
        "-m",
        "emma",
        "--size",
        "64x64",
        "--runs",
        "2",
        "--rounds",
        "2",
        "--json",
    ]);
    assert_eq!(rows.len(), 2, "one row per thread count");
    // `threads` is what rayon reported inside each pool, not the argument echoed.
    assert_eq!(rows[0]["threads"], 1);
    assert_eq!(rows[1]["threads"], 2);
    assert_eq!(num(&rows[0], "speedup_vs_first"), 1.0);
    let speedup = num(&rows[0], "median_s") / num(&rows[1], "median_s");
    assert!((num(&rows[1], "speedup_vs_first") - speedup).abs() <= 1e-9 * speedup);
    for r in &rows {
        assert_eq!((r["runs"].as_u64(), r["rounds"].as_u64()), (Some(2), Some(2)));
        assert!(num(r, "gflop") > 0.0 && num(r, "gflop") == num(&rows[0], "gflop"));
    }
    // A single count has no speed-up; lists are for bench only; zero threads is refused.
    let one = bench_rows(["--threads", "1", "bench", "-m", "emma", "--size", "32x32", "--runs", "1", "--json"]);
    assert!(one[0]["speedup_vs_first"].is_null(), "{}", one[0]);
    let list = mmif(["--threads", "1,2", "models"]);
    assert!(!list.status.success());
    assert!(stderr(&list).contains("mmif bench"), "{}", stderr(&list));
    let zero = mmif(["--threads", "0", "models"]);
    assert!(!zero.status.success());
    assert!(stderr(&zero).contains("at least 1"), "{}", stderr(&zero));
}
