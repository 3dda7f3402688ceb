//! `mmif convert` and `mmif inspect`: checkpoint formats.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use mmif_io::SaveValue;

use crate::registry::{Layout, Network};

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Input checkpoint: PyTorch .pth, Jittor .pkl or .safetensors
    pub input: PathBuf,
    /// Output file: .safetensors, or the official layout of the network as PyTorch .pth
    /// (what the official test scripts load) or FILM's Jittor .pkl
    pub output: PathBuf,
    /// Output format (default: from the output's extension)
    #[arg(long, value_enum)]
    pub to: Option<Format>,
    /// The network, for the official layout (default: recognised from the tensor names)
    #[arg(long, short = 'm', value_enum)]
    pub model: Option<Network>,
    /// Keep only this top-level group (e.g. `model` of a FILM checkpoint); `module.` prefixes
    /// are always removed
    #[arg(long)]
    pub group: Option<String>,
    /// Overwrite an existing output
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Safetensors,
    Pth,
    Pkl,
}

fn ordered(sd: &mmif_nn::StateDict, prefix: &str, strip: &str) -> SaveValue {
    SaveValue::OrderedDict(
        sd.iter()
            .filter_map(|(k, t)| k.strip_prefix(strip).map(|k| (format!("{prefix}{k}"), SaveValue::Tensor(t.clone()))))
            .collect(),
    )
}

/// The official checkpoint layout of `network` (see [`Layout`]).
fn official_layout(network: Network, sd: &mmif_nn::StateDict, format: Format) -> Vec<(String, SaveValue)> {
    match network.info().layout {
        Layout::Groups(groups) => {
            groups.iter().map(|g| (g.to_string(), ordered(sd, "module.", &format!("{g}.")))).collect()
        }
        Layout::Bare => match ordered(sd, "", "") {
            SaveValue::OrderedDict(v) => v,
            _ => unreachable!("ordered() gives an OrderedDict"),
        },
        Layout::Model => {
            let prefix = if format == Format::Pth { "module." } else { "" };
            vec![("model".to_string(), ordered(sd, prefix, ""))]
        }
    }
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Checkpoint: PyTorch .pth, Jittor .pkl or .safetensors
    pub input: PathBuf,
}

pub fn run_convert(args: &ConvertArgs) -> Result<ExitCode> {
    if args.output.exists() && !args.force {
        bail!("{} exists; pass --force to overwrite it", args.output.display());
    }
    let ckpt = mmif_io::load_checkpoint(&args.input)?;
    let sd = mmif_nn::weights::canonicalize(&ckpt.tensors, args.group.as_deref());
    if sd.is_empty() {
        bail!(
            "{}: no tensors{}",
            args.input.display(),
            args.group.as_ref().map(|g| format!(" in group `{g}`")).unwrap_or_default()
        );
    }
    let ext = args.output.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let format = match (args.to, ext.as_deref()) {
        (Some(f), _) => f,
        (None, Some("pth" | "pt")) => Format::Pth,
        (None, Some("pkl")) => Format::Pkl,
        (None, Some("safetensors")) => Format::Safetensors,
        _ => bail!("{}: give --to safetensors|pth|pkl (the extension does not say)", args.output.display()),
    };
    if format == Format::Safetensors {
        mmif_io::save_safetensors(&args.output, &sd)?;
        eprintln!("mmif: wrote {} tensors to {}", sd.len(), args.output.display());
        return Ok(ExitCode::SUCCESS);
    }
    let model = match args.model {
        Some(m) => m,
        None => Network::recognise(&sd).ok_or_else(|| {
            anyhow::anyhow!("{}: cannot tell which network these weights are for; give --model", args.input.display())
        })?,
    };
    if format == Format::Pkl && model.info().layout != Layout::Model {
        bail!(
            "the Jittor .pkl layout exists for {} only (the Jittor port); got {model}",
            Network::names_with(|n| n.layout == Layout::Model)
        );
    }
    let root = official_layout(model, &sd, format);
    match format {
        Format::Pth => mmif_io::save_pth(&args.output, &root)?,
        _ => mmif_io::save_jittor_pkl(&args.output, &root)?,
    }
    eprintln!("mmif: wrote {} tensors in the official {model} layout to {}", sd.len(), args.output.display());
    Ok(ExitCode::SUCCESS)
}

pub fn run_inspect(args: &InspectArgs) -> Result<ExitCode> {
    let ckpt = mmif_io::load_checkpoint(&args.input)?;
    let mut params = 0usize;
    for (k, t) in &ckpt.tensors {
        println!("{k}\t{:?}\t{:?}", t.shape, t.dtype);
        params += t.shape.iter().product::<usize>();
    }
    for (k, v) in &ckpt.scalars {
        println!("{k}\t= {v}");
    }
    eprintln!("{} tensors, {params} values", ckpt.tensors.len());
    Ok(ExitCode::SUCCESS)
}
