//! Gradient transfer fusion (GTF).
//!
//! J. Ma, C. Chen, C. Li and J. Huang, "Infrared and visible image fusion via gradient transfer and
//! total variation minimization", Information Fusion 31:100–109, 2016. The fused image `x` keeps
//! the infrared intensities and the visible gradients:
//!
//! `min_x ‖x − ir‖₁ + λ·TV(x − vis)`, i.e. with `u = x − vis`: `min_u ‖u − (ir − vis)‖₁ + λ·TV(u)`,
//!
//! `TV` the isotropic (for colour: vector-valued, channels coupled) total variation with forward
//! differences and a zero last difference. VIFB's `methods/GTF` code solves it with the IRN
//! package (Rodríguez & Wohlberg, "Efficient minimization method for a generalized total
//! variation functional", IEEE TIP 18(2), 2009) and stops after a fixed number of its outer
//! iterations, well before the minimiser (the functional still drops from loop to loop), so its
//! result is the IRN iterate, and that is what is computed here, with VIFB's settings (values on
//! 0..1, `λ = 4`, 5 loops, `u₀ = ir − vis`):
//!
//! for each loop `k`:
//! 1. fidelity weights `w_F = √(½·max*(|u − s|, ε_F))` (`s = ir − vis`); in the first loop, while
//!    `u = s`, the constant `2·√0.1`; `max*(a, ε)` is `a` where `a ≥ ε`, else `ε`;
//! 2. regulariser weights `w_R = 2 / √max*(g, ε_R)`, `g = Σ_channels (D_x u)² + (D_y u)²`;
//! 3. `ε_F`, `ε_R` from a 1000-bin histogram (Octave's `hist` over bin centres
//!    `min:(max−min)/999:max`): the first bin whose cumulative share exceeds 5 % (fidelity: the
//!    next bin's centre) or 1 % (regulariser: its own centre, the next one where that is 0);
//! 4. `v` solves `(I + λ W_F D_xᵀ W_R D_x W_F + λ W_F D_yᵀ W_R D_y W_F) v = s / w_F` by conjugate
//!    gradients from `u / w_F`, as Octave's `pcg` runs them (stop at a relative residual of a fifth
//!    of the starting one, at most 500 steps, the iterate of least residual returned); `u = w_F·v`;
//!    a solve that returns its starting point ends the loops.
//!
//! The result is `255·(u + vis)`; VIFB's `im2uint8` then clips and rounds. Where VIFB's code
//! fails (a histogram of equal values: constant images, 1×1; images one pixel wide or high) the
//! threshold is taken as that value (or the IRN package's default ε, 10⁻² and 10⁻⁴, when it is 0)
//! and the missing differences are zero, so every size from 1×1 works.

use crate::Result;
use crate::grid::for_each_row;
use crate::params::{ParamInfo, Params, bad, info, parse_positive, parse_usize, unknown_key};
use mmif_io::Plane;
use rayon::prelude::*;

/// Parameters of [`gtf_with`]; [`Default`] is VIFB's `run_GTF.m`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GtfParams {
    /// Weight `λ` of the total variation of `x − vis` (4).
    pub lambda: f64,
    /// Outer IRN loops (5).
    pub loops: usize,
    /// Most conjugate-gradient steps per loop (500).
    pub cg_steps: usize,
}

impl Default for GtfParams {
    fn default() -> Self {
        Self { lambda: 4.0, loops: 5, cg_steps: 500 }
    }
}

impl GtfParams {
    fn validate(&self) -> Result<()> {
        if !(self.lambda.is_finite() && self.lambda > 0.0) {
            return Err(bad("gtf", format!("lambda must be finite and > 0, got {}", self.lambda)));
        }
        crate::params::require_at_most("gtf", "loops", self.loops, 1000)?;
        crate::params::require_at_most("gtf", "cg_steps", self.cg_steps, 100_000)
    }
}

