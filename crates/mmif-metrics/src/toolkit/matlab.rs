//! The MATLAB building blocks the toolkits' `.m` files use, with MATLAB's semantics:
//! `rgb2gray`, `round`, `gradient`, `conv2`/`filter2` (zero padding), `imfilter(…, 'replicate')`,
//! `fspecial('gaussian')`, `blkproc` and the toolkits' own `normalize1`.
//!
//! Images here are single-channel `f64` [`Plane`]s, row-major. MATLAB is column-major; the only
//! visible consequence is the summation order of reductions (differences of a few ulp).

/// A single-channel `f64` image, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Plane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f64>,
}

impl Plane {
    pub fn new(width: usize, height: usize, data: Vec<f64>) -> Self {
        debug_assert_eq!(data.len(), width * height);
        Self { width, height, data }
    }

    /// The value at row `r`, column `c`.
    #[inline]
    pub fn at(&self, r: usize, c: usize) -> f64 {
        self.data[r * self.width + c]
    }

    /// The value at (`r`, `c`) or 0 outside the image (MATLAB's zero padding).
    #[inline]
    fn at_or_zero(&self, r: isize, c: isize) -> f64 {
        if r < 0 || c < 0 || r >= self.height as isize || c >= self.width as isize {
            0.0
        } else {
            self.data[r as usize * self.width + c as usize]
        }
    }

    /// Element-wise map.
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Plane {
        Plane::new(self.width, self.height, self.data.iter().map(|&v| f(v)).collect())
    }
}

/// MATLAB's `rgb2gray` weights: the first row of `inv([1 0.956 0.621; 1 -0.272 -0.647; 1 -1.106 1.703])`
/// (the NTSC YIQ matrix), as MATLAB computes them. Octave 7's `rgb2gray` uses these rounded to six
/// decimals (0.298936, 0.587043, 0.114021), so its results differ by up to ~1e-6 relative and,
/// on `uint8` images, by one grey level on rare pixels.
pub const RGB2GRAY: [f64; 3] = [0.298_936_021_293_775_4, 0.587_043_074_451_121_4, 0.114_020_904_255_103_25];

/// MATLAB's `round`: half away from zero.
#[inline]
pub fn round(v: f64) -> f64 {
    v.round()
}

/// `rgb2gray` of three planes: `uint8` input (`to_u8`) gives the weighted sum rounded to an
/// integer and saturated to 0..=255 (MATLAB's cast), `double` input gives the weighted sum as is.
pub fn rgb2gray(r: &Plane, g: &Plane, b: &Plane, to_u8: bool) -> Plane {
    let data = r
        .data
        .iter()
        .zip(&g.data)
        .zip(&b.data)
        .map(|((&r, &g), &b)| {
            let y = RGB2GRAY[0] * r + RGB2GRAY[1] * g + RGB2GRAY[2] * b;
            if to_u8 { round(y).clamp(0.0, 255.0) } else { y }
        })
        .collect();
    Plane::new(r.width, r.height, data)
}

/// `conv2(x, k, 'same')` for a 3×3 kernel `k` (rows of `k`): true convolution, zero padding.
///
/// On integer images (every VIFB/MEFB input) the result is exact in any order. On non-integer
/// images (`rgb2gray` of a colour source when the fused image is gray) the summation order
/// decides whether a gradient cancels to exactly 0, which flips Qabf's `Sx == 0` branch; MATLAB's
/// and Octave's orders are not documented, so such values can differ (measured: 2.7e-3 relative
/// on the `gray_fused` test case against Octave).
pub fn conv2_same3(x: &Plane, k: &[[f64; 3]; 3]) -> Plane {
    let (w, h) = (x.width, x.height);
    let mut out = vec![0.0; w * h];
    for r in 0..h {
        for c in 0..w {
            let mut s = 0.0f64;
            // output (r, c) of 'same' = full (r + 1, c + 1); source (r + 1 - a, c + 1 - b)
            for b in 0..3 {
                let sc = c as isize + 1 - b as isize;
                if sc < 0 || sc >= w as isize {
                    continue;
                }
                for (a, row) in k.iter().enumerate() {
                    let sr = r as isize + 1 - a as isize;
                    if sr < 0 || sr >= h as isize {
                        continue;
                    }
                    s += row[b] * x.data[sr as usize * w + sc as usize];
                }
            }
            out[r * w + c] = s;
        }
    }
    Plane::new(w, h, out)
}

