//! The method registry used by `mmif fuse` / `mmif models`.

use crate::params::{ParamInfo, Params, parse_usize, unknown_key};
use crate::{
    AdfParams, CbfParams, Error, FpdeParams, GfceParams, GffParams, GtfParams, HmsdGfParams, HybridMsdParams,
    IfevipParams, LatLrrParams, MgffParams, MstSrParams, MsvdParams, Result, TifParams, VsmwlsParams,
};
use mmif_io::Plane;
use std::fmt;
use std::str::FromStr;

/// A weight-free fusion method with its parameters.
///
/// Textual form (parsed by [`FromStr`], produced by [`Display`](fmt::Display)):
/// `mean`, `max`, `weighted[:W]` (W in [0, 1], default 0.5), `lp[:LEVELS]` (default 4), `gff`,
/// `dwt[:LEVELS]` (default 4), VIFB's `tif`, `mgff`, `hmsd_gf`, `adf`, `fpde`, `cbf`, `vsmwls`, `ifevip`,
/// `gfce`, `hybrid_msd`, `msvd`, `gtf`, `latlrr`, `lp_sr` and `rp_sr` (their published parameters); methods with a parameter
/// set take `name[:key=value[,key=value…]]`
/// (e.g. `tif:mean=21`), the keys being those of [`Method::params`]. Names are case-insensitive.
/// [`Method::set_param`] sets one parameter by key on any method (`mmif fuse --param key=value`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// Pixel-wise average.
    Mean,
    /// Pixel-wise maximum.
    Max,
    /// `w·a + (1 − w)·b`.
    Weighted(f32),
    /// Laplacian pyramid, max-abs details, averaged residual.
    Lp { levels: usize },
    /// Guided-filtering fusion with the published parameters.
    Gff,
    /// CDF 9/7 wavelet, max-abs details, averaged approximation.
    Dwt { levels: usize },
    /// Two-scale fusion with saliency weights (VIFB's TIF).
    Tif(TifParams),
    /// Multi-scale guided image fusion (VIFB's MGFF).
    Mgff(MgffParams),
    /// Hybrid multi-scale decomposition with guided filters (VIFB's HMSD_GF); `a` is infrared.
    HmsdGf(HmsdGfParams),
    /// VIFB's ADF: anisotropic-diffusion base layers, Karhunen–Loève fused details.
    Adf(AdfParams),
    /// VIFB's FPDE: fourth-order-PDE base layers, Karhunen–Loève fused details.
    Fpde(FpdeParams),
    /// VIFB's CBF: cross-bilateral-filter details, covariance edge-strength weights.
    Cbf(CbfParams),
    /// VIFB's VSMWLS: rolling-guidance decomposition, saliency-weighted base, WLS details.
    Vsmwls(VsmwlsParams),
    /// VIFB's IFEVIP: quadtree infrared background, infrared features added to the visible image.
    Ifevip(IfevipParams),
    /// VIFB's GFCE: enhanced visible image, guided-filter hybrid decomposition, saliency-driven weights.
    Gfce(GfceParams),
    /// VIFB's Hybrid_MSD: Gaussian/bilateral hybrid multi-scale decomposition; `a` is infrared.
    HybridMsd(HybridMsdParams),
    /// VIFB's MSVD: one-level multi-resolution SVD, singular-vector signs aligned between the sources.
    Msvd(MsvdParams),
    /// VIFB's GTF: infrared intensities with visible gradients (l1 fidelity, total variation, IRN).
    Gtf(GtfParams),
    /// VIFB's LatLRR (MDLatLRR): learnt-projection multi-level decomposition, nuclear-norm weights.
    LatLrr(LatLrrParams),
    /// VIFB's LP_SR: Laplacian pyramid, consistency-checked max details, sparse-representation base.
    LpSr(MstSrParams),
    /// VIFB's RP_SR: ratio-of-low-pass pyramid, consistency-checked max details, sparse-representation base.
    RpSr(MstSrParams),
}

