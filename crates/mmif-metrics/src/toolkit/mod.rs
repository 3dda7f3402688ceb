//! The metrics of the MATLAB benchmark toolkits, each written from its `.m` file:
//! VIFB (xingchenzhang/VIFB, `metrics/metrics*.m`, visible–infrared) — see [`vifb`](self::vifb) —
//! and MEFB (xingchenzhang/MEFB, `metrics/metrics*.m`, multi-exposure) — see [`mefb`](self::mefb).
//!
//! They take 8-bit [`Image`]s as MATLAB's `imread` returns them (gray or RGB) and reproduce each
//! file's own colour handling, borders, histograms, log bases and quirks; see [`Vifb`] for the list
//! and where each departs from the same-named metric of the Python evaluator.

mod extra;
mod fft;
mod fmi;
mod image;
mod matlab;
mod mefb;
mod phasecong;
mod vifb;

use std::fmt;

pub use image::Image;
pub use matlab::RGB2GRAY;

/// Why MATLAB's code gives no value for an input (it raises an error there).
#[derive(Clone, Debug, PartialEq)]
pub enum ToolkitError {
    /// Qcb and Qcv index a colour source as a 2-D image when the fused image is gray.
    ColourSourceGrayFused,
    /// A colour fused image with a gray source the code indexes per channel (VIFB: the visible,
    /// first one; MEFB: either): `img(:,:,2)` does not exist.
    GraySourceColourFused,
    /// A histogram index outside 1..256 (a value that is not an integer in 0..=255; `NaN` is what
    /// `normalize1` makes of a constant non-zero image).
    NotEightBit(f64),
    /// MEFB's SSIM-based metrics (Qc, Qy, Qw) leave their outputs unassigned below this side.
    TooSmall(usize),
    /// MEFB's MEF-SSIM calls `rgb2gray` on every image.
    NeedsColour,
}

impl fmt::Display for ToolkitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ColourSourceGrayFused => {
                write!(f, "the MATLAB code fails on a colour source with a gray fused image")
            }
            Self::GraySourceColourFused => {
                write!(
                    f,
                    "the MATLAB code fails on a colour fused image with this gray source (img(:,:,2) does not exist)"
                )
            }
            Self::NotEightBit(v) => write!(f, "value {v} is not an 8-bit level (0..=255)"),
            Self::TooSmall(n) => write!(f, "the MATLAB code fails on images smaller than {n}x{n}"),
            Self::NeedsColour => write!(f, "the MATLAB code calls rgb2gray: it needs colour (RGB) images"),
        }
    }
}

/// The VIFB metrics (`metrics/metrics<Name>.m`), named `vifb.<short name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vifb {
    /// `Cross_entropy`: mean over both sources of the histogram cross entropy (bits).
    Ce,
    /// `Entropy`: entropy (bits) of the 256-bin histogram of the fused image.
    En,
    /// `Mutinf`: mutual information (nats) of min-max-requantised images, summed over sources.
    Mi,
    /// `Psnr`: 20·log10(255/sqrt(m)) with VIFB's m = mean over sources of sqrt(Σd²)/(MN).
    Psnr,
    /// `Avg_gradient`: mean of sqrt((gx²+gy²)/2) over (M-1)(N-1), MATLAB `gradient`.
    Ag,
    /// `Edge_intensity`: mean Sobel magnitude, replicated borders.
    Ei,
    /// `Qabf`: Xydeas–Petrović gradient preservation (conv2, zero borders).
    Qabf,
    /// `Variance`: population standard deviation of the fused image (named SD in the VIFB paper).
    Sd,
    /// `Spatial_frequency`: sqrt(RF + CF), a colour image read as its channels side by side.
    Sf,
    /// `Rmse`: mean over sources of VIFB's sqrt(Σd²)/(MN).
    Rmse,
    /// `Ssim`: Wang et al. SSIM, 11×11 Gaussian window, valid borders, summed over sources.
    Ssim,
    /// `Qcb`: Chen–Blum human-perception metric.
    Qcb,
    /// `Qcv`: Chen–Varshney metric (lower is better).
    Qcv,
}

