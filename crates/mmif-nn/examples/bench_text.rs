//! Paragraphs per second of FILM's text encoder at bert-base shapes (12 layers, 768 wide,
//! BLIP-2's vocabulary of 30523) on sequences of `T` tokens, one paragraph at a time as
//! `mmif text-encode` runs them.
//!
//! `cargo run --release -p mmif-nn --example bench_text -- [--tokens T] [--paragraphs N] [--runs R]
//! [--device cpu|cuda|wgpu]` (default T = 149, N = 10, R = 5 after one warm-up paragraph, cpu; a GPU
//! device needs the crate's feature of its name). Prints the median and range of
//! R timings of N paragraphs, in paragraphs/s. `tools/bench_text_transformers.py` times Hugging Face
//! `BertModel` on the same shapes; run both with the same thread count (`RAYON_NUM_THREADS`,
//! `--threads`), alternately.

use std::time::Instant;

use mmif_nn::text::{BertConfig, BertEncoder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut tokens, mut paragraphs, mut runs) = (149usize, 10usize, 5usize);
    let mut device = mmif_nn::cpu();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || -> Result<usize, Box<dyn std::error::Error>> { Ok(args.next().ok_or("a value")?.parse()?) };
        match a.as_str() {
            "--tokens" => tokens = value()?,
            "--paragraphs" => paragraphs = value()?,
            "--runs" => runs = value()?,
            "--device" => device = mmif_nn::device::parse_device(&args.next().ok_or("a device")?)?,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let cfg = BertConfig {
        vocab_size: 30523,
        hidden_size: 768,
        num_hidden_layers: 12,
        num_attention_heads: 12,
        intermediate_size: 3072,
        max_position_embeddings: 512,
        type_vocab_size: 0,
        layer_norm_eps: 1e-12,
    };
    let shapes: std::collections::BTreeMap<String, Vec<usize>> = cfg.parameters().into_iter().collect();
    let mut t = 0u64;
    let enc = BertEncoder::new(cfg, &device, |k| {
        t += 1;
        let shape = &shapes[k];
        mmif_io::fill_value(k, shape, 1, t, 1.0).unwrap_or_default()
    });
    let ids: Vec<u32> = (0..tokens as u32).map(|i| 1000 + (i * 7919) % 29000).collect();
    enc.forward(&ids)?;
    let mut rates = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        for _ in 0..paragraphs {
            enc.forward(&ids)?.into_data();
        }
        rates.push(paragraphs as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "mmif text encoder ({}), bert-base, T={tokens}: median {:.2} paragraphs/s (range {:.2}–{:.2}, {runs} runs of {paragraphs})",
        mmif_nn::device::describe(&device),
        rates[rates.len() / 2],
        rates[0],
        rates[rates.len() - 1]
    );
    Ok(())
}
