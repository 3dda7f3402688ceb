//! Hybrid multi-scale decomposition with Gaussian and bilateral filters (Hybrid-MSD).
//!
//! Z. Zhou, B. Wang, S. Li and M. Dong, "Perceptual fusion of infrared and visible images through a
//! hybrid multi-scale decomposition with Gaussian and bilateral filters", Information Fusion
//! 30:15–26, 2016, with the parameters and arithmetic of VIFB's `methods/Hybrid_MSD` code (checked
//! against it under GNU Octave, `tests/vifb_octave_b.rs`). Not symmetric: `a` is the infrared image
//! whose salient features are injected into the visible image `b`.
//!
//! With `L` levels (σ_1 = 2, σ_{j+1} = 2σ_j, σ_r,1 = 0.05, σ_r,j+1 = σ_r,j / 2), each source is split
//! as `M^j = Gauss_{σ_j}(M^{j-1})` (radius ⌊3σ_j⌋, mirrored border) and
//! `M_L^j = 255 · BF_{σ_j, σ_r,j}(M_L^{j-1} / 255)`, where `BF` is Paris and Durand's fast
//! bilateral-grid approximation of the bilateral filter as the MEX file `fast_blf.cpp` of the VIFB
//! code computes it ([`fast_bilateral`]); edge layers `E^j = M_L^j − M^j`, detail layers
//! `D^j = M^{j-1} − M_L^j`. The layers are combined as in HMSD-GF ([`crate::hmsd_gf`]) with a fixed
//! `λ = 30` and the finest level's choice maps not smoothed (VIFB: a Gaussian of σ 0.2, whose
//! ⌊3σ⌋ = 0 radius makes it the identity); the result is clamped to 0..=255.
//!
//! Deviations, all where the MATLAB code cannot run: where no level has an infrared-dominant edge
//! (`max(|E_a| − |E_b|, 0) = 0`, MATLAB divides 0 by 0 and returns NaN, a black image) `P = 0`;
//! one level (MATLAB: undefined variable) blends the base with the level-2 map; sources outside
//! 0..=255 (MATLAB: an error in `fast_bfilter2`) are filtered all the same.

use crate::grid::Grid;
use crate::hmsd_gf::{Combine, Layers, combine, gaussian_symmetric};
use crate::params::{ParamInfo, Params, bad, info, parse_positive, parse_usize, require_positive, unknown_key};
use crate::{Result, check_pair};
use mmif_io::Plane;
use rayon::prelude::*;

/// Parameters of [`hybrid_msd`]; [`Default`] is VIFB's code.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HybridMsdParams {
    /// Number of decomposition levels `L` (VIFB: 4).
    pub levels: usize,
    /// Injection strength `λ` (VIFB: 30).
    pub lambda: f64,
    /// Spatial σ of the first level, doubled at each level (VIFB: 2).
    pub sigma: f64,
    /// Range σ of the first level's bilateral filter on the 0..=1 scale, halved at each level (VIFB: 0.05).
    pub sigma_r: f64,
}

impl Default for HybridMsdParams {
    fn default() -> Self {
        Self { levels: 4, lambda: 30.0, sigma: 2.0, sigma_r: 0.05 }
    }
}

const NAME: &str = "hybrid_msd";
/// Bounds that keep the work per call bounded (the base Gaussian's radius is `3·2^{L+1}σ`).
const MAX_LEVELS: usize = 6;
const SIGMA_RANGE: (f64, f64) = (0.5, 8.0);
/// Largest bilateral grid, in cells (16 bytes each): 4 GiB.
const MAX_GRID_CELLS: usize = 1 << 28;

impl HybridMsdParams {
    fn validate(&self) -> Result<()> {
        if !(1..=MAX_LEVELS).contains(&self.levels) {
            return Err(bad(NAME, format!("levels must be in 1..={MAX_LEVELS}, got {}", self.levels)));
        }
        require_positive(NAME, &[("lambda", self.lambda), ("sigma", self.sigma), ("sigma_r", self.sigma_r)])?;
        if !(SIGMA_RANGE.0..=SIGMA_RANGE.1).contains(&self.sigma) {
            return Err(bad(
                NAME,
                format!("sigma must be in {}..={}, got {}", SIGMA_RANGE.0, SIGMA_RANGE.1, self.sigma),
            ));
        }
        Ok(())
    }
}

