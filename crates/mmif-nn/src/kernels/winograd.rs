//! Winograd convolutions F(m×m, 3×3) (Lavin & Gray 2016): dense 3×3, stride-1, one-group
//! convolutions with fewer multiplications than the direct kernel.
//!
//! The input is cut into tiles of `α × α` pixels (`α = m + 2`) that overlap by two, each
//! transformed to `V = Bᵀ d B`; the filters are transformed once per call to `U = G g Gᵀ`;
//! for each of the `α²` positions `ξ` of the transformed domain one matrix product
//! `M_ξ[co][tile] = Σ_ci U_ξ[co][ci] · V_ξ[ci][tile]` runs on the register blocks of
//! [`conv_row`] (the "taps" are the input channels, the "pixels" the tiles of a row); the output
//! tile is `Aᵀ M A` plus the bias. F(2×2) needs `16 / 36` of the direct kernel's multiply-adds,
//! F(4×4) `36 / 144`, at the price of transforms that scale with the channels rather than with
//! their product, and of rounding: the transforms add and subtract values (F(4×4)'s also scale
//! them by up to 8), so the sums lose a few more bits than the direct ones (measured in the unit
//! tests and `examples/winograd_bench.rs`; `docs/benchmarks.md` has the figures).
//!
//! Tasks are (image, row of tiles, piece of at most [`TILES`] tiles): each builds its `α` padded
//! input rows (zero or reflection padding, bands of rows with `pad_rows`), transforms them,
//! runs the `α²` products, and writes its `m` output rows.

use super::block::{BLOCK_WIDTHS, CB, block_channels, conv_row};
use super::conv::ConvGeom;
use super::{Isa, Out, dispatch, isa, write_all};
use rayon::prelude::*;

/// Most tiles of one row a task transforms at once (a multiple of every register block's width,
/// so a full piece wastes no lanes; 96 tiles keep one position's inputs and outputs, `C × 96`
/// each, in L2 for `C` up to a few hundred channels).
const TILES: usize = BLOCK_WIDTHS;

/// The largest output tile side (F(4×4)).
const MAX_M: usize = 4;

/// The output tile of a Winograd convolution: F(2×2, 3×3) or F(4×4, 3×3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WinoTile {
    F2,
    F4,
}

/// The transform matrices of one tile size, row-major.
struct Mats {
    /// Output tile side.
    m: usize,
    /// Input tile side, `m + 2`.
    a: usize,
    /// `Bᵀ`, `α × α`.
    bt: &'static [f32],
    /// `G`, `α × 3` (in f64: the filters are transformed once, as exactly as is cheap).
    g: &'static [f64],
    /// `Aᵀ`, `m × α`.
    at: &'static [f32],
}

#[rustfmt::skip]
const F2: Mats = Mats {
    m: 2,
    a: 4,
    bt: &[
        1.0, 0.0, -1.0, 0.0,
        0.0, 1.0, 1.0, 0.0,
        0.0, -1.0, 1.0, 0.0,
        0.0, 1.0, 0.0, -1.0,
    ],
    g: &[
        1.0, 0.0, 0.0,
        0.5, 0.5, 0.5,
        0.5, -0.5, 0.5,
        0.0, 0.0, 1.0,
    ],
    at: &[
        1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, -1.0,
    ],
};

// Interpolation points 0, ±1, ±2 and ∞.
#[rustfmt::skip]
const F4: Mats = Mats {
    m: 4,
    a: 6,
    bt: &[
        4.0, 0.0, -5.0, 0.0, 1.0, 0.0,
        0.0, -4.0, -4.0, 1.0, 1.0, 0.0,
        0.0, 4.0, -4.0, -1.0, 1.0, 0.0,
        0.0, -2.0, -1.0, 2.0, 1.0, 0.0,
        0.0, 2.0, -1.0, -2.0, 1.0, 0.0,
        0.0, 4.0, 0.0, -5.0, 0.0, 1.0,
    ],
    g: &[
        1.0 / 4.0, 0.0, 0.0,
        -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0,
        -1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0,
        1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0,
        1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0,
        0.0, 0.0, 1.0,
    ],
    at: &[
        1.0, 1.0, 1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, 2.0, -2.0, 0.0,
        0.0, 1.0, 1.0, 4.0, 4.0, 0.0,
        0.0, 1.0, -1.0, 8.0, -8.0, 1.0,
    ],
};

