//! Hybrid multi-scale decomposition with guided filters (HMSD-GF).
//!
//! Z. Zhou, M. Dong, X. Xie and Z. Gao, "Fusion of infrared and visible images for night-vision
//! context enhancement", Applied Optics 55(23):6480–6490, 2016 (the HMSD fusion of Zhou et al.,
//! Information Fusion 30:15–26, 2016, with guided filters in place of Gaussian and bilateral
//! filters), with the parameters of VIFB's `methods/HMSD_GF` code (checked against it under GNU
//! Octave, `tests/vifb_octave_b.rs`). Not symmetric: `a` is the infrared image whose salient
//! features are injected into the visible image `b`.
//!
//! With intensities divided by 255, `G_{r,ε}` He et al.'s guided filter of an image by itself and
//! `L` levels (`r_1 = 2`, `r_{j+1} = 2 r_j`, `ε_1 = 0.1`, `ε_{j+1} = ε_j / 2`), each source is
//! split as `M^j = G_{r_j,100²}(M^{j-1})` (a mean filter) and `M_L^j = G_{r_j,ε_j²}(M_L^{j-1})`
//! (edge-preserving), giving edge layers `E^j = M_L^j − M^j` and detail layers
//! `D^j = M^{j-1} − M_L^j`. From the coarsest level down to level 2 (of `L + 1`):
//! `P = max(|E_a^j| − |E_b^j|, 0) / max(·)`, `C = atan(λP) / atan(λ)` smoothed by a Gaussian of
//! σ 1, and both layers are blended `C·a + (1 − C)·b`; the base is `M^{L+1}` blended by the
//! coarsest `C` smoothed with a Gaussian of σ = 2^{L+2} (radius 3σ). The finest level picks the
//! larger `|E|` (choice map smoothed with σ 1) and the larger `|D|`. `λ` follows the relative
//! perceptual saliency `R_s = PS(a) / PS(b)` ([`crate::perceptual`]): 100 below 0.8, 2000 above
//! 1.6, `2500 R_s − 1900` between. The result is `clamp(275 · F, 0, 255)` — VIFB's code scales by
//! 275, not 255, brightening the image by 7.8 % (kept: it is what VIFB's published results show).
//!
//! Where the MATLAB code divides by zero (no infrared-dominant edge at a level, i.e.
//! `max(·) = 0`, here also `max(·) < 10⁻⁹`, the filters' rounding noise on flat images; a flat or smaller than 3×3 source, where `PS` is undefined) it produces NaN and
//! a white or black image; here `P = 0` and `λ = 100` instead (the only deviations). Gaussian
//! smoothing mirrors the border (MATLAB `'symmetric'`); the guided filters average over the part
//! of each window inside the image, which equals MATLAB's box filter wherever that one runs (it
//! needs sides of at least `2 r_L + 2` = 34 pixels), so any size from 1×1 works.

use crate::gff::guided_filter;
use crate::grid::Grid;
use crate::matlab::{correlate_separable_symmetric, fspecial_gaussian};
use crate::params::{ParamInfo, Params, bad, info, parse_usize, unknown_key};
use crate::perceptual::perceptual_saliency;
use crate::{Result, check_pair};
use mmif_io::Plane;

/// Parameters of [`hmsd_gf`]; [`Default`] is VIFB's code.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HmsdGfParams {
    /// Number of decomposition levels `L` (VIFB: 4).
    pub levels: usize,
    /// Injection strength `λ`; `None` chooses it from the relative perceptual saliency.
    pub lambda: Option<f64>,
    /// Output gain applied to the 0..=1 result (VIFB: 275).
    pub gain: f64,
}

impl Default for HmsdGfParams {
    fn default() -> Self {
        Self { levels: 4, lambda: None, gain: 275.0 }
    }
}

impl HmsdGfParams {
    fn validate(&self) -> Result<()> {
        if !(1..=8).contains(&self.levels) {
            return Err(bad("hmsd_gf", format!("levels must be in 1..=8, got {}", self.levels)));
        }
        if let Some(l) = self.lambda
            && !(l.is_finite() && l > 0.0)
        {
            return Err(bad("hmsd_gf", format!("lambda must be a finite number > 0 or auto, got {l}")));
        }
        if !(self.gain.is_finite() && self.gain > 0.0) {
            return Err(bad("hmsd_gf", format!("gain must be a finite number > 0, got {}", self.gain)));
        }
        Ok(())
    }
}

