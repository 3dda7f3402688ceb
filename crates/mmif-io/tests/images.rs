//! Image and .npy reading/writing: official gray conversion, colour, writers, corrupt input.
mod common;

use common::{Rng, TempDir};
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use mmif_io::image_io::{Quantize, gray_from_rgb, gray_u8, write_png8_with, write_tiff16_rgb};
use mmif_io::{
    Error, Plane, compose_color, read_gray, read_image, read_npy_f32, write_npy, write_npy_f32, write_output,
    write_png_rgb8, write_png8, write_tiff16,
};

/// The official gray of an 8-bit pixel computed independently of the library: the two fused
/// multiply-adds of opencv-python's float32 BGR2GRAY evaluated exactly in f64 (products of an
/// 8-bit integer and an f32 constant and their sums with f32 values fit in 53 bits), each rounded
/// once to f32, then `np.round` (half to even).
fn reference_gray(r: u8, g: u8, b: u8) -> f32 {
    let (cr, cb) = (0.299f32 as f64, 0.114f32 as f64);
    let p = g as f32 * 0.587f32;
    let q = (b as f64 * cb + p as f64) as f32;
    let y = (r as f64 * cr + q as f64) as f32;
    let f = y.floor();
    let d = y - f;
    if d > 0.5 || (d == 0.5 && f % 2.0 != 0.0) { f + 1.0 } else { f }
}

#[test]
fn gray_formula_matches_reference_for_all_8bit_triples() {
    for r in 0..=255u8 {
        for g in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(gray_u8(r, g, b), reference_gray(r, g, b), "rgb ({r}, {g}, {b})");
            }
        }
    }
}

#[test]
fn gray_formula_regressions_from_opencv() {
    // (R, G, B, np.round(cv2.cvtColor(BGR float32, COLOR_BGR2GRAY))) with opencv-python 5.0.0
    // (default build, IPP): pixels where OpenCV's non-IPP kernel would round the other way.
    let cases = [
        (39, 175, 1, 114),
        (157, 115, 18, 117),
        (9, 93, 37, 61),
        (7, 163, 59, 104),
        (74, 220, 81, 160),
        (37, 241, 105, 165),
        (146, 220, 129, 187),
        (41, 121, 151, 100),
        (196, 246, 171, 223),
        (223, 249, 190, 235),
        (81, 99, 212, 107),
        (116, 220, 234, 190),
    ];
    for (r, g, b, want) in cases {
        assert_eq!(gray_u8(r, g, b), want as f32, "rgb ({r}, {g}, {b})");
    }
}

fn random_rgb(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut rng = Rng(seed);
    let mut img = RgbImage::from_fn(w, h, |_, _| Rgb([rng.byte(), rng.byte(), rng.byte()]));
    // Include the known OpenCV tie cases and extremes.
    let special = [[39, 175, 1], [157, 115, 18], [0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]];
    for (i, p) in special.iter().enumerate() {
        img.put_pixel(i as u32 % w, i as u32 / w, Rgb(*p));
    }
    img
}

fn check_gray(loaded: &Plane, img: &RgbImage) {
    assert_eq!((loaded.width, loaded.height), (img.width() as usize, img.height() as usize));
    for (i, p) in img.pixels().enumerate() {
        assert_eq!(loaded.data[i], reference_gray(p[0], p[1], p[2]), "pixel {i} {p:?}");
    }
}

#[test]
fn rgb_png_bmp_tiff_read_with_the_official_formula() {
    let dir = TempDir::new("rgb");
    let img = random_rgb(37, 23, 7);
    for name in ["c.png", "c.bmp", "c.tif"] {
        let p = dir.path(name);
        img.save(&p).unwrap();
        let loaded = read_image(&p).unwrap();
        check_gray(&loaded.gray, &img);
        assert_eq!(loaded.bit_depth, 8);
        assert!(loaded.color.is_some(), "{name}: colour source without chroma");
        assert_eq!(read_gray(&p).unwrap(), loaded.gray);
    }
    // RGBA: alpha is ignored.
    let mut rng = Rng(99);
    let rgba = RgbaImage::from_fn(37, 23, |x, y| {
        let p = img.get_pixel(x, y);
        Rgba([p[0], p[1], p[2], rng.byte()])
    });
    let p = dir.path("a.png");
    rgba.save(&p).unwrap();
    check_gray(&read_gray(&p).unwrap(), &img);
}