impl Vifb {
    /// In VIFB's table order (`util/configMetrics.m`).
    pub const ALL: [Vifb; 13] = [
        Vifb::Ce,
        Vifb::En,
        Vifb::Mi,
        Vifb::Psnr,
        Vifb::Ag,
        Vifb::Ei,
        Vifb::Qabf,
        Vifb::Sd,
        Vifb::Sf,
        Vifb::Rmse,
        Vifb::Ssim,
        Vifb::Qcb,
        Vifb::Qcv,
    ];

    /// `vifb.<short name>`, e.g. `vifb.MI`.
    pub fn name(self) -> &'static str {
        match self {
            Vifb::Ce => "vifb.CE",
            Vifb::En => "vifb.EN",
            Vifb::Mi => "vifb.MI",
            Vifb::Psnr => "vifb.PSNR",
            Vifb::Ag => "vifb.AG",
            Vifb::Ei => "vifb.EI",
            Vifb::Qabf => "vifb.Qabf",
            Vifb::Sd => "vifb.SD",
            Vifb::Sf => "vifb.SF",
            Vifb::Rmse => "vifb.RMSE",
            Vifb::Ssim => "vifb.SSIM",
            Vifb::Qcb => "vifb.Qcb",
            Vifb::Qcv => "vifb.Qcv",
        }
    }

    /// The `.m` file this metric reproduces.
    pub fn origin(self) -> &'static str {
        match self {
            Vifb::Ce => "VIFB metrics/metricsCross_entropy.m",
            Vifb::En => "VIFB metrics/metricsEntropy.m",
            Vifb::Mi => "VIFB metrics/metricsMutinf.m",
            Vifb::Psnr => "VIFB metrics/metricsPsnr.m",
            Vifb::Ag => "VIFB metrics/metricsAvg_gradient.m",
            Vifb::Ei => "VIFB metrics/metricsEdge_intensity.m",
            Vifb::Qabf => "VIFB metrics/metricsQabf.m",
            Vifb::Sd => "VIFB metrics/metricsVariance.m",
            Vifb::Sf => "VIFB metrics/metricsSpatial_frequency.m",
            Vifb::Rmse => "VIFB metrics/metricsRmse.m",
            Vifb::Ssim => "VIFB metrics/metricsSsim.m",
            Vifb::Qcb => "VIFB metrics/metricsQcb.m",
            Vifb::Qcv => "VIFB metrics/metricsQcv.m",
        }
    }

    /// Name without the `vifb.` prefix, as in the VIFB paper's tables.
    pub fn short_name(self) -> &'static str {
        match self {
            Vifb::Ce => "CE",
            Vifb::En => "EN",
            Vifb::Mi => "MI",
            Vifb::Psnr => "PSNR",
            Vifb::Ag => "AG",
            Vifb::Ei => "EI",
            Vifb::Qabf => "Qabf",
            Vifb::Sd => "SD",
            Vifb::Sf => "SF",
            Vifb::Rmse => "RMSE",
            Vifb::Ssim => "SSIM",
            Vifb::Qcb => "Qcb",
            Vifb::Qcv => "Qcv",
        }
    }

    /// The `.m` file's metric name (`metrics<file_name>.m`; also the suffix of VIFB's
    /// `evaluation_metrics_single/<pair>_<method>_<file_name>.txt`).
    pub fn file_name(self) -> &'static str {
        match self {
            Vifb::Ce => "Cross_entropy",
            Vifb::En => "Entropy",
            Vifb::Mi => "Mutinf",
            Vifb::Psnr => "Psnr",
            Vifb::Ag => "Avg_gradient",
            Vifb::Ei => "Edge_intensity",
            Vifb::Qabf => "Qabf",
            Vifb::Sd => "Variance",
            Vifb::Sf => "Spatial_frequency",
            Vifb::Rmse => "Rmse",
            Vifb::Ssim => "Ssim",
            Vifb::Qcb => "Qcb",
            Vifb::Qcv => "Qcv",
        }
    }

    /// False for the metrics where lower is better (CE, RMSE, Qcv).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Vifb::Ce | Vifb::Rmse | Vifb::Qcv)
    }

    /// True if only the fused image is read.
    pub fn fused_only(self) -> bool {
        matches!(self, Vifb::En | Vifb::Ag | Vifb::Ei | Vifb::Sd | Vifb::Sf)
    }

    /// The value of VIFB's `metrics<Name>(vis, ir, fused)`. The sizes must agree (checked by
    /// [`crate::compute_image`]).
    pub fn compute(self, vis: &Image, ir: &Image, fused: &Image) -> Result<f64, ToolkitError> {
        use vifb::GrayRule::{Double, Fails, U8};
        use vifb::*;
        match self {
            Vifb::Ce => wrap(vis, ir, fused, U8, cross_entropy),
            Vifb::En => wrap(vis, ir, fused, U8, |_, _, f| entropy(f)),
            Vifb::Mi => wrap(vis, ir, fused, U8, |a, b, f| Ok(mutinf(a, f) + mutinf(b, f))),
            Vifb::Psnr => wrap(vis, ir, fused, Double, |a, b, f| Ok(psnr(a, b, f))),
            Vifb::Ag => Ok(avg_gradient(fused)),
            Vifb::Ei => Ok(edge_intensity(fused)),
            Vifb::Qabf => wrap(vis, ir, fused, Double, |a, b, f| Ok(qabf(a, b, f))),
            Vifb::Sd => wrap(vis, ir, fused, U8, |_, _, f| Ok(sd(f))),
            Vifb::Sf => Ok(spatial_frequency_vifb(fused)),
            Vifb::Rmse => wrap(vis, ir, fused, Double, |a, b, f| Ok(rmse(a, b, f))),
            Vifb::Ssim => wrap(vis, ir, fused, U8, |a, b, f| Ok(ssim_one(a, f) + ssim_one(b, f))),
            Vifb::Qcb => wrap(vis, ir, fused, Fails, |a, b, f| Ok(qcb(a, b, f))),
            Vifb::Qcv => wrap(vis, ir, fused, Fails, |a, b, f| Ok(qcv(a, b, f))),
        }
    }
}

