//! `mmif fuse --model emma` and `mmif sense` against the official fixtures.

mod common;

use common::{Scratch, filled_weights, fixtures, max_abs_diff, mmif};

#[test]
fn fuse_emma_official_reproduces_test_py_on_odd_size() {
    let dir = Scratch::new("fuse");
    let w = filled_weights(&dir, "emma_ufuser");
    let (shape, want) = fixtures::npy("emma_ivf_odd_test_255.npy");
    let hw = &shape[shape.len() - 2..];
    // The fixture inputs are float32 .npy images in [0,1], which `mmif fuse` reads as they are.
    let (ir, _) = fixtures::input("ivf_ir", hw, 0);
    let (vi, _) = fixtures::input("ivf_vi", hw, 0);
    let out = dir.path("fused.npy");
    let o = mmif([
        "fuse".as_ref(),
        "--model".as_ref(),
        "emma".as_ref(),
        "--weights".as_ref(),
        w.as_os_str(),
        "--tiling".as_ref(),
        "official".as_ref(),
        "--ir".as_ref(),
        ir.as_os_str(),
        "--vis".as_ref(),
        vi.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(o.status.success(), "mmif fuse failed");
    let (got_shape, got) = mmif_io::read_npy_f32(&out).expect("read the fused .npy");
    assert_eq!(got_shape, hw);
    let want: Vec<f32> = want.iter().map(|v| v / 255.0).collect();
    let d = max_abs_diff(&got, &want);
    eprintln!("mmif fuse --model emma vs emma_ivf_odd_test_255/255: max abs difference {d:e}");
    assert!(d <= 1e-4, "max abs difference {d:e} > 1e-4");
}

#[test]
fn sense_emma_ai_reproduces_unet5() {
    let dir = Scratch::new("sense");
    let w = filled_weights(&dir, "emma_unet5_ai");
    let (shape, want) = fixtures::npy("emma_unet5_ai_out.npy");
    let (vi, _) = fixtures::input("ivf_vi", &shape[shape.len() - 2..], 0);
    let out = dir.path("ai.npy");
    let o = mmif([
        "sense".as_ref(),
        "--model".as_ref(),
        "emma-ai".as_ref(),
        "--weights".as_ref(),
        w.as_os_str(),
        "--input".as_ref(),
        vi.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(o.status.success(), "mmif sense failed");
    let (_, got) = mmif_io::read_npy_f32(&out).expect("read the sensed .npy");
    let d = max_abs_diff(&got, &want);
    eprintln!("mmif sense --model emma-ai vs emma_unet5_ai_out: max abs difference {d:e}");
    assert!(d <= 1e-4, "max abs difference {d:e} > 1e-4");
}

#[test]
fn fuse_emma_refuses_tiny_images_without_writing() {
    let dir = Scratch::new("tiny");
    let w = filled_weights(&dir, "emma_ufuser");
    let a = dir.path("a.npy");
    mmif_io::write_npy_f32(&a, &[10, 10], &[0.5; 100]).expect("write a tiny image");
    let out = dir.path("fused.png");
    let o = mmif([
        "fuse".as_ref(),
        "-m".as_ref(),
        "emma".as_ref(),
        "-w".as_ref(),
        w.as_os_str(),
        "--ir".as_ref(),
        a.as_os_str(),
        "--vis".as_ref(),
        a.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("at least 32×32"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists());
    // A tile size that is not a multiple of 32 is refused before anything runs.
    let o = mmif([
        "fuse".as_ref(),
        "-m".as_ref(),
        "emma".as_ref(),
        "-w".as_ref(),
        w.as_os_str(),
        "--tile".as_ref(),
        "100".as_ref(),
        "--ir".as_ref(),
        a.as_os_str(),
        "--vis".as_ref(),
        a.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("multiple of 32"));
}
