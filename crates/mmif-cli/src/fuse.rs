//! `mmif fuse`: one pair or two folders of sources through one model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use mmif_fuse::pipeline::{self, Bands, Conventions, TilingMode};
use mmif_io::{Chroma, Loaded, Plane, Quantize};
use mmif_nn::cddfuse::Residual;
use mmif_nn::emma::Tiling;

use crate::models::{self, Fuser, ModelOptions};
use crate::pairs::{SourceArgs, Sources, Task, pair_folders};
use crate::progress;
use crate::registry::Model;
use crate::shard::Shard;
use crate::text::{self, CaptionArgs, Captioner, TEXT_HELP, TextFeatures};

#[derive(Args, Debug)]
pub struct FuseArgs {
    /// Model: a network (cddfuse) or a weight-free method (see `mmif models`).
    /// Default: the measured best weight-free method of the task (ir/vis: hmsd_gf, mri/func: max, over/under and near/far: lp, else gff)
    #[arg(long, short = 'm', value_parser = crate::registry::model_parser())]
    pub model: Option<Model>,
    /// Checkpoint of a network: official .pth, Jittor .pkl or .safetensors
    #[arg(long, short = 'w', value_name = "FILE")]
    pub weights: Option<PathBuf>,
    #[command(flatten)]
    pub sources: SourceArgs,
    #[command(flatten)]
    pub device: crate::device::DeviceArgs,
    /// Output file for one pair: .png (8-bit), .tif/.tiff (16-bit) or .npy (float32 in [0,1])
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Output folder for folder mode (created if needed); files are named <stem>.<ext>
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Output format in folder mode
    #[arg(long, default_value = "png", value_parser = ["png", "tif", "tiff", "npy"])]
    pub ext: String,
    /// Write a gray image even when a source is in colour
    #[arg(long)]
    pub gray: bool,
    /// Colour sources, weight-free methods: luma = fuse the gray images and keep the colour
    /// source's chroma (default); channels = fuse the RGB channels as VIFB's MATLAB code does
    /// (each channel with the other source's gray image or same channel; ifevip and gtf all
    /// channels jointly)
    #[arg(long, value_name = "luma|channels", default_value = "luma", value_parser = ["luma", "channels"])]
    pub color: String,
    /// Skip the official min-max normalisation of network outputs
    #[arg(long)]
    pub raw: bool,
    /// CDDFuse: image added back by the decoder (vis = official IVF, sum = IVF checkpoint on
    /// medical images, none = official MIF checkpoint)
    #[arg(long, value_name = "vis|sum|none")]
    pub residual: Option<Residual>,
    /// EMMA: sizes that are not multiples of 32. official = test.py (four corner crops, pasted;
    /// the default), pad = reflect-pad and crop, tile = overlapping blended tiles (bounded memory)
    #[arg(long, value_enum, value_name = "official|pad|tile")]
    pub tiling: Option<TilingMode>,
    /// CDDFuse: auto = the whole image when its estimated peak memory fits the available memory,
    /// else bands of rows (the default); off = always the whole image; on = always bands, their
    /// height chosen for about 2 GB of working memory; ROWS = bands of ROWS rows. Bands give the
    /// same result up to float rounding, in bounded memory, at about 8x the time
    #[arg(long, value_name = "auto|off|on|ROWS")]
    pub bands: Option<Bands>,
    /// EMMA, --tiling tile: tile side in pixels, a multiple of 32 [default: 512]
    #[arg(long, value_name = "N")]
    pub tile: Option<usize>,
    /// EMMA, --tiling tile: minimum overlap of neighbouring tiles in pixels [default: 64]
    #[arg(long, value_name = "K")]
    pub overlap: Option<usize>,
    /// weighted: weight of source a (0..1)
    #[arg(long, value_name = "W")]
    pub weight: Option<f32>,
    /// lp, dwt: number of decomposition levels
    #[arg(long, value_name = "N")]
    pub levels: Option<usize>,
    /// Weight-free methods: set a parameter (repeatable; `mmif models` lists keys and defaults)
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// FILM: text features of the pair (float32 .npy, T×768 or 1×T×768)
    #[arg(long, value_name = "FILE")]
    pub text: Option<PathBuf>,
    /// FILM in folder mode: folder of text features, one <stem>.npy per pair
    #[arg(long, value_name = "DIR")]
    pub text_dir: Option<PathBuf>,
    #[command(flatten)]
    pub caption: CaptionArgs,
    /// Overwrite existing output files
    #[arg(long)]
    pub force: bool,
    /// Folder mode: fuse only shard K of N (K from 0; the i-th pair in stem order goes to shard
    /// i mod N), or `auto` from a Slurm array (SLURM_ARRAY_TASK_ID/COUNT) or a Kubernetes Indexed
    /// Job (JOB_COMPLETION_INDEX, JOB_COMPLETIONS)
    #[arg(long, value_name = "K/N|auto")]
    pub shard: Option<String>,
    /// Folder mode: leave pairs whose output file exists alone (a rerun finishes only what is
    /// missing; nothing is loaded when nothing is missing)
    #[arg(long, conflicts_with = "force")]
    pub skip_existing: bool,
    /// Networks: run even when the estimated peak memory exceeds the available memory
    #[arg(long)]
    pub no_memory_check: bool,
}

