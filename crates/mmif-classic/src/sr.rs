//! Sparse-representation fusion of two images (the `sparse_fusion.m` step of VIFB's LP_SR and
//! RP_SR, after B. Yang and S. Li, "Multifocus image fusion and restoration with sparse
//! representation", IEEE Trans. Instrum. Meas. 59(4), 2010) and the dictionary it codes with.
//!
//! Patches of `p×p` pixels on a grid of step `p − overlap` (both sources at the same places) lose
//! their mean, are coded over the dictionary by error-constrained orthogonal matching pursuit
//! (residual `‖r‖₂ ≤ ε`, at most `p²` atoms), and the patch whose code has the larger l1 norm wins
//! (ties: source `a`) together with its own mean; overlapping patches are averaged, and pixels no
//! patch covers take the average of the two sources.
//!
//! The OMP is the batch OMP of R. Rubinstein's OMP-Box (Rubinstein, Zibulevsky & Elad, "Efficient
//! implementation of the K-SVD algorithm using batch orthogonal matching pursuit", Technion
//! CS-2008-08), which VIFB's code calls: the Gram matrix `DᵀD` is computed once, the Cholesky
//! factor of the selected atoms' Gram matrix grows by one row per atom, and the correlations and
//! the residual norm are updated from it without forming the residual. Its stopping rules are kept:
//! an atom chosen twice, a correlation below 1e-7, or a new atom dependent on the chosen ones
//! (`1 − ‖l‖² ≤ 1e-14`) end the pursuit. Patches are coded in parallel with rayon.

use crate::grid::Grid;
use crate::params::bad;
use crate::{Result, check_pair};
use mmif_io::Plane;
use rayon::prelude::*;

/// An overcomplete dictionary for `patch×patch` patches: unit-length atoms of `patch²` values
/// (column-major within the patch), with its Gram matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Dictionary {
    patch: usize,
    atoms: usize,
    /// Atom after atom (`dim` values each), unit length.
    d: Vec<f64>,
    /// `DᵀD`, `atoms × atoms` (symmetric).
    gram: Vec<f64>,
}

const DEFAULT_8X256: &[u8] = include_bytes!("data/sr_dict_8x256.f64");

