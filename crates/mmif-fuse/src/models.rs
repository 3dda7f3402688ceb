//! The fusers behind `mmif fuse`, `mmif bench` and the Python package: each model of the
//! registry ([`crate::registry`]) built into a [`Fuser`] that maps the named sources to its own
//! inputs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mmif_io::{Plane, Quantize};
use mmif_nn::cddfuse::{CddFuse, Residual};
use mmif_nn::emma::{Tiling, Ufuser};
use mmif_nn::film::Film;
use mmif_nn::{Device, weights};

use crate::Task;
use crate::memory::{Estimate, PeakModel};
use crate::registry::{Model, Network};
use crate::text::{TEXT_HELP, TextFeatures};

/// Options that only some models use.
#[derive(Clone, Debug, Default)]
pub struct ModelOptions {
    pub residual: Option<Residual>,
    pub weight: Option<f32>,
    pub levels: Option<usize>,
    /// EMMA: how image sizes that are not multiples of 32 are handled.
    pub tiling: Option<Tiling>,
    /// Weight-free methods: `--param KEY=VALUE`, applied in order.
    pub params: Vec<String>,
}

/// A model ready to fuse pairs (shareable across threads: the Python package fuses with the GIL
/// released).
pub trait Fuser: Send + Sync {
    /// Fuses `a` and `b` (0..=255 scale, same size) into an image on the 0..=1 scale.
    fn fuse(&self, task: Task, a: &Plane, b: &Plane) -> Result<Plane>;
    /// Whether the official procedure min-max normalises the output.
    fn min_max(&self) -> bool;
    /// Fuses with the pair's text features; models that are not text-guided ignore them.
    fn fuse_text(&self, task: Task, a: &Plane, b: &Plane, _text: Option<&TextFeatures>) -> Result<Plane> {
        self.fuse(task, a, b)
    }
    /// How 8-bit outputs are quantised (the official script's rounding or truncation).
    fn quantize(&self) -> Quantize {
        Quantize::ImageIo
    }
    /// The estimated peak memory of fusing a `width × height` pair (networks; `None` for the
    /// weight-free methods, whose memory is a small multiple of the image's).
    fn peak(&self, _width: usize, _height: usize) -> Option<Estimate> {
        None
    }
}

/// The peak-memory model of a network (every fusing network has one).
fn peak_model(n: Network) -> PeakModel {
    n.info().peak.expect("every fusing network has a peak-memory model")
}

/// Bytes a pixel of the whole image costs outside a tile's pass: the two inputs, the output and
/// the blending weights of EMMA's tiling, as float32.
const TILED_BYTES_PER_PIXEL: u64 = 16;

/// Builds `model`; a network loads its weights from `weights_path`.
pub fn build(
    model: &Model,
    weights_path: Option<&Path>,
    opts: &ModelOptions,
    device: &Device,
) -> Result<Box<dyn Fuser>> {
    let network = match model {
        Model::Network(n) => *n,
        Model::Classic(spec) => return classic(spec, weights_path, opts),
    };
    if !opts.params.is_empty() {
        bail!("--param is for weight-free methods; `{network}` is a network (see `mmif models`)");
    }
    let path = need_weights(network, weights_path)?;
    Ok(match network {
        Network::Cddfuse => {
            let net = weights::load_file(CddFuse::new(device), &path, None, device)?;
            let mif_checkpoint =
                path.file_name().is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().contains("mif"));
            Box::new(CddFuser { net, residual: opts.residual, mif_checkpoint, device: device.clone() })
        }
        Network::Emma => {
            let net = weights::load_file(Ufuser::new(device), &path, None, device)?;
            Box::new(EmmaFuser { net, tiling: opts.tiling.unwrap_or_default(), device: device.clone() })
        }
        Network::Film => {
            let net = weights::load_file(Film::new(device), &path, None, device)?;
            Box::new(FilmFuser { net, device: device.clone() })
        }
        Network::EmmaAi | Network::EmmaAv => bail!("`{network}` maps one image: use `mmif sense`"),
    })
}

/// A weight-free method of `mmif_classic` from its textual specification.
fn classic(spec: &str, weights_path: Option<&Path>, opts: &ModelOptions) -> Result<Box<dyn Fuser>> {
    let spec = match (spec, opts.weight, opts.levels) {
        ("weighted", Some(w), _) => format!("weighted:{w}"),
        ("lp" | "dwt", _, Some(n)) => format!("{spec}:{n}"),
        _ => spec.to_string(),
    };
    let mut method: mmif_classic::Method =
        spec.parse().map_err(|e| anyhow::anyhow!("{e} (`mmif models` lists every model)"))?;
    for kv in &opts.params {
        let (k, v) = kv.split_once('=').with_context(|| format!("--param expects KEY=VALUE, got `{kv}`"))?;
        method.set_param(k, v).map_err(|e| anyhow::anyhow!("{e} (`mmif models` lists the parameters)"))?;
    }
    if let Some(w) = weights_path {
        bail!("`{spec}` is weight-free; --weights {} is not used by it", w.display());
    }
    Ok(Box::new(Classic(method)))
}

/// Like [`build`], but a network without `--weights` gets random weights (for timing only).
pub fn build_for_bench(
    model: &Model,
    weights_path: Option<&Path>,
    opts: &ModelOptions,
    device: &Device,
) -> Result<Box<dyn Fuser>> {
    let network = match (model, weights_path) {
        (Model::Network(n), None) => *n,
        _ => return build(model, weights_path, opts, device),
    };
    Ok(match network {
        Network::Cddfuse => Box::new(CddFuser {
            net: CddFuse::new(device),
            residual: None,
            mif_checkpoint: false,
            device: device.clone(),
        }),
        Network::Emma => Box::new(EmmaFuser {
            net: Ufuser::new(device),
            tiling: opts.tiling.unwrap_or_default(),
            device: device.clone(),
        }),
        Network::Film => Box::new(FilmFuser { net: Film::new(device), device: device.clone() }),
        Network::EmmaAi | Network::EmmaAv => bail!("`{network}` maps one image: use `mmif sense`"),
    })
}

