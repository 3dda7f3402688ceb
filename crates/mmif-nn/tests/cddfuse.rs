//! CDDFuse parity with the official PyTorch code (fixtures §2–3).

mod common;

use common::*;
use mmif_nn::cddfuse::{CddFuse, Residual};
use mmif_nn::{Tensor, weights};

/// The network with the weights of the official-layout checkpoint fixture.
fn network() -> CddFuse {
    let meta = fixtures::json("forward_meta.json");
    let file = meta["models"]["cddfuse"]["pth"]["file"].as_str().expect("models.cddfuse.pth.file");
    weights::load_file(CddFuse::new(&device()), &fixtures::path(file), None, &device())
        .unwrap_or_else(|e| panic!("loading {file}: {e}"))
}

/// Runs one forward fixture: `<name>_raw` and its min-max normalisation `<name>_fused` (both
/// must exist: a missing fixture fails the test).
fn check(net: &CddFuse, name: &str, vis_kind: &str, ir_kind: &str, residual: Residual, nth: usize) {
    check_with(name, vis_kind, ir_kind, nth, |vis, ir| net.forward(vis, ir, residual));
}

/// [`check`] with the network evaluated by `forward`; returns its raw output.
fn check_with(
    name: &str,
    vis_kind: &str,
    ir_kind: &str,
    nth: usize,
    forward: impl Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
) -> Tensor<4> {
    let (shape, raw_want) = expected(&format!("{name}_raw"));
    let vis = input(vis_kind, &shape, nth);
    let ir = input(ir_kind, &shape, nth);
    let raw = forward(vis, ir);
    assert_close(&format!("{name}_raw"), &values(raw.clone()), &raw_want, 1e-4);
    let (_, fused_want) = expected(&format!("{name}_fused"));
    assert_close(&format!("{name}_fused"), &values(mmif_nn::min_max(raw.clone())), &fused_want, 1e-4);
    raw
}

#[test]
fn bands_match_official_and_the_whole_image() {
    // Every forward fixture in bands: heights that leave a partial last band, some thinner than
    // the last pass's halo (27 rows), so that halos span several bands.
    let net = network();
    type Rows = fn(usize) -> usize;
    let cases: [(&str, &str, &str, Residual, usize, Rows); 4] = [
        ("cddfuse_ivf", "ivf_vi", "ivf_ir", Residual::Vis, 0, |h| h / 3 + 1),
        ("cddfuse_ivf_odd", "ivf_vi", "ivf_ir", Residual::Vis, 1, |_| 5),
        ("cddfuse_mif", "mif_mri", "mif_pet", Residual::None, 0, |h| h / 2 - 1),
        ("cddfuse_mif_ivfckpt", "mif_mri", "mif_pet", Residual::Sum, 0, |_| 7),
    ];
    for (name, vis_kind, ir_kind, residual, nth, rows) in cases {
        let (shape, _) = expected(&format!("{name}_raw"));
        let rows = rows(shape[0]);
        let whole = net.forward(input(vis_kind, &shape, nth), input(ir_kind, &shape, nth), residual);
        let raw = check_with(name, vis_kind, ir_kind, nth, |vis, ir| net.forward_bands(vis, ir, residual, rows));
        assert_close(&format!("{name} in bands of {rows} rows"), &values(raw), &values(whole), 1e-4);
    }
}

#[test]
fn ivf_forward_matches_official() {
    check(&network(), "cddfuse_ivf", "ivf_vi", "ivf_ir", Residual::Vis, 0);
}

#[test]
fn ivf_odd_size_matches_official() {
    check(&network(), "cddfuse_ivf_odd", "ivf_vi", "ivf_ir", Residual::Vis, 1);
}

#[test]
fn mif_checkpoint_path_matches_official() {
    check(&network(), "cddfuse_mif", "mif_mri", "mif_pet", Residual::None, 0);
}

#[test]
fn ivf_checkpoint_on_medical_matches_official() {
    check(&network(), "cddfuse_mif_ivfckpt", "mif_mri", "mif_pet", Residual::Sum, 0);
}

#[test]
fn intermediates_match_official() {
    let net = network();
    let (shape, base_want) = expected("cddfuse_ivf_enc_vis_base_c0to7");
    let (c, hw) = (shape[0], &shape[1..]);
    let trace = net.trace(input("ivf_vi", hw, 0), input("ivf_ir", hw, 0), Residual::Vis);
    assert_close_rel("enc_vis_base", &first_channels(trace.vis.base.clone(), c), &base_want, 1e-3);
    let (_, want) = expected("cddfuse_ivf_enc_vis_detail_c0to7");
    assert_close_rel("enc_vis_detail", &first_channels(trace.vis.detail.clone(), c), &want, 1e-3);
    let (_, want) = expected("cddfuse_ivf_fused_base_c0to7");
    assert_close_rel("fused_base", &first_channels(trace.fused_base.clone(), c), &want, 1e-3);
    let (_, want) = expected("cddfuse_ivf_fused_detail_c0to7");
    assert_close_rel("fused_detail", &first_channels(trace.fused_detail.clone(), c), &want, 1e-3);
}

#[test]
fn fill_loads_and_equals_the_checkpoint() {
    // The manifest's deterministic fill loads into the network and is what the .pth holds.
    let dev = device();
    let sd = weights::canonicalize(&fixtures::filled("cddfuse"), None);
    let net = weights::load(CddFuse::new(&dev), &sd, &dev).unwrap_or_else(|e| panic!("{e}"));
    let from_pth = weights::state_dict(&network());
    let from_fill = weights::state_dict(&net);
    assert_eq!(from_pth.keys().collect::<Vec<_>>(), from_fill.keys().collect::<Vec<_>>());
    for (k, t) in &from_fill {
        assert_eq!(t.data, from_pth[k].data, "{k}");
    }
}

#[test]
fn partial_checkpoint_is_refused_with_names() {
    let dev = device();
    let mut sd = weights::canonicalize(&fixtures::filled("cddfuse"), None);
    let removed = sd.keys().nth(3).expect("a key").clone();
    sd.remove(&removed);
    sd.insert("DIDF_Encoder.extra.weight".into(), mmif_io::TensorData::f32(vec![2], vec![0.0, 1.0]));
    let some = sd.keys().find(|k| k.ends_with("proj.weight")).expect("a proj weight").clone();
    sd.get_mut(&some).expect("present").shape.push(1);
    let err = weights::load(CddFuse::new(&dev), &sd, &dev).expect_err("a partial checkpoint must be refused");
    let msg = err.to_string();
    assert!(msg.contains(&removed), "missing key not named: {msg}");
    assert!(msg.contains("DIDF_Encoder.extra.weight"), "unexpected key not named: {msg}");
    assert!(msg.contains(&some), "mis-shaped key not named: {msg}");
}