impl Params for GtfParams {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "lambda" => self.lambda = parse_positive("gtf", key, value)?,
            "loops" => self.loops = parse_usize("gtf", key, value, 1, 1000)?,
            "cg_steps" => self.cg_steps = parse_usize("gtf", key, value, 1, 100_000)?,
            _ => return Err(unknown_key("gtf", key, &self.list())),
        }
        Ok(())
    }

    fn list(&self) -> Vec<ParamInfo> {
        vec![
            info("lambda", self.lambda, "weight of the total variation of (fused - visible)"),
            info("loops", self.loops, "outer IRN (reweighting) loops"),
            info("cg_steps", self.cg_steps, "most conjugate-gradient steps per loop"),
        ]
    }
}

/// GTF with VIFB's parameters; `a` is infrared, `b` visible (0..=255 scale).
pub fn gtf(a: &Plane, b: &Plane) -> Result<Plane> {
    gtf_with(a, b, &GtfParams::default())
}

/// GTF of infrared `a` and visible `b` (0..=255 scale); see the module documentation.
pub fn gtf_with(a: &Plane, b: &Plane, prm: &GtfParams) -> Result<Plane> {
    Ok(gtf_channels(a, std::slice::from_ref(b), prm)?.remove(0))
}

/// GTF of a gray infrared image and the channels of a visible image, fused jointly as VIFB does
/// for a colour visible image (one vector-valued total variation, one set of thresholds).
pub fn gtf_channels(ir: &Plane, vis: &[Plane], prm: &GtfParams) -> Result<Vec<Plane>> {
    gtf_color(std::slice::from_ref(ir), vis, prm)
}

/// GTF of the channels of an infrared and a visible image (1 or `n` each), fused jointly as
/// VIFB's `run_GTF.m` does with whatever `imread` returns: `ir − vis` channel by channel (a single
/// channel is used for every channel of the other source, as MATLAB broadcasts it), one
/// vector-valued total variation over all `n` channels.
pub fn gtf_color(ir: &[Plane], vis: &[Plane], prm: &GtfParams) -> Result<Vec<Plane>> {
    prm.validate()?;
    let n_ch = crate::method::channel_count("gtf", ir, vis)?;
    let pick = crate::method::channel;
    let (w, h) = (ir[0].width, ir[0].height);
    let n = w * h;
    let s: Vec<f64> = (0..n_ch)
        .flat_map(|c| {
            let (i, v) = (pick(ir, c), pick(vis, c));
            i.data.iter().zip(&v.data).map(|(&i, &v)| (f64::from(i) - f64::from(v)) / 255.0)
        })
        .collect();
    let u = irn_l1tv(&s, w, h, prm);
    Ok((0..n_ch)
        .map(|c| {
            let v = pick(vis, c);
            let data = v.data.iter().zip(&u[c * n..(c + 1) * n]).map(|(&v, &u)| (f64::from(v) + 255.0 * u) as f32);
            Plane::new(w, h, data.collect())
        })
        .collect())
}

