//! Training loss plots: `loss.svg` and `loss.png` of a run folder, drawn with plotters from its
//! `loss.jsonl` (one JSON object per step with `global_step`, `epoch` and the `losses` map).
//!
//! Every loss term is one colour: a thin line per step (averaged over bins when a run has more
//! than `MAX_POINTS` steps, so the SVG stays small) and a thick line with dots through the
//! per-epoch means, placed at the middle of each epoch's steps. The loss axis is logarithmic when every
//! value is positive, linear otherwise. `mmif train` redraws both files at each epoch end;
//! `mmif plot RUN_DIR` redraws them on demand.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use plotters::prelude::*;

/// Most points drawn per term for the per-step lines.
pub const MAX_POINTS: usize = 2000;
const SIZE: (u32, u32) = (1200, 700);
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// Run folder of `mmif train` (holding loss.jsonl)
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
}

/// Runs `mmif plot`.
pub fn run(args: &PlotArgs) -> Result<ExitCode> {
    let (svg, png) = write_loss_plots(&args.run_dir)?;
    eprintln!("{} and {}", svg.display(), png.display());
    Ok(ExitCode::SUCCESS)
}

/// The logged steps of one run: per term, `(global_step, value)` in order, and per term the
/// per-epoch means at the middle of the epoch's steps.
#[derive(Debug, Default, PartialEq)]
pub struct Losses {
    pub steps: BTreeMap<String, Vec<(f64, f64)>>,
    pub epoch_means: BTreeMap<String, Vec<(f64, f64)>>,
}

/// Reads `loss.jsonl` text.
pub fn parse(text: &str, path: &Path) -> Result<Losses> {
    let mut out = Losses::default();
    // per term: (epoch, sum, count, first step, last step) of the epoch being summed
    let mut acc: BTreeMap<String, (u64, f64, usize, f64, f64)> = BTreeMap::new();
    let flush = |out: &mut Losses, name: &str, a: (u64, f64, usize, f64, f64)| {
        out.epoch_means.entry(name.to_string()).or_default().push(((a.3 + a.4) / 2.0, a.1 / a.2 as f64));
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
        let step =
            v["global_step"].as_f64().with_context(|| format!("{}:{}: no global_step", path.display(), i + 1))?;
        let epoch = v["epoch"].as_u64().with_context(|| format!("{}:{}: no epoch", path.display(), i + 1))?;
        let losses = v["losses"].as_object().with_context(|| format!("{}:{}: no losses", path.display(), i + 1))?;
        for (name, x) in losses {
            let Some(x) = x.as_f64().filter(|x| x.is_finite()) else { continue };
            out.steps.entry(name.clone()).or_default().push((step, x));
            match acc.get_mut(name) {
                Some(a) if a.0 == epoch => {
                    a.1 += x;
                    a.2 += 1;
                    a.4 = step;
                }
                Some(a) => {
                    let done = *a;
                    *a = (epoch, x, 1, step, step);
                    flush(&mut out, name, done);
                }
                None => {
                    acc.insert(name.clone(), (epoch, x, 1, step, step));
                }
            }
        }
    }
    for (name, a) in acc {
        flush(&mut out, &name, a);
    }
    Ok(out)
}

/// At most `max` points: consecutive runs of points averaged (step and value).
pub fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let per = points.len().div_ceil(max);
    points
        .chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            (c.iter().map(|p| p.0).sum::<f64>() / n, c.iter().map(|p| p.1).sum::<f64>() / n)
        })
        .collect()
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bundled font always parses; a failure would only leave text undrawn.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT);
    });
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, plotters::coord::Shift>, losses: &Losses, title: &str) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing the loss plot: {e:?}");
    let all = losses.steps.values().flatten().chain(losses.epoch_means.values().flatten());
    let log = all.clone().all(|p| p.1 > 0.0);
    let y = |v: f64| if log { v.log10() } else { v };
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for p in all {
        x0 = x0.min(p.0);
        x1 = x1.max(p.0);
        y0 = y0.min(y(p.1));
        y1 = y1.max(y(p.1));
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(76)
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
        .map_err(err)?;
    let fmt_y = |v: &f64| {
        let v = if log { 10f64.powf(*v) } else { *v };
        if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e4) { format!("{v:.1e}") } else { format!("{v:.4}") }
    };
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc(if log { "loss (log scale)" } else { "loss" })
        .y_label_formatter(&fmt_y)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .light_line_style(RGBColor(236, 236, 236))
        .draw()
        .map_err(err)?;
    for (k, (name, pts)) in losses.steps.iter().enumerate() {
        let c = COLORS[k % COLORS.len()];
        let line: Vec<(f64, f64)> = thin(pts, MAX_POINTS).into_iter().map(|p| (p.0, y(p.1))).collect();
        chart.draw_series(LineSeries::new(line, c.mix(0.35).stroke_width(1))).map_err(err)?;
        let means: Vec<(f64, f64)> =
            losses.epoch_means.get(name).map(|m| m.iter().map(|p| (p.0, y(p.1))).collect()).unwrap_or_default();
        chart
            .draw_series(LineSeries::new(means.clone(), c.stroke_width(3)))
            .map_err(err)?
            .label(format!("{name} (epoch mean)"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], c.stroke_width(3)));
        chart.draw_series(means.into_iter().map(|p| Circle::new(p, 4, c.filled()))).map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Draws `loss.svg` and `loss.png` of `run_dir` from its `loss.jsonl`; returns their paths.
