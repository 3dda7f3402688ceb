//! Anisotropic-diffusion fusion (ADF).
//!
//! D. P. Bavirisetti and R. Dhuli, "Fusion of Infrared and Visible Sensor Images Based on
//! Anisotropic Diffusion and Karhunen–Loeve Transform", IEEE Sensors Journal 16(1):203–209, 2016.
//! Parameters and arithmetic follow VIFB's `methods/ADF` code (its `anisodiff2D` is Perona–Malik
//! diffusion on the 8-neighbourhood).
//!
//! 1. base layers `A_n`: `iterations` explicit Perona–Malik steps
//!    `I ← I + Δt Σ_d w_d g(∇_d I) ∇_d I` over the 8 neighbours `d` (`w = 1` for the 4 axial
//!    neighbours, `½` for the diagonal ones), `∇_d I` the neighbour minus the pixel with **zero**
//!    outside the image (MATLAB `imfilter`'s default border), and the conduction
//!    `g(x) = exp(−(x/κ)²)` (option 1) or `1/(1 + (x/κ)²)` (option 2);
//! 2. detail layers `D_n = I_n − A_n`;
//! 3. `F = w_a D_a + w_b D_b + (A_a + A_b)/2` with the Karhunen–Loève weights of the details.
//!
//! Intensities are on the 0..=255 scale (κ depends on it); no range is clamped.

use crate::grid::{Grid, for_each_row};
use crate::kl::kl_weights;
use crate::params::{
    ParamInfo, Params, bad, info, parse_positive, parse_usize, require_at_most, require_positive, unknown_key,
};
use crate::{Result, check_pair};
use mmif_io::Plane;

/// Edge-stopping (conduction) function of the diffusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduction {
    /// `exp(−(∇/κ)²)`: favours high-contrast edges (Perona–Malik option 1, VIFB's choice).
    Exponential,
    /// `1/(1 + (∇/κ)²)`: favours wide regions (option 2).
    Quadratic,
}

/// Parameters of [`adf_with`]; [`Default`] is VIFB's `run_ADF.m`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdfParams {
    /// Number of diffusion steps (10).
    pub iterations: usize,
    /// Step size Δt (0.15; stable for ≤ 1/7 per the 8-neighbour scheme's authors, 0.15 is VIFB's).
    pub delta_t: f64,
    /// Gradient modulus κ controlling the conduction (30, on the 0..=255 scale).
    pub kappa: f64,
    /// Conduction function (exponential).
    pub conduction: Conduction,
}

impl Default for AdfParams {
    fn default() -> Self {
        Self { iterations: 10, delta_t: 0.15, kappa: 30.0, conduction: Conduction::Exponential }
    }
}

impl AdfParams {
    fn validate(&self) -> Result<()> {
        require_positive("adf", &[("delta_t", self.delta_t), ("kappa", self.kappa)])?;
        require_at_most("adf", "iterations", self.iterations, 10_000)
    }
}

/// `--param key=value` keys of `adf` (checked as a whole set when one changes).
impl Params for AdfParams {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let mut next = *self;
        match key {
            "iterations" => next.iterations = parse_usize("adf", key, value, 0, 10000)?,
            "delta_t" => next.delta_t = parse_positive("adf", key, value)?,
            "kappa" => next.kappa = parse_positive("adf", key, value)?,
            "conduction" => {
                next.conduction = match value.trim() {
                    "exponential" | "exp" => Conduction::Exponential,
                    "quadratic" | "quad" => Conduction::Quadratic,
                    _ => return Err(bad("adf", format!("conduction must be exponential or quadratic, got `{value}`"))),
                }
            }
            _ => return Err(unknown_key("adf", key, &self.list())),
        }
        next.validate()?;
        *self = next;
        Ok(())
    }

    fn list(&self) -> Vec<ParamInfo> {
        vec![
            info("iterations", self.iterations, "number of diffusion steps"),
            info("delta_t", self.delta_t, "diffusion step size"),
            info("kappa", self.kappa, "gradient modulus of the conduction (0..=255 scale)"),
            info(
                "conduction",
                match self.conduction {
                    Conduction::Exponential => "exponential",
                    Conduction::Quadratic => "quadratic",
                },
                "conduction function: exponential or quadratic",
            ),
        ]
    }
}

