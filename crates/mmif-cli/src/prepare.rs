//! `mmif prepare`: training datasets from folders of images, as the official data scripts make
//! them. Source folders are `--ir-dir`, `--vis-dir`, … as in `mmif fuse` and `mmif eval`
//! (`--ir`, `--vis`, … and `--fused` still work as hidden aliases).
//!
//! * patches of source pairs (CDDFuse, EMMA's U-Fuser): `--vis-dir DIR --ir-dir DIR` (or another
//!   modality pair), planes `[second…, first…]` = `[vis, ir]`;
//! * EMMA pseudo-sensor patches: `--fused-dir DIR [--fused-dir DIR…]` with `--ir-dir DIR` (for
//!   `emma-ai`) or `--vis-dir DIR` (for `emma-av`), planes `[fused, target]`;
//! * FILM: `--text-dir DIR` with a pair of folders, whole images (288×384 in `--size small`)
//!   with their text features, planes `[A, B]` (A = infrared/MRI/over-exposed/near focus); or
//!   `--text-encoder CKPT --caption-dir DIR` (one `<stem>.txt` description per pair), encoded
//!   first exactly as `mmif text-encode --caption-dir` does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use mmif_train::prepare::{PrepareConfig, PrepareStats, prepare, prepare_pseudo_sensor};
use mmif_train::prepare_film::{FilmPrepareConfig, FilmSize, prepare_film};

use crate::progress;
use crate::text::{self, CaptionArgs, Captioner};

#[derive(Args, Debug)]
pub struct PrepareArgs {
    /// Folder of infrared images
    #[arg(long = "ir-dir", alias = "ir", value_name = "DIR", help_heading = "Sources (folders, paired by file stem)")]
    pub ir: Option<PathBuf>,
    /// Folder of visible images (gray or colour: Y is used)
    #[arg(
        long = "vis-dir",
        alias = "vis",
        value_name = "DIR",
        help_heading = "Sources (folders, paired by file stem)"
    )]
    pub vis: Option<PathBuf>,
    /// Folder of MRI images
    #[arg(
        long = "mri-dir",
        alias = "mri",
        value_name = "DIR",
        help_heading = "Sources (folders, paired by file stem)"
    )]
    pub mri: Option<PathBuf>,
    /// Folder of CT/PET/SPECT images
    #[arg(
        long = "func-dir",
        alias = "func",
        value_name = "DIR",
        help_heading = "Sources (folders, paired by file stem)"
    )]
    pub func: Option<PathBuf>,
    /// Folder of over-exposed images
    #[arg(
        long = "over-dir",
        alias = "over",
        value_name = "DIR",
        help_heading = "Sources (folders, paired by file stem)"
    )]
    pub over: Option<PathBuf>,
    /// Folder of under-exposed images
    #[arg(
        long = "under-dir",
        alias = "under",
        value_name = "DIR",
        help_heading = "Sources (folders, paired by file stem)"
    )]
    pub under: Option<PathBuf>,
    /// Folder of near-focused images
    #[arg(
        long = "near-dir",
        alias = "near",
        value_name = "DIR",
        help_heading = "Sources (folders, paired by file stem)"
    )]
    pub near: Option<PathBuf>,
    /// Folder of far-focused images
    #[arg(
        long = "far-dir",
        alias = "far",
        value_name = "DIR",
        help_heading = "Sources (folders, paired by file stem)"
    )]
    pub far: Option<PathBuf>,
    /// EMMA pseudo-sensor data: a folder of fusion results of another method (repeatable),
    /// paired by stem with --ir-dir (for emma-ai) or --vis-dir (for emma-av)
    #[arg(long = "fused-dir", alias = "fused", value_name = "DIR", help_heading = "EMMA pseudo-sensors")]
    pub fused: Vec<PathBuf>,
    /// FILM data: the folder of text features `<stem>.npy` (T×768 or 1×T×768, float32)
    #[arg(long, value_name = "DIR", help_heading = "FILM")]
    pub text_dir: Option<PathBuf>,
    #[command(flatten)]
    pub caption: CaptionArgs,
    /// FILM image size: small = 288×384 as the official IVF/MEF/MFF data, full = as read
    #[arg(long, value_enum, default_value_t = SizeArg::Small, help_heading = "FILM")]
    pub size: SizeArg,
    /// FILM: only the stems listed in this file, one per line (the official train.txt)
    #[arg(long, value_name = "FILE", help_heading = "FILM")]
    pub list: Option<PathBuf>,
    /// Output dataset (.mmifds)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    /// Patch size
    #[arg(long, default_value_t = 128)]
    pub patch: usize,
    /// Distance between patch corners
    #[arg(long, default_value_t = 200)]
    pub stride: usize,
    /// Drop a pair when (p90 - p10) / p90 of either patch is below this
    #[arg(long, default_value_t = 0.1)]
    pub low_contrast: f64,
    /// Overwrite an existing output file
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SizeArg {
    Small,
    Full,
}

