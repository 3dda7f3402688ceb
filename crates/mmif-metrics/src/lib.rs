//! Fusion quality metrics in plain Rust, reproducing the official CDDFuse `Evaluator`
//! (`utils/Evaluator.py`) and scikit-image's `structural_similarity` number for number.
//!
//! # Images
//! A [`Gray`] is a borrowed, row-major, single-channel image of `f32` values on the 0..=255 scale,
//! exactly what the official scripts get from `image_read_cv2(path, 'GRAY')` (a rounded `float32`
//! array). Build one with [`Gray::new`]; it checks that the buffer matches the dimensions.
//!
//! # Numerics
//! The official code mixes dtypes, and this crate follows each metric's path:
//! - **f32 (numpy on a `float32` image):** SD, SF, AG, MSE, CC, PSNR, SCD and Qabf are computed
//!   with `f32` element-wise operations and numpy's pairwise `float32` summation (see `npy`), so the
//!   result is the same `float32` value numpy prints.
//! - **scikit-image SSIM on `float32`:** the uniform filter runs in `f64` and stores `f32`
//!   (as `scipy.ndimage` does); the SSIM map is `f32`; its mean is taken in `f64`.
//! - **f64:** EN (histogram of the rounded image), MI (scikit-learn's `mutual_info_score`, nats)
//!   and VIF (scipy `convolve2d` upcasts to `float64`).
//!
//! Agreement with the Python code is within 1e-6 relative: bit-exact for EN, SD, SF, AG, MSE, CC,
//! SCD and SSIM on 8-bit images, ~1e-12 for MI and VIF (summation order). The `float32`
//! transcendentals (`exp`, `arctan` in Qabf, `log10` in PSNR) are the correctly rounded values,
//! while numpy's SIMD kernels are within ~2 ulp of them, so Qabf and PSNR can differ by ~1e-7.
//!
//! # Speed
//! The images are streamed row by row (few image-sized temporaries: VIF's scaled copies, MI's labels),
//! VIF uses separable, symmetric Gaussian passes, and the hot loops are compiled for AVX-512 and
//! AVX2 as well as the baseline, chosen at run time (`simd`); every variant gives identical bits.
//! The functions are single-threaded: parallelise over images.
//!
//! # Entry points
//! One function per metric ([`en`], [`sd`], [`sf`], [`ag`], [`mi`], [`mse`], [`cc`], [`psnr`],
//! [`scd`], [`vif`], [`qabf`], [`ssim`]) and the checked dispatcher [`compute`]. The per-metric
//! functions panic on mismatched shapes or images below [`Metric::min_side`]; [`compute`] reports
//! those as [`MetricError`] instead.
//!
//! # MATLAB toolkits
//! [`toolkit`] reproduces the benchmark toolkits' MATLAB metrics (VIFB's 13: [`Vifb`]; MEFB's
//! 20: [`Mefb`]) on 8-bit gray or colour [`Image`]s as `imread` returns them, through
//! [`compute_image`]. They are [`Metric::Vifb`] and [`Metric::Mefb`] variants named
//! `vifb.<name>` and `mefb.<name>`, distinct from the evaluator's same-named metrics.

mod fmath;
mod mi;
mod npy;
mod qabf;
mod simd;
mod ssim;
mod stats;
pub mod toolkit;
mod vif;

use std::fmt;
use std::str::FromStr;

pub use mi::{mi, mutual_info};
pub use qabf::qabf;
pub use ssim::{ssim, ssim_pair};
pub use stats::{ag, cc, en, mse, psnr, scd, sd, sf};
pub use toolkit::{Extra, Image, Mefb, ToolkitError, Vifb};
pub use vif::{vif, vif_pair};

/// A borrowed single-channel image: `height` rows of `width` `f32` values, row-major,
/// on the 0..=255 scale (as `image_read_cv2(..., 'GRAY')` returns it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gray<'a> {
    width: usize,
    height: usize,
    data: &'a [f32],
}

