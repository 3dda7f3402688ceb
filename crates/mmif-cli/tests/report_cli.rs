//! `mmif report` end to end: the page is generated from synthetic pairs and opened in headless
//! Chromium, whose self-test (`#selftest`) reports whether every image loaded, every table sorts,
//! the best values are marked and zoom is synchronised; any console error fails the test. Bad
//! inputs give clear errors and no file.
//!
//! Chromium is required (Debian: `apt-get install -y chromium`; or set `MMIF_CHROMIUM` to the
//! browser's path): without it the browser test fails, it is never skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Scratch, mmif, stderr};
use image::{Rgb, RgbImage};

const W: u32 = 96;
const H: u32 = 80;

fn source(seed: u32, color: bool) -> RgbImage {
    RgbImage::from_fn(W, H, |x, y| {
        let v = ((x * (3 + seed) + y * (5 + seed) + (x * y) % 17) % 256) as u8;
        if color { Rgb([v, v / 2 + 40, 255 - v]) } else { Rgb([v; 3]) }
    })
}

fn gray(img: &RgbImage) -> Vec<f32> {
    img.pixels().map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32).collect()
}

fn save_gray(path: &Path, v: &[f32]) {
    let img =
        image::GrayImage::from_fn(W, H, |x, y| image::Luma([v[(y * W + x) as usize].round().clamp(0.0, 255.0) as u8]));
    img.save(path).unwrap();
}

/// `pairs` pairs of ir/vis and three methods (mean, max, 0.8·ir + 0.2·vis) in `dir`.
fn dataset(dir: &Scratch, pairs: u32) -> [PathBuf; 5] {
    let folders = ["ir", "vi", "mean", "max", "weighted"].map(|f| dir.path(f));
    for f in &folders {
        std::fs::create_dir_all(f).unwrap();
    }
    for k in 0..pairs {
        let stem = format!("{:02}", k + 1);
        let ir = source(k, false);
        let vi = source(k + 7, true);
        ir.save(folders[0].join(format!("{stem}.png"))).unwrap();
        vi.save(folders[1].join(format!("{stem}.png"))).unwrap();
        let (a, b) = (gray(&ir), gray(&vi));
        let mix = |f: &dyn Fn(f32, f32) -> f32| a.iter().zip(&b).map(|(&x, &y)| f(x, y)).collect::<Vec<f32>>();
        save_gray(&folders[2].join(format!("{stem}.png")), &mix(&|x, y| (x + y) / 2.0));
        save_gray(&folders[3].join(format!("{stem}.png")), &mix(&|x, y| x.max(y)));
        save_gray(&folders[4].join(format!("{stem}.png")), &mix(&|x, y| 0.8 * x + 0.2 * y));
    }
    folders
}

fn report_args(folders: &[PathBuf; 5], out: &Path) -> Vec<String> {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    vec![
        "report".into(),
        "--ir-dir".into(),
        s(&folders[0]),
        "--vis-dir".into(),
        s(&folders[1]),
        "--fused-dir".into(),
        format!("Mean={}", s(&folders[2])),
        "--fused-dir".into(),
        format!("Max={}", s(&folders[3])),
        "--fused-dir".into(),
        format!("Weighted={}", s(&folders[4])),
        "-o".into(),
        s(out),
    ]
}

/// The headless browser: `$MMIF_CHROMIUM`, else `chromium` or `chromium-browser` on the PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("MMIF_CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "the report's browser test needs headless Chromium, which was not found: install it \
         (Debian/Ubuntu: `apt-get install -y chromium`) or set MMIF_CHROMIUM to the browser's path"
    );
}

/// Opens `page#selftest` headless; returns the self-test's JSON and Chromium's stderr.
fn selftest(page: &Path, profile: &Path) -> (serde_json::Value, String) {
    let url = format!("file://{}#selftest", std::path::absolute(page).unwrap().display());
    let o = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=20000",
            "--window-size=1400,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", &url])
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&o.stdout).into_owned();
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "chromium failed: {log}");
    let start = dom.find("<pre id=\"selftest\" data-done=\"1\">").unwrap_or_else(|| {
        panic!(
            "the page's self-test did not finish; chromium's log:\n{log}\nDOM tail:\n{}",
            &dom[dom.len().saturating_sub(2000)..]
        )
    });
    let body = &dom[start..];
    let body = &body[body.find('>').unwrap() + 1..body.find("</pre>").unwrap()];
    let json = body.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    (serde_json::from_str(&json).unwrap_or_else(|e| panic!("self-test output {json}: {e}")), log)
}

