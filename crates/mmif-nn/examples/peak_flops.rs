//! The machine's f32 FMA throughput, for reading `mmif bench`'s GFLOP/s against a ceiling:
//! every thread runs independent 256-bit FMA chains (no memory traffic) for about a second.
//! `cargo run --release -p mmif-nn --example peak_flops` (threads: `RAYON_NUM_THREADS`).
use std::time::Instant;

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn chains(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    // 12 independent accumulators hide the FMA latency on two pipes.
    let mut acc = [_mm256_set1_ps(0.0); 12];
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut out = [0.0f32; 8];
    let mut sum = _mm256_setzero_ps();
    for v in acc {
        sum = _mm256_add_ps(sum, v);
    }
    // SAFETY: `out` holds 8 values.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    out.iter().sum()
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    {
        assert!(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"), "needs AVX2 and FMA");
        let threads = rayon::current_num_threads();
        let iters = 200_000_000u64;
        let mut best = 0.0f64;
        for _ in 0..3 {
            let t = Instant::now();
            // SAFETY: the CPU has AVX2 and FMA (asserted above).
            let s: f32 = (0..threads).into_par_iter().map(|_| unsafe { chains(iters / threads as u64) }).sum();
            let secs = t.elapsed().as_secs_f64();
            // 12 chains × 8 lanes × 2 FLOPs per FMA.
            let gflops = (iters / threads as u64 * threads as u64) as f64 * 12.0 * 8.0 * 2.0 / secs / 1e9;
            best = best.max(gflops);
            println!("{threads} threads: {gflops:.1} GFLOP/s (checksum {s:.3})");
        }
        println!("peak f32 FMA throughput: {best:.1} GFLOP/s");
    }
}