impl WinoTile {
    fn mats(self) -> &'static Mats {
        match self {
            WinoTile::F2 => &F2,
            WinoTile::F4 => &F4,
        }
    }
}

/// Whether [`winograd_conv2d`] handles this geometry: a dense 3×3 kernel, stride 1, one group.
pub(crate) fn winograd_supported(g: &ConvGeom) -> bool {
    let [_, _, kh, kw] = g.weight;
    g.supported() && kh == 3 && kw == 3 && g.stride == 1 && g.groups == 1
}

/// Whether the Winograd kernel beats the direct one for `cin → cout` channels: the
/// multiplications it saves scale with `cin·cout`, its transforms with `cin + cout`, so it
/// wins once the harmonic mean `2·cin·cout / (cin + cout)` of the channel counts reaches 48
/// (measured with `examples/winograd_bench.rs` on AVX2 and AVX-512 at 480×640, see
/// `docs/benchmarks.md`: 48→48 and 64→64 1.3–1.45× faster, 32→32 even, 16→16 slower).
fn winograd_pays(cin: usize, cout: usize) -> bool {
    2 * cin * cout >= 48 * (cin + cout)
}

/// The tile the layers use for a conv, if any: `MMIF_WINOGRAD=off|f2|f4` (read once per process)
/// switches the kernel off or forces a tile for every supported geometry; unset (or any other
/// value), F(4×4) for supported convs where [`winograd_pays`].
pub(crate) fn winograd_pick(g: &ConvGeom) -> Option<WinoTile> {
    #[derive(Clone, Copy)]
    enum Mode {
        Off,
        Auto,
        Force(WinoTile),
    }
    static MODE: std::sync::OnceLock<Mode> = std::sync::OnceLock::new();
    let mode = *MODE.get_or_init(|| match std::env::var("MMIF_WINOGRAD").as_deref() {
        Ok("off") => Mode::Off,
        Ok("f2") => Mode::Force(WinoTile::F2),
        Ok("f4") => Mode::Force(WinoTile::F4),
        _ => Mode::Auto,
    });
    if !winograd_supported(g) {
        return None;
    }
    let [_, cin, _, _] = g.input;
    let cout = g.weight[0];
    match mode {
        Mode::Off => None,
        Mode::Force(t) => Some(t),
        Mode::Auto => winograd_pays(cin, cout).then_some(WinoTile::F4),
    }
}

/// The transformed filters `U_ξ = G g Gᵀ` of a conv, packed for [`conv_row`]: one `[C_out, C_in]`
/// matrix per position `ξ` of the `α × α` domain, each in `block::pack_weights`' layout.
pub(crate) struct WinogradWeights {
    tile: WinoTile,
    cout: usize,
    cin: usize,
    isa: Isa,
    cb: usize,
    packed: Vec<f32>,
}

impl WinogradWeights {
    /// Transforms `weight` (`[C_out, C_in, 3, 3]`, row-major) for `tile`.
    pub(crate) fn new(weight: &[f32], cout: usize, cin: usize, tile: WinoTile) -> Self {
        assert_eq!(weight.len(), cout * cin * 9, "a dense 3×3 weight");
        let mt = tile.mats();
        let a = mt.a;
        let isa = isa();
        let cb = block_channels(isa, cout);
        // Written straight into `pack_weights`' layout: matrix ξ, block `co / cb`, tap `ci`, lane `co % cb`.
        let mut packed = vec![0.0f32; a * a * cout * cin];
        let mut gg = [0.0f64; 18];
        for co in 0..cout {
            let lane = (co / cb) * cin * cb + co % cb;
            for ci in 0..cin {
                let k: [f64; 9] = std::array::from_fn(|i| f64::from(weight[(co * cin + ci) * 9 + i]));
                // gg = G k (α × 3), then U = gg Gᵀ (α × α).
                for i in 0..a {
                    let g = &mt.g[i * 3..i * 3 + 3];
                    for c in 0..3 {
                        gg[i * 3 + c] = g[0] * k[c] + g[1] * k[3 + c] + g[2] * k[6 + c];
                    }
                }
                for i in 0..a {
                    for j in 0..a {
                        let g = &mt.g[j * 3..j * 3 + 3];
                        let v = gg[i * 3] * g[0] + gg[i * 3 + 1] * g[1] + gg[i * 3 + 2] * g[2];
                        packed[(i * a + j) * cout * cin + lane + ci * cb] = v as f32;
                    }
                }
            }
        }
        Self { tile, cout, cin, isa, cb, packed }
    }
}

