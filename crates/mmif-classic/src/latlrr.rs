//! Latent low-rank representation fusion (LatLRR), as VIFB's `methods/LatLRR` code computes it.
//!
//! VIFB cites H. Li and X.-J. Wu, "Infrared and visible image fusion using latent low-rank
//! representation", arXiv:1804.08992, 2018, but its code is the multi-level version of the same
//! authors (H. Li, X.-J. Wu and J. Kittler, "MDLatLRR: A novel decomposition method for infrared
//! and visible image fusion", IEEE TIP 29:4733–4746, 2020): a projection `L` learnt once by latent
//! low-rank representation (`X = XZ + LX + E`, Liu & Yan, ICCV 2011) from image patches extracts
//! the salient part of every overlapping 8×8 patch. With VIFB's settings (`L_8`, overlapping
//! patches, nuclear-norm rule, 4 levels):
//!
//! 1. for each source, level by level from the image itself: every 8×8 patch (all positions,
//!    stride 1) is projected by `L` (patch vector in column-major order); the projections are put
//!    back and averaged where patches overlap (detail `D_k`), and the next level works on
//!    `base − D_k`; the last of these is the base `B`;
//! 2. the projected patches of the two sources at each level are fused with weights
//!    `‖P₁‖_* / (‖P₁‖_* + ‖P₂‖_*)` and `‖P₂‖_* / (…)`, `‖·‖_*` the nuclear norm of the 8×8 patch;
//! 3. `F = (B₁ + B₂)/2 + Σ_k (levels − k + 1)·A_k`, `A_k` the overlap-average of the fused
//!    patches of level `k`: VIFB's `fusion_method.m` accumulates the reconstructions of all levels
//!    so far and then sums those, so level 1 counts `levels` times, level 2 `levels − 1` times, ….
//!
//! VIFB's own `L_8.mat` (and the images it was learnt from) carry no licence, so the default
//! projection here was learnt the way VIFB's `train_models.m` learns it (1200 8×8 patches,
//! `λ = 0.4`, its `latent_lrr.m`) from the TNO test images of the CDDFuse repository (CC BY 4.0;
//! `tests/data/vifb/gen/learn_projection.m`); [`learn_projection`] is the same inexact-ALM solver,
//! and [`latlrr_with_projection`] takes any projection (e.g. VIFB's `L_8` for its exact output).
//! Where both nuclear norms are 0 (the MATLAB code divides 0 by 0 and its `uint8` turns the pixel
//! black) the weights are ½; images smaller than a patch have no patch: their detail is 0 (MATLAB:
//! 0/0), so the result is the average of the sources. Values on the 0..=255 scale (the method is
//! linear in the intensity scale).

use crate::params::{ParamInfo, Params, bad, info, parse_usize, unknown_key};
use crate::{Result, check_pair};
use mmif_io::Plane;
use rayon::prelude::*;

/// Parameters of [`latlrr_with`]; [`Default`] is VIFB's `run_LatLRR.m` (4 levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatLrrParams {
    /// Decomposition levels (4).
    pub levels: usize,
}

impl Default for LatLrrParams {
    fn default() -> Self {
        Self { levels: 4 }
    }
}

impl LatLrrParams {
    fn validate(&self) -> Result<()> {
        if !(1..=16).contains(&self.levels) {
            return Err(bad("latlrr", format!("levels must be in 1..=16, got {}", self.levels)));
        }
        Ok(())
    }
}

impl Params for LatLrrParams {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "levels" => self.levels = parse_usize("latlrr", key, value, 1, 16)?,
            _ => return Err(unknown_key("latlrr", key, &self.list())),
        }
        Ok(())
    }

    fn list(&self) -> Vec<ParamInfo> {
        vec![info("levels", self.levels, "decomposition levels (each level's details count once per later level)")]
    }
}

/// A learnt LatLRR projection for `unit×unit` patches: a `unit²×unit²` matrix, row-major, acting
/// on patch vectors in column-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    unit: usize,
    m: Vec<f64>,
}

const DEFAULT_L8: &[u8] = include_bytes!("data/latlrr_l8.f64");

