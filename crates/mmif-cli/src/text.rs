//! Text features for text-guided models (FILM): `--text FILE.npy` for one pair, `--text-dir DIR`
//! (one `<stem>.npy` per pair) in folder mode — the reading lives in `mmif_fuse::text`; or made
//! from plain text by the BLIP-2 text encoder ([`CaptionArgs`]: `--text-encoder CKPT` with
//! `--caption`, `--caption-file` or `--caption-dir`), which `mmif text-encode` writes as those
//! `.npy` files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use mmif_nn::text::TextEncoder;

pub use mmif_fuse::text::*;

use crate::progress;

/// Where FILM's text comes from when it is plain text: the encoder and the caption flags shared
/// by `mmif text-encode`, `mmif fuse` and `mmif prepare`.
#[derive(Args, Debug, Default)]
pub struct CaptionArgs {
    /// Text encoder for captions: a BERT / BLIP-2 checkpoint (.safetensors, a Hugging Face
    /// model.safetensors.index.json or its folder, .pth); the config.json beside it gives the
    /// architecture, else the tensor shapes do
    #[arg(long, value_name = "CKPT", help_heading = "Text from captions (FILM)")]
    pub text_encoder: Option<PathBuf>,
    /// WordPiece tokenizer: tokenizer.json or vocab.txt [default: the one beside the checkpoint]
    #[arg(long, value_name = "FILE", help_heading = "Text from captions (FILM)")]
    pub tokenizer: Option<PathBuf>,
    /// The description of the pair (one pair)
    #[arg(long, value_name = "TEXT", help_heading = "Text from captions (FILM)")]
    pub caption: Option<String>,
    /// A UTF-8 file holding the description (one pair); the whole file is one text: its line
    /// breaks and paragraphs are joined by white space, as BERT reads them
    #[arg(long, value_name = "FILE", help_heading = "Text from captions (FILM)")]
    pub caption_file: Option<PathBuf>,
    /// Folder mode: one <stem>.txt description per pair (each read like --caption-file)
    #[arg(long, value_name = "DIR", help_heading = "Text from captions (FILM)")]
    pub caption_dir: Option<PathBuf>,
    /// Most tokens a caption may have, [CLS] and [SEP] included [default: the encoder's position
    /// limit, 512 for BERT/BLIP-2]; longer captions are an error unless --truncate
    #[arg(long, value_name = "N", help_heading = "Text from captions (FILM)")]
    pub max_tokens: Option<usize>,
    /// Keep the first --max-tokens tokens of a longer caption (as `tokenizer(text, truncation=True,
    /// max_length=N)`) instead of failing; a note names each truncated caption
    #[arg(long, help_heading = "Text from captions (FILM)")]
    pub truncate: bool,
}

impl CaptionArgs {
    /// Whether any caption flag was given.
    pub fn any(&self) -> bool {
        self.text_encoder.is_some()
            || self.caption.is_some()
            || self.caption_file.is_some()
            || self.caption_dir.is_some()
    }

    /// Checks the flags for one pair (`folders = false`) or folder mode, before anything loads.
    pub fn check(&self, folders: bool) -> Result<()> {
        if self.text_encoder.is_none() {
            bail!(
                "--caption, --caption-file and --caption-dir need --text-encoder CKPT (the BLIP-2 / BERT text encoder)"
            );
        }
        let single = [self.caption.is_some(), self.caption_file.is_some()].iter().filter(|b| **b).count();
        match (folders, single, &self.caption_dir) {
            (_, 2, _) => bail!("give one of --caption and --caption-file"),
            (false, 1, None) => {}
            (false, _, Some(_)) => {
                bail!("--caption-dir is for folder mode; with one pair use --caption or --caption-file")
            }
            (false, _, None) => {
                bail!("--text-encoder needs the pair's description: --caption TEXT or --caption-file FILE")
            }
            (true, 0, Some(_)) => {}
            (true, 0, None) => bail!("--text-encoder in folder mode needs --caption-dir DIR (one <stem>.txt per pair)"),
            (true, _, _) => {
                bail!("--caption and --caption-file are for one pair; in folder mode use --caption-dir DIR")
            }
        }
        if self.max_tokens == Some(0) {
            bail!("--max-tokens must be at least 1");
        }
        Ok(())
    }
}

/// Reads a caption file as UTF-8 text.
pub fn read_caption(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the caption {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| anyhow::anyhow!("{}: the caption is not UTF-8 text ({e})", path.display()))
}

/// The caption of the pair `stem` in `dir`: `dir/<stem>.txt`.
pub fn caption_for_stem(dir: &Path, stem: &str) -> Result<String> {
    let path = dir.join(format!("{stem}.txt"));
    if !path.is_file() {
        bail!(
            "no caption for `{stem}`: {} does not exist (--caption-dir needs one <stem>.txt per pair)",
            path.display()
        );
    }
    read_caption(&path)
}

/// A loaded text encoder with the caption flags' limits.
pub struct Captioner {
    encoder: TextEncoder,
    max_tokens: usize,
    truncate: bool,
}

impl Captioner {
    /// Loads `--text-encoder` and its tokenizer, once.
    pub fn load(args: &CaptionArgs, device: &mmif_nn::Device) -> Result<Self> {
        let ckpt = args.text_encoder.as_deref().context("--text-encoder CKPT is needed for captions")?;
        let encoder = TextEncoder::load(ckpt, args.tokenizer.as_deref(), device)?;
        let limit = encoder.max_positions();
        let max_tokens = match args.max_tokens {
            Some(n) if n > limit => {
                bail!("--max-tokens {n} is over the text encoder's position limit of {limit}")
            }
            Some(n) => n,
            None => limit,
        };
        Ok(Self { encoder, max_tokens, truncate: args.truncate })
    }

