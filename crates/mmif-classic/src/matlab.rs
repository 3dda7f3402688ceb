//! Filters with MATLAB's exact border semantics, for methods checked against MATLAB code.
//!
//! * [`medfilt2`]: `medfilt2(I, [n n])` (zero padding, MATLAB's default);
//! * [`box_mean_circular`]: `imfilter(I, ones(m)/m^2, 'circular')`;
//! * [`correlate_separable_symmetric`]: `imfilter(I, k'*k, 'symmetric')` for a separable kernel;
//! * [`fspecial_gaussian`]: the 1-D factor of `fspecial('gaussian', [n n], sigma)`.
//!
//! He et al.'s `boxfilter(I, r) ./ N` (used by every guided filter of the VIFB code) is
//! [`crate::grid::box_mean`] with [`crate::grid::BoxBorder::Clip`].

use crate::grid::{Grid, for_each_row};

/// Median of nine values by Paeth's 19-exchange network (Graphics Gems, 1990).
#[inline]
fn median9(mut p: [f64; 9]) -> f64 {
    let mut s = |i: usize, j: usize| {
        let (a, b) = (p[i], p[j]);
        p[i] = a.min(b);
        p[j] = a.max(b);
    };
    for (i, j) in [
        (1, 2),
        (4, 5),
        (7, 8),
        (0, 1),
        (3, 4),
        (6, 7),
        (1, 2),
        (4, 5),
        (7, 8),
        (0, 3),
        (5, 8),
        (4, 7),
        (3, 6),
        (1, 4),
        (2, 5),
        (4, 7),
        (4, 2),
        (6, 4),
        (4, 2),
    ] {
        s(i, j);
    }
    p[4]
}

/// `medfilt2(I, [3 3])`: [`medfilt2`] for `n = 3` through a sorting network.
fn medfilt3(src: &Grid) -> Grid {
    let (w, h) = (src.w, src.h);
    let mut out = Grid::zeros(w, h);
    let zero = vec![0.0; w];
    for_each_row(&mut out.data, w, |y, o| {
        let up = if y > 0 { src.row(y - 1) } else { &zero };
        let mid = src.row(y);
        let dn = if y + 1 < h { src.row(y + 1) } else { &zero };
        let at = |r: &[f64], x: isize| if x < 0 || x as usize >= w { 0.0 } else { r[x as usize] };
        for (x, ov) in o.iter_mut().enumerate() {
            let x = x as isize;
            *ov = median9([
                at(up, x - 1),
                at(up, x),
                at(up, x + 1),
                at(mid, x - 1),
                at(mid, x),
                at(mid, x + 1),
                at(dn, x - 1),
                at(dn, x),
                at(dn, x + 1),
            ]);
        }
    });
    out
}

/// `medfilt2(I, [n n])` for odd `n`: the median of each `n×n` window, zeros outside the image.
pub(crate) fn medfilt2(src: &Grid, n: usize) -> Grid {
    debug_assert!(n % 2 == 1);
    if n == 3 {
        return medfilt3(src);
    }
    medfilt2_select(src, n)
}

/// [`medfilt2`] by selection in each window (any odd `n`).
fn medfilt2_select(src: &Grid, n: usize) -> Grid {
    let (w, h) = (src.w, src.h);
    let r = (n / 2) as isize;
    let mut out = Grid::zeros(w, h);
    for_each_row(&mut out.data, w, |y, o| {
        let mut win = Vec::with_capacity(n * n);
        for (x, ov) in o.iter_mut().enumerate() {
            win.clear();
            for dy in -r..=r {
                let yy = y as isize + dy;
                for dx in -r..=r {
                    let xx = x as isize + dx;
                    let inside = yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w;
                    win.push(if inside { src.data[yy as usize * w + xx as usize] } else { 0.0 });
                }
            }
            let mid = win.len() / 2;
            let (_, m, _) = win.select_nth_unstable_by(mid, f64::total_cmp);
            *ov = *m;
        }
    });
    out
}

/// Sum of `len` consecutive values of the periodic extension of `s`, starting at index `start`
/// (any integer), using `pre`, the prefix sums of `s` (`pre[0] = 0`, `pre.len() = s.len() + 1`).
fn circular_sum(pre: &[f64], start: isize, len: usize) -> f64 {
    let n = pre.len() - 1;
    let total = pre[n];
    let (full, rest) = (len / n, len % n);
    let s = start.rem_euclid(n as isize) as usize;
    let partial = if s + rest <= n { pre[s + rest] - pre[s] } else { (total - pre[s]) + pre[s + rest - n] };
    full as f64 * total + partial
}

/// `imfilter(I, ones(m)/m^2, 'circular')` for odd `m`: the mean of each `m×m` window of the
/// image's periodic extension (windows wider than the image wrap around as often as needed).
pub(crate) fn box_mean_circular(src: &Grid, m: usize) -> Grid {
    debug_assert!(m % 2 == 1);
    let (w, h) = (src.w, src.h);
    let r = (m / 2) as isize;
    let mut tmp = Grid::zeros(w, h);
    for_each_row(&mut tmp.data, w, |y, o| {
        let mut pre = Vec::with_capacity(w + 1);
        pre.push(0.0);
        let mut acc = 0.0;
        for &v in src.row(y) {
            acc += v;
            pre.push(acc);
        }
        for (x, ov) in o.iter_mut().enumerate() {
            *ov = circular_sum(&pre, x as isize - r, m);
        }
    });
    // Columns: prefix sums down each column, stored column by column (`h + 1` values each).
    let mut pre = vec![0.0; (h + 1) * w];
    for (x, col) in pre.chunks_mut(h + 1).enumerate() {
        for y in 0..h {
            col[y + 1] = col[y] + tmp.data[y * w + x];
        }
    }
    let area = (m * m) as f64;
    let mut out = Grid::zeros(w, h);
    for_each_row(&mut out.data, w, |y, o| {
        for (ov, col) in o.iter_mut().zip(pre.chunks(h + 1)) {
            *ov = circular_sum(col, y as isize - r, m) / area;
        }
    });
    out
}

