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

pub fn run(args: &BenchArgs) -> Result<ExitCode> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let sizes = args.size.iter().map(|s| parse_size(s)).collect::<Result<Vec<_>>>()?;
    let device = args.device.device()?;
    let opts = ModelOptions { bands: args.bands, ..ModelOptions::default() };
    let model = models::build_for_bench(&args.model, args.weights.as_deref(), &opts, &device)?;
    let threads = rayon::current_num_threads();
    let device_name = mmif_nn::device::describe(&device);
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
        // The warm-up run also counts the graph's FLOPs.
        let (warm, flops) = mmif_nn::flops::count(|| run_once(&a, &b));
        warm?;
        let mut times = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            let t = Instant::now();
            run_once(&a, &b)?;
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let gflop = flops as f64 / 1e9;
        let row = serde_json::json!({
            "model": args.model.name(), "device": device_name, "precision": args.device.precision.name(), "height": h, "width": w, "threads": threads, "runs": args.runs,
            "median_s": median, "min_s": times[0], "max_s": times[times.len() - 1],
            "peak_rss_bytes": peak_rss(), "gflop": gflop, "gflop_per_s": gflop / median,
        });
        if !args.json {
            println!(
                "{:<10} {:>5}x{:<5} {device_name} {}  median {median:>8.3} s  (min {:.3}, max {:.3}, {} runs)  peak RSS {}  {gflop:.1} GFLOP, {:.1} GFLOP/s",
                args.model,
                h,
                w,
                args.device.precision.name(),
                times[0],
                times[times.len() - 1],
                args.runs,
                peak_rss().map(|b| format!("{:.2} GB", b as f64 / 1e9)).unwrap_or_else(|| "n/a".into()),
                gflop / median,
            );
        }
        rows.push(row);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(ExitCode::SUCCESS)
}