/// The EMMA tiling from `--tiling`, `--tile` and `--overlap` (`--tile`/`--overlap` alone imply
/// `--tiling tile`).
fn tiling(args: &FuseArgs) -> Result<Option<Tiling>> {
    pipeline::tiling(args.tiling, args.tile, args.overlap)
}

/// Reads both sources of a pair and checks they can be fused.
fn read_pair(a: &Path, b: &Path) -> Result<(Loaded, Loaded)> {
    let la = mmif_io::read_image(a)?;
    let lb = mmif_io::read_image(b)?;
    pipeline::check_same_size(&a.display().to_string(), &la.gray, &b.display().to_string(), &lb.gray)?;
    Ok((la, lb))
}

/// The model's name for messages.
fn model_name(args: &FuseArgs) -> String {
    args.model.as_ref().map_or_else(|| "the method".to_string(), |m| m.name().to_string())
}

/// Fuses one pair and writes the result.
fn fuse_pair(
    model: &dyn Fuser,
    args: &FuseArgs,
    task: Task,
    (a, b): (&Path, &Path),
    text: Option<&TextFeatures>,
    out: &Path,
) -> Result<()> {
    let (la, lb) = read_pair(a, b)?;
    let size = (la.gray.width, la.gray.height);
    let skip = "pass --no-memory-check";
    if let Some(note) = pipeline::check_memory(model, &model_name(args), size, !args.no_memory_check, skip)? {
        eprintln!("mmif: {}: {note}", model_name(args));
    }
    let conv = conventions(args)?;
    if conv.by_channels(&la, &lb) {
        let ca = pipeline::source_channels(&la, || rgb_planes(a))?;
        let cb = pipeline::source_channels(&lb, || rgb_planes(b))?;
        return write_result(out, pipeline::fuse_channels(model, task, &ca, &cb)?);
    }
    let fused = pipeline::fuse_loaded(model, task, &la, &lb, text, conv)?;
    write_result(out, fused)
}

/// The pipeline's conventions from the flags.
fn conventions(args: &FuseArgs) -> Result<Conventions> {
    Ok(Conventions { raw: args.raw, gray: args.gray, color: args.color.parse()? })
}

/// The R, G and B planes of a colour source (0..=255 scale).
fn rgb_planes(path: &Path) -> Result<[Plane; 3]> {
    Ok(pipeline::rgb_planes(&mmif_io::image_io::decode_image(path)?))
}

/// Writes the pipeline's result: gray, or colour from the chroma or the fused channels.
fn write_result(out: &Path, fused: pipeline::Fused) -> Result<()> {
    match fused.rgb255() {
        Some(rgb) => write_rgb255(out, rgb, fused.quantize),
        None => write_fused(out, fused.y, None, fused.quantize),
    }
}

/// Writes a fused image on the 0..=1 scale: `.npy` keeps that scale, images are 0..=255
/// (8-bit PNG quantised as the model's official script does).
pub(crate) fn write_fused(out: &Path, fused: Plane, chroma: Option<Chroma>, quantize: Quantize) -> Result<()> {
    let ext = out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match chroma {
        None if ext.as_deref() == Some("npy") => mmif_io::write_output(out, &fused)?,
        None if ext.as_deref() == Some("png") => {
            mmif_io::image_io::write_png8_with(out, &fused.scale(255.0), quantize)?
        }
        None => mmif_io::write_output(out, &fused.scale(255.0))?,
        Some(c) => write_rgb255(out, mmif_io::compose_color(&fused.scale(255.0), &c), quantize)?,
    }
    Ok(())
}