/// The pair of source folders given, as `(first, second, names)`: first = infrared, MRI,
/// over-exposed or near-focused.
fn source_pair(a: &PrepareArgs) -> Result<(&Path, &Path, [&'static str; 2])> {
    let pairs = [
        (&a.ir, &a.vis, ["ir", "vis"]),
        (&a.mri, &a.func, ["mri", "func"]),
        (&a.over, &a.under, ["over", "under"]),
        (&a.near, &a.far, ["near", "far"]),
    ];
    let given: Vec<_> = pairs.iter().filter(|(x, y, _)| x.is_some() || y.is_some()).collect();
    match given.as_slice() {
        [(Some(x), Some(y), n)] => Ok((x, y, *n)),
        [(x, _, n)] => bail!(
            "--{}-dir needs its partner --{}-dir",
            if x.is_some() { n[0] } else { n[1] },
            if x.is_some() { n[1] } else { n[0] }
        ),
        [] => bail!(
            "give a pair of source folders: --ir-dir/--vis-dir, --mri-dir/--func-dir, --over-dir/--under-dir or --near-dir/--far-dir"
        ),
        _ => bail!("give one pair of source folders, not several"),
    }
}

pub fn run(args: &PrepareArgs) -> Result<ExitCode> {
    if args.out.exists() && !args.force {
        bail!("{} exists (use --force to replace it)", args.out.display());
    }
    if (args.text_dir.is_some() || args.caption.any()) && !args.fused.is_empty() {
        bail!(
            "--text-dir/--caption-dir (FILM) and --fused-dir (EMMA pseudo-sensors) make different datasets: give one"
        );
    }
    if args.caption.any() {
        if args.text_dir.is_some() {
            bail!("give FILM's text either as features (--text-dir) or as captions (--caption-dir), not both");
        }
        args.caption.check(true)?;
        source_pair(args)?;
        let captions = args.caption.caption_dir.as_deref().unwrap_or(Path::new("."));
        let stems = text::caption_stems(captions)?;
        let enc = Captioner::load(&args.caption, &mmif_nn::cpu())?;
        enc.check_film()?;
        let parent = args.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let features = parent.join(format!(".mmif-text-{}", std::process::id()));
        std::fs::create_dir_all(&features).with_context(|| format!("cannot create {}", features.display()))?;
        let failures = text::encode_dir(&enc, captions, &stems, &features, true);
        drop(enc);
        let result = if failures.is_empty() {
            let origin = format!(
                "captions in {} encoded by {}",
                captions.display(),
                args.caption.text_encoder.as_deref().unwrap_or(Path::new("?")).display()
            );
            run_film(args, &features, Some(origin))
        } else {
            Err(anyhow::anyhow!("{} caption(s) could not be encoded: {}", failures.len(), failures.join(", ")))
        };
        let _ = std::fs::remove_dir_all(&features);
        return result;
    }
    if let Some(text_dir) = &args.text_dir {
        return run_film(args, text_dir, None);
    }
    let cfg =
        PrepareConfig { patch: args.patch, stride: args.stride, low_contrast: args.low_contrast, ..Default::default() };
    let bar = progress::bar(0, "prepare");
    let tick = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let (stats, what) = if !args.fused.is_empty() {
        let (target, name) = match (&args.ir, &args.vis) {
            (Some(ir), None) => (ir, "ir"),
            (None, Some(vis)) => (vis, "vis"),
            _ => bail!(
                "--fused-dir pairs with one source folder: --ir-dir (data for emma-ai) or --vis-dir (for emma-av)"
            ),
        };
        (prepare_pseudo_sensor(&args.fused, target, name, &args.out, &cfg, tick)?, format!("fused | {name}"))
    } else {
        let (first, second, names) = source_pair(args)?;
        (prepare(second, first, &args.out, &cfg, tick)?, format!("{} | {}", names[1], names[0]))
    };
    bar.finish_and_clear();
    report(args, &stats, &what)
}

/// The FILM dataset from the source folders and a folder of text features.
fn run_film(args: &PrepareArgs, text_dir: &Path, text_origin: Option<String>) -> Result<ExitCode> {
    let bar = progress::bar(0, "prepare");
    let tick = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let (a, b, _) = source_pair(args)?;
    let stems = match &args.list {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        None => None,
    };
    let size = match args.size {
        SizeArg::Small => FilmSize::Small,
        SizeArg::Full => FilmSize::Full,
    };
    let stats = prepare_film(a, b, text_dir, &args.out, &FilmPrepareConfig { size, stems, text_origin }, tick)?;
    bar.finish_and_clear();
    let tokens: Vec<String> = stats.tokens.iter().map(|(t, n)| format!("{n}×T={t}")).collect();
    eprintln!(
        "{}: {} pairs with text ({}; {} transposed portrait/square pairs, {} unused text files)",
        args.out.display(),
        stats.pairs,
        tokens.join(", "),
        stats.transposed,
        stats.unused_text
    );
    Ok(ExitCode::SUCCESS)
}

fn report(args: &PrepareArgs, stats: &PrepareStats, what: &str) -> Result<ExitCode> {
    if stats.kept == 0 {
        // The writer has already replaced the output; remove the empty dataset.
        let _ = std::fs::remove_file(&args.out);
        bail!("no patch was kept: the images are smaller than --patch or all low-contrast");
    }
    eprintln!(
        "{}: {} patches ({what}) of {}x{} from {} pairs ({} windows, {} dropped as low-contrast)",
        args.out.display(),
        stats.kept,
        args.patch,
        args.patch,
        stats.pairs,
        stats.windows,
        stats.dropped_low_contrast
    );
    Ok(ExitCode::SUCCESS)
}