/// The IRN iterate for `min_u ‖u − s‖₁ + λ·TV(u)` from `u = s`; `s` holds the channels one after
/// the other, each `w×h` row-major.
fn irn_l1tv(s: &[f64], w: usize, h: usize, prm: &GtfParams) -> Vec<f64> {
    let n = w * h;
    let mut u = s.to_vec();
    let mut wf = vec![0.0; s.len()];
    let mut wr = vec![0.0; n];
    let mut scratch = Vec::new();
    for k in 0..prm.loops {
        let dist: f64 = u.iter().zip(s).map(|(u, s)| (u - s).abs()).sum();
        if k == 0 && dist < 0.05 / n as f64 {
            wf.fill(2.0 * 0.1f64.sqrt());
        } else {
            let abs: Vec<f64> = u.iter().zip(s).map(|(u, s)| (u - s).abs()).collect();
            let eps = histogram_threshold(&abs, 0.05, Cut::Next).unwrap_or(1e-2);
            for (f, &a) in wf.iter_mut().zip(&abs) {
                *f = (0.5 * if a >= eps { a } else { eps }).sqrt();
            }
        }
        gradient_energy(&u, w, h, &mut wr);
        let eps = histogram_threshold(&wr, 0.01, Cut::OwnUnlessZero).unwrap_or(1e-4);
        for r in wr.iter_mut() {
            *r = 2.0 / if *r >= eps { *r } else { eps }.sqrt();
        }
        let b: Vec<f64> = s.iter().zip(&wf).map(|(s, f)| s / f).collect();
        let v0: Vec<f64> = u.iter().zip(&wf).map(|(u, f)| u / f).collect();
        let op_scratch = std::cell::RefCell::new(Vec::new());
        let op = |x: &[f64], out: &mut [f64]| apply(x, out, &wf, &wr, prm.lambda, w, h, &mut op_scratch.borrow_mut());
        let mut av = vec![0.0; s.len()];
        apply(&v0, &mut av, &wf, &wr, prm.lambda, w, h, &mut scratch);
        let b_norm = norm(&b);
        let relres = av.iter().zip(&b).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt() / b_norm;
        let (v, steps) = pcg(op, &b, relres / 5.0, prm.cg_steps, v0);
        for ((u, v), f) in u.iter_mut().zip(&v).zip(&wf) {
            *u = f * v;
        }
        if steps == 0 {
            break;
        }
    }
    u
}

/// `Σ_channels (D_x u)² + (D_y u)²` per pixel, forward differences, zero on the last column/row.
fn gradient_energy(u: &[f64], w: usize, h: usize, out: &mut [f64]) {
    let n = w * h;
    out.fill(0.0);
    for ch in u.chunks_exact(n) {
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let dx = if x + 1 < w { ch[i + 1] - ch[i] } else { 0.0 };
                let dy = if y + 1 < h { ch[i + w] - ch[i] } else { 0.0 };
                out[i] += dx * dx + dy * dy;
            }
        }
    }
}

/// `out = x + λ·W_F (D_xᵀ W_R D_x + D_yᵀ W_R D_y) W_F x`, channel by channel; `g` is scratch.
#[allow(clippy::too_many_arguments)]
fn apply(x: &[f64], out: &mut [f64], wf: &[f64], wr: &[f64], lambda: f64, w: usize, h: usize, g: &mut Vec<f64>) {
    let n = w * h;
    g.resize(2 * n, 0.0);
    for ((xc, oc), fc) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)).zip(wf.chunks_exact(n)) {
        // Pass 1: g = (W_R D_x t, W_R D_y t), t = W_F x, stored interleaved per pixel.
        for_each_row(g, 2 * w, |y, row| {
            let i0 = y * w;
            for xx in 0..w {
                let i = i0 + xx;
                let t = fc[i] * xc[i];
                let gx = if xx + 1 < w { wr[i] * (fc[i + 1] * xc[i + 1] - t) } else { 0.0 };
                let gy = if y + 1 < h { wr[i] * (fc[i + w] * xc[i + w] - t) } else { 0.0 };
                row[2 * xx] = gx;
                row[2 * xx + 1] = gy;
            }
        });
        // Pass 2: transposes of the forward differences, D_xᵀg = g[x−1] − g[x] (g[−1] = 0; the
        // last column's g is 0 as D_x's last column is zero), likewise for y.
        let g = &g[..];
        for_each_row(oc, w, |y, row| {
            let i0 = y * w;
            for (xx, o) in row.iter_mut().enumerate() {
                let i = i0 + xx;
                let left = if xx > 0 { g[2 * (i - 1)] } else { 0.0 };
                let up = if y > 0 { g[2 * (i - w) + 1] } else { 0.0 };
                *o = xc[i] + lambda * fc[i] * (left - g[2 * i] + up - g[2 * i + 1]);
            }
        });
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    if a.len() >= PAR_MIN {
        a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)).map(|(a, b)| dot_seq(a, b)).sum()
    } else {
        dot_seq(a, b)
    }
}