impl<'a> Gray<'a> {
    /// Wraps `data` as a `width`×`height` image. Fails if the image is empty or
    /// `data.len() != width * height`.
    pub fn new(width: usize, height: usize, data: &'a [f32]) -> Result<Self, MetricError> {
        if width == 0 || height == 0 {
            return Err(MetricError::Empty);
        }
        if width.checked_mul(height) != Some(data.len()) {
            return Err(MetricError::BadBuffer { width, height, len: data.len() });
        }
        Ok(Self { width, height, data })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixels, row-major.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// Number of pixels.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Always false: [`Gray::new`] rejects empty images.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn dims(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn row(&self, r: usize) -> &'a [f32] {
        &self.data[r * self.width..(r + 1) * self.width]
    }
}

/// Panics unless all images have the same dimensions (per-metric functions' contract).
fn assert_same_shape(images: &[Gray]) {
    let first = images[0].dims();
    for img in &images[1..] {
        assert_eq!(img.dims(), first, "images must have the same width and height");
    }
}

/// Why a metric could not be computed.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricError {
    /// An image with zero width or height.
    Empty,
    /// The pixel buffer does not hold `width * height` values.
    BadBuffer { width: usize, height: usize, len: usize },
    /// The fused image and the sources differ in size (each given as `(width, height)`).
    ShapeMismatch { fused: (usize, usize), a: (usize, usize), b: (usize, usize) },
    /// The image is smaller than the metric's window allows.
    TooSmall { metric: Metric, min_side: usize, width: usize, height: usize },
    /// A metric name that [`Metric::from_str`] does not know.
    UnknownMetric(String),
    /// A preset name that [`Preset::from_str`] does not know.
    UnknownPreset(String),
    /// An [`Image`] with a channel count other than 1 or 3.
    BadChannels(usize),
    /// The toolkit's MATLAB code raises an error on this input (see [`ToolkitError`]).
    Matlab { metric: Metric, error: ToolkitError },
    /// A metric of the Python evaluator given a colour [`Image`]: it reads gray images.
    NeedsGray(Metric),
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty image"),
            Self::BadBuffer { width, height, len } => {
                write!(f, "pixel buffer has {len} values, expected {width}x{height}")
            }
            Self::ShapeMismatch { fused, a, b } => write!(
                f,
                "size mismatch: fused {}x{}, source A {}x{}, source B {}x{}",
                fused.0, fused.1, a.0, a.1, b.0, b.1
            ),
            Self::TooSmall { metric, min_side, width, height } => {
                write!(f, "{metric} needs images of at least {min_side}x{min_side}, got {width}x{height}")
            }
            Self::UnknownMetric(name) => {
                write!(f, "unknown metric '{name}' (known: {})", Metric::ALL.map(Metric::name).join(", "))
            }
            Self::UnknownPreset(name) => {
                write!(f, "unknown preset '{name}' (known: cddfuse, film, vifb, mefb)")
            }
            Self::BadChannels(c) => write!(f, "images must have 1 or 3 channels, got {c}"),
            Self::Matlab { metric, error } => write!(f, "{metric}: {error}"),
            Self::NeedsGray(metric) => write!(f, "{metric} is computed on gray images; convert the colour image first"),
        }
    }
}

impl std::error::Error for MetricError {}

/// A metric: one of the official (Python) evaluator's, or one of a MATLAB toolkit's
/// (named `<toolkit>.<name>`, e.g. `vifb.MI`, so that same-named variants stay distinct).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Entropy (bits) of the rounded 8-bit histogram of the fused image.
    En,
    /// Standard deviation (population) of the fused image.
    Sd,
    /// Spatial frequency of the fused image.
    Sf,
    /// Average gradient of the fused image.
    Ag,
    /// Mutual information (nats), summed over both sources.
    Mi,
    /// Mean squared error, averaged over both sources.
    Mse,
    /// Correlation coefficient, averaged over both sources.
    Cc,
    /// Peak signal-to-noise ratio (dB) against the averaged MSE.
    Psnr,
    /// Sum of the correlations of differences.
    Scd,
    /// Pixel-domain visual information fidelity (VIFF), summed over both sources.
    Vif,
    /// Gradient-based fusion performance Q^{AB/F}.
    Qabf,
    /// Structural similarity (scikit-image defaults), summed over both sources.
    Ssim,
    /// A metric of the VIFB toolkit's MATLAB code.
    Vifb(Vifb),
    /// A metric of the MEFB toolkit's MATLAB code.
    Mefb(Mefb),
    /// N_abf or MS-SSIM from the MATLAB code papers use.
    Extra(Extra),
}

