//! `mmif eval`: the standard fusion metrics of one triple or of folders, as the official
//! `Evaluator` computes them (see `mmif-metrics`).
//!
//! Output formats:
//! - `table` (default): the official layout, metrics as columns, one row per method, 2 decimals;
//!   with `--per-image`, one row per image before each method's mean.
//! - `csv`: `method,image,<metrics…>` at full precision; the mean row has `image` = `mean`.
//! - `markdown`: the table as a Markdown table.
//! - `json`: `{"per_image": {stem: {metric: value}}, "mean": {metric: value}}` at full precision.
//!   With several `--fused-dir NAME=DIR`, one such object per method under its name:
//!   `{NAME: {"per_image": …, "mean": …}, …}`. Non-finite values (e.g. PSNR of identical images)
//!   are written as `null`.
//!
//! `--preset vifb` computes VIFB's 13 MATLAB metrics (`vifb.*`) on the images as `imread` reads
//! them (8-bit gray or colour, VIFB's own colour handling), 4 decimals in tables; `--preset mefb`
//! MEFB's 20 (`mefb.*`) the same way, with MEFB's colour handling (MATLAB's
//! `img1` is the second source: `--under`, `--vis`, `--b`). `--list-metrics`
//! prints every metric with its origin, reference and direction; `--rank` adds a `Rank` column
//! (each method's mean of its per-metric ranks, 1 = best; ties share the better rank).
//!
//! Unpaired, unreadable or mismatched files are reported on stderr; the remaining images are
//! evaluated and the exit code is non-zero.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use mmif_metrics::{Gray, Image, Metric, Options, Preset};
use rayon::prelude::*;

use crate::pairs::{SourceArgs, Sources, list_images, pair_folders};
use crate::progress;
use crate::shard::Shard;

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub sources: SourceArgs,
    /// Fused image, with one pair of source files
    #[arg(long, value_name = "FILE", help_heading = "Fused images")]
    pub fused: Option<PathBuf>,
    /// Folder of fused images, paired with the source folders by file stem; repeat as NAME=DIR
    /// to compare methods (one row each)
    #[arg(long = "fused-dir", value_name = "[NAME=]DIR", help_heading = "Fused images")]
    pub fused_dir: Vec<String>,
    /// Metrics, comma-separated: EN SD SF AG MI MSE CC PSNR SCD VIF (or VIFF) Qabf SSIM, or a
    /// toolkit's (vifb.CE, vifb.MI, mefb.NMI, …; see --list-metrics) [default: the cddfuse preset]
    #[arg(long, value_delimiter = ',', value_parser = parse_metric, value_name = "LIST")]
    pub metrics: Vec<Metric>,
    /// Metric set of a paper: cddfuse = EN SD SF MI SCD VIF Qabf SSIM (SSIM data range 2, as the
    /// CDDFuse/EMMA tables); film = EN SD SF AG VIF Qabf (SSIM data range 255); vifb = VIFB's 13
    /// MATLAB metrics CE EN MI PSNR AG EI Qabf SD SF RMSE SSIM Qcb Qcv; mefb = MEFB's MATLAB
    /// metrics CE EN FMI NMI PSNR QNCIE TE AG EI Qabf Qp SD SF Qc Qw Qy MEF-SSIM Qcb Qcv VIF
    #[arg(long, value_enum, value_name = "NAME")]
    pub preset: Option<PresetArg>,
    /// `data_range` of SSIM [default: the preset's; 255 with --metrics alone]
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    pub ssim_data_range: Option<f64>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also list every image, not only the means
    #[arg(long)]
    pub per_image: bool,
    /// Write the report to FILE (atomically) instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Add a Rank column: each method's mean of its per-metric ranks (1 = best)
    #[arg(long)]
    pub rank: bool,
    /// Print every metric with its origin, reference and whether higher is better, then exit
    #[arg(long)]
    pub list_metrics: bool,
    /// Folder mode: score only shard K of N (K from 0; the i-th pair in stem order goes to shard
    /// i mod N), or `auto` from a Slurm array or a Kubernetes Indexed Job (see `mmif fuse --shard`);
    /// write each shard's `--format json -o FILE` and combine them with --merge
    #[arg(long, value_name = "K/N|auto")]
    pub shard: Option<String>,
    /// With -o FILE: do nothing when FILE exists (a rerun of an array finishes only missing shards)
    #[arg(long, requires = "output")]
    pub skip_existing: bool,
    /// Combine the JSON results of shards (`--format json -o FILE` of each) into one report, with
    /// the means over all images; give the same --preset/--metrics as the shards (their order)
    #[arg(long, num_args = 1.., value_name = "JSON", conflicts_with_all = ["fused", "shard"])]
    pub merge: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    Cddfuse,
    Film,
    Vifb,
    Mefb,
}