    /// Width of one token's features.
    pub fn dim(&self) -> usize {
        self.encoder.dim()
    }

    /// Checks that the features fit FILM (768 wide).
    pub fn check_film(&self) -> Result<()> {
        if self.dim() != TEXT_DIM {
            bail!(
                "the text encoder gives {}-wide token features; FILM takes {TEXT_DIM}-wide ones (BLIP-2's Q-Former, \
                 bert-base shapes)",
                self.dim()
            );
        }
        Ok(())
    }

    /// The features of one caption; `what` names it in the truncation note.
    pub fn features(&self, text: &str, what: &str) -> Result<TextFeatures> {
        use mmif_nn::text::{TextEncoderError, TokenizerError};
        let ids = match self.encoder.token_ids(text, self.max_tokens, false) {
            Err(TextEncoderError::Tokenizer(TokenizerError::TooLong { tokens, max })) if self.truncate => {
                eprintln!("mmif: note: {what}: {tokens} tokens truncated to {max}");
                self.encoder.token_ids(text, self.max_tokens, true)
            }
            r => r,
        }
        .with_context(|| format!("cannot encode {what}"))?;
        let data = self.encoder.encode_ids(&ids).with_context(|| format!("cannot encode {what}"))?;
        Ok(TextFeatures { tokens: ids.len(), data })
    }
}

/// `mmif text-encode`.
#[derive(Args, Debug)]
pub struct TextEncodeArgs {
    #[command(flatten)]
    pub caption: CaptionArgs,
    #[command(flatten)]
    pub device: crate::device::DeviceArgs,
    /// Output .npy for one caption: float32 of shape (1, T, 768), the layout of FILM's TextFeature files
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Output folder for --caption-dir: one <stem>.npy per <stem>.txt (created if needed)
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Overwrite existing output files
    #[arg(long)]
    pub force: bool,
}

fn write_features(path: &Path, f: &TextFeatures, dim: usize) -> Result<()> {
    mmif_io::write_npy_f32(path, &[1, f.tokens, dim], &f.data)?;
    Ok(())
}

fn check_new(out: &Path, force: bool) -> Result<()> {
    if out.exists() && !force {
        bail!("{} exists; pass --force to overwrite it", out.display());
    }
    if out.extension().and_then(|e| e.to_str()).is_none_or(|e| !e.eq_ignore_ascii_case("npy")) {
        bail!("{}: text features are written as .npy", out.display());
    }
    Ok(())
}

/// The stems of the `<stem>.txt` captions in `dir`, sorted.
pub fn caption_stems(dir: &Path) -> Result<Vec<String>> {
    let mut stems: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("txt")))
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .collect();
    stems.sort();
    if stems.is_empty() {
        bail!("{} holds no <stem>.txt caption", dir.display());
    }
    Ok(stems)
}

/// Encodes `dir/<stem>.txt` into `out_dir/<stem>.npy` for every stem, with a progress bar;
/// returns the stems that failed (each reported on stderr).
pub fn encode_dir(enc: &Captioner, dir: &Path, stems: &[String], out_dir: &Path, force: bool) -> Vec<String> {
    let bar = progress::bar(stems.len() as u64, "encoding");
    let mut failures = Vec::new();
    for stem in stems {
        bar.set_message(stem.clone());
        let out = out_dir.join(format!("{stem}.npy"));
        let result = check_new(&out, force)
            .and_then(|_| caption_for_stem(dir, stem))
            .and_then(|text| enc.features(&text, &format!("the caption of `{stem}`")))
            .and_then(|f| write_features(&out, &f, enc.dim()));
        if let Err(e) = result {
            bar.suspend(|| eprintln!("mmif: {stem}: {e:#}"));
            failures.push(stem.clone());
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    failures
}

pub fn run_text_encode(args: &TextEncodeArgs) -> Result<ExitCode> {
    let c = &args.caption;
    let folders = c.caption_dir.is_some();
    c.check(folders)?;
    if !folders {
        let out = args.output.as_deref().context("one caption needs -o OUT.npy")?;
        if args.out_dir.is_some() {
            bail!("--out-dir is for --caption-dir; with one caption use -o OUT.npy");
        }
        check_new(out, args.force)?;
        let (text, what) = match (&c.caption, &c.caption_file) {
            (Some(t), _) => (t.clone(), "the caption".to_string()),
            (None, Some(p)) => (read_caption(p)?, p.display().to_string()),
            (None, None) => unreachable!("checked by CaptionArgs::check"),
        };
        let enc = Captioner::load(c, &args.device.device()?)?;
        let t = Instant::now();
        let f = enc.features(&text, &what)?;
        write_features(out, &f, enc.dim())?;
        eprintln!("mmif: wrote {} (1×{}×{}, {:.2} s)", out.display(), f.tokens, enc.dim(), t.elapsed().as_secs_f64());
        return Ok(ExitCode::SUCCESS);
    }
    let dir = c.caption_dir.as_deref().unwrap_or(Path::new("."));
    let out_dir = args.out_dir.as_deref().context("--caption-dir needs --out-dir DIR")?;
    if args.output.is_some() {
        bail!("-o is for one caption; with --caption-dir use --out-dir DIR");
    }
    let stems = caption_stems(dir)?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let enc = Captioner::load(c, &args.device.device()?)?;
    let failures = encode_dir(&enc, dir, &stems, out_dir, args.force);
    eprintln!(
        "mmif: encoded {} of {} caption(s) into {}",
        stems.len() - failures.len(),
        stems.len(),
        out_dir.display()
    );
    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("mmif: {} caption(s) failed: {}", failures.len(), failures.join(", "));
        Ok(ExitCode::FAILURE)
    }
}
