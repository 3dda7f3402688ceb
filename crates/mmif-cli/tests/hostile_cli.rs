//! Hostile and extreme inputs through the binary: oversized images refused from their header,
//! tiny images refused with the network's minimum (never a panic), networks refused when their
//! estimated peak memory exceeds the machine's, and interrupted folder runs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Scratch, filled_weights, fixtures, mmif, mmif_dyn, stderr};
use mmif_testkit::hostile;

fn gray(w: u32, h: u32, k: u32) -> image::GrayImage {
    image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x * k + y * 7 + (x * y) % 13) % 256) as u8]))
}

fn cddfuse_weights() -> PathBuf {
    let meta = fixtures::json("forward_meta.json");
    fixtures::path(meta["models"]["cddfuse"]["pth"]["file"].as_str().expect("models.cddfuse.pth.file"))
}

/// Exit code 1 (an error, not a panic's 101) with every `needle` in the message.
fn assert_refused(o: &std::process::Output, needles: &[&str]) {
    assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
    let e = stderr(o);
    assert!(!e.contains("panicked"), "{e}");
    for n in needles {
        assert!(e.contains(n), "expected `{n}` in: {e}");
    }
}

#[test]
fn images_declaring_30000_squared_are_refused_by_fuse_and_eval() {
    let dir = Scratch::new("hostile_big");
    gray(24, 16, 3).save(dir.path("ok.png")).expect("ok");
    for ext in hostile::FORMATS {
        let big = dir.path(&format!("big.{ext}"));
        std::fs::write(&big, hostile::declaring(ext, 30000, 30000)).expect("big");
        let out = dir.path("out.png");
        let t = Instant::now();
        let o = mmif_dyn(&[&"fuse", &"--ir", &big, &"--vis", &big, &"-o", &out]);
        assert_refused(&o, &["30000×30000", "--max-pixels"]);
        assert!(!out.exists(), "{ext}");
        let o = mmif_dyn(&[&"eval", &"--ir", &dir.path("ok.png"), &"--vis", &dir.path("ok.png"), &"--fused", &big]);
        assert_refused(&o, &["30000×30000"]);
        assert!(t.elapsed() < Duration::from_secs(20), "{ext}: {:?}", t.elapsed());
    }
}

#[test]
fn max_pixels_sets_the_limit_and_zero_lifts_it() {
    let dir = Scratch::new("hostile_max");
    gray(20, 10, 3).save(dir.path("a.png")).expect("a");
    gray(20, 10, 5).save(dir.path("b.png")).expect("b");
    let run = |limit: &str, out: &str| {
        mmif([
            "--max-pixels",
            limit,
            "fuse",
            "-m",
            "mean",
            "--ir",
            &dir.s("a.png"),
            "--vis",
            &dir.s("b.png"),
            "-o",
            &dir.s(out),
        ])
    };
    assert_refused(&run("199", "x.png"), &["20×10 = 200 pixels", "limit of 199"]);
    assert!(!dir.path("x.png").exists());
    for (limit, out) in [("200", "y.png"), ("0", "z.png")] {
        let o = run(limit, out);
        assert!(o.status.success(), "--max-pixels {limit}: {}", stderr(&o));
    }
    let help = mmif(["fuse", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--max-pixels") && help.contains("100000000"), "{help}");
}

#[test]
fn cddfuse_refuses_images_under_2x2_and_fuses_2x2() {
    let dir = Scratch::new("hostile_tiny");
    let (w, t, out) = (cddfuse_weights(), dir.path("t.png"), dir.path("o.png"));
    let fuse = |x: u32, y: u32| {
        gray(x, y, 3).save(&t).expect("t");
        mmif_dyn(&[&"fuse", &"-m", &"cddfuse", &"-w", &w, &"--ir", &t, &"--vis", &t, &"-o", &out])
    };
    for (x, y) in [(1, 1), (7, 1), (1, 7)] {
        assert_refused(&fuse(x, y), &["at least 2×2", &format!("{x}×{y}")]);
        assert!(!out.exists());
    }
    let o = fuse(2, 2);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(image::open(&out).expect("output").to_luma8().dimensions(), (2, 2));
}

#[test]
fn networks_whose_estimated_peak_exceeds_the_memory_are_refused_naming_the_remedy() {
    let dir = Scratch::new("hostile_mem");
    // 10000×10000 (the default pixel limit, so it is read): CDDFuse whole would need hundreds of GB,
    // EMMA in one pass tens of GB, more than any test machine has.
    let side = 10_000;
    image::GrayImage::new(side, side).save(dir.path("a.png")).expect("a");
    let (a, out) = (dir.path("a.png"), dir.path("o.png"));
    let fuse = |model: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"fuse", &"--ir", &a, &"--vis", &a, &"-o", &out];
        args.extend_from_slice(model);
        mmif_dyn(&args)
    };
    // CDDFuse whole (`--bands off`; `auto` would run it in bands, in a few GB but for hours).
    let o = fuse(&[&"-m", &"cddfuse", &"-w", &cddfuse_weights(), &"--bands", &"off"]);
    assert_refused(&o, &["cddfuse on 10000×10000", "--bands", "--no-memory-check"]);
    let emma = filled_weights(&dir, "emma_ufuser");
    let o = fuse(&[&"-m", &"emma", &"-w", &emma, &"--tiling", &"pad"]);
    assert_refused(&o, &["emma on 10000×10000", "--tiling tile", "--no-memory-check"]);
    assert!(!out.exists());
}