impl From<PresetArg> for Preset {
    fn from(p: PresetArg) -> Self {
        match p {
            PresetArg::Cddfuse => Preset::Cddfuse,
            PresetArg::Film => Preset::Film,
            PresetArg::Vifb => Preset::Vifb,
            PresetArg::Mefb => Preset::Mefb,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Markdown,
}

pub(crate) fn parse_metric(s: &str) -> std::result::Result<Metric, String> {
    s.parse::<Metric>().map_err(|e| e.to_string())
}

/// A method: a name and its fused images by stem.
struct Method {
    name: String,
    fused: BTreeMap<String, PathBuf>,
}

/// One stem to evaluate: its two sources and, per method, the fused image if present.
pub(crate) struct Item {
    pub stem: String,
    pub a: PathBuf,
    pub b: PathBuf,
    pub fused: Vec<Option<PathBuf>>,
}

/// Scores of one method.
pub(crate) struct Scores {
    pub name: String,
    pub per_image: Vec<(String, Vec<f64>)>,
    pub mean: Vec<f64>,
}

/// What `mmif eval` computes (also used by `mmif report`): the metrics, the source pairs, every
/// method's scores and the problems met on the way (unpaired, unreadable or mis-sized files).
pub(crate) struct Evaluation {
    pub metrics: Vec<Metric>,
    pub items: Vec<Item>,
    pub scores: Vec<Scores>,
    pub errors: Vec<String>,
}

/// Metrics and options after resolving `--metrics`, `--preset` and `--ssim-data-range`.
fn selection(args: &EvalArgs) -> Result<(Vec<Metric>, Options)> {
    let preset = args.preset.map(Preset::from);
    let mut metrics = if args.metrics.is_empty() {
        preset.unwrap_or(Preset::Cddfuse).metrics().to_vec()
    } else {
        args.metrics.clone()
    };
    let mut seen = Vec::new();
    metrics.retain(|m| {
        let new = !seen.contains(m);
        seen.push(*m);
        new
    });
    let mut opts = match (preset, args.metrics.is_empty()) {
        (Some(p), _) => p.options(),
        (None, true) => Preset::Cddfuse.options(),
        (None, false) => Options::default(),
    };
    if let Some(r) = args.ssim_data_range {
        if !(r.is_finite() && r > 0.0) {
            bail!("--ssim-data-range must be a positive number, got {r}");
        }
        opts.ssim_data_range = r;
    }
    Ok((metrics, opts))
}

/// `NAME=DIR` or `DIR` (named after the folder).
fn parse_fused_dir(spec: &str) -> (String, PathBuf) {
    if let Some((name, dir)) = spec.split_once('=')
        && !name.is_empty()
        && !dir.is_empty()
    {
        return (name.to_string(), PathBuf::from(dir));
    }
    let dir = PathBuf::from(spec);
    let name = dir.file_name().map_or_else(|| spec.to_string(), |n| n.to_string_lossy().into_owned());
    (name, dir)
}

/// The stems to evaluate and the methods, plus the pairing problems found on the way.
fn plan(args: &EvalArgs, errors: &mut Vec<String>) -> Result<(Vec<Item>, Vec<Method>)> {
    match args.sources.resolve()? {
        Sources::Single { a, b, .. } => {
            if args.shard.is_some() {
                bail!("--shard is for folder mode (--ir-dir/--vis-dir …, --fused-dir)");
            }
            if !args.fused_dir.is_empty() {
                bail!("--fused-dir goes with source folders (--ir-dir/--vis-dir …); give --fused FILE for one pair");
            }
            let Some(f) = &args.fused else { bail!("no fused image: give --fused FILE") };
            let stem = f.file_stem().map_or_else(|| f.display().to_string(), |s| s.to_string_lossy().into_owned());
            let method = Method { name: stem.clone(), fused: BTreeMap::from([(stem.clone(), f.clone())]) };
            Ok((vec![Item { stem, a, b, fused: vec![Some(f.clone())] }], vec![method]))
        }
        Sources::Folders { a, b, .. } => {
            if args.fused.is_some() {
                bail!("--fused goes with one pair of source files; give --fused-dir DIR for source folders");
            }
            if args.fused_dir.is_empty() {
                bail!("no fused images: give --fused-dir DIR (repeat as NAME=DIR to compare methods)");
            }
            let mut methods: Vec<Method> = Vec::new();
            for spec in &args.fused_dir {
                let (name, dir) = parse_fused_dir(spec);
                if methods.iter().any(|m| m.name == name) {
                    bail!("two fused folders are named `{name}`: name them with NAME=DIR");
                }
                let fused = list_images(&dir)?;
                if fused.is_empty() {
                    bail!("no images in {}", dir.display());
                }
                methods.push(Method { name, fused });
            }
            let paired = pair_folders(&a, &b)?;
            for (stem, dir) in &paired.unpaired {
                errors.push(format!("{}: `{stem}` has no partner in the other source folder", dir.display()));
            }
            let mut items = Vec::new();
            for (stem, pa, pb) in paired.pairs {
                let fused: Vec<Option<PathBuf>> = methods.iter().map(|m| m.fused.get(&stem).cloned()).collect();
                for (m, f) in methods.iter().zip(&fused) {
                    if f.is_none() {
                        errors.push(format!("{}: no fused image `{stem}`", m.name));
                    }
                }
                items.push(Item { stem, a: pa, b: pb, fused });
            }
            for m in &methods {
                for stem in m.fused.keys() {
                    if !items.iter().any(|it| &it.stem == stem) {
                        errors.push(format!("{}: fused image `{stem}` has no pair of sources", m.name));
                    }
                }
            }
            if items.is_empty() {
                bail!("no pair of source images with the same stem in {} and {}", a.display(), b.display());
            }
            let items = match Shard::from_arg(args.shard.as_deref())? {
                Some(shard) => shard.select(items),
                None => items,
            };
            Ok((items, methods))
        }
    }
}

fn gray(p: &mmif_io::Plane) -> Result<Gray<'_>> {
    Ok(Gray::new(p.width, p.height, &p.data)?)
}

/// An 8-bit image as MATLAB's `imread` returns it: one channel for a gray file, three for colour.
struct Pixels {
    width: usize,
    height: usize,
    channels: usize,
    data: Vec<u8>,
}

impl Pixels {
    fn read(path: &Path) -> Result<Self> {
        let img = mmif_io::image_io::decode_image(path)?;
        let (width, height) = (img.width() as usize, img.height() as usize);
        Ok(if img.color().has_color() {
            Pixels { width, height, channels: 3, data: img.to_rgb8().into_raw() }
        } else {
            Pixels { width, height, channels: 1, data: img.to_luma8().into_raw() }
        })
    }

