//! The registry of fusion models behind `mmif fuse`: networks that need weights and
//! weight-free methods, each mapping the named sources to its own inputs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mmif_io::{Plane, Quantize};
use mmif_nn::cddfuse::{CddFuse, Residual};
use mmif_nn::emma::{Tiling, Ufuser};
use mmif_nn::film::Film;
use mmif_nn::{Device, weights};

use crate::pairs::Task;
use crate::text::{TEXT_HELP, TextFeatures};

/// One entry of `mmif models`.
pub struct ModelInfo {
    pub name: &'static str,
    pub tasks: &'static str,
    pub inputs: &'static str,
    pub weights: &'static str,
    pub about: &'static str,
}

/// The networks; weight-free methods come from `mmif_classic::all()`.
pub const NETWORKS: &[ModelInfo] = &[
    ModelInfo {
        name: "cddfuse",
        tasks: "IVF, MIF",
        inputs: "VIS side = visible (IVF) or MRI (MIF); IR side = the other source",
        weights: "CDDFuse_IVF.pth / CDDFuse_MIF.pth (official), or .safetensors",
        about: "CDDFuse (Zhao et al., CVPR 2023); --residual vis|sum|none",
    },
    ModelInfo {
        name: "emma",
        tasks: "IVF, MIF",
        inputs: "i side = infrared (IVF) or CT/PET/SPECT (MIF); v side = visible (IVF) or MRI (MIF)",
        weights: "EMMA.pth (official), or .safetensors",
        about: "EMMA (Zhao et al., CVPR 2024); --tiling official|pad|tile, --tile N, --overlap K",
    },
    ModelInfo {
        name: "film",
        tasks: "all",
        inputs: "imageA = ir / mri / over / near, imageB = vis / func / under / far; text features --text / --text-dir",
        weights: "IVF.pth / MIF.pth / MEF.pth / MFF.pth (official), the Jittor .pkl, or .safetensors",
        about: "FILM (Zhao et al., ICML 2024): fusion guided by the scene's text features (T×768 .npy)",
    },
];

/// Whether the model named `name` is guided by per-pair text features.
pub fn uses_text(name: &str) -> bool {
    name == "film"
}

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

/// A model ready to fuse pairs.
pub trait Fuser {
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
}

/// Builds the model named `name`.
pub fn build(name: &str, weights_path: Option<&Path>, opts: &ModelOptions, device: &Device) -> Result<Box<dyn Fuser>> {
    if !opts.params.is_empty() && NETWORKS.iter().any(|n| n.name == name) {
        bail!("--param is for weight-free methods; `{name}` is a network (see `mmif models`)");
    }
    match name {
        "cddfuse" => {
            let path = need_weights(name, weights_path)?;
            let net = weights::load_file(CddFuse::new(device), &path, None, device)?;
            let mif_checkpoint =
                path.file_name().is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().contains("mif"));
            Ok(Box::new(CddFuser { net, residual: opts.residual, mif_checkpoint, device: device.clone() }))
        }
        "emma" => {
            let path = need_weights(name, weights_path)?;
            let net = weights::load_file(Ufuser::new(device), &path, None, device)?;
            Ok(Box::new(EmmaFuser { net, tiling: opts.tiling.unwrap_or_default(), device: device.clone() }))
        }
        "film" => {
            let path = need_weights(name, weights_path)?;
            let net = weights::load_file(Film::new(device), &path, None, device)?;
            Ok(Box::new(FilmFuser { net, device: device.clone() }))
        }
        other => {
            let spec = match (other, opts.weight, opts.levels) {
                ("weighted", Some(w), _) => format!("weighted:{w}"),
                ("lp" | "dwt", _, Some(n)) => format!("{other}:{n}"),
                _ => other.to_string(),
            };
            let mut method: mmif_classic::Method =
                spec.parse().map_err(|e| anyhow::anyhow!("{e} (`mmif models` lists every model)"))?;
            for kv in &opts.params {
                let (k, v) = kv.split_once('=').with_context(|| format!("--param expects KEY=VALUE, got `{kv}`"))?;
                method.set_param(k, v).map_err(|e| anyhow::anyhow!("{e} (`mmif models` lists the parameters)"))?;
            }
            if let Some(w) = weights_path {
                bail!("`{other}` is weight-free; --weights {} is not used by it", w.display());
            }
            Ok(Box::new(Classic(method)))
        }
    }
}

/// Like [`build`], but a network without `--weights` gets random weights (for timing only).
pub fn build_for_bench(
    name: &str,
    weights_path: Option<&Path>,
    opts: &ModelOptions,
    device: &Device,
) -> Result<Box<dyn Fuser>> {
    if weights_path.is_some() {
        return build(name, weights_path, opts, device);
    }
    Ok(match name {
        "cddfuse" => Box::new(CddFuser {
            net: CddFuse::new(device),
            residual: None,
            mif_checkpoint: false,
            device: device.clone(),
        }),
        "emma" => Box::new(EmmaFuser {
            net: Ufuser::new(device),
            tiling: opts.tiling.unwrap_or_default(),
            device: device.clone(),
        }),
        "film" => Box::new(FilmFuser { net: Film::new(device), device: device.clone() }),
        _ => return build(name, weights_path, opts, device),
    })
}

fn need_weights(name: &str, path: Option<&Path>) -> Result<PathBuf> {
    path.map(Path::to_path_buf).with_context(|| {
        format!(
            "`{name}` needs its weights: pass --weights FILE (the official checkpoint, see README.md § Checkpoints)"
        )
    })
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
        let (vis, ir) = if task == Task::Mif { (a, b) } else { (b, a) };
        let k = 1.0 / 255.0;
        let vis = mmif_nn::plane_to_tensor(vis, k, &self.device);
        let ir = mmif_nn::plane_to_tensor(ir, k, &self.device);
        let residual = self.residual.unwrap_or(match (task, self.mif_checkpoint) {
            (Task::Mif, true) => Residual::None,
            (Task::Mif, false) => Residual::Sum,
            _ => Residual::Vis,
        });
        Ok(mmif_nn::tensor_to_plane(self.net.forward(vis, ir, residual)))
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
        let (i, v) = if task == Task::Mif { (b, a) } else { (a, b) };
        let k = 1.0 / 255.0;
        let i = mmif_nn::plane_to_tensor(i, k, &self.device);
        let v = mmif_nn::plane_to_tensor(v, k, &self.device);
        Ok(mmif_nn::tensor_to_plane(self.net.fuse(i, v, self.tiling)?))
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
        let k = 1.0 / 255.0;
        let image_a = mmif_nn::plane_to_tensor(a, k, &self.device);
        let image_b = mmif_nn::plane_to_tensor(b, k, &self.device);
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

/// `mmif models`.
pub fn print_models() -> Result<std::process::ExitCode> {
    println!("{:<10} {:<9} {:<8} about", "model", "tasks", "weights");
    for m in NETWORKS {
        println!("{:<10} {:<9} {:<8} {}", m.name, m.tasks, "needed", m.about);
        println!("{:<29} inputs: {}", "", m.inputs);
        println!("{:<29} weights: {}", "", m.weights);
    }
    for m in mmif_classic::all() {
        println!("{:<10} {:<9} {:<8} {}", m.name, "any", "none", m.description);
        println!("{:<29} {}", "", m.citation);
        println!("{:<29} speed at 640x480: {}", "", m.speed);
        for p in &m.params {
            println!("{:<29} --param {}={}  ({})", "", p.key, p.value, p.help);
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
