//! EMMA's equivariant transforms (the official `Transformer` of `utils.py`), differentiable with
//! respect to the image.
//!
//! [`Transforms::apply`] builds the batch `[x, shifts…, rotations…, flips…]`, every block the whole
//! input batch, as `Transformer.apply` concatenates it:
//!
//! * **shifts** — `torch.roll(x, (rows, cols), dims=(-2, -1))`, one block per `(rows, cols)`
//!   pair. The official code draws `n` distinct non-zero row shifts from `±1 … ±(H-1)` and,
//!   independently, `n` distinct column shifts from `±1 … ±(W-1)` (`random.sample`), then pairs
//!   them in order; [`random_shifts`] does the same from a counter-based stream (see
//!   [`shift_stream`]).
//! * **rotations** — kornia `rotate` by each angle in degrees: bilinear, zero padding, about
//!   `((W-1)/2, (H-1)/2)`, `align_corners=True`, positive angles counter-clockwise as displayed.
//!   The official angles are not random: `range(10, 360, 360 // n)` ([`official_angles`]).
//! * **flips** — `hflip` (columns reversed), then `vflip` (rows reversed), then `hflip(vflip)`,
//!   the first `flips` of these (0 to 3).
//!
//! The rotation's sampling positions and bilinear weights depend only on the size and the angle,
//! so they are computed on the host (in f64) and applied as four index gathers with weights:
//! the gradient flows back through the gathers (a scatter-add) to the image.

use burn::tensor::{Device, Int, Tensor, TensorData};
use mmif_io::fill::splitmix64;
use serde::{Deserialize, Serialize};

/// `torch.roll(x, shifts=(rows, cols), dims=(-2, -1))`: element `(y, x)` moves to
/// `((y + rows) mod H, (x + cols) mod W)`.
pub fn roll(x: Tensor<4>, rows: i64, cols: i64) -> Tensor<4> {
    x.roll_dim(rows, 2).roll_dim(cols, 3)
}

/// kornia `hflip`: the columns reversed.
pub fn hflip(x: Tensor<4>) -> Tensor<4> {
    x.flip([3])
}

/// kornia `vflip`: the rows reversed.
pub fn vflip(x: Tensor<4>) -> Tensor<4> {
    x.flip([2])
}

/// The bilinear sampling of a rotation of an `H×W` image: for each output pixel (row-major),
/// four source pixel indices and their weights (an index outside the image has weight 0).
#[derive(Clone, Debug, PartialEq)]
pub struct RotationSampling {
    pub height: usize,
    pub width: usize,
    /// `[top-left, top-right, bottom-left, bottom-right]` flat source indices, per output pixel.
    pub indices: [Vec<usize>; 4],
    /// The matching weights.
    pub weights: [Vec<f32>; 4],
}

impl RotationSampling {
    /// kornia `rotate(·, angle_deg)` on `height×width` images: the output pixel `(x, y)` samples
    /// the source at `c + R(-θ)·((x, y) - c)`, `c = ((W-1)/2, (H-1)/2)`, i.e.
    /// `sx = cx + cos θ·(x-cx) - sin θ·(y-cy)`, `sy = cy + sin θ·(x-cx) + cos θ·(y-cy)`.
    pub fn new(height: usize, width: usize, angle_deg: f64) -> Self {
        let (s, c) = angle_deg.to_radians().sin_cos();
        let (cx, cy) = ((width as f64 - 1.0) / 2.0, (height as f64 - 1.0) / 2.0);
        let n = height * width;
        let mut indices: [Vec<usize>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
        let mut weights: [Vec<f32>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
        for y in 0..height {
            for x in 0..width {
                let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                let sx = cx + c * dx - s * dy;
                let sy = cy + s * dx + c * dy;
                let (x0, y0) = (sx.floor(), sy.floor());
                let (fx, fy) = (sx - x0, sy - y0);
                let corners = [
                    (x0, y0, (1.0 - fx) * (1.0 - fy)),
                    (x0 + 1.0, y0, fx * (1.0 - fy)),
                    (x0, y0 + 1.0, (1.0 - fx) * fy),
                    (x0 + 1.0, y0 + 1.0, fx * fy),
                ];
                for (k, &(px, py, wgt)) in corners.iter().enumerate() {
                    let inside = px >= 0.0 && py >= 0.0 && px < width as f64 && py < height as f64;
                    if inside {
                        indices[k].push(py as usize * width + px as usize);
                        weights[k].push(wgt as f32);
                    } else {
                        indices[k].push(0);
                        weights[k].push(0.0);
                    }
                }
            }
        }
        Self { height, width, indices, weights }
    }

    /// Applies the sampling to `B×C×H×W` (the sizes this sampling was made for).
    ///
    /// # Panics
    /// If the image size differs.
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        assert_eq!((h, w), (self.height, self.width), "rotation sampling made for another size");
        let device = x.device();
        let flat = x.reshape([b * c, h * w]);
        let mut out: Option<Tensor<2>> = None;
        for k in 0..4 {
            let idx = index_tensor(&self.indices[k], &device);
            let wgt = Tensor::<2>::from_data(TensorData::new(self.weights[k].clone(), [1, h * w]), &device)
                .cast(flat.dtype());
            let term = flat.clone().select(1, idx) * wgt;
            out = Some(match out {
                Some(acc) => acc + term,
                None => term,
            });
        }
        out.expect("four corners").reshape([b, c, h, w])
    }
}

fn index_tensor(idx: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i32> = idx.iter().map(|&i| i as i32).collect();
    Tensor::from_data(TensorData::new(v, [idx.len()]), device)
}

/// kornia `rotate(x, angle_deg)` (see [`RotationSampling::new`]).
pub fn rotate(x: Tensor<4>, angle_deg: f64) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    RotationSampling::new(h, w, angle_deg).apply(x)
}