impl Metric {
    /// The Python evaluator's metrics, in its order.
    pub const EVALUATOR: [Metric; 12] = [
        Metric::En,
        Metric::Sd,
        Metric::Sf,
        Metric::Ag,
        Metric::Mi,
        Metric::Mse,
        Metric::Cc,
        Metric::Psnr,
        Metric::Scd,
        Metric::Vif,
        Metric::Qabf,
        Metric::Ssim,
    ];

    /// Every metric: the evaluator's, then VIFB's, then MEFB's.
    pub const ALL: [Metric; 49] = [
        Metric::En,
        Metric::Sd,
        Metric::Sf,
        Metric::Ag,
        Metric::Mi,
        Metric::Mse,
        Metric::Cc,
        Metric::Psnr,
        Metric::Scd,
        Metric::Vif,
        Metric::Qabf,
        Metric::Ssim,
        Metric::Vifb(Vifb::Ce),
        Metric::Vifb(Vifb::En),
        Metric::Vifb(Vifb::Mi),
        Metric::Vifb(Vifb::Psnr),
        Metric::Vifb(Vifb::Ag),
        Metric::Vifb(Vifb::Ei),
        Metric::Vifb(Vifb::Qabf),
        Metric::Vifb(Vifb::Sd),
        Metric::Vifb(Vifb::Sf),
        Metric::Vifb(Vifb::Rmse),
        Metric::Vifb(Vifb::Ssim),
        Metric::Vifb(Vifb::Qcb),
        Metric::Vifb(Vifb::Qcv),
        Metric::Mefb(Mefb::Ce),
        Metric::Mefb(Mefb::En),
        Metric::Mefb(Mefb::Fmi),
        Metric::Mefb(Mefb::Nmi),
        Metric::Mefb(Mefb::Psnr),
        Metric::Mefb(Mefb::Qncie),
        Metric::Mefb(Mefb::Te),
        Metric::Mefb(Mefb::Ag),
        Metric::Mefb(Mefb::Ei),
        Metric::Mefb(Mefb::Qabf),
        Metric::Mefb(Mefb::Qp),
        Metric::Mefb(Mefb::Sd),
        Metric::Mefb(Mefb::Sf),
        Metric::Mefb(Mefb::Qc),
        Metric::Mefb(Mefb::Qw),
        Metric::Mefb(Mefb::Qy),
        Metric::Mefb(Mefb::MefSsim),
        Metric::Mefb(Mefb::Qcb),
        Metric::Mefb(Mefb::Qcv),
        Metric::Mefb(Mefb::Vif),
        Metric::Extra(Extra::Nabf),
        Metric::Extra(Extra::MsSsim),
        Metric::Extra(Extra::FmiPixel),
        Metric::Extra(Extra::FmiGradient),
    ];