impl Params for HmsdGfParams {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let v = value.trim();
        match key {
            "levels" => self.levels = parse_usize("hmsd_gf", key, v, 1, 8)?,
            "lambda" if v == "auto" => self.lambda = None,
            "lambda" => match v.parse::<f64>() {
                Ok(l) if l.is_finite() && l > 0.0 => self.lambda = Some(l),
                _ => return Err(bad("hmsd_gf", format!("lambda must be a number > 0 or `auto`, got `{value}`"))),
            },
            "gain" => match v.parse::<f64>() {
                Ok(g) if g.is_finite() && g > 0.0 => self.gain = g,
                _ => return Err(bad("hmsd_gf", format!("gain must be a number > 0, got `{value}`"))),
            },
            _ => return Err(unknown_key("hmsd_gf", key, &self.list())),
        }
        Ok(())
    }

    fn list(&self) -> Vec<ParamInfo> {
        let lambda = self.lambda.map_or("auto".to_string(), |l| l.to_string());
        vec![
            info("levels", self.levels, "decomposition levels"),
            info("lambda", lambda, "infrared injection strength, or auto (from the perceptual saliency)"),
            info("gain", self.gain, "output = clamp(gain * fused[0..1], 0, 255); 255 keeps the scale"),
        ]
    }
}

/// `λ` from the relative perceptual saliency of the infrared and visible images.
fn auto_lambda(ir: &Grid, vis: &Grid) -> f64 {
    let rs = match (perceptual_saliency(ir), perceptual_saliency(vis)) {
        (Some(p), Some(q)) if q > 0.0 => p / q,
        _ => return 100.0,
    };
    if rs < 0.8 {
        100.0
    } else if rs > 1.6 {
        2000.0
    } else {
        2500.0 * rs - 1900.0
    }
}

/// One source's decomposition: `(M^{L+1}, E^2..=E^{L+1}, D^2..=D^{L+1})` (index 0 = level 2).
pub(crate) struct Layers {
    pub base: Grid,
    pub edge: Vec<Grid>,
    pub detail: Vec<Grid>,
}

fn decompose(src: &Grid, levels: usize) -> Layers {
    let (mut m, mut ml) = (src.clone(), src.clone());
    let (mut edge, mut detail) = (Vec::with_capacity(levels), Vec::with_capacity(levels));
    let (mut r, mut eps) = (2usize, 0.1f64);
    for _ in 0..levels {
        let (next_m, next_ml) =
            rayon::join(|| guided_filter(&m, &m, r, 100.0 * 100.0), || guided_filter(&ml, &ml, r, eps * eps));
        detail.push(m.zip_map(&next_ml, |a, b| a - b));
        edge.push(next_ml.zip_map(&next_m, |a, b| a - b));
        (m, ml) = (next_m, next_ml);
        r *= 2;
        eps /= 2.0;
    }
    Layers { base: m, edge, detail }
}

/// Below this largest edge excess (on the 0..=1 scale) `P` is taken as 0: such values are the
/// rounding noise of the filters on flat images (8-bit sources differ by at least 1/255),
/// which the normalisation by the maximum would otherwise blow up to a random blend.
const EDGE_NOISE: f64 = 1e-9;

/// `atan(λP)/atan(λ)` with `P = max(|e_a| − |e_b|, 0) / max(·)` (`P = 0` where the max is
/// below `noise`).
fn injection_map(ea: &Grid, eb: &Grid, lambda: f64, noise: f64) -> Grid {
    let r = ea.zip_map(eb, |a, b| (a.abs() - b.abs()).max(0.0));
    let rmax = r.data.iter().copied().fold(0.0, f64::max);
    let inv = if rmax > noise { 1.0 / rmax } else { 0.0 };
    let norm = lambda.atan();
    r.map(|v| (lambda * v * inv).atan() / norm)
}

pub(crate) fn gaussian_symmetric(g: &Grid, sigma: f64) -> Grid {
    let radius = (3.0 * sigma).floor() as usize;
    correlate_separable_symmetric(g, &fspecial_gaussian(radius, sigma))
}

