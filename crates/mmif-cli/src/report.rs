//! `mmif report`: one self-contained HTML page comparing fusion methods on folders of pairs.
//!
//! The page embeds everything (no CDN, no server): the images as `data:` URLs, the scores and
//! the page's script and style (`report/report.js`, `report/report.css`, compiled in). The data
//! travel as one JSON object in `<script type="application/json" id="mmif-data">`:
//!
//! ```text
//! { title, command, version, preset, sources: [name_a, name_b], methods: [name…],
//!   metrics: [{name, higher}],               higher: true if a larger value is better
//!   pairs: [{stem, images: [{src, w, h, file}…],   sources first, then one per method
//!            scores: [[value|null per metric] per method]}],
//!   means: [[value|null per metric] per method] }
//! ```
//!
//! Scores come from `mmif eval`'s machinery (same presets, metrics and reading). Images are
//! JPEG thumbnails (longer side `--thumb`, quality `--quality`) unless `--full` embeds lossless
//! PNGs at full resolution; each panel links to its original file. Any missing, unpaired or
//! unreadable image is an error and no page is written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use mmif_metrics::{Metric, Preset};
use rayon::prelude::*;
use serde_json::{Value, json};

use crate::embed;
use crate::eval::{self, EvalArgs, Evaluation, PresetArg};
use crate::pairs::{SourceArgs, Sources};
use crate::progress;

const SCRIPT: &str = include_str!("report/report.js");
const STYLE: &str = include_str!("report/report.css");

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub sources: SourceArgs,
    /// Folder of fused images, paired with the source folders by file stem; repeat as NAME=DIR,
    /// one per method
    #[arg(long = "fused-dir", value_name = "[NAME=]DIR", required = true, help_heading = "Fused images")]
    pub fused_dir: Vec<String>,
    /// Metric set, as in `mmif eval` [default: cddfuse]
    #[arg(long, value_enum, value_name = "NAME")]
    pub preset: Option<PresetArg>,
    /// Metrics, comma-separated, as in `mmif eval` (instead of a preset)
    #[arg(long, value_delimiter = ',', value_parser = eval::parse_metric, value_name = "LIST")]
    pub metrics: Vec<Metric>,
    /// `data_range` of SSIM [default: the preset's]
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    pub ssim_data_range: Option<f64>,
    /// Longer side of the embedded thumbnails, in pixels
    #[arg(long, default_value_t = 640, value_name = "PX")]
    pub thumb: u32,
    /// JPEG quality of the thumbnails (1-100)
    #[arg(long, default_value_t = 85, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Embed every image at full resolution as lossless PNG instead of JPEG thumbnails
    #[arg(long)]
    pub full: bool,
    /// Title of the page [default: the methods compared]
    #[arg(long)]
    pub title: Option<String>,
    /// The HTML file to write (atomically)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Replace an existing output file
    #[arg(long)]
    pub force: bool,
}