/// The default weight-free method: [`Method::Gff`].
///
/// GFF is the only method here whose weights adapt to local saliency *and* follow edges (the
/// guided filter makes the weight maps respect the source structure), so it avoids both the
/// contrast loss of averaging and the halos and blocking of per-coefficient selection in LP/DWT,
/// and it is the classical method most often used as the strong weight-free baseline.
/// Measured with `examples/fuse_folder.rs` (CDDFuse metric preset, 8-bit outputs), GFF has the
/// highest Q^{AB/F} of all methods here on TNO (0.606; max 0.599, lp 0.544, dwt 0.490),
/// RoadScene (0.650; max 0.604) and MRI-PET (0.744; max 0.715), and the highest EN on TNO and
/// RoadScene; on MRI-CT `max` leads Q^{AB/F} (0.629 vs 0.596). `max` is its only rival and
/// scores higher MI because it copies source pixels verbatim, but it discards every detail of the
/// darker source, which is no sensible default.
pub const DEFAULT: Method = Method::Gff;

/// The kind of fusion task a default method is chosen for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// Infrared (`a`) and visible (`b`).
    InfraredVisible,
    /// MRI (`a`) and CT, PET or SPECT (`b`).
    Medical,
    /// Multi-exposure.
    Exposure,
    /// Multi-focus.
    Focus,
    /// Unnamed sources.
    Other,
}

/// The default weight-free method for a task, chosen by mean rank over the CDDFuse metric set
/// (EN SD SF MI SCD VIF Qabf SSIM) with `examples/rank_methods.rs` on public sets that are not
/// VIFB's (the TNO, RoadScene and Harvard MRI-CT/PET/SPECT test images of the official CDDFuse
/// repository):
/// * infrared–visible: [`Method::HmsdGf`], best on both sets among all 20 methods of this crate
///   (`weighted` left out; re-ranked 2026-12-03): mean rank 5.38 on TNO (25 pairs) and 6.50 on
///   RoadScene (50 pairs), 5.94 overall against 6.94 for the next (max); it also keeps bright
///   thermal targets (mean fused value over the brightest 1 % of infrared pixels 0.86 / 0.95 of the
///   infrared value, where GFF's 0.64 / 0.93 shows its dark blobs);
/// * medical: [`Method::Ifevip`], mean rank 3.92 over MRI-CT, MRI-PET and MRI-SPECT (21, 42 and 73
///   pairs; 4.75 / 3.62 / 3.38) among all 20 methods, ahead of max (4.92) and cbf (7.25);
/// * multi-exposure: [`Method::LpSr`], mean rank 5.00 on 50 evenly spaced MEFB pairs among the 14
///   methods that treat both sources alike (`lp` 5.12, `mgff` 5.75; latlrr left out for its time);
/// * multi-focus: [`Method::Lp`] (4 levels), mean rank 4.25 on 50 evenly spaced MFIFB pairs among
///   15 such methods (`lp_sr` 4.75, `gff` 5.50); the infrared-specific methods (HMSD-GF, Hybrid-MSD,
///   GFCE, IFEVIP, GTF) are not ranked for exposure or focus (`docs/vifb_methods_b.md`);
/// * unnamed sources: [`DEFAULT`] (GFF).
pub fn default_for(task: TaskKind) -> Method {
    match task {
        TaskKind::InfraredVisible => Method::HmsdGf(crate::HmsdGfParams::default()),
        TaskKind::Medical => Method::Ifevip(crate::IfevipParams::default()),
        TaskKind::Exposure => Method::LpSr(crate::MstSrParams::default()),
        TaskKind::Focus => Method::Lp { levels: crate::lp::DEFAULT_LEVELS },
        TaskKind::Other => DEFAULT,
    }
}

/// Name, one-line description, citation, parameters with their defaults and measured speed class
/// of a method, for `mmif models`.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub citation: &'static str,
    /// Every parameter (`--param key=value`) with its default value.
    pub params: Vec<ParamInfo>,
    /// Measured speed class at 640×480 (see [`Method::speed`]).
    pub speed: &'static str,
}