/// Writes `[R, G, B]` on the 0..=255 scale: `.npy` on the 0..=1 scale, 8-bit PNG quantised as
/// the model's official script does.
fn write_rgb255(out: &Path, mut rgb: [Plane; 3], quantize: Quantize) -> Result<()> {
    match out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png") => mmif_io::image_io::write_png_rgb8_with(out, &rgb, quantize)?,
        Some("npy") => {
            rgb = rgb.map(|p| p.scale(1.0 / 255.0));
            mmif_io::write_output(out, &rgb)?
        }
        _ => mmif_io::write_output(out, &rgb)?,
    }
    Ok(())
}

/// Checks `--text`/`--text-dir` and the caption flags against the model and the source mode
/// before anything is loaded.
fn check_text_args(args: &FuseArgs, name: &Model, folders: bool) -> Result<()> {
    let wants = name.uses_text();
    let features = args.text.is_some() || args.text_dir.is_some();
    let captions = args.caption.any();
    if !wants && (features || captions) {
        bail!("--text/--text-dir and the caption flags are for text-guided models (film); `{name}` does not use text");
    }
    if !wants {
        return Ok(());
    }
    if features && captions {
        bail!(
            "give the text either as features (--text/--text-dir) or as captions (--text-encoder with --caption…), not both"
        );
    }
    if captions {
        return args.caption.check(folders);
    }
    match (folders, &args.text, &args.text_dir) {
        (false, None, _) => bail!("`{name}` needs --text FILE.npy for the pair. {TEXT_HELP}"),
        (true, None, None) => bail!("`{name}` needs --text-dir DIR in folder mode. {TEXT_HELP}"),
        (false, _, Some(_)) => bail!("--text-dir is for folder mode; with one pair use --text FILE.npy"),
        (true, Some(_), _) => bail!("--text is for one pair; in folder mode use --text-dir DIR"),
        _ => Ok(()),
    }
}

/// The text encoder of `--text-encoder`, loaded once, if captions are given.
fn load_captioner(args: &FuseArgs) -> Result<Option<Captioner>> {
    if args.caption.text_encoder.is_none() {
        return Ok(None);
    }
    let c = Captioner::load(&args.caption, &args.device.device()?)?;
    c.check_film()?;
    Ok(Some(c))
}

/// The pair's text features: `--text`, `--text-dir/<stem>.npy`, or the encoded caption
/// (`--caption`, `--caption-file`, `--caption-dir/<stem>.txt`); `stem` is `None` for one pair.
fn pair_text(args: &FuseArgs, captioner: Option<&Captioner>, stem: Option<&str>) -> Result<Option<TextFeatures>> {
    if let Some(enc) = captioner {
        let c = &args.caption;
        let (caption, what) = match (stem, &c.caption_dir, &c.caption, &c.caption_file) {
            (Some(stem), Some(dir), _, _) => (text::caption_for_stem(dir, stem)?, format!("the caption of `{stem}`")),
            (None, _, Some(t), _) => (t.clone(), "the caption".to_string()),
            (None, _, None, Some(p)) => (text::read_caption(p)?, p.display().to_string()),
            _ => bail!("no caption for the pair"),
        };
        return enc.features(&caption, &what).map(Some);
    }
    match stem {
        None => args.text.as_deref().map(text::read_text).transpose(),
        Some(stem) => args.text_dir.as_deref().map(|d| text::text_for_stem(d, stem)).transpose(),
    }
}