    /// Canonical name, as printed in tables: `EN SD SF AG MI MSE CC PSNR SCD VIF Qabf SSIM`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::En => "EN",
            Metric::Sd => "SD",
            Metric::Sf => "SF",
            Metric::Ag => "AG",
            Metric::Mi => "MI",
            Metric::Mse => "MSE",
            Metric::Cc => "CC",
            Metric::Psnr => "PSNR",
            Metric::Scd => "SCD",
            Metric::Vif => "VIF",
            Metric::Qabf => "Qabf",
            Metric::Ssim => "SSIM",
            Metric::Vifb(v) => v.name(),
            Metric::Mefb(v) => v.name(),
            Metric::Extra(v) => v.name(),
        }
    }

    /// True if the metric only looks at the fused image.
    pub fn fused_only(self) -> bool {
        match self {
            Metric::Vifb(v) => v.fused_only(),
            Metric::Mefb(v) => v.fused_only(),
            m => matches!(m, Metric::En | Metric::Sd | Metric::Sf | Metric::Ag),
        }
    }

    /// True for the MATLAB toolkits' metrics, which read 8-bit gray or colour [`Image`]s.
    pub fn is_toolkit(self) -> bool {
        matches!(self, Metric::Vifb(_) | Metric::Mefb(_) | Metric::Extra(_))
    }

    /// False where lower values are better (MSE; VIFB's CE, RMSE and Qcv).
    pub fn higher_is_better(self) -> bool {
        match self {
            Metric::Mse => false,
            Metric::Vifb(v) => v.higher_is_better(),
            Metric::Mefb(v) => v.higher_is_better(),
            Metric::Extra(v) => v.higher_is_better(),
            _ => true,
        }
    }

    /// Where the definition comes from (the code this crate reproduces).
    pub fn origin(self) -> &'static str {
        match self {
            Metric::Ssim => "scikit-image structural_similarity (CDDFuse Evaluator.py)",
            Metric::Vifb(v) => v.origin(),
            Metric::Mefb(v) => v.origin(),
            Metric::Extra(v) => v.origin(),
            _ => "CDDFuse utils/Evaluator.py (numpy/scipy/scikit-learn)",
        }
    }

    /// The formula's literature reference.
    pub fn reference(self) -> &'static str {
        match self {
            Metric::En | Metric::Vifb(Vifb::En) | Metric::Mefb(Mefb::En) => {
                "Roberts et al., J. Appl. Remote Sens. 2008"
            }
            Metric::Sd | Metric::Vifb(Vifb::Sd) | Metric::Mefb(Mefb::Sd) => "Rao, Measurement 1997",
            Metric::Sf | Metric::Vifb(Vifb::Sf) | Metric::Mefb(Mefb::Sf) => "Eskicioglu & Fisher, IEEE TCOM 1995",
            Metric::Ag | Metric::Vifb(Vifb::Ag) | Metric::Mefb(Mefb::Ag) => "Cui et al., Opt. Commun. 2015",
            Metric::Mi | Metric::Vifb(Vifb::Mi) => "Qu et al., Electron. Lett. 2002",
            Metric::Mse | Metric::Vifb(Vifb::Rmse) => "Jagalingam & Hegde, Aquatic Procedia 2015",
            Metric::Cc => "Deshmukh & Bhosale, IJIP 2010",
            Metric::Psnr | Metric::Vifb(Vifb::Psnr) | Metric::Mefb(Mefb::Psnr) => {
                "Jagalingam & Hegde, Aquatic Procedia 2015"
            }
            Metric::Scd => "Aslantas & Bendes, AEU 2015",
            Metric::Vif | Metric::Mefb(Mefb::Vif) => "Han et al., Inf. Fusion 2013 (VIFF)",
            Metric::Qabf | Metric::Vifb(Vifb::Qabf) | Metric::Mefb(Mefb::Qabf) => {
                "Xydeas & Petrovic, Electron. Lett. 2000"
            }
            Metric::Ssim | Metric::Vifb(Vifb::Ssim) => "Wang et al., IEEE TIP 2004",
            Metric::Vifb(Vifb::Ce) | Metric::Mefb(Mefb::Ce) => "Bulanon et al., Biosyst. Eng. 2009",
            Metric::Vifb(Vifb::Ei) | Metric::Mefb(Mefb::Ei) => "Rajalingam & Priya, IJERA 2018",
            Metric::Vifb(Vifb::Qcb) | Metric::Mefb(Mefb::Qcb) => "Chen & Blum, Image Vis. Comput. 2009",
            Metric::Vifb(Vifb::Qcv) | Metric::Mefb(Mefb::Qcv) => "Chen & Varshney, Inf. Fusion 2007",
            Metric::Mefb(Mefb::Nmi) => "Hossny et al., Electron. Lett. 2008",
            Metric::Mefb(Mefb::Te) => "Cvejic et al., Electron. Lett. 2006",
            Metric::Mefb(Mefb::Qncie) => "Wang et al., Physica D 2005",
            Metric::Mefb(Mefb::Qc) => "Cvejic et al., Int. J. Signal Process. 2005",
            Metric::Mefb(Mefb::Qw) => "Piella & Heijmans, ICIP 2003",
            Metric::Mefb(Mefb::Qy) => "Yang et al., Inf. Fusion 2008",
            Metric::Mefb(Mefb::MefSsim) => "Ma et al., IEEE TIP 2015",
            Metric::Mefb(Mefb::Qp) => "Zhao, Laganiere & Liu, IJICIC 2007",
            Metric::Extra(Extra::Nabf) => "Shreyamsha Kumar, Signal Image Video Process. 2015",
            Metric::Extra(Extra::MsSsim) => "Wang, Simoncelli & Bovik, Asilomar 2003",
            Metric::Mefb(Mefb::Fmi) | Metric::Extra(Extra::FmiPixel | Extra::FmiGradient) => {
                "Haghighat et al., Comput. Electr. Eng. 2011"
            }
        }
    }

    /// Smallest width and height the metric accepts (where the official code would raise):
    /// 2 for AG, 7 for SSIM (its window), 41 for VIF (four scales of valid convolutions), else 1.
    pub fn min_side(self) -> usize {
        match self {
            Metric::Ag => 2,
            Metric::Ssim => ssim::WIN,
            Metric::Vif => vif::MIN_SIDE,
            _ => 1,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = MetricError;

    /// Case-insensitive; `VIFF` is accepted for [`Metric::Vif`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("VIFF") {
            return Ok(Metric::Vif);
        }
        Metric::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| MetricError::UnknownMetric(s.to_owned()))
    }
}