const CITE_LP: &str = "P. J. Burt and E. H. Adelson, \"The Laplacian Pyramid as a Compact Image Code\", \
IEEE Trans. Commun. 31(4):532-540, 1983; rule after P. J. Burt and R. J. Kolczynski, \"Enhanced image capture \
through fusion\", ICCV 1993";
const CITE_GFF: &str = "S. Li, X. Kang and J. Hu, \"Image Fusion With Guided Filtering\", \
IEEE Trans. Image Process. 22(7):2864-2875, 2013";
const CITE_DWT: &str = "H. Li, B. S. Manjunath and S. K. Mitra, \"Multisensor image fusion using the wavelet \
transform\", Graph. Models Image Process. 57(3):235-245, 1995; wavelet: A. Cohen, I. Daubechies and \
J.-C. Feauveau, Comm. Pure Appl. Math. 45(5):485-560, 1992";
const CITE_TIF: &str = "D. P. Bavirisetti and R. Dhuli, \"Two-scale image fusion of visible and infrared images \
using saliency detection\", Infrared Phys. Technol. 76:52-64, 2016 (parameters of VIFB's methods/TIF)";
const CITE_MGFF: &str = "D. P. Bavirisetti, G. Xiao, J. Zhao, R. Dhuli and G. Liu, \"Multi-scale Guided Image and \
Video Fusion: A Fast and Efficient Approach\", Circuits Syst. Signal Process. 38:5576-5605, 2019 (parameters of \
VIFB's methods/MGFF)";
const CITE_HMSD_GF: &str = "Z. Zhou, M. Dong, X. Xie and Z. Gao, \"Fusion of infrared and visible images for \
night-vision context enhancement\", Appl. Opt. 55(23):6480-6490, 2016 (parameters of VIFB's methods/HMSD_GF)";
const CITE_ADF: &str = "D. P. Bavirisetti and R. Dhuli, \"Fusion of Infrared and Visible Sensor Images Based on \
Anisotropic Diffusion and Karhunen-Loeve Transform\", IEEE Sensors J. 16(1):203-209, 2016";
const CITE_FPDE: &str = "D. P. Bavirisetti, G. Xiao and G. Liu, \"Multi-sensor image fusion based on fourth order \
partial differential equations\", Int. Conf. Information Fusion (Fusion), 2017";
const CITE_CBF: &str = "B. K. Shreyamsha Kumar, \"Image fusion based on pixel significance using cross bilateral \
filter\", Signal, Image and Video Processing 9(5):1193-1204, 2015";
const CITE_VSMWLS: &str = "J. Ma, Z. Zhou, B. Wang and H. Zong, \"Infrared and visible image fusion based on visual \
saliency map and weighted least square optimization\", Infrared Phys. Technol. 82:8-17, 2017";
const CITE_IFEVIP: &str = "Y. Zhang, L. Zhang, X. Bai and L. Zhang, \"Infrared and visual image fusion through \
infrared feature extraction and visual information preservation\", Infrared Phys. Technol. 83:227-237, 2017";
const CITE_GFCE: &str = "Z. Zhou, M. Dong, X. Xie and Z. Gao, \"Fusion of infrared and visible images for \
night-vision context enhancement\", Applied Optics 55(23):6480-6490, 2016";
const CITE_HYBRID_MSD: &str = "Z. Zhou, B. Wang, S. Li and M. Dong, \"Perceptual fusion of infrared and visible images \
through a hybrid multi-scale decomposition with Gaussian and bilateral filters\", Information Fusion 30:15-26, 2016 \
(parameters of VIFB's methods/Hybrid_MSD)";
const CITE_MSVD: &str = "V. P. S. Naidu, \"Image fusion technique using multi-resolution singular value \
decomposition\", Defence Science Journal 61(5):479-484, 2011 (VIFB's methods/MSVD; singular-vector signs aligned)";
const CITE_GTF: &str = "J. Ma, C. Chen, C. Li and J. Huang, \"Infrared and visible image fusion via gradient transfer \
and total variation minimization\", Information Fusion 31:100-109, 2016 (parameters of VIFB's methods/GTF)";
const CITE_LATLRR: &str = "H. Li and X.-J. Wu, \"Infrared and visible image fusion using latent low-rank \
representation\", arXiv:1804.08992, 2018; VIFB's code is H. Li, X.-J. Wu and J. Kittler, \"MDLatLRR: A novel \
decomposition method for infrared and visible image fusion\", IEEE Trans. Image Process. 29:4733-4746, 2020 \
(parameters of VIFB's methods/LatLRR; projection learnt by mmif from TNO images)";
const CITE_MST_SR: &str = "Y. Liu, S. Liu and Z. Wang, \"A general framework for image fusion based on multi-scale \
transform and sparse representation\", Information Fusion 24:147-164, 2015 (parameters of VIFB's methods/LP_SR and \
methods/RP_SR; dictionary learnt by mmif with K-SVD from TNO and RoadScene images)";
const CITE_PIXEL: &str = "pixel-level baseline (see e.g. Burt and Kolczynski, ICCV 1993)";

