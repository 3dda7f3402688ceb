//! The Karhunen–Loève (principal component) weights Bavirisetti & Dhuli fuse detail layers with
//! (ADF, FPDE): the eigenvector of the 2×2 covariance of the two detail layers that belongs to the
//! larger eigenvalue, divided by the sum of its components.

use crate::grid::Grid;

/// Weights `(w_a, w_b)` for `w_a·d_a + w_b·d_b`.
///
/// Follows VIFB's `cov` + `eig` code: the covariance uses the `N − 1` normalisation (irrelevant to
/// the result), an exact tie of the eigenvalues picks the first eigenvector, which is `(1, 0)`
/// for a diagonal covariance (so all-zero details give `(1, 0)` as in MATLAB). Where MATLAB
/// would divide by a zero component sum (eigenvector `(1, −1)`), the weights fall back to ½, ½.
pub(crate) fn kl_weights(da: &Grid, db: &Grid) -> (f64, f64) {
    let n = da.data.len() as f64;
    let ma = da.data.iter().sum::<f64>() / n;
    let mb = db.data.iter().sum::<f64>() / n;
    let (mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0);
    for (&x, &y) in da.data.iter().zip(&db.data) {
        let (x, y) = (x - ma, y - mb);
        saa += x * x;
        sbb += y * y;
        sab += x * y;
    }
    let (va, vb) = if sab == 0.0 {
        // Diagonal: eig returns the axes in ascending order of eigenvalue and the code keeps the
        // first on a tie, which is (1, 0) whenever saa >= sbb.
        if saa >= sbb { (1.0, 0.0) } else { (0.0, 1.0) }
    } else {
        // Larger eigenvalue of [[saa, sab], [sab, sbb]] and its eigenvector (sab, λ − saa).
        let half_diff = 0.5 * (saa - sbb);
        let lambda = 0.5 * (saa + sbb) + (half_diff * half_diff + sab * sab).sqrt();
        if saa >= sbb { (lambda - sbb, sab) } else { (sab, lambda - saa) }
    };
    let s = va + vb;
    if s.abs() <= f64::EPSILON * (va.abs() + vb.abs()) { (0.5, 0.5) } else { (va / s, vb / s) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(v: &[f64]) -> Grid {
        Grid { w: v.len(), h: 1, data: v.to_vec() }
    }

    #[test]
    fn weights_sum_to_one_and_favour_the_stronger_detail() {
        let a = grid(&[1.0, -2.0, 3.0, 0.5, -1.0]);
        let b = grid(&[0.1, 0.3, -0.2, 0.0, 0.1]);
        let (wa, wb) = kl_weights(&a, &b);
        assert!((wa + wb - 1.0).abs() < 1e-12);
        assert!(wa > 0.9, "{wa}");
    }

    #[test]
    fn eigenvector_is_an_eigenvector() {
        let a = grid(&[1.0, 2.0, 0.0, -1.0, 4.0, 2.0]);
        let b = grid(&[2.0, 1.0, 1.0, 0.0, 3.0, -2.0]);
        let (wa, wb) = kl_weights(&a, &b);
        // Covariance times (wa, wb) must be parallel to (wa, wb).
        let n = 6.0;
        let (ma, mb) = (a.data.iter().sum::<f64>() / n, b.data.iter().sum::<f64>() / n);
        let (mut c00, mut c11, mut c01) = (0.0, 0.0, 0.0);
        for (x, y) in a.data.iter().zip(&b.data) {
            c00 += (x - ma) * (x - ma);
            c11 += (y - mb) * (y - mb);
            c01 += (x - ma) * (y - mb);
        }
        let (u, v) = (c00 * wa + c01 * wb, c01 * wa + c11 * wb);
        assert!((u * wb - v * wa).abs() < 1e-9);
    }

    #[test]
    fn degenerate_covariances_follow_matlab_eig_order() {
        let z = grid(&[0.0, 0.0, 0.0]);
        assert_eq!(kl_weights(&z, &z), (1.0, 0.0));
        let a = grid(&[1.0, -1.0, 1.0, -1.0]);
        let b = grid(&[1.0, 1.0, -1.0, -1.0]);
        assert_eq!(kl_weights(&a, &b), (1.0, 0.0));
        assert_eq!(kl_weights(&b, &a.map(|v| 2.0 * v)), (0.0, 1.0));
    }
}
