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
//! Unpaired, unreadable or mismatched files are reported on stderr; the remaining images are
//! evaluated and the exit code is non-zero.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use mmif_metrics::{Gray, Metric, Options, Preset};
use rayon::prelude::*;

use crate::pairs::{SourceArgs, Sources, list_images, pair_folders};
use crate::progress;

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
    /// Metrics, comma-separated: EN SD SF AG MI MSE CC PSNR SCD VIF (or VIFF) Qabf SSIM
    /// [default: the cddfuse preset]
    #[arg(long, value_delimiter = ',', value_parser = parse_metric, value_name = "LIST")]
    pub metrics: Vec<Metric>,
    /// Metric set of a paper: cddfuse = EN SD SF MI SCD VIF Qabf SSIM (SSIM data range 2, as the
    /// CDDFuse/EMMA tables); film = EN SD SF AG VIF Qabf (SSIM data range 255)
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    Cddfuse,
    Film,
}

impl From<PresetArg> for Preset {
    fn from(p: PresetArg) -> Self {
        match p {
            PresetArg::Cddfuse => Preset::Cddfuse,
            PresetArg::Film => Preset::Film,
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
            Ok((items, methods))
        }
    }
}

fn gray(p: &mmif_io::Plane) -> Result<Gray<'_>> {
    Ok(Gray::new(p.width, p.height, &p.data)?)
}

/// Metrics of one fused image against its already-read sources.
fn score(fused: &Path, a: &mmif_io::Plane, b: &mmif_io::Plane, metrics: &[Metric], opts: &Options) -> Result<Vec<f64>> {
    let f = mmif_io::read_gray(fused)?;
    if !f.same_size(a) {
        bail!("{}: fused image is {}x{}, its sources {}x{}", fused.display(), f.width, f.height, a.width, a.height);
    }
    mmif_metrics::compute_all(metrics, gray(&f)?, gray(a)?, gray(b)?, opts)
        .with_context(|| format!("{}", fused.display()))
}

/// Per method: nothing (no fused image for this stem), the scores, or why they are missing.
type Row = Vec<Option<Result<Vec<f64>>>>;

/// Evaluates every item for every method, in parallel over the items.
fn evaluate(items: &[Item], n_methods: usize, metrics: &[Metric], opts: &Options) -> Vec<Row> {
    let jobs: u64 = items.iter().map(|it| it.fused.iter().flatten().count() as u64).sum();
    let bar = progress::bar(jobs, "evaluating");
    let out = items
        .par_iter()
        .map(|it| {
            let sources = mmif_io::read_gray(&it.a).and_then(|a| Ok((a, mmif_io::read_gray(&it.b)?)));
            let sources = sources.map_err(anyhow::Error::from).and_then(|(a, b)| {
                if a.same_size(&b) {
                    Ok((a, b))
                } else {
                    bail!(
                        "`{}`: sources differ in size: {} is {}x{}, {} is {}x{}",
                        it.stem,
                        it.a.display(),
                        a.width,
                        a.height,
                        it.b.display(),
                        b.width,
                        b.height
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
        let mut mean = vec![0.0f64; metrics.len()];
        for (_, v) in &per_image {
            mean.iter_mut().zip(v).for_each(|(s, x)| *s += x);
        }
        mean.iter_mut().for_each(|s| *s /= per_image.len() as f64);
        scores.push(Scores { name: method.name.clone(), per_image, mean });
    }
    Ok(Evaluation { metrics, items, scores, errors })
}

/// Runs `mmif eval`.
pub fn run(args: &EvalArgs) -> Result<ExitCode> {
    let Evaluation { metrics, scores, errors, .. } = evaluation(args)?;
    for e in &errors {
        eprintln!("mmif eval: error: {e}");
    }
    let evaluated: usize = scores.iter().map(|s| s.per_image.len()).sum();
    if evaluated == 0 {
        bail!("no image could be evaluated");
    }

    let report = match args.format {
        Format::Table => table(&scores, &metrics, args.per_image, false),
        Format::Markdown => table(&scores, &metrics, args.per_image, true),
        Format::Csv => csv(&scores, &metrics, args.per_image),
        Format::Json => json(&scores, &metrics),
    };
    match &args.output {
        Some(path) => mmif_io::write_atomic(path, report.as_bytes())?,
        None => print!("{report}"),
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The official layout (or Markdown): metrics as columns, 2 decimals.
fn table(scores: &[Scores], metrics: &[Metric], per_image: bool, markdown: bool) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let head: Vec<String> = std::iter::once("Method".to_string())
        .chain(per_image.then(|| "Image".to_string()))
        .chain(metrics.iter().map(|m| m.name().to_string()))
        .collect();
    let fmt = |v: &[f64]| v.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>();
    for s in scores {
        if per_image {
            for (stem, v) in &s.per_image {
                rows.push([s.name.clone(), stem.clone()].into_iter().chain(fmt(v)).collect());
            }
        }
        let label = per_image.then(|| "mean".to_string());
        rows.push(std::iter::once(s.name.clone()).chain(label).chain(fmt(&s.mean)).collect());
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

/// CSV at full precision (shortest representation that reads back to the same `f64`).
fn csv(scores: &[Scores], metrics: &[Metric], per_image: bool) -> String {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
    };
    let mut out = String::new();
    let names: Vec<&str> = metrics.iter().map(|m| m.name()).collect();
    let _ = writeln!(out, "method,image,{}", names.join(","));
    let values = |v: &[f64]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
    for s in scores {
        if per_image {
            for (stem, v) in &s.per_image {
                let _ = writeln!(out, "{},{},{}", quote(&s.name), quote(stem), values(v));
            }
        }
        let _ = writeln!(out, "{},mean,{}", quote(&s.name), values(&s.mean));
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
    fn fused_dir_specs() {
        assert_eq!(parse_fused_dir("gff=out/gff"), ("gff".to_string(), PathBuf::from("out/gff")));
        assert_eq!(parse_fused_dir("out/cddfuse"), ("cddfuse".to_string(), PathBuf::from("out/cddfuse")));
    }

    #[test]
    fn reports() {
        let m = [Metric::En, Metric::Psnr];
        let t = table(&scores(), &m, false, false);
        assert_eq!(t, "Method    EN  PSNR\nmean    6.75  0.30\n");
        let md = table(&scores(), &m, true, true);
        assert!(md.starts_with("| Method | Image |   EN | PSNR |\n| ------ | ----- | ---: | ---: |\n"), "{md}");
        let c = csv(&scores(), &m, true);
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
