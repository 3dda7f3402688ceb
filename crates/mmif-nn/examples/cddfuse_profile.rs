//! Times the parts of one CDDFuse forward pass at one size, in the order the network runs them
//! (for profiling work; random weights, the time does not depend on them).
//! `cargo run --release -p mmif-nn --example cddfuse_profile -- 480 640`

use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use mmif_nn::cddfuse::CddFuse;

/// Median wall time of `runs` calls after one warm-up, in ms.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    drop(f());
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            drop(f());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    mmif_nn::keep_freed_memory();
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("H W [RUNS]")).collect();
    let (h, w) = (args.first().copied().unwrap_or(480), args.get(1).copied().unwrap_or(640));
    let runs = args.get(2).copied().unwrap_or(3);
    let dev = mmif_nn::cpu();
    let net = CddFuse::new(&dev);
    let sync = |t: Tensor<4>| mmif_nn::weights::tensor_to_vec(t.narrow(1, 0, 1)).len();
    let img = Tensor::<4>::random([1, 1, h, w], Distribution::Uniform(0.0, 1.0), &dev);
    let enc = &net.DIDF_Encoder;
    let x0 = enc.patch_embed.proj.forward(img.clone());
    let mut rows: Vec<(String, f64, usize)> = Vec::new();
    rows.push((
        "encoder patch_embed 3x3 1->64".into(),
        time(runs, || sync(enc.patch_embed.proj.forward(img.clone()))),
        2,
    ));
    let blk = &enc.encoder_level1[0];
    rows.push(("Restormer block 64 (x12)".into(), time(runs, || sync(blk.forward(x0.clone()))), 12));
    rows.push(("BaseFeatureExtraction (x3)".into(), time(runs, || sync(enc.baseFeature.forward(x0.clone()))), 3));
    rows.push((
        "DetailFeatureExtraction(3) (x2)".into(),
        time(runs, || sync(enc.detailFeature.forward(x0.clone()))),
        2,
    ));
    rows.push(("DetailFuseLayer(1) (x1)".into(), time(runs, || sync(net.DetailFuseLayer.forward(x0.clone()))), 1));
    let dec = &net.DIDF_Decoder;
    let x32 = dec.output._0.forward(x0.clone());
    rows.push(("decoder head 3x3 64->32".into(), time(runs, || sync(dec.output._0.forward(x0.clone()))), 1));
    rows.push(("decoder head 3x3 32->1".into(), time(runs, || sync(dec.output._2.forward(x32.clone()))), 1));
    // The pieces of one Restormer block.
    let a = &blk.attn;
    let n1 = blk.norm1.forward(x0.clone());
    let qkv = a.qkv.forward(n1.clone());
    let qkv_dw = a.qkv_dwconv.forward(qkv.clone());
    let temp = a.temperature.val();
    let pieces = [
        ("  norm1 (layer norm 64)", time(runs, || sync(blk.norm1.forward(x0.clone())))),
        ("  qkv 1x1 64->192", time(runs, || sync(a.qkv.forward(n1.clone())))),
        ("  qkv_dwconv 3x3 192", time(runs, || sync(a.qkv_dwconv.forward(qkv.clone())))),
        (
            "  attention + project_out + residual",
            time(runs, || {
                sync(mmif_nn::layers::attend_project_add(
                    qkv_dw.clone(),
                    a.heads,
                    temp.clone(),
                    &a.project_out,
                    x0.clone(),
                ))
            }),
        ),
        ("  norm2 (layer norm 64)", time(runs, || sync(blk.norm2.forward(x0.clone())))),
        ("  gated FFN + residual", time(runs, || sync(blk.ffn.forward_add(n1.clone(), x0.clone())))),
    ];
    // The pieces of one Lite-Transformer block (`BaseFeatureExtraction`).
    let base = &enc.baseFeature;
    let bn1 = base.norm1.forward(x0.clone());
    let bqkv = base.attn.qkv(bn1.clone());
    let scale = base.attn.scale.val();
    let base_pieces = [
        ("  base qkv1*qkv2 3x3 64->192", time(runs, || sync(base.attn.qkv(bn1.clone())))),
        (
            "  base attention + proj + residual",
            time(runs, || {
                sync(mmif_nn::layers::attend_project_add(
                    bqkv.clone(),
                    base.attn.heads,
                    scale.clone(),
                    &base.attn.proj,
                    x0.clone(),
                ))
            }),
        ),
        ("  base gated MLP + residual", time(runs, || sync(base.mlp.forward_add(bn1.clone(), x0.clone())))),
    ];
    let whole = time(runs, || sync(net.forward(img.clone(), img.clone(), Default::default())));
    let total: f64 = rows.iter().map(|(_, t, n)| t * *n as f64).sum();
    for (what, t, n) in &rows {
        println!(
            "{what:<36} {t:>8.1} ms  x{n:<2} = {:>8.1} ms  {:>5.1} %",
            t * *n as f64,
            100.0 * t * *n as f64 / whole
        );
    }
    println!("{:<36} {:>8} ms       = {total:>8.1} ms  (whole forward {whole:.1} ms)", "sum of the parts", "");
    for (what, t) in pieces.into_iter().chain(base_pieces) {
        println!("{what:<36} {t:>8.1} ms");
    }
}
