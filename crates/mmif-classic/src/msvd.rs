//! Multi-resolution singular value decomposition fusion (MSVD).
//!
//! V. P. S. Naidu, "Image fusion technique using multi-resolution singular value decomposition",
//! Defence Science Journal 61(5):479–484, 2011, one level as in VIFB's `methods/MSVD` code: each
//! source is cut into 2×2 blocks, the blocks (as 4-vectors, column-major) form a 4×N matrix `A`
//! with SVD `A = U S Vᵀ`, and `T = Uᵀ A` gives one approximation (`LL`, first row) and three
//! detail coefficients per block. The approximations are averaged, each detail is taken from the
//! source with the larger magnitude (the infrared `a` on ties), and the result is rebuilt with the
//! averaged basis `(U_a + U_b)/2`. VIFB's gray path then stretches the result to the full range
//! (`mat2gray`); its colour path does not (`stretch = false`).
//!
//! Signs. The singular vectors of `A` are defined up to sign and the fusion averages the two bases,
//! so the result depends on the *relative* sign of corresponding columns of `U_a` and `U_b` (flipping
//! a column of both changes nothing). MATLAB/Octave return whatever LAPACK's `dgesvd` produces,
//! which follows no documented rule; when the signs of a pair of columns disagree, the average all
//! but cancels that component (for the first column, the averaged approximation). Here `U` comes
//! from the eigenvectors of the 4×4 matrix `A Aᵀ` (cyclic Jacobi, in f64), sorted by decreasing
//! eigenvalue, and each column of `U_b` is turned to point the same way as the corresponding column
//! of `U_a` (non-negative dot product): the result is deterministic and equals VIFB's wherever
//! LAPACK's signs happen to agree (measured in `docs/vifb_methods_b.md`).
//!
//! Odd sizes. VIFB resizes both sources to the next even size with bicubic `imresize` (resampling
//! every pixel) and returns the larger image (its colour path fails there). Here the last row or
//! column is repeated to reach an even size and the result is cropped back to the input size; the
//! stretch uses the cropped result. A 1×1 pair becomes one 2×2 block.

use crate::params::{ParamInfo, Params, bad, info, unknown_key};
use crate::{Result, check_pair};
use mmif_io::Plane;

/// Parameters of [`msvd`]; [`Default`] is VIFB's gray path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MsvdParams {
    /// Stretch the result to 0..=255 (`mat2gray`, VIFB's gray path); `false`: clamp (its colour path).
    pub stretch: bool,
}

impl Default for MsvdParams {
    fn default() -> Self {
        Self { stretch: true }
    }
}

const NAME: &str = "msvd";

impl Params for MsvdParams {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "stretch" => {
                self.stretch = match value.trim() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(bad(NAME, format!("stretch must be true/false or 1/0, got `{value}`"))),
                }
            }
            _ => return Err(unknown_key(NAME, key, &self.list())),
        }
        Ok(())
    }

    fn list(&self) -> Vec<ParamInfo> {
        vec![info("stretch", self.stretch, "stretch the result to the full range (VIFB's gray path; false: clamp)")]
    }
}

type Mat4 = [[f64; 4]; 4];

/// Eigen-decomposition of a symmetric 4×4 matrix by cyclic Jacobi rotations: eigenvalues in
/// decreasing order and the matching unit eigenvectors as the columns of the returned matrix.
pub(crate) fn sym_eig4(mut a: Mat4) -> ([f64; 4], Mat4) {
    let mut v = [[0.0; 4]; 4];
    (0..4).for_each(|i| v[i][i] = 1.0);
    for _sweep in 0..64 {
        let off: f64 = (0..4).flat_map(|p| (p + 1..4).map(move |q| (p, q))).map(|(p, q)| a[p][q] * a[p][q]).sum();
        let diag: f64 = (0..4).map(|i| a[i][i] * a[i][i]).sum();
        if off <= 1e-34 * diag || off == 0.0 {
            break;
        }
        for p in 0..4 {
            for q in p + 1..4 {
                if a[p][q] == 0.0 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (kp, kq) = (row[p], row[q]);
                    row[p] = c * kp - s * kq;
                    row[q] = s * kp + c * kq;
                }
                let (rp, rq) = (a[p], a[q]);
                a[p] = std::array::from_fn(|k| c * rp[k] - s * rq[k]);
                a[q] = std::array::from_fn(|k| s * rp[k] + c * rq[k]);
                for row in v.iter_mut() {
                    let (kp, kq) = (row[p], row[q]);
                    row[p] = c * kp - s * kq;
                    row[q] = s * kp + c * kq;
                }
            }
        }
    }
    let mut order = [0usize, 1, 2, 3];
    order.sort_by(|&i, &j| a[j][j].total_cmp(&a[i][i]));
    let vals = order.map(|i| a[i][i]);
    let mut vecs = [[0.0; 4]; 4];
    for (col, &i) in order.iter().enumerate() {
        (0..4).for_each(|r| vecs[r][col] = v[r][i]);
    }
    (vals, vecs)
}