    fn image(&self) -> Result<Image<'_>> {
        Ok(Image::new(self.width, self.height, self.channels, &self.data)?)
    }
}

/// A source as each kind of metric reads it: the official gray reading and, when a toolkit
/// metric is selected, the 8-bit pixels.
struct Source {
    gray: mmif_io::Plane,
    pixels: Option<Pixels>,
}

impl Source {
    fn read(path: &Path, toolkit: bool) -> Result<Self> {
        let pixels = if toolkit { Some(Pixels::read(path)?) } else { None };
        Ok(Source { gray: mmif_io::read_gray(path)?, pixels })
    }
}

/// Metrics of one fused image against its already-read sources.
fn score(fused: &Path, a: &Source, b: &Source, metrics: &[Metric], opts: &Options) -> Result<Vec<f64>> {
    let toolkit = metrics.iter().any(|m| m.is_toolkit());
    let f = Source::read(fused, toolkit)?;
    let (fg, ag) = (&f.gray, &a.gray);
    if !fg.same_size(ag) {
        bail!("{}: fused image is {}x{}, its sources {}x{}", fused.display(), fg.width, fg.height, ag.width, ag.height);
    }
    metrics
        .iter()
        .map(|&m| match (&f.pixels, &a.pixels, &b.pixels) {
            (Some(fp), Some(ap), Some(bp)) if m.is_toolkit() => {
                Ok(mmif_metrics::compute_image(m, fp.image()?, ap.image()?, bp.image()?, opts)?)
            }
            _ => Ok(mmif_metrics::compute(m, gray(fg)?, gray(ag)?, gray(&b.gray)?, opts)?),
        })
        .collect::<Result<Vec<f64>>>()
        .with_context(|| format!("{}", fused.display()))
}