/// Runs `mmif report`.
pub fn run(args: &ReportArgs) -> Result<ExitCode> {
    if args.output.exists() && !args.force {
        bail!("{} exists: add --force to replace it", args.output.display());
    }
    if !matches!(args.sources.resolve()?, Sources::Folders { .. }) {
        bail!("mmif report compares folders: give --ir-dir/--vis-dir (or another pair of --*-dir) and --fused-dir");
    }
    let task = match args.sources.resolve()? {
        Sources::Folders { task, .. } | Sources::Single { task, .. } => task,
    };
    let eval_args = EvalArgs {
        sources: args.sources.clone(),
        fused: None,
        fused_dir: args.fused_dir.clone(),
        metrics: args.metrics.clone(),
        preset: args.preset,
        ssim_data_range: args.ssim_data_range,
        format: eval::Format::Table,
        per_image: false,
        output: None,
        rank: false,
        list_metrics: false,
        shard: None,
        skip_existing: false,
        merge: Vec::new(),
    };
    let Evaluation { metrics, items, scores, errors } = eval::evaluation(&eval_args)?;
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("mmif report: error: {e}");
        }
        bail!("{} problem(s) with the images (above): no report written", errors.len());
    }

    let bar = progress::bar(items.iter().map(|it| 2 + it.fused.len() as u64).sum(), "embedding");
    let pairs: Vec<Value> = items
        .par_iter()
        .map(|it| -> Result<Value> {
            let paths: Vec<&Path> = [it.a.as_path(), it.b.as_path()]
                .into_iter()
                .chain(it.fused.iter().flatten().map(|p| p.as_path()))
                .collect();
            let mut images = Vec::new();
            let mut size = None;
            for p in paths {
                let img = embed::read_rgb(p)?;
                match size {
                    None => size = Some(img.dimensions()),
                    Some(s) if s != img.dimensions() => {
                        bail!(
                            "{}: {}x{}, the pair's other images are {}x{}",
                            p.display(),
                            img.width(),
                            img.height(),
                            s.0,
                            s.1
                        )
                    }
                    Some(_) => {}
                }
                images.push(image_entry(p, &img, args)?);
                bar.inc(1);
            }
            let s: Vec<Value> = scores
                .iter()
                .map(|m| {
                    let v = m.per_image.iter().find(|(stem, _)| stem == &it.stem).map(|(_, v)| v.as_slice());
                    values(v.unwrap_or(&[]))
                })
                .collect();
            Ok(json!({ "stem": it.stem, "images": images, "scores": s }))
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();

    let (na, nb) = task.names();
    let methods: Vec<&str> = scores.iter().map(|s| s.name.as_str()).collect();
    let preset = match (args.preset, args.metrics.is_empty()) {
        (Some(p), _) => Preset::from(p).name().to_string(),
        (None, true) => Preset::Cddfuse.name().to_string(),
        (None, false) => "custom".to_string(),
    };
    let data = json!({
        "title": args.title.clone().unwrap_or_else(|| format!("mmif report: {}", methods.join(" · "))),
        "command": std::env::args().collect::<Vec<_>>(),
        "version": format!("mmif {} ({})", env!("CARGO_PKG_VERSION"), env!("MMIF_GIT_COMMIT")),
        "preset": preset,
        "sources": [na.to_uppercase(), nb.to_uppercase()],
        "methods": methods,
        "metrics": metrics.iter().map(|m| json!({"name": m.name(), "higher": m.higher_is_better()})).collect::<Vec<_>>(),
        "pairs": pairs,
        "means": scores.iter().map(|s| values(&s.mean)).collect::<Vec<_>>(),
    });
    let html = page(&data)?;
    mmif_io::write_atomic(&args.output, html.as_bytes())?;
    eprintln!(
        "{}: {} pairs × {} methods, {:.1} MB",
        args.output.display(),
        items.len(),
        scores.len(),
        html.len() as f64 / 1e6
    );
    Ok(ExitCode::SUCCESS)
}

/// One image of the page: its `data:` URL, display size and a link to the original file.
fn image_entry(path: &Path, img: &image::RgbImage, args: &ReportArgs) -> Result<Value> {
    let src = if args.full {
        embed::data_url("image/png", &embed::png_bytes(img)?)
    } else {
        let t = embed::thumbnail(img, args.thumb);
        embed::data_url("image/jpeg", &embed::jpeg_bytes(&t, args.quality)?)
    };
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(json!({
        "src": src,
        "w": img.width(),
        "h": img.height(),
        "file": file_url(&abs),
        "name": path.file_name().map(|n| n.to_string_lossy().into_owned()),
    }))
}

/// A `file://` URL of an absolute path, percent-encoding what a URL cannot hold.
fn file_url(path: &Path) -> String {
    let mut out = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Scores as JSON numbers, `null` where not finite.
fn values(v: &[f64]) -> Value {
    Value::Array(v.iter().map(|&x| if x.is_finite() { json!(x) } else { Value::Null }).collect())
}

/// The page: the data as JSON (with `<` escaped so no `</script>` can close the block), the style
/// and the script.
fn page(data: &Value) -> Result<String> {
    let json = serde_json::to_string(data).context("serialising the report data")?.replace('<', "\\u003c");
    let title = data["title"].as_str().unwrap_or("mmif report");
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <noscript>This report needs JavaScript to draw its panels and tables.</noscript>\n\
         <main id=\"app\"></main>\n\
         <script type=\"application/json\" id=\"mmif-data\">{json}</script>\n\
         <script>\n{SCRIPT}</script>\n</body>\n</html>\n",
        html_escape(title)
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_cannot_close_the_script() {
        let html = page(&json!({"title": "a</script><b>", "x": "</script>"})).unwrap();
        assert_eq!(html.matches("</script>").count(), 2, "only the two real closing tags");
        assert!(html.contains("<title>a&lt;/script&gt;&lt;b&gt;</title>"));
    }

    #[test]
    fn urls_and_directions() {
        assert_eq!(file_url(Path::new("/a b/c#1.png")), "file:///a%20b/c%231.png");
        assert_eq!(values(&[1.5, f64::NAN]), json!([1.5, null]));
    }
}