/// A source extended to even size (last row/column repeated), as its 2×2 blocks in MATLAB's
/// column-major order `[x(r,c), x(r+1,c), x(r,c+1), x(r+1,c+1)]`, block rows innermost.
struct Blocks {
    /// Blocks per column (rows / 2).
    m: usize,
    v: Vec<[f64; 4]>,
}

fn blocks(p: &Plane) -> Blocks {
    let (w, h) = (p.width, p.height);
    let (m, n) = (h.div_ceil(2), w.div_ceil(2));
    let at = |r: usize, c: usize| f64::from(p.data[r.min(h - 1) * w + c.min(w - 1)]) / 255.0;
    let mut v = Vec::with_capacity(m * n);
    for j in 0..n {
        for i in 0..m {
            let (r, c) = (2 * i, 2 * j);
            v.push([at(r, c), at(r + 1, c), at(r, c + 1), at(r + 1, c + 1)]);
        }
    }
    Blocks { m, v }
}

/// The left singular vectors of the 4×N block matrix (eigenvectors of `A Aᵀ`).
fn basis(b: &Blocks) -> Mat4 {
    let mut c = [[0.0; 4]; 4];
    for x in &b.v {
        for r in 0..4 {
            for k in 0..4 {
                c[r][k] += x[r] * x[k];
            }
        }
    }
    sym_eig4(c).1
}

fn project(u: &Mat4, x: &[f64; 4]) -> [f64; 4] {
    std::array::from_fn(|k| (0..4).map(|r| u[r][k] * x[r]).sum())
}

/// Below this range (on the 0..=1 scale) a result is taken as constant by the stretch: the
/// rounding noise of a constant pair would otherwise be stretched to the full range.
const FLAT: f64 = 1e-9;

/// Fuses the blocks of two sources with their bases (`ub`'s columns are first turned towards
/// `ua`'s), returning the `w`×`h` result on the 0..=1 scale before any stretch.
fn fuse_blocks(ba: &Blocks, bb: &Blocks, ua: &Mat4, mut ub: Mat4, w: usize, h: usize) -> Vec<f64> {
    for k in 0..4 {
        let dot: f64 = (0..4).map(|r| ua[r][k] * ub[r][k]).sum();
        if dot < 0.0 {
            (0..4).for_each(|r| ub[r][k] = -ub[r][k]);
        }
    }
    let u: Mat4 = std::array::from_fn(|r| std::array::from_fn(|k| 0.5 * (ua[r][k] + ub[r][k])));
    let mut out = vec![0.0f64; w * h];
    for (idx, (xa, xb)) in ba.v.iter().zip(&bb.v).enumerate() {
        let (ta, tb) = (project(ua, xa), project(&ub, xb));
        let mut t = [0.5 * (ta[0] + tb[0]), 0.0, 0.0, 0.0];
        for k in 1..4 {
            t[k] = if ta[k].abs() - tb[k].abs() >= 0.0 { ta[k] } else { tb[k] };
        }
        let (j, i) = (idx / ba.m, idx % ba.m);
        for (e, (dr, dc)) in [(0, 0), (1, 0), (0, 1), (1, 1)].into_iter().enumerate() {
            let (r, c) = (2 * i + dr, 2 * j + dc);
            if r < h && c < w {
                out[r * w + c] = (0..4).map(|k| u[e][k] * t[k]).sum();
            }
        }
    }
    out
}