/// The MEFB metrics (`metrics/metrics<Name>.m`), named `mefb.<short name>`: all 20.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mefb {
    /// `Cross_entropy`: VIFB's core, MEFB's colour wrapper.
    Ce,
    /// `Entropy`: VIFB's core, MEFB's colour wrapper.
    En,
    /// `FMI`: Haghighat's feature mutual information with MEFB's default feature, MATLAB's
    /// `edge()` (Sobel, automatic threshold, thinning), 3×3 windows.
    Fmi,
    /// `NMI`: Hossny's normalised mutual information (bits) of `normalize1`d images.
    Nmi,
    /// `Psnr`: VIFB's core, MEFB's colour wrapper.
    Psnr,
    /// `Qncie`: nonlinear correlation information entropy.
    Qncie,
    /// `TE`: Tsallis entropy (q = 1.85) of the code's joint histograms.
    Te,
    /// `Avg_gradient`: VIFB's, but `rgb2gray` of a colour fused image with gray sources.
    Ag,
    /// `Edge_intensity`: VIFB's, but the first channel of a colour fused image with gray sources.
    Ei,
    /// `Qabf`: VIFB's core, MEFB's colour wrapper.
    Qabf,
    /// `SD` (file `metricsSD.m`, function `metricsVariance`): population standard deviation.
    Sd,
    /// `Spatial_frequency`: per-channel SF (not VIFB's channels side by side).
    Sf,
    /// `Qc`: Cvejic's SSIM-based metric.
    Qc,
    /// `Qw`: Piella's edge-dependent weighted SSIM metric.
    Qw,
    /// `Qy`: Yang's SSIM-based metric.
    Qy,
    /// `MEF_SSIM`: Ma et al.'s multi-scale MEF-SSIM on gray conversions.
    MefSsim,
    /// `Qcb`: VIFB's core on `im2double` images, MEFB's colour wrapper.
    Qcb,
    /// `Qcv`: VIFB's core, MEFB's colour wrapper (lower is better).
    Qcv,
    /// `VIF`: VIFF (Han et al.) as MEFB's code computes it.
    Vif,
    /// `Qp`: Zhao et al.'s phase-congruency metric (Liu's `myphasecong3.m`).
    Qp,
}

