//! `mmif fuse` with the VIFB methods: per-task defaults, `--param`, `--color channels`, folder
//! mode and `mmif models`.

mod common;

use common::{Scratch, mmif, stderr};
use mmif_classic::{Method, Plane};

fn gray(w: u32, h: u32, k: u32) -> image::GrayImage {
    image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x * k + y * 7 + (x * y) % 13) % 256) as u8]))
}

fn plane(img: &image::GrayImage) -> Plane {
    Plane::new(img.width() as usize, img.height() as usize, img.pixels().map(|p| f32::from(p.0[0])).collect())
}

#[test]
fn defaults_are_hmsd_gf_ifevip_lp_sr_and_lp_by_task() {
    let dir = Scratch::new("classic_default");
    gray(48, 40, 5).save(dir.path("a.png")).expect("a");
    gray(48, 40, 3).save(dir.path("b.png")).expect("b");
    let o = mmif(["fuse", "--ir", &dir.s("a.png"), "--vis", &dir.s("b.png"), "-o", &dir.s("f.png")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("hmsd_gf"), "{}", stderr(&o));
    let o = mmif(["fuse", "--mri", &dir.s("a.png"), "--func", &dir.s("b.png"), "-o", &dir.s("g.png")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("`ifevip`"), "{}", stderr(&o));
    for (x, y, method) in [("--over", "--under", "`lp_sr`"), ("--near", "--far", "`lp:4`")] {
        let o = mmif(["fuse", x, &dir.s("a.png"), y, &dir.s("b.png"), "-o", &dir.s("h.png"), "--force"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains(method), "{x}: {}", stderr(&o));
    }
}

#[test]
fn params_reach_the_method_and_bad_ones_are_errors() {
    let dir = Scratch::new("classic_param");
    let (a, b) = (gray(40, 30, 5), gray(40, 30, 11));
    a.save(dir.path("a.png")).expect("a");
    b.save(dir.path("b.png")).expect("b");
    let run = |extra: &[&str], out: &str| {
        let (pa, pb, po) = (dir.s("a.png"), dir.s("b.png"), dir.s(out));
        let mut v: Vec<String> = ["fuse", "-m", "tif", "--ir", &pa, "--vis", &pb, "-o", &po].map(String::from).to_vec();
        v.extend(extra.iter().map(|s| s.to_string()));
        mmif(v)
    };
    let o = run(&["--param", "mean=21"], "p.png");
    assert!(o.status.success(), "{}", stderr(&o));
    let got = image::open(dir.path("p.png")).expect("p").to_luma8();
    let want = "tif:mean=21".parse::<Method>().unwrap().fuse(&plane(&a), &plane(&b)).unwrap();
    for (g, w) in got.pixels().zip(&want.data) {
        assert!((f32::from(g.0[0]) - w.round().clamp(0.0, 255.0)).abs() <= 1.0);
    }
    let o = run(&["--param", "radius=3"], "q.png");
    assert!(!o.status.success() && stderr(&o).contains("radius") && !stderr(&o).contains("panicked"));
    assert!(!dir.path("q.png").exists());
    let o = run(&["--param", "mean"], "r.png");
    assert!(!o.status.success() && stderr(&o).contains("KEY=VALUE"), "{}", stderr(&o));
}

#[test]
fn color_channels_fuses_each_rgb_channel_with_the_gray_source() {
    let dir = Scratch::new("classic_color");
    let ir = gray(36, 28, 9);
    let vis = image::RgbImage::from_fn(36, 28, |x, y| image::Rgb([(x * 7) as u8, (y * 9) as u8, ((x + y) * 4) as u8]));
    ir.save(dir.path("ir.png")).expect("ir");
    vis.save(dir.path("vis.png")).expect("vis");
    let o = mmif([
        "fuse",
        "-m",
        "mgff",
        "--color",
        "channels",
        "--ir",
        &dir.s("ir.png"),
        "--vis",
        &dir.s("vis.png"),
        "-o",
        &dir.s("f.png"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let f = image::open(dir.path("f.png")).expect("f").to_rgb8();
    for c in 0..3 {
        let ch = Plane::new(36, 28, vis.pixels().map(|p| f32::from(p.0[c])).collect());
        let want = "mgff".parse::<Method>().unwrap().fuse(&plane(&ir), &ch).unwrap();
        for (g, w) in f.pixels().zip(&want.data) {
            assert!((f32::from(g.0[c]) - w.round().clamp(0.0, 255.0)).abs() <= 1.0, "channel {c}");
        }
    }
    let o = mmif([
        "fuse",
        "-m",
        "cddfuse",
        "--color",
        "channels",
        "--ir",
        &dir.s("ir.png"),
        "--vis",
        &dir.s("vis.png"),
        "-o",
        &dir.s("g.png"),
    ]);
    assert!(!o.status.success() && stderr(&o).contains("weight-free"), "{}", stderr(&o));
}

#[test]
fn vifb_methods_work_in_folder_mode_and_are_listed() {
    let dir = Scratch::new("classic_folders");
    for d in ["ir", "vi"] {
        std::fs::create_dir_all(dir.path(d)).expect("dir");
    }
    for (name, w, h) in [("one", 1, 1), ("two", 3, 2), ("three", 50, 37)] {
        gray(w, h, 5).save(dir.path(&format!("ir/{name}.png"))).expect("w");
        gray(w, h, 3).save(dir.path(&format!("vi/{name}.png"))).expect("w");
    }
    for m in ["tif", "mgff", "hmsd_gf"] {
        let out = dir.s(&format!("out_{m}"));
        let o = mmif(["fuse", "-m", m, "--ir-dir", &dir.s("ir"), "--vis-dir", &dir.s("vi"), "--out-dir", &out]);
        assert!(o.status.success(), "{m}: {}", stderr(&o));
        for name in ["one", "two", "three"] {
            assert!(dir.path(&format!("out_{m}/{name}.png")).is_file(), "{m} {name}");
        }
    }
    let o = mmif(["models"]);
    let text = String::from_utf8_lossy(&o.stdout);
    for needle in ["tif", "mgff", "hmsd_gf", "--param mean=35", "--param lambda=auto", "Bavirisetti", "Zhou"] {
        assert!(text.contains(needle), "`mmif models` lacks {needle}");
    }
}

/// The R, G and B planes of an 8-bit colour image (0..=255 scale).
fn rgb_planes(img: &image::RgbImage) -> Vec<Plane> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    (0..3).map(|c| Plane::new(w, h, img.pixels().map(|p| f32::from(p.0[c])).collect())).collect()
}

/// Largest difference between the channels of an 8-bit RGB image and fused planes (0..=255,
/// rounded and clipped as the PNG writer does).
fn max_diff(got: &image::RgbImage, want: &[Plane]) -> f32 {
    let mut max = 0.0f32;
    for (c, w) in want.iter().enumerate() {
        for (g, v) in got.pixels().zip(&w.data) {
            max = max.max((f32::from(g.0[c]) - v.round().clamp(0.0, 255.0)).abs());
        }
    }
    max
}

#[test]
fn color_channels_fuses_gtf_and_ifevip_jointly_as_vifb_does_also_in_folder_mode() {
    let dir = Scratch::new("classic_joint");
    let (w, h) = (30, 22);
    let vis = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 8 + y) as u8, (200 - y * 7) as u8, ((x * y) % 97 + 60) as u8])
    });
    // A gray infrared image, and a colour one (VIFB's infrared JPEGs are RGB files).
    let ir_gray = gray(w, h, 9);
    let ir_rgb = image::RgbImage::from_fn(w, h, |x, y| {
        let v = ir_gray.get_pixel(x, y).0[0];
        image::Rgb([v, v.saturating_add(9), v / 2 + 20])
    });
    for d in ["ir", "vi"] {
        std::fs::create_dir_all(dir.path(d)).expect("dir");
    }
    ir_gray.save(dir.path("ir/gray.png")).expect("ir");
    ir_rgb.save(dir.path("ir/rgb.png")).expect("ir");
    vis.save(dir.path("vi/gray.png")).expect("vis");
    vis.save(dir.path("vi/rgb.png")).expect("vis");
    let vis_planes = rgb_planes(&vis);
    for spec in ["gtf:loops=2", "ifevip"] {
        let method: Method = spec.parse().unwrap();
        let tag = method.name();
        let channels = |io: &[&str]| {
            let mut args = vec!["fuse", "-m", spec, "--color", "channels"];
            args.extend(io);
            let o = mmif(args);
            assert!(o.status.success(), "{spec}: {}", stderr(&o));
        };
        channels(&["--ir-dir", &dir.s("ir"), "--vis-dir", &dir.s("vi"), "--out-dir", &dir.s(&format!("out_{tag}"))]);
        let single = dir.s(&format!("{tag}.png"));
        channels(&["--ir", &dir.s("ir/gray.png"), "--vis", &dir.s("vi/gray.png"), "-o", &single]);
        for (name, ir) in [("gray", vec![plane(&ir_gray)]), ("rgb", rgb_planes(&ir_rgb))] {
            let got = image::open(dir.path(&format!("out_{tag}/{name}.png"))).expect("fused").to_rgb8();
            let joint = method.fuse_color(&ir, &vis_planes).expect("joint");
            assert!(max_diff(&got, &joint) <= 1.0, "{spec} {name}: not VIFB's joint fusion");
            // Channel by channel (what `--color channels` did before) is a different image.
            let separate: Vec<Plane> =
                (0..3).map(|c| method.fuse(&ir[c.min(ir.len() - 1)], &vis_planes[c]).unwrap()).collect();
            assert!(max_diff(&got, &separate) > 2.0, "{spec} {name}: the joint fusion equals the per-channel one");
        }
        let got = image::open(&single).expect("single").to_rgb8();
        let folder = image::open(dir.path(&format!("out_{tag}/gray.png"))).expect("folder").to_rgb8();
        assert_eq!(got, folder, "{spec}: one pair and folder mode differ");
        // Luma fusion stays the default: a colour image with the visible chroma, not the channels.
        let luma = dir.s(&format!("{tag}_luma.png"));
        let o = mmif(["fuse", "-m", spec, "--ir", &dir.s("ir/gray.png"), "--vis", &dir.s("vi/gray.png"), "-o", &luma]);
        assert!(o.status.success(), "{spec}: {}", stderr(&o));
        assert_ne!(image::open(&luma).expect("luma").to_rgb8(), got, "{spec}: luma equals channels");
    }
}
