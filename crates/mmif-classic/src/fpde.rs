//! Fourth-order partial differential equation fusion (FPDE).
//!
//! D. P. Bavirisetti, G. Xiao and G. Liu, "Multi-sensor image fusion based on fourth order partial
//! differential equations", 20th International Conference on Information Fusion (Fusion), 2017.
//! Parameters and arithmetic follow VIFB's `methods/FPDE` code (`fpdepyou.m`, a You–Kaveh
//! fourth-order diffusion).
//!
//! 1. base layers `A_n`: `iterations` explicit steps `I ← I − Δt (∂x∂x(c·I_xx) + ∂y∂y(c·I_yy))`
//!    with `I_xx = ∂x∂x I`, `I_yy = ∂y∂y I`, `c = 1 / (1 + (√(I_xx² + I_yy²)/k)²)` and every
//!    derivative MATLAB's `gradient` (central differences inside, one-sided at the borders, 0
//!    along a dimension of length 1); the result is rounded to 8 bits (MATLAB `uint8`: half away
//!    from zero, saturating at 0 and 255), as the reference does;
//! 2. detail layers `D_n = I_n − A_n`, fused with Karhunen–Loève weights;
//! 3. base layers fused by the reference's 8-bit average `min(255, round(A_a/2) + round(A_b/2))`;
//! 4. `F = w_a D_a + w_b D_b + base`.
//!
//! Intensities are on the 0..=255 scale (the 8-bit rounding of step 1 and `k` depend on it).

use crate::grid::{Grid, for_each_row};
use crate::kl::kl_weights;
use crate::params::{
    ParamInfo, Params, info, parse_positive, parse_usize, require_at_most, require_positive, unknown_key,
};
use crate::{Result, check_pair};
use mmif_io::Plane;

/// Parameters of [`fpde_with`]; [`Default`] is VIFB's `fpdepyou.m` (the `n`, `dt`, `k` that
/// `run_FPDE.m` sets are shadowed there by the same values, except `n = 15` which is passed in).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FpdeParams {
    /// Number of diffusion steps (15).
    pub iterations: usize,
    /// Step size Δt (0.9).
    pub delta_t: f64,
    /// Edge threshold `k` of the conduction (4, on the 0..=255 scale).
    pub k: f64,
}

impl Default for FpdeParams {
    fn default() -> Self {
        Self { iterations: 15, delta_t: 0.9, k: 4.0 }
    }
}

impl FpdeParams {
    fn validate(&self) -> Result<()> {
        require_positive("fpde", &[("delta_t", self.delta_t), ("k", self.k)])?;
        require_at_most("fpde", "iterations", self.iterations, 10_000)
    }
}

/// `--param key=value` keys of `fpde` (checked as a whole set when one changes).
impl Params for FpdeParams {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let mut next = *self;
        match key {
            "iterations" => next.iterations = parse_usize("fpde", key, value, 0, 10000)?,
            "delta_t" => next.delta_t = parse_positive("fpde", key, value)?,
            "k" => next.k = parse_positive("fpde", key, value)?,
            _ => return Err(unknown_key("fpde", key, &self.list())),
        }
        next.validate()?;
        *self = next;
        Ok(())
    }

    fn list(&self) -> Vec<ParamInfo> {
        vec![
            info("iterations", self.iterations, "number of diffusion steps"),
            info("delta_t", self.delta_t, "diffusion step size"),
            info("k", self.k, "edge threshold of the conduction (0..=255 scale)"),
        ]
    }
}

/// MATLAB's conversion of a double to `uint8`: round half away from zero, saturate, NaN → 0.
pub(crate) fn matlab_u8(v: f64) -> f64 {
    if v.is_nan() { 0.0 } else { v.round().clamp(0.0, 255.0) }
}

/// MATLAB `gradient` along x (columns): `(f[x+1] − f[x−1])/2` inside, one-sided at the ends.
pub(crate) fn gradient_x(src: &Grid) -> Grid {
    let w = src.w;
    let mut out = Grid::zeros(w, src.h);
    for_each_row(&mut out.data, w, |y, o| {
        let s = src.row(y);
        if w < 2 {
            return;
        }
        o[0] = s[1] - s[0];
        o[w - 1] = s[w - 1] - s[w - 2];
        for x in 1..w - 1 {
            o[x] = (s[x + 1] - s[x - 1]) / 2.0;
        }
    });
    out
}

