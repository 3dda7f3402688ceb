//! `--shard`, `--skip-existing` and `mmif eval --merge` through the binary: the shards of a folder
//! cover it exactly once, fused images and merged scores equal the unsharded run's, and a rerun
//! with `--skip-existing` does no work.

mod common;

use std::path::Path;

use common::{Scratch, mmif, stderr};
use mmif_testkit::Rng;

/// Five pairs of small random gray PNGs (48×44, above VIF's minimum side) (stems p0..p4) in `ir/` and `vis/`.
fn pairs(dir: &Scratch) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for sub in ["ir", "vis"] {
        std::fs::create_dir_all(dir.path(sub)).unwrap();
    }
    for i in 0..5 {
        for sub in ["ir", "vis"] {
            let data: Vec<u8> = (0..48 * 44).map(|_| rng.byte()).collect();
            let img = image::GrayImage::from_raw(48, 44, data).unwrap();
            img.save(dir.path(&format!("{sub}/p{i}.png"))).unwrap();
        }
    }
}

fn ok(args: &[&str]) -> String {
    let out = mmif(args);
    assert!(out.status.success(), "mmif {args:?} failed: {}", stderr(&out));
    stderr(&out)
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn two_shards_and_a_merge_equal_the_unsharded_run() {
    let dir = Scratch::new("shards");
    pairs(&dir);
    let (ir, vis) = (dir.s("ir"), dir.s("vis"));
    let all = dir.s("all");
    ok(&["fuse", "-m", "gff", "--ir-dir", &ir, "--vis-dir", &vis, "--out-dir", &all]);
    let sharded = dir.s("sharded");
    let e0 = ok(&["fuse", "-m", "gff", "--ir-dir", &ir, "--vis-dir", &vis, "--out-dir", &sharded, "--shard", "0/2"]);
    assert!(e0.contains("shard 0/2: 3 of 5 pairs"), "{e0}");
    assert_eq!(listing(Path::new(&sharded)), ["p0.png", "p2.png", "p4.png"]);
    // the second shard from the environment, as a Kubernetes Indexed Job runs it
    let out = mmif_testkit::cli::run_with_env(
        env!("CARGO_BIN_EXE_mmif"),
        ["fuse", "-m", "gff", "--ir-dir", &ir, "--vis-dir", &vis, "--out-dir", &sharded, "--shard", "auto"],
        &[("JOB_COMPLETION_INDEX", "1"), ("JOB_COMPLETIONS", "2")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(listing(Path::new(&sharded)), listing(Path::new(&all)));
    for name in listing(Path::new(&all)) {
        let a = std::fs::read(Path::new(&all).join(&name)).unwrap();
        let s = std::fs::read(Path::new(&sharded).join(&name)).unwrap();
        assert!(a == s, "{name} differs between the sharded and the unsharded run");
    }

    // scores: the unsharded JSON equals the merge of the shards' JSON, byte for byte
    let eval = |extra: &[&str], out: &str| {
        let mut args = vec![
            "eval",
            "--ir-dir",
            &ir,
            "--vis-dir",
            &vis,
            "--fused-dir",
            &all,
            "--format",
            "json",
            "--per-image",
            "-o",
            out,
        ];
        args.extend_from_slice(extra);
        ok(&args)
    };
    eval(&[], &dir.s("all.json"));
    eval(&["--shard", "0/2"], &dir.s("s0.json"));
    eval(&["--shard", "1/2"], &dir.s("s1.json"));
    ok(&["eval", "--merge", &dir.s("s1.json"), &dir.s("s0.json"), "--format", "json", "-o", &dir.s("merged.json")]);
    let whole = std::fs::read_to_string(dir.path("all.json")).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path("merged.json")).unwrap(), whole);
    let s0 = std::fs::read_to_string(dir.path("s0.json")).unwrap();
    assert!(s0.contains("\"p2\"") && !s0.contains("\"p1\""), "{s0}");

    // a shard merged twice is refused
    let twice = mmif(["eval", "--merge", &dir.s("s0.json"), &dir.s("s0.json")]);
    assert!(!twice.status.success() && stderr(&twice).contains("more than one shard"), "{}", stderr(&twice));
}

#[test]
fn a_rerun_with_skip_existing_does_no_work() {
    let dir = Scratch::new("skip");
    pairs(&dir);
    let (ir, vis, out) = (dir.s("ir"), dir.s("vis"), dir.s("out"));
    ok(&["fuse", "-m", "gff", "--ir-dir", &ir, "--vis-dir", &vis, "--out-dir", &out, "--shard", "1/2"]);
    std::fs::remove_file(Path::new(&out).join("p1.png")).unwrap();
    let before = std::fs::metadata(Path::new(&out).join("p3.png")).unwrap().modified().unwrap();
    // finishes only what is missing: p0, p2, p4 of the whole set and the removed p1
    let e = ok(&["fuse", "-m", "gff", "--ir-dir", &ir, "--vis-dir", &vis, "--out-dir", &out, "--skip-existing"]);
    assert!(e.contains("fused 4 of 4 pair(s), 1 already fused"), "{e}");
    assert_eq!(std::fs::metadata(Path::new(&out).join("p3.png")).unwrap().modified().unwrap(), before);
    // nothing left: no model is built (a missing checkpoint would otherwise be an error)
    let e = ok(&[
        "fuse",
        "-m",
        "cddfuse",
        "-w",
        &dir.s("missing.pth"),
        "--ir-dir",
        &ir,
        "--vis-dir",
        &vis,
        "--out-dir",
        &out,
        "--skip-existing",
    ]);
    assert!(e.contains("nothing to do: 5 pair(s) already fused"), "{e}");

    let scores = dir.s("scores.json");
    ok(&["eval", "--ir-dir", &ir, "--vis-dir", &vis, "--fused-dir", &out, "--format", "json", "-o", &scores]);
    let stamp = std::fs::metadata(&scores).unwrap().modified().unwrap();
    let e = ok(&["eval", "--ir-dir", &ir, "--vis-dir", &vis, "--fused-dir", &out, "-o", &scores, "--skip-existing"]);
    assert!(e.contains("skipped"), "{e}");
    assert_eq!(std::fs::metadata(&scores).unwrap().modified().unwrap(), stamp);

    let bad = mmif(["fuse", "-m", "gff", "--ir-dir", &ir, "--vis-dir", &vis, "--out-dir", &out, "--shard", "2/2"]);
    assert!(!bad.status.success() && stderr(&bad).contains("out of range"), "{}", stderr(&bad));
}