/// Per method: nothing (no fused image for this stem), the scores, or why they are missing.
type Row = Vec<Option<Result<Vec<f64>>>>;

/// Evaluates every item for every method, in parallel over the items.
fn evaluate(items: &[Item], n_methods: usize, metrics: &[Metric], opts: &Options) -> Vec<Row> {
    let toolkit = metrics.iter().any(|m| m.is_toolkit());
    let jobs: u64 = items.iter().map(|it| it.fused.iter().flatten().count() as u64).sum();
    let bar = progress::bar(jobs, "evaluating");
    let out = items
        .par_iter()
        .map(|it| {
            let sources = Source::read(&it.a, toolkit).and_then(|a| Ok((a, Source::read(&it.b, toolkit)?)));
            let sources = sources.and_then(|(a, b)| {
                if a.gray.same_size(&b.gray) {
                    Ok((a, b))
                } else {
                    bail!(
                        "`{}`: sources differ in size: {} is {}x{}, {} is {}x{}",
                        it.stem,
                        it.a.display(),
                        a.gray.width,
                        a.gray.height,
                        it.b.display(),
                        b.gray.width,
                        b.gray.height
                    )
                }
            });
            let row: Row = (0..n_methods)
                .map(|m| {
                    let f = it.fused[m].as_ref()?;
                    bar.set_message(it.stem.clone());
                    let r = match &sources {
                        Ok((a, b)) => score(f, a, b, metrics, opts),
                        Err(e) => Err(anyhow::anyhow!("{e:#}")),
                    };
                    bar.inc(1);
                    Some(r)
                })
                .collect();
            row
        })
        .collect();
    bar.finish_and_clear();
    out
}

/// Resolves the metrics, pairs the images and scores every method (in parallel over the pairs).
pub(crate) fn evaluation(args: &EvalArgs) -> Result<Evaluation> {
    let (metrics, opts) = selection(args)?;
    let mut errors = Vec::new();
    let (items, methods) = plan(args, &mut errors)?;
    let results = evaluate(&items, methods.len(), &metrics, &opts);

    let mut scores = Vec::new();
    for (m, method) in methods.iter().enumerate() {
        let mut per_image = Vec::new();
        for (item, row) in items.iter().zip(&results) {
            match &row[m] {
                Some(Ok(v)) => per_image.push((item.stem.clone(), v.clone())),
                Some(Err(e)) => {
                    let msg = format!("{e:#}");
                    // a source failure is reported once, not once per method
                    if !errors.contains(&msg) {
                        errors.push(msg);
                    }
                }
                None => {}
            }
        }
        scores.push(Scores::new(method.name.clone(), per_image, metrics.len()));
    }
    Ok(Evaluation { metrics, items, scores, errors })
}

