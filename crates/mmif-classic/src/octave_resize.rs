//! GNU Octave's `imresize` (image package 2.14) with the bicubic kernel, as the VIFB code run
//! under Octave computes it: separable, columns first, the cubic kernel `a = −0.5` (stretched by
//! 1/scale with its weights scaled by `scale` when shrinking: antialiasing), **unnormalised**
//! weights, half-sample symmetric borders, sample positions `0.5 + 1/(2s) + k/s` (1-based).
//! `uint8` images are resampled in single precision and rounded back to 8 bits; doubles in double.
//!
//! (Developer A's local copy of a MATLAB-semantics helper; to be folded into a shared module.)

use std::ops::{Add, Mul, Sub};

/// Arithmetic in the precision Octave uses for the image class.
pub(crate) trait Real: Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + PartialOrd {
    fn of(v: f64) -> Self;
    fn floor(self) -> Self;
    fn abs(self) -> Self;
    fn to_f64(self) -> f64;
}

impl Real for f32 {
    fn of(v: f64) -> Self {
        v as f32
    }
    fn floor(self) -> Self {
        f32::floor(self)
    }
    fn abs(self) -> Self {
        f32::abs(self)
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    fn of(v: f64) -> Self {
        v
    }
    fn floor(self) -> Self {
        f64::floor(self)
    }
    fn abs(self) -> Self {
        f64::abs(self)
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// Octave's `cubic` kernel, evaluated in `T` in the same order.
fn cubic<T: Real>(h: T) -> T {
    let a = h.abs();
    let s = a * a;
    let c = s * a;
    let one = T::of(1.0);
    if a <= one {
        T::of(1.5) * c - T::of(2.5) * s + one
    } else if a <= T::of(2.0) {
        T::of(-0.5) * c + T::of(2.5) * s - T::of(4.0) * a + T::of(2.0)
    } else {
        T::of(0.0)
    }
}

/// Half-sample symmetric index, 0-based.
fn sym(i: i64, n: usize) -> usize {
    let p = 2 * n as i64;
    let k = i.rem_euclid(p);
    (if k < n as i64 { k } else { p - 1 - k }) as usize
}

/// Taps `(source index, weight)` of each output sample along one axis of length `n_in → n_out`.
fn taps<T: Real>(n_in: usize, n_out: usize) -> Vec<Vec<(usize, T)>> {
    let scale = n_out as f64 / n_in as f64;
    let off = 1.0 / scale / 2.0;
    let shrink = scale < 1.0;
    let kernel_size = if shrink { 4.0 / scale } else { 4.0 };
    let pad = (kernel_size / 2.0).ceil() as i64;
    let s = T::of(scale);
    (0..n_out)
        .map(|k| {
            let zi = T::of(0.5 + off + k as f64 / scale);
            let idx = zi.floor();
            let dz = zi - idx;
            let base = idx.to_f64() as i64;
            (1 - pad..=pad)
                .map(|shift| {
                    let h = T::of(shift as f64) - dz;
                    let w = if shrink { s * cubic(s * h) } else { cubic(h) };
                    (sym(base + shift - 1, n_in), w)
                })
                .collect()
        })
        .collect()
}

/// Resizes a row-major `w×h` image to `ow×oh` in precision `T` (no rounding of the result).
pub(crate) fn imresize_cubic<T: Real>(src: &[T], w: usize, h: usize, ow: usize, oh: usize) -> Vec<T> {
    let mut cur = src.to_vec();
    let mut cw = w;
    if ow != w {
        let t = taps::<T>(w, ow);
        let mut out = Vec::with_capacity(ow * h);
        for y in 0..h {
            let row = &cur[y * cw..(y + 1) * cw];
            for tk in &t {
                // Octave accumulates into a zero array, shift by shift.
                let mut acc = T::of(0.0);
                for &(i, wt) in tk {
                    acc = acc + row[i] * wt;
                }
                out.push(acc);
            }
        }
        cur = out;
        cw = ow;
    }
    if oh != h {
        let t = taps::<T>(h, oh);
        let mut out = Vec::with_capacity(cw * oh);
        for tk in &t {
            let mut acc = vec![T::of(0.0); cw];
            for &(i, wt) in tk {
                for (a, &v) in acc.iter_mut().zip(&cur[i * cw..(i + 1) * cw]) {
                    *a = *a + v * wt;
                }
            }
            out.extend(acc);
        }
        cur = out;
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_identity_and_enlarging_interpolates() {
        let src: Vec<f64> = (0..12).map(f64::from).collect();
        assert_eq!(imresize_cubic(&src, 4, 3, 4, 3), src);
        // A linear ramp stays linear inside under the interpolating cubic kernel.
        let ramp: Vec<f64> = (0..8).map(|v| 10.0 * f64::from(v)).collect();
        let up = imresize_cubic(&ramp, 8, 1, 16, 1);
        for x in 4..12 {
            assert!((up[x + 1] - up[x] - 5.0).abs() < 1e-9, "{up:?}");
        }
    }

    #[test]
    fn shrinking_by_two_averages() {
        // Antialiased /2 of a constant keeps the constant: the weights sum to one.
        let src = vec![7.0f64; 64];
        let out = imresize_cubic(&src, 8, 8, 4, 4);
        assert!(out.iter().all(|&v| (v - 7.0).abs() < 1e-12), "{out:?}");
    }
}