/// JPEG parity with `cv2.imread` (libjpeg-turbo): small synthetic JPEGs and OpenCV's readings of them,
/// made offline by `tests/data/make_jpeg_refs.py` (colour 4:2:0 with odd width and height; gray,
/// progressive; colour 4:2:2 with EXIF orientation 6). The gray plane must equal OpenCV's official
/// reading bit for bit, and the chroma must be the documented formula on OpenCV's decoded BGR.
#[test]
fn jpeg_reads_exactly_as_opencv() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for (name, colour) in [("color420_odd", true), ("gray_odd", false), ("color422_exif6", true)] {
        let l = read_image(&data.join(format!("{name}.jpg"))).unwrap();
        let (shape, want) = read_npy_f32(&data.join(format!("{name}.gray.npy"))).unwrap();
        assert_eq!([l.gray.height, l.gray.width], shape[..], "{name}: size (EXIF orientation applied?)");
        let bad: Vec<usize> = (0..want.len()).filter(|&i| l.gray.data[i] != want[i]).collect();
        assert!(
            bad.is_empty(),
            "{name}: {} of {} gray pixels differ from OpenCV, first at {:?}",
            bad.len(),
            want.len(),
            &bad[..bad.len().min(5)]
        );
        assert_eq!(l.bit_depth, 8);

        let (bshape, bgr) = read_npy_f32(&data.join(format!("{name}.bgr.npy"))).unwrap();
        assert_eq!(bshape, [shape[0], shape[1], 3], "{name}");
        let px: Vec<[f32; 3]> = bgr.chunks_exact(3).map(|p| [p[2], p[1], p[0]]).collect();
        for (i, [r, g, b]) in px.iter().copied().enumerate() {
            // The stored gray is the official formula on OpenCV's BGR (the reference files agree).
            assert_eq!(gray_from_rgb(r, g, b).round_ties_even(), want[i], "{name}: reference pixel {i}");
        }
        match (&l.color, colour) {
            (Some(c), true) => {
                for (i, [r, g, b]) in px.iter().copied().enumerate() {
                    let y = gray_from_rgb(r, g, b);
                    assert_eq!(c.cr.data[i], (r - y) * 0.713 + 128.0, "{name}: Cr at pixel {i}");
                    assert_eq!(c.cb.data[i], (b - y) * 0.564 + 128.0, "{name}: Cb at pixel {i}");
                }
            }
            (None, false) => assert!(px.iter().all(|&[r, g, b]| r == g && g == b), "{name}: OpenCV's reading is gray"),
            (c, _) => panic!("{name}: chroma {} for a {} JPEG", c.is_some(), if colour { "colour" } else { "gray" }),
        }
    }
}

/// Truncated or corrupt JPEG data is an error naming the file (OpenCV would return the image
/// padded with gray). A single-scan file lacking only its final EOI marker, or any file with data
/// after EOI, still reads exactly as the complete file; a progressive file without EOI cannot be
/// told from a truncated one and is an error.
#[test]
fn truncated_or_corrupt_jpeg_is_an_error() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let dir = TempDir::new("jpgcut");
    for (name, progressive) in [("color420_odd", false), ("gray_odd", true)] {
        let bytes = std::fs::read(data.join(format!("{name}.jpg"))).unwrap();
        let full = read_image(&data.join(format!("{name}.jpg"))).unwrap();
        let p = dir.path("cut.jpg");
        // Every cut from the first byte after the SOI signature to just before the EOI marker.
        assert_eq!(bytes[bytes.len() - 2..], [0xFF, 0xD9]);
        for cut in 3..bytes.len() - 2 {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            match read_image(&p) {
                Err(e) => assert!(matches!(e, Error::Image { .. }) && e.to_string().contains("cut.jpg"), "{e}"),
                Ok(_) => panic!("{name} cut at {cut} of {}: read without error", bytes.len()),
            }
        }
        std::fs::write(&p, &bytes[..bytes.len() - 2]).unwrap();
        let r = read_image(&p);
        if progressive {
            assert!(matches!(&r, Err(e) if e.to_string().contains("truncated JPEG")), "{name} without EOI: {r:?}");
        } else {
            assert_eq!(r.unwrap(), full, "{name} without EOI");
        }
        std::fs::write(&p, [&bytes[..], b"trailing bytes"].concat()).unwrap();
        assert_eq!(read_image(&p).unwrap(), full, "{name} with trailing data");
        // Entropy-coded data interrupted by a marker.
        let sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
        let mut bad = bytes.clone();
        let mid = (sos + bytes.len()) / 2;
        bad[mid..mid + 2].copy_from_slice(&[0xFF, 0xD9]);
        std::fs::write(&p, &bad).unwrap();
        let e = read_image(&p).unwrap_err();
        assert!(e.to_string().contains("cut.jpg") && e.to_string().contains("Corrupt JPEG data"), "{e}");
    }
    // A header announcing a huge image is refused before anything is allocated.
    let mut bytes = std::fs::read(data.join("color420_odd.jpg")).unwrap();
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bytes[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0x00, 0xFF, 0x00]); // height, width = 65280
    let p = dir.path("huge.jpg");
    std::fs::write(&p, &bytes).unwrap();
    let e = read_image(&p).unwrap_err();
    assert!(matches!(e, mmif_io::Error::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("huge.jpg") && e.to_string().contains("65280×65280"), "{e}");
}