impl Scores {
    /// A method's scores with their mean over the images (in the order given).
    fn new(name: String, per_image: Vec<(String, Vec<f64>)>, n_metrics: usize) -> Scores {
        let mut mean = vec![0.0f64; n_metrics];
        for (_, v) in &per_image {
            mean.iter_mut().zip(v).for_each(|(s, x)| *s += x);
        }
        mean.iter_mut().for_each(|s| *s /= per_image.len() as f64);
        Scores { name, per_image, mean }
    }
}

/// `--merge`: the per-image scores of every shard's JSON (one method, or several under their
/// names), combined per method in stem order, with the means over all images — what one
/// unsharded run gives. Methods are in `--fused-dir` order when names are given, else sorted;
/// a one-method report is named after its single `--fused-dir NAME=` or `fused`.
fn merge(args: &EvalArgs, metrics: &[Metric]) -> Result<Vec<Scores>> {
    use serde_json::Value;
    type PerImage = BTreeMap<String, Vec<f64>>;
    let mut methods: BTreeMap<String, PerImage> = BTreeMap::new();
    let mut single = None;
    let value = |stem: &str, obj: &Value, file: &Path| -> Result<Vec<f64>> {
        let Value::Object(fields) = obj else { bail!("{}: `{stem}` is not an object of metrics", file.display()) };
        if fields.len() != metrics.len() {
            bail!(
                "{}: `{stem}` has {} metrics, the selection {}: give the shards' --preset/--metrics",
                file.display(),
                fields.len(),
                metrics.len()
            );
        }
        metrics
            .iter()
            .map(|m| match fields.get(m.name()) {
                Some(Value::Null) => Ok(f64::NAN),
                Some(Value::Number(x)) => {
                    x.as_f64().with_context(|| format!("{}: `{stem}`.{m} is not a number", file.display()))
                }
                Some(_) => bail!("{}: `{stem}`.{m} is not a number", file.display()),
                None => bail!("{}: `{stem}` has no {m}: give the shards' --preset/--metrics", file.display()),
            })
            .collect()
    };
    for file in &args.merge {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        // serde_json's `float_roundtrip` feature (workspace Cargo.toml) parses numbers exactly, so
        // the merged means equal an unsharded run's bit for bit.
        let json: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not the JSON of mmif eval --format json", file.display()))?;
        let Value::Object(top) = &json else { bail!("{}: not a JSON object", file.display()) };
        let is_single = top.contains_key("per_image");
        if *single.get_or_insert(is_single) != is_single {
            bail!("{}: one shard has one method and another several: merge the results of one command", file.display());
        }
        let entries: Vec<(String, &Value)> =
            if is_single { vec![(String::new(), &json)] } else { top.iter().map(|(k, v)| (k.clone(), v)).collect() };
        for (name, m) in entries {
            let Some(Value::Object(per_image)) = m.get("per_image") else {
                bail!("{}: no per_image object (mmif eval --format json)", file.display())
            };
            let target = methods.entry(name.clone()).or_default();
            for (stem, v) in per_image {
                if target.insert(stem.clone(), value(stem, v, file)?).is_some() {
                    bail!("`{stem}` is in more than one shard ({} repeats it): merge each shard once", file.display());
                }
            }
        }
    }
    let named: Vec<String> = args.fused_dir.iter().map(|s| parse_fused_dir(s).0).collect();
    let mut order: Vec<String> = named.iter().filter(|n| methods.contains_key(*n)).cloned().collect();
    let rest: Vec<String> = methods.keys().filter(|k| !order.contains(k)).cloned().collect();
    order.extend(rest);
    Ok(order
        .into_iter()
        .map(|key| {
            let per_image = methods.remove(&key).unwrap_or_default().into_iter().collect();
            let name = if key.is_empty() { named.first().cloned().unwrap_or_else(|| "fused".into()) } else { key };
            Scores::new(name, per_image, metrics.len())
        })
        .collect())
}

