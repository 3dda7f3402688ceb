//! Ranks the weight-free methods on folders of source pairs by mean rank over the CDDFuse metric
//! set (EN SD SF MI SCD VIF Qabf SSIM, all "higher is better"), to choose the default per task
//! (issue 17). Rerun it after adding methods: every method of `Method::defaults()` takes part
//! unless `--methods` names some.
//!
//! ```text
//! cargo run --release -p mmif-classic --example rank_methods -- \
//!     [--methods gff,tif,..] [--max-pairs N] [--thermal] NAME=DIR_A,DIR_B [NAME=DIR_A,DIR_B ...]
//! ```
//! `DIR_A` holds source `a` (infrared, MRI, over-exposed, near-focused: `mmif fuse`'s order) and
//! `DIR_B` source `b`, paired by file name (colour sources are read as luma). `--max-pairs N`
//! keeps N pairs of each set, evenly spaced in name order (large multi-exposure and multi-focus
//! sets); the seconds each method took are printed with its row. For each set it prints the metric means and the
//! per-metric ranks (1 = best, ties share the mean rank) and each method's mean rank; then the
//! mean of those mean ranks over all sets. With `--thermal` it also prints the *thermal target
//! retention* of each method: over the brightest 1 % of pixels of each source `a` (the hot
//! targets of an infrared image), the mean fused value divided by the mean source value, averaged
//! over pairs (1 = the targets keep their brightness; GFF's dark blobs give well below 1).
//! Fused images are rounded and clipped to 0..=255 before scoring, as the official scripts do.

use mmif_classic::{Method, Plane};
use mmif_metrics::{Gray, Preset, compute_all};
use std::error::Error;
use std::path::{Path, PathBuf};

fn to_u8(p: &Plane) -> Vec<f32> {
    p.data.iter().map(|v| v.round().clamp(0.0, 255.0)).collect()
}

/// Mean of `fused` over the brightest 1 % of `a`, divided by the mean of `a` there.
fn retention(a: &Plane, fused: &[f32]) -> f64 {
    let mut idx: Vec<usize> = (0..a.data.len()).collect();
    idx.sort_by(|&i, &j| a.data[j].total_cmp(&a.data[i]));
    let n = (a.data.len() / 100).max(1);
    let (mut fs, mut as_) = (0.0f64, 0.0f64);
    for &i in &idx[..n] {
        fs += f64::from(fused[i]);
        as_ += f64::from(a.data[i]);
    }
    if as_ > 0.0 { fs / as_ } else { 1.0 }
}

/// Ranks (1 = largest value), ties sharing their mean rank; NaN (a metric undefined on some pair,
/// e.g. SCD where the fused image equals a source) ranks below every number.
fn ranks(values: &[f64]) -> Vec<f64> {
    let key = |v: f64| if v.is_nan() { f64::NEG_INFINITY } else { v };
    values
        .iter()
        .map(|&v| {
            let better = values.iter().filter(|&&u| key(u) > key(v)).count() as f64;
            let equal = values.iter().filter(|&&u| key(u) == key(v)).count() as f64;
            better + (equal + 1.0) / 2.0
        })
        .collect()
}

