//! One pair of decoded sources through a [`Fuser`], as `mmif fuse` does it: the size check, the
//! fusion of the luma, the official min-max normalisation of network outputs (unless `raw`), the
//! chroma of the colour source put back, 8-bit quantisation as the model's official script saves;
//! or, for the weight-free methods with `--color channels`, the RGB channels fused as VIFB's code
//! does ([`fuse_channels`]).

use anyhow::{Result, bail};
use image::DynamicImage;
use mmif_io::{Chroma, Loaded, Plane, Quantize};
use mmif_nn::emma::Tiling;

use crate::Task;
use crate::models::Fuser;
use crate::registry::Model;
use crate::text::TextFeatures;

/// The weight-free method `mmif fuse` uses when no model is named: the best measured one of the
/// task's kind (`mmif_classic::default_for`).
pub fn default_model(task: Task) -> Model {
    let kind = match task {
        Task::Ivf => mmif_classic::TaskKind::InfraredVisible,
        Task::Mif => mmif_classic::TaskKind::Medical,
        Task::Mef => mmif_classic::TaskKind::Exposure,
        Task::Mff => mmif_classic::TaskKind::Focus,
        Task::Generic => mmif_classic::TaskKind::Other,
    };
    Model::Classic(mmif_classic::default_for(kind).to_string())
}

/// EMMA's procedure for sizes that are not multiples of 32 (`--tiling`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum TilingMode {
    Official,
    Pad,
    Tile,
}

impl std::str::FromStr for TilingMode {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "official" => TilingMode::Official,
            "pad" => TilingMode::Pad,
            "tile" => TilingMode::Tile,
            _ => bail!("unknown tiling `{s}`: expected official, pad or tile"),
        })
    }
}

/// The EMMA tiling from the mode, the tile side and the overlap (a side or an overlap alone
/// implies `tile`; defaults 512 and 64).
pub fn tiling(mode: Option<TilingMode>, tile: Option<usize>, overlap: Option<usize>) -> Result<Option<Tiling>> {
    let sized = tile.is_some() || overlap.is_some();
    match mode {
        None if !sized => Ok(None),
        Some(TilingMode::Official) | Some(TilingMode::Pad) if sized => {
            bail!("--tile and --overlap are for --tiling tile")
        }
        Some(TilingMode::Official) => Ok(Some(Tiling::Official)),
        Some(TilingMode::Pad) => Ok(Some(Tiling::Pad)),
        None | Some(TilingMode::Tile) => {
            let t = Tiling::Tile { size: tile.unwrap_or(512), overlap: overlap.unwrap_or(64) };
            t.validate()?;
            Ok(Some(t))
        }
    }
}

/// How CDDFuse runs on an image (`--bands`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Bands {
    /// The whole image in one pass when its estimated peak memory fits the memory available,
    /// bands of rows otherwise (their height chosen from a memory budget).
    #[default]
    Auto,
    /// Always the whole image in one pass.
    Off,
    /// Always bands of rows, their height chosen from the memory budget.
    On,
    /// Bands of this many rows.
    Rows(usize),
}

impl std::str::FromStr for Bands {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Bands::Auto,
            "off" => Bands::Off,
            "on" => Bands::On,
            n => match n.parse::<usize>() {
                Ok(rows) if rows > 0 => Bands::Rows(rows),
                _ => return Err(format!("`{s}` is not auto, off, on or a number of rows (at least 1)")),
            },
        })
    }
}

/// Checks that two sources (named `a` and `b` in the message) can be fused: same size.
pub fn check_same_size(a: &str, pa: &Plane, b: &str, pb: &Plane) -> Result<()> {
    if !pa.same_size(pb) {
        bail!(
            "the sources differ in size: {a} is {}x{}, {b} is {}x{} (width x height); register and crop them to one size first",
            pa.width,
            pa.height,
            pb.width,
            pb.height
        );
    }
    Ok(())
}