/// The source index of padded coordinate `c` in a line of `n` values with `pad` values of
/// padding before it and at least as many after it (`n + 2·pad` for the columns): `None` for
/// zero padding and for anything past the padded line.
fn source(c: usize, n: usize, pad: usize, pad_after: usize, reflect: bool) -> Option<usize> {
    if c >= pad && c - pad < n {
        Some(c - pad)
    } else if !reflect || c >= n + pad + pad_after {
        None
    } else if c < pad {
        Some(pad - c)
    } else {
        Some(2 * (n - 1) + pad - c)
    }
}

/// `dst[j]` = column `x0 + j` of `line` padded by `p` columns on each side (zeros or reflected;
/// zeros past the padded line): the interior as one copy, the rest by [`source`].
fn fill_row(dst: &mut [f32], line: &[f32], x0: usize, p: usize, reflect: bool) {
    let w = line.len();
    let lo = p.saturating_sub(x0).min(dst.len());
    let hi = (p + w).saturating_sub(x0).min(dst.len()).max(lo);
    if hi > lo {
        dst[lo..hi].copy_from_slice(&line[x0 + lo - p..x0 + hi - p]);
    }
    for j in (0..lo).chain(hi..dst.len()) {
        dst[j] = source(x0 + j, w, p, p, reflect).map_or(0.0, |c| line[c]);
    }
}

/// One task's buffers.
struct Scratch {
    /// `α` padded input rows, `len` values each.
    rows: Vec<f32>,
    /// The rows after the vertical transform.
    tmp: Vec<f32>,
    /// One transformed row split by column phase (`m` phases).
    phases: Vec<f32>,
    /// `V`: `[α², C_in, TILES]`.
    v: Vec<f32>,
    /// `M`: `[α², C_out, TILES]`.
    prod: Vec<f32>,
    /// The output transform's intermediate, `[α, m·TILES]`.
    s: Vec<f32>,
}