impl Method {
    /// The method's name as accepted by [`FromStr`] (without parameters).
    pub fn name(&self) -> &'static str {
        match self {
            Method::Mean => "mean",
            Method::Max => "max",
            Method::Weighted(_) => "weighted",
            Method::Lp { .. } => "lp",
            Method::Gff => "gff",
            Method::Dwt { .. } => "dwt",
            Method::Tif(_) => "tif",
            Method::Mgff(_) => "mgff",
            Method::HmsdGf(_) => "hmsd_gf",
            Method::Adf(_) => "adf",
            Method::Fpde(_) => "fpde",
            Method::Cbf(_) => "cbf",
            Method::Vsmwls(_) => "vsmwls",
            Method::Ifevip(_) => "ifevip",
            Method::Gfce(_) => "gfce",
            Method::HybridMsd(_) => "hybrid_msd",
            Method::Msvd(_) => "msvd",
            Method::Gtf(_) => "gtf",
            Method::LatLrr(_) => "latlrr",
            Method::LpSr(_) => "lp_sr",
            Method::RpSr(_) => "rp_sr",
        }
    }

    /// A one-line description.
    pub fn description(&self) -> &'static str {
        match self {
            Method::Mean => "pixel-wise average (a + b) / 2",
            Method::Max => "pixel-wise maximum",
            Method::Weighted(_) => "pixel-wise weighted average w*a + (1-w)*b (weighted:W, default 0.5)",
            Method::Lp { .. } => {
                "Laplacian pyramid (5-tap binomial kernel), max-abs details, averaged base (lp:LEVELS, default 4)"
            }
            Method::Gff => {
                "guided-filtering fusion: two-scale decomposition, Laplacian saliency, guided-filter weights"
            }
            Method::Dwt { .. } => {
                "CDF 9/7 wavelet transform, max-abs detail sub-bands, averaged approximation (dwt:LEVELS, default 4)"
            }
            Method::Tif(_) => {
                "two-scale split (35x35 mean), median-filter saliency weights for the details, averaged bases"
            }
            Method::Mgff(_) => {
                "multi-scale guided filtering (each source filtered under the other's guidance), detail-magnitude weights"
            }
            Method::HmsdGf(_) => {
                "hybrid multi-scale guided-filter decomposition, infrared (a) features injected into visible (b)"
            }
            Method::Adf(_) => {
                "anisotropic diffusion base layers, Karhunen-Loeve weighted details (VIFB: 10 steps, dt 0.15, kappa 30)"
            }
            Method::Fpde(_) => {
                "fourth-order PDE base layers, Karhunen-Loeve weighted details (VIFB: 15 steps, dt 0.9, k 4)"
            }
            Method::Cbf(_) => {
                "cross bilateral filter details, covariance edge-strength weights (VIFB: 11x11, sigma_s 1.8, sigma_r 25, 5x5)"
            }
            Method::Vsmwls(_) => {
                "rolling-guidance 4-level decomposition, saliency-weighted base, WLS-optimised details (VIFB: lambda 0.01)"
            }
            Method::Ifevip(_) => {
                "quadtree/Bezier infrared background, infrared features added to the visible image (VIFB: 512, 32, 0.001, 0.8)"
            }
            Method::Gfce(_) => {
                "enhanced visible image, 4-level guided-filter hybrid decomposition, perceptual-saliency weights (VIFB)"
            }
            Method::HybridMsd(_) => {
                "hybrid Gaussian/fast-bilateral 4-level decomposition, infrared (a) features injected into visible (b) (VIFB)"
            }
            Method::Msvd(_) => {
                "one-level 2x2-block SVD, averaged approximation, max-abs details, averaged basis (signs aligned), stretched (VIFB)"
            }
            Method::Gtf(_) => {
                "infrared (a) intensities with visible (b) gradients: l1 fidelity + total variation, 5 IRN loops (VIFB: lambda 4)"
            }
            Method::LatLrr(_) => {
                "latent low-rank projection of overlapping 8x8 patches, 4 levels, nuclear-norm weighted details, averaged base"
            }
            Method::LpSr(_) => {
                "4-level Laplacian pyramid, consistency-checked max details, base fused by sparse codes of 8x8 patches (VIFB)"
            }
            Method::RpSr(_) => {
                "4-level ratio-of-low-pass pyramid, consistency-checked max details, base fused by sparse codes of 8x8 patches (VIFB)"
            }
        }
    }

    /// The paper the method follows.
    pub fn citation(&self) -> &'static str {
        match self {
            Method::Mean | Method::Max | Method::Weighted(_) => CITE_PIXEL,
            Method::Lp { .. } => CITE_LP,
            Method::Gff => CITE_GFF,
            Method::Dwt { .. } => CITE_DWT,
            Method::Tif(_) => CITE_TIF,
            Method::Mgff(_) => CITE_MGFF,
            Method::HmsdGf(_) => CITE_HMSD_GF,
            Method::Adf(_) => CITE_ADF,
            Method::Fpde(_) => CITE_FPDE,
            Method::Cbf(_) => CITE_CBF,
            Method::Vsmwls(_) => CITE_VSMWLS,
            Method::Ifevip(_) => CITE_IFEVIP,
            Method::Gfce(_) => CITE_GFCE,
            Method::HybridMsd(_) => CITE_HYBRID_MSD,
            Method::Msvd(_) => CITE_MSVD,
            Method::Gtf(_) => CITE_GTF,
            Method::LatLrr(_) => CITE_LATLRR,
            Method::LpSr(_) | Method::RpSr(_) => CITE_MST_SR,
        }
    }

    /// Speed class at 640×480 (gray): `fast` < 200 ms, `medium` < 2 s, `slow` above. Measured on TNO
    /// pair 10 of the CDDFuse test images with the `vifb_parity` example (release build, 2 rayon
    /// threads, fusion only, best of 3 runs, median of 3 rounds) on an idle 2-core machine
    /// (`tools/vifb_method_speed.sh`, docs/classic_acceptance.md): mean/max/weighted < 1 ms, msvd 6 ms,
    /// dwt 12 ms, lp 14 ms, tif 30 ms, ifevip 58 ms, gff 61 ms, mgff 78 ms, fpde 115 ms, cbf 127 ms,
    /// lp_sr 128 ms, rp_sr 142 ms, adf 157 ms, vsmwls 288 ms, hybrid_msd 303 ms, gtf 381 ms, gfce
    /// 394 ms, hmsd_gf 498 ms, latlrr 5.36 s.
    pub fn speed(&self) -> &'static str {
        match self {
            Method::Mean | Method::Max | Method::Weighted(_) | Method::Msvd(_) => "fast",
            Method::Lp { .. } | Method::Dwt { .. } | Method::Tif(_) | Method::Ifevip(_) => "fast",
            Method::Gff | Method::Mgff(_) | Method::Fpde(_) | Method::Cbf(_) | Method::Adf(_) => "fast",
            Method::LpSr(_) | Method::RpSr(_) => "fast",
            Method::Vsmwls(_) | Method::HybridMsd(_) | Method::Gtf(_) | Method::Gfce(_) => "medium",
            Method::HmsdGf(_) => "medium",
            Method::LatLrr(_) => "slow",
        }
    }

    /// The method's parameters with their current values (`--param key=value` keys).
    pub fn params(&self) -> Vec<ParamInfo> {
        use crate::params::info;
        match self {
            Method::Mean | Method::Max | Method::Gff => vec![],
            Method::Weighted(w) => vec![info("w", w, "weight of source a, in [0, 1]")],
            Method::Lp { levels } | Method::Dwt { levels } => vec![info("levels", levels, "decomposition levels")],
            Method::Tif(p) => p.list(),
            Method::Mgff(p) => p.list(),
            Method::HmsdGf(p) => p.list(),
            Method::Adf(p) => p.list(),
            Method::Fpde(p) => p.list(),
            Method::Cbf(p) => p.list(),
            Method::Vsmwls(p) => p.list(),
            Method::Ifevip(p) => p.list(),
            Method::Gfce(p) => p.list(),
            Method::HybridMsd(p) => p.list(),
            Method::Msvd(p) => p.list(),
            Method::Gtf(p) => p.list(),
            Method::LatLrr(p) => p.list(),
            Method::LpSr(p) | Method::RpSr(p) => p.list(),
        }
    }

    /// Sets one parameter by key (see [`Method::params`]); unknown keys and bad values are errors.
    pub fn set_param(&mut self, key: &str, value: &str) -> Result<()> {
        let key = key.trim();
        let known = self.params();
        let name = self.name();
        match self {
            Method::Weighted(w) if key == "w" => *w = parse_weight(value)?,
            Method::Lp { levels } | Method::Dwt { levels } if key == "levels" => {
                *levels = parse_usize(name, key, value, 1, 64)?
            }
            Method::Tif(p) => p.set(key, value)?,
            Method::Mgff(p) => p.set(key, value)?,
            Method::HmsdGf(p) => p.set(key, value)?,
            Method::Adf(p) => p.set(key, value)?,
            Method::Fpde(p) => p.set(key, value)?,
            Method::Cbf(p) => p.set(key, value)?,
            Method::Vsmwls(p) => p.set(key, value)?,
            Method::Ifevip(p) => p.set(key, value)?,
            Method::Gfce(p) => p.set(key, value)?,
            Method::HybridMsd(p) => p.set(key, value)?,
            Method::Msvd(p) => p.set(key, value)?,
            Method::Gtf(p) => p.set(key, value)?,
            Method::LatLrr(p) => p.set(key, value)?,
            Method::LpSr(p) => p.set_for("lp_sr", key, value)?,
            Method::RpSr(p) => p.set_for("rp_sr", key, value)?,
            _ => return Err(unknown_key(name, key, &known)),
        }
        Ok(())
    }

    pub fn info(&self) -> MethodInfo {
        MethodInfo {
            name: self.name(),
            description: self.description(),
            citation: self.citation(),
            params: self.params(),
            speed: self.speed(),
        }
    }

    /// Fuses `a` and `b`; both must have the same size.
    pub fn fuse(&self, a: &Plane, b: &Plane) -> Result<Plane> {
        match *self {
            Method::Mean => crate::mean(a, b),
            Method::Max => crate::max(a, b),
            Method::Weighted(w) => crate::weighted(a, b, w),
            Method::Lp { levels } => crate::lp(a, b, levels),
            Method::Gff => crate::gff_with(a, b, &GffParams::default()),
            Method::Dwt { levels } => crate::dwt(a, b, levels),
            Method::Tif(p) => crate::tif(a, b, &p),
            Method::Mgff(p) => crate::mgff(a, b, &p),
            Method::HmsdGf(p) => crate::hmsd_gf(a, b, &p),
            Method::Adf(p) => crate::adf_with(a, b, &p),
            Method::Fpde(p) => crate::fpde_with(a, b, &p),
            Method::Cbf(p) => crate::cbf_with(a, b, &p),
            Method::Vsmwls(p) => crate::vsmwls_with(a, b, &p),
            Method::Ifevip(p) => crate::ifevip_with(a, b, &p),
            Method::Gfce(p) => crate::gfce_with(a, b, &p),
            Method::HybridMsd(p) => crate::hybrid_msd(a, b, &p),
            Method::Msvd(p) => crate::msvd(a, b, &p),
            Method::Gtf(p) => crate::gtf_with(a, b, &p),
            Method::LatLrr(p) => crate::latlrr_with(a, b, &p),
            Method::LpSr(p) => crate::lp_sr(a, b, &p),
            Method::RpSr(p) => crate::rp_sr(a, b, &p),
        }
    }

    /// Fuses gray infrared `a` with the channels of visible `b` the way VIFB's `run_*.m` handle a
    /// colour visible image: jointly for IFEVIP and GTF (one set of statistics over all
    /// channels), channel by channel for the others; a gray `b` is one channel.
    pub fn fuse_channels(&self, a: &Plane, b: &[Plane]) -> Result<Vec<Plane>> {
        self.fuse_color(std::slice::from_ref(a), b)
    }

    /// Fuses the channels of two sources (1 or 3 each, 0..=255 scale; `a` infrared, `b` visible)
    /// the way VIFB's `run_*.m` handle what `imread` returns: IFEVIP turns a colour infrared image
    /// gray (MATLAB's `rgb2gray`) and fuses it with all visible channels jointly; GTF fuses all
    /// channels jointly (`ir − vis` channel by channel); every other method fuses channel `c` of
    /// `a` with channel `c` of `b`. A one-channel source takes part in every channel. The result
    /// has as many channels as the larger source (IFEVIP: as the visible one).
    pub fn fuse_color(&self, a: &[Plane], b: &[Plane]) -> Result<Vec<Plane>> {
        let n = channel_count(self.name(), a, b)?;
        match self {
            Method::Ifevip(p) if a.len() == 1 => crate::ifevip_channels(&a[0], b, p),
            Method::Ifevip(p) => crate::ifevip_channels(&rgb2gray(a), b, p),
            Method::Gtf(p) => crate::gtf::gtf_color(a, b, p),
            m => (0..n).map(|c| m.fuse(channel(a, c), channel(b, c))).collect(),
        }
    }

    /// Every method with its default parameters, in registry order.
    pub fn defaults() -> Vec<Method> {
        vec![
            Method::Mean,
            Method::Max,
            Method::Weighted(0.5),
            Method::Lp { levels: crate::lp::DEFAULT_LEVELS },
            Method::Gff,
            Method::Dwt { levels: crate::dwt::DEFAULT_LEVELS },
            Method::Tif(TifParams::default()),
            Method::Mgff(MgffParams::default()),
            Method::HmsdGf(HmsdGfParams::default()),
            Method::Adf(AdfParams::default()),
            Method::Fpde(FpdeParams::default()),
            Method::Cbf(CbfParams::default()),
            Method::Vsmwls(VsmwlsParams::default()),
            Method::Ifevip(IfevipParams::default()),
            Method::Gfce(GfceParams::default()),
            Method::HybridMsd(HybridMsdParams::default()),
            Method::Msvd(MsvdParams::default()),
            Method::Gtf(GtfParams::default()),
            Method::LatLrr(LatLrrParams::default()),
            Method::LpSr(MstSrParams::default()),
            Method::RpSr(MstSrParams::default()),
        ]
    }
}

