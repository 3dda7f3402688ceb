//! A small complex FFT for any length (radix-2 for powers of two, Bluestein's chirp-z transform
//! otherwise) and the one 2-D operation the toolkits' frequency-domain metrics need:
//! `real(ifft2(ifftshift(fftshift(fft2(x)) .* H)))` for a real image `x` and a real,
//! centred (fftshift-ordered) filter `H`.
//!
//! MATLAB returns a real `ifft2` when its input is conjugate symmetric, which it is here (the
//! filters depend on the radial frequency only); this module therefore keeps the real part.
//! Rounding differs from FFTW's by ~1e-15 relative to the image's largest value.

use std::f64::consts::PI;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct C {
    pub(crate) re: f64,
    pub(crate) im: f64,
}

impl C {
    pub(crate) fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }
    fn mul(self, o: C) -> C {
        C::new(self.re * o.re - self.im * o.im, self.re * o.im + self.im * o.re)
    }
    fn conj(self) -> C {
        C::new(self.re, -self.im)
    }
}

/// A transform of one length, with its twiddles (and Bluestein chirp) precomputed.
struct Plan {
    n: usize,
    /// Power-of-two length of the inner radix-2 transforms.
    m: usize,
    twiddles: Vec<C>,
    /// Bluestein only: `exp(-iπk²/n)` and the transformed conjugate chirp.
    chirp: Vec<C>,
    chirp_fft: Vec<C>,
}

impl Plan {
    fn new(n: usize) -> Self {
        let pow2 = n.is_power_of_two();
        let m = if pow2 { n } else { (2 * n - 1).next_power_of_two() };
        let twiddles = (0..m / 2).map(|k| angle(-2.0 * PI * k as f64 / m as f64)).collect();
        let mut plan = Plan { n, m, twiddles, chirp: Vec::new(), chirp_fft: Vec::new() };
        if !pow2 {
            // k² mod 2n keeps the angle small and exact for large k
            let chirp: Vec<C> =
                (0..n).map(|k| angle(-PI * ((k as u128 * k as u128) % (2 * n as u128)) as f64 / n as f64)).collect();
            let mut b = vec![C::default(); m];
            b[0] = chirp[0].conj();
            for k in 1..n {
                b[k] = chirp[k].conj();
                b[m - k] = chirp[k].conj();
            }
            plan.radix2(&mut b, false);
            plan.chirp = chirp;
            plan.chirp_fft = b;
        }
        plan
    }

