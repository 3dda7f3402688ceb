//! Which device the networks run on: `cpu`, `cuda[:N]` or `wgpu[:N]`, as the command line and the
//! tests name them.
//!
//! `cpu` is burn's `flex` backend with mmif's hand-written kernels; `wgpu` (Vulkan, Metal, DX12,
//! or Mesa's software Vulkan driver without a GPU) and `cuda` are burn's GPU backends, compiled
//! in by this crate's features of the same names. On them every network runs on burn's own ops
//! (the CPU kernels apply to `flex` tensors only).

use burn::tensor::Device;

/// A device named on the command line that this build cannot open.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}`: expected cpu, cuda[:N] or wgpu[:N]")]
    Unknown(String),
    #[error("bad device index in `{0}`: expected a number after the colon, e.g. cuda:0")]
    BadIndex(String),
    #[error("the cpu device has no index (got `{0}`)")]
    CpuIndex(String),
    #[error("--precision {0} is for GPU devices (cuda, wgpu); the CPU computes in f32")]
    PrecisionOnCpu(&'static str),
    #[error("{device} cannot compute in {precision}")]
    PrecisionUnsupported { device: String, precision: &'static str },
    #[error("{device}: cannot set the precision to {precision}: {reason}")]
    PrecisionLocked { device: String, precision: &'static str, reason: String },
    #[error(
        "this build of mmif has no `{0}` backend: rebuild with `cargo build --release --features {0}` \
         (see README, \"GPUs\")"
    )]
    NotBuilt(&'static str),
}

/// The backend a device name selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Cpu,
    Cuda,
    Wgpu,
}

/// Parses `cpu`, `cuda`, `cuda:N`, `wgpu` or `wgpu:N` into a backend and an optional index.
pub fn parse_spec(spec: &str) -> Result<(Backend, Option<usize>), DeviceError> {
    let (name, index) = match spec.split_once(':') {
        Some((name, idx)) => (name, Some(idx.parse::<usize>().map_err(|_| DeviceError::BadIndex(spec.into()))?)),
        None => (spec, None),
    };
    let backend = match name.to_ascii_lowercase().as_str() {
        "cpu" | "flex" => Backend::Cpu,
        "cuda" => Backend::Cuda,
        "wgpu" => Backend::Wgpu,
        _ => return Err(DeviceError::Unknown(spec.into())),
    };
    if backend == Backend::Cpu && index.is_some() {
        return Err(DeviceError::CpuIndex(spec.into()));
    }
    Ok((backend, index))
}

/// The device `spec` names (see [`parse_spec`]), or why this build cannot open it. `wgpu` is the
/// adapter wgpu prefers (a GPU before a software one; `CUBECL_WGPU_DEFAULT_DEVICE` overrides it),
/// `wgpu:N` the N-th discrete GPU; `cuda` is GPU 0. Opening is lazy: a missing driver shows on
/// the first tensor.
pub fn parse_device(spec: &str) -> Result<Device, DeviceError> {
    let (backend, index) = parse_spec(spec)?;
    match backend {
        Backend::Cpu => Ok(crate::cpu()),
        Backend::Cuda => cuda(index.unwrap_or(0)),
        Backend::Wgpu => wgpu(index),
    }
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device, DeviceError> {
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda(_index: usize) -> Result<Device, DeviceError> {
    Err(DeviceError::NotBuilt("cuda"))
}

#[cfg(feature = "wgpu")]
fn wgpu(index: Option<usize>) -> Result<Device, DeviceError> {
    use burn::tensor::DeviceKind;
    Ok(Device::wgpu(match index {
        Some(i) => DeviceKind::DiscreteGpu(i),
        None => DeviceKind::DefaultDevice,
    }))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu(_index: Option<usize>) -> Result<Device, DeviceError> {
    Err(DeviceError::NotBuilt("wgpu"))
}

/// The floating-point precision of inference: f32 everywhere, f16 or bf16 on GPU backends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    #[default]
    F32,
    F16,
    Bf16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        }
    }

    fn dtype(self) -> burn::tensor::FloatDType {
        match self {
            Precision::F32 => burn::tensor::FloatDType::F32,
            Precision::F16 => burn::tensor::FloatDType::F16,
            Precision::Bf16 => burn::tensor::FloatDType::BF16,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" => Ok(Precision::F32),
            "f16" | "fp16" | "half" => Ok(Precision::F16),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(format!("unknown precision `{s}`: expected f32, f16 or bf16")),
        }
    }
}