impl Projection {
    /// A projection from its `d×d` matrix (row-major, `d = unit²`); the values must be finite.
    pub fn new(unit: usize, matrix: Vec<f64>) -> Result<Self> {
        let d = unit.checked_mul(unit).filter(|&d| unit >= 1 && d <= 1024);
        match d {
            Some(d) if matrix.len() == d * d && matrix.iter().all(|v| v.is_finite()) => Ok(Self { unit, m: matrix }),
            _ => Err(bad(
                "latlrr",
                format!(
                    "a projection for {unit}x{unit} patches needs {0}x{0} finite values (unit 1..=32), got {1}",
                    unit.saturating_mul(unit),
                    matrix.len()
                ),
            )),
        }
    }

    /// Parses a square matrix written as text (one row a line, numbers separated by spaces,
    /// commas or tabs, as Octave's `save -ascii` or `dlmwrite` write it).
    pub fn from_text(text: &str) -> Result<Self> {
        let mut values = Vec::new();
        for tok in text.split(|c: char| c.is_whitespace() || c == ',').filter(|t| !t.is_empty()) {
            let v = tok.parse::<f64>().map_err(|_| bad("latlrr", format!("projection: `{tok}` is not a number")))?;
            values.push(v);
        }
        let d = (values.len() as f64).sqrt().round() as usize;
        let unit = (d as f64).sqrt().round() as usize;
        if unit * unit != d || d * d != values.len() {
            return Err(bad(
                "latlrr",
                format!("projection: {} values are not a d x d matrix with d a square", values.len()),
            ));
        }
        Self::new(unit, values)
    }

    /// The default 64×64 projection for 8×8 patches (see the module documentation).
    pub fn default_8() -> Self {
        let m: Vec<f64> =
            DEFAULT_L8.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
        Self { unit: 8, m }
    }

    /// Side of the patches.
    pub fn unit(&self) -> usize {
        self.unit
    }

    /// The matrix, row-major.
    pub fn matrix(&self) -> &[f64] {
        &self.m
    }
}

/// LatLRR with VIFB's parameters and the default projection.
pub fn latlrr(a: &Plane, b: &Plane) -> Result<Plane> {
    latlrr_with(a, b, &LatLrrParams::default())
}

/// LatLRR of `a` and `b` (0..=255 scale) with the default projection; see the module documentation.
pub fn latlrr_with(a: &Plane, b: &Plane, prm: &LatLrrParams) -> Result<Plane> {
    use std::sync::OnceLock;
    static L8: OnceLock<Projection> = OnceLock::new();
    latlrr_with_projection(a, b, L8.get_or_init(Projection::default_8), prm)
}

/// LatLRR of `a` and `b` (0..=255 scale) with a given projection.
pub fn latlrr_with_projection(a: &Plane, b: &Plane, proj: &Projection, prm: &LatLrrParams) -> Result<Plane> {
    check_pair(a, b)?;
    prm.validate()?;
    let (w, h) = (a.width, a.height);
    let mut base1: Vec<f64> = a.data.iter().map(|&v| f64::from(v)).collect();
    let mut base2: Vec<f64> = b.data.iter().map(|&v| f64::from(v)).collect();
    let count = coverage(w, h, proj.unit);
    let mut detail = vec![0.0; w * h];
    for k in 0..prm.levels {
        let (d1, d2, fused) = level(&base1, &base2, w, h, proj);
        let times = (prm.levels - k) as f64;
        for i in 0..w * h {
            if count[i] > 0.0 {
                base1[i] -= d1[i] / count[i];
                base2[i] -= d2[i] / count[i];
                detail[i] += times * fused[i] / count[i];
            }
        }
    }
    let data = (0..w * h).map(|i| (0.5 * (base1[i] + base2[i]) + detail[i]) as f32).collect();
    Ok(Plane::new(w, h, data))
}

/// How many `unit×unit` patches cover each pixel.
fn coverage(w: usize, h: usize, unit: usize) -> Vec<f64> {
    let along = |n: usize, i: usize| -> f64 {
        if n < unit {
            return 0.0;
        }
        // Patch starts s in 0..=n−unit with s <= i < s + unit.
        let lo = i.saturating_sub(unit - 1);
        let hi = i.min(n - unit);
        (hi + 1 - lo) as f64
    };
    (0..h).flat_map(|y| (0..w).map(move |x| along(h, y) * along(w, x))).collect()
}