/// Files of `dir` that are not hidden (temporary files are).
fn visible_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

#[test]
fn a_killed_folder_run_leaves_only_whole_outputs_and_a_rerun_completes_it() {
    let dir = Scratch::new("hostile_kill");
    let (ir, vis, out) = (dir.path("ir"), dir.path("vis"), dir.path("out"));
    for d in [&ir, &vis] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let n = 24;
    for i in 0..n {
        gray(160, 120, 3 + i).save(ir.join(format!("p{i:02}.png"))).expect("ir");
        gray(160, 120, 40 + i).save(vis.join(format!("p{i:02}.png"))).expect("vis");
    }
    let args = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "--threads",
            "1",
            "fuse",
            "-m",
            "adf",
            "--ir-dir",
            &dir.s("ir"),
            "--vis-dir",
            &dir.s("vis"),
            "--out-dir",
            &dir.s("out"),
        ]
        .map(String::from)
        .to_vec();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    // Kill (SIGKILL) the run once some outputs exist.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmif"))
        .args(args(&[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let t = Instant::now();
    while std::fs::read_dir(&out).map_or(0, |d| d.count()) < 3 {
        assert!(t.elapsed() < Duration::from_secs(120), "no output after 2 minutes");
        assert!(child.try_wait().expect("wait").is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
    let done = visible_files(&out);
    assert!(done.len() < n as usize, "killed before the end: {done:?}");
    for f in &done {
        let img = image::open(out.join(f)).unwrap_or_else(|e| panic!("{f} is not a whole image: {e}"));
        assert_eq!((img.width(), img.height()), (160, 120), "{f}");
    }
    // A temporary file a kill mid-write leaves (process 4294967295 never runs).
    std::fs::write(out.join(".p23.png.4294967295.0.tmp"), b"partial").expect("stale");
    // A plain rerun refuses to overwrite; --skip-existing completes the run.
    let o = mmif(args(&["--skip-existing"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("{} already fused", done.len())), "{}", stderr(&o));
    assert!(stderr(&o).contains("removed 1 temporary file"), "{}", stderr(&o));
    let all = visible_files(&out);
    assert_eq!(all.len(), n as usize, "{all:?}");
    assert_eq!(std::fs::read_dir(&out).expect("out").count(), n as usize, "no temporary file is left");
    for f in &all {
        image::open(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

#[test]
fn cddfuse_in_bands_gives_the_whole_image_result() {
    let dir = Scratch::new("hostile_bands");
    gray(23, 17, 3).save(dir.path("a.png")).expect("a");
    gray(23, 17, 9).save(dir.path("b.png")).expect("b");
    let (w, a, b) = (cddfuse_weights(), dir.path("a.png"), dir.path("b.png"));
    let fuse = |bands: &str, out: &Path| {
        mmif_dyn(&[&"fuse", &"-m", &"cddfuse", &"-w", &w, &"--ir", &a, &"--vis", &b, &"-o", &out, &"--bands", &bands])
    };
    for (bands, out) in [("off", "whole.npy"), ("4", "banded.npy"), ("on", "auto.npy")] {
        let o = fuse(bands, &dir.path(out));
        assert!(o.status.success(), "--bands {bands}: {}", stderr(&o));
    }
    let read = |f: &str| common::read_npy(&dir.path(f)).1;
    let whole = read("whole.npy");
    let d = mmif_testkit::compare::max_abs_diff(&read("banded.npy"), &whole);
    assert!(d <= 1e-4, "bands of 4 rows differ by {d}");
    // `on` with the automatic height: one band as high as this image, i.e. the whole image.
    assert_eq!(read("auto.npy"), whole);
    let o = fuse("0", &dir.path("x.npy"));
    assert_eq!(o.status.code(), Some(2), "a usage error: {}", stderr(&o));
    assert!(stderr(&o).contains("number of rows"), "{}", stderr(&o));
    let help = mmif(["fuse", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("--bands <auto|off|on|ROWS>"));
}

#[test]
fn bands_are_refused_for_other_models() {
    let dir = Scratch::new("hostile_bands_other");
    gray(40, 40, 3).save(dir.path("a.png")).expect("a");
    let emma = filled_weights(&dir, "emma_ufuser");
    let a = dir.path("a.png");
    let o = mmif_dyn(&[
        &"fuse",
        &"-m",
        &"emma",
        &"-w",
        &emma,
        &"--ir",
        &a,
        &"--vis",
        &a,
        &"-o",
        &dir.path("o.png"),
        &"--bands",
        &"8",
    ]);
    assert_refused(&o, &["--bands is for cddfuse"]);
}