/// `filter2(k, x, 'same')` for a 3×3 kernel: correlation, zero padding.
pub fn filter2_same3(x: &Plane, k: &[[f64; 3]; 3]) -> Plane {
    let (w, h) = (x.width, x.height);
    let mut out = vec![0.0; w * h];
    for r in 0..h {
        for c in 0..w {
            let mut s = 0.0;
            for (a, row) in k.iter().enumerate() {
                for (b, &kv) in row.iter().enumerate() {
                    s += kv * x.at_or_zero(r as isize + a as isize - 1, c as isize + b as isize - 1);
                }
            }
            out[r * w + c] = s;
        }
    }
    Plane::new(w, h, out)
}

/// `imfilter(x, k, 'replicate')` for a 3×3 kernel: correlation, borders replicated.
pub fn imfilter_replicate3(x: &Plane, k: &[[f64; 3]; 3]) -> Plane {
    let (w, h) = (x.width, x.height);
    let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    let mut out = vec![0.0; w * h];
    for r in 0..h {
        for c in 0..w {
            let mut s = 0.0;
            for (a, row) in k.iter().enumerate() {
                for (b, &kv) in row.iter().enumerate() {
                    s += kv * x.at(clamp(r as isize + a as isize - 1, h), clamp(c as isize + b as isize - 1, w));
                }
            }
            out[r * w + c] = s;
        }
    }
    Plane::new(w, h, out)
}

/// `filter2(g * g', x, shape)` for a separable symmetric kernel with 1-D taps `g` (odd length):
/// `valid` (`same = false`, empty when the image is smaller than the kernel) or `same`
/// (zero padding). Separable evaluation changes the rounding by a few ulp only.
pub fn filter2_separable(x: &Plane, g: &[f64], same: bool) -> Plane {
    let n = g.len();
    let half = n / 2;
    let (w, h) = (x.width, x.height);
    let (ow, oh) = if same { (w, h) } else { (w.saturating_sub(n - 1), h.saturating_sub(n - 1)) };
    if !same && (w < n || h < n) {
        return Plane::new(0, 0, Vec::new());
    }
    // horizontal pass: oh_rows_in = h rows, ow columns
    let off = if same { -(half as isize) } else { 0 };
    let mut tmp = vec![0.0; ow * h];
    for r in 0..h {
        for c in 0..ow {
            let mut s = 0.0;
            for (t, &gv) in g.iter().enumerate() {
                let cc = c as isize + t as isize + off;
                if cc >= 0 && (cc as usize) < w {
                    s += gv * x.data[r * w + cc as usize];
                }
            }
            tmp[r * ow + c] = s;
        }
    }
    let mut out = vec![0.0; ow * oh];
    for r in 0..oh {
        for c in 0..ow {
            let mut s = 0.0;
            for (t, &gv) in g.iter().enumerate() {
                let rr = r as isize + t as isize + off;
                if rr >= 0 && (rr as usize) < h {
                    s += gv * tmp[rr as usize * ow + c];
                }
            }
            out[r * ow + c] = s;
        }
    }
    Plane::new(ow, oh, out)
}

/// The 1-D factor of `fspecial('gaussian', n, sigma)`: `exp(-x²/2σ²)` over `x = -(n-1)/2..(n-1)/2`,
/// normalised so that the outer product sums to one.
pub fn gaussian_taps(n: usize, sigma: f64) -> Vec<f64> {
    let half = (n as f64 - 1.0) / 2.0;
    let g: Vec<f64> = (0..n).map(|i| (-((i as f64 - half).powi(2)) / (2.0 * sigma * sigma)).exp()).collect();
    let s: f64 = g.iter().sum();
    g.into_iter().map(|v| v / s).collect()
}

