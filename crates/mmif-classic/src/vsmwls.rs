//! Visual-saliency-map and weighted-least-squares fusion (VSMWLS).
//!
//! J. Ma, Z. Zhou, B. Wang and H. Zong, "Infrared and visible image fusion based on visual
//! saliency map and weighted least square optimization", Infrared Physics & Technology 82:8–17,
//! 2017. Parameters and arithmetic follow VIFB's `methods/VSMWLS` code; intensities are divided by
//! 255 first, as there, and the result is multiplied back.
//!
//! 1. four-level decomposition of each source: `G_1 = I`, `G_{i+1} = RGF(G_i, σ_s = 2^i, σ_r =
//!    0.05, 4 iterations)` for `i = 1..3` (rolling guidance: a Gaussian blur, then 4 guided
//!    filters of the input `G_i` guided by the previous result, radius σ_s, ε = σ_r²), and
//!    `G_5 = Gauss_2(G_4)`; `L_i = G_i − G_{i+1}`, base `L_5 = G_5`. Gaussians are MATLAB's
//!    `fspecial('gaussian', 2·round(3σ)+1, σ)` with replicated borders;
//! 2. base: `B = (½ + ½(V_a − V_b)) L_5^a + (½ + ½(V_b − V_a)) L_5^b` with `V` the visual saliency
//!    map (`Σ_i hist(i) |I − i|` over the 8-bit histogram, min–max normalised);
//! 3. finest detail level: choose-max by absolute value;
//! 4. levels 2–4: `M = C L^b + (1 − C) L^a` with `C` the choose-max map blurred by a 13×13
//!    Gaussian (σ = 2, symmetric borders), then the WLS solution
//!    `d = (M + λ A L^a)/(1 + λ A)`, `A = 1/(|mean_7×7(L^b)| + 10⁻⁶)`, `λ = 0.01` (the reference
//!    solves this diagonal system with a sparse backslash);
//! 5. `F = B + Σ d`.
//!
//! The reference's box filter needs a side of at least `2·8+1 = 17` pixels; here smaller images
//! use the window part inside the image, so every size works.

use crate::gff::guided_filter;
use crate::grid::{BoxBorder, Grid, box_mean, correlate_separable_replicate, gaussian_kernel};
use crate::matlab::correlate_separable_symmetric;
use crate::params::{
    ParamInfo, Params, info, parse_positive, parse_usize, require_at_most, require_positive, unknown_key,
};
use crate::{Result, check_pair};
use mmif_io::Plane;

/// Parameters of [`vsmwls_with`]; [`Default`] is VIFB's `WLS_Fusion.m`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VsmwlsParams {
    /// Range σ of the rolling guidance filters (0.05, intensities on `[0, 1]`).
    pub sigma_r: f64,
    /// Iterations of each rolling guidance filter (4).
    pub iterations: usize,
    /// Weight λ of the WLS detail term (0.01).
    pub lambda: f64,
}

impl Default for VsmwlsParams {
    fn default() -> Self {
        Self { sigma_r: 0.05, iterations: 4, lambda: 0.01 }
    }
}

impl VsmwlsParams {
    fn validate(&self) -> Result<()> {
        require_positive("vsmwls", &[("sigma_r", self.sigma_r), ("lambda", self.lambda)])?;
        require_at_most("vsmwls", "iterations", self.iterations, 1000)
    }
}

/// `--param key=value` keys of `vsmwls` (checked as a whole set when one changes).
impl Params for VsmwlsParams {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let mut next = *self;
        match key {
            "sigma_r" => next.sigma_r = parse_positive("vsmwls", key, value)?,
            "iterations" => next.iterations = parse_usize("vsmwls", key, value, 0, 1000)?,
            "lambda" => next.lambda = parse_positive("vsmwls", key, value)?,
            _ => return Err(unknown_key("vsmwls", key, &self.list())),
        }
        next.validate()?;
        *self = next;
        Ok(())
    }

    fn list(&self) -> Vec<ParamInfo> {
        vec![
            info("sigma_r", self.sigma_r, "range sigma of the rolling guidance filters (0..=1 scale)"),
            info("iterations", self.iterations, "iterations of each rolling guidance filter"),
            info("lambda", self.lambda, "weight of the WLS detail term"),
        ]
    }
}

/// The reference's `gaussFilter`: `fspecial('gaussian', 2·uint8(3σ)+1, σ)`, replicated borders.
fn gauss_filter(src: &Grid, sigma: f64) -> Grid {
    let r = (3.0 * sigma).round().clamp(0.0, 255.0) as usize;
    correlate_separable_replicate(src, &gaussian_kernel(r, sigma))
}

/// Rolling guidance filter with guided-filter steps (the reference's `RollingGuidanceFilter_Guided`).
fn rolling_guidance(src: &Grid, sigma_s: f64, sigma_r: f64, iterations: usize) -> Grid {
    let mut res = gauss_filter(src, sigma_s);
    for _ in 0..iterations {
        res = guided_filter(&res, src, sigma_s as usize, sigma_r * sigma_r);
    }
    res
}