impl Dictionary {
    /// A dictionary from its atoms (atom after atom, each `patch²` values in column-major patch
    /// order); every atom is scaled to unit length as VIFB's `sparse_fusion.m` does. The values must
    /// be finite and no atom may be zero.
    pub fn new(patch: usize, atoms: Vec<f64>) -> Result<Self> {
        let dim = patch.checked_mul(patch).filter(|&d| (1..=1024).contains(&d));
        let Some(dim) = dim else {
            return Err(bad("sr", format!("dictionary patch size must be in 1..=32, got {patch}")));
        };
        let k = atoms.len() / dim;
        if k == 0 || k * dim != atoms.len() || k > 4096 {
            return Err(bad(
                "sr",
                format!(
                    "a dictionary for {patch}x{patch} patches needs 1..=4096 atoms of {dim} values, got {} values",
                    atoms.len()
                ),
            ));
        }
        let mut d = atoms;
        for (j, atom) in d.chunks_exact_mut(dim).enumerate() {
            let norm = atom.iter().map(|v| v * v).sum::<f64>().sqrt();
            if !norm.is_finite() || norm == 0.0 {
                return Err(bad("sr", format!("dictionary atom {j} is zero or not finite")));
            }
            atom.iter_mut().for_each(|v| *v /= norm);
        }
        let mut gram = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..=i {
                let g: f64 = d[i * dim..(i + 1) * dim].iter().zip(&d[j * dim..(j + 1) * dim]).map(|(x, y)| x * y).sum();
                gram[i * k + j] = g;
                gram[j * k + i] = g;
            }
        }
        Ok(Self { patch, atoms: k, d, gram })
    }

    /// mmif's default 256-atom dictionary for 8×8 patches, learnt by K-SVD from TNO and RoadScene
    /// images that are not VIFB's (`tests/data/vifb/gen/learn_dictionary.m`, docs/vifb_sr.md).
    pub fn default_8x256() -> Self {
        let v: Vec<f64> =
            DEFAULT_8X256.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
        Self::new(8, v).expect("the shipped dictionary is valid")
    }

    /// The overcomplete 2-D DCT dictionary of KSVD-Box's `odctdict` (`atoms` a square, at least
    /// `patch²`): separable products of sampled cosines, the DC-free ones with their mean removed.
    pub fn overcomplete_dct(patch: usize, atoms: usize) -> Result<Self> {
        let side = (atoms as f64).sqrt().round() as usize;
        if patch == 0 || side * side != atoms || side < patch {
            return Err(bad("sr", format!("an overcomplete DCT needs a square number of atoms >= {0}x{0}", patch)));
        }
        let mut one = vec![0.0; patch * side];
        for k in 0..side {
            let mut col: Vec<f64> =
                (0..patch).map(|i| (i as f64 * k as f64 * std::f64::consts::PI / side as f64).cos()).collect();
            if k > 0 {
                let m = col.iter().sum::<f64>() / patch as f64;
                col.iter_mut().for_each(|v| *v -= m);
            }
            let n = col.iter().map(|v| v * v).sum::<f64>().sqrt();
            for i in 0..patch {
                one[k * patch + i] = col[i] / n;
            }
        }
        // kron(D1, D1): atom (k1, k2) = D1(:, k1) ⊗ D1(:, k2), atom index k1·side + k2.
        let mut d = Vec::with_capacity(patch * patch * atoms);
        for k1 in 0..side {
            for k2 in 0..side {
                for i1 in 0..patch {
                    for i2 in 0..patch {
                        d.push(one[k1 * patch + i1] * one[k2 * patch + i2]);
                    }
                }
            }
        }
        Self::new(patch, d)
    }

    /// Side of the patches.
    pub fn patch(&self) -> usize {
        self.patch
    }

    /// Number of atoms.
    pub fn atoms(&self) -> usize {
        self.atoms
    }

    /// The unit-length atoms, atom after atom.
    pub fn data(&self) -> &[f64] {
        &self.d
    }

    fn dim(&self) -> usize {
        self.patch * self.patch
    }

    /// Error-constrained batch OMP of one mean-free signal `x` (`‖r‖₂ ≤ eps`, at most `dim` atoms):
    /// the chosen atoms in increasing index order with their coefficients.
    pub(crate) fn omp(&self, x: &[f64], eps: f64, ws: &mut OmpWork) -> usize {
        let (n, m) = (self.dim(), self.atoms);
        let t_max = n;
        ws.reset(m, t_max);
        for (j, a) in ws.dtx.iter_mut().enumerate() {
            *a = self.d[j * n..(j + 1) * n].iter().zip(x).map(|(d, x)| d * x).sum();
        }
        ws.alpha.copy_from_slice(&ws.dtx);
        let eps2 = eps * eps;
        let mut resnorm: f64 = x.iter().map(|v| v * v).sum();
        let mut deltaprev = 0.0;
        let mut i = 0;
        while resnorm > eps2 && i < t_max {
            // First index of the largest |alpha|.
            let mut pos = 0;
            let mut best = ws.alpha[0] * ws.alpha[0];
            for (k, a) in ws.alpha.iter().enumerate().skip(1) {
                if a * a > best {
                    best = a * a;
                    pos = k;
                }
            }
            if ws.selected[pos] || best < 1e-14 {
                break;
            }
            ws.ind[i] = pos;
            ws.selected[pos] = true;
            // G(:, pos), contiguous, for the correlation update below.
            ws.gsub[i * m..(i + 1) * m].copy_from_slice(&self.gram[pos * m..(pos + 1) * m]);
            let l = &mut ws.l;
            if i == 0 {
                l[0] = 1.0;
            } else {
                // Solve L·v = G(ind[..i], pos); v becomes row i of L.
                let mut sum = 0.0;
                for r in 0..i {
                    let mut rhs = self.gram[ws.ind[r] * m + pos];
                    for j in 0..r {
                        rhs -= l[r * t_max + j] * l[i * t_max + j];
                    }
                    let v = rhs / l[r * t_max + r];
                    l[i * t_max + r] = v;
                    sum += v * v;
                }
                if 1.0 - sum <= 1e-14 {
                    break;
                }
                l[i * t_max + i] = (1.0 - sum).sqrt();
            }
            i += 1;
            // c = (L Lᵀ)⁻¹ DᵀX(ind).
            for r in 0..i {
                let mut rhs = ws.dtx[ws.ind[r]];
                for j in 0..r {
                    rhs -= l[r * t_max + j] * ws.tmp[j];
                }
                ws.tmp[r] = rhs / l[r * t_max + r];
            }
            for r in (0..i).rev() {
                let mut rhs = ws.tmp[r];
                for j in r + 1..i {
                    rhs -= l[j * t_max + r] * ws.c[j];
                }
                ws.c[r] = rhs / l[r * t_max + r];
            }
            // alpha = DᵀX − G(:, ind)·c; residual norm from cᵀ·(G c)(ind).
            let mut delta = 0.0;
            ws.gc.iter_mut().for_each(|v| *v = 0.0);
            for j in 0..i {
                let cj = ws.c[j];
                for (g, col) in ws.gc.iter_mut().zip(&ws.gsub[j * m..(j + 1) * m]) {
                    *g += col * cj;
                }
            }
            for ((a, d), g) in ws.alpha.iter_mut().zip(&ws.dtx).zip(&ws.gc) {
                *a = d - g;
            }
            for j in 0..i {
                delta += ws.c[j] * ws.gc[ws.ind[j]];
            }
            resnorm = resnorm - delta + deltaprev;
            deltaprev = delta;
        }
        // Sort the code by atom index (OMP-Box returns a sparse column).
        ws.code.clear();
        ws.code.extend((0..i).map(|j| (ws.ind[j], ws.c[j])));
        ws.code.sort_unstable_by_key(|&(k, _)| k);
        i
    }
}

