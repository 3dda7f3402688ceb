//! Dense 3×3 stride-1 convs through `Conv2d::forward`, whichever kernel `MMIF_WINOGRAD`
//! (`off`: the direct kernel, `f2`/`f4`: Winograd for every such conv, unset: the layers' own
//! choice) selects; one mode per process, so run it once per mode, alternately:
//!
//! ```sh
//! cargo build --release -p mmif-nn --example winograd_bench
//! for m in off f2 f4; do MMIF_WINOGRAD=$m RAYON_NUM_THREADS=2 target/release/examples/winograd_bench 480 640; done
//! ```
//!
//! Arguments: `H W [CINxCOUT ...] [--runs N]`. Without `--runs` each conv is timed (median wall
//! and CPU time per run over at least 1 s of CPU, after a warm-up); with `--runs N` each conv runs
//! exactly N times untimed, for instruction counts (`valgrind --tool=callgrind`: the difference
//! between `--runs 1` and `--runs 0` is one conv).

use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use mmif_nn::layers::{Conv2d, ConvCfg};

/// CPU time of the whole process (all threads) so far, in seconds (`/proc/self/stat`, 100 Hz ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = after.split_whitespace().skip(11).take(2).filter_map(|v| v.parse().ok()).collect();
    f.iter().sum::<f64>() / 100.0
}

fn main() -> Result<(), String> {
    mmif_nn::keep_freed_memory();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let runs = match args.iter().position(|a| a == "--runs") {
        Some(i) => {
            let n = args.get(i + 1).and_then(|v| v.parse::<usize>().ok()).ok_or("--runs N")?;
            args.drain(i..i + 2);
            Some(n)
        }
        None => None,
    };
    let num = |i: usize, d: usize| args.get(i).map_or(Ok(d), |v| v.parse::<usize>().map_err(|e| format!("{v}: {e}")));
    let (h, w) = (num(0, 480)?, num(1, 640)?);
    let shapes: Vec<(usize, usize)> = if args.len() > 2 {
        args[2..]
            .iter()
            .map(|s| {
                let (a, b) = s.split_once('x').ok_or(format!("{s}: CINxCOUT"))?;
                Ok((a.parse().map_err(|_| s.to_string())?, b.parse().map_err(|_| s.to_string())?))
            })
            .collect::<Result<_, String>>()?
    } else {
        // CDDFuse's qkv2 (192→192), its decoder head (64→32), and a sweep for the threshold.
        vec![(192, 192), (128, 128), (96, 96), (64, 64), (64, 32), (48, 48), (32, 32)]
    };
    let mode = std::env::var("MMIF_WINOGRAD").unwrap_or_else(|_| "auto".into());
    let dev = mmif_nn::cpu();
    for (cin, cout) in shapes {
        let conv = Conv2d::new(&dev, cin, cout, 3, ConvCfg::same(3));
        let x = Tensor::<4>::random([1, cin, h, w], Distribution::Uniform(-1.0, 1.0), &dev);
        let run = || mmif_nn::weights::tensor_to_vec(conv.forward(x.clone()).narrow(1, 0, 1)).len();
        if let Some(n) = runs {
            for _ in 0..n {
                run();
            }
            println!("{mode:<5} {cin:>4}->{cout:<4} {h}x{w}: {n} runs");
            continue;
        }
        run();
        let mut wall = Vec::new();
        let c0 = cpu_seconds();
        while wall.len() < 3 || cpu_seconds() - c0 < 1.0 {
            let t = Instant::now();
            run();
            wall.push(t.elapsed().as_secs_f64());
        }
        let cpu = (cpu_seconds() - c0) / wall.len() as f64;
        wall.sort_by(f64::total_cmp);
        let gflop = 2.0 * (cin * cout * 9 * h * w) as f64 * 1e-9;
        println!(
            "{mode:<5} {cin:>4}->{cout:<4} {h}x{w}: {:>8.1} ms wall (min {:.1}, max {:.1}, {} runs) {:>8.1} ms CPU  {:>6.1} direct-equivalent GFLOP/s (wall)",
            wall[wall.len() / 2] * 1e3,
            wall[0] * 1e3,
            wall[wall.len() - 1] * 1e3,
            wall.len(),
            cpu * 1e3,
            gflop / wall[wall.len() / 2],
        );
    }
    Ok(())
}
