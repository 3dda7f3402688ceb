//! `--device cpu|cuda[:N]|wgpu[:N]`: where networks run (fuse, sense, bench, text-encode with
//! `--precision`; train without it).

use anyhow::Result;
use clap::Args;
use mmif_nn::Device;
use mmif_nn::device::Precision;

const DEVICE_HELP: &str = "Device the networks run on: cpu, cuda[:N] (NVIDIA; a build with --features cuda) or \
wgpu[:N] (Vulkan, Metal, DX12; a build with --features wgpu). Weight-free methods run on the CPU";

/// `--device` and `--precision`, for inference.
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    #[arg(long, value_name = "DEVICE", default_value = "cpu", help = DEVICE_HELP)]
    pub device: String,
    /// Float precision of the networks on a GPU device: f32, f16 or bf16 (weights and activations;
    /// outputs are written as usual)
    #[arg(long, value_name = "P", default_value = "f32")]
    pub precision: Precision,
}

impl DeviceArgs {
    /// The device named by `--device` at `--precision`, or why this build cannot open it.
    pub fn device(&self) -> Result<Device> {
        let mut device = mmif_nn::device::parse_device(&self.device)?;
        mmif_nn::device::set_precision(&mut device, self.precision)?;
        Ok(device)
    }
}

/// `--device` alone, for training (always f32).
#[derive(Args, Debug, Clone)]
pub struct TrainDeviceArgs {
    #[arg(long, value_name = "DEVICE", default_value = "cpu", help = DEVICE_HELP)]
    pub device: String,
}

impl TrainDeviceArgs {
    pub fn device(&self) -> Result<Device> {
        Ok(mmif_nn::device::parse_device(&self.device)?)
    }
}