/// Makes `precision` the float type of every tensor later created on `device` (weights, inputs,
/// intermediates; values read back come out as f32). Call it before the first tensor exists on
/// the device; calling it again with the same precision is a no-op. f32 leaves the device as it
/// is; f16 and bf16 are refused on the CPU and on a device that lacks them.
pub fn set_precision(device: &mut Device, precision: Precision) -> Result<(), DeviceError> {
    if precision == Precision::F32 {
        return Ok(());
    }
    if is_cpu(device) {
        return Err(DeviceError::PrecisionOnCpu(precision.name()));
    }
    let dtype = precision.dtype();
    if !device.supports_dtype(dtype) {
        return Err(DeviceError::PrecisionUnsupported { device: describe(device), precision: precision.name() });
    }
    match device.configure(dtype) {
        Ok(()) => Ok(()),
        Err(_) if device.settings().float_dtype == dtype => Ok(()),
        Err(e) => Err(DeviceError::PrecisionLocked {
            device: describe(device),
            precision: precision.name(),
            reason: e.to_string(),
        }),
    }
}

/// Whether tensors on `device` are `flex` CPU tensors (autodiff or not).
pub fn is_cpu(device: &Device) -> bool {
    device.clone().inner() == crate::cpu()
}

/// The device for people: `cpu (burn flex, 2 threads)`, or the backend and the adapter's name
/// (`wgpu: llvmpipe (LLVM 15.0.6, 256 bits)`), which opens the device.
pub fn describe(device: &Device) -> String {
    if is_cpu(device) {
        return format!("cpu (burn flex, {} threads)", rayon::current_num_threads());
    }
    gpu_description(device)
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn gpu_description(device: &Device) -> String {
    let debug = format!("{:?}", device.clone().inner());
    let backend = if debug.contains("Cuda") {
        "cuda"
    } else if debug.contains("Wgpu") {
        "wgpu"
    } else {
        "gpu"
    };
    match device.identity() {
        Some(id) => format!("{backend}: {}", id.name),
        None => format!("{backend}: {debug}"),
    }
}

#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
fn gpu_description(device: &Device) -> String {
    format!("{device:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(parse_spec("cpu").unwrap(), (Backend::Cpu, None));
        assert_eq!(parse_spec("cuda:1").unwrap(), (Backend::Cuda, Some(1)));
        assert_eq!(parse_spec("WGPU").unwrap(), (Backend::Wgpu, None));
        assert!(matches!(parse_spec("tpu"), Err(DeviceError::Unknown(_))));
        assert!(matches!(parse_spec("cuda:x"), Err(DeviceError::BadIndex(_))));
        assert!(matches!(parse_spec("cpu:0"), Err(DeviceError::CpuIndex(_))));
        assert!(is_cpu(&parse_device("cpu").unwrap()));
        assert!(is_cpu(&parse_device("cpu").unwrap().autodiff()));
        assert_eq!("BF16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert!("f8".parse::<Precision>().is_err());
        let mut cpu = crate::cpu();
        assert!(set_precision(&mut cpu, Precision::F32).is_ok());
        assert!(matches!(set_precision(&mut cpu, Precision::F16), Err(DeviceError::PrecisionOnCpu("f16"))));
    }

    #[test]
    fn a_backend_not_built_names_its_feature() {
        for (spec, feature, built) in
            [("cuda", "cuda", cfg!(feature = "cuda")), ("wgpu:0", "wgpu", cfg!(feature = "wgpu"))]
        {
            match parse_device(spec) {
                Ok(dev) => assert!(built && !is_cpu(&dev), "{spec}"),
                Err(e) => {
                    assert!(!built, "{spec}: {e}");
                    assert!(e.to_string().contains(&format!("--features {feature}")), "{e}");
                }
            }
        }
    }
}