fn read_set(dir_a: &Path, dir_b: &Path, max_pairs: usize) -> Result<Vec<(Plane, Plane)>, Box<dyn Error>> {
    let mut names: Vec<String> = std::fs::read_dir(dir_a)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| dir_b.join(n).is_file())
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(format!("no file names common to {} and {}", dir_a.display(), dir_b.display()).into());
    }
    if names.len() > max_pairs {
        // evenly spaced: pair k of max_pairs is name k·len/max_pairs
        let len = names.len();
        names = (0..max_pairs).map(|k| names[k * len / max_pairs].clone()).collect();
    }
    Ok(names
        .iter()
        .map(|n| Ok((mmif_io::read_gray(&dir_a.join(n))?, mmif_io::read_gray(&dir_b.join(n))?)))
        .collect::<Result<_, mmif_io::Error>>()?)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // `weighted:0.5` is `mean`; leaving it in would only split `mean`'s ranks.
    let mut methods: Vec<Method> =
        Method::defaults().into_iter().filter(|m| !matches!(m, Method::Weighted(_))).collect();
    if let Some(i) = args.iter().position(|a| a == "--methods") {
        let list = args.get(i + 1).ok_or("--methods needs a comma-separated list")?.clone();
        methods = list.split(',').map(str::parse).collect::<Result<_, _>>()?;
        args.drain(i..i + 2);
    }
    let mut max_pairs = usize::MAX;
    if let Some(i) = args.iter().position(|a| a == "--max-pairs") {
        max_pairs = args.get(i + 1).ok_or("--max-pairs needs a number")?.parse()?;
        if max_pairs == 0 {
            return Err("--max-pairs must be at least 1".into());
        }
        args.drain(i..i + 2);
    }
    let thermal = args.iter().any(|a| a == "--thermal");
    args.retain(|a| a != "--thermal");
    if args.is_empty() {
        return Err("usage: rank_methods [--methods m1,m2] [--max-pairs N] [--thermal] NAME=DIR_A,DIR_B ...".into());
    }
    let preset = Preset::Cddfuse;
    let metrics = preset.metrics();
    let mut overall = vec![0.0; methods.len()];
    for set in &args {
        let (name, dirs) = set.split_once('=').ok_or("sets are NAME=DIR_A,DIR_B")?;
        let (da, db) = dirs.split_once(',').ok_or("sets are NAME=DIR_A,DIR_B")?;
        let pairs = read_set(&PathBuf::from(da), &PathBuf::from(db), max_pairs)?;
        // means[method][metric]
        let mut means = vec![vec![0.0; metrics.len()]; methods.len()];
        let mut keep = vec![0.0; methods.len()];
        let mut seconds = vec![0.0; methods.len()];
        for (mi, m) in methods.iter().enumerate() {
            for (a, b) in &pairs {
                let t = std::time::Instant::now();
                let f = to_u8(&m.fuse(a, b)?);
                seconds[mi] += t.elapsed().as_secs_f64();
                let (w, h) = (a.width, a.height);
                let vals = compute_all(
                    metrics,
                    Gray::new(w, h, &f)?,
                    Gray::new(w, h, &a.data)?,
                    Gray::new(w, h, &b.data)?,
                    &preset.options(),
                )?;
                means[mi].iter_mut().zip(vals).for_each(|(s, v)| *s += v / pairs.len() as f64);
                keep[mi] += retention(a, &f) / pairs.len() as f64;
            }
        }
        let mut rank_sum = vec![0.0; methods.len()];
        for k in 0..metrics.len() {
            let col: Vec<f64> = means.iter().map(|row| row[k]).collect();
            ranks(&col).iter().zip(&mut rank_sum).for_each(|(r, s)| *s += r);
        }
        println!("\n{name}: {} pairs", pairs.len());
        print!("{:<12}", "method");
        metrics.iter().for_each(|m| print!("{:>9}", m.name()));
        print!("{:>10}", "mean rank");
        if thermal {
            print!("{:>9}", "thermal");
        }
        println!("{:>10}", "fuse s");
        let mut order: Vec<usize> = (0..methods.len()).collect();
        order.sort_by(|&i, &j| rank_sum[i].total_cmp(&rank_sum[j]));
        for i in order {
            print!("{:<12}", methods[i].to_string());
            means[i].iter().for_each(|v| print!("{v:>9.4}"));
            print!("{:>10.2}", rank_sum[i] / metrics.len() as f64);
            if thermal {
                print!("{:>9.3}", keep[i]);
            }
            println!("{:>10.1}", seconds[i]);
            overall[i] += rank_sum[i] / metrics.len() as f64 / args.len() as f64;
        }
    }
    println!("\nmean rank over {} set(s):", args.len());
    let mut order: Vec<usize> = (0..methods.len()).collect();
    order.sort_by(|&i, &j| overall[i].total_cmp(&overall[j]));
    for i in order {
        println!("{:<12}{:>6.2}", methods[i].to_string(), overall[i]);
    }
    Ok(())
}