/// Channel `c` of a source given as 1 or more channels (a single channel stands for all).
pub(crate) fn channel(p: &[Plane], c: usize) -> &Plane {
    &p[if p.len() == 1 { 0 } else { c }]
}

/// The number of channels of a fusion of sources with `a.len()` and `b.len()` channels: each must
/// have 1 channel or the larger number, and every plane the size of the others.
pub(crate) fn channel_count(method: &'static str, a: &[Plane], b: &[Plane]) -> Result<usize> {
    let n = a.len().max(b.len());
    if a.is_empty() || b.is_empty() || ![1, n].contains(&a.len()) || ![1, n].contains(&b.len()) {
        return Err(Error::InvalidParameter {
            method,
            msg: format!("cannot fuse a source of {} channel(s) with one of {}", a.len(), b.len()),
        });
    }
    for c in 0..n {
        crate::check_pair(channel(a, c), channel(b, c))?;
        crate::check_pair(channel(a, c), &a[0])?;
    }
    Ok(n)
}

/// MATLAB's `rgb2gray` of an 8-bit image: `0.298936021293775·R + 0.587043074451121·G +
/// 0.114020904255103·B`, rounded to 8 bits (values outside 0..=255 saturate, as `imread`'s `uint8`
/// cannot hold them).
fn rgb2gray(rgb: &[Plane]) -> Plane {
    const K: [f64; 3] = [0.298_936_021_293_775, 0.587_043_074_451_121, 0.114_020_904_255_103];
    let n = rgb[0].data.len();
    let data = (0..n)
        .map(|i| {
            let v: f64 = rgb.iter().zip(K).map(|(p, k)| k * f64::from(p.data[i]).round().clamp(0.0, 255.0)).sum();
            v.round().clamp(0.0, 255.0) as f32
        })
        .collect();
    Plane::new(rgb[0].width, rgb[0].height, data)
}

