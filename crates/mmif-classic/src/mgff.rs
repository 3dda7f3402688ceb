//! Multi-scale guided image fusion (MGFF).
//!
//! D. P. Bavirisetti, G. Xiao, J. Zhao, R. Dhuli and G. Liu, "Multi-scale Guided Image and Video
//! Fusion: A Fast and Efficient Approach", Circuits, Systems, and Signal Processing
//! 38:5576–5605, 2019, with the parameters of VIFB's `methods/MGFF` code (checked against it
//! under GNU Octave, `tests/vifb_octave_b.rs`).
//!
//! With `G(I, p)` He et al.'s guided filter (guide `I`, input `p`, radius `r`, regularisation `ε`
//! on the 0..=255 scale) and `A_1^0 = a`, `A_2^0 = b`, each of the `L` levels computes
//! `A_1^k = G(A_1^{k-1}, A_2^{k-1})`, `A_2^k = G(A_2^{k-1}, A_1^{k-1})` (each source's base layer
//! is the other source filtered under its guidance), details `D_n^k = A_n^{k-1} − A_n^k`, and
//! weights `w_n^k = |D_n^k| / (|D_1^k| + |D_2^k|)`. The result is
//! `F = ½(A_1^L + A_2^L) + Σ_k (w_1^k D_1^k + w_2^k D_2^k)`.
//!
//! Where both details are zero the MATLAB code divides 0 by 0 and its `uint8` conversion turns
//! the pixel black; here both get weight ½ (the only deviation). Symmetric in its inputs. The
//! MATLAB box filter needs images of at least `2r + 2` pixels a side; this one averages over the
//! part of each window inside the image, which is identical where MATLAB's runs, so any size
//! from 1×1 works.

use crate::gff::guided_filter;
use crate::grid::Grid;
use crate::params::{ParamInfo, Params, info, parse_positive, parse_usize, unknown_key};
use crate::{Result, check_pair};
use mmif_io::Plane;

/// Parameters of [`mgff`]; [`Default`] is VIFB's `r = 9`, `ε = 10³`, four levels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MgffParams {
    /// Guided-filter window radius `r`.
    pub radius: usize,
    /// Guided-filter regularisation `ε` (intensities on the 0..=255 scale).
    pub eps: f64,
    /// Number of decomposition levels `L`.
    pub levels: usize,
}

impl Default for MgffParams {
    fn default() -> Self {
        Self { radius: 9, eps: 1e3, levels: 4 }
    }
}

impl MgffParams {
    fn validate(&self) -> Result<()> {
        let mut p = Self::default();
        p.set("radius", &self.radius.to_string())?;
        p.set("eps", &self.eps.to_string())?;
        p.set("levels", &self.levels.to_string())
    }
}

impl Params for MgffParams {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "radius" => self.radius = parse_usize("mgff", key, value, 1, 1000)?,
            "eps" => self.eps = parse_positive("mgff", key, value)?,
            "levels" => self.levels = parse_usize("mgff", key, value, 1, 16)?,
            _ => return Err(unknown_key("mgff", key, &self.list())),
        }
        Ok(())
    }

    fn list(&self) -> Vec<ParamInfo> {
        vec![
            info("radius", self.radius, "guided-filter window radius"),
            info("eps", self.eps, "guided-filter regularisation (0..255 scale)"),
            info("levels", self.levels, "decomposition levels"),
        ]
    }
}

/// Multi-scale guided image fusion of `a` and `b` (0..=255 scale); see the module documentation.
pub fn mgff(a: &Plane, b: &Plane, prm: &MgffParams) -> Result<Plane> {
    check_pair(a, b)?;
    prm.validate()?;
    let (mut pa, mut pb) = (Grid::from_plane(a), Grid::from_plane(b));
    let mut fused = Grid::zeros(a.width, a.height);
    for _ in 0..prm.levels {
        let (na, nb) = rayon::join(
            || guided_filter(&pa, &pb, prm.radius, prm.eps),
            || guided_filter(&pb, &pa, prm.radius, prm.eps),
        );
        for k in 0..fused.data.len() {
            let (da, db) = (pa.data[k] - na.data[k], pb.data[k] - nb.data[k]);
            let (sa, sb) = (da.abs(), db.abs());
            let s = sa + sb;
            fused.data[k] += if s > 0.0 { (sa * da + sb * db) / s } else { 0.5 * (da + db) };
        }
        (pa, pb) = (na, nb);
    }
    for k in 0..fused.data.len() {
        fused.data[k] += 0.5 * (pa.data[k] + pb.data[k]);
    }
    Ok(fused.to_plane())
}