/// `c·x + (1 − c)·y` added to `acc`.
fn blend_into(acc: &mut Grid, c: &Grid, x: &Grid, y: &Grid) {
    for k in 0..acc.data.len() {
        acc.data[k] += c.data[k] * x.data[k] + (1.0 - c.data[k]) * y.data[k];
    }
}

/// How [`combine`] treats the finest level and what it takes for rounding noise.
pub(crate) struct Combine {
    /// Injection strength `λ`.
    pub lambda: f64,
    /// σ of the Gaussian smoothing the finest level's edge choice map.
    pub fine_edge_sigma: f64,
    /// σ of the Gaussian smoothing the finest level's detail choice map; `None`: not smoothed.
    pub fine_detail_sigma: Option<f64>,
    /// Largest edge excess taken as rounding noise (`P = 0`), on the sources' scale.
    pub noise: f64,
}

/// The multi-scale combination shared by HMSD (Zhou et al. 2016) and HMSD-GF: infrared layers `la`
/// injected into visible layers `lb` (see the module documentation); returns the fused image on
/// the layers' scale. `σ_base = 2^{L+2}` for the base map, σ 1 for the coarser levels' maps.
pub(crate) fn combine(la: &Layers, lb: &Layers, c: &Combine) -> Grid {
    let levels = la.edge.len();
    let (w, h) = (la.base.w, la.base.h);
    // σ of the base-layer smoothing: 2·(2·2^L), as in the MATLAB loop.
    let sigma_base = 2.0 * 2.0 * (1u64 << levels) as f64;
    let mut fused = Grid::zeros(w, h);
    for j in (1..levels).rev() {
        let p = injection_map(&la.edge[j], &lb.edge[j], c.lambda, c.noise);
        if j == levels - 1 {
            let cb = gaussian_symmetric(&p, sigma_base);
            blend_into(&mut fused, &cb, &la.base, &lb.base);
        }
        let p = gaussian_symmetric(&p, 1.0);
        blend_into(&mut fused, &p, &la.edge[j], &lb.edge[j]);
        blend_into(&mut fused, &p, &la.detail[j], &lb.detail[j]);
    }
    if levels == 1 {
        // No coarser level: the base is blended by the level-2 map.
        let p = injection_map(&la.edge[0], &lb.edge[0], c.lambda, c.noise);
        blend_into(&mut fused, &gaussian_symmetric(&p, sigma_base), &la.base, &lb.base);
    }
    let pick = |x: &Grid, y: &Grid| x.zip_map(y, |p, q| if q.abs() < p.abs() { 1.0 } else { 0.0 });
    let c_edge = gaussian_symmetric(&pick(&la.edge[0], &lb.edge[0]), c.fine_edge_sigma);
    blend_into(&mut fused, &c_edge, &la.edge[0], &lb.edge[0]);
    let mut c_detail = pick(&la.detail[0], &lb.detail[0]);
    if let Some(s) = c.fine_detail_sigma {
        c_detail = gaussian_symmetric(&c_detail, s);
    }
    blend_into(&mut fused, &c_detail, &la.detail[0], &lb.detail[0]);
    fused
}

/// HMSD-GF fusion of the infrared image `a` into the visible image `b` (0..=255 scale).
pub fn hmsd_gf(a: &Plane, b: &Plane, prm: &HmsdGfParams) -> Result<Plane> {
    check_pair(a, b)?;
    prm.validate()?;
    let (ir, vis) = (Grid::from_plane(a), Grid::from_plane(b));
    let lambda = prm.lambda.unwrap_or_else(|| auto_lambda(&ir, &vis));
    let k = 1.0 / 255.0;
    let (la, lb) = rayon::join(
        || decompose(&Grid::from_plane_scaled(a, k), prm.levels),
        || decompose(&Grid::from_plane_scaled(b, k), prm.levels),
    );
    let fused =
        combine(&la, &lb, &Combine { lambda, fine_edge_sigma: 1.0, fine_detail_sigma: None, noise: EDGE_NOISE });
    Ok(fused.map(|v| (v * prm.gain).clamp(0.0, 255.0)).to_plane())
}
