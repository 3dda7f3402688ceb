//! Two-scale image fusion (TIF).
//!
//! D. P. Bavirisetti and R. Dhuli, "Two-scale image fusion of visible and infrared images using
//! saliency detection", Infrared Physics & Technology 76:52–64, 2016, with the parameters of
//! VIFB's `methods/TIF` code (checked against it under GNU Octave, `tests/vifb_octave_b.rs`).
//!
//! For each source `I_n` (0..=255 scale):
//! 1. base `B_n = I_n * Z`, `Z` the `M×M` average filter with a periodic (circular) border;
//!    detail `D_n = I_n − B_n`;
//! 2. saliency `S_n = (B_n − med_N(I_n))²`, `med_N` the `N×N` median filter with zeros outside
//!    the image (MATLAB `medfilt2`);
//! 3. `F = ½(B_1 + B_2) + (S_1 D_1 + S_2 D_2) / (S_1 + S_2)`.
//!
//! Where `S_1 + S_2 = 0` the MATLAB code divides 0 by 0 and its `uint8` conversion turns the
//! pixel black; here both details get weight ½ instead (the only deviation). Symmetric in its
//! inputs; any size from 1×1 (the circular window simply wraps around as often as needed).

use crate::grid::Grid;
use crate::matlab::{box_mean_circular, medfilt2};
use crate::params::{ParamInfo, Params, bad, info, parse_odd, unknown_key};
use crate::{Result, check_pair};
use mmif_io::Plane;

/// Parameters of [`tif`]; [`Default`] is VIFB's `N = 3`, `M = 35`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TifParams {
    /// Side `N` of the median filter (odd).
    pub median: usize,
    /// Side `M` of the average filter of the two-scale decomposition (odd).
    pub mean: usize,
}

impl Default for TifParams {
    fn default() -> Self {
        Self { median: 3, mean: 35 }
    }
}

impl TifParams {
    fn validate(&self) -> Result<()> {
        for (key, v) in [("median", self.median), ("mean", self.mean)] {
            if v % 2 == 0 {
                return Err(bad("tif", format!("{key} must be an odd integer, got {v}")));
            }
        }
        Ok(())
    }
}

impl Params for TifParams {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "median" => self.median = parse_odd("tif", key, value, 1, 99)?,
            "mean" => self.mean = parse_odd("tif", key, value, 1, 999)?,
            _ => return Err(unknown_key("tif", key, &self.list())),
        }
        Ok(())
    }

    fn list(&self) -> Vec<ParamInfo> {
        vec![
            info("median", self.median, "side of the median filter of the saliency (odd)"),
            info("mean", self.mean, "side of the average filter of the two-scale split (odd)"),
        ]
    }
}

/// Two-scale image fusion of `a` and `b` (0..=255 scale); see the module documentation.
pub fn tif(a: &Plane, b: &Plane, prm: &TifParams) -> Result<Plane> {
    check_pair(a, b)?;
    prm.validate()?;
    let (ia, ib) = (Grid::from_plane(a), Grid::from_plane(b));
    let split = |g: &Grid| {
        let (base, med) = rayon::join(|| box_mean_circular(g, prm.mean), || medfilt2(g, prm.median));
        let sal = base.zip_map(&med, |b, m| (b - m) * (b - m));
        (base, sal)
    };
    let ((ba, sa), (bb, sb)) = rayon::join(|| split(&ia), || split(&ib));
    let mut out = Grid::zeros(a.width, a.height);
    for (k, o) in out.data.iter_mut().enumerate() {
        let (da, db) = (ia.data[k] - ba.data[k], ib.data[k] - bb.data[k]);
        let s = sa.data[k] + sb.data[k];
        let detail = if s > 0.0 { (sa.data[k] * da + sb.data[k] * db) / s } else { 0.5 * (da + db) };
        *o = 0.5 * (ba.data[k] + bb.data[k]) + detail;
    }
    Ok(out.to_plane())
}