#[test]
fn gray_png_reads_unchanged_and_has_no_chroma() {
    let dir = TempDir::new("gray");
    let img = image::GrayImage::from_fn(16, 16, |x, y| image::Luma([(y * 16 + x) as u8]));
    let p = dir.path("g.png");
    img.save(&p).unwrap();
    let l = read_image(&p).unwrap();
    assert!(l.color.is_none());
    assert_eq!(l.gray.data, (0..256).map(|v| v as f32).collect::<Vec<_>>());
    // An RGB file whose channels are all equal is gray too.
    let rgb = RgbImage::from_fn(16, 16, |x, y| {
        let v = (y * 16 + x) as u8;
        Rgb([v, v, v])
    });
    let p = dir.path("g3.png");
    rgb.save(&p).unwrap();
    let l = read_image(&p).unwrap();
    assert!(l.color.is_none());
    assert_eq!(l.gray.data, (0..256).map(|v| v as f32).collect::<Vec<_>>());
}

#[test]
fn sixteen_bit_inputs_keep_their_precision() {
    let dir = TempDir::new("16");
    let vals: Vec<u16> = (0..64).map(|i| (i * 1031 + 7) as u16).collect();
    let img = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_raw(8, 8, vals.clone()).unwrap();
    let p = dir.path("g16.png");
    img.save(&p).unwrap();
    let l = read_image(&p).unwrap();
    assert_eq!(l.bit_depth, 16);
    for (i, &v) in vals.iter().enumerate() {
        assert_eq!(l.gray.data[i], (v as f64 * 255.0 / 65535.0) as f32);
    }
    assert!(l.gray.data.iter().any(|v| v.fract() != 0.0), "16-bit values were rounded");
    // RGB16: the formula on the scaled channels, unrounded.
    let rgb: Vec<u16> = (0..64 * 3).map(|i| (i * 997 % 65536) as u16).collect();
    let img = image::ImageBuffer::<Rgb<u16>, Vec<u16>>::from_raw(8, 8, rgb.clone()).unwrap();
    let p = dir.path("c16.png");
    img.save(&p).unwrap();
    let l = read_image(&p).unwrap();
    let s = |v: u16| (v as f64 * 255.0 / 65535.0) as f32;
    for i in 0..64 {
        let want = gray_from_rgb(s(rgb[3 * i]), s(rgb[3 * i + 1]), s(rgb[3 * i + 2]));
        assert_eq!(l.gray.data[i], want);
    }
    assert!(l.color.is_some());
}

#[test]
fn fixture_inputs_are_official_readings() {
    let dir = TempDir::new("fx");
    let mut n = 0;
    for e in std::fs::read_dir(common::fixtures()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("input_") && name.ends_with(".npy")) {
            continue;
        }
        n += 1;
        let (shape, raw) = read_npy_f32(&p).unwrap();
        let l = read_image(&p).unwrap();
        assert_eq!((l.gray.height, l.gray.width), (shape[shape.len() - 2], shape[shape.len() - 1]));
        assert!(l.color.is_none());
        for (i, &v) in l.gray.data.iter().enumerate() {
            assert_eq!(v, raw[i] * 255.0);
            assert!((v - v.round()).abs() < 1e-3 && (0.0..=255.0).contains(&v), "{name}[{i}] = {v}");
        }
        // Through an 8-bit PNG and back: the rounded values, unchanged.
        let png = dir.path("x.png");
        write_png8(&png, &l.gray).unwrap();
        let back = read_gray(&png).unwrap();
        assert_eq!(back.data, l.gray.data.iter().map(|v| v.round()).collect::<Vec<_>>(), "{name}");
    }
    assert!(n > 0, "no input_*.npy in the fixture folder");
}