pub fn write_loss_plots(run_dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let log = run_dir.join("loss.jsonl");
    let text = std::fs::read_to_string(&log).with_context(|| format!("cannot read {}", log.display()))?;
    let losses = parse(&text, &log)?;
    if losses.steps.is_empty() {
        bail!("{}: no step logged yet", log.display());
    }
    register_font();
    let title = format!(
        "{}: {} steps, {} epochs",
        run_dir.file_name().map_or_else(|| run_dir.display().to_string(), |n| n.to_string_lossy().into_owned()),
        losses.steps.values().map(Vec::len).max().unwrap_or(0),
        losses.epoch_means.values().map(Vec::len).max().unwrap_or(0)
    );
    let mut svg = String::new();
    draw(SVGBackend::with_string(&mut svg, SIZE).into_drawing_area(), &losses, &title)?;
    let mut rgb = vec![0u8; SIZE.0 as usize * SIZE.1 as usize * 3];
    draw(BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area(), &losses, &title)?;
    let img = image::RgbImage::from_raw(SIZE.0, SIZE.1, rgb).context("plot buffer size")?;
    let (svg_path, png_path) = (run_dir.join("loss.svg"), run_dir.join("loss.png"));
    mmif_io::write_atomic(&svg_path, svg.as_bytes())?;
    mmif_io::write_atomic(&png_path, &crate::embed::png_bytes(&img)?)?;
    Ok((svg_path, png_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"global_step":1,"epoch":0,"batch":0,"losses":{"loss":4.0,"ssim":0.5}}
{"global_step":2,"epoch":0,"batch":1,"losses":{"loss":2.0,"ssim":0.25}}
{"global_step":3,"epoch":1,"batch":0,"losses":{"loss":1.0,"ssim":0.125}}
"#;

    #[test]
    fn steps_and_epoch_means() {
        let l = parse(LOG, Path::new("loss.jsonl")).unwrap();
        assert_eq!(l.steps["loss"], vec![(1.0, 4.0), (2.0, 2.0), (3.0, 1.0)]);
        assert_eq!(l.epoch_means["loss"], vec![(1.5, 3.0), (3.0, 1.0)]);
        assert_eq!(l.epoch_means["ssim"], vec![(1.5, 0.375), (3.0, 0.125)]);
        let e = parse("{\"epoch\":0}\n", Path::new("x.jsonl")).unwrap_err();
        assert!(e.to_string().contains("x.jsonl:1: no global_step"), "{e}");
    }

    #[test]
    fn thinning_averages_bins() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, i as f64 * 2.0)).collect();
        assert_eq!(thin(&pts, 5), vec![(0.5, 1.0), (2.5, 5.0), (4.5, 9.0), (6.5, 13.0), (8.5, 17.0)]);
        assert_eq!(thin(&pts, 20), pts);
    }

    #[test]
    fn plots_are_written() {
        let dir = std::env::temp_dir().join(format!("mmif-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("loss.jsonl"), LOG).unwrap();
        let (svg, png) = write_loss_plots(&dir).unwrap();
        let s = std::fs::read_to_string(&svg).unwrap();
        assert!(s.contains("<svg") && s.contains("loss (epoch mean)") && s.contains("ssim (epoch mean)"));
        let img = image::open(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), SIZE);
        let colored =
            img.pixels().filter(|p| p[0] == COLORS[0].0 && p[1] == COLORS[0].1 && p[2] == COLORS[0].2).count();
        assert!(colored > 100, "the first term's mean line is drawn ({colored} pixels)");
        let dark = img.pixels().filter(|p| p[0] < 80 && p[1] < 80 && p[2] < 80).count();
        assert!(dark > 500, "axis labels and title are drawn ({dark} dark pixels)");
        std::fs::write(dir.join("loss.jsonl"), "").unwrap();
        assert!(write_loss_plots(&dir).unwrap_err().to_string().contains("no step logged"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