/// `fspecial('gaussian', n, sigma)` as an `n`×`n` row-major kernel: `exp(-(x²+y²)/2σ²)`, values
/// below `eps·max` set to 0, normalised to sum one.
pub fn fspecial_gaussian(n: usize, sigma: f64) -> Vec<f64> {
    let half = (n as f64 - 1.0) / 2.0;
    let mut k = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            let (y, x) = (i as f64 - half, j as f64 - half);
            k.push((-(x * x + y * y) / (2.0 * sigma * sigma)).exp());
        }
    }
    let max = k.iter().cloned().fold(0.0, f64::max);
    for v in &mut k {
        if *v < f64::EPSILON * max {
            *v = 0.0;
        }
    }
    let s: f64 = k.iter().sum();
    k.into_iter().map(|v| v / s).collect()
}

/// `filter2(k, x, 'valid')` for an `n`×`n` row-major kernel `k`: correlation over the positions
/// where the kernel fits (an empty plane, as MATLAB's empty matrix, when it does not).
///
/// The sum runs in GNU Octave's order (`conv2` → liboctave's `dconv2i`: kernel columns, then rows,
/// both last to first, each term added by BLAS `daxpy`, i.e. a fused multiply-add with OpenBLAS),
/// so that where the result is pure rounding noise (a variance over a flat patch) it is Octave's
/// noise too. MATLAB's order is not documented; there such values differ (see docs/metrics.md).
pub fn filter2_valid(x: &Plane, k: &[f64], n: usize) -> Plane {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        fn with_fma(x: &Plane, k: &[f64], n: usize) -> Plane {
            filter2_valid_axpy(x, k, n)
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            return unsafe { with_fma(x, k, n) };
        }
    }
    filter2_valid_axpy(x, k, n)
}

/// [`filter2_valid`] as `dconv2i` runs it: one `axpy` (`out = k·x + out`, fused) per kernel
/// tap, taps in Octave's order. `mul_add` is exactly rounded on every target (a hardware FMA
/// where enabled, else libm's), so each copy gives the same bits.
#[inline(always)]
fn filter2_valid_axpy(x: &Plane, k: &[f64], n: usize) -> Plane {
    let (w, h) = (x.width, x.height);
    if w < n || h < n {
        return Plane::new(0, 0, Vec::new());
    }
    let (ow, oh) = (w - n + 1, h - n + 1);
    let mut out = vec![0.0; ow * oh];
    for q in (0..n).rev() {
        for p in (0..n).rev() {
            let kv = k[p * n + q];
            for r in 0..oh {
                let src = &x.data[(r + p) * w + q..(r + p) * w + q + ow];
                for (d, s) in out[r * ow..(r + 1) * ow].iter_mut().zip(src) {
                    *d = kv.mul_add(*s, *d);
                }
            }
        }
    }
    Plane::new(ow, oh, out)
}

/// `imfilter(x, ones(2)/4, 'symmetric', 'same')` followed by `(1:2:end, 1:2:end)`, the
/// downsampling of Wang's `msssim.m` and Ma's `mef_ms_ssim.m`: each kept pixel is the mean of
/// itself and its right, lower and lower-right neighbours, mirrored past the last row and column.
pub fn halve(x: &Plane) -> Plane {
    let (w, h) = (x.width, x.height);
    let at = |r: usize, c: usize| x.at(r.min(h - 1), c.min(w - 1));
    let mut out = Vec::with_capacity(w.div_ceil(2) * h.div_ceil(2));
    for r in (0..h).step_by(2) {
        for c in (0..w).step_by(2) {
            out.push(0.25 * at(r, c) + 0.25 * at(r + 1, c) + 0.25 * at(r, c + 1) + 0.25 * at(r + 1, c + 1));
        }
    }
    Plane::new(w.div_ceil(2), h.div_ceil(2), out)
}

/// `x(1:2:end, 1:2:end)`: every other row and column, starting with the first.
pub fn subsample2(x: &Plane) -> Plane {
    let (ow, oh) = (x.width.div_ceil(2), x.height.div_ceil(2));
    let mut out = Vec::with_capacity(ow * oh);
    for r in (0..x.height).step_by(2) {
        for c in (0..x.width).step_by(2) {
            out.push(x.at(r, c));
        }
    }
    Plane::new(ow, oh, out)
}

