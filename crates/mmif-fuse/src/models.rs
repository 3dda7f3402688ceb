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
use crate::memory::{self, Estimate, PeakModel};
use crate::pipeline::Bands;
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
    /// CDDFuse: whole image or bands of rows (`None`: [`Bands::Auto`]).
    pub bands: Option<Bands>,
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
    /// Fuses the channels of two sources (1 for a gray source, 3 for RGB; 0..=255 scale, same
    /// size) into channels on the 0..=1 scale (`--color channels`): channel `c` of `a` with
    /// channel `c` of `b`, a gray source taking part in every channel. The weight-free methods
    /// fuse as VIFB's code does ([`mmif_classic::Method::fuse_color`]: jointly for IFEVIP and GTF).
    fn fuse_channels(&self, task: Task, a: &[Plane], b: &[Plane]) -> Result<Vec<Plane>> {
        if a.is_empty() || b.is_empty() {
            bail!("a source without channels");
        }
        let n = a.len().max(b.len());
        (0..n).map(|c| self.fuse(task, a.get(c).unwrap_or(&a[0]), b.get(c).unwrap_or(&b[0]))).collect()
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
    if opts.bands.is_some() && network != Network::Cddfuse {
        bail!("--bands is for cddfuse; `{network}` does not run in bands");
    }
    let path = need_weights(network, weights_path)?;
    Ok(match network {
        Network::Cddfuse => {
            let net = weights::load_file(CddFuse::new(device), &path, None, device)?;
            let mif_checkpoint =
                path.file_name().is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().contains("mif"));
            let bands = opts.bands.unwrap_or_default();
            Box::new(CddFuser { net, residual: opts.residual, mif_checkpoint, bands, device: device.clone() })
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
            bands: opts.bands.unwrap_or_default(),
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
    bands: Bands,
    device: Device,
}

/// CDDFuse in bands: the working memory the automatic band height aims at (the bands with
/// their halo rows; the whole-image inputs and output come on top, [`CDDFUSE_BANDED_PEAK`]).
const CDDFUSE_BAND_BUDGET: u64 = 2_000_000_000;

/// CDDFuse in bands: peak bytes for a `width × height` image with bands of `rows` rows and
/// `halo` halo rows = `base + per_pixel · width · height + BAND_BYTES_PER_PIXEL · width · (rows
/// + 2 halo)`. The band part is the slope of `mmif bench --bands 32` between widths 256 and 1024
/// at height 96 (91.4 → 308.4 MB over 86 × 768 band pixels, rounded up); the image part counts
/// the pipeline's full-size buffers (decoded planes, input tensors, output copies, 8-bit buffer)
/// (`docs/hostile_inputs.md`).
const CDDFUSE_BANDED_PEAK: PeakModel = PeakModel { base: 17_000_000, per_pixel: 64 };
const CDDFUSE_BAND_BYTES_PER_PIXEL: u64 = 3300;

/// The fewest rows per band the automatic height picks: thinner bands spend most of their work
/// on halo rows.
const CDDFUSE_MIN_ROWS: usize = 8;

/// How CDDFuse runs on a `width × height` pair: `None` for the whole image, or the rows per band.
/// `limit` is the memory this process may use (`None` when unknown: the whole image unless bands
/// are asked for); `halo` the halo rows of the last pass.
fn cddfuse_rows(bands: Bands, width: usize, height: usize, halo: usize, limit: Option<u64>) -> Option<usize> {
    let budget_rows = || {
        let per_row = CDDFUSE_BAND_BYTES_PER_PIXEL.saturating_mul(width as u64).max(1);
        ((CDDFUSE_BAND_BUDGET / per_row) as usize).saturating_sub(2 * halo).max(CDDFUSE_MIN_ROWS)
    };
    let whole = || peak_model(Network::Cddfuse).bytes((width * height) as u64);
    let rows = match bands {
        Bands::Off => None,
        Bands::Rows(r) => Some(r),
        Bands::On => Some(budget_rows()),
        Bands::Auto => limit.is_some_and(|l| whole() > l).then(budget_rows),
    };
    rows.filter(|&r| r < height)
}

/// CDDFuse's estimated peak bytes with bands of `rows` rows (`None`: the whole image).
fn cddfuse_peak(width: usize, height: usize, rows: Option<usize>, halo: usize) -> u64 {
    let pixels = (width * height) as u64;
    match rows {
        None => peak_model(Network::Cddfuse).bytes(pixels),
        Some(r) => {
            let band = (r + 2 * halo).min(height) as u64 * width as u64;
            CDDFUSE_BANDED_PEAK.bytes(pixels).saturating_add(CDDFUSE_BAND_BYTES_PER_PIXEL.saturating_mul(band))
        }
    }
}

impl CddFuser {
    /// The halo rows of the last pass in bands.
    fn halo(&self) -> usize {
        self.net.band_halo(usize::MAX)
    }

    fn rows(&self, width: usize, height: usize) -> Option<usize> {
        cddfuse_rows(self.bands, width, height, self.halo(), memory::limit())
    }
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
        let out = match self.rows(a.width, a.height) {
            None => self.net.fuse(vis, ir, residual)?,
            Some(rows) => self.net.fuse_bands(vis, ir, residual, rows)?,
        };
        Ok(mmif_nn::tensor_to_plane(out))
    }

    fn peak(&self, width: usize, height: usize) -> Option<Estimate> {
        let rows = self.rows(width, height);
        let remedy = match rows {
            None => "run it in bands of rows, whose memory --bands ROWS bounds (--bands on or auto)".into(),
            Some(r) => format!("lower --bands (now {r} rows per band)"),
        };
        let note = match (self.bands, rows) {
            (Bands::Auto, Some(r)) => Some(format!(
                "the whole {width}×{height} image would need about {:.1} GB: fusing it in bands of {r} rows \
                 (the same result, several times the time; --bands off to refuse instead)",
                cddfuse_peak(width, height, None, 0) as f64 / 1e9
            )),
            _ => None,
        };
        Some(Estimate { bytes: cddfuse_peak(width, height, rows, self.halo()), remedy, note })
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
                note: None,
            },
            _ => Estimate {
                bytes: model.bytes(pixels),
                remedy: "use --tiling tile, whose memory --tile N bounds".into(),
                note: None,
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
            note: None,
        })
    }
}