/// MSVD fusion of `a` (infrared) and `b` (visible), 0..=255 scale.
pub fn msvd(a: &Plane, b: &Plane, prm: &MsvdParams) -> Result<Plane> {
    check_pair(a, b)?;
    let (ba, bb) = (blocks(a), blocks(b));
    let out = fuse_blocks(&ba, &bb, &basis(&ba), basis(&bb), a.width, a.height);
    let lo = out.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let data = out
        .iter()
        .map(|&x| {
            // MATLAB's mat2gray (a constant image is clamped to [0, 1] instead), then the 0..=255 scale
            let y = if prm.stretch && hi - lo > FLAT { (1.0 / (hi - lo)) * (x - lo) } else { x.clamp(0.0, 1.0) };
            (255.0 * y) as f32
        })
        .collect();
    Ok(Plane::new(a.width, a.height, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_diagonalises_symmetric_matrices() {
        let mats: [Mat4; 3] = [
            [[4.0, 1.0, 0.5, 0.2], [1.0, 3.0, 0.3, 0.1], [0.5, 0.3, 2.0, 0.7], [0.2, 0.1, 0.7, 1.0]],
            [[1.0, 1.0, 1.0, 1.0]; 4],
            [[2.0, 0.0, 0.0, 0.0], [0.0, 5.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 3.0]],
        ];
        for m in mats {
            let (vals, v) = sym_eig4(m);
            assert!(vals.windows(2).all(|p| p[0] >= p[1]), "{vals:?}");
            for k in 0..4 {
                let norm: f64 = (0..4).map(|r| v[r][k] * v[r][k]).sum();
                assert!((norm - 1.0).abs() < 1e-12);
                for r in 0..4 {
                    let mv: f64 = (0..4).map(|c| m[r][c] * v[c][k]).sum();
                    assert!((mv - vals[k] * v[r][k]).abs() < 1e-12, "{m:?}");
                }
                for l in k + 1..4 {
                    let d: f64 = (0..4).map(|r| v[r][k] * v[r][l]).sum();
                    assert!(d.abs() < 1e-12);
                }
            }
        }
        assert_eq!(sym_eig4([[1.0, 1.0, 1.0, 1.0]; 4]).0[0].round(), 4.0);
    }

    fn pseudo(w: usize, h: usize, k: usize) -> Plane {
        Plane::new(w, h, (0..w * h).map(|i| ((i * k) % 251) as f32).collect())
    }

    #[test]
    fn the_result_does_not_depend_on_the_signs_of_the_singular_vectors() {
        let (a, b) = (pseudo(10, 6, 37), pseudo(10, 6, 91));
        let (ba, bb) = (blocks(&a), blocks(&b));
        let (ua, ub) = (basis(&ba), basis(&bb));
        let want = fuse_blocks(&ba, &bb, &ua, ub, 10, 6);
        let flip = |mut u: Mat4, k: usize| {
            (0..4).for_each(|r| u[r][k] = -u[r][k]);
            u
        };
        for k in 0..4 {
            assert_eq!(fuse_blocks(&ba, &bb, &ua, flip(ub, k), 10, 6), want, "column {k} of U_b");
            assert_eq!(fuse_blocks(&ba, &bb, &flip(ua, k), ub, 10, 6), want, "column {k} of U_a");
        }
    }

    /// One 2×2 block each: `U`'s first column is `x/|x|`, the details vanish, and for
    /// `|x_a| = |x_b|` the result is `(|x_a| + |x_b|)/2 · (x_a/|x_a| + x_b/|x_b|)/2 = (x_a + x_b)/2`.
    #[test]
    fn a_single_block_pair_is_worked_by_hand() {
        let a = Plane::new(2, 2, vec![10.0, 30.0, 20.0, 40.0]);
        let b = Plane::new(2, 2, vec![40.0, 20.0, 30.0, 10.0]);
        for stretch in [false, true] {
            let f = msvd(&a, &b, &MsvdParams { stretch }).unwrap();
            assert!(f.data.iter().all(|v| (v - 25.0).abs() < 1e-3), "{stretch}: {:?}", f.data);
        }
        // odd sizes: the last row/column repeated, the result cropped
        let one = msvd(&Plane::new(1, 1, vec![60.0]), &Plane::new(1, 1, vec![20.0]), &MsvdParams::default()).unwrap();
        assert!((one.data[0] - 40.0).abs() < 1e-3, "{:?}", one.data);
    }

    #[test]
    fn an_image_fused_with_itself_is_returned_unstretched() {
        for (w, h) in [(10, 6), (7, 5), (1, 3)] {
            let a = pseudo(w, h, 37);
            let f = msvd(&a, &a, &MsvdParams { stretch: false }).unwrap();
            let d = f.data.iter().zip(&a.data).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(d < 1e-3, "{w}x{h}: {d}");
        }
    }
}
