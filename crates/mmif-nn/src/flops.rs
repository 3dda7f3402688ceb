//! Floating-point operation counts of the networks' graphs, for benchmarks.
//!
//! Layers report the multiply–adds of the operation the official module performs (a conv,
//! a matrix product), counted as 2 FLOPs each, whichever way this crate evaluates it: a folded
//! attention, a pooled cross-attention or a fused FFN counts what the PyTorch graph computes,
//! so that FLOP/s figures compare with other runtimes. Element-wise work (norms, activations,
//! softmax) is not counted, as is usual. Counting costs one thread-local add per layer call.
//!
//! ```
//! let (out, flops) = mmif_nn::flops::count(|| 2 + 2);
//! assert_eq!((out, flops), (4, 0));
//! ```

use std::cell::Cell;

thread_local! {
    /// FLOPs of the layers run on this thread so far. Per thread, so that concurrent work
    /// (tests, other requests) never enters another count: a network runs its layers on the
    /// calling thread (its kernels parallelise inside a layer).
    static FLOPS: Cell<u64> = const { Cell::new(0) };
}

/// Adds `n` FLOPs to this thread's running count.
pub(crate) fn add(n: u64) {
    FLOPS.with(|f| f.set(f.get().wrapping_add(n)));
}

/// Runs `f` and returns its result with the FLOPs of the network layers it ran on this thread.
pub fn count<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let start = FLOPS.with(Cell::get);
    let out = f();
    (out, FLOPS.with(Cell::get).wrapping_sub(start))
}

/// FLOPs of a 2-D convolution producing `[b, cout, oh, ow]` from `cin / groups` input
/// channels per output through a `kh × kw` kernel.
pub(crate) fn conv(out: [usize; 4], cin_per_group: usize, kh: usize, kw: usize) -> u64 {
    let [b, cout, oh, ow] = out;
    2 * (b * cout * oh * ow * cin_per_group * kh * kw) as u64
}

/// FLOPs of a batch of `batch` matrix products `[m, k] × [k, n]`.
pub(crate) fn matmul(batch: usize, m: usize, k: usize, n: usize) -> u64 {
    2 * (batch * m * k * n) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Conv2d, ConvCfg, Epilogue};
    use burn::tensor::{Distribution, Tensor};

    #[test]
    fn a_conv_counts_its_multiply_adds_on_every_path() {
        let dev = crate::cpu();
        let x = Tensor::<4>::random([2, 6, 9, 11], Distribution::Uniform(-1.0, 1.0), &dev);
        // 3×3, 2 groups, stride 2: output 5×6, 3 input channels per output.
        let conv = Conv2d::new(&dev, 6, 8, 3, ConvCfg::same(3).groups(2).stride(2));
        let want = 2 * 2 * 8 * 5 * 6 * 3 * 9;
        assert_eq!(count(|| conv.forward(x.clone())).1, want);
        assert_eq!(count(|| conv.forward(x.clone().autodiff())).1, want);
        // A 1×1 conv with a residual, by the kernel and by burn ops.
        let pw = Conv2d::new(&dev, 6, 4, 1, ConvCfg::same(1));
        let r = Tensor::<4>::zeros([2, 4, 9, 11], &dev);
        let want = 2 * 2 * 4 * 9 * 11 * 6;
        let add = |x: Tensor<4>, r: Tensor<4>| pw.forward_fused(vec![x], None, Epilogue::residual(r));
        assert_eq!(count(|| add(x.clone(), r.clone())).1, want);
        assert_eq!(count(|| add(x.clone().autodiff(), r.clone().autodiff())).1, want);
    }

    #[test]
    fn film_counts_the_same_graph_in_both_evaluations() {
        let dev = crate::cpu();
        let film = crate::film::Film::new(&dev);
        let img = || Tensor::<4>::random([1, 1, 24, 40], Distribution::Uniform(0.0, 1.0), &dev);
        let text = Tensor::<3>::random([1, 3, crate::film::TEXT_DIM], Distribution::Uniform(-1.0, 1.0), &dev);
        let (a, b) = (img(), img());
        let low = count(|| film.forward(a.clone(), b.clone(), text.clone())).1;
        let literal = film.clone().with_low_memory(false);
        let full = count(|| literal.forward(a.clone(), b.clone(), text.clone())).1;
        assert!(low > 0);
        assert_eq!(low, full);
    }
}
