//! Compares the `vifb.*` metrics with the values VIFB ships, computed by its MATLAB code on its
//! own fused images: `output/evaluation_metrics_single/<pair>_<method>_<Metric>.txt` against
//! `output/fused_images/<pair>_<method>.jpg`, `input/VI/<pair>.jpg` and `input/IR/<pair>.jpg`.
//!
//! ```sh
//! cargo run --release -p mmif-metrics --example vifb_check -- data/VIFB [--methods A,B] [--pairs x,y]
//! ```
//!
//! Prints, per metric, the number of values compared, how many print the same at VIFB's five
//! significant digits, the largest relative difference among those, the largest overall and
//! where it occurs, and the seconds its threads spent on the metric (wall clock per call, so it includes time lost to
//! other processes on a loaded machine); then the wall time.
//! Exits non-zero if a file is missing or unreadable (a result file without its fused image,
//! such as VIFB's `MST_SR`, is counted and listed as skipped).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use mmif_metrics::{Image, Metric, Options, Vifb, compute_image};
use rayon::prelude::*;

/// One value: the metric, VIFB's value, mmif's, and the seconds mmif took.
type Checked = (Vifb, f64, f64, f64);

struct Owned {
    w: usize,
    h: usize,
    c: usize,
    data: Vec<u8>,
}

impl Owned {
    fn image(&self) -> Image<'_> {
        Image::new(self.w, self.h, self.c, &self.data).expect("decoded image is consistent")
    }
}

/// `imread`: gray JPEGs stay one channel, colour ones three.
fn read(path: &Path) -> Result<Owned, String> {
    let img = mmif_io::image_io::decode_image(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok(if img.color().has_color() {
        Owned { w, h, c: 3, data: img.to_rgb8().into_raw() }
    } else {
        Owned { w, h, c: 1, data: img.to_luma8().into_raw() }
    })
}

/// `dlmwrite`'s default `%.5g`-style text (as MATLAB prints: no exponent for these magnitudes).
fn five_digits(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let e = v.abs().log10().floor() as i32;
    let scale = 10f64.powi(4 - e);
    (v * scale).round() / scale
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(root) = args.first().map(PathBuf::from) else {
        eprintln!("usage: vifb_check VIFB_DIR [--methods A,B] [--pairs x,y]");
        return ExitCode::FAILURE;
    };
    let list = |flag: &str| -> Option<Vec<String>> {
        let i = args.iter().position(|a| a == flag)?;
        Some(args.get(i + 1)?.split(',').map(str::to_string).collect())
    };
    let (methods_filter, pairs_filter) = (list("--methods"), list("--pairs"));
    let single = root.join("output/evaluation_metrics_single");
    let fused_dir = root.join("output/fused_images");
    let pairs: Vec<String> = match std::fs::read_dir(root.join("input/VI")) {
        Ok(d) => {
            let mut v: Vec<String> = d
                .filter_map(|e| e.ok())
                .filter_map(|e| e.path().file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect();
            v.sort();
            v
        }
        Err(e) => {
            eprintln!("{}: {e}", root.join("input/VI").display());
            return ExitCode::FAILURE;
        }
    };
    // methods: the suffixes of `<pair>_<method>_Entropy.txt`
    let mut methods: Vec<String> = Vec::new();
    for e in std::fs::read_dir(&single).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_suffix("_Entropy.txt")
            && let Some(p) = pairs.iter().find(|p| rest.starts_with(&format!("{p}_")))
        {
            let m = rest[p.len() + 1..].to_string();
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
    }
    methods.sort();
    if let Some(f) = &methods_filter {
        methods.retain(|m| f.contains(m));
    }
    let pairs: Vec<String> = match &pairs_filter {
        Some(f) => pairs.into_iter().filter(|p| f.contains(p)).collect(),
        None => pairs,
    };
    let mut jobs = Vec::new();
    let mut skipped = Vec::new();
    for p in &pairs {
        for m in &methods {
            let f = fused_dir.join(format!("{p}_{m}.jpg"));
            if f.exists() {
                jobs.push((p.clone(), m.clone(), f));
            } else {
                skipped.push(format!("{p}_{m}"));
            }
        }
    }
    let start = Instant::now();
    let opts = Options::default();
    let results: Vec<Result<Vec<Checked>, String>> = jobs
        .par_iter()
        .map(|(p, m, f)| {
            let vi = read(&root.join(format!("input/VI/{p}.jpg")))?;
            let ir = read(&root.join(format!("input/IR/{p}.jpg")))?;
            let fu = read(f)?;
            let mut out = Vec::new();
            for v in Vifb::ALL {
                let txt = single.join(format!("{p}_{m}_{}.txt", v.file_name()));
                let want: f64 = std::fs::read_to_string(&txt)
                    .map_err(|e| format!("{}: {e}", txt.display()))?
                    .trim()
                    .parse()
                    .map_err(|e| format!("{}: {e}", txt.display()))?;
                let t0 = Instant::now();
                let got = compute_image(Metric::Vifb(v), fu.image(), ir.image(), vi.image(), &opts)
                    .map_err(|e| format!("{p}_{m}: {e}"))?;
                out.push((v, want, got, t0.elapsed().as_secs_f64()));
            }
            Ok(out)
        })
        .collect();
    let elapsed = start.elapsed();
    let mut failed = false;
    // metric -> (count, same at 5 digits, max rel, where, seconds, max rel among the same)
    let mut stats: BTreeMap<usize, (usize, usize, f64, String, f64, f64)> = BTreeMap::new();
    for ((p, m, _), r) in jobs.iter().zip(&results) {
        match r {
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
            Ok(values) => {
                for (v, want, got, secs) in values {
                    let i = Vifb::ALL.iter().position(|x| x == v).unwrap();
                    let s = stats.entry(i).or_insert((0, 0, 0.0, String::new(), 0.0, 0.0));
                    s.0 += 1;
                    s.4 += secs;
                    let rel = if want == got { 0.0 } else { (got - want).abs() / want.abs().max(got.abs()) };
                    if five_digits(*got) == *want || (want.is_nan() && got.is_nan()) {
                        s.1 += 1;
                        s.5 = s.5.max(rel);
                    }
                    if rel > s.2 || rel.is_nan() {
                        s.2 = rel;
                        s.3 = format!("{p}_{m}: VIFB {want}, mmif {got:.8}");
                    }
                }
            }
        }
    }
    println!(
        "{:<10} {:>6} {:>12} {:>10} {:>10} {:>8}  worst",
        "metric", "values", "same 5 sig.", "rel(same)", "max rel", "thread s"
    );
    for (i, (n, same, rel, at, secs, rel_same)) in &stats {
        let name = Vifb::ALL[*i].name();
        println!("{name:<10} {n:>6} {same:>12} {rel_same:>10.2e} {rel:>10.2e} {secs:>8.2}  {at}");
    }
    println!(
        "{} triples ({} pairs x {} methods), {} without a fused image skipped{}; {:.2} s on {} threads",
        jobs.len(),
        pairs.len(),
        methods.len(),
        skipped.len(),
        if skipped.is_empty() { String::new() } else { format!(" ({}…)", skipped[0]) },
        elapsed.as_secs_f64(),
        rayon::current_num_threads()
    );
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