/// One level for both sources: the overlap sums (not yet divided by the coverage) of the
/// projected patches of each source and of their nuclear-norm-weighted fusion.
fn level(s1: &[f64], s2: &[f64], w: usize, h: usize, proj: &Projection) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let u = proj.unit;
    let mut sums = [vec![0.0; w * h], vec![0.0; w * h], vec![0.0; w * h]];
    if w < u || h < u {
        let [s1, s2, f] = sums;
        return (s1, s2, f);
    }
    let (rows, cols) = (h - u + 1, w - u + 1);
    let mt = transpose(&proj.m, u * u);
    // Patch rows in blocks: each block's rows run in parallel into their own strip of `u` image
    // rows, and the strips are added in order.
    const BLOCK: usize = 32;
    for r0 in (0..rows).step_by(BLOCK) {
        let strips: Vec<[Vec<f64>; 3]> = (r0..(r0 + BLOCK).min(rows))
            .into_par_iter()
            .map(|py| {
                let mut strip = [vec![0.0; u * w], vec![0.0; u * w], vec![0.0; u * w]];
                let d = u * u;
                let (mut v1, mut v2) = (vec![0.0; d], vec![0.0; d]);
                let (mut p1, mut p2) = (vec![0.0; d], vec![0.0; d]);
                for px in 0..cols {
                    for c in 0..u {
                        for r in 0..u {
                            v1[c * u + r] = s1[(py + r) * w + px + c];
                            v2[c * u + r] = s2[(py + r) * w + px + c];
                        }
                    }
                    project(&mt, &v1, &mut p1);
                    project(&mt, &v2, &mut p2);
                    let (n1, n2) = (nuclear_norm(&p1, u), nuclear_norm(&p2, u));
                    let (w1, w2) = if n1 + n2 > 0.0 { (n1 / (n1 + n2), n2 / (n1 + n2)) } else { (0.5, 0.5) };
                    for c in 0..u {
                        for r in 0..u {
                            let j = c * u + r;
                            let i = r * w + px + c;
                            strip[0][i] += p1[j];
                            strip[1][i] += p2[j];
                            strip[2][i] += w1 * p1[j] + w2 * p2[j];
                        }
                    }
                }
                strip
            })
            .collect();
        for (k, strip) in strips.iter().enumerate() {
            let off = (r0 + k) * w;
            for (sum, part) in sums.iter_mut().zip(strip) {
                for (s, p) in sum[off..off + u * w].iter_mut().zip(part) {
                    *s += p;
                }
            }
        }
    }
    let [s1, s2, f] = sums;
    (s1, s2, f)
}

/// The transpose of the `d×d` row-major `m`.
fn transpose(m: &[f64], d: usize) -> Vec<f64> {
    (0..d * d).map(|k| m[(k % d) * d + k / d]).collect()
}

/// `out = m·v` given `mt = mᵀ` (`d×d` row-major): `out += v[j]·(column j of m)` for `j = 0, 1, …`,
/// which adds the products of every output in the order of the row-by-row dot product (the same
/// rounding) but runs across the outputs in vector registers.
fn project(mt: &[f64], v: &[f64], out: &mut [f64]) {
    let d = v.len();
    out.fill(0.0);
    for (&x, col) in v.iter().zip(mt.chunks_exact(d)) {
        for (o, &m) in out.iter_mut().zip(col) {
            *o += m * x;
        }
    }
}