/// `conv2d` (PyTorch semantics, as [`super::conv2d`]) of a geometry [`winograd_supported`]
/// accepts, by the Winograd algorithm with `w`'s tile. Returns `[B, C_out, OH, OW]`.
pub(crate) fn winograd_conv2d(x: &[f32], w: &WinogradWeights, bias: Option<&[f32]>, g: &ConvGeom) -> Vec<f32> {
    assert!(winograd_supported(g), "unsupported Winograd geometry {g:?}");
    let [b, cin, h, wd] = g.input;
    let [_, cout, oh, ow] = g.output();
    assert_eq!(x.len(), b * cin * h * wd);
    assert!(w.cin == cin && w.cout == cout && g.weight[1] == cin, "weights for another conv");
    assert!(bias.is_none_or(|bs| bs.len() == cout));
    let mt = w.tile.mats();
    let (m, a) = (mt.m, mt.a);
    let (cb, isa) = (w.cb, w.isa);
    let nty = oh.div_ceil(m);
    let ntx = ow.div_ceil(m);
    let pieces = ntx.div_ceil(TILES);
    // Input columns a piece reads, rounded up to whole phases (+1 tile for the overlap).
    let len = (TILES + a.div_ceil(m)) * m;
    let off: Vec<usize> = (0..cin).map(|c| c * TILES).collect();
    let [pt, pb] = g.pad_rows;
    let p = g.padding;
    let fill = |out: &Out| {
        (0..b * nty * pieces).into_par_iter().for_each_init(
            || Scratch {
                rows: vec![0.0; a * len],
                tmp: vec![0.0; a * len],
                phases: vec![0.0; len],
                v: vec![0.0; a * a * cin * TILES],
                prod: vec![0.0; a * a * cout * TILES],
                s: vec![0.0; a * m * TILES],
            },
            |s, task| {
                let (bi, ty, piece) = (task / (nty * pieces), task / pieces % nty, task % pieces);
                let t0 = piece * TILES;
                let nt = TILES.min(ntx - t0);
                // Input transform, channel by channel.
                for ci in 0..cin {
                    let plane = &x[(bi * cin + ci) * h * wd..][..h * wd];
                    for k in 0..a {
                        let dst = &mut s.rows[k * len..][..len];
                        let Some(r) = source(ty * m + k, h, pt, pb, g.reflect) else {
                            dst.fill(0.0);
                            continue;
                        };
                        fill_row(dst, &plane[r * wd..][..wd], t0 * m, p, g.reflect);
                    }
                    let v = &mut s.v[ci * TILES..];
                    input_transform(&s.rows, &mut s.tmp, &mut s.phases, v, mt.bt, m, a, nt, cin * TILES);
                }
                // The α² products on the register blocks.
                let zero = [0.0f32; CB];
                for xi in 0..a * a {
                    let v = &s.v[xi * cin * TILES..][..cin * TILES];
                    let u = &w.packed[xi * cout * cin..][..cout * cin];
                    let prod = s.prod[xi * cout * TILES..][..cout * TILES].as_mut_ptr();
                    for blk in 0..cout / cb {
                        // SAFETY: rows `blk·cb + c` (< C_out) of this position's `[C_out, TILES]`.
                        let dst: [*mut f32; CB] =
                            std::array::from_fn(|c| unsafe { prod.add((blk * cb + c.min(cb - 1)) * TILES) });
                        // SAFETY: each `dst` row holds `TILES ≥ nt` values; the row reads stay
                        // within `v` (`off < C_in·TILES`, blocks read at most `TILES` past it).
                        unsafe { conv_row(isa, cb, v, &off, &u[blk * cin * cb..][..cin * cb], &dst, nt, true, &zero) };
                    }
                }
                // Output transform, channel by channel, straight into the output rows.
                let cols = (nt * m).min(ow - t0 * m);
                for co in 0..cout {
                    let b0 = bias.map_or(0.0, |bs| bs[co]);
                    // SAFETY: task (bi, ty, piece) alone writes these columns of rows
                    // `ty·m..ty·m + m` of image bi.
                    let nr = m.min(oh - ty * m);
                    let mut rows: [&mut [f32]; MAX_M] = std::array::from_fn(|r| match r < nr {
                        true => unsafe { out.part(((bi * cout + co) * oh + ty * m + r) * ow + t0 * m, cols) },
                        false => &mut [],
                    });
                    let rows = &mut rows[..nr];
                    output_transform(&s.prod[co * TILES..], cout * TILES, &mut s.s, rows, mt.at, m, a, nt, b0);
                }
            },
        );
    };
    // SAFETY: the tasks cover every (image, row of tiles, piece) and each writes all its
    // columns of all its rows, for every channel.
    unsafe { write_all(b * cout * oh * ow, fill) }
}

/// `dst[t] = init + Σ_k c[k] · src[k][t]` for `t < dst.len()`: the `K` terms added in order in
/// one register per value, one pass over `dst` (zero coefficients add exact zeros).
#[inline(always)]
fn comb<const K: usize>(dst: &mut [f32], c: &[f32], src: [&[f32]; K], init: f32) {
    let n = dst.len();
    let c: &[f32; K] = c[..K].try_into().expect("one coefficient per source");
    // Each source exactly `n` long, so that the loop has no bounds checks.
    let src = src.map(|s| &s[..n]);
    for (t, d) in dst.iter_mut().enumerate() {
        let mut acc = init;
        for k in 0..K {
            acc += c[k] * src[k][t];
        }
        *d = acc;
    }
}

/// `V = Bᵀ d B` of `nt` tiles of one input channel: `rows` holds the `α` padded input rows (`len`
/// values each); position `ξ = i·α + j` of tile `t` goes to `v[ξ·stride + t]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn input_transform_imp(
    rows: &[f32],
    tmp: &mut [f32],
    phases: &mut [f32],
    v: &mut [f32],
    bt: &[f32],
    m: usize,
    a: usize,
    nt: usize,
    stride: usize,
) {
    match a {
        4 => input_transform_a::<4>(rows, tmp, phases, v, bt, m, nt, stride),
        6 => input_transform_a::<6>(rows, tmp, phases, v, bt, m, nt, stride),
        _ => unreachable!("Winograd tiles are 4×4 or 6×6"),
    }
}

