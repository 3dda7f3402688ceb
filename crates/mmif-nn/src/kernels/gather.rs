//! Gathers of rows and columns (nearest resizes), optionally plus a residual.

use super::write_all;
use rayon::prelude::*;

/// `out[b, c, y, x] = x[b, c, rows[y], cols[x]]` for `x` of shape `[B, C, H, W]`: a nearest
/// resize (or any row/column gather) in one pass. Panics if an index is out of range.
#[cfg(test)]
pub(crate) fn gather_rows_cols(x: &[f32], shape: [usize; 4], rows: &[usize], cols: &[usize]) -> Vec<f32> {
    gather_rows_cols_add(x, shape, rows, cols, None)
}

/// [`gather_rows_cols`] plus `residual` (`[B, C, rows, cols]`) in the same pass.
pub(crate) fn gather_rows_cols_add(
    x: &[f32],
    shape: [usize; 4],
    rows: &[usize],
    cols: &[usize],
    residual: Option<&[f32]>,
) -> Vec<f32> {
    let [b, c, h, w] = shape;
    assert_eq!(x.len(), b * c * h * w);
    assert!(rows.iter().all(|&r| r < h) && cols.iter().all(|&q| q < w), "gather index out of range");
    let (oh, ow) = (rows.len(), cols.len());
    let n_out = b * c * oh * ow;
    assert!(residual.is_none_or(|r| r.len() == n_out));
    let fill = |out: &super::Out| {
        (0..b * c * oh).into_par_iter().with_min_len(64).for_each(|task| {
            let (plane, y) = (task / oh, task % oh);
            let line = &x[(plane * h + rows[y]) * w..][..w];
            // SAFETY: task (plane, y) alone writes output row y of this plane, `ow` values.
            let o = unsafe { out.part(task * ow, ow) };
            match residual {
                Some(r) => {
                    for ((d, &q), &r) in o.iter_mut().zip(cols).zip(&r[task * ow..][..ow]) {
                        *d = line[q] + r;
                    }
                }
                None => {
                    for (d, &q) in o.iter_mut().zip(cols) {
                        *d = line[q];
                    }
                }
            }
        });
    };
    // SAFETY: the tasks cover every output row and write all of it.
    unsafe { write_all(n_out, fill) }
}
