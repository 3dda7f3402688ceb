//! Size limits: files that declare more pixels than the limit are refused from their header,
//! before anything is decoded or allocated; zipped checkpoints cannot expand without bound.

use std::path::Path;

use mmif_io::checkpoint::pth_bytes;
use mmif_io::image_io::read_image_with;
use mmif_io::{DType, Error, Limits, Plane, SaveValue, TensorData, load_checkpoint_bytes};
use mmif_testkit::{Scratch, hostile};

#[test]
fn every_format_declaring_30000_squared_is_refused_from_its_header() {
    let dir = Scratch::new("limits_declared");
    for ext in hostile::FORMATS {
        let path = dir.path(&format!("big.{ext}"));
        let bytes = hostile::declaring(ext, 30000, 30000);
        assert!(bytes.len() < 1000, "{ext}: the file itself is small");
        std::fs::write(&path, &bytes).expect("write");
        let t = std::time::Instant::now();
        let err = read_image_with(&path, Limits::pixels(mmif_io::DEFAULT_MAX_PIXELS)).expect_err(ext);
        assert!(matches!(err, Error::TooLarge { .. }), "{ext}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("30000×30000") && msg.contains("--max-pixels"), "{ext}: {msg}");
        // Refused from the header: well under a second even on a loaded machine.
        assert!(t.elapsed().as_secs_f64() < 5.0, "{ext}: {:?}", t.elapsed());
    }
}

#[test]
fn the_limit_is_inclusive_and_zero_means_none() {
    let dir = Scratch::new("limits_edge");
    let plane = Plane::new(20, 10, (0..200).map(|i| i as f32).collect());
    for name in ["p.png", "p.tif", "p.npy"] {
        let path = dir.path(name);
        mmif_io::write_output(&path, &plane.clone().scale(1.0 / if name.ends_with("npy") { 255.0 } else { 1.0 }))
            .expect("write");
        assert!(read_image_with(&path, Limits::pixels(200)).is_ok(), "{name}");
        assert!(read_image_with(&path, Limits::pixels(0)).is_ok(), "{name}");
        let err = read_image_with(&path, Limits::pixels(199)).expect_err(name);
        assert!(err.to_string().contains("20×10 = 200 pixels"), "{name}: {err}");
    }
}

#[test]
fn a_file_too_large_for_any_image_within_the_limit_is_not_read() {
    let dir = Scratch::new("limits_file");
    let path = dir.path("huge.png");
    // A sparse file: 1 GB long, no disk used.
    let f = std::fs::File::create(&path).expect("create");
    f.set_len(1 << 30).expect("set_len");
    let err = read_image_with(&path, Limits::pixels(1000)).expect_err("too long");
    assert!(matches!(err, Error::TooLarge { .. }) && err.to_string().contains("1073741824 bytes"), "{err}");
}

/// Sets the uncompressed size that the zip's central directory declares for `entry`.
fn declare_size(zip: &mut [u8], entry: &str, size: u32) {
    let mut i = 0;
    while i + 46 <= zip.len() {
        if zip[i..i + 4] == *b"PK\x01\x02" {
            let n = u16::from_le_bytes([zip[i + 28], zip[i + 29]]) as usize;
            let (extra, comment) = (
                u16::from_le_bytes([zip[i + 30], zip[i + 31]]) as usize,
                u16::from_le_bytes([zip[i + 32], zip[i + 33]]) as usize,
            );
            if zip[i + 46..i + 46 + n].ends_with(entry.as_bytes()) {
                zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
                return;
            }
            i += 46 + n + extra + comment;
        } else {
            i += 1;
        }
    }
    panic!("no central directory entry ends with {entry}");
}

#[test]
fn a_zip_entry_declaring_more_than_the_checkpoint_can_hold_is_refused() {
    let t = TensorData { shape: vec![2, 3], dtype: DType::F32, data: vec![1.0; 6] };
    let root = vec![("w".to_string(), SaveValue::Tensor(t))];
    let path = Path::new("bomb.pth");
    let mut bytes = pth_bytes(&root, path).expect("pth");
    assert!(load_checkpoint_bytes(&bytes, path).is_ok());
    declare_size(&mut bytes, "data.pkl", 0xF000_0000);
    let err = load_checkpoint_bytes(&bytes, path).expect_err("declared 3.75 GiB");
    assert!(err.to_string().contains("declares 4026531840 bytes"), "{err}");
}