fn dot_seq(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

const PAR_MIN: usize = 1 << 16;
const CHUNK: usize = 1 << 14;

/// `x = from + α p` (`from`: `x` itself where `None`), `r −= α q`; returns `(‖r‖², ‖x‖²)`.
fn step_update(x: &mut [f64], from: Option<&[f64]>, r: &mut [f64], p: &[f64], q: &[f64], alpha: f64) -> (f64, f64) {
    let seq = |x: &mut [f64], from: Option<&[f64]>, r: &mut [f64], p: &[f64], q: &[f64]| {
        let (mut rr, mut xx) = (0.0, 0.0);
        for i in 0..x.len() {
            x[i] = from.map_or(x[i], |f| f[i]) + alpha * p[i];
            r[i] -= alpha * q[i];
            rr += r[i] * r[i];
            xx += x[i] * x[i];
        }
        (rr, xx)
    };
    if x.len() < PAR_MIN {
        return seq(x, from, r, p, q);
    }
    let parts = x.par_chunks_mut(CHUNK).zip(r.par_chunks_mut(CHUNK)).zip(p.par_chunks(CHUNK).zip(q.par_chunks(CHUNK)));
    match from {
        Some(f) => parts
            .zip(f.par_chunks(CHUNK))
            .map(|(((x, r), (p, q)), f)| seq(x, Some(f), r, p, q))
            .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1)),
        None => {
            parts.map(|((x, r), (p, q))| seq(x, None, r, p, q)).reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
        }
    }
}

/// Conjugate gradients as Octave 7's `pcg` runs them without a preconditioner: stop when the
/// residual is at most `tol·‖b‖`, after `max_steps` steps, on a non-positive curvature or on
/// stagnation (`‖x_k − x_{k−1}‖ = |α|‖p‖ ≤ eps·‖x_k‖`); returns the iterate of least residual and
/// its step number (0: the start).
fn pcg(op: impl Fn(&[f64], &mut [f64]), b: &[f64], tol: f64, max_steps: usize, x0: Vec<f64>) -> (Vec<f64>, usize) {
    let b_norm = norm(b);
    if b_norm == 0.0 {
        return (vec![0.0; b.len()], 0);
    }
    let len = b.len();
    let mut q = vec![0.0; len];
    op(&x0, &mut q);
    let mut r: Vec<f64> = b.iter().zip(&q).map(|(b, a)| b - a).collect();
    let mut res = norm(&r);
    // The current iterate `x`; the best one is `x` itself while `x_is_best`, else `kept`.
    let (mut x, mut kept, mut x_is_best) = (x0, vec![0.0; len], true);
    let (mut res_min, mut step_min) = (res, 0usize);
    let mut p = vec![0.0; len];
    let mut old_tau = 1.0;
    let mut step = 0usize;
    while res > tol * b_norm && step < max_steps {
        let tau = dot(&r, &r);
        let beta = tau / old_tau;
        old_tau = tau;
        for (p, r) in p.iter_mut().zip(&r) {
            *p = r + beta * *p;
        }
        op(&p, &mut q);
        let den = dot(&p, &q);
        if tau <= 0.0 || den <= 0.0 {
            break;
        }
        let alpha = tau / den;
        let (rr, xx) = if x_is_best {
            // Keep the best iterate: the new one goes to the other buffer.
            std::mem::swap(&mut x, &mut kept);
            step_update(&mut x, Some(&kept), &mut r, &p, &q, alpha)
        } else {
            step_update(&mut x, None, &mut r, &p, &q, alpha)
        };
        res = rr.sqrt();
        step += 1;
        x_is_best = res <= res_min;
        if x_is_best {
            res_min = res;
            step_min = step;
        }
        if alpha.abs() * norm(&p) <= f64::EPSILON * xx.sqrt() {
            break;
        }
    }
    (if x_is_best { x } else { kept }, step_min)
}

/// Which histogram bin centre [`histogram_threshold`] returns.
#[derive(Clone, Copy)]
enum Cut {
    /// The centre after the first bin whose cumulative share exceeds the cut-off.
    Next,
    /// That bin's own centre, or the next one where it is 0.
    OwnUnlessZero,
}