fn parse_weight(a: &str) -> Result<f32> {
    match a.trim().parse::<f32>() {
        Ok(w) if (0.0..=1.0).contains(&w) => Ok(w),
        _ => Err(Error::InvalidParameter {
            method: "weighted",
            msg: format!("weight must be a number in [0, 1], got `{a}`"),
        }),
    }
}

/// Writes `name` followed by `:key=value,…` for the parameters that differ from `default`.
fn write_changed(f: &mut fmt::Formatter<'_>, m: &Method, default: &Method) -> fmt::Result {
    f.write_str(m.name())?;
    let changed: Vec<String> = m
        .params()
        .into_iter()
        .zip(default.params())
        .filter(|(p, d)| p.value != d.value)
        .map(|(p, _)| format!("{}={}", p.key, p.value))
        .collect();
    if !changed.is_empty() {
        write!(f, ":{}", changed.join(","))?;
    }
    Ok(())
}

/// Name, description and citation of every method, in registry order.
pub fn all() -> Vec<MethodInfo> {
    Method::defaults().iter().map(Method::info).collect()
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::Weighted(w) => write!(f, "weighted:{w}"),
            Method::Lp { levels } => write!(f, "lp:{levels}"),
            Method::Dwt { levels } => write!(f, "dwt:{levels}"),
            Method::Tif(_) => write_changed(f, self, &Method::Tif(TifParams::default())),
            Method::Mgff(_) => write_changed(f, self, &Method::Mgff(MgffParams::default())),
            Method::HmsdGf(_) => write_changed(f, self, &Method::HmsdGf(HmsdGfParams::default())),
            Method::Adf(_) => write_changed(f, self, &Method::Adf(AdfParams::default())),
            Method::Fpde(_) => write_changed(f, self, &Method::Fpde(FpdeParams::default())),
            Method::Cbf(_) => write_changed(f, self, &Method::Cbf(CbfParams::default())),
            Method::Vsmwls(_) => write_changed(f, self, &Method::Vsmwls(VsmwlsParams::default())),
            Method::Ifevip(_) => write_changed(f, self, &Method::Ifevip(IfevipParams::default())),
            Method::Gfce(_) => write_changed(f, self, &Method::Gfce(GfceParams::default())),
            Method::HybridMsd(_) => write_changed(f, self, &Method::HybridMsd(HybridMsdParams::default())),
            Method::Msvd(_) => write_changed(f, self, &Method::Msvd(MsvdParams::default())),
            Method::Gtf(_) => write_changed(f, self, &Method::Gtf(GtfParams::default())),
            Method::LatLrr(_) => write_changed(f, self, &Method::LatLrr(LatLrrParams::default())),
            Method::LpSr(_) => write_changed(f, self, &Method::LpSr(MstSrParams::default())),
            Method::RpSr(_) => write_changed(f, self, &Method::RpSr(MstSrParams::default())),
            m => f.write_str(m.name()),
        }
    }
}