fn need_weights(network: Network, path: Option<&Path>) -> Result<PathBuf> {
    path.map(Path::to_path_buf).with_context(|| {
        format!(
            "`{network}` needs its weights: pass --weights FILE (the official checkpoint, see README.md § Checkpoints)"
        )
    })
}

/// The networks' inputs: the planes (0..=255) as `1×1×H×W` tensors on the 0..=1 scale.
fn tensors(planes: [&Plane; 2], device: &Device) -> [mmif_nn::Tensor<4>; 2] {
    planes.map(|p| mmif_nn::plane_to_tensor(p, 1.0 / 255.0, device))
}

struct CddFuser {
    net: CddFuse,
    /// `None`: as the official scripts — `vis` for IVF; for medical pairs `none` with the MIF
    /// checkpoint (a file name containing "MIF") and `sum` with the IVF one.
    residual: Option<Residual>,
    mif_checkpoint: bool,
    device: Device,
}

impl Fuser for CddFuser {
    fn fuse(&self, task: Task, a: &Plane, b: &Plane) -> Result<Plane> {
        // The official scripts: visible (IVF) or MRI (MIF) is the VIS side, whose image the
        // decoder adds back; the infrared or functional image is the IR side.
        let [vis, ir] = tensors(if task == Task::Mif { [a, b] } else { [b, a] }, &self.device);
        let residual = self.residual.unwrap_or(match (task, self.mif_checkpoint) {
            (Task::Mif, true) => Residual::None,
            (Task::Mif, false) => Residual::Sum,
            _ => Residual::Vis,
        });
        Ok(mmif_nn::tensor_to_plane(self.net.fuse(vis, ir, residual)?))
    }

    fn peak(&self, width: usize, height: usize) -> Option<Estimate> {
        Some(Estimate {
            bytes: peak_model(Network::Cddfuse).bytes((width * height) as u64),
            remedy: "CDDFuse has no bounded-memory mode yet: fuse crops or a downscaled pair".into(),
        })
    }

    fn min_max(&self) -> bool {
        true
    }
}

struct EmmaFuser {
    net: Ufuser,
    tiling: Tiling,
    device: Device,
}

impl Fuser for EmmaFuser {
    fn fuse(&self, task: Task, a: &Plane, b: &Plane) -> Result<Plane> {
        // The official scripts: `i` is the infrared (IVF) or functional (MIF) image, `v` the
        // visible or MRI image. Source a is IR or MRI, b is VIS or the functional image.
        let [i, v] = tensors(if task == Task::Mif { [b, a] } else { [a, b] }, &self.device);
        Ok(mmif_nn::tensor_to_plane(self.net.fuse(i, v, self.tiling)?))
    }

    fn peak(&self, width: usize, height: usize) -> Option<Estimate> {
        let model = peak_model(Network::Emma);
        let pixels = (width * height) as u64;
        Some(match self.tiling {
            Tiling::Tile { size, .. } => Estimate {
                bytes: model
                    .bytes((size.min(width) * size.min(height)) as u64)
                    .saturating_add(TILED_BYTES_PER_PIXEL * pixels),
                remedy: format!("lower --tile (now {size})"),
            },
            _ => Estimate {
                bytes: model.bytes(pixels),
                remedy: "use --tiling tile, whose memory --tile N bounds".into(),
            },
        })
    }

    fn min_max(&self) -> bool {
        true
    }
}

struct FilmFuser {
    net: Film,
    device: Device,
}

impl Fuser for FilmFuser {
    fn fuse(&self, task: Task, a: &Plane, b: &Plane) -> Result<Plane> {
        self.fuse_text(task, a, b, None)
    }

    fn fuse_text(&self, _task: Task, a: &Plane, b: &Plane, text: Option<&TextFeatures>) -> Result<Plane> {
        let text = text.with_context(|| format!("no text features for FILM. {TEXT_HELP}"))?;
        // The official data script: imageA = IR / MRI / over-exposed / near-focused (source a),
        // imageB = VIS / CT-PET-SPECT / under-exposed / far-focused (source b), for every task.
        let [image_a, image_b] = tensors([a, b], &self.device);
        let text = mmif_nn::film::text_tensor(text.data.clone(), text.tokens, &self.device);
        Ok(mmif_nn::tensor_to_plane(self.net.forward(image_a, image_b, text)))
    }

    fn min_max(&self) -> bool {
        true
    }

    /// test.py: `(fused * 255).astype('uint8')`, i.e. truncation.
    fn quantize(&self) -> Quantize {
        Quantize::Truncate
    }

    fn peak(&self, width: usize, height: usize) -> Option<Estimate> {
        Some(Estimate {
            bytes: peak_model(Network::Film).bytes((width * height) as u64),
            remedy: "FILM's transformer blocks already run in bands, its other layers do not: fuse crops or a downscaled pair".into(),
        })
    }
}

struct Classic(mmif_classic::Method);

impl Fuser for Classic {
    fn fuse(&self, _task: Task, a: &Plane, b: &Plane) -> Result<Plane> {
        Ok(self.0.fuse(a, b)?.scale(1.0 / 255.0))
    }

    fn min_max(&self) -> bool {
        false
    }
}
