//! `mmif sense`: run one of EMMA's pseudo-sensors (UNet5 `Ai`: image → infrared-like,
//! `Av`: image → visible-like) on an image.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use mmif_nn::emma::UNet5;
use mmif_nn::weights;

use crate::fuse::{check_output, write_fused};
use crate::registry::{NETWORKS, Network};

#[derive(Args, Debug)]
pub struct SenseArgs {
    /// Pseudo-sensor: emma-ai (infrared, Ai.pth) or emma-av (visible, Av.pth)
    #[arg(long, short = 'm', value_parser = sensor_parser())]
    pub model: Network,
    /// Its checkpoint: official Ai.pth / Av.pth, or .safetensors
    #[arg(long, short = 'w', value_name = "FILE")]
    pub weights: PathBuf,
    /// Input image (a colour image is read as gray, as the official scripts do)
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: PathBuf,
    /// Output: .png (8-bit), .tif/.tiff (16-bit) or .npy (float32 in [0,1]); gray, not normalised
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Overwrite an existing output file
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub device: crate::device::DeviceArgs,
}

/// `-m`: the networks of the registry that map one image (the pseudo-sensors).
fn sensor_parser() -> impl clap::builder::TypedValueParser<Value = Network> {
    use clap::builder::TypedValueParser;
    let names: Vec<&'static str> = NETWORKS.iter().filter(|n| !n.fuses).map(|n| n.network.name()).collect();
    clap::builder::PossibleValuesParser::new(names)
        .map(|name| NETWORKS.iter().find(|n| n.network.name() == name).expect("a listed name").network)
}

pub fn run(args: &SenseArgs) -> Result<ExitCode> {
    check_output(&args.output, &[&args.input], args.force)?;
    let image = mmif_io::read_image(&args.input)?;
    let device = args.device.device()?;
    let net = weights::load_file(UNet5::new(&device), &args.weights, None, &device)?;
    let t = Instant::now();
    let x = mmif_nn::plane_to_tensor(&image.gray, 1.0 / 255.0, &device);
    let out = mmif_nn::tensor_to_plane(net.sense(x)?);
    write_fused(&args.output, out, None, mmif_io::Quantize::default())?;
    eprintln!("mmif: wrote {} ({}, {:.2} s)", args.output.display(), args.model, t.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