/// MATLAB `gradient` along y (rows).
pub(crate) fn gradient_y(src: &Grid) -> Grid {
    let (w, h) = (src.w, src.h);
    let mut out = Grid::zeros(w, h);
    if h < 2 {
        return out;
    }
    for_each_row(&mut out.data, w, |y, o| {
        let (lo, hi, half) = match y {
            0 => (0, 1, false),
            _ if y == h - 1 => (h - 2, h - 1, false),
            _ => (y - 1, y + 1, true),
        };
        let (a, b) = (src.row(lo), src.row(hi));
        for x in 0..w {
            o[x] = if half { (b[x] - a[x]) / 2.0 } else { b[x] - a[x] };
        }
    });
    out
}

/// VIFB's `fpdepyou`: fourth-order diffusion, rounded to 8 bits.
pub(crate) fn fourth_order_diffusion(src: &Grid, prm: &FpdeParams) -> Grid {
    let mut cur = src.clone();
    for _ in 0..prm.iterations {
        let ixx = gradient_x(&gradient_x(&cur));
        let iyy = gradient_y(&gradient_y(&cur));
        let c = ixx.zip_map(&iyy, |xx, yy| {
            let t = (xx * xx + yy * yy).sqrt() / prm.k;
            1.0 / (1.0 + t * t)
        });
        let div11 = gradient_x(&gradient_x(&c.zip_map(&ixx, |c, v| c * v)));
        let div22 = gradient_y(&gradient_y(&c.zip_map(&iyy, |c, v| c * v)));
        let div = div11.zip_map(&div22, |a, b| a + b);
        cur = cur.zip_map(&div, |i, d| i - prm.delta_t * d);
    }
    cur.map(matlab_u8)
}

/// FPDE with VIFB's parameters; `a` is the infrared image, `b` the visible one.
pub fn fpde(a: &Plane, b: &Plane) -> Result<Plane> {
    fpde_with(a, b, &FpdeParams::default())
}

/// FPDE with explicit parameters.
pub fn fpde_with(a: &Plane, b: &Plane, prm: &FpdeParams) -> Result<Plane> {
    check_pair(a, b)?;
    prm.validate()?;
    let (ia, ib) = (Grid::from_plane(a), Grid::from_plane(b));
    let (ba, bb) = rayon::join(|| fourth_order_diffusion(&ia, prm), || fourth_order_diffusion(&ib, prm));
    let da = ia.zip_map(&ba, |i, b| i - b);
    let db = ib.zip_map(&bb, |i, b| i - b);
    let (wa, wb) = kl_weights(&da, &db);
    let mut out = Grid::zeros(a.width, a.height);
    for (k, o) in out.data.iter_mut().enumerate() {
        let base = (matlab_u8(0.5 * ba.data[k]) + matlab_u8(0.5 * bb.data[k])).min(255.0);
        *o = (wa * da.data[k] + wb * db.data[k]) + base;
    }
    Ok(out.to_plane())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_matlab() {
        let g = Grid { w: 3, h: 2, data: vec![1.0, 4.0, 9.0, 2.0, 2.0, 2.0] };
        assert_eq!(gradient_x(&g).data, vec![3.0, 4.0, 5.0, 0.0, 0.0, 0.0]);
        assert_eq!(gradient_y(&g).data, vec![1.0, -2.0, -7.0, 1.0, -2.0, -7.0]);
        let one = Grid { w: 1, h: 1, data: vec![5.0] };
        assert_eq!(gradient_x(&one).data, vec![0.0]);
        assert_eq!(gradient_y(&one).data, vec![0.0]);
    }

    #[test]
    fn uint8_conversion_rounds_half_away_and_saturates() {
        assert_eq!(matlab_u8(2.5), 3.0);
        assert_eq!(matlab_u8(-0.5), 0.0);
        assert_eq!(matlab_u8(300.0), 255.0);
        assert_eq!(matlab_u8(f64::NAN), 0.0);
    }

    #[test]
    fn rejects_bad_parameters() {
        let a = Plane::new(2, 2, vec![0.0; 4]);
        let prm = FpdeParams { k: f64::NAN, ..FpdeParams::default() };
        assert!(matches!(fpde_with(&a, &a, &prm), Err(crate::Error::InvalidParameter { method: "fpde", .. })));
    }
}