/// [`input_transform_imp`] for input tiles of `A × A`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn input_transform_a<const A: usize>(
    rows: &[f32],
    tmp: &mut [f32],
    phases: &mut [f32],
    v: &mut [f32],
    bt: &[f32],
    m: usize,
    nt: usize,
    stride: usize,
) {
    let len = rows.len() / A;
    let plen = len / m;
    // Vertical: tmp[i] = Σ_k Bᵀ[i][k] · rows[k].
    for i in 0..A {
        let src: [&[f32]; A] = std::array::from_fn(|k| &rows[k * len..][..len]);
        comb(&mut tmp[i * len..][..len], &bt[i * A..], src, 0.0);
    }
    // Horizontal: column l of tile t is column t·m + l, i.e. entry t + l/m of phase l % m.
    for i in 0..A {
        let t = &tmp[i * len..][..len];
        for q in 0..m {
            for (u, d) in phases[q * plen..][..plen].iter_mut().enumerate() {
                *d = t[u * m + q];
            }
        }
        for j in 0..A {
            let src: [&[f32]; A] = std::array::from_fn(|l| &phases[(l % m) * plen + l / m..][..nt]);
            comb(&mut v[(i * A + j) * stride..][..nt], &bt[j * A..], src, 0.0);
        }
    }
}

dispatch! {
    /// [`input_transform_imp`] with the widest vectors the CPU has.
    #[allow(clippy::too_many_arguments)]
    fn input_transform(
        rows: &[f32],
        tmp: &mut [f32],
        phases: &mut [f32],
        v: &mut [f32],
        bt: &[f32],
        m: usize,
        a: usize,
        nt: usize,
        stride: usize,
    ) = input_transform_imp;
}

/// `Aᵀ M A + bias` of `nt` tiles of one output channel: position `ξ` of tile `t` is
/// `prod[ξ·stride + t]`; row `r < out.len() ≤ m` of the output goes to `out[r]` (at most `m·nt`
/// values: the columns the tiles cover that the output has); `s` holds `α·m·TILES` values.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn output_transform_imp(
    prod: &[f32],
    stride: usize,
    s: &mut [f32],
    out: &mut [&mut [f32]],
    at: &[f32],
    m: usize,
    a: usize,
    nt: usize,
    bias: f32,
) {
    match (a, m) {
        (4, 2) => output_transform_a::<4, 2>(prod, stride, s, out, at, nt, bias),
        (6, 4) => output_transform_a::<6, 4>(prod, stride, s, out, at, nt, bias),
        _ => unreachable!("Winograd tiles are 4×4 or 6×6"),
    }
}

/// [`output_transform_imp`] for input tiles of `A × A` and output tiles of `M × M`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn output_transform_a<const A: usize, const M: usize>(
    prod: &[f32],
    stride: usize,
    s: &mut [f32],
    out: &mut [&mut [f32]],
    at: &[f32],
    nt: usize,
    bias: f32,
) {
    let at: &[f32] = &at[..M * A];
    // Horizontal: s[i][t·M + j] = Σ_l M[i][l] · Aᵀ[j][l] (the tiles' columns already interleaved
    // as in the output rows).
    for i in 0..A {
        let src: [&[f32]; A] = std::array::from_fn(|l| &prod[(i * A + l) * stride..][..nt]);
        let dst = &mut s[i * M * TILES..][..M * nt];
        for (t, d) in dst.chunks_exact_mut(M).enumerate() {
            for (j, d) in d.iter_mut().enumerate() {
                let mut acc = 0.0;
                for l in 0..A {
                    acc += at[j * A + l] * src[l][t];
                }
                *d = acc;
            }
        }
    }
    // Vertical: output row r = bias + Σ_i Aᵀ[r][i] · s[i], whole rows at once, into place.
    for (r, row) in out.iter_mut().enumerate() {
        let src: [&[f32]; A] = std::array::from_fn(|i| &s[i * M * TILES..][..M * nt]);
        comb(row, &at[r * A..], src, bias);
    }
}

dispatch! {
    /// [`output_transform_imp`] with the widest vectors the CPU has.
    #[allow(clippy::too_many_arguments)]
    fn output_transform(
        prod: &[f32],
        stride: usize,
        s: &mut [f32],
        out: &mut [&mut [f32]],
        at: &[f32],
        m: usize,
        a: usize,
        nt: usize,
        bias: f32,
    ) = output_transform_imp;
}