/// Perona–Malik diffusion on the 8-neighbourhood with zero outside the image (VIFB's `anisodiff2D`).
pub(crate) fn anisotropic_diffusion(src: &Grid, prm: &AdfParams) -> Grid {
    let (w, h) = (src.w, src.h);
    let inv_k = 1.0 / prm.kappa;
    let cond = |d: f64| {
        let t = d * inv_k;
        match prm.conduction {
            Conduction::Exponential => (-(t * t)).exp(),
            Conduction::Quadratic => 1.0 / (1.0 + t * t),
        }
    };
    // 1/dd² with dd = √2, as the reference computes it.
    let diag = 1.0 / (std::f64::consts::SQRT_2 * std::f64::consts::SQRT_2);
    let mut cur = src.clone();
    let mut next = Grid::zeros(w, h);
    for _ in 0..prm.iterations {
        let c = &cur;
        for_each_row(&mut next.data, w, |y, o| {
            let row = c.row(y);
            let up = (y > 0).then(|| c.row(y - 1));
            let dn = (y + 1 < h).then(|| c.row(y + 1));
            for x in 0..w {
                let v = row[x];
                let at = |r: Option<&[f64]>, dx: isize| -> f64 {
                    let xx = x as isize + dx;
                    match r {
                        Some(r) if xx >= 0 && (xx as usize) < w => r[xx as usize],
                        _ => 0.0,
                    }
                };
                let flux = |n: f64| {
                    let d = n - v;
                    cond(d) * d
                };
                let axial = flux(at(up, 0)) + flux(at(dn, 0)) + flux(at(Some(row), -1)) + flux(at(Some(row), 1));
                let diagonal = flux(at(up, -1)) + flux(at(up, 1)) + flux(at(dn, -1)) + flux(at(dn, 1));
                o[x] = v + prm.delta_t * (axial + diag * diagonal);
            }
        });
        std::mem::swap(&mut cur, &mut next);
    }
    cur
}

/// ADF with VIFB's parameters; `a` is the infrared image, `b` the visible one (the method is
/// symmetric up to ties of the Karhunen–Loève eigenvalues).
pub fn adf(a: &Plane, b: &Plane) -> Result<Plane> {
    adf_with(a, b, &AdfParams::default())
}

/// ADF with explicit parameters.
pub fn adf_with(a: &Plane, b: &Plane, prm: &AdfParams) -> Result<Plane> {
    check_pair(a, b)?;
    prm.validate()?;
    let (ia, ib) = (Grid::from_plane(a), Grid::from_plane(b));
    let (ba, bb) = rayon::join(|| anisotropic_diffusion(&ia, prm), || anisotropic_diffusion(&ib, prm));
    let da = ia.zip_map(&ba, |i, b| i - b);
    let db = ib.zip_map(&bb, |i, b| i - b);
    let (wa, wb) = kl_weights(&da, &db);
    let mut out = Grid::zeros(a.width, a.height);
    for (k, o) in out.data.iter_mut().enumerate() {
        *o = (wa * da.data[k] + wb * db.data[k]) + (0.5 * ba.data[k] + 0.5 * bb.data[k]);
    }
    Ok(out.to_plane())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffusion_of_a_constant_image_only_leaks_at_the_zero_border() {
        let g = Grid { w: 5, h: 4, data: vec![100.0; 20] };
        let prm = AdfParams { iterations: 1, ..AdfParams::default() };
        let d = anisotropic_diffusion(&g, &prm);
        // interior pixel: all 8 differences are zero
        assert_eq!(d.data[6], 100.0);
        // corner: 5 neighbours outside, 3 of them axial-weight... 2 axial + 3 diagonal outside
        let f = (-(100.0f64 / 30.0).powi(2)).exp() * -100.0;
        let want = 100.0 + 0.15 * (2.0 * f + 3.0 * 0.5 * f);
        assert!((d.data[0] - want).abs() < 1e-9, "{} vs {want}", d.data[0]);
    }

    #[test]
    fn rejects_bad_parameters() {
        let a = Plane::new(2, 2, vec![0.0; 4]);
        let prm = AdfParams { kappa: 0.0, ..AdfParams::default() };
        assert!(matches!(adf_with(&a, &a, &prm), Err(crate::Error::InvalidParameter { method: "adf", .. })));
    }
}