impl Params for HybridMsdParams {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "levels" => self.levels = parse_usize(NAME, key, value, 1, MAX_LEVELS)?,
            "lambda" => self.lambda = parse_positive(NAME, key, value)?,
            "sigma" => {
                let s = parse_positive(NAME, key, value)?;
                if !(SIGMA_RANGE.0..=SIGMA_RANGE.1).contains(&s) {
                    return Err(bad(
                        NAME,
                        format!("sigma must be in {}..={}, got `{value}`", SIGMA_RANGE.0, SIGMA_RANGE.1),
                    ));
                }
                self.sigma = s;
            }
            "sigma_r" => self.sigma_r = parse_positive(NAME, key, value)?,
            _ => return Err(unknown_key(NAME, key, &self.list())),
        }
        Ok(())
    }

    fn list(&self) -> Vec<ParamInfo> {
        vec![
            info("levels", self.levels, "decomposition levels"),
            info("lambda", self.lambda, "infrared injection strength"),
            info("sigma", self.sigma, "spatial sigma of the first level (doubled per level)"),
            info("sigma_r", self.sigma_r, "bilateral range sigma of the first level, 0..1 scale (halved per level)"),
        ]
    }
}

/// The bilateral grid: `(Σ value, count)` per cell, cells indexed `(x · ny + y) · nz + z`.
struct BilateralGrid {
    nx: usize,
    ny: usize,
    nz: usize,
    cells: Vec<[f64; 2]>,
}

/// Cells between the image and the grid's border on each side (`fast_blf`'s padding).
const PAD: usize = 2;

/// `static_cast<unsigned>(v) + 1 + 2·PAD`: the grid's extent along one axis, `None` if it does not fit.
fn grid_extent(v: f64) -> Option<usize> {
    (v.is_finite() && v < (u32::MAX / 2) as f64).then(|| v as usize + 1 + 2 * PAD)
}

impl BilateralGrid {
    /// `[1 2 1]/4` along every axis, twice, the cells on the grid's faces kept at zero (the
    /// reference smooths the interior only and its faces are never filled).
    fn blur(&mut self) {
        let (nx, ny, nz) = (self.nx, self.ny, self.nz);
        let step = |prev: [f64; 2], cur: [f64; 2], next: [f64; 2]| {
            [(prev[0] + next[0] + 2.0 * cur[0]) / 4.0, (prev[1] + next[1] + 2.0 * cur[1]) / 4.0]
        };
        // (b[i-1] + b[i+1] + 2 b[i]) / 4 in place along a line, `stride` cells apart.
        let line = |v: &mut [[f64; 2]], start: usize, stride: usize, n: usize| {
            let mut prev = v[start];
            for i in 1..n - 1 {
                let k = start + i * stride;
                let cur = v[k];
                v[k] = step(prev, cur, v[k + stride]);
                prev = cur;
            }
        };
        for _ in 0..2 {
            // x: one yz-plane after the other, the previous plane kept
            let plane = ny * nz;
            let mut prev = self.cells[..plane].to_vec();
            for x in 1..nx - 1 {
                let (head, tail) = self.cells.split_at_mut((x + 1) * plane);
                let cur = &mut head[x * plane..];
                let next = &tail[..plane];
                cur.par_iter_mut().zip(prev.par_iter_mut()).zip(next.par_iter()).with_min_len(4096).for_each(
                    |((c, p), &n)| {
                        let old = *c;
                        *c = step(*p, old, n);
                        *p = old;
                    },
                );
            }
        }
        for _ in 0..2 {
            // y: within each x slab
            self.cells.par_chunks_mut(ny * nz).for_each(|slab| {
                for z in 0..nz {
                    line(slab, z, nz, ny);
                }
            });
        }
        for _ in 0..2 {
            // z: contiguous lines
            self.cells.par_chunks_mut(nz).for_each(|l| line(l, 0, 1, nz));
        }
    }

    /// `Math_tools::trilinear_interpolation` of the reference: indices truncated and clamped to the
    /// grid, fractions and their products in `f32`, the eight terms summed in `f64`.
    fn interpolate(&self, x: f64, y: f64, z: f64) -> [f64; 2] {
        let idx = |v: f64, n: usize| {
            let i = (v as usize).min(n - 1);
            (i, (i + 1).min(n - 1), (v - i as f64) as f32)
        };
        let (x0, x1, xa) = idx(x, self.nx);
        let (y0, y1, ya) = idx(y, self.ny);
        let (z0, z1, za) = idx(z, self.nz);
        let at = |x: usize, y: usize, z: usize| self.cells[(x * self.ny + y) * self.nz + z];
        let terms = [
            ((1.0 - xa) * (1.0 - ya) * (1.0 - za), at(x0, y0, z0)),
            (xa * (1.0 - ya) * (1.0 - za), at(x1, y0, z0)),
            ((1.0 - xa) * ya * (1.0 - za), at(x0, y1, z0)),
            (xa * ya * (1.0 - za), at(x1, y1, z0)),
            ((1.0 - xa) * (1.0 - ya) * za, at(x0, y0, z1)),
            (xa * (1.0 - ya) * za, at(x1, y0, z1)),
            ((1.0 - xa) * ya * za, at(x0, y1, z1)),
            (xa * ya * za, at(x1, y1, z1)),
        ];
        let mut acc = [0.0f64; 2];
        for (k, (w, v)) in terms.into_iter().enumerate() {
            let w = f64::from(w);
            if k == 0 {
                acc = [w * v[0], w * v[1]];
            } else {
                acc = [acc[0] + w * v[0], acc[1] + w * v[1]];
            }
        }
        acc
    }
}