/// Settings that change a metric's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// `data_range` of scikit-image's `structural_similarity`: 255 for 8-bit images (FILM);
    /// 2 reproduces the CDDFuse/EMMA tables (old scikit-image inferred 2 for float images).
    pub ssim_data_range: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self { ssim_data_range: 255.0 }
    }
}

/// Metric sets used by the papers' tables and the benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// CDDFuse/EMMA: EN SD SF MI SCD VIF Qabf SSIM, SSIM with `data_range = 2`.
    Cddfuse,
    /// FILM: EN SD SF AG VIF Qabf (SSIM, if requested, with `data_range = 255`).
    Film,
    /// VIFB's 13 metrics in its order: CE EN MI PSNR AG EI Qabf SD SF RMSE SSIM Qcb Qcv.
    Vifb,
    /// MEFB's 20 metrics in its order: CE EN FMI NMI PSNR QNCIE TE AG EI Qabf Qp SD SF Qc Qw Qy
    /// MEF-SSIM Qcb Qcv VIF.
    Mefb,
}

impl Preset {
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Preset::Cddfuse => {
                &[Metric::En, Metric::Sd, Metric::Sf, Metric::Mi, Metric::Scd, Metric::Vif, Metric::Qabf, Metric::Ssim]
            }
            Preset::Film => &[Metric::En, Metric::Sd, Metric::Sf, Metric::Ag, Metric::Vif, Metric::Qabf],
            Preset::Vifb => &VIFB_PRESET,
            Preset::Mefb => &MEFB_PRESET,
        }
    }

    pub fn options(self) -> Options {
        match self {
            Preset::Cddfuse => Options { ssim_data_range: 2.0 },
            Preset::Film | Preset::Vifb | Preset::Mefb => Options { ssim_data_range: 255.0 },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Preset::Cddfuse => "cddfuse",
            Preset::Film => "film",
            Preset::Vifb => "vifb",
            Preset::Mefb => "mefb",
        }
    }
}