/// Sum of the singular values of the `n×n` column-major matrix `a` (`n <= 32`): the square
/// roots of the eigenvalues of the Gram matrix `aᵀa`, found by Householder reduction to
/// tridiagonal form and the implicit QL iteration with Wilkinson shifts ([`sym_eigenvalues`]).
/// (The eigenvalues of the Gram matrix carry an absolute error of about `eps·σ_max²`, so singular
/// values far below `σ_max` are known to about `√eps·σ_max` only; the sum, and the weights made
/// from it, are not affected at the 8-bit level.)
pub(crate) fn nuclear_norm(a: &[f64], n: usize) -> f64 {
    // 8×8 patches (the default projection) on the stack; larger ones on the heap.
    let (mut small, mut large) = ([0.0f64; 64], Vec::new());
    let g: &mut [f64] = if n * n <= 64 {
        &mut small[..n * n]
    } else {
        large.resize(n * n, 0.0);
        &mut large
    };
    let mut scale = 0.0;
    for i in 0..n {
        for j in 0..=i {
            let v: f64 = a[i * n..(i + 1) * n].iter().zip(&a[j * n..(j + 1) * n]).map(|(x, y)| x * y).sum();
            g[i * n + j] = v;
            g[j * n + i] = v;
        }
        scale += g[i * n + i];
    }
    if scale == 0.0 || !scale.is_finite() {
        return if scale == 0.0 { 0.0 } else { f64::NAN };
    }
    // The trace bounds every eigenvalue: dividing by it keeps the iteration's squares far from
    // overflow and underflow.
    for v in g.iter_mut() {
        *v /= scale;
    }
    let mut d = [0.0f64; 32];
    sym_eigenvalues(g, n, &mut d[..n]);
    scale.sqrt() * d[..n].iter().map(|&l| l.max(0.0).sqrt()).sum::<f64>()
}

/// `√(x² + y²)` for the scaled values of [`sym_eigenvalues`] (magnitudes at most about 1, where
/// neither square can overflow, and squares below `f64::MIN_POSITIVE` are far below the
/// iteration's tolerance), without the cost of `f64::hypot`'s care for extreme ranges.
#[inline]
fn norm2(x: f64, y: f64) -> f64 {
    (x * x + y * y).sqrt()
}