/// MATLAB's `gradient(x)` (unit spacing): central differences inside, one-sided at the borders,
/// zero along a dimension of length 1. Returns `(d/dx along columns, d/dy along rows)`.
pub fn gradient(x: &Plane) -> (Plane, Plane) {
    let (w, h) = (x.width, x.height);
    let mut gx = vec![0.0; w * h];
    let mut gy = vec![0.0; w * h];
    for r in 0..h {
        for c in 0..w {
            if w > 1 {
                gx[r * w + c] = if c == 0 {
                    x.at(r, 1) - x.at(r, 0)
                } else if c == w - 1 {
                    x.at(r, w - 1) - x.at(r, w - 2)
                } else {
                    (x.at(r, c + 1) - x.at(r, c - 1)) / 2.0
                };
            }
            if h > 1 {
                gy[r * w + c] = if r == 0 {
                    x.at(1, c) - x.at(0, c)
                } else if r == h - 1 {
                    x.at(h - 1, c) - x.at(h - 2, c)
                } else {
                    (x.at(r + 1, c) - x.at(r - 1, c)) / 2.0
                };
            }
        }
    }
    (Plane::new(w, h, gx), Plane::new(w, h, gy))
}

/// The toolkits' `normalize1`: unchanged if the image's maximum and minimum are both 0, else
/// `round((x - min) / (max - min) * 255)` (all `NaN` for another constant image, as in MATLAB).
pub fn normalize1(x: &Plane) -> Plane {
    let (lo, hi) = min_max(&x.data);
    if hi == 0.0 && lo == 0.0 {
        return x.clone();
    }
    x.map(|v| round((v - lo) / (hi - lo) * 255.0))
}