/// The official rotation angles for `n` rotations: `np.arange(10, 360, int(360 / n))`.
/// This is `n` angles for most `n`, but not all (e.g. 27 for `n = 26`), exactly as the script.
pub fn official_angles(n: usize) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    (10..360).step_by((360 / n).max(1)).map(|a| a as f64).collect()
}

/// A counter-based random stream: draw `k` is `splitmix64(base + k)`, with `base` derived from
/// `(seed, step)`. A stream is thus a pure function of the seed and the global step, so a resumed
/// run draws exactly what the uninterrupted run would have drawn.
#[derive(Clone, Debug)]
pub struct ShiftStream {
    base: u64,
    next: u64,
}

/// The stream of training step `step` (0-based global step) of a run seeded with `seed`.
pub fn shift_stream(seed: u64, step: u64) -> ShiftStream {
    ShiftStream { base: splitmix64(splitmix64(seed) ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03)), next: 0 }
}

impl ShiftStream {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let z = splitmix64(self.base.wrapping_add(self.next));
        self.next += 1;
        z
    }

    /// A uniform integer in `0..n` (`n > 0`), by multiply-shift.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// `random.sample(population, k)`: `k` distinct elements in random order (partial
    /// Fisher–Yates).
    pub fn sample<T: Copy>(&mut self, population: &[T], k: usize) -> Vec<T> {
        assert!(k <= population.len(), "cannot sample {k} of {} elements", population.len());
        let mut pool = population.to_vec();
        for i in 0..k {
            let j = i + self.below(pool.len() - i);
            pool.swap(i, j);
        }
        pool.truncate(k);
        pool
    }
}

/// The official shift draw for an `h×w` batch: `n` distinct row shifts from
/// `[-1, …, -(h-1), 1, …, h-1]` and `n` distinct column shifts from the same list for `w`,
/// paired in order as `(rows, cols)`.
///
/// # Panics
/// If `n > h-1` or `n > w-1` (the official assertion).
pub fn random_shifts(n: usize, h: usize, w: usize, rng: &mut ShiftStream) -> Vec<(i64, i64)> {
    assert!(n < h && n < w, "{n} shifts need images larger than {n}×{n}, got {h}×{w}");
    let candidates = |len: usize| -> Vec<i64> {
        let len = len as i64;
        (1..len).map(|s| -s).chain(1..len).collect()
    };
    let rows = rng.sample(&candidates(h), n);
    let cols = rng.sample(&candidates(w), n);
    rows.into_iter().zip(cols).collect()
}

/// One concrete set of transforms: what [`Transforms::apply`] does to a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transforms {
    /// `(rows, cols)` roll per shift block.
    pub shifts: Vec<(i64, i64)>,
    /// Rotation angles in degrees (counter-clockwise), one block each.
    pub angles: Vec<f64>,
    /// How many of `[hflip, vflip, hflip∘vflip]` (0 to 3).
    pub flips: usize,
}