impl Mefb {
    /// In MEFB's table order (`util/configMetrics.m`).
    pub const ALL: [Mefb; 20] = [
        Mefb::Ce,
        Mefb::En,
        Mefb::Fmi,
        Mefb::Nmi,
        Mefb::Psnr,
        Mefb::Qncie,
        Mefb::Te,
        Mefb::Ag,
        Mefb::Ei,
        Mefb::Qabf,
        Mefb::Qp,
        Mefb::Sd,
        Mefb::Sf,
        Mefb::Qc,
        Mefb::Qw,
        Mefb::Qy,
        Mefb::MefSsim,
        Mefb::Qcb,
        Mefb::Qcv,
        Mefb::Vif,
    ];

    /// `mefb.<short name>`, e.g. `mefb.NMI`.
    pub fn name(self) -> &'static str {
        match self {
            Mefb::Ce => "mefb.CE",
            Mefb::En => "mefb.EN",
            Mefb::Fmi => "mefb.FMI",
            Mefb::Nmi => "mefb.NMI",
            Mefb::Psnr => "mefb.PSNR",
            Mefb::Qncie => "mefb.QNCIE",
            Mefb::Te => "mefb.TE",
            Mefb::Ag => "mefb.AG",
            Mefb::Ei => "mefb.EI",
            Mefb::Qabf => "mefb.Qabf",
            Mefb::Sd => "mefb.SD",
            Mefb::Sf => "mefb.SF",
            Mefb::Qc => "mefb.Qc",
            Mefb::Qw => "mefb.Qw",
            Mefb::Qy => "mefb.Qy",
            Mefb::MefSsim => "mefb.MEF-SSIM",
            Mefb::Qcb => "mefb.Qcb",
            Mefb::Qcv => "mefb.Qcv",
            Mefb::Vif => "mefb.VIF",
            Mefb::Qp => "mefb.Qp",
        }
    }

    /// Name without the `mefb.` prefix.
    pub fn short_name(self) -> &'static str {
        &self.name()[5..]
    }

    /// The `.m` file's metric name (`metrics<file_name>.m`).
    pub fn file_name(self) -> &'static str {
        match self {
            Mefb::Ce => "Cross_entropy",
            Mefb::En => "Entropy",
            Mefb::Fmi => "FMI",
            Mefb::Nmi => "NMI",
            Mefb::Psnr => "Psnr",
            Mefb::Qncie => "Qncie",
            Mefb::Te => "TE",
            Mefb::Ag => "Avg_gradient",
            Mefb::Ei => "Edge_intensity",
            Mefb::Qabf => "Qabf",
            Mefb::Sd => "SD",
            Mefb::Sf => "Spatial_frequency",
            Mefb::Qc => "Qc",
            Mefb::Qw => "Qw",
            Mefb::Qy => "Qy",
            Mefb::MefSsim => "MEF_SSIM",
            Mefb::Qcb => "Qcb",
            Mefb::Qcv => "Qcv",
            Mefb::Vif => "VIF",
            Mefb::Qp => "Qp",
        }
    }

    /// The `.m` file this metric reproduces.
    pub fn origin(self) -> &'static str {
        match self {
            Mefb::Ce => "MEFB metrics/metricsCross_entropy.m",
            Mefb::En => "MEFB metrics/metricsEntropy.m",
            Mefb::Fmi => "MEFB metrics/metricsFMI.m (Haghighat's fmi.m, feature 'edge' = MATLAB's edge())",
            Mefb::Nmi => "MEFB metrics/metricsNMI.m",
            Mefb::Psnr => "MEFB metrics/metricsPsnr.m",
            Mefb::Qncie => "MEFB metrics/metricsQncie.m",
            Mefb::Te => "MEFB metrics/metricsTE.m",
            Mefb::Ag => "MEFB metrics/metricsAvg_gradient.m",
            Mefb::Ei => "MEFB metrics/metricsEdge_intensity.m",
            Mefb::Qabf => "MEFB metrics/metricsQabf.m",
            Mefb::Sd => "MEFB metrics/metricsSD.m",
            Mefb::Sf => "MEFB metrics/metricsSpatial_frequency.m",
            Mefb::Qc => "MEFB metrics/metricsQc.m",
            Mefb::Qw => "MEFB metrics/metricsQw.m",
            Mefb::Qy => "MEFB metrics/metricsQy.m",
            Mefb::MefSsim => "MEFB metrics/metricsMEF_SSIM.m (mef_ms_ssim.m, mef_ssim.m)",
            Mefb::Qcb => "MEFB metrics/metricsQcb.m",
            Mefb::Qcv => "MEFB metrics/metricsQcv.m",
            Mefb::Vif => "MEFB metrics/metricsVIF.m",
            Mefb::Qp => "MEFB metrics/metricsQp.m (myphasecong3.m)",
        }
    }

    /// False for the metrics where lower is better (CE, Qcv).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Mefb::Ce | Mefb::Qcv)
    }

    /// True if only the fused image's values are read (the sources' channel counts still
    /// choose the colour path).
    pub fn fused_only(self) -> bool {
        matches!(self, Mefb::En | Mefb::Ag | Mefb::Ei | Mefb::Sd | Mefb::Sf)
    }

    /// The value of MEFB's `metrics<Name>(img1, img2, fused)`. The sizes must agree (checked by
    /// [`crate::compute_image`]).
    pub fn compute(self, img1: &Image, img2: &Image, fused: &Image) -> Result<f64, ToolkitError> {
        use mefb::wrap;
        use vifb::GrayRule::{Double, Fails, U8};
        match self {
            Mefb::Ce => wrap(img1, img2, fused, U8, vifb::cross_entropy),
            Mefb::En => wrap(img1, img2, fused, U8, |_, _, f| vifb::entropy(f)),
            Mefb::Fmi => wrap(img1, img2, fused, Fails, |a, b, f| {
                let e = matlab::edge_sobel;
                Ok(fmi::fmi_of_features(&e(a), &e(b), &e(f)))
            }),
            Mefb::Nmi => wrap(img1, img2, fused, Fails, mefb::nmi),
            Mefb::Psnr => wrap(img1, img2, fused, Double, |a, b, f| Ok(vifb::psnr(a, b, f))),
            Mefb::Qncie => wrap(img1, img2, fused, Fails, mefb::qncie),
            Mefb::Te => wrap(img1, img2, fused, Fails, mefb::te),
            Mefb::Ag => Ok(mefb::avg_gradient(img1, img2, fused)),
            Mefb::Ei => Ok(mefb::edge_intensity(img1, img2, fused)),
            Mefb::Qabf => wrap(img1, img2, fused, Double, |a, b, f| Ok(vifb::qabf(a, b, f))),
            Mefb::Sd => wrap(img1, img2, fused, U8, |_, _, f| Ok(vifb::sd(f))),
            Mefb::Sf => wrap(img1, img2, fused, U8, |_, _, f| Ok(vifb::spatial_frequency_plane(f))),
            Mefb::Qc => wrap(img1, img2, fused, U8, mefb::qc),
            Mefb::Qw => wrap(img1, img2, fused, U8, mefb::qw),
            Mefb::Qy => wrap(img1, img2, fused, U8, mefb::qy),
            Mefb::MefSsim => mefb::mef_ssim(img1, img2, fused),
            Mefb::Qcb => wrap(img1, img2, fused, Fails, |a, b, f| Ok(mefb::qcb(a, b, f))),
            Mefb::Qcv => wrap(img1, img2, fused, Fails, |a, b, f| Ok(vifb::qcv(a, b, f))),
            Mefb::Vif => wrap(img1, img2, fused, Fails, |a, b, f| Ok(mefb::vif(a, b, f))),
            Mefb::Qp => {
                let mut bank = None;
                wrap(img1, img2, fused, Double, |a, b, f| mefb::qp(a, b, f, &mut bank))
            }
        }
    }
}