pub(crate) fn check_output(out: &Path, inputs: &[&Path], force: bool) -> Result<()> {
    for input in inputs {
        if same_file(out, input) {
            bail!("refusing to overwrite the input {} with the fused image", input.display());
        }
    }
    if out.exists() && !force {
        bail!("{} exists; pass --force to overwrite it", out.display());
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

pub fn run(args: &FuseArgs) -> Result<ExitCode> {
    let sources = args.sources.resolve()?;
    let name = match (&args.model, &args.weights) {
        (Some(m), _) => m.clone(),
        (None, Some(w)) => {
            bail!("--weights {} given without --model: name the network (e.g. --model cddfuse)", w.display())
        }
        (None, None) => {
            let task = match &sources {
                Sources::Single { task, .. } | Sources::Folders { task, .. } => *task,
            };
            let model = pipeline::default_model(task);
            eprintln!("mmif: no --model given: using the weight-free `{model}` method");
            model
        }
    };
    let opts = ModelOptions {
        residual: args.residual,
        weight: args.weight,
        levels: args.levels,
        tiling: tiling(args)?,
        params: args.params.clone(),
        bands: args.bands,
    };
    let device = args.device.device()?;
    check_text_args(args, &name, matches!(sources, Sources::Folders { .. }))?;
    conventions(args)?.check(&name)?;
    match sources {
        Sources::Single { task, a, b } => {
            let out = args.output.as_ref().context("one pair of sources needs -o OUTPUT")?;
            if args.shard.is_some() || args.skip_existing {
                bail!("--shard and --skip-existing are for folder mode (--ir-dir/--vis-dir …, --out-dir)");
            }
            if args.out_dir.is_some() {
                bail!("--out-dir is for folder mode; with one pair use -o OUTPUT");
            }
            check_output(out, &[&a, &b], args.force)?;
            // Check the inputs before the (possibly slow) model load.
            read_pair(&a, &b)?;
            let captioner = load_captioner(args)?;
            let text = pair_text(args, captioner.as_ref(), None)?;
            drop(captioner);
            let model = models::build(&name, args.weights.as_deref(), &opts, &device)?;
            let t = Instant::now();
            fuse_pair(model.as_ref(), args, task, (&a, &b), text.as_ref(), out)?;
            eprintln!("mmif: wrote {} ({:.2} s)", out.display(), t.elapsed().as_secs_f64());
            Ok(ExitCode::SUCCESS)
        }
        Sources::Folders { task, a, b } => {
            let out_dir = args.out_dir.as_ref().context("folder mode needs --out-dir DIR")?;
            if args.output.is_some() {
                bail!("-o is for one pair; in folder mode use --out-dir DIR");
            }
            let paired = pair_folders(&a, &b)?;
            for (stem, dir) in &paired.unpaired {
                eprintln!("mmif: warning: `{stem}` in {} has no partner; skipped", dir.display());
            }
            if paired.pairs.is_empty() {
                bail!("no pairs: no file stem is in both {} and {}", a.display(), b.display());
            }
            let shard = Shard::from_arg(args.shard.as_deref())?;
            let total = paired.pairs.len();
            let mut pairs = match shard {
                Some(sh) => sh.select(paired.pairs),
                None => paired.pairs,
            };
            let in_shard = pairs.len();
            let out_path = |stem: &str| out_dir.join(format!("{stem}.{}", args.ext));
            if args.skip_existing {
                pairs.retain(|(stem, _, _)| !out_path(stem).exists());
            }
            let skipped = in_shard - pairs.len();
            let scope = match shard {
                Some(sh) => format!(" (shard {sh}: {in_shard} of {total} pairs)"),
                None => String::new(),
            };
            if pairs.is_empty() {
                eprintln!("mmif: nothing to do: {skipped} pair(s) already fused in {}{scope}", out_dir.display());
                return Ok(ExitCode::SUCCESS);
            }
            std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
            // Outputs are written atomically; a run killed mid-write leaves only a hidden
            // temporary file, removed here.
            let stale = mmif_io::remove_stale_temps(out_dir)?;
            if stale > 0 {
                eprintln!("mmif: removed {stale} temporary file(s) of an interrupted run from {}", out_dir.display());
            }
            let captioner = load_captioner(args)?;
            let model = models::build(&name, args.weights.as_deref(), &opts, &device)?;
            let bar = progress::bar(pairs.len() as u64, "fusing");
            let mut failures = Vec::new();
            for (stem, pa, pb) in &pairs {
                bar.set_message(stem.clone());
                let out = out_path(stem);
                let result = check_output(&out, &[pa, pb], args.force).and_then(|_| {
                    let text = pair_text(args, captioner.as_ref(), Some(stem))?;
                    fuse_pair(model.as_ref(), args, task, (pa, pb), text.as_ref(), &out)
                });
                if let Err(e) = result {
                    bar.suspend(|| eprintln!("mmif: {stem}: {e:#}"));
                    failures.push(stem.clone());
                }
                bar.inc(1);
            }
            bar.finish_and_clear();
            let done = pairs.len() - failures.len();
            let skipped = if skipped > 0 { format!(", {skipped} already fused") } else { String::new() };
            eprintln!("mmif: fused {done} of {} pair(s){skipped} into {}{scope}", pairs.len(), out_dir.display());
            if failures.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("mmif: {} pair(s) failed: {}", failures.len(), failures.join(", "));
                Ok(ExitCode::FAILURE)
            }
        }
    }
}