/// The eigenvalues (in no particular order) of the symmetric `n×n` matrix `g` (row-major, `n <=
/// 32`, entries of magnitude about 1 at most: see [`norm2`]; its contents are destroyed) into
/// `d`: Householder reflections reduce `g` to a tridiagonal matrix
/// (diagonal `d`, off-diagonal `e`), whose eigenvalues the implicit QL iteration with Wilkinson
/// shifts finds (Golub & Van Loan, "Matrix Computations", §8.3; about 1.3·n³ + 30·n² operations
/// against cyclic Jacobi's ≈ 6 sweeps of 3·n³).
pub(crate) fn sym_eigenvalues(g: &mut [f64], n: usize, d: &mut [f64]) {
    let mut e = [0.0f64; 32];
    let (mut v, mut p) = ([0.0f64; 32], [0.0f64; 32]);
    // Reduction: step k zeroes column k below the subdiagonal with H = I − τ·v·vᵀ applied to the
    // trailing block from both sides.
    for k in 0..n.saturating_sub(1) {
        d[k] = g[k * n + k];
        let m = n - k - 1;
        let x = |i: usize| g[(k + 1 + i) * n + k];
        let norm = (0..m).map(|i| x(i) * x(i)).sum::<f64>().sqrt();
        if m == 1 || norm == 0.0 {
            e[k] = x(0);
            continue;
        }
        let alpha = if x(0) > 0.0 { -norm } else { norm };
        for (i, vi) in v[..m].iter_mut().enumerate() {
            *vi = x(i);
        }
        v[0] -= alpha;
        let beta: f64 = v[..m].iter().map(|t| t * t).sum();
        e[k] = alpha;
        let tau = 2.0 / beta;
        // p = τ·B·v, then w = p − (τ/2)(vᵀp)·v, B −= v·wᵀ + w·vᵀ.
        for i in 0..m {
            let row = &g[(k + 1 + i) * n + k + 1..(k + 1 + i) * n + n];
            p[i] = tau * row.iter().zip(&v[..m]).map(|(a, b)| a * b).sum::<f64>();
        }
        let half = 0.5 * tau * v[..m].iter().zip(&p[..m]).map(|(a, b)| a * b).sum::<f64>();
        for i in 0..m {
            p[i] -= half * v[i];
        }
        for i in 0..m {
            let row = &mut g[(k + 1 + i) * n + k + 1..(k + 1 + i) * n + n];
            for (j, b) in row.iter_mut().enumerate() {
                *b -= v[i] * p[j] + p[i] * v[j];
            }
        }
    }
    if n > 0 {
        d[n - 1] = g[n * n - 1];
    }
    // Implicit QL on (d, e), e[i] coupling rows i and i + 1.
    for l in 0..n {
        for _iter in 0..64 {
            let mut m = l;
            while m + 1 < n && e[m].abs() > f64::EPSILON * (d[m].abs() + d[m + 1].abs()) {
                m += 1;
            }
            if m == l {
                break;
            }
            // Wilkinson shift from the leading 2×2 block.
            let t = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let r = norm2(t, 1.0);
            let mut gg = d[m] - d[l] + e[l] / (t + if t >= 0.0 { r } else { -r });
            let (mut s, mut c, mut shift) = (1.0f64, 1.0f64, 0.0f64);
            let mut deflated = false;
            for i in (l..m).rev() {
                let f = s * e[i];
                let b = c * e[i];
                let r = norm2(f, gg);
                e[i + 1] = r;
                if r == 0.0 {
                    // An exact zero split the matrix: undo the shift and start over.
                    d[i + 1] -= shift;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = gg / r;
                let gi = d[i + 1] - shift;
                let r2 = (d[i] - gi) * s + 2.0 * c * b;
                shift = s * r2;
                d[i + 1] = gi + shift;
                gg = c * r2 - b;
            }
            if deflated {
                continue;
            }
            d[l] -= shift;
            e[l] = gg;
            e[m] = 0.0;
        }
    }
}

/// One-sided Jacobi (Hestenes): rotates the `cols` columns (each `rows` long, stored one after the
/// other) of `a` until every pair is orthogonal to working precision, applying the same rotations
/// to the columns of `v` (`cols×cols`, column-major) when given. Afterwards `a_in = a·vᵀ`
/// (`v` orthogonal), the column norms of `a` are the singular values.
pub(crate) fn jacobi_orthogonalise(a: &mut [f64], rows: usize, cols: usize, mut v: Option<&mut [f64]>) {
    // Columns below `tiny` (relative to the whole matrix) count as zero: rotating them against
    // each other only shuffles rounding noise and would never settle.
    let tiny = f64::EPSILON * a.iter().map(|x| x * x).sum::<f64>();
    for _sweep in 0..60 {
        let mut rotated = false;
        for p in 0..cols {
            for q in p + 1..cols {
                let (mut alpha, mut beta, mut gamma) = (0.0, 0.0, 0.0);
                {
                    let (cp, cq) = (&a[p * rows..(p + 1) * rows], &a[q * rows..(q + 1) * rows]);
                    for (x, y) in cp.iter().zip(cq) {
                        alpha += x * x;
                        beta += y * y;
                        gamma += x * y;
                    }
                }
                if alpha <= tiny || beta <= tiny || gamma.abs() <= f64::EPSILON * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                rotate(a, rows, p, q, c, s);
                if let Some(v) = v.as_deref_mut() {
                    rotate(v, cols, p, q, c, s);
                }
            }
        }
        if !rotated {
            break;
        }
    }
}

fn rotate(a: &mut [f64], rows: usize, p: usize, q: usize, c: f64, s: f64) {
    let (head, tail) = a.split_at_mut(q * rows);
    let cp = &mut head[p * rows..(p + 1) * rows];
    let cq = &mut tail[..rows];
    for (x, y) in cp.iter_mut().zip(cq.iter_mut()) {
        let (xp, xq) = (*x, *y);
        *x = c * xp - s * xq;
        *y = s * xp + c * xq;
    }
}

/// A dense column-major matrix for [`learn_projection`].
#[derive(Clone)]
struct Mat {
    rows: usize,
    cols: usize,
    d: Vec<f64>,
}

impl Mat {
    fn zeros(rows: usize, cols: usize) -> Self {
        Self { rows, cols, d: vec![0.0; rows * cols] }
    }

    fn eye_plus(a: &Mat) -> Mat {
        let mut m = a.clone();
        for i in 0..a.rows.min(a.cols) {
            m.d[i * a.rows + i] += 1.0;
        }
        m
    }

    fn t(&self) -> Mat {
        let mut m = Mat::zeros(self.cols, self.rows);
        for c in 0..self.cols {
            for r in 0..self.rows {
                m.d[r * self.cols + c] = self.d[c * self.rows + r];
            }
        }
        m
    }

    fn mul(&self, b: &Mat) -> Mat {
        let mut m = Mat::zeros(self.rows, b.cols);
        let rows = self.rows;
        m.d.par_chunks_mut(rows).enumerate().for_each(|(c, out)| {
            for k in 0..self.cols {
                let bk = b.d[c * b.rows + k];
                if bk != 0.0 {
                    for (o, a) in out.iter_mut().zip(&self.d[k * rows..(k + 1) * rows]) {
                        *o += a * bk;
                    }
                }
            }
        });
        m
    }

    /// `self + k·b`.
    fn add(&self, b: &Mat, k: f64) -> Mat {
        Mat { rows: self.rows, cols: self.cols, d: self.d.iter().zip(&b.d).map(|(x, y)| x + k * y).collect() }
    }

    fn max_abs(&self) -> f64 {
        self.d.iter().fold(0.0f64, |m, v| m.max(v.abs()))
    }

    /// Inverse of a symmetric positive definite matrix (Cholesky).
    fn spd_inverse(&self) -> Mat {
        let n = self.rows;
        let mut l = vec![0.0; n * n]; // row-major lower factor
        for i in 0..n {
            for j in 0..=i {
                let mut s = self.d[j * n + i];
                for k in 0..j {
                    s -= l[i * n + k] * l[j * n + k];
                }
                l[i * n + j] = if i == j { s.max(f64::MIN_POSITIVE).sqrt() } else { s / l[j * n + j] };
            }
        }
        let mut inv = Mat::zeros(n, n);
        inv.d.par_chunks_mut(n).enumerate().for_each(|(c, col)| {
            // Solve L y = e_c, then Lᵀ x = y.
            for i in 0..n {
                let mut s = if i == c { 1.0 } else { 0.0 };
                for k in 0..i {
                    s -= l[i * n + k] * col[k];
                }
                col[i] = s / l[i * n + i];
            }
            for i in (0..n).rev() {
                let mut s = col[i];
                for k in i + 1..n {
                    s -= l[k * n + i] * col[k];
                }
                col[i] = s / l[i * n + i];
            }
        });
        inv
    }

    /// Singular value thresholding: `Σ max(σ − τ, 0) u vᵀ` over the singular triplets.
    fn svt(&self, tau: f64) -> Mat {
        let (rows, cols) = (self.rows, self.cols);
        let mut a = self.d.clone();
        let mut v = Mat::eye_plus(&Mat::zeros(cols, cols)).d;
        jacobi_orthogonalise(&mut a, rows, cols, Some(&mut v));
        // self = a·vᵀ with orthogonal columns a_j = σ_j u_j: shrink each column.
        for col in a.chunks_exact_mut(rows) {
            let sigma = col.iter().map(|x| x * x).sum::<f64>().sqrt();
            let k = if sigma > tau { 1.0 - tau / sigma } else { 0.0 };
            col.iter_mut().for_each(|x| *x *= k);
        }
        Mat { rows, cols, d: a }.mul(&Mat { rows: cols, cols, d: v }.t())
    }
}

/// Learns a LatLRR projection from patch vectors: the columns of `x` (`d` values each, `d = unit²`,
/// patches in column-major order; `x` holds them one after the other) by the inexact augmented
/// Lagrange multiplier method for `min ‖Z‖_* + ‖L‖_* + λ‖E‖₁` subject to `X = XZ + LX + E`
/// (G. Liu and S. Yan, "Latent Low-Rank Representation for Subspace Segmentation and Feature
/// Extraction", ICCV 2011), with the settings of VIFB's `latent_lrr.m`: μ from 10⁻⁶, ×1.1 per step
/// up to 10⁶, stop when every constraint residual is below 10⁻⁶ (at most `max_steps` steps).
/// Singular values by one-sided Jacobi: the cost grows with the cube of the number of patches
/// (a few hundred are practical here; VIFB learns from 1200).
pub fn learn_projection(unit: usize, x: &[f64], lambda: f64, max_steps: usize) -> Result<Projection> {
    let d = unit * unit;
    if unit == 0 || d > 1024 || x.is_empty() || !x.len().is_multiple_of(d) || x.len() / d > 4096 {
        return Err(bad("latlrr", format!("learn_projection: {} values are not 1..=4096 patches of {d}", x.len())));
    }
    if !(lambda.is_finite() && lambda > 0.0) || x.iter().any(|v| !v.is_finite()) {
        return Err(bad("latlrr", "learn_projection: lambda and the patches must be finite, lambda > 0".into()));
    }
    let n = x.len() / d;
    let xm = Mat { rows: d, cols: n, d: x.to_vec() };
    let xt = xm.t();
    let atx = xt.mul(&xm);
    let inv_a = Mat::eye_plus(&atx).spd_inverse();
    let inv_b = Mat::eye_plus(&xm.mul(&xt)).spd_inverse();
    let (mut z, mut l, mut e) = (Mat::zeros(n, n), Mat::zeros(d, d), Mat::zeros(d, n));
    let (mut y1, mut y2, mut y3) = (Mat::zeros(d, n), Mat::zeros(n, n), Mat::zeros(d, d));
    let (rho, max_mu) = (1.1, 1e6);
    let mut mu = 1e-6;
    for _ in 0..max_steps {
        let j = z.add(&y2, 1.0 / mu).svt(1.0 / mu);
        let s = l.add(&y3, 1.0 / mu).svt(1.0 / mu);
        // Z = inv_a (XᵀX − XᵀLX − XᵀE + J + (XᵀY1 − Y2)/μ)
        let rhs = atx
            .add(&xt.mul(&l.mul(&xm)), -1.0)
            .add(&xt.mul(&e), -1.0)
            .add(&j, 1.0)
            .add(&xt.mul(&y1).add(&y2, -1.0), 1.0 / mu);
        z = inv_a.mul(&rhs);
        // L = ((X − XZ − E)Xᵀ + S + (Y1Xᵀ − Y3)/μ) inv_b
        let xz = xm.mul(&z);
        let rhs = xm.add(&xz, -1.0).add(&e, -1.0).mul(&xt).add(&s, 1.0).add(&y1.mul(&xt).add(&y3, -1.0), 1.0 / mu);
        l = rhs.mul(&inv_b);
        let xmaz = xm.add(&xz, -1.0).add(&l.mul(&xm), -1.0);
        let shrink = lambda / mu;
        e = xmaz.add(&y1, 1.0 / mu);
        e.d.iter_mut().for_each(|v| *v = (*v - shrink).max(0.0) + (*v + shrink).min(0.0));
        let (leq1, leq2, leq3) = (xmaz.add(&e, -1.0), z.add(&j, -1.0), l.add(&s, -1.0));
        if leq1.max_abs().max(leq2.max_abs()).max(leq3.max_abs()) < 1e-6 {
            break;
        }
        y1 = y1.add(&leq1, mu);
        y2 = y2.add(&leq2, mu);
        y3 = y3.add(&leq3, mu);
        mu = (mu * rho).min(max_mu);
    }
    // Row-major for `Projection`.
    Projection::new(unit, l.t().d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nuclear_norm_of_known_matrices() {
        // diag(3, -2) rotated: singular values 3 and 2.
        let (c, s) = (0.6f64, 0.8f64);
        let a = vec![3.0 * c, 3.0 * s, 2.0 * s, -2.0 * c];
        assert!((nuclear_norm(&a, 2) - 5.0).abs() < 1e-12);
        // Rank one: u vᵀ with |u| = |v| = 1 → 1. The zero singular values come out as square roots
        // of the Gram matrix's rounding (≈ √ε ≈ 1e-8 of the largest each), so the bound is that of
        // the comparison with the Jacobi SVD below, not 1e-12.
        let r1: Vec<f64> = (0..16).map(|i| [0.5, 0.5, 0.5, 0.5][i % 4] * [0.5, -0.5, 0.5, -0.5][i / 4]).collect();
        let got = nuclear_norm(&r1, 4);
        assert!((got - 1.0).abs() < 1e-6, "{got}");
        let z = vec![0.0; 64];
        assert_eq!(nuclear_norm(&z, 8), 0.0);
    }

    #[test]
    fn nuclear_norm_equals_the_jacobi_singular_values() {
        // Random, rank-deficient and nearly diagonal 8×8 matrices, as the projected patches are.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        for case in 0..300 {
            let n = [8, 8, 8, 3, 1, 5][case % 6];
            let mut a: Vec<f64> = (0..n * n).map(|_| next() * 255.0).collect();
            if case % 5 == 1 {
                // rank 2
                let (u, w): (Vec<f64>, Vec<f64>) =
                    ((0..2 * n).map(|_| next()).collect(), (0..2 * n).map(|_| next()).collect());
                for c in 0..n {
                    for r in 0..n {
                        a[c * n + r] = 100.0 * (u[r] * w[c] + u[n + r] * w[n + c]);
                    }
                }
            }
            if case % 5 == 2 {
                for (i, v) in a.iter_mut().enumerate() {
                    *v = if i % (n + 1) == 0 { 50.0 + i as f64 } else { *v * 1e-9 };
                }
            }
            let mut cols = a.clone();
            jacobi_orthogonalise(&mut cols, n, n, None);
            let want: f64 = cols.chunks_exact(n).map(|c| c.iter().map(|x| x * x).sum::<f64>().sqrt()).sum();
            let got = nuclear_norm(&a, n);
            assert!((got - want).abs() <= 1e-6 * want.max(1.0), "case {case} (n = {n}): {got} vs {want}");
        }
    }

    #[test]
    fn project_equals_the_row_dot_products_bit_for_bit() {
        let d = 64;
        let m: Vec<f64> = (0..d * d).map(|k| ((k * 7919) % 1013) as f64 / 1013.0 - 0.47).collect();
        let v: Vec<f64> = (0..d).map(|k| ((k * 31) % 255) as f64 + 0.125).collect();
        let mut out = vec![0.0; d];
        project(&transpose(&m, d), &v, &mut out);
        for (o, row) in out.iter().zip(m.chunks_exact(d)) {
            let dot: f64 = row.iter().zip(&v).map(|(a, b)| a * b).sum();
            assert_eq!(o.to_bits(), dot.to_bits());
        }
    }

    #[test]
    fn coverage_counts_the_patches_over_each_pixel() {
        let c = coverage(10, 9, 8);
        // Columns: starts 0..=2; rows: 0..=1.
        assert_eq!(c[0], 1.0);
        assert_eq!(c[2], 3.0); // x = 2: starts 0, 1, 2
        assert_eq!(c[9 * 10 - 1], 1.0);
        assert_eq!(c[10 + 5], 2.0 * 3.0);
        assert!(coverage(7, 9, 8).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn the_default_projection_is_64x64_and_finite() {
        let p = Projection::default_8();
        assert_eq!(p.unit(), 8);
        assert_eq!(p.matrix().len(), 64 * 64);
        assert!(p.matrix().iter().all(|v| v.is_finite()));
        assert!(Projection::from_text("1 2\n3").is_err());
        assert_eq!(Projection::from_text("2").unwrap().unit(), 1);
        assert!(Projection::new(2, vec![0.0; 15]).is_err());
    }

    #[test]
    fn a_zero_projection_averages_the_sources() {
        let a = Plane::new(12, 10, (0..120).map(|i| (i * 7 % 255) as f32).collect());
        let b = Plane::new(12, 10, (0..120).map(|i| (i * 13 % 255) as f32).collect());
        let f =
            latlrr_with_projection(&a, &b, &Projection::new(8, vec![0.0; 4096]).unwrap(), &Default::default()).unwrap();
        for i in 0..120 {
            assert!((f.data[i] - 0.5 * (a.data[i] + b.data[i])).abs() < 1e-4);
        }
    }
}