/// Metrics papers add to the benchmarks' sets, each from the MATLAB code most of them use
/// (see [`extra`](self::extra)), named `<author>.<short name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Extra {
    /// N_abf, Shreyamsha Kumar's fusion artefacts measure (lower is better).
    Nabf,
    /// MS-SSIM (Wang et al.), the mean over both sources.
    MsSsim,
    /// FMI_pixel: Haghighat's FMI (MEFB's `metricsFMI.m`) with the feature `'none'` (raw pixels).
    FmiPixel,
    /// FMI_gradient: the same with the feature `'gradient'` (MATLAB's x-derivative).
    FmiGradient,
}

impl Extra {
    pub const ALL: [Extra; 4] = [Extra::Nabf, Extra::MsSsim, Extra::FmiPixel, Extra::FmiGradient];

    pub fn name(self) -> &'static str {
        match self {
            Extra::Nabf => "kumar.Nabf",
            Extra::MsSsim => "wang.MS-SSIM",
            Extra::FmiPixel => "haghighat.FMI-pixel",
            Extra::FmiGradient => "haghighat.FMI-gradient",
        }
    }

    /// The `.m` files this metric reproduces (and where they were read).
    pub fn origin(self) -> &'static str {
        match self {
            Extra::Nabf => {
                "Shreyamsha Kumar's objective_fusion_perform_fn.m (NABF), sobel_fn.m, per_extn_im_fn.m (VIFB methods/CBF)"
            }
            Extra::MsSsim => "Wang's msssim.m + ssim_index_new.m, mean of (A,F) and (B,F)",
            Extra::FmiPixel => "MEFB metrics/metricsFMI.m (Haghighat's fmi.m) with feature 'none'",
            Extra::FmiGradient => "MEFB metrics/metricsFMI.m (Haghighat's fmi.m) with feature 'gradient'",
        }
    }

    pub fn higher_is_better(self) -> bool {
        !matches!(self, Extra::Nabf)
    }

    pub fn compute(self, a: &Image, b: &Image, fused: &Image) -> Result<f64, ToolkitError> {
        match self {
            Extra::Nabf => Ok(extra::nabf(a, b, fused)),
            Extra::MsSsim => extra::ms_ssim(a, b, fused),
            // MATLAB's img1 is the second source; its colour handling is MEFB's, and a colour
            // source with a gray fused image is not reproduced (the code reads the 3-D array as 2-D)
            Extra::FmiPixel => {
                mefb::wrap(b, a, fused, vifb::GrayRule::Fails, |a, b, f| Ok(fmi::fmi_of_features(a, b, f)))
            }
            Extra::FmiGradient => mefb::wrap(b, a, fused, vifb::GrayRule::Fails, |a, b, f| {
                let g = |p: &matlab::Plane| matlab::gradient(p).0;
                Ok(fmi::fmi_of_features(&g(a), &g(b), &g(f)))
            }),
        }
    }
}