/// The reference's `Visual_Weight_Map` on intensities in `[0, 1]`.
fn visual_weight_map(src: &Grid) -> Grid {
    let q = src.map(|v| crate::fpde::matlab_u8(255.0 * v));
    let mut hist = [0f64; 256];
    for &v in &q.data {
        hist[v as usize] += 1.0;
    }
    let sal: Vec<f64> = (0..256).map(|j| (0..256).map(|i| hist[i] * (j as f64 - i as f64).abs()).sum()).collect();
    let out = q.map(|v| sal[v as usize]);
    let (lo, hi) = out.data.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    // MATLAB/Octave mat2gray of a constant image clips it to [0, 1].
    if hi > lo { out.map(|v| (v - lo) / (hi - lo)) } else { out.map(|v| v.clamp(0.0, 1.0)) }
}

/// Four detail layers and the base layer of one source.
fn decompose(src: &Grid, prm: &VsmwlsParams) -> [Grid; 5] {
    let mut g = vec![src.clone()];
    let mut sigma_s = 2.0;
    for _ in 0..3 {
        let next = rolling_guidance(g.last().expect("non-empty"), sigma_s, prm.sigma_r, prm.iterations);
        g.push(next);
        sigma_s *= 2.0;
    }
    g.push(gauss_filter(&g[3], 2.0));
    let l = |i: usize| g[i].zip_map(&g[i + 1], |a, b| a - b);
    [l(0), l(1), l(2), l(3), g[4].clone()]
}

/// VSMWLS with VIFB's parameters; `a` is the infrared image, `b` the visible one (not symmetric:
/// the WLS term keeps infrared details where the visible image is flat).
pub fn vsmwls(a: &Plane, b: &Plane) -> Result<Plane> {
    vsmwls_with(a, b, &VsmwlsParams::default())
}

/// VSMWLS with explicit parameters.
pub fn vsmwls_with(a: &Plane, b: &Plane, prm: &VsmwlsParams) -> Result<Plane> {
    check_pair(a, b)?;
    prm.validate()?;
    let k = 1.0 / 255.0;
    let (ia, ib) = (Grid::from_plane_scaled(a, k), Grid::from_plane_scaled(b, k));
    let ((la, wa), (lb, wb)) =
        rayon::join(|| (decompose(&ia, prm), visual_weight_map(&ia)), || (decompose(&ib, prm), visual_weight_map(&ib)));
    let mut fused = Grid::zeros(a.width, a.height);
    for (i, f) in fused.data.iter_mut().enumerate() {
        let d = wa.data[i] - wb.data[i];
        let base = (0.5 + 0.5 * d) * la[4].data[i] + (0.5 - 0.5 * d) * lb[4].data[i];
        let (x, y) = (la[0].data[i], lb[0].data[i]);
        let finest = if x.abs() < y.abs() { y } else { x };
        *f = base + finest;
    }
    let gauss = gaussian_kernel(6, 2.0);
    for lvl in (1..4).rev() {
        let (l1, l2) = (&la[lvl], &lb[lvl]);
        let choose = l1.zip_map(l2, |x, y| if x.abs() < y.abs() { 1.0 } else { 0.0 });
        let c = correlate_separable_symmetric(&choose, &gauss);
        let mean_b = box_mean(l2, 3, BoxBorder::Replicate);
        for i in 0..fused.data.len() {
            let m = c.data[i] * l2.data[i] + (1.0 - c.data[i]) * l1.data[i];
            let aa = 1.0 / (mean_b.data[i].abs() + 1e-6);
            let lam2a = prm.lambda * (aa + aa);
            fused.data[i] += (2.0 * m + lam2a * l1.data[i]) / (2.0 + lam2a);
        }
    }
    Ok(fused.to_plane_scaled(255.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visual_weight_map_of_two_levels() {
        // values 0 (3 pixels) and 255 (1 pixel): saliency 255 and 3·255 → normalised 0 and 1.
        let g = Grid { w: 4, h: 1, data: vec![0.0, 0.0, 0.0, 1.0] };
        assert_eq!(visual_weight_map(&g).data, vec![0.0, 0.0, 0.0, 1.0]);
        let c = Grid { w: 2, h: 1, data: vec![0.5, 0.5] };
        assert_eq!(visual_weight_map(&c).data, vec![0.0, 0.0]);
    }

    #[test]
    fn rejects_bad_parameters() {
        let a = Plane::new(2, 2, vec![0.0; 4]);
        let prm = VsmwlsParams { lambda: -1.0, ..VsmwlsParams::default() };
        assert!(matches!(vsmwls_with(&a, &a, &prm), Err(crate::Error::InvalidParameter { method: "vsmwls", .. })));
    }
}