/// Chroma for the fused image: that of the colour source, or, when both are in colour (MEF,
/// MFF), each pixel's Cr/Cb weighted by its distance from neutral grey.
pub fn fused_chroma(a: &Loaded, b: &Loaded) -> Option<Chroma> {
    match (&a.color, &b.color) {
        (None, None) => None,
        (Some(c), None) | (None, Some(c)) => Some(c.clone()),
        (Some(ca), Some(cb)) => {
            let mix = |x: &Plane, y: &Plane| {
                let data = x
                    .data
                    .iter()
                    .zip(&y.data)
                    .map(|(&p, &q)| {
                        let (wp, wq) = ((p - 128.0).abs(), (q - 128.0).abs());
                        if wp + wq == 0.0 { 128.0 } else { (p * wp + q * wq) / (wp + wq) }
                    })
                    .collect();
                Plane::new(x.width, x.height, data)
            };
            Some(Chroma { cr: mix(&ca.cr, &cb.cr), cb: mix(&ca.cb, &cb.cb) })
        }
    }
}

/// The official min-max normalisation to [0, 1] (a constant image becomes 0).
pub fn normalise(p: Plane) -> Plane {
    let (min, max) = p.data.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let range = max - min;
    let data = p.data.iter().map(|&v| if range > 0.0 { (v - min) / range } else { 0.0 }).collect();
    Plane::new(p.width, p.height, data)
}

/// How the weight-free methods fuse colour sources (`--color`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColorMode {
    /// Fuse the gray images and keep the colour source's chroma (mmif's way, and the networks').
    #[default]
    Luma,
    /// Fuse the RGB channels as VIFB's MATLAB code does ([`Fuser::fuse_channels`]).
    Channels,
}

impl std::str::FromStr for ColorMode {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "luma" => ColorMode::Luma,
            "channels" => ColorMode::Channels,
            _ => bail!("unknown colour mode `{s}`: expected luma or channels"),
        })
    }
}

/// How a pair is fused beyond the model itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct Conventions {
    /// Skip the official min-max normalisation of network outputs.
    pub raw: bool,
    /// Gray output even when a source is in colour.
    pub gray: bool,
    /// How colour sources are fused.
    pub color: ColorMode,
}

impl Conventions {
    /// Refuses `--color channels` for a network (they fuse the luma and keep the chroma).
    pub fn check(&self, model: &Model) -> Result<()> {
        if self.color == ColorMode::Channels && model.network().is_some() {
            bail!("--color channels is for weight-free methods; networks fuse the luma and keep the chroma");
        }
        Ok(())
    }

    /// Whether a pair with these sources is fused channel by channel ([`fuse_channels`]): in
    /// [`ColorMode::Channels`], without `gray`, when a source is in colour.
    pub fn by_channels(&self, a: &Loaded, b: &Loaded) -> bool {
        self.color == ColorMode::Channels && !self.gray && (a.color.is_some() || b.color.is_some())
    }
}

/// The channels [`fuse_channels`] takes of a decoded source: its gray plane when it is gray
/// (`loaded.color` is `None`), else its R, G and B planes on the 0..=255 scale from `rgb` (only
/// called for a colour source).
pub fn source_channels(loaded: &Loaded, rgb: impl FnOnce() -> Result<[Plane; 3]>) -> Result<Vec<Plane>> {
    match loaded.color {
        None => Ok(vec![loaded.gray.clone()]),
        Some(_) => Ok(rgb()?.into()),
    }
}

/// A fused image: the fused luma on the 0..=1 scale, the chroma to put back (if any) and how the
/// model's official script quantises 8-bit outputs.
#[derive(Clone, Debug)]
pub struct Fused {
    pub y: Plane,
    pub chroma: Option<Chroma>,
    pub quantize: Quantize,
    /// The colour image fused channel by channel ([`fuse_channels`]), `[R, G, B]` on the 0..=1
    /// scale; `y` is then its gray image and `chroma` is `None`.
    pub rgb: Option<[Plane; 3]>,
}

impl Fused {
    /// The colour image `[R, G, B]` on the 0..=255 scale (unclamped), if there is one.
    pub fn rgb255(&self) -> Option<[Plane; 3]> {
        if let Some(rgb) = &self.rgb {
            return Some(rgb.clone().map(|p| p.scale(255.0)));
        }
        self.chroma.as_ref().map(|c| mmif_io::compose_color(&self.y.clone().scale(255.0), c))
    }
}

