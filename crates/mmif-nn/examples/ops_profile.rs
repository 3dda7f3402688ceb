//! Times the building blocks of the networks at one size (for profiling work).
//! `cargo run --release -p mmif-nn --example ops_profile -- 480 640`

use std::time::Instant;

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, Tensor};
use mmif_nn::layers::{self, Conv2d, ConvCfg, LayerNorm};

/// CPU time of the whole process (all threads) so far, in seconds (`/proc/self/stat`, 100 Hz ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = after.split_whitespace().skip(11).take(2).filter_map(|v| v.parse().ok()).collect();
    f.iter().sum::<f64>() / 100.0
}

/// Median wall time of 3 runs, and the CPU time per run over at least 0.5 s of CPU (less noisy on a
/// loaded machine).
fn time<T>(what: &str, mut f: impl FnMut() -> T) {
    f();
    let mut v = Vec::new();
    let (c0, mut n) = (cpu_seconds(), 0);
    while v.len() < 3 || cpu_seconds() - c0 < 0.5 {
        let t = Instant::now();
        let out = f();
        drop(out);
        v.push(t.elapsed().as_secs_f64());
        n += 1;
    }
    let cpu = (cpu_seconds() - c0) / n as f64;
    v.sort_by(f64::total_cmp);
    println!("{what:<40} {:>8.1} ms wall  {:>8.1} ms CPU", v[v.len() / 2] * 1e3, cpu * 1e3);
}

fn main() {
    mmif_nn::keep_freed_memory();
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("H W")).collect();
    let (h, w) = (args.first().copied().unwrap_or(480), args.get(1).copied().unwrap_or(640));
    let dev = mmif_nn::cpu();
    let x = Tensor::<4>::random([1, 64, h, w], Distribution::Uniform(-1.0, 1.0), &dev);
    let sync = |t: Tensor<4>| mmif_nn::weights::tensor_to_vec(t.narrow(1, 0, 1)).len();
    let c1 = Conv2d::new(&dev, 64, 192, 1, ConvCfg::same(1));
    time("conv1x1 64->192", || sync(c1.forward(x.clone())));
    let x192 = c1.forward(x.clone());
    let dw = Conv2d::new(&dev, 192, 192, 3, ConvCfg::same(3).groups(192));
    time("depthwise 3x3 192", || sync(dw.forward(x192.clone())));
    let opts = ConvOptions::new([1, 1], [1, 1], [1, 1], 192);
    time("  burn depthwise 3x3 192", || sync(conv2d(x192.clone(), dw.weight.val(), None, opts.clone())));
    // Dense 3×3 convs: this crate's kernel (`Conv2d::forward`) against burn's `conv2d`.
    for (cin, cout, stride, reflect) in [
        (64, 64, 1, false),
        (192, 192, 1, false),
        (24, 24, 1, true),
        (16, 8, 1, true),
        (8, 8, 1, true),
        (1, 8, 1, true),
        (8, 8, 2, true),
    ] {
        let mut cfg = ConvCfg::same(3).stride(stride);
        if reflect {
            cfg = cfg.reflect();
        }
        let conv = Conv2d::new(&dev, cin, cout, 3, cfg);
        let xin = Tensor::<4>::random([1, cin, h, w], Distribution::Uniform(-1.0, 1.0), &dev);
        time(&format!("dense 3x3 {cin}->{cout} s{stride}"), || sync(conv.forward(xin.clone())));
        let opts = ConvOptions::new([stride; 2], [1, 1], [1, 1], 1);
        time(&format!("  burn conv2d {cin}->{cout} s{stride}"), || {
            sync(conv2d(xin.clone(), conv.weight.val(), None, opts.clone()))
        });
    }
    let g2 = Conv2d::new(&dev, 128, 128, 3, ConvCfg::same(3).groups(64));
    let x128 = Tensor::<4>::random([1, 128, h, w], Distribution::Uniform(-1.0, 1.0), &dev);
    time("grouped(64) 3x3 128", || sync(g2.forward(x128.clone())));
    let ln = LayerNorm::new(&dev, 64, true);
    time("layer norm 64", || sync(ln.forward(x.clone())));
    let temp = Tensor::<3>::ones([8, 1, 1], &dev);
    time("channel attention (qkv 192)", || sync(layers::channel_attention(x192.clone(), 8, temp.clone())));
    time("gelu 128", || sync(burn::tensor::activation::gelu(x128.clone())));
    time("gelu gate 256->128 (kernel)", || sync(layers::gelu_gate(Tensor::cat(vec![x128.clone(), x128.clone()], 1))));
    time("  burn gelu gate 256->128", || {
        sync(layers::gelu_gate_composed(Tensor::cat(vec![x128.clone(), x128.clone()], 1)))
    });
    time("  burn layer norm 64", || sync(ln.forward_composed(x.clone())));
    time("add 64", || sync(x.clone() + x.clone()));
    time("cat 64+64", || sync(Tensor::cat(vec![x.clone(), x.clone()], 1)));
    time("chunk+mul 128", || {
        let mut c = x128.clone().chunk(2, 1).into_iter();
        sync(c.next().unwrap() * c.next().unwrap())
    });
    let blk = layers::TransformerBlock::new(&dev, 64, 8, 2.0, false);
    time("Restormer block 64", || sync(blk.forward(x.clone())));
}