/// A threshold from Octave's `hist(v, min:(max−min)/999:max)` (1000 equally spaced bin centres,
/// cut-offs half-way between them): see [`Cut`]. `None` where all values are equal (there
/// Octave's range is empty and `hist` fails): the caller's default or that value applies.
fn histogram_threshold(v: &[f64], share: f64, cut: Cut) -> Option<f64> {
    let (lo, hi) =
        v.iter().filter(|x| x.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
    if lo >= hi {
        return (lo.is_finite() && lo > 0.0).then_some(lo);
    }
    const BINS: usize = 1000;
    let inc = (hi - lo) / (BINS - 1) as f64;
    let centre = |k: usize| if k + 1 < BINS { lo + k as f64 * inc } else { (lo + k as f64 * inc).min(hi) };
    let first_cut = (centre(0) + centre(1)) / 2.0;
    let d = (centre(BINS - 1) - centre(0)) / (BINS - 1) as f64;
    let mut counts = vec![0usize; BINS];
    let mut total = 0usize;
    for &x in v {
        // NaN (none here) would count in the first bin, as in Octave.
        let x = if x.is_nan() { 0.0 } else { x };
        let k = ((x - first_cut) / d).ceil().clamp(0.0, (BINS - 1) as f64) as usize;
        counts[k] += 1;
        total += 1;
    }
    let mut acc = 0usize;
    let mut pos = BINS - 1;
    for (k, &c) in counts.iter().enumerate() {
        acc += c;
        if acc as f64 / total as f64 > share {
            pos = k;
            break;
        }
    }
    // VIFB's code indexes past the last centre where that bin is the one found; the last is kept.
    let next = centre((pos + 1).min(BINS - 1));
    Some(match cut {
        Cut::Next => next,
        Cut::OwnUnlessZero if centre(pos) > 0.0 => centre(pos),
        Cut::OwnUnlessZero => next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_transposes_are_adjoint() {
        // <A x, y> = <x, A y> for the symmetric system matrix, on a 5×3 colour example.
        let (w, h) = (5, 3);
        let n = w * h;
        let wf: Vec<f64> = (0..2 * n).map(|i| 0.5 + (i % 7) as f64 * 0.1).collect();
        let wr: Vec<f64> = (0..n).map(|i| 1.0 + (i % 5) as f64).collect();
        let x: Vec<f64> = (0..2 * n).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
        let y: Vec<f64> = (0..2 * n).map(|i| ((i * 13) % 7) as f64 - 3.0).collect();
        let (mut ax, mut ay) = (vec![0.0; 2 * n], vec![0.0; 2 * n]);
        apply(&x, &mut ax, &wf, &wr, 4.0, w, h, &mut Vec::new());
        apply(&y, &mut ay, &wf, &wr, 4.0, w, h, &mut Vec::new());
        assert!((dot(&ax, &y) - dot(&x, &ay)).abs() < 1e-9);
    }

    #[test]
    fn histogram_threshold_follows_octave_hist() {
        // Values 0..=999: one per bin; > 5 % first after 51 values (bin 50), next centre 51.
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        assert_eq!(histogram_threshold(&v, 0.05, Cut::Next), Some(51.0));
        // > 1 %: bin 10, its own centre.
        assert_eq!(histogram_threshold(&v, 0.01, Cut::OwnUnlessZero), Some(10.0));
        // All values in the first bin: its centre is 0, so the next one.
        let mut z = vec![0.0; 100];
        z[0] = 999.0;
        assert_eq!(histogram_threshold(&z, 0.01, Cut::OwnUnlessZero), Some(1.0));
        assert_eq!(histogram_threshold(&[3.0; 4], 0.01, Cut::Next), Some(3.0));
        assert_eq!(histogram_threshold(&[0.0; 4], 0.01, Cut::Next), None);
    }

    #[test]
    fn equal_sources_give_the_source() {
        let p = Plane::new(4, 3, (0..12).map(|i| (i * 20) as f32).collect());
        let f = gtf(&p, &p).unwrap();
        assert_eq!(f.data, p.data);
    }
}