/// Paris and Durand's bilateral-grid approximation of the bilateral filter of `src` (guided by
/// itself), as `fast_LBF(image, image, σ_s, σ_r, false, …)` of VIFB's `fast_blf.cpp` computes it:
/// every pixel adds `(value, 1)` to the grid cell nearest to `(x/σ_s, y/σ_r, (v − min)/σ_r)`
/// (2 cells of zero padding on every side), the grid is smoothed with `[1 2 1]/4` twice along each
/// axis, and each pixel reads the grid back by trilinear interpolation, dividing the sums by the
/// weights. Errors if the grid would exceed [`MAX_GRID_CELLS`].
pub(crate) fn fast_bilateral(src: &Grid, sigma_s: f64, sigma_r: f64) -> Result<Grid> {
    let (w, h) = (src.w, src.h);
    let lo = src.data.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = src.data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let too_large = || {
        bad(
            NAME,
            format!(
                "the bilateral grid for a {w}x{h} image with sigma {sigma_s} and range sigma {sigma_r} \
                 (value range {lo}..{hi}) would exceed {MAX_GRID_CELLS} cells; increase sigma or sigma_r"
            ),
        )
    };
    let nx = grid_extent((w - 1) as f64 / sigma_s).ok_or_else(too_large)?;
    let ny = grid_extent((h - 1) as f64 / sigma_s).ok_or_else(too_large)?;
    let nz = grid_extent((hi - lo) / sigma_r).ok_or_else(too_large)?;
    let n = nx.checked_mul(ny).and_then(|v| v.checked_mul(nz)).filter(|&n| n <= MAX_GRID_CELLS);
    let n = n.ok_or_else(too_large)?;
    let mut g = BilateralGrid { nx, ny, nz, cells: vec![[0.0; 2]; n] };

    // Downsampling, in the reference's order (x outer, y inner) within each cell: every x-slab of
    // the grid is filled by the image columns that round to it.
    let cell = |v: f64, s: f64| (v / s + 0.5) as usize + PAD;
    let slab_of: Vec<usize> = (0..w).map(|x| cell(x as f64, sigma_s)).collect();
    g.cells.par_chunks_mut(ny * nz).enumerate().for_each(|(sx, slab)| {
        let first = slab_of.partition_point(|&s| s < sx);
        let end = slab_of.partition_point(|&s| s <= sx);
        for x in first..end {
            for y in 0..h {
                let v = src.data[y * w + x];
                let sy = cell(y as f64, sigma_s);
                let sz = cell(v - lo, sigma_r);
                let c = &mut slab[sy * nz + sz];
                c[0] += v;
                c[1] += 1.0;
            }
        }
    });
    g.blur();

    let mut out = Grid::zeros(w, h);
    let pad = PAD as f64;
    crate::grid::for_each_row(&mut out.data, w, |y, row| {
        let gy = y as f64 / sigma_s + pad;
        for (x, o) in row.iter_mut().enumerate() {
            let v = src.data[y * w + x];
            let d = g.interpolate(x as f64 / sigma_s + pad, gy, (v - lo) / sigma_r + pad);
            *o = d[0] / d[1];
        }
    });
    Ok(out)
}

/// One source's hybrid decomposition (0..=255 scale).
fn decompose(src: &Grid, prm: &HybridMsdParams) -> Result<Layers> {
    let (mut m, mut ml) = (src.clone(), src.clone());
    let (mut edge, mut detail) = (Vec::with_capacity(prm.levels), Vec::with_capacity(prm.levels));
    let (mut sigma, mut sigma_r) = (prm.sigma, prm.sigma_r);
    for _ in 0..prm.levels {
        let next_m = gaussian_symmetric(&m, sigma);
        let next_ml = fast_bilateral(&ml.map(|v| v / 255.0), sigma, sigma_r)?.map(|v| 255.0 * v);
        detail.push(m.zip_map(&next_ml, |a, b| a - b));
        edge.push(next_ml.zip_map(&next_m, |a, b| a - b));
        (m, ml) = (next_m, next_ml);
        sigma *= 2.0;
        sigma_r /= 2.0;
    }
    Ok(Layers { base: m, edge, detail })
}

