//! `mmif figure` end to end: a paper layout (2 sources + 6 methods, two insets) at 300 DPI in PNG,
//! SVG and PDF, checked pixel-wise where it is a raster; folder mode; errors leave no file.

mod common;

use std::path::{Path, PathBuf};

use common::{Scratch, mmif, stderr};
use image::{Rgb, RgbImage};

const W: u32 = 160;
const H: u32 = 120;
const BOXES: [[u32; 4]; 2] = [[20, 30, 16, 12], [70, 15, 12, 12]];
const ZOOM: u32 = 3;

fn pattern(seed: u32) -> RgbImage {
    RgbImage::from_fn(W, H, |x, y| {
        let v = x.wrapping_mul(2654435761).wrapping_add(y.wrapping_mul(40503)).wrapping_add(seed.wrapping_mul(97_531));
        Rgb([(v >> 5) as u8, (v >> 13) as u8, (v >> 21) as u8])
    })
}

/// ir, vis and six methods as PNG files in `dir` (sub-folders when `folders`), named `stem`.
fn images(dir: &Scratch, stem: &str) -> Vec<(String, PathBuf)> {
    let names = ["ir", "vis", "M1", "M2", "M3", "M4", "M5", "M6"];
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let d = dir.path(n);
            std::fs::create_dir_all(&d).unwrap();
            let p = d.join(format!("{stem}.png"));
            pattern(i as u32).save(&p).unwrap();
            (n.to_string(), p)
        })
        .collect()
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn args(files: &[(String, PathBuf)], out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = vec!["figure".to_string(), "--ir".into(), s(&files[0].1), "--vis".into(), s(&files[1].1)];
    for (n, p) in &files[2..] {
        a.push("--fused".into());
        a.push(format!("{n}={}", s(p)));
    }
    for b in BOXES {
        a.push("--box".into());
        a.push(format!("{},{},{},{}", b[0], b[1], b[2], b[3]));
    }
    a.extend(["--zoom".into(), ZOOM.to_string(), "--dpi".into(), "300".into(), "-o".into(), s(out)]);
    a.extend(extra.iter().map(|e| e.to_string()));
    a
}

/// Where in panel `(ox, oy)` of `fig` the crop `b` of `src` appears enlarged `ZOOM` times.
fn find_inset(fig: &RgbImage, (ox, oy): (u32, u32), src: &RgbImage, b: [u32; 4]) -> Option<(u32, u32)> {
    let (iw, ih) = (b[2] * ZOOM, b[3] * ZOOM);
    (0..=H - ih).flat_map(|y| (0..=W - iw).map(move |x| (x, y))).find(|&(x, y)| {
        (0..ih).all(|v| {
            (0..iw).all(|u| fig.get_pixel(ox + x + u, oy + y + v) == src.get_pixel(b[0] + u / ZOOM, b[1] + v / ZOOM))
        })
    })
}

#[test]
fn paper_layout_at_300_dpi_in_png_svg_and_pdf() {
    let dir = Scratch::new("layout");
    let files = images(&dir, "07");
    let png_path = dir.path("fig.png");
    let o = mmif(args(&files, &png_path, &[]));
    assert!(o.status.success(), "{}", stderr(&o));

    // 300 DPI recorded
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png_path).unwrap()));
    let info = decoder.read_info().unwrap();
    let dims = info.info().pixel_dims.expect("a pHYs chunk");
    assert_eq!((dims.xppu, dims.unit), ((300.0f64 / 0.0254).round() as u32, png::Unit::Meter));

    // 4 columns × 2 rows of panels at full size; the first panel sits at the origin
    let fig = image::open(&png_path).unwrap().to_rgb8();
    assert!(
        fig.width() >= 4 * W && fig.width() < 5 * W && fig.height() >= 2 * H && fig.height() < 3 * H,
        "{:?}",
        fig.dimensions()
    );
    let ir = pattern(0);
    assert_eq!(fig.get_pixel(2, 2), ir.get_pixel(2, 2), "panel 1 is the infrared image at full size");
    // both insets of the first panel: the crops enlarged ZOOM times, in the bottom-right corner,
    // each framed in its colour, as is its box
    let mut xs = Vec::new();
    for (k, b) in BOXES.iter().enumerate() {
        let (x, y) = find_inset(&fig, (0, 0), &ir, *b).unwrap_or_else(|| panic!("inset {k} not found"));
        assert!(
            x + b[2] * ZOOM > W / 2 && y + b[3] * ZOOM > H * 3 / 4,
            "inset {k} at ({x}, {y}) is in the bottom-right corner"
        );
        let frame = fig.get_pixel(x - 1, y);
        assert_eq!(fig.get_pixel(b[0] - 1, b[1]), frame, "box {k} framed in the inset's colour");
        assert_eq!(fig.get_pixel(b[0] + b[2], b[1] + b[3] - 1), frame);
        assert_ne!(frame, &Rgb([255, 255, 255]));
        xs.push((x, frame.to_owned()));
    }
    assert!(xs[0].0 > xs[1].0, "the first inset is in the corner, the second beside it");
    assert_ne!(xs[0].1, xs[1].1, "two boxes, two colours");
    // a label band under the first row: white with dark text
    let band: Vec<&Rgb<u8>> =
        (H..H + 50).flat_map(|y| (0..W).map(move |x| (x, y))).map(|(x, y)| fig.get_pixel(x, y)).collect();
    assert!(band.iter().any(|p| p[0] < 100) && band.iter().filter(|p| p[0] == 255).count() > band.len() / 2);

    // SVG: every image at full resolution plus the crops, the physical size at 300 dpi
    let svg_path = dir.path("fig.svg");
    assert!(mmif(args(&files, &svg_path, &[])).status.success());
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert_eq!(svg.matches("<image ").count(), 8 + 8 * 2);
    assert!(svg.contains(&format!("width=\"{:.4}in\"", fig.width() as f64 / 300.0)), "{}", &svg[..200]);
    assert_eq!(svg.matches("<text ").count(), 8);
    for label in ["IR", "VIS", "M1", "M6"] {
        assert!(svg.contains(&format!(">{label}</text>")));
    }

    // PDF: one page of the same physical size
    let pdf_path = dir.path("fig.pdf");
    assert!(mmif(args(&files, &pdf_path, &[])).status.success());
    let pdf = std::fs::read(&pdf_path).unwrap();
    let text = String::from_utf8_lossy(&pdf);
    assert!(text.starts_with("%PDF-"));
    assert_eq!(text.matches("/Subtype /Image").count(), 8 + 8 * 2);

    // --width: the PNG is resampled to width × dpi
    let wide = dir.path("wide.png");
    assert!(mmif(args(&files, &wide, &["--width", "7"])).status.success());
    assert_eq!(image::open(&wide).unwrap().width(), 2100);
}