#[test]
fn npy_round_trip_and_shapes() {
    let dir = TempDir::new("npy");
    for shape in [vec![2usize, 3], vec![5], vec![], vec![1, 2, 3, 4], vec![0, 3]] {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 1.0).collect();
        let p = dir.path("a.npy");
        write_npy_f32(&p, &shape, &data).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!((bytes.len() - n * 4) % 64, 0, "data not 64-byte aligned");
        assert_eq!(read_npy_f32(&p).unwrap(), (shape, data));
    }
    let plane = Plane::new(3, 2, vec![0.0, 0.25, 0.5, 0.75, 1.0, 0.125]);
    let p = dir.path("p.npy");
    write_npy(&p, &plane).unwrap();
    assert_eq!(read_npy_f32(&p).unwrap(), (vec![2, 3], plane.data.clone()));
    assert_eq!(read_gray(&p).unwrap(), plane.clone().scale(255.0));
    // 1×H×W and 1×1×H×W are images too; 2×H×W is not.
    write_npy_f32(&p, &[1, 1, 2, 3], &plane.data).unwrap();
    assert_eq!(read_gray(&p).unwrap(), plane.clone().scale(255.0));
    write_npy_f32(&p, &[1, 2, 3], &plane.data).unwrap();
    assert_eq!(read_gray(&p).unwrap(), plane.clone().scale(255.0));
    write_npy_f32(&p, &[2, 1, 3], &plane.data).unwrap();
    assert!(matches!(read_gray(&p), Err(Error::Unsupported { .. })));
    assert!(write_npy_f32(&p, &[4], &plane.data).is_err());
}

fn npy_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(h.len() as u16).to_le_bytes());
    v.extend_from_slice(h.as_bytes());
    v.extend_from_slice(data);
    v
}

#[test]
fn npy_errors_are_clear() {
    let dir = TempDir::new("npy-err");
    let p = dir.path("bad.npy");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", &[0; 16]), "'<f8'"),
        (npy_with_header("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", &[0; 8]), "'>f4'"),
        (npy_with_header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", &[0; 16]), "Fortran"),
        (npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", &[0; 15]), "truncated"),
        (b"\x93NUMPY\x01\x00\xff\x00{".to_vec(), "truncated"),
        (b"not numpy".to_vec(), "magic"),
    ];
    for (bytes, needle) in cases {
        std::fs::write(&p, &bytes).unwrap();
        let e = read_npy_f32(&p).unwrap_err().to_string();
        assert!(e.contains(needle) && e.contains("bad.npy"), "{e}");
    }
    // Version 2.0 and 3.0 headers are accepted.
    for major in [2u8, 3] {
        let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n";
        let mut v = vec![0x93, b'N', b'U', b'M', b'P', b'Y', major, 0];
        v.extend_from_slice(&(h.len() as u32).to_le_bytes());
        v.extend_from_slice(h.as_bytes());
        v.extend_from_slice(&2.5f32.to_le_bytes());
        std::fs::write(&p, &v).unwrap();
        assert_eq!(read_npy_f32(&p).unwrap(), (vec![1], vec![2.5]));
    }
}

#[test]
fn truncated_or_garbage_images_are_errors() {
    let dir = TempDir::new("trunc");
    let img = random_rgb(32, 32, 11);
    let full = dir.path("full.png");
    img.save(&full).unwrap();
    let bytes = std::fs::read(&full).unwrap();
    let p = dir.path("cut.png");
    for cut in (0..bytes.len() - 1).step_by(7) {
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let e = read_image(&p).unwrap_err();
        assert!(e.to_string().contains("cut.png"), "{e}");
    }
    std::fs::write(&p, b"GIF89a not supported, not an image at all").unwrap();
    assert!(read_image(&p).is_err());
    assert!(matches!(read_image(&dir.path("missing.png")), Err(Error::Io { .. })));
}

#[test]
fn colour_round_trip() {
    let dir = TempDir::new("colour");
    let img = random_rgb(41, 29, 5);
    let p = dir.path("c.png");
    img.save(&p).unwrap();
    let l = read_image(&p).unwrap();
    let chroma = l.color.clone().unwrap();
    // With the unrounded Y the RGB comes back within 0.5 (so exactly after 8-bit quantisation) ...
    let y = Plane::new(41, 29, img.pixels().map(|p| gray_from_rgb(p[0] as f32, p[1] as f32, p[2] as f32)).collect());
    let rgb = compose_color(&y, &chroma);
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            let d = (rgb[c].data[i] - p[c] as f32).abs();
            assert!(d <= 0.5, "pixel {i} channel {c}: {} vs {}", rgb[c].data[i], p[c]);
        }
    }
    let out = dir.path("back.png");
    write_png_rgb8(&out, &rgb).unwrap();
    assert_eq!(image::open(&out).unwrap().to_rgb8(), img);
    // ... and with the official (rounded) gray within 0.5 + the coefficient error.
    let rgb = compose_color(&l.gray, &chroma);
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            assert!((rgb[c].data[i] - p[c] as f32).abs() <= 0.65, "pixel {i} channel {c}");
        }
    }
}