    /// In-place iterative radix-2 transform of length `self.m` (inverse without the 1/m scale).
    fn radix2(&self, x: &mut [C], inverse: bool) {
        let m = self.m;
        let mut j = 0;
        for i in 1..m {
            let mut bit = m >> 1;
            while j & bit != 0 {
                j ^= bit;
                bit >>= 1;
            }
            j |= bit;
            if i < j {
                x.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= m {
            let step = m / len;
            for start in (0..m).step_by(len) {
                for k in 0..len / 2 {
                    let w = self.twiddles[k * step];
                    let w = if inverse { w.conj() } else { w };
                    let u = x[start + k];
                    let v = x[start + k + len / 2].mul(w);
                    x[start + k] = C::new(u.re + v.re, u.im + v.im);
                    x[start + k + len / 2] = C::new(u.re - v.re, u.im - v.im);
                }
            }
            len <<= 1;
        }
    }

    /// Unscaled DFT of `x` (length `n`) in place; `inverse` conjugates the kernel.
    fn run(&self, x: &mut [C], scratch: &mut Vec<C>) {
        self.transform(x, scratch, false);
    }

    fn run_inverse(&self, x: &mut [C], scratch: &mut Vec<C>) {
        self.transform(x, scratch, true);
    }

    fn transform(&self, x: &mut [C], scratch: &mut Vec<C>, inverse: bool) {
        if self.n == self.m {
            self.radix2(x, inverse);
            return;
        }
        // inverse DFT = conj(DFT(conj(x)))
        scratch.clear();
        scratch.resize(self.m, C::default());
        for k in 0..self.n {
            let v = if inverse { x[k].conj() } else { x[k] };
            scratch[k] = v.mul(self.chirp[k]);
        }
        self.radix2(scratch, false);
        for (s, b) in scratch.iter_mut().zip(&self.chirp_fft) {
            *s = s.mul(*b);
        }
        self.radix2(scratch, true);
        let scale = 1.0 / self.m as f64;
        for k in 0..self.n {
            let v = scratch[k].mul(self.chirp[k]);
            let v = C::new(v.re * scale, v.im * scale);
            x[k] = if inverse { v.conj() } else { v };
        }
    }
}

fn angle(t: f64) -> C {
    C::new(t.cos(), t.sin())
}

/// MATLAB's `fft2` (or `ifft2`, scaled by 1/(width·height), when `inverse`) of a row-major
/// `height`×`width` complex image, in place.
pub(crate) fn fft2(a: &mut [C], width: usize, height: usize, inverse: bool) {
    debug_assert_eq!(a.len(), width * height);
    let (rows, cols) = (Plan::new(width), Plan::new(height));
    let mut scratch = Vec::new();
    let run = |p: &Plan, x: &mut [C], s: &mut Vec<C>| if inverse { p.run_inverse(x, s) } else { p.run(x, s) };
    for r in 0..height {
        run(&rows, &mut a[r * width..(r + 1) * width], &mut scratch);
    }
    let mut col = vec![C::default(); height];
    for c in 0..width {
        for r in 0..height {
            col[r] = a[r * width + c];
        }
        run(&cols, &mut col, &mut scratch);
        for r in 0..height {
            a[r * width + c] = col[r];
        }
    }
    if inverse {
        let scale = 1.0 / (width * height) as f64;
        for v in a.iter_mut() {
            *v = C::new(v.re * scale, v.im * scale);
        }
    }
}

/// `real(ifft2(ifftshift(fftshift(fft2(x)) .* h)))` for a `height`×`width` row-major real image
/// `x` and a filter `h` of the same size in centred (fftshift) order, as MATLAB's code writes it.
pub fn filter_centred(x: &[f64], h: &[f64], width: usize, height: usize) -> Vec<f64> {
    debug_assert_eq!(x.len(), width * height);
    debug_assert_eq!(h.len(), width * height);
    let (rows, cols) = (Plan::new(width), Plan::new(height));
    let mut scratch = Vec::new();
    let mut a: Vec<C> = x.iter().map(|&v| C::new(v, 0.0)).collect();
    for r in 0..height {
        rows.run(&mut a[r * width..(r + 1) * width], &mut scratch);
    }
    let mut col = vec![C::default(); height];
    let (sh_r, sh_c) = (height / 2, width / 2);
    for c in 0..width {
        for r in 0..height {
            col[r] = a[r * width + c];
        }
        cols.run(&mut col, &mut scratch);
        // frequency (r, c) in FFT order sits at ((r + ⌊H/2⌋) mod H, (c + ⌊W/2⌋) mod W) when centred
        let hc = (c + sh_c) % width;
        for r in 0..height {
            let g = h[((r + sh_r) % height) * width + hc];
            col[r] = C::new(col[r].re * g, col[r].im * g);
        }
        cols.run_inverse(&mut col, &mut scratch);
        for r in 0..height {
            a[r * width + c] = col[r];
        }
    }
    let scale = 1.0 / (width * height) as f64;
    let mut out = vec![0.0; width * height];
    for r in 0..height {
        let row = &mut a[r * width..(r + 1) * width];
        rows.run_inverse(row, &mut scratch);
        for (o, v) in out[r * width..(r + 1) * width].iter_mut().zip(row.iter()) {
            *o = v.re * scale;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dft(x: &[C]) -> Vec<C> {
        let n = x.len();
        (0..n)
            .map(|k| {
                x.iter().enumerate().fold(C::default(), |s, (j, &v)| {
                    let w = angle(-2.0 * PI * ((j * k) % n) as f64 / n as f64);
                    let p = v.mul(w);
                    C::new(s.re + p.re, s.im + p.im)
                })
            })
            .collect()
    }

    #[test]
    fn matches_naive_dft_for_many_lengths() {
        for n in [1usize, 2, 3, 5, 8, 12, 17, 31, 64, 100] {
            let x: Vec<C> = (0..n).map(|i| C::new((i as f64 * 0.7).sin(), (i as f64 * 1.3).cos())).collect();
            let want = dft(&x);
            let plan = Plan::new(n);
            let mut got = x.clone();
            let mut s = Vec::new();
            plan.run(&mut got, &mut s);
            for (g, w) in got.iter().zip(&want) {
                assert!((g.re - w.re).abs() < 1e-10 && (g.im - w.im).abs() < 1e-10, "n={n}");
            }
            plan.run_inverse(&mut got, &mut s);
            for (g, v) in got.iter().zip(&x) {
                assert!((g.re / n as f64 - v.re).abs() < 1e-12 && (g.im / n as f64 - v.im).abs() < 1e-12, "n={n}");
            }
        }
    }

    #[test]
    fn all_pass_filter_is_identity() {
        let (w, h) = (7, 6);
        let x: Vec<f64> = (0..w * h).map(|i| (i * 37 % 11) as f64).collect();
        let y = filter_centred(&x, &vec![1.0; w * h], w, h);
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