#[test]
fn folder_mode_picks_the_pair() {
    let dir = Scratch::new("folders");
    let files = images(&dir, "05");
    images(&dir, "06");
    let out = dir.path("f.png");
    let mut a = vec!["figure".to_string(), "--ir-dir".into(), dir.s("ir"), "--vis-dir".into(), dir.s("vis")];
    for (n, _) in &files[2..] {
        a.extend(["--fused-dir".to_string(), format!("{n}={}", dir.s(n))]);
    }
    a.extend(["--box".into(), "5,5,10,10".into(), "-o".into(), s(&out)]);
    let o = mmif(&a);
    assert!(!o.status.success() && stderr(&o).contains("--pair STEM"), "{}", stderr(&o));
    let mut with_pair = a.clone();
    with_pair.extend(["--pair".into(), "09".into()]);
    let o = mmif(&with_pair);
    assert!(!o.status.success() && stderr(&o).contains("no image `09`"), "{}", stderr(&o));
    assert!(!out.exists());
    a.extend(["--pair".into(), "06".into()]);
    let o = mmif(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    let fig = image::open(&out).unwrap().to_rgb8();
    assert_eq!(fig.get_pixel(20, 20), pattern(0).get_pixel(20, 20));
    // an empty method folder
    for e in std::fs::read_dir(dir.path("M3")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let out2 = dir.path("g.png");
    let last = a.len() - 3;
    a[last] = s(&out2);
    let o = mmif(&a);
    assert!(!o.status.success() && stderr(&o).contains("no images in"), "{}", stderr(&o));
    assert!(!out2.exists());
}

#[test]
fn bad_inputs_give_errors_and_no_file() {
    let dir = Scratch::new("errors");
    let files = images(&dir, "01");
    let out = dir.path("fig.png");
    let run = |extra: &[&str], files: &[(String, PathBuf)]| {
        let o = mmif(args(files, &out, extra));
        assert!(!o.status.success());
        assert!(!out.exists(), "no partial output");
        stderr(&o)
    };
    let e = run(&["--box", "150,0,20,10"], &files);
    assert!(e.contains("outside the 160x120 image"), "{e}");
    let e = run(&["--box", "0,0,100,100"], &files);
    assert!(e.contains("do not fit"), "{e}");
    let mut missing = files.clone();
    missing[4].1 = dir.path("nope.png");
    let e = run(&[], &missing);
    assert!(e.contains("nope.png"), "{e}");
    std::fs::write(&files[5].1, b"garbage").unwrap();
    let e = run(&[], &files);
    assert!(e.contains(&files[5].1.file_name().unwrap().to_string_lossy().into_owned()), "{e}");
    let small = dir.path("small.png");
    RgbImage::new(10, 10).save(&small).unwrap();
    let mut sized = images(&dir, "02");
    sized[3].1 = small;
    let e = run(&[], &sized);
    assert!(e.contains("every panel must have the size of the sources"), "{e}");
    let o = mmif(args(&images(&dir, "03"), &dir.path("fig.jpg"), &[]));
    assert!(!o.status.success() && stderr(&o).contains(".png, .svg or .pdf"), "{}", stderr(&o));
}