#[test]
fn quantisation_follows_imageio_and_truncation() {
    let dir = TempDir::new("q");
    let vals = [0.0f32, 0.5, 1.5, 2.5, 0.500_000_06, 254.6, 255.0, 300.0, -5.0, f32::NAN, 17.999];
    let plane = Plane::new(vals.len(), 1, vals.to_vec());
    let p = dir.path("q.png");
    write_png8(&p, &plane).unwrap();
    // imageio: floor(v + 0.499999999) — checked against imageio 2.38's image_as_uint for the
    // in-range values; out-of-range values are clamped, NaN becomes 0.
    assert_eq!(image::open(&p).unwrap().to_luma8().into_raw(), vec![0, 0, 1, 2, 1, 255, 255, 255, 0, 0, 18]);
    write_png8_with(&p, &plane, Quantize::Truncate).unwrap();
    assert_eq!(image::open(&p).unwrap().to_luma8().into_raw(), vec![0, 0, 1, 2, 0, 254, 255, 255, 0, 0, 17]);
}

#[test]
fn write_output_dispatches_on_extension() {
    let dir = TempDir::new("out");
    let plane = Plane::new(4, 3, (0..12).map(|i| i as f32 * 21.25).collect());
    let rgb = [plane.clone(), plane.clone().scale(0.5), plane.clone().scale(0.25)];

    write_output(&dir.path("g.png"), &plane).unwrap();
    // imageio quantisation: x.5 goes down (floor(v + 0.499999999)).
    let want: Vec<f32> = plane.data.iter().map(|&v| (v as f64 + 0.499_999_999).floor() as f32).collect();
    assert_eq!(read_gray(&dir.path("g.png")).unwrap().data, want);

    write_output(&dir.path("g.TIFF"), &plane).unwrap();
    let t = read_image(&dir.path("g.TIFF")).unwrap();
    assert_eq!(t.bit_depth, 16);
    for (a, b) in t.gray.data.iter().zip(&plane.data) {
        assert!((a - b).abs() <= 0.5 * 255.0 / 65535.0 + 1e-4, "{a} vs {b}");
    }
    write_tiff16(&dir.path("direct.tif"), &plane).unwrap();

    write_output(&dir.path("g.npy"), &plane).unwrap();
    assert_eq!(read_npy_f32(&dir.path("g.npy")).unwrap(), (vec![3, 4], plane.data.clone()));

    write_output(&dir.path("c.png"), &rgb).unwrap();
    assert!(read_image(&dir.path("c.png")).unwrap().color.is_some());
    write_output(&dir.path("c.tif"), &rgb).unwrap();
    write_tiff16_rgb(&dir.path("c2.tif"), &rgb).unwrap();
    assert_eq!(read_image(&dir.path("c.tif")).unwrap().bit_depth, 16);
    write_output(&dir.path("c.npy"), &rgb).unwrap();
    let (shape, data) = read_npy_f32(&dir.path("c.npy")).unwrap();
    assert_eq!(shape, vec![3, 4, 3]);
    assert_eq!(&data[..3], &[rgb[0].data[0], rgb[1].data[0], rgb[2].data[0]]);

    // Unknown extension: error naming the file, nothing written.
    let e = write_output(&dir.path("g.jpg"), &plane).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }) && e.to_string().contains("g.jpg"), "{e}");
    assert!(write_output(&dir.path("noext"), &plane).is_err());
    // An inconsistent plane is an error, not a panic.
    let bad = Plane { width: 5, height: 5, data: vec![0.0; 3] };
    assert!(write_output(&dir.path("bad.png"), &bad).is_err());
    assert!(write_output(&dir.path("bad.npy"), &bad).is_err());

    let mut files = dir.files();
    files.sort();
    assert_eq!(files, ["c.npy", "c.png", "c.tif", "c2.tif", "direct.tif", "g.TIFF", "g.npy", "g.png"]);
    // Overwriting replaces the file.
    write_output(&dir.path("g.png"), &plane.clone().scale(0.0)).unwrap();
    assert!(read_gray(&dir.path("g.png")).unwrap().data.iter().all(|&v| v == 0.0));
}