/// Hybrid-MSD fusion of the infrared image `a` into the visible image `b` (0..=255 scale).
pub fn hybrid_msd(a: &Plane, b: &Plane, prm: &HybridMsdParams) -> Result<Plane> {
    check_pair(a, b)?;
    prm.validate()?;
    // One source after the other: the finest bilateral grid is the largest buffer (about
    // 16·w·h/σ² bytes · (1/σ_r + 5)).
    let la = decompose(&Grid::from_plane(a), prm)?;
    let lb = decompose(&Grid::from_plane(b), prm)?;
    let c = Combine { lambda: prm.lambda, fine_edge_sigma: 0.2, fine_detail_sigma: Some(0.2), noise: 255.0 * 1e-9 };
    Ok(combine(&la, &lb, &c).map(|v| v.clamp(0.0, 255.0)).to_plane())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::tests::pseudo_random;

    /// The reference's algorithm written the plain way: a fresh zero buffer per pass (its
    /// `swap(buffer, data)`), the interior updated from the buffer.
    fn blur_by_copies(g: &BilateralGrid) -> Vec<[f64; 2]> {
        let (nx, ny, nz) = (g.nx, g.ny, g.nz);
        let mut data = g.cells.clone();
        let mut buffer = vec![[0.0; 2]; data.len()];
        for off in [ny * nz, nz, 1] {
            for _ in 0..2 {
                std::mem::swap(&mut buffer, &mut data);
                for x in 1..nx - 1 {
                    for y in 1..ny - 1 {
                        for z in 1..nz - 1 {
                            let k = (x * ny + y) * nz + z;
                            for c in 0..2 {
                                data[k][c] = (buffer[k - off][c] + buffer[k + off][c] + 2.0 * buffer[k][c]) / 4.0;
                            }
                        }
                    }
                }
            }
        }
        data
    }

    #[test]
    fn in_place_blur_equals_the_buffered_reference() {
        for &(nx, ny, nz) in &[(5, 5, 5), (9, 7, 12), (6, 11, 8)] {
            let src = pseudo_random(nx * ny * nz, 1, (nx * 100 + ny * 10 + nz) as u64);
            let mut cells = vec![[0.0; 2]; nx * ny * nz];
            // only the interior at least PAD from the faces is filled, as by the downsampling
            for x in PAD..nx - PAD {
                for y in PAD..ny - PAD {
                    for z in PAD..nz - PAD {
                        let k = (x * ny + y) * nz + z;
                        cells[k] = [src.data[k], (k % 3) as f64];
                    }
                }
            }
            let mut g = BilateralGrid { nx, ny, nz, cells };
            let want = blur_by_copies(&g);
            g.blur();
            assert_eq!(g.cells, want, "{nx}x{ny}x{nz}");
        }
    }

    #[test]
    fn bilateral_filter_keeps_constants_and_averages_within_range() {
        let flat = Grid { w: 7, h: 5, data: vec![0.4; 35] };
        let f = fast_bilateral(&flat, 2.0, 0.05).unwrap();
        assert!(f.data.iter().all(|&v| (v - 0.4).abs() < 1e-12), "{:?}", f.data);
        let one = fast_bilateral(&Grid { w: 1, h: 1, data: vec![0.7] }, 16.0, 0.00625).unwrap();
        assert!((one.data[0] - 0.7).abs() < 1e-12);
        let g = pseudo_random(23, 17, 5).map(|v| v.rem_euclid(1.0));
        let f = fast_bilateral(&g, 2.0, 0.05).unwrap();
        let (lo, hi) = (g.data.iter().copied().fold(1.0, f64::min), g.data.iter().copied().fold(0.0, f64::max));
        assert!(f.data.iter().all(|&v| v >= lo - 1e-12 && v <= hi + 1e-12));
        // an edge of 0.5 against a range sigma of 0.05 is kept
        let step = Grid { w: 16, h: 8, data: (0..128).map(|i| if i % 16 < 8 { 0.2 } else { 0.7 }).collect() };
        let f = fast_bilateral(&step, 2.0, 0.05).unwrap();
        assert!(f.data.iter().zip(&step.data).all(|(a, b)| (a - b).abs() < 1e-9));
    }

    #[test]
    fn grids_beyond_the_limit_are_errors() {
        let g = Grid {
            w: 4,
            h: 4,
            data: vec![0.0, 1e9, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        };
        assert!(fast_bilateral(&g, 2.0, 0.05).is_err());
        let inf = Grid { w: 2, h: 1, data: vec![0.0, f64::INFINITY] };
        assert!(fast_bilateral(&inf, 2.0, 0.05).is_err());
    }
}