/// Runs `mmif eval`.
pub fn run(args: &EvalArgs) -> Result<ExitCode> {
    if args.list_metrics {
        print!("{}", list_metrics());
        return Ok(ExitCode::SUCCESS);
    }
    if args.skip_existing
        && let Some(out) = &args.output
        && out.exists()
    {
        eprintln!("mmif eval: {} exists: skipped (--skip-existing)", out.display());
        return Ok(ExitCode::SUCCESS);
    }
    let Evaluation { metrics, scores, errors, .. } = if args.merge.is_empty() {
        evaluation(args)?
    } else {
        let (metrics, _) = selection(args)?;
        let scores = merge(args, &metrics)?;
        Evaluation { metrics, items: Vec::new(), scores, errors: Vec::new() }
    };
    for e in &errors {
        eprintln!("mmif eval: error: {e}");
    }
    let evaluated: usize = scores.iter().map(|s| s.per_image.len()).sum();
    if evaluated == 0 {
        bail!("no image could be evaluated");
    }

    let ranks = args.rank.then(|| mean_ranks(&scores, &metrics));
    let decimals = if metrics.iter().any(|m| m.is_toolkit()) { 4 } else { 2 };
    let layout = Layout { per_image: args.per_image, decimals, ranks: ranks.as_deref() };
    let report = match args.format {
        Format::Table => table(&scores, &metrics, &layout, false),
        Format::Markdown => table(&scores, &metrics, &layout, true),
        Format::Csv => csv(&scores, &metrics, args.per_image, ranks.as_deref()),
        Format::Json => json(&scores, &metrics),
    };
    match &args.output {
        Some(path) => mmif_io::write_atomic(path, report.as_bytes())?,
        None => print!("{report}"),
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `--list-metrics`: name, higher/lower is better, origin, reference; one metric per line.
fn list_metrics() -> String {
    let mut out = String::new();
    let w = Metric::ALL.iter().map(|m| m.name().len()).max().unwrap_or(0);
    let _ = writeln!(out, "{:<w$}  best    origin | reference", "metric");
    for m in Metric::ALL {
        let dir = if m.higher_is_better() { "higher" } else { "lower " };
        let _ = writeln!(out, "{:<w$}  {dir}  {} | {}", m.name(), m.origin(), m.reference());
    }
    out
}

/// Per method, the mean over metrics of its rank among the methods (1 = best, by each metric's
/// direction; equal values share the better rank; a NaN ranks last).
fn mean_ranks(scores: &[Scores], metrics: &[Metric]) -> Vec<f64> {
    let mut total = vec![0.0; scores.len()];
    for (j, m) in metrics.iter().enumerate() {
        let key = |s: &Scores| {
            let v = s.mean[j];
            if v.is_nan() {
                f64::NEG_INFINITY
            } else if m.higher_is_better() {
                v
            } else {
                -v
            }
        };
        for (i, s) in scores.iter().enumerate() {
            let better = scores.iter().filter(|o| key(o) > key(s)).count();
            total[i] += (better + 1) as f64;
        }
    }
    total.iter().map(|t| t / metrics.len().max(1) as f64).collect()
}

/// How a table is laid out.
struct Layout<'a> {
    per_image: bool,
    decimals: usize,
    /// Mean ranks, one per method (`--rank`).
    ranks: Option<&'a [f64]>,
}

/// The official layout (or Markdown): metrics as columns, 2 decimals (4 with toolkit metrics).
fn table(scores: &[Scores], metrics: &[Metric], layout: &Layout, markdown: bool) -> String {
    let per_image = layout.per_image;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let head: Vec<String> = std::iter::once("Method".to_string())
        .chain(per_image.then(|| "Image".to_string()))
        .chain(metrics.iter().map(|m| m.name().to_string()))
        .chain(layout.ranks.map(|_| "Rank".to_string()))
        .collect();
    let d = layout.decimals;
    let fmt = |v: &[f64]| v.iter().map(|x| format!("{x:.d$}")).collect::<Vec<_>>();
    for (i, s) in scores.iter().enumerate() {
        if per_image {
            for (stem, v) in &s.per_image {
                let blank = layout.ranks.map(|_| String::new());
                rows.push([s.name.clone(), stem.clone()].into_iter().chain(fmt(v)).chain(blank).collect());
            }
        }
        let label = per_image.then(|| "mean".to_string());
        let rank = layout.ranks.map(|r| format!("{:.2}", r[i]));
        rows.push(std::iter::once(s.name.clone()).chain(label).chain(fmt(&s.mean)).chain(rank).collect());
    }
    let widths: Vec<usize> =
        (0..head.len()).map(|c| rows.iter().chain([&head]).map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let text_cols = if per_image { 2 } else { 1 };
    let line = |r: &[String]| -> String {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (v, &w))| if c < text_cols { format!("{v:<w$}") } else { format!("{v:>w$}") })
            .collect();
        if markdown { format!("| {} |", cells.join(" | ")) } else { cells.join("  ").trim_end().to_string() }
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", line(&head));
    if markdown {
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(c, &w)| if c < text_cols { "-".repeat(w.max(3)) } else { format!("{}:", "-".repeat(w.max(3) - 1)) })
            .collect();
        let _ = writeln!(out, "| {} |", rule.join(" | "));
    }
    for r in &rows {
        let _ = writeln!(out, "{}", line(r));
    }
    out
}