/// Scratch buffers of one OMP run (one per thread).
#[derive(Default)]
pub(crate) struct OmpWork {
    dtx: Vec<f64>,
    alpha: Vec<f64>,
    gc: Vec<f64>,
    selected: Vec<bool>,
    ind: Vec<usize>,
    /// Columns of the Gram matrix of the chosen atoms, one after the other.
    gsub: Vec<f64>,
    l: Vec<f64>,
    c: Vec<f64>,
    tmp: Vec<f64>,
    /// The last code: (atom, coefficient), by atom.
    pub code: Vec<(usize, f64)>,
}

impl OmpWork {
    fn reset(&mut self, m: usize, t: usize) {
        self.dtx.resize(m, 0.0);
        self.alpha.resize(m, 0.0);
        self.gc.resize(m, 0.0);
        self.selected.clear();
        self.selected.resize(m, false);
        self.ind.resize(t, 0);
        self.gsub.resize(t * m, 0.0);
        self.l.resize(t * t, 0.0);
        self.c.resize(t, 0.0);
        self.tmp.resize(t, 0.0);
    }
}

/// VIFB's `sparse_fusion(A, B, D, overlap, epsilon)` on two planes (see the module
/// documentation): the fused values, row-major, unrounded. `overlap` must be below the patch size.
pub fn sparse_fusion(a: &Plane, b: &Plane, dict: &Dictionary, overlap: usize, epsilon: f64) -> Result<Vec<f64>> {
    check_pair(a, b)?;
    if overlap >= dict.patch || !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(bad("sr", format!("need overlap < {} and epsilon > 0, got {overlap} and {epsilon}", dict.patch)));
    }
    Ok(sparse_fusion_grid(&Grid::from_plane(a), &Grid::from_plane(b), dict, overlap, epsilon).data)
}

pub(crate) fn sparse_fusion_grid(a: &Grid, b: &Grid, dict: &Dictionary, overlap: usize, eps: f64) -> Grid {
    let (w, h, p) = (a.w, a.h, dict.patch);
    let step = p - overlap;
    let xs: Vec<usize> = if w >= p { (0..=w - p).step_by(step).collect() } else { vec![] };
    let ys: Vec<usize> = if h >= p { (0..=h - p).step_by(step).collect() } else { vec![] };
    let n = p * p;
    // Column-major patch order as `patch(:)`; MATLAB loops x outside, y inside.
    let positions: Vec<(usize, usize)> = xs.iter().flat_map(|&x| ys.iter().map(move |&y| (x, y))).collect();
    let fused: Vec<f64> = positions
        .par_iter()
        .map_init(
            || (OmpWork::default(), OmpWork::default(), vec![0.0; n], vec![0.0; n]),
            |(w1, w2, p1, p2), &(x0, y0)| {
                let m1 = take_patch(a, x0, y0, p, p1);
                let m2 = take_patch(b, x0, y0, p, p2);
                dict.omp(p1, eps, w1);
                dict.omp(p2, eps, w2);
                let l1: f64 = w1.code.iter().map(|(_, c)| c.abs()).sum();
                let l2: f64 = w2.code.iter().map(|(_, c)| c.abs()).sum();
                let (code, mean) = if l1 < l2 { (&w2.code, m2) } else { (&w1.code, m1) };
                let mut out = vec![0.0; n];
                for &(k, c) in code {
                    for (o, d) in out.iter_mut().zip(&dict.d[k * n..(k + 1) * n]) {
                        *o += d * c;
                    }
                }
                out.iter_mut().for_each(|v| *v += mean);
                out
            },
        )
        .flatten_iter()
        .collect();
    let mut f = Grid::zeros(w, h);
    let mut cnt = vec![0u32; w * h];
    for (k, &(x0, y0)) in positions.iter().enumerate() {
        let patch = &fused[k * n..(k + 1) * n];
        for dx in 0..p {
            for dy in 0..p {
                let i = (y0 + dy) * w + x0 + dx;
                f.data[i] += patch[dx * p + dy];
                cnt[i] += 1;
            }
        }
    }
    for (i, v) in f.data.iter_mut().enumerate() {
        *v = if cnt[i] == 0 { (a.data[i] + b.data[i]) / 2.0 } else { *v / f64::from(cnt[i]) };
    }
    f
}

