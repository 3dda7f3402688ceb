//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs`, run with `cargo +nightly fuzz`),
//! shared with the test that replays their committed corpus (`fuzz/corpus/<target>/`) in every
//! `cargo test`, so that both exercise the same code. Each takes arbitrary bytes and must return
//! (with an error or a value) without panicking, hanging or allocating without bound.

use std::path::{Path, PathBuf};

use mmif_io::Limits;

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name (`fuzz/fuzz_targets/<name>.rs`, `fuzz/corpus/<name>/`).
pub const TARGETS: [(&str, Target); 5] =
    [("checkpoint", checkpoint), ("npy", npy), ("image", image), ("eval", eval), ("mmifds", mmifds)];

/// The pixel limit of the image targets: small, so that an execution stays fast.
const FUZZ_MAX_PIXELS: u64 = 1 << 16;

/// Checkpoints: the format is detected from the content (`.pth` zip, Jittor `.pkl`, pickle,
/// safetensors), so one target covers the restricted unpickler and every loader. The first byte
/// picks the file name the loader sees (the extension changes its error path).
pub fn checkpoint(data: &[u8]) {
    let name = match data.first().map(|b| b % 3) {
        Some(0) => "fuzz.pth",
        Some(1) => "fuzz.pkl",
        _ => "fuzz.safetensors",
    };
    if let Ok(ck) = mmif_io::load_checkpoint_bytes(data, Path::new(name)) {
        // What `mmif inspect` and the weight loader read next.
        let _ = ck.default_state_dict();
        for t in ck.tensors.values() {
            assert_eq!(t.shape.iter().product::<usize>(), t.data.len(), "a tensor's shape holds its values");
        }
    }
}

/// `.npy`: the float32 reader of fixtures, text features and `.npy` images.
pub fn npy(data: &[u8]) {
    if let Ok((shape, values)) = mmif_io::npy::parse_npy_f32(data) {
        assert_eq!(shape.iter().product::<usize>(), values.len());
    }
}

/// Every image decoder (PNG, JPEG, BMP, TIFF, `.npy` image) with the official gray reading.
pub fn image(data: &[u8]) {
    let limits = Limits::pixels(FUZZ_MAX_PIXELS);
    if let Ok(img) = mmif_io::image_io::read_image_bytes(Path::new("fuzz.img"), data, limits) {
        let g = &img.gray;
        assert_eq!(g.width * g.height, g.data.len());
        assert!(g.width as u64 * g.height as u64 <= FUZZ_MAX_PIXELS);
    }
}

/// `mmif eval`'s inputs: a decoded image as the fused image, scored against sources derived
/// from it (same size), by every metric — on whatever size and content a file can have.
pub fn eval(data: &[u8]) {
    let limits = Limits::pixels(FUZZ_MAX_PIXELS);
    let Ok(img) = mmif_io::image_io::read_image_bytes(Path::new("fuzz.img"), data, limits) else { return };
    let f = img.gray;
    let a: Vec<f32> = f.data.iter().rev().copied().collect();
    let b: Vec<f32> = f.data.iter().map(|v| 255.0 - v).collect();
    let opts = mmif_metrics::Options::default();
    let (gf, ga, gb) = (
        mmif_metrics::Gray::new(f.width, f.height, &f.data),
        mmif_metrics::Gray::new(f.width, f.height, &a),
        mmif_metrics::Gray::new(f.width, f.height, &b),
    );
    let (Ok(gf), Ok(ga), Ok(gb)) = (gf, ga, gb) else { return };
    let pixels: Vec<u8> = f.data.iter().map(|&v| v.clamp(0.0, 255.0) as u8).collect();
    for m in mmif_metrics::Metric::ALL {
        if m.is_toolkit() {
            let Ok(im) = mmif_metrics::Image::new(f.width, f.height, 1, &pixels) else { return };
            let _ = mmif_metrics::compute_image(m, im, im, im, &opts);
        } else {
            let _ = mmif_metrics::compute(m, gf, ga, gb, &opts);
        }
    }
}

/// `.mmifds` datasets (`mmif train`'s input): the header, the record index and the metadata are
/// checked against the file by `Dataset::open`; then every record's planes, text features and
/// token count are read as the training loader reads them. The reader takes a path, so the
/// bytes go through a file in the temporary folder (one per process and call, removed after).
pub fn mmifds(data: &[u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("mmif-fuzz-{}-{n}.mmifds", std::process::id()));
    std::fs::write(&path, data).expect("write the fuzz input to the temporary folder");
    if let Ok(mut ds) = mmif_io::dataset::Dataset::open(&path) {
        // `open` bounds the record count by the file's length, so this loop is bounded too.
        for i in 0..ds.len {
            if let Ok(planes) = ds.get(i) {
                assert_eq!(planes.len(), ds.sources);
                assert!(planes.iter().all(|p| p.len() == ds.height * ds.width), "a plane holds H×W values");
            }
            if let Ok(Some(t)) = ds.text(i) {
                assert_eq!((Some(t.tokens), Some(t.dim)), (ds.tokens(i), ds.text_dim));
                assert_eq!(t.data.len(), t.tokens * t.dim, "text features hold T×D values");
            }
        }
        let _ = ds.uniform_tokens();
    }
    let _ = std::fs::remove_file(&path);
}

/// The committed corpus of `target`: `fuzz/corpus/<target>/` at the repository root.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target)
}
