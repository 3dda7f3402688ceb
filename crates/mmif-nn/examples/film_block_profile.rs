//! Times the pieces of one FILM Restormer block (C = 32, FFN 4×) at full resolution.
//! `cargo run --release -p mmif-nn --example film_block_profile -- 480 640`
use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use mmif_nn::layers::{self, Conv2d, ConvCfg, LayerNorm, TransformerBlock};

fn time<T>(what: &str, mut f: impl FnMut() -> T) -> f64 {
    f();
    let mut v = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        drop(f());
        v.push(t.elapsed().as_secs_f64());
    }
    v.sort_by(f64::total_cmp);
    println!("{what:<36} {:>8.1} ms", v[3] * 1e3);
    v[3]
}

fn main() {
    mmif_nn::keep_freed_memory();
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("H W")).collect();
    let (h, w) = (args.first().copied().unwrap_or(480), args.get(1).copied().unwrap_or(640));
    let dev = mmif_nn::cpu();
    let sync = |t: Tensor<4>| mmif_nn::weights::tensor_to_vec(t.narrow(1, 0, 1).narrow(2, 0, 1)).len();
    let rnd = |c: usize| Tensor::<4>::random([1, c, h, w], Distribution::Uniform(-1.0, 1.0), &dev);
    let (x32, x96, x256) = (rnd(32), rnd(96), rnd(256));
    let x128 = rnd(128);
    let mut sum = 0.0;
    let ln = LayerNorm::new(&dev, 32, true);
    sum += 2.0 * time("layer norm 32 (x2)", || sync(ln.forward(x32.clone())));
    for (cin, cout) in [(32, 96), (32, 32), (32, 256), (128, 32)] {
        let c = Conv2d::new(&dev, cin, cout, 1, ConvCfg::same(1));
        let x = rnd(cin);
        sum += time(&format!("1x1 {cin}->{cout}"), || sync(c.forward(x.clone())));
    }
    for c in [96, 256] {
        let dw = Conv2d::new(&dev, c, c, 3, ConvCfg::same(3).groups(c));
        let x = if c == 96 { x96.clone() } else { x256.clone() };
        sum += time(&format!("depthwise 3x3 {c}"), || sync(dw.forward(x.clone())));
    }
    let temp = Tensor::<3>::ones([8, 1, 1], &dev);
    sum += time("channel attention (qkv 96)", || sync(layers::channel_attention(x96.clone(), 8, temp.clone())));
    sum += time("gelu gate 256->128", || sync(layers::gelu_gate(x256.clone())));
    sum += 2.0 * time("add 32 (x2)", || sync(x32.clone() + x32.clone()));
    let _ = x128;
    println!("{:<36} {:>8.1} ms", "sum of the parts", sum * 1e3);
    let blk = TransformerBlock::new(&dev, 32, 8, 4.0, false);
    time("GatedFfn::forward_add (fused)", || sync(blk.ffn.forward_add(x32.clone(), x32.clone())));
    time("GatedFfn forward + add (separate)", || sync(blk.ffn.forward(x32.clone()) + x32.clone()));
    time("TransformerBlock::forward", || sync(blk.forward(x32.clone())));
    for rows in [0usize, 8, 16, 32, 64] {
        let r = if rows == 0 { (4usize << 20) / (256 * w) - 2 } else { rows };
        time(&format!("in_bands rows {r}"), || sync(mmif_nn::bands::in_bands(&blk, x32.clone(), r)));
    }
}
