//! The fusion networks of mmif on burn: CDDFuse, EMMA and FILM, their shared layers and
//! weight loading, and FILM's text encoder (BLIP-2's BERT, [`text`]).
//!
//! Tensors run on burn's pure-Rust `flex` CPU backend by default ([`cpu`]), where hand-written
//! CPU kernels replace burn's ops in inference. The features `wgpu` (Vulkan, Metal, DX12) and
//! `cuda` add burn's GPU backends ([`device::parse_device`]); every network takes a [`Device`]
//! and runs on burn's own ops wherever its CPU kernels do not apply (any non-`flex` tensor, and
//! every autodiff tensor), so inference and training run on any of them.

pub mod bands;
pub mod cddfuse;
pub mod device;
pub mod emma;
pub mod film;
pub mod flops;
pub(crate) mod kernels;
pub mod layers;
pub mod ops;
pub mod text;
pub mod train_ops;
pub mod weights;

pub use burn::tensor::{Device, Tensor};
pub use weights::{LoadError, StateDict};

use mmif_io::Plane;

/// The default CPU device (burn `flex`).
pub fn cpu() -> Device {
    Device::flex()
}

/// A `1×1×H×W` tensor from a plane, multiplied by `scale` (e.g. `1/255`).
pub fn plane_to_tensor(p: &Plane, scale: f32, device: &Device) -> Tensor<4> {
    let data: Vec<f32> = p.data.iter().map(|v| v * scale).collect();
    Tensor::from_data(burn::tensor::TensorData::new(data, [1, 1, p.height, p.width]), device)
}

/// The first image of a `B×1×H×W` tensor as a plane.
pub fn tensor_to_plane(t: Tensor<4>) -> Plane {
    let [_, _, h, w] = t.dims();
    let first = t.narrow(0, 0, 1);
    Plane::new(w, h, weights::tensor_to_vec(first))
}

/// The official test scripts' normalisation: `(x - min) / (max - min)` over the whole tensor.
/// A constant tensor maps to zeros instead of NaN.
pub fn min_max(x: Tensor<4>) -> Tensor<4> {
    let min = x.clone().min();
    let max = x.clone().max();
    let range = (max - min.clone()).clamp_min(f32::MIN_POSITIVE);
    (x - min.unsqueeze()) / range.unsqueeze()
}

/// Makes glibc's allocator keep freed memory for reuse instead of handing every large tensor
/// buffer back to the kernel: by default each buffer over 32 MB is its own `mmap`, so every
/// full-resolution op pays for fresh zeroed pages (page faults were half the time of a
/// 480×640 Restormer block). Call once at start-up, before any tensor exists. Peak RSS is
/// unchanged; freed memory stays with the process until it exits. No-op off glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
        }
        const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
        const M_MMAP_MAX: std::ffi::c_int = -4;
        // SAFETY: mallopt only changes allocator tuning parameters; it is called with valid
        // parameter numbers and values, and allocations made before the call stay valid.
        unsafe {
            mallopt(M_MMAP_MAX, 0);
            // -1: never trim (glibc reads it as SIZE_MAX). `c_int::MAX` would still trim a free
            // top of over 2 GiB, which a large batch frees and faults back in every step.
            mallopt(M_TRIM_THRESHOLD, -1);
        }
    }
}

/// Helpers shared by the unit tests.
#[cfg(test)]
pub(crate) mod test_util {
    use burn::tensor::Tensor;

    pub use mmif_testkit::compare::{max_abs_diff as max_abs, max_rel_diff as max_rel};

    /// A tensor of uniform values in [-1, 1).
    pub fn rand<const D: usize>(shape: [usize; D], dev: &burn::tensor::Device) -> Tensor<D> {
        Tensor::random(shape, burn::tensor::Distribution::Uniform(-1.0, 1.0), dev)
    }

    /// Largest absolute difference of two tensors' values (same shape).
    pub fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        max_abs(&crate::weights::tensor_to_vec(a), &crate::weights::tensor_to_vec(b))
    }
}