impl Transforms {
    /// The official `Transformer(shift_n, rotate_n, flip_n)` for one `h×w` batch: shifts drawn
    /// from `rng`, the fixed official angles, the first `flip_n` flips.
    ///
    /// # Panics
    /// If `flip_n > 3`, or the shifts cannot be drawn (see [`random_shifts`]).
    pub fn official(shift_n: usize, rotate_n: usize, flip_n: usize, h: usize, w: usize, rng: &mut ShiftStream) -> Self {
        assert!(flip_n <= 3, "at most 3 flips, got {flip_n}");
        let shifts = if shift_n > 0 { random_shifts(shift_n, h, w, rng) } else { Vec::new() };
        Self { shifts, angles: official_angles(rotate_n), flips: flip_n }
    }

    /// How many copies of the batch [`Transforms::apply`] returns (the identity included).
    pub fn blocks(&self) -> usize {
        1 + self.shifts.len() + self.angles.len() + self.flips
    }

    /// `[x, shifts…, rotations…, flips…]` concatenated along the batch axis.
    ///
    /// # Panics
    /// If `flips > 3`.
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        assert!(self.flips <= 3, "at most 3 flips, got {}", self.flips);
        let [_, _, h, w] = x.dims();
        let mut parts = vec![x.clone()];
        parts.extend(self.shifts.iter().map(|&(r, c)| roll(x.clone(), r, c)));
        parts.extend(self.angles.iter().map(|&a| RotationSampling::new(h, w, a).apply(x.clone())));
        if self.flips >= 1 {
            parts.push(hflip(x.clone()));
        }
        if self.flips >= 2 {
            let v = vflip(x);
            if self.flips == 3 {
                parts.push(v.clone());
                parts.push(hflip(v));
            } else {
                parts.push(v);
            }
        }
        Tensor::cat(parts, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmif_nn::weights::tensor_to_vec;

    fn image(h: usize, w: usize, f: impl Fn(usize, usize) -> f32, device: &Device) -> Tensor<4> {
        let v: Vec<f32> = (0..h * w).map(|i| f(i / w, i % w)).collect();
        Tensor::from_data(TensorData::new(v, [1, 1, h, w]), device)
    }

    #[test]
    fn rotation_matches_hand_computed_bilinear_values() {
        let dev = mmif_nn::cpu();
        // value = x + 3y on a 3×3 grid: bilinear interpolation of a linear ramp is exact inside.
        let x = image(3, 3, |y, x| (x + 3 * y) as f32, &dev);
        let r = tensor_to_vec(rotate(x.clone(), 45.0));
        let h = std::f64::consts::FRAC_1_SQRT_2;
        // Output (x=0, y=1): source (1 - h, 1 - h) → (1-h) + 3(1-h) = 4 - 2√2.
        assert!((r[3] as f64 - (4.0 - 4.0 * h)).abs() < 1e-6, "{r:?}");
        // Output (0, 0): source (1, 1 - √2), partly above the image: only the row y=0 counts,
        // with weight 2 - √2, and holds value 1 there.
        assert!((r[0] as f64 - (2.0 - 2.0_f64.sqrt())).abs() < 1e-6, "{r:?}");
        // The centre stays.
        assert!((r[4] - 4.0).abs() < 1e-6);
        // 90° counter-clockwise is a permutation: out[y][x] = in[x][W-1-y].
        let r = tensor_to_vec(rotate(x, 90.0));
        for y in 0..3 {
            for xx in 0..3 {
                assert!((r[y * 3 + xx] - (2 - y + 3 * xx) as f32).abs() < 1e-5, "{r:?}");
            }
        }
    }

    #[test]
    fn roll_and_flips_follow_index_arithmetic() {
        let dev = mmif_nn::cpu();
        let (h, w) = (5usize, 7usize);
        let x = image(h, w, |y, x| (y * 100 + x) as f32, &dev);
        for (dr, dc) in [(2i64, -3i64), (-4, 6), (1, 1)] {
            let r = tensor_to_vec(roll(x.clone(), dr, dc));
            for y in 0..h {
                for xx in 0..w {
                    let sy = (y as i64 - dr).rem_euclid(h as i64) as usize;
                    let sx = (xx as i64 - dc).rem_euclid(w as i64) as usize;
                    assert_eq!(r[y * w + xx], (sy * 100 + sx) as f32, "roll ({dr},{dc}) at ({y},{xx})");
                }
            }
        }
        let hf = tensor_to_vec(hflip(x.clone()));
        let vf = tensor_to_vec(vflip(x));
        for y in 0..h {
            for xx in 0..w {
                assert_eq!(hf[y * w + xx], (y * 100 + (w - 1 - xx)) as f32);
                assert_eq!(vf[y * w + xx], ((h - 1 - y) * 100 + xx) as f32);
            }
        }
    }

    #[test]
    fn apply_lays_out_blocks_like_the_official_transformer() {
        let dev = mmif_nn::cpu();
        let v: Vec<f32> = (0..2 * 6 * 8).map(|i| ((i * 37) % 23) as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(v, [2, 1, 6, 8]), &dev);
        let t = Transforms { shifts: vec![(1, -2), (-3, 4)], angles: vec![10.0, 130.0], flips: 3 };
        let out = t.apply(x.clone());
        assert_eq!(out.dims(), [2 * t.blocks(), 1, 6, 8]);
        let block = |k: usize| tensor_to_vec(out.clone().narrow(0, 2 * k, 2));
        let want = [
            tensor_to_vec(x.clone()),
            tensor_to_vec(roll(x.clone(), 1, -2)),
            tensor_to_vec(roll(x.clone(), -3, 4)),
            tensor_to_vec(rotate(x.clone(), 10.0)),
            tensor_to_vec(rotate(x.clone(), 130.0)),
            tensor_to_vec(hflip(x.clone())),
            tensor_to_vec(vflip(x.clone())),
            tensor_to_vec(hflip(vflip(x))),
        ];
        for (k, w) in want.iter().enumerate() {
            assert_eq!(&block(k), w, "block {k}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let dev = mmif_nn::cpu().autodiff();
        let (h, w) = (6usize, 5usize);
        let base: Vec<f32> = (0..h * w).map(|i| ((i * 7919) % 97) as f32 / 97.0).collect();
        let wts: Vec<f32> = (0..6 * h * w).map(|i| ((i * 104_729) % 89) as f32 / 89.0 - 0.5).collect();
        let t = Transforms { shifts: vec![(2, -1)], angles: vec![33.0, 250.0], flips: 2 };
        // L(x) = Σ r · T(x)², smooth and non-linear.
        let loss = |v: &[f32], dev: &Device| {
            let x = Tensor::<4>::from_data(TensorData::new(v.to_vec(), [1, 1, h, w]), dev);
            let x = if dev.is_autodiff() { x.require_grad() } else { x };
            let r = Tensor::<4>::from_data(TensorData::new(wts.clone(), [6, 1, h, w]), dev);
            ((t.apply(x.clone()).square() * r).sum(), x)
        };
        let (l, x) = loss(&base, &dev);
        let grads = l.backward();
        let g = tensor_to_vec(x.grad(&grads).expect("a gradient reaches the image"));
        let plain = mmif_nn::cpu();
        let value = |v: &[f32]| tensor_to_vec(loss(v, &plain).0)[0] as f64;
        let eps = 1e-2f32;
        let mut worst = 0.0f64;
        for i in 0..h * w {
            let (mut p, mut m) = (base.clone(), base.clone());
            p[i] += eps;
            m[i] -= eps;
            let fd = (value(&p) - value(&m)) / (2.0 * eps as f64);
            worst = worst.max((fd - g[i] as f64).abs());
        }
        let scale = g.iter().fold(0.0f32, |a, &b| a.max(b.abs())) as f64;
        assert!(worst < 1e-3 * scale.max(1.0), "worst finite-difference error {worst} (gradient scale {scale})");
    }

    #[test]
    fn shifts_are_distinct_non_zero_and_reproducible() {
        let (h, w) = (9, 12);
        let a = random_shifts(3, h, w, &mut shift_stream(7, 41));
        assert_eq!(a, random_shifts(3, h, w, &mut shift_stream(7, 41)), "a pure function of (seed, step)");
        assert_ne!(a, random_shifts(3, h, w, &mut shift_stream(7, 42)));
        let (rows, cols): (Vec<i64>, Vec<i64>) = a.iter().copied().unzip();
        for (v, n) in [(&rows, h as i64), (&cols, w as i64)] {
            assert!(v.iter().all(|&s| s != 0 && s.abs() < n), "{v:?}");
            let mut d = v.clone();
            d.sort();
            d.dedup();
            assert_eq!(d.len(), v.len(), "distinct: {v:?}");
        }
        // Every candidate is reachable.
        let mut seen = std::collections::BTreeSet::new();
        for step in 0..400 {
            seen.extend(random_shifts(2, 4, 4, &mut shift_stream(1, step)).into_iter().map(|p| p.0));
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![-3, -2, -1, 1, 2, 3]);
    }

    #[test]
    fn official_angles_follow_arange() {
        assert_eq!(official_angles(3), vec![10.0, 130.0, 250.0]);
        assert_eq!(official_angles(5), vec![10.0, 82.0, 154.0, 226.0, 298.0]);
        assert_eq!(official_angles(26).len(), 27);
        assert!(official_angles(0).is_empty());
    }
}