impl FromStr for Method {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        let (name, arg) = match t.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (t.as_str(), None),
        };
        let unknown = || Error::UnknownMethod(s.to_string());
        let levels = |method: &'static str, default: usize| -> Result<usize> {
            match arg {
                None => Ok(default),
                Some(a) => match a.parse::<usize>() {
                    Ok(n) if n >= 1 => Ok(n),
                    _ => Err(Error::InvalidParameter {
                        method,
                        msg: format!("levels must be an integer >= 1, got `{a}`"),
                    }),
                },
            }
        };
        let no_arg = |m: Method| if arg.is_none() { Ok(m) } else { Err(unknown()) };
        // `name[:key=value,...]`
        let keyed = |mut m: Method| -> Result<Method> {
            for kv in arg.into_iter().flat_map(|a| a.split(',')).filter(|kv| !kv.trim().is_empty()) {
                let (k, v) = kv.split_once('=').ok_or_else(|| Error::InvalidParameter {
                    method: m.name(),
                    msg: format!("expected key=value, got `{kv}`"),
                })?;
                m.set_param(k, v)?;
            }
            Ok(m)
        };
        match name {
            "mean" => no_arg(Method::Mean),
            "max" => no_arg(Method::Max),
            "gff" => no_arg(Method::Gff),
            "weighted" => {
                let w = match arg {
                    None => 0.5,
                    Some(a) => match a.parse::<f32>() {
                        Ok(w) if (0.0..=1.0).contains(&w) => w,
                        _ => {
                            return Err(Error::InvalidParameter {
                                method: "weighted",
                                msg: format!("weight must be a number in [0, 1], got `{a}`"),
                            });
                        }
                    },
                };
                Ok(Method::Weighted(w))
            }
            "lp" => Ok(Method::Lp { levels: levels("lp", crate::lp::DEFAULT_LEVELS)? }),
            "dwt" => Ok(Method::Dwt { levels: levels("dwt", crate::dwt::DEFAULT_LEVELS)? }),
            "tif" => keyed(Method::Tif(TifParams::default())),
            "mgff" => keyed(Method::Mgff(MgffParams::default())),
            "hmsd_gf" => keyed(Method::HmsdGf(HmsdGfParams::default())),
            "adf" => keyed(Method::Adf(AdfParams::default())),
            "fpde" => keyed(Method::Fpde(FpdeParams::default())),
            "cbf" => keyed(Method::Cbf(CbfParams::default())),
            "vsmwls" => keyed(Method::Vsmwls(VsmwlsParams::default())),
            "ifevip" => keyed(Method::Ifevip(IfevipParams::default())),
            "gfce" => keyed(Method::Gfce(GfceParams::default())),
            "hybrid_msd" => keyed(Method::HybridMsd(HybridMsdParams::default())),
            "msvd" => keyed(Method::Msvd(MsvdParams::default())),
            "gtf" => keyed(Method::Gtf(GtfParams::default())),
            "latlrr" => keyed(Method::LatLrr(LatLrrParams::default())),
            "lp_sr" => keyed(Method::LpSr(MstSrParams::default())),
            "rp_sr" => keyed(Method::RpSr(MstSrParams::default())),
            _ => Err(unknown()),
        }
    }
}
