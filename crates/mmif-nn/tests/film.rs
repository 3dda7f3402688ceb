//! FILM parity with the official PyTorch code (fixtures §2) and its checkpoint formats (§3).

mod common;

use std::path::PathBuf;

use common::*;
use mmif_nn::Tensor;
use mmif_nn::film::Film;
use mmif_nn::weights::{self, LoadFileError};

/// Tokens of the fixtures' text features (README §1: `uniform_pm1(seed, t = 65535, n = 149*768)`).
const TEXT_TOKENS: usize = 149;
/// The tensor index `t` of the text features in the fill (README §1).
const TEXT_T: u64 = 65535;

/// The fixtures' text features, `1×T×768`, with the seed of the `film` manifest entry.
fn text() -> Tensor<3> {
    let seed = fixtures::json("forward_meta.json")["models"]["film"]["seed"].as_u64().expect("models.film.seed");
    let width = mmif_nn::film::TEXT_DIM;
    let v = mmif_io::uniform_pm1(seed, TEXT_T, TEXT_TOKENS * width);
    Tensor::from_data(burn::tensor::TensorData::new(v, [1, TEXT_TOKENS, width]), &device())
}

/// The network with the manifest's deterministic fill (the `model` group, `module.` removed).
fn network() -> Film {
    let dev = device();
    let sd = weights::canonicalize(&fixtures::filled("film"), Some("model"));
    weights::load(Film::new(&dev), &sd, &dev).unwrap_or_else(|e| panic!("loading the FILM fill: {e}"))
}

/// Runs `<name>_raw` and `<name>_fused` with imageA of `a_kind` and imageB of `b_kind`.
fn check(net: &Film, name: &str, a_kind: &str, b_kind: &str) {
    let (shape, raw_want) = expected(&format!("{name}_raw"));
    let a = input(a_kind, &shape, 0);
    let b = input(b_kind, &shape, 0);
    let raw = net.forward(a, b, text());
    assert_close(&format!("{name}_raw"), &values(raw.clone()), &raw_want, 1e-4);
    let (_, fused_want) = expected(&format!("{name}_fused"));
    assert_close(&format!("{name}_fused"), &values(mmif_nn::min_max(raw)), &fused_want, 1e-4);
}

#[test]
fn film_ivf_matches_official() {
    check(&network(), "film_ivf", "ivf_ir", "ivf_vi");
}

#[test]
fn film_ivf_literal_evaluation_matches_official() {
    // The literal graph (full attention output, unsliced FFNs) gives the same result.
    check(&network().with_low_memory(false), "film_ivf", "ivf_ir", "ivf_vi");
}

#[test]
fn film_ivf_odd_size_in_bands_matches_official() {
    // The memory-saving evaluation with Restormer blocks in bands of 16 rows (a partial last band).
    check(&network().with_tile_rows(16), "film_ivf_odd", "ivf_ir", "ivf_vi");
}

#[test]
fn film_ivf_odd_size_matches_official() {
    check(&network(), "film_ivf_odd", "ivf_ir", "ivf_vi");
}

#[test]
fn film_mif_matches_official() {
    check(&network(), "film_mif", "mif_mri", "mif_pet");
}

fn format_fixture(key: &str) -> PathBuf {
    let meta = fixtures::json("forward_meta.json");
    let name = meta["models"]["film"][key]
        .as_str()
        .unwrap_or_else(|| panic!("forward_meta.json: models.film.{key} names no file"));
    fixtures::path(name)
}

#[test]
fn pth_and_jittor_pkl_load_to_the_same_tensors() {
    let pth = mmif_io::load_checkpoint(&format_fixture("pth_format_small")).expect("read the .pth fixture");
    let pkl = mmif_io::load_checkpoint(&format_fixture("jittor_format_small")).expect("read the .pkl fixture");
    let a = weights::canonicalize(&pth.tensors, Some("model"));
    let b = weights::canonicalize(&pkl.tensors, Some("model"));
    assert!(!a.is_empty(), "no tensors in the .pth model group");
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    // Every tensor is a FILM parameter of the right shape.
    let net_shapes: std::collections::BTreeMap<String, Vec<usize>> =
        weights::param_shapes(&Film::new(&device())).into_iter().map(|(k, s, _)| (k, s)).collect();
    for (k, t) in &a {
        assert_eq!(t.shape, b[k].shape, "{k}");
        assert!(t.data.iter().zip(&b[k].data).all(|(x, y)| x.to_bits() == y.to_bits()), "{k}: values differ");
        assert_eq!(net_shapes.get(k), Some(&t.shape), "{k} is not a FILM parameter of that shape");
    }
}

#[test]
fn small_checkpoints_into_the_network_report_missing_keys() {
    let dev = device();
    for key in ["pth_format_small", "jittor_format_small"] {
        let path = format_fixture(key);
        let present = weights::canonicalize(&mmif_io::load_checkpoint(&path).expect("readable").tensors, Some("model"));
        let err = weights::load_file(Film::new(&dev), &path, None, &dev).expect_err("a partial checkpoint must fail");
        let LoadFileError::Fit { source, .. } = &err else { panic!("{key}: expected a fit error, got {err}") };
        let total = weights::param_shapes(&Film::new(&dev)).len();
        assert_eq!(source.missing.len(), total - present.len(), "{key}: {err}");
        assert!(source.unexpected.is_empty() && source.mismatched.is_empty(), "{key}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("missing") && msg.contains(path.file_name().unwrap().to_str().unwrap()), "{msg}");
    }
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("mmif-nn-film-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create a scratch directory");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn corrupted_jittor_pkl_is_a_clear_error() {
    let dev = device();
    let bytes = std::fs::read(format_fixture("jittor_format_small")).expect("read the .pkl fixture");
    let dir = Scratch::new("corrupt");
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x20;
    let cases =
        [("bad_checksum.pkl", flipped, "checksum"), ("truncated.pkl", bytes[..bytes.len() * 2 / 3].to_vec(), "")];
    for (name, data, needle) in cases {
        let p = dir.0.join(name);
        std::fs::write(&p, data).expect("write the corrupted copy");
        let err = weights::load_file(Film::new(&dev), &p, None, &dev).expect_err("a corrupted file must fail");
        assert!(matches!(err, LoadFileError::Read(_)), "{name}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(name), "{name}: the error does not name the file: {msg}");
        assert!(msg.to_lowercase().contains(needle), "{name}: {msg}");
        eprintln!("{name}: {msg}");
    }
}
