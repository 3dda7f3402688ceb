//! `mmif bench`: latency and peak memory of one model on synthetic inputs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use mmif_io::Plane;

use crate::models::{self, ModelOptions};
use crate::pairs::Task;
use crate::registry::Model;
use crate::text::TextFeatures;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Model to time (see `mmif models`)
    #[arg(long, short = 'm', value_parser = crate::registry::model_parser())]
    pub model: Model,
    /// Image size as HxW, e.g. 480x640; repeat for several sizes
    #[arg(long, value_name = "HxW", required = true)]
    pub size: Vec<String>,
    /// Checkpoint; without it a network runs with PyTorch-style random weights (the time and
    /// memory do not depend on the values)
    #[arg(long, short = 'w', value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Timed runs after one warm-up run
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Rounds: each round times `--runs` runs with every thread count of `mmif --threads` in
    /// turn (e.g. `--threads 1,2 --rounds 3` alternates 1 and 2 threads three times); the
    /// statistics pool the runs of all rounds
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// CDDFuse: whole image or bands of rows, as `mmif fuse --bands` (auto|off|on|ROWS)
    #[arg(long, value_name = "auto|off|on|ROWS")]
    pub bands: Option<mmif_fuse::pipeline::Bands>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: crate::device::DeviceArgs,
}

fn parse_size(s: &str) -> Result<(usize, usize)> {
    let (h, w) = s.split_once(['x', 'X']).with_context(|| format!("size `{s}` is not HxW (e.g. 480x640)"))?;
    let (h, w): (usize, usize) = (h.trim().parse()?, w.trim().parse()?);
    if h == 0 || w == 0 {
        bail!("size `{s}` is empty");
    }
    Ok((h, w))
}

/// A deterministic textured test image on the 0..=255 scale.
fn synthetic(h: usize, w: usize, phase: f32) -> Plane {
    let data = (0..h * w)
        .map(|i| {
            let (y, x) = ((i / w) as f32, (i % w) as f32);
            127.5 + 60.0 * (x / 7.0 + phase).sin() * (y / 11.0).cos() + 40.0 * ((x + y) / 23.0 + phase).sin()
        })
        .collect();
    Plane::new(w, h, data)
}

/// Peak resident set size of this process so far, in bytes (Linux `VmHWM`).
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The timed runs of one thread count (sorted before the statistics are read).
struct Timing {
    times: Vec<f64>,
}

impl Timing {
    fn median(&self) -> f64 {
        let t = &self.times;
        if t.len() % 2 == 1 { t[t.len() / 2] } else { 0.5 * (t[t.len() / 2 - 1] + t[t.len() / 2]) }
    }
}

/// Runs `f` in `pool`, or in the global pool when there is none.
fn in_pool<R: Send>(pool: Option<&rayon::ThreadPool>, f: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// `threads`: the counts of `mmif --threads` (empty: the global pool, all cores unless set).
pub fn run(args: &BenchArgs, threads: &[usize]) -> Result<ExitCode> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let sizes = args.size.iter().map(|s| parse_size(s)).collect::<Result<Vec<_>>>()?;
    let device = args.device.device()?;
    let opts = ModelOptions { bands: args.bands, ..ModelOptions::default() };
    let model = models::build_for_bench(&args.model, args.weights.as_deref(), &opts, &device)?;
    // One pool per count when several are timed; one count runs in the global pool (set up by main).
    let pools: Vec<Option<rayon::ThreadPool>> = if threads.len() > 1 {
        threads
            .iter()
            .map(|&n| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .with_context(|| format!("cannot set up {n} threads"))?;
                Ok(Some(pool))
            })
            .collect::<Result<_>>()?
    } else {
        vec![None]
    };
    // Text-guided models get synthetic features of the VLF dataset's size (149 tokens × 768).
    let text = args.model.uses_text().then(|| {
        let tokens = 149;
        let data = (0..tokens * 768).map(|i| ((i as f32) * 0.618).sin() * 0.5).collect();
        TextFeatures { tokens, data }
    });
    let run_once = |a: &Plane, b: &Plane| model.fuse_text(Task::Ivf, a, b, text.as_ref());
    let mut rows = Vec::new();
    for (h, w) in sizes {
        let (a, b) = (synthetic(h, w, 0.0), synthetic(h, w, 1.3));
        // One warm-up run per thread count; the first also counts the graph's FLOPs.
        let mut flops = 0;
        for (i, pool) in pools.iter().enumerate() {
            let (warm, n) = in_pool(pool.as_ref(), || mmif_nn::flops::count(|| run_once(&a, &b)));
            warm?;
            if i == 0 {
                flops = n;
            }
        }
        let mut timings: Vec<Timing> = pools.iter().map(|_| Timing { times: Vec::new() }).collect();
        for _ in 0..args.rounds {
            for (pool, timing) in pools.iter().zip(&mut timings) {
                let times = in_pool(pool.as_ref(), || {
                    (0..args.runs)
                        .map(|_| {
                            let t = Instant::now();
                            run_once(&a, &b).map(|_| t.elapsed().as_secs_f64())
                        })
                        .collect::<Result<Vec<f64>>>()
                })?;
                timing.times.extend(times);
            }
        }
        let gflop = flops as f64 / 1e9;
        for timing in &mut timings {
            timing.times.sort_by(f64::total_cmp);
        }
        let base = timings[0].median();
        for (pool, timing) in pools.iter().zip(&timings) {
            // The workers the runs had, as rayon saw them inside the pool.
            let (threads, device_name) =
                &in_pool(pool.as_ref(), || (rayon::current_num_threads(), mmif_nn::device::describe(&device)));
            let (median, times) = (timing.median(), &timing.times);
            let speedup = base / median;
            let row = serde_json::json!({
                "model": args.model.name(), "device": device_name, "precision": args.device.precision.name(), "height": h, "width": w, "threads": threads, "runs": args.runs, "rounds": args.rounds,
                "median_s": median, "min_s": times[0], "max_s": times[times.len() - 1],
                "speedup_vs_first": (pools.len() > 1).then_some(speedup),
                "peak_rss_bytes": peak_rss(), "gflop": gflop, "gflop_per_s": gflop / median,
            });
            if !args.json {
                println!(
                    "{:<10} {:>5}x{:<5} {device_name} {}  median {median:>8.3} s  (min {:.3}, max {:.3}, {} runs){}  peak RSS {}  {gflop:.1} GFLOP, {:.1} GFLOP/s",
                    args.model,
                    h,
                    w,
                    args.device.precision.name(),
                    times[0],
                    times[times.len() - 1],
                    times.len(),
                    if pools.len() > 1 { format!("  {speedup:.2}× the first count") } else { String::new() },
                    peak_rss().map(|b| format!("{:.2} GB", b as f64 / 1e9)).unwrap_or_else(|| "n/a".into()),
                    gflop / median,
                );
            }
            rows.push(row);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(ExitCode::SUCCESS)
}