/// Checks `model`'s estimated peak memory on a `width × height` pair against the memory this
/// process may use ([`crate::memory::check`]) when `enforce`; returns what the model chose for that
/// size on its own (e.g. CDDFuse's bands), to tell the user. `what` names the model in the error,
/// `skip` says how to run anyway.
pub fn check_memory(
    model: &dyn Fuser,
    what: &str,
    (width, height): (usize, usize),
    enforce: bool,
    skip: &str,
) -> Result<Option<String>> {
    let Some(est) = model.peak(width, height) else { return Ok(None) };
    if enforce {
        crate::memory::check(what, width, height, &est, skip)?;
    }
    Ok(est.note)
}

/// Fuses two decoded sources of one size (checked by the caller, [`check_same_size`]) as
/// `mmif fuse` does: the luma through `model` (with the pair's text features for FILM), min-max
/// normalised when the model's official procedure does it and `raw` is off, and the chroma of
/// the colour source(s) unless `gray`.
pub fn fuse_loaded(
    model: &dyn Fuser,
    task: Task,
    a: &Loaded,
    b: &Loaded,
    text: Option<&TextFeatures>,
    conv: Conventions,
) -> Result<Fused> {
    let mut y = model.fuse_text(task, &a.gray, &b.gray, text)?;
    if model.min_max() && !conv.raw {
        y = normalise(y);
    }
    let chroma = if conv.gray { None } else { fused_chroma(a, b) };
    Ok(Fused { y, chroma, quantize: model.quantize(), rgb: None })
}

/// The R, G and B planes of decoded pixels on the 0..=255 scale with
/// [`mmif_io::image_io::from_pixels`]'s conventions (8-bit values as they are, 16-bit scaled, float ×255; alpha dropped; a gray image
/// gives its value three times), for fusing the channels of a colour image.
pub fn rgb_planes(img: &DynamicImage) -> [Plane; 3] {
    let scale16 = |v: u16| (f64::from(v) * 255.0 / 65535.0) as f32;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let planes =
        |ch: usize, raw: Vec<f32>| [0, 1, 2].map(|c| Plane::new(w, h, raw.chunks_exact(ch).map(|p| p[c]).collect()));
    match img {
        DynamicImage::ImageRgb8(b) => planes(3, b.as_raw().iter().map(|&v| f32::from(v)).collect()),
        DynamicImage::ImageRgba8(b) => planes(4, b.as_raw().iter().map(|&v| f32::from(v)).collect()),
        DynamicImage::ImageRgb16(b) => planes(3, b.as_raw().iter().map(|&v| scale16(v)).collect()),
        DynamicImage::ImageRgba16(b) => planes(4, b.as_raw().iter().map(|&v| scale16(v)).collect()),
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageLumaA8(_) => {
            planes(3, img.to_rgb8().as_raw().iter().map(|&v| f32::from(v)).collect())
        }
        DynamicImage::ImageLuma16(_) | DynamicImage::ImageLumaA16(_) => {
            planes(3, img.to_rgb16().as_raw().iter().map(|&v| scale16(v)).collect())
        }
        other => planes(3, other.to_rgb32f().as_raw().iter().map(|&v| v * 255.0).collect()),
    }
}

/// Fuses the channels of two sources ([`source_channels`]; 1 or 3 each, 0..=255 scale, one
/// size) with [`Fuser::fuse_channels`] (`--color channels`): a colour image when three channels
/// come out, else a gray one.
pub fn fuse_channels(model: &dyn Fuser, task: Task, a: &[Plane], b: &[Plane]) -> Result<Fused> {
    let mut out = model.fuse_channels(task, a, b)?;
    let quantize = model.quantize();
    match out.len() {
        1 => Ok(Fused { y: out.remove(0), chroma: None, quantize, rgb: None }),
        3 => {
            let [r, g, b] = [&out[0], &out[1], &out[2]];
            let y = r
                .data
                .iter()
                .zip(&g.data)
                .zip(&b.data)
                .map(|((&r, &g), &b)| mmif_io::image_io::gray_from_rgb(r, g, b))
                .collect();
            let y = Plane::new(r.width, r.height, y);
            let rgb: [Plane; 3] = out.try_into().map_err(|_| anyhow::anyhow!("three channels expected"))?;
            Ok(Fused { y, chroma: None, quantize, rgb: Some(rgb) })
        }
        n => bail!("the model returned {n} channels; 1 or 3 expected"),
    }
}