impl FromStr for Preset {
    type Err = MetricError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cddfuse" | "emma" => Ok(Preset::Cddfuse),
            "film" => Ok(Preset::Film),
            "vifb" => Ok(Preset::Vifb),
            "mefb" => Ok(Preset::Mefb),
            _ => Err(MetricError::UnknownPreset(s.to_owned())),
        }
    }
}

/// A toolkit's whole metric list, in its order, as a preset: `toolkit_preset!(Variant, Enum, N)`.
macro_rules! toolkit_preset {
    ($variant:ident, $list:ident, $n:expr) => {{
        let mut out = [Metric::En; $n];
        let mut i = 0;
        while i < $n {
            out[i] = Metric::$variant($list::ALL[i]);
            i += 1;
        }
        out
    }};
}

const VIFB_PRESET: [Metric; 13] = toolkit_preset!(Vifb, Vifb, 13);
const MEFB_PRESET: [Metric; 20] = toolkit_preset!(Mefb, Mefb, 20);

/// Checks shapes and sizes, then computes `metric` for the fused image and its two sources
/// (`a` = infrared / MRI / over-exposed / near-focus, `b` = visible / functional / under / far).
pub fn compute(metric: Metric, fused: Gray, a: Gray, b: Gray, opts: &Options) -> Result<f64, MetricError> {
    check(metric, fused, a, b)?;
    Ok(match metric {
        Metric::En => en(fused),
        Metric::Sd => sd(fused),
        Metric::Sf => sf(fused),
        Metric::Ag => ag(fused),
        Metric::Mi => mi(fused, a, b),
        Metric::Mse => mse(fused, a, b),
        Metric::Cc => cc(fused, a, b),
        Metric::Psnr => psnr(fused, a, b),
        Metric::Scd => scd(fused, a, b),
        Metric::Vif => vif(fused, a, b),
        Metric::Qabf => qabf(fused, a, b),
        Metric::Ssim => ssim(fused, a, b, opts.ssim_data_range),
        Metric::Vifb(_) | Metric::Mefb(_) | Metric::Extra(_) => {
            let (f8, a8, b8) = (gray_u8(metric, fused)?, gray_u8(metric, a)?, gray_u8(metric, b)?);
            let f8 = Image::new(fused.width, fused.height, 1, &f8)?;
            let a8 = Image::new(a.width, a.height, 1, &a8)?;
            let b8 = Image::new(b.width, b.height, 1, &b8)?;
            return compute_image(metric, f8, a8, b8, opts);
        }
    })
}

/// A gray image as 8-bit levels, if every value is an integer in 0..=255.
fn gray_u8(metric: Metric, g: Gray) -> Result<Vec<u8>, MetricError> {
    g.data()
        .iter()
        .map(|&v| {
            if (0.0..=255.0).contains(&v) && v.fract() == 0.0 {
                Ok(v as u8)
            } else {
                Err(MetricError::Matlab { metric, error: ToolkitError::NotEightBit(v.into()) })
            }
        })
        .collect()
}