/// Console messages and uncaught exceptions in Chromium's log. Headless Chromium logs every
/// console message as `INFO:CONSOLE` whatever its level, and the page logs nothing when all is
/// well, so any console line counts as an error.
fn console_errors(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught")).collect()
}

#[test]
fn report_opens_in_chromium_with_every_image_and_sortable_tables() {
    let dir = Scratch::new("browser");
    let folders = dataset(&dir, 3);
    let out = dir.path("report.html");
    let o = mmif(report_args(&folders, &out));
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(&out).unwrap();
    // self-contained: no external resources
    for needle in ["src=\"http", "href=\"http", "<link", "@import", "url(http"] {
        assert!(!html.contains(needle), "the page refers to an external resource: {needle}");
    }
    assert!(html.contains("\"methods\":[\"Mean\",\"Max\",\"Weighted\"]"));

    let (r, log) = selftest(&out, &dir.path("profile"));
    // 3 pairs × (2 sources + 3 methods) panels + 2 images of each pair's wipe view
    assert_eq!(r["images"], 3 * (2 + 3) + 3 * 2, "{r}");
    assert_eq!(r["loaded"], r["images"], "images that did not load: {}", r["failed"]);
    assert_eq!(r["tables"], 1 + 3, "the means and one table per pair: {r}");
    assert_eq!(r["sorted"], true, "{r}");
    assert_eq!(r["best"], true, "{r}");
    assert_eq!(r["zoomSync"], true, "{r}");
    assert_eq!(r["charts"], 8, "one chart per metric of the cddfuse preset: {r}");
    assert_eq!(r["errors"], serde_json::json!([]), "errors inside the page: {r}");
    let errors = console_errors(&log);
    assert!(errors.is_empty(), "console errors:\n{}", errors.join("\n"));
}

/// The self-test itself must fail on a broken page: a corrupted image and a script error.
#[test]
fn selftest_detects_a_broken_image_and_script_errors() {
    let dir = Scratch::new("broken");
    let folders = dataset(&dir, 2);
    let out = dir.path("report.html");
    assert!(mmif(report_args(&folders, &out)).status.success());
    let html = std::fs::read_to_string(&out).unwrap();
    let i = html.find("data:image/jpeg;base64,").unwrap() + "data:image/jpeg;base64,".len();
    let broken = format!("{}AAAA{}", &html[..i], &html[i + 40..])
        .replace("</body>", "<script>undefinedFunction();</script></body>");
    let bad = dir.path("broken.html");
    std::fs::write(&bad, broken).unwrap();
    let (r, log) = selftest(&bad, &dir.path("profile"));
    assert_ne!(r["loaded"], r["images"], "a corrupted image counts as not loaded: {r}");
    assert!(!console_errors(&log).is_empty(), "the uncaught ReferenceError shows in the log:\n{log}");
}

#[test]
fn bad_inputs_give_errors_and_no_file() {
    let dir = Scratch::new("errors");
    let folders = dataset(&dir, 2);
    let out = dir.path("r.html");
    // an unreadable fused image
    std::fs::write(folders[3].join("02.png"), b"not a png").unwrap();
    let o = mmif(report_args(&folders, &out));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("02.png"), "{}", stderr(&o));
    assert!(!out.exists(), "no partial report");
    // a missing fused image
    std::fs::remove_file(folders[3].join("02.png")).unwrap();
    let o = mmif(report_args(&folders, &out));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no fused image `02`"), "{}", stderr(&o));
    assert!(!out.exists());
    // an empty folder
    for e in std::fs::read_dir(&folders[4]).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let o = mmif(report_args(&folders, &out));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no images in"), "{}", stderr(&o));
    assert!(!out.exists());
    // one pair of files is not a comparison of folders
    let o = mmif(["report", "--ir", "a.png", "--vis", "b.png", "--fused-dir", "x", "-o", &dir.s("x.html")]);
    assert!(!o.status.success() && stderr(&o).contains("compares folders"), "{}", stderr(&o));
}

#[test]
fn full_resolution_on_request_and_no_silent_overwrite() {
    let dir = Scratch::new("full");
    let folders = dataset(&dir, 1);
    let out = dir.path("r.html");
    let mut args = report_args(&folders, &out);
    args.push("--full".into());
    let o = mmif(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(&out).unwrap();
    assert_eq!(html.matches("data:image/png;base64,").count(), 2 + 3, "every image as lossless PNG");
    assert!(!html.contains("data:image/jpeg"));
    // an existing report is replaced only with --force
    let o = mmif(&args);
    assert!(!o.status.success() && stderr(&o).contains("--force"), "{}", stderr(&o));
    args.push("--force".into());
    assert!(mmif(&args).status.success());
}