/// CSV at full precision (shortest representation that reads back to the same `f64`); with
/// `ranks`, a last `rank` column (empty on per-image rows).
fn csv(scores: &[Scores], metrics: &[Metric], per_image: bool, ranks: Option<&[f64]>) -> String {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
    };
    let mut out = String::new();
    let names: Vec<&str> = metrics.iter().map(|m| m.name()).collect();
    let rank_head = if ranks.is_some() { ",rank" } else { "" };
    let _ = writeln!(out, "method,image,{}{rank_head}", names.join(","));
    let values = |v: &[f64]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
    for (i, s) in scores.iter().enumerate() {
        if per_image {
            let blank = if ranks.is_some() { "," } else { "" };
            for (stem, v) in &s.per_image {
                let _ = writeln!(out, "{},{},{}{blank}", quote(&s.name), quote(stem), values(v));
            }
        }
        let rank = ranks.map_or_else(String::new, |r| format!(",{}", r[i]));
        let _ = writeln!(out, "{},mean,{}{rank}", quote(&s.name), values(&s.mean));
    }
    out
}

/// JSON with metrics in the requested order and images in stem order (written by hand because
/// `serde_json`'s maps sort their keys).
fn json(scores: &[Scores], metrics: &[Metric]) -> String {
    let key = |s: &str| serde_json::Value::from(s).to_string();
    let num = |x: f64| if x.is_finite() { serde_json::Value::from(x).to_string() } else { "null".to_string() };
    let obj = |v: &[f64]| -> String {
        let fields: Vec<String> =
            metrics.iter().zip(v).map(|(m, &x)| format!("{}: {}", key(m.name()), num(x))).collect();
        format!("{{{}}}", fields.join(", "))
    };
    let method = |s: &Scores, indent: &str| -> String {
        let images: Vec<String> =
            s.per_image.iter().map(|(stem, v)| format!("{indent}    {}: {}", key(stem), obj(v))).collect();
        let per_image =
            if images.is_empty() { "{}".to_string() } else { format!("{{\n{}\n{indent}  }}", images.join(",\n")) };
        format!("{{\n{indent}  \"per_image\": {per_image},\n{indent}  \"mean\": {}\n{indent}}}", obj(&s.mean))
    };
    match scores {
        [one] => format!("{}\n", method(one, "")),
        many => {
            let methods: Vec<String> =
                many.iter().map(|s| format!("  {}: {}", key(&s.name), method(s, "  "))).collect();
            format!("{{\n{}\n}}\n", methods.join(",\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores() -> Vec<Scores> {
        vec![Scores {
            name: "mean".into(),
            per_image: vec![("01".into(), vec![6.5, 0.125]), ("02".into(), vec![7.0, f64::INFINITY])],
            mean: vec![6.75, 0.3],
        }]
    }

    #[test]
    fn ranks_follow_each_metrics_direction() {
        let m = [Metric::En, Metric::Mse];
        let mk = |name: &str, en: f64, mse: f64| Scores { name: name.into(), per_image: vec![], mean: vec![en, mse] };
        // a: best EN, worst MSE; b: worst EN, best MSE; c: tied best EN, middle MSE
        let s = vec![mk("a", 7.0, 9.0), mk("b", 6.0, 1.0), mk("c", 7.0, 5.0)];
        let r = mean_ranks(&s, &m);
        assert_eq!(r, vec![(1.0 + 3.0) / 2.0, (3.0 + 1.0) / 2.0, (1.0 + 2.0) / 2.0]);
        let t = table(&s, &m, &Layout { per_image: false, decimals: 2, ranks: Some(&r) }, false);
        assert!(t.lines().next().unwrap().ends_with("Rank"), "{t}");
        assert!(t.contains("c       7.00  5.00  1.50"), "{t}");
        let c = csv(&s, &m, false, Some(&r));
        assert!(c.starts_with("method,image,EN,MSE,rank\na,mean,7,9,2\n"), "{c}");
    }

    #[test]
    fn metric_list_names_every_metric_with_its_origin() {
        let l = list_metrics();
        for m in Metric::ALL {
            assert!(l.lines().any(|x| x.starts_with(&format!("{} ", m.name()))), "{} missing:\n{l}", m.name());
        }
        assert!(l.contains("vifb.Qcv") && l.contains("metricsQcv.m"));
        assert!(l.lines().any(|x| x.starts_with("vifb.RMSE") && x.contains("lower")));
        assert!(l.lines().any(|x| x.starts_with("mefb.Qcv") && x.contains("lower") && x.contains("MEFB")));
        assert!(l.lines().any(|x| x.starts_with("mefb.NMI ") && x.contains("higher") && x.contains("Hossny")));
    }

    #[test]
    fn fused_dir_specs() {
        assert_eq!(parse_fused_dir("gff=out/gff"), ("gff".to_string(), PathBuf::from("out/gff")));
        assert_eq!(parse_fused_dir("out/cddfuse"), ("cddfuse".to_string(), PathBuf::from("out/cddfuse")));
    }

    #[test]
    fn reports() {
        let m = [Metric::En, Metric::Psnr];
        let plain = Layout { per_image: false, decimals: 2, ranks: None };
        let t = table(&scores(), &m, &plain, false);
        assert_eq!(t, "Method    EN  PSNR\nmean    6.75  0.30\n");
        let md = table(&scores(), &m, &Layout { per_image: true, ..plain }, true);
        assert!(md.starts_with("| Method | Image |   EN | PSNR |\n| ------ | ----- | ---: | ---: |\n"), "{md}");
        let c = csv(&scores(), &m, true, None);
        assert_eq!(c, "method,image,EN,PSNR\nmean,01,6.5,0.125\nmean,02,7,inf\nmean,mean,6.75,0.3\n");
        let text = json(&scores(), &m);
        let j: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(j["mean"]["EN"], 6.75);
        assert_eq!(j["per_image"]["01"]["PSNR"], 0.125);
        assert!(j["per_image"]["02"]["PSNR"].is_null());
        assert!(text.find("\"EN\"").unwrap() < text.find("\"PSNR\"").unwrap(), "metric order kept");
        let mut two = scores();
        two.push(Scores { name: "b\"x".into(), per_image: vec![], mean: vec![1.0, 2.0] });
        let j: serde_json::Value = serde_json::from_str(&json(&two, &m)).unwrap();
        assert_eq!(j["mean"]["mean"]["EN"], 6.75);
        assert_eq!(j["b\"x"]["mean"]["PSNR"], 2.0);
    }
}