struct Classic(mmif_classic::Method);

impl Fuser for Classic {
    fn fuse(&self, _task: Task, a: &Plane, b: &Plane) -> Result<Plane> {
        Ok(self.0.fuse(a, b)?.scale(1.0 / 255.0))
    }

    fn fuse_channels(&self, _task: Task, a: &[Plane], b: &[Plane]) -> Result<Vec<Plane>> {
        Ok(self.0.fuse_color(a, b)?.into_iter().map(|p| p.scale(1.0 / 255.0)).collect())
    }

    fn min_max(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cddfuse_runs_whole_when_the_estimate_fits_and_in_bands_otherwise() {
        let (w, h, halo) = (4000, 3000, 27);
        let whole = cddfuse_peak(w, h, None, halo);
        assert_eq!(cddfuse_rows(Bands::Auto, w, h, halo, Some(whole)), None);
        assert_eq!(cddfuse_rows(Bands::Auto, w, h, halo, None), None, "unknown memory: whole");
        let rows = cddfuse_rows(Bands::Auto, w, h, halo, Some(whole - 1)).expect("bands");
        assert!(rows >= CDDFUSE_MIN_ROWS && rows < h, "{rows}");
        // The automatic height keeps the bands within the budget, and the 4000×3000 pair under 4 GB.
        let band = CDDFUSE_BAND_BYTES_PER_PIXEL * ((rows + 2 * halo) * w) as u64;
        assert!(band <= CDDFUSE_BAND_BUDGET, "{band}");
        assert!(cddfuse_peak(w, h, Some(rows), halo) < 4_000_000_000);
        assert_eq!(cddfuse_rows(Bands::On, w, h, halo, Some(u64::MAX)), Some(rows));
        assert_eq!(cddfuse_rows(Bands::Off, w, h, halo, Some(0)), None);
        assert_eq!(cddfuse_rows(Bands::Rows(64), w, h, halo, None), Some(64));
        // Bands as high as the image are the whole image.
        assert_eq!(cddfuse_rows(Bands::Rows(h), w, h, halo, Some(0)), None);
        assert_eq!(cddfuse_rows(Bands::On, 64, 96, halo, None), None);
        // A very wide image still gets bands of the minimum height.
        assert_eq!(cddfuse_rows(Bands::On, 1_000_000, 100, halo, None), Some(CDDFUSE_MIN_ROWS));
    }

    #[test]
    fn bands_parse_from_the_command_line() {
        assert_eq!("auto".parse(), Ok(Bands::Auto));
        assert_eq!("OFF".parse(), Ok(Bands::Off));
        assert_eq!("on".parse(), Ok(Bands::On));
        assert_eq!("128".parse(), Ok(Bands::Rows(128)));
        for bad in ["0", "-3", "many", ""] {
            assert!(bad.parse::<Bands>().is_err(), "{bad}");
        }
    }
}