/// Copies the `p×p` patch at (x0, y0) column by column into `out`, removes its mean and returns it.
fn take_patch(g: &Grid, x0: usize, y0: usize, p: usize, out: &mut [f64]) -> f64 {
    for dx in 0..p {
        for dy in 0..p {
            out[dx * p + dy] = g.data[(y0 + dy) * g.w + x0 + dx];
        }
    }
    let mean = out.iter().sum::<f64>() / out.len() as f64;
    out.iter_mut().for_each(|v| *v -= mean);
    mean
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::tests::pseudo_random;

    #[test]
    fn default_dictionary_is_unit_norm_and_codes_patches_within_eps() {
        let d = Dictionary::default_8x256();
        assert_eq!((d.patch(), d.atoms()), (8, 256));
        for atom in d.data().chunks_exact(64) {
            let n: f64 = atom.iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-12);
        }
        let g = pseudo_random(8, 8, 3).map(|v| v * 255.0);
        let mut x = vec![0.0; 64];
        take_patch(&g, 0, 0, 8, &mut x);
        let mut ws = OmpWork::default();
        let k = d.omp(&x, 0.1, &mut ws);
        assert!(k > 0 && k <= 64);
        let mut r = x.clone();
        for &(j, c) in &ws.code {
            for (ri, dv) in r.iter_mut().zip(&d.data()[j * 64..(j + 1) * 64]) {
                *ri -= c * dv;
            }
        }
        let res = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        // The pursuit stops at ‖r‖ ≤ 0.1 or when no independent atom is left.
        assert!(res <= 0.1 + 1e-9 || k == 64, "residual {res} after {k} atoms");
    }

    #[test]
    fn omp_of_one_atom_picks_it() {
        let d = Dictionary::overcomplete_dct(8, 256).unwrap();
        let x: Vec<f64> = d.data()[37 * 64..38 * 64].iter().map(|v| v * 5.0).collect();
        let mut ws = OmpWork::default();
        assert_eq!(d.omp(&x, 0.1, &mut ws), 1);
        assert_eq!(ws.code[0].0, 37);
        assert!((ws.code[0].1 - 5.0).abs() < 1e-12);
    }

    #[test]
    fn bad_dictionaries_are_errors() {
        assert!(Dictionary::new(8, vec![1.0; 63]).is_err());
        assert!(Dictionary::new(0, vec![]).is_err());
        let mut v = vec![1.0; 128];
        v[64..].iter_mut().for_each(|x| *x = 0.0);
        assert!(Dictionary::new(8, v).is_err());
        assert!(Dictionary::new(2, vec![f64::NAN, 1.0, 1.0, 1.0]).is_err());
        assert!(Dictionary::overcomplete_dct(8, 200).is_err());
    }

    #[test]
    fn sparse_fusion_of_identical_sources_is_near_identity() {
        let g = pseudo_random(21, 17, 5).map(|v| v * 255.0);
        let d = Dictionary::default_8x256();
        let f = sparse_fusion_grid(&g, &g, &d, 6, 0.1);
        let worst = f.data.iter().zip(&g.data).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        assert!(worst < 0.1, "{worst}");
    }

    #[test]
    fn small_images_are_averaged() {
        let a = pseudo_random(7, 9, 1);
        let b = pseudo_random(7, 9, 2);
        let f = sparse_fusion_grid(&a, &b, &Dictionary::default_8x256(), 6, 0.1);
        for i in 0..a.data.len() {
            assert_eq!(f.data[i], (a.data[i] + b.data[i]) / 2.0);
        }
    }
}