/// MATLAB's `'symmetric'` border index (half-sample mirror, the edge pixel repeated:
/// `… 1 0 | 0 1 … n-1 | n-1 n-2 …`), periodic with period `2n`.
#[inline]
pub(crate) fn symmetric_index(i: isize, n: usize) -> usize {
    let p = 2 * n as isize;
    let k = i.rem_euclid(p);
    (if k >= n as isize { p - 1 - k } else { k }) as usize
}

/// `imfilter(I, k'*k, 'symmetric')` for an odd-length 1-D kernel `k` (correlation along x, then y).
pub(crate) fn correlate_separable_symmetric(src: &Grid, k: &[f64]) -> Grid {
    crate::grid::correlate_separable(src, k, symmetric_index)
}

/// The normalised 1-D factor `g` of `fspecial('gaussian', [2r+1 2r+1], sigma) = g' * g`.
pub(crate) fn fspecial_gaussian(r: usize, sigma: f64) -> Vec<f64> {
    crate::grid::gaussian_kernel(r, sigma)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::grid::tests::pseudo_random as grid;

    #[test]
    fn symmetric_index_mirrors_with_the_edge_pixel() {
        let got: Vec<usize> = (-4..7).map(|i| symmetric_index(i, 3)).collect();
        assert_eq!(got, vec![2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0]);
        assert_eq!(symmetric_index(-1, 1), 0);
    }

    #[test]
    fn circular_box_matches_brute_force_even_when_the_window_wraps_several_times() {
        for &(w, h, m) in &[(1, 1, 35), (2, 3, 5), (7, 5, 3), (9, 4, 35), (40, 30, 35)] {
            let g = grid(w, h, (w * 7 + h) as u64);
            let fast = box_mean_circular(&g, m);
            let r = (m / 2) as isize;
            for y in 0..h {
                for x in 0..w {
                    let mut s = 0.0;
                    for dy in -r..=r {
                        for dx in -r..=r {
                            let yy = (y as isize + dy).rem_euclid(h as isize) as usize;
                            let xx = (x as isize + dx).rem_euclid(w as isize) as usize;
                            s += g.data[yy * w + xx];
                        }
                    }
                    let want = s / (m * m) as f64;
                    assert!((fast.data[y * w + x] - want).abs() < 1e-9, "{w}x{h} m={m}");
                }
            }
        }
    }

    #[test]
    fn the_3x3_median_network_matches_selection() {
        for &(w, h) in &[(1, 1), (2, 1), (1, 3), (4, 3), (17, 11), (97, 83)] {
            let g = grid(w, h, (w * 13 + h) as u64);
            assert_eq!(medfilt3(&g), medfilt2_select(&g, 3), "{w}x{h}");
        }
        // all 9! orders of a window would be slow; every rotation of distinct values is enough
        // together with the random grids above
        let v = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0];
        for k in 0..9 {
            let mut p = [0.0; 9];
            (0..9).for_each(|i| p[i] = v[(i + k) % 9]);
            assert_eq!(median9(p), 5.0);
        }
    }

    #[test]
    fn medfilt2_pads_with_zeros() {
        let g = Grid { w: 3, h: 3, data: vec![9.0; 9] };
        let m = medfilt2(&g, 3);
        // corner: 4 of 9 inside -> median 0; edge: 6 of 9 inside -> 9; centre: 9
        assert_eq!(m.data, vec![0.0, 9.0, 0.0, 9.0, 9.0, 9.0, 0.0, 9.0, 0.0]);
        let one = medfilt2(&Grid { w: 1, h: 1, data: vec![5.0] }, 3);
        assert_eq!(one.data, vec![0.0]);
    }

    #[test]
    fn symmetric_filter_matches_brute_force_with_kernels_wider_than_the_image() {
        for &(w, h, r) in &[(1, 1, 3), (3, 2, 4), (9, 7, 2), (5, 6, 13)] {
            let g = grid(w, h, (w * 5 + h) as u64);
            let k = fspecial_gaussian(r, 1.7);
            let fast = correlate_separable_symmetric(&g, &k);
            for y in 0..h {
                for x in 0..w {
                    let mut s = 0.0;
                    for (j, &kj) in k.iter().enumerate() {
                        for (i, &ki) in k.iter().enumerate() {
                            let yy = symmetric_index(y as isize + j as isize - r as isize, h);
                            let xx = symmetric_index(x as isize + i as isize - r as isize, w);
                            s += kj * ki * g.data[yy * w + xx];
                        }
                    }
                    assert!((fast.data[y * w + x] - s).abs() < 1e-9, "{w}x{h} r={r}");
                }
            }
        }
    }

    #[test]
    fn symmetric_indices() {
        let got: Vec<usize> = (-5..9).map(|i| symmetric_index(i, 4)).collect();
        assert_eq!(got, vec![3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0]);
        assert_eq!(symmetric_index(-4, 1), 0);
        assert_eq!(symmetric_index(3, 1), 0);
    }
}