/// Computes `metric` on 8-bit images as `imread` gives them (gray or RGB): the toolkit metrics
/// with their own colour handling; the evaluator's metrics only on gray images (else
/// [`MetricError::NeedsGray`]). `a` is infrared / MRI / over-exposed / near-focus, `b` visible /
/// functional / under-exposed / far-focus (VIFB's `img2` and `img1`).
pub fn compute_image(metric: Metric, fused: Image, a: Image, b: Image, opts: &Options) -> Result<f64, MetricError> {
    if !metric.fused_only() && (a.dims() != fused.dims() || b.dims() != fused.dims()) {
        return Err(MetricError::ShapeMismatch { fused: fused.dims(), a: a.dims(), b: b.dims() });
    }
    match metric {
        Metric::Vifb(v) => v.compute(&b, &a, &fused).map_err(|error| MetricError::Matlab { metric, error }),
        Metric::Mefb(v) => v.compute(&b, &a, &fused).map_err(|error| MetricError::Matlab { metric, error }),
        Metric::Extra(v) => v.compute(&a, &b, &fused).map_err(|error| MetricError::Matlab { metric, error }),
        _ => {
            if fused.channels() != 1 || a.channels() != 1 || b.channels() != 1 {
                return Err(MetricError::NeedsGray(metric));
            }
            let as_f32 = |i: &Image| i.data().iter().map(|&v| f32::from(v)).collect::<Vec<f32>>();
            let (f, x, y) = (as_f32(&fused), as_f32(&a), as_f32(&b));
            let gf = Gray::new(fused.width(), fused.height(), &f)?;
            let ga = Gray::new(a.width(), a.height(), &x)?;
            let gb = Gray::new(b.width(), b.height(), &y)?;
            compute(metric, gf, ga, gb, opts)
        }
    }
}

/// [`compute`] for several metrics on the same triple, in the order given.
pub fn compute_all(metrics: &[Metric], fused: Gray, a: Gray, b: Gray, opts: &Options) -> Result<Vec<f64>, MetricError> {
    metrics.iter().map(|&m| compute(m, fused, a, b, opts)).collect()
}

fn check(metric: Metric, fused: Gray, a: Gray, b: Gray) -> Result<(), MetricError> {
    if !metric.fused_only() && (a.dims() != fused.dims() || b.dims() != fused.dims()) {
        return Err(MetricError::ShapeMismatch { fused: fused.dims(), a: a.dims(), b: b.dims() });
    }
    let min_side = metric.min_side();
    if fused.width < min_side || fused.height < min_side {
        return Err(MetricError::TooSmall { metric, min_side, width: fused.width, height: fused.height });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(m.name().parse::<Metric>(), Ok(m));
            assert_eq!(m.name().to_lowercase().parse::<Metric>(), Ok(m));
        }
        assert_eq!("VIFF".parse::<Metric>(), Ok(Metric::Vif));
        assert!(matches!("Nope".parse::<Metric>(), Err(MetricError::UnknownMetric(_))));
    }

    #[test]
    fn presets() {
        let p: Preset = "cddfuse".parse().unwrap();
        assert_eq!(p.metrics().len(), 8);
        assert_eq!(p.options().ssim_data_range, 2.0);
        assert_eq!("FILM".parse::<Preset>().unwrap().metrics()[3], Metric::Ag);
        assert!("x".parse::<Preset>().is_err());
    }

    #[test]
    fn gray_checks_buffer() {
        let d = [0.0f32; 6];
        assert!(Gray::new(3, 2, &d).is_ok());
        assert_eq!(Gray::new(4, 2, &d), Err(MetricError::BadBuffer { width: 4, height: 2, len: 6 }));
        assert_eq!(Gray::new(0, 2, &d[..0]), Err(MetricError::Empty));
    }

    #[test]
    fn compute_reports_bad_shapes() {
        let big = vec![1.0f32; 64 * 64];
        let small = vec![1.0f32; 8 * 8];
        let f = Gray::new(64, 64, &big).unwrap();
        let s = Gray::new(8, 8, &small).unwrap();
        let o = Options::default();
        assert!(matches!(compute(Metric::Mi, f, s, f, &o), Err(MetricError::ShapeMismatch { .. })));
        // fused-only metrics ignore the sources
        assert!(compute(Metric::En, f, s, s, &o).is_ok());
        assert!(matches!(compute(Metric::Vif, s, s, s, &o), Err(MetricError::TooSmall { .. })));
        let tiny = [0.0f32; 1];
        let t = Gray::new(1, 1, &tiny).unwrap();
        assert!(compute(Metric::Ag, t, t, t, &o).is_err());
        assert!(compute(Metric::Ssim, s, s, s, &o).is_ok());
    }
}