/// MATLAB's `min(x(:))`, `max(x(:))` (`NaN`s ignored).
pub fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter().fold((f64::NAN, f64::NAN), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// `blkproc(x, [b b], [0 0], f)`: `f` of each `b`×`b` block of `x` zero-padded to a multiple of
/// `b`, as a grid (row-major) of `ceil(h/b)`×`ceil(w/b)` values. `f` gets the block's values.
pub fn blkproc(x: &Plane, b: usize, f: impl Fn(&[f64]) -> f64) -> Plane {
    let (bw, bh) = (x.width.div_ceil(b), x.height.div_ceil(b));
    let mut out = Vec::with_capacity(bw * bh);
    let mut block = vec![0.0; b * b];
    for br in 0..bh {
        for bc in 0..bw {
            for i in 0..b {
                for j in 0..b {
                    let (r, c) = (br * b + i, bc * b + j);
                    block[i * b + j] = if r < x.height && c < x.width { x.at(r, c) } else { 0.0 };
                }
            }
            out.push(f(&block));
        }
    }
    Plane::new(bw, bh, out)
}

/// MATLAB's `freqspace(n)`: `((0:n-1) - floor(n/2)) * (2/n)`.
pub fn freqspace(n: usize) -> Vec<f64> {
    let step = 2.0 / n as f64;
    (0..n).map(|k| (k as f64 - (n / 2) as f64) * step).collect()
}

/// MATLAB's `edge(I)` with its defaults (`'sobel'`, direction `'both'`, automatic threshold,
/// thinning) on a `double` image, as 0/1 values. Gradients `bx = imfilter(I, op', 'replicate')`,
/// `by = imfilter(I, op, 'replicate')` with `op = fspecial('sobel')/8`; magnitude
/// `b = bx² + by²`; cutoff `4·sum(b(:))/numel(b)` (threshold = its square root). A pixel is an
/// edge where `b > cutoff` and `b` is a local maximum across the dominant gradient direction:
/// `|bx| ≥ |by| − 100·eps` with `b(r,c−1) ≤ b(r,c) > b(r,c+1)`, or `|by| ≥ |bx| − 100·eps` with
/// `b(r−1,c) ≤ b(r,c) > b(r+1,c)`; a neighbour outside the image passes its test. This is the
/// rule of MathWorks' portable (code generation) `edge.m`, `computeEdgesWithThinningPortable`
/// with the Sobel offsets `[0 0 0 0]`, and of the arguments older `edge.m` versions pass to their
/// compiled `computeedge`. On integer-valued images every `bx`, `by`, `b` and the sum are exact
/// multiples of 1/64 (no rounding in any order), so the map does not depend on summation order.
pub fn edge_sobel(x: &Plane) -> Plane {
    let (w, h) = (x.width, x.height);
    let op = [[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]].map(|row| row.map(|v: f64| v / 8.0));
    let op_t: [[f64; 3]; 3] = std::array::from_fn(|i| std::array::from_fn(|j| op[j][i]));
    let bx = imfilter_replicate3(x, &op_t);
    let by = imfilter_replicate3(x, &op);
    let b: Vec<f64> = bx.data.iter().zip(&by.data).map(|(gx, gy)| gx * gx + gy * gy).collect();
    let cutoff = 4.0 * super::phasecong::sum_colmajor(&b, w, h) / b.len() as f64;
    let tol = 100.0 * f64::EPSILON;
    let at = |r: usize, c: usize| b[r * w + c];
    let mut e = vec![0.0; w * h];
    for r in 0..h {
        for c in 0..w {
            let v = at(r, c);
            if v <= cutoff || v.is_nan() {
                continue;
            }
            let (ax, ay) = (bx.data[r * w + c].abs(), by.data[r * w + c].abs());
            let left = c == 0 || at(r, c - 1) <= v;
            let right = c + 1 == w || v > at(r, c + 1);
            let up = r == 0 || at(r - 1, c) <= v;
            let down = r + 1 == h || v > at(r + 1, c);
            if (ax >= ay - tol && left && right) || (ay >= ax - tol && up && down) {
                e[r * w + c] = 1.0;
            }
        }
    }
    Plane::new(w, h, e)
}

/// `mean2`: the mean of all values (`NaN` for an empty image, as MATLAB's 0/0).
pub fn mean2(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_matlab_definition() {
        let x = Plane::new(3, 2, vec![1.0, 4.0, 9.0, 2.0, 2.0, 2.0]);
        let (gx, gy) = gradient(&x);
        assert_eq!(gx.data, vec![3.0, 4.0, 5.0, 0.0, 0.0, 0.0]);
        assert_eq!(gy.data, vec![1.0, -2.0, -7.0, 1.0, -2.0, -7.0]);
        let one = Plane::new(1, 1, vec![5.0]);
        assert_eq!(gradient(&one).0.data, vec![0.0]);
    }

    #[test]
    fn convolution_flips_the_kernel() {
        let x = Plane::new(3, 3, vec![0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        let k = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]];
        // an impulse convolved gives the kernel, correlated gives it rotated
        assert_eq!(conv2_same3(&x, &k).data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        assert_eq!(filter2_same3(&x, &k).data, vec![9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]);
    }

    #[test]
    fn blocks_are_zero_padded() {
        let x = Plane::new(3, 1, vec![1.0, 2.0, 3.0]);
        let b = blkproc(&x, 2, |v| v.iter().sum::<f64>() / v.len() as f64);
        assert_eq!((b.width, b.height), (2, 1));
        assert_eq!(b.data, vec![0.75, 0.75]);
    }

    #[test]
    fn freqspace_even_and_odd() {
        assert_eq!(freqspace(4), vec![-1.0, -0.5, 0.0, 0.5]);
        let f = freqspace(3);
        assert!((f[0] + 2.0 / 3.0).abs() < 1e-15 && f[1] == 0.0);
    }

    #[test]
    fn filter2_valid_is_a_correlation_over_the_fitting_positions() {
        // 4x5 image, 3x3 kernel: 2x3 outputs, each the plain sum of products (to rounding)
        let x = Plane::new(5, 4, (0..20).map(|v| f64::from(v * v % 7) + 0.25).collect());
        let k: Vec<f64> = (1..=9).map(f64::from).collect();
        let y = filter2_valid(&x, &k, 3);
        assert_eq!((y.width, y.height), (3, 2));
        for r in 0..2 {
            for c in 0..3 {
                let want: f64 = (0..9).map(|t| k[t] * x.at(r + t / 3, c + t % 3)).sum();
                assert!((y.at(r, c) - want).abs() <= 1e-12 * want.abs(), "{r},{c}");
            }
        }
        assert_eq!(filter2_valid(&x, &k[..1], 1).data, x.data);
        assert!(filter2_valid(&Plane::new(2, 2, vec![1.0; 4]), &k, 3).data.is_empty());
    }

    #[test]
    fn edge_keeps_one_pixel_across_a_step() {
        // a vertical step between columns 4 and 5 of a 10x5 image: |bx| = step/2 on columns 4
        // and 5, zero elsewhere, so b is above 4·mean(b) there; b ties on the two columns, and
        // the `b(r,c−1) ≤ b > b(r,c+1)` rule keeps the right one of the pair (column 5)
        let mut want = vec![0.0; 10];
        want[5] = 1.0;
        let x = Plane::new(10, 5, (0..50).map(|i| if i % 10 >= 5 { 8.0 } else { 0.0 }).collect());
        let e = edge_sobel(&x);
        for r in 0..5 {
            assert_eq!((0..10).map(|c| e.at(r, c)).collect::<Vec<_>>(), want, "row {r}");
        }
        // a horizontal step: the same along rows, on the transposed image
        let y = Plane::new(5, 10, (0..50).map(|i| if i / 5 >= 5 { 8.0 } else { 0.0 }).collect());
        let e = edge_sobel(&y);
        for c in 0..5 {
            assert_eq!((0..10).map(|r| e.at(r, c)).collect::<Vec<_>>(), want, "column {c}");
        }
        // two edge columns out of six: b = 16 is below the cutoff 4·160/30, so no edge
        let z = Plane::new(6, 5, (0..30).map(|i| if i % 6 >= 3 { 8.0 } else { 0.0 }).collect());
        assert!(edge_sobel(&z).data.iter().all(|&v| v == 0.0));
        // a constant image has no edge (b = 0 is not above the cutoff 0); nor does one pixel
        assert!(edge_sobel(&Plane::new(4, 3, vec![9.0; 12])).data.iter().all(|&v| v == 0.0));
        assert_eq!(edge_sobel(&Plane::new(1, 1, vec![3.0])).data, vec![0.0]);
    }

    #[test]
    fn edge_equals_the_octave_shim_of_matlabs_rule_on_mefb_crops() {
        // tests/data/fmi/edge_maps.txt (tests/octave/check_edge.m): per crop `name w h`, h rows
        // of input values, h rows of the 0/1 map of tools/octave_shims/matlab_edge/edge.m
        let text = include_str!("../../tests/data/fmi/edge_maps.txt");
        let mut lines = text.lines();
        let mut crops = 0;
        while let Some(head) = lines.next() {
            let f: Vec<&str> = head.split(' ').collect();
            let (w, h): (usize, usize) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            let data: Vec<f64> = (0..h)
                .flat_map(|_| lines.next().unwrap().split(' ').map(|v| v.parse::<f64>().unwrap()).collect::<Vec<_>>())
                .collect();
            let want: Vec<f64> = (0..h)
                .flat_map(|_| lines.next().unwrap().bytes().map(|b| f64::from(b - b'0')).collect::<Vec<_>>())
                .collect();
            let got = edge_sobel(&Plane::new(w, h, data));
            assert_eq!(got.data, want, "{}", f[0]);
            assert!(want.iter().sum::<f64>() >= 20.0, "{}: too few edge pixels to test", f[0]);
            crops += 1;
        }
        assert_eq!(crops, 4);
    }

    #[test]
    fn gaussian_kernel_and_halving() {
        let g = fspecial_gaussian(7, 1.5);
        assert!((g.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert_eq!(g[0], g[6]);
        assert_eq!(g[3 * 7 + 3], g.iter().cloned().fold(0.0, f64::max));
        // 3x3: kept pixels (0,0), (0,2), (2,0), (2,2); past the edge the last row/column repeats
        let x = Plane::new(3, 3, vec![0.0, 4.0, 8.0, 4.0, 8.0, 12.0, 8.0, 12.0, 16.0]);
        let h = halve(&x);
        assert_eq!((h.width, h.height), (2, 2));
        assert_eq!(h.data, vec![4.0, 10.0, 10.0, 16.0]);
        assert_eq!(subsample2(&x).data, vec![0.0, 8.0, 8.0, 16.0]);
    }
}
